"""`hermesctl message ...`: inspect a message (show, trace) and work its dead letters (dlq ...).

Everything goes through the admin API (`/v1/messages/{id}`, `/v1/messages/{id}/trace`, `/v1/dlq...`);
the timeline is computed on the node (appliance/domain/trace.py), this file only prints it.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hermesctl.client import AdminClient
from hermesctl.context import client
from hermesctl.errors import ExitCode, fail
from hermesctl.output import JsonOption, console, fields, print_json, when

app = typer.Typer(help="Messages: show, trace, and the dead-letter queue (dlq).", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead letters: messages whose every channel failed. List, show, replay, purge.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")

MessageArg = Annotated[str, typer.Argument(help="Message id (msg_...).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
# Exit codes that concern one message of a bulk replay; the others (not running, unauthorized) stop it.
_PER_MESSAGE = {ExitCode.NOT_FOUND, ExitCode.CONFLICT, ExitCode.INVALID, ExitCode.ERROR}


def parse_duration(text: str) -> float:
    """ "90s", "15m", "2h", "7d", "1w" or plain seconds -> seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 7d)")
    return float(match[1]) * _UNIT_S[match[2]]


def parse_since(text: str, now: float) -> float:
    """A point in time: a duration back from now ("2h") or an ISO date/time (UTC unless it says)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use a duration like 2h or a date like 2026-11-26)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _precise(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _money(amount: float | None, currency: str | None = None) -> str | None:
    if amount is None:
        return None
    return f"{amount:.4f}".rstrip("0").rstrip(".") + (f" {currency}" if currency else "")


def _channels(channels: list[dict[str, Any]]) -> str:
    return " -> ".join(f"{c.get('channel')}:{c.get('to')}" for c in channels) or "-"


def _aligned(header: list[str], rows: list[list[Any]]) -> None:
    """Plain aligned columns, one line per row: never wrapped (unlike a table on a narrow or piped
    terminal), so a timeline reads top to bottom and greps line by line."""
    cells = [header, *[["-" if c is None or c == "" else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# ---- message show / trace -------------------------------------------------------------------------


@app.command("show")
def show(ctx: typer.Context, message_id: MessageArg, json: JsonOption = False) -> None:
    """A message: tenant, current state, channels, cost, its events, and its dead letter if any."""
    data = client(ctx).get(f"/v1/messages/{message_id}")
    if json:
        print_json(data)
        return
    entry = data.get("dead_letter")
    fields(
        [
            ("message_id", data["message_id"]),
            ("tenant_id", data["tenant_id"]),
            ("origin", data["origin"]),
            ("state", data["state"]),
            ("channels", _channels(data["channels"])),
            ("created", when(data["created_at"])),
            ("updated", when(data["updated_at"])),
            ("cost", _money(data["cost"])),
            ("dead letter", f"{entry['status']}, {entry['reason']}" if entry else None),
        ]
    )
    print()
    _aligned(
        ["time (UTC)", "event", "state", "attempt", "data"],
        [
            [
                _precise(e["at"]),
                e["kind"],
                e["state"],
                e["data"].get("attempt"),
                ", ".join(f"{k}={v}" for k, v in e["data"].items() if k not in ("attempt", "history")),
            ]
            for e in data["events"]
        ],
    )


@app.command("trace")
def trace(ctx: typer.Context, message_id: MessageArg, json: JsonOption = False) -> None:
    """The timeline of a message: time, state, event, attempt, channel, route/carrier, cost."""
    data = client(ctx).get(f"/v1/messages/{message_id}/trace")
    if json:
        print_json(data)
        return
    print(
        f"{data['message_id']} ({data['tenant_id']}): {data['state']}, {len(data['attempts'])} attempt(s), "
        f"cost {_money(data['cost'], data['currency']) or '0'}"
    )
    rows = []
    for step in data["steps"]:
        state = step["state"] if step["applied"] or step["state"] is None else f"({step['state']}, late)"
        channel = f"{step['channel_index']}:{step['channel']}" if step["channel_index"] else step["channel"]
        rows.append(
            [
                _precise(step["at"]),
                state,
                step["kind"],
                step["attempt"],
                channel,
                step["carrier"],
                _money(step["cost"], step["currency"]),
                step["detail"],
            ]
        )
    _aligned(["time (UTC)", "state", "event", "attempt", "channel", "route", "cost", "detail"], rows)
    if data["attempts"]:
        print()
        _aligned(
            ["attempt", "channel", "to", "route", "price", "outcome", "reason"],
            [
                [
                    a["attempt"],
                    f"{a['channel_index'] or '-'}:{a['channel'] or '-'}",
                    a["to"],
                    f"{a['carrier']} ({a['route_kind']})" if a["route_kind"] else a["carrier"],
                    _money(a["price"], a["currency"]),
                    a["outcome"],
                    a["reason"],
                ]
                for a in data["attempts"]
            ],
        )


# ---- dlq ------------------------------------------------------------------------------------------


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_since(value, time.time())
    except ValueError as exc:
        fail(f"--since: {exc}", ExitCode.USAGE)


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant (name or id).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Dead-lettered since: a duration back (2h, 7d) or a date (2026-11-26).")
    ] = None,
    status: Annotated[str, typer.Option(help="dead (default) | replayed | purged | all")] = "dead",
    after: Annotated[
        str | None, typer.Option(help="Page after this message id (the previous `next`).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=10_000)] = 100,
    json: JsonOption = False,
) -> None:
    """Dead letters, oldest message first."""
    data = client(ctx).get(
        "/v1/dlq", tenant=tenant, since=_since(since), status=status, after=after, limit=limit
    )
    if json:
        print_json(data)
        return
    _aligned(
        ["message_id", "tenant_id", "dead lettered", "attempts", "status", "replays", "reason"],
        [
            [
                e["message_id"],
                e["tenant_id"],
                when(e["dead_lettered_at"]),
                e["attempt"],
                e["status"],
                e["replay_count"],
                e["reason"],
            ]
            for e in data["entries"]
        ],
    )
    if data["next"]:
        print(f"more: --after {data['next']}", file=sys.stderr)


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, message_id: MessageArg, json: JsonOption = False) -> None:
    """One dead letter with the cascade's whole history of the failed run."""
    data = client(ctx).get(f"/v1/dlq/{message_id}")
    if json:
        print_json(data)
        return
    message = data.get("message") or {}
    fields(
        [
            ("message_id", data["message_id"]),
            ("tenant_id", data["tenant_id"]),
            ("status", data["status"]),
            ("reason", data["reason"]),
            ("dead lettered", when(data["dead_lettered_at"])),
            ("attempts", data["attempt"]),
            ("replays", f"{data['replay_count']} (last {when(data['last_replayed_at'])})"),
            ("channels", _channels(message.get("channels", [])) if message else "(message not stored)"),
            ("state now", message.get("state")),
        ]
    )
    history = [h for h in data["history"] if isinstance(h, dict)]
    if history:
        keys = list(dict.fromkeys(k for h in history for k in h))
        print()
        _aligned(keys, [[_history_cell(k, h.get(k)) for k in keys] for h in history])


