"""What the cascade hears (executors' events, router answers) and what it sends (dispatch payloads)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from appliance.daemons.cascade.engine import Record, dispatch_payload
from appliance.domain.cascade import (
    Cascade,
    CascadeEvent,
    Delivered,
    Dispatch,
    DispatchError,
    Failed,
    NoRoute,
    ProviderAccepted,
    Route,
    RouteFound,
    Start,
)
from appliance.domain.cascade_inputs import from_executor, from_route_plan
from appliance.domain.dispatch import ChannelDispatch, SmsDispatch, expired
from appliance.domain.events import Event
from appliance.domain.message import ChannelTarget, Message


def event(kind: str, **data: Any) -> Event:
    return Event(kind=kind, id="e", message_id="msg_1", tenant_id="tn_1", at=1.0, data=data)


@pytest.mark.parametrize(
    ("given", "meaning"),
    [
        (event("submitted", attempt=2, carrier="sim"), ProviderAccepted(2)),
        (
            event("rejected", attempt=2, reason="refused", status_name="ESME_RSUBMITFAIL"),
            DispatchError(2, "refused (ESME_RSUBMITFAIL)"),
        ),
        (event("rejected", attempt=3, reason="expired"), DispatchError(3, "expired")),
        (
            event("dlr", attempt=1, attempt_outcome="delivered", stat="DELIVRD", err="000"),
            Delivered(1, stat="DELIVRD", err="000"),
        ),
        (event("dlr", attempt=1, attempt_outcome="delivered", read=True), Delivered(1, read=True)),
        (
            event("dlr", attempt=1, attempt_outcome="failed", stat="UNDELIV", err="001"),
            Failed(1, stat="UNDELIV", err="001"),
        ),
        (event("dlr", attempt=1, attempt_outcome="pending", stat="ENROUTE"), ProviderAccepted(1)),
        (event("bounce", attempt=4, code="550"), Failed(4, "bounced", stat="550")),
        (event("deferred", attempt=4), None),
        (event("dlr", attempt_outcome="delivered"), None),  # no attempt: not the cascade's
        (event("dlr", attempt=True, attempt_outcome="delivered"), None),
        (event("submitted", attempt="1"), None),
    ],
)
def test_executor_events_mean_cascade_events(given: Event, meaning: CascadeEvent | None) -> None:
    assert from_executor(given) == meaning


def test_a_route_plan_is_the_chosen_route_then_the_fallbacks_in_order() -> None:
    plan = {
        "chosen": "telia_dk",
        "kind": "direct",
        "price": 0.02,
        "currency": "EUR",
        "fallbacks": ["sim", "retail_x"],
        "candidates": [
            {"carrier": "telia_dk", "kind": "direct", "price": 0.02, "currency": "EUR"},
            {"carrier": "sim", "kind": "aggregator", "price": 0.03, "currency": "EUR"},
            {"carrier": "retail_x", "kind": "retail", "price": 0.05, "currency": "EUR"},
        ],
    }
    assert from_route_plan(3, plan) == RouteFound(
        3,
        (
            Route("telia_dk", "direct", 0.02, "EUR"),
            Route("sim", "aggregator", 0.03, "EUR"),
            Route("retail_x", "retail", 0.05, "EUR"),
        ),
    )


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"error": {"code": "invalid_number", "message": "too short"}}, "no_route: too short"),
        ({"chosen": None, "reason": "every route is down"}, "no_route: every route is down"),
        ({"chosen": None}, "no_route: no usable carrier"),
        ({"error": "boom"}, "no_route: boom"),
    ],
)
def test_no_route_carries_the_routers_reason(plan: dict[str, Any], reason: str) -> None:
    assert from_route_plan(1, plan) == NoRoute(1, reason)


def test_expires_at_zero_never_expires() -> None:
    assert not expired(0.0, 1e12)
    assert not expired(100.0, 100.0)
    assert expired(100.0, 100.001)


MESSAGE = Message(
    id="msg_1",
    tenant_id="tn_1",
    origin="rest",
    channels=(ChannelTarget(channel="sms", to="+4528123456"), ChannelTarget(channel="email", to="a@b.test")),
    created_at=5.0,
    body="hi",
    subject="Hello",
    sender="Acme",
    metadata={"k": "v"},
    priority="high",
)


def test_dispatch_payloads_per_channel() -> None:
    subject, body = dispatch_payload(
        MESSAGE, Dispatch(1, 1, "sms", "+4528123456", Route("sim", "aggregator"), expires_at=65.0)
    )
    sms = msgspec.json.decode(body, type=SmsDispatch)
    assert subject == "dispatch.sms.sim"
    assert (sms.attempt, sms.carrier, sms.to, sms.body, sms.priority, sms.expires_at) == (
        1,
        "sim",
        "+4528123456",
        "hi",
        1,
        65.0,
    )
    subject, body = dispatch_payload(
        MESSAGE, Dispatch(2, 2, "email", "a@b.test", Route("default", "pool"), expires_at=365.0)
    )
    email = msgspec.json.decode(body, type=ChannelDispatch)
    assert subject == "dispatch.email.default"
    assert (email.route, email.subject, email.metadata, email.expires_at) == (
        "default",
        "Hello",
        {"k": "v"},
        365.0,
    )
    subject, _ = dispatch_payload(
        MESSAGE, Dispatch(3, 3, "push", "tok", Route("push", "adapter"), expires_at=1.0)
    )
    assert subject == "dispatch.adapter.push"


def test_the_stored_record_round_trips_with_its_outbox() -> None:
    machine = Cascade(MESSAGE)
    step = machine.handle(machine.initial(), Start(), 10.0)
    step = machine.handle(step.state, RouteFound(1, (Route("sim", "aggregator", 0.01, "EUR"),)), 10.0)
    record = Record(MESSAGE, step.state, "accepted:0", step.commands)
    again = msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=Record)
    assert again == record
    assert len(msgspec.msgpack.encode(record)) < 1024  # a waiting message costs little in the bucket
