"""Receipts for SMPP clients: final cascade events become deliver_sm on the tenant's receiver binds.

Durability: each tenant gets a durable JetStream pull consumer on EVENTS (`smpp_receipts_<tenant>`,
filtered to `evt.<tenant>.delivered|dead_lettered|failed`), created the first time one of its SMPP
logins binds, before the bind is answered, so no outcome of a message submitted over SMPP can be
missed. While the tenant has a receiver or transceiver bind, a pump keeps one long pull request open
on the consumer for as many events as the binds' windows have room for (`_Pull`: the server delivers
them as they come, into a subscription callback that only gathers them; one request per window's
worth, not a request and a `wait_for` per event as nats-py's `fetch` would) and relays each batch
that arrived: events that owe no receipt (REST messages, receipts not asked for) are acked at once;
the others are acked only after the client answered every deliver_sm with deliver_sm_resp OK. A
failure (no bind left, timeout, an error status) naks the event, so JetStream delivers it again, on
this bind or the next. While nobody is bound, events simply wait in the consumer (any that a pull
still delivers are naked at once). Several gateway processes may pull from the same durable consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from appliance.bus.streams import event_subject
from appliance.domain.events import EVENT_DECODER, FINAL_KINDS
from appliance.domain.receipt_text import PlannedReceipt, plan_receipts
from appliance.logs import get_logger
from appliance.protocols.smpp.constants import EsmClass
from appliance.protocols.smpp.pdu import DeliverSm, Pdu
from appliance.protocols.smpp.tlv import Tlvs

STREAM: Final = "EVENTS"
_FETCH_MAX: Final = 500
_PULL_WAIT_S: Final = 1.0
"""How long one pull request stays open on the server waiting for events."""
_RETRY_DELAY_S: Final = 1.0
_API: Final = "$JS.API"
log = get_logger("hermes.gateway.smpp")


class Receiver(Protocol):
    """A bound session that can take deliver_sm (`ClientSession`)."""

    system_id: str | None
    receipts_sent: int

    @property
    def room(self) -> int: ...

    async def issue(self, pdu: Pdu, timeout_s: float = 30.0) -> asyncio.Future[Pdu]: ...


def durable_name(tenant_id: str) -> str:
    return f"smpp_receipts_{tenant_id}"


def receipt_pdu(receipt: PlannedReceipt) -> DeliverSm:
    """The deliver_sm of one receipt: esm_class "delivery receipt", the appendix-B text in ASCII,
    and the receipted_message_id / message_state TLVs."""
    src_ton, src_npi, src = receipt.source
    dst_ton, dst_npi, dst = receipt.destination
    return DeliverSm(
        0,
        source_addr_ton=src_ton,
        source_addr_npi=src_npi,
        source_addr=src[:20],
        dest_addr_ton=dst_ton,
        dest_addr_npi=dst_npi,
        destination_addr=dst[:20],
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        short_message=receipt.text.encode("ascii", "replace")[:254],
        tlvs=Tlvs(receipted_message_id=receipt.message_id, message_state=receipt.message_state),
    )


class _Pull:
    """One long pull request at a time on a durable consumer; the subscription callback gathers what the
    server delivers for it and sets `wake`."""

    def __init__(self, nats: NatsClient, durable: str, wake: asyncio.Event) -> None:
        self._nats = nats
        self._subject = f"{_API}.CONSUMER.MSG.NEXT.{STREAM}.{durable}"
        self._inbox = nats.new_inbox()
        self._wake = wake
        self._subscription: Subscription | None = None
        self.messages: list[Msg] = []
        self.open = 0
        """Events the open request may still deliver (0: none open)."""
        self.asked_at = 0.0
        self.refused: str | None = None
        """The status that ended the last request early (None when it was filled or ran its time)."""

    async def start(self) -> None:
        self.messages, self.open, self.refused = [], 0, None
        self._subscription = await self._nats.subscribe(self._inbox, cb=self._receive)

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def ask(self, batch: int, now: float) -> None:
        self.open, self.asked_at, self.refused = batch, now, None
        request = msgspec.json.encode({"batch": batch, "expires": int(_PULL_WAIT_S * 1e9)})
        await self._nats.publish(self._subject, request, reply=self._inbox)

    def lost(self, now: float) -> bool:
        """No end came for the open request well after it expired (a reconnect lost it)."""
        return self.open > 0 and now - self.asked_at > _PULL_WAIT_S + 1.0

    def take(self) -> list[Msg]:
        messages, self.messages = self.messages, []
        return messages

    async def _receive(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self.messages.append(msg)
            self.open = max(0, self.open - 1)
        elif status == "100":  # an idle heartbeat
            return
        else:  # 408 expired, 409 conflict (too many waiting requests, consumer deleted...)
            self.open = 0
            self.refused = None if status == "408" else status
        self._wake.set()


class ReceiptRelay:
    """Per-tenant durable consumers and the pumps that drain them into receiver binds."""

    def __init__(self, nats: NatsClient, *, timeout_s: float = 30.0) -> None:
        self._nats = nats
        self._js = nats.jetstream()
        self._timeout_s = timeout_s
        self._receivers: Callable[[str], Sequence[Receiver]] = lambda _tenant: ()
        self._consumers: set[str] = set()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        self._relays: set[asyncio.Task[None]] = set()
        self._closing = False

    def set_receivers(self, receivers: Callable[[str], Sequence[Receiver]]) -> None:
        """Where the relay finds a tenant's receiver binds (the SMPP server's live sessions)."""
        self._receivers = receivers

    async def ensure_consumer(self, tenant_id: str) -> None:
        """Create the tenant's durable consumer unless it exists; from then on its outcomes queue."""
        if tenant_id in self._consumers:
            return
        name = durable_name(tenant_id)
        try:
            await self._js.consumer_info(STREAM, name)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=name,
                description=f"SMPP delivery receipts of tenant {tenant_id}",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW,
                ack_wait=2 * self._timeout_s + 5.0,
                max_ack_pending=20_000,
                filter_subjects=[event_subject(tenant_id, kind) for kind in sorted(FINAL_KINDS)],
            )
            await self._js.add_consumer(STREAM, config)
            log.info("smpp receipt queue created", action="smpp.receipt_queue", tenant_id=tenant_id)
        self._consumers.add(tenant_id)

    async def queued(self, tenant_id: str) -> int | None:
        """Final events of the tenant not yet relayed (or acked as owing nothing); None if unknown."""
        try:
            info = await self._js.consumer_info(STREAM, durable_name(tenant_id), timeout=1.0)
        except Exception:
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def attach(self, tenant_id: str) -> None:
        """A receiver bind of the tenant appeared: run its pump (once)."""
        self.wake(tenant_id)
        pump = self._pumps.get(tenant_id)
        if pump is None or pump.done():
            self._pumps[tenant_id] = asyncio.get_running_loop().create_task(
                self._pump(tenant_id), name=f"smpp receipts {tenant_id}"
            )

    def wake(self, tenant_id: str) -> None:
        event = self._wakes.get(tenant_id)
        if event is not None:
            event.set()

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._pumps.values(), *self._relays]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    async def _pump(self, tenant_id: str) -> None:
        wake = self._wakes.setdefault(tenant_id, asyncio.Event())
        pull = _Pull(self._nats, durable_name(tenant_id), wake)
        await pull.start()
        loop = asyncio.get_running_loop()
        delay = 0.1
        try:
            while not self._closing:
                wake.clear()
                receivers = self._receivers(tenant_id)
                if not receivers:  # hand back what a pull still brings, then stop
                    for msg in pull.take():
                        with contextlib.suppress(Exception):
                            await msg.nak()
                    if pull.open > 0 and not pull.lost(loop.time()):
                        await self._sleep(wake, 0.5)
                        continue
                    await pull.close()
                    if not self._receivers(tenant_id):  # no await since: `attach` starts the next pump
                        return
                    await pull.start()
                    continue
                messages = pull.take()
                if messages:
                    delay = 0.1
                    self._waiting[tenant_id] = self._waiting.get(tenant_id, 0) + len(messages)
                    task = loop.create_task(self._relay(tenant_id, messages))
                    self._relays.add(task)
                    task.add_done_callback(self._relays.discard)
                    continue
                if pull.refused is not None:
                    log.warning(
                        "smpp receipt pull refused; asking again",
                        action="smpp.receipt_pull_refused",
                        tenant_id=tenant_id,
                        status=pull.refused,
                    )
                    pull.refused = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if pull.lost(loop.time()):
                    pull.open = 0
                if pull.open <= 0:
                    room = sum(r.room for r in receivers) - self._waiting.get(tenant_id, 0)
                    if room > 0:
                        await pull.ask(min(room, _FETCH_MAX), loop.time())
                await self._sleep(wake, 0.5)
        except Exception as exc:
            log.error(
                "smpp receipt pump failed",
                action="smpp.receipt_pump_failed",
                tenant_id=tenant_id,
                exc_info=exc,
            )
        finally:
            await pull.close()

    @staticmethod
    async def _sleep(wake: asyncio.Event, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await wake.wait()

    async def _relay(self, tenant_id: str, messages: list[Msg]) -> None:
        """Issue the receipts of a batch of events, then ack each event whose every deliver_sm was
        answered OK (nak the others). One task per batch, not per event."""
        unissued = len(messages)

        def issued() -> None:
            nonlocal unissued
            unissued -= 1
            self._waiting[tenant_id] = max(0, self._waiting.get(tenant_id, 0) - 1)

        answers: list[tuple[Msg, str, list[tuple[Receiver, asyncio.Future[Pdu]]]]] = []
        try:
            for msg in messages:
                try:
                    sent = await self._issue(tenant_id, msg)
                finally:
                    issued()
                if sent is not None:
                    answers.append((msg, *sent))
            self.wake(tenant_id)
            for msg, message_id, futures in answers:
                await self._settle(tenant_id, msg, message_id, futures)
        finally:
            self._waiting[tenant_id] = max(0, self._waiting.get(tenant_id, 0) - unissued)
            self.wake(tenant_id)  # window slots are free again

    async def _issue(
        self, tenant_id: str, msg: Msg
    ) -> tuple[str, list[tuple[Receiver, asyncio.Future[Pdu]]]] | None:
        """Put the event's deliver_sm on the wire; None once the event is settled already (acked as
        owing nothing, or naked because no bind could take it)."""
        try:
            event = EVENT_DECODER.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("unreadable event skipped", action="smpp.receipt_skipped", subject=msg.subject)
            await msg.ack()
            return None
        receipts = plan_receipts(event.kind, event.message_id, event.at, event.data)
        if not receipts:
            await msg.ack()
            return None
        futures: list[tuple[Receiver, asyncio.Future[Pdu]]] = []
        try:
            for receipt in receipts:
                target = self._target(tenant_id, receipt.system_id)
                if target is None:
                    raise LookupError("no receiver bind")
                futures.append((target, await target.issue(receipt_pdu(receipt), self._timeout_s)))
        except Exception as exc:
            for _, future in futures:
                future.cancel()  # its answer, if any, is not waited for: the event comes again
            await self._retry(tenant_id, msg, event.message_id, exc)
            return None
        return event.message_id, futures

    async def _settle(
        self,
        tenant_id: str,
        msg: Msg,
        message_id: str,
        futures: list[tuple[Receiver, asyncio.Future[Pdu]]],
    ) -> None:
        try:
            for target, future in futures:
                response = await future
                if response.command_status:
                    raise LookupError(f"deliver_sm_resp status 0x{response.command_status:08X}")
                target.receipts_sent += 1
        except Exception as exc:
            for _, future in futures:
                future.cancel()  # answers still to come are not waited for: the event comes again
            await self._retry(tenant_id, msg, message_id, exc)
            return
        await msg.ack()

    async def _retry(self, tenant_id: str, msg: Msg, message_id: str, exc: Exception) -> None:
        log.info(
            "receipt not delivered; it will be sent again",
            action="smpp.receipt_retry",
            tenant_id=tenant_id,
            message_id=message_id,
            error=str(exc) or type(exc).__name__,
        )
        with contextlib.suppress(Exception):
            await msg.nak(delay=_RETRY_DELAY_S)

    def _target(self, tenant_id: str, system_id: str) -> Receiver | None:
        """A receiver bind for the receipt: one of the submitting system_id if bound (most room
        first), else any of the tenant's."""
        receivers = list(self._receivers(tenant_id))
        if not receivers:
            return None
        same = [r for r in receivers if r.system_id == system_id]
        return max(same or receivers, key=lambda r: r.room)
