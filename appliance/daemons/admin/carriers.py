"""Carriers, rates, MNP data and route explanations: the SMS routing registry behind the admin API.

Every change is validated, stored, audited and announced (`carrier`, `rates`, `mnp`) so the smpp daemon
re-binds and the planners forget stale data, without a restart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from appliance.daemons.admin.registry import Announce
from appliance.domain.routing import normalize_mccmnc, number_digits, parse_mnp_csv
from appliance.errors import InvalidInput
from appliance.services.carrier_health import HealthBoard
from appliance.services.route_planner import RoutePlanner, plan_body
from appliance.store import AuditEntry, Carrier, FullStore, MnpEntry, RateRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,47}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")
_EDITABLE = {
    "kind",
    "host",
    "port",
    "system_id",
    "password",
    "bind_type",
    "connections",
    "window",
    "tps",
    "system_type",
    "source_ton",
    "source_npi",
    "dest_ton",
    "dest_npi",
    "use_sar",
    "enabled",
    "mccmnc_list",
}


def check_carrier(carrier: Carrier) -> Carrier:
    """Refuse values the smpp daemon could not bind with, naming the field."""
    if not _NAME.match(carrier.name):
        raise InvalidInput("name", "1-48 characters of a-z, 0-9 and '_' (it becomes a NATS subject token)")
    if carrier.kind not in ("direct", "aggregator", "retail"):
        raise InvalidInput("kind", "must be direct, aggregator or retail")
    if not _HOST.match(carrier.host):
        raise InvalidInput("host", "a host name or IP address")
    if not 1 <= carrier.port <= 65535:
        raise InvalidInput("port", "must be 1-65535")
    if not 1 <= len(carrier.system_id) <= 15:
        raise InvalidInput("system_id", "1-15 characters (SMPP 3.4)")
    if len(carrier.password) > 8:
        raise InvalidInput("password", "at most 8 characters (SMPP 3.4)")
    if carrier.bind_type not in ("transceiver", "transmitter", "receiver"):
        raise InvalidInput("bind_type", "must be transceiver, transmitter or receiver")
    if not 1 <= carrier.connections <= 64:
        raise InvalidInput("connections", "must be 1-64")
    if not 1 <= carrier.window <= 1000:
        raise InvalidInput("window", "must be 1-1000")
    if carrier.tps < 0:
        raise InvalidInput("tps", "must be 0 (no limit) or more")
    for field in ("source_ton", "source_npi", "dest_ton", "dest_npi"):
        if not 0 <= getattr(carrier, field) <= 255:
            raise InvalidInput(field, "must be 0-255")
    return msgspec.structs.replace(
        carrier, mccmnc_list=tuple(normalize_mccmnc(m) for m in carrier.mccmnc_list)
    )


def carrier_body(carrier: Carrier, health: dict[str, Any] | None) -> dict[str, Any]:
    body = {k: v for k, v in msgspec.to_builtins(carrier).items() if k != "password"}
    body["health"] = health
    return body


class CarrierService:
    def __init__(
        self,
        store: FullStore,
        *,
        announce: Announce,
        health: HealthBoard,
        planner: RoutePlanner,
        tester: Callable[[Carrier], Awaitable[dict[str, Any]]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._announce = announce
        self._health = health.report
        self._tester = tester
        self._clock = clock
        self.planner = planner

    async def _audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        await self._store.append_audit(
            AuditEntry(id=None, at=self._clock(), actor=actor, action=action, target=target, details=details)
        )

    async def add(self, actor: str, fields: dict[str, Any]) -> Carrier:
        now = self._clock()
        try:
            carrier = msgspec.convert({**fields, "created_at": now, "updated_at": now}, Carrier)
        except msgspec.ValidationError as exc:
            raise _invalid(exc) from None
        created = await self._store.add_carrier(check_carrier(carrier))
        await self._audit(actor, "carrier.add", created.name, host=created.host, port=created.port)
        await self._announce("carrier", created.name)
        return created

    async def edit(self, actor: str, name: str, changes: dict[str, Any]) -> Carrier:
        unknown = set(changes) - _EDITABLE
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "cannot be changed")
        current = await self._store.get_carrier(name)
        try:
            updated = msgspec.convert(
                {**msgspec.to_builtins(current), **changes, "updated_at": self._clock()}, Carrier
            )
        except msgspec.ValidationError as exc:
            raise _invalid(exc) from None
        saved = await self._store.update_carrier(check_carrier(updated))
        await self._audit(
            actor, "carrier.edit", name, **{k: v for k, v in changes.items() if k != "password"}
        )
        await self._announce("carrier", name)
        return saved

    async def remove(self, actor: str, name: str) -> None:
        await self._store.remove_carrier(name)
        await self._audit(actor, "carrier.remove", name)
        await self._announce("carrier", name)

    async def list_all(self) -> list[dict[str, Any]]:
        return [carrier_body(c, self._health(c.name)) for c in await self._store.list_carriers()]

    async def show(self, name: str) -> dict[str, Any]:
        carrier = await self._store.get_carrier(name)
        body = carrier_body(carrier, self._health(name))
        body["rates"] = [msgspec.to_builtins(r) for r in await self._store.list_rates(name)]
        return body

    async def test(self, name: str) -> dict[str, Any]:
        return await self._tester(await self._store.get_carrier(name))

    # ---- rates and MNP -------------------------------------------------------------------------------
    async def set_rate(
        self, actor: str, carrier: str, prefix: str, mccmnc: str | None, price: float, currency: str
    ) -> RateRow:
        await self._store.get_carrier(carrier)
        row = _rate_row(carrier, prefix, mccmnc, price, currency)
        await self._store.set_rate(row)
        await self._audit(
            actor,
            "rate.set",
            carrier,
            prefix=row.prefix,
            mccmnc=row.mccmnc,
            price=price,
            currency=row.currency,
        )
        await self._announce("rates", carrier)
        return row

    async def import_rates(self, actor: str, csv_text: str, *, replace: bool) -> int:
        rows = []
        for number, line in enumerate(csv_text.splitlines(), start=1):
            cells = [c.strip() for c in line.split(",")]
            if not line.strip() or line.lstrip().startswith("#") or cells[0] == "carrier":
                continue
            if len(cells) != 5:
                raise InvalidInput("csv", f"line {number}: expected carrier,prefix,mccmnc,price,currency")
            try:
                rows.append(_rate_row(cells[0], cells[1], cells[2] or None, float(cells[3]), cells[4]))
            except (InvalidInput, ValueError) as exc:
                raise InvalidInput("csv", f"line {number}: {exc}") from None
        count = await self._store.import_rates(rows, replace=replace)
        await self._audit(actor, "rate.import", "rates", count=count, replace=replace)
        await self._announce("rates", "*")
        return count

    async def rates(self, carrier: str | None) -> list[RateRow]:
        return await self._store.list_rates(carrier)

    async def import_mnp(self, actor: str, csv_text: str, *, replace: bool) -> int:
        records = parse_mnp_csv(csv_text)
        now = self._clock()
        rows = [
            MnpEntry(number_or_prefix=r.prefix, mccmnc=r.mccmnc, carrier_name=r.carrier_name, updated_at=now)
            for r in records
        ]
        count = await self._store.import_mnp(rows, replace=replace)
        self.planner.forget()
        await self._audit(actor, "mnp.import", "mnp", count=count, replace=replace)
        await self._announce("mnp", "*")
        return count

    async def explain(self, number: str) -> dict[str, Any]:
        return plan_body(await self.planner.plan(number))


def _invalid(exc: msgspec.ValidationError) -> InvalidInput:
    """msgspec's "Expected ... - at `$.window`" as an InvalidInput naming the field."""
    message = str(exc)
    found = re.search(r" - at `\$\.(\w+)", message)
    missing = re.search(r"missing required field `(\w+)`", message)
    field = found[1] if found else (missing[1] if missing else "carrier")
    return InvalidInput(field, message.split(" - at ")[0])


def _rate_row(carrier: str, prefix: str, mccmnc: str | None, price: float, currency: str) -> RateRow:
    if price < 0 or price != price:
        raise InvalidInput("price", "must be 0 or more")
    if not re.fullmatch(r"[A-Z]{3}", currency.upper()):
        raise InvalidInput("currency", "an ISO 4217 code such as EUR or DKK")
    digits = number_digits(prefix, "prefix") if prefix.strip("+") else ""
    return RateRow(
        carrier=carrier,
        prefix=digits,
        mccmnc=normalize_mccmnc(mccmnc) if mccmnc else None,
        price=price,
        currency=currency.upper(),
    )
