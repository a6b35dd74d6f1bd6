"""The pure side of the inbound SMPP server: PDU fields to message fields, reassembly with ids,
bind-failure slow-down, the rejection -> command_status table, and the receipt text."""

from __future__ import annotations

import calendar

import pytest

from appliance.domain.gsm import encode_gsm7, encode_ucs2
from appliance.domain.pipeline import Rejection
from appliance.domain.receipt_text import (
    ReceiptOutcome,
    outcome_of_event,
    parse_address,
    plan_receipts,
    receipt_text,
    wants_receipt,
)
from appliance.domain.segmentation import Concat
from appliance.domain.smpp_ingress import (
    Assembled,
    BindGuard,
    PartSets,
    Refused,
    decode_text_of,
    destination_of,
    receipt_metadata,
    sender_of,
    split_part,
)
from appliance.domain.smpp_rejections import (
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RINVSRCADR,
    ESME_RSUBMITFAIL,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_VENDOR_CONTENT_REFUSED,
    ESME_VENDOR_RECIPIENT_BLOCKED,
    command_status,
)

# -- decoding ------------------------------------------------------------------------------------


def test_text_by_data_coding() -> None:
    assert decode_text_of(encode_gsm7("Pay €5 {now} @ home"), 0) == "Pay €5 {now} @ home"
    assert decode_text_of("Grüße".encode("latin-1"), 3) == "Grüße"
    assert decode_text_of(encode_ucs2("Привет 👋"), 8) == "Привет 👋"
    assert decode_text_of(b"plain", 1) == "plain"


def test_default_coding_with_high_octets_is_read_as_latin1() -> None:
    assert decode_text_of("café".encode("latin-1"), 0) == "café"


@pytest.mark.parametrize(("data", "coding"), [(b"\x00", 8), (b"\x01\x02", 4), (b"\xd8\x00", 8)])
def test_unreadable_text_is_refused(data: bytes, coding: int) -> None:
    with pytest.raises(Refused) as caught:
        decode_text_of(data, coding)
    assert caught.value.command_status == ESME_RSUBMITFAIL


def test_udh_8_and_16_bit_and_sar_concatenation() -> None:
    part = split_part(bytes([5, 0, 3, 0x2A, 3, 2]) + b"abc", None, 0x40)
    assert part.payload == b"abc"
    assert part.concat == Concat(0x2A, 3, 2)
    wide = split_part(bytes([6, 8, 4, 0x12, 0x34, 2, 1]) + b"xy", None, 0x40)
    assert wide.concat == Concat(0x1234, 2, 1)
    assert wide.payload == b"xy"
    sar = split_part(b"hello", None, 0, (7, 2, 1))
    assert sar.concat == Concat(7, 2, 1)


def test_single_parts_and_payload_tlv() -> None:
    assert split_part(b"hi", None, 0) == split_part(b"", b"hi", 0)
    assert split_part(b"hi", None, 0, (7, 1, 1)).concat is None  # one part of one is no concatenation
    assert split_part(b"hi", None, 0, (7, 2, 3)).concat is None  # a part past the total stands alone


def test_malformed_udh_and_double_payload_are_refused() -> None:
    with pytest.raises(Refused):
        split_part(bytes([9, 0, 3]), None, 0x40)
    with pytest.raises(Refused):
        split_part(b"a", b"b", 0)


def test_addresses() -> None:
    assert destination_of("4523456789", 1) == "+4523456789"
    assert destination_of("+4523456789", 0) == "+4523456789"
    assert destination_of("004523456789", 2) == "+4523456789"
    with pytest.raises(Refused) as caught:
        destination_of("23456789", 2)  # national, with no country to put in front
    assert caught.value.command_status == ESME_RINVDSTADR
    assert sender_of("Hermes", 5) == "Hermes"
    assert sender_of("4523456789", 1) == "+4523456789"
    assert sender_of("1234", 3) == "1234"
    assert sender_of("", 0) is None


# -- reassembly ----------------------------------------------------------------------------------


def test_parts_complete_in_any_order_and_keep_their_ids() -> None:
    sets = PartSets(timeout=60, max_pending=10)
    key = ("tn", "a", "b")
    assert sets.add(key, Concat(1, 3, 3), "id3", b"C", 0.0) == "id3"
    assert sets.add(key, Concat(1, 3, 1), "id1", b"A", 1.0) == "id1"
    assert sets.add(key, Concat(1, 3, 1), "again", b"A", 1.5) == "id1"  # a re-sent part keeps its id
    whole = sets.add(key, Concat(1, 3, 2), "id2", b"B", 2.0)
    assert isinstance(whole, Assembled)
    assert whole.payload == b"ABC"
    assert whole.earlier_ids == ("id1", "id3")
    assert sets.pending == 0


