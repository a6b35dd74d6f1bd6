"""Layer 3's shared token buckets: one JetStream KV entry per tenant, changed by compare-and-set.

Gateway workers lease tokens from here in chunks (`appliance.domain.pipeline.rate_lease`), so a
tenant's limit holds across workers and nodes whichever worker its connections land on. An entry
expires after `ttl_s` untouched; a missing entry reads as a full bucket, which is what any bucket
idle that long is (the TTL is far above any burst/rate refill time).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from appliance.bus.kv import open_bucket
from appliance.domain.pipeline.rate_lease import Grant, SharedState, lease
from appliance.errors import BusError

BUCKET = "RATE_LIMITS"
_ATTEMPTS = 16  # compare-and-set retries under contention before the lease is given up


class _Stored(msgspec.Struct, array_like=True):
    tokens: float
    updated: float


async def ensure_rate_bucket(js: JetStreamContext, ttl_s: float = 3600.0) -> KeyValue:
    return await open_bucket(
        js, BUCKET, ttl_s=ttl_s, description="L3 token buckets shared by the gateway workers"
    )


class SharedBuckets:
    def __init__(self, kv: KeyValue, *, clock: Callable[[], float]) -> None:
        self._kv = kv
        self._clock = clock

    async def lease(self, tenant_id: str, *, rate: float, burst: float, need: int, want: int) -> Grant:
        """Lease `need`..`want` tokens of the tenant's bucket (0 granted: refused, see `wait_s`).

        Raises BusError when the KV store cannot be read or written."""
        try:
            for _ in range(_ATTEMPTS):
                state: SharedState | None = None
                revision: int | None = None
                try:
                    entry = await self._kv.get(tenant_id)
                    if entry.value:
                        stored = msgspec.msgpack.decode(entry.value, type=_Stored)
                        state, revision = SharedState(stored.tokens, stored.updated), entry.revision
                    else:
                        revision = entry.revision
                except KeyNotFoundError:
                    pass
                grant = lease(state, rate=rate, burst=burst, now=self._clock(), need=need, want=want)
                if grant.granted == 0:
                    return grant
                value = msgspec.msgpack.encode(_Stored(grant.state.tokens, grant.state.updated))
                try:
                    if revision is None:
                        await self._kv.create(tenant_id, value)
                    else:
                        await self._kv.update(tenant_id, value, last=revision)
                except KeyWrongLastSequenceError:
                    continue  # another worker leased in between: read again
                return grant
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BusError(f"unreadable rate bucket for {tenant_id}: {exc}") from exc
        except BusError:
            raise
        except Exception as exc:
            raise BusError(f"rate bucket unavailable: {exc or type(exc).__name__}") from exc
        raise BusError(f"rate bucket of {tenant_id} too contended to lease from")
