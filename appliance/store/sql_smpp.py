"""SMPP correlation (`SmppStore`) in portable SQL, mixed into `SqlStore` (sql.py) beside `SqlCarriers`.

Like the other mixins it runs over the host's `_session()` (`SqlHost`) and reaches sql.py for types only.
Both dialects run `INSERT ... ON CONFLICT (...) DO UPDATE ... WHERE` (SQLite since 3.24), which makes
`record_submission` idempotent and lets a reused carrier id replace a stale row in one statement; and a
conditional `UPDATE` makes "the first final receipt wins" atomic without a lock of our own.

The batch forms cost a few statements per batch, not per row: `mark_dlrs` reads the parts, decides in
Python which receipts apply (`smpp_base.dlr_applies`, the same rule as the `UPDATE`'s `WHERE`, which
stays as the guard), and runs the updates as one `executemany`. Should another writer (a second node on
PostgreSQL) change a part between the read and the update, the counts disagree and the parts are read
again to tell which receipts took.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from appliance.errors import NotFound
from appliance.store.smpp_base import (
    DlrMark,
    DlrOutcome,
    DlrUpdate,
    SmppStore,
    SmppSubmission,
    best_match,
    dlr_applies,
    with_dlr,
)
from appliance.store.sql_messages import SqlHost

if TYPE_CHECKING:
    from appliance.store.sql import Row, Session

_FIELDS: Final = SmppSubmission.__struct_fields__
_COLUMNS: Final = ", ".join(_FIELDS)
_NEW: Final = [name for name in _FIELDS if not name.startswith("dlr_")]
_REPLACE: Final = ", ".join(
    [f"{name} = excluded.{name}" for name in _NEW if name not in ("carrier", "carrier_message_id")]
    + [f"{name} = NULL" for name in _FIELDS if name.startswith("dlr_")]
)
_RECORD: Final = (
    f"INSERT INTO smpp_submissions ({', '.join(_NEW)}) VALUES ({', '.join('?' for _ in _NEW)}) "
    f"ON CONFLICT (carrier, carrier_message_id) DO UPDATE SET {_REPLACE} "
    "WHERE smpp_submissions.message_id <> excluded.message_id "
    "OR smpp_submissions.attempt <> excluded.attempt OR smpp_submissions.part <> excluded.part"
)
_SET_DLR: Final = (
    "UPDATE smpp_submissions SET dlr_state = ?, dlr_outcome = ?, dlr_err = ?, dlr_at = ? "
    "WHERE carrier = ? AND carrier_message_id = ? AND (dlr_outcome IS NULL OR (dlr_outcome = 'pending'"
)
_FINAL_DLR: Final = _SET_DLR + "))"
_PENDING_DLR: Final = _SET_DLR + " AND COALESCE(dlr_state, '') <> ?))"
_ONE: Final = f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND carrier_message_id = ?"
_BY_IDS: Final = f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND carrier_message_id IN"
_BY_KEYS: Final = f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND id_key IN"
_BY_MESSAGES: Final = (
    f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND message_id IN ({{marks}}) "
    "ORDER BY part, submitted_at"
)
_KEYS_PER_QUERY: Final = 100
_CHUNK: Final = 500
"""Values per `IN (...)` of a batch query: well under SQLite's and PostgreSQL's parameter limits."""


def _submission(row: Row) -> SmppSubmission:
    return SmppSubmission(**dict(zip(_FIELDS, row, strict=True)))


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _rounds(updates: Sequence[DlrUpdate]) -> list[list[int]]:
    """Indexes of `updates` in rounds where each part appears once: its second receipt in a batch goes in
    the second round, so it is judged against the row the first one left, as one by one."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, update in enumerate(updates):
        depth = seen.get(update.carrier_message_id, 0)
        seen[update.carrier_message_id] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(index)
    return rounds


async def _parts_by_id(session: Session, carrier: str, ids: Sequence[str]) -> dict[str, SmppSubmission]:
    found: dict[str, SmppSubmission] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        sql = f"{_BY_IDS} ({', '.join('?' for _ in chunk)})"
        for row in await session.fetch_all(sql, (carrier, *chunk)):
            part = _submission(row)
            found[part.carrier_message_id] = part
    return found


def _update_params(carrier: str, update: DlrUpdate) -> tuple[object, ...]:
    params = (update.state, update.outcome, update.err, update.at, carrier, update.carrier_message_id)
    return (*params, update.state) if update.outcome == "pending" else params


