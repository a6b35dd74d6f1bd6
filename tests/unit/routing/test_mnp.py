"""The MNP table (longest prefix, ported detection, CSV with line-numbered errors) and the lookup cache."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.routing import (
    Lookup,
    LookupCache,
    MnpCsvError,
    MnpRecord,
    MnpTable,
    lookup_from_plan,
    normalize_mccmnc,
    number_digits,
    parse_mnp_csv,
    parse_number,
)
from appliance.errors import InvalidInput

TABLE = MnpTable(
    [
        MnpRecord("45", "238-99"),
        MnpRecord("4520", "238-01", "TDC"),
        MnpRecord("452012", "238-02", "Telenor"),
        MnpRecord("4520123456", "238-20", "Telia"),  # ported out of TDC's range
        MnpRecord("4530000000", "238-02", "Telenor"),  # listed, same network as its range
        MnpRecord("4530", "238-02"),
    ]
)


# ---- MCC-MNC and digits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal"),
    [("238-01", "238-01"), ("23801", "238-01"), (" 238-001 ", "238-001"), ("310260", "310-260")],
)
def test_mccmnc_is_normalized(text: str, normal: str) -> None:
    assert normalize_mccmnc(text) == normal


@pytest.mark.parametrize("text", ["", "238", "238-1", "2380001", "23a-01", "238--01", "238-0001"])
def test_bad_mccmnc_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="not an MCC-MNC"):
        normalize_mccmnc(text)


def test_number_digits_strips_plus_and_refuses_anything_else() -> None:
    assert number_digits("+4520") == "4520"
    assert number_digits("4520") == "4520"
    for bad in ("", "+", "45 20", "+45-20", "1234567890123456", "++45"):
        with pytest.raises(InvalidInput):
            number_digits(bad)


# ---- the table -------------------------------------------------------------------------------------------


def test_longest_prefix_wins() -> None:
    assert TABLE.lookup("+4520129999") == Lookup(
        e164="+4520129999", source="mnp_table", mccmnc="238-02", carrier_name="Telenor"
    )
    assert [r.prefix for r in TABLE.matches("+4520123456")] == ["4520123456", "452012", "4520", "45"]


def test_exact_number_beats_its_range_and_is_ported_when_the_networks_differ() -> None:
    lookup = TABLE.lookup("+4520123456")
    assert lookup is not None
    assert (lookup.mccmnc, lookup.ported, lookup.carrier_name, lookup.cached) == (
        "238-20",
        True,
        "Telia",
        False,
    )


def test_exact_number_on_its_ranges_network_is_not_ported() -> None:
    lookup = TABLE.lookup("+4530000000")
    assert lookup is not None and (lookup.mccmnc, lookup.ported) == ("238-02", False)


def test_a_range_match_cannot_tell_porting() -> None:
    lookup = TABLE.lookup("+4520999999")
    assert lookup is not None and (lookup.mccmnc, lookup.ported) == ("238-01", None)


def test_an_exact_number_without_a_range_cannot_tell_porting() -> None:
    lookup = MnpTable([MnpRecord("4520123456", "238-20")]).lookup("+4520123456")
    assert lookup is not None and lookup.ported is None


def test_no_match_is_none_and_an_empty_table_matches_nothing() -> None:
    assert TABLE.lookup("+4612345678") is None
    assert MnpTable().lookup("+4520123456") is None
    assert len(MnpTable()) == 0 and len(TABLE) == 6


def test_a_later_record_for_the_same_prefix_replaces_the_earlier() -> None:
    table = MnpTable([MnpRecord("+4520", "238-01"), MnpRecord("4520", "238-02")])
    assert len(table) == 1
    assert table.lookup("+4520000000") == Lookup(e164="+4520000000", source="mnp_table", mccmnc="238-02")


def test_a_record_with_a_bad_prefix_is_refused() -> None:
    with pytest.raises(InvalidInput, match="prefix"):
        MnpTable([MnpRecord("45x", "238-01")])


@given(
    prefixes=st.dictionaries(st.text("0123", min_size=1, max_size=6), st.sampled_from(["238-01", "238-02"])),
    number=st.text("0123", min_size=6, max_size=10),
)
def test_longest_prefix_matches_a_brute_force_search(prefixes: dict[str, str], number: str) -> None:
    table = MnpTable(MnpRecord(p, m) for p, m in prefixes.items())
    matching = [p for p in prefixes if number.startswith(p)]
    lookup = table.lookup("+" + number)
    if not matching:
        assert lookup is None
    else:
        assert lookup is not None and lookup.mccmnc == prefixes[max(matching, key=len)]


# ---- CSV -------------------------------------------------------------------------------------------------


def test_csv_with_header_comments_blank_lines_and_optional_name() -> None:
    text = (
        "# Danish MNP dump, 2024-05-01\n"
        "number_or_prefix,mccmnc,carrier_name\n"
        "\n"
        "+4520,23801,TDC\n"
        "  # indented comment\n"
        '4520123456, 238-20 ,"Telia, Denmark"\n'
        "4530,238-02\n"
        "4531,238-02,\n"
    )
    assert parse_mnp_csv(text) == [
        MnpRecord("4520", "238-01", "TDC"),
        MnpRecord("4520123456", "238-20", "Telia, Denmark"),
        MnpRecord("4530", "238-02", None),
        MnpRecord("4531", "238-02", None),
    ]


def test_csv_header_is_optional_and_may_omit_the_name_column() -> None:
    assert parse_mnp_csv("4520,238-01") == [MnpRecord("4520", "238-01")]
    assert parse_mnp_csv("NUMBER_OR_PREFIX,MCCMNC\n4520,238-01") == [MnpRecord("4520", "238-01")]
    assert MnpTable.from_csv("").lookup("+4520123456") is None


def test_a_header_is_only_recognized_on_the_first_row() -> None:
    with pytest.raises(MnpCsvError) as caught:
        parse_mnp_csv("4520,238-01\nnumber_or_prefix,mccmnc\n")
    assert [line for line, _ in caught.value.errors] == [2]


def test_csv_errors_name_every_bad_line() -> None:
    text = (
        "number_or_prefix,mccmnc\n"
        "4520,238-01\n"
        "# fine\n"
        "45x0,238-01\n"
        "4521,23-01\n"
        "4522\n"
        "4523,238-01,TDC,extra\n"
        "+4520,238-02\n"
    )
    with pytest.raises(MnpCsvError) as caught:
        parse_mnp_csv(text)
    error = caught.value
    assert [line for line, _ in error.errors] == [4, 5, 6, 7, 8]
    reasons = dict(error.errors)
    assert "not an E.164 number" in reasons[4]
    assert "not an MCC-MNC" in reasons[5]
    assert "not 1 fields" in reasons[6] and "not 4 fields" in reasons[7]
    assert reasons[8] == "4520 is already given on line 2"
    assert isinstance(error, InvalidInput) and error.field == "csv"
    assert error.message.startswith("csv: line 4: ")


def test_csv_error_message_is_bounded_but_errors_are_complete() -> None:
    with pytest.raises(MnpCsvError) as caught:
        parse_mnp_csv("\n".join(f"bad{i},238-01" for i in range(25)))
    assert len(caught.value.errors) == 25
    assert caught.value.message.endswith("; and 15 more")
    assert "line 11:" not in caught.value.message


# ---- numbering plan fallback -----------------------------------------------------------------------------


def test_lookup_from_plan_maps_the_allocated_carrier_case_insensitively() -> None:
    info = parse_number("+4520123456")  # allocated to "tdc"
    assert lookup_from_plan(info, {"TDC": "238-01"}) == Lookup(
        e164="+4520123456", source="numbering_plan", mccmnc="238-01", carrier_name="tdc"
    )
    assert lookup_from_plan(info).mccmnc is None
    no_carrier = lookup_from_plan(parse_number("+12015550123"), {"tdc": "238-01"})
    assert (no_carrier.mccmnc, no_carrier.carrier_name, no_carrier.ported) == (None, None, None)


# ---- the cache -------------------------------------------------------------------------------------------


def hit(e164: str, mccmnc: str | None = "238-01") -> Lookup:
    return Lookup(e164=e164, source="hlr", mccmnc=mccmnc, ported=False)


def test_cache_returns_a_copy_marked_cached_until_the_ttl_ends() -> None:
    cache = LookupCache(ttl_s=60, max_entries=10)
    cache.put(hit("+4520000001"), now=100.0)
    assert cache.get("+4520000001", now=159.9) == Lookup(
        e164="+4520000001", source="hlr", mccmnc="238-01", ported=False, cached=True
    )
    assert cache.get("+4520000001", now=160.0) is None
    assert len(cache) == 0  # the expired entry was dropped
    assert cache.get("+4599999999", now=100.0) is None


def test_cache_stores_answers_unmarked_even_if_given_a_cached_one() -> None:
    cache = LookupCache(ttl_s=60, max_entries=10)
    cache.put(Lookup(e164="+4520000001", source="hlr", mccmnc="238-01", cached=True), now=0.0)
    again = cache.get("+4520000001", now=1.0)
    assert again is not None and again.cached
    cache.put(again, now=2.0)
    assert cache.get("+4520000001", now=61.0) is not None  # put again at 2.0: expires at 62.0


def test_cache_evicts_the_least_recently_used() -> None:
    cache = LookupCache(ttl_s=60, max_entries=2)
    cache.put(hit("+1"), now=0.0)
    cache.put(hit("+2"), now=0.0)
    assert cache.get("+1", now=1.0) is not None  # +1 is now the most recently used
    cache.put(hit("+3"), now=2.0)
    assert len(cache) == 2
    assert cache.get("+2", now=3.0) is None
    assert cache.get("+1", now=3.0) is not None and cache.get("+3", now=3.0) is not None


def test_negative_answers_use_their_own_ttl_and_zero_caches_none() -> None:
    cache = LookupCache(ttl_s=3600, max_entries=10, negative_ttl_s=30)
    cache.put(hit("+1", mccmnc=None), now=0.0)
    assert cache.get("+1", now=29.0) is not None and cache.get("+1", now=30.0) is None
    off = LookupCache(ttl_s=3600, max_entries=10, negative_ttl_s=0)
    off.put(hit("+1"), now=0.0)
    off.put(hit("+1", mccmnc=None), now=1.0)  # a negative answer also replaces a stale positive one
    assert off.get("+1", now=2.0) is None and len(off) == 0


def test_purge_and_clear() -> None:
    cache = LookupCache(ttl_s=10, max_entries=10)
    cache.put(hit("+1"), now=0.0)
    cache.put(hit("+2"), now=5.0)
    assert cache.purge(now=10.0) == 1 and len(cache) == 1
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("ttl", "negative", "size", "field"),
    [
        (-1.0, None, 1, "ttl_s"),
        (1.0, -1.0, 1, "ttl_s"),
        (float("nan"), None, 1, "ttl_s"),
        (1.0, None, 0, "max_entries"),
    ],
)
def test_cache_refuses_bad_settings(ttl: float, negative: float | None, size: int, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        LookupCache(ttl_s=ttl, max_entries=size, negative_ttl_s=negative)
    assert caught.value.field == field


@given(
    st.lists(st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 9), st.floats(0, 5)), max_size=60),
    st.integers(1, 4),
)
def test_cache_never_exceeds_its_bound_nor_answers_after_expiry(
    steps: list[tuple[str, int, float]], size: int
) -> None:
    cache = LookupCache(ttl_s=3, max_entries=size)
    now, stored_at = 0.0, {}
    for op, key, advance in steps:
        now += advance
        e164 = f"+45{key}"
        if op == "put":
            cache.put(hit(e164), now)
            stored_at[e164] = now
        elif (answer := cache.get(e164, now)) is not None:
            assert answer.cached and now - stored_at[e164] < 3
        assert len(cache) <= size
