"""The `SmppStore` contract (submissions and their receipts), run against SQLite and PostgreSQL.

The `smpp` fixture is conftest's `store`, on each backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.config.schema import StoreSection
from appliance.daemons.smpp.batching import SubmissionBook
from appliance.domain.dlr import id_candidates, id_key
from appliance.errors import NotFound
from appliance.store import FullStore, open_store
from appliance.store.smpp_base import DlrOutcome, DlrUpdate, SmppSubmission, best_match

T0 = 1_700_000_000.5
SmppTestStore = FullStore


async def open_sqlite(path: Path) -> FullStore:
    """A migrated SQLite store (the daemon tests use it too)."""
    store = await open_store(StoreSection(backend="sqlite", path=str(path)))
    await store.migrate()
    return store


@pytest.fixture
def smpp(store: FullStore) -> FullStore:
    """conftest's migrated `store` (SQLite, and PostgreSQL when configured)."""
    return store


def _part(carrier_message_id: str = "0000A1B2", **changes: Any) -> SmppSubmission:
    part = SmppSubmission(
        carrier="telia_dk", carrier_message_id=carrier_message_id, id_key=id_key(carrier_message_id),
        message_id="msg_1", tenant_id="tn_a", attempt=1, part=1, parts=1, submitted_at=T0,
    )  # fmt: skip
    return msgspec.structs.replace(part, **changes)


async def test_migration_0004_is_applied(smpp: SmppTestStore) -> None:
    assert await smpp.schema_version() >= 4
    assert await smpp.migrate() == []


async def test_record_is_idempotent_and_found_by_any_spelling(smpp: SmppTestStore) -> None:
    part = _part()
    assert await smpp.record_submission(part) is True
    assert await smpp.record_submission(part) is False
    assert await smpp.find_submission("telia_dk", id_candidates(str(0xA1B2))) == part
    assert await smpp.find_submission("telia_dk", id_candidates("a1b2")) == part
    assert await smpp.find_submission("tdc", id_candidates("a1b2")) is None
    assert await smpp.find_submission("telia_dk", id_candidates("a1b3")) is None
    assert await smpp.find_submission("telia_dk", []) is None


async def test_the_id_as_written_is_preferred(smpp: SmppTestStore) -> None:
    hex_ten = _part("a", message_id="msg_hex")
    decimal_ten = _part("10", message_id="msg_dec")
    await smpp.record_submission(hex_ten)
    await smpp.record_submission(decimal_ten)
    found = await smpp.find_submission("telia_dk", id_candidates("10"))
    assert found is not None and found.message_id == "msg_dec"
    found = await smpp.find_submission("telia_dk", id_candidates("A"))
    assert found is not None and found.message_id == "msg_hex"


async def test_a_reused_carrier_id_replaces_the_old_part(smpp: SmppTestStore) -> None:
    await smpp.record_submission(_part())
    await smpp.mark_dlr("telia_dk", "0000A1B2", state="DELIVRD", outcome="delivered", err="000", at=T0 + 1)
    newer = _part(message_id="msg_2", submitted_at=T0 + 86_400)
    assert await smpp.record_submission(newer) is True
    assert await smpp.find_submission("telia_dk", ["a1b2"]) == newer


async def test_attempt_parts_in_order(smpp: SmppTestStore) -> None:
    await smpp.record_submission(_part("2", part=2, parts=3))
    await smpp.record_submission(_part("1", part=1, parts=3))
    await smpp.record_submission(_part("9", attempt=2))
    await smpp.record_submission(_part("1", carrier="tdc", part=3, parts=3))
    parts = await smpp.find_attempt("telia_dk", "msg_1", 1)
    assert [p.part for p in parts] == [1, 2]
    assert await smpp.find_attempt("telia_dk", "msg_1", 3) == []


async def test_first_final_receipt_wins(smpp: SmppTestStore) -> None:
    await smpp.record_submission(_part())
    pending = await smpp.mark_dlr("telia_dk", "0000A1B2", state="ENROUTE", outcome="pending", err=None, at=T0)
    assert not pending.duplicate and pending.submission.dlr_outcome == "pending"
    again = await smpp.mark_dlr("telia_dk", "0000A1B2", state="ENROUTE", outcome="pending", err=None, at=T0)
    assert again.duplicate
    first = await smpp.mark_dlr(
        "telia_dk", "0000A1B2", state="DELIVRD", outcome="delivered", err="000", at=T0 + 1
    )
    assert not first.duplicate
    assert (first.submission.dlr_state, first.submission.dlr_err, first.submission.dlr_at) == (
        "DELIVRD",
        "000",
        T0 + 1,
    )
    later: list[tuple[str, DlrOutcome]] = [
        ("DELIVRD", "delivered"),
        ("UNDELIV", "failed"),
        ("ACCEPTD", "pending"),
    ]
    for state, outcome in later:
        late = await smpp.mark_dlr("telia_dk", "0000A1B2", state=state, outcome=outcome, err="1", at=T0 + 2)
        assert late.duplicate
        assert late.submission == first.submission


async def test_receipt_for_an_unknown_part(smpp: SmppTestStore) -> None:
    with pytest.raises(NotFound):
        await smpp.mark_dlr("telia_dk", "nope", state="DELIVRD", outcome="delivered", err=None, at=T0)


