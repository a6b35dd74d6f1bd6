"""REST ingest throughput: POST /v1/messages against a real appliance, from a separate process.

Starts hermesd on free ports in a temp dir, creates a tenant without limits, drives the REST API with
64 keep-alive connections for `--seconds` (8 for the batch run), then waits for the MESSAGES stream to
have stored exactly as many messages as were accepted (in power mode the relay may still be draining
the intake log: `relay_drain_s`). Stored, not held: cascade consumes MESSAGES (a work queue) while
the benchmark runs, so the count is the growth of the stream's last sequence number. Runs single
messages and batches of `--batch`, in the durability modes asked for. Prints one JSON object.
Two gateway workers unless told otherwise: on a 2-core machine they accept about twice what one
does. `cpu_us_per_accepted` says where the CPU went, per process, per accepted message.

    .venv/bin/python bench/ingest.py [--seconds 30] [--modes process,power] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _appliance import Appliance, machine
from _loadgen import run

DISTINCT = 200_000  # more recipients than any run sends, so no number is validated from cache


def _sms(n: int) -> dict[str, str]:
    """Danish mobile numbers in +45 28xxxxxx: all a million of them are valid."""
    return {"to": f"+4528{n % 1_000_000:06d}", "channel": "sms", "body": "Your order has shipped"}


def _drive(args: tuple[int, str, list[bytes], int, float]) -> dict[str, Any]:
    port, key, bodies, connections, seconds = args
    return run("127.0.0.1", port, key, bodies, connections, seconds)


def measure(
    mode: str, workers: int, seconds: float, connections: int, batch: int, batch_connections: int
) -> dict[str, Any]:
    appliance = Appliance(durability=mode, rest_workers=workers)
    try:
        key = appliance.unlimited_tenant("bench")
        results: dict[str, Any] = {}
        offset = random.randrange(1_000_000)
        singles = [json.dumps(_sms(offset + n)).encode() for n in range(DISTINCT)]
        batches = [
            json.dumps({"messages": [_sms(offset + n * batch + i) for i in range(batch)]}).encode()
            for n in range(DISTINCT // batch)
        ]
        for label, bodies, per_request, conns in (
            ("single", singles, 1, connections),
            (f"batch{batch}", batches, batch, batch_connections),
        ):
            before = appliance.stream_stored("MESSAGES")
            cpu_before = appliance.cpu_seconds()
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                outcome = pool.apply(_drive, ((appliance.rest_port, key, bodies, conns, seconds),))
            ok_status = 202 if per_request == 1 else 207
            ok = outcome["statuses"].get(ok_status, 0)
            drain_started = time.monotonic()
            in_stream = _settled_count(appliance, before, expected=ok * per_request)
            drain_s = time.monotonic() - drain_started
            caught_up_s = _seconds_until_taken(appliance, since=drain_started)
            cpu_after = appliance.cpu_seconds()
            results[label] = {
                "connections": conns,
                "requests_per_s": round(sum(outcome["statuses"].values()) / outcome["elapsed_s"], 1),
                "accepted_per_s": round(ok * per_request / outcome["elapsed_s"], 1),
                "p50_ms": round(outcome["p50_ms"], 2),
                "p99_ms": round(outcome["p99_ms"], 2),
                "errors": sum(v for k, v in outcome["statuses"].items() if k != ok_status),
                "accepted": ok * per_request,
                "in_messages_stream": in_stream,
                "all_accepted_are_in_stream": in_stream == ok * per_request,
                "relay_drain_s": round(drain_s, 1),
                # background daemons yield the cores to ingress (supervisor.nice): what they could not
                # take during the run, they take after it; this is how long after the load stopped
                "cascade_caught_up_s": caught_up_s,
                "daemon_restarts": appliance.restarts(),
                # CPU each process of the appliance spent per accepted message, in µs, from the start
                # of the run until cascade had taken the last of them: where the two cores went (the
                # gateway shares them with nats-server and the daemons that consume what it accepts)
                "cpu_us_per_accepted": {
                    name: round(1e6 * (used - cpu_before.get(name, 0.0)) / max(ok * per_request, 1))
                    for name, used in sorted(cpu_after.items())
                },
            }
        return results
    finally:
        appliance.stop()


def _seconds_until_taken(appliance: Appliance, *, since: float, timeout_s: float = 600.0) -> float | None:
    """Seconds from `since` until cascade has taken every message of MESSAGES; None if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if appliance.stream_held("MESSAGES") == 0:
            return round(time.monotonic() - since, 1)
        time.sleep(0.25)
    return None


def _settled_count(appliance: Appliance, before: int, *, expected: int, timeout_s: float = 300.0) -> int:
    """MESSAGES growth once the (power mode) relay has caught up: equal to `expected`, or stable."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = appliance.stream_stored("MESSAGES") - before
        if count >= expected:
            return count
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since > 10:
            return count
        time.sleep(0.5)
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--modes", default="process,power")
    parser.add_argument("--workers", type=int, default=2, help="gateway.rest.workers of the appliance")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "bench": "ingest",
        "seconds": args.seconds,
        "connections": args.connections,
        "gateway_workers": args.workers,
        "machine": machine(),
    }
    for mode in args.modes.split(","):
        report[mode] = measure(
            mode, args.workers, args.seconds, args.connections, args.batch, args.batch_connections
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
