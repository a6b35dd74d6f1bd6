"""L3 across gateway workers: one token bucket per tenant, shared, from which workers lease chunks.

With N workers each enforcing `share(rate, burst, N)`, a tenant whose connections all land on one
worker gets 1/N of its limit. Instead, the bucket lives in one shared place (a JetStream KV entry,
written with compare-and-set) and each worker leases a few tokens at a time (`chunk`) into a local
allowance it spends without a round trip. Guarantees:

- never more than `burst + rate * t` messages in any window of `t` seconds, summed over all workers
  (a token is granted once, by the shared bucket);
- a tenant is refused while it is under its limit by at most the unspent allowances of the other
  workers, `chunk` each, which expire after `lease_s` (they are not given back: the error is in the
  limit's favour, like an accountant's lease).

Everything here is pure: the state is `(tokens, updated)` with wall-clock `updated` (shared by every
worker of a node; across nodes it needs clocks in NTP agreement) and `now` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.domain.pipeline.rate_limit import NEVER, TokenBucket

_EPSILON = 1e-9


@dataclass(frozen=True)
class SharedState:
    """The shared bucket as stored: its level at `updated` (seconds since the epoch)."""

    tokens: float
    updated: float


@dataclass(frozen=True)
class Grant:
    """A lease answer: `granted` tokens (0 when refused), the state to store, the wait when refused."""

    granted: int
    state: SharedState
    wait_s: float


def chunk_for(rate: float, burst: float, *, window_s: float = 0.05) -> int:
    """Tokens a worker leases at once: `window_s` worth of the rate, at least 1, at most the burst."""
    return max(1, min(int(burst), math.ceil(rate * window_s)))


def lease(state: SharedState | None, *, rate: float, burst: float, now: float, need: int, want: int) -> Grant:
    """Take between `need` and `want` whole tokens from the shared bucket, as many as it holds.

    A missing state is a full bucket (a bucket nobody touched is full, and so is one idle long enough
    for its entry to expire). Refused (`granted` 0, state unchanged) when fewer than `need` are
    there; `wait_s` is then how long until there will be, `NEVER` when `need` exceeds the burst.
    """
    bucket = (
        TokenBucket(rate, burst, now)
        if state is None
        else TokenBucket(rate, burst, state.updated, tokens=state.tokens)
    )
    level = bucket.level(now)
    unchanged = state or SharedState(bucket.tokens, bucket.updated)
    if need > burst + _EPSILON:
        return Grant(0, unchanged, NEVER)
    if level + _EPSILON < need:
        return Grant(0, unchanged, (need - level) / rate)
    granted = max(need, min(want, int(level + _EPSILON)))
    return Grant(granted, SharedState(max(0.0, level - granted), max(bucket.updated, now)), 0.0)
