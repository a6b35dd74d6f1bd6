"""The per-field rules of L5: recipients, senders, content, metadata, limits.

`FieldChecker` collects every violation as `{"field", "reason"}` instead of stopping at the first, so
`schema.normalize` can answer one 422 that lists them all. `parse_e164` and `is_plausible_email` are
shared with L6, which matches suppression lists on the same normalized forms. Pure, no I/O.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Final, TypeGuard
from urllib.parse import urlsplit

import phonenumbers

from appliance.domain.e164 import is_valid_canonical
from appliance.domain.gsm import gsm7_length, is_gsm7
from appliance.domain.message import CHANNELS, ChannelTarget, MessageRequest, Priority, SuccessWhen

MAX_SMS_CHARS: Final = 1600
MAX_SMS_PARTS: Final = 10
MAX_SUBJECT: Final = 998
MAX_EMAIL_PART_BYTES: Final = 1_048_576
MAX_TEXT_BODY: Final = 4096
"""Body limit for whatsapp, push and telegram (the providers' own text limits)."""
MAX_TOKEN: Final = 4096
MAX_EMAIL: Final = 254
MAX_METADATA_KEYS: Final = 20
MAX_METADATA_KEY: Final = 64
MAX_METADATA_VALUE: Final = 512
MAX_URL: Final = 2048
MAX_ALPHANUMERIC_SENDER: Final = 11
TIMEOUT_RANGE: Final = (1.0, 86_400.0)

_PHONE_CHANNELS: Final = frozenset({"sms", "whatsapp"})
_TEXT_CHANNELS: Final = frozenset({"sms", "whatsapp", "push", "telegram"})
_PRIORITIES: Final[dict[str, Priority]] = {"low": "low", "normal": "normal", "high": "high"}
_SUCCESS: Final[dict[str, SuccessWhen]] = {"accepted": "accepted", "delivered": "delivered", "read": "read"}
_PHONE_CHARS: Final = re.compile(r"\+[0-9 ().\-]{1,40}")
_EMAIL: Final = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@(?:[^@\s\x00-\x1f\x7f.]+\.)+[^@\s\x00-\x1f\x7f.]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f\x7f]")

FieldError = dict[str, str]
"""`{"field": "channels[1].to", "reason": "..."}`, as listed in a 422's `details.fields`."""


@functools.lru_cache(maxsize=65_536)
def parse_e164(text: str) -> str | None:
    """`text` as E.164 (`+4523456789`) when it is a valid international number, else None.

    Spaces, dots, dashes and parentheses are allowed; letters (vanity numbers, "ext.") are not.
    Already-canonical input (what most API clients send) is judged by `is_valid_canonical` (phonenumbers'
    rules, precompiled) and is its own E.164 form; anything else, or a canonical number those rules
    refuse, goes to phonenumbers' generic parser, which also strips national and carrier prefixes.
    Recent answers are cached because senders repeat numbers (OTPs, alerts).
    """
    if is_valid_canonical(text):
        return text
    if not _PHONE_CHARS.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_plausible_email(text: str) -> bool:
    """local@domain.tld, at most 254 characters, no spaces or control characters."""
    return len(text) <= MAX_EMAIL and _EMAIL.fullmatch(text) is not None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_alphanumeric_sender(text: str) -> bool:
    """1..11 GSM 7-bit characters (extension characters count twice), nothing unprintable."""
    return (
        bool(text)
        and not _CONTROL.search(text)
        and is_gsm7(text)
        and gsm7_length(text) <= MAX_ALPHANUMERIC_SENDER
    )


def _utf8_len(text: str) -> int:
    return len(text) if len(text) * 4 <= MAX_EMAIL_PART_BYTES else len(text.encode("utf-8", "surrogatepass"))


