"""What an enterprise client's submit_sm / data_sm means, before the pipeline sees it.

The gateway's SMPP server hands this module raw PDU fields (the domain imports no protocol code, so
the few SMPP numbers needed are repeated here) and gets back plain values:

- `split_part`: the user data of one PDU and, for one part of a concatenated message, its
  concatenation info, from a UDH (8- or 16-bit reference) or from the SAR TLVs.
- `decode_text_of`: text by data_coding (GSM 7-bit unpacked incl. the extension table, IA5,
  Latin-1, UCS-2/UTF-16).
- `destination_of` / `sender_of`: SMPP addresses (with TON) as the unified message wants them.
- `receipt_metadata`: the `smpp.*` metadata the receipt relay needs later (who to send it to, how the
  addresses were given, which part ids were answered).
- `BindGuard`: the growing delay for repeated bind failures from one address.

Refusals raise `Refused` with the command_status to answer; the edge sends it, nothing else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from appliance.domain.events import Event
from appliance.domain.gsm import choose_encoding, decode_latin1, decode_text, gsm7_length, ucs2_length
from appliance.domain.pipeline.fields import parse_e164
from appliance.domain.receipt_text import TEXT_CHARS
from appliance.domain.segmentation import Concat, parse_udh, part_capacity
from appliance.errors import HermesError

ESME_RINVMSGLEN: Final = 0x01
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RINVESMCLASS: Final = 0x43
ESME_RSUBMITFAIL: Final = 0x45

TON_UNKNOWN: Final = 0
TON_INTERNATIONAL: Final = 1
TON_ALPHANUMERIC: Final = 5
ESM_UDHI: Final = 0x40
DATA_CODING_GSM7: Final = 0x00
META_PREFIX: Final = "smpp."


class Refused(HermesError):
    """The PDU cannot become a message."""

    def __init__(self, command_status: int, reason: str) -> None:
        self.command_status = command_status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Part:
    """One PDU's user data (without UDH) and, when it is one part of several, which part."""

    payload: bytes
    concat: Concat | None = None


def split_part(
    short_message: bytes,
    message_payload: bytes | None,
    esm_class: int,
    sar: tuple[int | None, int | None, int | None] = (None, None, None),
) -> Part:
    """The user data and concatenation info of one submit_sm/data_sm.

    `sar` is (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) from the TLVs. A UDH
    concatenation IE wins over SAR TLVs; a part numbered outside 1..total is a message of its own.
    """
    if short_message and message_payload:
        raise Refused(ESME_RSUBMITFAIL, "short_message and message_payload must not both be used")
    data = short_message or message_payload or b""
    concat: Concat | None = None
    if esm_class & ESM_UDHI:
        try:
            udh, data = parse_udh(data)
        except HermesError as exc:
            raise Refused(ESME_RINVESMCLASS, f"the user data header is malformed: {exc}") from None
        concat = udh.concat
    reference, total, seq = sar
    if (
        concat is None
        and reference is not None
        and total is not None
        and seq is not None
        and 1 <= seq <= total
    ):
        concat = Concat(reference, total, seq)
    return Part(data, concat if concat is not None and concat.total > 1 else None)


def check_part_fits(text: str, concat: Concat) -> None:
    """A part passed on as it came must still fit one part when Hermes sends it."""
    encoding = choose_encoding(text)
    units = gsm7_length(text) if encoding == "gsm7" else 2 * ucs2_length(text)
    capacity = part_capacity(encoding, concat.reference)
    if units > capacity:
        raise Refused(ESME_RINVMSGLEN, f"a part holds at most {capacity} {encoding} units, not {units}")


def decode_text_of(payload: bytes, data_coding: int) -> str:
    """Text by data_coding. The default alphabet (0) is GSM 7-bit unpacked; octets above 0x7F there
    mean the client sent Latin-1 under the default coding, which is read as such rather than refused."""
    try:
        return decode_text(payload, data_coding)
    except HermesError as exc:
        if data_coding == DATA_CODING_GSM7:
            return decode_latin1(payload)
        raise Refused(ESME_RSUBMITFAIL, f"cannot read the text: {exc}") from None


def destination_of(address: str, ton: int) -> str:
    """destination_addr as E.164; raises `Refused(ESME_RINVDSTADR)` when it is no phone number."""
    e164 = _e164(address, ton)
    if e164 is None:
        raise Refused(ESME_RINVDSTADR, f"{address[:21]!r} (TON {ton}) is not an international number")
    return e164


