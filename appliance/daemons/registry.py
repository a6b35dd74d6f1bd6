"""Which daemons `hermesd` runs. A new daemon is one module plus one entry here.

A daemon module exposes `async def serve(ctx: DaemonContext) -> None`: it binds what it needs,
calls `ctx.ready()`, runs until `ctx.stopping` is set, drains, and returns.

Stages set the order: started low to high, stopped high to low, so ingress (which accepts new
work) stops first and the control plane (admin) stays up longest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appliance.config.schema import Config

STAGE_CONTROL = 0
STAGE_CORE = 1
STAGE_INGRESS = 2


def _always(_: Config) -> bool:
    return True


def _one(_: Config) -> int:
    return 1


def _no_listeners(_: Config) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class DaemonSpec:
    name: str
    module: str
    stage: int
    enabled: Callable[[Config], bool] = _always
    workers: Callable[[Config], int] = _one
    # (config key, "host:port") pairs it binds, checked by hermesd before anything starts.
    listeners: Callable[[Config], list[tuple[str, str]]] = _no_listeners


def _admin_listeners(config: Config) -> list[tuple[str, str]]:
    return [("admin.listen", config.admin.listen)] if config.admin.listen else []


def _gateway_listeners(config: Config) -> list[tuple[str, str]]:
    found = [("gateway.rest.listen", config.gateway.rest.listen)]
    if config.gateway.smpp.enabled:
        found.append(("gateway.smpp.listen", config.gateway.smpp.listen))
        if config.gateway.smpp.tls_listen:
            found.append(("gateway.smpp.tls_listen", config.gateway.smpp.tls_listen))
    if config.gateway.smtp.enabled:
        found.append(("gateway.smtp.listen", config.gateway.smtp.listen))
    return found


DAEMONS: tuple[DaemonSpec, ...] = (
    DaemonSpec("admin", "appliance.daemons.admin", STAGE_CONTROL, listeners=_admin_listeners),
    DaemonSpec("recorder", "appliance.daemons.recorder", STAGE_CORE),
    DaemonSpec("smpp", "appliance.daemons.smpp", STAGE_CORE),
    DaemonSpec("router", "appliance.daemons.router", STAGE_CORE),
    DaemonSpec(
        "cascade", "appliance.daemons.cascade", STAGE_CORE, workers=lambda config: config.cascade.workers
    ),
    DaemonSpec(
        "simulator",
        "appliance.daemons.simulator",
        STAGE_CONTROL,
        enabled=lambda config: bool(config.simulator.smsc_listen),
        listeners=lambda config: [("simulator.smsc_listen", config.simulator.smsc_listen)],
    ),
    DaemonSpec("notifier", "appliance.daemons.notifier", STAGE_CORE),
    DaemonSpec(
        "gateway",
        "appliance.daemons.gateway",
        STAGE_INGRESS,
        workers=lambda config: config.gateway.rest.workers,
        listeners=_gateway_listeners,
    ),
)


def daemon_named(name: str) -> DaemonSpec:
    for spec in DAEMONS:
        if spec.name == name:
            return spec
    raise KeyError(name)
