"""Wire layouts of PDU bodies, read off each PDU class's field names, and the code that walks them.

Each layout is a few steps (a C-string, a run of one-octet integers, the sm_length/short_message
pair, a submit_multi list). Two walkers share it:

- straight-line `read`/`write` functions generated from the steps when this module is imported:
  the hot path, three times faster than a loop over steps. They do not explain failures; any
  trouble (a missing NUL, a short body, a value out of range) just makes them trip.
- `read_steps`/`write_steps`, a step interpreter that knows which field is wrong and raises a
  precise `WireFault`. `read_body`/`write_body` fall back to it whenever the fast path trips.

`Layout.source` holds the generated code, for reading and debugging. A test checks that both
walkers agree.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from appliance.protocols.smpp.constants import (
    FIELD_FORMATS,
    MAX_SHORT_MESSAGE,
    WIDE_ADDRESS,
    CommandStatus,
    DestFlag,
)
from appliance.protocols.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    DataSm,
    DistributionList,
    Pdu,
    SmeAddress,
    UnsuccessSme,
)
from appliance.protocols.smpp.tlv import WireFault

S = CommandStatus
_U32: Final = struct.Struct(">I")
CSTR, INTS, SHORT_MESSAGE, DESTS, UNSUCCESS = range(5)
Step = tuple[int, int, int, str]
"""(op, size, command_status when the value is bad, field name); INTS size is the run length."""

_OPS: Final = {
    "cstr": CSTR,
    "short_message": SHORT_MESSAGE,
    "dest_addresses": DESTS,
    "unsuccess_smes": UNSUCCESS,
}


class _Trip(Exception):
    """The fast path met something it does not explain; the interpreter will."""


_TRIPS: Final = (_Trip, IndexError, AttributeError, TypeError, ValueError)

Reader = Callable[[bytes, str, int, int], tuple[tuple[Any, ...], int]]
Writer = Callable[[tuple[Any, ...]], bytes]


@dataclass(frozen=True, slots=True)
class Layout:
    """How one PDU class's mandatory body travels, and the generated code that walks it."""

    steps: tuple[Step, ...]
    read: Reader
    write: Writer
    source: str


def _steps(cls: type[Pdu]) -> tuple[Step, ...]:
    steps: list[Step] = []
    names = cls.__struct_fields__[3:]  # after sequence_number, command_status, tlvs
    for name in names:
        kind, size, status = FIELD_FORMATS[name]
        if kind == "u8":
            if steps and steps[-1][0] == INTS:
                _, run, _, joined = steps.pop()
                steps.append((INTS, run + 1, status, f"{joined}/{name}"))
            else:
                steps.append((INTS, 1, status, name))
            continue
        if cls in (DataSm, AlertNotification) and name in ("source_addr", "destination_addr"):
            size = WIDE_ADDRESS
        steps.append((_OPS[kind], size, status, name))
    return tuple(steps)


def _generate(steps: tuple[Step, ...]) -> str:
    """Python source for the fast `read` and `write` of one layout."""
    names = [n for _, _, _, joined in steps for n in joined.split("/")]
    read = ["def read(frame, text, p, end):"]
    cstrs: list[tuple[str, int]] = []
    pieces: list[str] = []
    guards: list[str] = []
    for op, size, _, joined in steps:
        if op == CSTR:
            name = joined
            read += [
                f"    q = text.find('\\0', p, p + {size})",
                "    if q < 0:",
                "        raise Trip",
                f"    {name} = text[p:q]",
                "    p = q + 1",
            ]
            cstrs.append((name, size))
            pieces += [f"{name}_b", "NUL"]
        elif op == INTS:
            run = joined.split("/")
            read += [f"    {n} = frame[p + {i}]" for i, n in enumerate(run)] + [f"    p += {size}"]
            pieces.append(f"bytes(({', '.join(run)},))")
        elif op == SHORT_MESSAGE:
            name = joined
            read += [
                "    sm_length = frame[p]",
                f"    {name} = frame[p + 1 : p + 1 + sm_length]",
                f"    if sm_length > {MAX_SHORT_MESSAGE} or len({name}) != sm_length:",
                "        raise Trip",
                "    p += 1 + sm_length",
            ]
            guards += [f"type({name}) is not bytes", f"len({name}) > {MAX_SHORT_MESSAGE}"]
            pieces += [f"bytes((len({name}),))", name]
        else:
            helper = "dests" if op == DESTS else "unsuccess"
            read.append(f"    {joined}, p = read_{helper}(frame, text, p, end)")
            pieces.append(f"write_{helper}({joined})")
    read.append(f"    return ({''.join(n + ', ' for n in names)}), p")

    write = ["def write(values):", f"    ({'_, _, _, ' + ''.join(n + ', ' for n in names)}) = values"]
    write += [f"    {name}_b = {name}.encode('latin-1')" for name, _ in cstrs]
    guards += [f"len({name}_b) > {size - 1}" for name, size in cstrs]
    if cstrs:
        guards.append("'\\0' in " + " + ".join(name for name, _ in cstrs))
    if guards:
        write += ["    if " + " or ".join(guards) + ":", "        raise Trip"]
    write.append(f"    return b''.join(({''.join(p + ', ' for p in pieces)}))")
    return "\n".join(read) + "\n\n\n" + "\n".join(write) + "\n"


