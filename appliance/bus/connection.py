"""Connecting daemons to NATS with the options every one of them wants."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client as NatsClient

from appliance.bus.embedded import embedded_url
from appliance.config.schema import Config
from appliance.errors import BusError


async def connect(config: Config, *, name: str, connect_timeout_s: int = 5) -> NatsClient:
    """A client that reconnects forever once connected, and fails fast on the first connect."""
    client = NatsClient()
    try:
        await client.connect(
            servers=[embedded_url(config)],
            name=f"hermes-{name}@{config.appliance.node_name}",
            connect_timeout=connect_timeout_s,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
        )
    except Exception as exc:
        raise BusError(f"cannot connect to NATS at {embedded_url(config)}: {exc}") from exc
    return client


async def close_bus(client: NatsClient, *, timeout_s: float = 3.0) -> None:
    """Drain (flush what we published, finish handlers) within a bound, else just close.

    Bounded because the server may be gone: after hermesd dies, nats-server dies with it, and an
    unbounded drain would keep a daemon alive forever.
    """
    if client.is_closed:
        return
    try:
        async with asyncio.timeout(timeout_s):
            await client.drain()
    except Exception:  # best effort on the way out
        with contextlib.suppress(Exception):
            await client.close()
