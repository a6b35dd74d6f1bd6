"""The simulator daemon: a simulated SMSC inside the appliance, so a message can really travel on a
fresh machine (`make run`). Off unless `[simulator] smsc_listen` is set; never for real traffic.

It registers itself as carrier `sim` (an aggregator with a catch-all rate) when that carrier does not
exist yet, and announces it, so the smpp daemon binds to it like to any carrier.
"""

from __future__ import annotations

import time

from appliance.bus.connection import close_bus, connect
from appliance.bus.streams import REGISTRY_CHANGED
from appliance.daemons.http import bind_tcp
from appliance.daemons.runtime import DaemonContext
from appliance.errors import NotFound
from appliance.sim.smsc import SimOptions, SmscSimulator
from appliance.store import Carrier, RateRow, open_store

CARRIER = "sim"
SYSTEM_ID = "hermes"
PASSWORD = "sim"


async def serve(ctx: DaemonContext) -> None:
    section = ctx.config.simulator
    host_text, _, port_text = section.smsc_listen.rpartition(":")
    host, port = host_text or "127.0.0.1", int(port_text)  # carriers need an address to dial, not 0.0.0.0
    bind_tcp(section.smsc_listen, key="simulator.smsc_listen").close()  # a taken port fails loudly, by name
    simulator = SmscSimulator(
        SimOptions(
            system_id=SYSTEM_ID,
            password=PASSWORD,
            dlr_delay_ms=section.dlr_delay_ms,
            fail_rate=section.fail_rate,
            window=100,
        ),
        host=host,
        port=port,
    )
    await simulator.start()
    try:
        if section.register_carrier:
            await _register(ctx, host, port)
        ctx.ready(f"simulated SMSC on {section.smsc_listen}")
        await ctx.stopping.wait()
    finally:
        await simulator.close()


async def _register(ctx: DaemonContext, host: str, port: int) -> None:
    store = await open_store(ctx.config.store)
    try:
        try:
            await store.get_carrier(CARRIER)
            return
        except NotFound:
            pass
        now = time.time()
        await store.add_carrier(
            Carrier(
                name=CARRIER,
                kind="aggregator",
                host=host,
                port=port,
                system_id=SYSTEM_ID,
                password=PASSWORD,
                connections=1,
                window=50,
                created_at=now,
                updated_at=now,
            )
        )
        await store.set_rate(RateRow(carrier=CARRIER, prefix="", mccmnc=None, price=0.01, currency="EUR"))
        ctx.log.info("registered the simulator as carrier 'sim'", action="simulator.registered")
    finally:
        await store.close()
    nats = await connect(ctx.config, name="simulator")
    try:
        await nats.publish(REGISTRY_CHANGED, b'{"kind": "carrier", "id": "sim"}')
    finally:
        await close_bus(nats)
