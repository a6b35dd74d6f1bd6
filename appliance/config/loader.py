"""Loading `hermes.toml`: parse, apply `HERMES_*` environment overrides, validate, resolve paths.

Every failure is a `ConfigError` naming the file, the key, its line where it can be found, and why.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from appliance.config.schema import Config
from appliance.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/hermes/hermes.toml"
ENV_PREFIX = "HERMES_"
_LISTEN_KEYS = ("nats.listen", "gateway.rest.listen", "gateway.smpp.listen", "gateway.smtp.listen")
_OPTIONAL_ADDRESS_KEYS = ("admin.listen", "nats.cluster_listen", "mta.smarthost", "simulator.smsc_listen")
_BAD_TABLE_NAME = re.compile(r"^Invalid enum value (?P<name>.+) - at `key` in `\$(?P<path>[^`]*)`$", re.S)
_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]+)`")
_TOML_LINE = re.compile(r"\(at line (?P<line>\d+)")


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read, override from the environment, validate and resolve the config at `path`."""
    file = str(path)
    env = dict(os.environ) if environ is None else environ
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=file) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from None
    return parse_config(text, file=file, environ=env)


def parse_config(text: str, *, file: str, environ: dict[str, str] | None = None) -> Config:
    """Validate TOML `text`; relative paths are taken from the directory of `file`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}", file=file, line=int(match["line"]) if match else None
        ) from None
    _apply_env_overrides(data, environ or {})
    try:
        config = msgspec.convert(data, type=Config, strict=True)
    except msgspec.ValidationError as exc:
        key, reason = _split_validation_error(str(exc))
        raise ConfigError(reason, file=file, key=key, line=_line_of(text, key) if key else None) from None
    _check_semantics(config, text, file)
    return _resolve_paths(config, base=Path(file).resolve().parent)


def env_var_for(key: str) -> str:
    """The environment variable that overrides a dotted config key: `store.dsn` -> `HERMES_STORE_DSN`."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def _scalar_keys(struct_type: type[msgspec.Struct], prefix: str = "") -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for field in msgspec.structs.fields(struct_type):
        path = (*prefix.split("."), field.encode_name) if prefix else (field.encode_name,)
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            keys.update(_scalar_keys(field.type, ".".join(path)))
        else:
            keys[".".join(path)] = path
    return keys


_OVERRIDABLE = _scalar_keys(Config)


def _apply_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    for key, path in _OVERRIDABLE.items():
        value = environ.get(env_var_for(key))
        if value is None:
            continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return
        node[path[-1]] = _coerce_env_value(value, node.get(path[-1]))


def _coerce_env_value(value: str, current: Any) -> Any:
    """Environment values are strings; convert to what the key holds so strict validation applies."""
    if isinstance(current, bool) or value.lower() in ("true", "false"):
        return value.lower() in ("1", "true", "yes", "on")
    try:
        return msgspec.json.decode(value) if value[:1] in "[{0123456789-" else value
    except msgspec.DecodeError:
        return value


def _split_validation_error(message: str) -> tuple[str | None, str]:
    match = _AT_PATH.match(message)
    reason = match["reason"] if match else message
    path = (match["path"] or "").lstrip(".") if match else ""
    path = path.removesuffix("[...]")  # a value in a table such as supervisor.nice
    bad_name = _BAD_TABLE_NAME.match(message)
    if bad_name:  # a name in a table whose names are fixed, such as supervisor.nice
        path = bad_name["path"].lstrip(".")
        choices = _key_choices_of(path)
        expected = f"; expected one of: {', '.join(choices)}" if choices else ""
        return path, f"unknown name {bad_name['name']} in this table{expected}"
    if "matching regex" in reason and "\\d+$" in reason:
        reason = 'expected "host:port", e.g. "127.0.0.1:8080"'
    if reason.startswith("Invalid enum value") and path:
        choices = _choices_of(path)
        if choices:
            reason += f"; expected one of: {', '.join(choices)}"
    unknown = _UNKNOWN_FIELD.search(reason)
    if unknown:
        key = f"{path}.{unknown['field']}" if path else unknown["field"]
        return key, "unknown key (not a Hermes setting; check the spelling against hermes.toml.example)"
    return (path or None), reason


