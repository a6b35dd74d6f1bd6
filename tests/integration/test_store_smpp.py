"""The `SmppStore` contract (submissions and their receipts), run against SQLite and PostgreSQL.

The `smpp` fixture is conftest's `store`, on each backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.config.schema import StoreSection
from appliance.domain.dlr import id_candidates, id_key
from appliance.errors import NotFound
from appliance.store import FullStore, open_store
from appliance.store.smpp_base import DlrOutcome, SmppSubmission

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
