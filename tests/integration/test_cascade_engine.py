"""The cascade engine against a real nats-server: stand-ins answer for the router and the executors.

Each test runs `Inputs` + `Engine` (what a cascade worker runs) in process, publishes accepted messages
on MESSAGES, and reads what the cascade published on EVENTS. The stand-ins consume DISPATCH and answer
per the cascade contract. Timers are checked against their deadlines, also across a restart of the
worker and of nats-server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.cascade_state import StateBucket
from appliance.bus.requests import Requests
from appliance.bus.streams import ROUTE_MANY_SUBJECT, accepted_subject, ensure_streams, event_subject
from appliance.daemons.cascade import Engine, Inputs
from appliance.daemons.cascade.routes import RouterUnavailable
from appliance.domain.cascade import Start
from appliance.domain.events import FINAL_KINDS, Event
from appliance.domain.message import ChannelTarget, Message, new_message_id
from tests.conftest import free_port

TENANT = "tn_cascade"
EXECUTOR = ("submitted", "rejected", "dlr", "bounce")


class Server:
    """A nats-server we can kill and start again on the same port and store dir."""

    def __init__(self, store_dir: Path) -> None:
        from appliance.bus.embedded import nats_server_binary

        self.binary = nats_server_binary()
        self.port = free_port()
        self.store_dir = store_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it accepts connections (or say why it did not)."""
        log = self.store_dir.parent / "nats-server.log"
        with log.open("ab") as stderr:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {log.read_text(errors='replace')[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} within 15 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "js")
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def connect(url: str) -> NatsClient:
    """A client that reconnects forever once connected (the kill tests need it), but whose first
    connect is bounded: nats-py would otherwise retry an unreachable server without end."""
    deadline = time.monotonic() + 10
    while True:
        client = NatsClient()
        try:
            async with asyncio.timeout(5):
                await client.connect(
                    servers=[url], connect_timeout=1, max_reconnect_attempts=-1, reconnect_time_wait=1
                )
            return client
        except Exception:
            with contextlib.suppress(Exception):
                await client.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def plan_for(to: str) -> dict[str, Any]:
    """The router stand-in: numbers ending in 0 have no route; others direct first, then aggregator."""
    if to.endswith("0"):
        return {"error": {"code": "invalid_number", "message": "not a number"}}
    return {
        "chosen": "direct",
        "kind": "direct",
        "price": 0.02,
        "currency": "EUR",
        "fallbacks": ["agg"],
        "candidates": [
            {"carrier": "direct", "kind": "direct", "price": 0.02, "currency": "EUR", "verdict": "chosen"},
            {"carrier": "agg", "kind": "aggregator", "price": 0.03, "currency": "EUR", "verdict": "fallback"},
        ],
    }


Behaviour = Callable[[dict[str, Any], str], list[tuple[str, dict[str, Any]]]]


