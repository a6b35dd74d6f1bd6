"""Dead letters (`DeadLetterStore`) in portable SQL, mixed into `SqlStore` (sql.py) like the other mixins.

`INSERT ... ON CONFLICT (message_id) DO UPDATE ... WHERE` (both dialects) makes adding idempotent and lets
a later attempt run reopen an entry in one statement; conditional `UPDATE`s make replay and purge atomic
without a lock of our own (two operators replaying at once: one wins, the other gets Conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from appliance.errors import InvalidInput, NotFound
from appliance.store.dlq_base import DeadLetterFilter, DeadLetterStore, NotDeadLettered
from appliance.store.models import DeadLetter
from appliance.store.sql_messages import SqlHost

if TYPE_CHECKING:
    from appliance.store.sql import Row

_FIELDS: Final = DeadLetter.__struct_fields__
_COLUMNS: Final = ", ".join(_FIELDS)
_REOPEN: Final = ", ".join(
    f"{name} = excluded.{name}"
    for name in ("tenant_id", "dead_lettered_at", "event_id", "attempt", "reason", "status", "history")
)
_ADD: Final = (
    f"INSERT INTO dead_letters ({_COLUMNS}) VALUES ({', '.join('?' for _ in _FIELDS)}) "
    f"ON CONFLICT (message_id) DO UPDATE SET {_REOPEN} "
    "WHERE dead_letters.event_id <> excluded.event_id AND excluded.attempt > dead_letters.attempt"
)
_SELECT: Final = f"SELECT {_COLUMNS} FROM dead_letters"
_LIVE: Final = "status IN ('dead', 'replayed')"


def _row(entry: DeadLetter) -> tuple[object, ...]:
    *columns, history = msgspec.structs.astuple(entry)
    return (*columns, msgspec.json.encode(history).decode())


def _entry(row: Row) -> DeadLetter:
    values = dict(zip(_FIELDS, row, strict=True))
    values["history"] = msgspec.json.decode(values["history"], type=list[Any])
    return DeadLetter(**values)


class SqlDeadLetters(SqlHost, DeadLetterStore):
    async def add_dead_letters(self, entries: Sequence[DeadLetter]) -> int:
        if not entries:
            return 0
        async with self._session(write=True) as session:  # one statement for the batch (rows counted)
            return await session.execute_many(_ADD, [_row(entry) for entry in entries])

    async def list_dead_letters(
        self,
        *,
        tenant_id: str | None = None,
        status: DeadLetterFilter = "dead",
        since: float | None = None,
        before: float | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        where: list[str] = []
        params: list[object] = []
        if status != "all":
            where.append("status = ?")
            params.append(status)
        for clause, value in (
            ("tenant_id = ?", tenant_id),
            ("dead_lettered_at >= ?", since),
            ("dead_lettered_at < ?", before),
            ("message_id > ?", after_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"{_SELECT}{condition} ORDER BY message_id LIMIT ?"
        return [_entry(row) for row in await self._fetch_all(sql, (*params, limit))]

    async def get_dead_letter(self, message_id: str) -> DeadLetter:
        row = await self._fetch_one(f"{_SELECT} WHERE message_id = ?", (message_id,))
        if row is None:
            raise NotFound("dead letter", message_id)
        return _entry(row)

    async def mark_replayed(self, message_id: str, *, attempt_base: int, at: float) -> DeadLetter:
        async with self._session(write=True) as session:
            # An entry already holding a later run (attempt > base) means the replay just published has
            # run and died again before this mark: it is counted, and the entry stays dead.
            changed = await session.execute(
                "UPDATE dead_letters SET replay_count = replay_count + 1, last_replayed_at = ?, "
                "status = CASE WHEN attempt <= ? THEN 'replayed' ELSE status END "
                "WHERE message_id = ? AND status = 'dead'",
                (at, attempt_base, message_id),
            )
            row = await session.fetch_one(f"{_SELECT} WHERE message_id = ?", (message_id,))
        if row is None:
            raise NotFound("dead letter", message_id)
        entry = _entry(row)
        if not changed:
            raise NotDeadLettered(message_id, entry.status)
        return entry

    async def purge_dead_letters(
        self, *, message_id: str | None = None, tenant_id: str | None = None, before: float | None = None
    ) -> int:
        if message_id is None and tenant_id is None and before is None:
            raise InvalidInput("purge", "name a message id, a tenant, or an age (before)")
        where, params = [_LIVE], []
        for clause, value in (
            ("message_id = ?", message_id),
            ("tenant_id = ?", tenant_id),
            ("dead_lettered_at < ?", before),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        async with self._session(write=True) as session:
            purged = await session.execute(
                f"UPDATE dead_letters SET status = 'purged', history = '[]' WHERE {' AND '.join(where)}",
                params,
            )
        if message_id is not None and not purged:
            raise NotFound("dead letter", message_id)
        return purged
