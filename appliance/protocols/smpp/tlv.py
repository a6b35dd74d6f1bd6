"""TLVs (optional parameters, §3.2.4 and §5.3): the typed mapping a PDU carries, and its wire form.

Known tags are decoded by the format table in `constants.TLV_FORMATS` (int, C-string, octets, the
network_error_code pair); unknown tags survive as raw bytes, so a PDU relayed through Hermes keeps
vendor TLVs. The codec calls `read_tlvs`/`write_tlvs`; both report trouble as `WireFault`, which the
codec turns into its public errors with the PDU's sequence number attached.
"""

from __future__ import annotations

import struct
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, Final, NamedTuple, TypeAlias

from appliance.protocols.smpp.constants import TLV_FORMATS, CommandStatus, Tag

S = CommandStatus
_TLV_HEAD: Final = struct.Struct(">HH")
_NET_ERR: Final = struct.Struct(">BH")
_BY_NAME: Final = {tag.name.lower(): tag for tag in Tag}
_INT_HEADS: Final = {
    tag: (_TLV_HEAD.pack(tag, size), size, 1 << (8 * size))
    for tag, (kind, size, _) in TLV_FORMATS.items()
    if kind == "int"
}
"""Integer TLVs: their ready-made tag+length header, value size, and value limit."""


class WireFault(Exception):
    """A field that cannot be read or written: the command_status it warrants, the field, and why."""

    def __init__(self, status: int, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field


class NetworkErrorCode(NamedTuple):
    """The network_error_code TLV: which network type failed, and its own error code (§5.3.2.31)."""

    network_type: int
    error_code: int


TlvValue: TypeAlias = int | str | bytes | NetworkErrorCode


class Tlvs(Mapping[int, TlvValue]):
    """Immutable TLV mapping in wire order: known tags decoded (int, str, bytes), unknown tags raw bytes.

    Keys are plain ints or `Tag` members (they hash alike). Build with a mapping and/or by name:
    `Tlvs({Tag.SAR_MSG_REF_NUM: 7}, message_payload=b"...")`. The properties give typed access to
    the tags Hermes reads on its hot paths.
    """

    __slots__ = ("_items",)
    _items: dict[int, TlvValue]

    def __init__(self, items: Mapping[int, TlvValue] | None = None, /, **named: TlvValue) -> None:
        merged = dict(items or {})
        for name, value in named.items():
            try:
                merged[_BY_NAME[name]] = value
            except KeyError:
                raise TypeError(f"unknown TLV name {name!r}") from None
        self._items = merged

    @staticmethod
    def _wrap(items: dict[int, TlvValue]) -> Tlvs:
        """Adopt a dict the decoder built, without copying it (it is never touched again)."""
        tlvs = _new_tlvs(Tlvs)
        tlvs._items = items
        return tlvs

    def __getitem__(self, tag: int) -> TlvValue:
        return self._items[tag]

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # The Mapping mixins go through __getitem__ one key at a time; the dict's own views are C-fast.
    def items(self) -> ItemsView[int, TlvValue]:
        return self._items.items()

    def keys(self) -> KeysView[int]:
        return self._items.keys()

    def values(self) -> ValuesView[TlvValue]:
        return self._items.values()

    def get(self, tag: int, default: Any = None) -> Any:
        return self._items.get(tag, default)

    def __contains__(self, tag: object) -> bool:
        return tag in self._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Tlvs):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        def name(tag: int) -> str:
            try:
                return Tag(tag).name.lower()
            except ValueError:
                return f"0x{tag:04X}"

        return "Tlvs({" + ", ".join(f"{name(t)}: {v!r}" for t, v in self._items.items()) + "})"

    def get_int(self, tag: int) -> int | None:
        """The tag's value if it is an integer TLV that is present."""
        value = self._items.get(tag)
        return value if isinstance(value, int) else None

    def get_str(self, tag: int) -> str | None:
        """The tag's value if it is a C-string TLV that is present."""
        value = self._items.get(tag)
        return value if isinstance(value, str) else None

    def get_bytes(self, tag: int) -> bytes | None:
        """The tag's value if it is an octet-string (or unknown) TLV that is present."""
        value = self._items.get(tag)
        return value if isinstance(value, bytes) else None

    @property
    def message_payload(self) -> bytes | None:
        return self.get_bytes(Tag.MESSAGE_PAYLOAD)

    @property
    def sar_msg_ref_num(self) -> int | None:
        return self.get_int(Tag.SAR_MSG_REF_NUM)

    @property
    def sar_total_segments(self) -> int | None:
        return self.get_int(Tag.SAR_TOTAL_SEGMENTS)

    @property
    def sar_segment_seqnum(self) -> int | None:
        return self.get_int(Tag.SAR_SEGMENT_SEQNUM)

    @property
    def receipted_message_id(self) -> str | None:
        return self.get_str(Tag.RECEIPTED_MESSAGE_ID)

    @property
    def message_state(self) -> int | None:
        return self.get_int(Tag.MESSAGE_STATE)

    @property
    def network_error_code(self) -> NetworkErrorCode | None:
        value = self._items.get(Tag.NETWORK_ERROR_CODE)
        return value if isinstance(value, NetworkErrorCode) else None

    @property
    def user_message_reference(self) -> int | None:
        return self.get_int(Tag.USER_MESSAGE_REFERENCE)

    @property
    def source_port(self) -> int | None:
        return self.get_int(Tag.SOURCE_PORT)

    @property
    def destination_port(self) -> int | None:
        return self.get_int(Tag.DESTINATION_PORT)


