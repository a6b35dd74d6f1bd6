"""L3 with two gateway workers: the tenant's limit is shared, whichever worker its requests reach.

Two real gateways (workers 0 and 1 of `[gateway.rest] workers = 2`) on one nats-server and store,
each behind its own HTTP server, lease from the tenant's bucket in JetStream KV."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from appliance.daemons.gateway import assemble
from appliance.daemons.http import HttpServer, bind_tcp
from tests.integration.gateway_harness import Harness, gateway_harness

SMS = msgspec.json.encode({"to": "+4523456789", "channel": "sms", "body": "Your order has shipped"})


@pytest.fixture
async def two(tmp_path: Path, nats_server: str) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    async with gateway_harness(tmp_path, nats_server, "[gateway.rest]\nworkers = 2\n") as gw:
        second = await assemble(gw.config, gw.store, gw.nats, worker=1)
        server = HttpServer(second.asgi, [bind_tcp("127.0.0.1:0", key="test")])
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
                yield gw, client
        finally:
            await server.stop()
            await second.close()


async def _post(client: httpx.AsyncClient, key: str) -> int:
    response = await client.post("/v1/messages", content=SMS, headers={"Authorization": f"Bearer {key}"})
    return response.status_code


async def test_one_worker_grants_the_whole_burst_not_its_share(
    two: tuple[Harness, httpx.AsyncClient],
) -> None:
    gw, _ = two
    _, key = await gw.tenant("acme", rate_limit=1, burst=6)
    started = time.monotonic()
    statuses = [(await gw.post(key, msgspec.json.decode(SMS))).status_code for _ in range(10)]
    refilled = math.floor(time.monotonic() - started)  # 1 token a second (a slow machine may refill)
    # `share()` gave each of two workers half the burst (3); the shared bucket gives this one all 6
    assert 6 <= statuses.count(202) <= 6 + refilled


async def test_two_workers_together_never_exceed_the_burst(
    two: tuple[Harness, httpx.AsyncClient],
) -> None:
    gw, other = two
    _, key = await gw.tenant("acme", rate_limit=1, burst=6)
    statuses = []
    started = time.monotonic()
    for _ in range(8):
        statuses.append((await gw.post(key, msgspec.json.decode(SMS))).status_code)
        statuses.append(await _post(other, key))
    refilled = math.floor(time.monotonic() - started)
    assert 6 <= statuses.count(202) <= 6 + refilled  # not 12: each worker did not get a whole bucket
    limited = await gw.post(key, msgspec.json.decode(SMS))
    assert limited.status_code == 429
    assert limited.json()["error"]["layer"] == "L3"
    assert limited.headers["retry-after"] == "1"
