"""The SMS route choice of the seed's decision matrix (§17), as a value that explains itself.

The router builds one `RouteCandidate` per carrier that prices the destination (`rates.best_rates`), with
the carrier's live `CarrierHealth` from the smpp daemon and `home_network` set when the carrier owns the
MCC-MNC the lookup found. `decide` then applies, in order:

    1. a direct route to the home network, if it is healthy          (own SMPP bind: cheapest, §13)
    2. else the cheapest healthy aggregator                            (unknown/ported number, bind down)
    3. else the cheapest healthy retail provider                       (highest price, last resort)

Healthy means enabled, at least one bind up, an error rate at most `max_error_rate`, and a DLR rate (when
known) at least `min_dlr_rate`; anything else is skipped with every reason that applies. A full window is
not unhealthy: it is the normal state of a bind under load, the submit waits for room, and a report of it
is up to a couple of seconds old. So a congested route stays usable; within its tier it ranks after every
route with room (traffic spills over to the next aggregator), but it is never skipped for it, which would
fail messages for a moment's load.
A direct route to another network is never taken: it would bypass the home carrier's own path. Ties go to
the lower price, then the lower error rate, then the name. Every other healthy candidate becomes an
ordered fallback, so the router can retry on the next one without deciding again. `explain` renders the
decision for `hermesctl route explain`. Pure, no I/O; prices are compared in one currency only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

import msgspec

from appliance.domain.routing.mnp import Lookup
from appliance.errors import InvalidInput

RouteKind = Literal["direct", "aggregator", "retail"]

CHOSEN: Final = "chosen"
ALTERNATIVE: Final = "healthy alternative"
_TIERS: Final[dict[RouteKind, int]] = {"direct": 0, "aggregator": 1, "retail": 2}


class CarrierHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A carrier's state as the smpp daemon (or an HTTP provider's adapter) last reported it."""

    binds_up: int
    """Connections bound now (an HTTP provider reports 1 while it answers)."""
    window_free: int
    """Submits that may still be in flight without waiting (sum over the bound connections)."""
    error_rate: float = 0.0
    """Share of recent submits refused or timed out, 0..1."""
    dlr_rate: float | None = None
    """Share of recent submits confirmed delivered, 0..1; None while there is too little traffic to say."""
    enabled: bool = True


class RouteCandidate(msgspec.Struct, frozen=True, kw_only=True):
    carrier: str
    kind: RouteKind
    price: float
    currency: str
    home_network: bool
    """The carrier owns the destination's MCC-MNC (it is among the carrier's own networks)."""
    health: CarrierHealth


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    max_error_rate: float = 0.05
    """A route whose error rate is above this is skipped (at exactly this it is still used)."""
    min_dlr_rate: float = 0.90
    """A route whose known DLR rate is below this is skipped."""


class Considered(NamedTuple):
    candidate: RouteCandidate
    verdict: str
    """"chosen", "healthy alternative", or "skipped: <reasons>"."""


class RouteDecision(msgspec.Struct, frozen=True, kw_only=True):
    lookup: Lookup | None
    chosen: RouteCandidate | None
    reason: str
    considered: list[Considered]
    """Healthy candidates in rank order (the chosen one first), then the skipped ones as given."""
    fallbacks: list[RouteCandidate]
    """The other healthy candidates, best first: what the router tries if the chosen one fails."""
    currency: str | None


def skip_reasons(
    candidate: RouteCandidate, lookup: Lookup | None, thresholds: Thresholds, currency: str | None
) -> list[str]:
    """Why this candidate may not carry the message; empty when it is healthy and usable."""
    health = candidate.health
    reasons = []
    if not health.enabled:
        reasons.append("disabled")
    if candidate.kind == "direct" and not candidate.home_network:
        known = lookup is not None and lookup.mccmnc is not None
        reasons.append("direct route to another network" if known else "direct route, home network unknown")
    if health.binds_up <= 0:
        reasons.append("down (no bind up)")
    if health.error_rate > thresholds.max_error_rate:
        reasons.append(f"error rate {health.error_rate:.1%} over {thresholds.max_error_rate:.1%}")
    if health.dlr_rate is not None and health.dlr_rate < thresholds.min_dlr_rate:
        reasons.append(f"DLR rate {health.dlr_rate:.1%} under {thresholds.min_dlr_rate:.1%}")
    if currency is not None and candidate.currency != currency:
        reasons.append(f"priced in {candidate.currency}, not {currency} (no currency conversion)")
    return reasons


def congested(candidate: RouteCandidate) -> bool:
    """Its window was full when last reported: usable, but after the routes of its tier with room."""
    return candidate.health.binds_up > 0 and candidate.health.window_free <= 0


def _rank(candidate: RouteCandidate) -> tuple[int, bool, float, float, str]:
    return (
        _TIERS[candidate.kind],
        congested(candidate),
        candidate.price,
        candidate.health.error_rate,
        candidate.carrier,
    )


