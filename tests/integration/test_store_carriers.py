"""The `CarrierStore` contract (carriers, rates, MNP), run against SQLite and PostgreSQL.

The `carriers` fixture is conftest's `store`: a file in the temp dir, or a fresh PostgreSQL schema
(skipped without HERMES_TEST_POSTGRES_DSN).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from appliance.domain.routing import Rate, RateMatch, best_rates
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.store import FullStore
from appliance.store.carrier_models import Carrier, MnpEntry, RateRow

T0 = 1_700_000_000.5


@pytest.fixture
def carriers(store: FullStore) -> FullStore:
    """conftest's migrated `store` (SQLite, and PostgreSQL when configured)."""
    return store


def _carrier(name: str = "telia_dk", **changes: Any) -> Carrier:
    carrier = Carrier(
        name=name, kind="direct", host="smpp.telia.example", port=2775, system_id="hermes",
        password="s3cr%t?", connections=2, window=50, tps=100, mccmnc_list=("238-20",), created_at=T0,
        updated_at=T0,
    )  # fmt: skip
    return msgspec.structs.replace(carrier, **changes)


def _rate(carrier: str, prefix: str, price: float, mccmnc: str | None = None, **changes: Any) -> RateRow:
    rate = RateRow(carrier=carrier, prefix=prefix, mccmnc=mccmnc, price=price, currency="DKK", valid_from=T0)
    return msgspec.structs.replace(rate, **changes)


def _mnp(number: str, mccmnc: str, name: str | None = None, at: float = T0) -> MnpEntry:
    return MnpEntry(number_or_prefix=number, mccmnc=mccmnc, carrier_name=name, updated_at=at)


# ---- migration -------------------------------------------------------------------------------------------


async def test_migration_0003_is_applied(carriers: FullStore) -> None:
    assert await carriers.schema_version() >= 3
    assert await carriers.migrate() == []


# ---- carriers --------------------------------------------------------------------------------------------


async def test_add_get_list_round_trip_every_field(carriers: FullStore) -> None:
    telia = _carrier(
        bind_type="transmitter", system_type="VMA", source_ton=1, source_npi=1, dest_ton=0, dest_npi=0,
        use_sar=True, enabled=False, mccmnc_list=("238-20", "238-30"),
    )  # fmt: skip
    assert await carriers.add_carrier(telia) == telia
    assert await carriers.get_carrier("telia_dk") == telia
    tdc = await carriers.add_carrier(_carrier("tdc", kind="aggregator", mccmnc_list=()))
    assert tdc.mccmnc_list == () and tdc.use_sar is False and tdc.enabled is True
    assert await carriers.list_carriers() == [tdc, telia]


