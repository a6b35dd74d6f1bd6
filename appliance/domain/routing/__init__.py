"""SMS routing decisions (seed §12, §13, §17): number facts, MNP lookups, rates, and the route choice.

The router daemon calls, per destination: `parse_number` -> `LookupCache.get` / `MnpTable.lookup` / an
HLR query (its own I/O) / `lookup_from_plan` -> `best_rates` -> `decide`, and `explain` for the CLI.
No I/O here; time arrives as `now`.
"""

from appliance.domain.routing.decision import (
    ALTERNATIVE,
    CHOSEN,
    CarrierHealth,
    Considered,
    RouteCandidate,
    RouteDecision,
    RouteKind,
    Thresholds,
    decide,
    explain,
    skip_reasons,
)
from appliance.domain.routing.mnp import (
    Lookup,
    LookupCache,
    LookupSource,
    MnpCsvError,
    MnpRecord,
    MnpTable,
    lookup_from_plan,
    normalize_mccmnc,
    number_digits,
    parse_mnp_csv,
)
from appliance.domain.routing.numbers import NumberInfo, NumberType, parse_number
from appliance.domain.routing.rates import MatchKind, Rate, RateDeck, RateMatch, best_rates

__all__ = [
    "ALTERNATIVE",
    "CHOSEN",
    "CarrierHealth",
    "Considered",
    "Lookup",
    "LookupCache",
    "LookupSource",
    "MatchKind",
    "MnpCsvError",
    "MnpRecord",
    "MnpTable",
    "NumberInfo",
    "NumberType",
    "Rate",
    "RateDeck",
    "RateMatch",
    "RouteCandidate",
    "RouteDecision",
    "RouteKind",
    "Thresholds",
    "best_rates",
    "decide",
    "explain",
    "lookup_from_plan",
    "normalize_mccmnc",
    "number_digits",
    "parse_mnp_csv",
    "parse_number",
    "skip_reasons",
]
