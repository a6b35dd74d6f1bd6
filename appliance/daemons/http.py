"""Serving an ASGI app with uvicorn (uvloop + httptools) on sockets we bound ourselves.

Binding first means a daemon knows its port is really ours before it reports READY, and lets
several gateway workers share one port with SO_REUSEPORT. Signals stay with our runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from appliance.errors import StartupError
from appliance.netaddr import listen_address


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon runtime owns SIGTERM/SIGINT


def bind_tcp(address: str, *, key: str, reuse_port: bool = False) -> socket.socket:
    """Bind "host:port"; a taken port is a StartupError naming it and its config key."""
    family, host, port = listen_address(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {address} ({key}): {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def bind_unix(path: str, *, mode: int = 0o660) -> socket.socket:
    """Bind a unix socket, replacing a stale one, and set its permissions."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot create admin socket {path}: {exc.strerror}") from exc
    sock.listen(256)
    sock.setblocking(False)
    return sock


class HttpServer:
    """One uvicorn server over pre-bound sockets; `start` returns once it accepts connections."""

    def __init__(self, app: Any, sockets: list[socket.socket]) -> None:
        config = uvicorn.Config(
            app,
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=False,  # no proxy is trusted; nothing reads the client address
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._sockets = sockets
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=self._sockets))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise StartupError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        """The port of the first socket (useful when bound to port 0)."""
        port: int = self._sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        for sock in self._sockets:
            sock.close()
