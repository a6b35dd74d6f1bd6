"""Carriers, rates and the MNP table (`CarrierStore`) in portable SQL, mixed into `SqlStore` (sql.py) beside
`SqlMessages` and `SqlAccounts`.

Like them it runs over the host's `_session()` (`SqlHost`) and imports sql.py for types only (sql.py
imports the mixins: a runtime import back would be a cycle). So a taken name is found by `INSERT ... ON
CONFLICT DO NOTHING` touching no row, and a missing carrier by a check inside the writing transaction,
rather than by catching sql.py's constraint errors. Imports are one `execute_many` in one transaction.

Values are normalized on the way in, so the router's lookups compare like with like: numbers and prefixes
to E.164 digits without "+", MCC-MNCs to "238-01" (the rules of `domain.routing.mnp`, repeated here
because the store does not depend on the domain). A rate for any network is stored with mccmnc "" (it is
part of the primary key, which PostgreSQL will not let be NULL) and handed out as None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, get_args

import msgspec

from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.store.carrier_base import CarrierStore
from appliance.store.carrier_models import BindType, Carrier, CarrierKind, MnpEntry, RateRow
from appliance.store.sql_messages import SqlHost

if TYPE_CHECKING:
    from appliance.store.sql import Row, Session

_FIELDS: Final = Carrier.__struct_fields__
# Every column quoted: "window" is reserved in PostgreSQL, and quoting the rest costs nothing.
_CARRIER: Final = ", ".join(f'"{name}"' for name in _FIELDS)
_RATE: Final = "carrier, prefix, mccmnc, price, currency, valid_from"
_MNP: Final = "number_or_prefix, mccmnc, carrier_name, updated_at"
_MUTABLE: Final = [name for name in _FIELDS if name not in ("name", "created_at")]
_UPSERT_RATE: Final = (
    f"INSERT INTO rates ({_RATE}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (carrier, prefix, mccmnc) "
    "DO UPDATE SET price = excluded.price, currency = excluded.currency, valid_from = excluded.valid_from"
)
_UPSERT_MNP: Final = (
    f"INSERT INTO mnp ({_MNP}) VALUES (?, ?, ?, ?) ON CONFLICT (number_or_prefix) DO UPDATE SET "
    "mccmnc = excluded.mccmnc, carrier_name = excluded.carrier_name, updated_at = excluded.updated_at"
)
_DIGITS: Final = re.compile(r"[0-9]{0,15}")
_MCCMNC: Final = re.compile(r"([0-9]{3})-?([0-9]{2,3})")
_NAMES_PER_QUERY: Final = 500  # names in one IN list, far below either dialect's parameter bound
_KINDS: Final = get_args(CarrierKind)
_BIND_TYPES: Final = get_args(BindType)


def _digits(text: str, field: str, *, empty_ok: bool = False) -> str:
    digits = text.strip().removeprefix("+")
    if not _DIGITS.fullmatch(digits) or not (digits or empty_ok):
        raise InvalidInput(
            field, f"{text!r} is not an E.164 number or prefix (up to 15 digits, optional '+')"
        )
    return digits


def _mccmnc(text: str) -> str:
    match = _MCCMNC.fullmatch(text.strip())
    if match is None:
        raise InvalidInput("mccmnc", f"{text!r} is not an MCC-MNC such as 238-01")
    return f"{match[1]}-{match[2]}"


def _carrier_row(carrier: Carrier) -> Row:
    """The carrier as column values: networks normalized and comma-joined, booleans as 0/1."""
    if carrier.kind not in _KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(_KINDS)}, not {carrier.kind!r}")
    if carrier.bind_type not in _BIND_TYPES:
        raise InvalidInput("bind_type", f"must be one of {', '.join(_BIND_TYPES)}, not {carrier.bind_type!r}")
    values = msgspec.structs.asdict(carrier)
    values["mccmnc_list"] = ",".join(_mccmnc(network) for network in carrier.mccmnc_list)
    values["use_sar"] = int(carrier.use_sar)
    values["enabled"] = int(carrier.enabled)
    return tuple(values[name] for name in _FIELDS)


def _carrier(row: Row) -> Carrier:
    values = dict(zip(_FIELDS, row, strict=True))
    values["mccmnc_list"] = tuple(network for network in str(values["mccmnc_list"]).split(",") if network)
    values["use_sar"] = bool(values["use_sar"])
    values["enabled"] = bool(values["enabled"])
    return Carrier(**values)


def _rate_row(rate: RateRow) -> Row:
    network = "" if rate.mccmnc is None else _mccmnc(rate.mccmnc)
    prefix = _digits(rate.prefix, "prefix", empty_ok=True)
    return (rate.carrier, prefix, network, rate.price, rate.currency, rate.valid_from)


def _rate(row: Row) -> RateRow:
    carrier, prefix, network, price, currency, valid_from = row
    return RateRow(
        carrier=carrier, prefix=prefix, mccmnc=network or None, price=price, currency=currency,
        valid_from=valid_from,
    )  # fmt: skip


def _mnp_row(entry: MnpEntry) -> Row:
    number = _digits(entry.number_or_prefix, "number_or_prefix")
    return (number, _mccmnc(entry.mccmnc), entry.carrier_name, entry.updated_at)


def _mnp(row: Row) -> MnpEntry:
    number, network, name, updated_at = row
    return MnpEntry(number_or_prefix=number, mccmnc=network, carrier_name=name, updated_at=updated_at)


async def _require_carriers(session: Session, names: Sequence[str]) -> None:
    """NotFound("carrier", name) for the first of `names` (sorted) that does not exist."""
    found: set[str] = set()
    for start in range(0, len(names), _NAMES_PER_QUERY):
        chunk = names[start : start + _NAMES_PER_QUERY]
        marks = ", ".join("?" for _ in chunk)
        rows = await session.fetch_all(f"SELECT name FROM carriers WHERE name IN ({marks})", chunk)
        found.update(str(row[0]) for row in rows)
    for name in names:
        if name not in found:
            raise NotFound("carrier", name)


class SqlCarriers(SqlHost, CarrierStore):
    """Carriers with their rates, and the MNP table."""

    # carriers

    async def add_carrier(self, carrier: Carrier) -> Carrier:
        row = _carrier_row(carrier)
        marks = ", ".join("?" for _ in _FIELDS)
        async with self._session(write=True) as session:
            sql = f"INSERT INTO carriers ({_CARRIER}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            added = await session.execute(sql, row)
        if not added:
            raise Conflict("carrier", carrier.name)
        return _carrier(row)

    async def get_carrier(self, name: str) -> Carrier:
        row = await self._fetch_one(f"SELECT {_CARRIER} FROM carriers WHERE name = ?", (name,))
        if row is None:
            raise NotFound("carrier", name)
        return _carrier(row)

    async def list_carriers(self) -> list[Carrier]:
        return [
            _carrier(row) for row in await self._fetch_all(f"SELECT {_CARRIER} FROM carriers ORDER BY name")
        ]

    async def update_carrier(self, carrier: Carrier) -> Carrier:
        values = dict(zip(_FIELDS, _carrier_row(carrier), strict=True))
        assign = ", ".join(f'"{name}" = ?' for name in _MUTABLE)
        async with self._session(write=True) as session:
            params = (*(values[name] for name in _MUTABLE), carrier.name)
            if await session.execute(f"UPDATE carriers SET {assign} WHERE name = ?", params):
                row = await session.fetch_one(
                    f"SELECT {_CARRIER} FROM carriers WHERE name = ?", (carrier.name,)
                )
                if row is not None:
                    return _carrier(row)
        raise NotFound("carrier", carrier.name)

    async def remove_carrier(self, name: str) -> None:
        async with self._session(write=True) as session:
            if not await session.execute("DELETE FROM carriers WHERE name = ?", (name,)):
                raise NotFound("carrier", name)

    # rates

    async def set_rate(self, rate: RateRow) -> None:
        await self.import_rates([rate])

    async def list_rates(self, carrier: str | None = None) -> list[RateRow]:
        where, params = ("WHERE carrier = ? ", (carrier,)) if carrier is not None else ("", ())
        sql = f"SELECT {_RATE} FROM rates {where}ORDER BY carrier, prefix, mccmnc"
        return [_rate(row) for row in await self._fetch_all(sql, params)]

    async def import_rates(self, rows: Sequence[RateRow], *, replace: bool = False) -> int:
        values = [_rate_row(rate) for rate in rows]  # all checked before anything is written
        if not values:
            return 0
        carriers = sorted({rate.carrier for rate in rows})
        async with self._session(write=True) as session:
            await _require_carriers(session, carriers)
            if replace:
                await session.execute_many(
                    "DELETE FROM rates WHERE carrier = ?", [(name,) for name in carriers]
                )
            await session.execute_many(_UPSERT_RATE, values)
        return len(values)

    async def remove_rate(self, carrier: str, prefix: str, mccmnc: str | None = None) -> None:
        digits = _digits(prefix, "prefix", empty_ok=True)
        network = "" if mccmnc is None else _mccmnc(mccmnc)
        async with self._session(write=True) as session:
            sql = "DELETE FROM rates WHERE carrier = ? AND prefix = ? AND mccmnc = ?"
            if not await session.execute(sql, (carrier, digits, network)):
                raise NotFound("rate", f"{carrier} {digits or '*'} {network or '*'}")

    # MNP

    async def import_mnp(self, rows: Sequence[MnpEntry], *, replace: bool = False) -> int:
        values = [_mnp_row(entry) for entry in rows]  # all checked before anything is written
        if not values and not replace:
            return 0
        async with self._session(write=True) as session:
            if replace:
                await session.execute("DELETE FROM mnp")
            await session.execute_many(_UPSERT_MNP, values)
        return len(values)

    async def lookup_mnp(self, e164: str) -> MnpEntry | None:
        digits = _digits(e164, "e164")
        prefixes = [digits[:length] for length in range(1, len(digits) + 1)]
        marks = ", ".join("?" for _ in prefixes)
        sql = (
            f"SELECT {_MNP} FROM mnp WHERE number_or_prefix IN ({marks}) "
            "ORDER BY LENGTH(number_or_prefix) DESC LIMIT 1"
        )
        row = await self._fetch_one(sql, prefixes)
        return None if row is None else _mnp(row)

    async def count_mnp(self) -> int:
        row = await self._fetch_one("SELECT COUNT(*) FROM mnp")
        return 0 if row is None else int(row[0])
