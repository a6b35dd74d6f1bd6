"""Admin API routes for carriers, rates, MNP data and route explanations (see carriers.py)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody

from appliance.daemons.admin.carriers import CarrierService, carrier_body
from appliance.errors import InvalidInput
from appliance.protocols.smpp import EnquireLink
from appliance.protocols.smpp.client import BindError, SmppClient
from appliance.protocols.smpp.connection import SessionConfig
from appliance.store import Carrier


class RateSetting(msgspec.Struct, forbid_unknown_fields=True):
    carrier: str
    prefix: str
    price: float
    currency: str
    mccmnc: str | None = None


class CsvUpload(msgspec.Struct, forbid_unknown_fields=True):
    csv: str
    replace: bool = False


async def bind_test(carrier: Carrier) -> dict[str, Any]:
    """Bind with the carrier's credentials, send one enquire_link, unbind: what `carrier test` reports."""
    client = SmppClient(
        carrier.host,
        carrier.port,
        system_id=carrier.system_id,
        password=carrier.password,
        bind_type=carrier.bind_type,
        system_type=carrier.system_type,
        config=SessionConfig(enquire_link_s=None, bind_timeout_s=10.0),
    )
    started = time.perf_counter()
    try:
        await client.connect()
    except BindError as exc:
        return {"carrier": carrier.name, "ok": False, "stage": "bind", "error": exc.status_name}
    except (OSError, TimeoutError) as exc:
        return {
            "carrier": carrier.name,
            "ok": False,
            "stage": "connect",
            "error": str(exc) or type(exc).__name__,
        }
    bound_ms = (time.perf_counter() - started) * 1000
    try:
        sent = time.perf_counter()
        await client.request(EnquireLink(sequence_number=0), timeout_s=10.0)  # the session numbers it
        rtt_ms = (time.perf_counter() - sent) * 1000
    except Exception as exc:
        return {
            "carrier": carrier.name,
            "ok": False,
            "stage": "enquire_link",
            "error": str(exc) or type(exc).__name__,
        }
    finally:
        await client.close()
    return {
        "carrier": carrier.name,
        "ok": True,
        "bind_ms": round(bound_ms, 2),
        "enquire_link_ms": round(rtt_ms, 2),
        "smsc_system_id": client.smsc_system_id,
    }


def _actor(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("actor", "local"))


def carrier_handlers(service: CarrierService) -> list[HTTPRouteHandler]:
    @get("/v1/carriers")
    async def list_carriers() -> list[dict[str, Any]]:
        return await service.list_all()

    @post("/v1/carriers", status_code=201)
    async def add_carrier(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return carrier_body(await service.add(_actor(request), data), None)

    @get("/v1/carriers/{name:str}")
    async def show_carrier(name: FromPath[str]) -> dict[str, Any]:
        return await service.show(name)

    @patch("/v1/carriers/{name:str}", status_code=200)
    async def edit_carrier(
        request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[dict[str, Any]]
    ) -> dict[str, Any]:
        return carrier_body(await service.edit(_actor(request), name, data), None)

    @delete("/v1/carriers/{name:str}", status_code=200)
    async def remove_carrier(request: Request[Any, Any, Any], name: FromPath[str]) -> dict[str, Any]:
        await service.remove(_actor(request), name)
        return {"removed": name}

    @post("/v1/carriers/{name:str}/test", status_code=200)
    async def test_carrier(name: FromPath[str]) -> dict[str, Any]:
        return await service.test(name)

    @post("/v1/rates", status_code=200)
    async def set_rate(request: Request[Any, Any, Any], data: JSONBody[RateSetting]) -> dict[str, Any]:
        row = await service.set_rate(
            _actor(request), data.carrier, data.prefix, data.mccmnc, data.price, data.currency
        )
        return dict(msgspec.to_builtins(row))

    @get("/v1/rates")
    async def list_rates(carrier: FromQuery[str | None] = None) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(r) for r in await service.rates(carrier)]

    @post("/v1/rates/import", status_code=200)
    async def import_rates(request: Request[Any, Any, Any], data: JSONBody[CsvUpload]) -> dict[str, Any]:
        return {"imported": await service.import_rates(_actor(request), data.csv, replace=data.replace)}

    @post("/v1/mnp/import", status_code=200)
    async def import_mnp(request: Request[Any, Any, Any], data: JSONBody[CsvUpload]) -> dict[str, Any]:
        return {"imported": await service.import_mnp(_actor(request), data.csv, replace=data.replace)}

    @get("/v1/routes/explain")
    async def explain_route(number: FromQuery[str]) -> dict[str, Any]:
        if not number:
            raise InvalidInput("number", "required")
        return await service.explain(number)

    return [
        list_carriers,
        add_carrier,
        show_carrier,
        edit_carrier,
        remove_carrier,
        test_carrier,
        set_rate,
        list_rates,
        import_rates,
        import_mnp,
        explain_route,
    ]
