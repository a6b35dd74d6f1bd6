"""`hermesctl sim smsc`: the carrier simulator, a real SMPP server on this host (for demos and tests)."""

from __future__ import annotations

from typing import Annotated

import typer

from hermesctl.errors import ExitCode, fail

app = typer.Typer(help="Simulators of the outside world.", no_args_is_help=True)


@app.command("smsc")
def smsc(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.", min=1, max=65535)] = 2776,
    dlr_delay_ms: Annotated[int, typer.Option("--dlr-delay-ms", min=0)] = 100,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", min=0, max=1, help="Share of UNDELIV receipts.")
    ] = 0.0,
    throttle_tps: Annotated[
        int, typer.Option("--throttle-tps", min=0, help="Answer RTHROTTLED above this.")
    ] = 0,
    drop_after: Annotated[int, typer.Option("--drop-after", min=0, help="Close a bind after N submits.")] = 0,
    system_id: Annotated[
        str, typer.Option("--system-id", help="Accept only this system_id (default any).")
    ] = "",
    password: Annotated[str, typer.Option(help="Accept only this password (with --system-id).")] = "",
) -> None:
    """Run an SMSC that accepts binds, answers submit_sm and sends delivery receipts. Ctrl-C stops it."""
    from appliance.sim.smsc import main as run_simulator

    argv = [
        "--host",
        host,
        "--port",
        str(port),
        "--dlr-delay-ms",
        str(dlr_delay_ms),
        "--fail-rate",
        str(fail_rate),
    ]
    if throttle_tps:
        argv += ["--throttle-tps", str(throttle_tps)]
    if drop_after:
        argv += ["--drop-after", str(drop_after)]
    if system_id:
        argv += ["--system-id", system_id, "--password", password]
    try:
        run_simulator(argv)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", ExitCode.ERROR)
