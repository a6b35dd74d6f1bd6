"""The unified message (design.md §7): what every ingress produces and the cascade consumes.

REST accepts three request shapes, all normalised here into `Message`:
- short: `{"to", "channel", "body"}` (+ `"from"`, `"subject"`, `"html"` for email)
- full:  `{"channels": [{"channel", "to", "timeout_s"}, ...], "body", ...}` (an ordered cascade)
- batch: `{"messages": [short-or-full, ...]}` (up to 1,000, each answered separately)

Message ids are time-ordered (48-bit milliseconds + 80 random bits, hex), so listings by time need
no extra index and ids never collide across workers or nodes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Final, Literal

import msgspec

Channel = Literal["sms", "email", "push", "whatsapp", "telegram"]
CHANNELS: tuple[Channel, ...] = ("sms", "email", "push", "whatsapp", "telegram")
Origin = Literal["rest", "smpp", "smtp"]
Priority = Literal["low", "normal", "high"]
SuccessWhen = Literal["accepted", "delivered", "read"]

DEFAULT_TIMEOUT_S: dict[str, float] = {
    "email": 300.0,
    "sms": 60.0,
    "push": 30.0,
    "whatsapp": 120.0,
    "telegram": 60.0,
}
MAX_BATCH = 1_000


class _Entropy:
    """`os.urandom` read 4 KiB at a time and handed out in slices: the gateway takes 10 bytes per
    message, and one getrandom() call per message was 5% of its CPU in a batch load. The buffer is
    dropped in a forked child, and taken under a lock, so no two processes or threads ever hand out the
    same bytes."""

    _CHUNK: Final = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def take(self, count: int) -> bytes:
        with self._lock:
            end = self._offset + count
            if end > len(self._buffer):
                self._buffer, self._offset, end = os.urandom(max(self._CHUNK, count)), 0, count
            taken = self._buffer[self._offset : end]
            self._offset = end
            return taken

    def _forget(self) -> None:
        self._buffer, self._offset, self._lock = b"", 0, threading.Lock()


_ENTROPY: Final = _Entropy()


def new_message_id(now: float | None = None) -> str:
    """`msg_` + 32 hex digits: 48 bits of milliseconds, then 80 random bits.

    Lexical order is creation order (to the millisecond), so listings by time need no extra index,
    and ids never collide across workers or nodes. Hex keeps it one C call (`bytes.hex`).
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    return "msg_" + (millis.to_bytes(6, "big") + _ENTROPY.take(10)).hex()


class ChannelTarget(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One step of the cascade: where to try, and how long to wait for an outcome."""

    channel: str
    to: str
    timeout_s: float | None = None
    # What counts as success on this channel (default: "delivered").
    success: SuccessWhen = "delivered"


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A validated message, as published on `msg.accepted.<tenant>`."""

    id: str
    tenant_id: str
    origin: Origin
    channels: tuple[ChannelTarget, ...]
    created_at: float
    body: str | None = None
    subject: str | None = None
    html: str | None = None
    sender: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    priority: Priority = "normal"
    idempotency_key: str | None = None
    webhook_url: str | None = None
    marketing: bool = False
    # The tenant asserts the recipient consented (needed for marketing; checked at layer 6).
    consent: bool = False
    # Stop at the first success (default) or try every channel and report each.
    notify_all: bool = False
    # Estimated cost reserved at L4, in the tenant's currency; parts per SMS channel, for the answer.
    estimated_cost: float = 0.0
    sms_parts: int = 0
    sms_encoding: str | None = None
    # A replay (`hermesctl message dlq replay`) republishes the message with the highest attempt number it
    # has used, so the new run's attempts (and the ids derived from them) never collide with the old ones.
    attempt_base: int = 0


class ChannelRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    channel: Any = None
    to: Any = None
    timeout_s: Any = None
    success: Any = None


class MessageRequest(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename={"from_": "from"}
):
    """The REST body before validation: every field optional and loosely typed, so that L5 can
    report *all* bad fields at once instead of the first one a decoder trips on."""

    to: Any = None
    channel: Any = None
    channels: Any = None
    body: Any = None
    subject: Any = None
    html: Any = None
    from_: Any = None
    metadata: Any = None
    priority: Any = None
    webhook_url: Any = None
    marketing: Any = None
    consent: Any = None
    notify_all: Any = None


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    messages: list[Any]
