"""One of a carrier pool's connections: keeps an `SmppClient` bound, re-binding with backoff, and keeps
the numbers the pool picks by and `health()` reports.

`run()` loops until `stop()`: connect + bind; on success the state is `bound` until the session ends
(the carrier unbound or dropped, an enquire_link went unanswered), then `down`, a jittered exponential
pause (`pace.rebind_delay`, reset by a bind that held), and `connecting` again. A refused or failed bind
counts as a failure too. The pool is told of every change through `on_change`, so waiting submitters
look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from appliance.daemons.smpp.pace import Ewma, RecentShare, rebind_delay
from appliance.daemons.smpp.settings import SmppSettings
from appliance.logs import get_logger
from appliance.protocols.smpp.client import BindError, DeliverHandler, SmppClient
from appliance.protocols.smpp.connection import ConnectionLost, SessionConfig
from appliance.protocols.smpp.pdu import DataSm, DeliverSm
from appliance.store.carrier_models import Carrier

BindState = Literal["connecting", "bound", "down"]
Deliver = Callable[[str, DeliverSm | DataSm], Awaitable[None]]
"""(carrier name, deliver_sm or data_sm) -> None once handled; raise `Reject` to refuse."""
_BIND_HELD_S = 30.0  # a bind that lasted this long resets the failure count
log = get_logger("hermes.smpp")


class Bind:
    """Connection `index` of `carrier`: its client while bound, and its statistics."""

    def __init__(
        self,
        carrier: Carrier,
        index: int,
        *,
        settings: SmppSettings,
        on_deliver: Deliver,
        on_change: Callable[[], None],
        rng: random.Random,
    ) -> None:
        self.carrier = carrier
        self.index = index
        self.settings = settings
        self.state: BindState = "down"
        self.client: SmppClient | None = None
        self.reserved = 0  # submits that hold a slot of this connection's window (our own count)
        self.submits = 0
        self.errors = 0
        self.latency_ms = Ewma(0.2)
        self.recent_errors = RecentShare()
        self.bound_since: float | None = None
        self.binds = 0
        self.last_error: str | None = None
        self._on_deliver = on_deliver
        self._on_change = on_change
        self._rng = rng
        self._stopping = asyncio.Event()

    @property
    def name(self) -> str:
        return f"{self.carrier.name}#{self.index}"

    @property
    def room(self) -> int:
        """Slots left in the window; 0 unless bound."""
        if self.state != "bound" or self.client is None:
            return 0
        return max(0, self.carrier.window - self.reserved)

    def record(self, *, ok: bool, latency_s: float | None = None, error: str | None = None) -> None:
        """Note one submit's result (a throttle is neither: the pool counts those itself)."""
        self.submits += 1
        self.recent_errors.add(not ok)
        if latency_s is not None:
            self.latency_ms.add(latency_s * 1000.0)
        if not ok:
            self.errors += 1
            self.last_error = error

    def stop(self) -> None:
        self._stopping.set()

    async def close(self, timeout_s: float) -> None:
        """Unbind (bounded); `run()` then returns instead of re-binding."""
        self._stopping.set()
        client = self.client
        if client is not None:
            await client.close(timeout_s)

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._set("connecting")
            client = self._client()
            try:
                await client.connect()
            except asyncio.CancelledError:  # the pool gave up waiting for a stop: leave no session behind
                await _abandon(client)
                raise
            except BindError as exc:
                failures += 1
                self.last_error = str(exc)
                self._set("down")
                log.warning("carrier bind failed", action="smpp.bind_failed", bind=self.name, error=str(exc))
            else:
                failures = await self._serve(client, failures)
            if not self._stopping.is_set():
                delay = rebind_delay(
                    max(1, failures),
                    initial_s=self.settings.rebind_initial_s,
                    max_s=self.settings.rebind_max_s,
                    rng=self._rng,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        self._set("down")

    async def _serve(self, client: SmppClient, failures: int) -> int:
        """Hold the bound session until it ends; returns the failure count to go on with."""
        self.client = client
        self.binds += 1
        started = time.monotonic()
        self.bound_since = time.time()
        self._set("bound")
        log.info("carrier bound", action="smpp.bound", bind=self.name, smsc=client.smsc_system_id)
        if self._stopping.is_set():  # stopped while binding: close() saw no client to unbind
            await client.close(self.settings.drain_timeout_s)
        reason = await client.wait_closed()
        self.client = None
        self.bound_since = None
        self._set("down")
        if not self._stopping.is_set():
            self.last_error = reason
            log.warning("carrier bind lost", action="smpp.bind_lost", bind=self.name, reason=reason)
        return 0 if time.monotonic() - started >= _BIND_HELD_S else failures + 1

    def _client(self) -> SmppClient:
        carrier = self.carrier
        deliver: DeliverHandler = self._deliver
        return SmppClient(
            carrier.host,
            carrier.port,
            system_id=carrier.system_id,
            password=carrier.password,
            bind_type=carrier.bind_type,
            system_type=carrier.system_type,
            on_deliver=deliver,
            response_timeout_s=self.settings.response_timeout_s,
            config=SessionConfig(
                window=max(1, carrier.window),
                enquire_link_s=self.settings.enquire_link_s,
                bind_timeout_s=self.settings.bind_timeout_s,
                close_timeout_s=self.settings.drain_timeout_s,
            ),
        )

    async def _deliver(self, pdu: DeliverSm | DataSm) -> None:
        await self._on_deliver(self.carrier.name, pdu)

    def _set(self, state: BindState) -> None:
        if state != self.state:
            self.state = state
            self._on_change()

    def health(self) -> dict[str, Any]:
        latency = self.latency_ms.value
        return {
            "index": self.index,
            "state": self.state,
            "in_flight": self.reserved,
            "window": self.carrier.window,
            "latency_ms": None if latency is None else round(latency, 1),
            "room": self.room,
            "error_rate": _round(self.recent_errors.value),
            "submits": self.submits,
            "errors": self.errors,
            "binds": self.binds,
            "bound_since": self.bound_since,
            "last_error": self.last_error,
        }


async def _abandon(client: SmppClient) -> None:
    """Drop a half-made session at once and wait (briefly) for its socket to close."""
    with contextlib.suppress(ConnectionLost, TimeoutError):
        connection = client.connection
        connection.abort("stopping")
        async with asyncio.timeout(1.0):
            await connection.wait_closed()


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)
