"""What each carrier charges for one destination: the rate that applies per carrier, cheapest first.

A carrier's rate deck prices number prefixes ("45" for Denmark, "4520" for a range) and, where the
carrier prices by network, MCC-MNCs ("238-01"). For one number the router calls `best_rates` with the
network its lookup found; per carrier, a rate for that exact network beats any prefix-only rate (the
network is what the carrier actually terminates to, whatever range the number came from), and among rates
of the same kind the longest matching prefix wins.

Currency conversion is out of scope: prices are compared only within one currency. Pass `currency` to
consider only rates in it; without it, matching rates in more than one currency are refused
(`InvalidInput`) rather than compared as if they were the same money. Pure, no I/O.

A router that prices many numbers against one deck keeps it as a `RateDeck`: indexed by prefix, so each
number meets only the few rates whose prefix it starts with instead of the whole deck.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Literal, NamedTuple

import msgspec

from appliance.domain.routing.mnp import normalize_mccmnc, number_digits
from appliance.errors import InvalidInput

MatchKind = Literal["mccmnc", "prefix"]


class Rate(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a carrier's rate deck (the store's `RateRow` has the same fields)."""

    carrier: str
    prefix: str
    """E.164 digits ("+" optional) the number must start with; "" for every number."""
    mccmnc: str | None
    """The network this price is for, normalized ("238-01"); None for any network."""
    price: float
    """Per message part, in `currency`."""
    currency: str
    valid_from: float = 0.0
    """Epoch seconds from which the rate applies (`best_rates(now=...)` ignores it before then)."""


class RateMatch(NamedTuple):
    """The rate one carrier charges for the destination, and why that rate was picked."""

    carrier: str
    price: float
    matched_by: str
    """"mccmnc 238-01" or "prefix 4520" (the kind, a space, what matched); "prefix *" for a catch-all."""

    @property
    def kind(self) -> MatchKind:
        return "mccmnc" if self.matched_by.startswith("mccmnc") else "prefix"


def _rank(digits: str, mccmnc: str | None, rate: Rate) -> tuple[bool, int, float, float] | None:
    """How well `rate` fits (higher is better), or None when it does not apply to this number."""
    prefix = rate.prefix.removeprefix("+")
    if not digits.startswith(prefix):
        return None
    if rate.mccmnc is not None and rate.mccmnc != mccmnc:
        return None
    # Network match first, then the longest prefix, then the newest rate, then the cheaper.
    return (rate.mccmnc is not None, len(prefix), rate.valid_from, -rate.price)


def _describe(rate: Rate) -> str:
    if rate.mccmnc is not None:
        return f"mccmnc {rate.mccmnc}"
    return f"prefix {rate.prefix.removeprefix('+') or '*'}"


def best_rates(
    e164: str,
    mccmnc: str | None,
    rates: Iterable[Rate],
    *,
    currency: str | None = None,
    now: float | None = None,
) -> list[RateMatch]:
    """The applicable rate of every carrier that prices this destination, by price then carrier name.

    `mccmnc` is the destination's network from the lookup (None when unknown: only prefix rates apply).
    `currency` keeps only rates in that currency; `now` drops rates whose `valid_from` is still ahead.
    InvalidInput("currency") when no `currency` is given and the matching rates mix currencies.
    """
    digits = number_digits(e164)
    network = normalize_mccmnc(mccmnc) if mccmnc is not None else None
    best: dict[str, tuple[tuple[bool, int, float, float], Rate]] = {}
    currencies: set[str] = set()
    for rate in rates:
        if currency is not None and rate.currency != currency:
            continue
        if now is not None and rate.valid_from > now:
            continue
        rank = _rank(digits, network, rate)
        if rank is None:
            continue
        currencies.add(rate.currency)
        if rate.carrier not in best or rank > best[rate.carrier][0]:
            best[rate.carrier] = (rank, rate)
    if len(currencies) > 1:
        raise InvalidInput(
            "currency",
            f"rates for {e164} are in {', '.join(sorted(currencies))}; currency conversion is out of "
            "scope, so pass the currency to compare in",
        )
    matches = [RateMatch(carrier, rate.price, _describe(rate)) for carrier, (_, rate) in best.items()]
    return sorted(matches, key=lambda match: (match.price, match.carrier))


class RateDeck:
    """Every carrier's rates, indexed by prefix: `matching` gives what `best_rates` needs for one number.

    `best_rates(e164, mccmnc, deck.matching(digits))` equals `best_rates(e164, mccmnc, deck.rates)`: a rate
    whose prefix the number does not start with never applies, and the rest keep their deck order (which
    decides ties).
    """

    __slots__ = ("_by_prefix", "_lengths", "first_currency", "rates")

    def __init__(self, rates: Iterable[Rate]) -> None:
        self.rates = list(rates)
        self._by_prefix: dict[str, list[tuple[int, Rate]]] = {}
        self.first_currency: dict[str, str] = {}
        """Per carrier, the currency of its first rate in deck order."""
        for index, rate in enumerate(self.rates):
            self._by_prefix.setdefault(rate.prefix.removeprefix("+"), []).append((index, rate))
            self.first_currency.setdefault(rate.carrier, rate.currency)
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix})

    def __len__(self) -> int:
        return len(self.rates)

    def matching(self, digits: str) -> list[Rate]:
        """The rates whose prefix the E.164 `digits` (no "+") start with, in deck order."""
        groups = [
            group
            for length in self._lengths
            if length <= len(digits) and (group := self._by_prefix.get(digits[:length])) is not None
        ]
        if len(groups) == 1:
            return [rate for _, rate in groups[0]]
        return [rate for _, rate in sorted((entry for group in groups for entry in group), key=itemgetter(0))]