def _compile(cls: type[Pdu]) -> Layout:
    steps = _steps(cls)
    source = _generate(steps)
    namespace: dict[str, Any] = {
        "Trip": _Trip,
        "NUL": b"\0",
        "read_dests": read_dests,
        "read_unsuccess": read_unsuccess,
        "write_dests": write_dests,
        "write_unsuccess": write_unsuccess,
    }
    exec(compile(source, f"<smpp layout of {cls.__name__}>", "exec"), namespace)
    return Layout(steps, namespace["read"], namespace["write"], source)


def read_body(layout: Layout, frame: bytes, text: str, pos: int, end: int) -> tuple[tuple[Any, ...], int]:
    """The mandatory fields from `pos` on (`text` is `frame` as latin-1), and where they end.

    Raises `WireFault`, or `IndexError`/`struct.error` when the body ends inside a field.
    """
    try:
        return layout.read(frame, text, pos, end)
    except _TRIPS:
        return read_steps(layout.steps, frame, text, pos, end)


def write_body(layout: Layout, values: tuple[Any, ...]) -> bytes:
    """The mandatory fields of `values` (a PDU as a tuple) on the wire. Raises `WireFault`."""
    try:
        return layout.write(values)
    except _TRIPS:
        return write_steps(layout.steps, values)


def _read_cstr(text: str, pos: int, end: int, size: int, status: int, name: str) -> tuple[str, int]:
    nul = text.find("\0", pos, pos + size)
    if nul < 0:
        if end - pos < size:
            raise WireFault(S.ESME_RINVCMDLEN, f"{name} has no NUL terminator before the end of the PDU")
        raise WireFault(status, f"{name} is longer than {size - 1} octets")
    return text[pos:nul], nul + 1


def read_steps(
    steps: tuple[Step, ...], frame: bytes, text: str, pos: int, end: int
) -> tuple[tuple[Any, ...], int]:
    """The interpreter behind `read_body`: slower, and precise about what is wrong."""
    values: list[Any] = []
    for op, size, status, name in steps:
        value: Any
        if op == CSTR:
            value, pos = _read_cstr(text, pos, end, size, status, name)
            values.append(value)
        elif op == INTS:
            if pos + size > end:
                raise WireFault(S.ESME_RINVCMDLEN, f"the body ends inside {name}")
            values.extend(frame[pos : pos + size])
            pos += size
        elif op == SHORT_MESSAGE:
            if pos >= end:
                raise WireFault(S.ESME_RINVCMDLEN, "the body ends before sm_length")
            sm_length = frame[pos]
            if sm_length > MAX_SHORT_MESSAGE or pos + 1 + sm_length > end:
                raise WireFault(S.ESME_RINVMSGLEN, f"sm_length {sm_length} does not fit the PDU")
            values.append(frame[pos + 1 : pos + 1 + sm_length])
            pos += 1 + sm_length
        else:
            value, pos = (read_dests if op == DESTS else read_unsuccess)(frame, text, pos, end)
            values.append(value)
    return tuple(values), pos


def read_dests(
    frame: bytes, text: str, pos: int, end: int
) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
    count = frame[pos]
    pos += 1
    if not 1 <= count <= MAX_SHORT_MESSAGE:
        raise WireFault(S.ESME_RINVNUMDESTS, f"number_of_dests {count}")
    dests: list[SmeAddress | DistributionList] = []
    for _ in range(count):
        flag = frame[pos]
        if flag == DestFlag.SME_ADDRESS:
            ton, npi = frame[pos + 1], frame[pos + 2]
            address, pos = _read_cstr(text, pos + 3, end, 21, S.ESME_RINVDSTADR, "destination_addr")
            dests.append(SmeAddress(ton, npi, address))
        elif flag == DestFlag.DISTRIBUTION_LIST:
            name, pos = _read_cstr(text, pos + 1, end, 21, S.ESME_RINVDLNAME, "dl_name")
            dests.append(DistributionList(name))
        else:
            raise WireFault(S.ESME_RINVDESTFLAG, f"dest_flag {flag}")
    return tuple(dests), pos


