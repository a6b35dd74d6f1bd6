"""Rules for tenant names, tiers, contacts and ids: pure checks shared by admin and the CLI."""

from __future__ import annotations

import re
import secrets
from typing import get_args

from appliance.config.schema import Tier
from appliance.errors import InvalidInput

TIERS: tuple[str, ...] = get_args(Tier)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SYSTEM_ID = re.compile(r"^[\x21-\x7e]{1,15}$")


def check_tenant_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput("name", "1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")
    if name.startswith("tn_"):
        raise InvalidInput("name", "must not start with 'tn_' (reserved for tenant ids)")
    return name


def check_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise InvalidInput("tier", f"must be one of {', '.join(TIERS)}, not {tier!r}")
    return tier  # type: ignore[return-value]


def check_email(email: str) -> str:
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput("email", f"{email!r} is not an email address")
    return email


def check_smpp_system_id(system_id: str) -> str:
    """SMPP 3.4 system_id is a C-octet string of at most 16 octets including the NUL."""
    if not _SYSTEM_ID.match(system_id):
        raise InvalidInput("system_id", "1-15 printable ASCII characters without spaces")
    return system_id


def check_smpp_password(password: str) -> str:
    """SMPP 3.4 password is a C-octet string of at most 9 octets including the NUL."""
    if not 1 <= len(password) <= 8 or not password.isascii() or not password.isprintable():
        raise InvalidInput("password", "1-8 printable ASCII characters (the SMPP 3.4 limit)")
    return password


def new_tenant_id() -> str:
    return "tn_" + secrets.token_hex(8)


def check_label(label: str) -> str:
    if len(label) > 100 or not label.isprintable():
        raise InvalidInput("label", "at most 100 printable characters")
    return label
