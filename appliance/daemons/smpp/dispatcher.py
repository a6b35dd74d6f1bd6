"""`Dispatcher`: one carrier's `dispatch.sms.<carrier>` queue into its `CarrierPool`.

A durable pull consumer per carrier on DISPATCH (`smpp-<carrier>`), explicit per-message acks (a
dispatch is acked only once its parts' submit_sm_resps are recorded and its event stored: see
`attempt.AttemptSender`, which does the work), at most `dispatches_per_slot` times the pool's capacity
of dispatches at once (the pool lets only its capacity of submits out).
While a dispatch is worked on, progress is reported every third of `ack_wait_s`, so JetStream does
not hand it out again meanwhile; if it does anyway (a slow store, say), the copy is not worked on
twice: the first handler acks the newest copy. Malformed dispatches are terminated (never redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from appliance.bus.batch_consumer import Puller
from appliance.daemons.smpp.attempt import AttemptSender
from appliance.daemons.smpp.batching import SubmissionBook
from appliance.daemons.smpp.pool import CarrierPool
from appliance.daemons.smpp.publish import EventSink
from appliance.daemons.smpp.receipts import PendingIds
from appliance.daemons.smpp.settings import SmppSettings
from appliance.domain.dispatch import SmsDispatch, sms_subject
from appliance.logs import get_logger

STREAM = "DISPATCH"
_DECODER = msgspec.json.Decoder(SmsDispatch)
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")
_PULL_BATCH = 100
log = get_logger("hermes.smpp")


def durable_name(carrier: str) -> str:
    return "smpp-" + _NOT_A_NAME.sub("_", carrier)


class Dispatcher:
    """`await start()`, then `halt()` and `await stop(drain_s)`."""

    def __init__(
        self,
        pool: CarrierPool,
        *,
        nats: NatsClient,
        book: SubmissionBook,
        sink: EventSink,
        settings: SmppSettings,
        pending: PendingIds,
    ) -> None:
        self.pool = pool
        self.attempts = AttemptSender(pool, book=book, sink=sink, settings=settings, pending=pending)
        self.limit = max(1, pool.capacity * settings.dispatches_per_slot)
        self.handed_back = 0
        self._nats = nats
        self._js = nats.jetstream()
        self._settings = settings
        self._puller: Puller | None = None
        self._active: dict[tuple[str, int], Msg] = {}
        self._running = 0
        self._room = asyncio.Event()
        self._halted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create (or update) the durable consumer and start fetching."""
        name = durable_name(self.pool.name)
        subject = sms_subject(self.pool.name)
        config = ConsumerConfig(
            name=name,
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._settings.ack_wait_s,
            max_ack_pending=max(64, self.limit * 2),
            filter_subject=subject,
        )
        try:
            await self._js.add_consumer(STREAM, config)
        except Exception as exc:  # e.g. a change the server will not apply: the old consumer still works
            log.warning(
                "dispatch consumer not updated", action="smpp.consumer_kept", durable=name, error=repr(exc)
            )
        self._puller = Puller(self._nats, stream=STREAM, durable=name, batch=_PULL_BATCH)
        await self._puller.start()
        self._task = asyncio.create_task(self._run(self._puller), name=f"smpp dispatch {self.pool.name}")

    def halt(self) -> None:
        """Fetch nothing more; dispatches under way carry on."""
        self._halted.set()
        self._room.set()
        if self._puller is not None:
            self._puller.wake()

    async def stop(self, drain_s: float) -> None:
        """Halt, give dispatches under way `drain_s` to finish, cancel the rest (they are redelivered)."""
        self.halt()
        task, self._task = self._task, None
        if task is None:
            return
        _, pending = await asyncio.wait([task], timeout=drain_s + 1.0)
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, puller: Puller) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                keeper = group.create_task(self._keep_alive())
                await self._fetch_loop(puller, group)
                keeper.cancel()
        finally:
            await puller.close()  # what it still holds goes back at once

    async def _fetch_loop(self, puller: Puller, group: asyncio.TaskGroup) -> None:
        delay = 0.1
        while not self._halted.is_set():
            free = self.limit - self._running
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                messages = await puller.next(room=free)
            except Exception as exc:  # refused, or the bus reconnecting: try again soon
                log.warning(
                    "dispatch fetch failed",
                    action="smpp.fetch_failed",
                    carrier=self.pool.name,
                    error=repr(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for message in messages:
                self._running += 1
                group.create_task(self._handle(message))

    async def _keep_alive(self) -> None:
        """Tell JetStream, every third of ack_wait, that the dispatches under way are being worked on."""
        while True:
            await asyncio.sleep(self._settings.ack_wait_s / 3)
            for message in list(self._active.values()):
                with contextlib.suppress(Exception):
                    await message.in_progress()

    async def _handle(self, message: Msg) -> None:
        try:
            await self._handle_one(message)
        except Exception as exc:
            log.error(
                "dispatch failed; handed back",
                action="smpp.dispatch_failed",
                carrier=self.pool.name,
                error=repr(exc),
            )
            with contextlib.suppress(Exception):
                await message.nak(delay=self._settings.redeliver_delay_s)
        finally:
            self._running -= 1
            self._room.set()

    async def _handle_one(self, message: Msg) -> None:
        try:
            dispatch = _DECODER.decode(message.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "malformed dispatch dropped", action="smpp.malformed", subject=message.subject, error=str(exc)
            )
            await message.term()
            return
        if dispatch.carrier != self.pool.name:  # the subject decides where it goes
            dispatch = msgspec.structs.replace(dispatch, carrier=self.pool.name)
        key = (dispatch.message_id, dispatch.attempt)
        if key in self._active:  # redelivered while we work on it: the first handler acks this copy
            self._active[key] = message
            return
        self._active[key] = message
        try:
            verdict = await self.attempts.send(dispatch)
        finally:
            latest = self._active.pop(key)
        if verdict == "ack":
            await latest.ack()
        else:
            self.handed_back += 1
            await latest.nak(delay=self._settings.redeliver_delay_s)
