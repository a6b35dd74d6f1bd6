"""The message trace (domain/trace.py), state names and groups (domain/states.py), the recorder's
dead-letter projection, and hermesctl's time parsing: all pure, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.daemons.recorder import dead_letters, project
from appliance.domain.events import Event
from appliance.domain.states import channel_of, group_of, is_state, parse_state_filter
from appliance.domain.trace import build_trace, event_cost, highest_attempt, moves_state
from hermesctl.commands.message import parse_duration, parse_since

T0 = 1_800_000_000.0
ROUTE = {"carrier": "telia_dk", "kind": "direct", "price": 0.05, "currency": "EUR"}


def _ev(kind: str, at: float, state: str | None = None, **data: Any) -> Event:
    return Event(
        kind=kind, id=f"m1:{kind}:{at}", message_id="m1", tenant_id="t1", at=T0 + at, state=state, data=data
    )


def cascade_run() -> list[Event]:
    """SMS times out, email fails, dead letter: the contract's events of that run."""
    return [
        _ev("accepted", 0, "created", origin="rest"),
        _ev(
            "dispatched",
            1,
            "1_sending",
            channel_index=1,
            channel="sms",
            to="+4520000000",
            attempt=1,
            route=ROUTE,
        ),
        _ev("submitted", 2, attempt=1),
        _ev("waiting", 2.5, "1_waiting", attempt=1, timeout_s=60),
        _ev("timeout", 62, "1_failed", attempt=1),
        _ev(
            "dispatched",
            62.1,
            "2_sending",
            channel_index=2,
            channel="email",
            to="a@b.example",
            attempt=2,
            route={"pool": "default", "kind": "mta", "price": 0.001, "currency": "EUR"},
        ),
        _ev("rejected", 63, attempt=2, reason="550 no such user"),
        _ev("channel_failed", 63.1, "2_failed", attempt=2, reason="550 no such user"),
        _ev("dead_lettered", 63.2, "all_failed", attempt=2, reason="all channels failed", history=[{"a": 1}]),
        _ev("dlr", 70, attempt=1, stat="DELIVRD", attempt_outcome="delivered"),  # a late DLR of the SMS
    ]


def test_trace_of_a_dead_lettered_run() -> None:
    trace = build_trace("m1", "t1", cascade_run())
    assert (trace.state, trace.final_kind, trace.highest_attempt) == ("all_failed", "dead_lettered", 2)
    assert trace.cost == pytest.approx(0.051)
    assert trace.currency == "EUR"
    sms, email = trace.attempts
    assert (sms.attempt, sms.channel_index, sms.channel, sms.carrier, sms.route_kind) == (
        1, 1, "sms", "telia_dk", "direct",
    )  # fmt: skip
    assert (sms.outcome, sms.price) == ("timeout", 0.05)  # the late DLR does not change it
    assert (email.channel, email.carrier, email.outcome, email.reason) == (
        "email", "default", "rejected", "550 no such user",
    )  # fmt: skip
    assert [s.kind for s in trace.steps][:3] == ["accepted", "dispatched", "submitted"]
    steps = {s.kind: s for s in trace.steps}
    assert steps["dispatched"].cost is not None
    assert steps["timeout"].channel == "sms"  # from its attempt's dispatch
    assert steps["channel_failed"].detail == "reason: 550 no such user"
    assert "DELIVRD" in steps["dlr"].detail and steps["dlr"].attempt == 1


def test_late_events_show_but_do_not_move_the_state() -> None:
    events = [
        _ev("dispatched", 1, "1_sending", attempt=1, route=ROUTE),
        _ev("delivered", 5, "1_delivered", attempt=1),
        _ev("timeout", 6, "1_failed", attempt=1),  # late: its attempt already ended delivered
        _ev("waiting", 4, "1_waiting", attempt=1),  # older than the state
    ]
    trace = build_trace("m1", "t1", events)
    assert trace.state == "1_delivered"
    assert [(s.kind, s.applied) for s in trace.steps] == [
        ("dispatched", True), ("waiting", True), ("delivered", True), ("timeout", False),
    ]  # fmt: skip


