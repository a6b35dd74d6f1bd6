"""Layer 0 memory: which Idempotency-Keys a tenant has used, and the first answer to each.

A JetStream KV bucket (`IDEMPOTENCY`, file storage, TTL from config), so it holds across gateway
workers, restarts and nodes. Keys are `<tenant>.<sha256(idempotency key)>`: any header value is safe
and one tenant's keys never meet another's. A claim is `create` (atomic: exactly one request wins);
the winner later stores its answer, or releases the claim when the request was refused so the
client can correct it and retry with the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Literal

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from appliance.bus.kv import open_bucket

BUCKET = "IDEMPOTENCY"
_PENDING = b"{}"


class Claim(msgspec.Struct, frozen=True):
    outcome: Literal["claimed", "in_progress", "answered"]
    answer: dict[str, Any] | None = None
    revision: int | None = None


async def ensure_bucket(js: JetStreamContext, ttl_s: float) -> KeyValue:
    return await open_bucket(js, BUCKET, ttl_s=ttl_s, description="Idempotency-Key claims and first answers")


def _key(tenant_id: str, idempotency_key: str) -> str:
    return f"{tenant_id}.{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class IdempotencyStore:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def claim(self, tenant_id: str, idempotency_key: str) -> Claim:
        key = _key(tenant_id, idempotency_key)
        try:
            revision = await self._kv.create(key, _PENDING)
            return Claim("claimed", revision=revision)
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:  # released between our create and get: try once more
            return await self.claim(tenant_id, idempotency_key)
        if not entry.value or entry.value == _PENDING:
            return Claim("in_progress")
        return Claim("answered", answer=msgspec.json.decode(entry.value))

    async def answer(self, tenant_id: str, idempotency_key: str, answer: dict[str, Any]) -> None:
        await self._kv.put(_key(tenant_id, idempotency_key), msgspec.json.encode(answer))

    async def release(self, tenant_id: str, idempotency_key: str) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self._kv.purge(_key(tenant_id, idempotency_key))
