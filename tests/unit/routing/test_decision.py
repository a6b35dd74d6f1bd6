"""decide/explain: direct to the home network, else aggregator, else retail; every skip reason; fallbacks."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.routing import (
    ALTERNATIVE,
    CHOSEN,
    CarrierHealth,
    Considered,
    Lookup,
    RouteCandidate,
    RouteDecision,
    RouteKind,
    Thresholds,
    decide,
    explain,
    skip_reasons,
)
from appliance.errors import InvalidInput

DK = Lookup(e164="+4520123456", source="mnp_table", mccmnc="238-01", ported=False, carrier_name="TDC")
UNKNOWN = Lookup(e164="+4520123456", source="numbering_plan", mccmnc=None)
OK = CarrierHealth(binds_up=2, window_free=40, error_rate=0.01, dlr_rate=0.98)
LIMITS = Thresholds(max_error_rate=0.05, min_dlr_rate=0.90)


def route(
    carrier: str, kind: RouteKind, price: float, *, home: bool = False, currency: str = "DKK", **health: Any
) -> RouteCandidate:
    return RouteCandidate(
        carrier=carrier,
        kind=kind,
        price=price,
        currency=currency,
        home_network=home,
        health=msgspec.structs.replace(OK, **health),
    )


TDC = route("tdc", "direct", 0.025, home=True)
TELIA = route("telia_dk", "direct", 0.02)  # owns another network
MESSENTE = route("messente", "aggregator", 0.05)
INFOBIP = route("infobip", "aggregator", 0.06)
TWILIO = route("twilio", "retail", 0.15)
ALL = [TWILIO, INFOBIP, TELIA, MESSENTE, TDC]


def verdicts(decision: RouteDecision) -> dict[str, str]:
    return {c.candidate.carrier: c.verdict for c in decision.considered}


# ---- the tiers -------------------------------------------------------------------------------------------


def test_a_healthy_direct_route_to_the_home_network_wins_even_when_an_aggregator_is_cheaper() -> None:
    cheap = route("cheap_agg", "aggregator", 0.001)
    decision = decide(DK, [cheap, TDC], LIMITS)
    assert decision.chosen == TDC
    assert decision.reason == "the direct route to the home network 238-01 is healthy"
    assert decision.fallbacks == [cheap]
    assert decision.currency == "DKK"


def test_all_candidates_considered_with_chosen_first_then_fallback_order_then_skipped() -> None:
    decision = decide(DK, ALL, LIMITS)
    assert decision.chosen == TDC
    assert decision.fallbacks == [MESSENTE, INFOBIP, TWILIO]
    assert decision.considered == [
        Considered(TDC, CHOSEN),
        Considered(MESSENTE, ALTERNATIVE),
        Considered(INFOBIP, ALTERNATIVE),
        Considered(TWILIO, ALTERNATIVE),
        Considered(TELIA, "skipped: direct route to another network"),
    ]


def test_home_route_down_falls_back_to_the_cheapest_healthy_aggregator() -> None:
    tdc_down = msgspec.structs.replace(TDC, health=msgspec.structs.replace(OK, binds_up=0))
    decision = decide(DK, [TWILIO, INFOBIP, MESSENTE, tdc_down], LIMITS)
    assert decision.chosen == MESSENTE
    assert decision.reason == (
        "no healthy direct route to the home network 238-01; cheapest healthy aggregator"
    )
    assert decision.fallbacks == [INFOBIP, TWILIO]
    assert verdicts(decision)["tdc"] == "skipped: down (no bind up)"


def test_no_direct_route_offered_for_a_known_network() -> None:
    decision = decide(DK, [INFOBIP, TWILIO], LIMITS)
    assert decision.chosen == INFOBIP
    assert decision.reason == "no direct route to the home network 238-01; cheapest healthy aggregator"


@pytest.mark.parametrize("lookup", [UNKNOWN, None])
def test_unknown_network_goes_to_the_aggregator(lookup: Lookup | None) -> None:
    unflagged = route("tdc", "direct", 0.01)
    decision = decide(lookup, [unflagged, MESSENTE, TWILIO], LIMITS)
    assert decision.chosen == MESSENTE
    assert decision.reason == "home network unknown; cheapest healthy aggregator"
    assert verdicts(decision)["tdc"] == "skipped: direct route, home network unknown"


def test_a_candidate_flagged_home_is_trusted_even_without_a_lookup() -> None:
    decision = decide(None, [MESSENTE, TDC], LIMITS)
    assert decision.chosen == TDC
    assert decision.reason == "the direct route to the home network is healthy"


def test_a_home_flagged_direct_route_that_is_down_with_an_unknown_network() -> None:
    tdc_off = msgspec.structs.replace(TDC, health=msgspec.structs.replace(OK, enabled=False))
    decision = decide(UNKNOWN, [tdc_off, MESSENTE], LIMITS)
    assert decision.reason == "no healthy direct route to the home network; cheapest healthy aggregator"


def test_aggregators_all_unhealthy_fall_back_to_the_cheapest_retail_provider() -> None:
    sinch = route("sinch", "retail", 0.12)
    messente_bad = route("messente", "aggregator", 0.05, error_rate=0.5)
    decision = decide(DK, [TWILIO, messente_bad, sinch], LIMITS)
    assert decision.chosen == sinch
    assert decision.reason == (
        "no direct route to the home network 238-01, no healthy aggregator; cheapest healthy retail provider"
    )
    assert decision.fallbacks == [TWILIO]


def test_no_aggregator_at_all() -> None:
    decision = decide(UNKNOWN, [TWILIO], LIMITS)
    assert decision.chosen == TWILIO
    assert decision.reason == "home network unknown, no aggregator; cheapest healthy retail provider"


def test_nothing_healthy_chooses_nothing() -> None:
    down = [route(c.carrier, c.kind, c.price, home=c.home_network, binds_up=0) for c in ALL]
    decision = decide(DK, down, LIMITS)
    assert (decision.chosen, decision.fallbacks) == (None, [])
    assert decision.reason == "no healthy route: all 5 candidates skipped"
    assert all(v.startswith("skipped: ") for v in verdicts(decision).values())


def test_no_candidates() -> None:
    decision = decide(DK, [], LIMITS)
    assert (decision.chosen, decision.considered, decision.fallbacks, decision.currency) == (
        None,
        [],
        [],
        None,
    )
    assert decision.reason == "no route: no carrier prices this destination"


def test_default_thresholds() -> None:
    assert decide(DK, [route("x", "aggregator", 0.05, error_rate=0.05, dlr_rate=0.9)]).chosen is not None
    assert decide(DK, [route("x", "aggregator", 0.05, error_rate=0.051)]).chosen is None


# ---- ties ------------------------------------------------------------------------------------------------


def test_ties_go_to_price_then_lower_error_rate_then_name() -> None:
    a = route("a", "aggregator", 0.05, error_rate=0.02)
    b = route("b", "aggregator", 0.05, error_rate=0.01)
    c = route("c", "aggregator", 0.05, error_rate=0.01)
    d = route("d", "aggregator", 0.04, error_rate=0.04)
    decision = decide(DK, [a, c, b, d], LIMITS)
    assert [decision.chosen, *decision.fallbacks] == [d, b, c, a]


def test_between_two_home_direct_routes_the_cheaper_wins() -> None:
    second = route("tdc_backup", "direct", 0.024, home=True)
    decision = decide(DK, [TDC, second, MESSENTE], LIMITS)
    assert decision.chosen == second
    assert decision.fallbacks == [TDC, MESSENTE]


# ---- every skip reason -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "lookup", "reasons"),
    [
        (route("x", "aggregator", 1, enabled=False), DK, ["disabled"]),
        (route("x", "direct", 1), DK, ["direct route to another network"]),
        (route("x", "direct", 1), UNKNOWN, ["direct route, home network unknown"]),
        (route("x", "direct", 1), None, ["direct route, home network unknown"]),
        (route("x", "retail", 1, binds_up=0), DK, ["down (no bind up)"]),
        (route("x", "direct", 1, home=True, error_rate=0.051), DK, ["error rate 5.1% over 5.0%"]),
        (route("x", "aggregator", 1, dlr_rate=0.899), DK, ["DLR rate 89.9% under 90.0%"]),
        (
            route("x", "aggregator", 1, currency="EUR"),
            DK,
            ["priced in EUR, not DKK (no currency conversion)"],
        ),
    ],
)
def test_each_skip_reason(candidate: RouteCandidate, lookup: Lookup | None, reasons: list[str]) -> None:
    assert skip_reasons(candidate, lookup, LIMITS, "DKK") == reasons
    decision = decide(lookup, [candidate, MESSENTE], LIMITS, currency="DKK")
    assert decision.considered[-1] == Considered(candidate, "skipped: " + ", ".join(reasons))
    assert candidate not in decision.fallbacks and decision.chosen == MESSENTE


def test_all_reasons_are_listed_in_a_fixed_order() -> None:
    wreck = route("x", "direct", 1, currency="EUR", enabled=False, binds_up=0, error_rate=0.2, dlr_rate=0.5)
    assert skip_reasons(wreck, DK, LIMITS, "DKK") == [
        "disabled",
        "direct route to another network",
        "down (no bind up)",
        "error rate 20.0% over 5.0%",
        "DLR rate 50.0% under 90.0%",
        "priced in EUR, not DKK (no currency conversion)",
    ]


def test_a_full_window_is_load_not_ill_health_the_route_stays_usable() -> None:
    """A burst fills the window of the only route; its messages must wait for room, not fail."""
    busy = route("x", "aggregator", 1, window_free=0)
    assert skip_reasons(busy, DK, LIMITS, "DKK") == []
    decision = decide(DK, [busy], LIMITS)
    assert decision.chosen == busy
    assert decision.reason.endswith("cheapest healthy aggregator (window full: the submit waits for room)")


def test_a_congested_route_ranks_after_the_routes_of_its_tier_with_room_but_keeps_its_tier() -> None:
    busy_messente = msgspec.structs.replace(MESSENTE, health=msgspec.structs.replace(OK, window_free=0))
    spilled = decide(DK, [busy_messente, INFOBIP, TWILIO], LIMITS)
    assert spilled.chosen == INFOBIP and spilled.fallbacks == [busy_messente, TWILIO]
    busy_tdc = msgspec.structs.replace(TDC, health=msgspec.structs.replace(OK, window_free=0))
    direct = decide(DK, [busy_tdc, MESSENTE], LIMITS)
    assert direct.chosen == busy_tdc and direct.fallbacks == [MESSENTE]
    assert (
        direct.reason
        == "the direct route to the home network 238-01 is healthy (window full: the submit waits for room)"
    )


def test_a_down_route_is_not_congested_only_down() -> None:
    candidate = route("x", "aggregator", 1, binds_up=0, window_free=0)
    assert skip_reasons(candidate, DK, LIMITS, None) == ["down (no bind up)"]
    assert decide(DK, [candidate], LIMITS).chosen is None


def test_threshold_boundaries_and_unknown_dlr_rate_are_healthy() -> None:
    edge = route("x", "direct", 1, home=True, error_rate=0.05, dlr_rate=0.90)
    fresh = route("y", "aggregator", 1, error_rate=0.0, dlr_rate=None)
    assert skip_reasons(edge, DK, LIMITS, "DKK") == []
    assert skip_reasons(fresh, DK, LIMITS, "DKK") == []


# ---- currency and input checks ---------------------------------------------------------------------------


def test_mixed_currencies_without_a_decision_currency_are_refused() -> None:
    with pytest.raises(InvalidInput, match="DKK, EUR") as caught:
        decide(DK, [TDC, route("eu", "aggregator", 0.01, currency="EUR")], LIMITS)
    assert caught.value.field == "currency"


def test_a_decision_currency_skips_candidates_priced_otherwise() -> None:
    eu = route("eu", "aggregator", 0.001, currency="EUR")
    decision = decide(DK, [eu, MESSENTE], LIMITS, currency="DKK")
    assert decision.chosen == MESSENTE and decision.currency == "DKK"
    assert verdicts(decision)["eu"] == "skipped: priced in EUR, not DKK (no currency conversion)"


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (Thresholds(max_error_rate=-0.1), "max_error_rate"),
        (Thresholds(max_error_rate=1.1), "max_error_rate"),
        (Thresholds(min_dlr_rate=2.0), "min_dlr_rate"),
        (Thresholds(min_dlr_rate=float("nan")), "min_dlr_rate"),
    ],
)
def test_bad_thresholds_are_refused(limits: Thresholds, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decide(DK, [TDC], limits)
    assert caught.value.field == field


# ---- explain ---------------------------------------------------------------------------------------------


def test_explain_prints_lookup_choice_candidates_and_fallbacks() -> None:
    cached = msgspec.structs.replace(DK, cached=True)
    messente_new = route("messente", "aggregator", 0.05, dlr_rate=None)
    lines = explain(decide(cached, [TELIA, messente_new, TDC], LIMITS))
    assert lines == [
        "destination +4520123456: 238-01 TDC (mnp_table, not ported, cached)",
        "chosen: tdc (direct): the direct route to the home network 238-01 is healthy",
        "  tdc       direct      home  0.025 DKK       binds  2  window   40  err   1.0%  dlr  98.0%  chosen",
        "  messente  aggregator        0.05 DKK        binds  2  window   40  err   1.0%  dlr      -  "
        "healthy alternative",
        "  telia_dk  direct            0.02 DKK        binds  2  window   40  err   1.0%  dlr  98.0%  "
        "skipped: direct route to another network",
        "fallbacks: messente",
    ]


def test_explain_without_lookup_or_route() -> None:
    ported = Lookup(e164="+4520123456", source="hlr", mccmnc=None, ported=True)
    assert explain(decide(ported, [])) == [
        "destination +4520123456: network unknown (hlr, ported)",
        "chosen: none: no route: no carrier prices this destination",
        "fallbacks: none",
    ]
    assert explain(decide(None, []))[0] == "destination: not looked up"


# ---- properties ------------------------------------------------------------------------------------------


_candidates = st.lists(
    st.builds(
        route,
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.sampled_from(["direct", "aggregator", "retail"]),
        st.sampled_from([0.01, 0.02, 0.05]),
        home=st.booleans(),
        enabled=st.booleans(),
        binds_up=st.integers(0, 2),
        window_free=st.integers(0, 2),
        error_rate=st.sampled_from([0.0, 0.05, 0.2]),
        dlr_rate=st.sampled_from([None, 0.5, 0.95]),
    ),
    max_size=8,
)


@given(_candidates, st.sampled_from([DK, UNKNOWN, None]))
def test_chosen_and_fallbacks_are_exactly_the_healthy_candidates_in_tier_order(
    candidates: list[RouteCandidate], lookup: Lookup | None
) -> None:
    decision = decide(lookup, candidates, LIMITS)
    healthy = [c for c in candidates if not skip_reasons(c, lookup, LIMITS, decision.currency)]
    ranked = [] if decision.chosen is None else [decision.chosen, *decision.fallbacks]
    assert sorted(map(id, ranked)) == sorted(map(id, healthy))
    tiers = [{"direct": 0, "aggregator": 1, "retail": 2}[c.kind] for c in ranked]
    assert tiers == sorted(tiers)
    assert len(decision.considered) == len(candidates)
    assert all(c.kind != "direct" or c.home_network for c in ranked)
    assert len(explain(decision)) == len(candidates) + 3
