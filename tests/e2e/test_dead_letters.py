"""Dead letters in a whole appliance: a message with no route is dead-lettered by the real cascade,
projected by the recorder, and worked by an operator with hermesctl (list, trace, replay, purge); the
replayed run numbers its attempts above the old ones and, failing again, reopens the entry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.node import Node

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path)
    try:
        yield node
    finally:
        node.kill_everything()


def _ctl_json(node: Node, *args: str) -> Any:
    return json.loads(node.ctl(*args, "--json", check=True).stdout)


def _wait_entry(node: Node, message_id: str, what: str, predicate: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        result = node.ctl("message", "dlq", "show", message_id, "--json")
        if result.returncode == 0:
            last = json.loads(result.stdout)
            if predicate(last):
                return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last {last}\n{node.log.read_text()[-3000:]}")


def test_no_route_dead_letters_and_an_operator_replays_and_purges(node: Node) -> None:
    node.start()
    node.wait_healthy()
    tenant = _ctl_json(node, "tenant", "add", "acme", "--email", "ops@acme.test")
    with httpx.Client(
        base_url=f"http://127.0.0.1:{node.rest_port}",
        headers={"Authorization": f"Bearer {tenant['api_key']}"},
        timeout=10,
    ) as rest:
        accepted = rest.post("/v1/messages", json={"to": "+4523456789", "channel": "sms", "body": "hi"})
        assert accepted.status_code == 202
        message_id = accepted.json()["message_id"]

        # no carrier is set up: the cascade finds no route, and all channels have failed
        entry = _wait_entry(node, message_id, "the dead letter", lambda e: e["status"] == "dead")
        assert (entry["tenant_id"], entry["replay_count"]) == (tenant["tenant_id"], 0)
        first_attempt = entry["attempt"]
        assert first_attempt >= 1 and entry["history"]
        listed = _ctl_json(node, "message", "dlq", "list", "--tenant", "acme")
        assert [e["message_id"] for e in listed["entries"]] == [message_id]
        trace = _ctl_json(node, "message", "trace", message_id)
        assert (trace["state"], trace["highest_attempt"]) == ("all_failed", first_attempt)
        assert [s["kind"] for s in trace["steps"]][-1] == "dead_lettered"
        human = node.ctl("message", "trace", message_id, check=True).stdout
        assert "dead_lettered" in human and "all_failed" in human
        # what the tenant sees (the gateway's view of the same store), by state and by group
        assert rest.get(f"/v1/messages/{message_id}").json()["state"] == "all_failed"
        for status in ("all_failed", "failed"):
            page = rest.get("/v1/messages", params={"status": status}).json()
            assert [m["message_id"] for m in page["messages"]] == [message_id]
        assert rest.get("/v1/messages", params={"status": "pending"}).json()["messages"] == []

        replayed = _ctl_json(node, "message", "dlq", "replay", message_id)
        assert (replayed["attempt_base"], replayed["duplicate"]) == (first_attempt, False)
        # the replayed run fails again (still no route) with new attempt numbers: the entry reopens
        again = _wait_entry(
            node, message_id, "the replayed run's dead letter",
            lambda e: e["status"] == "dead" and e["attempt"] > first_attempt,
        )  # fmt: skip
        assert again["replay_count"] == 1
        retraced = _ctl_json(node, "message", "trace", message_id)
        attempts = [a["attempt"] for a in retraced["attempts"]]
        assert attempts == sorted(set(attempts)) and attempts[-1] == again["attempt"]
        assert retraced["state"] == "all_failed"
        audit = _ctl_json(node, "audit", "--target", message_id)
        assert [a["action"] for a in audit] == ["message.dlq.replay"]

        assert (
            node.ctl("message", "dlq", "purge", message_id, "--yes", check=True).stdout.strip() == "purged 1"
        )
        refused = node.ctl("message", "dlq", "replay", message_id)
        assert refused.returncode == 5 and "not dead-lettered" in refused.stderr
    assert node.terminate() == 0
