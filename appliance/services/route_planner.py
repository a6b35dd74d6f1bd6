"""Where an SMS to a number should go: the store's MNP data, rates and carriers, the carriers' live
health, and the pure decision of `domain.routing` (seed diagram 17).

Lookup order: cache, the operator's MNP table, the HTTP HLR provider if configured, the numbering plan.
Callers: the admin API (`hermesctl route explain`) and the router daemon (for the cascade). Health
comes from whoever listens to `hermes.smpp.health.<carrier>`; a carrier with no report yet counts as
down, so an unproven route is never chosen over a proven one.

Carriers and rates are read from the store for every plan unless `registry_ttl_s` is set: then they are
kept in memory (rates indexed by prefix) until `forget_registry()` or `forget()` is called, or for at most
that long. The router daemon does this, calling them when admin announces a change, so a route request
costs no store query (the MNP table, which may be large, is still asked per uncached number, unless it
is empty).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from appliance.config.schema import RouterSection
from appliance.domain.routing import (
    CarrierHealth,
    Lookup,
    LookupCache,
    NumberInfo,
    Rate,
    RateDeck,
    RouteCandidate,
    RouteDecision,
    Thresholds,
    best_rates,
    decide,
    explain,
    lookup_from_plan,
    normalize_mccmnc,
    parse_number,
)
from appliance.services.hlr import HlrProvider, HttpHlrProvider
from appliance.store import Carrier, FullStore

HealthSource = Callable[[str], CarrierHealth | None]


@dataclass(frozen=True)
class RoutePlan:
    number: NumberInfo
    lookup: Lookup
    decision: RouteDecision
    carriers: dict[str, Carrier]


@dataclass(frozen=True)
class _Registry:
    """What a plan reads from the store besides MNP entries, as of `loaded_at`."""

    loaded_at: float
    carriers: dict[str, Carrier]
    rates: RateDeck
    mnp_empty: bool


class RoutePlanner:
    def __init__(
        self,
        store: FullStore,
        health: HealthSource,
        *,
        thresholds: Thresholds | None = None,
        cache_ttl_s: float = 3600.0,
        hlr: HlrProvider | None = None,
        clock: Callable[[], float] = time.time,
        registry_ttl_s: float = 0.0,
    ) -> None:
        self._store = store
        self._health = health
        self._hlr = hlr
        self._thresholds = thresholds or Thresholds()
        self._cache = LookupCache(ttl_s=cache_ttl_s, max_entries=100_000)
        self._clock = clock
        self._registry_ttl_s = registry_ttl_s
        self._registry: _Registry | None = None
        self._generation = 0
        self._loading = asyncio.Lock()
        self._mnp_rows_seen = False

    def forget(self) -> None:
        """MNP data changed: cached lookups may be stale."""
        self._cache.clear()
        self._mnp_rows_seen = False
        self.forget_registry()

    def forget_registry(self) -> None:
        """Carriers or rates changed: read them again before the next plan."""
        self._generation += 1
        self._registry = None

    async def _current(self) -> _Registry:
        if self._registry_ttl_s <= 0:
            return await self._load()
        registry = self._registry
        if registry is not None and self._clock() - registry.loaded_at < self._registry_ttl_s:
            return registry
        async with self._loading:
            registry = self._registry  # another plan may have loaded it while this one waited
            if registry is not None and self._clock() - registry.loaded_at < self._registry_ttl_s:
                return registry
            generation = self._generation
            registry = await self._load()
            if generation == self._generation:
                self._registry = registry  # unless a change was announced while loading
            return registry

    async def _load(self) -> _Registry:
        loaded_at = self._clock()
        carriers = {carrier.name: carrier for carrier in await self._store.list_carriers()}
        rates = RateDeck(
            Rate(
                carrier=row.carrier,
                prefix=row.prefix,
                mccmnc=row.mccmnc,
                price=row.price,
                currency=row.currency,
                valid_from=row.valid_from,
            )
            for row in await self._store.list_rates()
            if row.carrier in carriers
        )
        # Only a cached registry skips the MNP query, and only while the table is empty. Counting a big
        # table is not free, so once it had rows it is counted again only after an MNP change.
        mnp_empty = False
        if self._registry_ttl_s > 0 and not self._mnp_rows_seen:
            mnp_empty = await self._store.count_mnp() == 0
            self._mnp_rows_seen = not mnp_empty
        return _Registry(loaded_at=loaded_at, carriers=carriers, rates=rates, mnp_empty=mnp_empty)

    async def lookup(self, number: NumberInfo, *, mnp_empty: bool = False) -> Lookup:
        """Where the number is now; `mnp_empty` skips asking the store's (known to be empty) MNP table."""
        now = self._clock()
        cached = self._cache.get(number.e164, now)
        if cached is not None:
            return cached
        entry = None if mnp_empty else await self._store.lookup_mnp(number.e164)
        found: Lookup | None = None
        if entry is not None:
            found = Lookup(
                e164=number.e164,
                source="mnp_table",
                mccmnc=normalize_mccmnc(entry.mccmnc),
                carrier_name=entry.carrier_name,
            )
        elif self._hlr is not None:
            found = await self._hlr.lookup(number.e164)
        if found is None:
            found = lookup_from_plan(number)
        self._cache.put(found, now)
        return found

    async def plan(self, to: str) -> RoutePlan:
        """Parse, look up and decide; raises InvalidInput for a number that is not valid."""
        number = parse_number(to)
        registry = await self._current()
        lookup = await self.lookup(number, mnp_empty=registry.mnp_empty)
        carriers = registry.carriers
        rates = registry.rates.matching(number.e164.removeprefix("+"))
        candidates = []
        for match in best_rates(number.e164, lookup.mccmnc, rates, now=self._clock()):
            carrier = carriers[match.carrier]
            reported = self._health(carrier.name)
            health = CarrierHealth(
                binds_up=reported.binds_up if reported else 0,
                window_free=reported.window_free if reported else 0,
                error_rate=reported.error_rate if reported else 0.0,
                dlr_rate=reported.dlr_rate if reported else None,
                enabled=carrier.enabled,
            )
            rate_currency = registry.rates.first_currency[match.carrier]
            candidates.append(
                RouteCandidate(
                    carrier=carrier.name,
                    kind=carrier.kind,
                    price=match.price,
                    currency=rate_currency,
                    home_network=lookup.mccmnc is not None and lookup.mccmnc in carrier.mccmnc_list,
                    health=health,
                )
            )
        # No currency conversion: decide in the cheapest candidate's; others are listed as skipped.
        currency = candidates[0].currency if candidates else None
        return RoutePlan(
            number, lookup, decide(lookup, candidates, self._thresholds, currency=currency), carriers
        )


