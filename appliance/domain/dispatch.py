"""Dispatch commands: one attempt on one path, as the cascade publishes them on DISPATCH.

`dispatch.sms.<carrier>` carries an `SmsDispatch`; the smpp daemon answers on EVENTS with
`submitted` (the carrier took it: its message ids), `rejected` (the carrier refused it for good,
with the SMPP status), and later `dlr` (a delivery receipt, final or not). Event ids are derived from
(message, attempt, ...) so a redelivered command or receipt is recognised downstream.
"""

from __future__ import annotations

from typing import Final

import msgspec

SMS_SUBJECT_PREFIX: Final = "dispatch.sms."


def sms_subject(carrier: str) -> str:
    return SMS_SUBJECT_PREFIX + carrier


class SmsDispatch(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    tenant_id: str
    attempt: int  # the cascade's attempt number: (message_id, attempt) identifies this try
    carrier: str
    to: str  # E.164
    body: str
    sender: str | None = None  # E.164 or alphanumeric; None = the carrier's default
    registered_delivery: bool = True
    priority: int = 0
    created_at: float = 0.0
