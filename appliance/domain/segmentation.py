"""Splitting a message into SMS parts, and putting received parts back together.

Outbound: one part holds 160 GSM septets, 140 octets or 70 UCS-2 units. Longer messages are cut into
parts of 153 / 134 / 67 behind a 6-octet concatenation UDH (05 00 03 ref total seq), or, for carriers
that prefer it, bare parts described by SAR TLV values (the SMSC adds the UDH, so limits are the same).
A cut never separates an escape from its extension code, nor the halves of a UTF-16 surrogate pair.
`segment_count` is the cheap answer an API returns per request.

Inbound: `parse_udh` finds the concatenation IE (8- or 16-bit reference) in a short_message, and
`Reassembler` collects parts with the caller's clock, so it stays pure and testable.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final, Literal

from appliance.domain.gsm import (
    DATA_CODING_BINARY,
    DATA_CODING_GSM7,
    DATA_CODING_UCS2,
    ESCAPE,
    TextEncoding,
    choose_encoding,
    encode_gsm7,
    encode_ucs2,
    gsm7_length,
    is_gsm7,
    ucs2_length,
)
from appliance.errors import InvalidInput, ProtocolError

Encoding = Literal["gsm7", "ucs2", "binary"]

SINGLE_PART: Final[dict[Encoding, int]] = {"gsm7": 160, "ucs2": 140, "binary": 140}
"""What one unsegmented part holds: septets for gsm7, octets otherwise (140 octets = 70 UCS-2 units)."""

MULTI_PART: Final[dict[Encoding, int]] = {"gsm7": 153, "ucs2": 134, "binary": 134}
"""What each part of a concatenated message holds once the 6-octet UDH takes its room."""

MAX_PARTS: Final = 255
"""An 8-bit total in the UDH (and sar_total_segments) cannot count more."""

_DATA_CODING: Final[dict[Encoding, int]] = {
    "gsm7": DATA_CODING_GSM7,
    "ucs2": DATA_CODING_UCS2,
    "binary": DATA_CODING_BINARY,
}
_IEI_CONCAT_8: Final = 0x00
_IEI_CONCAT_16: Final = 0x08
_IEI_PORTS_8: Final = 0x04
_IEI_PORTS_16: Final = 0x05


@dataclass(frozen=True, slots=True)
class Sar:
    """The SAR TLV values for one part: sar_msg_ref_num, sar_total_segments, sar_segment_seqnum."""

    msg_ref_num: int
    total_segments: int
    segment_seqnum: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One part ready for submit_sm: short_message (with its UDH when `udhi`), data_coding, SAR values."""

    short_message: bytes
    data_coding: int
    udhi: bool = False
    sar: Sar | None = None


def _cuts(encoded: bytes, encoding: Encoding) -> list[bytes]:
    """Cut encoded payload into parts no larger than the multi-part limit, on character boundaries."""
    if len(encoded) <= SINGLE_PART[encoding]:
        return [encoded]
    size = MULTI_PART[encoding]
    parts: list[bytes] = []
    pos, end = 0, len(encoded)
    while end - pos > size:
        cut = pos + size
        if encoding == "gsm7" and encoded[cut - 1] == ESCAPE:
            cut -= 1  # Hermes's encoder emits 0x1B only as an escape, never as a code
        elif encoding == "ucs2" and 0xD8 <= encoded[cut - 2] <= 0xDB:
            cut -= 2  # a high surrogate waits for its low half
        parts.append(encoded[pos:cut])
        pos = cut
    parts.append(encoded[pos:])
    return parts


