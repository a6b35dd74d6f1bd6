"""REST ingest throughput: POST /v1/messages against a real appliance, from a separate process.

Starts hermesd on free ports in a temp dir, creates a tenant without limits, drives the REST API with
64 keep-alive connections for `--seconds`, then checks that the MESSAGES stream holds exactly as many
messages as there were 202s (per message for the batch run). Runs single messages and batches of
`--batch`, in the durability modes asked for. Prints one JSON object.

    .venv/bin/python bench/ingest.py [--seconds 30] [--modes process,power] [--workers 1]
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


def measure(mode: str, workers: int, seconds: float, connections: int, batch: int) -> dict[str, Any]:
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
        for label, bodies, per_request in (("single", singles, 1), (f"batch{batch}", batches, batch)):
            before = appliance.stream_messages("MESSAGES")
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                outcome = pool.apply(_drive, ((appliance.rest_port, key, bodies, connections, seconds),))
            ok_status = 202 if per_request == 1 else 207
            ok = outcome["statuses"].get(ok_status, 0)
            time.sleep(2.0 if mode == "power" else 0.5)  # power mode: let the relay finish
            in_stream = appliance.stream_messages("MESSAGES") - before
            results[label] = {
                "requests_per_s": round(sum(outcome["statuses"].values()) / outcome["elapsed_s"], 1),
                "accepted_per_s": round(ok * per_request / outcome["elapsed_s"], 1),
                "p50_ms": round(outcome["p50_ms"], 2),
                "p99_ms": round(outcome["p99_ms"], 2),
                "errors": sum(v for k, v in outcome["statuses"].items() if k != ok_status),
                "accepted": ok * per_request,
                "in_messages_stream": in_stream,
                "all_accepted_are_in_stream": in_stream == ok * per_request,
            }
        return results
    finally:
        appliance.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--modes", default="process,power")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "bench": "ingest",
        "seconds": args.seconds,
        "connections": args.connections,
        "gateway_workers": args.workers,
        "machine": machine(),
    }
    for mode in args.modes.split(","):
        report[mode] = measure(mode, args.workers, args.seconds, args.connections, args.batch)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
