"""Checks hermesd makes before it starts anything: data dir, lock, ports.

Each failure is a StartupError with one line an operator can act on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from appliance.errors import StartupError
from appliance.netaddr import listen_address


def prepare_data_dir(path: str) -> None:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {path}: {exc.strerror}") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StartupError(f"data dir {path} is not writable by uid {os.getuid()}")


class DataDirLock:
    """An exclusive flock on <data_dir>/hermesd.lock held for the life of hermesd."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir) / "hermesd.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        try:
            handle = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise StartupError(f"cannot open lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StartupError(
                f"data dir {self.path.parent} is in use by another hermesd (pid {holder}); "
                "stop it first or use another data_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def check_port_free(address: str, *, key: str, owner: str) -> None:
    """Refuse to start when a configured port is taken, naming the port, the key and the daemon."""
    family, host, port = listen_address(address)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} ({key}, for {owner}) is already in use by another process"
                ) from None
            raise StartupError(f"cannot listen on {address} ({key}, for {owner}): {exc.strerror}") from None
