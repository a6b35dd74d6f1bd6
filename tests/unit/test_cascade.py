"""The cascade state machine, driven without a bus: every state x every event, late and duplicate
events, per-channel options, and property checks over random event sequences."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.cascade import (
    EVENT_TYPES,
    Cascade,
    CascadeEvent,
    CascadeState,
    Delivered,
    Dispatch,
    DispatchError,
    Emit,
    Failed,
    Finish,
    NoRoute,
    ProviderAccepted,
    RequestRoute,
    Route,
    RouteFound,
    Start,
    StartTimer,
    Step,
    Timeout,
)
from appliance.domain.message import ChannelTarget, Message, SuccessWhen

T0 = 1_000.0
DIRECT = Route("telia_dk", "direct", 0.02, "EUR")
AGGREGATOR = Route("sim", "aggregator", 0.03, "EUR")


def message(
    *channels: str,
    success: SuccessWhen = "delivered",
    notify_all: bool = False,
    attempt_base: int = 0,
    timeout_s: float | None = 10.0,
) -> Message:
    addresses = {"sms": "+4528123456", "email": "a@b.test", "push": "device-1"}
    return Message(
        id="msg_1",
        tenant_id="tn_1",
        origin="rest",
        channels=tuple(
            ChannelTarget(channel=c, to=addresses.get(c, "x"), timeout_s=timeout_s, success=success)
            for c in channels
        ),
        created_at=T0 - 1,
        body="hi",
        metadata={"order": "42"},
        notify_all=notify_all,
        attempt_base=attempt_base,
    )


def kinds(step: Step) -> list[str]:
    return [c.kind for c in step.commands if isinstance(c, Emit)]


def of(step: Step, kind: type[Any]) -> list[Any]:
    return [c for c in step.commands if isinstance(c, kind)]


class Driver:
    """Feeds events in order, keeping the state; `at` advances the clock."""

    def __init__(self, msg: Message, defaults: dict[str, float] | None = None) -> None:
        self.machine = Cascade(msg, defaults)
        self.state = self.machine.initial()
        self.now = T0
        self.emitted: list[Emit] = []
        self.finished: list[Finish] = []

    def feed(self, event: CascadeEvent, at: float | None = None) -> Step:
        self.now = self.now if at is None else at
        step = self.machine.handle(self.state, event, self.now)
        self.state = step.state
        self.emitted += of(step, Emit)
        self.finished += of(step, Finish)
        return step


# ----------------------------------------------------------------------------------- the main paths
def test_sms_delivered_on_the_first_channel_is_terminal() -> None:
    d = Driver(message("sms", "email"))
    step = d.feed(Start())
    assert d.state.name == "1_sending" and d.state.phase == "routing"
    assert of(step, RequestRoute) == [RequestRoute(attempt=1, channel_index=1, to="+4528123456")]
    assert of(step, StartTimer) == [StartTimer(attempt=1, due=T0 + 10)]
    step = d.feed(RouteFound(1, (DIRECT, AGGREGATOR)))
    [dispatch] = of(step, Dispatch)
    assert (dispatch.attempt, dispatch.route, dispatch.expires_at) == (1, DIRECT, T0 + 10)
    assert kinds(step) == ["dispatched"] and d.state.name == "1_sending"
    assert step.commands[-1].data["route"] == {  # type: ignore[union-attr]
        "carrier": "telia_dk",
        "kind": "direct",
        "price": 0.02,
        "currency": "EUR",
    }
    assert kinds(d.feed(ProviderAccepted(1))) == ["waiting"] and d.state.name == "1_waiting"
    step = d.feed(Delivered(1, stat="DELIVRD", err="000"))
    assert kinds(step) == ["delivered"] and d.state.name == "1_delivered" and d.state.terminal
    assert d.finished == [Finish("delivered")]
    final = step.commands[0]
    assert isinstance(final, Emit) and final.state == "1_delivered"
    for key in ("origin", "metadata", "channel", "to", "sender", "created_at", "attempt", "stat", "err"):
        assert key in final.data
    assert final.data["metadata"] == {"order": "42"} and final.data["stat"] == "DELIVRD"


def test_dlr_failure_moves_to_the_second_channel_which_delivers() -> None:
    d = Driver(message("sms", "email"))
    d.feed(Start())
    d.feed(RouteFound(1, (AGGREGATOR,)))
    d.feed(ProviderAccepted(1))
    step = d.feed(Failed(1, stat="UNDELIV", err="001"), at=T0 + 2)
    assert kinds(step) == ["channel_failed", "dispatched"]
    assert [e.state for e in of(step, Emit)] == ["1_failed", "2_sending"]
    [dispatch] = of(step, Dispatch)
    assert (dispatch.attempt, dispatch.channel, dispatch.route) == (2, "email", Route("default", "pool"))
    assert of(step, StartTimer) == [StartTimer(attempt=2, due=T0 + 12)]
    d.feed(ProviderAccepted(2))
    assert kinds(d.feed(Delivered(2))) == ["delivered"] and d.state.name == "2_delivered"


def test_timeout_moves_on_and_the_late_dlr_changes_nothing() -> None:
    d = Driver(message("sms", "email"))
    d.feed(Start())
    d.feed(RouteFound(1, (AGGREGATOR,)))
    d.feed(ProviderAccepted(1))
    early = d.feed(Timeout(1), at=T0 + 5)
    assert early.ignored and early.commands == () and d.state.name == "1_waiting"
    step = d.feed(Timeout(1), at=T0 + 10)
    assert kinds(step) == ["timeout", "dispatched"] and d.state.name == "2_sending"
    before = d.state
    late = d.feed(Delivered(1), at=T0 + 11)
    assert late.ignored and late.commands == () and d.state == before
    assert d.feed(Timeout(1), at=T0 + 30).commands == ()  # the stale timer of channel 1


def test_dispatch_error_tries_the_routers_fallback_before_the_next_channel() -> None:
    d = Driver(message("sms", "email"))
    d.feed(Start())
    d.feed(RouteFound(1, (DIRECT, AGGREGATOR)))
    step = d.feed(DispatchError(1, reason="refused"))
    [dispatch] = of(step, Dispatch)
    assert (dispatch.attempt, dispatch.channel_index, dispatch.route) == (2, 1, AGGREGATOR)
    assert kinds(step) == ["dispatched"] and d.state.name == "1_sending"
    assert of(step, StartTimer) == []  # the channel's deadline stands
    assert d.state.history[-2].kind == "attempt_failed" and d.state.history[-2].route == DIRECT
    step = d.feed(DispatchError(2, reason="refused"))
    assert kinds(step) == ["channel_failed", "dispatched"]
    assert of(step, Emit)[0].data["reason"] == "routes_exhausted: refused"
    assert d.state.channel == 2 and d.state.attempt == 3


def test_no_route_fails_the_channel_and_the_last_failure_dead_letters() -> None:
    d = Driver(message("sms", "sms"))
    d.feed(Start())
    step = d.feed(NoRoute(1, reason="no_route: invalid number"))
    assert kinds(step) == ["channel_failed"] and of(step, RequestRoute)[0].attempt == 2
    assert d.state.name == "2_sending"
    step = d.feed(RouteFound(2, ()))
    assert kinds(step) == ["channel_failed", "dead_lettered"]
    final = of(step, Emit)[-1]
    assert final.state == "all_failed" and d.state.terminal and d.finished == [Finish("all_failed")]
    history = final.data["history"]
    assert [h["kind"] for h in history] == ["channel_failed", "channel_failed", "dead_lettered"]
    assert history[0]["reason"] == "no_route: invalid number"


def test_dead_letter_history_holds_every_attempt_route_and_price() -> None:
    d = Driver(message("sms", "email"))
    d.feed(Start())
    d.feed(RouteFound(1, (DIRECT,)))
    d.feed(ProviderAccepted(1))
    d.feed(Timeout(1), at=T0 + 10)
    step = d.feed(Failed(2, why="bounced"), at=T0 + 11)
    final = of(step, Emit)[-1]
    assert final.kind == "dead_lettered" and final.attempt == 2
    routes = [h.get("route") for h in final.data["history"] if h["kind"] == "dispatched"]
    assert routes == [DIRECT.as_data(), Route("default", "pool").as_data()]
    assert [h["state"] for h in final.data["history"]] == [
        "1_sending",
        "1_waiting",
        "1_failed",
        "2_sending",
        "2_failed",
        "all_failed",
    ]


# ------------------------------------------------------------------------------ per-channel options
def test_success_on_acceptance_ends_at_submitted() -> None:
    d = Driver(message("push", "sms", success="accepted"))
    step = d.feed(Start())
    assert of(step, Dispatch)[0].route == Route("push", "adapter")
    assert kinds(d.feed(ProviderAccepted(1))) == ["delivered"] and d.state.name == "1_delivered"


def test_success_on_read_waits_for_the_read_receipt() -> None:
    d = Driver(message("whatsapp", "sms", success="read"))
    d.feed(Start())
    d.feed(ProviderAccepted(1))
    assert d.feed(Delivered(1)).ignored and d.state.name == "1_waiting"
    assert kinds(d.feed(Delivered(1, read=True))) == ["delivered"]


def test_delivered_without_a_read_in_sending_waits() -> None:
    d = Driver(message("whatsapp", success="read"))
    d.feed(Start())
    assert kinds(d.feed(Delivered(1))) == ["waiting"] and d.state.name == "1_waiting"


def test_notify_all_tries_every_channel_and_ends_delivered_if_any_was() -> None:
    d = Driver(message("email", "sms", "push", notify_all=True))
    d.feed(Start())
    step = d.feed(Delivered(1))
    assert kinds(step) == ["channel_delivered"] and of(step, Emit)[0].state == "1_delivered"
    assert d.state.channel == 2 and not d.state.terminal and of(step, RequestRoute)
    d.feed(NoRoute(2))
    step = d.feed(Failed(3), at=T0 + 1)
    assert kinds(step) == ["channel_failed", "delivered"] and d.state.name == "1_delivered"
    assert of(step, Emit)[-1].data["delivered_channels"] == [1]
    assert d.finished == [Finish("delivered")]


def test_notify_all_ending_with_a_success_on_the_last_channel() -> None:
    d = Driver(message("email", "push", notify_all=True))
    d.feed(Start())
    d.feed(Delivered(1))
    assert kinds(d.feed(Delivered(2))) == ["delivered"] and d.state.name == "2_delivered"
    assert d.state.delivered == (1, 2)


def test_timeouts_come_from_the_message_else_the_config_else_the_seed() -> None:
    msg = message("sms", "email", "push", timeout_s=None)
    msg = msgspec.structs.replace(
        msg, channels=(msgspec.structs.replace(msg.channels[0], timeout_s=3.0), *msg.channels[1:])
    )
    assert Cascade(msg, {"email": 100.0}).timeouts == (3.0, 100.0, 30.0)


def test_a_replay_numbers_its_attempts_after_the_base() -> None:
    d = Driver(message("sms", attempt_base=7))
    step = d.feed(Start())
    assert of(step, RequestRoute)[0].attempt == 8
    assert d.feed(RouteFound(1, (DIRECT,))).ignored  # the old run's attempt
    assert of(d.feed(RouteFound(8, (DIRECT,))), Dispatch)[0].attempt == 8


def test_a_message_without_channels_is_dead_lettered_at_once() -> None:
    d = Driver(msgspec.structs.replace(message("sms"), channels=()))
    assert kinds(d.feed(Start())) == ["dead_lettered"] and d.state.name == "all_failed"


# ------------------------------------------------------------------------- every state x every event
def _states() -> dict[str, CascadeState]:
    """One state per phase (and the second channel's), reached by real transitions."""
    d = Driver(message("sms", "email"))
    found = {"created": d.state}
    d.feed(Start())
    found["routing"] = d.state
    d.feed(RouteFound(1, (DIRECT, AGGREGATOR)))
    found["sending"] = d.state
    d.feed(ProviderAccepted(1))
    found["waiting"] = d.state
    d.feed(Timeout(1), at=T0 + 10)
    found["sending2"] = d.state
    d.feed(ProviderAccepted(2))
    found["waiting2"] = d.state
    done = Driver(message("sms", "email"))
    done.feed(Start())
    done.feed(RouteFound(1, (DIRECT,)))
    done.feed(Delivered(1))
    found["delivered"] = done.state
    failed = Driver(message("sms"))
    failed.feed(Start())
    failed.feed(NoRoute(1))
    found["all_failed"] = failed.state
    return found


STATES = _states()


def _event(kind: type[Any], attempt: int) -> CascadeEvent:
    samples: dict[type[Any], CascadeEvent] = {
        Start: Start(),
        RouteFound: RouteFound(attempt, (AGGREGATOR,)),
        NoRoute: NoRoute(attempt),
        ProviderAccepted: ProviderAccepted(attempt),
        DispatchError: DispatchError(attempt),
        Delivered: Delivered(attempt),
        Failed: Failed(attempt),
        Timeout: Timeout(attempt),
    }
    return samples[kind]


# What each (state, event for the current attempt) leads to; None = the event changes nothing.
EXPECTED: dict[tuple[str, type[Any]], str | None] = {
    ("created", Start): "1_sending",
    ("routing", RouteFound): "1_sending",
    ("routing", NoRoute): "2_sending",
    ("routing", Timeout): "2_sending",
    ("sending", ProviderAccepted): "1_waiting",
    ("sending", DispatchError): "1_sending",  # the next route
    ("sending", Delivered): "1_delivered",
    ("sending", Failed): "2_sending",
    ("sending", Timeout): "2_sending",
    ("waiting", Delivered): "1_delivered",
    ("waiting", Failed): "2_sending",
    ("waiting", Timeout): "2_sending",
    ("sending2", ProviderAccepted): "2_waiting",
    ("sending2", DispatchError): "all_failed",
    ("sending2", Delivered): "2_delivered",
    ("sending2", Failed): "all_failed",
    ("sending2", Timeout): "all_failed",
    ("waiting2", Delivered): "2_delivered",
    ("waiting2", Failed): "all_failed",
    ("waiting2", Timeout): "all_failed",
}


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
@pytest.mark.parametrize("label", list(STATES))
def test_every_state_and_every_event(label: str, kind: type[Any]) -> None:
    state = STATES[label]
    machine = Cascade(message("sms", "email"))
    key = state.channel_attempt if kind is Timeout else state.attempt
    now = T0 + 100  # past every deadline
    step = machine.handle(state, _event(kind, key), now)
    expected = EXPECTED.get((label, kind))
    if expected is None:
        assert step.state == state and step.commands == () and step.ignored
    else:
        assert step.ignored is None and step.state.name == expected and step.commands
    # the same event again, or one for another attempt, changes nothing afterwards either
    again = machine.handle(step.state, _event(kind, key), now)
    if kind is not Start and expected is not None and (label, kind) != ("sending", DispatchError):
        assert again.state == step.state and again.commands == ()
    for other in (key - 1, key + 5):
        if kind is Start:
            break
        stale = machine.handle(state, _event(kind, other), now)
        assert stale.state == state and stale.commands == ()


def test_the_table_is_what_the_test_expects() -> None:
    from appliance.domain.cascade import TRANSITIONS

    listed = {(phase, kind) for phase, kind in TRANSITIONS}
    expected = {(label.rstrip("2"), kind) for label, kind in EXPECTED}
    assert listed == expected


def test_a_second_dlr_and_a_dlr_for_an_earlier_channel_after_a_later_delivered() -> None:
    d = Driver(message("sms", "email"))
    d.feed(Start())
    d.feed(RouteFound(1, (AGGREGATOR,)))
    d.feed(ProviderAccepted(1))
    d.feed(Timeout(1), at=T0 + 10)
    d.feed(Delivered(2), at=T0 + 11)
    final = d.state
    for late in (Delivered(1), Failed(1), Delivered(2), Failed(2), ProviderAccepted(2), Timeout(2), Start()):
        step = d.feed(late, at=T0 + 500)
        assert step.commands == () and d.state == final
    assert d.finished == [Finish("delivered")]


def test_the_state_round_trips_through_msgpack_and_json() -> None:
    state = STATES["waiting2"]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=CascadeState) == state
    assert msgspec.json.decode(msgspec.json.encode(state), type=CascadeState) == state


