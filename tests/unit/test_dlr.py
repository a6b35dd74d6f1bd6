"""Delivery receipts: the text form as carriers vary it, the TLVs, outcomes, and carrier id variants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.dlr import (
    OUTCOMES,
    STATES,
    Receipt,
    canonical_stat,
    id_candidates,
    id_key,
    id_variants,
    is_receipt,
    outcome_of,
    parse_date,
    parse_receipt,
    parse_text,
)
from appliance.sim import receipt_text

STANDARD = (
    "id:0a1b2c3d sub:001 dlvrd:001 submit date:2602111430 done date:2602111431 stat:DELIVRD err:000 "
    "text:Your order #1234 has"
)


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


# ---- the text form ---------------------------------------------------------------------------------------


def test_standard_text() -> None:
    fields = parse_text(STANDARD)
    assert fields == {
        "id": "0a1b2c3d",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2602111430",
        "done_date": "2602111431",
        "stat": "DELIVRD",
        "err": "000",
        "text": "Your order #1234 has",
    }


def test_case_spaces_and_underscores_are_tolerated() -> None:
    text = "ID: 77  Sub:1 DLVRD:1 Submit_Date:260211143005 done  date: 260211143107 Stat: delivrd ERR:0 Text:"
    fields = parse_text(text)
    assert fields["id"] == "77"
    assert fields["submit_date"] == "260211143005"
    assert fields["done_date"] == "260211143107"
    assert fields["stat"] == "delivrd"
    assert fields["err"] == "0"
    assert fields["text"] == ""


def test_missing_fields_are_absent_and_text_keeps_colons() -> None:
    fields = parse_text("id:abc stat:UNDELIV text:see: http://x y:z")
    assert fields == {"id": "abc", "stat": "UNDELIV", "text": "see: http://x y:z"}
    assert parse_text("") == {}
    assert parse_text("garbage without keys") == {}


def test_keys_inside_the_text_do_not_count() -> None:
    fields = parse_text("id:1 stat:DELIVRD err:000 text:stat:UNDELIV id:2")
    assert fields["id"] == "1" and fields["stat"] == "DELIVRD"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2602111430", _epoch(2026, 2, 11, 14, 30)),
        ("260211143022", _epoch(2026, 2, 11, 14, 30, 22)),
        ("20260211143022", _epoch(2026, 2, 11, 14, 30, 22)),
        (" 2602111430 ", _epoch(2026, 2, 11, 14, 30)),
        ("2613111430", None),  # month 13
        ("26021114", None),
        ("26021114300", None),
        ("abcdefghij", None),
        ("", None),
        (None, None),
    ],
)
def test_dates(text: str | None, expected: float | None) -> None:
    assert parse_date(text) == expected


def test_the_simulators_receipts_parse() -> None:
    raw = receipt_text("ab12", delivered=False, submitted=1_770_000_000, done=1_770_000_060, text="hello")
    receipt = parse_receipt(short_message=raw)
    assert receipt.message_id == "ab12"
    assert (receipt.stat, receipt.outcome, receipt.final, receipt.err) == ("UNDELIV", "failed", True, "001")
    assert receipt.submitted == 1 and receipt.delivered == 0
    assert receipt.done_date == _epoch(2026, 2, 2, 2, 41)
    assert receipt.text == "hello"


# ---- outcomes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "outcome", "final"),
    [
        ("DELIVRD", "delivered", True),
        ("delivered", "delivered", True),
        ("EXPIRED", "failed", True),
        ("DELETED", "failed", True),
        ("UNDELIV", "failed", True),
        ("Undeliverable", "failed", True),
        ("REJECTD", "failed", True),
        ("rejected", "failed", True),
        ("UNKNOWN", "failed", True),
        ("ENROUTE", "pending", False),
        ("ACCEPTD", "pending", False),
        ("accepted", "pending", False),
        ("WHATEVER", "pending", False),
        ("", "pending", False),
        (None, "pending", False),
    ],
)
def test_outcome_of_stat(stat: str | None, outcome: str, final: bool) -> None:
    assert outcome_of(stat) == (outcome, final)


def test_every_message_state_has_an_outcome() -> None:
    for state, stat in STATES.items():
        assert stat in OUTCOMES, state
    assert canonical_stat(" delivered ") == "DELIVRD"


def test_tlvs_win_over_the_text() -> None:
    receipt = parse_receipt(
        short_message=b"id:999 stat:UNDELIV err:001 text:x",
        receipted_message_id="3e7",
        message_state=2,
        network_error=(3, 7),
    )
    assert receipt.message_id == "3e7"
    assert (receipt.stat, receipt.outcome, receipt.final) == ("DELIVRD", "delivered", True)
    assert receipt.err == "001"  # the text's err when present


def test_tlvs_alone() -> None:
    receipt = parse_receipt(receipted_message_id=" 42 ", message_state=5, network_error=(1, 3))
    assert receipt == Receipt(message_id="42", stat="UNDELIV", outcome="failed", final=True, err="1:003")
    odd = parse_receipt(receipted_message_id="42", message_state=77)
    assert (odd.stat, odd.outcome, odd.final) == ("STATE_77", "pending", False)


def test_nothing_known() -> None:
    receipt = parse_receipt()
    assert receipt == Receipt(message_id=None, stat=None, outcome="pending", final=False)


def test_intermediate_notification_is_never_final() -> None:
    receipt = parse_receipt(short_message=b"id:1 stat:UNDELIV", intermediate=True)
    assert (receipt.outcome, receipt.final) == ("pending", False)


def test_ucs2_receipt_text() -> None:
    receipt = parse_receipt(short_message="id:5 stat:DELIVRD".encode("utf-16-be"), data_coding=8)
    assert (receipt.message_id, receipt.outcome) == ("5", "delivered")


def test_is_receipt() -> None:
    assert is_receipt(0x04) and is_receipt(0x20) and is_receipt(0x04 | 0x40 | 0x03)
    assert not is_receipt(0x00) and not is_receipt(0x08) and not is_receipt(0x40)


# ---- carrier ids -----------------------------------------------------------------------------------------


def test_id_key_is_canonical() -> None:
    assert id_key("0000A1B2") == "a1b2"
    assert id_key(" 00123 ") == "123"
    assert id_key("000") == "0"
    assert id_key("TEL-55443") == "tel-55443"


def test_hex_and_decimal_spellings_meet() -> None:
    submitted_hex, receipt_decimal = "0000A1B2", str(0xA1B2)
    assert id_key(submitted_hex) in id_variants(receipt_decimal)
    submitted_decimal, receipt_hex = "41394", "a1b2"
    assert id_key(submitted_decimal) in id_variants(receipt_hex)
    assert id_key("ABC") in id_variants("abc")


def test_candidates_put_the_id_as_written_first() -> None:
    assert id_candidates("10") == ["10", "a", "16"]
    assert id_candidates("ff") == ["ff", "255"]
    assert id_candidates("TEL-1") == ["tel-1"]
    assert id_variants("10") == {"10", "a", "16"}


@given(st.integers(min_value=0, max_value=2**64))
def test_any_number_in_either_base_matches(number: int) -> None:
    as_hex, as_decimal = format(number, "X").zfill(10), str(number)
    assert id_key(as_hex) in id_variants(as_decimal)
    assert id_key(as_decimal) in id_variants(as_hex)
