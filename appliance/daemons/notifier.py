"""The notifier daemon: tenant webhooks, signed, retried with backoff for 24 h, one tenant never
blocking another.

Two loops. The intake loop consumes EVENTS and, for tenants with a webhook, turns every final
outcome (or every event, if the tenant asked) into a pending delivery in the store, acking the
events once stored. Most events concern no webhook and are skipped on their subject alone, so the
intake's cost is mostly the bus's: it gathers events for up to `_LINGER_S` into one batch and one
ack (`bus.batch_consumer`), which adds at most that much to a webhook's latency. The delivery loop
POSTs due deliveries concurrently: at most `_PER_TENANT` in flight per tenant and `_IN_FLIGHT` in
all, each with a timeout, so a slow or dead endpoint only delays its own tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

import httpx
import msgspec
from nats.aio.msg import Msg

from appliance.bus.batch_consumer import consume_batches
from appliance.bus.connection import close_bus, connect
from appliance.bus.streams import REGISTRY_CHANGED
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


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="notifier")
    async with httpx.AsyncClient(follow_redirects=False) as http:
        notifier = Notifier(store, http)
        try:

            async def on_change(msg: Msg) -> None:
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    change = msgspec.json.decode(msg.data, type=_Change)
                    if change.kind in ("webhook", "tenant"):
                        notifier.forget(change.id)

            await nats.subscribe(REGISTRY_CHANGED, cb=on_change)
            ctx.ready("webhooks")
            async with asyncio.TaskGroup() as group:
                group.create_task(notifier.run_deliveries(ctx.stopping))
                group.create_task(
                    consume_batches(
                        nats,
                        stream="EVENTS",
                        durable="notifier",
                        subject="evt.>",
                        handler=notifier.enqueue,
                        stopping=ctx.stopping,
                        linger_s=_LINGER_S,
                    )
                )
        finally:
            await close_bus(nats)
            await store.close()