def _count(total: int, encoded: bytes | None, encoding: Encoding) -> int:
    if total <= SINGLE_PART[encoding]:
        return 1
    size = MULTI_PART[encoding]
    if encoded is None:  # no two-unit characters: plain arithmetic
        return -(-total // size)
    return len(_cuts(encoded, encoding))


def segment_count(text: str) -> tuple[TextEncoding, int]:
    """(encoding, parts) for `text`, as the submit path would send it; cheap enough per API request."""
    if is_gsm7(text):
        septets = gsm7_length(text)
        has_pairs = septets != len(text)
        return "gsm7", _count(septets, encode_gsm7(text) if has_pairs else None, "gsm7")
    units = ucs2_length(text)
    has_pairs = units != len(text)
    return "ucs2", _count(2 * units, encode_ucs2(text) if has_pairs else None, "ucs2")


def _parts(payloads: list[bytes], encoding: Encoding, reference: int, use_sar: bool) -> tuple[Segment, ...]:
    data_coding = _DATA_CODING[encoding]
    total = len(payloads)
    if total == 1:
        return (Segment(payloads[0], data_coding),)
    if total > MAX_PARTS:
        raise InvalidInput("text", f"needs {total} parts; at most {MAX_PARTS} can be concatenated")
    if use_sar:
        if not 0 <= reference <= 0xFFFF:
            raise InvalidInput("reference", "a SAR reference is 0..65535")
        return tuple(
            Segment(p, data_coding, sar=Sar(reference, total, seq)) for seq, p in enumerate(payloads, 1)
        )
    if not 0 <= reference <= 0xFF:
        raise InvalidInput("reference", "an 8-bit UDH reference is 0..255")
    return tuple(
        Segment(bytes((5, _IEI_CONCAT_8, 3, reference, total, seq)) + p, data_coding, udhi=True)
        for seq, p in enumerate(payloads, 1)
    )


def segment_text(
    text: str,
    *,
    reference: int = 0,
    encoding: TextEncoding | None = None,
    use_sar: bool = False,
) -> tuple[Segment, ...]:
    """Parts for `text` in GSM 7-bit (unpacked) when possible, else UCS-2; `encoding` forces one.

    `reference` tells this message's parts from another's at the handset: 0..255 with a UDH,
    0..65535 with SAR. Raises `InvalidInput` for text the forced encoding cannot carry.
    """
    chosen = encoding or choose_encoding(text)
    encoded = encode_gsm7(text) if chosen == "gsm7" else encode_ucs2(text)
    return _parts(_cuts(encoded, chosen), chosen, reference, use_sar)


def segment_binary(data: bytes, *, reference: int = 0, use_sar: bool = False) -> tuple[Segment, ...]:
    """Parts for 8-bit data (data_coding 4): 140 octets whole, 134 per concatenated part."""
    return _parts(_cuts(data, "binary"), "binary", reference, use_sar)


@dataclass(frozen=True, slots=True)
class Concat:
    """A concatenation IE: which message (reference), how many parts, and which one this is (1-based)."""

    reference: int
    total: int
    seq: int


CONCAT_METADATA: Final = "smpp.concat"
"""Metadata of a message that is one part of a concatenated SMS, passed on as a client sent it (an SMPP
login with `concatenated = parts`): "<reference>/<total>/<seq>". The submit path sends it as that part."""


def format_concat(concat: Concat) -> str:
    return f"{concat.reference}/{concat.total}/{concat.seq}"


def parse_concat(text: str | None) -> Concat | None:
    """The `CONCAT_METADATA` value as a Concat; None when absent or not a sensible part."""
    fields = (text or "").split("/")
    if len(fields) != 3 or not all(f.isdigit() for f in fields):
        return None
    reference, total, seq = (int(f) for f in fields)
    if reference > 0xFFFF or not 1 <= seq <= total <= MAX_PARTS:
        return None
    return Concat(reference, total, seq)


def part_capacity(encoding: Encoding, reference: int) -> int:
    """What one part of a concatenated message holds (septets for gsm7, else octets): a reference over
    255 needs the 16-bit concatenation IE, one octet more of UDH."""
    if reference <= 0xFF:
        return MULTI_PART[encoding]
    return {"gsm7": 152, "ucs2": 132, "binary": 133}[encoding]


def segment_part(text: str, concat: Concat, *, use_sar: bool) -> Segment:
    """`text` as the one part `concat` names of a concatenated message (its reference and numbering
    kept, so the handset joins it with the other parts sent the same way). Raises `InvalidInput` when
    the text does not fit one part."""
    encoding = choose_encoding(text)
    encoded = encode_gsm7(text) if encoding == "gsm7" else encode_ucs2(text)
    capacity = part_capacity(encoding, concat.reference)
    if len(encoded) > capacity:
        raise InvalidInput("text", f"{len(encoded)} units do not fit one part of a concatenated message")
    data_coding = _DATA_CODING[encoding]
    if use_sar:
        return Segment(encoded, data_coding, sar=Sar(concat.reference, concat.total, concat.seq))
    if concat.reference <= 0xFF:
        udh = bytes((5, _IEI_CONCAT_8, 3, concat.reference, concat.total, concat.seq))
    else:
        udh = bytes((6, _IEI_CONCAT_16, 4, *concat.reference.to_bytes(2, "big"), concat.total, concat.seq))
    return Segment(udh + encoded, data_coding, udhi=True)


@dataclass(frozen=True, slots=True)
class Udh:
    """A parsed user data header: every IE in order, with the concatenation and port IEs picked out."""

    elements: tuple[tuple[int, bytes], ...]
    concat: Concat | None = None
    ports: tuple[int, int] | None = None  # (destination, source)


def parse_udh(short_message: bytes) -> tuple[Udh, bytes]:
    """Split a UDHI short_message into its header and the payload after it (§9.2.3.24 of 23.040).

    A concatenation IE whose numbers make no sense (total 0, seq 0 or past total) is ignored, as
    23.040 asks, so the part is treated as a message of its own. Raises `ProtocolError` when the
    header's lengths overrun the data.
    """
    if not short_message:
        raise ProtocolError("UDHI set but the short_message is empty")
    end = 1 + short_message[0]
    if end > len(short_message):
        raise ProtocolError(f"UDH length {end - 1} exceeds the {len(short_message)}-octet short_message")
    elements: list[tuple[int, bytes]] = []
    concat: Concat | None = None
    ports: tuple[int, int] | None = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ProtocolError("UDH ends inside an information element header")
        iei, length = short_message[pos], short_message[pos + 1]
        data = short_message[pos + 2 : pos + 2 + length]
        if pos + 2 + length > end:
            raise ProtocolError(f"UDH element 0x{iei:02X} overruns the header")
        elements.append((iei, data))
        if iei == _IEI_CONCAT_8 and length == 3:
            concat = _concat(data[0], data[1], data[2]) or concat
        elif iei == _IEI_CONCAT_16 and length == 4:
            concat = _concat(int.from_bytes(data[:2], "big"), data[2], data[3]) or concat
        elif iei == _IEI_PORTS_8 and length == 2:
            ports = (data[0], data[1])
        elif iei == _IEI_PORTS_16 and length == 4:
            ports = (int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big"))
        pos += 2 + length
    return Udh(tuple(elements), concat, ports), short_message[end:]


def _concat(reference: int, total: int, seq: int) -> Concat | None:
    return Concat(reference, total, seq) if 1 <= seq <= total else None


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A part set given up on (expired, or evicted to bound memory): what arrived, for the logs."""

    key: Hashable
    reference: int
    total: int
    received: tuple[int, ...]
    first_seen: float


@dataclass(slots=True)
class _PartSet:
    first_seen: float
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects concatenated parts until a message is whole; `now` is passed in (use a monotonic clock).

    Parts are grouped by (key, reference, total); the key is the caller's notion of a conversation,
    e.g. (source_addr, destination_addr). Payloads are joined as octets before any decoding, so even a
    sender that split an escape pair or a surrogate pair across parts is put back together right.
    A completed set is forgotten, so a retransmitted copy of every part would complete again: telling
    a repeated message from a new one with a recycled 8-bit reference is the session's call, not ours.
    """

    def __init__(self, *, timeout: float = 300.0, max_pending: int = 10_000) -> None:
        if timeout <= 0 or max_pending < 1:
            raise InvalidInput("reassembler", "timeout and max_pending must be positive")
        self.timeout = timeout
        self.max_pending = max_pending
        self._sets: dict[tuple[Hashable, int, int], _PartSet] = {}
        self._given_up: list[Incomplete] = []

    @property
    def pending(self) -> int:
        """Part sets still waiting for parts."""
        return len(self._sets)

    def add(self, key: Hashable, concat: Concat, payload: bytes, now: float) -> bytes | None:
        """Store one part; returns the whole payload when this part completes its set, else None.

        A duplicate part (same seq) is ignored: the first copy wins.
        """
        if not 1 <= concat.seq <= concat.total:
            raise InvalidInput("concat", f"part {concat.seq} of {concat.total}")
        if concat.total == 1:
            return payload
        set_key = (key, concat.reference, concat.total)
        part_set = self._sets.get(set_key)
        if part_set is not None and now - part_set.first_seen > self.timeout:
            self._give_up(set_key)
            part_set = None
        if part_set is None:
            if len(self._sets) >= self.max_pending:
                self._give_up(next(iter(self._sets)))
            part_set = self._sets[set_key] = _PartSet(now)
        part_set.parts.setdefault(concat.seq, payload)
        if len(part_set.parts) < concat.total:
            return None
        del self._sets[set_key]
        return b"".join(part_set.parts[seq] for seq in range(1, concat.total + 1))

    def expire(self, now: float) -> list[Incomplete]:
        """Drop sets older than the timeout; returns them and any evicted since the last call."""
        for set_key in [k for k, s in self._sets.items() if now - s.first_seen > self.timeout]:
            self._give_up(set_key)
        given_up, self._given_up = self._given_up, []
        return given_up

    def _give_up(self, set_key: tuple[Hashable, int, int]) -> None:
        part_set = self._sets.pop(set_key)
        key, reference, total = set_key
        received = tuple(sorted(part_set.parts))
        self._given_up.append(Incomplete(key, reference, total, received, part_set.first_seen))