def _key_choices_of(path: str) -> tuple[str, ...]:
    """The allowed names of a table whose names are a Literal (`dict[Literal[...], ...]`)."""
    field_type = _type_at(path)
    if getattr(field_type, "__origin__", None) is not dict:
        return ()
    key_type = get_args(field_type)[0]
    if getattr(key_type, "__origin__", None) is not Literal:
        return ()
    return tuple(str(choice) for choice in get_args(key_type))


def _type_at(path: str) -> Any:
    """The declared type of dotted `path` in Config."""
    struct_type: Any = Config
    field_type: Any = None
    for part in path.split("."):
        fields = {f.encode_name: f.type for f in msgspec.structs.fields(struct_type)}
        field_type = fields.get(part)
        struct_type = field_type
    return field_type


def _choices_of(path: str) -> tuple[str, ...]:
    """The allowed values of a Literal-typed key, for a helpful error."""
    field_type = _type_at(path)
    if getattr(field_type, "__origin__", None) is Literal:
        return tuple(str(arg) for arg in get_args(field_type))
    return ()


def _line_of(text: str, key: str) -> int | None:
    """Best-effort line number of dotted `key` in TOML `text`."""
    parts = key.split(".")
    table, name = parts[:-1], parts[-1]
    current: list[str] = []
    fallback: int | None = None
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        found = header.match(line)
        if found:
            current = [p.strip().strip('"') for p in found.group(1).split(".")]
            if current == parts:
                return number
            continue
        assigned = re.match(r"^\s*([A-Za-z0-9_.\-\"]+)\s*=", line)
        if not assigned:
            continue
        full = current + [p.strip('"') for p in assigned.group(1).split(".")]
        if full == parts:
            return number
        if full[-1] == name and fallback is None and full[:-1][-len(table) :] == table[-len(full[:-1]) :]:
            fallback = number
    return fallback


def _port_of(address: str) -> int | None:
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else None


def _check_semantics(config: Config, text: str, file: str) -> None:
    def fail(key: str, reason: str) -> None:
        raise ConfigError(reason, file=file, key=key, line=_line_of(text, key))

    for key in _LISTEN_KEYS + _OPTIONAL_ADDRESS_KEYS:
        value = _get(config, key)
        if not value and key in _OPTIONAL_ADDRESS_KEYS:
            continue
        port = _port_of(value)
        if port is None:
            fail(key, f"{value!r} is not host:port")
        elif not 1 <= port <= 65535:
            fail(key, f"port {port} is out of range 1-65535")
    if config.store.backend == "postgres" and not config.store.dsn:
        fail("store.dsn", f"backend 'postgres' needs a dsn (or {env_var_for('store.dsn')})")
    if not config.appliance.data_dir:
        fail("appliance.data_dir", "must not be empty")
    ports: dict[int, str] = {}
    for key in _LISTEN_KEYS:
        if key == "nats.listen" and config.nats.url:
            continue
        if key.startswith("gateway.s") and not getattr(config.gateway, key.split(".")[1]).enabled:
            continue
        port = _port_of(_get(config, key))
        if port in ports:
            fail(key, f"port {port} is also used by {ports[port]}")
        if port is not None:
            ports[port] = key


def _get(config: Config, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _resolve_paths(config: Config, base: Path) -> Config:
    def absolute(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    replace = msgspec.structs.replace
    data_dir = absolute(config.appliance.data_dir)
    appliance = replace(
        config.appliance,
        data_dir=data_dir,
        secret_file=absolute(config.appliance.secret_file or str(Path(data_dir) / "secret.key")),
    )
    store = replace(config.store, path=absolute(config.store.path or str(Path(data_dir) / "hermes.db")))
    admin = replace(config.admin, socket=absolute(config.admin.socket or str(Path(data_dir) / "admin.sock")))
    return replace(config, appliance=appliance, store=store, admin=admin)
