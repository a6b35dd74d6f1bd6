"""Delivery receipts from any bind of any carrier: parsed, matched to the submitted part, recorded, and
published as a `dlr` event, all before the deliver_sm_resp goes back.

The SMPP client answers a deliver_sm when its handler returns, so `Receipts.handle` returns only once
the receipt is in the store and JetStream has stored the event; if either fails it raises `Reject`
(ESME_RX_T_APPN, a temporary error) and the carrier sends the receipt again later: a receipt is never
lost. A receipt for an id we do not know is logged, counted and answered ok, so the carrier stops
resending it. A receipt may overtake the recording of its own submit_sm_resp (it can come on another
connection), so an unknown id is looked up again for `unknown_dlr_grace_s`, woken early by
`PendingIds` when the dispatcher records an id it was waiting for. Mobile-originated messages are
answered and logged (without the numbers or the text) until Hermes routes MO.

The store work (find the part, mark the receipt, read its siblings) goes through the shared
`SubmissionBook`, so receipts arriving together (the carrier keeps its window full) are matched and
marked in one transaction; each handler still returns only once its own receipt is marked and
its event stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from appliance.daemons.smpp.batching import Settled, SubmissionBook
from appliance.daemons.smpp.pool import CarrierPool
from appliance.daemons.smpp.publish import EventSink, dlr_event
from appliance.daemons.smpp.settings import SmppSettings
from appliance.domain.dlr import Receipt, id_candidates, is_receipt, parse_receipt
from appliance.errors import BusError, StoreError
from appliance.logs import get_logger
from appliance.protocols.smpp.connection import Reject
from appliance.protocols.smpp.constants import CommandStatus, EsmClass
from appliance.protocols.smpp.pdu import DataSm, DeliverSm
from appliance.store.smpp_base import DlrUpdate

log = get_logger("hermes.smpp")


class PendingIds:
    """Carrier message ids answered by the carrier but not yet recorded, per carrier."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], asyncio.Event] = {}

    def add(self, carrier: str, key: str) -> None:
        self._waiting.setdefault((carrier, key), asyncio.Event())

    def done(self, carrier: str, key: str) -> None:
        event = self._waiting.pop((carrier, key), None)
        if event is not None:
            event.set()

    async def wait(self, carrier: str, keys: Sequence[str], timeout_s: float) -> None:
        """Return when one of `keys` is recorded, or after `timeout_s`."""
        events = [self._waiting[(carrier, key)] for key in keys if (carrier, key) in self._waiting]
        if not events:
            await asyncio.sleep(timeout_s)
            return
        waiters = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


class Receipts:
    """The `on_deliver` of every bind: `await handle(carrier, pdu)`."""

    def __init__(
        self,
        book: SubmissionBook,
        sink: EventSink,
        settings: SmppSettings,
        pending: PendingIds,
        pool_of: Callable[[str], CarrierPool | None],
    ) -> None:
        self._book = book
        self._sink = sink
        self._settings = settings
        self._pending = pending
        self._pool_of = pool_of
        self.received = 0
        self.matched = 0
        self.duplicates = 0
        self.unknown = 0
        self.mobile_originated = 0

    async def handle(self, carrier: str, pdu: DeliverSm | DataSm) -> None:
        self.received += 1
        tlvs = pdu.tlvs
        if not is_receipt(pdu.esm_class) and tlvs.receipted_message_id is None:
            self.mobile_originated += 1
            log.info("mobile-originated message answered, not routed", action="smpp.mo", carrier=carrier)
            return
        short_message = pdu.short_message if isinstance(pdu, DeliverSm) else b""
        receipt = parse_receipt(
            short_message=short_message or tlvs.message_payload or b"",
            data_coding=pdu.data_coding,
            receipted_message_id=tlvs.receipted_message_id,
            message_state=tlvs.message_state,
            network_error=tlvs.network_error_code,
            intermediate=pdu.esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_INTERMEDIATE_NOTIFICATION,
        )
        try:
            await self._settle(carrier, receipt)
        except (StoreError, BusError) as exc:
            log.error(
                "receipt not settled; the carrier will resend it",
                action="smpp.dlr_failed",
                carrier=carrier,
                error=str(exc),
            )
            raise Reject(CommandStatus.ESME_RX_T_APPN, "receipt not stored; try again later") from exc

    async def _settle(self, carrier: str, receipt: Receipt) -> None:
        settled = await self._find(carrier, receipt) if receipt.message_id else None
        pool = self._pool_of(carrier)
        if settled is None:
            self.unknown += 1
            if pool is not None:
                pool.unknown_dlrs += 1
            log.warning(
                "receipt for an unknown message id answered and dropped",
                action="smpp.dlr_unknown",
                carrier=carrier,
                carrier_message_id=receipt.message_id,
                stat=receipt.stat,
            )
            return
        mark = settled.mark
        if mark.duplicate:
            self.duplicates += 1
        else:
            self.matched += 1
            if pool is not None:
                pool.note_dlr(final=receipt.final, delivered=receipt.outcome == "delivered")
        # A duplicate is published again under the same event id: if the first publish was lost, this
        # one counts; if not, JetStream (or the consumers, later) drop it.
        await self._sink.publish(dlr_event(mark.submission, receipt, settled.siblings))

    async def _find(self, carrier: str, receipt: Receipt) -> Settled | None:
        """Mark the receipt on its part, looking again for `unknown_dlr_grace_s` if it has none yet."""
        assert receipt.message_id is not None
        keys = id_candidates(receipt.message_id)
        update = DlrUpdate(
            carrier_message_id=receipt.message_id,
            state=receipt.stat or "NONE",
            outcome=receipt.outcome,
            err=receipt.err,
            at=time.time(),
        )
        settled = await self._book.settle(carrier, keys, update)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.unknown_dlr_grace_s
        while settled is None and (remaining := deadline - loop.time()) > 0:
            await self._pending.wait(carrier, keys, min(0.25, remaining))
            settled = await self._book.settle(carrier, keys, update)
        return settled
