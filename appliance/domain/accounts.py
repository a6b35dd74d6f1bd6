"""Calendar rules of balances and quotas."""

from __future__ import annotations

import datetime as dt
import functools


@functools.lru_cache(maxsize=64)
def _month_of_hour(hour: int) -> str:
    return dt.datetime.fromtimestamp(hour * 3600, tz=dt.UTC).strftime("%Y-%m")


def month_of(epoch: float) -> str:
    """The quota month ("YYYY-MM", UTC) that an instant belongs to (months start on whole hours)."""
    return _month_of_hour(int(epoch // 3600))
