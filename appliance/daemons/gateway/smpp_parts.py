"""Durable parts of concatenated SMPP messages: answered parts survive a gateway restart.

A part that is not the last one gets its submit_sm_resp before the message exists, so it is first
written to a JetStream KV bucket (`SMPP_PARTS`, file storage, TTL = the reassembly timeout plus a
minute); the answer leaves after the put is acknowledged. When a part arrives for a set the gateway
does not hold in memory (it restarted, or the set began on another node), the parts stored so far
are loaded back, so the set still completes. Once the whole message is published, its parts are
purged. Keys: `<tenant>.<sha256(source, destination, reference, total)[:32]>.<seq>`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Hashable, Mapping

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from appliance.bus.kv import open_bucket
from appliance.domain.segmentation import Concat

BUCKET = "SMPP_PARTS"


class StoredPart(msgspec.Struct, frozen=True):
    part_id: str
    payload: bytes
    context: dict[str, str] = msgspec.field(default_factory=dict)  # the part's `smpp.*` receipt metadata


_DECODER = msgspec.json.Decoder(StoredPart)


async def open_part_store(js: JetStreamContext, ttl_s: float) -> PartStore:
    kv = await open_bucket(
        js,
        BUCKET,
        ttl_s=ttl_s,
        description="Answered parts of concatenated SMPP messages awaiting their other parts",
    )
    return PartStore(kv)


class PartStore:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @staticmethod
    def _prefix(tenant_id: str, conversation: Hashable, concat: Concat) -> str:
        digest = hashlib.sha256(repr((conversation, concat.reference, concat.total)).encode()).hexdigest()
        return f"{tenant_id}.{digest[:32]}"

    async def put(
        self,
        tenant_id: str,
        conversation: Hashable,
        concat: Concat,
        part_id: str,
        payload: bytes,
        context: Mapping[str, str] | None = None,
    ) -> None:
        """Store one answered part; returns once JetStream acknowledged it (raises otherwise)."""
        key = f"{self._prefix(tenant_id, conversation, concat)}.{concat.seq}"
        stored = StoredPart(part_id, payload, dict(context or {}))
        await self._kv.put(key, msgspec.json.encode(stored))

    async def load(self, tenant_id: str, conversation: Hashable, concat: Concat) -> dict[int, StoredPart]:
        """The stored parts of this part's set, other than itself."""
        prefix = self._prefix(tenant_id, conversation, concat)
        found: dict[int, StoredPart] = {}
        for seq in range(1, concat.total + 1):
            if seq == concat.seq:
                continue
            try:
                entry = await self._kv.get(f"{prefix}.{seq}")
            except KeyNotFoundError:
                continue
            if entry.value:
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    found[seq] = _DECODER.decode(entry.value)
        return found

    async def purge(self, tenant_id: str, conversation: Hashable, concat: Concat) -> None:
        """Forget a completed set (best effort: the TTL removes what this misses)."""
        prefix = self._prefix(tenant_id, conversation, concat)
        for seq in range(1, concat.total + 1):
            with contextlib.suppress(Exception):
                await self._kv.purge(f"{prefix}.{seq}")