def _history_cell(key: str, value: Any) -> Any:
    """A history value as text: times readable, a route as `target (kind) price currency`."""
    if key == "at" and isinstance(value, int | float):
        return _precise(value)
    if isinstance(value, dict) and key == "route":
        target = value.get("carrier") or value.get("pool") or value.get("adapter")
        price = _money(value.get("price"), value.get("currency"))
        return f"{target} ({value.get('kind')})" + (f" {price}" if price else "")
    return value


def _replay_one(admin: AdminClient, message_id: str) -> dict[str, Any]:
    return dict(admin.post(f"/v1/dlq/{message_id}/replay"))


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail("refusing without --yes (no terminal to confirm on)", ExitCode.USAGE)
    typer.confirm(question, abort=True)


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    message_id: Annotated[str | None, typer.Argument(help="The dead-lettered message to replay.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter (of --tenant, if given).")
    ] = False,
    tenant: Annotated[str | None, typer.Option(help="With --all: only this tenant (name or id).")] = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Republish a dead-lettered message to the cascade, with new attempt numbers; --all for many."""
    if (message_id is None) == (not all_):
        fail("give one MESSAGE_ID, or --all (with --tenant T to limit it)", ExitCode.USAGE)
    if tenant is not None and not all_:
        fail("--tenant goes with --all", ExitCode.USAGE)
    admin = client(ctx)
    if message_id is not None:
        data = _replay_one(admin, message_id)
        if json:
            print_json(data)
        else:
            dedup = " (JetStream had it already)" if data["duplicate"] else ""
            console.print(
                f"{message_id} replayed with attempt_base {data['attempt_base']}{dedup}", highlight=False
            )
        return
    _confirm(f"Replay every dead letter{f' of {tenant}' if tenant else ''}?", yes)
    ids: list[str] = []
    after: str | None = None
    while True:  # collect first: replayed entries leave the `dead` listing as we go
        page = admin.get("/v1/dlq", tenant=tenant, status="dead", after=after, limit=1000)
        ids += [e["message_id"] for e in page["entries"]]
        after = page["next"]
        if after is None:
            break
    replayed: list[dict[str, Any]] = []
    failed: list[str] = []
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        disable=json,
    ) as progress:
        task = progress.add_task("replay", total=len(ids))
        for ident in ids:
            try:
                replayed.append(_replay_one(admin, ident))
            except typer.Exit as exc:  # the one-line reason is already on stderr
                if exc.exit_code not in _PER_MESSAGE:
                    raise
                failed.append(ident)
            progress.advance(task)
    summary = {"replayed": len(replayed), "failed": failed, "entries": replayed}
    if json:
        print_json(summary)
    else:
        console.print(f"replayed {len(replayed)} of {len(ids)}; failed {len(failed)}", highlight=False)
    if failed:
        raise typer.Exit(int(ExitCode.ERROR))


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    message_id: Annotated[str | None, typer.Argument(help="The dead letter to purge.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Purge this tenant's dead letters (name or id).")] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only those dead-lettered longer ago than this (7d).")
    ] = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Drop dead letters (the message and its events stay); a purged one can no longer be replayed."""
    if (message_id is None) == (tenant is None):
        fail("give one MESSAGE_ID or --tenant T", ExitCode.USAGE)
    if older_than is not None and message_id is not None:
        fail("--older-than goes with --tenant", ExitCode.USAGE)
    older_than_s: float | None = None
    if older_than is not None:
        try:
            older_than_s = parse_duration(older_than)
        except ValueError as exc:
            fail(f"--older-than: {exc}", ExitCode.USAGE)
    what = message_id or f"the dead letters of {tenant}" + (f" older than {older_than}" if older_than else "")
    _confirm(f"Purge {what}?", yes)
    data = client(ctx).post(
        "/v1/dlq/purge", {"message_id": message_id, "tenant": tenant, "older_than_s": older_than_s}
    )
    print_json(data) if json else console.print(f"purged {data['purged']}", highlight=False)
