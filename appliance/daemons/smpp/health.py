"""Each carrier's bind health on core NATS, for the router's capacity checks and `hermesctl carrier list`.

Every `interval_s` the snapshot of every pool (`CarrierPool.health()`: each connection's state
`bound`/`connecting`/`down`, in-flight against the window, TPS used, latency, error rate, DLR rate)
goes out as JSON on `hermes.smpp.health.<carrier>`. Core NATS, not JetStream: it is a heartbeat, and
a reader that missed one waits for the next; silence for a few intervals means the daemon is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import msgspec
from nats.aio.client import Client as NatsClient

from appliance.daemons.smpp.pool import CarrierPool
from appliance.logs import get_logger

HEALTH_PREFIX = "hermes.smpp.health."
log = get_logger("hermes.smpp")


def health_subject(carrier: str) -> str:
    return HEALTH_PREFIX + carrier


async def publish_health(nats: NatsClient, pools: Iterable[CarrierPool]) -> None:
    """One round: every pool's snapshot (a publish that fails is skipped; the next round tries again)."""
    for pool in list(pools):
        try:
            await nats.publish(health_subject(pool.name), msgspec.json.encode(pool.health()))
        except Exception as exc:
            log.debug("health not published", carrier=pool.name, error=repr(exc))


async def report_health(
    nats: NatsClient, pools: Callable[[], Iterable[CarrierPool]], interval_s: float, stopping: asyncio.Event
) -> None:
    """Publish a round every `interval_s` until `stopping` is set."""
    while not stopping.is_set():
        await publish_health(nats, pools())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stopping.wait()
