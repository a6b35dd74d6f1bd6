"""SMPP logins of tenants: which tenant a (system_id, password) bind belongs to, without a scrypt per bind."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Final

from appliance.domain import credentials
from appliance.errors import NotFound
from appliance.store import FullStore, SmppCredential

_LOGIN_TTL_S: Final = 30.0


class SmppLogins:
    """system_id -> tenant, checked against the scrypt hash once per password and then remembered as
    a keyed SHA-256 (constant-time compare), so a client that re-binds often costs no scrypt; entries
    are dropped when admin announces a change, and every `_LOGIN_TTL_S` as a safety net."""

    def __init__(self, store: FullStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._key = secrets.token_bytes(32)  # the cache keeps a keyed digest, never the password
        # system_id -> (credential, digest, at)
        self._verified: dict[str, tuple[SmppCredential, bytes, float]] = {}

    def _digest(self, password: str) -> bytes:
        return hmac.digest(self._key, password.encode(), "sha256")

    def invalidate(self, kind: str, ident: str) -> None:
        if kind == "smpp_credential":
            self._verified.pop(ident, None)
        elif kind == "tenant":
            for system_id in [s for s, v in self._verified.items() if v[0].tenant_id == ident]:
                del self._verified[system_id]

    async def check(self, system_id: str, password: str) -> SmppCredential | None:
        """The login (its tenant and settings) when the password is right, else None."""
        cached = self._verified.get(system_id)
        if cached is not None and self._clock() - cached[2] < _LOGIN_TTL_S:
            return cached[0] if hmac.compare_digest(cached[1], self._digest(password)) else None
        try:
            credential, stored = await self._store.find_smpp_credential(system_id)
        except NotFound:
            return None
        if not await asyncio.to_thread(credentials.verify_password, password, stored):
            return None
        self._verified[system_id] = (credential, self._digest(password), self._clock())
        return credential
