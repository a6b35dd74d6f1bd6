"""Many JetStream requests in flight on one inbox: acked publishes and direct gets, lean.

nats-py's `js.publish` and `kv.get` each make a request with its own `wait_for` task and random inbox
token; at a few thousand steps a second that overhead is most of what the cascade spends. Here every
request publishes with a reply subject under one wildcard inbox (a counter for the token) and waits on
a plain future; the caller bounds a whole step with one `asyncio.timeout`. The gateway's
`JetStreamPublisher` does the same for the publishes of accepted messages.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.errors import BusError


class PublishRefused(BusError):
    """JetStream refused a publish; `code` is its API error code (10071: wrong last sequence)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class _Error(msgspec.Struct):
    code: int | None = None
    err_code: int | None = None
    description: str | None = None


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: _Error | None = None


_ACK: Final = msgspec.json.Decoder(_PubAck)


class Requests:
    """`await start()`, then `publish(...)` / `direct_get(...)`; `close()` when done."""

    def __init__(self, nats: NatsClient) -> None:
        self._nats = nats
        self._prefix = nats.new_inbox() + "."
        self._pending: dict[str, asyncio.Future[Msg]] = {}
        self._counter = itertools.count()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        if self._subscription is None:
            self._subscription = await self._nats.subscribe(self._prefix + "*", cb=self._on_reply)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    async def _on_reply(self, msg: Msg) -> None:
        future = self._pending.pop(msg.subject[len(self._prefix) :], None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> Msg:
        """Send and wait for the one reply (unbounded: callers bound the step with asyncio.timeout)."""
        if self._subscription is None:
            await self.start()
        token = str(next(self._counter))
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        try:
            await self._nats.publish(subject, payload, reply=self._prefix + token, headers=headers)
            return await future
        finally:
            self._pending.pop(token, None)

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> int:
        """Publish to a stream; the stored sequence. `PublishRefused` if JetStream said no."""
        return _stored(subject, await self.request(subject, payload, headers))

    async def publish_all(self, publishes: Sequence[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish several to streams, all sent before any ack is awaited (one flush, no task per
        publish); returns once every one is stored, else raises the first `PublishRefused`."""
        if self._subscription is None:
            await self.start()
        waiting: list[tuple[str, str, asyncio.Future[Msg]]] = []
        loop = asyncio.get_running_loop()
        try:
            for subject, payload, headers in publishes:
                token = str(next(self._counter))
                future: asyncio.Future[Msg] = loop.create_future()
                self._pending[token] = future
                waiting.append((token, subject, future))
                await self._nats.publish(subject, payload, reply=self._prefix + token, headers=headers)
            for _, subject, future in waiting:
                _stored(subject, await future)
        finally:
            for token, _, _ in waiting:
                self._pending.pop(token, None)

    async def direct_get(self, stream: str, subject: str) -> Msg | None:
        """The last message on `subject` (a direct get: any replica answers), or None."""
        reply = await self.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"")
        if not reply.data and reply.headers and reply.headers.get("Status"):
            if reply.headers["Status"] == "404":
                return None
            raise BusError(f"direct get of {subject} failed: {reply.headers}")
        return reply


def _stored(subject: str, reply: Msg) -> int:
    """The stream sequence a publish's reply reports; `PublishRefused` if JetStream said no."""
    if reply.headers and reply.headers.get("Status") == "503":
        raise PublishRefused(f"no stream takes {subject} (no responders)", None)
    try:
        ack = _ACK.decode(reply.data)
    except msgspec.DecodeError as exc:
        raise PublishRefused(f"unreadable JetStream ack: {reply.data[:100]!r}", None) from exc
    if ack.error is not None or ack.seq is None:
        code = ack.error.err_code if ack.error else None
        raise PublishRefused(f"JetStream refused {subject}: {ack.error}", code)
    return ack.seq
