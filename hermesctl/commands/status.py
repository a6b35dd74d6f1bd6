"""`hermesctl status`: the node, its daemons, NATS and the store."""

from __future__ import annotations

import time
from typing import Any

import typer

from hermesctl.context import client
from hermesctl.errors import ExitCode
from hermesctl.output import JsonOption, console, duration, print_json, table


def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show each daemon (pid, uptime, restarts, health) and the health of NATS and the store.

    Exits 8 when anything is unhealthy, so scripts and the Ansible role can check it.
    """
    data: dict[str, Any] = client(ctx).get("/v1/status")
    if json:
        print_json(data)
    else:
        _print_human(data)
    if not data.get("healthy"):
        raise typer.Exit(int(ExitCode.UNHEALTHY))


def _print_human(data: dict[str, Any]) -> None:
    now = time.time()
    state = "[green]healthy[/green]" if data.get("healthy") else "[red]unhealthy[/red]"
    console.print(f"node [bold]{data.get('node', '?')}[/bold]: {state}", highlight=False)
    if "error" in data:
        console.print(f"[red]{data['error']}[/red]")
    if data.get("started_at"):
        console.print(
            f"hermesd pid {data.get('pid')}, up {duration(now - data['started_at'])}", highlight=False
        )
    rows = []
    for child in data.get("children", []):
        started = child.get("started_at")
        rows.append(
            [
                child["name"],
                child.get("pid"),
                child["state"],
                duration(now - started) if started and child.get("pid") else "-",
                child.get("restarts", 0),
                "yes" if child.get("healthy") else "no",
                child.get("last_exit"),
            ]
        )
    table("daemons", ["name", "pid", "state", "uptime", "restarts", "healthy", "last exit"], rows)
    nats = data.get("nats", {})
    console.print(
        f"nats: {'ok' if nats.get('healthy') else 'DOWN'} {nats.get('url') or ''} "
        + " ".join(f"{name}={info['messages']}" for name, info in nats.get("streams", {}).items())
        + (f" error: {nats['error']}" if nats.get("error") else ""),
        highlight=False,
    )
    store = data.get("store", {})
    console.print(
        f"store: {'ok' if store.get('healthy') else 'DOWN'} {store.get('backend')} "
        f"schema v{store.get('schema_version', '?')}"
        + (f" error: {store['error']}" if store.get("error") else ""),
        highlight=False,
    )
