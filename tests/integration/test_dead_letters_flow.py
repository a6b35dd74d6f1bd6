"""Dead letters end to end on a real nats-server and both store backends: contract events published on
EVENTS → the recorder's consumer projects them → the admin API and hermesctl list, show, trace, replay
and purge → the replay lands on MESSAGES with the right attempt_base and Nats-Msg-Id, once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import httpx
import msgspec
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext
from typer.testing import CliRunner

from appliance.bus.batch_consumer import consume_batches
from appliance.bus.replay import replay_msg_id, republish_accepted
from appliance.bus.streams import ensure_streams, event_subject
from appliance.config.schema import TiersSection
from appliance.daemons.admin.app import create_admin_app
from appliance.daemons.admin.messages import MessageService
from appliance.daemons.admin.registry import RegistryService
from appliance.daemons.http import HttpServer, bind_tcp
from appliance.daemons.recorder import record_batch
from appliance.domain.events import Event
from appliance.domain.message import ChannelTarget, Message
from appliance.errors import NotFound
from appliance.store import FullStore, Tenant
from hermesctl.app import app as hermesctl
from hermesctl.client import AdminClient
from hermesctl.errors import ExitCode

T0 = 1_800_000_000.0
MID = "msg_0000000000000000000000000000dead"
ROUTE = {"carrier": "telia_dk", "kind": "direct", "price": 0.05, "currency": "EUR"}


def _message() -> Message:
    return Message(
        id=MID,
        tenant_id="t-acme",
        origin="rest",
        channels=(
            ChannelTarget(channel="sms", to="+4520000000", timeout_s=60),
            ChannelTarget(channel="email", to="ops@acme.example", timeout_s=300),
        ),
        created_at=T0,
        body="hello",
        metadata={"order": "42"},
    )


def contract_events() -> list[Event]:
    """accepted → dispatched → waiting → timeout → dispatched (channel 2) → channel_failed →
    dead_lettered, as the gateway and the cascade publish them (notes/cascade_contract.md)."""
    email_route = {"pool": "default", "kind": "mta", "price": 0.001, "currency": "EUR"}
    final = {"origin": "rest", "metadata": {"order": "42"}, "channel": "email", "to": "ops@acme.example"}
    history = [
        {"state": "1_sending", "attempt": 1, "route": ROUTE},
        {"state": "1_failed", "attempt": 1, "reason": "timeout"},
        {"state": "2_sending", "attempt": 2, "route": email_route},
        {"state": "2_failed", "attempt": 2, "reason": "550 no such user"},
    ]
    steps: list[tuple[str, float, str, dict[str, Any]]] = [
        ("dispatched", 1, "1_sending", {"channel_index": 1, "channel": "sms", "to": "+4520000000",
                                        "attempt": 1, "route": ROUTE}),
        ("waiting", 2, "1_waiting", {"attempt": 1, "timeout_s": 60}),
        ("timeout", 62, "1_failed", {"attempt": 1}),
        ("dispatched", 62.5, "2_sending", {"channel_index": 2, "channel": "email", "to": "ops@acme.example",
                                           "attempt": 2, "route": email_route}),
        ("channel_failed", 63, "2_failed", {"attempt": 2, "reason": "550 no such user"}),
        ("dead_lettered", 63.5, "all_failed", {**final, "attempt": 2, "reason": "all channels failed",
                                               "history": history}),
    ]  # fmt: skip
    accepted = Event(
        kind="accepted", id=f"{MID}:accepted", message_id=MID, tenant_id="t-acme", at=T0, state="created",
        message=msgspec.to_builtins(_message()),
    )  # fmt: skip
    return [accepted] + [
        Event(kind=kind, id=f"{MID}:{kind}:{data['attempt']}", message_id=MID, tenant_id="t-acme",
              at=T0 + at, state=state, data=data)
        for kind, at, state, data in steps
    ]  # fmt: skip


@dataclass
class Node:
    store: FullStore
    js: JetStreamContext
    api: httpx.AsyncClient
    url: str  # the admin API over real TCP, for hermesctl


async def _recorded(store: FullStore) -> None:
    async with asyncio.timeout(15):
        while True:
            try:
                await store.get_dead_letter(MID)
                return
            except NotFound:
                await asyncio.sleep(0.05)


@pytest.fixture
async def node(store: FullStore, nats_server: str) -> AsyncIterator[Node]:
    """Events published, recorded by the recorder's consumer; the admin API on TCP."""
    nats = NatsClient()
    await nats.connect(servers=[nats_server])
    js = nats.jetstream()
    await ensure_streams(js)
    await store.create_tenant(
        Tenant(id="t-acme", name="acme", tier="business", status="active", email="ops@acme.example",
               rate_limit=0, burst=0, monthly_quota=0, created_at=T0, updated_at=T0)
    )  # fmt: skip
    for event in contract_events():
        await js.publish(
            event_subject("t-acme", event.kind), msgspec.json.encode(event), headers={"Nats-Msg-Id": event.id}
        )
    stopping = asyncio.Event()

    async def handle(batch: list[Any]) -> None:
        await record_batch(store, batch)

    recorder = asyncio.create_task(
        consume_batches(
            nats,
            stream="EVENTS",
            durable="recorder",
            subject="evt.>",
            handler=handle,
            stopping=stopping,
            wait_s=0.1,
        )
    )

    async def republish(tenant_id: str, message_id: str, attempt_base: int, payload: bytes) -> bool:
        return await republish_accepted(js, tenant_id, message_id, attempt_base, payload)

    async def status() -> dict[str, Any]:
        return {}

    registry = RegistryService(store, node_secret=b"s" * 32, tiers=TiersSection())
    app = create_admin_app(registry, status, messages=MessageService(store, republish=republish))
    # Served over real TCP in this event loop (the bus client lives here), for httpx and hermesctl alike.
    server = HttpServer(app, [bind_tcp("127.0.0.1:0", key="test")])
    try:
        await _recorded(store)
        await server.start()
        url = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=url) as api:
            yield Node(store, js, api, url)
    finally:
        stopping.set()
        await recorder
        await server.stop()
        await nats.close()


