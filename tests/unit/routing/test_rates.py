"""best_rates: per carrier an MCC-MNC rate beats a prefix rate, then the longest prefix; one currency."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.routing import Rate, RateDeck, RateMatch, best_rates
from appliance.errors import InvalidInput

DK = "+4520123456"


def rate(
    carrier: str,
    prefix: str,
    price: float,
    mccmnc: str | None = None,
    currency: str = "DKK",
    valid_from: float = 0,
) -> Rate:
    return Rate(
        carrier=carrier, prefix=prefix, mccmnc=mccmnc, price=price, currency=currency, valid_from=valid_from
    )


def test_longest_prefix_wins_per_carrier() -> None:
    rates = [rate("messente", "45", 0.08), rate("messente", "4520", 0.06), rate("messente", "452", 0.07)]
    assert best_rates(DK, None, rates) == [RateMatch("messente", 0.06, "prefix 4520")]


def test_exact_mccmnc_beats_a_longer_prefix() -> None:
    rates = [rate("infobip", "4520123", 0.05), rate("infobip", "", 0.09, mccmnc="238-01")]
    [match] = best_rates(DK, "238-01", rates)
    assert match == RateMatch("infobip", 0.09, "mccmnc 238-01")
    assert match.kind == "mccmnc"


def test_an_mccmnc_rate_for_another_network_does_not_apply() -> None:
    rates = [rate("infobip", "45", 0.08), rate("infobip", "45", 0.02, mccmnc="238-02")]
    [match] = best_rates(DK, "238-01", rates)
    assert (match.matched_by, match.kind) == ("prefix 45", "prefix")


def test_an_unknown_network_uses_prefix_rates_only() -> None:
    rates = [rate("infobip", "45", 0.08), rate("infobip", "", 0.02, mccmnc="238-01")]
    assert best_rates(DK, None, rates) == [RateMatch("infobip", 0.08, "prefix 45")]


def test_an_mccmnc_rate_also_needs_its_prefix_to_match() -> None:
    rates = [rate("infobip", "46", 0.02, mccmnc="238-01"), rate("infobip", "45", 0.03, mccmnc="238-01")]
    assert best_rates(DK, "238-01", rates) == [RateMatch("infobip", 0.03, "mccmnc 238-01")]


def test_the_lookups_mccmnc_is_normalized() -> None:
    rates = [rate("telia_dk", "45", 0.02, mccmnc="238-20")]
    assert best_rates(DK, "23820", rates) == [RateMatch("telia_dk", 0.02, "mccmnc 238-20")]
    with pytest.raises(InvalidInput, match="MCC-MNC"):
        best_rates(DK, "238", rates)


def test_catch_all_prefix_and_plus_in_prefixes() -> None:
    rates = [rate("twilio", "", 0.15), rate("messente", "+45", 0.07)]
    assert best_rates(DK, None, rates) == [
        RateMatch("messente", 0.07, "prefix 45"),
        RateMatch("twilio", 0.15, "prefix *"),
    ]


def test_results_are_sorted_by_price_then_name() -> None:
    rates = [rate("b", "45", 0.05), rate("c", "45", 0.04), rate("a", "45", 0.05), rate("d", "46", 0.01)]
    assert [m.carrier for m in best_rates(DK, None, rates)] == ["c", "a", "b"]


def test_nothing_matches() -> None:
    assert best_rates(DK, "238-01", [rate("x", "46", 0.01)]) == []
    assert best_rates(DK, "238-01", []) == []


def test_rates_not_yet_valid_are_ignored_when_now_is_given() -> None:
    rates = [rate("x", "45", 0.05, valid_from=0), rate("x", "4520", 0.04, valid_from=1000)]
    assert best_rates(DK, None, rates, now=999) == [RateMatch("x", 0.05, "prefix 45")]
    assert best_rates(DK, None, rates, now=1000) == [RateMatch("x", 0.04, "prefix 4520")]
    assert best_rates(DK, None, rates) == [RateMatch("x", 0.04, "prefix 4520")]


def test_between_equally_specific_rates_the_newest_then_the_cheapest_wins() -> None:
    rates = [
        rate("x", "45", 0.05, valid_from=10),
        rate("x", "45", 0.09, valid_from=20),
        rate("x", "45", 0.07, valid_from=20),
    ]
    assert best_rates(DK, None, rates) == [RateMatch("x", 0.07, "prefix 45")]


def test_mixed_currencies_are_refused_without_a_currency() -> None:
    rates = [rate("a", "45", 0.05, currency="DKK"), rate("b", "45", 0.01, currency="EUR")]
    with pytest.raises(InvalidInput, match="DKK, EUR; currency conversion is out of scope") as caught:
        best_rates(DK, None, rates)
    assert caught.value.field == "currency"


def test_a_currency_keeps_only_its_rates() -> None:
    rates = [
        rate("a", "45", 0.05, currency="DKK"),
        rate("b", "45", 0.01, currency="EUR"),
        rate("a", "4520", 0.001, currency="EUR"),
    ]
    assert best_rates(DK, None, rates, currency="DKK") == [RateMatch("a", 0.05, "prefix 45")]


def test_non_matching_rates_in_other_currencies_do_not_count_as_mixed() -> None:
    rates = [rate("a", "45", 0.05, currency="DKK"), rate("b", "46", 0.01, currency="EUR")]
    assert best_rates(DK, None, rates) == [RateMatch("a", 0.05, "prefix 45")]


def test_a_bad_number_is_refused() -> None:
    with pytest.raises(InvalidInput):
        best_rates("not a number", None, [])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.text("4520", max_size=4),
            st.sampled_from([None, "238-01", "238-02"]),
            st.integers(1, 20),
        ),
        max_size=25,
    )
)
def test_each_carriers_pick_is_the_most_specific_applicable_rate(
    rows: list[tuple[str, str, str | None, int]],
) -> None:
    rates = [rate(c, p, price / 100, mccmnc=m) for c, p, m, price in rows]
    result = best_rates(DK, "238-01", rates)
    assert len({m.carrier for m in result}) == len(result)
    assert [m.price for m in result] == sorted(m.price for m in result)
    for match in result:
        applicable = [
            r
            for r in rates
            if r.carrier == match.carrier and DK[1:].startswith(r.prefix) and r.mccmnc in (None, "238-01")
        ]
        best = max(applicable, key=lambda r: (r.mccmnc is not None, len(r.prefix), -r.price))
        assert match.price == best.price
        assert match.kind == ("mccmnc" if best.mccmnc else "prefix")


# ---- RateDeck --------------------------------------------------------------------------------------------


def test_a_deck_hands_a_number_only_the_rates_whose_prefix_it_starts_with_in_deck_order() -> None:
    rates = [
        rate("b", "4520", 0.06),
        rate("a", "", 0.09),
        rate("a", "45", 0.08, currency="EUR"),
        rate("c", "46", 0.01),
        rate("b", "+45", 0.07),
    ]
    deck = RateDeck(rates)
    assert len(deck) == 5
    assert deck.matching("4520123456") == [rates[0], rates[1], rates[2], rates[4]]
    assert deck.matching("4612") == [rates[1], rates[3]]
    assert deck.matching("1") == [rates[1]]
    assert deck.first_currency == {"b": "DKK", "a": "DKK", "c": "DKK"}
    assert RateDeck([]).matching("4520123456") == []


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.text("4520", max_size=4),
            st.sampled_from([None, "238-01", "238-02"]),
            st.integers(1, 5),
            st.sampled_from(["DKK", "EUR"]),
            st.sampled_from([0.0, 10.0, 30.0]),
            st.booleans(),
        ),
        max_size=25,
    ),
    number=st.text("4520", min_size=1, max_size=8),
    network=st.sampled_from([None, "238-01", "238-02"]),
    currency=st.sampled_from([None, "DKK"]),
)
def test_best_rates_over_a_decks_matching_rates_equals_best_rates_over_the_whole_deck(
    rows: list[tuple[str, str, str | None, int, str, float, bool]],
    number: str,
    network: str | None,
    currency: str | None,
) -> None:
    rates = [
        rate(c, ("+" if plus else "") + p, price / 100, mccmnc=m, currency=cur, valid_from=valid)
        for c, p, m, price, cur, valid, plus in rows
    ]
    deck = RateDeck(rates)

    def outcome(given_rates: list[Rate]) -> list[RateMatch] | str:
        try:
            return best_rates("+" + number, network, given_rates, currency=currency, now=20.0)
        except InvalidInput as exc:
            return str(exc)

    assert outcome(deck.matching(number)) == outcome(rates)
