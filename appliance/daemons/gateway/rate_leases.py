"""Layer 3 in a gateway worker: one worker enforces the limit alone; several share it.

One worker (the default) keeps exact token buckets in memory (`RateLimiter`). With several, each
worker spends an allowance leased in small chunks from the tenant's shared bucket in JetStream KV
(`appliance.bus.rate_bucket`, rules in `appliance.domain.pipeline.rate_lease`), so the tenant gets
its whole limit whichever worker its connections land on, and never more. A request waits for the
bus only when its worker's allowance is spent (about every `chunk_for(rate)` messages); concurrent
requests of one tenant share that one lease. If the KV store fails, the worker falls back to its
`share()` of the limit in memory, the stricter old rule, rather than refuse or let traffic through.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.bus.rate_bucket import SharedBuckets
from appliance.domain.pipeline import RateLimiter, Rejection, share
from appliance.domain.pipeline.rate_lease import chunk_for
from appliance.domain.pipeline.rate_limit import rate_rejection
from appliance.errors import BusError
from appliance.logs import get_logger
from appliance.store import Tenant

log = get_logger("hermes.ratelimit")
_LEASE_S = 1.0  # an unspent allowance is dropped after this long (tokens go unused, never over)
_WARN_EVERY_S = 10.0


@dataclass
class _Allowance:
    tokens: int
    limits: tuple[float, float]
    expires: float


class RateLeases:
    def __init__(
        self,
        shared: SharedBuckets | None,
        *,
        workers: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._workers = workers
        self._monotonic = monotonic
        self._local = RateLimiter()
        self._allowances: dict[str, _Allowance] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._warned_at = -math.inf

    async def check(self, tenant: Tenant, n: int = 1) -> Rejection | None:
        """Take `n` tokens of the tenant's limit: None when within it, else the 429."""
        rate, burst = float(tenant.rate_limit), float(tenant.burst)
        if rate == 0:
            return None
        if self._shared is None:  # one worker holds the whole limit (share of 1); else its share
            return self._local_share(tenant.id, rate, burst, n)
        if self._spend(tenant.id, (rate, burst), n):
            return None
        lock = self._locks.get(tenant.id)
        if lock is None:
            lock = self._locks[tenant.id] = asyncio.Lock()
        async with lock:
            if self._spend(tenant.id, (rate, burst), n):  # a lease taken while we waited
                return None
            try:
                grant = await self._shared.lease(
                    tenant.id, rate=rate, burst=burst, need=n, want=max(n, chunk_for(rate, burst))
                )
            except BusError as exc:
                self._warn(tenant.id, exc)
                return self._local_share(tenant.id, rate, burst, n)
            if grant.granted == 0:
                return rate_rejection(rate, burst, n, grant.wait_s)
            self._allowances[tenant.id] = _Allowance(
                grant.granted - n, (rate, burst), self._monotonic() + _LEASE_S
            )
            return None

    def _local_share(self, tenant_id: str, rate: float, burst: float, n: int) -> Rejection | None:
        worker_rate, worker_burst = share(rate, burst, self._workers)
        return self._local.check(tenant_id, worker_rate, worker_burst, self._monotonic(), n)

    def _spend(self, tenant_id: str, limits: tuple[float, float], n: int) -> bool:
        allowance = self._allowances.get(tenant_id)
        if (
            allowance is None
            or allowance.tokens < n
            or allowance.limits != limits
            or allowance.expires < self._monotonic()
        ):
            return False
        allowance.tokens -= n
        return True

    def _warn(self, tenant_id: str, exc: BusError) -> None:
        now = self._monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "shared rate bucket unavailable; enforcing this worker's share",
                action="ratelimit.shared_unavailable",
                tenant_id=tenant_id,
                error=str(exc),
            )
