"""The smpp daemon: binds to carriers, submits `dispatch.sms.<carrier>`, correlates delivery receipts.

Wiring only: open the store and the bus, run an `SmppService` until told to stop, stop it (bounded),
close. Who does what:

    service.SmppService     carriers from the store, reloaded on `hermes.registry.changed`
    pool.CarrierPool        one carrier's binds (bind.Bind), TPS pace (pace.Pace), retries by status class
    dispatcher.Dispatcher   the carrier's DISPATCH consumer, per-message acks
    attempt.AttemptSender   one dispatch: parts (parts.py) -> submit -> record -> `submitted`/`rejected`
    receipts.Receipts       deliver_sm receipts -> store -> `dlr` event -> deliver_sm_resp
    health                  `hermes.smpp.health.<carrier>` every 2 s
    publish                 the events and their ids
    settings.SmppSettings   the knobs (future `[smpp]` config keys)
"""

from __future__ import annotations

from typing import cast

from appliance.bus.connection import close_bus, connect
from appliance.daemons.runtime import DaemonContext
from appliance.daemons.smpp.health import HEALTH_PREFIX, health_subject
from appliance.daemons.smpp.pool import CarrierPool, NoBind, SmppPoolError, SubmitFailed, SubmitRefused
from appliance.daemons.smpp.service import SmppDaemonStore, SmppService
from appliance.daemons.smpp.settings import SmppSettings
from appliance.errors import StartupError
from appliance.store import FullStore, open_store

__all__ = [
    "HEALTH_PREFIX",
    "CarrierPool",
    "NoBind",
    "SmppDaemonStore",
    "SmppPoolError",
    "SmppService",
    "SmppSettings",
    "SubmitFailed",
    "SubmitRefused",
    "health_subject",
    "serve",
]


def _smpp_store(store: FullStore) -> SmppDaemonStore:
    """The store as the daemon needs it; refuses to start on a backend without the SMPP tables' methods."""
    if not hasattr(store, "record_submission"):
        raise StartupError("the store has no SMPP correlation methods (SqlSmpp is not mixed into SqlStore)")
    return cast("SmppDaemonStore", store)


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="smpp")
    service: SmppService | None = None
    try:
        service = SmppService(_smpp_store(store), nats, SmppSettings())
        await service.start()
        ctx.ready(f"bound to {len(service.pools)} carriers")
        await ctx.stopping.wait()
        ctx.log.info("smpp stopping", action="daemon.stopping")
    finally:
        if service is not None:
            await service.close()
        await close_bus(nats)
        await store.close()
