"""What a pipeline layer answers when it refuses a request: status, stable code, layer, details.

Layers return a `Rejection` (a value, cheap, easy to assert on) or `None`; code that prefers raising
wraps one in `Rejected`. Either way the HTTP edge turns it into the one error shape of design.md §7,
`{"error": {"code", "message", "layer", "details"}}`, plus a `Retry-After` header when
`retry_after_s` is set. SMPP and SMTP edges map `status`/`code` to their own replies.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from appliance.errors import HermesError


class Rejection(msgspec.Struct, frozen=True):
    """A refusal by one layer (L0..L9) of the validation pipeline."""

    status: int
    """The HTTP status: 400, 401, 402, 403, 409, 422, 429 or 451."""
    code: str
    """A stable machine code, e.g. "rate_limited"; clients branch on this, never on `message`."""
    message: str
    """One human sentence."""
    layer: str
    """The layer that refused: "L0" .. "L9"."""
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    retry_after_s: float | None = None
    """When the client may retry (429); the edge sends it as a whole-second `Retry-After`."""

    def body(self) -> dict[str, Any]:
        """The JSON error body of design.md §7."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "layer": self.layer,
                "details": self.details,
            }
        }

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers: `Retry-After` in whole seconds (at least 1) when the refusal has one."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class Rejected(HermesError):
    """The validation pipeline refused the request."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(f"{rejection.layer} {rejection.code}: {rejection.message}")
