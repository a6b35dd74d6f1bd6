"""`CarrierPool`: every bind to one carrier, and `submit(pdu)` that gets one part accepted by it.

The pool keeps `carrier.connections` binds up (`bind.Bind`), shares one TPS pace among them (`pace.Pace`)
and sends each part on the bound connection with the most window room. What happens after an answer is
`domain.smpp_errors.classify`'s call:

- ok: the carrier's message id is returned, with the connection's latency noted.
- throttled (ESME_RTHROTTLED, ESME_RMSGQFUL): the pace is halved for a while and the same part is sent
  again once the pace allows; a throttle never fails a part.
- temporary (ESME_RSYSERR & co., no answer in time, connection lost): the part is sent again, on another
  connection when one is bound, up to `max_submit_tries` in all; then `SubmitFailed`.
- permanent: `SubmitRefused` with the status, at once.

Duplicates: a part that timed out before it was written (`RequestTimeout.sent` False) or whose connection
failed before it was written cannot have reached the carrier, so sending it again is safe. One that was
written but never answered (a timeout after sending, a connection lost while waiting) may have been
accepted: it is sent again all the same, because a lost SMS is worse than a duplicate one, and logged
with action `smpp.possible_duplicate` so the operator can see how often the carrier causes it.

    SmppPoolError(HermesError)
    ├── SubmitRefused   the carrier refused the part for good (`command_status`)
    ├── SubmitFailed    temporary errors used up every try (`command_status`, None after timeouts)
    └── NoBind          no connection was bound with room within `bind_wait_s`, or the pool is closing
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from appliance.daemons.smpp.bind import Bind, Deliver
from appliance.daemons.smpp.pace import Pace, RecentShare, combined
from appliance.daemons.smpp.settings import SmppSettings
from appliance.domain.smpp_errors import classify
from appliance.errors import HermesError
from appliance.logs import get_logger
from appliance.protocols.smpp.connection import ConnectionLost, RequestTimeout
from appliance.protocols.smpp.constants import status_name
from appliance.protocols.smpp.pdu import Pdu, SubmitSm, SubmitSmResp
from appliance.protocols.smpp.session import SessionUsageError
from appliance.store.carrier_models import Carrier

log = get_logger("hermes.smpp")


class SmppPoolError(HermesError):
    """The carrier pool could not get a part accepted."""


class SubmitRefused(SmppPoolError):
    """The carrier refused the part for good."""

    def __init__(self, command_status: int) -> None:
        self.command_status = command_status
        self.status_name = status_name(command_status)
        super().__init__(f"submit_sm refused: {self.status_name}")


class SubmitFailed(SmppPoolError):
    """Temporary errors used up every try."""

    def __init__(self, reason: str, command_status: int | None = None) -> None:
        self.command_status = command_status
        self.status_name = status_name(command_status) if command_status is not None else None
        super().__init__(f"submit_sm failed: {reason}")


class NoBind(SmppPoolError):
    """No connection to the carrier was bound with room in time."""


class CarrierPool:
    """`start()`, `submit(pdu)` from any number of tasks, `health()`, `close()`."""

    def __init__(
        self,
        carrier: Carrier,
        *,
        settings: SmppSettings,
        on_deliver: Deliver,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.carrier = carrier
        self.settings = settings
        self.clock = clock
        self.pace = Pace(max(0, carrier.tps), clock(), hold_s=settings.throttle_hold_s)
        rng = rng or random.Random()
        self.binds = [
            Bind(carrier, i, settings=settings, on_deliver=on_deliver, on_change=self._changed, rng=rng)
            for i in range(max(1, carrier.connections))
        ]
        self.submitted = 0
        self.throttled = 0
        self.refused = 0
        self.failed = 0
        self.possible_duplicates = 0
        self.recent_dlrs = RecentShare()
        self.dlrs = 0
        self.unknown_dlrs = 0
        self._changed_event = asyncio.Event()
        self._slots = asyncio.Semaphore(self.capacity)
        """Submits past it wait in line (FIFO), not in `_acquire`, where every change wakes every waiter."""
        self._pace_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def name(self) -> str:
        return self.carrier.name

    @property
    def capacity(self) -> int:
        """Parts the pool can have in flight at once when every connection is bound."""
        return len(self.binds) * max(1, self.carrier.window)

    @property
    def bound(self) -> int:
        return sum(1 for bind in self.binds if bind.state == "bound")

    def start(self) -> None:
        for bind in self.binds:
            self._tasks.append(asyncio.create_task(bind.run(), name=f"smpp bind {bind.name}"))

    async def wait_bound(self, timeout_s: float, count: int | None = None) -> bool:
        """Wait until `count` (default: all) connections are bound; False when the time ran out."""
        want = len(self.binds) if count is None else count
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.bound < want:
                    await self._wait_change()
                return True
        return False

    def refuse(self) -> None:
        """Take no new submits from now on (waiting ones get `NoBind`); those in flight carry on."""
        self._closing = True
        self._changed()

    async def close(self, drain_s: float | None = None) -> None:
        """Refuse new submits, let reserved ones finish within `drain_s`, unbind all, end the tasks."""
        self.refuse()
        drain = self.settings.drain_timeout_s if drain_s is None else drain_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain):
                while any(bind.reserved for bind in self.binds):
                    await self._wait_change()
        for bind in self.binds:
            bind.stop()
        async with asyncio.TaskGroup() as group:
            for bind in self.binds:
                group.create_task(bind.close(drain))
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=max(0.5, drain))  # binding ones: cancelled
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def note_dlr(self, *, final: bool, delivered: bool) -> None:
        self.dlrs += 1
        if final:
            self.recent_dlrs.add(delivered)

    async def submit(self, pdu: SubmitSm, *, ref: str = "") -> str:
        """Get the part accepted; returns the carrier's message id. `ref` names it in logs."""
        tries = 0
        avoid: Bind | None = None
        while True:
            deadline = asyncio.get_running_loop().time() + self.settings.bind_wait_s
            if self._slots.locked():  # a timer only when there is a line to wait in
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._slots.acquire()
                except TimeoutError:
                    wait_s = self.settings.bind_wait_s
                    raise NoBind(f"no room at {self.name} within {wait_s:g} s") from None
            else:
                await self._slots.acquire()
            try:
                bind = await self._acquire(avoid, deadline)
            except BaseException:
                self._slots.release()
                raise
            started = self.clock()
            sent = False
            try:
                assert bind.client is not None
                future = await bind.client.connection.issue(pdu, self.settings.response_timeout_s)
                sent = True
                response: Pdu = await future
            except (RequestTimeout, ConnectionLost, SessionUsageError) as exc:
                sent = sent or (isinstance(exc, RequestTimeout) and exc.sent)
                bind.record(ok=False, error=str(exc))
                status: int | None = None
                kind = "temporary"
                if sent:
                    self.possible_duplicates += 1
                    log.warning(
                        "submit_sm unanswered; sending again, the carrier may have it twice",
                        action="smpp.possible_duplicate",
                        bind=bind.name,
                        ref=ref,
                        error=str(exc),
                    )
            else:
                status = response.command_status
                kind = classify(status)
                if kind == "ok" and isinstance(response, SubmitSmResp):
                    bind.record(ok=True, latency_s=self.clock() - started)
                    self.submitted += 1
                    return response.message_id
                if kind == "ok":  # a zero-status generic_nack: nothing was accepted
                    kind = "temporary"
                if kind != "throttled":  # back-pressure is not an error of the connection
                    bind.record(ok=False, latency_s=self.clock() - started, error=status_name(status))
            finally:
                bind.reserved -= 1
                self._slots.release()
                self._changed()
            if kind == "throttled":
                self.throttled += 1
                self.pace.throttled(self.clock())
                continue
            if kind == "permanent":
                assert status is not None
                self.refused += 1
                raise SubmitRefused(status)
            tries += 1
            avoid = bind
            if tries >= self.settings.max_submit_tries:
                self.failed += 1
                reason = status_name(status) if status is not None else "no answer"
                raise SubmitFailed(f"{tries} tries: {reason}", status)
            await asyncio.sleep(min(1.0, 0.05 * 2**tries))

    async def _acquire(self, avoid: Bind | None, deadline: float) -> Bind:
        """A bound connection with room (not `avoid` if another has room), its slot reserved, and a token
        of the pace taken. Raises `NoBind` when none comes by `deadline` (loop time), or the pool closes."""
        while True:
            if self._closing:
                raise NoBind(f"the pool of {self.name} is closing")
            candidates = [bind for bind in self.binds if bind.room > 0]
            if len(candidates) > 1 and avoid in candidates:
                candidates.remove(avoid)
            if candidates:
                bind = max(candidates, key=lambda b: (b.room, -b.index))
                bind.reserved += 1
                break
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wait_change()
            except TimeoutError:
                wait_s = self.settings.bind_wait_s
                raise NoBind(f"no bind to {self.name} with room within {wait_s:g} s") from None
        try:
            async with self._pace_lock:  # one waiter at a time, in arrival order
                while (wait := self.pace.take(self.clock())) > 0:  # noqa: ASYNC110 - the bucket says how long
                    await asyncio.sleep(min(wait, 1.0))
        except BaseException:
            bind.reserved -= 1
            self._changed()
            raise
        if self._closing or bind.client is None:  # closing, or the connection dropped, while we waited
            bind.reserved -= 1
            self._changed()
            return await self._acquire(avoid, deadline)
        return bind

    async def _wait_change(self) -> None:
        await self._changed_event.wait()

    def _changed(self) -> None:
        """Wake everyone waiting for room or a bind; they look again (and wait again if need be)."""
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    def health(self) -> dict[str, Any]:
        """A JSON-ready snapshot for `hermes.smpp.health.<carrier>`: the router reads binds_up, window_free,
        error_rate and dlr_rate (`domain.routing.CarrierHealth`), `hermesctl carrier list` the rest.
        Error and DLR rates are shares of the last 200 submits / final receipts: 0.0 and None until
        there are 20, so a handful of early failures does not take a carrier out of routing."""
        now = self.clock()
        connections = [bind.health() for bind in self.binds]
        latencies = [b.latency_ms.value for b in self.binds if b.latency_ms.value is not None]
        error_rate = combined([b.recent_errors for b in self.binds])
        dlr_rate = self.recent_dlrs.value
        bound = self.bound
        status = "down" if bound == 0 else "ok" if bound == len(self.binds) else "degraded"
        return {
            "carrier": self.name,
            "status": status,
            "binds_up": bound,
            "window_free": sum(b.room for b in self.binds),
            "connections": connections,
            "in_flight": sum(b.reserved for b in self.binds),
            "window": self.capacity,
            "tps_limit": self.carrier.tps,
            "tps_pace": self.pace.rate,
            "tps_used": self.pace.observed(now),
            "slowed": self.pace.slowed,
            "latency_ms": round(sum(latencies) / len(latencies), 1) if latencies else None,
            "error_rate": 0.0 if error_rate is None else round(error_rate, 4),
            "dlr_rate": None if dlr_rate is None else round(dlr_rate, 4),
            "submitted": self.submitted,
            "throttled": self.throttled,
            "refused": self.refused,
            "failed": self.failed,
            "possible_duplicates": self.possible_duplicates,
            "dlrs": self.dlrs,
            "unknown_dlrs": self.unknown_dlrs,
            "at": time.time(),
        }
