"""`SmppService`: the smpp daemon over an open store and bus; `serve` wires it, tests run it in process.

It runs one `CarrierPool` (+ `Dispatcher`, unless the carrier binds as receiver only) per enabled SMPP
carrier (kind direct or aggregator; retail providers are reached by adapters), one `Receipts` for every
bind, and the health reporter. Carriers are re-read when admin announces `{"kind": "carrier", "id":
name}` on `hermes.registry.changed` (an id of "*" or "" re-reads all), and every `reload_every_s` as a
safety net: a new carrier gets a pool, a removed or disabled one is stopped, and one whose bind settings
changed is stopped and started again. Stopping is bounded: each dispatcher stops fetching, its pool
refuses new submits, dispatches under way get `drain_timeout_s` to be answered, recorded and acked,
then every bind is unbound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.bus.streams import REGISTRY_CHANGED
from appliance.daemons.smpp.batching import SubmissionBook
from appliance.daemons.smpp.dispatcher import Dispatcher
from appliance.daemons.smpp.health import report_health
from appliance.daemons.smpp.pool import CarrierPool
from appliance.daemons.smpp.publish import EventSink
from appliance.daemons.smpp.receipts import PendingIds, Receipts
from appliance.daemons.smpp.settings import SmppSettings
from appliance.errors import NotFound
from appliance.logs import get_logger
from appliance.store.carrier_base import CarrierStore
from appliance.store.carrier_models import Carrier
from appliance.store.smpp_base import SmppStore

log = get_logger("hermes.smpp")
_PURGE_EVERY_S = 3600.0


class SmppDaemonStore(SmppStore, CarrierStore, Protocol):
    """What the smpp daemon reads and writes."""


class _Change(msgspec.Struct):
    kind: str
    id: str = ""


@dataclass
class _Running:
    pool: CarrierPool
    dispatcher: Dispatcher | None


def serves(carrier: Carrier) -> bool:
    """Whether the smpp daemon binds to this carrier."""
    return carrier.enabled and carrier.kind in ("direct", "aggregator")


def _bind_settings(carrier: Carrier) -> Carrier:
    """The carrier without the fields a running pool does not use, to tell whether it must restart."""
    return msgspec.structs.replace(carrier, created_at=0.0, updated_at=0.0, mccmnc_list=())


class SmppService:
    """`await start()`, `pool(name)`, `await reload(name)`, `await close()`."""

    def __init__(
        self, store: SmppDaemonStore, nats: NatsClient, settings: SmppSettings | None = None
    ) -> None:
        self.store = store
        self.nats = nats
        self.settings = settings or SmppSettings()
        self.sink = EventSink(nats)
        self._receipt_sink = self.sink  # the receipts keep it if `sink` is replaced before start()
        self.pending = PendingIds()
        self.book = SubmissionBook(store)
        self.receipts = Receipts(self.book, self.sink, self.settings, self.pending, self.pool)
        self._running: dict[str, _Running] = {}
        self._changes: asyncio.Queue[str | None] = asyncio.Queue()
        self._reload_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def pool(self, name: str) -> CarrierPool | None:
        running = self._running.get(name)
        return None if running is None else running.pool

    def dispatcher(self, name: str) -> Dispatcher | None:
        running = self._running.get(name)
        return None if running is None else running.dispatcher

    @property
    def pools(self) -> list[CarrierPool]:
        return [running.pool for running in self._running.values()]

    async def start(self) -> None:
        """Subscribe to registry changes, start every carrier, and the background loops."""
        self._subscription = await self.nats.subscribe(REGISTRY_CHANGED, cb=self._on_change)
        await self.reload()
        self._tasks = [
            asyncio.create_task(self._apply_changes(), name="smpp reload"),
            asyncio.create_task(self._housekeeping(), name="smpp housekeeping"),
            asyncio.create_task(
                report_health(self.nats, lambda: self.pools, self.settings.health_interval_s, self._stopping),
                name="smpp health",
            ),
        ]

    async def close(self) -> None:
        """Stop the loops, then every carrier (bounded, see the module docstring). Idempotent."""
        self._stopping.set()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        async with self._reload_lock:  # a reload under way finishes first (bounded by its drain)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            running, self._running = self._running, {}
            await asyncio.gather(*(self._stop(entry) for entry in running.values()))
        await self.sink.close()
        await self._receipt_sink.close()

    async def reload(self, name: str | None = None) -> None:
        """Bring the running pools in line with the store: every carrier, or just `name`."""
        async with self._reload_lock:
            if self._stopping.is_set():
                return
            wanted: dict[str, Carrier | None]
            if name is None:
                wanted = {c.name: c for c in await self.store.list_carriers() if serves(c)}
                wanted.update({known: None for known in self._running if known not in wanted})
            else:
                try:
                    carrier: Carrier | None = await self.store.get_carrier(name)
                except NotFound:
                    carrier = None
                wanted = {name: carrier if carrier is not None and serves(carrier) else None}
            for carrier_name, want in wanted.items():
                await self._apply(carrier_name, want)

    async def _apply(self, name: str, want: Carrier | None) -> None:
        have = self._running.get(name)
        if have is not None and (want is None or _bind_settings(want) != _bind_settings(have.pool.carrier)):
            del self._running[name]
            log.info("carrier pool stopping", action="smpp.carrier_stopped", carrier=name)
            await self._stop(have)
            have = None
        if want is not None and have is None:
            running = await self._start(want)
            if running is not None:
                self._running[name] = running

    async def _start(self, carrier: Carrier) -> _Running | None:
        pool = CarrierPool(carrier, settings=self.settings, on_deliver=self.receipts.handle)
        pool.start()
        dispatcher: Dispatcher | None = None
        if carrier.bind_type != "receiver":
            dispatcher = Dispatcher(
                pool,
                nats=self.nats,
                book=self.book,
                sink=self.sink,
                settings=self.settings,
                pending=self.pending,
            )
            try:
                await dispatcher.start()
            except Exception as exc:  # the next reload tries again
                log.error(
                    "carrier dispatch not started",
                    action="smpp.carrier_failed",
                    carrier=carrier.name,
                    error=repr(exc),
                )
                await pool.close(0.0)
                return None
        log.info(
            "carrier pool started",
            action="smpp.carrier_started",
            carrier=carrier.name,
            connections=len(pool.binds),
            window=carrier.window,
            tps=carrier.tps,
        )
        return _Running(pool, dispatcher)

    async def _stop(self, running: _Running) -> None:
        """Within about `drain_timeout_s` + 1 s in all, so hermesd's shutdown grace is not exceeded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout_s
        if running.dispatcher is not None:
            running.dispatcher.halt()
        running.pool.refuse()
        if running.dispatcher is not None:
            await running.dispatcher.stop(self.settings.drain_timeout_s)
        await running.pool.close(max(0.5, deadline - loop.time()))

    async def _on_change(self, msg: Msg) -> None:
        try:
            change = msgspec.json.decode(msg.data, type=_Change)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if change.kind == "carrier":
            self._changes.put_nowait(None if change.id in ("", "*") else change.id)

    async def _apply_changes(self) -> None:
        while True:
            name = await self._changes.get()
            try:
                await self.reload(name)
            except Exception as exc:  # the store is away: the periodic reload will catch up
                log.error("carrier reload failed", action="smpp.reload_failed", carrier=name, error=repr(exc))

    async def _housekeeping(self) -> None:
        """Re-read all carriers every `reload_every_s`; purge old submissions every hour."""
        purged_at = 0.0
        while True:
            await asyncio.sleep(self.settings.reload_every_s)
            self._changes.put_nowait(None)
            if time.monotonic() - purged_at >= _PURGE_EVERY_S:
                purged_at = time.monotonic()
                before = time.time() - self.settings.retention_days * 86_400
                try:
                    purged = await self.store.purge_submissions(before)
                except Exception as exc:
                    log.warning("submissions not purged", action="smpp.purge_failed", error=repr(exc))
                else:
                    log.info("old submissions purged", action="smpp.purged", count=purged)
