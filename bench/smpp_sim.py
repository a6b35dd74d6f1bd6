"""How many submit_sm per second our SMPP client pushes through one transceiver bind to the simulator,
how many delivery receipts come back, and the p99 submit latency, on loopback.

The simulator runs in its own process (as a carrier would), started on a free port; the client keeps
`window` senders busy, each calling `SmppClient.submit`, so the window is always full but nobody
queues for room: a submit's latency is the round trip of its submit_sm. Receipts are asked for on
every message and sent by the simulator as soon as it has answered.

    .venv/bin/python bench/smpp_sim.py [--seconds 10] [--window 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time

from appliance.logs import configure_logging
from appliance.protocols.smpp.client import SmppClient
from appliance.protocols.smpp.connection import SessionConfig
from appliance.protocols.smpp.pdu import DataSm, DeliverSm


def _start_simulator(window: int) -> tuple[subprocess.Popen[str], str, int]:
    command = [sys.executable, "-m", "appliance.sim.smsc", "--host", "127.0.0.1", "--port", "0"]
    command += ["--dlr-delay-ms", "0", "--window", str(window)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit("the simulator did not start")
    host, port = json.loads(line)["listening"].rsplit(":", 1)
    return process, host, int(port)


async def _drive(host: str, port: int, seconds: float, window: int) -> dict[str, float]:
    receipts = 0
    expected = float("inf")
    all_in = asyncio.Event()

    async def on_deliver(pdu: DeliverSm | DataSm) -> None:
        nonlocal receipts
        receipts += 1
        if receipts >= expected:
            all_in.set()

    latencies: list[float] = []
    config = SessionConfig(window=window)
    client = SmppClient(host, port, system_id="bench", password="bench", config=config, on_deliver=on_deliver)
    await client.connect()
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def sender() -> None:
        clock = time.perf_counter
        while loop.time() < stop_at:
            started = clock()
            await client.submit("4512345678", "Your Hermes code is 847291", source="Hermes")
            latencies.append(clock() - started)

    started = loop.time()
    async with asyncio.TaskGroup() as tg:
        for _ in range(window):
            tg.create_task(sender())
    elapsed = loop.time() - started
    receipts_in_time = receipts
    expected = len(latencies)
    if receipts >= expected:
        all_in.set()
    with contextlib.suppress(TimeoutError):  # let the last receipts arrive before unbinding
        async with asyncio.timeout(2.0):
            await all_in.wait()
    await client.close()
    latencies.sort()
    return {
        "submit_sm_per_s": round(len(latencies) / elapsed),
        "dlr_per_s": round(receipts_in_time / elapsed),
        "p99_resp_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        "submitted": len(latencies),
        "receipts": receipts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    configure_logging(component="bench", node="bench", level="warning")
    process, host, port = _start_simulator(args.window)
    try:
        try:
            import uvloop
        except ImportError:
            loop_name = "asyncio"
            result = asyncio.run(_drive(host, port, args.seconds, args.window))
        else:
            loop_name = "uvloop"
            result = uvloop.run(_drive(host, port, args.seconds, args.window))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(
        json.dumps(
            {
                "bench": "smpp_sim",
                **result,
                "window": args.window,
                "loop": loop_name,
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
                "python": f"{platform.python_implementation()} {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