class World:
    """The bus as the cascade sees it: a router, executors per subject prefix, and what came out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[Event] = []
        self.dispatches: Counter[tuple[str, int]] = Counter()
        self.behaviours: dict[str, Behaviour] = {}
        self.changed = asyncio.Event()
        self.client: NatsClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.client = await connect(self.url)
        js = self.client.jetstream()
        await ensure_streams(js)

        async def route(msg: Msg) -> None:
            numbers = msgspec.json.decode(msg.data)["to"]
            await msg.respond(msgspec.json.encode({"plans": [plan_for(to) for to in numbers]}))

        async def watch(msg: Msg) -> None:
            event = msgspec.json.decode(msg.data, type=Event)
            if event.kind not in EXECUTOR:
                self.events.append(event)
                self.changed.set()

        await self.client.subscribe(ROUTE_MANY_SUBJECT, cb=route)
        await self.client.subscribe("evt.>", cb=watch)
        subscription = await js.pull_subscribe("dispatch.>", durable="standins", stream="DISPATCH")
        self._tasks.append(asyncio.create_task(self._executors(subscription)))

    async def _executors(self, subscription: Any) -> None:
        assert self.client is not None
        js = self.client.jetstream()
        while True:
            try:
                batch = await subscription.fetch(100, timeout=0.5)
            except Exception:
                continue
            for msg in batch:
                body = msgspec.json.decode(msg.data)
                key = (body["message_id"], body["attempt"])
                self.dispatches[key] += 1
                prefix = next((p for p in self.behaviours if msg.subject.startswith(p)), None)
                answers = self.behaviours[prefix](body, msg.subject) if prefix else []
                for n, (kind, data) in enumerate(answers):
                    event = Event(
                        kind=kind,
                        id=f"{key[0]}:{key[1]}:{kind}:{n}",
                        message_id=key[0],
                        tenant_id=body["tenant_id"],
                        at=time.time(),
                        data={"attempt": key[1], **data},
                    )
                    await js.publish(
                        event_subject(event.tenant_id, kind),
                        msgspec.json.encode(event),
                        headers={"Nats-Msg-Id": event.id},
                    )
                await msg.ack()

    async def send(self, *channels: tuple[str, str, float], notify_all: bool = False) -> Message:
        assert self.client is not None
        message = Message(
            id=new_message_id(),
            tenant_id=TENANT,
            origin="rest",
            channels=tuple(ChannelTarget(channel=c, to=to, timeout_s=t) for c, to, t in channels),
            created_at=time.time(),
            body="hello",
            metadata={"ref": "x"},
            notify_all=notify_all,
        )
        await self.client.jetstream().publish(
            accepted_subject(TENANT), msgspec.json.encode(message), headers={"Nats-Msg-Id": message.id}
        )
        return message

    def of(self, message_id: str) -> list[Event]:
        return [e for e in self.events if e.message_id == message_id]

    def final(self, message_id: str) -> list[Event]:
        return [e for e in self.of(message_id) if e.kind in FINAL_KINDS]

    async def wait_for(self, check: Callable[[], bool], timeout_s: float = 15.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not check():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.2)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await _bounded(asyncio.gather(*self._tasks, return_exceptions=True))
        if self.client is not None:
            await _bounded(self.client.close())


class Worker:
    """One cascade worker in process, as the daemon runs it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.client: NatsClient | None = None
        self.engine: Engine | None = None

    async def start(self) -> None:
        self.client = await connect(self.url)
        js = self.client.jetstream()
        requests = Requests(self.client)
        self.engine = Engine(
            self.client,
            requests,
            await StateBucket.open(js, requests),
            default_timeouts={},
            finished_ttl_s=60,
        )
        self.task = asyncio.create_task(
            Inputs(self.client, js, self.engine, concurrency=64).run(self.stopping)
        )

    async def stop(self) -> None:
        """Like the daemon's stop: a bounded drain, then cancel (with the stragglers' stacks on stderr)."""
        self.stopping.set()
        if self.task is not None:
            _, pending = await asyncio.wait([self.task], timeout=20)
            if pending:
                for task in asyncio.all_tasks():
                    task.print_stack(limit=8, file=sys.stderr)
                self.task.cancel()
                await _bounded(self.task)
        if self.client is not None:
            await _bounded(self.client.close())


async def _bounded(work: Awaitable[Any], timeout_s: float = 10.0) -> None:
    """Await teardown work for at most `timeout_s`, even if it swallows cancellation (nats-py's close
    can), so a stuck teardown fails this test's timing instead of hanging the suite."""
    task = asyncio.ensure_future(work)
    _, pending = await asyncio.wait([task], timeout=timeout_s)
    if pending:
        task.print_stack(limit=12, file=sys.stderr)
        task.cancel()


@pytest.fixture
async def world(server: Server) -> AsyncIterator[World]:
    running = World(server.url)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def worker(world: World) -> AsyncIterator[Worker]:
    running = Worker(world.url)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def accept_and_deliver(body: dict[str, Any], subject: str) -> list[tuple[str, dict[str, Any]]]:
    return [("submitted", {}), ("dlr", {"attempt_outcome": "delivered", "stat": "DELIVRD", "err": "000"})]


def accept_only(body: dict[str, Any], subject: str) -> list[tuple[str, dict[str, Any]]]:
    return [("submitted", {})]