def read_unsuccess(frame: bytes, text: str, pos: int, end: int) -> tuple[tuple[UnsuccessSme, ...], int]:
    count = frame[pos]
    pos += 1
    entries: list[UnsuccessSme] = []
    for _ in range(count):
        ton, npi = frame[pos], frame[pos + 1]
        address, pos = _read_cstr(text, pos + 2, end, 21, S.ESME_RINVDSTADR, "destination_addr")
        (error,) = _U32.unpack_from(frame, pos)
        entries.append(UnsuccessSme(ton, npi, address, error))
        pos += 4
    return tuple(entries), pos


def _write_cstr(out: bytearray, value: object, size: int, status: int, name: str) -> None:
    if not isinstance(value, str):
        raise WireFault(status, "must be a str", name)
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise WireFault(status, "must be latin-1", name) from None
    if len(raw) >= size or b"\0" in raw:
        raise WireFault(status, f"must be at most {size - 1} octets, without NUL", name)
    out += raw
    out.append(0)


def _write_octets(out: bytearray, values: tuple[Any, ...], status: int, name: str) -> None:
    try:
        out += bytes(values)
    except (ValueError, TypeError):
        raise WireFault(status, "one-octet integers must be 0..255", name) from None


def write_steps(steps: tuple[Step, ...], values: tuple[Any, ...]) -> bytes:
    """The interpreter behind `write_body`: slower, and precise about what is wrong."""
    out = bytearray()
    i = 3  # past sequence_number, command_status, tlvs
    for op, size, status, name in steps:
        if op == INTS:
            _write_octets(out, values[i : i + size], status, name)
            i += size
            continue
        value = values[i]
        i += 1
        if op == CSTR:
            _write_cstr(out, value, size, status, name)
        elif op == SHORT_MESSAGE:
            if not isinstance(value, bytes) or len(value) > MAX_SHORT_MESSAGE:
                raise WireFault(status, "must be bytes of at most 254 octets", name)
            out.append(len(value))
            out += value
        else:
            out += (write_dests if op == DESTS else write_unsuccess)(value)
    return bytes(out)


def write_dests(dests: tuple[SmeAddress | DistributionList, ...]) -> bytes:
    if not 1 <= len(dests) <= MAX_SHORT_MESSAGE:
        raise WireFault(S.ESME_RINVNUMDESTS, "1 to 254 destinations", "dest_addresses")
    out = bytearray((len(dests),))
    for dest in dests:
        if isinstance(dest, SmeAddress):
            _write_octets(
                out, (DestFlag.SME_ADDRESS, dest.ton, dest.npi), S.ESME_RINVPARLEN, "dest_addresses"
            )
            _write_cstr(out, dest.address, 21, S.ESME_RINVDSTADR, "destination_addr")
        else:
            out.append(DestFlag.DISTRIBUTION_LIST)
            _write_cstr(out, dest.name, 21, S.ESME_RINVDLNAME, "dl_name")
    return bytes(out)


def write_unsuccess(entries: tuple[UnsuccessSme, ...]) -> bytes:
    if len(entries) > MAX_SHORT_MESSAGE:
        raise WireFault(S.ESME_RINVPARLEN, "at most 254 entries", "unsuccess_smes")
    out = bytearray((len(entries),))
    for entry in entries:
        _write_octets(out, (entry.ton, entry.npi), S.ESME_RINVPARLEN, "unsuccess_smes")
        _write_cstr(out, entry.address, 21, S.ESME_RINVDSTADR, "destination_addr")
        if not 0 <= entry.error_status_code <= 0xFFFFFFFF:
            raise WireFault(S.ESME_RINVPARLEN, "error_status_code must fit 32 bits", "unsuccess_smes")
        out += _U32.pack(entry.error_status_code)
    return bytes(out)


LAYOUTS: Final[dict[type[Pdu], Layout]] = {cls: _compile(cls) for cls in PDU_CLASSES}
"""Every PDU class's layout, compiled once at import."""
