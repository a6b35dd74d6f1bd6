"""The cascade in a whole appliance: hermesd with the carrier simulator, the real router and smpp daemon,
and a stand-in for the email executor (it consumes `dispatch.email.>` and answers per the contract).

Two nodes: one whose simulator delivers (delivered; the aggregator used while the direct carrier is
down; kill -9 of the cascade workers with 1,000 messages in flight; a restart of the whole appliance
while a message waits on its timer), and one whose simulator fails every receipt after 4 s (DLR
failure -> second channel; SMS timeout -> second channel, the late failed DLR changing nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from appliance.bus.streams import accepted_subject, event_subject
from appliance.domain.events import FINAL_KINDS, Event
from appliance.domain.message import ChannelTarget, Message, new_message_id
from tests.conftest import free_port
from tests.e2e.node import Node

pytestmark = pytest.mark.slow


def cascade_node(root: Path, *, dlr_delay_ms: float, fail_rate: float = 0.0) -> Node:
    node = Node(root, simulator=True)
    text = node.config.read_text().replace("dlr_delay_ms = 50.0\n", f"dlr_delay_ms = {dlr_delay_ms}\n")
    node.config.write_text(text + f"fail_rate = {fail_rate}\n[cascade]\nworkers = 2\n")
    return node


@contextlib.asynccontextmanager
async def bus(node: Node) -> AsyncIterator[NatsClient]:
    client = NatsClient()
    await client.connect(
        servers=[f"nats://127.0.0.1:{node.nats_port}"], max_reconnect_attempts=-1, reconnect_time_wait=1
    )
    try:
        yield client
    finally:
        await client.close()


async def email_standin(client: NatsClient, stopping: asyncio.Event, seen: Counter[tuple[str, int]]) -> None:
    """The email executor's stand-in: every attempt is `submitted`, then `dlr` delivered."""
    js = client.jetstream()
    sub = await js.pull_subscribe("dispatch.email.>", durable="email-standin", stream="DISPATCH")
    while not stopping.is_set():
        try:
            batch = await sub.fetch(50, timeout=0.3)
        except Exception:
            continue
        for msg in batch:
            body = msgspec.json.decode(msg.data)
            key = (body["message_id"], body["attempt"])
            seen[key] += 1
            for kind, data in (
                ("submitted", {}),
                ("dlr", {"attempt_outcome": "delivered", "stat": "DELIVRD"}),
            ):
                event = Event(
                    kind=kind,
                    id=f"{key[0]}:{key[1]}:{kind}",
                    message_id=key[0],
                    tenant_id=body["tenant_id"],
                    at=time.time(),
                    data={"attempt": key[1], "pool": body["route"], **data},
                )
                await js.publish(
                    event_subject(event.tenant_id, kind),
                    msgspec.json.encode(event),
                    headers={"Nats-Msg-Id": event.id},
                )
            await msg.ack()


async def stored_events(client: NatsClient, tenant: str) -> list[Event]:
    """Every event JetStream stored for the tenant (copies it deduplicated are not there)."""
    js = client.jetstream()
    info = await js.stream_info("EVENTS")
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, filter_subject=f"evt.{tenant}.>"
    )
    sub = await js.pull_subscribe(f"evt.{tenant}.>", stream="EVENTS", config=config)
    events: list[Event] = []
    last = info.state.last_seq
    while True:
        try:
            batch = await sub.fetch(1000, timeout=1.0)
        except Exception:
            break
        for msg in batch:
            events.append(msgspec.json.decode(msg.data, type=Event))
            if msg.metadata.sequence.stream >= last:
                break
        if batch and batch[-1].metadata.sequence.stream >= last:
            break
    await sub.unsubscribe()
    return events


async def publish_message(client: NatsClient, tenant: str, *channels: tuple[str, str, float]) -> Message:
    message = Message(
        id=new_message_id(),
        tenant_id=tenant,
        origin="rest",
        channels=tuple(ChannelTarget(channel=c, to=to, timeout_s=t) for c, to, t in channels),
        created_at=time.time(),
        body="Your order has shipped",
    )
    await client.jetstream().publish(
        accepted_subject(tenant), msgspec.json.encode(message), headers={"Nats-Msg-Id": message.id}
    )
    return message


async def wait_final(client: NatsClient, tenant: str, ids: set[str], timeout_s: float) -> list[Event]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = await stored_events(client, tenant)
        done = {e.message_id for e in events if e.kind in FINAL_KINDS}
        if ids <= done:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(ids - done)} of {len(ids)} messages not finished")
        await asyncio.sleep(0.5)


def of(events: list[Event], message_id: str) -> list[Event]:
    return [e for e in events if e.message_id == message_id]


