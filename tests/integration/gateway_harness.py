"""An in-process gateway on a real nats-server and a real SQLite store, served by uvicorn on a free
loopback port and driven over real HTTP (the app shares the test's event loop, as in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nats.aio.client import Client as NatsClient

from appliance.bus.streams import ensure_streams
from appliance.config import Config, parse_config
from appliance.daemons.admin.registry import RegistryService
from appliance.daemons.gateway import Gateway, assemble
from appliance.daemons.http import HttpServer, bind_tcp
from appliance.node_secret import ensure_node_secret, load_node_secret
from appliance.store import FullStore, open_store


@dataclass
class Harness:
    config: Config
    store: FullStore
    nats: NatsClient
    gateway: Gateway
    admin: RegistryService
    client: httpx.AsyncClient

    async def tenant(self, name: str, **edits: Any) -> tuple[str, str]:
        """A new tenant (id, api key), with optional limit edits applied."""
        tenant, _, api_key = await self.admin.add_tenant(
            "test", name=name, tier="starter", email=f"ops@{name}.test"
        )
        if edits:
            await self.admin.edit_tenant("test", tenant.id, **edits)
            self.gateway.apply_change("tenant", tenant.id)
        return tenant.id, api_key

    async def post(self, api_key: str | None, body: Any, **headers: str) -> Any:
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        return await self.client.post(
            "/v1/messages", content=content, headers={"Content-Type": "application/json", **headers}
        )

    async def stream_count(self, stream: str) -> int:
        info = await self.nats.jetstream().stream_info(stream)
        return int(info.state.messages)


@asynccontextmanager
async def gateway_harness(tmp_path: Path, nats_url: str, extra_toml: str = "") -> AsyncIterator[Harness]:
    text = f'[appliance]\ndata_dir = "{tmp_path / "var"}"\nnode_name = "t"\n[nats]\nurl = "{nats_url}"\n'
    config = parse_config(
        text + extra_toml,
        file=str(tmp_path / "hermes.toml"),
    )
    ensure_node_secret(config.appliance.secret_file)
    store = await open_store(config.store)
    await store.migrate()
    nats = NatsClient()
    await nats.connect(servers=[nats_url])
    try:
        await ensure_streams(nats.jetstream(), backlog_max_messages=config.nats.backlog_max_messages)
        gateway = await assemble(config, store, nats)
        admin = RegistryService(
            store, node_secret=load_node_secret(config.appliance.secret_file), tiers=config.tiers
        )
        server = HttpServer(gateway.asgi, [bind_tcp("127.0.0.1:0", key="test")])
        await server.start()
        port = server.port
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield Harness(config, store, nats, gateway, admin, client)
        finally:
            await server.stop()
            await gateway.close()
    finally:
        await nats.close()
        await store.close()