_new_tlvs = object.__new__
EMPTY_TLVS = Tlvs()


def read_tlvs(frame: bytes, text: str, pos: int, end: int) -> Tlvs:
    """The TLVs from `pos` to `end` (`text` is `frame` as latin-1); a repeated tag keeps its last value."""
    items: dict[int, TlvValue] = {}
    while pos < end:
        if end - pos < 4:
            raise WireFault(S.ESME_RINVOPTPARSTREAM, "a TLV header is cut short")
        tag, length = _TLV_HEAD.unpack_from(frame, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise WireFault(S.ESME_RINVOPTPARSTREAM, f"TLV 0x{tag:04X} runs past the end of the PDU")
        fmt = TLV_FORMATS.get(tag)
        if fmt is None:
            items[tag] = frame[pos:stop]
        else:
            kind, low, high = fmt
            if not low <= length <= high:
                raise WireFault(S.ESME_RINVPARLEN, f"TLV 0x{tag:04X} has length {length}")
            if kind == "int":
                items[tag] = frame[pos] if length == 1 else int.from_bytes(frame[pos:stop], "big")
            elif kind == "cstr":  # tolerate a missing NUL: the length already delimits the value
                nul = text.find("\0", pos, stop)
                items[tag] = text[pos : stop if nul < 0 else nul]
            elif kind == "octets":
                items[tag] = frame[pos:stop]
            else:
                items[tag] = NetworkErrorCode(*_NET_ERR.unpack_from(frame, pos))
        pos = stop
    return Tlvs._wrap(items)


def write_tlvs(tlvs: Mapping[int, TlvValue]) -> bytes:
    """Each TLV in mapping order, known tags checked against their formats."""
    out = bytearray()
    for tag, value in tlvs.items():
        fixed = _INT_HEADS.get(tag)
        if fixed is not None and isinstance(value, int) and 0 <= value < fixed[2]:
            out += fixed[0]  # the common case, an integer TLV, without the general checks
            out += value.to_bytes(fixed[1], "big")
            continue
        raw = _tlv_value(tag, value)
        if not 0 <= tag <= 0xFFFF or len(raw) > 0xFFFF:
            raise WireFault(S.ESME_RINVOPTPARAMVAL, "tag or length beyond 16 bits", _where(tag))
        out += _TLV_HEAD.pack(tag, len(raw))
        out += raw
    return bytes(out)


def _where(tag: object) -> str:
    return f"TLV 0x{tag:04X}" if isinstance(tag, int) and 0 <= tag <= 0xFFFF else f"TLV {tag!r}"


def _tlv_value(tag: int, value: TlvValue) -> bytes:
    fmt = TLV_FORMATS.get(tag)
    bad = S.ESME_RINVOPTPARAMVAL
    if fmt is None:
        if not isinstance(value, bytes):
            raise WireFault(bad, "an unknown tag's value must be bytes", _where(tag))
        return value
    kind, low, high = fmt
    if kind == "int":
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * low):
            raise WireFault(bad, f"must be an int of {low} octet(s)", _where(tag))
        return value.to_bytes(low, "big")
    if kind == "network_error":
        if not isinstance(value, NetworkErrorCode):
            raise WireFault(bad, "must be a NetworkErrorCode", _where(tag))
        try:
            return _NET_ERR.pack(*value)
        except struct.error:
            raise WireFault(bad, "network_type or error_code out of range", _where(tag)) from None
    if kind == "cstr":
        if not isinstance(value, str) or "\0" in value:
            raise WireFault(bad, "must be a str without NUL", _where(tag))
        try:
            raw = value.encode("latin-1") + b"\0"
        except UnicodeEncodeError:
            raise WireFault(bad, "must be latin-1", _where(tag)) from None
    elif isinstance(value, bytes):
        raw = value
    else:
        raise WireFault(bad, "must be bytes", _where(tag))
    if not low <= len(raw) <= high:
        raise WireFault(S.ESME_RINVPARLEN, f"length must be {low}..{high} octets", _where(tag))
    return raw
