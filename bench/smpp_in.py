"""Inbound SMPP throughput: enterprise clients bind to a real appliance, submit, and get their DLRs.

Starts hermesd on free ports in a temp dir with the built-in carrier simulator (carrier "sim") and
the inbound SMPP server, creates a tenant without limits and an SMPP login, then runs `--binds`
client processes. Each binds as transceiver and keeps `--window` submit_sm in flight
(registered_delivery=1, Danish mobile numbers routed to the simulator), answers every deliver_sm,
and collects receipt ids; a receipt counts when its id is one any client got in a submit_sm_resp
(Hermes may send a receipt on any receiver bind of the system_id). The client is not Hermes' codec:
PDUs are generated once by smpplib (an independent implementation) and patched with a sequence
number; responses are read with a few struct calls, so the client is cheap next to the server.
`--ingress-only` runs just the gateway (in this process, on a nats-server and SQLite) to measure the
SMPP server and pipeline alone, without receipts. Prints one JSON object; a whole-appliance run adds
the CPU milliseconds each process spent per accepted message (`cpu_ms_per_message`).

    .venv/bin/python bench/smpp_in.py [--messages 20000] [--binds 2] [--window 100] [--dlr-wait 60]
    .venv/bin/python bench/smpp_in.py --ingress-only [--messages 20000] [--binds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import smpplib.client
import smpplib.smpp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _appliance import Appliance, free_port, machine

_HEADER = struct.Struct(">IIII")
_RECEIPT_ID = re.compile(rb"id:(\S+) ")
SYSTEM_ID, PASSWORD = "bench", "benchpw"


def start_node(*, dlr_delay_ms: float, workers: int) -> tuple[Appliance, int]:
    """hermesd with the simulator carrier and the SMPP server; returns it and the SMPP port."""
    smpp_port = free_port()
    node = Appliance(
        rest_workers=workers,
        extra_toml=(
            f'[gateway.smpp]\nenabled = true\nlisten = "127.0.0.1:{smpp_port}"\n'
            f'[simulator]\nsmsc_listen = "127.0.0.1:{free_port()}"\ndlr_delay_ms = {dlr_delay_ms}\n'
        ),
    )
    node.wait_until(
        lambda: any((c.get("health") or {}).get("binds_up", 0) > 0 for c in node.ctl("carrier", "list")),
        "the simulator carrier bound",
    )
    return node, smpp_port


class _Client(asyncio.Protocol):
    """One transceiver bind: windowed submit_sm from a template, deliver_sm answered at once."""

    def __init__(self, template: bytes, count: int, window: int) -> None:
        self.template = bytearray(template)
        self.count = count
        self.window = window
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.bound = asyncio.get_running_loop().create_future()
        self.done_submitting = asyncio.get_running_loop().create_future()
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.ids: set[bytes] = set()
        self.receipted: set[bytes] = set()
        self.next_seq = 2
        self.sent = 0
        self.answered = 0
        self.first_receipt = self.last_receipt = 0.0
        self.started = self.finished = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def fill(self) -> None:
        transport = self.transport
        assert transport is not None
        chunks = []
        now = time.perf_counter()
        while self.sent < self.count and len(self.sent_at) < self.window:
            seq = self.next_seq
            self.next_seq += 1
            struct.pack_into(">I", self.template, 12, seq)
            chunks.append(bytes(self.template))
            self.sent_at[seq] = now
            self.sent += 1
        if chunks:
            transport.write(b"".join(chunks))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        replies = []
        now = time.perf_counter()
        while len(buffer) >= 16:
            length, command_id, status, seq = _HEADER.unpack_from(buffer)
            if len(buffer) < length:
                break
            frame = bytes(buffer[:length])
            del buffer[:length]
            if command_id == 0x80000004:  # submit_sm_resp
                started = self.sent_at.pop(seq, None)
                if started is not None:
                    self.latencies.append(now - started)
                self.answered += 1
                if status:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                else:
                    self.ids.add(frame[16:].rstrip(b"\x00"))
                if self.answered == self.count:
                    self.finished = now
                    self.done_submitting.set_result(None)
            elif command_id == 0x00000005:  # deliver_sm: a receipt
                match = _RECEIPT_ID.search(frame)
                if match is not None:
                    self.receipted.add(match.group(1))
                    self.last_receipt = now
                    self.first_receipt = self.first_receipt or now
                replies.append(_HEADER.pack(17, 0x80000005, 0, seq) + b"\x00")
            elif command_id == 0x00000015:  # enquire_link
                replies.append(_HEADER.pack(16, 0x80000015, 0, seq))
            elif command_id == 0x80000009:  # bind_transceiver_resp
                if status:
                    self.bound.set_exception(RuntimeError(f"bind refused: 0x{status:08X}"))
                else:
                    self.bound.set_result(None)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
        if self.bound.done() and self.started:
            self.fill()


def _pdu(command: str, **fields: Any) -> bytes:
    """A PDU as smpplib generates it (sequence number 1; the client patches it)."""
    client = smpplib.client.Client("127.0.0.1", 0, allow_unknown_opt_params=True)
    pdu = smpplib.smpp.make_pdu(command, client=client, **fields)
    pdu.sequence = 1
    generated: bytes = pdu.generate()
    return generated


async def _drive(port: int, count: int, window: int, index: int, dlr_wait_s: float) -> dict[str, Any]:
    template = _pdu(
        "submit_sm",
        source_addr_ton=5,
        source_addr="Bench",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=f"4528{index:02d}1234",
        short_message=b"Your code is 123456",
        registered_delivery=1,
    )
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        lambda: _Client(template, count, window), "127.0.0.1", port
    )
    transport.write(_pdu("bind_transceiver", system_id=SYSTEM_ID, password=PASSWORD))
    await asyncio.wait_for(client.bound, 10)
    client.started = time.perf_counter()
    client.fill()
    await asyncio.wait_for(client.done_submitting, 600)
    _shared_add(accepted=len(client.ids), submitting=-1)
    counted = 0
    deadline = time.perf_counter() + dlr_wait_s
    while time.perf_counter() < deadline:
        # a receipt may come on any bind of the system_id, so every client waits until all the clients
        # together hold a receipt for every accepted message (binds stay up until then: an unbound
        # client's receipts would be queued for the others, which would then wait for them)
        _shared_add(receipted=len(client.receipted) - counted)
        counted = len(client.receipted)
        if _shared_done():
            break
        await asyncio.sleep(0.05)
    transport.write(_HEADER.pack(16, 0x00000006, 0, 1))  # unbind
    await asyncio.sleep(0.2)
    transport.close()
    return {
        "started": client.started,
        "finished": client.finished,
        "latencies": client.latencies,
        "ids": sorted(i.decode() for i in client.ids),
        "refused": client.statuses,
        "receipted": sorted(i.decode() for i in client.receipted),
        "first_receipt": client.first_receipt,
        "last_receipt": client.last_receipt,
    }


_SHARED: dict[str, Any] = {}


def _share(submitting: Any, accepted: Any, receipted: Any) -> None:
    """Pool initializer: counters every client process sees (clients still submitting, messages
    accepted, receipts received, over all binds)."""
    _SHARED.update(submitting=submitting, accepted=accepted, receipted=receipted)


def _shared_add(**deltas: int) -> None:
    for name, delta in deltas.items():
        if name in _SHARED and delta:
            with _SHARED[name].get_lock():
                _SHARED[name].value += delta


def _shared_done() -> bool:
    if not _SHARED:  # no shared counters (ingress-only: no receipts come)
        return True
    return bool(_SHARED["submitting"].value == 0 and _SHARED["receipted"].value >= _SHARED["accepted"].value)


def _client_pool(binds: int) -> Any:
    context = multiprocessing.get_context("spawn")
    counters = (context.Value("q", binds), context.Value("q", 0), context.Value("q", 0))
    return context.Pool(binds, initializer=_share, initargs=counters)


def _client_process(args: tuple[int, int, int, int, float]) -> dict[str, Any]:
    port, count, window, index, dlr_wait_s = args
    try:
        import uvloop

        return uvloop.run(_drive(port, count, window, index, dlr_wait_s))
    except ImportError:
        return asyncio.run(_drive(port, count, window, index, dlr_wait_s))


async def _ingress_only(args: argparse.Namespace, nats_port: int) -> list[dict[str, Any]]:
    """The SMPP gateway alone, in this process (uvloop), over a real nats-server and SQLite store: no
    cascade or carrier competes for the CPU, so this is what the inbound server itself sustains."""
    from nats.aio.client import Client as NatsClient

    from appliance.bus.streams import ensure_streams
    from appliance.config import parse_config
    from appliance.daemons.admin.registry import RegistryService
    from appliance.daemons.gateway import assemble
    from appliance.daemons.gateway.smpp_server import start_smpp
    from appliance.node_secret import ensure_node_secret, load_node_secret
    from appliance.store import open_store

    root = Path(tempfile.mkdtemp(prefix="hermes-bench-smpp-ingress-"))
    smpp_port = free_port()
    config = parse_config(
        f'[appliance]\ndata_dir = "{root / "var"}"\nlog_level = "warning"\n'
        f'[nats]\nurl = "nats://127.0.0.1:{nats_port}"\n'
        f'[gateway.smpp]\nenabled = true\nlisten = "127.0.0.1:{smpp_port}"\n',
        file=str(root / "hermes.toml"),
    )
    ensure_node_secret(config.appliance.secret_file)
    store = await open_store(config.store)
    await store.migrate()
    nats = NatsClient()
    for _ in range(50):
        try:
            await nats.connect(servers=[f"nats://127.0.0.1:{nats_port}"])
            break
        except Exception:
            await asyncio.sleep(0.1)
    try:
        await ensure_streams(nats.jetstream())
        gateway = await assemble(config, store, nats)
        admin = RegistryService(
            store, node_secret=load_node_secret(config.appliance.secret_file), tiers=config.tiers
        )
        tenant, _, _ = await admin.add_tenant("bench", name="bench", tier="enterprise", email="b@b.test")
        await admin.edit_tenant("bench", tenant.id, rate_limit=0, burst=0, monthly_quota=0)
        await admin.add_smpp("bench", tenant.id, SYSTEM_ID, PASSWORD)
        gateway.smpp = await start_smpp(
            config, ingress=gateway.ingress, registry=gateway.registry, store=store, nats=nats
        )
        per_bind = args.messages // args.binds
        jobs = [(smpp_port, per_bind, args.window, i, 0.0) for i in range(args.binds)]
        loop = asyncio.get_running_loop()
        with multiprocessing.get_context("spawn").Pool(args.binds) as pool:
            results: list[dict[str, Any]] = await loop.run_in_executor(None, pool.map, _client_process, jobs)
        await gateway.close()
        return results
    finally:
        await nats.close()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="submit_sm in total")
    parser.add_argument("--binds", type=int, default=1, help="client processes, one transceiver bind each")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--dlr-delay-ms", type=float, default=50.0, help="the simulator's receipt delay")
    parser.add_argument("--dlr-wait", type=float, default=120.0, help="seconds to wait for the last DLRs")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument(
        "--ingress-only",
        action="store_true",
        help="only the gateway (in process) on nats-server: submit_sm/s of the SMPP server alone, no DLRs",
    )
    args = parser.parse_args()
    if args.ingress_only:
        import uvloop

        from appliance.bus.embedded import nats_server_binary
        from appliance.logs import configure_logging

        configure_logging(component="bench", node="bench", level="warning")
        nats_port = free_port()
        store_dir = tempfile.mkdtemp(prefix="hermes-bench-smpp-js-")
        server = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", store_dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _report(args, uvloop.run(_ingress_only(args, nats_port)))
        finally:
            server.terminate()
            server.wait(10)
        return
    node, smpp_port = start_node(dlr_delay_ms=args.dlr_delay_ms, workers=args.workers)
    try:
        node.unlimited_tenant("bench")
        node.ctl("tenant", "smpp", "add", "bench", "--system-id", SYSTEM_ID, "--password", PASSWORD)
        per_bind = args.messages // args.binds
        jobs = [(smpp_port, per_bind, args.window, i, args.dlr_wait) for i in range(args.binds)]
        cpu_before = node.cpu_seconds()
        with _client_pool(args.binds) as pool:
            results = pool.map(_client_process, jobs)
        cpu_after = node.cpu_seconds()
        restarts = node.restarts()
    finally:
        node.stop()
    cpu_s = {name: used - cpu_before.get(name, 0.0) for name, used in cpu_after.items()}
    _report(args, results, cpu_s, restarts)


def _report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    cpu_s: dict[str, float] | None = None,
    restarts: int | None = None,
) -> None:
    """One JSON object; with `cpu_s` (CPU seconds each process of the appliance used during the run,
    the clients' tail included) also CPU milliseconds per accepted message, by process: on a small
    machine shared with other work those compare runs better than the rates do."""
    per_bind = args.messages // args.binds
    started = min(r["started"] for r in results)
    finished = max(r["finished"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    # a receipt may come on any receiver bind of the system_id, so count them over all clients
    ids = {i for r in results for i in r["ids"]}
    accepted = len(ids)
    receipted = len(ids & {i for r in results for i in r["receipted"]})
    last_receipt = max(r["last_receipt"] for r in results) or started
    refused: dict[str, int] = {}
    for r in results:
        for status, n in r["refused"].items():
            refused[f"0x{status:08X}"] = refused.get(f"0x{status:08X}", 0) + n
    submitted = per_bind * args.binds
    print(
        json.dumps(
            {
                "benchmark": "smpp_in",
                "machine": machine(),
                "mode": "ingress only (gateway in process)" if args.ingress_only else "whole appliance",
                "binds": args.binds,
                "window": args.window,
                "gateway_workers": args.workers,
                "submitted": submitted,
                "accepted": accepted,
                "refused": refused,
                "submit_sm_per_s": round(submitted / (finished - started), 1),
                "submit_sm_resp_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                "submit_sm_resp_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
                "dlrs_received": receipted,
                "dlrs_per_s": round(receipted / (last_receipt - started), 1) if receipted else 0.0,
                "dlrs_received_vs_accepted": round(receipted / accepted, 4) if accepted else 0.0,
                "seconds_to_last_dlr": round(last_receipt - started, 2) if receipted else None,
                **(_cpu_report(cpu_s, accepted) if cpu_s is not None else {}),
                **({"daemon_restarts": restarts} if restarts is not None else {}),
            },
            indent=2,
        )
    )


def _cpu_report(cpu_s: dict[str, float], accepted: int) -> dict[str, Any]:
    per_message = {
        name: round(1000 * used / accepted, 3) for name, used in sorted(cpu_s.items()) if used >= 0.05
    }
    total = round(1000 * sum(cpu_s.values()) / accepted, 3) if accepted else None
    return {"cpu_ms_per_message": per_message if accepted else {}, "cpu_ms_per_message_total": total}


if __name__ == "__main__":
    main()
