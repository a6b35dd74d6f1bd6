"""Tenant webhooks: what is signed, how, and when a failed delivery is tried again.

Signature header: `Hermes-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
The timestamp inside the signed text lets a receiver refuse replays (compare t with its clock).
Delivery is at-least-once: `Hermes-Event-Id` lets a receiver drop a duplicate.
Retries back off exponentially (10 s, 20 s, 40 s ... capped at 1 h) for 24 h, then give up.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "Hermes-Signature"
EVENT_ID_HEADER: Final = "Hermes-Event-Id"
RETRY_FOR_S: Final = 24 * 3600.0
FIRST_RETRY_S: Final = 10.0
MAX_RETRY_GAP_S: Final = 3600.0


def sign(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: str, *, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does; here so tests (and tenants reading the docs) share one definition."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def next_attempt(attempts: int, created_at: float, now: float) -> float | None:
    """When to try again after `attempts` failed tries, or None once the 24 h are over."""
    gap = min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_GAP_S)
    at = now + gap
    return None if at > created_at + RETRY_FOR_S else at


def is_success(status: int) -> bool:
    return 200 <= status < 300