async def _cli(node: Node, *args: str) -> tuple[int, str, str]:
    """hermesctl in a thread (it is synchronous) against the admin API served by this event loop, with
    its admin client handed in so the test can close it (the CLI leaves that to process exit)."""
    admin = AdminClient(url=node.url)
    try:
        with patch("hermesctl.context.client_from_options", return_value=admin):
            result = await asyncio.to_thread(
                CliRunner().invoke, hermesctl, list(args), env={"COLUMNS": "200"}
            )
    finally:
        admin._http.close()
    return result.exit_code, result.stdout, result.stderr


async def test_recorder_projects_the_run(node: Node) -> None:
    message = await node.store.get_message("t-acme", MID)
    assert message.state == "all_failed"
    assert message.cost == pytest.approx(0.051)
    entry = await node.store.get_dead_letter(MID)
    assert (entry.status, entry.attempt, entry.reason, entry.event_id) == (
        "dead", 2, "all channels failed", f"{MID}:dead_lettered:2",
    )  # fmt: skip
    assert [h["state"] for h in entry.history] == ["1_sending", "1_failed", "2_sending", "2_failed"]


async def test_show_and_trace_through_the_api(node: Node) -> None:
    shown = (await node.api.get(f"/v1/messages/{MID}")).json()
    assert (shown["state"], shown["tenant_id"]) == ("all_failed", "t-acme")
    assert [c["channel"] for c in shown["channels"]] == ["sms", "email"]
    assert [e["kind"] for e in shown["events"]][-1] == "dead_lettered"
    assert shown["dead_letter"]["status"] == "dead"
    trace = (await node.api.get(f"/v1/messages/{MID}/trace")).json()
    assert (trace["state"], trace["stored_state"], trace["highest_attempt"]) == (
        "all_failed",
        "all_failed",
        2,
    )
    assert [(a["attempt"], a["channel"], a["carrier"], a["outcome"]) for a in trace["attempts"]] == [
        (1, "sms", "telia_dk", "timeout"),
        (2, "email", "default", "failed"),
    ]
    missing = await node.api.get("/v1/messages/msg_nope/trace")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no message 'msg_nope'"


