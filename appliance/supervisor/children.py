"""One supervised child process: spawn, readiness, heartbeats, restart with backoff, bounded stop.

A child runs in its own session (so a terminal's Ctrl-C reaches only hermesd, which then stops
children in order) and is told by the kernel to exit if hermesd dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from appliance.daemons.runtime import NOTIFY_FD_ENV, die_with_parent
from appliance.logs import get_logger

ChildState = Literal["starting", "ready", "backoff", "stopping", "stopped"]
log = get_logger("hermes.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    ready_timeout_s: float = 30.0
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    reset_after_s: float = 60.0
    watchdog_timeout_s: float = 30.0

    def delay(self, consecutive_failures: int) -> float:
        """Exponential backoff: base, 2x base, 4x base, ... capped."""
        exponent = max(consecutive_failures - 1, 0)
        return float(min(self.backoff_s * (2**exponent), self.backoff_max_s))


class ChildStatus(msgspec.Struct, frozen=True):
    """What `hermesctl status` shows of one child."""

    name: str
    stage: int
    state: ChildState
    pid: int | None
    started_at: float | None
    ready_at: float | None
    restarts: int
    last_exit: str | None
    healthy: bool


@dataclass(eq=False)
class Child:
    name: str
    stage: int
    argv: list[str]
    policy: RestartPolicy
    notify: bool = True  # speaks READY/WATCHDOG over a pipe; otherwise `probe` says when it is ready
    probe: Callable[[], Awaitable[bool]] | None = None
    on_change: Callable[[], None] = lambda: None
    env: dict[str, str] = field(default_factory=dict)
    state: ChildState = "stopped"
    process: asyncio.subprocess.Process | None = None
    started_at: float | None = None
    ready_at: float | None = None
    last_heartbeat: float = 0.0
    restarts: int = 0
    consecutive_failures: int = 0
    last_exit: str | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _spawned_mono: float | None = None

    def status(self) -> ChildStatus:
        fresh = (
            not self.notify
            or self.policy.watchdog_timeout_s <= 0
            or time.monotonic() - self.last_heartbeat < self.policy.watchdog_timeout_s
        )
        return ChildStatus(
            name=self.name,
            stage=self.stage,
            state=self.state,
            pid=self.process.pid if self.process and self.process.returncode is None else None,
            started_at=self.started_at,
            ready_at=self.ready_at,
            restarts=self.restarts,
            last_exit=self.last_exit,
            healthy=self.state == "ready" and fresh,
        )

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def _set_state(self, state: ChildState) -> None:
        self.state = state
        self.on_change()

    async def supervise(self) -> None:
        """Run the child until `stop()`, restarting it whenever it exits on its own."""
        while not self._stopping.is_set():
            reason = await self._run_once()
            if self._stopping.is_set():
                break
            self.restarts += 1
            up_for = time.monotonic() - (self._spawned_mono or time.monotonic())
            self.consecutive_failures = (
                1 if up_for >= self.policy.reset_after_s else self.consecutive_failures + 1
            )
            delay = self.policy.delay(self.consecutive_failures)
            self.last_exit = reason
            log.warning(
                "child exited; restarting",
                action="child.exited",
                child=self.name,
                reason=reason,
                restart_in_s=delay,
                restarts=self.restarts,
            )
            self._set_state("backoff")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        self._set_state("stopped")

    async def _spawn(self) -> int | None:
        read_fd: int | None = None
        env = dict(os.environ, **self.env)
        pass_fds: tuple[int, ...] = ()
        write_fd: int | None = None
        if self.notify:
            read_fd, write_fd = os.pipe()
            env[NOTIFY_FD_ENV] = str(write_fd)
            pass_fds = (write_fd,)
        self._ready.clear()
        self.ready_at = None
        self._set_state("starting")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=env, pass_fds=pass_fds, start_new_session=True, preexec_fn=die_with_parent
            )
        finally:
            if write_fd is not None:
                os.close(write_fd)
        self.started_at = time.time()
        self._spawned_mono = self.last_heartbeat = time.monotonic()
        log.info("child started", action="child.started", child=self.name, pid=self.process.pid)
        return read_fd

    async def _run_once(self) -> str:
        read_fd = await self._spawn()
        assert self.process is not None
        watchers = [asyncio.create_task(self._watch_health())]
        if read_fd is not None:
            watchers.append(asyncio.create_task(self._read_notifications(read_fd)))
        elif self.probe is not None:
            watchers.append(asyncio.create_task(self._probe_until_ready()))
        try:
            code = await self.process.wait()
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        return _describe_exit(code)

    def _mark_ready(self) -> None:
        if self.state == "starting":
            self.ready_at = time.time()
            self._ready.set()
            log.info(
                "child ready",
                action="child.ready",
                child=self.name,
                pid=self.process.pid if self.process else None,
            )
            self._set_state("ready")

    async def _read_notifications(self, read_fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                message = line.decode(errors="replace").strip()
                self.last_heartbeat = time.monotonic()
                if message == "READY=1":
                    self._mark_ready()
        finally:
            transport.close()

    async def _probe_until_ready(self) -> None:
        assert self.probe is not None
        while self.state == "starting":
            if await self.probe():
                self._mark_ready()
                return
            await asyncio.sleep(0.05)

    async def _watch_health(self) -> None:
        """Kill a child that never gets ready, or whose heartbeats stop; supervise() restarts it."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            assert self._spawned_mono is not None
            if self.state == "starting" and now - self._spawned_mono > self.policy.ready_timeout_s:
                reason = f"not ready after {self.policy.ready_timeout_s:g}s"
            elif (
                self.notify
                and self.state == "ready"
                and self.policy.watchdog_timeout_s > 0
                and now - self.last_heartbeat > self.policy.watchdog_timeout_s
            ):
                reason = f"no heartbeat for {self.policy.watchdog_timeout_s:g}s"
            else:
                continue
            log.error(
                "child unresponsive; killing it", action="child.unresponsive", child=self.name, reason=reason
            )
            self._signal(signal.SIGKILL)
            return

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; idempotent."""
        self._stopping.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        self._set_state("stopping")
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            log.warning(
                "child did not stop in time; killing it",
                action="child.killed",
                child=self.name,
                grace_s=grace_s,
            )
            self._signal(signal.SIGKILL)
            await process.wait()
        log.info("child stopped", action="child.stopped", child=self.name, code=process.returncode)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
