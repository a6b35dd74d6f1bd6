"""Layers 8 and 9: put an accepted message, its audit record and its `accepted` event on JetStream.

All three are published pipelined and awaited together: the caller answers 202 only once JetStream
has acknowledged every one. `Nats-Msg-Id` makes a retried publish a no-op inside the streams'
duplicate window, so a relay that replays after a crash does not duplicate.

Acks are collected on one wildcard inbox subscription, keyed by a counter in the reply subject.
nats-py's `publish_async` does the same job but spends more per call than the rest of the gateway's
pipeline does (a task per semaphore wait, random tokens); this is its lean equivalent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.bus.streams import accepted_subject, audit_subject, event_subject
from appliance.errors import BusError


class Envelope:
    """One accepted message as bytes, ready to publish (built once, also written to the intake log)."""

    __slots__ = ("accepted_event", "audit", "message", "message_id", "tenant_id")

    def __init__(self, tenant_id: str, message_id: str, message: bytes, audit: bytes, accepted_event: bytes):
        self.tenant_id = tenant_id
        self.message_id = message_id
        self.message = message
        self.audit = audit
        self.accepted_event = accepted_event


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
        acks = _Acks(asyncio.get_running_loop().create_future(), 3 * len(envelopes))
        tokens: list[str] = []
        pending, counter, prefix, publish = self._pending, self._counter, self._prefix, self._nats.publish
        try:
            for env in envelopes:
                tenant, message_id = env.tenant_id, env.message_id
                for subject, payload, msg_id in (
                    (accepted_subject(tenant), env.message, message_id),
                    (audit_subject(tenant), env.audit, f"{message_id}:audit"),
                    (event_subject(tenant, "accepted"), env.accepted_event, f"{message_id}:accepted"),
                ):
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
