"""Messages and dead letters for operators: show, trace, and the DLQ (list, show, replay, purge).

Callers: the admin HTTP handlers (message_routes.py), one call per request, for `hermesctl message ...`.
The timeline itself is computed by `domain.trace.build_trace`; this class only fetches, orders the
steps of a replay (check → republish → mark → audit) and audits what operators change.

A replay republishes the stored accepted message on `msg.accepted.<tenant>` with `attempt_base` = the
highest attempt number the message has used (so the cascade's new attempts and their ids never collide
with the old ones) and `Nats-Msg-Id` `<id>:replay:<attempt_base>` (so a retried replay of the same run is
deduplicated by JetStream), and only then marks the entry replayed: a failed publish leaves it dead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from appliance.domain.events import Event
from appliance.domain.message import Message
from appliance.domain.trace import build_trace, highest_attempt
from appliance.errors import InvalidInput, NotFound
from appliance.store import AuditEntry, DeadLetter, DeadLetterFilter, EventRecord, FullStore, NotDeadLettered

# (tenant_id, message_id, attempt_base, encoded message) -> True when JetStream saw a duplicate.
Republish = Callable[[str, str, int, bytes], Awaitable[bool]]
DLQ_STATUSES: tuple[DeadLetterFilter, ...] = ("dead", "replayed", "purged", "all")


def _event(record: EventRecord) -> Event:
    return Event(
        kind=record.kind,
        id=record.id,
        message_id=record.message_id,
        tenant_id=record.tenant_id,
        at=record.at,
        state=record.state,
        data=record.data,
    )


def _event_body(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": record.at,
        "kind": record.kind,
        "state": record.state,
        "cost": record.cost,
        "data": record.data,
    }


def dead_letter_body(entry: DeadLetter, *, history: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(entry)
    if not history:
        body.pop("history")
    return body


class MessageService:
    def __init__(self, store: FullStore, *, republish: Republish) -> None:
        self._store = store
        self._republish = republish

    async def _audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        entry = AuditEntry(
            id=None, at=time.time(), actor=actor, action=action, target=target, details=details
        )
        await self._store.append_audit(entry)

    async def _events(self, tenant_id: str, message_id: str) -> list[EventRecord]:
        return await self._store.list_events(tenant_id, message_id)

    async def show(self, message_id: str) -> dict[str, Any]:
        """The message as stored, its channels, current state, events, and its dead letter if any."""
        record = await self._store.find_message(message_id)
        events = await self._events(record.tenant_id, message_id)
        try:
            entry: dict[str, Any] | None = dead_letter_body(
                await self._store.get_dead_letter(message_id), history=False
            )
        except NotFound:
            entry = None
        payload = record.payload
        return {
            "message_id": record.id,
            "tenant_id": record.tenant_id,
            "origin": record.origin,
            "state": record.state,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "estimated_cost": record.estimated_cost,
            "cost": record.cost,
            "channels": payload.get("channels", []),
            "sender": payload.get("sender"),
            "metadata": payload.get("metadata", {}),
            "notify_all": payload.get("notify_all", False),
            "attempt_base": payload.get("attempt_base", 0),
            "events": [_event_body(e) for e in events],
            "dead_letter": entry,
        }

    async def trace(self, message_id: str) -> dict[str, Any]:
        """The timeline of states, attempts, routes, costs and events (domain.trace)."""
        record = await self._store.find_message(message_id)
        events = [_event(e) for e in await self._events(record.tenant_id, message_id)]
        trace = build_trace(record.id, record.tenant_id, events)
        body: dict[str, Any] = msgspec.to_builtins(trace)
        body["stored_state"] = record.state
        return body

    async def _tenant_id(self, ref: str) -> str:
        """A tenant name or id; an unknown ref is taken as the id of a deleted tenant (its dead letters
        outlive it)."""
        try:
            return (await self._store.get_tenant(ref)).id
        except NotFound:
            return ref

    async def dead_letters(
        self,
        *,
        tenant: str | None,
        status: str,
        since: float | None,
        before: float | None,
        after: str | None,
        limit: int,
    ) -> dict[str, Any]:
        if status not in DLQ_STATUSES:
            raise InvalidInput("status", f"one of {', '.join(DLQ_STATUSES)}")
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit", "must be between 1 and 10000")
        entries = await self._store.list_dead_letters(
            tenant_id=await self._tenant_id(tenant) if tenant else None,
            status=status,  # checked against DLQ_STATUSES above
            since=since,
            before=before,
            after_id=after,
            limit=limit,
        )
        return {
            "entries": [dead_letter_body(e, history=False) for e in entries],
            "next": entries[-1].message_id if len(entries) == limit else None,
        }

    async def dead_letter(self, message_id: str) -> dict[str, Any]:
        entry = await self._store.get_dead_letter(message_id)
        body = dead_letter_body(entry)
        try:
            record = await self._store.find_message(message_id)
            body["message"] = {
                "state": record.state,
                "origin": record.origin,
                "created_at": record.created_at,
                "channels": record.payload.get("channels", []),
                "cost": record.cost,
            }
        except NotFound:
            body["message"] = None
        return body

    async def replay(self, actor: str, message_id: str) -> dict[str, Any]:
        """Republish a dead-lettered message (see the module docstring); NotDeadLettered otherwise."""
        entry = await self._store.get_dead_letter(message_id)
        if entry.status != "dead":
            raise NotDeadLettered(message_id, entry.status)
        try:
            record = await self._store.find_message(message_id)
        except NotFound:
            raise InvalidInput(
                "message_id", f"message {message_id} is dead-lettered but not stored; it cannot be replayed"
            ) from None
        events = await self._events(record.tenant_id, message_id)
        attempt_base = max(highest_attempt(_event(e) for e in events), entry.attempt)
        try:
            message = msgspec.convert(record.payload, Message)
        except msgspec.ValidationError as exc:
            raise InvalidInput("payload", f"the stored message cannot be republished: {exc}") from None
        encoded = msgspec.json.encode(msgspec.structs.replace(message, attempt_base=attempt_base))
        duplicate = await self._republish(record.tenant_id, message_id, attempt_base, encoded)
        marked = await self._store.mark_replayed(message_id, attempt_base=attempt_base, at=time.time())
        await self._audit(
            actor,
            "message.dlq.replay",
            message_id,
            tenant_id=record.tenant_id,
            attempt_base=attempt_base,
            duplicate=duplicate,
        )
        return {
            **dead_letter_body(marked, history=False),
            "attempt_base": attempt_base,
            "nats_msg_id": f"{message_id}:replay:{attempt_base}",
            "duplicate": duplicate,
        }

    async def purge(
        self, actor: str, *, message_id: str | None, tenant: str | None, older_than_s: float | None
    ) -> dict[str, Any]:
        if older_than_s is not None and older_than_s < 0:
            raise InvalidInput("older_than_s", "must be 0 or more")
        if message_id is None and tenant is None:
            raise InvalidInput("purge", "name a message id or a tenant")
        tenant_id = await self._tenant_id(tenant) if tenant else None
        before = time.time() - older_than_s if older_than_s is not None else None
        purged = await self._store.purge_dead_letters(
            message_id=message_id, tenant_id=tenant_id, before=before
        )
        details: dict[str, Any] = {"purged": purged}
        if tenant_id:
            details["tenant_id"] = tenant_id
        if older_than_s is not None:
            details["older_than_s"] = older_than_s
        await self._audit(actor, "message.dlq.purge", message_id or tenant_id or "*", **details)
        return {"purged": purged}
