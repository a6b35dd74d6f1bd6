"""The lean JetStream publisher: acks awaited, failures reported, nothing left pending; one publish per
message on MESSAGES, one audit array and one `accepted` event per tenant and call; coalesced callers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest
from nats.aio.client import Client as NatsClient

from appliance.bus.publisher import CoalescingSink, Envelope, JetStreamPublisher, size_groups
from appliance.bus.streams import ensure_streams
from appliance.domain.events import EVENT_DECODER, expand
from appliance.errors import BusError


def envelope(n: int, tenant: str = "tn_1") -> Envelope:
    message = json.dumps({"id": f"msg_{n}", "tenant_id": tenant, "origin": "rest", "created_at": 1e9 + n})
    audit = json.dumps({"action": "message.accepted", "message_id": f"msg_{n}"})
    return Envelope(tenant, f"msg_{n}", message.encode(), audit.encode(), 1e9 + n)


async def _all(nats: NatsClient, stream: str) -> list[tuple[str, bytes]]:
    js = nats.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((str(msg.subject), bytes(msg.data or b"")))
    return out


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


async def test_audit_and_accepted_are_one_publish_per_tenant_and_expand_to_each_message(
    nats_server: str,
) -> None:
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    try:
        await ensure_streams(nats.jetstream())
        publisher = JetStreamPublisher(nats)
        batch = [envelope(n, "tn_a") for n in range(5)] + [envelope(n, "tn_b") for n in range(5, 7)]
        await publisher.publish(batch)
        await publisher.publish(batch)  # the same group again (a relay's replay): all duplicates
        audits = await _all(nats, "AUDIT")
        assert sorted((subject, len(json.loads(data))) for subject, data in audits) == [
            ("audit.tn_a", 5),
            ("audit.tn_b", 2),
        ]
        events = await _all(nats, "EVENTS")
        assert sorted(subject for subject, _ in events) == ["evt.tn_a.accepted", "evt.tn_b.accepted"]
        expanded = [e for _, data in events for e in expand(EVENT_DECODER.decode(data))]
        assert sorted(e.id for e in expanded) == sorted(f"msg_{n}:accepted" for n in range(7))
        first = next(e for e in expanded if e.message_id == "msg_3")
        assert (first.tenant_id, first.at, first.state) == ("tn_a", 1e9 + 3, "created")
        assert first.message is not None and first.message["id"] == "msg_3"
        assert (await nats.jetstream().stream_info("MESSAGES")).state.messages == 7
    finally:
        await nats.close()


class _Recording:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, envelopes: Sequence[Envelope]) -> None:
        self.calls.append([env.message_id for env in envelopes])
        await self.release.wait()
        if self.fail:
            raise BusError("nats down")


async def test_calls_in_one_loop_turn_share_one_sink_call() -> None:
    sink = _Recording()
    coalesced = CoalescingSink(sink)
    await asyncio.gather(*(coalesced([envelope(n)]) for n in range(10)))
    assert sink.calls == [[f"msg_{n}" for n in range(10)]]
    await coalesced([envelope(10)])
    assert sink.calls[-1] == ["msg_10"]


async def test_a_failed_publish_fails_every_caller_of_its_turn() -> None:
    coalesced = CoalescingSink(_Recording(fail=True))
    results = await asyncio.gather(*(coalesced([envelope(n)]) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, BusError) for r in results)


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    sink = _Recording()
    sink.release.clear()
    coalesced = CoalescingSink(sink)
    gone = asyncio.ensure_future(coalesced([envelope(1)]))
    stays = asyncio.ensure_future(coalesced([envelope(2)]))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0.01)
    sink.release.set()
    await stays
    assert gone.cancelled() and sink.calls == [["msg_1", "msg_2"]]


def test_shared_publishes_are_cut_to_fit_any_nats_server() -> None:
    big = [Envelope("tn_1", f"m{n}", b"x" * 200_000, b"{}", 1.0) for n in range(6)]
    assert [len(g) for g in size_groups(big)] == [2, 2, 2]  # 512 KiB holds two of 200 KB
    huge = Envelope("tn_1", "h", b"x" * 700_000, b"{}", 1.0)
    assert [[e.message_id for e in g] for g in size_groups([big[0], huge, big[1]])] == [["m0"], ["h"], ["m1"]]
    assert size_groups([]) == []