def _check(thresholds: Thresholds) -> None:
    for name in ("max_error_rate", "min_dlr_rate"):
        value = getattr(thresholds, name)
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(name, f"must be a share between 0 and 1, not {value}")


def _decision_currency(candidates: Sequence[RouteCandidate], currency: str | None) -> str | None:
    if currency is not None:
        return currency
    found = sorted({c.currency for c in candidates})
    if len(found) > 1:
        raise InvalidInput(
            "currency", f"candidates are priced in {', '.join(found)}; pass the currency to compare in"
        )
    return found[0] if found else None


def _missed_direct(candidates: Sequence[RouteCandidate], lookup: Lookup | None) -> str:
    offered = any(c.kind == "direct" and c.home_network for c in candidates)
    if lookup is None or lookup.mccmnc is None:
        return "no healthy direct route to the home network" if offered else "home network unknown"
    return f"{'no healthy' if offered else 'no'} direct route to the home network {lookup.mccmnc}"


def _reason(
    chosen: RouteCandidate | None, candidates: Sequence[RouteCandidate], lookup: Lookup | None
) -> str:
    if not candidates:
        return "no route: no carrier prices this destination"
    if chosen is None:
        return f"no healthy route: all {len(candidates)} candidates skipped"
    busy = " (window full: the submit waits for room)" if congested(chosen) else ""
    if chosen.kind == "direct":
        network = "" if lookup is None or lookup.mccmnc is None else f" {lookup.mccmnc}"
        return f"the direct route to the home network{network} is healthy{busy}"
    missed = _missed_direct(candidates, lookup)
    if chosen.kind == "aggregator":
        return f"{missed}; cheapest healthy aggregator{busy}"
    offered = any(c.kind == "aggregator" for c in candidates)
    return f"{missed}, {'no healthy' if offered else 'no'} aggregator; cheapest healthy retail provider{busy}"


def decide(
    lookup: Lookup | None,
    candidates: Sequence[RouteCandidate],
    thresholds: Thresholds | None = None,
    *,
    currency: str | None = None,
) -> RouteDecision:
    """Choose among `candidates` (see the module docstring). Candidates in another `currency` than the
    decision's are skipped; without `currency`, all candidates must share one (InvalidInput otherwise)."""
    limits = thresholds or Thresholds()
    _check(limits)
    money = _decision_currency(candidates, currency)
    healthy: list[RouteCandidate] = []
    skipped: list[Considered] = []
    for candidate in candidates:
        reasons = skip_reasons(candidate, lookup, limits, money)
        if reasons:
            skipped.append(Considered(candidate, "skipped: " + ", ".join(reasons)))
        else:
            healthy.append(candidate)
    healthy.sort(key=_rank)
    chosen = healthy[0] if healthy else None
    considered = [Considered(c, CHOSEN if c is chosen else ALTERNATIVE) for c in healthy]
    return RouteDecision(
        lookup=lookup,
        chosen=chosen,
        reason=_reason(chosen, candidates, lookup),
        considered=considered + skipped,
        fallbacks=healthy[1:],
        currency=money,
    )


def _describe_lookup(lookup: Lookup | None) -> str:
    if lookup is None:
        return "destination: not looked up"
    network = lookup.mccmnc or "network unknown"
    name = f" {lookup.carrier_name}" if lookup.carrier_name else ""
    notes: list[str] = [lookup.source]
    if lookup.ported is not None:
        notes.append("ported" if lookup.ported else "not ported")
    if lookup.cached:
        notes.append("cached")
    return f"destination {lookup.e164}: {network}{name} ({', '.join(notes)})"


def _health(health: CarrierHealth) -> str:
    dlr = "-" if health.dlr_rate is None else f"{health.dlr_rate:.1%}"
    error = f"{health.error_rate:.1%}"
    return f"binds {health.binds_up:>2}  window {health.window_free:>4}  err {error:>6}  dlr {dlr:>6}"


def explain(decision: RouteDecision) -> list[str]:
    """Lines for a terminal: the lookup, the choice and its reason, every candidate, the fallbacks."""
    chosen = decision.chosen
    head = "chosen: none" if chosen is None else f"chosen: {chosen.carrier} ({chosen.kind})"
    lines = [_describe_lookup(decision.lookup), f"{head}: {decision.reason}"]
    width = max((len(c.candidate.carrier) for c in decision.considered), default=0)
    for candidate, verdict in decision.considered:
        price = f"{candidate.price:g} {candidate.currency}"
        home = "home" if candidate.home_network else "    "
        lines.append(
            f"  {candidate.carrier:<{width}}  {candidate.kind:<10}  {home}  {price:<14}  "
            f"{_health(candidate.health)}  {verdict}"
        )
    lines.append("fallbacks: " + (", ".join(c.carrier for c in decision.fallbacks) or "none"))
    return lines