def test_a_refused_completion_can_be_restored_and_completed_again() -> None:
    sets = PartSets(timeout=60, max_pending=10)
    sets.add("k", Concat(9, 2, 1), "id1", b"A", 0.0)
    whole = sets.add("k", Concat(9, 2, 2), "id2", b"B", 0.0)
    assert isinstance(whole, Assembled)
    sets.restore("k", Concat(9, 2, 2), whole)
    again = sets.add("k", Concat(9, 2, 2), "id2b", b"B", 1.0)
    assert isinstance(again, Assembled)
    assert again.earlier_ids == ("id1",)


def test_incomplete_sets_expire_and_are_bounded_and_every_dropped_set_is_reported() -> None:
    sets = PartSets(timeout=10, max_pending=2)
    sets.add("a", Concat(1, 2, 1), "a1", b"A", 0.0, {"smpp.system_id": "a"})
    sets.add("b", Concat(1, 3, 2), "b2", b"B", 5.0)
    sets.add("b", Concat(1, 3, 1), "b1", b"B", 5.0, {"smpp.system_id": "b"})
    sets.add("c", Concat(1, 2, 1), "c1", b"C", 6.0)  # evicts the oldest set
    assert sets.pending == 2
    dropped = sets.expire(15.5)
    assert [(d.key, d.reference, d.total, d.ids, dict(d.context)) for d in dropped] == [
        ("a", 1, 2, ("a1",), {"smpp.system_id": "a"}),  # evicted
        ("b", 1, 3, ("b1", "b2"), {"smpp.system_id": "b"}),  # timed out, ids in part order
    ]
    assert sets.pending == 1 and sets.expire(15.5) == []
    sets.add("c", Concat(1, 2, 2), "c2", b"C", 30.0)  # its set timed out: a new one starts
    assert [d.ids for d in sets.expire(30.0)] == [("c1",)]


# -- bind failures -------------------------------------------------------------------------------


def test_bind_failures_from_one_address_wait_longer_each_time() -> None:
    guard = BindGuard(base_s=0.5, max_s=4.0, reset_s=60.0)
    delays = [guard.failed("10.0.0.1", float(t))[1] for t in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert guard.failed("10.0.0.2", 6.0) == (1, 0.5)  # another address is not affected
    assert guard.failures("10.0.0.1", 100.0) == 0  # quiet for reset_s: forgotten
    guard.failed("10.0.0.1", 101.0)
    guard.succeeded("10.0.0.1")
    assert guard.failures("10.0.0.1", 101.0) == 0


def test_bind_guard_memory_is_bounded() -> None:
    guard = BindGuard(base_s=1.0, max_s=1.0, reset_s=60.0, max_addresses=3)
    for i in range(10):
        guard.failed(f"10.0.0.{i}", 0.0)
    assert guard.failures("10.0.0.0", 0.0) == 0
    assert guard.failures("10.0.0.9", 0.0) == 1


# -- rejection mapping ---------------------------------------------------------------------------


def _invalid(field: str) -> Rejection:
    return Rejection(422, "invalid_message", "x", "L5", {"fields": [{"field": field, "reason": "bad"}]})


@pytest.mark.parametrize(
    ("rejection", "status"),
    [
        (Rejection(429, "rate_limited", "x", "L3"), ESME_RTHROTTLED),
        (Rejection(429, "exceeds_burst", "x", "L3"), ESME_RTHROTTLED),
        (Rejection(402, "insufficient_balance", "x", "L4"), ESME_RSUBMITFAIL),
        (Rejection(402, "quota_exhausted", "x", "L4"), ESME_RSUBMITFAIL),
        (_invalid("to"), ESME_RINVDSTADR),
        (_invalid("channels[0].to"), ESME_RINVDSTADR),
        (_invalid("from"), ESME_RINVSRCADR),
        (_invalid("body"), ESME_RINVMSGLEN),
        (_invalid("metadata"), ESME_RSUBMITFAIL),
        (Rejection(451, "suppressed", "x", "L6"), ESME_VENDOR_RECIPIENT_BLOCKED),
        (Rejection(451, "opted_out", "x", "L6"), ESME_VENDOR_RECIPIENT_BLOCKED),
        (Rejection(400, "content_rejected", "x", "L7"), ESME_VENDOR_CONTENT_REFUSED),
        (Rejection(503, "unavailable", "x", "L9"), ESME_RSYSERR),
        (Rejection(500, "something_new", "x", "L9"), ESME_RSYSERR),
        (Rejection(418, "something_new", "x", "L5"), ESME_RSUBMITFAIL),
    ],
)
def test_pipeline_refusals_map_to_command_status(rejection: Rejection, status: int) -> None:
    assert command_status(rejection) == status


# -- receipts ------------------------------------------------------------------------------------


def test_receipt_text_has_the_appendix_b_form() -> None:
    submitted = calendar.timegm((2026, 3, 4, 5, 6, 0))
    done = submitted + 90
    text = receipt_text(
        "msg_1",
        ReceiptOutcome("DELIVRD", 2, "000"),
        submitted_at=submitted,
        done_at=done,
        text="Your code is 123456 - do not share it",
    )
    assert text == (
        "id:msg_1 sub:001 dlvrd:001 submit date:2603040506 done date:2603040507 "
        "stat:DELIVRD err:000 text:Your code is 123456 "
    )


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("delivered", {"stat": "DELIVRD", "err": "0"}, ("DELIVRD", 2, "000")),
        ("dead_lettered", {"stat": "UNDELIV", "err": "34"}, ("UNDELIV", 5, "034")),
        ("dead_lettered", {"stat": "expired"}, ("EXPIRED", 3, "001")),
        ("dead_lettered", {"stat": "REJECTD", "err": "1:0x0b"}, ("REJECTD", 8, "001")),
        ("dead_lettered", {"reason": "timeout"}, ("EXPIRED", 3, "001")),
        ("failed", {"err": "3:1234"}, ("UNDELIV", 5, "234")),
        ("failed", {}, ("UNDELIV", 5, "001")),
    ],
)
def test_outcome_of_final_events(kind: str, data: dict[str, str], expected: tuple[str, int, str]) -> None:
    outcome = outcome_of_event(kind, data)
    assert (outcome.stat, outcome.message_state, outcome.err) == expected


