"""Durable pull consumers with batches: the shape the bus-driven daemons that project events use
(the recorder, the notifier).

A handler gets a batch of messages and returns once their effect is durable; only then is the batch
acked, with one ack for the last message (AckPolicy.ALL acknowledges everything before it too: one
round trip per batch instead of one per message).

Why not nats-py's `PullSubscription.fetch`: it spends an asyncio task, a `wait_for` and a uuid on
every message it returns, and when messages trickle in (a few per millisecond) each fetch returns a
handful, so every handful also pays for a pull request and an ack. Here one long pull request (up to
`batch` messages, for `wait_s`) stays open on the server; its messages arrive in a subscription
callback that only appends them to a list. Once the first message is there, `linger_s` lets more join
it, then the handler gets them all. The price is up to `linger_s` of extra latency.

Handlers must be idempotent (a message may come again) and skip (log) a malformed message rather
than raise. A handler that raises gets the same messages again (with any that arrived since) after a
backoff, before anything newer is acked: with AckPolicy.ALL, acking a later message would also ack
the failed ones, and they would never come back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from appliance.logs import get_logger

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
log = get_logger("hermes.consumer")
_STATUS = "Status"
_HEARTBEAT = "100"
_EXPIRED = "408"  # the pull request ran its time: ask again at once


class _Inbox:
    """What the server delivered for the open pull request, gathered by the subscription callback."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self.open = 0
        """How many messages the open pull request may still deliver (0: none open, ask again)."""
        self.ended: str | None = None
        """The status that ended the last pull request early (None when it ran its course or time)."""
        self.arrived = asyncio.Event()

    async def receive(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self.messages.append(msg)
            self.open -= 1
        elif status == _HEARTBEAT:
            return
        else:  # 408 expired, 404 nothing (no_wait), 409 conflict (e.g. too many waiting requests)
            self.open = 0
            self.ended = None if status == _EXPIRED else status
        self.arrived.set()


async def _ensure_consumer(nats: NatsClient, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer unless it exists (then its config is left as it is, like
    `pull_subscribe` does)."""
    js = nats.jetstream()
    assert config.durable_name is not None
    try:
        await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config=config)


def batch_consumer_config(
    durable: str, subjects: str | Sequence[str], *, batch: int = 500, ack_wait_s: float = 30.0
) -> ConsumerConfig:
    """The durable consumer `consume_batches` reads from (one filter subject, or several)."""
    filters = [subjects] if isinstance(subjects, str) else list(subjects)
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=AckPolicy.ALL,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_ack_pending=batch * 4,
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=filters if len(filters) > 1 else None,
    )


async def consume_batches(
    nats: NatsClient,
    *,
    stream: str,
    durable: str,
    subject: str | Sequence[str],
    handler: BatchHandler,
    stopping: asyncio.Event,
    batch: int = 500,
    wait_s: float = 0.5,
    linger_s: float = 0.05,
    ack_wait_s: float = 30.0,
    api_prefix: str = "$JS.API",
) -> None:
    """Pull, gather, handle and ack batches until `stopping` is set."""
    config = batch_consumer_config(durable, subject, batch=batch, ack_wait_s=ack_wait_s)
    await _ensure_consumer(nats, stream, config)
    puller = Puller(nats, stream=stream, durable=durable, batch=batch, wait_s=wait_s, api_prefix=api_prefix)
    await puller.start()
    held: list[Msg] = []  # a batch whose handler failed: tried again, with what arrives meanwhile
    delay = 0.1
    waker = asyncio.create_task(wake_on_stop(stopping, [puller]))
    try:
        while not stopping.is_set():
            if not held:
                try:
                    held = await puller.next(room=batch)
                except PullRefused as exc:
                    log.warning(
                        "pull request refused; asking again",
                        action="consumer.pull_refused",
                        durable=durable,
                        status=str(exc),
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if not held:
                    continue
            if linger_s > 0 and len(held) < batch:
                await asyncio.sleep(linger_s)
            messages = held = held + puller.take()
            try:
                await handler(messages)
            except Exception as exc:
                log.error(
                    "batch handler failed; it will be tried again",
                    action="consumer.handler_failed",
                    durable=durable,
                    count=len(messages),
                    error=str(exc) or type(exc).__name__,
                )
                await asyncio.sleep(delay)  # kept in `held`: acking a later one would ack these
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            held = []
            await messages[-1].ack()
    finally:
        waker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waker
        await puller.close()


class PullRefused(Exception):
    """The server ended a pull request with a status other than "expired" (409, 404, ...): its
    message is that status."""


class Puller:
    """The messages of a durable pull consumer as they come, for consumers that ack each message on its
    own (the cascade): the same one-open-pull-request shape as `consume_batches`, without its batches.

    `next(room)` opens a pull request for up to `min(batch, room)` messages when none is open, and
    returns what has arrived (waiting up to `wait_s` for the first); [] when the wait ended with none.
    """

    def __init__(
        self,
        nats: NatsClient,
        *,
        stream: str,
        durable: str,
        batch: int = 256,
        wait_s: float = 0.5,
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nats = nats
        self._batch = batch
        self._wait_s = wait_s
        self._pull_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._reply = nats.new_inbox()
        self._inbox = _Inbox()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        if self._subscription is None:
            self._subscription = await self._nats.subscribe(self._reply, cb=self._inbox.receive)

    async def close(self) -> None:
        """Stop taking messages; those delivered but not handed over go back at once (nak), rather
        than when their ack wait runs out."""
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        held, self._inbox.messages = self._inbox.messages, []
        for message in held:
            with contextlib.suppress(Exception):
                await message.nak()

    def wake(self) -> None:
        """End a wait in `next` now (the daemon is stopping)."""
        self._inbox.arrived.set()

    def take(self) -> list[Msg]:
        """What has arrived, without waiting (and without asking for more)."""
        messages, self._inbox.messages = self._inbox.messages, []
        return messages

    async def next(self, room: int) -> list[Msg]:
        """What arrived, [] after a wait with nothing; PullRefused when the server refused the request."""
        await self.start()
        inbox = self._inbox
        if inbox.open <= 0:
            wanted = max(1, min(self._batch, room))
            inbox.open, inbox.ended = wanted, None
            pull = msgspec.json.encode({"batch": wanted, "expires": int(self._wait_s * 1e9)})
            await self._nats.publish(self._pull_subject, pull, reply=self._reply)
        if not inbox.messages:
            inbox.arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait_s + 1.0):
                    await inbox.arrived.wait()
            if not inbox.messages:
                if not inbox.arrived.is_set():
                    inbox.open = 0  # no answer at all (reconnected?): the request is lost
                if inbox.ended is not None:
                    ended, inbox.ended = inbox.ended, None
                    raise PullRefused(ended)
                return []
        return self.take()


async def wake_on_stop(stopping: asyncio.Event, pullers: Sequence[Puller]) -> None:
    """End the pullers' waits as soon as the daemon stops, not when their pull requests expire."""
    await stopping.wait()
    for puller in pullers:
        puller.wake()
