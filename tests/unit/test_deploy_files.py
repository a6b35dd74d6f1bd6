"""The deployment files (systemd/, ansible/) against the code they deploy, so neither rots silently.

Parse-level only: nothing is installed or started. The YAML of the Ansible role must parse, its
tasks must name templates, files and handlers that exist, the unit must keep the contract hermesd
relies on (Type=notify, ordered stop, ExecStart), and every `[section]` and `key =` of the
hermes.toml template, and every HERMES_* variable named anywhere, must exist in the real config
schema (`appliance.config.schema.Config`).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from appliance.config.loader import env_var_for
from appliance.config.schema import ApplianceSection, Config

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
ROLE = ANSIBLE / "roles" / "hermes"
UNIT = ROOT / "systemd" / "hermesd.service"
TEMPLATE = ROLE / "templates" / "hermes.toml.j2"
DROP_IN = ROLE / "templates" / "hermesd.override.conf.j2"
YAML_FILES = sorted(p for p in ANSIBLE.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())

_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9_.]+)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=")
_ENV_NAME = re.compile(r"\bHERMES_[A-Z0-9_]*[A-Z0-9]\b")
# Names that are not config keys but are real: hermesctl's and hermesd's config-file variable.
_ENV_NOT_KEYS = {"HERMES_CONFIG"}


# --- helpers -----------------------------------------------------------------------------------
def _yaml() -> ModuleType:
    module: ModuleType = pytest.importorskip("yaml", reason="PyYAML (a litestar dependency) is not installed")
    return module


def _load_yaml(path: Path) -> list[object]:
    """All documents of `path`; Ansible's `!vault` and `!unsafe` tags load as plain strings."""
    yaml = _yaml()
    loader: Any = type("_AnsibleLoader", (yaml.SafeLoader,), {})
    for tag in ("!vault", "!unsafe"):
        loader.add_constructor(tag, lambda load, node: load.construct_scalar(node))
    return list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))


def _tasks(path: Path) -> list[dict[str, object]]:
    """The tasks of a tasks/handlers file, blocks flattened."""
    (document,) = _load_yaml(path)
    assert isinstance(document, list), f"{path}: a tasks file is a list"

    def flatten(items: list[object]) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        for item in items:
            assert isinstance(item, dict), f"{path}: every task is a mapping: {item!r}"
            found.append(item)
            for part in ("block", "rescue", "always"):
                inner = item.get(part)
                if isinstance(inner, list):
                    found.extend(flatten(inner))
        return found

    return flatten(document)


def _role_tasks() -> list[dict[str, object]]:
    return [task for path in sorted((ROLE / "tasks").glob("*.yml")) for task in _tasks(path)]


def _module_args(task: dict[str, object], module: str) -> dict[str, object] | None:
    args = task.get(f"ansible.builtin.{module}", task.get(module))
    return args if isinstance(args, dict) else None


def _unit_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file as section -> [(key, value)], repeated keys kept in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path}:{number}: not `Key=value` in a section: {raw!r}"
        assert not raw.endswith("\\"), f"{path}:{number}: keep settings on one line"
        current.append((key.strip(), value.strip()))
    return sections


def _last(entries: list[tuple[str, str]], key: str) -> str:
    values = [value for name, value in entries if name == key]
    assert values, f"{UNIT.name}: {key}= is missing"
    return values[-1]