class FieldChecker:
    """Collects field errors; each check returns the clean value, or None after recording why not."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append({"field": field, "reason": reason})

    def text(self, field: str, value: object, *, limit: int, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {type(value).__name__}")
        elif required and not value:
            self.fail(field, "must not be empty")
        elif len(value) > limit:
            self.fail(field, f"at most {limit} characters, got {len(value)}")
        else:
            return value
        return None

    def target(
        self, path: str, channel: object, to: object, timeout: object, success: object
    ) -> ChannelTarget | None:
        """One step of the cascade; `path` prefixes the field names ("" or "channels[2].")."""
        errors = len(self.errors)
        known = isinstance(channel, str) and channel in CHANNELS
        if not known:
            reason = "required" if channel is None else f"must be one of {', '.join(CHANNELS)}"
            self.fail(f"{path}channel", reason)
        clean_to = self.recipient(f"{path}to", channel if known else None, to)
        timeout_s = None
        if _is_number(timeout) and TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
            timeout_s = float(timeout)
        elif timeout is not None:
            self.fail(f"{path}timeout_s", "must be a number of seconds from 1 to 86400")
        when: SuccessWhen | None = "delivered"
        if success is not None:
            when = _SUCCESS.get(success) if isinstance(success, str) else None
            if when is None:
                self.fail(f"{path}success", f"must be one of {', '.join(_SUCCESS)}")
        if len(self.errors) > errors or not isinstance(channel, str) or clean_to is None or when is None:
            return None
        return ChannelTarget(channel=channel, to=clean_to, timeout_s=timeout_s, success=when)

    def recipient(self, field: str, channel: object, to: object) -> str | None:
        if to is None or to == "":
            self.fail(field, "required")
            return None
        if not isinstance(to, str):
            self.fail(field, f"must be a string, not {type(to).__name__}")
            return None
        if channel in _PHONE_CHANNELS:
            e164 = parse_e164(to)
            if e164 is None:
                self.fail(
                    field, f"{to[:64]!r} is not a valid phone number in international format (+country...)"
                )
            return e164
        if channel == "email":
            if not is_plausible_email(to):
                self.fail(field, f"{to[:64]!r} is not an email address")
                return None
        elif channel is None:
            return None  # the channel is wrong: nothing to check the recipient against
        elif len(to) > MAX_TOKEN or _SPACE_OR_CONTROL.search(to):
            self.fail(field, f"a {channel} recipient is a token of 1..{MAX_TOKEN} characters without spaces")
            return None
        return to

    def sender(self, value: object, channels: set[str]) -> str | None:
        if value is None:
            if "email" in channels:
                self.fail("from", "required for email")
            return None
        if not isinstance(value, str):
            self.fail("from", f"must be a string, not {type(value).__name__}")
        elif "email" in channels:
            if is_plausible_email(value):
                return value
            self.fail("from", f"{value[:64]!r} is not an email address")
        elif "sms" in channels:
            if value.startswith("+"):
                e164 = parse_e164(value)
                if e164 is None:
                    self.fail("from", f"{value[:64]!r} is not a valid phone number")
                return e164
            if _is_alphanumeric_sender(value):
                return value
            self.fail("from", "an SMS sender is an E.164 number or 1..11 GSM characters")
        elif 0 < len(value) <= MAX_EMAIL and not _CONTROL.search(value):
            return value
        else:
            self.fail("from", f"1..{MAX_EMAIL} characters without control characters")
        return None

    def metadata(self, value: object) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail("metadata", "must be an object of string values")
            return {}
        if len(value) > MAX_METADATA_KEYS:
            self.fail("metadata", f"at most {MAX_METADATA_KEYS} keys, got {len(value)}")
        for key, item in value.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_METADATA_KEY:
                self.fail("metadata", f"key {str(key)[:64]!r} must be 1..{MAX_METADATA_KEY} characters")
            elif not isinstance(item, str):
                self.fail(f"metadata.{key}", f"must be a string, not {type(item).__name__}")
            elif len(item) > MAX_METADATA_VALUE:
                self.fail(f"metadata.{key}", f"at most {MAX_METADATA_VALUE} characters, got {len(item)}")
        return dict(value)

    def url(self, value: object) -> str | None:
        text = self.text("webhook_url", value, limit=MAX_URL)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or _SPACE_OR_CONTROL.search(text):
            self.fail("webhook_url", "must be an http:// or https:// URL")
            return None
        return text

    def priority(self, value: object) -> Priority:
        if value is None:
            return "normal"
        if not isinstance(value, str) or value not in _PRIORITIES:
            self.fail("priority", f"must be one of {', '.join(_PRIORITIES)}")
            return "normal"
        return _PRIORITIES[value]

    def flag(self, field: str, value: object) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
            return False
        return value

    def content(
        self, request: MessageRequest, channels: set[str]
    ) -> tuple[str | None, str | None, str | None]:
        """(body, subject, html) checked against what every channel of the cascade needs."""
        needs_body = bool(channels & _TEXT_CHANNELS)
        limit = MAX_TEXT_BODY if channels & {"whatsapp", "push", "telegram"} else MAX_EMAIL_PART_BYTES
        limit = MAX_SMS_CHARS if "sms" in channels else limit
        body = self.text("body", request.body, limit=limit, required=needs_body)
        subject = self.text("subject", request.subject, limit=MAX_SUBJECT, required="email" in channels)
        if subject is not None and _CONTROL.search(subject.replace("\t", " ")):
            self.fail("subject", "must be one line without control characters")
            subject = None
        html = self.text("html", request.html, limit=MAX_EMAIL_PART_BYTES)
        for field, part in (("body", body), ("html", html)):
            if part is not None and _utf8_len(part) > MAX_EMAIL_PART_BYTES:
                self.fail(field, f"at most {MAX_EMAIL_PART_BYTES} bytes of UTF-8")
        if (
            "email" in channels
            and not needs_body
            and request.body in (None, "")
            and request.html in (None, "")
        ):
            self.fail("body", "email needs a body or an html part")
        return body, subject, html