@pytest.fixture
def delivering(tmp_path: Path) -> Iterator[Node]:
    node = cascade_node(tmp_path, dlr_delay_ms=50.0)
    try:
        node.start()
        node.wait_healthy()
        node.wait_until_carriers_bound()
        yield node
    finally:
        node.kill_everything()


def test_delivered_aggregator_kill_9_and_timers_across_an_appliance_restart(delivering: Node) -> None:
    node = delivering
    tenant = json.loads(
        node.ctl("tenant", "add", "acme", "--email", "ops@acme.test", "--json", check=True).stdout
    )
    with node.rest_client(tenant["api_key"]) as rest:
        # 1. SMS delivered -> terminal 1_delivered, seen through the REST API (the recorder's projection)
        accepted = rest.post("/v1/messages", json={"to": "+4528123456", "channel": "sms", "body": "hello"})
        assert accepted.status_code == 202
        message_id = accepted.json()["message_id"]
        deadline = time.monotonic() + 20
        state = None
        while time.monotonic() < deadline:
            shown = rest.get(f"/v1/messages/{message_id}")
            state = shown.json().get("state") if shown.status_code == 200 else None
            if state == "1_delivered":
                break
            time.sleep(0.2)
    assert state == "1_delivered"

    # 2. the direct carrier is down: the router picks the aggregator, channel 1 delivers
    dead_port = str(free_port())
    node.ctl(
        "carrier", "add", "direct_dk", "--host", "127.0.0.1", "--port", dead_port, "--system-id", "x",
        "--password", "x", "--kind", "direct", check=True,
    )  # fmt: skip
    node.ctl(
        "rate", "set", "direct_dk", "--prefix", "45", "--price", "0.001", "--currency", "EUR", check=True
    )
    explained = json.loads(node.ctl("route", "explain", "+4528123457", "--json", check=True).stdout)
    assert explained["chosen"] == "sim"
    assert any(c["carrier"] == "direct_dk" and c["verdict"] != "chosen" for c in explained["candidates"])

    async def scenario() -> None:
        async with bus(node) as client:
            stopping = asyncio.Event()
            seen: Counter[tuple[str, int]] = Counter()
            standin = asyncio.create_task(email_standin(client, stopping, seen))
            try:
                routed = await publish_message(
                    client, "tn_route", ("sms", "+4528123457", 20), ("email", "a@b.test", 20)
                )
                events = of(await wait_final(client, "tn_route", {routed.id}, 20), routed.id)
                assert [e.kind for e in events if e.state] == ["dispatched", "waiting", "delivered"]
                assert (
                    events[0].data["route"]["carrier"] == "sim"
                    and events[0].data["route"]["kind"] == "aggregator"
                )
                assert events[-1].state == "1_delivered"
                await kill_9_with_1000_in_flight(node, client)
                await timer_across_appliance_restart(node, client, seen)
            finally:
                stopping.set()
                await standin

    asyncio.run(scenario())
    assert node.terminate() == 0


async def kill_9_with_1000_in_flight(node: Node, client: NatsClient) -> None:
    """3. kill -9 both cascade workers mid-flight: every message ends exactly once, none sent twice."""
    tenant = "tn_kill"
    pids = node.child_pids(node.status())
    finished = 0

    async def count(_msg: Msg) -> None:
        nonlocal finished
        finished += 1

    # counted as they are published (a read of the stream is too slow: all may finish meanwhile)
    watch = await client.subscribe(f"evt.{tenant}.delivered", cb=count)
    messages = await asyncio.gather(
        *(publish_message(client, tenant, ("sms", f"+45281{n:05d}", 60)) for n in range(1000))
    )
    ids = {m.id for m in messages}
    while finished < 150:  # noqa: ASYNC110 - waiting for the cascade to be well under way
        await asyncio.sleep(0.01)
    await watch.unsubscribe()
    assert finished < 1000, "all finished before the kill; the test proves nothing"
    for name in ("cascade.0", "cascade.1"):
        os.kill(pids[name], signal.SIGKILL)
    events = await wait_final(client, tenant, ids, timeout_s=120)
    restarted = node.child_pids(node.status())
    assert restarted["cascade.0"] != pids["cascade.0"] and restarted["cascade.1"] != pids["cascade.1"]
    finals = Counter(e.message_id for e in events if e.kind in FINAL_KINDS)
    assert set(finals) == ids and set(finals.values()) == {1}
    failed = [(e.state, e.data) for e in events if e.kind in FINAL_KINDS and e.state != "1_delivered"]
    assert not failed, f"{len(failed)} did not deliver, e.g. {failed[:3]}"
    dispatched = Counter((e.message_id, e.data["attempt"]) for e in events if e.kind == "dispatched")
    assert set(dispatched.values()) == {1} and {a for _, a in dispatched} == {1}  # one attempt each
    submitted = Counter(e.message_id for e in events if e.kind == "submitted")
    assert set(submitted) == ids and set(submitted.values()) == {1}


