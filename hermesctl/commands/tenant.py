"""`hermesctl tenant ...`: tenants, their API keys and their SMPP credentials."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from hermesctl.context import client
from hermesctl.errors import ExitCode, fail
from hermesctl.output import JsonOption, console, fields, print_json, table, when

app = typer.Typer(
    help="Tenants: create, inspect, suspend, delete; their API keys and SMPP logins.", no_args_is_help=True
)
key_app = typer.Typer(help="A tenant's REST API keys.", no_args_is_help=True)


class Concatenated(StrEnum):
    reassemble = "reassemble"
    parts = "parts"


ConcatenatedOption = Annotated[
    Concatenated,
    typer.Option(
        help="Concatenated messages from this login: 'reassemble' the parts into one message, or pass "
        "each on as its own message ('parts': one id and one receipt per part; the handset still joins them)."
    ),
]

smpp_app = typer.Typer(help="A tenant's SMPP logins (system_id/password).", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(smpp_app, name="smpp")

TenantArg = Annotated[str, typer.Argument(help="Tenant name or id (tn_...).")]


def _limit(value: int) -> str:
    return "unlimited" if value == 0 else str(value)


def _show_tenant(tenant: dict[str, Any]) -> None:
    fields(
        [
            ("tenant_id", tenant["tenant_id"]),
            ("name", tenant["name"]),
            ("tier", tenant["tier"]),
            ("status", tenant["status"]),
            ("email", tenant["email"]),
            ("rate limit", f"{_limit(tenant['rate_limit'])} msg/s, burst {_limit(tenant['burst'])}"),
            ("monthly quota", _limit(tenant["monthly_quota"])),
            ("created", when(tenant["created_at"])),
        ]
    )


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique name: a-z, 0-9, '-', '_'.")],
    tier: Annotated[str, typer.Option(help="starter | business | enterprise")] = "starter",
    email: Annotated[str, typer.Option(help="Contact email of the tenant.")] = ...,  # type: ignore[assignment]
    json: JsonOption = False,
) -> None:
    """Create an active tenant with its tier's limits and a first API key (shown once)."""
    created = client(ctx).post("/v1/tenants", {"name": name, "tier": tier, "email": email})
    if json:
        print_json(created)
        return
    _show_tenant(created)
    console.print(f"\n[bold]API key[/bold] (shown once, store it now): {created['api_key']}", highlight=False)


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List all tenants."""
    tenants = client(ctx).get("/v1/tenants")
    if json:
        print_json(tenants)
        return
    table(
        None,
        ["tenant_id", "name", "tier", "status", "email", "rate", "quota/month"],
        [
            [
                t["tenant_id"],
                t["name"],
                t["tier"],
                t["status"],
                t["email"],
                _limit(t["rate_limit"]),
                _limit(t["monthly_quota"]),
            ]
            for t in tenants
        ],
    )


@app.command("show")
def show(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """Show a tenant with its keys and SMPP logins."""
    data = client(ctx).get(f"/v1/tenants/{tenant}")
    if json:
        print_json(data)
        return
    _show_tenant(data)
    keys = [k["key_id"] + (" (revoked)" if k["revoked_at"] else "") for k in data["keys"]]
    console.print(f"keys: {', '.join(keys) or '-'}", highlight=False)
    console.print(f"smpp: {', '.join(c['system_id'] for c in data['smpp']) or '-'}", highlight=False)


@app.command("suspend")
def suspend(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """Suspend a tenant: its requests are refused (403) until resumed."""
    data = client(ctx).post(f"/v1/tenants/{tenant}/suspend")
    print_json(data) if json else console.print(f"{data['name']} suspended")


@app.command("resume")
def resume(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """Resume a suspended tenant."""
    data = client(ctx).post(f"/v1/tenants/{tenant}/resume")
    print_json(data) if json else console.print(f"{data['name']} active")


@app.command("delete")
def delete(
    ctx: typer.Context,
    tenant: TenantArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: JsonOption = False,
) -> None:
    """Delete a tenant with its keys and SMPP logins (the audit trail stays)."""
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to delete without --yes (no terminal to confirm on)", ExitCode.USAGE)
        typer.confirm(f"Delete tenant {tenant} with all its keys and SMPP logins?", abort=True)
    data = client(ctx).delete(f"/v1/tenants/{tenant}")
    print_json(data) if json else console.print(f"{data['name']} ({data['tenant_id']}) deleted")


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    tenant: TenantArg,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    json: JsonOption = False,
) -> None:
    """Create another API key for a tenant (the secret is shown once)."""
    data = client(ctx).post(f"/v1/tenants/{tenant}/keys", {"label": label})
    if json:
        print_json(data)
    else:
        console.print(
            f"key {data['key_id']} ({data['label']}): {data['api_key']}\n(shown once, store it now)",
            highlight=False,
        )


@key_app.command("list")
def key_list(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """List a tenant's API keys (ids only; secrets are never shown again)."""
    keys = client(ctx).get(f"/v1/tenants/{tenant}/keys")
    if json:
        print_json(keys)
        return
    table(
        None,
        ["key_id", "label", "created", "revoked"],
        [[k["key_id"], k["label"], when(k["created_at"]), when(k["revoked_at"])] for k in keys],
    )


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    tenant: TenantArg,
    key_id: Annotated[str, typer.Argument(help="The key id from `key list`.")],
    json: JsonOption = False,
) -> None:
    """Revoke an API key: requests with it are refused from then on."""
    data = client(ctx).delete(f"/v1/tenants/{tenant}/keys/{key_id}")
    print_json(data) if json else console.print(f"key {data['key_id']} revoked")


