"""L3: token buckets per tenant, with the clock passed in.

A bucket holds at most `burst` tokens and refills at `rate` tokens per second; a request of `n`
messages takes `n` tokens or, when there are too few, takes nothing and learns how long to wait.
A refused take never borrows, so a client hammering a full limiter does not push its own
Retry-After further out. Rate 0 means unlimited.

The gateway calls `RateLimiter.check(tenant_id, rate, burst, now, n)` once per request with the
tenant's current limits (from the registry cache) and a monotonic `now`. The limiter keeps one
bucket per tenant, rebuilds it when the operator changes the limits, and forgets buckets that have
refilled and sat idle, a few per call, so memory follows the set of recently active tenants.

One gateway worker uses a `RateLimiter` directly. Several workers share each tenant's bucket through
JetStream KV and lease tokens from it in chunks (`rate_lease.py`); `share(rate, burst, N)` is only their
fallback while the bus cannot be reached.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Final

from appliance.domain.pipeline.rejection import Rejection
from appliance.errors import InvalidInput

NEVER: Final = math.inf
"""What `TokenBucket.take` answers for a request larger than the burst: it can never be granted."""

_EPSILON: Final = 1e-9  # forgives float drift in refills, so 0.9999999999 tokens count as 1


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second from `now` on; starts full."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float, *, tokens: float | None = None) -> None:
        if not rate >= 0 or math.isinf(rate) or not burst >= 0 or math.isinf(burst):
            raise InvalidInput("rate_limit", f"rate and burst must be finite and >= 0, not {rate}/{burst}")
        if rate > 0 and burst <= 0:
            raise InvalidInput("rate_limit", "a limited bucket needs a burst above 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst if tokens is None else min(self.burst, max(0.0, tokens))
        self.updated = now

    @property
    def unlimited(self) -> bool:
        return self.rate == 0

    def level(self, now: float) -> float:
        """Tokens available at `now` (a clock that went backwards refills nothing)."""
        return min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)

    def take(self, now: float, n: float = 1) -> float:
        """Take `n` tokens: 0.0 when granted, else the seconds until `n` will be there (nothing taken).

        `NEVER` (infinity) when `n` exceeds the burst: no amount of waiting grants it.
        """
        if self.unlimited:
            return 0.0
        if n > self.burst + _EPSILON:
            return NEVER
        self.tokens = self.level(now)
        self.updated = max(self.updated, now)
        if self.tokens + _EPSILON >= n:
            self.tokens = max(0.0, self.tokens - n)
            return 0.0
        return (n - self.tokens) / self.rate

    def is_full(self, now: float) -> bool:
        return self.level(now) + _EPSILON >= self.burst


class RateLimiter:
    """One token bucket per tenant, rebuilt when the tenant's limits change; idle buckets evicted.

    A bucket is forgotten once it is full again and was last used more than `idle_after_s` ago: a
    fresh bucket would start full, so forgetting it changes no answer. Buckets are kept in order of
    last use and at most `sweep_per_check` of the oldest are looked at per call, which bounds both
    the work per call and the memory (tenants active in the last `idle_after_s`, plus those whose
    bucket is still refilling).
    """

    def __init__(self, *, idle_after_s: float = 600.0, sweep_per_check: int = 4) -> None:
        if idle_after_s < 0 or sweep_per_check < 1:
            raise InvalidInput("rate_limiter", "idle_after_s must be >= 0 and sweep_per_check >= 1")
        self.idle_after_s = idle_after_s
        self.sweep_per_check = sweep_per_check
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, tenant_id: object) -> bool:
        return tenant_id in self._buckets

    def check(self, tenant_id: str, rate: float, burst: float, now: float, n: int = 1) -> Rejection | None:
        """Take `n` tokens from the tenant's bucket: None when within the limit, else a 429."""
        self.evict_idle(now, limit=self.sweep_per_check)
        if rate == 0:
            self._buckets.pop(tenant_id, None)
            return None
        bucket = self._bucket(tenant_id, rate, burst, now)
        wait = bucket.take(now, n)
        if wait == 0.0:
            return None
        return rate_rejection(rate, burst, n, wait)

    def evict_idle(self, now: float, *, limit: int | None = None) -> int:
        """Forget up to `limit` (default: all) buckets that are idle and full; returns how many."""
        evicted = 0
        while self._buckets and (limit is None or evicted < limit):
            tenant_id, bucket = next(iter(self._buckets.items()))
            if now - bucket.updated <= self.idle_after_s or not bucket.is_full(now):
                break
            del self._buckets[tenant_id]
            evicted += 1
        return evicted

    def _bucket(self, tenant_id: str, rate: float, burst: float, now: float) -> TokenBucket:
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = TokenBucket(rate, burst, now)
        elif bucket.rate != rate or bucket.burst != burst:
            # New limits keep what the tenant has used: its level carries over, capped by the new burst.
            bucket = TokenBucket(rate, burst, now, tokens=bucket.level(now))
        else:
            self._buckets.move_to_end(tenant_id)
            return bucket
        self._buckets[tenant_id] = bucket
        self._buckets.move_to_end(tenant_id)
        return bucket


def rate_rejection(rate: float, burst: float, n: int, wait_s: float) -> Rejection:
    """The 429 for a take of `n` tokens that must wait `wait_s` (NEVER: more than the burst)."""
    details: dict[str, object] = {"rate_per_s": rate, "burst": burst, "requested": n}
    if wait_s == NEVER:
        return Rejection(
            429,
            "exceeds_burst",
            f"A request of {n} messages exceeds the burst of {burst:g}; split it into smaller requests.",
            "L3",
            details,
        )
    retry_after = max(1, math.ceil(wait_s - _EPSILON))
    return Rejection(
        429,
        "rate_limited",
        f"Rate limit of {rate:g}/s (burst {burst:g}) exceeded; retry in {retry_after} s.",
        "L3",
        {**details, "retry_after_s": retry_after},
        retry_after_s=float(retry_after),
    )


def share(rate: float, burst: float, workers: int) -> tuple[float, float]:
    """One worker's part of a tenant's limit when `workers` gateway processes each enforce their own
    (the fallback of shared buckets while the bus is unreachable).

    Each worker gets `rate / workers` and `burst / workers` (at least 1, so every worker can grant a
    single message). With requests spread evenly across workers (SO_REUSEPORT) the tenant sees its
    whole limit; with uneven spreading it sees less, never more than `rate` sustained. The burst may
    add up to more than `burst` (at most `workers` tokens at once) when `burst < workers`. Rate 0
    (unlimited) stays unlimited.
    """
    if workers < 1:
        raise InvalidInput("workers", f"must be at least 1, not {workers}")
    if rate == 0:
        return 0.0, float(burst)
    return rate / workers, max(1.0, burst / workers)
