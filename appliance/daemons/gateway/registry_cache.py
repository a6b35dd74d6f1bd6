"""Layers 1 and 2 without a database round trip: API keys and tenants cached in the gateway worker.

Entries load on first use and are dropped when admin announces a change on `hermes.registry.changed`
(a revoked key stops working within a second), and everything is dropped every `refresh_s` as a
safety net for an announcement lost while NATS reconnected. A key's secret is HMAC-checked once;
after that, the same presented string is recognised by a constant-time compare against the cache.
Unknown key ids are remembered briefly so a client with a bad key cannot hammer the store.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.domain import credentials
from appliance.errors import NotFound
from appliance.store import FullStore, Tenant

_NEGATIVE_TTL_S = 5.0


@dataclass
class _Key:
    tenant_id: str
    secret_hash: str
    revoked: bool
    verified_secret: str | None = None


@dataclass(frozen=True)
class Authenticated:
    key_id: str
    tenant: Tenant


class RegistryCache:
    def __init__(
        self,
        store: FullStore,
        node_secret: bytes,
        *,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._secret = node_secret
        self._refresh_s = refresh_s
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._missing: dict[str, float] = {}
        self._tenants: dict[str, Tenant] = {}
        self._loaded_at = clock()

    def invalidate(self, kind: str, ident: str) -> None:
        """Forget what an admin change touched (kinds: tenant, api_key, or anything: all)."""
        if kind == "api_key":
            self._keys.pop(ident, None)
            self._missing.pop(ident, None)
        elif kind == "tenant":
            self._tenants.pop(ident, None)
            for key_id in [k for k, v in self._keys.items() if v.tenant_id == ident]:
                del self._keys[key_id]
            self._missing.clear()
        else:
            self.clear()

    def clear(self) -> None:
        self._keys.clear()
        self._missing.clear()
        self._tenants.clear()
        self._loaded_at = self._clock()

    async def authenticate(self, presented: str) -> Authenticated | None:
        """The key's tenant when `presented` is a live API key, else None (layer 1 answers 401)."""
        now = self._clock()
        if now - self._loaded_at > self._refresh_s:
            self.clear()
        parts = credentials.split_presented(credentials.API_KEY_PREFIX, presented)
        if parts is None:
            return None
        key_id, secret = parts
        entry = self._keys.get(key_id)
        if entry is None:
            if now - self._missing.get(key_id, -_NEGATIVE_TTL_S) < _NEGATIVE_TTL_S:
                return None
            try:
                key, stored_hash = await self._store.find_api_key(key_id)
            except NotFound:
                self._missing[key_id] = now
                return None
            entry = _Key(key.tenant_id, stored_hash, key.revoked_at is not None)
            self._keys[key_id] = entry
        if entry.revoked:
            return None
        if entry.verified_secret is None or not hmac.compare_digest(entry.verified_secret, secret):
            if not credentials.verify_secret(self._secret, secret, entry.secret_hash):
                return None
            entry.verified_secret = secret
        tenant = await self.tenant(entry.tenant_id)
        return None if tenant is None else Authenticated(key_id, tenant)

    async def tenant(self, tenant_id: str) -> Tenant | None:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            try:
                tenant = await self._store.get_tenant(tenant_id)
            except NotFound:
                return None
            self._tenants[tenant_id] = tenant
        return tenant
