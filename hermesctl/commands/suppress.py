"""`hermesctl tenant suppress ...` and `tenant webhook ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from hermesctl.commands.tenant import app
from hermesctl.context import client
from hermesctl.output import JsonOption, console, fields, print_json, table, when

suppress_app = typer.Typer(
    help="Addresses never to be contacted (layer 6). Use '*' as tenant for global opt-outs.",
    no_args_is_help=True,
)
webhook_app = typer.Typer(
    help="The tenant's webhook: signed POSTs of outcomes, retried for 24 h.", no_args_is_help=True
)
app.add_typer(suppress_app, name="suppress")
app.add_typer(webhook_app, name="webhook")

OwnerArg = Annotated[str, typer.Argument(help="Tenant name or id, or '*' for the global opt-out list.")]
ChannelOpt = Annotated[str, typer.Option(help="sms | whatsapp | email | push | telegram")]


@suppress_app.command("add")
def add(
    ctx: typer.Context,
    tenant: OwnerArg,
    addresses: Annotated[list[str], typer.Argument(help="Numbers (E.164) or email addresses.")],
    channel: ChannelOpt = "sms",
    reason: Annotated[str, typer.Option(help="Why.")] = "operator",
    json: JsonOption = False,
) -> None:
    """Suppress addresses: messages to them are refused (451)."""
    data = client(ctx).post(
        f"/v1/tenants/{tenant}/suppressions", {"addresses": addresses, "channel": channel, "reason": reason}
    )
    print_json(data) if json else console.print(f"{data['added']} address(es) suppressed")


@suppress_app.command("remove")
def remove(
    ctx: typer.Context,
    tenant: OwnerArg,
    address: Annotated[str, typer.Argument(help="The address.")],
    channel: ChannelOpt = "sms",
    json: JsonOption = False,
) -> None:
    """Lift a suppression."""
    data = client(ctx).delete(f"/v1/tenants/{tenant}/suppressions/{channel}/{address}")
    print_json(data) if json else console.print(f"{address} no longer suppressed", highlight=False)


@suppress_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: OwnerArg,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    after: Annotated[str | None, typer.Option(help="Paging cursor: the last address seen.")] = None,
    json: JsonOption = False,
) -> None:
    """List suppressed addresses, in address order."""
    entries = client(ctx).get(f"/v1/tenants/{tenant}/suppressions", limit=limit, after=after)
    if json:
        print_json(entries)
        return
    table(
        None,
        ["address", "reason", "since"],
        [[e["address"], e["reason"], when(e["created_at"])] for e in entries],
    )


@webhook_app.command("set")
def set_(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    url: Annotated[str, typer.Argument(help="https://... endpoint")],
    events: Annotated[str, typer.Option(help="final (outcomes only) | all (every event)")] = "final",
    secret: Annotated[str | None, typer.Option(help="Signing secret (default: a new random one).")] = None,
    json: JsonOption = False,
) -> None:
    """Set the webhook; prints the signing secret the tenant verifies `Hermes-Signature` with."""
    data = client(ctx).request(
        "PUT", f"/v1/tenants/{tenant}/webhook", json={"url": url, "events": events, "secret": secret}
    )
    if json:
        print_json(data)
    else:
        console.print(
            f"webhook {data['url']} ({data['events']})\nsigning secret: {data['secret']}", highlight=False
        )


@webhook_app.command("show")
def show(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    json: JsonOption = False,
) -> None:
    """Show the webhook and its latest deliveries."""
    data = client(ctx).get(f"/v1/tenants/{tenant}/webhook")
    if json:
        print_json(data)
        return
    fields([("url", data["url"]), ("events", data["events"])])
    table(
        "latest deliveries",
        ["id", "state", "attempts", "last status", "next try", "error"],
        [
            [
                d["id"],
                d["state"],
                d["attempts"],
                d["last_status"],
                when(d["next_at"]) if d["state"] == "pending" else "-",
                d["last_error"],
            ]
            for d in data["deliveries"]
        ],
    )


@webhook_app.command("remove")
def remove_webhook(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    json: JsonOption = False,
) -> None:
    """Remove the webhook (pending deliveries are dropped)."""
    data = client(ctx).delete(f"/v1/tenants/{tenant}/webhook")
    print_json(data) if json else console.print("webhook removed")