@smpp_app.command("add")
def smpp_add(
    ctx: typer.Context,
    tenant: TenantArg,
    system_id: Annotated[str, typer.Option("--system-id", help="SMPP system_id (max 15 chars).")] = ...,  # type: ignore[assignment]
    password: Annotated[
        str, typer.Option(help="SMPP password (max 8 chars).", prompt=True, hide_input=True)
    ] = ...,  # type: ignore[assignment]
    concatenated: ConcatenatedOption = Concatenated.reassemble,
    json: JsonOption = False,
) -> None:
    """Give a tenant an SMPP login for binding to the gateway."""
    body = {"system_id": system_id, "password": password, "concatenated": concatenated.value}
    data = client(ctx).post(f"/v1/tenants/{tenant}/smpp", body)
    print_json(data) if json else console.print(f"SMPP login {data['system_id']} added", highlight=False)


@smpp_app.command("set")
def smpp_set(
    ctx: typer.Context,
    tenant: TenantArg,
    system_id: Annotated[str, typer.Argument(help="The system_id to change.")],
    concatenated: ConcatenatedOption,
    json: JsonOption = False,
) -> None:
    """Change an SMPP login: how its concatenated messages are taken (binds made from now on)."""
    data = client(ctx).patch(f"/v1/tenants/{tenant}/smpp/{system_id}", {"concatenated": concatenated.value})
    if json:
        print_json(data)
    else:
        console.print(f"SMPP login {system_id}: concatenated = {data['concatenated']}", highlight=False)


@smpp_app.command("list")
def smpp_list(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """List a tenant's SMPP logins."""
    creds = client(ctx).get(f"/v1/tenants/{tenant}/smpp")
    if json:
        print_json(creds)
        return
    table(
        None,
        ["system_id", "concatenated", "created"],
        [[c["system_id"], c.get("concatenated", "reassemble"), when(c["created_at"])] for c in creds],
    )


@smpp_app.command("remove")
def smpp_remove(
    ctx: typer.Context,
    tenant: TenantArg,
    system_id: Annotated[str, typer.Argument(help="The system_id to remove.")],
    json: JsonOption = False,
) -> None:
    """Remove an SMPP login."""
    data = client(ctx).delete(f"/v1/tenants/{tenant}/smpp/{system_id}")
    print_json(data) if json else console.print(f"SMPP login {system_id} removed", highlight=False)


@smpp_app.command("sessions")
def smpp_sessions(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's binds (name or id).")] = None,
    json: JsonOption = False,
) -> None:
    """List live SMPP binds: tenant, system_id, address, bind type, since, submitted, receipts pending."""
    path = "/v1/smpp/sessions" + (f"?tenant={quote(tenant)}" if tenant else "")
    sessions = client(ctx).get(path)
    if json:
        print_json(sessions)
        return
    table(
        None,
        ["tenant", "system_id", "address", "bind", "since", "submitted", "receipts pending"],
        [
            [
                s.get("tenant") or s.get("tenant_id"),
                s.get("system_id"),
                s.get("address"),
                s.get("bind_type"),
                when(s.get("since")),
                s.get("submitted", 0),
                "-" if s.get("receipts_queued") is None else s["receipts_queued"],
            ]
            for s in sessions
        ],
    )