def sender_of(address: str, ton: int) -> str | None:
    """source_addr as the message's sender: E.164 for a number, as given for an alphanumeric sender or
    a short code (the pipeline's L5 judges it), None when empty."""
    text = address.strip()
    if not text:
        return None
    if ton == TON_ALPHANUMERIC:
        return text
    return _e164(text, ton) or text


def _e164(address: str, ton: int) -> str | None:
    text = address.strip()
    if not text:
        return None
    if text.startswith("+"):
        candidate = text
    elif text.startswith("00") and text.isdigit():
        candidate = "+" + text[2:]
    elif ton in (TON_INTERNATIONAL, TON_UNKNOWN) and text.isdigit():
        candidate = "+" + text
    else:
        return None
    return parse_e164(candidate)


def receipt_metadata(
    *,
    system_id: str,
    registered_delivery: int,
    source: tuple[int, int, str],
    destination: tuple[int, int, str],
    text: str,
    part_ids: tuple[str, ...] = (),
) -> dict[str, str]:
    """The `smpp.*` metadata of a message that came over SMPP: what its receipt needs, nothing more.

    `source` and `destination` are (ton, npi, address) as the client gave them, so the receipt's
    addresses mirror the submit; `part_ids` are the ids answered for the earlier parts of a
    concatenated message (each gets its own receipt, as clients expect one per submit_sm_resp).
    """
    metadata = {
        "smpp.system_id": system_id,
        "smpp.registered_delivery": str(registered_delivery),
        "smpp.source": f"{source[0]}/{source[1]}/{source[2]}",
        "smpp.destination": f"{destination[0]}/{destination[1]}/{destination[2]}",
        "smpp.text": text[:TEXT_CHARS],
    }
    if part_ids:
        metadata["smpp.part_ids"] = ",".join(part_ids)
    return metadata


