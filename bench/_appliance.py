"""Start a throwaway appliance for a benchmark: hermesd on free ports in a temp dir, and hermesctl."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    def __init__(self, *, durability: str = "process", rest_workers: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
        self.rest_port = free_port()
        self.nats_port = free_port()
        self.config = self.root / "hermes.toml"
        self.config.write_text(
            f'[appliance]\ndata_dir = "{self.root / "var"}"\nlog_format = "json"\nlog_level = "warning"\n'
            f'[nats]\nlisten = "127.0.0.1:{self.nats_port}"\n'
            f'[admin]\nsocket = "{self.root / "admin.sock"}"\n'
            f'[gateway]\ndurability = "{durability}"\n'
            f'[gateway.rest]\nlisten = "127.0.0.1:{self.rest_port}"\nworkers = {rest_workers}\n'
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
        )
        if result.returncode not in (0, 8):
            raise RuntimeError(f"hermesctl {' '.join(args)}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hermesd exited: {(self.root / 'hermesd.log').read_text()[-2000:]}")
            if (self.root / "admin.sock").exists():
                try:
                    if self.ctl("status").get("healthy"):
                        return
                except (RuntimeError, json.JSONDecodeError):
                    pass
            time.sleep(0.3)
        raise RuntimeError("hermesd did not become healthy")

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

    def stream_messages(self, stream: str) -> int:
        streams = self.ctl("status")["nats"]["streams"]
        count: int = streams[stream]["messages"]
        return count

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.close()
