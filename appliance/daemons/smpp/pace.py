"""The arithmetic of one carrier pool, clock passed in: TPS pacing with throttle back-off, the latency
EWMA, error and DLR shares over recent samples, and the re-bind delay. Pure, so the pool's behaviour
under throttling is tested without sockets.

`Pace` wraps the carrier-wide `TokenBucket` (domain.pipeline.rate_limit). The carrier's own limit is
`tps` (0 = none of ours). When the carrier answers ESME_RTHROTTLED or ESME_RMSGQFUL, `throttled(now)`
halves the rate (from the rate we actually achieved over the last second when we had no limit) and
holds it for `hold_s`; each quiet `hold_s` after that doubles it again until it is back at `tps` (or,
with no limit of ours, until it is well above what we use, when the limit is lifted again).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Final

from appliance.domain.pipeline.rate_limit import TokenBucket

_MIN_RATE: Final = 1.0
_WINDOW_S: Final = 1.0


def rebind_delay(failures: int, *, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds before the next bind try after `failures` in a row: exponential, capped, full jitter
    over its upper half (so a fleet of binds that dropped together does not come back together)."""
    ceiling = min(max_s, initial_s * 2.0 ** max(0, failures - 1))
    return ceiling * (0.5 + rng.random() / 2)


class Ewma:
    """An exponentially weighted moving average; None until the first sample."""

    __slots__ = ("alpha", "value")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def add(self, sample: float) -> None:
        self.value = sample if self.value is None else self.value + self.alpha * (sample - self.value)


class RecentShare:
    """The share of hits among the last `size` samples; `None` below `min_samples` (too few to judge,
    so one wrong number at start-up does not make a carrier look broken to the router)."""

    __slots__ = ("hits", "min_samples", "samples")

    def __init__(self, size: int = 200, min_samples: int = 20) -> None:
        self.samples: deque[bool] = deque(maxlen=size)
        self.hits = 0
        self.min_samples = min_samples

    def add(self, hit: bool) -> None:
        if len(self.samples) == self.samples.maxlen and self.samples[0]:
            self.hits -= 1
        self.samples.append(hit)
        self.hits += hit

    @property
    def value(self) -> float | None:
        return self.hits / len(self.samples) if len(self.samples) >= self.min_samples else None


def combined(shares: list[RecentShare]) -> float | None:
    """The share over several windows together, by the same `min_samples` rule."""
    count = sum(len(share.samples) for share in shares)
    if not shares or count < shares[0].min_samples:
        return None
    return sum(share.hits for share in shares) / count


class Pace:
    """How fast the pool may submit: the carrier's TPS, lowered for a while after throttling."""

    def __init__(self, tps: float, now: float, *, hold_s: float = 5.0) -> None:
        self.tps = float(tps)
        self.hold_s = hold_s
        self.rate = self.tps  # 0 = unlimited
        self.slowed_until = 0.0
        self.throttles = 0
        self._sent: deque[float] = deque()
        self._bucket = self._make_bucket(self.rate, now)

    @property
    def slowed(self) -> bool:
        return self.rate != self.tps

    def _make_bucket(self, rate: float, now: float, tokens: float | None = None) -> TokenBucket:
        # A fifth of a second's worth of burst: smooth enough for per-second counters at the carrier.
        return TokenBucket(rate, max(1.0, rate / 5), now, tokens=tokens)

    def _set_rate(self, rate: float, now: float, *, empty: bool = False) -> None:
        self.rate = rate
        level = 0.0 if empty else None if self._bucket.unlimited else self._bucket.level(now)
        self._bucket = self._make_bucket(rate, now, level)

    def observed(self, now: float) -> float:
        """Submits granted in the last second."""
        sent = self._sent
        while sent and sent[0] <= now - _WINDOW_S:
            sent.popleft()
        return len(sent) / _WINDOW_S

    def take(self, now: float) -> float:
        """0.0 and one token taken, or the seconds to wait before asking again."""
        self._recover(now)
        wait = self._bucket.take(now)
        if wait == 0.0:
            self._sent.append(now)
        return wait

    def throttled(self, now: float) -> None:
        """The carrier pushed back: halve the pace (at most once per 100 ms) and hold it."""
        self.throttles += 1
        if now < self.slowed_until - self.hold_s + 0.1:
            return  # a burst of throttles from the same moment counts once
        base = self.rate if self.rate else max(_MIN_RATE * 2, self.observed(now))
        self._set_rate(max(_MIN_RATE, base / 2), now, empty=True)  # no burst into a carrier pushing back
        self.slowed_until = now + self.hold_s

    def _recover(self, now: float) -> None:
        if not self.slowed or now < self.slowed_until:
            return
        doubled = self.rate * 2
        if self.tps and doubled >= self.tps:
            self._set_rate(self.tps, now)
        elif not self.tps and doubled >= max(_MIN_RATE * 2, self.observed(now)) * 4:
            self._set_rate(0.0, now)  # well above what we use: lift our own limit again
        else:
            self._set_rate(doubled, now)
            self.slowed_until = now + self.hold_s
