"""Delivery receipts as carriers really send them: parsed, judged, and matched to what we submitted.

The smpp daemon's receipt handler takes the raw fields out of a deliver_sm (or data_sm) and calls
`parse_receipt`; this module never sees a PDU, so it stays pure (the domain imports no protocol code,
which is why the few SMPP numbers it needs are repeated below). Two sources describe a receipt:

- the TLVs `receipted_message_id`, `message_state` and `network_error_code` (SMPP 3.4 §5.3.2), and
- the de-facto text of SMPP 3.4 appendix B, `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:…
  text:…`, which carriers vary freely: any case, extra or missing spaces, missing fields, 10- or
  12-digit dates (14 with a 4-digit year also occur), `submit_date` with an underscore.

Where both are present the TLVs win: they are typed, the text is free-form. Dates are read as UTC.

Carrier message ids: a carrier may answer submit_sm_resp with a hex id and put the same id in decimal
in the receipt, or the other way round, with or without leading zeros and in either case. `id_key`
gives the canonical spelling we store beside a submission; `id_variants` gives every canonical key a
receipt's id may stand for, exact reading first in `id_candidates` (so a lookup prefers it).

Outcome of a stat: DELIVRD is delivered; EXPIRED, DELETED, UNDELIV, REJECTD and UNKNOWN are failed (all
final states in SMPP 3.4 §5.2.28; UNKNOWN means the SMSC holds the message in an invalid state and has
given up on it); ENROUTE and ACCEPTD are pending and not final (most carriers use ACCEPTD as "taken by
the network", not the spec's "read by customer service"). An intermediate notification is never final.
A stat we do not know is pending, so the cascade's timer, not a guess, decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

Outcome = Literal["delivered", "failed", "pending"]

ESM_TYPE_MASK: Final = 0x3C
"""esm_class bits 5-2: the message type (SMPP 3.4 §5.2.12)."""
ESM_DELIVERY_RECEIPT: Final = 0x04
ESM_INTERMEDIATE_NOTIFICATION: Final = 0x20
_DATA_CODING_UCS2: Final = 0x08

STATES: Final[dict[int, str]] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",  # SMPP 5.0
}
"""message_state TLV values and the stat each stands for."""

OUTCOMES: Final[dict[str, tuple[Outcome, bool]]] = {
    "DELIVRD": ("delivered", True),
    "EXPIRED": ("failed", True),
    "DELETED": ("failed", True),
    "UNDELIV": ("failed", True),
    "REJECTD": ("failed", True),
    "UNKNOWN": ("failed", True),
    "SKIPPED": ("failed", True),
    "ENROUTE": ("pending", False),
    "ACCEPTD": ("pending", False),
}
"""(outcome, final) of each canonical stat."""

_ALIASES: Final[dict[str, str]] = {
    "DELIVERED": "DELIVRD",
    "DELIVRED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "UNDELIVRD": "UNDELIV",
    "FAILED": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
    "EXPIRD": "EXPIRED",
    "DELETD": "DELETED",
}
_KEY: Final = re.compile(r"\b(id|sub|dlvrd|submit[ _]*date|done[ _]*date|stat|err)\s*:\s*", re.IGNORECASE)
_TEXT_KEY: Final = re.compile(r"\btext\s*:", re.IGNORECASE)
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_MAX_ID: Final = 64  # longer "ids" are not converted between bases (an SMPP message_id is at most 64)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one receipt says about one submitted part."""

    message_id: str | None
    """The carrier's id of the receipted message: the TLV if present, else the text's `id:`."""
    stat: str | None
    """Canonical stat ("DELIVRD", ...), or the carrier's own word upper-cased when we do not know it."""
    outcome: Outcome
    final: bool
    err: str | None = None
    """The text's `err:`, else the network_error_code TLV as "<network type>:<code>"."""
    submitted: int | None = None
    delivered: int | None = None
    submit_date: float | None = None
    done_date: float | None = None
    text: str = ""


def is_receipt(esm_class: int) -> bool:
    """Whether a deliver_sm's esm_class marks a delivery receipt or an intermediate notification."""
    return (esm_class & ESM_TYPE_MASK) in (ESM_DELIVERY_RECEIPT, ESM_INTERMEDIATE_NOTIFICATION)


def canonical_stat(word: str) -> str:
    """The canonical 7-letter stat for a carrier's spelling ("delivered" -> "DELIVRD")."""
    upper = word.strip().upper()
    return _ALIASES.get(upper, upper)


