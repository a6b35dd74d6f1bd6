"""The message, account, compliance and webhook contracts, run against every backend (conftest `store`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from appliance.errors import InvalidInput, NotFound
from appliance.store import (
    Account,
    EventRecord,
    FullStore,
    Lease,
    MessageRecord,
    Suppression,
    Tenant,
    Webhook,
    WebhookDelivery,
)
from appliance.store.sql import Row, SqlStore

T0 = 1_700_000_000.25
MONTH = "2023-11"  # the UTC month of T0


def _tenant(name: str) -> Tenant:
    return Tenant(
        id=f"t-{name}", name=name, tier="business", status="active", email=f"ops@{name}.example",
        rate_limit=50, burst=100, monthly_quota=0, created_at=T0, updated_at=T0,
    )  # fmt: skip


def _message(message_id: str, tenant_id: str = "t-acme", *, at: float = T0, **changes: Any) -> MessageRecord:
    message = MessageRecord(
        id=message_id,
        tenant_id=tenant_id,
        origin="rest",
        state="created",
        created_at=at,
        updated_at=at,
        estimated_cost=0.05,
        idempotency_key=f"idem-{message_id}",
        payload={"channels": [{"channel": "sms", "to": "+4512345678"}], "content": {"text": "hi"}},
    )
    return msgspec.structs.replace(message, **changes)


def _event(
    event_id: str, message_id: str, at: float, state: str | None = None, tenant_id: str = "t-acme"
) -> EventRecord:
    return EventRecord(
        id=event_id, message_id=message_id, tenant_id=tenant_id, kind="dlr" if state else "note", at=at,
        state=state, data={"event": event_id, "nested": {"n": 1, "none": None}},
    )  # fmt: skip


async def _rows(store: FullStore, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
    """Read a table no interface method exposes (the ledger, quota usage) straight from the database."""
    assert isinstance(store, SqlStore)
    return await store._fetch_all(sql, params)


async def _ledger(store: FullStore, tenant_id: str) -> list[Row]:
    return await _rows(
        store, "SELECT kind, amount, note FROM ledger WHERE tenant_id = ? ORDER BY id", (tenant_id,)
    )


async def _take(
    store: FullStore, holder: str, *, amount: float = 0.0, messages: int = 0, quota: int = 0,
    tenant_id: str = "t-acme", month: str = MONTH, at: float = T0,
) -> bool:  # fmt: skip
    return await store.take_lease(
        tenant_id, holder, month=month, amount=amount, messages=messages, quota=quota, at=at
    )


async def _settle(
    store: FullStore, holder: str, spent_amount: float, spent_messages: int, *, release: bool, at: float = T0
) -> None:
    await store.settle_lease(
        "t-acme", holder, month=MONTH, spent_amount=spent_amount, spent_messages=spent_messages,
        release=release, at=at,
    )  # fmt: skip


@pytest.fixture
async def acme(store: FullStore) -> FullStore:
    """The store with tenants acme and beta."""
    await store.create_tenant(_tenant("acme"))
    await store.create_tenant(_tenant("beta"))
    return store


# messages and events


async def test_record_is_idempotent(acme: FullStore) -> None:
    messages = [_message("m1"), _message("m2", cost=0.04, idempotency_key=None)]
    events = [_event("e1", "m1", T0), _event("e2", "m1", T0 + 1, "1_sending"), _event("e3", "m2", T0 + 2)]
    await acme.record(messages, events)
    await acme.record(messages, events)
    # A changed copy of a known message or event is left as it is.
    await acme.record([_message("m1", origin="smpp")], [_event("e1", "m1", T0 + 99, "all_failed")])

    stored = await acme.list_messages("t-acme")
    assert stored == [
        msgspec.structs.replace(messages[0], state="1_sending", updated_at=T0 + 1),
        messages[1],
    ]
    assert await acme.list_events("t-acme", "m1") == events[:2]
    assert await acme.get_message("t-acme", "m2") == messages[1]


async def test_late_events_never_rewind_the_state(acme: FullStore) -> None:
    await acme.record([_message("m1")], [_event("e1", "m1", T0 + 1, "1_sending")])
    # In one batch the latest event wins, whatever the batch order.
    await acme.record(
        [], [_event("e3", "m1", T0 + 5, "1_delivered"), _event("e2", "m1", T0 + 2, "1_waiting")]
    )
    assert (await acme.get_message("t-acme", "m1")).state == "1_delivered"

    await acme.record([], [_event("e4", "m1", T0 + 3, "1_failed")])  # late
    message = await acme.get_message("t-acme", "m1")
    assert (message.state, message.updated_at) == ("1_delivered", T0 + 5)
    assert [e.id for e in await acme.list_events("t-acme", "m1")] == ["e1", "e2", "e4", "e3"]

    # An event at the same time as the current state moves it; redelivering the older one does not.
    await acme.record([], [_event("e5", "m1", T0 + 5, "all_failed")])
    await acme.record([], [_event("e3", "m1", T0 + 5, "1_delivered")])
    assert (await acme.get_message("t-acme", "m1")).state == "all_failed"


async def test_events_recorded_before_their_message_still_move_it(acme: FullStore) -> None:
    await acme.record([], [_event("e1", "m1", T0 + 1, "1_sending"), _event("e2", "m1", T0 + 4, "1_waiting")])
    await acme.record([_message("m1", at=T0)], [_event("e1", "m1", T0 + 1, "1_sending")])
    message = await acme.get_message("t-acme", "m1")
    assert (message.state, message.updated_at) == ("1_waiting", T0 + 4)
    # ... unless the message itself is later than them.
    await acme.record([], [_event("e3", "m2", T0 + 1, "1_sending")])
    await acme.record([_message("m2", at=T0 + 2)], [])
    assert (await acme.get_message("t-acme", "m2")).state == "created"


async def test_another_tenants_message_is_not_found(acme: FullStore) -> None:
    await acme.record([_message("m1")], [_event("e1", "m1", T0)])
    # An event that names the wrong tenant is stored under it but moves nothing.
    await acme.record([], [_event("e2", "m1", T0 + 1, "all_failed", tenant_id="t-beta")])

    with pytest.raises(NotFound) as caught:
        await acme.get_message("t-beta", "m1")
    assert (caught.value.kind, caught.value.ref) == ("message", "m1")
    assert await acme.list_messages("t-beta") == []
    assert [e.id for e in await acme.list_events("t-beta", "m1")] == ["e2"]
    assert [e.id for e in await acme.list_events("t-acme", "m1")] == ["e1"]
    assert (await acme.get_message("t-acme", "m1")).state == "created"
    with pytest.raises(NotFound):
        await acme.get_message("t-acme", "m9")


async def test_list_messages_pages_and_filters(acme: FullStore) -> None:
    messages = [
        _message(f"m{i:02}", at=T0 + i, state="1_delivered" if i % 2 else "created") for i in range(1, 8)
    ]
    await acme.record([*reversed(messages), _message("m00", "t-beta")], [])

    assert await acme.list_messages("t-acme") == messages
    page1 = await acme.list_messages("t-acme", limit=3)
    page2 = await acme.list_messages("t-acme", after_id=page1[-1].id, limit=3)
    page3 = await acme.list_messages("t-acme", after_id=page2[-1].id, limit=3)
    assert [page1, page2, page3] == [messages[:3], messages[3:6], messages[6:]]
    assert await acme.list_messages("t-acme", after_id="m07") == []

    delivered = [m for m in messages if m.state == "1_delivered"]
    assert [m.id for m in delivered] == ["m01", "m03", "m05", "m07"]
    assert await acme.list_messages("t-acme", state="1_delivered") == delivered
    assert await acme.list_messages("t-acme", state="1_delivered", after_id="m03", limit=1) == [delivered[2]]
    assert await acme.list_messages("t-acme", since=T0 + 5) == messages[4:]
    assert await acme.list_messages("t-acme", since=T0 + 4, state="created") == [messages[3], messages[5]]
    assert await acme.list_messages("t-acme", state="all_failed") == []


async def test_list_events_is_ordered_by_time_then_id(acme: FullStore) -> None:
    events = [_event("e-b", "m1", T0 + 1), _event("e-a", "m1", T0 + 1), _event("e-c", "m1", T0)]
    await acme.record([_message("m1")], events)
    await acme.record([_message("m2")], [_event("e-x", "m2", T0)])
    assert await acme.list_events("t-acme", "m1") == [events[2], events[1], events[0]]
    assert await acme.list_events("t-acme", "m3") == []


async def test_record_a_large_batch_in_one_call(acme: FullStore) -> None:
    messages = [_message(f"m{i:04}", at=T0 + i) for i in range(1000)]
    events = [_event(f"e{i:04}a", m.id, m.created_at, "created") for i, m in enumerate(messages)]
    events += [_event(f"e{i:04}b", m.id, m.created_at + 1, "1_sending") for i, m in enumerate(messages)]
    await asyncio.wait_for(acme.record(messages, events), timeout=30)
    await acme.record(messages, events)

    stored = await acme.list_messages("t-acme", limit=2000)
    assert len(stored) == 1000
    assert {(m.state, m.updated_at - m.created_at) for m in stored} == {("1_sending", 1.0)}
    assert len(await acme.list_events("t-acme", "m0999")) == 2


# accounts


async def test_a_fresh_account_is_postpaid_and_empty(acme: FullStore) -> None:
    assert await acme.get_account("t-acme", MONTH) == Account(
        tenant_id="t-acme", prepaid=False, balance=0.0, reserved=0.0, currency="EUR",
        month=MONTH, quota_used=0, quota_leased=0,
    )  # fmt: skip
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: acme.get_account("t-nope", MONTH),
        lambda: acme.credit("t-nope", 1.0, at=T0, note="x"),
        lambda: _take(acme, "n1/w1", tenant_id="t-nope"),
        lambda: acme.settle_lease(
            "t-nope", "n1/w1", month=MONTH, spent_amount=1.0, spent_messages=1, release=True, at=T0
        ),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as caught:
            await attempt()
        assert (caught.value.kind, caught.value.ref) == ("tenant", "t-nope")


async def test_credit_makes_the_account_prepaid_and_writes_the_ledger(acme: FullStore) -> None:
    account = await acme.credit("t-acme", 10.0, at=T0, note="invoice 1")
    assert (account.prepaid, account.balance, account.reserved, account.month) == (True, 10.0, 0.0, MONTH)
    account = await acme.credit("t-acme", -2.5, at=T0 + 1, note="correction")
    assert account.balance == 7.5
    assert await acme.get_account("t-acme", MONTH) == account
    assert await _ledger(acme, "t-acme") == [("credit", 10.0, "invoice 1"), ("credit", -2.5, "correction")]
    assert (await acme.get_account("t-beta", MONTH)).prepaid is False


async def test_a_debit_below_what_is_reserved_is_refused(acme: FullStore) -> None:
    await acme.credit("t-acme", 10.0, at=T0, note="top-up")
    assert await _take(acme, "n1/w1", amount=6.0)
    with pytest.raises(InvalidInput) as caught:
        await acme.credit("t-acme", -4.5, at=T0, note="too much")
    assert caught.value.field == "amount"
    account = await acme.get_account("t-acme", MONTH)
    assert (account.balance, account.reserved) == (10.0, 6.0)
    assert len(await _ledger(acme, "t-acme")) == 1
    assert (await acme.credit("t-acme", -4.0, at=T0, note="ok")).balance == 6.0


async def test_a_credit_to_an_overdrawn_postpaid_account_is_accepted(acme: FullStore) -> None:
    await _settle(acme, "n1/w1", 5.0, 100, release=True)
    assert (await acme.get_account("t-acme", MONTH)).balance == -5.0
    account = await acme.credit("t-acme", 2.0, at=T0, note="partial payment")
    assert (account.prepaid, account.balance) == (True, -3.0)


async def test_take_lease_needs_the_balance_of_a_prepaid_account(acme: FullStore) -> None:
    await acme.credit("t-acme", 10.0, at=T0, note="top-up")
    assert await _take(acme, "n1/w1", amount=4.0)
    assert not await _take(acme, "n1/w2", amount=7.0, at=T0 + 1)
    assert await acme.leases_of("n1/w2") == []
    assert (await acme.get_account("t-acme", MONTH)).reserved == 4.0
    assert await _take(acme, "n1/w2", amount=6.0, at=T0 + 2)
    assert await _take(acme, "n1/w1", amount=0.0, at=T0 + 3)
    assert not await _take(acme, "n1/w1", amount=0.01, at=T0 + 4)

    assert (await acme.get_account("t-acme", MONTH)).reserved == 10.0
    assert await acme.leases_of("n1/w1") == [
        Lease(tenant_id="t-acme", holder="n1/w1", month=MONTH, amount=4.0, messages=0, taken_at=T0 + 3)
    ]
    with pytest.raises(InvalidInput):
        await _take(acme, "n1/w1", amount=-1.0)


async def test_take_lease_needs_the_quota_when_there_is_one(acme: FullStore) -> None:
    # Postpaid: no money check and no money reserved; a quota of 100 for the month.
    assert await _take(acme, "n1/w1", amount=50.0, messages=60, quota=100)
    assert not await _take(acme, "n1/w2", amount=50.0, messages=41, quota=100)
    assert await _take(acme, "n1/w2", amount=50.0, messages=40, quota=100)
    account = await acme.get_account("t-acme", MONTH)
    assert (account.reserved, account.quota_used, account.quota_leased) == (0.0, 0, 100)
    assert [(lease.amount, lease.messages) for lease in await acme.leases_of("n1/w2")] == [(0.0, 40)]

    # Quota 0 is unlimited: nothing is counted against it.
    assert await _take(acme, "n1/w3", messages=10**9, quota=0)
    assert (await acme.get_account("t-acme", MONTH)).quota_leased == 100
    # Another month has its own count.
    assert await _take(acme, "n1/w1", messages=100, quota=100, month="2023-12")
    assert (await acme.get_account("t-acme", "2023-12")).quota_leased == 100

    # A quota that does not fit also rolls back the money.
    await acme.credit("t-beta", 10.0, at=T0, note="top-up")
    assert not await _take(acme, "n1/w1", amount=1.0, messages=2, quota=1, tenant_id="t-beta")
    account = await acme.get_account("t-beta", MONTH)
    assert (account.reserved, account.quota_leased) == (0.0, 0)
    assert await acme.leases_of("n1/w1") == [
        Lease(tenant_id="t-acme", holder="n1/w1", month=MONTH, amount=0.0, messages=60, taken_at=T0),
        Lease(tenant_id="t-acme", holder="n1/w1", month="2023-12", amount=0.0, messages=100, taken_at=T0),
    ]


async def test_settle_lease_charges_and_optionally_releases(acme: FullStore) -> None:
    await acme.credit("t-acme", 10.0, at=T0, note="top-up")
    assert await _take(acme, "n1/w1", amount=5.0, messages=50, quota=1000)

    await _settle(acme, "n1/w1", 2.0, 20, release=False)
    account = await acme.get_account("t-acme", MONTH)
    assert (account.balance, account.reserved, account.quota_used, account.quota_leased) == (8.0, 3.0, 20, 30)
    assert [(lease.amount, lease.messages) for lease in await acme.leases_of("n1/w1")] == [(3.0, 30)]

    await _settle(acme, "n1/w1", 1.0, 5, release=True)
    account = await acme.get_account("t-acme", MONTH)
    assert (account.balance, account.reserved, account.quota_used, account.quota_leased) == (7.0, 0.0, 25, 0)
    assert await acme.leases_of("n1/w1") == []
    assert await _ledger(acme, "t-acme") == [
        ("credit", 10.0, "top-up"),
        ("charge", 2.0, f"20 message(s) by n1/w1 in {MONTH}"),
        ("charge", 1.0, f"5 message(s) by n1/w1 in {MONTH}"),
    ]

    # Spending more than the lease holds is charged in full, and leaves nothing negative.
    assert await _take(acme, "n1/w1", amount=1.0, messages=1, quota=1000)
    assert await _take(acme, "n1/w2", amount=2.0, messages=2, quota=1000)
    await _settle(acme, "n1/w1", 1.5, 3, release=False)
    account = await acme.get_account("t-acme", MONTH)
    assert (account.balance, account.reserved, account.quota_used, account.quota_leased) == (5.5, 2.0, 28, 2)
    assert [(lease.amount, lease.messages) for lease in await acme.leases_of("n1/w1")] == [(0.0, 0)]
    with pytest.raises(InvalidInput):
        await _settle(acme, "n1/w1", -1.0, 0, release=True)


async def test_leases_of_lists_a_holders_leases(acme: FullStore) -> None:
    for tenant_id, month in (("t-beta", MONTH), ("t-acme", "2023-12"), ("t-acme", MONTH)):
        assert await _take(acme, "n1/w1", messages=5, quota=9, tenant_id=tenant_id, month=month)
    assert await _take(acme, "n2/w1", messages=1, quota=9)
    assert await _take(acme, "n1/w1", messages=2, quota=9, at=T0 + 9)
    assert await acme.leases_of("n1/w1") == [
        Lease(tenant_id="t-acme", holder="n1/w1", month=MONTH, amount=0.0, messages=7, taken_at=T0 + 9),
        Lease(tenant_id="t-acme", holder="n1/w1", month="2023-12", amount=0.0, messages=5, taken_at=T0),
        Lease(tenant_id="t-beta", holder="n1/w1", month=MONTH, amount=0.0, messages=5, taken_at=T0),
    ]
    assert await acme.leases_of("n9/w9") == []


@pytest.mark.parametrize("limit", ["balance", "quota"])
async def test_concurrent_take_lease_never_overspends(acme: FullStore, limit: str) -> None:
    """50 takes from 5 holders at once against a balance (or a quota) that fits exactly 20 of them. On
    PostgreSQL they run on several pooled connections; on SQLite they queue for the one connection."""
    if limit == "balance":
        await acme.credit("t-acme", 10.0, at=T0, note="top-up")
    quota = 20 if limit == "quota" else 0
    holders = [f"n1/w{i}" for i in range(5)] * 10

    results = await asyncio.gather(
        *(_take(acme, holder, amount=0.5, messages=1, quota=quota) for holder in holders)
    )

    assert results.count(True) == 20
    account = await acme.get_account("t-acme", MONTH)
    leases = [lease for holder in sorted(set(holders)) for lease in await acme.leases_of(holder)]
    if limit == "balance":
        assert account.reserved == 20 * 0.5
        assert sum(lease.amount for lease in leases) == 20 * 0.5
    else:
        assert account.quota_leased == 20
        assert sum(lease.messages for lease in leases) == 20


# suppressions


async def test_suppressions(acme: FullStore) -> None:
    first = Suppression(tenant_id="t-acme", address="+4511111111", reason="STOP", created_at=T0)
    await acme.add_suppression(first)
    await acme.add_suppression(msgspec.structs.replace(first, reason="bounce", created_at=T0 + 1))
    addresses = ["a@example.com", "b@example.com", "+4522222222"]
    for address in addresses:
        await acme.add_suppression(msgspec.structs.replace(first, address=address))
    opt_out = Suppression(tenant_id="*", address="+4533333333", reason="global opt-out", created_at=T0)
    await acme.add_suppression(opt_out)

    everything = await acme.list_suppressions("t-acme")
    assert [s.address for s in everything] == sorted([first.address, *addresses])
    assert everything[0] == first  # the first reason is kept
    page1 = await acme.list_suppressions("t-acme", limit=2)
    page2 = await acme.list_suppressions("t-acme", after=page1[-1].address, limit=2)
    assert [*page1, *page2] == everything
    assert await acme.list_suppressions("t-acme", after=everything[-1].address) == []

    assert await acme.suppressed_addresses("t-acme") == {first.address, *addresses}
    assert await acme.suppressed_addresses("*") == {opt_out.address}
    assert await acme.suppressed_addresses("t-beta") == set()

    await acme.remove_suppression("t-acme", first.address)
    with pytest.raises(NotFound) as caught:
        await acme.remove_suppression("t-acme", first.address)
    assert (caught.value.kind, caught.value.ref) == ("suppression", first.address)
    with pytest.raises(NotFound):
        await acme.remove_suppression("t-beta", "a@example.com")
    assert first.address not in await acme.suppressed_addresses("t-acme")


# webhooks


async def test_webhook_set_replace_get_delete(acme: FullStore) -> None:
    hook = Webhook(
        tenant_id="t-acme", url="https://acme.example/h", secret="s1", events="final", created_at=T0
    )
    assert await acme.get_webhook("t-acme") is None
    await acme.set_webhook(hook)
    assert await acme.get_webhook("t-acme") == hook
    replaced = msgspec.structs.replace(hook, url="https://acme.example/h2", secret="s2", events="all")
    await acme.set_webhook(replaced)
    assert await acme.get_webhook("t-acme") == replaced
    assert await acme.get_webhook("t-beta") is None
    assert await acme.list_webhooks() == [replaced]

    with pytest.raises(NotFound) as caught:
        await acme.set_webhook(msgspec.structs.replace(hook, tenant_id="t-nope"))
    assert (caught.value.kind, caught.value.ref) == ("tenant", "t-nope")
    await acme.delete_webhook("t-acme")
    assert await acme.get_webhook("t-acme") is None
    assert await acme.list_webhooks() == []
    with pytest.raises(NotFound) as caught:
        await acme.delete_webhook("t-acme")
    assert (caught.value.kind, caught.value.ref) == ("webhook", "t-acme")


def _delivery(
    delivery_id: str, next_at: float, tenant_id: str = "t-acme", created_at: float = T0
) -> WebhookDelivery:
    return WebhookDelivery(
        id=delivery_id, tenant_id=tenant_id, url="https://acme.example/h", body=f'{{"id":"{delivery_id}"}}',
        created_at=created_at, next_at=next_at,
    )  # fmt: skip


async def test_webhook_deliveries(acme: FullStore) -> None:
    d1, d2, d3 = _delivery("d1", T0 + 2), _delivery("d2", T0 + 1, created_at=T0 + 1), _delivery("d3", T0 + 9)
    assert await acme.enqueue_deliveries([d1, d2, d3]) == 3
    d4 = _delivery("d4", T0, tenant_id="t-beta")
    assert await acme.enqueue_deliveries([d1, d4, msgspec.structs.replace(d2, body="changed")]) == 1
    assert await acme.enqueue_deliveries([]) == 0

    assert await acme.due_deliveries(T0 + 2) == [d4, d2, d1]
    assert await acme.due_deliveries(T0 + 2, limit=2) == [d4, d2]

    await acme.retry_delivery("d2", next_at=T0 + 5, status=503, error=None)
    await acme.retry_delivery("d2", next_at=T0 + 6, status=None, error="timeout")
    retried = msgspec.structs.replace(d2, next_at=T0 + 6, attempts=2, last_status=None, last_error="timeout")
    await acme.finish_delivery("d1", state="delivered", status=200, error=None, at=T0 + 3)
    await acme.finish_delivery("d4", state="failed", status=410, error="gone", at=T0 + 4)
    await acme.finish_delivery("d4", state="delivered", status=200, error=None, at=T0 + 8)  # already final
    delivered = msgspec.structs.replace(d1, state="delivered", attempts=1, last_status=200, next_at=T0 + 3)
    failed = msgspec.structs.replace(
        d4, state="failed", attempts=1, last_status=410, last_error="gone", next_at=T0 + 4
    )

    assert await acme.due_deliveries(T0 + 5) == []
    assert await acme.due_deliveries(T0 + 100) == [retried, d3]
    # Newest first: by created_at, then by id.
    assert await acme.list_deliveries("t-acme") == [retried, d3, delivered]
    assert await acme.list_deliveries("t-acme", limit=1) == [retried]
    assert await acme.list_deliveries("t-beta") == [failed]

    with pytest.raises(InvalidInput):
        await acme.finish_delivery("d3", state="pending", status=None, error=None, at=T0)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: acme.finish_delivery("d9", state="failed", status=None, error="x", at=T0),
        lambda: acme.retry_delivery("d9", next_at=T0, status=None, error="x"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as caught:
            await attempt()
        assert (caught.value.kind, caught.value.ref) == ("webhook delivery", "d9")


# deleting a tenant


async def test_deleting_a_tenant_keeps_its_history_but_not_its_account(acme: FullStore) -> None:
    await acme.record([_message("m1")], [_event("e1", "m1", T0 + 1, "1_sending")])
    await acme.credit("t-acme", 10.0, at=T0, note="top-up")
    assert await _take(acme, "n1/w1", amount=1.0, messages=1, quota=10)
    await acme.set_webhook(
        Webhook(tenant_id="t-acme", url="https://acme.example/h", secret="s", events="all", created_at=T0)
    )

    await acme.delete_tenant("t-acme")

    with pytest.raises(NotFound):
        await acme.get_account("t-acme", MONTH)
    assert await acme.leases_of("n1/w1") == []
    assert await acme.get_webhook("t-acme") is None
    for table in ("accounts", "quota_usage", "leases", "webhooks"):
        assert await _rows(acme, f"SELECT 1 FROM {table} WHERE tenant_id = ?", ("t-acme",)) == []
    assert (await acme.get_message("t-acme", "m1")).state == "1_sending"
    assert [e.id for e in await acme.list_events("t-acme", "m1")] == ["e1"]
    assert await _ledger(acme, "t-acme") == [("credit", 10.0, "top-up")]

    # A tenant created again under the same id starts afresh.
    await acme.create_tenant(_tenant("acme"))
    fresh = await acme.get_account("t-acme", MONTH)
    assert (fresh.prepaid, fresh.balance, fresh.reserved, fresh.quota_leased) == (False, 0.0, 0.0, 0)
