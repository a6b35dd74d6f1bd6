"""The cascade's three durable pull consumers, shared by every cascade worker:

    cascade          MESSAGES  msg.accepted.>                 -> Start
    cascade-events   EVENTS    evt.*.{submitted,rejected,dlr,bounce}  -> the executor's outcome
    cascade-timers   TIMERS    cascade.timer.>                -> Timeout once due

Each fetched message is worked on concurrently (up to `concurrency` per worker) and acked on its own
once `Engine.apply` returned; a failure hands it back with a short delay. A timer fetched before it is
due is handed back with `nak(delay=remaining)`: JetStream holds it and redelivers it at its deadline,
across restarts of the cascade and of nats-server, so the process holds nothing per waiting message.
Malformed input is logged and terminated (never redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from appliance.bus.batch_consumer import Puller, wake_on_stop
from appliance.daemons.cascade.engine import Engine, Timer
from appliance.daemons.cascade.routes import RouterUnavailable
from appliance.domain.cascade import Start, Timeout
from appliance.domain.cascade_inputs import EXECUTOR_KINDS, from_executor
from appliance.domain.events import EVENT_DECODER
from appliance.domain.message import Message
from appliance.logs import get_logger

log = get_logger("hermes.cascade")
_MESSAGE_DECODER: Final = msgspec.json.Decoder(Message)
_TIMER_DECODER: Final = msgspec.json.Decoder(Timer)
_RETRY_DELAY_S: Final = 1.0
_DUE_SLACK_S: Final = 0.0005


@dataclass(frozen=True)
class Source:
    stream: str
    durable: str
    subjects: tuple[str, ...]
    deliver: DeliverPolicy
    ack_wait_s: float
    max_ack_pending: int


SOURCES: Final = (
    Source("MESSAGES", "cascade", ("msg.accepted.>",), DeliverPolicy.ALL, 30.0, 4_096),
    # Only executors' kinds: the cascade's own events never come back to it. NEW: there is nothing for
    # the cascade in events from before it first ran.
    Source(
        "EVENTS",
        "cascade-events",
        tuple(f"evt.*.{kind}" for kind in EXECUTOR_KINDS),
        DeliverPolicy.NEW,
        30.0,
        8_192,
    ),
    # Every waiting message holds one unacked timer here: room for millions. A short ack_wait because
    # nak delays may not survive a crash of nats-server: a timer it forgot comes back within it, and is
    # handed back again with the time that remains.
    Source("TIMERS", "cascade-timers", ("cascade.timer.>",), DeliverPolicy.ALL, 0.75, 2_000_000),
)


def consumer_config(source: Source) -> ConsumerConfig:
    subjects = list(source.subjects)
    return ConsumerConfig(
        name=source.durable,
        durable_name=source.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=source.deliver,
        ack_wait=source.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=source.max_ack_pending,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )


class Inputs:
    """Runs the three consumers into one `Engine` until `stopping` is set."""

    def __init__(
        self, nats: NatsClient, js: JetStreamContext, engine: Engine, *, concurrency: int = 256
    ) -> None:
        self._nats = nats
        self._js = js
        self._engine = engine
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        self._batch = max(1, min(concurrency, 256))
        self.handled = 0
        self.failed = 0

    async def run(self, stopping: asyncio.Event) -> None:
        handlers: dict[str, Callable[[Msg], Awaitable[None]]] = {
            "MESSAGES": self._on_message,
            "EVENTS": self._on_event,
            "TIMERS": self._on_timer,
        }
        pullers = []
        for source in SOURCES:
            await _ensure_consumer(self._js, source)
            puller = Puller(self._nats, stream=source.stream, durable=source.durable, batch=self._batch)
            await puller.start()
            pullers.append((source, puller))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(wake_on_stop(stopping, [p for _, p in pullers]))
                for source, puller in pullers:
                    group.create_task(
                        self._fetch_loop(source, puller, handlers[source.stream], stopping, group)
                    )
        finally:
            for _, puller in pullers:
                await puller.close()

    async def _fetch_loop(
        self,
        source: Source,
        puller: Puller,
        handler: Callable[[Msg], Awaitable[None]],
        stopping: asyncio.Event,
        group: asyncio.TaskGroup,
    ) -> None:
        delay = 0.1
        while not stopping.is_set():
            try:
                messages = await puller.next(room=self._concurrency - self._in_flight)
            except Exception as exc:  # refused, or the bus reconnecting: try again soon
                log.warning(
                    "fetch failed", action="cascade.fetch_failed", durable=source.durable, error=repr(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for message in messages:
                await self._slots.acquire()
                self._in_flight += 1
                group.create_task(self._guarded(handler, message))

    async def _guarded(self, handler: Callable[[Msg], Awaitable[None]], message: Msg) -> None:
        try:
            await handler(message)
            self.handled += 1
        except Exception as exc:
            self.failed += 1
            level = log.warning if isinstance(exc, RouterUnavailable) else log.error
            level(
                "input handed back", action="cascade.input_failed", subject=message.subject, error=repr(exc)
            )
            with contextlib.suppress(Exception):
                await message.nak(delay=_RETRY_DELAY_S)
        finally:
            self._in_flight -= 1
            self._slots.release()

    async def _on_message(self, msg: Msg) -> None:
        try:
            message = _MESSAGE_DECODER.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await _malformed(msg, exc)
            return
        await self._engine.apply(message.id, f"accepted:{message.attempt_base}", Start(), message)
        await msg.ack()

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = EVENT_DECODER.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await _malformed(msg, exc)
            return
        meaning = from_executor(event)
        if meaning is not None:
            await self._engine.apply(event.message_id, event.id, meaning)
        await msg.ack()

    async def _on_timer(self, msg: Msg) -> None:
        try:
            timer = _TIMER_DECODER.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await _malformed(msg, exc)
            return
        remaining = timer.due - time.time()
        if remaining > _DUE_SLACK_S:
            await msg.nak(delay=remaining)  # JetStream holds it until it is due
            return
        await self._engine.apply(
            timer.message_id, f"timer:{timer.attempt}", Timeout(timer.attempt), not_before=timer.due
        )
        await msg.ack()


async def _ensure_consumer(js: JetStreamContext, source: Source) -> None:
    try:
        await js.add_consumer(source.stream, consumer_config(source))
    except Exception as exc:  # a change the server will not apply: the existing consumer still works
        log.warning(
            "consumer not updated", action="cascade.consumer_kept", durable=source.durable, error=repr(exc)
        )


async def _malformed(msg: Msg, exc: Exception) -> None:
    log.error("malformed input dropped", action="cascade.malformed", subject=msg.subject, error=str(exc))
    await msg.term()
