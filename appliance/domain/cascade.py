"""The cascade state machine (seed §5): one message tried channel after channel until one succeeds.

Pure, h11-style: no I/O, `now` passed in. `Cascade(message, default_timeouts).handle(state, event, now)`
returns a `Step`: the new frozen `CascadeState` and the `Command`s the daemon must carry out (ask the
router, publish a dispatch, start a durable timer, publish an event, finish). An event that does not
apply to the state (a duplicate, a late DLR, an answer for another attempt, anything after the end)
changes nothing and yields no command; `Step.ignored` says why, for the log.

Phases and the states they show (design.md §7; n is the 1-based channel index):

    created  --Start-->  routing(n) / sending(n)         routing only for SMS (the router picks paths)
    routing(n)  --RouteFound--> sending(n)   --NoRoute / Timeout--> channel n failed
    sending(n)  --ProviderAccepted--> waiting(n)  (or success, when the channel counts acceptance)
    sending(n)  --DispatchError--> sending(n) on the plan's next route, a new attempt; when no route is
                left: channel n failed
    sending/waiting(n) --Delivered--> success (unless the channel counts reads and this is no read)
    sending/waiting(n) --Failed (failed, bounced, rejected) / Timeout--> channel n failed
    channel n failed --> routing/sending(n+1), or, after the last channel, all_failed (dead letter)
    success --> delivered (terminal), or with notify_all the next channel, and `delivered` at the end

`routing(n)` and `sending(n)` both show as `<n>_sending`; a failed channel shows `<n>_failed` in the
event that reports it, and the machine goes straight on. Attempt numbers start after the message's
`attempt_base` (a DLQ replay's), one per dispatch, and one for a channel whose routing fails, so every
id derived from (message, attempt) is new. The channel's timer is keyed by its first attempt number:
a timer of a channel already left is stale and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec

from appliance.domain.message import DEFAULT_TIMEOUT_S, Message

Phase = Literal["created", "routing", "sending", "waiting", "delivered", "all_failed"]
PHASES: Final[tuple[Phase, ...]] = ("created", "routing", "sending", "waiting", "delivered", "all_failed")
TERMINAL: Final = frozenset({"delivered", "all_failed"})
_EARLY_S: Final = 0.001


# ---------------------------------------------------------------------------------------------- data
class Route(msgspec.Struct, frozen=True, array_like=True):
    """One path for a channel: an SMS carrier, an email pool, or a channel adapter."""

    target: str
    kind: str  # direct | aggregator | retail (SMS), pool (email), adapter
    price: float | None = None
    currency: str | None = None

    def as_data(self) -> dict[str, Any]:
        key = {"pool": "pool", "adapter": "adapter"}.get(self.kind, "carrier")
        return {key: self.target, "kind": self.kind, "price": self.price, "currency": self.currency}


class HistoryEntry(msgspec.Struct, frozen=True, array_like=True):
    """One transition, kept for the dead letter's `history` (compact: it lives in the KV state)."""

    at: float
    kind: str
    state: str
    attempt: int
    channel_index: int
    route: Route | None = None
    reason: str | None = None


