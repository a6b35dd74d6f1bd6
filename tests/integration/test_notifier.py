"""Tenant webhooks end to end: events on a real nats-server, a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.batch_consumer import consume_batches
from appliance.bus.streams import ensure_streams
from appliance.config.schema import StoreSection
from appliance.daemons.notifier import DURABLE, NO_WEBHOOK, Filters, Notifier, filters_for
from appliance.domain import webhooks
from appliance.store import FullStore, Tenant, Webhook, open_store


class Receiver:
    """A minimal HTTP/1.1 server that answers with the statuses it is told, and records requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], str]] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        }
        body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
        self.requests.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def setup(tmp_path: Path, nats_server: str) -> AsyncIterator[tuple[FullStore, NatsClient]]:
    store = await open_store(StoreSection(backend="sqlite", path=str(tmp_path / "h.db")))
    await store.migrate()
    now = time.time()
    for tenant_id in ("tn_a", "tn_b"):
        await store.create_tenant(
            Tenant(
                id=tenant_id,
                name=tenant_id.replace("_", "-"),
                tier="starter",
                status="active",
                email="a@b.cd",
                rate_limit=0,
                burst=0,
                monthly_quota=0,
                created_at=now,
                updated_at=now,
            )
        )
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    await ensure_streams(nats.jetstream())
    yield store, nats
    await nats.close()
    await store.close()


def event(tenant: str, kind: str, n: int) -> bytes:
    return msgspec.json.encode(
        {
            "kind": kind,
            "id": f"m{n}:{kind}",
            "message_id": f"m{n}",
            "tenant_id": tenant,
            "at": time.time(),
            "state": "all_failed" if kind == "failed" else None,
        }
    )


async def test_final_outcomes_are_signed_posted_and_retried(setup: tuple[FullStore, NatsClient]) -> None:
    store, nats = setup
    receiver = Receiver([500])
    async with receiver as url, httpx.AsyncClient() as http:
        await store.set_webhook(
            Webhook(tenant_id="tn_a", url=url, secret="k" * 32, events="final", created_at=time.time())
        )
        js = nats.jetstream()
        await js.publish("evt.tn_a.submitted", event("tn_a", "submitted", 1))
        await js.publish("evt.tn_a.failed", event("tn_a", "failed", 1))
        await js.publish("evt.tn_b.failed", event("tn_b", "failed", 2))  # no webhook: nothing to send
        notifier = Notifier(store, http)
        stopping = asyncio.Event()
        consumer = asyncio.create_task(
            consume_batches(
                nats,
                stream="EVENTS",
                durable="t-notifier",
                subject="evt.>",
                handler=notifier.enqueue,
                stopping=stopping,
            )
        )
        for _ in range(100):
            await notifier.deliver_due()
            if receiver.requests:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert len(receiver.requests) == 1  # the first try got a 500
        headers, body = receiver.requests[0]
        assert webhooks.verify("k" * 32, headers["hermes-signature"], body, now=time.time())
        assert msgspec.json.decode(body)["kind"] == "failed"
        [pending] = await store.list_deliveries("tn_a")
        assert (pending.state, pending.attempts, pending.last_status) == ("pending", 1, 500)
        assert pending.next_at > time.time() + 5
        # the retry is due later; pretend time has passed by moving it forward
        await store.retry_delivery(pending.id, next_at=time.time() - 1, status=500, error="x")
        await notifier.deliver_due()
        for _ in range(50):
            if (await store.list_deliveries("tn_a"))[0].state == "delivered":
                break
            await asyncio.sleep(0.05)
        assert (await store.list_deliveries("tn_a"))[0].state == "delivered"
        assert len(receiver.requests) == 2
        assert receiver.requests[1][0]["hermes-event-id"] == receiver.requests[0][0]["hermes-event-id"]
        stopping.set()
        await consumer


def test_filters_name_what_each_webhook_wants_and_nothing_else() -> None:
    now = time.time()
    hooks = [
        Webhook(tenant_id="tn_b", url="http://b", secret="s", events="all", created_at=now),
        Webhook(tenant_id="tn_a", url="http://a", secret="s", events="final", created_at=now),
    ]
    assert filters_for(hooks) == [
        "evt.tn_a.dead_lettered",
        "evt.tn_a.delivered",
        "evt.tn_a.failed",
        "evt.tn_b.>",
    ]
    assert filters_for([]) == [NO_WEBHOOK]


async def test_nats_server_sends_the_notifier_only_what_webhooks_want(
    setup: tuple[FullStore, NatsClient],
) -> None:
    store, nats = setup
    js = nats.jetstream()
    filters = Filters(nats, store)
    assert await filters.refresh() == [NO_WEBHOOK]
    await store.set_webhook(
        Webhook(tenant_id="tn_a", url="http://a", secret="s", events="final", created_at=1.0)
    )
    await store.set_webhook(
        Webhook(tenant_id="tn_b", url="http://b", secret="s", events="all", created_at=1.0)
    )
    await filters.refresh()
    for subject in ("evt.tn_a.submitted", "evt.tn_a.failed", "evt.tn_b.submitted", "evt.tn_c.failed"):
        tenant, kind = subject.split(".")[1:]
        await js.publish(subject, event(tenant, kind, 1))
    got: list[str] = []
    stopping = asyncio.Event()

    async def handle(batch: list[Msg]) -> None:
        got.extend(m.subject for m in batch)

    consumer = asyncio.create_task(
        consume_batches(
            nats, stream="EVENTS", durable=DURABLE, subject=filters.current, handler=handle, stopping=stopping
        )
    )
    for _ in range(100):
        if len(got) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert got == ["evt.tn_a.failed", "evt.tn_b.submitted"]
    await store.delete_webhook("tn_b")
    assert await filters.refresh() == ["evt.tn_a.dead_lettered", "evt.tn_a.delivered", "evt.tn_a.failed"]
    info = await js.consumer_info("EVENTS", DURABLE)
    assert info.config.filter_subjects == filters.current
    stopping.set()
    await consumer
