"""`hermesctl rate ...` and `hermesctl route ...`: prices, MNP data, and why a number goes where it goes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hermesctl.commands.carrier import read_csv
from hermesctl.context import client
from hermesctl.output import JsonOption, console, print_json, table

rate_app = typer.Typer(
    help="What each carrier charges, by prefix or network (MCC-MNC).", no_args_is_help=True
)
route_app = typer.Typer(help="Routing: explain a decision, load MNP data.", no_args_is_help=True)
mnp_app = typer.Typer(
    help="Mobile number portability data (number or range -> MCC-MNC).", no_args_is_help=True
)
route_app.add_typer(mnp_app, name="mnp")


@rate_app.command("set")
def set_(
    ctx: typer.Context,
    carrier: Annotated[str, typer.Argument(help="Carrier name.")],
    prefix: Annotated[str, typer.Option(help="Number prefix in E.164 digits, e.g. 45 or 4520.")] = ...,  # type: ignore[assignment]
    price: Annotated[float, typer.Option(help="Price per message part.", min=0)] = ...,  # type: ignore[assignment]
    currency: Annotated[str, typer.Option(help="ISO 4217, e.g. DKK.")] = ...,  # type: ignore[assignment]
    mccmnc: Annotated[str | None, typer.Option(help="Only for this network, e.g. 238-01.")] = None,
    json: JsonOption = False,
) -> None:
    """Set one rate (replaces the carrier's rate for the same prefix and network)."""
    data = client(ctx).post(
        "/v1/rates",
        {"carrier": carrier, "prefix": prefix, "price": price, "currency": currency, "mccmnc": mccmnc},
    )
    if json:
        print_json(data)
        return
    network = data["mccmnc"] or "any network"
    charged = f"{data['price']} {data['currency']}"
    console.print(f"{carrier}: +{data['prefix']} {network} = {charged}", highlight=False)


@rate_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: carrier,prefix,mccmnc,price,currency")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace all rates.")] = False,
    json: JsonOption = False,
) -> None:
    """Import a rate deck in one transaction (nothing is written if a line is bad)."""
    data = client(ctx).post("/v1/rates/import", {"csv": read_csv(file), "replace": replace})
    print_json(data) if json else console.print(f"{data['imported']} rates imported")


@rate_app.command("list")
def list_(
    ctx: typer.Context,
    carrier: Annotated[str | None, typer.Option(help="Only this carrier.")] = None,
    json: JsonOption = False,
) -> None:
    """List rates."""
    rates = client(ctx).get("/v1/rates", carrier=carrier)
    if json:
        print_json(rates)
        return
    table(
        None,
        ["carrier", "prefix", "mccmnc", "price", "currency"],
        [[r["carrier"], r["prefix"] or "*", r["mccmnc"], r["price"], r["currency"]] for r in rates],
    )


@route_app.command("explain")
def explain(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Destination, e.g. +4523456789.")],
    json: JsonOption = False,
) -> None:
    """Show the lookup, every candidate with its cost and health, and the choice."""
    data = client(ctx).get("/v1/routes/explain", number=number)
    if json:
        print_json(data)
        return
    for line in data["explanation"]:
        console.print(line, highlight=False)


@mnp_app.command("import")
def mnp_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: number_or_prefix,mccmnc[,name]")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the whole table.")] = False,
    json: JsonOption = False,
) -> None:
    """Load MNP data (exact numbers and ranges; the longest prefix wins)."""
    data = client(ctx).post("/v1/mnp/import", {"csv": read_csv(file), "replace": replace})
    print_json(data) if json else console.print(f"{data['imported']} MNP entries imported")
