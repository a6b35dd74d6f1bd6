"""hermesd: the supervisor of one node.

Order of start: config → data dir + lock → ports → secret → nats-server → streams → migrations →
daemons by stage (control, core, ingress), each stage ready before the next → READY=1.
Order of stop (SIGTERM/SIGINT): ingress → core → control → nats-server, within the grace period;
a second signal kills what is left at once. hermesd holds no message state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import msgspec

from appliance.bus.connection import connect
from appliance.bus.embedded import embedded_url, nats_server_binary, write_server_config
from appliance.bus.streams import ensure_streams
from appliance.config.schema import Config
from appliance.daemons.registry import DAEMONS
from appliance.errors import BusError, HermesError, StartupError
from appliance.logs import get_logger
from appliance.node_secret import ensure_node_secret
from appliance.store import open_store
from appliance.supervisor.children import Child, ChildStatus, RestartPolicy
from appliance.supervisor.preflight import DataDirLock, check_port_free, prepare_data_dir
from appliance.supervisor.sdnotify import sd_notify, watchdog_interval_s

STAGE_NATS = -1
log = get_logger("hermes.supervisor")


class NodeStatus(msgspec.Struct, frozen=True):
    """Written to <data_dir>/run/status.json on every change; the admin API serves it."""

    node: str
    pid: int
    started_at: float
    ready: bool
    stopping: bool
    nats_url: str
    embedded_nats: bool
    children: list[ChildStatus]
    updated_at: float


def status_path(config: Config) -> Path:
    return Path(config.appliance.data_dir) / "run" / "status.json"


class Supervisor:
    def __init__(self, config: Config, config_path: str) -> None:
        self.config = config
        self.config_path = str(Path(config_path).resolve())
        self.started_at = time.time()
        self.ready = False
        self.stopping = False
        self._stop_requested = asyncio.Event()
        self._force = False
        self._lock = DataDirLock(config.appliance.data_dir)
        self._children: list[Child] = []
        self._status_file = status_path(config)

    # ---- preparation -------------------------------------------------------------------------
    def preflight(self) -> None:
        config = self.config
        prepare_data_dir(config.appliance.data_dir)
        self._lock.acquire()
        if not config.nats.url:
            check_port_free(config.nats.listen, key="nats.listen", owner="embedded nats-server")
            if config.nats.cluster_listen:
                check_port_free(config.nats.cluster_listen, key="nats.cluster_listen", owner="nats cluster")
        for spec in DAEMONS:
            if spec.enabled(config):
                for key, address in spec.listeners(config):
                    check_port_free(address, key=key, owner=f"daemon {spec.name}")
        ensure_node_secret(config.appliance.secret_file)
        self._status_file.parent.mkdir(parents=True, exist_ok=True)

    def _policy(self) -> RestartPolicy:
        section = self.config.supervisor
        return RestartPolicy(
            ready_timeout_s=section.ready_timeout_s,
            backoff_s=section.restart_backoff_s,
            backoff_max_s=section.restart_backoff_max_s,
            reset_after_s=section.restart_reset_after_s,
            watchdog_timeout_s=section.watchdog_timeout_s,
        )

    def _nats_child(self) -> Child:
        conf = write_server_config(self.config)
        log_file = Path(self.config.appliance.data_dir) / "nats" / "nats-server.log"
        host, _, port = embedded_url(self.config).removeprefix("nats://").rpartition(":")

        async def accepts_connections() -> bool:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True

        argv = [nats_server_binary(), "-c", str(conf), "-l", str(log_file)]
        return Child(
            "nats",
            STAGE_NATS,
            argv,
            self._policy(),
            notify=False,
            probe=accepts_connections,
            on_change=self.write_status,
        )

    def _daemon_children(self) -> list[Child]:
        children = []
        for spec in sorted(DAEMONS, key=lambda s: s.stage):
            if not spec.enabled(self.config):
                continue
            count = spec.workers(self.config)
            for worker in range(count):
                name = spec.name if count == 1 else f"{spec.name}.{worker}"
                argv = [
                    sys.executable,
                    "-m",
                    "appliance.daemons.child",
                    spec.name,
                    "--config",
                    self.config_path,
                    "--worker",
                    str(worker),
                ]
                children.append(Child(name, spec.stage, argv, self._policy(), on_change=self.write_status))
        return children

    # ---- status ------------------------------------------------------------------------------
    def write_status(self) -> None:
        status = NodeStatus(
            node=self.config.appliance.node_name,
            pid=os.getpid(),
            started_at=self.started_at,
            ready=self.ready,
            stopping=self.stopping,
            nats_url=embedded_url(self.config),
            embedded_nats=not self.config.nats.url,
            children=[child.status() for child in self._children],
            updated_at=time.time(),
        )
        tmp = self._status_file.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_bytes(msgspec.json.encode(status))
            os.replace(tmp, self._status_file)

    # ---- run ---------------------------------------------------------------------------------
    def request_stop(self) -> None:
        if self._stop_requested.is_set():
            self._force = True
            log.warning("second stop signal: killing children now", action="node.force_stop")
            for child in self._children:
                child._signal(signal.SIGKILL)
        self._stop_requested.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.preflight()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._lifecycle(group))
        except BaseExceptionGroup as group_error:
            first = group_error.exceptions[0]
            raise first if isinstance(first, HermesError) else group_error from None
        finally:
            self._status_file.unlink(missing_ok=True)
            self._lock.release()

    async def _lifecycle(self, group: asyncio.TaskGroup) -> None:
        config = self.config
        log.info(
            "hermesd starting",
            action="node.starting",
            config=self.config_path,
            data_dir=config.appliance.data_dir,
            pid=os.getpid(),
        )
        try:
            if not config.nats.url:
                nats = self._nats_child()
                self._children.append(nats)
                group.create_task(nats.supervise())
                await self._await_ready([nats], config.nats.start_timeout_s, fatal=True)
            await self._prepare_bus()
            await self._migrate_store()
            daemons = self._daemon_children()
            self._children.extend(daemons)
            for stage in sorted({child.stage for child in daemons}):
                if self._stop_requested.is_set():
                    break
                members = [child for child in daemons if child.stage == stage]
                for child in members:
                    group.create_task(child.supervise())
                await self._await_ready(members, config.supervisor.ready_timeout_s, fatal=False)
            if not self._stop_requested.is_set():
                self.ready = True
                self.write_status()
                sd_notify(f"READY=1\nSTATUS=serving, {len(daemons)} daemons\nMAINPID={os.getpid()}")
                log.info("hermesd ready", action="node.ready", daemons=[c.name for c in daemons])
            await self._serve_until_stopped()
        finally:
            await self._shutdown()

    async def _await_ready(self, children: list[Child], timeout_s: float, *, fatal: bool) -> None:
        async def all_ready() -> None:
            for child in children:
                await child.wait_ready()

        async def stop_requested() -> None:
            await self._stop_requested.wait()

        waiting = asyncio.create_task(all_ready())
        stop = asyncio.create_task(stop_requested())
        try:
            done, _ = await asyncio.wait(
                {waiting, stop}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if self._stop_requested.is_set():
            return
        if not done:
            waiting.cancel()
            late = [child.name for child in children if child.state != "ready"]
            if fatal:
                raise StartupError(f"{', '.join(late)} not ready after {timeout_s:g}s{self._nats_log_tail()}")
            log.warning("children not ready yet; continuing", action="node.slow_start", children=late)

    def _nats_log_tail(self) -> str:
        path = Path(self.config.appliance.data_dir) / "nats" / "nats-server.log"
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").strip().splitlines()[-3:]
            if lines:
                return " (nats-server log: " + " | ".join(lines) + ")"
        return ""

    async def _prepare_bus(self) -> None:
        try:
            client = await connect(self.config, name="supervisor")
        except BusError as exc:
            raise StartupError(str(exc)) from exc
        try:
            created = await ensure_streams(
                client.jetstream(), backlog_max_messages=self.config.nats.backlog_max_messages
            )
            log.info("streams ready", action="bus.streams", changed=created)
        except Exception as exc:
            raise StartupError(f"cannot create JetStream streams: {exc}") from exc
        finally:
            await client.close()

    async def _migrate_store(self) -> None:
        store = await open_store(self.config.store)
        try:
            applied = await store.migrate()
            log.info(
                "store migrated",
                action="store.migrated",
                backend=self.config.store.backend,
                applied=applied,
                version=await store.schema_version(),
            )
        finally:
            await store.close()

    async def _serve_until_stopped(self) -> None:
        interval = watchdog_interval_s()
        while not self._stop_requested.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), interval or 5.0)
            if interval:
                sd_notify("WATCHDOG=1")
            self.write_status()

    async def _shutdown(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.ready = False
        sd_notify("STOPPING=1")
        log.info("hermesd stopping", action="node.stopping")
        deadline = time.monotonic() + self.config.appliance.shutdown_grace_s
        for stage in sorted({child.stage for child in self._children}, reverse=True):
            members = [child for child in self._children if child.stage == stage]
            grace = 0.0 if self._force else max(deadline - time.monotonic(), 1.0)
            await asyncio.gather(*(child.stop(grace) for child in members))
        log.info("hermesd stopped", action="node.stopped")


async def run_node(config: Config, config_path: str) -> None:
    await Supervisor(config, config_path).run()
