"""Webhook signing and retry schedule; the recorder's projection of events into rows."""

from __future__ import annotations

from appliance.daemons.recorder import project
from appliance.domain import webhooks
from appliance.domain.events import Event


def test_signature_verifies_and_binds_body_secret_and_time() -> None:
    header = webhooks.sign("s3cret-s3cret-16", 1_700_000_000, '{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert webhooks.verify("s3cret-s3cret-16", header, '{"a":1}', now=1_700_000_100)
    assert not webhooks.verify("s3cret-s3cret-16", header, '{"a":2}', now=1_700_000_100)
    assert not webhooks.verify("other-secret-123", header, '{"a":1}', now=1_700_000_100)
    assert not webhooks.verify("s3cret-s3cret-16", header, '{"a":1}', now=1_700_001_000)  # replayed late
    assert not webhooks.verify("s3cret-s3cret-16", "garbage", '{"a":1}', now=1_700_000_000)


def test_retries_back_off_and_stop_after_24_hours() -> None:
    created = 1_000.0
    assert webhooks.next_attempt(1, created, created) == created + 10
    assert webhooks.next_attempt(2, created, created) == created + 20
    assert webhooks.next_attempt(20, created, created) == created + 3600
    assert webhooks.next_attempt(5, created, created + 24 * 3600 - 5) is None


def test_projection_makes_a_row_per_accepted_message_and_per_event() -> None:
    accepted = Event(
        kind="accepted",
        id="m1:accepted",
        message_id="m1",
        tenant_id="t",
        at=1.0,
        state="created",
        message={"origin": "rest", "estimated_cost": 0.05, "channels": []},
    )
    dlr = Event(kind="dlr", id="m1:dlr:1", message_id="m1", tenant_id="t", at=2.0, state="1_delivered")
    messages, events = project([accepted, dlr])
    assert [(m.id, m.state, m.estimated_cost) for m in messages] == [("m1", "created", 0.05)]
    assert [(e.kind, e.state) for e in events] == [("accepted", "created"), ("dlr", "1_delivered")]


def test_an_accepted_group_expands_to_one_accepted_event_per_message() -> None:
    from appliance.domain.events import EVENT_DECODER, expand

    group = EVENT_DECODER.decode(
        b'{"kind":"accepted","id":"group:ab:accepted","message_id":"m1","tenant_id":"t1","at":5.0,'
        b'"state":"created","messages":[{"id":"m1","created_at":1.0,"origin":"smpp"},{"id":"m2"},{"no":"id"}]}'
    )
    events = expand(group)
    assert [(e.id, e.message_id, e.at, e.state, e.data) for e in events] == [
        ("m1:accepted", "m1", 1.0, "created", {"origin": "smpp"}),
        ("m2:accepted", "m2", 5.0, "created", {"origin": "rest"}),
    ]
    assert events[0].message == {"id": "m1", "created_at": 1.0, "origin": "smpp"}
    single = EVENT_DECODER.decode(b'{"kind":"dlr","id":"m1:dlr","message_id":"m1","tenant_id":"t1","at":2.0}')
    assert expand(single) == [single]
