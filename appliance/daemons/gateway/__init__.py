"""The gateway daemon: tenant-facing ingress (REST now; SMPP and SMTP servers join it later).

Wiring only: `assemble` builds the caches, the accountant, the durability sink and the pipeline
over an open store and bus (tests use it in process); `serve` binds, reports ready, serves until
told to stop, then stops accepting, finishes in-flight requests, flushes the intake log, settles
leases and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from litestar import Litestar
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.connection import close_bus, connect
from appliance.bus.idempotency import IdempotencyStore, ensure_bucket
from appliance.bus.intake_log import IntakeLog
from appliance.bus.publisher import CoalescingSink, JetStreamPublisher, Sink
from appliance.bus.rate_bucket import SharedBuckets, ensure_rate_bucket
from appliance.bus.streams import REGISTRY_CHANGED
from appliance.config.schema import Config
from appliance.daemons.gateway.accountant import Accountant
from appliance.daemons.gateway.app import create_gateway_app
from appliance.daemons.gateway.fast_submit import FastSubmit
from appliance.daemons.gateway.ingress import Ingress
from appliance.daemons.gateway.registry_cache import RegistryCache
from appliance.daemons.gateway.smpp_server import SmppGateway, start_smpp
from appliance.daemons.gateway.suppressions import SuppressionCache
from appliance.daemons.http import HttpServer, bind_tcp
from appliance.daemons.runtime import DaemonContext
from appliance.node_secret import load_node_secret
from appliance.store import FullStore, open_store


class _Change(msgspec.Struct):
    kind: str
    id: str


@dataclass
class Gateway:
    app: Litestar
    ingress: Ingress
    accountant: Accountant
    registry: RegistryCache
    suppressions: SuppressionCache
    intake: IntakeLog | None
    reclaimed_leases: int
    smpp: SmppGateway | None = None  # the inbound SMPP server, on worker 0 when enabled

    @property
    def asgi(self) -> FastSubmit:
        """What to serve: `POST /v1/messages` on its fast path, in front of the Litestar app."""
        return FastSubmit(self.app, self.ingress)

    def apply_change(self, kind: str, ident: str) -> None:
        """React to an admin announcement on `hermes.registry.changed`."""
        self.registry.invalidate(kind, ident)
        if kind in ("account", "tenant"):
            self.accountant.invalidate(ident)
        if kind == "suppression":
            self.suppressions.invalidate(ident)
        if self.smpp is not None:
            self.smpp.apply_change(kind, ident)

    async def close(self) -> None:
        if self.smpp is not None:
            await self.smpp.close()
        if self.intake is not None:
            await self.intake.close()


async def assemble(config: Config, store: FullStore, nats: NatsClient, *, worker: int = 0) -> Gateway:
    js = nats.jetstream()
    idempotency = IdempotencyStore(await ensure_bucket(js, config.gateway.idempotency_ttl_h * 3600))
    registry = RegistryCache(store, load_node_secret(config.appliance.secret_file))
    suppressions = SuppressionCache(store)
    accountant = Accountant(
        store, f"{config.appliance.node_name}/gateway.{worker}", amount_chunk=config.pricing.sms_part * 50
    )
    reclaimed = await accountant.reclaim()
    publisher = JetStreamPublisher(nats)
    sink: Sink = CoalescingSink(publisher.publish)
    intake: IntakeLog | None = None
    if config.gateway.durability == "power":
        intake = IntakeLog(Path(config.appliance.data_dir) / "intake" / f"gateway-{worker}", publisher)
        await intake.open()
        sink = intake.append
    ingress = Ingress(
        config=config,
        registry=registry,
        accountant=accountant,
        suppressions=suppressions,
        idempotency=idempotency,
        sink=sink,
        workers=config.gateway.rest.workers,
        # several workers share each tenant's L3 bucket through JetStream KV; one keeps it in memory
        rate_buckets=SharedBuckets(await ensure_rate_bucket(js), clock=time.time)
        if config.gateway.rest.workers > 1
        else None,
    )
    app = create_gateway_app(
        ingress=ingress,
        store=store,
        nats_connected=lambda: nats.is_connected,
        node=config.appliance.node_name,
    )
    gateway = Gateway(app, ingress, accountant, registry, suppressions, intake, reclaimed)

    async def on_change(msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            change = msgspec.json.decode(msg.data, type=_Change)
            gateway.apply_change(change.kind, change.id)

    await nats.subscribe(REGISTRY_CHANGED, cb=on_change)
    return gateway


async def serve(ctx: DaemonContext) -> None:
    config = ctx.config
    store = await open_store(config.store)
    nats = await connect(config, name=f"gateway.{ctx.worker}")
    gateway: Gateway | None = None
    server: HttpServer | None = None
    settling: asyncio.Task[None] | None = None
    try:
        gateway = await assemble(config, store, nats, worker=ctx.worker)
        sock = bind_tcp(
            config.gateway.rest.listen, key="gateway.rest.listen", reuse_port=config.gateway.rest.workers > 1
        )
        server = HttpServer(gateway.asgi, [sock])
        await server.start()
        settling = asyncio.create_task(gateway.accountant.run(ctx.stopping))
        serving = f"REST on {config.gateway.rest.listen}"
        # SMPP binds are few and long-lived: worker 0 holds them all, so bind limits, reassembly and
        # the session list need no coordination between workers (REST scales over the others).
        if config.gateway.smpp.enabled and ctx.worker == 0:
            gateway.smpp = await start_smpp(
                config,
                ingress=gateway.ingress,
                registry=gateway.registry,
                store=store,
                nats=nats,
                worker=ctx.worker,
            )
            serving += f", SMPP on {config.gateway.smpp.listen}"
        ctx.ready(f"{serving} ({config.gateway.durability} durability)")
        recovered = gateway.intake.recovered if gateway.intake else 0
        if gateway.reclaimed_leases or recovered:
            ctx.log.info(
                "recovered after restart",
                action="gateway.recovered",
                leases=gateway.reclaimed_leases,
                intake_records=recovered,
            )
        await ctx.stopping.wait()
        ctx.log.info("gateway stopping", action="daemon.stopping")
    finally:
        if server is not None:
            await server.stop()
        if gateway is not None:
            await gateway.close()
        if settling is not None:
            ctx.stopping.set()
            await settling
        await close_bus(nats)
        await store.close()
