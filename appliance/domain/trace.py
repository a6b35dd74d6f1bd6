"""A message's trace: its events turned into a readable timeline of states, attempts, routes and costs.

Pure: the admin API hands in the stored events (as `Event`s) and serves the result to
`hermesctl message show|trace`; the recorder uses `event_cost` and `moves_state` so that the stored
cost and state follow the same rules as the trace. Events come from the cascade contract
(docs: notes/cascade_contract.md): cascade events carry the new `state`, executors' events
(`submitted`, `rejected`, `dlr`, `bounce`, `deferred`) carry `data.attempt`.

The state rule: events move the state in time order, except that once a final event (`delivered`,
`failed`, `dead_lettered`) has been seen for attempt N, only events of a later attempt (N+1..., as a
DLQ replay produces) may move it again. So a late DLR or a late timeout never rewinds a finished
message, while a replayed one starts moving again.

Cost is the route price of every dispatched attempt (the only place events name a price), so an attempt
the provider rejected at dispatch is counted too; the trace shows each attempt's outcome beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from appliance.domain.events import FINAL_KINDS, Event
from appliance.domain.states import channel_of

_TERMINAL_OUTCOMES: Final = frozenset({"delivered", "failed", "rejected", "timeout"})
_OUTCOME_OF_KIND: Final[Mapping[str, str]] = {
    "submitted": "submitted",
    "rejected": "rejected",
    "bounce": "failed",
    "timeout": "timeout",
    "channel_failed": "failed",
    "channel_delivered": "delivered",  # notify_all: this channel succeeded, the cascade goes on
    "delivered": "delivered",
    "failed": "failed",
}


class TraceStep(msgspec.Struct, frozen=True, kw_only=True):
    """One event as a line of the timeline."""

    at: float
    kind: str
    event_id: str
    state: str | None = None
    applied: bool = True  # False: a late event that did not move the state
    attempt: int | None = None
    channel_index: int | None = None
    channel: str | None = None
    to: str | None = None
    carrier: str | None = None
    cost: float | None = None
    currency: str | None = None
    detail: str = ""


class AttemptSummary(msgspec.Struct, kw_only=True):
    """One attempt (one try on one channel and route) and how it ended."""

    attempt: int
    channel_index: int | None = None
    channel: str | None = None
    to: str | None = None
    carrier: str | None = None
    route_kind: str | None = None
    price: float | None = None
    currency: str | None = None
    dispatched_at: float | None = None
    outcome: str = "pending"  # pending, submitted, delivered, failed, rejected, timeout
    outcome_at: float | None = None
    reason: str | None = None


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    tenant_id: str
    state: str
    final_kind: str | None
    highest_attempt: int
    cost: float
    currency: str | None
    attempts: tuple[AttemptSummary, ...]
    steps: tuple[TraceStep, ...]


def attempt_of(data: Mapping[str, Any]) -> int | None:
    """The attempt number an event names, or None."""
    value = data.get("attempt")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def highest_attempt(events: Iterable[Event]) -> int:
    """The highest attempt number any event names (0 if none): the `attempt_base` of a replay."""
    return max((a for e in events if (a := attempt_of(e.data)) is not None), default=0)


def _route(data: Mapping[str, Any]) -> Mapping[str, Any]:
    route = data.get("route")
    return route if isinstance(route, Mapping) else {}


def _target(route: Mapping[str, Any]) -> str | None:
    """Where a route goes: an SMS carrier, an email pool or a channel adapter."""
    return _text(route.get("carrier") or route.get("pool") or route.get("adapter"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def event_cost(kind: str, data: Mapping[str, Any]) -> float | None:
    """What an event costs: the route price of a `dispatched` attempt (None when it names none)."""
    return _number(_route(data).get("price")) if kind == "dispatched" else None


def moves_state(final_attempt: int | None, kind: str, attempt: int | None) -> bool:
    """Whether an event with a `state` may move a message whose latest final event was for
    `final_attempt` (None: no final event yet). Time order is checked separately."""
    del kind  # every kind follows the same rule; the parameter documents what is decided on
    if final_attempt is None:
        return True
    return attempt is not None and attempt > final_attempt


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _detail(kind: str, data: Mapping[str, Any]) -> str:
    """A short human description of what the event says."""
    route = _route(data)
    parts: list[str] = []
    if kind == "dispatched":
        carrier = _target(route)
        if carrier:
            parts.append(f"via {carrier}" + (f" ({route['kind']})" if route.get("kind") else ""))
        if _number(route.get("price")) is not None:
            parts.append(f"{route['price']} {route.get('currency') or ''}".strip())
    elif kind == "dlr":
        parts.append(" ".join(p for p in (_text(data.get("stat")), _text(data.get("err"))) if p))
        if data.get("attempt_outcome"):
            parts.append(f"-> {data['attempt_outcome']}")
        if data.get("read"):
            parts.append("read")
    elif kind == "waiting" and _number(data.get("timeout_s")) is not None:
        parts.append(f"timeout {data['timeout_s']}s")
    elif kind == "accepted" and data.get("origin"):
        parts.append(f"via {data['origin']}")
    for key in ("reason", "status", "error"):
        if _text(data.get(key)):
            parts.append(f"{key}: {data[key]}")
    return ", ".join(p for p in parts if p)


def _channel_index(event: Event) -> int | None:
    """The 1-based channel an event is about: its `channel_index`, else the one its state names."""
    value = event.data.get("channel_index")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return channel_of(event.state) if event.state else None


def _settle(summary: AttemptSummary, outcome: str, at: float, data: Mapping[str, Any]) -> None:
    """Record an attempt's outcome: the first terminal one wins (a late DLR changes nothing)."""
    if summary.outcome in _TERMINAL_OUTCOMES:
        return
    if outcome == "submitted" and summary.outcome != "pending":
        return
    summary.outcome, summary.outcome_at = outcome, at
    reason = _text(data.get("reason")) or " ".join(
        p for p in (_text(data.get("stat")), _text(data.get("err"))) if p
    )
    summary.reason = reason or summary.reason


