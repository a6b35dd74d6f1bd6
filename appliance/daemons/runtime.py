"""What every daemon process shares: start-up, signals, readiness and heartbeats to hermesd.

hermesd starts a child as `python -m appliance.daemons.child NAME --config FILE --worker N` with a
pipe's write end in `HERMES_NOTIFY_FD`. The child writes `READY=1` once it has bound its sockets and
`WATCHDOG=1` every few seconds from its event loop, so a child whose loop is stuck is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from structlog.typing import FilteringBoundLogger

from appliance.config import Config, load_config
from appliance.errors import HermesError
from appliance.logs import configure_logging, get_logger

NOTIFY_FD_ENV = "HERMES_NOTIFY_FD"
HEARTBEAT_INTERVAL_S = 2.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal us when the process that started us dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


GC_THRESHOLDS = (10_000, 20, 20)
"""Young-generation collections every 10,000 container allocations instead of CPython's 700. A gateway
allocates a few dozen objects per message and almost all die young, freed by their reference counts;
at 700 the collector ran some 150 times a second per worker, 6-8% of its CPU time under a batch load
(timed with gc.callbacks). A whole-appliance A/B showed no throughput change beyond the machine's noise."""


def tune_gc() -> None:
    """Move everything alive after start-up (modules, config, phonenumbers' metadata, caches' empty
    shells) out of the collector's sight, and collect the young generation less often. Called once
    the daemon's modules are imported, before its loop starts."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


_AUTOGROUP = "/proc/self/autogroup"


def lower_priority(niceness: int) -> None:
    """Run this process at `niceness` (0-19; raising it needs no privilege). hermesd starts each daemon in
    a session of its own, and where the kernel groups CPU time by session (autogroup: Linux outside a cpu
    cgroup, e.g. a shell) the process's nice counts only inside its group, so the group's nice is set too.
    The kernel allows ten autogroup changes a second across the machine: retried in a thread, not waited."""
    if niceness <= 0:
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    if os.path.exists(_AUTOGROUP):
        threading.Thread(target=_set_autogroup_nice, args=(niceness,), daemon=True).start()


def _set_autogroup_nice(niceness: int, tries: int = 30) -> None:
    for _ in range(tries):
        try:
            with open(_AUTOGROUP, "w") as autogroup:
                autogroup.write(str(niceness))
            return
        except BlockingIOError:  # EAGAIN: another process changed one within the last 100 ms
            time.sleep(0.11)
        except OSError:
            return


class _Notifier:
    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def send(self, line: str) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, (line + "\n").encode())
        except OSError:  # the supervisor went away; PDEATHSIG will stop us
            self._fd = None


@dataclass
class DaemonContext:
    """Handed to a daemon's `serve`: its config, identity, logger and the stop signal."""

    config: Config
    name: str
    worker: int
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _notifier: _Notifier = field(default_factory=lambda: _Notifier(None))
    _ready: bool = False

    @property
    def log(self) -> FilteringBoundLogger:
        return get_logger(f"hermes.{self.name}")

    def ready(self, status: str = "") -> None:
        """Tell hermesd we are serving. Call once every socket is bound."""
        if not self._ready:
            self._ready = True
            self._notifier.send("READY=1")
            self.log.info("daemon ready", action="daemon.ready", status=status)

    def status(self, text: str) -> None:
        self._notifier.send(f"STATUS={text}")


async def _heartbeat(ctx: DaemonContext) -> None:
    while not ctx.stopping.is_set():
        ctx._notifier.send("WATCHDOG=1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), HEARTBEAT_INTERVAL_S)
    # Every stop is bounded, even when no supervisor is left to enforce it (hermesd killed -9), and even
    # when the loop is gone and the interpreter waits at exit for a stuck thread: a daemon thread keeps
    # the time, not the event loop.
    grace = ctx.config.appliance.shutdown_grace_s
    threading.Thread(target=_exit_after, args=(ctx, grace), name="exit-deadline", daemon=True).start()


def _exit_after(ctx: DaemonContext, grace: float) -> None:
    time.sleep(grace)
    _exit_now(ctx, grace)


def _exit_now(ctx: DaemonContext, grace: float) -> None:
    ctx.log.error("drain exceeded the grace period; exiting", action="daemon.forced_exit", grace_s=grace)
    os._exit(1)


async def run_daemon(ctx: DaemonContext, serve: Callable[[DaemonContext], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ctx.stopping.set)
    beat = asyncio.create_task(_heartbeat(ctx))
    try:
        await serve(ctx)
    finally:
        ctx.stopping.set()
        await beat


def child_main(argv: list[str] | None = None) -> int:
    """Entry point of a daemon process; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    die_with_parent()
    if len(args) < 3 or args[1] != "--config":
        print("usage: python -m appliance.daemons.child NAME --config FILE [--worker N]", file=sys.stderr)
        return 2
    name, config_path = args[0], args[2]
    worker = int(args[4]) if len(args) >= 5 and args[3] == "--worker" else 0
    try:
        config = load_config(config_path)
    except HermesError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        component=name if worker == 0 else f"{name}.{worker}",
        node=config.appliance.node_name,
        level=config.appliance.log_level,
        fmt=config.appliance.log_format,
    )
    lower_priority(config.supervisor.nice_of(name))
    from appliance.daemons.registry import daemon_named

    module = importlib.import_module(daemon_named(name).module)
    fd_text = os.environ.pop(NOTIFY_FD_ENV, "")
    ctx = DaemonContext(
        config=config, name=name, worker=worker, _notifier=_Notifier(int(fd_text) if fd_text else None)
    )
    try:
        import uvloop

        tune_gc()
        uvloop.run(run_daemon(ctx, module.serve))
    except HermesError as exc:
        get_logger().error("daemon failed", action="daemon.failed", error=str(exc))
        return 1
    return 0
