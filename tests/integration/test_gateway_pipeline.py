"""POST /v1/messages through all layers on a real nats-server and SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from appliance.bus.streams import ensure_streams
from appliance.domain.events import EVENT_DECODER, expand
from appliance.domain.message import Message
from tests.integration.gateway_harness import Harness, gateway_harness

SMS = {"to": "+4523456789", "channel": "sms", "body": "Your order has shipped"}


@pytest.fixture
async def gw(tmp_path: Path, nats_server: str) -> AsyncIterator[Harness]:
    async with gateway_harness(tmp_path, nats_server) as harness:
        yield harness


async def test_short_form_is_accepted_only_once_durable_on_every_stream(gw: Harness) -> None:
    tenant_id, key = await gw.tenant("acme")
    response = await gw.post(key, SMS)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["message_id"].startswith("msg_")
    assert body["state"] == "created"
    assert body["sms"] == {"parts": 1, "encoding": "gsm7"}
    assert await gw.stream_count("MESSAGES") == 1
    assert await gw.stream_count("AUDIT") == 1
    assert await gw.stream_count("EVENTS") == 1
    stored = await gw.nats.jetstream().get_last_msg("MESSAGES", f"msg.accepted.{tenant_id}")
    message = msgspec.json.decode(stored.data or b"", type=Message)
    assert message.id == body["message_id"]
    assert message.channels[0].to == "+4523456789"
    assert message.channels[0].timeout_s == 60.0
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == message.id
    event = await gw.nats.jetstream().get_last_msg("EVENTS", f"evt.{tenant_id}.accepted")
    [accepted] = expand(EVENT_DECODER.decode(event.data or b""))
    assert accepted.message is not None and accepted.id == f"{message.id}:accepted"


async def test_full_form_cascade_keeps_channel_order_and_timeouts(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    response = await gw.post(
        key,
        {
            "channels": [
                {"channel": "sms", "to": "+45 23 45 67 89", "timeout_s": 30},
                {"channel": "email", "to": "Ops@Example.COM"},
            ],
            "body": "Hello",
            "subject": "Hi",
            "from": "noreply@example.com",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["channels"] == ["sms", "email"]


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Basic abc", "Bearer hk_nope", "Bearer hk_aaaaaaaaaaaaaaaa_" + "x" * 43]
)
async def test_bad_keys_are_401(gw: Harness, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await gw.post(None, SMS, **headers)
    assert response.status_code == 401
    assert response.json()["error"]["layer"] == "L1"


async def test_a_revoked_key_stops_working_and_a_suspended_tenant_is_403(gw: Harness) -> None:
    tenant_id, key = await gw.tenant("acme")
    assert (await gw.post(key, SMS)).status_code == 202
    await gw.admin.set_status("test", tenant_id, "suspended")
    gw.gateway.apply_change("tenant", tenant_id)
    suspended = await gw.post(key, SMS)
    assert suspended.status_code == 403
    assert suspended.json()["error"]["code"] == "tenant_suspended"
    await gw.admin.set_status("test", tenant_id, "active")
    gw.gateway.apply_change("tenant", tenant_id)
    key_id = key.split("_")[1]
    await gw.admin.revoke_key("test", tenant_id, key_id)
    gw.gateway.apply_change("api_key", key_id)
    assert (await gw.post(key, SMS)).status_code == 401


async def test_idempotency_key_returns_the_first_answer_and_is_scoped_per_tenant(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    _, other = await gw.tenant("beta")
    first = await gw.post(key, SMS, **{"Idempotency-Key": "order-42"})
    assert first.status_code == 202
    again = await gw.post(key, SMS, **{"Idempotency-Key": "order-42"})
    assert again.status_code == 409
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json()["error"]["details"]["first_response"]["body"] == first.json()
    assert (await gw.post(other, SMS, **{"Idempotency-Key": "order-42"})).status_code == 202
    assert await gw.stream_count("MESSAGES") == 2


async def test_a_refused_request_releases_its_idempotency_key(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    bad = await gw.post(key, {"to": "12", "channel": "sms", "body": "x"}, **{"Idempotency-Key": "k1"})
    assert bad.status_code == 422
    assert (await gw.post(key, SMS, **{"Idempotency-Key": "k1"})).status_code == 202


async def test_rate_limit_answers_429_with_retry_after(gw: Harness) -> None:
    _, key = await gw.tenant("acme", rate_limit=1, burst=2)
    statuses = [(await gw.post(key, SMS)).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    limited = await gw.post(key, SMS)
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["error"]["layer"] == "L3"


async def test_prepaid_balance_is_reserved_and_exhaustion_is_402(gw: Harness) -> None:
    tenant_id, key = await gw.tenant("acme")
    await gw.admin.credit("test", tenant_id, 0.12, "test")
    gw.gateway.apply_change("account", tenant_id)
    statuses = [(await gw.post(key, SMS)).status_code for _ in range(3)]
    assert statuses == [202, 202, 402]
    refused = await gw.post(key, SMS)
    assert refused.json()["error"]["code"] == "insufficient_balance"
    await gw.gateway.accountant.settle(release=True)
    _, account = await gw.admin.account(tenant_id)
    assert account.balance == pytest.approx(0.02)
    assert account.reserved == pytest.approx(0.0)


async def test_monthly_quota_exhaustion_is_402(gw: Harness) -> None:
    _, key = await gw.tenant("acme", monthly_quota=2)
    statuses = [(await gw.post(key, SMS)).status_code for _ in range(3)]
    assert statuses == [202, 202, 402]
    assert (await gw.post(key, SMS)).json()["error"]["code"] == "quota_exhausted"


async def test_schema_errors_are_422_listing_every_field(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    response = await gw.post(
        key,
        {"channels": [{"channel": "sms", "to": "123"}, {"channel": "fax", "to": "x"}], "priority": "urgent"},
    )
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["details"]["fields"]}
    assert {"channels[0].to", "channels[1].channel", "priority"} <= fields


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[1,2]", b'{"to": "+4523456789", "channel": "sms", "body": 1, "x": 2}']
)
async def test_malformed_bodies_are_refused_cleanly(gw: Harness, raw: bytes) -> None:
    _, key = await gw.tenant("acme")
    response = await gw.post(key, raw)
    assert response.status_code in (400, 422)
    assert set(response.json()["error"]) == {"code", "message", "layer", "details"}
    assert await gw.stream_count("MESSAGES") == 0


async def test_a_body_over_10_mb_is_413_and_nothing_is_published(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    response = await gw.post(key, b'{"body": "' + b"x" * 10_000_001 + b'"}')
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await gw.stream_count("MESSAGES") == 0
    assert (await gw.post(key, SMS)).status_code == 202  # and the gateway serves on


async def test_other_methods_on_the_submit_path_are_the_framework_s(gw: Harness) -> None:
    response = await gw.client.put("/v1/messages", content=b"{}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_suppressed_recipient_is_451_and_content_rule_is_400(gw: Harness) -> None:
    tenant_id, key = await gw.tenant("acme")
    await gw.admin.suppress("test", tenant_id, "sms", ["+4523456789"], "asked to stop")
    gw.gateway.apply_change("suppression", tenant_id)
    suppressed = await gw.post(key, SMS)
    assert suppressed.status_code == 451
    assert suppressed.json()["error"]["code"] == "suppressed"
    shortener = await gw.post(key, {**SMS, "to": "+4523456780", "body": "Win now http://bit.ly/x"})
    assert shortener.status_code == 400
    assert shortener.json()["error"]["details"]["rule"] == "blocked_domain"
    marketing = await gw.post(key, {**SMS, "to": "+4523456780", "marketing": True})
    assert marketing.status_code == 451
    assert marketing.json()["error"]["code"] == "no_consent"
    assert (
        await gw.post(key, {**SMS, "to": "+4523456780", "marketing": True, "consent": True})
    ).status_code == 202


async def test_batch_answers_each_message(gw: Harness) -> None:
    _, key = await gw.tenant("acme")
    response = await gw.post(key, {"messages": [SMS, {"to": "nope", "channel": "sms", "body": "x"}, SMS]})
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == [202, 422, 202]
    assert await gw.stream_count("MESSAGES") == 2
    too_big = await gw.post(key, {"messages": [SMS] * 1001})
    assert too_big.status_code == 422


async def test_message_status_comes_from_the_recorder_and_never_leaks(gw: Harness) -> None:
    from appliance.daemons.recorder import record_batch

    _, key = await gw.tenant("acme")
    _, other = await gw.tenant("beta")
    message_id = (await gw.post(key, SMS)).json()["message_id"]
    subscription = await gw.nats.jetstream().pull_subscribe("evt.>", durable="test-recorder", stream="EVENTS")
    await record_batch(gw.store, await subscription.fetch(10, timeout=2))
    shown = await gw.client.get(f"/v1/messages/{message_id}", headers={"Authorization": f"Bearer {key}"})
    assert shown.status_code == 200
    assert shown.json()["state"] == "created"
    assert shown.json()["events"][0]["kind"] == "accepted"
    leak = await gw.client.get(f"/v1/messages/{message_id}", headers={"Authorization": f"Bearer {other}"})
    assert leak.status_code == 404
    listed = await gw.client.get("/v1/messages", headers={"Authorization": f"Bearer {key}"})
    assert [m["message_id"] for m in listed.json()["messages"]] == [message_id]


async def test_a_full_backlog_is_a_503_that_names_it_and_takes_nothing(gw: Harness) -> None:
    """nats.backlog_max_messages: once MESSAGES holds that many, ingress refuses (and refunds) so
    clients back off; what it accepted before stays, and nothing refused is half stored."""
    assert await ensure_streams(gw.nats.jetstream(), backlog_max_messages=2) == ["MESSAGES"]
    assert await ensure_streams(gw.nats.jetstream(), backlog_max_messages=2) == []  # no drift now
    _, key = await gw.tenant("acme")
    for n in range(2):
        assert (await gw.post(key, {**SMS, "to": f"+452345678{n}"})).status_code == 202
    refused = await gw.post(key, {**SMS, "to": "+4523456782"})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    error = refused.json()["error"]
    assert (error["code"], error["layer"]) == ("unavailable", "L9")
    assert "maximum messages" in error["details"]["reason"]
    batch = await gw.post(key, {"messages": [{**SMS, "to": f"+452345679{n}"} for n in range(2)]})
    assert batch.status_code == 207
    assert [r["status"] for r in batch.json()["results"]] == [503, 503]
    assert await gw.stream_count("MESSAGES") == 2
    # lowering the limit under what is held drops nothing (the stream discards new, never old)
    assert await ensure_streams(gw.nats.jetstream(), backlog_max_messages=1) == ["MESSAGES"]
    assert await gw.stream_count("MESSAGES") == 2
    assert await ensure_streams(gw.nats.jetstream(), backlog_max_messages=0) == ["MESSAGES"]
    assert (await gw.post(key, {**SMS, "to": "+4523456782"})).status_code == 202