def accept_and_fail(body: dict[str, Any], subject: str) -> list[tuple[str, dict[str, Any]]]:
    return [("submitted", {}), ("dlr", {"attempt_outcome": "failed", "stat": "UNDELIV", "err": "001"})]


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


async def test_a_refused_direct_route_falls_back_to_the_aggregator_on_the_same_channel(
    world: World, worker: Worker
) -> None:
    def sms(body: dict[str, Any], subject: str) -> list[tuple[str, dict[str, Any]]]:
        if subject == "dispatch.sms.direct":
            return [("rejected", {"reason": "refused", "status_name": "ESME_RSUBMITFAIL"})]
        return accept_and_deliver(body, subject)

    world.behaviours = {"dispatch.sms.": sms, "dispatch.email.": accept_and_deliver}
    message = await world.send(("sms", "+4528123456", 10), ("email", "a@b.test", 10))
    await world.wait_for(lambda: bool(world.final(message.id)))
    events = world.of(message.id)
    assert kinds(events) == ["dispatched", "dispatched", "waiting", "delivered"]
    assert [e.data["route"]["carrier"] for e in events[:2]] == ["direct", "agg"]
    assert [e.data["attempt"] for e in events] == [1, 2, 2, 2]
    final = events[-1]
    assert final.state == "1_delivered" and final.data["stat"] == "DELIVRD"
    assert final.data["metadata"] == {"ref": "x"} and final.data["origin"] == "rest"
    assert set(world.dispatches) == {(message.id, 1), (message.id, 2)}


async def test_dlr_failure_and_no_route_move_to_the_next_channel(world: World, worker: Worker) -> None:
    world.behaviours = {"dispatch.sms.": accept_and_fail, "dispatch.email.": accept_and_deliver}
    failed_dlr = await world.send(("sms", "+4528123456", 10), ("email", "a@b.test", 10))
    no_route = await world.send(("sms", "+4528123450", 10), ("email", "a@b.test", 10))
    await world.wait_for(lambda: bool(world.final(failed_dlr.id) and world.final(no_route.id)))
    assert [(e.kind, e.state) for e in world.of(failed_dlr.id)] == [
        ("dispatched", "1_sending"),
        ("waiting", "1_waiting"),
        ("channel_failed", "1_failed"),
        ("dispatched", "2_sending"),
        ("waiting", "2_waiting"),
        ("delivered", "2_delivered"),
    ]
    events = world.of(no_route.id)
    assert kinds(events) == ["channel_failed", "dispatched", "waiting", "delivered"]
    assert events[0].data["reason"].startswith("no_route") and events[-1].data["attempt"] == 2


async def test_all_channels_failed_is_one_dead_letter_with_the_history(world: World, worker: Worker) -> None:
    world.behaviours = {"dispatch.sms.": accept_and_fail, "dispatch.email.": accept_and_fail}
    message = await world.send(("sms", "+4528123456", 10), ("email", "a@b.test", 10))
    await world.wait_for(lambda: bool(world.final(message.id)))
    await asyncio.sleep(0.3)
    [final] = world.final(message.id)
    assert final.kind == "dead_lettered" and final.state == "all_failed"
    assert [h["state"] for h in final.data["history"]] == [
        "1_sending",
        "1_waiting",
        "1_failed",
        "2_sending",
        "2_waiting",
        "2_failed",
        "all_failed",
    ]


