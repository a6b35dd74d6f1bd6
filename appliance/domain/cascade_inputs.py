"""What the cascade daemon hears, as cascade events: executors' events and the router's answers.

Pure, so the mapping of the contract (notes/cascade_contract.md) is tested without a bus:

    submitted                          -> ProviderAccepted
    rejected                           -> DispatchError (the router's next route is tried)
    dlr attempt_outcome=delivered      -> Delivered (read=true where the channel reports reads)
    dlr attempt_outcome=failed         -> Failed
    dlr attempt_outcome=pending        -> ProviderAccepted (an interim receipt proves acceptance)
    bounce                             -> Failed (bounced)
    deferred, anything else            -> nothing

A router answer `{chosen, kind, price, currency, fallbacks, candidates}` becomes RouteFound with the
chosen route first and the fallbacks in the router's order; `{"error": ...}` or no chosen route
becomes NoRoute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from appliance.domain.cascade import (
    CascadeEvent,
    Delivered,
    DispatchError,
    Failed,
    NoRoute,
    ProviderAccepted,
    Route,
    RouteFound,
)
from appliance.domain.events import Event

EXECUTOR_KINDS: Final = ("submitted", "rejected", "dlr", "bounce")
"""The EVENTS kinds the cascade consumes (its own output never comes back to it)."""


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def attempt_of(data: Mapping[str, Any]) -> int | None:
    value = data.get("attempt")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def from_executor(event: Event) -> CascadeEvent | None:
    """The cascade event an executor's event means, or None when it means nothing to the cascade."""
    data = event.data
    attempt = attempt_of(data)
    if attempt is None:
        return None
    stat, err = _text(data.get("stat")), _text(data.get("err"))
    if event.kind == "submitted":
        return ProviderAccepted(attempt)
    if event.kind == "rejected":
        reason = _text(data.get("reason")) or "rejected"
        status = _text(data.get("status_name")) or _text(data.get("status"))
        return DispatchError(attempt, f"{reason} ({status})" if status else reason)
    if event.kind == "bounce":
        return Failed(attempt, "bounced", stat=stat or _text(data.get("code")), err=err)
    if event.kind == "dlr":
        outcome = data.get("attempt_outcome")
        if outcome == "delivered":
            return Delivered(attempt, read=data.get("read") is True, stat=stat, err=err)
        if outcome == "failed":
            return Failed(attempt, "failed", stat=stat, err=err)
        if outcome == "pending":
            return ProviderAccepted(attempt)
    return None


def from_route_plan(attempt: int, plan: Mapping[str, Any]) -> CascadeEvent:
    """The router's answer for `attempt` as RouteFound (chosen, then fallbacks) or NoRoute."""
    error = plan.get("error")
    if error is not None:
        detail = error.get("message") if isinstance(error, Mapping) else error
        return NoRoute(attempt, f"no_route: {detail}")
    chosen = plan.get("chosen")
    if not isinstance(chosen, str) or not chosen:
        return NoRoute(attempt, f"no_route: {plan.get('reason') or 'no usable carrier'}")
    candidates: dict[str, Mapping[str, Any]] = {}
    for candidate in plan.get("candidates") or ():
        if isinstance(candidate, Mapping) and isinstance(candidate.get("carrier"), str):
            candidates.setdefault(candidate["carrier"], candidate)
    names = [chosen, *(f for f in plan.get("fallbacks") or () if isinstance(f, str) and f != chosen)]
    routes = []
    for name in names:
        known = candidates.get(name, {})
        kind = _text(known.get("kind")) or (_text(plan.get("kind")) if name == chosen else None) or "direct"
        price = known.get("price", plan.get("price") if name == chosen else None)
        currency = _text(known.get("currency")) or _text(plan.get("currency"))
        routes.append(Route(name, kind, float(price) if isinstance(price, int | float) else None, currency))
    return RouteFound(attempt, tuple(routes))
