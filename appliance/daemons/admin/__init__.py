"""The admin daemon: the registry API on the admin unix socket (and optional TCP listener).

Wiring only: open the store and the bus, build the registry service and the HTTP app, bind,
report ready, serve until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.connection import close_bus, connect
from appliance.bus.replay import republish_accepted
from appliance.bus.streams import REGISTRY_CHANGED, STREAMS
from appliance.config.schema import Config
from appliance.daemons.admin.app import create_admin_app
from appliance.daemons.admin.carrier_routes import bind_test
from appliance.daemons.admin.carriers import CarrierService
from appliance.daemons.admin.messages import MessageService
from appliance.daemons.admin.registry import RegistryService
from appliance.daemons.admin.smpp_sessions import SmppSessionsService, nats_gatherer
from appliance.daemons.http import HttpServer, bind_tcp, bind_unix
from appliance.daemons.runtime import DaemonContext
from appliance.node_secret import load_node_secret
from appliance.services.carrier_health import HEALTH_SUBJECT_ALL, HealthBoard
from appliance.services.route_planner import planner_from_config
from appliance.store import Store, open_store


async def _node_status(config: Config, nats: NatsClient, store: Store) -> dict[str, Any]:
    path = Path(config.appliance.data_dir) / "run" / "status.json"
    try:
        node: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        node = {"node": config.appliance.node_name, "error": f"supervisor status unavailable: {exc}"}
    nats_status: dict[str, Any] = {
        "connected": nats.is_connected,
        "url": nats.connected_url.geturl() if nats.connected_url else None,
        "streams": {},
    }
    try:
        js = nats.jetstream()
        for stream in STREAMS:
            assert stream.name is not None
            info = await asyncio.wait_for(js.stream_info(stream.name), 2.0)
            nats_status["streams"][stream.name] = {"messages": info.state.messages, "bytes": info.state.bytes}
        nats_status["healthy"] = nats.is_connected
    except Exception as exc:
        nats_status["healthy"] = False
        nats_status["error"] = str(exc) or type(exc).__name__
    store_status: dict[str, Any] = {"backend": config.store.backend}
    try:
        await asyncio.wait_for(store.ping(), 2.0)
        store_status.update(healthy=True, schema_version=await store.schema_version())
    except Exception as exc:
        store_status.update(healthy=False, error=str(exc) or type(exc).__name__)
    children = node.get("children", [])
    healthy = (
        bool(node.get("ready"))
        and all(c.get("healthy") for c in children)
        and nats_status["healthy"]
        and store_status["healthy"]
    )
    return {**node, "healthy": healthy, "nats": nats_status, "store": store_status}


async def serve(ctx: DaemonContext) -> None:
    config = ctx.config
    store = await open_store(config.store)
    nats = await connect(config, name="admin")
    http = httpx.AsyncClient()
    servers: list[HttpServer] = []
    try:

        async def announce(kind: str, ident: str) -> None:
            with contextlib.suppress(Exception):
                await nats.publish(REGISTRY_CHANGED, msgspec.json.encode({"kind": kind, "id": ident}))

        registry = RegistryService(
            store,
            node_secret=load_node_secret(config.appliance.secret_file),
            tiers=config.tiers,
            announce=announce,
        )

        async def status() -> dict[str, Any]:
            return await _node_status(config, nats, store)

        health = HealthBoard()

        async def on_health(msg: Msg) -> None:
            health.receive(msg.subject, msg.data)

        await nats.subscribe(HEALTH_SUBJECT_ALL, cb=on_health)
        planner = planner_from_config(config.router, store, health.health, http)
        carriers = CarrierService(store, announce=announce, health=health, planner=planner, tester=bind_test)
        js = nats.jetstream()

        async def republish(tenant_id: str, message_id: str, attempt_base: int, payload: bytes) -> bool:
            return await republish_accepted(js, tenant_id, message_id, attempt_base, payload)

        messages = MessageService(store, republish=republish)
        smpp_sessions = SmppSessionsService(registry, nats_gatherer(nats))
        socket_app = create_admin_app(
            registry, status, carriers=carriers, messages=messages, smpp_sessions=smpp_sessions
        )
        servers.append(HttpServer(socket_app, [bind_unix(config.admin.socket)]))
        if config.admin.listen:
            tcp = bind_tcp(config.admin.listen, key="admin.listen")
            tcp_app = create_admin_app(
                registry,
                status,
                carriers=carriers,
                require_token=True,
                messages=messages,
                smpp_sessions=smpp_sessions,
            )
            servers.append(HttpServer(tcp_app, [tcp]))
        for server in servers:
            await server.start()
        ctx.ready(f"admin API on {config.admin.socket}")
        await ctx.stopping.wait()
    finally:
        for server in servers:
            await server.stop()
        with contextlib.suppress(OSError):
            os.unlink(config.admin.socket)
        await close_bus(nats)
        await http.aclose()
        await store.close()
