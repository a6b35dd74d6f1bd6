"""The router: HTTP HLR lookups against a loopback HLR, and route requests over a real nats-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from nats.aio.client import Client as NatsClient

from appliance.bus.streams import ROUTE_MANY_SUBJECT, ROUTE_SUBJECT
from appliance.config.schema import Config, NatsSection, StoreSection
from appliance.daemons import router
from appliance.daemons.runtime import DaemonContext
from appliance.services.hlr import HttpHlrProvider
from appliance.services.route_planner import RoutePlan, RoutePlanner
from appliance.store import Carrier, CarrierKind, FullStore, MnpEntry, RateRow, open_store


class Hlr:
    """A loopback HTTP HLR that answers per number, or fails on purpose."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readuntil(b"\r\n")).decode()
        await reader.readuntil(b"\r\n\r\n")
        number = line.split("msisdn=")[1].split()[0]
        self.asked.append(number)
        status, body = self.answers.get(number, (404, b"{}"))
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(body)) + body
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/lookup?msisdn={{number}}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FullStore]:
    store = await open_store(StoreSection(backend="sqlite", path=str(tmp_path / "h.db")))
    await store.migrate()
    now = time.time()
    routes: tuple[tuple[str, CarrierKind, tuple[str, ...]], ...] = (
        ("tdc", "direct", ("238-01",)),
        ("agg", "aggregator", ()),
    )
    for name, kind, networks in routes:
        await store.add_carrier(
            Carrier(
                name=name,
                kind=kind,
                host="127.0.0.1",
                port=2775,
                system_id="h",
                password="p",
                mccmnc_list=networks,
                created_at=now,
                updated_at=now,
            )
        )
        await store.set_rate(
            RateRow(
                carrier=name,
                prefix="45",
                mccmnc=None,
                price=0.1 if kind == "direct" else 0.05,
                currency="DKK",
            )
        )
    yield store
    await store.close()


async def test_hlr_answers_drive_the_route_and_failures_fall_back_to_the_plan(store: FullStore) -> None:
    from appliance.domain.routing import CarrierHealth

    up = CarrierHealth(binds_up=1, window_free=10)
    hlr = Hlr(
        {
            "4528123456": (200, b'{"mccmnc": "23801", "ported": true}'),
            "4528123457": (500, b"oops"),
            "4528123458": (200, b"not json"),
        }
    )
    async with hlr as url, httpx.AsyncClient() as http:
        provider = HttpHlrProvider(url, timeout_s=2.0, http=http)
        planner = RoutePlanner(store, lambda _carrier: up, hlr=provider)
        ported = await planner.plan("+4528123456")
        assert (ported.lookup.source, ported.lookup.mccmnc, ported.lookup.ported) == ("hlr", "238-01", True)
        assert ported.decision.chosen is not None
        assert ported.decision.chosen.carrier == "tdc"  # ported into the direct carrier's network
        again = await planner.plan("+4528123456")
        assert again.lookup.source == "hlr"
        assert hlr.asked.count("4528123456") == 1  # cached
        for broken in ("+4528123457", "+4528123458"):
            plan = await planner.plan(broken)
            assert plan.lookup.source == "numbering_plan"
        assert provider.failures == 2


def _chosen(plan: RoutePlan) -> str | None:
    return plan.decision.chosen.carrier if plan.decision.chosen else None


def _carrier(name: str, kind: CarrierKind) -> Carrier:
    now = time.time()
    return Carrier(
        name=name,
        kind=kind,
        host="127.0.0.1",
        port=2775,
        system_id="h",
        password="p",
        created_at=now,
        updated_at=now,
    )


async def test_a_cached_registry_is_read_again_when_forgotten_or_after_its_ttl(store: FullStore) -> None:
    from appliance.domain.routing import CarrierHealth

    up = CarrierHealth(binds_up=1, window_free=10)
    clock = [1000.0]
    planner = RoutePlanner(store, lambda _carrier: up, registry_ttl_s=10.0, clock=lambda: clock[0])
    first = await planner.plan("+4528123456")
    assert first.decision.chosen is not None and first.decision.chosen.carrier == "agg"
    assert first.lookup.source == "numbering_plan"
    await store.add_carrier(_carrier("cheap", "aggregator"))
    await store.set_rate(RateRow(carrier="cheap", prefix="4528", mccmnc=None, price=0.01, currency="DKK"))
    cached = await planner.plan("+4528123457")
    assert cached.decision.chosen is not None and cached.decision.chosen.carrier == "agg"  # not re-read yet
    planner.forget_registry()
    fresh = await planner.plan("+4528123458")
    assert fresh.decision.chosen is not None and fresh.decision.chosen.carrier == "cheap"
    assert [c.carrier for c in fresh.decision.fallbacks] == ["agg"]
    await store.set_rate(RateRow(carrier="cheap", prefix="4528", mccmnc=None, price=0.09, currency="DKK"))
    clock[0] += 9.0
    assert _chosen(await planner.plan("+4528123459")) == "cheap"
    clock[0] += 1.0
    assert _chosen(await planner.plan("+4528123460")) == "agg"
    # an MNP table that was empty is asked again once its change is announced (forget)
    await store.import_mnp([MnpEntry(number_or_prefix="4528", mccmnc="238-01", updated_at=clock[0])])
    assert (await planner.plan("+4528123461")).lookup.source == "numbering_plan"
    planner.forget()
    moved = await planner.plan("+4528123462")
    assert (moved.lookup.source, moved.lookup.mccmnc) == ("mnp_table", "238-01")
    assert moved.decision.chosen is not None and moved.decision.chosen.carrier == "tdc"


