"""The recorder daemon: projects the EVENTS stream into the store, in batches, off the hot path.

`accepted` events create message rows (with the accepted message as payload); every event becomes an
event row and, when it carries a state, moves the message's state. The store's `record` is
idempotent, so a redelivered batch changes nothing; a batch is acked only after its transaction.
"""

from __future__ import annotations

import msgspec
from nats.aio.msg import Msg

from appliance.bus.connection import close_bus, connect
from appliance.bus.consumer import consume
from appliance.daemons.runtime import DaemonContext
from appliance.domain.events import EVENT_DECODER, Event
from appliance.logs import get_logger
from appliance.store import EventRecord, FullStore, MessageRecord, open_store

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
            data=event.data,
        )
        for event in events
    ]
    return messages, rows


async def record_batch(store: FullStore, batch: list[Msg]) -> None:
    events: list[Event] = []
    for message in batch:
        try:
            events.append(EVENT_DECODER.decode(message.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "malformed event skipped",
                action="recorder.malformed",
                subject=message.subject,
                error=str(exc),
            )
    messages, rows = project(events)
    await store.record(messages, rows)


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="recorder")
    try:
        ctx.ready("recording EVENTS into the store")

        async def handle(batch: list[Msg]) -> None:
            await record_batch(store, batch)

        await consume(
            nats.jetstream(),
            stream="EVENTS",
            durable="recorder",
            subject="evt.>",
            handler=handle,
            stopping=ctx.stopping,
        )
    finally:
        await close_bus(nats)
        await store.close()