def outcome_of(stat: str | None) -> tuple[Outcome, bool]:
    """(outcome, final) for a stat in any spelling; unknown or missing -> ("pending", False)."""
    if not stat:
        return "pending", False
    return OUTCOMES.get(canonical_stat(stat), ("pending", False))


def parse_date(text: str | None) -> float | None:
    """Epoch seconds (UTC) of a receipt date: YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss; else None."""
    if text is None:
        return None
    digits = text.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (10, 12, 14):
        return None
    if len(digits) == 14:
        year, rest = int(digits[:4]), digits[4:]
    else:
        year, rest = 2000 + int(digits[:2]), digits[2:]
    month, day, hour, minute = (int(rest[i : i + 2]) for i in range(0, 8, 2))
    second = int(rest[8:10]) if len(rest) == 10 else 0
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse_text(text: str) -> dict[str, str]:
    """The fields of a receipt text, keyed id, sub, dlvrd, submit_date, done_date, stat, err, text.

    Missing fields are absent; `text` is everything after `text:` (it may hold spaces and colons).
    A value is the first word after its key, so stray words between fields are ignored.
    """
    fields: dict[str, str] = {}
    head = text
    tail = _TEXT_KEY.search(text)
    if tail is not None:
        head = text[: tail.start()]
        fields["text"] = text[tail.end() :].strip()
    matches = list(_KEY.finditer(head))
    ends = [following.start() for following in matches[1:]] + [len(head)] if matches else []
    for match, end in zip(matches, ends, strict=True):
        words = head[match.end() : end].split()
        if words:
            name = re.sub(r"[ _]", "", match[1].lower()).replace("date", "_date")
            fields.setdefault(name, words[0])
    return fields


def decode_short_message(payload: bytes, data_coding: int) -> str:
    """Receipt text as a str: UCS-2 when data_coding says so, else latin-1 (receipts are ASCII)."""
    if data_coding == _DATA_CODING_UCS2:
        return payload.decode("utf-16-be", "replace")
    return payload.decode("latin-1")


def parse_receipt(
    *,
    short_message: bytes = b"",
    data_coding: int = 0,
    receipted_message_id: str | None = None,
    message_state: int | None = None,
    network_error: tuple[int, int] | None = None,
    intermediate: bool = False,
) -> Receipt:
    """Judge a receipt from its TLVs and text (either may be missing)."""
    fields = parse_text(decode_short_message(short_message, data_coding)) if short_message else {}
    if message_state is not None:
        stat: str | None = STATES.get(message_state, f"STATE_{message_state}")
    elif "stat" in fields:
        stat = canonical_stat(fields["stat"])
    else:
        stat = None
    outcome, final = outcome_of(stat)
    if intermediate:  # "still trying": whatever the state says, nothing is settled yet
        outcome, final = "pending", False
    err = fields.get("err")
    if err is None and network_error is not None:
        err = f"{network_error[0]}:{network_error[1]:03d}"
    message_id = (receipted_message_id or "").strip() or fields.get("id") or None
    return Receipt(
        message_id=message_id,
        stat=stat,
        outcome=outcome,
        final=final,
        err=err,
        submitted=_int(fields.get("sub")),
        delivered=_int(fields.get("dlvrd")),
        submit_date=parse_date(fields.get("submit_date")),
        done_date=parse_date(fields.get("done_date")),
        text=fields.get("text", ""),
    )


def id_key(carrier_message_id: str) -> str:
    """The canonical spelling of a carrier message id, stored beside each submission.

    Hex-looking ids (which includes decimal ones) lose case and leading zeros ("00A1b" -> "a1b");
    other ids just lose case and surrounding spaces.
    """
    stripped = carrier_message_id.strip()
    if _HEX.fullmatch(stripped):
        return stripped.lower().lstrip("0") or "0"
    return stripped.lower()


def id_candidates(carrier_message_id: str) -> list[str]:
    """The keys a receipt's id may match, best first: read as written, then as decimal, then as hex."""
    stripped = carrier_message_id.strip()
    found = [id_key(stripped)]
    if len(stripped) <= _MAX_ID:
        if stripped.isascii() and stripped.isdigit():
            found.append(format(int(stripped), "x"))
        if _HEX.fullmatch(stripped):
            found.append(str(int(stripped, 16)))
    return list(dict.fromkeys(found))


def id_variants(carrier_message_id: str) -> set[str]:
    """Every canonical key (see `id_key`) the id may denote when carriers mix hex and decimal."""
    return set(id_candidates(carrier_message_id))


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None
