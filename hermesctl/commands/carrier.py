"""`hermesctl carrier ...`: SMPP carrier binds, managed at runtime (no restart needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hermesctl.context import client
from hermesctl.errors import ExitCode, fail
from hermesctl.output import JsonOption, console, fields, print_json, table

app = typer.Typer(
    help="SMS carriers and aggregators (SMPP binds), rates are under `hermesctl rate`.", no_args_is_help=True
)
NameArg = Annotated[str, typer.Argument(help="Carrier name, e.g. telia_dk.")]


def _connections(carrier: dict[str, Any]) -> str:
    health = carrier.get("health")
    if not health:
        return "down (no report)" if carrier["enabled"] else "disabled"
    states = [c.get("state", "?") for c in health.get("connections", [])]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "-"


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    host: Annotated[str, typer.Option(help="SMSC host.")] = ...,  # type: ignore[assignment]
    port: Annotated[int, typer.Option(help="SMSC port.", min=1, max=65535)] = ...,  # type: ignore[assignment]
    system_id: Annotated[str, typer.Option("--system-id", help="Bind system_id.")] = ...,  # type: ignore[assignment]
    password: Annotated[str, typer.Option(help="Bind password (max 8).", prompt=True, hide_input=True)] = ...,  # type: ignore[assignment]
    kind: Annotated[str, typer.Option(help="direct | aggregator | retail")] = "direct",
    bind: Annotated[str, typer.Option(help="transceiver | transmitter | receiver")] = "transceiver",
    connections: Annotated[int, typer.Option(help="Binds to keep up.", min=1, max=64)] = 1,
    window: Annotated[int, typer.Option(help="Unanswered submits per bind.", min=1, max=1000)] = 10,
    tps: Annotated[int, typer.Option(help="Submits/s over all binds (0 = no limit).", min=0)] = 0,
    system_type: Annotated[str, typer.Option("--system-type")] = "",
    source_ton: Annotated[int, typer.Option("--source-ton", min=0, max=255)] = 5,
    source_npi: Annotated[int, typer.Option("--source-npi", min=0, max=255)] = 0,
    networks: Annotated[str, typer.Option(help="Home networks, comma-separated MCC-MNC, e.g. 238-01.")] = "",
    use_sar: Annotated[bool, typer.Option("--use-sar", help="Concatenate with SAR TLVs, not UDH.")] = False,
    json: JsonOption = False,
) -> None:
    """Add a carrier; the smpp daemon binds to it within seconds."""
    body = {
        "name": name,
        "kind": kind,
        "host": host,
        "port": port,
        "system_id": system_id,
        "password": password,
        "bind_type": bind,
        "connections": connections,
        "window": window,
        "tps": tps,
        "system_type": system_type,
        "source_ton": source_ton,
        "source_npi": source_npi,
        "use_sar": use_sar,
        "mccmnc_list": [n.strip() for n in networks.split(",") if n.strip()],
    }
    data = client(ctx).post("/v1/carriers", body)
    print_json(data) if json else console.print(
        f"carrier {data['name']} added ({data['host']}:{data['port']})"
    )


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """Carriers with the state of every connection (bound/connecting/down), window use, TPS and health."""
    carriers = client(ctx).get("/v1/carriers")
    if json:
        print_json(carriers)
        return
    rows = []
    for c in carriers:
        health = c.get("health") or {}
        rows.append(
            [
                c["name"],
                c["kind"],
                f"{c['host']}:{c['port']}",
                "yes" if c["enabled"] else "no",
                _connections(c),
                f"{health.get('in_flight', '-')}/{c['window'] * c['connections']}",
                health.get("tps_used", "-"),
                health.get("latency_ms", "-"),
                health.get("error_rate", "-"),
                health.get("dlr_rate", "-"),
            ]
        )
    table(
        None,
        [
            "name",
            "kind",
            "smsc",
            "enabled",
            "connections",
            "in flight",
            "tps",
            "latency ms",
            "errors",
            "dlr rate",
        ],
        rows,
    )


@app.command("show")
def show(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """A carrier's settings, health and rates."""
    data = client(ctx).get(f"/v1/carriers/{name}")
    if json:
        print_json(data)
        return
    fields(
        [
            (k, data[k])
            for k in (
                "name",
                "kind",
                "host",
                "port",
                "system_id",
                "bind_type",
                "connections",
                "window",
                "tps",
                "enabled",
                "mccmnc_list",
            )
        ]
        + [("connections now", _connections(data))]
    )
    table(
        "rates",
        ["prefix", "mccmnc", "price", "currency"],
        [[r["prefix"] or "*", r["mccmnc"], r["price"], r["currency"]] for r in data["rates"]],
    )


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: NameArg,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535)] = None,
    system_id: Annotated[str | None, typer.Option("--system-id")] = None,
    password: Annotated[str | None, typer.Option()] = None,
    bind: Annotated[str | None, typer.Option()] = None,
    connections: Annotated[int | None, typer.Option(min=1, max=64)] = None,
    window: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    tps: Annotated[int | None, typer.Option(min=0)] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    json: JsonOption = False,
) -> None:
    """Change a carrier; its binds are re-made with the new settings, without a restart."""
    changes = {
        "host": host,
        "port": port,
        "system_id": system_id,
        "password": password,
        "bind_type": bind,
        "connections": connections,
        "window": window,
        "tps": tps,
        "kind": kind,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        fail("nothing to change", ExitCode.USAGE)
    data = client(ctx).request("PATCH", f"/v1/carriers/{name}", json=changes)
    print_json(data) if json else console.print(f"carrier {name} updated")


def _set_enabled(ctx: typer.Context, name: str, enabled: bool, json: bool) -> None:
    data = client(ctx).request("PATCH", f"/v1/carriers/{name}", json={"enabled": enabled})
    print_json(data) if json else console.print(f"carrier {name} {'enabled' if enabled else 'disabled'}")


@app.command("enable")
def enable(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Bind to the carrier again and route to it."""
    _set_enabled(ctx, name, True, json)


@app.command("disable")
def disable(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Unbind from the carrier and route around it."""
    _set_enabled(ctx, name, False, json)


@app.command("remove")
def remove(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Remove a carrier and its rates."""
    data = client(ctx).delete(f"/v1/carriers/{name}")
    print_json(data) if json else console.print(f"carrier {name} removed")


@app.command("test")
def check_bind(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Bind with the carrier's credentials, send enquire_link, report the round trip."""
    data = client(ctx).post(f"/v1/carriers/{name}/test")
    if json:
        print_json(data)
    elif data["ok"]:
        console.print(
            f"{name}: bound in {data['bind_ms']} ms, enquire_link {data['enquire_link_ms']} ms",
            highlight=False,
        )
    if not data["ok"]:
        fail(f"{name}: {data['stage']} failed: {data['error']}", ExitCode.UNHEALTHY)


def read_csv(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE)
