"""Cascade capacity: 100,000 messages waiting on durable timers at once, against a real appliance.

Starts hermesd on free ports in a temp dir (two cascade workers by default), then:
1. ingest before: a short REST run (bench/ingest.py's load generator, in its own process);
2. puts `--messages` messages on MESSAGES (one `push` channel, timeout `--timeout-s`), while a stand-in
   push executor answers every dispatch `submitted` and nothing more: each message makes two
   transitions (dispatched, waiting) and then waits on its timer. Reports transitions/s;
3. the cascade processes' RSS before and after, per waiting message (target < 2 KB), and what every
   daemon spends on CPU once all of them wait;
4. ingest again with all of them waiting, to compare: msg/s, latency, and CPU per accepted message
   (the figure that holds still when other work shares the cores).
Prints one JSON object. CPU figures are per daemon (user + system seconds from /proc).

    .venv/bin/python bench/cascade.py [--messages 100000] [--ingest-seconds 6] [--timeout-s 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _appliance import Appliance, machine
from _loadgen import run

from appliance.bus.streams import accepted_subject, event_subject
from appliance.domain.events import Event
from appliance.domain.message import ChannelTarget, Message, new_message_id

TENANT = "tn_cascade_bench"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_daemon(appliance: Appliance) -> dict[str, float]:
    """CPU seconds each child has used so far (what a transition costs, whatever else shares the cores)."""
    children = appliance.ctl("status")["children"]
    return {c["name"]: _cpu_s(c["pid"]) for c in children if c["pid"]}


def _cascade_rss(appliance: Appliance) -> dict[str, int]:
    children = appliance.ctl("status")["children"]
    return {c["name"]: _rss_kib(c["pid"]) for c in children if c["name"].startswith("cascade") and c["pid"]}


def _nats_rss(appliance: Appliance) -> int:
    children = appliance.ctl("status")["children"]
    return next((_rss_kib(c["pid"]) for c in children if c["name"] == "nats" and c["pid"]), 0)


def _drive(args: tuple[int, str, list[bytes], int, float]) -> dict[str, Any]:
    port, key, bodies, connections, seconds = args
    return run("127.0.0.1", port, key, bodies, connections, seconds)


def _ingest(appliance: Appliance, key: str, seconds: float, connections: int) -> dict[str, Any]:
    offset = random.randrange(1_000_000)
    bodies = [
        json.dumps({"to": f"+4528{(offset + n) % 1_000_000:06d}", "channel": "sms", "body": "bench"}).encode()
        for n in range(50_000)
    ]
    before = _cpu_by_daemon(appliance)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        outcome = pool.apply(_drive, ((appliance.rest_port, key, bodies, connections, seconds),))
    time.sleep(3.0)  # the cascade and recorder finish what was ingested (no carrier: dead letters)
    after = _cpu_by_daemon(appliance)
    ok = outcome["statuses"].get(202, 0)
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    return {
        # CPU per accepted message holds still when other work shares the cores; msg/s does not
        "cpu_ms_per_accepted": round(sum(used.values()) * 1000 / max(ok, 1), 3),
        "gateway_cpu_ms_per_accepted": round(used.get("gateway", 0.0) * 1000 / max(ok, 1), 3),
        "accepted_per_s": round(ok / outcome["elapsed_s"], 1),
        "p50_ms": round(outcome["p50_ms"], 2),
        "p99_ms": round(outcome["p99_ms"], 2),
        "errors": sum(v for k, v in outcome["statuses"].items() if k != 202),
    }


async def _standin(client: NatsClient, stopping: asyncio.Event) -> None:
    """The push executor: every attempt is accepted (`submitted`) and never reported on again."""
    js = client.jetstream()
    sub = await js.pull_subscribe("dispatch.adapter.push", durable="bench-push", stream="DISPATCH")
    while not stopping.is_set():
        try:
            batch = await sub.fetch(500, timeout=0.3)
        except Exception:
            continue
        acks = []
        for msg in batch:
            body = msgspec.json.decode(msg.data)
            event = Event(
                kind="submitted",
                id=f"{body['message_id']}:{body['attempt']}:submitted",
                message_id=body["message_id"],
                tenant_id=body["tenant_id"],
                at=time.time(),
                data={"attempt": body["attempt"]},
            )
            acks.append(
                await js.publish_async(
                    event_subject(event.tenant_id, "submitted"),
                    msgspec.json.encode(event),
                    headers={"Nats-Msg-Id": event.id},
                )
            )
        await asyncio.gather(*acks)
        for msg in batch:
            await msg.ack()


async def _count(client: NatsClient, kind: str) -> int:
    info = await client.jetstream().stream_info("EVENTS", subjects_filter=f"evt.{TENANT}.{kind}")
    return sum((info.state.subjects or {}).values())


async def _fill(url: str, messages: int, timeout_s: float) -> dict[str, Any]:
    client = NatsClient()
    await client.connect(servers=[url])
    stopping = asyncio.Event()
    standin = asyncio.create_task(_standin(client, stopping))
    try:
        js = client.jetstream()
        started = time.monotonic()
        published = 0
        while published < messages:
            futures = []
            for _ in range(min(1000, messages - published)):
                message = Message(
                    id=new_message_id(),
                    tenant_id=TENANT,
                    origin="rest",
                    channels=(ChannelTarget(channel="push", to="device-token", timeout_s=timeout_s),),
                    created_at=time.time(),
                    body="bench",
                )
                futures.append(
                    await js.publish_async(
                        accepted_subject(TENANT),
                        msgspec.json.encode(message),
                        headers={"Nats-Msg-Id": message.id},
                    )
                )
            await asyncio.gather(*futures)
            published += len(futures)
        publish_s = time.monotonic() - started
        samples: list[tuple[float, int]] = []
        while True:
            waiting = await _count(client, "waiting")
            samples.append((time.monotonic() - started, waiting))
            if waiting >= messages:
                break
            if len(samples) > 30 and samples[-30][1] == waiting:  # no progress for ~30 s
                raise RuntimeError(f"stuck at {waiting} waiting")
            await asyncio.sleep(1.0)
        elapsed = time.monotonic() - started
        # steady-state rate: the middle of the run, past start-up and before the tail
        low = next(t for t, n in samples if n >= messages * 0.1)
        high = next(t for t, n in samples if n >= messages * 0.9)
        return {
            "messages": messages,
            "publish_s": round(publish_s, 1),
            "all_waiting_after_s": round(elapsed, 1),
            "transitions": 2 * messages,
            "transitions_per_s": round(2 * messages / elapsed, 1),
            "transitions_per_s_10_to_90pct": round(2 * messages * 0.8 / max(high - low, 1e-9), 1),
        }
    finally:
        stopping.set()
        await standin
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--ingest-seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    appliance = Appliance()
    try:
        key = appliance.unlimited_tenant("bench")
        ingest_before = _ingest(appliance, key, args.ingest_seconds, args.connections)
        rss_before = _cascade_rss(appliance)
        nats_before = _nats_rss(appliance)
        url = f"nats://127.0.0.1:{appliance.nats_port}"
        cpu_before = _cpu_by_daemon(appliance)
        fill = asyncio.run(_fill(url, args.messages, args.timeout_s))
        cpu_after = _cpu_by_daemon(appliance)
        used = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        cascade_cpu = sum(v for k, v in used.items() if k.startswith("cascade"))
        fill["cpu_s_by_daemon"] = {k: round(v, 1) for k, v in sorted(used.items()) if v >= 0.1}
        fill["cascade_cpu_us_per_transition"] = round(cascade_cpu * 1e6 / fill["transitions"], 1)
        idle_from = _cpu_by_daemon(appliance)
        time.sleep(args.idle_seconds)  # the recorder and notifier catch up; nothing else should move
        idle_to = _cpu_by_daemon(appliance)
        idle = {k: round(100 * (idle_to[k] - idle_from.get(k, 0.0)) / args.idle_seconds, 1) for k in idle_to}
        rss_after = _cascade_rss(appliance)
        nats_after = _nats_rss(appliance)
        ingest_waiting = _ingest(appliance, key, args.ingest_seconds, args.connections)
        rss_after_ingest = _cascade_rss(appliance)
        grown_kib = sum(rss_after.values()) - sum(rss_before.values())
        report = {
            "bench": "cascade",
            "machine": machine(),
            "cascade_workers": len(rss_before),
            "fill": fill,
            "cascade_rss_kib_before": rss_before,
            "cascade_rss_kib_with_all_waiting": rss_after,
            "cascade_rss_kib_after_second_ingest": rss_after_ingest,
            "cascade_bytes_per_waiting_message": round(grown_kib * 1024 / args.messages, 1),
            "target_bytes_per_waiting_message": 2048,
            "nats_server_rss_kib": {"before": nats_before, "with_all_waiting": nats_after},
            "cpu_pct_after_fill_by_daemon": {k: v for k, v in sorted(idle.items()) if v >= 0.5},
            "ingest_before": ingest_before,
            "ingest_with_all_waiting": ingest_waiting,
            "ingest_ratio": round(
                ingest_waiting["accepted_per_s"] / max(ingest_before["accepted_per_s"], 1e-9), 3
            ),
            "ingest_cpu_ratio": round(
                ingest_waiting["cpu_ms_per_accepted"] / max(ingest_before["cpu_ms_per_accepted"], 1e-9), 3
            ),
        }
        print(json.dumps(report, indent=2))
    finally:
        appliance.stop()


if __name__ == "__main__":
    main()
