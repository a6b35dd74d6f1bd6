"""The config `make run` writes for a trial is valid and turns on what the README promises."""

from __future__ import annotations

import subprocess
from pathlib import Path

from appliance.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_writes_a_valid_trial_config(tmp_path: Path) -> None:
    target = tmp_path / "hermes.toml"
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"CONFIG={target}", str(target)],
        check=True,
        capture_output=True,
    )
    config = load_config(target, environ={})
    assert config.appliance.data_dir.endswith("var")
    assert config.simulator.smsc_listen == "127.0.0.1:2776"
    assert (config.gateway.smpp.enabled, config.gateway.smpp.listen) == (True, "127.0.0.1:2775")
    assert config.gateway.smtp.enabled is False  # the range edit touched [gateway.smpp] only
