"""Message states (design.md §7) as values: parsing them, and the coarse groups listings filter by.

States are `created`, `<n>_sending`, `<n>_waiting`, `<n>_delivered`, `<n>_failed` (n = the 1-based channel
index) and `all_failed`. Callers: the store, to turn `?status=` into a filter; the trace, to name steps.
Groups exist because a tenant asking "which failed?" should not need to know how many channels each
message had: `delivered` is any `<n>_delivered`, `failed` is `all_failed`, `pending` is everything else.
"""

from __future__ import annotations

import re
from typing import Final, Literal

StateGroup = Literal["delivered", "failed", "pending"]
STATE_GROUPS: Final[tuple[StateGroup, ...]] = ("delivered", "failed", "pending")
_CHANNEL_STATE: Final = re.compile(r"^([1-9][0-9]{0,2})_(sending|waiting|delivered|failed)$")


def is_state(value: str) -> bool:
    """True for every state of design.md §7, for any number of channels."""
    return value in ("created", "all_failed") or _CHANNEL_STATE.match(value) is not None


def channel_of(state: str) -> int | None:
    """The channel index a `<n>_...` state names; None for `created` and `all_failed`."""
    match = _CHANNEL_STATE.match(state)
    return int(match[1]) if match else None


def group_of(state: str) -> StateGroup:
    """The coarse group a state falls in."""
    if state.endswith("_delivered"):
        return "delivered"
    if state == "all_failed":
        return "failed"
    return "pending"


def parse_state_filter(value: str) -> str | StateGroup:
    """A `?status=` value checked: an exact state or a group; ValueError naming what is accepted."""
    if value in STATE_GROUPS or is_state(value):
        return value
    raise ValueError(
        f"unknown state {value!r}: use created, <n>_sending, <n>_waiting, <n>_delivered, <n>_failed, "
        "all_failed, or a group (delivered, failed, pending)"
    )
