"""`GET /v1/smpp/sessions`: the live SMPP binds of every gateway, for `hermesctl tenant smpp sessions`.

The admin daemon does not hold the binds; each gateway process serving SMPP answers a request on
`SMPP_SESSIONS` with its own. Admin publishes one request and gathers every answer that arrives
within `timeout_s` (scatter-gather: a cluster has one SMPP gateway per node), then names tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.streams import SMPP_SESSIONS
from appliance.daemons.admin.registry import RegistryService

Gatherer = Callable[[str | None], Awaitable[list[dict[str, Any]]]]
"""tenant id or None (all) -> every gateway's answer `{node, worker, sessions: [...]}`."""


class _Answer(msgspec.Struct):
    node: str = ""
    worker: int = 0
    sessions: list[dict[str, Any]] = msgspec.field(default_factory=list)


def nats_gatherer(nats: NatsClient, *, timeout_s: float = 0.5) -> Gatherer:
    """Ask every SMPP gateway over NATS; answers arriving after `timeout_s` are ignored."""

    async def gather(tenant_id: str | None) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []

        async def on_answer(msg: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                answers.append(msgspec.to_builtins(msgspec.json.decode(msg.data, type=_Answer)))

        inbox = nats.new_inbox()
        subscription = await nats.subscribe(inbox, cb=on_answer)
        try:
            await nats.publish(SMPP_SESSIONS, msgspec.json.encode({"tenant_id": tenant_id}), reply=inbox)
            await nats.flush()
            await asyncio.sleep(timeout_s)
        finally:
            await subscription.unsubscribe()
        return answers

    return gather


class SmppSessionsService:
    def __init__(self, registry: RegistryService, gather: Gatherer) -> None:
        self._registry = registry
        self._gather = gather

    async def sessions(self, tenant_ref: str | None) -> list[dict[str, Any]]:
        """Every live bind, oldest first, with the tenant's name and the node that holds it."""
        tenant_id = (await self._registry.get_tenant(tenant_ref)).id if tenant_ref else None
        names = {t.id: t.name for t in await self._registry.list_tenants()}
        rows = [
            {**session, "tenant": names.get(str(session.get("tenant_id")), ""), "node": a["node"]}
            for a in await self._gather(tenant_id)
            for session in a["sessions"]
        ]
        return sorted(rows, key=lambda r: r.get("since") or 0.0)


def smpp_session_handlers(service: SmppSessionsService) -> list[HTTPRouteHandler]:
    @get("/v1/smpp/sessions")
    async def list_smpp_sessions(tenant: FromQuery[str | None] = None) -> list[dict[str, Any]]:
        return await service.sessions(tenant)

    return [list_smpp_sessions]
