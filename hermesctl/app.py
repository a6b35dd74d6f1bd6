"""hermesctl: the operator's command line. It reaches a node only through the admin API."""

from __future__ import annotations

from typing import Annotated

import typer

from appliance import __version__
from hermesctl.commands import audit, carrier, message, money, operator, route, sim, status, suppress, tenant
from hermesctl.context import Options

app = typer.Typer(
    name="hermesctl",
    help="Operate a Hermes appliance: status, tenants, keys, SMPP logins, operator tokens, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"hermesctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            envvar="HERMES_CONFIG",
            help="Config of the node to talk to (default /etc/hermes/hermes.toml).",
        ),
    ] = None,
    admin_url: Annotated[
        str | None,
        typer.Option(
            "--admin-url",
            envvar="HERMES_ADMIN_URL",
            help="Remote admin API (http://host:port); needs HERMES_ADMIN_TOKEN.",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = Options(config=config, admin_url=admin_url)


app.command("status")(status.status)
app.command("audit")(audit.audit)
app.add_typer(tenant.app, name="tenant")
_ = (money, suppress)  # their commands register on the tenant sub-app
app.add_typer(operator.app, name="operator")
app.add_typer(carrier.app, name="carrier")
app.add_typer(route.rate_app, name="rate")
app.add_typer(route.route_app, name="route")
app.add_typer(sim.app, name="sim")
app.add_typer(message.app, name="message")


def main() -> None:
    app()
