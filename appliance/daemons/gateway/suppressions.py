"""Layer 6 lookups: each tenant's suppression list and the global opt-out list, cached in memory.

Loaded on first use, dropped when admin announces a change (`suppression`, tenant id) and every
`refresh_s` as a safety net.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from appliance.store import FullStore

GLOBAL = "*"


class SuppressionCache:
    def __init__(
        self, store: FullStore, *, refresh_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._sets: dict[str, tuple[float, set[str]]] = {}
        self._refresh_s = refresh_s
        self._clock = clock

    def invalidate(self, tenant_id: str) -> None:
        self._sets.pop(tenant_id, None)

    async def addresses(self, tenant_id: str) -> set[str]:
        now = self._clock()
        cached = self._sets.get(tenant_id)
        if cached is None or now - cached[0] > self._refresh_s:
            cached = (now, await self._store.suppressed_addresses(tenant_id))
            self._sets[tenant_id] = cached
        return cached[1]