async def timer_across_appliance_restart(
    node: Node, client: NatsClient, seen: Counter[tuple[str, int]]
) -> None:
    """4. kill -9 of hermesd (and so of everything) while a message waits: it times out at its deadline."""
    tenant = "tn_timer"
    # push has no executor here: the attempt is never answered, only the timer moves the message on
    # (20 s: room for a slow restart on a busy machine, which must still be over before the deadline)
    message = await publish_message(client, tenant, ("push", "device-1", 20), ("email", "a@b.test", 20))
    while not [e for e in await stored_events(client, tenant) if e.kind == "dispatched"]:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    node.terminate(signal.SIGKILL)
    node.kill_everything()
    node.start()
    await asyncio.to_thread(node.wait_healthy)
    back_at = time.time()
    events = of(await wait_final(client, tenant, {message.id}, timeout_s=40), message.id)
    assert [e.kind for e in events if e.state and e.state != "2_waiting"] == [
        "dispatched",
        "timeout",
        "dispatched",
        "delivered",
    ]
    deadline = events[0].at + 20
    assert back_at < deadline, f"the restart took {back_at - events[0].at:.1f} s: longer than the timer"
    assert deadline <= events[1].at <= deadline + 1.0, events[1].at - deadline
    assert seen[(message.id, 2)] == 1


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[Node]:
    node = cascade_node(tmp_path, dlr_delay_ms=4000.0, fail_rate=1.0)
    try:
        node.start()
        node.wait_healthy()
        node.wait_until_carriers_bound()
        yield node
    finally:
        node.kill_everything()


def test_dlr_failure_and_sms_timeout_fall_back_to_the_second_channel(failing: Node) -> None:
    node = failing

    async def scenario() -> None:
        async with bus(node) as client:
            stopping = asyncio.Event()
            seen: Counter[tuple[str, int]] = Counter()
            standin = asyncio.create_task(email_standin(client, stopping, seen))
            try:
                tenant = "tn_fail"
                dlr_failed = await publish_message(
                    client, tenant, ("sms", "+4528123456", 20), ("email", "a@b.test", 20)
                )
                timed_out = await publish_message(
                    client, tenant, ("sms", "+4528123457", 2), ("email", "a@b.test", 20)
                )
                events = await wait_final(client, tenant, {dlr_failed.id, timed_out.id}, 30)
                failed = of(events, dlr_failed.id)
                # (the stand-in's `submitted` and `dlr` come together: a worker may see the dlr first)
                steps = [(e.kind, e.state, e.data) for e in failed if e.state]
                assert [(e.kind, e.state) for e in failed if e.state and e.state != "2_waiting"] == [
                    ("dispatched", "1_sending"),
                    ("waiting", "1_waiting"),
                    ("channel_failed", "1_failed"),
                    ("dispatched", "2_sending"),
                    ("delivered", "2_delivered"),
                ], steps
                assert [e.data.get("stat") for e in failed if e.kind == "dlr"] == ["UNDELIV", "DELIVRD"]
                timed = of(events, timed_out.id)
                assert [e.kind for e in timed if e.state and e.state != "2_waiting"] == [
                    "dispatched",
                    "waiting",
                    "timeout",
                    "dispatched",
                    "delivered",
                ]
                deadline = timed[0].at + 2
                [timeout] = [e for e in timed if e.kind == "timeout"]
                assert deadline <= timeout.at <= deadline + 1.0
                # the SMS receipt (failed) arrives after the fallback: it is stored, and changes nothing
                late = [e for e in of(await stored_events(client, tenant), timed_out.id) if e.kind == "dlr"]
                for _ in range(50):
                    if any(e.data["attempt"] == 1 for e in late):
                        break
                    await asyncio.sleep(0.2)
                    late = [
                        e for e in of(await stored_events(client, tenant), timed_out.id) if e.kind == "dlr"
                    ]
                assert any(e.data["attempt"] == 1 for e in late)
                await asyncio.sleep(0.5)
                after = of(await stored_events(client, tenant), timed_out.id)
                assert [e.kind for e in after if e.state] == [e.kind for e in timed if e.state]
                assert seen == Counter({(dlr_failed.id, 2): 1, (timed_out.id, 2): 1})
            finally:
                stopping.set()
                await standin

    asyncio.run(scenario())
    assert node.terminate() == 0
