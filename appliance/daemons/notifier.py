"""The notifier daemon: tenant webhooks, signed, retried with backoff for 24 h, one tenant never
blocking another.

Two loops. The intake loop consumes EVENTS and, for tenants with a webhook, turns every final
outcome (or every event, if the tenant asked) into a pending delivery in the store, acking the
events once stored. Most events concern no webhook, so nats-server does not even send them: the
consumer's filter subjects name just what the webhooks want (`filters_for`), and are set again when
admin announces a webhook change (and every `_REFILTER_S`, in case an announcement was lost); a
webhook takes the events published from then on. The intake gathers events for up to `_LINGER_S`
into one batch and one ack (`bus.batch_consumer`), which adds at most that much to a webhook's
latency. The delivery loop POSTs due deliveries concurrently: at most `_PER_TENANT` in flight per
tenant and `_IN_FLIGHT` in all, each with a timeout, so a slow or dead endpoint only delays its own
tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable

import httpx
import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.batch_consumer import batch_consumer_config, consume_batches
from appliance.bus.connection import close_bus, connect
from appliance.bus.streams import REGISTRY_CHANGED, event_subject
from appliance.daemons.runtime import DaemonContext
from appliance.domain import webhooks
from appliance.domain.events import EVENT_DECODER, FINAL_KINDS, Event, expand
from appliance.logs import get_logger
from appliance.store import FullStore, Webhook, WebhookDelivery, open_store

log = get_logger("hermes.notifier")
_PER_TENANT = 4
_IN_FLIGHT = 64
_TIMEOUT_S = 10.0
_POLL_S = 0.5
_LINGER_S = 0.05
_REFILTER_S = 30.0
DURABLE = "notifier"
NO_WEBHOOK = "evt.__no_webhook__.none"
"""The filter while no tenant has a webhook: no event has this subject (tenant ids are `tn_...`)."""


def filters_for(hooks: Iterable[Webhook]) -> list[str]:
    """The EVENTS subjects the webhooks want: every event of an `all` tenant, else its final outcomes.
    One tenant's subjects never overlap another's, as JetStream requires of filter subjects."""
    subjects: list[str] = []
    for hook in sorted(hooks, key=lambda h: h.tenant_id):
        if hook.events == "all":
            subjects.append(event_subject(hook.tenant_id, ">"))
        else:
            subjects += [event_subject(hook.tenant_id, kind) for kind in sorted(FINAL_KINDS)]
    return subjects or [NO_WEBHOOK]


class _Body(msgspec.Struct):
    event_id: str
    kind: str
    message_id: str
    tenant_id: str
    at: float
    state: str | None
    data: dict[str, object]


class Notifier:
    def __init__(self, store: FullStore, http: httpx.AsyncClient) -> None:
        self._store = store
        self._http = http
        self._hooks: dict[str, Webhook | None] = {}
        self._in_flight: set[str] = set()
        self._per_tenant: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(_PER_TENANT))
        self._all = asyncio.Semaphore(_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()

    def forget(self, tenant_id: str) -> None:
        self._hooks.pop(tenant_id, None)

    async def _hook(self, tenant_id: str) -> Webhook | None:
        if tenant_id not in self._hooks:
            self._hooks[tenant_id] = await self._store.get_webhook(tenant_id)
        return self._hooks[tenant_id]

    async def enqueue(self, batch: list[Msg]) -> None:
        deliveries = []
        now = time.time()
        for message in batch:
            _, _, rest = message.subject.partition(".")
            tenant_id, _, kind = rest.partition(".")
            hook = await self._hook(tenant_id)
            if hook is None or (hook.events == "final" and kind not in FINAL_KINDS):
                continue  # decided from the subject alone: most events concern no webhook
            try:
                published: Event = EVENT_DECODER.decode(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("malformed event skipped", action="notifier.malformed", subject=message.subject)
                continue
            for event in expand(published):
                body = msgspec.json.encode(
                    _Body(
                        event.id,
                        event.kind,
                        event.message_id,
                        event.tenant_id,
                        event.at,
                        event.state,
                        event.data,
                    )
                ).decode()
                deliveries.append(
                    WebhookDelivery(
                        id=f"{event.id}@{hook.created_at:.6f}",
                        tenant_id=event.tenant_id,
                        url=hook.url,
                        body=body,
                        created_at=now,
                        next_at=now,
                    )
                )
        if deliveries and await self._store.enqueue_deliveries(deliveries):
            self.wake.set()

    async def deliver_due(self) -> int:
        """Start a POST for every due delivery not already in flight; return how many started."""
        due = await self._store.due_deliveries(time.time(), limit=_IN_FLIGHT * 2)
        started = 0
        for delivery in due:
            if delivery.id in self._in_flight:
                continue
            self._in_flight.add(delivery.id)
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        try:
            async with self._per_tenant[delivery.tenant_id], self._all:
                hook = await self._hook(delivery.tenant_id)
                if hook is None:
                    await self._store.finish_delivery(
                        delivery.id, state="failed", status=None, error="webhook removed", at=time.time()
                    )
                    return
                status, error = await self._post(hook.secret, delivery)
                now = time.time()
                if status is not None and webhooks.is_success(status):
                    await self._store.finish_delivery(
                        delivery.id, state="delivered", status=status, error=None, at=now
                    )
                    return
                next_at = webhooks.next_attempt(delivery.attempts + 1, delivery.created_at, now)
                if next_at is None:
                    log.warning(
                        "webhook given up after 24 h",
                        action="webhook.failed",
                        tenant_id=delivery.tenant_id,
                        delivery=delivery.id,
                        status=status,
                        error=error,
                    )
                    await self._store.finish_delivery(
                        delivery.id, state="failed", status=status, error=error, at=now
                    )
                else:
                    await self._store.retry_delivery(delivery.id, next_at=next_at, status=status, error=error)
        except Exception as exc:  # the store failed: the delivery stays due and is retried
            log.error("webhook bookkeeping failed", action="webhook.store_failed", error=str(exc))
        finally:
            self._in_flight.discard(delivery.id)

    async def _post(self, secret: str, delivery: WebhookDelivery) -> tuple[int | None, str | None]:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            webhooks.SIGNATURE_HEADER: webhooks.sign(secret, timestamp, delivery.body),
            webhooks.EVENT_ID_HEADER: delivery.id,
            "User-Agent": "Hermes-Webhooks/1",
        }
        try:
            response = await self._http.post(
                delivery.url, content=delivery.body.encode(), headers=headers, timeout=_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        return response.status_code, None if webhooks.is_success(response.status_code) else response.text[
            :300
        ]

    async def run_deliveries(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.deliver_due()
            except Exception as exc:
                log.error("reading due webhooks failed", action="webhook.poll_failed", error=str(exc))
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await self.wake.wait()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_TIMEOUT_S)


class _Change(msgspec.Struct):
    kind: str
    id: str


class Filters:
    """Keeps the notifier's consumer filtered to what the webhooks in the store want."""

    def __init__(self, nats: NatsClient, store: FullStore) -> None:
        self._nats = nats
        self._store = store
        self.current: list[str] = []
        self._lock = asyncio.Lock()

    async def refresh(self) -> list[str]:
        async with self._lock:
            wanted = filters_for(await self._store.list_webhooks())
            if wanted != self.current:
                # create-or-update: the consumer keeps its position, only its subjects change
                await self._nats.jetstream().add_consumer("EVENTS", batch_consumer_config(DURABLE, wanted))
                self.current = wanted
            return wanted

    async def run(self, stopping: asyncio.Event, changed: asyncio.Event) -> None:
        """Set the filters again on every announced change, and every `_REFILTER_S` regardless."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REFILTER_S):
                    await _first(stopping, changed)
            changed.clear()
            if stopping.is_set():
                return
            try:
                await self.refresh()
            except Exception as exc:  # the store or the bus is down: the old filters stay, try again
                log.error("webhook filters not updated", action="notifier.filters_failed", error=repr(exc))


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="notifier")
    async with httpx.AsyncClient(follow_redirects=False) as http:
        notifier = Notifier(store, http)
        try:
            filters = Filters(nats, store)
            changed = asyncio.Event()

            async def on_change(msg: Msg) -> None:
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    change = msgspec.json.decode(msg.data, type=_Change)
                    if change.kind in ("webhook", "tenant"):
                        notifier.forget(change.id)
                        changed.set()

            await nats.subscribe(REGISTRY_CHANGED, cb=on_change)
            subjects = await filters.refresh()
            ctx.ready("webhooks")
            async with asyncio.TaskGroup() as group:
                group.create_task(notifier.run_deliveries(ctx.stopping))
                group.create_task(filters.run(ctx.stopping, changed))
                group.create_task(
                    consume_batches(
                        nats,
                        stream="EVENTS",
                        durable=DURABLE,
                        subject=subjects,
                        handler=notifier.enqueue,
                        stopping=ctx.stopping,
                        linger_s=_LINGER_S,
                    )
                )
        finally:
            await close_bus(nats)
            await store.close()
