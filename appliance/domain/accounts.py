"""Calendar rules of balances and quotas."""

from __future__ import annotations

import datetime as dt


def month_of(epoch: float) -> str:
    """The quota month ("YYYY-MM", UTC) that an instant belongs to."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m")
