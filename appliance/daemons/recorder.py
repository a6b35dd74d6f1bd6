"""The recorder daemon: projects the EVENTS stream into the store, in batches, off the hot path.

`accepted` events create message rows (with the accepted message as payload); every event becomes an
event row (with its cost: a dispatched attempt's route price) and, when it carries a state, moves the
message's state (by the rule of domain/trace.py: late events never rewind a finished message);
`dead_lettered` events also become dead-letter entries. The store's writes are idempotent, so a
redelivered batch changes nothing; a batch is acked only after its writes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from nats.aio.msg import Msg

from appliance.bus.batch_consumer import consume_batches
from appliance.bus.connection import close_bus, connect
from appliance.daemons.runtime import DaemonContext
from appliance.domain.events import EVENT_DECODER, Event, expand
from appliance.domain.trace import attempt_of, event_cost
from appliance.logs import get_logger
from appliance.store import DeadLetter, EventRecord, FullStore, MessageRecord, open_store

log = get_logger("hermes.recorder")


def project(events: list[Event]) -> tuple[list[MessageRecord], list[EventRecord]]:
    """Rows for a batch of events (pure, so it is tested without a bus)."""
    messages = [
        MessageRecord(
            id=event.message_id,
            tenant_id=event.tenant_id,
            origin=str(event.message.get("origin", "rest")),
            state=event.state or "created",
            created_at=event.at,
            updated_at=event.at,
            estimated_cost=float(event.message.get("estimated_cost", 0.0)),
            idempotency_key=event.message.get("idempotency_key"),
            payload=event.message,
        )
        for event in events
        if event.kind == "accepted" and event.message is not None
    ]
    rows = [
        EventRecord(
            id=event.id,
            message_id=event.message_id,
            tenant_id=event.tenant_id,
            kind=event.kind,
            at=event.at,
            state=event.state,
            cost=event_cost(event.kind, event.data),
            data=event.data,
        )
        for event in events
    ]
    return messages, rows


def _reason(data: dict[str, Any], history: list[Any]) -> str:
    """Why the message was dead-lettered: the event's reason, else the last reason in its history."""
    for source in (data, *reversed([h for h in history if isinstance(h, dict)])):
        reason = source.get("reason")
        if reason:
            return str(reason)
    return "all channels failed"


def dead_letters(events: list[Event]) -> list[DeadLetter]:
    """Dead-letter entries for the `dead_lettered` events of a batch (pure, like `project`)."""
    entries = []
    for event in events:
        if event.kind != "dead_lettered":
            continue
        history = event.data.get("history")
        history = history if isinstance(history, list) else []
        attempts = [a for h in history if isinstance(h, dict) and (a := attempt_of(h)) is not None]
        entries.append(
            DeadLetter(
                message_id=event.message_id,
                tenant_id=event.tenant_id,
                dead_lettered_at=event.at,
                event_id=event.id,
                attempt=max([attempt_of(event.data) or 0, *attempts]),
                reason=_reason(event.data, history),
                history=history,
            )
        )
    return entries


async def record_batch(store: FullStore, batch: list[Msg]) -> None:
    events: list[Event] = []
    for message in batch:
        try:
            events.extend(expand(EVENT_DECODER.decode(message.data)))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "malformed event skipped",
                action="recorder.malformed",
                subject=message.subject,
                error=str(exc),
            )
    messages, rows = project(events)
    await store.record(messages, rows)
    entries = dead_letters(events)
    if entries:
        await store.add_dead_letters(entries)


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="recorder")
    try:
        ctx.ready("recording EVENTS into the store")

        async def handle(batch: list[Msg]) -> None:
            await record_batch(store, batch)

        await consume_batches(
            nats,
            stream="EVENTS",
            durable="recorder",
            subject="evt.>",
            handler=handle,
            stopping=ctx.stopping,
        )
    finally:
        await close_bus(nats)
        await store.close()
