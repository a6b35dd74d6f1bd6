"""A gateway worker's L3 over a shared bucket: allowances, one lease for concurrent requests, fallback.

The shared bucket here is an in-memory twin of `SharedBuckets` (the pure lease rule over a dict);
the real one, on JetStream KV with two real workers, is tested in tests/integration."""

from __future__ import annotations

import asyncio

from appliance.bus.rate_bucket import SharedBuckets
from appliance.daemons.gateway.rate_leases import RateLeases
from appliance.domain.pipeline.rate_lease import Grant, SharedState, lease
from appliance.errors import BusError
from appliance.store import Tenant


def _tenant(rate: int, burst: int) -> Tenant:
    return Tenant(
        id="t1",
        name="acme",
        tier="starter",
        status="active",
        email="ops@acme.test",
        rate_limit=rate,
        burst=burst,
        monthly_quota=0,
        created_at=0.0,
        updated_at=0.0,
    )


class _MemoryBuckets(SharedBuckets):
    def __init__(self, now: float = 1000.0) -> None:
        self.states: dict[str, SharedState] = {}
        self.leases = 0
        self.now = now

    async def lease(self, tenant_id: str, *, rate: float, burst: float, need: int, want: int) -> Grant:
        self.leases += 1
        await asyncio.sleep(0)  # a round trip: let concurrent requests pile up behind the lock
        grant = lease(self.states.get(tenant_id), rate=rate, burst=burst, now=self.now, need=need, want=want)
        self.states[tenant_id] = grant.state
        return grant


class _DownBuckets(SharedBuckets):
    def __init__(self) -> None:
        pass

    async def lease(self, tenant_id: str, *, rate: float, burst: float, need: int, want: int) -> Grant:
        raise BusError("KV unavailable")


async def test_leases_in_chunks_and_spends_locally_between_leases() -> None:
    shared = _MemoryBuckets()
    leases = RateLeases(shared, workers=2, monotonic=lambda: 5.0)
    results = [await leases.check(_tenant(rate=100, burst=100)) for _ in range(100)]
    assert results == [None] * 100
    assert shared.leases == 20  # chunks of 5 (50 ms of 100/s)
    refused = await leases.check(_tenant(rate=100, burst=100))
    assert refused is not None
    assert refused.status == 429
    assert refused.code == "rate_limited"


async def test_concurrent_requests_of_one_tenant_share_one_lease() -> None:
    shared = _MemoryBuckets()
    leases = RateLeases(shared, workers=2, monotonic=lambda: 5.0)
    results = await asyncio.gather(*(leases.check(_tenant(rate=100, burst=100)) for _ in range(5)))
    assert results == [None] * 5
    assert shared.leases == 1


async def test_an_unspent_allowance_expires_rather_than_outlive_its_second() -> None:
    shared = _MemoryBuckets()
    clock = [5.0]
    leases = RateLeases(shared, workers=2, monotonic=lambda: clock[0])
    assert await leases.check(_tenant(rate=100, burst=100)) is None
    clock[0] += 2.0
    assert await leases.check(_tenant(rate=100, burst=100)) is None
    assert shared.leases == 2


async def test_a_failed_bus_falls_back_to_this_worker_s_share() -> None:
    leases = RateLeases(_DownBuckets(), workers=2, monotonic=lambda: 5.0)
    results = [await leases.check(_tenant(rate=1, burst=6)) for _ in range(5)]
    assert results[:3] == [None, None, None]  # half of the burst of 6
    assert all(r is not None and r.status == 429 for r in results[3:])


async def test_unlimited_tenants_never_touch_the_bus() -> None:
    leases = RateLeases(_DownBuckets(), workers=2)
    assert await leases.check(_tenant(rate=0, burst=0)) is None