class BindGuard:
    """Repeated bind failures from one address are answered later and later.

    The n-th failure within `reset_s` of the previous one is delayed `base_s * 2**(n-1)`, capped at
    `max_s`; a successful bind forgets the address. At most `max_addresses` are remembered (the
    oldest are dropped), so a scan from many addresses cannot grow memory without bound.
    """

    def __init__(self, *, base_s: float, max_s: float, reset_s: float, max_addresses: int = 10_000) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.reset_s = reset_s
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failures(self, address: str, now: float) -> int:
        """Recent failures of `address` (0 once `reset_s` has passed since the last)."""
        count, last = self._failures.get(address, (0, 0.0))
        return count if count and now - last < self.reset_s else 0

    def failed(self, address: str, now: float) -> tuple[int, float]:
        """Record one failure; returns (failures so far, seconds to wait before answering)."""
        count = self.failures(address, now) + 1
        self._failures[address] = (count, now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return count, min(self.max_s, self.base_s * 2 ** min(count - 1, 30))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


@dataclass(slots=True)
class _PartSet:
    first_seen: float
    parts: dict[int, tuple[str, bytes]]
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A set that will not be completed (it timed out, or was evicted to bound memory): its answered
    ids in part order, and the context its last part brought (what a receipt for them needs)."""

    key: Hashable
    reference: int
    total: int
    ids: tuple[str, ...]
    context: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Assembled:
    """A concatenated message made whole: each part as (seq, answered id, user data), in order, and
    the seq of the part that completed it (its id is the one still to be answered)."""

    parts: tuple[tuple[int, str, bytes], ...]
    completing_seq: int
    first_seen: float

    @property
    def payload(self) -> bytes:
        return b"".join(data for _, _, data in self.parts)

    @property
    def earlier_ids(self) -> tuple[str, ...]:
        """The ids already answered (every part but the completing one), in part order."""
        return tuple(pid for seq, pid, _ in self.parts if seq != self.completing_seq)


class PartSets:
    """Parts of concatenated messages until each is whole; `now` is passed in (monotonic seconds).

    Like `segmentation.Reassembler`, but every part keeps the message id it was answered with, so a
    re-sent part gets the same id back and the receipts can name every id. Sets are keyed by
    (conversation key, reference, total); at most `max_pending` wait, each at most `timeout` seconds.
    """

    def __init__(self, *, timeout: float, max_pending: int) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._sets: dict[tuple[Hashable, int, int], _PartSet] = {}
        self._abandoned: list[Abandoned] = []

    @property
    def pending(self) -> int:
        return len(self._sets)

    def holds(self, key: Hashable, concat: Concat) -> bool:
        """Whether parts of this part's set are waiting here."""
        return (key, concat.reference, concat.total) in self._sets

    def discard(self, key: Hashable, concat: Concat) -> None:
        """Forget one part (it could not be stored durably, so it is refused after all)."""
        set_key = (key, concat.reference, concat.total)
        part_set = self._sets.get(set_key)
        if part_set is not None:
            part_set.parts.pop(concat.seq, None)
            if not part_set.parts:
                del self._sets[set_key]

    def add(
        self,
        key: Hashable,
        concat: Concat,
        part_id: str,
        payload: bytes,
        now: float,
        context: Mapping[str, str] | None = None,
    ) -> str | Assembled:
        """Store one part: returns the id the part is answered with (an earlier copy's id for a
        duplicate), or the whole message when this part completes its set (the set is then gone).
        `context` (kept per set, the first given wins) comes back with the set if it is abandoned."""
        set_key = (key, concat.reference, concat.total)
        part_set = self._sets.get(set_key)
        if part_set is not None and now - part_set.first_seen > self.timeout:
            self._abandon(set_key)
            part_set = None
        if part_set is None:
            if len(self._sets) >= self.max_pending:
                self._abandon(next(iter(self._sets)))
            part_set = self._sets[set_key] = _PartSet(now, {})
        if context is not None and not part_set.context:
            part_set.context = context
        known = part_set.parts.get(concat.seq)
        if known is not None:
            return known[0]
        part_set.parts[concat.seq] = (part_id, payload)
        if len(part_set.parts) < concat.total:
            return part_id
        del self._sets[set_key]
        parts = tuple((seq, *part_set.parts[seq]) for seq in range(1, concat.total + 1))
        return Assembled(parts, concat.seq, part_set.first_seen)

    def restore(self, key: Hashable, concat: Concat, assembled: Assembled) -> None:
        """Put a completed set back without its completing part: the message was refused for the
        moment (throttled, not stored), so the client will send that part again."""
        set_key = (key, concat.reference, concat.total)
        part_set = self._sets.setdefault(set_key, _PartSet(assembled.first_seen, {}))
        for seq, pid, data in assembled.parts:
            if seq != assembled.completing_seq:
                part_set.parts.setdefault(seq, (pid, data))

    def expire(self, now: float) -> list[Abandoned]:
        """Drop sets older than the timeout; returns them, and the sets evicted since the last call."""
        for set_key in [k for k, s in self._sets.items() if now - s.first_seen > self.timeout]:
            self._abandon(set_key)
        out, self._abandoned = self._abandoned, []
        return out

    def _abandon(self, set_key: tuple[Hashable, int, int]) -> None:
        part_set = self._sets.pop(set_key)
        key, reference, total = set_key
        ids = tuple(part_set.parts[seq][0] for seq in sorted(part_set.parts))
        if ids:
            self._abandoned.append(Abandoned(key, reference, total, ids, part_set.context))


def _err_digits(command_status: int) -> str:
    """A receipt's three-digit err for a command_status: its hex digits when they are all decimal digits
    (0x0401 → 401, 0x45 → 045, as an operator reads them), else the decimal value."""
    text = f"{command_status:03X}"
    return text if text.isdigit() else str(command_status)


def refused_parts_event(
    tenant_id: str,
    ids: Sequence[str],
    context: Mapping[str, str],
    *,
    command_status: int,
    reason: str,
    at: float,
) -> Event:
    """The final event owed to ids answered for parts of a message that will never be sent (refused once
    whole, or never completed): `failed` with stat REJECTD, carrying the `smpp.*` metadata of its parts
    (`context`), so the receipt relay sends each id its REJECTD receipt if the client asked for one."""
    *earlier, last = ids
    metadata = {key: value for key, value in context.items() if key != "smpp.part_ids"}
    if earlier:
        metadata["smpp.part_ids"] = ",".join(earlier)
    return Event(
        kind="failed",
        id=f"{last}:parts_refused",
        message_id=last,
        tenant_id=tenant_id,
        at=at,
        state="failed",
        data={
            "origin": "smpp",
            "metadata": metadata,
            "created_at": at,
            "stat": "REJECTD",
            "err": _err_digits(command_status),
            "reason": reason,
        },
    )