async def test_replay_republishes_once_with_the_attempt_base(node: Node) -> None:
    listed = (await node.api.get("/v1/dlq", params={"tenant": "acme"})).json()
    assert [e["message_id"] for e in listed["entries"]] == [MID]
    assert "history" not in listed["entries"][0]
    shown = (await node.api.get(f"/v1/dlq/{MID}")).json()
    assert len(shown["history"]) == 4 and shown["message"]["state"] == "all_failed"

    replay = await node.api.post(f"/v1/dlq/{MID}/replay")
    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert (body["attempt_base"], body["nats_msg_id"], body["duplicate"]) == (2, f"{MID}:replay:2", False)
    assert (body["status"], body["replay_count"]) == ("replayed", 1)

    stored = await node.js.get_last_msg("MESSAGES", "msg.accepted.t-acme")
    assert stored.headers is not None and stored.data is not None
    assert stored.headers["Nats-Msg-Id"] == replay_msg_id(MID, 2)
    republished = msgspec.json.decode(stored.data, type=Message)
    assert republished == msgspec.structs.replace(_message(), attempt_base=2)

    # The same run replayed again (a retry, a second operator) is one message on the stream ...
    again = msgspec.json.encode(republished)
    assert await republish_accepted(node.js, "t-acme", MID, 2, again) is True
    assert (await node.js.stream_info("MESSAGES")).state.messages == 1
    # ... and the API refuses it: the entry is no longer dead.
    refused = await node.api.post(f"/v1/dlq/{MID}/replay")
    assert refused.status_code == 409
    assert "not dead-lettered" in refused.json()["error"]["message"]
    assert (await node.api.get("/v1/dlq")).json()["entries"] == []
    audit = (await node.api.get("/v1/audit", params={"target": MID})).json()
    assert [(a["action"], a["details"]["attempt_base"]) for a in audit] == [("message.dlq.replay", 2)]


async def test_hermesctl_message_and_dlq_commands(node: Node) -> None:
    code, out, _ = await _cli(node, "message", "trace", MID)
    assert code == 0
    for text in ("all_failed", "telia_dk", "timeout", "dead_lettered", "0.051 EUR", "2_sending"):
        assert text in out
    code, out, _ = await _cli(node, "message", "trace", MID, "--json")
    assert (code, json.loads(out)["highest_attempt"]) == (0, 2)
    code, out, _ = await _cli(node, "message", "show", MID)
    assert code == 0 and "sms:+4520000000 -> email:ops@acme.example" in out and "dead" in out
    assert json.loads((await _cli(node, "message", "show", MID, "--json"))[1])["state"] == "all_failed"

    code, out, _ = await _cli(node, "message", "dlq", "list", "--tenant", "acme", "--since", "3650d")
    assert code == 0 and MID in out and "all channels failed" in out
    code, out, _ = await _cli(node, "message", "dlq", "list", "--json", "--since", "2099-01-01")
    assert (code, json.loads(out)) == (0, {"entries": [], "next": None})
    code, out, _ = await _cli(node, "message", "dlq", "show", MID, "--json")
    assert code == 0 and len(json.loads(out)["history"]) == 4
    code, out, _ = await _cli(node, "message", "dlq", "show", MID)
    assert code == 0 and "550 no such user" in out

    code, out, err = await _cli(
        node, "message", "dlq", "replay", "--all", "--tenant", "acme", "--yes", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["replayed"], summary["failed"], summary["entries"][0]["attempt_base"]) == (1, [], 2)
    code, out, err = await _cli(node, "message", "dlq", "replay", MID)
    assert code == ExitCode.CONFLICT
    assert (
        out == ""
        and err.strip()
        == f"hermesctl: message {MID} is not dead-lettered (its entry is replayed); nothing replayed"
    )

    code, out, err = await _cli(node, "message", "dlq", "purge", MID, "--yes")
    assert (code, out.strip()) == (0, "purged 1"), err
    code, out, _ = await _cli(node, "message", "dlq", "list", "--status", "purged", "--json")
    assert [e["message_id"] for e in json.loads(out)["entries"]] == [MID]
    code, out, _ = await _cli(
        node, "message", "dlq", "purge", "--tenant", "acme", "--older-than", "1d", "--yes", "--json"
    )
    assert (code, json.loads(out)) == (0, {"purged": 0})


