"""The lean JetStream publisher: acks awaited, failures reported, nothing left pending."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NatsClient

from appliance.bus.publisher import Envelope, JetStreamPublisher
from appliance.bus.streams import ensure_streams
from appliance.errors import BusError


def envelope(n: int) -> Envelope:
    return Envelope("tn_1", f"msg_{n}", b"{}", b"{}", b"{}")


async def test_acks_are_awaited_and_duplicates_are_dropped_by_msg_id(nats_server: str) -> None:
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    try:
        await ensure_streams(nats.jetstream())
        publisher = JetStreamPublisher(nats)
        await publisher.publish([envelope(n) for n in range(300)])
        await publisher.publish([envelope(0)])  # a replay after a crash
        info = await nats.jetstream().stream_info("MESSAGES")
        assert info.state.messages == 300
        assert publisher._pending == {}
    finally:
        await nats.close()


async def test_no_stream_is_a_bus_error_not_a_hang(nats_server: str) -> None:
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    try:
        publisher = JetStreamPublisher(nats, ack_timeout_s=5)
        with pytest.raises(BusError, match=r"no responders|refused"):
            await publisher.publish([envelope(1)])
        assert publisher._pending == {}
    finally:
        await nats.close()