class CascadeState(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    phase: Phase = "created"
    channel: int = 0  # 1-based index of the current channel (0 before the start)
    attempt: int = 0  # the latest attempt number handed out
    channel_attempt: int = 0  # the current channel's first attempt: its timer's key
    deadline: float = 0.0  # when the current channel times out
    routes: tuple[Route, ...] = ()
    route_index: int = 0
    delivered: tuple[int, ...] = ()  # channels that succeeded (more than one only with notify_all)
    stat: str | None = None  # the last executor outcome seen
    err: str | None = None
    history: tuple[HistoryEntry, ...] = ()

    @property
    def name(self) -> str:
        """The state as design.md §7 names it."""
        if self.phase == "created":
            return "created"
        if self.phase == "all_failed":
            return "all_failed"
        if self.phase == "routing":
            return f"{self.channel}_sending"
        return f"{self.channel}_{self.phase}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL


# -------------------------------------------------------------------------------------------- events
class Start(msgspec.Struct, frozen=True, tag=True):
    """The message was accepted (`msg.accepted.<tenant>`)."""


class RouteFound(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    routes: tuple[Route, ...]


class NoRoute(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    reason: str = "no_route"


class ProviderAccepted(msgspec.Struct, frozen=True, tag=True):
    attempt: int


class DispatchError(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    reason: str = "rejected"


class Delivered(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    read: bool = False
    stat: str | None = None
    err: str | None = None


class Failed(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    why: Literal["failed", "bounced", "rejected"] = "failed"
    stat: str | None = None
    err: str | None = None


class Timeout(msgspec.Struct, frozen=True, tag=True):
    attempt: int  # the channel's first attempt (the timer's key)


CascadeEvent = Start | RouteFound | NoRoute | ProviderAccepted | DispatchError | Delivered | Failed | Timeout
EVENT_TYPES: Final[tuple[type[CascadeEvent], ...]] = (
    Start,
    RouteFound,
    NoRoute,
    ProviderAccepted,
    DispatchError,
    Delivered,
    Failed,
    Timeout,
)


# ------------------------------------------------------------------------------------------ commands
class RequestRoute(msgspec.Struct, frozen=True, tag=True):
    """Ask the router for the SMS paths to `to`; answer with RouteFound or NoRoute for `attempt`."""

    attempt: int
    channel_index: int
    to: str


class Dispatch(msgspec.Struct, frozen=True, tag=True):
    attempt: int
    channel_index: int
    channel: str
    to: str
    route: Route
    expires_at: float  # the executor drops the attempt after this: the cascade has moved on


class StartTimer(msgspec.Struct, frozen=True, tag=True):
    attempt: int  # the channel's first attempt
    due: float


class Emit(msgspec.Struct, frozen=True, tag=True):
    """Publish a cascade event (`evt.<tenant>.<kind>`) with the new state."""

    kind: str
    state: str
    attempt: int
    at: float
    data: dict[str, Any]

    @property
    def event_id(self) -> str:
        return f"{self.attempt}:cascade:{self.kind}"


class Finish(msgspec.Struct, frozen=True, tag=True):
    """The message is done: its state may be forgotten once the commands before this are out."""

    outcome: Literal["delivered", "all_failed"]


Command = RequestRoute | Dispatch | StartTimer | Emit | Finish


class Step(msgspec.Struct, frozen=True):
    state: CascadeState
    commands: tuple[Command, ...] = ()
    ignored: str | None = None  # why the event changed nothing


# ------------------------------------------------------------------------------------------- machine
Handler = Callable[["Cascade", CascadeState, Any, float], Step]


class Cascade:
    """The machine for one message: its channels, timeouts, success rules and notify_all choice."""

    __slots__ = ("message", "timeouts")

    def __init__(self, message: Message, default_timeouts: Mapping[str, float] | None = None) -> None:
        self.message = message
        defaults = default_timeouts or {}
        self.timeouts: tuple[float, ...] = tuple(
            target.timeout_s
            if target.timeout_s is not None
            else defaults.get(target.channel, DEFAULT_TIMEOUT_S.get(target.channel, 60.0))
            for target in message.channels
        )

    def initial(self) -> CascadeState:
        return CascadeState(attempt=self.message.attempt_base)

    def handle(self, state: CascadeState, event: CascadeEvent, now: float) -> Step:
        """The state after `event`, with what to do; an event that does not apply changes nothing."""
        handler = TRANSITIONS.get((state.phase, type(event)))
        if handler is None:
            return Step(state, ignored=f"{type(event).__name__} in {state.phase}")
        if not isinstance(event, Start) and not _concerns(state, event):
            return Step(
                state, ignored=f"{type(event).__name__} for attempt {event.attempt} (now {state.attempt})"
            )
        return handler(self, state, event, now)

    # -- the moves the handlers share
    def _begin_channel(self, state: CascadeState, n: int, now: float, out: list[Command]) -> CascadeState:
        """Start channel n: route it (SMS) or dispatch on its only path, and start its timer."""
        if n > len(self.message.channels):
            return self._finish(state, now, out)
        target = self.message.channels[n - 1]
        attempt = state.attempt + 1
        deadline = now + self.timeouts[n - 1]
        state = msgspec.structs.replace(
            state,
            channel=n,
            attempt=attempt,
            channel_attempt=attempt,
            deadline=deadline,
            routes=(),
            route_index=0,
            stat=None,
            err=None,
        )
        out.append(StartTimer(attempt=attempt, due=deadline))
        if target.channel == "sms":
            out.append(RequestRoute(attempt=attempt, channel_index=n, to=target.to))
            return msgspec.structs.replace(state, phase="routing")
        route = Route("default", "pool") if target.channel == "email" else Route(target.channel, "adapter")
        state = msgspec.structs.replace(state, routes=(route,))
        return self._dispatch(state, attempt, now, out)

    def _dispatch(self, state: CascadeState, attempt: int, now: float, out: list[Command]) -> CascadeState:
        target = self.message.channels[state.channel - 1]
        route = state.routes[state.route_index]
        state = msgspec.structs.replace(state, phase="sending", attempt=attempt)
        out.append(
            Dispatch(
                attempt=attempt,
                channel_index=state.channel,
                channel=target.channel,
                to=target.to,
                route=route,
                expires_at=state.deadline,
            )
        )
        return self._emit(state, "dispatched", now, out, route=route)

    def _emit(
        self,
        state: CascadeState,
        kind: str,
        now: float,
        out: list[Command],
        *,
        route: Route | None = None,
        reason: str | None = None,
        shown: str | None = None,
        **extra: Any,
    ) -> CascadeState:
        """Record a transition in the history and publish it as an event."""
        name = shown or state.name
        n = state.channel
        target = self.message.channels[n - 1] if n else None
        data: dict[str, Any] = {"channel_index": n, "attempt": state.attempt}
        if target is not None:
            data.update(channel=target.channel, to=target.to)
        if route is not None:
            data["route"] = route.as_data()
        if reason is not None:
            data["reason"] = reason
        data.update(extra)
        state = self._record(state, kind, now, route, reason, name)
        if kind in ("delivered", "dead_lettered"):
            data.update(self._final_data(state))
        out.append(Emit(kind=kind, state=name, attempt=state.attempt, at=now, data=data))
        return state

    @staticmethod
    def _record(
        state: CascadeState,
        kind: str,
        now: float,
        route: Route | None = None,
        reason: str | None = None,
        name: str | None = None,
    ) -> CascadeState:
        """Add a transition to the history (the dead letter's account of what was tried)."""
        entry = HistoryEntry(now, kind, name or state.name, state.attempt, state.channel, route, reason)
        return msgspec.structs.replace(state, history=(*state.history, entry))

    def _final_data(self, state: CascadeState) -> dict[str, Any]:
        """What consumers of a final event (webhooks, SMPP receipts) need, so they read nothing else."""
        message = self.message
        data: dict[str, Any] = {
            "origin": message.origin,
            "metadata": dict(message.metadata),
            "sender": message.sender,
            "created_at": message.created_at,
            "stat": state.stat,
            "err": state.err,
            "delivered_channels": list(state.delivered),
        }
        if state.phase == "all_failed":
            data["history"] = [history_data(entry) for entry in state.history]
        return data

    def _succeed(self, state: CascadeState, now: float, out: list[Command]) -> Step:
        state = msgspec.structs.replace(state, phase="delivered", delivered=(*state.delivered, state.channel))
        if not self.message.notify_all or state.channel >= len(self.message.channels):
            return self._final(state, now, out)
        state = self._emit(state, "channel_delivered", now, out)
        return Step(self._begin_channel(state, state.channel + 1, now, out), tuple(out))

    def _fail_channel(
        self, state: CascadeState, kind: str, reason: str, now: float, out: list[Command]
    ) -> Step:
        shown = f"{state.channel}_failed"
        state = self._emit(state, kind, now, out, reason=reason, shown=shown)
        return Step(self._begin_channel(state, state.channel + 1, now, out), tuple(out))

    def _finish(self, state: CascadeState, now: float, out: list[Command]) -> CascadeState:
        """After the last channel: delivered if any channel was (notify_all), else all failed."""
        if state.delivered:
            state = msgspec.structs.replace(state, phase="delivered", channel=state.delivered[-1])
        else:
            state = msgspec.structs.replace(state, phase="all_failed")
        return self._final(state, now, out).state

    def _final(self, state: CascadeState, now: float, out: list[Command]) -> Step:
        if state.phase == "delivered":
            state = self._emit(state, "delivered", now, out)
            out.append(Finish("delivered"))
        else:
            state = self._emit(state, "dead_lettered", now, out, shown="all_failed")
            out.append(Finish("all_failed"))
        return Step(state, tuple(out))


def _concerns(state: CascadeState, event: Any) -> bool:
    """Whether an attempt-bearing event is about what the machine waits for now."""
    if isinstance(event, Timeout):
        return bool(event.attempt == state.channel_attempt)
    return bool(event.attempt == state.attempt)


def history_data(entry: HistoryEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "at": entry.at,
        "kind": entry.kind,
        "state": entry.state,
        "attempt": entry.attempt,
        "channel_index": entry.channel_index,
    }
    if entry.route is not None:
        data["route"] = entry.route.as_data()
    if entry.reason is not None:
        data["reason"] = entry.reason
    return data


# ------------------------------------------------------------------------------------------ handlers
def _start(machine: Cascade, state: CascadeState, event: Start, now: float) -> Step:
    out: list[Command] = []
    if not machine.message.channels:
        return machine._final(msgspec.structs.replace(state, phase="all_failed"), now, out)
    return Step(machine._begin_channel(state, 1, now, out), tuple(out))


def _route_found(machine: Cascade, state: CascadeState, event: RouteFound, now: float) -> Step:
    out: list[Command] = []
    if not event.routes:
        return machine._fail_channel(state, "channel_failed", "no_route", now, out)
    state = msgspec.structs.replace(state, routes=event.routes, route_index=0)
    return Step(machine._dispatch(state, state.attempt, now, out), tuple(out))


def _no_route(machine: Cascade, state: CascadeState, event: NoRoute, now: float) -> Step:
    return machine._fail_channel(state, "channel_failed", event.reason, now, [])


def _accepted(machine: Cascade, state: CascadeState, event: ProviderAccepted, now: float) -> Step:
    out: list[Command] = []
    if machine.message.channels[state.channel - 1].success == "accepted":
        return machine._succeed(state, now, out)
    state = msgspec.structs.replace(state, phase="waiting")
    timeout_s = round(max(0.0, state.deadline - now), 3)
    return Step(machine._emit(state, "waiting", now, out, timeout_s=timeout_s), tuple(out))


def _dispatch_error(machine: Cascade, state: CascadeState, event: DispatchError, now: float) -> Step:
    out: list[Command] = []
    if state.route_index + 1 < len(state.routes):  # the router's own fallback first
        failed_route = state.routes[state.route_index]
        state = machine._record(state, "attempt_failed", now, failed_route, event.reason)
        state = msgspec.structs.replace(state, route_index=state.route_index + 1)
        return Step(machine._dispatch(state, state.attempt + 1, now, out), tuple(out))
    reason = event.reason if len(state.routes) <= 1 else f"routes_exhausted: {event.reason}"
    return machine._fail_channel(state, "channel_failed", reason, now, out)


def _delivered(machine: Cascade, state: CascadeState, event: Delivered, now: float) -> Step:
    out: list[Command] = []
    state = msgspec.structs.replace(state, stat=event.stat, err=event.err)
    if machine.message.channels[state.channel - 1].success == "read" and not event.read:
        if state.phase == "waiting":
            return Step(state, ignored="delivered, but this channel counts reads")
        state = msgspec.structs.replace(state, phase="waiting")
        timeout_s = round(max(0.0, state.deadline - now), 3)
        return Step(machine._emit(state, "waiting", now, out, timeout_s=timeout_s), tuple(out))
    return machine._succeed(state, now, out)


def _failed(machine: Cascade, state: CascadeState, event: Failed, now: float) -> Step:
    state = msgspec.structs.replace(state, stat=event.stat, err=event.err)
    reason = event.why if not event.stat else f"{event.why}: {event.stat}"
    return machine._fail_channel(state, "channel_failed", reason, now, [])


def _timeout(machine: Cascade, state: CascadeState, event: Timeout, now: float) -> Step:
    if now < state.deadline - _EARLY_S:
        return Step(state, ignored=f"timer early by {state.deadline - now:.3f} s")
    return machine._fail_channel(state, "timeout", "timeout", now, [])


def _table() -> dict[tuple[Phase, type[Any]], Handler]:
    table: dict[tuple[Phase, type[Any]], Handler] = {("created", Start): _start}
    table[("routing", RouteFound)] = _route_found
    table[("routing", NoRoute)] = _no_route
    active: tuple[Phase, ...] = ("routing", "sending", "waiting")
    for phase in active:
        table[(phase, Timeout)] = _timeout
    for phase in active[1:]:
        table[(phase, Delivered)] = _delivered
        table[(phase, Failed)] = _failed
    table[("sending", ProviderAccepted)] = _accepted
    table[("sending", DispatchError)] = _dispatch_error
    return table


TRANSITIONS: Final = _table()
"""(phase, event type) -> handler. A pair not listed is ignored: the event changes nothing."""
