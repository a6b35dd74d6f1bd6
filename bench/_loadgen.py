"""A lean HTTP/1.1 load generator (keep-alive, one request in flight per connection), run in its
own process so that it is measured apart from the appliance. Plain asyncio streams on uvloop:
httpx costs more CPU per request than the gateway does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvloop


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def run(
    host: str, port: int, api_key: str, bodies: list[bytes], connections: int, seconds: float
) -> dict[str, Any]:
    """Each connection cycles through `bodies` from its own offset (distinct recipients defeat caches)."""
    requests = [
        (
            f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def main() -> float:
        started = time.monotonic()
        deadline = started + seconds
        step = max(len(requests) // connections, 1)
        await asyncio.gather(
            *(
                _connection(host, port, requests, n * step, deadline, latencies, statuses)
                for n in range(connections)
            )
        )
        return time.monotonic() - started

    elapsed = uvloop.run(main())
    latencies.sort()
    return {
        "elapsed_s": elapsed,
        "statuses": statuses,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }
