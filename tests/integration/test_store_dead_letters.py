"""Dead letters, final-state protection, per-event cost and state groups, on every backend (`store`)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.store import DeadLetter, EventRecord, FullStore, MessageRecord, NotDeadLettered

T0 = 1_700_000_000.5


def _entry(message_id: str, tenant_id: str = "t-acme", *, at: float = T0, **changes: Any) -> DeadLetter:
    entry = DeadLetter(
        message_id=message_id,
        tenant_id=tenant_id,
        dead_lettered_at=at,
        event_id=f"{message_id}:dead_lettered:2",
        attempt=2,
        reason="all channels failed",
        history=[{"state": "1_sending", "attempt": 1}, {"state": "all_failed", "attempt": 2}],
    )
    return msgspec.structs.replace(entry, **changes)


def _message(message_id: str, *, at: float = T0, tenant_id: str = "t-acme") -> MessageRecord:
    return MessageRecord(
        id=message_id, tenant_id=tenant_id, origin="rest", state="created", created_at=at, updated_at=at,
        payload={"id": message_id},
    )  # fmt: skip


def _event(
    event_id: str, kind: str, at: float, state: str | None = None, *, attempt: int | None = None,
    cost: float | None = None, message_id: str = "m1",
) -> EventRecord:  # fmt: skip
    data: dict[str, Any] = {} if attempt is None else {"attempt": attempt}
    return EventRecord(
        id=event_id, message_id=message_id, tenant_id="t-acme", kind=kind, at=at, state=state, cost=cost,
        data=data,
    )  # fmt: skip


async def test_add_is_idempotent_and_a_later_run_reopens_the_entry(store: FullStore) -> None:
    first = _entry("m1")
    assert await store.add_dead_letters([first, _entry("m2", "t-beta")]) == 2
    assert await store.add_dead_letters([first]) == 0  # a redelivered event
    assert await store.get_dead_letter("m1") == first
    replayed = await store.mark_replayed("m1", attempt_base=2, at=T0 + 10)
    assert (replayed.status, replayed.replay_count, replayed.last_replayed_at) == ("replayed", 1, T0 + 10)
    # The same (old) event again changes nothing; the replayed run dying again reopens the entry.
    assert await store.add_dead_letters([first]) == 0
    again = _entry("m1", at=T0 + 20, event_id="m1:dead_lettered:4", attempt=4, reason="timeout")
    assert await store.add_dead_letters([again]) == 1
    reopened = await store.get_dead_letter("m1")
    assert (reopened.status, reopened.attempt, reopened.reason, reopened.replay_count) == (
        "dead",
        4,
        "timeout",
        1,
    )
    assert reopened.dead_lettered_at == T0 + 20


async def test_list_filters_and_pages(store: FullStore) -> None:
    entries = [_entry(f"m{i:02}", "t-acme" if i % 2 else "t-beta", at=T0 + i) for i in range(1, 8)]
    await store.add_dead_letters(list(reversed(entries)))
    assert await store.list_dead_letters() == entries
    acme = [e for e in entries if e.tenant_id == "t-acme"]
    assert await store.list_dead_letters(tenant_id="t-acme") == acme
    page1 = await store.list_dead_letters(limit=3)
    page2 = await store.list_dead_letters(after_id=page1[-1].message_id, limit=3)
    assert page1 + page2 == entries[:6]
    assert await store.list_dead_letters(since=T0 + 5) == entries[4:]
    assert await store.list_dead_letters(before=T0 + 3) == entries[:2]
    await store.mark_replayed("m01", attempt_base=2, at=T0 + 50)
    assert [e.message_id for e in await store.list_dead_letters(tenant_id="t-acme")] == ["m03", "m05", "m07"]
    assert [e.message_id for e in await store.list_dead_letters(status="replayed")] == ["m01"]
    assert len(await store.list_dead_letters(status="all")) == 7


async def test_replay_is_refused_unless_dead(store: FullStore) -> None:
    with pytest.raises(NotFound) as missing:
        await store.mark_replayed("nope", attempt_base=1, at=T0)
    assert (missing.value.kind, missing.value.ref) == ("dead letter", "nope")
    await store.add_dead_letters([_entry("m1")])
    # The replayed run (attempts after 1) already died again before the mark: counted, and still dead.
    raced = await store.mark_replayed("m1", attempt_base=1, at=T0)
    assert (raced.status, raced.replay_count) == ("dead", 1)
    await store.mark_replayed("m1", attempt_base=2, at=T0 + 1)
    with pytest.raises(Conflict, match=r"not dead-lettered .*replayed"):
        await store.mark_replayed("m1", attempt_base=2, at=T0 + 2)
    assert (await store.get_dead_letter("m1")).replay_count == 2


async def test_purge_one_by_tenant_and_by_age(store: FullStore) -> None:
    await store.add_dead_letters(
        [
            _entry("m1", at=T0),
            _entry("m2", at=T0 + 100),
            _entry("m3", "t-beta", at=T0),
            _entry("m4", at=T0 + 1),
        ]
    )
    with pytest.raises(InvalidInput):
        await store.purge_dead_letters()
    assert await store.purge_dead_letters(message_id="m1") == 1
    purged = await store.get_dead_letter("m1")
    assert (purged.status, purged.history) == ("purged", [])
    with pytest.raises(NotFound):
        await store.purge_dead_letters(message_id="m1")  # already gone
    with pytest.raises(NotDeadLettered, match="purged"):
        await store.mark_replayed("m1", attempt_base=2, at=T0)
    # A redelivered event of the purged run does not bring it back.
    assert await store.add_dead_letters([_entry("m1")]) == 0
    assert await store.purge_dead_letters(tenant_id="t-acme", before=T0 + 50) == 1  # m4, not m2
    assert await store.purge_dead_letters(tenant_id="t-beta") == 1
    assert [e.message_id for e in await store.list_dead_letters()] == ["m2"]


async def test_a_final_event_is_not_undone_by_late_events_of_its_attempt(store: FullStore) -> None:
    await store.record([_message("m1")], [_event("e1", "dispatched", T0 + 1, "1_sending", attempt=1)])
    await store.record([], [_event("e2", "delivered", T0 + 2, "1_delivered", attempt=1)])
    # Later in time but of the same attempt (or naming none): the message stays delivered.
    await store.record([], [_event("e3", "timeout", T0 + 3, "1_failed", attempt=1)])
    await store.record([], [_event("e4", "channel_failed", T0 + 4, "1_failed")])
    message = await store.get_message("t-acme", "m1")
    assert (message.state, message.updated_at) == ("1_delivered", T0 + 2)
    assert len(await store.list_events("t-acme", "m1")) == 4


async def test_a_replay_moves_a_dead_lettered_message_again(store: FullStore) -> None:
    await store.record(
        [_message("m1")],
        [
            _event("e1", "dispatched", T0 + 1, "1_sending", attempt=1),
            _event("e2", "timeout", T0 + 2, "1_failed", attempt=1),
            _event("e3", "dead_lettered", T0 + 3, "all_failed", attempt=1),
            _event("e4", "waiting", T0 + 4, "1_waiting", attempt=1),  # late, same run
        ],
    )
    assert (await store.get_message("t-acme", "m1")).state == "all_failed"
    await store.record([], [_event("e5", "dispatched", T0 + 10, "1_sending", attempt=2)])  # the replay
    assert (await store.get_message("t-acme", "m1")).state == "1_sending"
    await store.record([], [_event("e6", "delivered", T0 + 11, "1_delivered", attempt=2)])
    await store.record(
        [], [_event("e7", "dead_lettered", T0 + 12, "all_failed", attempt=1)]
    )  # redelivered old
    assert (await store.get_message("t-acme", "m1")).state == "1_delivered"


async def test_events_before_their_message_follow_the_final_rule_too(store: FullStore) -> None:
    await store.record(
        [],
        [
            _event("e2", "delivered", T0 + 2, "1_delivered", attempt=1),
            _event("e3", "timeout", T0 + 3, "1_failed", attempt=1),
        ],
    )
    await store.record([_message("m1")], [])
    assert (await store.get_message("t-acme", "m1")).state == "1_delivered"


async def test_cost_is_the_sum_of_the_events_costs(store: FullStore) -> None:
    await store.record([], [_event("e0", "dispatched", T0 + 1, "1_sending", attempt=1, cost=0.05)])
    await store.record([_message("m1")], [])  # the event came first: its cost still counts
    assert (await store.get_message("t-acme", "m1")).cost == pytest.approx(0.05)
    second = _event("e1", "dispatched", T0 + 5, "2_sending", attempt=2, cost=0.25)
    await store.record([], [second])
    await store.record([], [second])  # redelivered: counted once
    assert (await store.get_message("t-acme", "m1")).cost == pytest.approx(0.30)
    assert [e.cost for e in await store.list_events("t-acme", "m1")] == [0.05, 0.25]


async def test_find_message_needs_no_tenant(store: FullStore) -> None:
    await store.record([_message("m1", tenant_id="t-beta")], [])
    assert (await store.find_message("m1")).tenant_id == "t-beta"
    with pytest.raises(NotFound):
        await store.find_message("m2")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("delivered", ["m2", "m5"]),
        ("failed", ["m4"]),
        ("pending", ["m1", "m3", "m6"]),
        ("2_delivered", ["m5"]),
        ("1_failed", ["m6"]),
        ("bogus", []),
    ],
)
async def test_list_messages_by_state_or_group(store: FullStore, status: str, expected: list[str]) -> None:
    states = ["created", "1_delivered", "1_waiting", "all_failed", "2_delivered", "1_failed"]
    await store.record(
        [msgspec.structs.replace(_message(f"m{i}"), state=s) for i, s in enumerate(states, start=1)], []
    )
    assert [m.id for m in await store.list_messages("t-acme", state=status)] == expected
