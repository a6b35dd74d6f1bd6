"""Layers 8 and 9: put accepted messages, their audit records and their `accepted` events on JetStream.

Each message is one publish on MESSAGES (the cascade's work queue needs them one by one). Its audit
record and its `accepted` event need not be: the messages of one call share, per tenant, one AUDIT
publish (a JSON array of their records) and one `accepted` event listing them all (`Event.messages`;
consumers split it with `events.expand`). A JetStream publish costs the gateway and nats-server more
than the rest of the pipeline does, so this is a third of the publishes when a call carries many
messages (a batch, the submits of SMPP windows, the REST requests of one loop turn: `CoalescingSink`).
Everything is published pipelined and awaited together: the caller answers 202 only once JetStream
has acknowledged every one. `Nats-Msg-Id` makes a retried publish a no-op inside the streams'
duplicate window, so a relay that replays after a crash does not duplicate (a group that comes again
in another grouping is stored again; its consumers are idempotent per message).

Acks are collected on one wildcard inbox subscription, keyed by a counter in the reply subject.
nats-py's `publish_async` does the same job but spends more per call than the rest of the gateway's
pipeline does (a task per semaphore wait, random tokens); this is its lean equivalent.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.bus.streams import accepted_subject, audit_subject, event_subject
from appliance.errors import BusError


class Envelope:
    """One accepted message as bytes, ready to publish (built once, also written to the intake log):
    the message as published on MESSAGES, its audit record, and when it was accepted."""

    __slots__ = ("accepted_at", "audit", "message", "message_id", "tenant_id")

    def __init__(self, tenant_id: str, message_id: str, message: bytes, audit: bytes, accepted_at: float):
        self.tenant_id = tenant_id
        self.message_id = message_id
        self.message = message
        self.audit = audit
        self.accepted_at = accepted_at


def _group_id(kind: str, envelopes: Sequence[Envelope]) -> str:
    """The Nats-Msg-Id of a tenant's shared audit or accepted publish: the message's own for one, a
    digest of the ids for several (the same group published again is a duplicate)."""
    if len(envelopes) == 1:
        return f"{envelopes[0].message_id}:{kind}"
    digest = hashlib.blake2b("|".join(env.message_id for env in envelopes).encode(), digest_size=12)
    return f"group:{digest.hexdigest()}:{kind}"


GROUP_BYTES: Final = 512 * 1024
"""Most message bytes one shared `accepted` event carries: half of NATS' default max_payload (1 MB), so
an event fits any server, whatever the batch (a REST batch may be 10 MB)."""


def size_groups(envelopes: Sequence[Envelope], max_bytes: int = GROUP_BYTES) -> list[Sequence[Envelope]]:
    """`envelopes` in order, cut into runs whose messages add up to at most `max_bytes` (a larger
    message is a run of its own)."""
    groups: list[Sequence[Envelope]] = []
    start, size = 0, 0
    for index, env in enumerate(envelopes):
        if index > start and size + len(env.message) > max_bytes:
            groups.append(envelopes[start:index])
            start, size = index, 0
        size += len(env.message)
    if start < len(envelopes):
        groups.append(envelopes[start:])
    return groups


def audit_payload(envelopes: Sequence[Envelope]) -> bytes:
    """One AUDIT message: the records of `envelopes` (one tenant's), as a JSON array."""
    return b"[" + b",".join(env.audit for env in envelopes) + b"]"


def accepted_payload(envelopes: Sequence[Envelope]) -> bytes:
    """One `accepted` event for `envelopes` (one tenant's): the first message's id names it, and
    `messages` carries every message (the recorder stores them from it)."""
    first = envelopes[0]
    head = msgspec.json.encode(
        {
            "kind": "accepted",
            "id": _group_id("accepted", envelopes),
            "message_id": first.message_id,
            "tenant_id": first.tenant_id,
            "at": first.accepted_at,
            "state": "created",
        }
    )
    return head[:-1] + b',"messages":[' + b",".join(env.message for env in envelopes) + b"]}"


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    error: dict[str, object] | None = None


_ACK_DECODER = msgspec.json.Decoder(_PubAck)


class _Acks:
    """The acks one `publish` call waits for: one future, resolved when the last ack arrives."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], remaining: int) -> None:
        self.future = future
        self.remaining = remaining


class JetStreamPublisher:
    def __init__(self, nats: NatsClient, *, ack_timeout_s: float = 10.0) -> None:
        self._nats = nats
        self._timeout = ack_timeout_s
        self._prefix = nats.new_inbox() + "."
        self._pending: dict[str, _Acks] = {}
        self._counter = itertools.count()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self._nats.subscribe(self._prefix + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        acks = self._pending.pop(msg.subject[len(self._prefix) :], None)
        if acks is None or acks.future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            acks.future.set_exception(BusError("no JetStream stream answered (no responders)"))
            return
        try:
            ack = _ACK_DECODER.decode(msg.data)
        except msgspec.DecodeError:
            acks.future.set_exception(BusError(f"unreadable JetStream ack: {msg.data[:100]!r}"))
            return
        if ack.error is not None or ack.seq is None:
            acks.future.set_exception(BusError(f"JetStream refused the publish: {ack.error}"))
            return
        acks.remaining -= 1
        if acks.remaining == 0:
            acks.future.set_result(None)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish every envelope; raise BusError unless JetStream acknowledged all of them.

        All publishes share one `_Acks`: one future to await per call, however many envelopes."""
        if self._subscription is None:
            await self.start()
        if not envelopes:
            return
        by_tenant: dict[str, list[Envelope]] = {}
        for env in envelopes:
            by_tenant.setdefault(env.tenant_id, []).append(env)
        publishes = [(accepted_subject(env.tenant_id), env.message, env.message_id) for env in envelopes]
        for tenant, envelopes_of_tenant in by_tenant.items():
            for group in size_groups(envelopes_of_tenant):
                publishes.append((audit_subject(tenant), audit_payload(group), _group_id("audit", group)))
                publishes.append(
                    (event_subject(tenant, "accepted"), accepted_payload(group), _group_id("accepted", group))
                )
        acks = _Acks(asyncio.get_running_loop().create_future(), len(publishes))
        tokens: list[str] = []
        pending, counter, prefix, publish = self._pending, self._counter, self._prefix, self._nats.publish
        try:
            for subject, payload, msg_id in publishes:
                token = str(next(counter))
                pending[token] = acks
                tokens.append(token)
                await publish(subject, payload, reply=prefix + token, headers={"Nats-Msg-Id": msg_id})
            async with asyncio.timeout(self._timeout):
                await acks.future
        except BusError:
            raise
        except Exception as exc:
            raise BusError(f"JetStream did not acknowledge the publish: {exc or type(exc).__name__}") from exc
        finally:
            for token in tokens:  # acks that never came must not pile up
                pending.pop(token, None)
            if not acks.future.done():
                acks.future.cancel()


Sink = Callable[[Sequence[Envelope]], Awaitable[None]]


class CoalescingSink:
    """Sink calls made in one turn of the event loop share one call of the sink underneath.

    Concurrent REST requests each accept one message; their handlers run in the same loop turn when
    their requests arrived together. Each waits here; at the end of the turn one `publish` carries
    all their envelopes (one wait for the acks, the audit and `accepted` publishes shared per tenant).
    Every caller still returns only once its own envelopes are durable, and all fail together if the
    publish fails. A caller that is cancelled (its client went away) does not cancel the others'.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queued: list[Envelope] = []
        self._done: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, envelopes: Sequence[Envelope]) -> None:
        if self._done is None:
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            loop.call_soon(self._flush)
        self._queued.extend(envelopes)
        await asyncio.shield(self._done)

    def _flush(self) -> None:
        queued, done = self._queued, self._done
        self._queued, self._done = [], None
        assert done is not None
        task = asyncio.get_running_loop().create_task(self._run(queued, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, envelopes: list[Envelope], done: asyncio.Future[None]) -> None:
        try:
            await self._sink(envelopes)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
                done.exception()  # retrieved here: when every caller has gone, nothing logs it as lost
        else:
            if not done.done():
                done.set_result(None)
