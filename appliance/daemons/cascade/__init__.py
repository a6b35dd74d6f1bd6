"""The cascade daemon: one state machine per message (`domain/cascade.py`), kept in JetStream.

Wiring only. Who does what:

    inputs.Inputs     the durable consumers on MESSAGES, EVENTS (executors' kinds) and TIMERS
    engine.Engine     one input through the machine: read state, route, compare-and-set, publish
    bus.cascade_state the CASCADE KV bucket (state per message in flight)

Several workers (`[cascade] workers`) share the consumers; per message, compare-and-set on the
bucket's revision keeps two workers from both moving it.
"""

from __future__ import annotations

import asyncio
import contextlib

from appliance.bus.cascade_state import StateBucket
from appliance.bus.connection import close_bus, connect
from appliance.bus.requests import Requests
from appliance.daemons.cascade.engine import Engine
from appliance.daemons.cascade.inputs import Inputs
from appliance.daemons.runtime import DaemonContext

__all__ = ["Engine", "Inputs", "serve"]


async def serve(ctx: DaemonContext) -> None:
    section = ctx.config.cascade
    nats = await connect(ctx.config, name=f"cascade.{ctx.worker}")
    try:
        js = nats.jetstream()
        requests = Requests(nats)
        await requests.start()
        engine = Engine(
            nats,
            requests,
            await StateBucket.open(js, requests),
            default_timeouts=section.timeouts(),
            route_timeout_s=section.route_timeout_s,
            finished_ttl_s=section.finished_ttl_s,
        )
        inputs = Inputs(nats, js, engine, concurrency=section.concurrency)
        runner = asyncio.create_task(inputs.run(ctx.stopping), name="cascade inputs")
        ctx.ready("driving messages")
        stopped = asyncio.create_task(ctx.stopping.wait())
        await asyncio.wait([runner, stopped], return_when=asyncio.FIRST_COMPLETED)
        ctx.log.info("cascade stopping", action="daemon.stopping", **vars(engine.counters))
        # the fetch loops end within their fetch timeout; inputs under way finish (each is a few round trips)
        try:
            async with asyncio.timeout(ctx.config.appliance.shutdown_grace_s / 2):
                await runner
        except TimeoutError:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        stopped.cancel()
    finally:
        await close_bus(nats)