ERROR_CASES: list[tuple[list[str], int, str]] = [
    (["message", "show", "msg_nope"], ExitCode.NOT_FOUND, "hermesctl: no message 'msg_nope'"),
    (["message", "trace", "msg_nope", "--json"], ExitCode.NOT_FOUND, "hermesctl: no message 'msg_nope'"),
    (["message", "dlq", "show", "msg_nope"], ExitCode.NOT_FOUND, "hermesctl: no dead letter 'msg_nope'"),
    (["message", "dlq", "replay", "msg_nope"], ExitCode.NOT_FOUND, "hermesctl: no dead letter 'msg_nope'"),
    (
        ["message", "dlq", "purge", "msg_nope", "--yes"],
        ExitCode.NOT_FOUND,
        "hermesctl: no dead letter 'msg_nope'",
    ),
    (["message", "dlq", "list", "--since", "soon"], ExitCode.USAGE, "hermesctl: --since: not a time: 'soon'"),
    (["message", "dlq", "list", "--status", "gone"], ExitCode.INVALID, "hermesctl: status: one of dead,"),
    (["message", "dlq", "replay"], ExitCode.USAGE, "hermesctl: give one MESSAGE_ID, or --all"),
    (["message", "dlq", "replay", MID, "--all"], ExitCode.USAGE, "hermesctl: give one MESSAGE_ID, or --all"),
    (["message", "dlq", "replay", MID, "--tenant", "acme"], ExitCode.USAGE, "hermesctl: --tenant goes with"),
    (["message", "dlq", "purge"], ExitCode.USAGE, "hermesctl: give one MESSAGE_ID or --tenant T"),
    (
        ["message", "dlq", "purge", "--tenant", "acme", "--older-than", "old"],
        ExitCode.USAGE,
        "hermesctl: --older-than: not a duration",
    ),
    (["message", "dlq", "purge", "--tenant", "acme"], ExitCode.USAGE, "hermesctl: refusing without --yes"),
]


async def test_hermesctl_errors_are_one_line_and_a_code(node: Node) -> None:
    """Unknown ids and bad arguments: one line on stderr, nothing on stdout, the exit code, no change
    (one node for all cases: they change nothing, and a node per case costs a second each)."""
    for args, code, error in ERROR_CASES:
        exit_code, out, err = await _cli(node, *args)
        assert (exit_code, out) == (code, ""), (args, err)
        assert err.count("\n") == 1 and err.startswith(error), (args, err)
    assert (await node.store.get_dead_letter(MID)).status == "dead"
    assert (await node.js.stream_info("MESSAGES")).state.messages == 0


async def test_replay_refuses_a_message_that_is_not_dead_lettered(node: Node) -> None:
    await node.store.purge_dead_letters(message_id=MID)
    refused = await node.api.post(f"/v1/dlq/{MID}/replay")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"message {MID} is not dead-lettered (its entry is purged); nothing replayed"
    )
    assert (await node.js.stream_info("MESSAGES")).state.messages == 0