def test_a_replay_continues_the_trace_with_higher_attempts() -> None:
    events = [*cascade_run(), _ev("dispatched", 100, "1_sending", attempt=3, channel="sms", route=ROUTE)]
    events.append(_ev("delivered", 101, "1_delivered", attempt=3))
    trace = build_trace("m1", "t1", events)
    assert (trace.state, trace.highest_attempt, len(trace.attempts)) == ("1_delivered", 3, 3)
    assert trace.attempts[-1].outcome == "delivered"
    assert trace.cost == pytest.approx(0.101)


def test_event_rules() -> None:
    assert event_cost("dispatched", {"route": ROUTE}) == 0.05
    assert event_cost("dispatched", {"route": {"price": "x"}}) is None
    assert event_cost("submitted", {"route": ROUTE}) is None
    assert moves_state(None, "waiting", None)
    assert not moves_state(2, "dlr", 2) and not moves_state(2, "dlr", None)
    assert moves_state(2, "dispatched", 3)
    assert highest_attempt(cascade_run()) == 2
    assert highest_attempt([]) == 0
    assert build_trace("m1", "t1", []).state == "created"


@pytest.mark.parametrize(
    ("state", "valid", "channel", "group"),
    [
        ("created", True, None, "pending"),
        ("1_sending", True, 1, "pending"),
        ("12_waiting", True, 12, "pending"),
        ("3_delivered", True, 3, "delivered"),
        ("2_failed", True, 2, "pending"),
        ("all_failed", True, None, "failed"),
        ("0_sending", False, None, "pending"),
        ("delivered", False, None, "pending"),
        ("1_bogus", False, None, "pending"),
    ],
)
def test_states(state: str, valid: bool, channel: int | None, group: str) -> None:
    assert is_state(state) is valid
    assert channel_of(state) == channel
    assert group_of(state) == group


def test_state_filter_accepts_states_and_groups_only() -> None:
    assert parse_state_filter("2_delivered") == "2_delivered"
    assert parse_state_filter("pending") == "pending"
    with pytest.raises(ValueError, match="unknown state 'sent'"):
        parse_state_filter("sent")


def test_recorder_projects_dead_letters_and_costs() -> None:
    events = cascade_run()
    entries = dead_letters(events)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.message_id, entry.tenant_id, entry.attempt, entry.reason) == (
        "m1",
        "t1",
        2,
        "all channels failed",
    )
    assert entry.event_id == events[8].id and entry.history == [{"a": 1}]
    _, rows = project(events)
    assert [r.cost for r in rows if r.kind == "dispatched"] == [0.05, 0.001]
    assert all(r.cost is None for r in rows if r.kind != "dispatched")
    # no reason on the event: the history's last one; no attempt on the event: the history's highest
    bare = Event(
        kind="dead_lettered", id="x", message_id="m2", tenant_id="t1", at=T0, state="all_failed",
        data={"history": [{"attempt": 1, "reason": "timeout"}, {"attempt": 3, "reason": "bounce"}]},
    )  # fmt: skip
    assert [(e.attempt, e.reason) for e in dead_letters([bare])] == [(3, "bounce")]


def test_hermesctl_time_parsing() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("2h") == 7200
    assert parse_duration("1.5d") == 129_600
    assert parse_since("1h", now=T0) == T0 - 3600
    assert parse_since("2027-01-15", now=T0) == 1_799_971_200.0
    assert parse_since("2027-01-15T01:00:00+01:00", now=T0) == 1_799_971_200.0
    for bad in ("soon", "-1h", "1y"):
        with pytest.raises(ValueError, match="not a time"):
            parse_since(bad, now=T0)
