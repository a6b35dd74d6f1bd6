"""Secrets handed to tenants and operators, and how they are checked.

API keys and operator tokens carry 256 random bits, so a keyed SHA-256 (HMAC with the node's secret)
is the right hash: one per request costs microseconds, and a leaked table is useless without the
secret file. SMPP passwords are short (at most 8 characters by the protocol), so they get scrypt
with a per-credential salt instead; a bind happens once per connection, so the cost is affordable.

Formats: API key `hk_<key_id>_<secret>`, operator token `ho_<token_id>_<secret>`; the id part is
public (it is what lists and logs show) and the secret part is shown once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import NamedTuple

API_KEY_PREFIX = "hk"
OPERATOR_TOKEN_PREFIX = "ho"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
SMPP_PASSWORD_MAX = 8


class IssuedSecret(NamedTuple):
    """A freshly minted credential: the id is public, `presented` is shown once, `hash` is stored."""

    id: str
    presented: str
    hash: str


def new_node_secret() -> bytes:
    """The node's own secret (kept in `secret_file`): the HMAC key for API keys and tokens."""
    return secrets.token_bytes(32)


def _new_id() -> str:
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def hash_secret(node_secret: bytes, secret: str) -> str:
    return hmac.new(node_secret, secret.encode(), hashlib.sha256).hexdigest()


def issue(prefix: str, node_secret: bytes) -> IssuedSecret:
    """Mint `<prefix>_<id>_<secret>` with a 256-bit secret."""
    key_id = _new_id()
    secret = secrets.token_urlsafe(32)
    return IssuedSecret(key_id, f"{prefix}_{key_id}_{secret}", hash_secret(node_secret, secret))


def split_presented(prefix: str, presented: str) -> tuple[str, str] | None:
    """(id, secret) of a presented key, or None when it is not of that shape."""
    head, sep, rest = presented.partition("_")
    if head != prefix or not sep:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or len(key_id) != 16 or len(secret) < 32:
        return None
    return key_id, secret


def verify_secret(node_secret: bytes, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(node_secret, secret), stored_hash)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """scrypt hash for short, human-chosen passwords (SMPP), as `scrypt$<salt hex>$<hash hex>`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt_hex, _, _ = rest.partition("$")
    if scheme != "scrypt" or not salt_hex:
        return False
    return hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt_hex)), stored)