async def test_an_uncached_registry_sees_every_change_at_once(store: FullStore) -> None:
    from appliance.domain.routing import CarrierHealth

    up = CarrierHealth(binds_up=1, window_free=10)
    planner = RoutePlanner(store, lambda _carrier: up)
    assert _chosen(await planner.plan("+4528123456")) == "agg"
    await store.add_carrier(_carrier("cheap", "aggregator"))
    await store.set_rate(RateRow(carrier="cheap", prefix="4528", mccmnc=None, price=0.01, currency="DKK"))
    await store.import_mnp([MnpEntry(number_or_prefix="4528", mccmnc="238-01", updated_at=time.time())])
    plan = await planner.plan("+4528123457")
    assert plan.lookup.source == "mnp_table"
    assert plan.decision.chosen is not None and plan.decision.chosen.carrier == "tdc"
    assert [c.carrier for c in plan.decision.fallbacks] == ["cheap", "agg"]


async def test_route_requests_over_nats(store: FullStore, nats_server: str, tmp_path: Path) -> None:
    # the daemon opens its own connection to the fixture's SQLite file, as it would in hermesd
    config = Config(nats=NatsSection(url=nats_server), store=StoreSection(path=str(tmp_path / "h.db")))
    ctx = DaemonContext(config=config, name="router", worker=0)
    serving = asyncio.create_task(router.serve(ctx))
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    try:
        for _ in range(100):
            if ctx._ready:
                break
            await asyncio.sleep(0.05)
        await nats.publish("hermes.smpp.health.agg", b'{"binds_up": 1, "window_free": 5}')
        await nats.flush()
        await asyncio.sleep(0.1)
        reply = msgspec.json.decode(
            (await nats.request(ROUTE_SUBJECT, b'{"to": "+4528123456"}', timeout=5)).data
        )
        assert reply["chosen"] == "agg"  # tdc has no health report: counted as down
        assert any("down" in c["verdict"] for c in reply["candidates"] if c["carrier"] == "tdc")
        bad = msgspec.json.decode((await nats.request(ROUTE_SUBJECT, b'{"to": "12"}', timeout=5)).data)
        assert bad["error"]["code"] == "invalid_number"
        garbage = msgspec.json.decode((await nats.request(ROUTE_SUBJECT, b"{nope", timeout=5)).data)
        assert garbage["error"]["code"] == "bad_request"
        # a carrier added and announced by admin is routed to from the next request on
        await store.add_carrier(_carrier("cheap", "aggregator"))
        await store.set_rate(RateRow(carrier="cheap", prefix="4528", mccmnc=None, price=0.01, currency="DKK"))
        await nats.publish("hermes.smpp.health.cheap", b'{"binds_up": 1, "window_free": 5}')
        await nats.publish("hermes.registry.changed", b'{"kind": "carrier", "id": "cheap"}')
        await nats.flush()
        await asyncio.sleep(0.1)
        reply = msgspec.json.decode(
            (await nats.request(ROUTE_SUBJECT, b'{"to": "+4528123457"}', timeout=5)).data
        )
        assert (reply["chosen"], reply["fallbacks"]) == ("cheap", ["agg"])
        # the cascade's form: several numbers, a plan or an error for each, in order
        many = msgspec.json.decode(
            (await nats.request(ROUTE_MANY_SUBJECT, b'{"to": ["+4528123457", "12"]}', timeout=5)).data
        )
        assert [p.get("chosen") for p in many["plans"]] == ["cheap", None]
        assert many["plans"][1]["error"]["code"] == "invalid_number"
        for garbage in (b'{"to": "+4528123457"}', b"[", b'{"to": ["+1"], "x": 1}'):
            refused = msgspec.json.decode((await nats.request(ROUTE_MANY_SUBJECT, garbage, timeout=5)).data)
            assert refused["error"]["code"] == "bad_request"
    finally:
        await nats.close()
        ctx.stopping.set()
        await serving
