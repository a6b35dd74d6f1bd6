"""The gateway daemon: tenant-facing ingress (REST now; SMPP and SMTP servers join it later).

Wiring only: connect the bus, build the HTTP app, bind, report ready, serve until told to stop,
then stop accepting and drain.
"""

from __future__ import annotations

from appliance.bus.connection import close_bus, connect
from appliance.daemons.gateway.app import create_gateway_app
from appliance.daemons.http import HttpServer, bind_tcp
from appliance.daemons.runtime import DaemonContext


async def serve(ctx: DaemonContext) -> None:
    config = ctx.config
    nats = await connect(config, name=f"gateway.{ctx.worker}")
    try:
        sock = bind_tcp(
            config.gateway.rest.listen, key="gateway.rest.listen", reuse_port=config.gateway.rest.workers > 1
        )
        server = HttpServer(
            create_gateway_app(nats_connected=lambda: nats.is_connected, node=config.appliance.node_name),
            [sock],
        )
        await server.start()
        ctx.ready(f"REST on {config.gateway.rest.listen}")
        await ctx.stopping.wait()
        ctx.log.info("gateway stopping", action="daemon.stopping")
        await server.stop()
    finally:
        await close_bus(nats)
