"""The supervisor's backoff rule, without processes."""

from __future__ import annotations

from appliance.supervisor.children import RestartPolicy, _describe_exit


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    policy = RestartPolicy(backoff_s=0.5, backoff_max_s=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(0) == 0.5


def test_exits_are_described_for_operators() -> None:
    assert _describe_exit(0) == "exit code 0"
    assert _describe_exit(3) == "exit code 3"
    assert _describe_exit(-9) == "killed by SIGKILL"
    assert _describe_exit(-15) == "killed by SIGTERM"
