"""Events on the EVENTS stream (`evt.<tenant>.<kind>`): their shape and what they mean for a message.

Every event carries a unique `id` (so a redelivery is recognised), the message it belongs to, and,
when it moves the message to a new state (design.md §7), that `state`. The `accepted` event also
carries the whole accepted message, so the recorder can store it without reading MESSAGES (a
work-queue stream that belongs to the cascade).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

FINAL_KINDS: Final = frozenset({"delivered", "failed", "dead_lettered"})
"""Outcomes after which nothing more happens to a message: what tenant webhooks always receive."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str
    message_id: str
    tenant_id: str
    at: float
    state: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    message: dict[str, Any] | None = None  # only on `accepted`


EVENT_DECODER: Final = msgspec.json.Decoder(Event)
