"""`consume` on a real nats-server: a batch whose handler fails is retried, never acked past."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from appliance.bus.consumer import consume


@pytest.fixture
async def bus(nats_server: str) -> AsyncIterator[tuple[NatsClient, str]]:
    client = NatsClient()
    await client.connect(servers=[nats_server])
    js = client.jetstream()
    name = f"C{time.monotonic_ns()}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"]))
    yield client, name
    await js.delete_stream(name)
    await client.close()


async def _poll(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_failed_batch_is_retried_not_acked_past(bus: tuple[NatsClient, str]) -> None:
    nats, stream = bus
    js = nats.jetstream()
    for n in range(25):
        await js.publish(f"{stream.lower()}.x", b"%d" % n)
    handled: list[bytes] = []
    failures = 0

    async def handler(batch: list[Msg]) -> None:
        nonlocal failures
        if failures < 2:  # the store is down for the first two tries
            failures += 1
            raise RuntimeError("store unavailable")
        handled.extend(m.data for m in batch)

    stopping = asyncio.Event()
    task = asyncio.create_task(
        consume(
            js,
            stream=stream,
            durable="d",
            subject=f"{stream.lower()}.>",
            handler=handler,
            stopping=stopping,
            batch=10,
            wait_s=0.2,
        )
    )
    try:
        await _poll(lambda: len(handled) == 25)
        for _ in range(200):
            if (await js.consumer_info(stream, "d")).ack_floor.stream_seq == 25:
                break
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await task
    assert (await js.consumer_info(stream, "d")).ack_floor.stream_seq == 25
    assert handled == [b"%d" % n for n in range(25)]  # the failed batch came first, nothing skipped
    assert failures == 2


async def test_stopping_while_retrying_leaves_the_batch_unacked(bus: tuple[NatsClient, str]) -> None:
    nats, stream = bus
    js = nats.jetstream()
    for n in range(5):
        await js.publish(f"{stream.lower()}.x", b"%d" % n)
    tries = 0

    async def handler(batch: list[Msg]) -> None:
        nonlocal tries
        tries += 1
        raise RuntimeError("store unavailable")

    stopping = asyncio.Event()
    task = asyncio.create_task(
        consume(
            js,
            stream=stream,
            durable="d",
            subject=f"{stream.lower()}.>",
            handler=handler,
            stopping=stopping,
            batch=10,
            wait_s=0.2,
        )
    )
    await _poll(lambda: tries >= 2)
    stopping.set()
    async with asyncio.timeout(5):  # the backoff pause ends when the daemon stops
        await task
    assert (await js.consumer_info(stream, "d")).ack_floor.stream_seq == 0
