"""Receipts for SMPP clients: final cascade events become deliver_sm on the tenant's receiver binds.

Durability: each tenant gets a durable JetStream pull consumer on EVENTS (`smpp_receipts_<tenant>`,
filtered to `evt.<tenant>.delivered|dead_lettered|failed`), created the first time one of its SMPP
logins binds, before the bind is answered, so no outcome of a message submitted over SMPP can be
missed. While the tenant has a receiver or transceiver bind, a pump fetches as many events as the
binds' windows have room for and relays each: events that owe no receipt (REST messages, receipts
not asked for) are acked at once; the others are acked only after the client answered every
deliver_sm with deliver_sm_resp OK. A failure (no bind left, timeout, an error status) naks the
event, so JetStream delivers it again, on this bind or the next. While nobody is bound, events
simply wait in the consumer. Several gateway processes may pull from the same durable consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from appliance.bus.streams import event_subject
from appliance.domain.events import EVENT_DECODER, FINAL_KINDS
from appliance.domain.receipt_text import PlannedReceipt, plan_receipts
from appliance.logs import get_logger
from appliance.protocols.smpp.constants import EsmClass
from appliance.protocols.smpp.pdu import DeliverSm, Pdu
from appliance.protocols.smpp.tlv import Tlvs

STREAM: Final = "EVENTS"
_FETCH_MAX: Final = 100
_RETRY_DELAY_S: Final = 1.0
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


class ReceiptRelay:
    """Per-tenant durable consumers and the pumps that drain them into receiver binds."""

    def __init__(self, js: JetStreamContext, *, timeout_s: float = 30.0) -> None:
        self._js = js
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
        subscription = await self._js.pull_subscribe_bind(durable=durable_name(tenant_id), stream=STREAM)
        try:
            while not self._closing:
                receivers = self._receivers(tenant_id)
                if not receivers:
                    return
                room = sum(r.room for r in receivers) - self._waiting.get(tenant_id, 0)
                if room <= 0:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await wake.wait()
                    continue
                try:
                    messages = await subscription.fetch(min(room, _FETCH_MAX), timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                for msg in messages:
                    self._waiting[tenant_id] = self._waiting.get(tenant_id, 0) + 1
                    task = asyncio.get_running_loop().create_task(self._relay(tenant_id, msg))
                    self._relays.add(task)
                    task.add_done_callback(self._relays.discard)
        except Exception as exc:
            log.error(
                "smpp receipt pump failed",
                action="smpp.receipt_pump_failed",
                tenant_id=tenant_id,
                exc_info=exc,
            )
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _relay(self, tenant_id: str, msg: Msg) -> None:
        counted = True

        def issued() -> None:
            nonlocal counted
            if counted:
                counted = False
                self._waiting[tenant_id] = max(0, self._waiting.get(tenant_id, 0) - 1)
                self.wake(tenant_id)

        try:
            await self._relay_one(tenant_id, msg, issued)
        finally:
            issued()
            self.wake(tenant_id)  # its window slot is free again

    async def _relay_one(self, tenant_id: str, msg: Msg, issued: Callable[[], None]) -> None:
        try:
            event = EVENT_DECODER.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("unreadable event skipped", action="smpp.receipt_skipped", subject=msg.subject)
            await msg.ack()
            return
        receipts = plan_receipts(event.kind, event.message_id, event.at, event.data)
        if not receipts:
            await msg.ack()
            return
        try:
            futures: list[tuple[Receiver, asyncio.Future[Pdu]]] = []
            for receipt in receipts:
                target = self._target(tenant_id, receipt.system_id)
                if target is None:
                    raise LookupError("no receiver bind")
                futures.append((target, await target.issue(receipt_pdu(receipt), self._timeout_s)))
            issued()
            for target, future in futures:
                response = await future
                if response.command_status:
                    raise LookupError(f"deliver_sm_resp status 0x{response.command_status:08X}")
                target.receipts_sent += 1
        except Exception as exc:
            log.info(
                "receipt not delivered; it will be sent again",
                action="smpp.receipt_retry",
                tenant_id=tenant_id,
                message_id=event.message_id,
                error=str(exc) or type(exc).__name__,
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=_RETRY_DELAY_S)
            return
        await msg.ack()

    def _target(self, tenant_id: str, system_id: str) -> Receiver | None:
        """A receiver bind for the receipt: one of the submitting system_id if bound (most room
        first), else any of the tenant's."""
        receivers = list(self._receivers(tenant_id))
        if not receivers:
            return None
        same = [r for r in receivers if r.system_id == system_id]
        return max(same or receivers, key=lambda r: r.room)