async def test_the_password_is_stored_as_given_but_hidden_from_repr(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    stored = await carriers.get_carrier("telia_dk")
    assert stored.password == "s3cr%t?"
    assert "s3cr" not in repr(stored) and "password='***'" not in repr(stored)
    assert "password=***" in repr(stored) and "host='smpp.telia.example'" in repr(stored)


async def test_networks_are_normalized_on_the_way_in(carriers: FullStore) -> None:
    added = await carriers.add_carrier(_carrier(mccmnc_list=("23820", " 238-030 ")))
    assert added.mccmnc_list == ("238-20", "238-030")
    assert (await carriers.get_carrier("telia_dk")).mccmnc_list == ("238-20", "238-030")


async def test_a_taken_name_is_a_conflict_and_changes_nothing(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    with pytest.raises(Conflict) as caught:
        await carriers.add_carrier(_carrier(host="other.example"))
    assert (caught.value.kind, caught.value.ref) == ("carrier", "telia_dk")
    assert (await carriers.get_carrier("telia_dk")).host == "smpp.telia.example"


async def test_concurrent_adds_of_one_name_let_exactly_one_win(carriers: FullStore) -> None:
    results = await asyncio.gather(
        *(carriers.add_carrier(_carrier(port=2775 + i)) for i in range(4)), return_exceptions=True
    )
    assert sum(isinstance(r, Carrier) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "cheap"}, "kind"),
        ({"bind_type": "both"}, "bind_type"),
        ({"mccmnc_list": ("2380",)}, "mccmnc"),
    ],
)
async def test_bad_carrier_fields_are_refused(
    carriers: FullStore, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await carriers.add_carrier(_carrier(**changes))
    assert caught.value.field == field
    assert await carriers.list_carriers() == []


async def test_get_unknown_carrier_is_not_found(carriers: FullStore) -> None:
    with pytest.raises(NotFound) as caught:
        await carriers.get_carrier("nobody")
    assert (caught.value.kind, caught.value.ref) == ("carrier", "nobody")


async def test_update_replaces_all_but_name_and_created_at(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    changed = _carrier(
        kind="aggregator", host="h2", port=2776, system_id="s2", password="p2", bind_type="receiver",
        connections=4, window=5, tps=7, system_type="X", source_ton=2, source_npi=3, dest_ton=4,
        dest_npi=5, use_sar=True, enabled=False, mccmnc_list=("23801",), created_at=1.0, updated_at=T0 + 60,
    )  # fmt: skip
    updated = await carriers.update_carrier(changed)
    expected = msgspec.structs.replace(changed, created_at=T0, mccmnc_list=("238-01",))
    assert updated == expected
    assert await carriers.get_carrier("telia_dk") == expected
    with pytest.raises(NotFound):
        await carriers.update_carrier(_carrier("nobody"))


async def test_remove_carrier_takes_its_rates_along(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.add_carrier(_carrier("tdc"))
    await carriers.import_rates([_rate("telia_dk", "45", 0.02), _rate("tdc", "45", 0.025)])
    await carriers.remove_carrier("telia_dk")
    assert [c.name for c in await carriers.list_carriers()] == ["tdc"]
    assert [r.carrier for r in await carriers.list_rates()] == ["tdc"]
    with pytest.raises(NotFound):
        await carriers.remove_carrier("telia_dk")


# ---- rates -----------------------------------------------------------------------------------------------


async def test_set_rate_inserts_then_replaces_price_currency_and_valid_from(
    carriers: FullStore,
) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.set_rate(_rate("telia_dk", "+4520", 0.02))
    await carriers.set_rate(_rate("telia_dk", "4520", 0.018, currency="EUR", valid_from=T0 + 1))
    assert await carriers.list_rates("telia_dk") == [
        _rate("telia_dk", "4520", 0.018, currency="EUR", valid_from=T0 + 1)
    ]


async def test_rates_differ_by_network_and_list_in_key_order(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.add_carrier(_carrier("messente", kind="aggregator"))
    await carriers.set_rate(_rate("telia_dk", "45", 0.03))
    await carriers.set_rate(_rate("telia_dk", "45", 0.02, mccmnc="23820"))
    await carriers.set_rate(_rate("telia_dk", "", 0.5))
    await carriers.set_rate(_rate("messente", "45", 0.05))
    assert await carriers.list_rates() == [
        _rate("messente", "45", 0.05),
        _rate("telia_dk", "", 0.5),
        _rate("telia_dk", "45", 0.03),
        _rate("telia_dk", "45", 0.02, mccmnc="238-20"),
    ]
    assert await carriers.list_rates("nobody") == []


async def test_a_rate_for_an_unknown_carrier_is_not_found(carriers: FullStore) -> None:
    with pytest.raises(NotFound) as caught:
        await carriers.set_rate(_rate("nobody", "45", 0.01))
    assert (caught.value.kind, caught.value.ref) == ("carrier", "nobody")


@pytest.mark.parametrize(("prefix", "mccmnc"), [("45a", None), ("1234567890123456", None), ("45", "238")])
async def test_bad_rates_are_refused(carriers: FullStore, prefix: str, mccmnc: str | None) -> None:
    await carriers.add_carrier(_carrier())
    with pytest.raises(InvalidInput):
        await carriers.set_rate(_rate("telia_dk", prefix, 0.01, mccmnc=mccmnc))


async def test_import_rates_counts_and_upserts(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.set_rate(_rate("telia_dk", "45", 0.9))
    deck = [_rate("telia_dk", "45", 0.03), _rate("telia_dk", "46", 0.04), _rate("telia_dk", "46", 0.05)]
    assert await carriers.import_rates(deck) == 3
    assert [(r.prefix, r.price) for r in await carriers.list_rates()] == [("45", 0.03), ("46", 0.05)]
    assert await carriers.import_rates([]) == 0


async def test_import_rates_is_all_or_nothing(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    with pytest.raises(NotFound) as caught:
        await carriers.import_rates([_rate("telia_dk", "45", 0.03), _rate("ghost", "45", 0.01)])
    assert caught.value.ref == "ghost"
    with pytest.raises(InvalidInput):
        await carriers.import_rates([_rate("telia_dk", "45", 0.03), _rate("telia_dk", "x", 0.01)])
    assert await carriers.list_rates() == []


async def test_import_rates_with_replace_swaps_the_named_carriers_decks(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.add_carrier(_carrier("tdc"))
    await carriers.import_rates([_rate("telia_dk", "45", 0.03), _rate("telia_dk", "46", 0.04)])
    await carriers.import_rates([_rate("tdc", "45", 0.025)])
    assert await carriers.import_rates([_rate("telia_dk", "47", 0.05)], replace=True) == 1
    assert [(r.carrier, r.prefix) for r in await carriers.list_rates()] == [("tdc", "45"), ("telia_dk", "47")]


async def test_a_large_rate_deck_imports_in_one_call(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    deck = [_rate("telia_dk", f"45{i:05d}", 0.01 + i / 1e6) for i in range(3000)]
    assert await carriers.import_rates(deck) == 3000
    assert len(await carriers.list_rates("telia_dk")) == 3000


async def test_remove_rate(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.import_rates(
        [_rate("telia_dk", "45", 0.03), _rate("telia_dk", "45", 0.02, mccmnc="238-20")]
    )
    await carriers.remove_rate("telia_dk", "+45", "23820")
    assert await carriers.list_rates() == [_rate("telia_dk", "45", 0.03)]
    with pytest.raises(NotFound) as caught:
        await carriers.remove_rate("telia_dk", "45", "238-20")
    assert (caught.value.kind, caught.value.ref) == ("rate", "telia_dk 45 238-20")
    await carriers.remove_rate("telia_dk", "45")
    with pytest.raises(NotFound, match="telia_dk \\* \\*"):
        await carriers.remove_rate("telia_dk", "")


async def test_stored_rates_feed_the_domains_best_rates(carriers: FullStore) -> None:
    await carriers.add_carrier(_carrier())
    await carriers.add_carrier(_carrier("messente", kind="aggregator"))
    await carriers.import_rates(
        [
            _rate("telia_dk", "45", 0.03),
            _rate("telia_dk", "", 0.02, mccmnc="238-20"),
            _rate("messente", "4520", 0.05),
        ]
    )
    rates = [Rate(**msgspec.structs.asdict(row)) for row in await carriers.list_rates()]
    assert best_rates("+4520123456", "238-20", rates) == [
        RateMatch("telia_dk", 0.02, "mccmnc 238-20"),
        RateMatch("messente", 0.05, "prefix 4520"),
    ]


# ---- MNP -------------------------------------------------------------------------------------------------


async def test_lookup_mnp_finds_the_longest_prefix(carriers: FullStore) -> None:
    assert (
        await carriers.import_mnp(
            [_mnp("+4520", "23801", "TDC"), _mnp("452012", "238-02"), _mnp("4520123456", "238-20", "Telia")]
        )
        == 3
    )
    assert await carriers.lookup_mnp("+4520123456") == _mnp("4520123456", "238-20", "Telia")
    assert await carriers.lookup_mnp("+4520129999") == _mnp("452012", "238-02")
    assert await carriers.lookup_mnp("4520999999") == _mnp("4520", "238-01", "TDC")
    assert await carriers.lookup_mnp("+4612345678") is None
    assert await carriers.count_mnp() == 3


async def test_import_mnp_upserts_and_replace_makes_the_rows_the_whole_table(
    carriers: FullStore,
) -> None:
    await carriers.import_mnp([_mnp("4520", "238-01"), _mnp("4530", "238-02")])
    await carriers.import_mnp([_mnp("4520", "238-10", "Telia", at=T0 + 1)])
    assert await carriers.lookup_mnp("+4520000000") == _mnp("4520", "238-10", "Telia", at=T0 + 1)
    assert await carriers.count_mnp() == 2
    assert await carriers.import_mnp([_mnp("4540", "238-06")], replace=True) == 1
    assert await carriers.count_mnp() == 1 and await carriers.lookup_mnp("+4520000000") is None
    assert await carriers.import_mnp([], replace=True) == 0
    assert await carriers.count_mnp() == 0


async def test_import_mnp_is_all_or_nothing(carriers: FullStore) -> None:
    await carriers.import_mnp([_mnp("4520", "238-01")])
    for bad in (_mnp("45x", "238-01"), _mnp("4530", "23-801"), _mnp("", "238-01")):
        with pytest.raises(InvalidInput):
            await carriers.import_mnp([_mnp("4530", "238-02"), bad], replace=True)
    assert await carriers.count_mnp() == 1


async def test_a_large_mnp_dump_imports_in_one_call(carriers: FullStore) -> None:
    dump = [_mnp(f"4520{i:06d}", "238-20" if i % 2 else "238-01") for i in range(5000)]
    assert await carriers.import_mnp(dump) == 5000
    assert await carriers.count_mnp() == 5000
    found = await carriers.lookup_mnp("+4520004999")
    assert found is not None and found.mccmnc == "238-20"


async def test_lookup_mnp_refuses_what_is_not_a_number(carriers: FullStore) -> None:
    for bad in ("", "+", "+45 20", "abc", "+1234567890123456"):
        with pytest.raises(InvalidInput):
            await carriers.lookup_mnp(bad)
