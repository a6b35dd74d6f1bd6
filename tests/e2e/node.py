"""A whole hermesd on free ports in a temp dir, driven the way an operator drives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

BIN = Path(sys.executable).parent


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


class Node:
    def __init__(self, root: Path, *, simulator: bool = False, **overrides: str) -> None:
        self.root = root
        self.smsc_port = free_port()
        self.nats_port = free_port()
        self.rest_port = free_port()
        self.config = root / "hermes.toml"
        self.log = root / "hermesd.log"
        self.data_dir = Path(overrides.get("data_dir", str(root / "var")))
        self.config.write_text(
            f"""
[appliance]
node_name = "e2e"
data_dir = "{self.data_dir}"
log_format = "json"
shutdown_grace_s = 8.0
[nats]
listen = "127.0.0.1:{self.nats_port}"
[admin]
socket = "{root / "admin.sock"}"
[gateway.rest]
listen = "127.0.0.1:{overrides.get("rest_port", self.rest_port)}"
[supervisor]
restart_backoff_s = 0.2
"""
            + (
                f'[simulator]\nsmsc_listen = "127.0.0.1:{self.smsc_port}"\ndlr_delay_ms = 50.0\n'
                if simulator
                else ""
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "hermesd"), "--config", str(self.config)], stdout=log, stderr=log
            )
        return self.process

    def rest_client(self, api_key: str) -> httpx.Client:
        """The REST gateway as the key's tenant; in a `with`, so a failing test closes it too."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.rest_port}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )

    def ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "hermesctl"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"hermesctl {' '.join(args)} -> {result.returncode}: {result.stderr}")
        return result

    def status(self) -> dict[str, Any]:
        result = self.ctl("status", "--json")
        if result.returncode not in (0, 8):
            raise AssertionError(f"status failed: {result.stderr}")
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def wait_until(self, predicate: Any, timeout_s: float = 30.0, what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hermesd exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            if (self.root / "admin.sock").exists():
                try:
                    last = self.status()
                    if predicate(last):
                        return last
                except (AssertionError, json.JSONDecodeError):
                    pass
            time.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what}; last status {last}\n{self.log.read_text()[-3000:]}"
        )

    def wait_healthy(self, timeout_s: float = 40.0) -> dict[str, Any]:
        return self.wait_until(lambda s: s.get("healthy"), timeout_s, "a healthy node")

    def wait_until_carriers_bound(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        carriers: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.ctl("carrier", "list", "--json")
            if result.returncode == 0:
                carriers = json.loads(result.stdout)
                if carriers and all((c.get("health") or {}).get("binds_up", 0) > 0 for c in carriers):
                    return carriers
            time.sleep(0.5)
        raise AssertionError(f"carriers not bound: {carriers}\n{self.log.read_text()[-3000:]}")

    def child_pids(self, status: dict[str, Any]) -> dict[str, int]:
        return {c["name"]: c["pid"] for c in status["children"] if c["pid"]}

    def terminate(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout_s)

    def kill_everything(self) -> None:
        """Last-resort cleanup so a failing test leaves nothing running."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        run = self.data_dir / "run" / "status.json"
        if run.exists():
            for child in json.loads(run.read_text()).get("children", []):
                if child.get("pid") and pid_alive(child["pid"]):
                    os.kill(child["pid"], signal.SIGKILL)
