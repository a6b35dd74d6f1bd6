"""Hermetic defaults for every test: no developer config or secrets leak in from the environment."""

from __future__ import annotations

import os
import socket

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
