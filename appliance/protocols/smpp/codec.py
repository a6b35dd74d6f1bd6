"""Bytes <-> PDUs for SMPP 3.4, and the framer that cuts a TCP byte stream into PDUs.

This is the hot path of every SMPP session: bodies are walked by code generated per operation (see
`layout`), TLVs by `tlv`, and PDUs are built positionally. No I/O happens here.

    PduDecodeError(ProtocolError)   bytes from a peer that cannot be a PDU; carries the command_status
                                    to answer with, the sequence_number and command_id when readable
    PduEncodeError(InvalidInput)    a PDU we were asked to send breaks the spec (a field too long, ...)
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final

from msgspec.structs import astuple

from appliance.errors import InvalidInput, ProtocolError
from appliance.protocols.smpp.constants import (
    DEFAULT_MAX_PDU_SIZE,
    HEADER_SIZE,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    status_name,
)
from appliance.protocols.smpp.layout import LAYOUTS, Layout, read_body, write_body
from appliance.protocols.smpp.pdu import (
    PDU_CLASSES,
    BindReceiverResp,
    BindTransceiverResp,
    BindTransmitterResp,
    Pdu,
    SubmitSmResp,
)
from appliance.protocols.smpp.tlv import EMPTY_TLVS, WireFault, read_tlvs, write_tlvs

S = CommandStatus
_HEADER: Final = struct.Struct(">IIII")
_U32: Final = struct.Struct(">I")
_KNOWN_IDS: Final = frozenset(int(c) for c in CommandId)


class PduDecodeError(ProtocolError):
    """The bytes are not a valid SMPP PDU."""

    def __init__(
        self,
        reason: str,
        *,
        command_status: int,
        sequence_number: int | None = None,
        command_id: int | None = None,
    ) -> None:
        self.reason = reason
        self.command_status = command_status
        self.sequence_number = sequence_number
        self.command_id = command_id
        super().__init__(f"{reason} ({status_name(command_status)})")

    @property
    def reply_command_id(self) -> int:
        """What to answer with: the request's own _resp, or generic_nack when that is impossible (§3.3)."""
        cid = self.command_id
        if (
            cid is None
            or cid & RESPONSE_BIT
            or self.command_status in (S.ESME_RINVCMDLEN, S.ESME_RINVCMDID)
            or (cid | RESPONSE_BIT) not in _KNOWN_IDS
        ):
            return CommandId.GENERIC_NACK
        return cid | RESPONSE_BIT


class PduEncodeError(InvalidInput):
    """The PDU cannot be encoded."""

    def __init__(self, field: str, reason: str, *, command_status: int = S.ESME_RINVPARLEN) -> None:
        self.command_status = command_status
        super().__init__(field, reason)


_DECODERS: Final[dict[int, tuple[type[Pdu], Layout]]] = {
    cls.command_id: (cls, LAYOUTS[cls]) for cls in PDU_CLASSES
}
_OMIT_BODY_ON_ERROR: Final = frozenset(
    {BindTransmitterResp, BindReceiverResp, BindTransceiverResp, SubmitSmResp}
)


def decode(frame: bytes) -> Pdu:
    """One complete PDU (as cut by `PduReader`) -> its typed form. Raises `PduDecodeError`."""
    end = len(frame)
    if end < HEADER_SIZE:
        raise PduDecodeError(f"{end} octets cannot hold a header", command_status=S.ESME_RINVCMDLEN)
    length, cid, status, seq = _HEADER.unpack_from(frame)
    if length != end:
        raise PduDecodeError(
            f"command_length {length} but {end} octets",
            command_status=S.ESME_RINVCMDLEN,
            sequence_number=seq,
            command_id=cid,
        )
    entry = _DECODERS.get(cid)
    if entry is None:
        raise PduDecodeError(
            f"unknown command_id 0x{cid:08X}",
            command_status=S.ESME_RINVCMDID,
            sequence_number=seq,
            command_id=cid,
        )
    cls, layout = entry
    if end == HEADER_SIZE and status and cid & RESPONSE_BIT:
        return cls(seq, status)  # an error response may leave its body off
    text = frame.decode("latin-1")  # one pass; C-strings are then sliced from it, 1 octet = 1 char
    try:
        values, pos = read_body(layout, frame, text, HEADER_SIZE, end)
        tlvs = read_tlvs(frame, text, pos, end) if pos < end else EMPTY_TLVS
    except WireFault as fault:
        raise PduDecodeError(
            fault.reason, command_status=fault.status, sequence_number=seq, command_id=cid
        ) from None
    except (struct.error, IndexError):
        raise PduDecodeError(
            "the body ends inside a field",
            command_status=S.ESME_RINVCMDLEN,
            sequence_number=seq,
            command_id=cid,
        ) from None
    return cls(seq, status, tlvs, *values)


def encode(pdu: Pdu) -> bytes:
    """A PDU -> its wire bytes, command_length included. Raises `PduEncodeError`."""
    cls = type(pdu)
    layout = LAYOUTS.get(cls)
    if layout is None:
        raise TypeError(f"not an SMPP PDU: {cls.__name__}")
    values = astuple(pdu)
    seq, status, tlvs = values[0], values[1], values[2]
    if status and cls in _OMIT_BODY_ON_ERROR:
        body = b""
    else:
        try:
            body = write_body(layout, values)
            if tlvs:
                body += write_tlvs(tlvs)
        except WireFault as fault:
            raise PduEncodeError(fault.field, fault.reason, command_status=fault.status) from None
    try:
        return _HEADER.pack(HEADER_SIZE + len(body), cls.command_id, status, seq) + body
    except struct.error:
        raise PduEncodeError("header", f"command_status {status!r} or sequence_number {seq!r}") from None


class PduReader:
    """Cuts a byte stream into whole PDUs; `feed` bytes as they arrive, then take frames until None.

    The length is checked as soon as its 4 octets arrive, so a peer announcing a gigabyte PDU is refused
    before anything is buffered for it. Once the stream is broken (bad length) it cannot be resynced:
    every later call raises the same `PduDecodeError`, and the session should generic_nack and close.
    """

    __slots__ = ("_buffer", "_error", "max_pdu_size")

    def __init__(self, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        if max_pdu_size < HEADER_SIZE:
            raise ValueError("max_pdu_size must hold at least a header")
        self.max_pdu_size = max_pdu_size
        self._buffer = bytearray()
        self._error: PduDecodeError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes; raises at once if the next PDU's length is already known to be bad."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        if len(self._buffer) >= 4:
            self._check_length()

    def next_frame(self) -> bytes | None:
        """The next complete PDU, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        length = self._check_length()
        if len(buffer) < length:
            return None
        frame = bytes(buffer[:length])
        del buffer[:length]
        return frame

    def __iter__(self) -> Iterator[bytes]:
        while (frame := self.next_frame()) is not None:
            yield frame

    def _check_length(self) -> int:
        buffer = self._buffer
        (length,) = _U32.unpack_from(buffer)
        if HEADER_SIZE <= length <= self.max_pdu_size:
            return int(length)
        seq = cid = None
        if len(buffer) >= HEADER_SIZE:
            _, cid, _, seq = _HEADER.unpack_from(buffer)
        self._error = PduDecodeError(
            f"command_length {length} outside {HEADER_SIZE}..{self.max_pdu_size}",
            command_status=S.ESME_RINVCMDLEN,
            sequence_number=seq,
            command_id=cid,
        )
        self._buffer = bytearray()
        raise self._error