async def test_timeouts_fire_at_the_deadline_and_late_dlrs_change_nothing(
    world: World, worker: Worker
) -> None:
    world.behaviours = {"dispatch.sms.": accept_only, "dispatch.email.": accept_and_deliver}
    message = await world.send(("sms", "+4528123456", 1.5), ("email", "a@b.test", 10))
    await world.wait_for(lambda: bool(world.final(message.id)))
    events = world.of(message.id)
    assert kinds(events) == ["dispatched", "waiting", "timeout", "dispatched", "waiting", "delivered"]
    deadline = events[0].at + 1.5
    assert deadline <= events[2].at <= deadline + 1.0
    # a late DLR for channel 1, and a second DLR for channel 2: nothing moves
    assert world.client is not None
    js = world.client.jetstream()
    for attempt, n in ((1, "late"), (2, "again")):
        late = Event(
            kind="dlr",
            id=f"{message.id}:{attempt}:dlr:{n}",
            message_id=message.id,
            tenant_id=TENANT,
            at=time.time(),
            data={"attempt": attempt, "attempt_outcome": "delivered"},
        )
        await js.publish(
            event_subject(TENANT, "dlr"), msgspec.json.encode(late), headers={"Nats-Msg-Id": late.id}
        )
    await asyncio.sleep(1.0)
    assert len(world.of(message.id)) == 6


async def _waiting(world: World, count: int, timeout_s: float) -> list[Message]:
    messages = [
        await world.send(("sms", "+4528123456", timeout_s), ("email", "a@b.test", 30)) for _ in range(count)
    ]
    await world.wait_for(lambda: all("waiting" in kinds(world.of(m.id)) for m in messages))
    return messages


def _timeouts_on_time(world: World, messages: list[Message], timeout_s: float) -> list[float]:
    """How late each channel-1 timeout fired after its deadline."""
    lateness = []
    for message in messages:
        events = world.of(message.id)
        deadline = events[0].at + timeout_s
        [fired] = [e for e in events if e.kind == "timeout"]
        lateness.append(fired.at - deadline)
    return lateness


async def test_timers_survive_a_restart_of_the_worker(world: World) -> None:
    world.behaviours = {"dispatch.sms.": accept_only, "dispatch.email.": accept_and_deliver}
    first = Worker(world.url)
    await first.start()
    messages = await _waiting(world, 20, 3.0)
    await first.stop()  # down while the messages wait; nothing in this process remembers them
    await asyncio.sleep(1.0)
    second = Worker(world.url)
    await second.start()
    try:
        await world.wait_for(lambda: all(world.final(m.id) for m in messages))
    finally:
        await second.stop()
    lateness = _timeouts_on_time(world, messages, 3.0)
    assert all(-0.01 <= late <= 1.0 for late in lateness), lateness


async def test_timers_survive_kill_9_of_nats_server_and_the_worker(world: World, server: Server) -> None:
    world.behaviours = {"dispatch.sms.": accept_only, "dispatch.email.": accept_and_deliver}
    first = Worker(world.url)
    await first.start()
    messages = await _waiting(world, 20, 4.0)
    server.kill()
    assert first.task is not None
    first.task.cancel()  # the worker dies with the machine
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await first.task
    assert first.client is not None
    await first.client.close()
    await asyncio.sleep(0.5)
    server.start()
    second = Worker(world.url)
    await second.start()
    try:
        await world.wait_for(lambda: all(world.final(m.id) for m in messages), timeout_s=30)
    finally:
        await second.stop()
    lateness = _timeouts_on_time(world, messages, 4.0)
    assert all(-0.01 <= late <= 1.0 for late in lateness), lateness


async def test_two_workers_share_the_work_and_finish_each_message_once(world: World) -> None:
    world.behaviours = {"dispatch.sms.": accept_and_deliver, "dispatch.email.": accept_and_deliver}
    workers = [Worker(world.url), Worker(world.url)]
    for running in workers:
        await running.start()
    try:
        messages = [
            await world.send(("sms", "+4528123456", 20), ("email", "a@b.test", 20)) for _ in range(300)
        ]
        await world.wait_for(lambda: all(world.final(m.id) for m in messages), timeout_s=60)
        await asyncio.sleep(0.5)
    finally:
        for running in workers:
            await running.stop()
    finals: dict[str, int] = defaultdict(int)
    for event in world.events:
        if event.kind in FINAL_KINDS:
            finals[event.message_id] += 1
    assert all(finals[m.id] == 1 for m in messages)
    assert all(count == 1 for count in world.dispatches.values())
    assert all(engine.counters.steps for engine in (w.engine for w in workers) if engine is not None)
    stepped = [w.engine.counters.steps for w in workers if w.engine is not None]
    assert len(stepped) == 2 and min(stepped) > 0  # both did some of it


