"""`hermesctl operator token ...`: tokens for the admin API's TCP listener."""

from __future__ import annotations

from typing import Annotated

import typer

from hermesctl.context import client
from hermesctl.output import JsonOption, console, print_json, table, when

app = typer.Typer(help="Operator access to the admin API over TCP.", no_args_is_help=True)
token_app = typer.Typer(help="Operator tokens (Authorization: Bearer ho_...).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    ctx: typer.Context,
    label: Annotated[str, typer.Option(help="Who or what holds it.")],
    json: JsonOption = False,
) -> None:
    """Create an operator token (shown once); use it as HERMES_ADMIN_TOKEN with --admin-url."""
    data = client(ctx).post("/v1/operator/tokens", {"label": label})
    if json:
        print_json(data)
    else:
        console.print(
            f"token {data['id']} ({data['label']}): {data['token']}\n(shown once, store it now)",
            highlight=False,
        )


@token_app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List operator tokens."""
    tokens = client(ctx).get("/v1/operator/tokens")
    if json:
        print_json(tokens)
        return
    table(
        None,
        ["id", "label", "created", "revoked"],
        [[t["id"], t["label"], when(t["created_at"]), when(t["revoked_at"])] for t in tokens],
    )


@token_app.command("revoke")
def revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id.")], json: JsonOption = False
) -> None:
    """Revoke an operator token."""
    data = client(ctx).delete(f"/v1/operator/tokens/{token_id}")
    print_json(data) if json else console.print(f"token {data['id']} revoked")
