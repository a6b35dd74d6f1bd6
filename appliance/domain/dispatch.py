"""Dispatch commands: one attempt on one path, as the cascade publishes them on DISPATCH.

`dispatch.sms.<carrier>` carries an `SmsDispatch`; `dispatch.email.<pool>` and
`dispatch.adapter.<channel>` carry a `ChannelDispatch` (answered the same way: `submitted`, `rejected`,
`dlr` with `attempt_outcome`, `bounce`). Every dispatch may carry `expires_at` (epoch seconds, 0 = never):
the cascade has given up on the attempt after it, so an executor that gets it later drops it (answering
`rejected`, reason "expired") instead of sending a message the cascade already sent elsewhere.

The smpp daemon answers on EVENTS with `submitted` (the carrier took it: its message ids), `rejected`
(the carrier refused it for good, with the SMPP status), and later `dlr` (a delivery receipt, final or
not). Event ids are derived from
(message, attempt, ...) so a redelivered command or receipt is recognised downstream.
"""

from __future__ import annotations

from typing import Final

import msgspec

SMS_SUBJECT_PREFIX: Final = "dispatch.sms."
EMAIL_SUBJECT_PREFIX: Final = "dispatch.email."
ADAPTER_SUBJECT_PREFIX: Final = "dispatch.adapter."


def sms_subject(carrier: str) -> str:
    return SMS_SUBJECT_PREFIX + carrier


def email_subject(pool: str) -> str:
    return EMAIL_SUBJECT_PREFIX + pool


def adapter_subject(channel: str) -> str:
    return ADAPTER_SUBJECT_PREFIX + channel


def expired(expires_at: float, now: float) -> bool:
    """Whether the cascade has given up on an attempt with this `expires_at` (0 = never expires)."""
    return bool(expires_at) and now > expires_at


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
    expires_at: float = 0.0  # epoch seconds after which the cascade no longer waits for this attempt
    # "<ref>/<total>/<seq>": send `body` as that one part of a concatenated SMS (segmentation.CONCAT_METADATA)
    concat: str | None = None


class ChannelDispatch(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One attempt on a non-SMS channel: email (`dispatch.email.<pool>`) or an adapter's channel."""

    message_id: str
    tenant_id: str
    attempt: int
    channel: str  # email, push, whatsapp, telegram
    to: str
    route: str  # the email pool, or the adapter's channel name
    body: str | None = None
    subject: str | None = None
    html: str | None = None
    sender: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    priority: str = "normal"
    created_at: float = 0.0
    expires_at: float = 0.0