# --------------------------------------------------------------------------------- property checks
_events = st.one_of(
    st.just(Start()),
    st.builds(
        RouteFound, st.integers(0, 6), st.lists(st.sampled_from([DIRECT, AGGREGATOR]), max_size=2).map(tuple)
    ),
    st.builds(NoRoute, st.integers(0, 6)),
    st.builds(ProviderAccepted, st.integers(0, 6)),
    st.builds(DispatchError, st.integers(0, 6)),
    st.builds(Delivered, st.integers(0, 6), st.booleans()),
    st.builds(Failed, st.integers(0, 6), st.sampled_from(["failed", "bounced", "rejected"])),
    st.builds(Timeout, st.integers(0, 6)),
)


@settings(max_examples=400, deadline=None)
@given(
    channels=st.lists(st.sampled_from(["sms", "email", "push", "whatsapp"]), min_size=1, max_size=4),
    success=st.sampled_from(["accepted", "delivered", "read"]),
    notify_all=st.booleans(),
    events=st.lists(st.tuples(_events, st.floats(0, 50)), max_size=40),
)
def test_no_sequence_of_events_ends_twice_or_raises(
    channels: list[str], success: SuccessWhen, notify_all: bool, events: list[tuple[CascadeEvent, float]]
) -> None:
    d = Driver(message(*channels, success=success, notify_all=notify_all))
    emitted_ids: list[str] = []
    dispatched: list[int] = []
    for event, dt in events:
        before = d.state
        step = d.feed(event, at=d.now + dt)
        emitted_ids += [e.event_id for e in of(step, Emit)]
        dispatched += [c.attempt for c in of(step, Dispatch)]
        if step.ignored:
            assert step.state == before and step.commands == ()
        if before.terminal:
            assert step.commands == ()
        assert d.state.attempt >= before.attempt
    finals = [e for e in d.emitted if e.kind in ("delivered", "dead_lettered")]
    assert len(finals) <= 1 and len(d.finished) == len(finals)
    assert (len(finals) == 1) == d.state.terminal
    assert len(emitted_ids) == len(set(emitted_ids))  # deterministic ids never collide
    assert len(dispatched) == len(set(dispatched))  # one dispatch per attempt
    if finals:
        assert finals[0].state == d.state.name
