"""Events on the EVENTS stream (`evt.<tenant>.<kind>`): their shape and what they mean for a message.

Every event carries a unique `id` (so a redelivery is recognised), the message it belongs to, and,
when it moves the message to a new state (design.md §7), that `state`. The `accepted` event also
carries the whole accepted message, so the recorder can store it without reading MESSAGES (a
work-queue stream that belongs to the cascade). The gateway announces the messages it accepted
together (one tenant's) in one `accepted` event whose `messages` lists them all; `expand` turns it
into the event of each, which is what consumers handle.
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
    messages: list[dict[str, Any]] | None = None  # only on an `accepted` event for several messages


EVENT_DECODER: Final = msgspec.json.Decoder(Event)


def expand(event: Event) -> list[Event]:
    """The events one published event stands for: one `accepted` per message of a group, else itself."""
    if event.messages is None:
        return [event]
    return [
        Event(
            kind="accepted",
            id=f"{message_id}:accepted",
            message_id=message_id,
            tenant_id=event.tenant_id,
            at=float(message.get("created_at") or event.at),
            state="created",
            data={"origin": message.get("origin", "rest")},
            message=message,
        )
        for message in event.messages
        if isinstance(message_id := message.get("id"), str)
    ]