async def test_a_dead_letter_replayed_with_its_attempt_base_runs_again_with_new_attempts(
    world: World, worker: Worker
) -> None:
    world.behaviours = {"dispatch.sms.": accept_and_fail, "dispatch.email.": accept_and_fail}
    message = await world.send(("sms", "+4528123456", 10))
    await world.wait_for(lambda: bool(world.final(message.id)))
    [dead] = world.final(message.id)
    assert dead.kind == "dead_lettered" and dead.data["attempt"] == 1
    # what `hermesctl message dlq replay` publishes: the stored message, attempts numbered after the old
    world.behaviours = {"dispatch.sms.": accept_and_deliver}
    replay = msgspec.structs.replace(message, attempt_base=1)
    assert world.client is not None
    await world.client.jetstream().publish(
        accepted_subject(TENANT),
        msgspec.json.encode(replay),
        headers={"Nats-Msg-Id": f"{message.id}:replay:1"},
    )
    await world.wait_for(lambda: len(world.final(message.id)) == 2)
    delivered = world.final(message.id)[-1]
    assert delivered.kind == "delivered" and delivered.data["attempt"] == 2
    assert world.dispatches[(message.id, 1)] == 1 and world.dispatches[(message.id, 2)] == 1
    # the same replay again (a retried publish past the duplicate window) starts nothing
    await world.client.jetstream().publish(accepted_subject(TENANT), msgspec.json.encode(replay))
    await asyncio.sleep(1.0)
    assert len(world.final(message.id)) == 2 and (message.id, 3) not in world.dispatches


async def test_a_redelivered_accept_publishes_its_outbox_again_and_starts_nothing_new(
    world: World, worker: Worker
) -> None:
    # Silent executors: the message stays where its first step left it, so the step's input is the last.
    message = await world.send(("email", "a@b.test", 30))
    await world.wait_for(lambda: kinds(world.of(message.id)) == ["dispatched"])
    engine = worker.engine
    assert engine is not None
    # the accepted input again (a worker died before its ack): its create fails, the record is read,
    # and the same commands go out again under the same ids (JetStream drops them as duplicates)
    await engine.apply(message.id, "accepted:0", Start(), message)
    assert engine.counters.republished == 1 and engine.counters.conflicts == 0
    # the same message accepted again under another input (a retried publish): started already
    await engine.apply(message.id, "accepted:other", Start(), message)
    assert engine.counters.ignored == 1
    await asyncio.sleep(0.5)
    assert len({e.id for e in world.of(message.id)}) == 1  # the core subscriber saw the copy too
    assert world.dispatches[(message.id, 1)] == 1  # the stream did not take it


async def test_a_message_finished_within_its_first_step_leaves_no_timer(world: World, worker: Worker) -> None:
    message = await world.send(("sms", "+4528123450", 10))  # no route, and no other channel
    await world.wait_for(lambda: bool(world.final(message.id)))
    assert kinds(world.of(message.id)) == ["channel_failed", "dead_lettered"]
    assert world.client is not None
    info = await world.client.jetstream().stream_info("TIMERS")
    assert info.state.last_seq == 0  # its channel's timer was left behind within the step: never published


async def test_without_a_router_the_input_is_handed_back_and_nothing_is_written(server: Server) -> None:
    client = await connect(server.url)
    try:
        js = client.jetstream()
        await ensure_streams(js)
        requests = Requests(client)
        await requests.start()
        states = await StateBucket.open(js, requests)
        engine = Engine(client, requests, states, default_timeouts={}, route_timeout_s=5)
        message = Message(
            id=new_message_id(),
            tenant_id=TENANT,
            origin="rest",
            channels=(ChannelTarget(channel="sms", to="+4528123456", timeout_s=10),),
            created_at=time.time(),
            body="hello",
        )
        with pytest.raises(RouterUnavailable, match="no responders"):
            await engine.apply(message.id, "accepted:0", Start(), message)
        assert await states.get(message.id) is None
        await requests.close()
    finally:
        await client.close()
