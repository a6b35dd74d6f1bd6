"""Message data, suppression lists and webhooks (`MessageStore`, `ComplianceStore`, `WebhookStore`) in
portable SQL, mixed into `SqlStore` (sql.py) beside `SqlAccounts` (sql_accounts.py).

A mixin runs its SQL over the host's `_session()` (see `SqlHost`) and reaches sql.py for types only: sql.py
imports this module to build `SqlStore`, so a runtime import back would be a cycle. For the same reason a
missing tenant is found by `require_tenant` inside the transaction rather than by catching sql.py's
foreign-key error. Every insert that may meet an existing row says `ON CONFLICT DO NOTHING`, which both
dialects run; where it matters which rows were new, a multi-row `INSERT ... RETURNING` tells.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from appliance.errors import InvalidInput, NotFound
from appliance.store.base import ComplianceStore, MessageStore, WebhookStore
from appliance.store.models import EventRecord, MessageRecord, Suppression, Webhook, WebhookDelivery

if TYPE_CHECKING:
    from appliance.store.sql import Params, Row, Session

# Parameters per multi-row statement: well under SQLite's bound (32766 since 3.32) and PostgreSQL's (65535).
_BATCH_PARAMS = 4000
_MESSAGE = MessageRecord.__struct_fields__
_EVENT = EventRecord.__struct_fields__
_SUPPRESSION = ", ".join(Suppression.__struct_fields__)
_WEBHOOK = ", ".join(Webhook.__struct_fields__)
_DELIVERY = WebhookDelivery.__struct_fields__
# The states a webhook delivery ends in (not message states: those are in domain/states.py).
_TERMINAL = ("delivered", "failed")
_S = TypeVar("_S", bound=msgspec.Struct)
# Event kinds after which only a later attempt (a DLQ replay) moves a message (domain.events.FINAL_KINDS;
# spelled out here because the store does not import the domain).
_FINAL_KINDS = frozenset({"delivered", "failed", "dead_lettered"})
# One state-moving event: (at, event id, message id, tenant id, state, is final, attempt or None).
_Move = tuple[float, str, str, str, str, bool, int | None]
# Applied in (at, event id) order, one statement each, so every guard sees the state the previous one left:
# - time: an event older than the message's current state does not rewind it (updated_at <= at);
# - finality: after a final event of attempt N, only events of an attempt > N move it (a late DLR or
#   timeout never reopens a finished message; a replay, whose attempts are numbered above N, does).
_APPLY_MOVE = (
    "UPDATE messages SET state = ?, updated_at = ?, "
    "final_attempt = CASE WHEN ? = 1 THEN ? ELSE final_attempt END "
    "WHERE id = ? AND tenant_id = ? AND updated_at <= ? AND (final_attempt IS NULL OR final_attempt < ?)"
)
# messages.cost = the sum of its events' costs, for messages that have any.
_SUM_COST = (
    "UPDATE messages SET cost = (SELECT SUM(e.cost) FROM events e WHERE e.tenant_id = messages.tenant_id "
    "AND e.message_id = messages.id AND e.cost IS NOT NULL) WHERE id = ? AND tenant_id = ? AND EXISTS "
    "(SELECT 1 FROM events e WHERE e.tenant_id = messages.tenant_id AND e.message_id = messages.id "
    "AND e.cost IS NOT NULL)"
)
# The coarse groups of domain/states.py as SQL (`_` escaped: it is a LIKE wildcard).
_GROUPS = {
    "delivered": ("state LIKE ? ESCAPE '\\'", "%\\_delivered"),
    "failed": ("state = ?", "all_failed"),
    "pending": ("state <> 'all_failed' AND state NOT LIKE ? ESCAPE '\\'", "%\\_delivered"),
}


class SqlHost(abc.ABC):
    """What a mixin needs from the class it is mixed into (`SqlStore` provides all of it)."""

    @abc.abstractmethod
    def _session(self, *, write: bool) -> AbstractAsyncContextManager[Session]:
        """A connection; with write=True also a transaction, committed unless the block raises."""

    @abc.abstractmethod
    async def _fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """One row of a query run in its own read session."""

    @abc.abstractmethod
    async def _fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a query run in its own read session."""