class SqlSmpp(SqlHost, SmppStore):
    """Submitted parts and their receipts."""

    async def record_submission(self, submission: SmppSubmission) -> bool:
        params = tuple(getattr(submission, name) for name in _NEW)
        async with self._session(write=True) as session:
            return await session.execute(_RECORD, params) > 0

    async def record_submissions(self, submissions: Sequence[SmppSubmission]) -> None:
        if not submissions:
            return
        rows = [tuple(getattr(submission, name) for name in _NEW) for submission in submissions]
        async with self._session(write=True) as session:
            await session.execute_many(_RECORD, rows)

    async def find_submission(self, carrier: str, id_keys: Sequence[str]) -> SmppSubmission | None:
        keys = list(dict.fromkeys(id_keys))[:_KEYS_PER_QUERY]
        return best_match(await self.find_submissions(carrier, keys), keys) if keys else None

    async def find_submissions(self, carrier: str, id_keys: Sequence[str]) -> list[SmppSubmission]:
        keys = list(dict.fromkeys(id_keys))
        if not keys:
            return []
        found: list[SmppSubmission] = []
        async with self._session(write=False) as session:
            for chunk in _chunks(keys):
                sql = f"{_BY_KEYS} ({', '.join('?' for _ in chunk)})"
                found += [_submission(row) for row in await session.fetch_all(sql, (carrier, *chunk))]
        return found

    async def find_attempts(
        self, carrier: str, attempts: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], list[SmppSubmission]]:
        found: dict[tuple[str, int], list[SmppSubmission]] = {key: [] for key in attempts}
        if not found:
            return found
        async with self._session(write=False) as session:
            for chunk in _chunks(list(dict.fromkeys(message_id for message_id, _ in attempts))):
                sql = _BY_MESSAGES.format(marks=", ".join("?" for _ in chunk))
                for row in await session.fetch_all(sql, (carrier, *chunk)):
                    part = _submission(row)
                    parts = found.get((part.message_id, part.attempt))
                    if parts is not None:
                        parts.append(part)
        return found

    async def find_attempt(self, carrier: str, message_id: str, attempt: int) -> list[SmppSubmission]:
        sql = (
            f"SELECT {_COLUMNS} FROM smpp_submissions WHERE message_id = ? AND attempt = ? AND carrier = ? "
            "ORDER BY part, submitted_at"
        )
        return [_submission(row) for row in await self._fetch_all(sql, (message_id, attempt, carrier))]

    async def mark_dlr(
        self,
        carrier: str,
        carrier_message_id: str,
        *,
        state: str,
        outcome: DlrOutcome,
        err: str | None,
        at: float,
    ) -> DlrMark:
        params: tuple[object, ...] = (state, outcome, err, at, carrier, carrier_message_id)
        async with self._session(write=True) as session:
            if outcome == "pending":
                changed = await session.execute(_PENDING_DLR, (*params, state))
            else:
                changed = await session.execute(_FINAL_DLR, params)
            row = await session.fetch_one(_ONE, (carrier, carrier_message_id))
        if row is None:
            raise NotFound("smpp submission", f"{carrier}/{carrier_message_id}")
        return DlrMark(submission=_submission(row), duplicate=changed == 0)

    async def mark_dlrs(self, carrier: str, updates: Sequence[DlrUpdate]) -> list[DlrMark | None]:
        marks: list[DlrMark | None] = [None] * len(updates)
        if not updates:
            return marks
        async with self._session(write=True) as session:
            for indexes in _rounds(updates):
                batch = [updates[index] for index in indexes]
                before = await _parts_by_id(session, carrier, [u.carrier_message_id for u in batch])
                expected = {
                    u.carrier_message_id: with_dlr(part, u)
                    for u in batch
                    if (part := before.get(u.carrier_message_id)) is not None and dlr_applies(part, u)
                }
                applying = [u for u in batch if u.carrier_message_id in expected]
                pending = [_update_params(carrier, u) for u in applying if u.outcome == "pending"]
                final = [_update_params(carrier, u) for u in applying if u.outcome != "pending"]
                changed = await session.execute_many(_PENDING_DLR, pending)
                changed += await session.execute_many(_FINAL_DLR, final)
                after = {**before, **expected}
                if changed != len(applying):  # another writer got in between: read what is there now
                    after = await _parts_by_id(session, carrier, list(before))
                for index, update in zip(indexes, batch, strict=True):
                    row = after.get(update.carrier_message_id)
                    if row is not None:
                        took = expected.get(update.carrier_message_id) == row
                        marks[index] = DlrMark(submission=row, duplicate=not took)
        return marks

    async def purge_submissions(self, before: float) -> int:
        async with self._session(write=True) as session:
            return await session.execute("DELETE FROM smpp_submissions WHERE submitted_at < ?", (before,))
