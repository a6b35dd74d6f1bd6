"""Hermetic defaults for every test: no developer config or secrets leak in from the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

_KEEP = {"HERMES_TEST_POSTGRES_DSN"}


@pytest.fixture(autouse=True)
def _clean_hermes_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HERMES_") and name not in _KEEP:
            monkeypatch.delenv(name)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice; never 4222)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream on a free loopback port; yields its URL."""
    from appliance.bus.embedded import nats_server_binary

    port = free_port()
    store_dir = tmp_path_factory.mktemp("jetstream")
    process = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("nats-server did not start")
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
