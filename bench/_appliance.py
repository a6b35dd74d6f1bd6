"""Start a throwaway appliance for a benchmark: hermesd on free ports in a temp dir, and hermesctl."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> str:
    cpus = os.cpu_count()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, {python}"


class Appliance:
    def __init__(self, *, durability: str = "process", rest_workers: int = 1, extra_toml: str = "") -> None:
        """`extra_toml`: more sections for the config (e.g. `[gateway.smpp]`, `[simulator]`)."""
        self.root = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
        self.rest_port = free_port()
        self.nats_port = free_port()
        self.config = self.root / "hermes.toml"
        self.config.write_text(
            f'[appliance]\ndata_dir = "{self.root / "var"}"\nlog_format = "json"\nlog_level = "warning"\n'
            f'[nats]\nlisten = "127.0.0.1:{self.nats_port}"\n'
            f'[admin]\nsocket = "{self.root / "admin.sock"}"\n'
            f'[gateway]\ndurability = "{durability}"\n'
            f'[gateway.rest]\nlisten = "127.0.0.1:{self.rest_port}"\nworkers = {rest_workers}\n' + extra_toml
        )
        self.log = (self.root / "hermesd.log").open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "hermesd"), "--config", str(self.config)], stdout=self.log, stderr=self.log
        )
        self._wait_healthy()

    def ctl(self, *args: str) -> Any:
        result = subprocess.run(
            [str(BIN / "hermesctl"), "--config", str(self.config), *args, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode not in (0, 8):
            raise RuntimeError(f"hermesctl {' '.join(args)}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def restarts(self) -> int:
        """Daemon restarts so far: a bench run that starves or crashes a daemon must say so."""
        return sum(int(child.get("restarts", 0)) for child in self.ctl("status").get("children", []))

    def _wait_healthy(self) -> None:
        self.wait_until(lambda: bool(self.ctl("status").get("healthy")), "healthy")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        """Poll `ready` (hermesctl calls, say) until it holds; fail if hermesd exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hermesd exited: {(self.root / 'hermesd.log').read_text()[-2000:]}")
            if (self.root / "admin.sock").exists():
                try:
                    if ready():
                        return
                except (RuntimeError, json.JSONDecodeError, KeyError, TypeError):
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"hermesd: not {what} within {timeout_s:.0f} s")

    def unlimited_tenant(self, name: str) -> str:
        created = self.ctl("tenant", "add", name, "--tier", "enterprise", "--email", f"bench@{name}.test")
        self.ctl(
            "tenant",
            "edit",
            name,
            "--rate-limit",
            "unlimited",
            "--burst",
            "unlimited",
            "--quota",
            "unlimited",
        )
        key: str = created["api_key"]
        return key

    def stream_stored(self, stream: str) -> int:
        """How many messages `stream` has ever stored: its last sequence number. The count of messages
        it holds would do for a stream nobody consumes, but MESSAGES is a work queue and cascade
        removes what it has taken; the sequence only grows, and a deduplicated retry does not move it."""
        return self._stream_state(stream)[0]

    def stream_held(self, stream: str) -> int:
        """How many messages `stream` holds now: for the MESSAGES work queue, those cascade has not taken."""
        return self._stream_state(stream)[1]

    def _stream_state(self, stream: str) -> tuple[int, int]:
        async def state() -> tuple[int, int]:
            client = NatsClient()
            await client.connect(servers=[f"nats://127.0.0.1:{self.nats_port}"], connect_timeout=5)
            try:
                info = await client.jetstream().stream_info(stream)
                return int(info.state.last_seq), int(info.state.messages)
            finally:
                await client.close()

        return asyncio.run(state())

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process of the appliance, by daemon name."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        ticks = os.sysconf("SC_CLK_TCK")
        used: dict[str, float] = {}
        todo = [self.process.pid]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                stat = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
                argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            name = _daemon_name([a.decode() for a in argv if a])
            used[name] = used.get(name, 0.0) + (int(stat[11]) + int(stat[12])) / ticks
        return used

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.close()


def _daemon_name(argv: list[str]) -> str:
    """`gateway.1` for `python -m appliance.daemons.child gateway --worker 1`, else the program's name."""
    if "appliance.daemons.child" in argv:
        name = argv[argv.index("appliance.daemons.child") + 1]
        worker = argv[argv.index("--worker") + 1] if "--worker" in argv else "0"
        return f"{name}.{worker}"
    return Path(argv[1] if argv[0].endswith(("python", "python3")) and len(argv) > 1 else argv[0]).name
