"""`hermesctl tenant edit|credit|quota`: limits, prepaid balance, monthly quota."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hermesctl.commands.tenant import TenantArg, app
from hermesctl.context import client
from hermesctl.errors import ExitCode, fail
from hermesctl.output import JsonOption, console, fields, print_json


def _count(value: str | None, name: str) -> int | None:
    """`N` or `unlimited` (stored as 0)."""
    if value is None:
        return None
    if value == "unlimited":
        return 0
    if not value.isdigit() or int(value) == 0:
        fail(f"{name} must be a positive whole number or 'unlimited', not {value!r}", ExitCode.USAGE)
    return int(value)


@app.command("edit")
def edit(
    ctx: typer.Context,
    tenant: TenantArg,
    tier: Annotated[str | None, typer.Option(help="New tier (brings its default limits).")] = None,
    email: Annotated[str | None, typer.Option(help="New contact email.")] = None,
    rate_limit: Annotated[str | None, typer.Option(help="Messages per second, or 'unlimited'.")] = None,
    burst: Annotated[str | None, typer.Option(help="Token bucket size, or 'unlimited'.")] = None,
    quota: Annotated[str | None, typer.Option(help="Messages per month, or 'unlimited'.")] = None,
    json: JsonOption = False,
) -> None:
    """Change a tenant's tier, contact or limits; takes effect within a second."""
    body: dict[str, Any] = {
        "tier": tier,
        "email": email,
        "rate_limit": _count(rate_limit, "--rate-limit"),
        "burst": _count(burst, "--burst"),
        "monthly_quota": _count(quota, "--quota"),
    }
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail(
            "nothing to change: give at least one of --tier, --email, --rate-limit, --burst, --quota",
            ExitCode.USAGE,
        )
    data = client(ctx).request("PATCH", f"/v1/tenants/{tenant}", json=body)
    if json:
        print_json(data)
        return
    unlimited = "unlimited"
    console.print(
        f"{data['name']}: {data['tier']}, rate {data['rate_limit'] or unlimited}/s, burst "
        f"{data['burst'] or unlimited}, quota {data['monthly_quota'] or unlimited}/month",
        highlight=False,
    )


def _show_account(data: dict[str, Any]) -> None:
    quota = data["monthly_quota"]
    fields(
        [
            ("tenant", f"{data['name']} ({data['tenant_id']})"),
            ("billing", "prepaid" if data["prepaid"] else "postpaid (no balance needed)"),
            (
                "balance",
                f"{data['balance']:.4f} {data['currency']} ({data['available']:.4f} available, "
                f"{data['reserved']:.4f} reserved by gateways)",
            ),
            (
                f"quota {data['month']}",
                f"{data['quota_used']} used of {quota if quota else 'unlimited'}"
                + (f", {data['quota_leased']} reserved" if data["quota_leased"] else ""),
            ),
        ]
    )


@app.command("credit")
def credit(
    ctx: typer.Context,
    tenant: TenantArg,
    amount: Annotated[
        float, typer.Argument(help="Amount to add (negative to correct); makes the tenant prepaid.")
    ],
    note: Annotated[str, typer.Option(help="Why, for the ledger and audit.")] = "operator credit",
    json: JsonOption = False,
) -> None:
    """Add to a tenant's prepaid balance (the first credit turns prepaid billing on)."""
    data = client(ctx).post(f"/v1/tenants/{tenant}/credit", {"amount": amount, "note": note})
    print_json(data) if json else _show_account(data)


@app.command("quota")
def quota(ctx: typer.Context, tenant: TenantArg, json: JsonOption = False) -> None:
    """Show a tenant's balance and this month's quota usage."""
    data = client(ctx).get(f"/v1/tenants/{tenant}/account")
    print_json(data) if json else _show_account(data)
