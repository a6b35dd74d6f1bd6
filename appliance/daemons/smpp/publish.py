"""The events the smpp daemon puts on EVENTS (`evt.<tenant>.<kind>`): how each is built and published.

Ids are derived from what the event is about, so a redelivered dispatch or a resent receipt produces
the same id: JetStream drops the copy inside its duplicate window (`Nats-Msg-Id`), and the recorder and
cascade recognise it after that.

    submitted   <message>:<attempt>:submitted          data: carrier, parts, carrier_message_ids
    rejected    <message>:<attempt>:rejected           data: carrier, reason, status, status_name, part,
                                                             detail, accepted (ids of parts sent anyway)
    dlr         <message>:<attempt>:dlr:<part>:<stat>  data: carrier, carrier_message_id, part, parts,
                                                             stat, err, outcome, final, attempt_outcome

`rejected` reasons: `refused` (the carrier's permanent status), `retries_exhausted` (temporary errors
every try), `expired` (not wholly sent within smpp.dispatch_max_age_s), `invalid` (the text
cannot be sent as SMS). A dlr's `outcome` is its part's (delivered, failed, pending) and `final` says
whether more can follow; `attempt_outcome` is the whole attempt's so far: delivered once every part is,
failed once any part is, pending otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.bus.streams import event_subject
from appliance.domain.dispatch import SmsDispatch
from appliance.domain.dlr import Outcome, Receipt
from appliance.domain.events import Event
from appliance.errors import BusError
from appliance.store.smpp_base import SmppSubmission

_ENCODER = msgspec.json.Encoder()


class _PubAck(msgspec.Struct):
    seq: int | None = None
    error: dict[str, object] | None = None


_ACK_DECODER = msgspec.json.Decoder(_PubAck)


class EventSink:
    """Publishes one event and returns once JetStream has stored it; `BusError` otherwise.

    Two events per message (`submitted`, `dlr`) go through here. nats-py's `JetStreamContext.publish`
    spends a request inbox with random tokens and a `wait_for` on each, more than the rest of a
    receipt's handling; instead the acks come to one wildcard inbox subscription, keyed by a counter
    in the reply subject (as `bus.publisher.JetStreamPublisher` does for the gateway), and one sweep
    a second fails the publishes unacknowledged after `timeout_s` (no timer per publish)."""

    def __init__(self, nats: NatsClient, *, timeout_s: float = 5.0) -> None:
        self._nats = nats
        self._timeout_s = timeout_s
        self._prefix = nats.new_inbox() + "."
        self._pending: dict[str, tuple[asyncio.Future[None], float]] = {}
        """Publishes awaiting their ack, oldest first: (future, deadline in loop time)."""
        self._counter = itertools.count()
        self._subscription: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self.published = 0

    async def publish(self, event: Event) -> None:
        if self._subscription is None:
            await self._start()
        subject = event_subject(event.tenant_id, event.kind)
        token = str(next(self._counter))
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        self._pending[token] = (acked, loop.time() + self._timeout_s)
        try:
            await self._nats.publish(
                subject, _ENCODER.encode(event), reply=self._prefix + token, headers={"Nats-Msg-Id": event.id}
            )
            await acked
        except BusError:
            raise
        except Exception as exc:
            raise BusError(f"JetStream did not store {event.kind} {event.id}: {exc!r}") from exc
        finally:
            self._pending.pop(token, None)
        self.published += 1

    async def close(self) -> None:
        """Stop listening for acks; publishes still waiting fail. Idempotent."""
        subscription, self._subscription = self._subscription, None
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        pending, self._pending = self._pending, {}
        for acked, _ in pending.values():
            if not acked.done():
                acked.set_exception(BusError("the event sink closed"))

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._subscription is None:
                self._subscription = await self._nats.subscribe(self._prefix + "*", cb=self._on_ack)
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="smpp event acks")

    async def _sweep(self) -> None:
        """Fail the publishes past their deadline; they are the oldest, so the front of `_pending`."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self._timeout_s))
            now = loop.time()
            expired = []
            for token, (_, deadline) in self._pending.items():
                if deadline > now:
                    break
                expired.append(token)
            for token in expired:
                acked, _ = self._pending.pop(token)
                if not acked.done():
                    acked.set_exception(TimeoutError(f"no JetStream ack within {self._timeout_s:g} s"))

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._pending.pop(msg.subject[len(self._prefix) :], None)
        if entry is None or entry[0].done():
            return
        acked = entry[0]
        if msg.headers and msg.headers.get("Status") == "503":
            acked.set_exception(BusError("no JetStream stream answered (no responders)"))
            return
        try:
            ack = _ACK_DECODER.decode(msg.data)
        except msgspec.DecodeError:
            acked.set_exception(BusError(f"unreadable JetStream ack: {msg.data[:100]!r}"))
            return
        if ack.error is not None or ack.seq is None:
            acked.set_exception(BusError(f"JetStream refused the publish: {ack.error}"))
            return
        acked.set_result(None)


def _attempt_event(dispatch: SmsDispatch, kind: str, **data: Any) -> Event:
    """An event about one attempt; its id is the same for a redelivered dispatch, so JetStream drops it."""
    return Event(
        kind=kind,
        id=f"{dispatch.message_id}:{dispatch.attempt}:{kind}",
        message_id=dispatch.message_id,
        tenant_id=dispatch.tenant_id,
        at=time.time(),
        data={"carrier": dispatch.carrier, "attempt": dispatch.attempt, **data},
    )


def submitted_event(dispatch: SmsDispatch, parts: Sequence[SmppSubmission]) -> Event:
    return _attempt_event(
        dispatch,
        "submitted",
        parts=len(parts),
        carrier_message_ids=[part.carrier_message_id for part in parts],
    )


def rejected_event(
    dispatch: SmsDispatch,
    *,
    reason: str,
    status: int | None = None,
    status_name: str | None = None,
    part: int | None = None,
    detail: str = "",
    accepted: Sequence[str] = (),
) -> Event:
    return _attempt_event(
        dispatch,
        "rejected",
        reason=reason,
        status=status,
        status_name=status_name,
        part=part,
        detail=detail,
        accepted=list(accepted),
    )


def attempt_outcome(parts: Sequence[SmppSubmission]) -> Outcome:
    """Delivered once every part is, failed once any part is, else pending (parts missing count too)."""
    if any(part.dlr_outcome == "failed" for part in parts):
        return "failed"
    expected = max((part.parts for part in parts), default=0)
    delivered = {part.part for part in parts if part.dlr_outcome == "delivered"}
    return "delivered" if expected and len(delivered) >= expected else "pending"


def dlr_event(part: SmppSubmission, receipt: Receipt, siblings: Sequence[SmppSubmission]) -> Event:
    """The event for a receipt as the store settled it (`part` holds the state that won)."""
    stat = part.dlr_state or receipt.stat or "UNKNOWN"
    outcome: Outcome = part.dlr_outcome or receipt.outcome
    data: dict[str, Any] = {
        "carrier": part.carrier,
        "carrier_message_id": part.carrier_message_id,
        "attempt": part.attempt,
        "part": part.part,
        "parts": part.parts,
        "stat": stat,
        "err": part.dlr_err if part.dlr_state else receipt.err,
        "outcome": outcome,
        "final": outcome != "pending",
        "attempt_outcome": attempt_outcome(siblings),
        "done_at": receipt.done_date,
    }
    return Event(
        kind="dlr",
        id=f"{part.message_id}:{part.attempt}:dlr:{part.part}:{stat}",
        message_id=part.message_id,
        tenant_id=part.tenant_id,
        at=time.time(),
        data=data,
    )