def _seconds(span: str) -> float:
    """A systemd time span ("60", "90s", "1min 30s") in seconds."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts, f"not a time span: {span!r}"
    return sum(float(number) * units[unit or "s"] for number, unit in parts)


def _schema_keys(struct: type[msgspec.Struct], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], bool]:
    """Every path of the config schema -> whether it is a section (a struct) rather than a key."""
    keys: dict[tuple[str, ...], bool] = {}
    for field in msgspec.structs.fields(struct):
        path = (*prefix, field.encode_name)
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            keys[path] = True
            keys.update(_schema_keys(field.type, path))
        else:
            keys[path] = False
    return keys


def _template_keys(text: str) -> list[tuple[int, tuple[str, ...], bool]]:
    """(line, path, is_section) of every `[section]` and `key =` line of a TOML(+Jinja) text."""
    found: list[tuple[int, tuple[str, ...], bool]] = []
    section: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("#", "{%", "{#")):
            continue
        header = _SECTION.match(line)
        if header:
            section = tuple(part.strip() for part in header.group(1).split("."))
            found.append((number, section, True))
            continue
        key = _KEY.match(line)
        if key:
            found.append((number, (*section, key.group(1)), False))
    return found


# --- Ansible -----------------------------------------------------------------------------------
def test_the_ansible_tree_has_its_files() -> None:
    names = {str(path.relative_to(ANSIBLE)) for path in YAML_FILES}
    for expected in (
        "site.yml",
        "roles/hermes/defaults/main.yml",
        "roles/hermes/tasks/main.yml",
        "roles/hermes/handlers/main.yml",
        "roles/hermes/meta/main.yml",
    ):
        assert expected in names
    assert TEMPLATE.is_file()
    assert (ANSIBLE / "inventory.example.ini").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(ANSIBLE)) for p in YAML_FILES])
def test_every_yaml_file_under_ansible_parses(path: Path) -> None:
    documents = _load_yaml(path)
    assert documents, f"{path} is empty"
    assert all(document is not None for document in documents), f"{path} has an empty document"


def test_every_task_has_a_name_and_every_notify_a_handler() -> None:
    handlers = {str(task["name"]) for task in _tasks(ROLE / "handlers" / "main.yml")}
    for task in _role_tasks():
        assert task.get("name"), f"a task without a name: {task!r}"
        notify = task.get("notify", [])
        notified = [notify] if isinstance(notify, str) else notify
        assert isinstance(notified, list), f"task {task['name']!r}: notify is a name or a list"
        for handler in notified:
            assert handler in handlers, f"task {task['name']!r} notifies {handler!r}, which is no handler"


def test_templates_and_files_the_tasks_use_exist() -> None:
    (defaults,) = _load_yaml(ROLE / "defaults" / "main.yml")
    assert isinstance(defaults, dict)
    systemd_src = str(defaults["hermes_systemd_src"])
    assert systemd_src.startswith("{{ role_path }}/")
    assert (ROLE / systemd_src.removeprefix("{{ role_path }}/")).resolve() == UNIT.parent
    used = 0
    for task in _role_tasks():
        template = _module_args(task, "template")
        if template is not None:
            assert (ROLE / "templates" / str(template["src"])).is_file(), template["src"]
            used += 1
        copy = _module_args(task, "copy")
        if copy is not None and str(copy.get("src", "")).startswith("{{ hermes_systemd_src }}/"):
            assert (UNIT.parent / str(copy["src"]).split("/", 1)[1]).is_file(), copy["src"]
            used += 1
    assert used >= 4, "the role should render hermes.toml, hermes.env, a drop-in and copy the unit"


def test_hermes_toml_is_validated_by_hermesd_before_it_is_installed() -> None:
    validates = [
        str(args.get("validate", ""))
        for task in _role_tasks()
        if (args := _module_args(task, "template")) is not None and args.get("src") == TEMPLATE.name
    ]
    assert len(validates) == 1
    assert "hermesd" in validates[0]
    assert "--check-config" in validates[0]
    assert "%s" in validates[0]


# --- the hermes.toml template against the schema ----------------------------------------------
def test_template_keys_exist_in_the_config_schema() -> None:
    schema = _schema_keys(Config)
    found = _template_keys(TEMPLATE.read_text(encoding="utf-8"))
    for number, path, is_section in found:
        dotted = ".".join(path)
        assert path in schema, f"{TEMPLATE.name}:{number}: {dotted} is not in appliance.config.schema"
        kind = "a section" if schema[path] else "a key"
        assert schema[path] == is_section, f"{TEMPLATE.name}:{number}: {dotted} is {kind} in the schema"
    paths = {path for _, path, _ in found}
    for fixed in (("appliance", "node_name"), ("appliance", "data_dir"), ("nats", "listen")):
        assert fixed in paths, f"{TEMPLATE.name} no longer sets {'.'.join(fixed)}"
    assert ("store", "backend") in paths
    assert ("gateway", "rest", "listen") in paths


def test_the_key_extraction_sees_sections_keys_and_skips_jinja() -> None:
    text = '[nats]\n{% if x %}\nlisten = "a:1"\n# url = ""\n{% endif %}\n[gateway.rest]\n  workers = 2\n'
    assert _template_keys(text) == [
        (1, ("nats",), True),
        (3, ("nats", "listen"), False),
        (6, ("gateway", "rest"), True),
        (7, ("gateway", "rest", "workers"), False),
    ]


def test_secrets_are_not_in_the_template() -> None:
    keys = {path for _, path, _ in _template_keys(TEMPLATE.read_text(encoding="utf-8"))}
    assert ("store", "dsn") not in keys, "the DSN belongs in the env file (HERMES_STORE_DSN)"
    assert ("nats", "url") not in keys, "the NATS URL may hold credentials: env file (HERMES_NATS_URL)"


def test_every_hermes_environment_variable_named_is_a_config_key() -> None:
    valid = {env_var_for(".".join(path)) for path, section in _schema_keys(Config).items() if not section}
    files = [
        p
        for p in (*ANSIBLE.rglob("*"), *UNIT.parent.rglob("*"))
        if p.is_file() and p.suffix in (".yml", ".yaml", ".j2", ".ini", ".md", ".service", ".conf")
    ]
    named = 0
    for path in files:
        for name in _ENV_NAME.findall(path.read_text(encoding="utf-8")):
            assert name in valid | _ENV_NOT_KEYS, f"{path.relative_to(ROOT)}: {name} is no config key"
            named += 1
    assert named, "the role passes secrets as HERMES_* variables; none found"


# --- the systemd unit --------------------------------------------------------------------------
def test_the_unit_has_its_sections_and_starts_hermesd_with_a_config() -> None:
    unit = _unit_sections(UNIT)
    assert set(unit) == {"Unit", "Service", "Install"}
    assert _last(unit["Unit"], "Description")
    assert "multi-user.target" in _last(unit["Install"], "WantedBy").split()
    service = unit["Service"]
    start = shlex.split(_last(service, "ExecStart"))
    assert start[0].startswith("/") and start[0].endswith("/hermesd"), start
    assert "--config" in start and start[start.index("--config") + 1].startswith("/"), start
    pre = shlex.split(_last(service, "ExecStartPre"))
    assert pre[0] == start[0] and "--check-config" in pre, pre
    assert pre[pre.index("--config") + 1] == start[start.index("--config") + 1]


def test_the_unit_keeps_the_contract_hermesd_relies_on() -> None:
    service = _unit_sections(UNIT)["Service"]
    expected = {
        "Type": "notify",  # READY=1 once every child is healthy
        "NotifyAccess": "main",
        "KillMode": "mixed",  # SIGTERM to hermesd only: it stops its children in order
        "Restart": "on-failure",
        "User": "hermes",
        "Group": "hermes",
        "StateDirectory": "hermes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
    }
    for key, value in expected.items():
        assert _last(service, key) == value, f"{key}= should be {value}"
    assert _last(service, "EnvironmentFile").lstrip("-").startswith("/etc/hermes/")
    assert set(_last(service, "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert _seconds(_last(service, "WatchdogSec")) > 0
    assert int(_last(service, "LimitNOFILE")) >= 65536
    # hermesd stops its children in three stages, each within shutdown_grace_s.
    grace = ApplianceSection().shutdown_grace_s
    assert _seconds(_last(service, "TimeoutStopSec")) > 3 * grace


def test_the_role_drop_in_overrides_only_settings_of_the_unit() -> None:
    unit_keys = {key for key, _ in _unit_sections(UNIT)["Service"]}
    lines = [line for line in DROP_IN.read_text(encoding="utf-8").splitlines() if "=" in line]
    keys = {line.split("=", 1)[0].strip() for line in lines if not line.lstrip().startswith("#")}
    assert keys, DROP_IN
    assert keys <= unit_keys, f"{DROP_IN.name} sets keys the unit does not have: {keys - unit_keys}"


def test_time_spans_are_read_like_systemd_does() -> None:
    assert _seconds("60") == _seconds("60s") == _seconds("1min") == 60
    assert _seconds("1min 30s") == 90
