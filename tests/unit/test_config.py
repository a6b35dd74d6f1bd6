"""Config loading: good files load with defaults filled in, bad ones are refused with key, line, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Config, env_var_for, load_config, parse_config
from appliance.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def refused(text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="/etc/hermes/hermes.toml", environ=environ)
    return caught.value


def test_the_example_file_parses_and_matches_the_defaults() -> None:
    example = load_config(ROOT / "hermes.toml.example", environ={})
    defaults = parse_config("", file=str(ROOT / "x.toml"))
    assert example.nats == defaults.nats
    assert example.gateway == defaults.gateway
    assert example.tiers == defaults.tiers
    assert example.supervisor == defaults.supervisor


def test_the_example_documents_every_key() -> None:
    text = (ROOT / "hermes.toml.example").read_text()
    from appliance.config.loader import _OVERRIDABLE

    for key in _OVERRIDABLE:
        name = key.rsplit(".", 1)[-1]
        assert f"{name} =" in text or f"# {name} =" in text, f"{key} is missing from hermes.toml.example"


def test_an_empty_file_is_a_working_single_node() -> None:
    config = parse_config("", file="/etc/hermes/hermes.toml")
    assert isinstance(config, Config)
    assert config.nats.listen == "127.0.0.1:14222"
    assert not config.nats.listen.endswith(":4222")
    assert config.store.backend == "sqlite"
    assert config.store.path == "/var/lib/hermes/hermes.db"
    assert config.admin.socket == "/var/lib/hermes/admin.sock"
    assert config.appliance.secret_file == "/var/lib/hermes/secret.key"


def test_relative_paths_are_taken_from_the_config_files_directory() -> None:
    config = parse_config('[appliance]\ndata_dir = "./var"\n', file="/srv/hermes/hermes.toml")
    assert config.appliance.data_dir == "/srv/hermes/var"
    assert config.store.path == "/srv/hermes/var/hermes.db"


def test_fixed_keys_of_design_md_are_accepted() -> None:
    text = """
[appliance]
node_name = "n1"
data_dir = "/data"
[nats]
listen = "127.0.0.1:5222"
[store]
backend = "postgres"
dsn = "postgresql://hermes@db/hermes"
path = "/data/x.db"
[admin]
socket = "/run/hermes/admin.sock"
listen = "127.0.0.1:9090"
[gateway.rest]
listen = "0.0.0.0:8080"
[gateway.smpp]
listen = "0.0.0.0:2775"
[gateway.smtp]
listen = "0.0.0.0:2525"
[mta]
smarthost = "relay.example.net:25"
"""
    config = parse_config(text, file="/etc/hermes/hermes.toml")
    assert config.mta.smarthost == "relay.example.net:25"
    assert config.store.backend == "postgres"


def test_malformed_toml_names_the_line() -> None:
    error = refused('[nats]\nlisten = "127.0.0.1:1"\nbroken = = 1\n')
    assert error.line == 3
    assert "not valid TOML" in error.reason


def test_an_unknown_key_is_refused_with_its_line() -> None:
    error = refused('[appliance]\nnode_name = "a"\n\n[nats]\nlisten = "127.0.0.1:5222"\nlisen = "x"\n')
    assert error.key == "nats.lisen"
    assert error.line == 6
    assert "unknown key" in error.reason
    assert str(error).startswith("/etc/hermes/hermes.toml:6: nats.lisen:")


def test_an_unknown_section_is_refused() -> None:
    error = refused("[natz]\nlisten = 1\n")
    assert error.key == "natz"
    assert error.line == 1


def test_a_wrong_type_is_refused() -> None:
    error = refused('[store]\npool_size = "four"\n')
    assert error.key == "store.pool_size"
    assert error.line == 2
    assert "Expected `int`" in error.reason


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[gateway.rest]\nlisten = "0.0.0.0:70000"\n', "gateway.rest.listen", "out of range"),
        ('[gateway.rest]\nlisten = "0.0.0.0:0"\n', "gateway.rest.listen", "out of range"),
        ('[nats]\nlisten = "localhost"\n', "nats.listen", "host:port"),
        ('[admin]\nlisten = "nowhere"\n', "admin.listen", "not host:port"),
        ('[gateway.rest]\nlisten = "127.0.0.1:14222"\n', "gateway.rest.listen", "also used by nats.listen"),
        ('[store]\nbackend = "postgres"\n', "store.dsn", "needs a dsn"),
        ('[store]\nbackend = "mysql"\n', "store.backend", "one of: sqlite, postgres"),
        ("[supervisor]\nrestart_backoff_s = -1\n", "supervisor.restart_backoff_s", ">"),
        ("[supervisor]\nnice = { cascade = 20 }\n", "supervisor.nice", "<= 19"),
        ("[nats]\nbacklog_max_messages = -1\n", "nats.backlog_max_messages", ">= 0"),
        ("[supervisor]\nnice = { casade = 10 }\n", "supervisor.nice", "cascade"),
    ],
)
def test_bad_values_are_refused(text: str, key: str, reason: str) -> None:
    error = refused(text)
    assert error.key == key
    assert reason in error.reason


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_environment_overrides_secrets_and_any_key() -> None:
    environ = {
        env_var_for("store.dsn"): "postgresql://secret@db/hermes",
        env_var_for("store.backend"): "postgres",
        env_var_for("store.pool_size"): "9",
        env_var_for("gateway.smpp.enabled"): "true",
        env_var_for("nats.routes"): '["nats-route://10.0.0.2:14248"]',
    }
    config = parse_config("", file="/etc/hermes/hermes.toml", environ=environ)
    assert env_var_for("store.dsn") == "HERMES_STORE_DSN"
    assert config.store.dsn == "postgresql://secret@db/hermes"
    assert config.store.pool_size == 9
    assert config.gateway.smpp.enabled is True
    assert config.nats.routes == ["nats-route://10.0.0.2:14248"]


def test_a_bad_environment_override_is_refused_like_a_bad_file() -> None:
    error = refused("", environ={"HERMES_STORE_POOL_SIZE": "many"})
    assert error.key == "store.pool_size"


def test_config_is_frozen() -> None:
    config = parse_config("", file="/x.toml")
    with pytest.raises(AttributeError):
        config.appliance.data_dir = "/tmp"  # type: ignore[misc]


def test_nice_names_every_daemon_there_is_and_only_those() -> None:
    from typing import get_args

    from appliance.config.schema import DaemonName
    from appliance.daemons.registry import DAEMONS

    assert set(get_args(DaemonName)) == {spec.name for spec in DAEMONS}
    assert parse_config("[supervisor]\nnice = {}\n", file="x.toml").supervisor.nice == {}


def test_nice_of_a_daemon_is_its_entry_or_zero() -> None:
    supervisor = parse_config("[supervisor]\nnice = { router = 7 }\n", file="x.toml").supervisor
    assert (supervisor.nice_of("router"), supervisor.nice_of("cascade"), supervisor.nice_of("gateway")) == (
        7,
        0,
        0,
    )