async def test_purge_by_age(smpp: SmppTestStore) -> None:
    await smpp.record_submission(_part("1"))
    await smpp.record_submission(_part("2", submitted_at=T0 + 100))
    assert await smpp.purge_submissions(T0 + 50) == 1
    assert [p.carrier_message_id for p in await smpp.find_attempt("telia_dk", "msg_1", 1)] == ["2"]


def _dlr(carrier_message_id: str, state: str, outcome: DlrOutcome, at: float = T0) -> DlrUpdate:
    return DlrUpdate(carrier_message_id=carrier_message_id, state=state, outcome=outcome, err=None, at=at)


async def test_batch_record_is_idempotent_and_found_by_every_key(smpp: SmppTestStore) -> None:
    parts = [_part(str(n), part=n, parts=3) for n in (1, 2, 3)]
    await smpp.record_submissions(parts)
    await smpp.record_submissions([*parts, _part("9", message_id="msg_2")])
    await smpp.record_submissions([])
    found = await smpp.find_submissions("telia_dk", [id_key("1"), id_key("3"), "nope", id_key("1")])
    assert sorted(p.carrier_message_id for p in found) == ["1", "3"]
    assert await smpp.find_submissions("telia_dk", []) == []
    assert best_match(found, id_candidates("3")) == parts[2]
    assert [p.part for p in await smpp.find_attempt("telia_dk", "msg_1", 1)] == [1, 2, 3]


async def test_batch_find_attempts_answers_every_attempt_asked(smpp: SmppTestStore) -> None:
    await smpp.record_submissions(
        [
            _part("2", part=2, parts=2),
            _part("1", part=1, parts=2),
            _part("7", attempt=2),
            _part("8", message_id="m2"),
        ]
    )
    found = await smpp.find_attempts("telia_dk", [("msg_1", 1), ("msg_1", 2), ("msg_1", 3), ("m3", 1)])
    assert [p.carrier_message_id for p in found[("msg_1", 1)]] == ["1", "2"]
    assert [p.carrier_message_id for p in found[("msg_1", 2)]] == ["7"]
    assert found[("msg_1", 3)] == [] and found[("m3", 1)] == []
    assert await smpp.find_attempts("tdc", [("msg_1", 1)]) == {("msg_1", 1): []}


async def test_batch_marks_are_judged_one_by_one_in_order(smpp: SmppTestStore) -> None:
    await smpp.record_submissions([_part("1"), _part("2", part=2, parts=2), _part("3", message_id="m3")])
    await smpp.mark_dlr("telia_dk", "3", state="UNDELIV", outcome="failed", err="001", at=T0)
    marks = await smpp.mark_dlrs(
        "telia_dk",
        [
            _dlr("1", "ENROUTE", "pending"),
            _dlr("2", "DELIVRD", "delivered"),
            _dlr("1", "ENROUTE", "pending"),  # the same state again: a duplicate
            _dlr("1", "DELIVRD", "delivered", T0 + 1),
            _dlr("nope", "DELIVRD", "delivered"),
            _dlr("3", "DELIVRD", "delivered"),  # a final one is in already
            _dlr("1", "UNDELIV", "failed"),
        ],
    )
    assert marks[4] is None
    present = [m for m in marks if m is not None]
    assert [m.duplicate for m in present] == [False, False, True, False, True, True]
    first, second, again, final, late, later = present
    assert (first.submission.dlr_state, first.submission.dlr_outcome) == ("ENROUTE", "pending")
    assert again.submission == first.submission
    assert (final.submission.dlr_state, final.submission.dlr_at) == ("DELIVRD", T0 + 1)
    assert later.submission == final.submission
    assert second.submission.dlr_outcome == "delivered"
    assert late.submission.dlr_state == "UNDELIV"
    assert await smpp.find_submission("telia_dk", ["1"]) == final.submission
    assert await smpp.mark_dlrs("telia_dk", []) == []


async def test_the_book_settles_receipts_together(smpp: SmppTestStore) -> None:
    book = SubmissionBook(smpp)
    await asyncio.gather(
        book.record_submission(_part("1", part=1, parts=2)),
        book.record_submission(_part("2", part=2, parts=2)),
    )
    assert [p.part for p in await book.find_attempt("telia_dk", "msg_1", 1)] == [1, 2]
    keys = id_candidates
    settled = await asyncio.gather(
        book.settle("telia_dk", keys("1"), _dlr("", "DELIVRD", "delivered")),
        book.settle("telia_dk", keys("2"), _dlr("", "DELIVRD", "delivered")),
        book.settle("telia_dk", keys("2"), _dlr("", "DELIVRD", "delivered")),
        book.settle("telia_dk", keys("5"), _dlr("", "DELIVRD", "delivered")),
        book.settle("tdc", keys("1"), _dlr("", "DELIVRD", "delivered")),
    )
    one, two, again, unknown, elsewhere = settled
    assert unknown is None and elsewhere is None
    assert one is not None and two is not None and again is not None
    assert (one.mark.duplicate, two.mark.duplicate, again.mark.duplicate) == (False, False, True)
    assert one.mark.submission.carrier_message_id == "1"
    assert [p.dlr_outcome for p in two.siblings] == ["delivered", "delivered"]