def build_trace(
    message_id: str, tenant_id: str, events: Sequence[Event], *, initial_state: str = "created"
) -> Trace:
    """The timeline of one message from its events, in time order (ties keep the given order)."""
    ordered = sorted(events, key=lambda e: e.at)
    attempts: dict[int, AttemptSummary] = {}
    steps: list[TraceStep] = []
    state, state_at, final_attempt, final_kind = initial_state, float("-inf"), None, None
    cost, currency = 0.0, None
    for event in ordered:
        data = event.data
        attempt = attempt_of(data)
        summary = attempts.setdefault(attempt, AttemptSummary(attempt=attempt)) if attempt else None
        route = _route(data)
        price = event_cost(event.kind, data)
        if event.kind == "dispatched" and summary is not None:
            summary.channel_index = _channel_index(event)
            summary.channel = _text(data.get("channel")) or summary.channel
            summary.to = _text(data.get("to")) or summary.to
            summary.carrier = _target(route)
            summary.route_kind = _text(route.get("kind"))
            summary.price = price
            summary.currency = _text(route.get("currency"))
            summary.dispatched_at = event.at
        if price is not None:
            cost += price
            currency = currency or _text(route.get("currency"))
        if event.kind == "dlr" and summary is not None:
            outcome = data.get("attempt_outcome")
            if outcome in ("delivered", "failed"):
                _settle(summary, str(outcome), event.at, data)
        elif event.kind in _OUTCOME_OF_KIND and summary is not None:
            _settle(summary, _OUTCOME_OF_KIND[event.kind], event.at, data)
        applied = True
        if event.state is not None:
            applied = event.at >= state_at and moves_state(final_attempt, event.kind, attempt)
            if applied:
                state, state_at = event.state, event.at
                if event.kind in FINAL_KINDS:
                    final_attempt, final_kind = attempt or 0, event.kind
        steps.append(
            TraceStep(
                at=event.at,
                kind=event.kind,
                event_id=event.id,
                state=event.state,
                applied=applied,
                attempt=attempt,
                channel_index=summary.channel_index if summary else _channel_index(event),
                channel=_text(data.get("channel")) or (summary.channel if summary else None),
                to=_text(data.get("to")) or (summary.to if summary else None),
                carrier=summary.carrier if summary else None,
                cost=price,
                currency=_text(route.get("currency")) if price is not None else None,
                detail=_detail(event.kind, data),
            )
        )
    return Trace(
        message_id=message_id,
        tenant_id=tenant_id,
        state=state,
        final_kind=final_kind,
        highest_attempt=highest_attempt(ordered),
        cost=round(cost, 6),
        currency=currency,
        attempts=tuple(attempts[a] for a in sorted(attempts)),
        steps=tuple(steps),
    )
