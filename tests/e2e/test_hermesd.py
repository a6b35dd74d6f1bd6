"""The whole appliance as an operator runs it: hermesd as a process, hermesctl as a command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.node import BIN, Node, pid_alive

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(tmp_path)
    try:
        yield running
    finally:
        running.kill_everything()


def wait_gone(pids: list[int], timeout_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if pid_alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if pid_alive(pid)]


def describe(stuck: list[int], pids: dict[str, int]) -> list[str]:
    """Which daemon each pid is, its state and where the kernel has it waiting."""
    names = {pid: name for name, pid in pids.items()}
    described = []
    for pid in stuck:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except OSError:
            state, wchan, threads = "?", "?", 0
        described.append(f"{names.get(pid)} (pid {pid}, state {state}, wchan {wchan}, {threads} threads)")
    return described


def test_lifecycle_tenants_restart_and_clean_stop(node: Node) -> None:
    hermesd = node.start()
    status = node.wait_healthy()
    pids = node.child_pids(status)
    assert set(pids) == {
        "nats",
        "admin",
        "recorder",
        "notifier",
        "smpp",
        "router",
        "cascade.0",
        "cascade.1",
        "gateway",
    }
    # supervisor.nice: ingress and nats-server first, the daemons working off the backlog after them
    assert {name: os.getpriority(os.PRIO_PROCESS, pid) for name, pid in pids.items()} == {
        "nats": 0,
        "admin": 0,
        "recorder": 15,
        "notifier": 15,
        "smpp": 0,
        "router": 10,
        "cascade.0": 10,
        "cascade.1": 10,
        "gateway": 0,
    }
    if Path("/proc/self/autogroup").exists():  # Linux shares CPU by session here: each group is niced too
        groups = {name: Path(f"/proc/{pid}/autogroup").read_text().split() for name, pid in pids.items()}
        assert [groups[name][-1] for name in ("cascade.0", "recorder", "gateway")] == ["10", "15", "0"]
        assert len({group[0] for group in groups.values()}) == len(groups)  # one session per daemon
    assert status["store"]["schema_version"] >= 1
    assert set(status["nats"]["streams"]) == {"MESSAGES", "DISPATCH", "EVENTS", "TIMERS", "AUDIT"}
    with urllib.request.urlopen(f"http://127.0.0.1:{node.rest_port}/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"

    human = node.ctl("status", check=True)
    assert "gateway" in human.stdout and "healthy" in human.stdout

    # tenants, as design.md fixes them
    added = node.ctl(
        "tenant", "add", "acme", "--tier", "business", "--email", "ops@acme.test", "--json", check=True
    )
    tenant = json.loads(added.stdout)
    assert tenant["tenant_id"].startswith("tn_") and tenant["api_key"].startswith("hk_")
    human_add = node.ctl("tenant", "add", "beta", "--email", "ops@beta.test", check=True)
    assert "API key" in human_add.stdout and "hk_" in human_add.stdout
    duplicate = node.ctl("tenant", "add", "acme", "--email", "x@y.zz")
    assert duplicate.returncode == 5
    assert duplicate.stderr.count("\n") == 1 and "already exists" in duplicate.stderr
    bad_tier = node.ctl("tenant", "add", "gamma", "--tier", "gold", "--email", "x@y.zz")
    assert bad_tier.returncode == 6 and "tier" in bad_tier.stderr
    unknown = node.ctl("tenant", "show", "tn_ffffffffffffffff")
    assert unknown.returncode == 4 and "no tenant" in unknown.stderr
    listed = json.loads(node.ctl("tenant", "list", "--json", check=True).stdout)
    assert [t["name"] for t in listed] == ["acme", "beta"]
    assert node.ctl("tenant", "suspend", "acme", "--json", check=True)
    assert (
        json.loads(node.ctl("tenant", "show", "acme", "--json", check=True).stdout)["status"] == "suspended"
    )
    assert node.ctl("tenant", "smpp", "add", "acme", "--system-id", "acme1", "--password", "pw1", check=True)
    assert "acme1" in node.ctl("tenant", "smpp", "list", "acme", check=True).stdout
    key = json.loads(
        node.ctl("tenant", "key", "create", "acme", "--label", "ci", "--json", check=True).stdout
    )
    assert node.ctl("tenant", "key", "revoke", "acme", key["key_id"], check=True)
    refused = node.ctl("tenant", "delete", "beta")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert node.ctl("tenant", "delete", "beta", "--yes", check=True)

    # a crashed child is restarted with its state intact
    os.kill(pids["gateway"], signal.SIGKILL)
    status = node.wait_until(
        lambda s: s["healthy"] and node.child_pids(s).get("gateway") not in (None, pids["gateway"]),
        what="gateway restarted",
    )
    gateway = next(c for c in status["children"] if c["name"] == "gateway")
    assert gateway["restarts"] == 1
    assert gateway["last_exit"] == "killed by SIGKILL"
    assert "child.exited" in node.log.read_text()

    os.kill(pids["nats"], signal.SIGKILL)
    status = node.wait_until(
        lambda s: s["healthy"] and node.child_pids(s).get("nats") not in (None, pids["nats"]),
        what="nats restarted",
    )
    assert set(status["nats"]["streams"]) == {"MESSAGES", "DISPATCH", "EVENTS", "TIMERS", "AUDIT"}
    assert [t["name"] for t in json.loads(node.ctl("tenant", "list", "--json", check=True).stdout)] == [
        "acme"
    ]

    # a second hermesd on the same data dir refuses to start
    second = subprocess.run(
        [str(BIN / "hermesd"), "--config", str(node.config)], capture_output=True, text=True, timeout=30
    )
    assert second.returncode == 1
    assert "in use by another hermesd" in second.stderr and str(hermesd.pid) in second.stderr
    assert node.wait_healthy()

    # SIGTERM stops the whole tree, ingress first, and leaves nothing behind
    pids = node.child_pids(node.status())
    assert node.terminate() == 0
    assert wait_gone([hermesd.pid, *pids.values()]) == []
    assert not (node.root / "admin.sock").exists()
    log = [json.loads(line) for line in node.log.read_text().splitlines() if line.startswith("{")]
    stopped = [entry["child"] for entry in log if entry.get("action") == "child.stopped"]
    assert stopped[-9] == "gateway"
    assert set(stopped[-8:-2]) == {"recorder", "notifier", "smpp", "router", "cascade.0", "cascade.1"}
    assert stopped[-2:] == ["admin", "nats"]
    not_running = node.ctl("status")
    assert not_running.returncode == 3 and "not running" in not_running.stderr


def test_kill_9_of_hermesd_takes_its_children_along_and_it_starts_again(node: Node, tmp_path: Path) -> None:
    # systemd's side of sd_notify: a datagram socket named by NOTIFY_SOCKET
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(40)
    os.environ["NOTIFY_SOCKET"] = str(notify_path)
    try:
        node.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    messages: list[str] = []
    while not any("READY=1" in m for m in messages):
        messages.append(notify.recv(4096).decode())
    notify.close()
    assert node.status()["healthy"]  # READY=1 only once every child is
    pids = node.child_pids(node.wait_healthy())
    node.ctl("tenant", "add", "acme", "--email", "ops@acme.test", check=True)
    node.terminate(signal.SIGKILL)
    stuck = wait_gone(list(pids.values()))
    assert not stuck, f"still alive 15 s after hermesd died: {describe(stuck, pids)}"
    node.start()
    node.wait_healthy()
    assert json.loads(node.ctl("tenant", "show", "acme", "--json", check=True).stdout)["name"] == "acme"
    assert node.terminate(signal.SIGINT) == 0


def test_a_port_in_use_is_refused_naming_the_port_and_the_daemon(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        node = Node(tmp_path, rest_port=str(port))
        result = subprocess.run(
            [str(BIN / "hermesd"), "--config", str(node.config)], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "gateway.rest.listen" in result.stderr and "daemon gateway" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("hermesd: ")


def test_an_unusable_data_dir_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    node = Node(tmp_path, data_dir=str(blocker / "var"))
    result = subprocess.run(
        [str(BIN / "hermesd"), "--config", str(node.config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert f"cannot create data dir {blocker / 'var'}" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permission bits cannot refuse it")
def test_a_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    node = Node(tmp_path, data_dir=str(locked))
    result = subprocess.run(
        [str(BIN / "hermesd"), "--config", str(node.config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "not writable" in result.stderr


def test_check_config_refuses_a_bad_file_with_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "hermes.toml"
    config.write_text('[gateway.rest]\nlisten = "127.0.0.1:8080"\nworkers = "two"\n')
    result = subprocess.run(
        [str(BIN / "hermesd"), "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"hermesd: {config}:3: gateway.rest.workers: Expected `int`, got `str`"
    config.write_text("")
    ok = subprocess.run(
        [str(BIN / "hermesd"), "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0 and "config OK" in ok.stdout


def test_hermesctl_without_a_config_or_a_node_says_so(tmp_path: Path) -> None:
    missing = subprocess.run(
        [str(BIN / "hermesctl"), "--config", str(tmp_path / "nope.toml"), "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
    node = Node(tmp_path)
    down = node.ctl("tenant", "list")
    assert down.returncode == 3
    assert "not running" in down.stderr and "admin socket" in down.stderr


def test_a_message_travels_rest_to_store_and_operators_manage_money_and_lists(node: Node) -> None:

    node.start()
    node.wait_healthy()
    tenant = json.loads(
        node.ctl("tenant", "add", "acme", "--email", "ops@acme.test", "--json", check=True).stdout
    )
    with node.rest_client(tenant["api_key"]) as rest:
        sms = {"to": "+4523456789", "channel": "sms", "body": "Your order has shipped"}
        accepted = rest.post("/v1/messages", json=sms)
        assert accepted.status_code == 202
        message_id = accepted.json()["message_id"]
        deadline = time.monotonic() + 15
        while (
            shown := rest.get(f"/v1/messages/{message_id}")
        ).status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shown.status_code == 200
        # no carrier is set up: the cascade finds no route and dead-letters it (or has not got to it yet)
        assert shown.json()["state"] in ("created", "1_failed", "all_failed")

        credited = json.loads(node.ctl("tenant", "credit", "acme", "0.05", "--json", check=True).stdout)
        assert (credited["prepaid"], credited["balance"]) == (True, 0.05)
        time.sleep(0.5)  # the gateway hears of the change on the bus
        assert rest.post("/v1/messages", json={**sms, "to": "+4523456780"}).status_code == 202
        assert rest.post("/v1/messages", json={**sms, "to": "+4523456781"}).status_code == 402
        quota = json.loads(node.ctl("tenant", "quota", "acme", "--json", check=True).stdout)
        assert quota["available"] <= 0.0 + 1e-9

        node.ctl("tenant", "credit", "acme", "10", check=True)
        node.ctl("tenant", "suppress", "add", "acme", "+4523456782", check=True)
        time.sleep(0.5)
        refused = rest.post("/v1/messages", json={**sms, "to": "+4523456782"})
        assert refused.status_code == 451
        listed = json.loads(node.ctl("tenant", "suppress", "list", "acme", "--json", check=True).stdout)
        assert [entry["address"] for entry in listed] == ["+4523456782"]
        edited = node.ctl(
            "tenant", "edit", "acme", "--rate-limit", "unlimited", "--quota", "5", "--json", check=True
        )
        assert json.loads(edited.stdout)["monthly_quota"] == 5
        assert node.ctl("tenant", "edit", "acme", "--rate-limit", "fast").returncode == 2
        url = "https://hooks.acme.test/x"
        hook = json.loads(node.ctl("tenant", "webhook", "set", "acme", url, "--json", check=True).stdout)
        assert len(hook["secret"]) == 64
    assert node.terminate() == 0


def test_the_sms_path_binds_the_simulator_routes_and_carries_a_dispatch(tmp_path: Path) -> None:
    """What `make run` shows: the simulator carrier bound, routed to, and an SMS submitted with its DLR."""
    import asyncio

    import msgspec
    from nats.aio.client import Client as NatsClient

    from appliance.domain.dispatch import SmsDispatch, sms_subject

    node = Node(tmp_path, simulator=True)
    try:
        node.start()
        node.wait_healthy()
        carriers = node.wait_until_carriers_bound()
        assert [c["name"] for c in carriers] == ["sim"]
        explained = json.loads(node.ctl("route", "explain", "+4528123456", "--json", check=True).stdout)
        assert explained["chosen"] == "sim"
        assert node.ctl("carrier", "test", "sim", check=True).returncode == 0

        async def dispatch_and_wait() -> set[str]:
            nats = NatsClient()
            await nats.connect(servers=[f"nats://127.0.0.1:{node.nats_port}"])
            try:
                route = await nats.request("hermes.router.route", b'{"to": "+4528123456"}', timeout=10)
                plan = msgspec.json.decode(route.data)
                assert plan["chosen"] == "sim", plan  # the router's own view, as admin's `explain` had it
                js = nats.jetstream()
                kinds: set[str] = set()
                subscription = await nats.subscribe("evt.tn_e2e.*")
                command = SmsDispatch(
                    message_id="msg_e2e",
                    tenant_id="tn_e2e",
                    attempt=1,
                    carrier="sim",
                    to="+4528123456",
                    body="Hello from the e2e test",
                )
                await js.publish(
                    sms_subject("sim"), msgspec.json.encode(command), headers={"Nats-Msg-Id": "msg_e2e:1"}
                )
                async with asyncio.timeout(20):
                    while not {"submitted", "dlr"} <= kinds:
                        message = await subscription.next_msg(timeout=20)
                        kinds.add(message.subject.rsplit(".", 1)[-1])
                return kinds
            finally:
                await nats.close()

        assert {"submitted", "dlr"} <= asyncio.run(dispatch_and_wait())
        assert node.terminate() == 0
    finally:
        node.kill_everything()