async def require_tenant(session: Session, tenant_id: str) -> None:
    """NotFound("tenant", id) unless the tenant exists."""
    if await session.fetch_one("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)) is None:
        raise NotFound("tenant", tenant_id)


def _chunks(items: Sequence[Any], width: int) -> Iterable[Sequence[Any]]:
    """Slices of `items` small enough that `width` parameters each stay within one statement's bound."""
    size = max(1, _BATCH_PARAMS // max(1, width))
    return (items[start : start + size] for start in range(0, len(items), size))


def _marks(count: int) -> str:
    return "(" + ", ".join(["?"] * count) + ")"


async def _insert_new(session: Session, table: str, columns: Sequence[str], rows: Sequence[Row]) -> set[str]:
    """Insert the rows, skipping those whose key exists; return the ids (first column) of the new ones."""
    new: set[str] = set()
    for chunk in _chunks(rows, len(columns)):
        values = ", ".join([_marks(len(columns))] * len(chunk))
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "
            f"ON CONFLICT DO NOTHING RETURNING {columns[0]}"
        )
        new.update(str(row[0]) for row in await session.fetch_all(sql, [v for row in chunk for v in row]))
    return new


def _make(model: type[_S], row: Row) -> _S:
    return model(**dict(zip(model.__struct_fields__, row, strict=True)))


def _with_json(obj: msgspec.Struct) -> Row:
    """The struct as a row, its last field (payload, data: a dict) encoded as JSON text."""
    *columns, document = msgspec.structs.astuple(obj)
    return (*columns, msgspec.json.encode(document).decode())


def _from_json(model: type[_S], row: Row) -> _S:
    """The inverse of `_with_json`."""
    return _make(model, (*row[:-1], msgspec.json.decode(row[-1], type=dict[str, Any])))


def _attempt(data: dict[str, Any]) -> int | None:
    value = data.get("attempt")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _move(
    message_id: str, tenant_id: str, event_id: str, at: float, state: str, kind: str, attempt: int | None
) -> _Move:
    return (at, event_id, message_id, tenant_id, state, kind in _FINAL_KINDS, attempt)


async def _moves_of_stored_events(session: Session, messages: Sequence[MessageRecord]) -> list[_Move]:
    """The stored state-moving events of new messages. A new message takes the state of all its events,
    including any recorded before it (events travel apart from their message, so nothing guarantees the
    order): as if they had come after it. Read inside the transaction, so this batch's events count too."""
    by_tenant: dict[str, set[str]] = {}
    for m in messages:
        by_tenant.setdefault(m.tenant_id, set()).add(m.id)
    moves: list[_Move] = []
    for tenant_id, ids in by_tenant.items():
        for chunk in _chunks(sorted(ids), 1):
            rows = await session.fetch_all(
                "SELECT message_id, at, id, state, kind, data FROM events WHERE tenant_id = ? "
                f"AND message_id IN {_marks(len(chunk))} AND state IS NOT NULL",
                (tenant_id, *chunk),
            )
            for message_id, at, event_id, state, kind, data in rows:
                attempt = _attempt(msgspec.json.decode(data, type=dict[str, Any]))
                moves.append(_move(message_id, tenant_id, event_id, at, state, kind, attempt))
    return moves


class SqlMessages(SqlHost, MessageStore, ComplianceStore, WebhookStore):
    """Messages with their events, suppression lists, webhooks and their deliveries."""

    # messages

    async def record(self, messages: Sequence[MessageRecord], events: Sequence[EventRecord]) -> None:
        message_rows = [_with_json(m) for m in messages]
        event_rows = [_with_json(e) for e in events]
        async with self._session(write=True) as session:
            new_messages = await _insert_new(session, "messages", _MESSAGE, message_rows)
            new_events = await _insert_new(session, "events", _EVENT, event_rows)
            moves = [
                _move(e.message_id, e.tenant_id, e.id, e.at, e.state, e.kind, _attempt(e.data))
                for e in events
                if e.state is not None and e.id in new_events and e.message_id not in new_messages
            ]
            moves += await _moves_of_stored_events(session, [m for m in messages if m.id in new_messages])
            await session.execute_many(
                _APPLY_MOVE,
                [
                    (state, at, int(final), attempt or 0, mid, tid, at, -1 if attempt is None else attempt)
                    for at, _, mid, tid, state, final, attempt in sorted(set(moves))
                ],
            )  # fmt: skip
            costed = {
                (e.message_id, e.tenant_id) for e in events if e.cost is not None and e.id in new_events
            }
            costed |= {(m.id, m.tenant_id) for m in messages if m.id in new_messages}
            await session.execute_many(_SUM_COST, sorted(costed))

    async def find_message(self, message_id: str) -> MessageRecord:
        row = await self._fetch_one(f"SELECT {', '.join(_MESSAGE)} FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise NotFound("message", message_id)
        return _from_json(MessageRecord, row)

    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord:
        row = await self._fetch_one(
            f"SELECT {', '.join(_MESSAGE)} FROM messages WHERE id = ? AND tenant_id = ?",
            (message_id, tenant_id),
        )
        if row is None:
            raise NotFound("message", message_id)
        return _from_json(MessageRecord, row)

    async def list_messages(
        self, tenant_id: str, *, state: str | None = None, since: float | None = None,
        after_id: str | None = None, limit: int = 100,
    ) -> list[MessageRecord]:  # fmt: skip
        where: list[str] = ["tenant_id = ?"]
        params: list[object] = [tenant_id]
        clause_of_state = _GROUPS.get(state or "", ("state = ?", state))
        for clause, value in (clause_of_state, ("created_at >= ?", since), ("id > ?", after_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {', '.join(_MESSAGE)} FROM messages WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        return [_from_json(MessageRecord, row) for row in await self._fetch_all(sql, (*params, limit))]

    async def list_events(self, tenant_id: str, message_id: str) -> list[EventRecord]:
        sql = f"SELECT {', '.join(_EVENT)} FROM events WHERE tenant_id = ? AND message_id = ? ORDER BY at, id"
        return [_from_json(EventRecord, row) for row in await self._fetch_all(sql, (tenant_id, message_id))]

    # suppressions

    async def add_suppression(self, entry: Suppression) -> None:
        async with self._session(write=True) as session:
            await session.execute(
                f"INSERT INTO suppressions ({_SUPPRESSION}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                msgspec.structs.astuple(entry),
            )

    async def remove_suppression(self, tenant_id: str, address: str) -> None:
        async with self._session(write=True) as session:
            sql = "DELETE FROM suppressions WHERE tenant_id = ? AND address = ?"
            if not await session.execute(sql, (tenant_id, address)):
                raise NotFound("suppression", address)

    async def list_suppressions(
        self, tenant_id: str, *, after: str | None = None, limit: int = 1000
    ) -> list[Suppression]:
        cursor, params = (
            ("AND address > ? ", (tenant_id, after, limit)) if after is not None else ("", (tenant_id, limit))
        )
        sql = f"SELECT {_SUPPRESSION} FROM suppressions WHERE tenant_id = ? {cursor}ORDER BY address LIMIT ?"
        return [_make(Suppression, row) for row in await self._fetch_all(sql, params)]

    async def suppressed_addresses(self, tenant_id: str) -> set[str]:
        rows = await self._fetch_all("SELECT address FROM suppressions WHERE tenant_id = ?", (tenant_id,))
        return {str(row[0]) for row in rows}

    # webhooks

    async def set_webhook(self, webhook: Webhook) -> None:
        async with self._session(write=True) as session:
            await require_tenant(session, webhook.tenant_id)
            await session.execute(
                f"INSERT INTO webhooks ({_WEBHOOK}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE "
                "SET url = excluded.url, secret = excluded.secret, events = excluded.events, "
                "created_at = excluded.created_at",
                msgspec.structs.astuple(webhook),
            )

    async def get_webhook(self, tenant_id: str) -> Webhook | None:
        row = await self._fetch_one(f"SELECT {_WEBHOOK} FROM webhooks WHERE tenant_id = ?", (tenant_id,))
        return None if row is None else _make(Webhook, row)

    async def list_webhooks(self) -> list[Webhook]:
        rows = await self._fetch_all(f"SELECT {_WEBHOOK} FROM webhooks ORDER BY tenant_id", ())
        return [_make(Webhook, row) for row in rows]

    async def delete_webhook(self, tenant_id: str) -> None:
        async with self._session(write=True) as session:
            if not await session.execute("DELETE FROM webhooks WHERE tenant_id = ?", (tenant_id,)):
                raise NotFound("webhook", tenant_id)

    async def enqueue_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> int:
        rows = [msgspec.structs.astuple(d) for d in deliveries]
        async with self._session(write=True) as session:
            return len(await _insert_new(session, "webhook_deliveries", _DELIVERY, rows))

    async def due_deliveries(self, now: float, *, limit: int = 100) -> list[WebhookDelivery]:
        sql = (
            f"SELECT {', '.join(_DELIVERY)} FROM webhook_deliveries "
            "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?"
        )
        return [_make(WebhookDelivery, row) for row in await self._fetch_all(sql, (now, limit))]

    async def finish_delivery(
        self, delivery_id: str, *, state: str, status: int | None, error: str | None, at: float
    ) -> None:
        if state not in _TERMINAL:
            raise InvalidInput("state", f"{state!r} is not one of {', '.join(_TERMINAL)}")
        await self._update_pending(delivery_id, "state = ?, next_at = ?", (state, at), status, error)

    async def retry_delivery(
        self, delivery_id: str, *, next_at: float, status: int | None, error: str | None
    ) -> None:
        await self._update_pending(delivery_id, "next_at = ?", (next_at,), status, error)

    async def list_deliveries(self, tenant_id: str, *, limit: int = 100) -> list[WebhookDelivery]:
        sql = (
            f"SELECT {', '.join(_DELIVERY)} FROM webhook_deliveries WHERE tenant_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        return [_make(WebhookDelivery, row) for row in await self._fetch_all(sql, (tenant_id, limit))]

    async def _update_pending(
        self, delivery_id: str, assign: str, values: Params, status: int | None, error: str | None
    ) -> None:
        """Count an attempt of a pending delivery and apply `assign`; a terminal one is left as it is (so a
        repeated finish counts once). NotFound("webhook delivery", id)."""
        async with self._session(write=True) as session:
            sql = (
                f"UPDATE webhook_deliveries SET {assign}, attempts = attempts + 1, last_status = ?, "
                "last_error = ? WHERE id = ? AND state = 'pending'"
            )
            if await session.execute(sql, (*values, status, error, delivery_id)):
                return
            if (
                await session.fetch_one("SELECT 1 FROM webhook_deliveries WHERE id = ?", (delivery_id,))
                is None
            ):
                raise NotFound("webhook delivery", delivery_id)
