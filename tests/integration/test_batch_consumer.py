"""consume_batches on a real nats-server: every message handled once and acked, a trickle gathered
into few batches, a failed batch redelivered, and a prompt stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from appliance.bus.batch_consumer import Puller, PullRefused, consume_batches


@pytest.fixture
async def bus(nats_server: str) -> AsyncIterator[tuple[NatsClient, str]]:
    """A client and a fresh stream named by the test's clock, capturing `<name in lower case>.>`."""
    client = NatsClient()
    await client.connect(servers=[nats_server])
    js = client.jetstream()
    name = f"T{time.monotonic_ns()}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"]))
    yield client, name
    await js.delete_stream(name)
    await client.close()


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_trickle_is_handled_once_in_order_in_few_batches_and_acked(
    bus: tuple[NatsClient, str],
) -> None:
    nats, stream = bus
    subject = f"{stream.lower()}.>"
    js = nats.jetstream()
    batches: list[list[bytes]] = []

    async def handler(batch: list[Msg]) -> None:
        batches.append([m.data for m in batch])

    stopping = asyncio.Event()
    task = asyncio.create_task(
        consume_batches(
            nats,
            stream=stream,
            durable="d",
            subject=subject,
            handler=handler,
            stopping=stopping,
            linger_s=0.3,
        )
    )
    await asyncio.sleep(0.2)  # the consumer exists and its pull request waits on the server
    for n in range(30):
        await js.publish(f"{stream.lower()}.x", b"%d" % n)  # one by one, as events trickle in
    await _until(lambda: sum(len(b) for b in batches) == 30)
    assert [d for b in batches for d in b] == [b"%d" % n for n in range(30)]
    assert len(batches) < 10  # gathered, not one batch per message

    async def acked() -> int:
        info = await js.consumer_info(stream, "d")
        floor: int = info.ack_floor.stream_seq
        return floor

    for _ in range(100):
        if await acked() == 30:
            break
        await asyncio.sleep(0.05)
    assert await acked() == 30
    started = time.monotonic()
    stopping.set()
    await task
    assert time.monotonic() - started < 1.0  # the waiting pull request does not hold the stop up


async def test_a_failed_batch_is_tried_again_before_anything_newer_is_acked(
    bus: tuple[NatsClient, str],
) -> None:
    nats, stream = bus
    subject = f"{stream.lower()}.>"
    js = nats.jetstream()
    for n in range(25):
        await js.publish(f"{stream.lower()}.x", b"%d" % n)
    seen: list[bytes] = []
    failures = [1]

    async def handler(batch: list[Msg]) -> None:
        if failures:
            failures.pop()
            raise RuntimeError("store down")
        seen.extend(m.data for m in batch)

    stopping = asyncio.Event()
    task = asyncio.create_task(
        consume_batches(
            nats,
            stream=stream,
            durable="r",
            subject=subject,
            handler=handler,
            stopping=stopping,
            batch=10,
            linger_s=0.0,
            ack_wait_s=1.0,
        )
    )
    await _until(lambda: len(set(seen)) == 25)
    stopping.set()
    await task
    assert sorted(set(seen), key=int) == [b"%d" % n for n in range(25)]


async def test_a_puller_hands_over_what_arrives_within_the_room_asked_for(
    bus: tuple[NatsClient, str],
) -> None:
    nats, stream = bus
    js = nats.jetstream()
    await js.add_consumer(
        stream,
        ConsumerConfig(durable_name="p", ack_policy=AckPolicy.EXPLICIT, filter_subject=f"{stream.lower()}.>"),
    )
    for n in range(10):
        await js.publish(f"{stream.lower()}.x", str(n).encode())
    puller = Puller(nats, stream=stream, durable="p", batch=100, wait_s=0.5)
    first = await puller.next(room=3)  # the request asks for no more than there is room for
    assert [m.data for m in first] == [b"0", b"1", b"2"]
    rest: list[Msg] = []
    while len(rest) < 7:
        rest += await puller.next(room=100)
    assert [m.data for m in rest] == [str(n).encode() for n in range(3, 10)]
    for message in first + rest:
        await message.ack()
    assert await puller.next(room=100) == []  # a wait with nothing: empty, not an error
    await puller.close()
    missing = Puller(nats, stream=stream, durable="nobody", wait_s=0.2)
    with pytest.raises(PullRefused):
        await missing.next(room=10)
    await missing.close()
