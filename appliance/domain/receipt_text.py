"""The delivery receipt Hermes sends back to an SMPP client, built from a final cascade event.

The gateway's receipt relay reads `delivered` / `dead_lettered` / `failed` events (cascade contract:
their data carries origin, metadata, channel, to, sender, created_at, attempt and the last
executor's stat/err) and asks this module what to say: the de-facto text of SMPP 3.4 appendix B,
`id:… sub:… dlvrd:… submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:… err:… text:…`, the
`message_state` TLV value, and whether the client asked for a receipt at all (`registered_delivery`).
Pure: no I/O, the clock is passed in as the event's own times.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from appliance.domain.dlr import canonical_stat

RECEIPT_MASK: Final = 0x03
RECEIPT_ALWAYS: Final = 0x01
RECEIPT_ON_FAILURE: Final = 0x02
"""registered_delivery bits 1-0 (SMPP 3.4 §5.2.17): which outcomes the client wants a receipt for."""

MESSAGE_STATES: Final[dict[str, int]] = {
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
"""The final stats and their message_state TLV values (§5.2.28)."""

_FAILED_STATS: Final = frozenset(MESSAGE_STATES) - {"DELIVRD"}
TEXT_CHARS: Final = 20
"""Appendix B: the receipt repeats the first 20 characters of the message."""


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """What a final event means for the client: the stat, its message_state, and the err field."""

    stat: str
    message_state: int
    err: str

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"


def wants_receipt(registered_delivery: int, *, delivered: bool) -> bool:
    """Whether `registered_delivery` asks for a receipt of this outcome (always, or only on failure)."""
    asked = registered_delivery & RECEIPT_MASK
    return asked == RECEIPT_ALWAYS or (asked == RECEIPT_ON_FAILURE and not delivered)


def outcome_of_event(kind: str, data: Mapping[str, Any]) -> ReceiptOutcome:
    """The receipt's stat for a final event: DELIVRD for `delivered`; for a failure the carrier's own
    final stat when it gave one (EXPIRED, REJECTD, ...), EXPIRED when our timer ran out, else UNDELIV."""
    err = _err(data.get("err"))
    if kind == "delivered":
        return ReceiptOutcome("DELIVRD", MESSAGE_STATES["DELIVRD"], err)
    raw = data.get("stat")
    stat = canonical_stat(raw) if isinstance(raw, str) else ""
    if stat not in _FAILED_STATS:
        reason = str(data.get("reason") or "")
        stat = "EXPIRED" if "timeout" in reason or "expired" in reason else "UNDELIV"
    return ReceiptOutcome(stat, MESSAGE_STATES[stat], err if err != "000" else "001")


def _err(value: object) -> str:
    """The err field: three digits (a carrier's numeric error, zero-padded; of "<network type>:<code>"
    the code), 000 when none."""
    text = str(value).strip().rpartition(":")[2] if value is not None else ""
    if text.isascii() and text.isdigit():
        return text[-3:].zfill(3)
    return "000"


def smpp_date(epoch: float) -> str:
    """YYMMDDhhmm in UTC, the date format of appendix B."""
    return time.strftime("%y%m%d%H%M", time.gmtime(epoch))


def parse_address(value: object) -> tuple[int, int, str]:
    """(ton, npi, address) from the "ton/npi/address" form of the `smpp.source` metadata."""
    text = value if isinstance(value, str) else ""
    ton, sep1, rest = text.partition("/")
    npi, sep2, address = rest.partition("/")
    if sep1 and sep2 and ton.isdigit() and npi.isdigit():
        return int(ton), int(npi), address
    return 0, 0, text


@dataclass(frozen=True, slots=True)
class PlannedReceipt:
    """One deliver_sm to send: the receipted id, its text and state, and the addresses to use
    (`source` is the message's destination and `destination` its source, as the client gave them)."""

    system_id: str
    message_id: str
    text: str
    message_state: int
    source: tuple[int, int, str]
    destination: tuple[int, int, str]


def plan_receipts(kind: str, message_id: str, at: float, data: Mapping[str, Any]) -> list[PlannedReceipt]:
    """The receipts a final event owes an SMPP client: none unless the message came over SMPP and its
    registered_delivery asks for this outcome; else one per answered id (the earlier parts of a
    concatenated message first, then the message itself)."""
    metadata = data.get("metadata")
    if data.get("origin") != "smpp" or not isinstance(metadata, Mapping):
        return []
    registered = str(metadata.get("smpp.registered_delivery", "0"))
    outcome = outcome_of_event(kind, data)
    if not registered.isdigit() or not wants_receipt(int(registered), delivered=outcome.delivered):
        return []
    created = data.get("created_at")
    submitted_at = float(created) if isinstance(created, int | float) else at
    text = str(metadata.get("smpp.text", ""))
    source = parse_address(metadata.get("smpp.source"))
    destination = parse_address(metadata.get("smpp.destination"))
    system_id = str(metadata.get("smpp.system_id", ""))
    parts = str(metadata.get("smpp.part_ids", ""))
    ids = [p for p in parts.split(",") if p] + [message_id]
    return [
        PlannedReceipt(
            system_id=system_id,
            message_id=receipted,
            text=receipt_text(receipted, outcome, submitted_at=submitted_at, done_at=at, text=text),
            message_state=outcome.message_state,
            source=destination,
            destination=source,
        )
        for receipted in ids
    ]


def receipt_text(
    message_id: str, outcome: ReceiptOutcome, *, submitted_at: float, done_at: float, text: str
) -> str:
    """The appendix-B receipt text for one message id (`text` is cut to its first 20 characters)."""
    dlvrd = "001" if outcome.delivered else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{smpp_date(submitted_at)} "
        f"done date:{smpp_date(done_at)} stat:{outcome.stat} err:{outcome.err} text:{text[:TEXT_CHARS]}"
    )