def test_registered_delivery_bits() -> None:
    assert wants_receipt(1, delivered=True)
    assert wants_receipt(1, delivered=False)
    assert not wants_receipt(2, delivered=True)
    assert wants_receipt(2, delivered=False)
    assert not wants_receipt(0, delivered=False)
    assert not wants_receipt(0x10, delivered=False)  # intermediate notification only


def _event_data(registered_delivery: int, part_ids: tuple[str, ...] = ()) -> dict[str, object]:
    metadata = receipt_metadata(
        system_id="acme01",
        registered_delivery=registered_delivery,
        source=(5, 0, "Hermes"),
        destination=(1, 1, "4523456789"),
        text="Hello there, this is a long text",
        part_ids=part_ids,
    )
    return {"origin": "smpp", "metadata": metadata, "created_at": 1_000_000.0, "stat": "DELIVRD"}


def test_plan_receipts_mirrors_the_addresses_and_names_every_part() -> None:
    [first, last] = plan_receipts("delivered", "msg_2", 1_000_060.0, _event_data(1, ("msg_1",)))
    assert [first.message_id, last.message_id] == ["msg_1", "msg_2"]
    assert last.system_id == "acme01"
    assert last.source == (1, 1, "4523456789")
    assert last.destination == (5, 0, "Hermes")
    assert last.message_state == 2
    assert last.text.startswith("id:msg_2 sub:001 dlvrd:001 ")
    assert last.text.endswith("stat:DELIVRD err:000 text:Hello there, this is")


def test_no_receipt_unless_smpp_and_asked() -> None:
    assert plan_receipts("delivered", "m", 0.0, _event_data(0)) == []
    assert plan_receipts("delivered", "m", 0.0, _event_data(2)) == []  # failures only
    assert len(plan_receipts("dead_lettered", "m", 0.0, _event_data(2))) == 1
    assert plan_receipts("delivered", "m", 0.0, {**_event_data(1), "origin": "rest"}) == []
    assert plan_receipts("delivered", "m", 0.0, {"origin": "smpp"}) == []


def test_parse_address_round_trip_and_fallback() -> None:
    assert parse_address("1/1/4523456789") == (1, 1, "4523456789")
    assert parse_address("5/0/A/B") == (5, 0, "A/B")
    assert parse_address("junk") == (0, 0, "junk")
    assert parse_address(None) == (0, 0, "")


def test_a_part_that_could_not_be_stored_is_forgotten() -> None:
    sets = PartSets(timeout=60, max_pending=10)
    sets.add("k", Concat(3, 2, 1), "id1", b"A", 0.0)
    assert sets.holds("k", Concat(3, 2, 2))
    sets.discard("k", Concat(3, 2, 1))
    assert not sets.holds("k", Concat(3, 2, 2))
    assert sets.add("k", Concat(3, 2, 2), "id2", b"B", 0.0) == "id2"
