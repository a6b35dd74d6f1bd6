"""Carriers, rates, MNP and route explanations through the admin API, on both store backends; the
bind test against the carrier simulator over real TCP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from appliance.config.schema import TiersSection
from appliance.daemons.admin.app import create_admin_app
from appliance.daemons.admin.carrier_routes import bind_test
from appliance.daemons.admin.carriers import CarrierService
from appliance.daemons.admin.registry import RegistryService
from appliance.services.carrier_health import HealthBoard
from appliance.services.route_planner import RoutePlanner
from appliance.store import FullStore

Client = AsyncTestClient[Any]
TELIA = {
    "name": "telia_dk",
    "kind": "direct",
    "host": "127.0.0.1",
    "port": 2776,
    "system_id": "hermes",
    "password": "pw",
    "mccmnc_list": ["23801"],
    "connections": 2,
    "window": 50,
}
AGG = {**TELIA, "name": "agg", "kind": "aggregator", "mccmnc_list": []}


class Board(HealthBoard):
    """The health board, fed directly instead of from the bus."""

    def report_for(self, carrier: str, report: dict[str, Any]) -> None:
        self.receive(f"hermes.smpp.health.{carrier}", msgspec.json.encode(report))


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
async def admin(store: FullStore, board: Board) -> AsyncIterator[Client]:
    async def announce(kind: str, ident: str) -> None:
        return None

    registry = RegistryService(store, node_secret=b"s" * 32, tiers=TiersSection())
    planner = RoutePlanner(store, board.health)
    carriers = CarrierService(store, announce=announce, health=board, planner=planner, tester=bind_test)
    async with AsyncTestClient(app=create_admin_app(registry, _status, carriers=carriers)) as client:
        yield client


async def _status() -> dict[str, Any]:
    return {}


async def test_carrier_lifecycle_never_shows_the_password(admin: Client) -> None:
    created = await admin.post("/v1/carriers", json=TELIA)
    assert created.status_code == 201, created.text
    assert "password" not in created.json()
    assert created.json()["mccmnc_list"] == ["238-01"]
    assert (await admin.post("/v1/carriers", json=TELIA)).status_code == 409
    listed = (await admin.get("/v1/carriers")).json()
    assert [c["name"] for c in listed] == ["telia_dk"]
    assert "password" not in str(listed)
    edited = await admin.patch("/v1/carriers/telia_dk", json={"window": 100, "enabled": False})
    assert (edited.json()["window"], edited.json()["enabled"]) == (100, False)
    assert (await admin.patch("/v1/carriers/telia_dk", json={"name": "x"})).status_code == 422
    assert (await admin.delete("/v1/carriers/telia_dk")).status_code == 200
    assert (await admin.get("/v1/carriers/telia_dk")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": 70000}, "port"),
        ({"name": "Bad Name"}, "name"),
        ({"bind_type": "both"}, "bind_type"),
        ({"window": 0}, "window"),
        ({"system_id": "x" * 16}, "system_id"),
        ({"kind": "cheap"}, "kind"),
    ],
)
async def test_bad_carrier_fields_are_422(admin: Client, change: dict[str, Any], field: str) -> None:
    response = await admin.post("/v1/carriers", json={**TELIA, **change})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field


async def test_route_explain_prefers_a_healthy_direct_carrier_and_falls_back(
    admin: Client, board: Board
) -> None:
    await admin.post("/v1/carriers", json=TELIA)
    await admin.post("/v1/carriers", json=AGG)
    await admin.post(
        "/v1/rates", json={"carrier": "telia_dk", "prefix": "45", "price": 0.20, "currency": "DKK"}
    )
    await admin.post("/v1/rates", json={"carrier": "agg", "prefix": "45", "price": 0.15, "currency": "DKK"})
    imported = await admin.post("/v1/mnp/import", json={"csv": "4523,238-01,TDC\n4528,238-02,Telenor\n"})
    assert imported.json() == {"imported": 2}
    board.report_for("telia_dk", {"binds_up": 2, "window_free": 100, "error_rate": 0.0})
    board.report_for("agg", {"binds_up": 1, "window_free": 10, "error_rate": 0.0})
    direct = (await admin.get("/v1/routes/explain", params={"number": "+4523456789"})).json()
    assert direct["lookup"]["mccmnc"] == "238-01"
    assert direct["chosen"] == "telia_dk"
    assert direct["fallbacks"] == ["agg"]
    assert any("telia_dk" in line for line in direct["explanation"])
    other_network = (await admin.get("/v1/routes/explain", params={"number": "+4528123456"})).json()
    assert other_network["chosen"] == "agg"
    board.report_for("telia_dk", {"binds_up": 0, "window_free": 0})
    down = (await admin.get("/v1/routes/explain", params={"number": "+4523456789"})).json()
    assert down["chosen"] == "agg"
    assert any("down" in c["verdict"] for c in down["candidates"] if c["carrier"] == "telia_dk")
    assert (await admin.get("/v1/routes/explain", params={"number": "+12"})).status_code == 422


async def test_rate_and_mnp_imports_are_all_or_nothing(admin: Client) -> None:
    await admin.post("/v1/carriers", json=TELIA)
    bad = await admin.post("/v1/rates/import", json={"csv": "telia_dk,45,,0.2,DKK\ntelia_dk,46,,x,DKK\n"})
    assert bad.status_code == 422
    assert "line 2" in bad.json()["error"]["message"]
    assert (await admin.get("/v1/rates")).json() == []
    good = await admin.post(
        "/v1/rates/import",
        json={
            "csv": "carrier,prefix,mccmnc,price,currency\ntelia_dk,45,238-01,0.2,DKK\ntelia_dk,46,,0.3,SEK\n"
        },
    )
    assert good.json() == {"imported": 2}
    assert (await admin.post("/v1/mnp/import", json={"csv": "45x,238-01\n"})).status_code == 422


async def test_bind_test_against_the_simulator_and_a_wrong_password(admin: Client) -> None:
    # the simulator runs as its own process, as operators run it (`hermesctl sim smsc`)
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance.sim.smsc",
            "--port",
            "0",
            "--system-id",
            "hermes",
            "--password",
            "pw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert simulator.stdout is not None
        listening = json.loads(simulator.stdout.readline())["listening"]
        host, _, port_text = listening.rpartition(":")
        port = int(port_text)
        await admin.post("/v1/carriers", json={**TELIA, "host": host, "port": port})
        ok = (await admin.post("/v1/carriers/telia_dk/test")).json()
        assert ok["ok"] is True
        assert ok["enquire_link_ms"] >= 0
        await admin.patch("/v1/carriers/telia_dk", json={"password": "wrong"})
        refused = (await admin.post("/v1/carriers/telia_dk/test")).json()
        assert (refused["ok"], refused["stage"], refused["error"]) == (False, "bind", "ESME_RBINDFAIL")
    finally:
        simulator.terminate()
        simulator.wait(10)
        if simulator.stdout is not None:
            simulator.stdout.close()
