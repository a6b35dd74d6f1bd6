"""Admin API routes for message inspection and dead letters (see messages.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody

from appliance.daemons.admin.messages import MessageService
from appliance.errors import BusError


class PurgeRequest(msgspec.Struct, forbid_unknown_fields=True):
    message_id: str | None = None
    tenant: str | None = None
    older_than_s: float | None = None


def _actor(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("actor", "local"))


def message_handlers(service: MessageService) -> list[HTTPRouteHandler]:
    @get("/v1/messages/{message_id:str}")
    async def show_message(message_id: FromPath[str]) -> dict[str, Any]:
        return await service.show(message_id)

    @get("/v1/messages/{message_id:str}/trace")
    async def trace_message(message_id: FromPath[str]) -> dict[str, Any]:
        return await service.trace(message_id)

    @get("/v1/dlq")
    async def list_dead_letters(
        tenant: FromQuery[str | None] = None,
        status: FromQuery[str] = "dead",
        since: FromQuery[float | None] = None,
        before: FromQuery[float | None] = None,
        after: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
    ) -> dict[str, Any]:
        return await service.dead_letters(
            tenant=tenant, status=status, since=since, before=before, after=after, limit=limit
        )

    @get("/v1/dlq/{message_id:str}")
    async def show_dead_letter(message_id: FromPath[str]) -> dict[str, Any]:
        return await service.dead_letter(message_id)

    @post("/v1/dlq/{message_id:str}/replay", status_code=200)
    async def replay_dead_letter(
        request: Request[Any, Any, Any], message_id: FromPath[str]
    ) -> dict[str, Any]:
        try:
            return await service.replay(_actor(request), message_id)
        except BusError as exc:  # nothing was marked: the entry stays dead and can be replayed again
            raise ServiceUnavailableException(detail=str(exc)) from exc

    @post("/v1/dlq/purge", status_code=200)
    async def purge_dead_letters(
        request: Request[Any, Any, Any], data: JSONBody[PurgeRequest]
    ) -> dict[str, Any]:
        return await service.purge(
            _actor(request), message_id=data.message_id, tenant=data.tenant, older_than_s=data.older_than_s
        )

    return [
        show_message,
        trace_message,
        list_dead_letters,
        show_dead_letter,
        replay_dead_letter,
        purge_dead_letters,
    ]