def planner_from_config(
    config: RouterSection,
    store: FullStore,
    health: HealthSource,
    http: httpx.AsyncClient,
    *,
    registry_ttl_s: float = 0.0,
) -> RoutePlanner:
    """The planner as `[router]` configures it (both admin and the router daemon build it this way)."""
    hlr = (
        HttpHlrProvider(config.hlr_url, timeout_s=config.hlr_timeout_s, http=http) if config.hlr_url else None
    )
    return RoutePlanner(
        store,
        health,
        thresholds=Thresholds(max_error_rate=config.max_error_rate, min_dlr_rate=config.min_dlr_rate),
        cache_ttl_s=config.lookup_cache_ttl_s,
        hlr=hlr,
        registry_ttl_s=registry_ttl_s,
    )


def plan_body(plan: RoutePlan) -> dict[str, Any]:
    """A route plan as JSON: what the router answers and what `route explain` prints."""
    decision = plan.decision
    chosen = decision.chosen
    return {
        "number": msgspec.to_builtins(plan.number),
        "lookup": msgspec.to_builtins(plan.lookup),
        "chosen": chosen.carrier if chosen else None,
        "kind": chosen.kind if chosen else None,
        "price": chosen.price if chosen else None,
        "reason": decision.reason,
        "currency": decision.currency,
        "candidates": [
            {
                "carrier": c.candidate.carrier,
                "kind": c.candidate.kind,
                "price": c.candidate.price,
                "currency": c.candidate.currency,
                "home_network": c.candidate.home_network,
                "health": msgspec.to_builtins(c.candidate.health),
                "verdict": c.verdict,
            }
            for c in decision.considered
        ],
        "fallbacks": [c.carrier for c in decision.fallbacks],
        "explanation": explain(decision),
    }
