"""`SmppClient`: one ESME bind to a carrier's SMSC: connect, bind, submit text, receive DLRs and MO.

The smpp daemon keeps a pool of these per carrier and re-binds when one ends (`wait_closed()`);
this class does not reconnect by itself, so the pool decides about backoff and failover.
Text is cut by `appliance.domain.segmentation` and sent as one submit_sm per part, with a UDH or SAR
TLVs; the parts go on the wire in order and share the window with every other request.

    BindError(HermesError)     the bind failed: refused (`command_status`), timed out, or no TCP
    SubmitError(HermesError)   a part of a submit was refused (`command_status`, `accepted` ids)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final

from msgspec.structs import replace

from appliance.domain.segmentation import Segment, segment_text
from appliance.errors import HermesError
from appliance.protocols.smpp.connection import (
    DEFAULT_CONFIG,
    ConnectionLost,
    Reject,
    RequestTimeout,
    SessionConfig,
    SmppConnection,
)
from appliance.protocols.smpp.constants import (
    INTERFACE_VERSION_34,
    CommandStatus,
    EsmClass,
    RegisteredDelivery,
    status_name,
)
from appliance.protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from appliance.protocols.smpp.session import BindType, State
from appliance.protocols.smpp.tlv import EMPTY_TLVS, Tlvs

DeliverHandler = Callable[[DeliverSm | DataSm], Awaitable[None]]
"""Gets each deliver_sm (a DLR when `esm_class & 0x3C`, else MO) or data_sm; raise `Reject` to refuse."""

_BIND_PDUS: Final[dict[BindType, type[BindTransmitter | BindReceiver | BindTransceiver]]] = {
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
    "transceiver": BindTransceiver,
}


class BindError(HermesError):
    """The SMSC did not accept the bind."""

    def __init__(self, detail: str, *, command_status: int | None = None) -> None:
        self.command_status = command_status
        self.status_name = status_name(command_status) if command_status is not None else None
        super().__init__(f"bind failed: {detail}" + (f" ({self.status_name})" if self.status_name else ""))


class SubmitError(HermesError):
    """The SMSC refused a submit_sm; `part` is the first refused part, `accepted` the ids of the others."""

    def __init__(self, command_status: int, *, part: int, accepted: tuple[str, ...]) -> None:
        self.command_status = command_status
        self.status_name = status_name(command_status)
        self.part = part
        self.accepted = accepted
        super().__init__(f"submit_sm part {part} refused: {self.status_name}")


class SmppClient:
    """An ESME session: `await connect()`, `submit(...)`, and finally `close()` (or `async with`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        system_id: str,
        password: str,
        bind_type: BindType = "transceiver",
        system_type: str = "",
        interface_version: int = INTERFACE_VERSION_34,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        on_deliver: DeliverHandler | None = None,
        config: SessionConfig = DEFAULT_CONFIG,
        response_timeout_s: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.bind_type: BindType = bind_type
        self._bind = _BIND_PDUS[bind_type](
            0,
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=interface_version,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )
        self.on_deliver = on_deliver
        self.config = config
        self.response_timeout_s = response_timeout_s
        self.smsc_system_id: str | None = None
        self._connection: SmppConnection | None = None
        self._reference = random.randrange(0x10000)

    @property
    def system_id(self) -> str:
        return self._bind.system_id

    @property
    def connection(self) -> SmppConnection:
        if self._connection is None:
            raise ConnectionLost("not connected")
        return self._connection

    @property
    def state(self) -> State:
        return self._connection.state if self._connection is not None else State.CLOSED

    @property
    def is_bound(self) -> bool:
        return self._connection is not None and self._connection.session.is_bound

    async def connect(self) -> None:
        """Open TCP and bind, all within `config.bind_timeout_s` (10 s if None). Raises `BindError`."""
        if self._connection is not None:
            raise BindError("this client has already connected once; make a new one to re-bind")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.bind_timeout_s or 10.0)
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise BindError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from None
        connection = SmppConnection(reader, writer, side="esme", handler=self._handle, config=self.config)
        self._connection = connection
        connection.start()
        try:
            response = await connection.request(self._bind, max(0.001, deadline - loop.time()))
        except (ConnectionLost, RequestTimeout) as exc:
            connection.abort("bind failed")
            await connection.wait_closed()
            raise BindError(str(exc)) from None
        if isinstance(response, GenericNack) or response.command_status:
            connection.abort("bind refused")
            await connection.wait_closed()
            raise BindError(f"{self.system_id} refused", command_status=response.command_status)
        self.smsc_system_id = getattr(response, "system_id", None)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Unbind and close within `timeout_s` (plus the connection's close timeout). Idempotent."""
        if self._connection is not None:
            await self._connection.unbind(timeout_s)

    async def wait_closed(self) -> str:
        """Wait for the session to end (the SMSC unbound, dropped, or went silent); returns why."""
        return await self.connection.wait_closed()

    async def __aenter__(self) -> SmppClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, pdu: Pdu, timeout_s: float | None = None) -> Pdu:
        """Any request on this bind (query_sm, cancel_sm, data_sm, ...); returns the response as is."""
        return await self.connection.request(pdu, timeout_s or self.response_timeout_s)

    async def submit_sm(self, pdu: SubmitSm, timeout_s: float | None = None) -> str:
        """Send one ready-made submit_sm; returns its message_id. Raises `SubmitError` on refusal."""
        response = await self.request(pdu, timeout_s)
        if isinstance(response, SubmitSmResp) and response.command_status == 0:
            return response.message_id
        raise SubmitError(response.command_status, part=1, accepted=())

    async def submit(
        self,
        destination: str,
        text: str,
        *,
        source: str = "",
        source_ton: int = 0,
        source_npi: int = 0,
        dest_ton: int = 1,
        dest_npi: int = 1,
        registered_delivery: int = RegisteredDelivery.RECEIPT_ALWAYS,
        use_sar: bool = False,
        service_type: str = "",
        tlvs: Tlvs = EMPTY_TLVS,
        timeout_s: float | None = None,
    ) -> list[str]:
        """Send `text` as one submit_sm per segment; returns the SMSC's message ids, one per part.

        Every part is written before any answer is awaited, so a long message costs one round trip.
        Raises `SubmitError` if a part is refused (the ids of accepted parts ride along).
        """
        reference = self._next_reference(use_sar)
        segments = segment_text(text, reference=reference, use_sar=use_sar)
        template = SubmitSm(
            0,
            service_type=service_type,
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            source_addr=source,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            destination_addr=destination,
            registered_delivery=registered_delivery,
            tlvs=tlvs,
        )
        connection = self.connection
        timeout = timeout_s or self.response_timeout_s
        futures: list[asyncio.Future[Pdu]] = []
        try:
            for segment in segments:
                futures.append(await connection.issue(_part(template, segment), timeout))
            responses = [await future for future in futures]
        finally:  # after a failure, settle the other parts' futures so no error goes unread
            for future in futures:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()
        ids: list[str] = []
        refused: tuple[int, int] | None = None
        for part, response in enumerate(responses, 1):
            if isinstance(response, SubmitSmResp) and response.command_status == 0:
                ids.append(response.message_id)
            elif refused is None:
                refused = (part, response.command_status)
        if refused is not None:
            raise SubmitError(refused[1], part=refused[0], accepted=tuple(ids))
        return ids

    def _next_reference(self, use_sar: bool) -> int:
        self._reference = (self._reference + 1) % 0x10000
        return self._reference if use_sar else self._reference % 0x100

    async def _handle(self, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm | DataSm):
            if self.on_deliver is None:
                raise Reject(CommandStatus.ESME_RX_T_APPN, "no deliver handler")
            await self.on_deliver(pdu)
            if isinstance(pdu, DeliverSm):
                return DeliverSmResp(pdu.sequence_number)
            return DataSmResp(pdu.sequence_number)
        return None  # alert_notification, outbind: nothing is owed


def _part(template: SubmitSm, segment: Segment) -> SubmitSm:
    tlvs = template.tlvs
    if segment.sar is not None:
        tlvs = Tlvs(
            dict(tlvs.items()),
            sar_msg_ref_num=segment.sar.msg_ref_num,
            sar_total_segments=segment.sar.total_segments,
            sar_segment_seqnum=segment.sar.segment_seqnum,
        )
    return replace(
        template,
        esm_class=template.esm_class | (EsmClass.UDHI if segment.udhi else 0),
        data_coding=segment.data_coding,
        short_message=segment.short_message,
        tlvs=tlvs,
    )
