"""`hermesctl audit`: the trail of admin actions."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated

import typer

from hermesctl.context import client
from hermesctl.output import JsonOption, print_json, table, when


def audit(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(help="Only actions on this id (e.g. a tenant id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json: JsonOption = False,
) -> None:
    """Show recent admin actions, newest first."""
    entries = client(ctx).get("/v1/audit", limit=limit, target=target)
    if json:
        print_json(entries)
        return
    table(
        None,
        ["when", "actor", "action", "target", "details"],
        [[when(e["at"]), e["actor"], e["action"], e["target"], jsonlib.dumps(e["details"])] for e in entries],
    )
