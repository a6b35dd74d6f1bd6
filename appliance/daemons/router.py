"""The router daemon: answers "where should this SMS go?" for the cascade, over NATS request/reply.

Request on `hermes.router.route` (queue group `router`, so several instances share the load):
`{"to": "+4523456789"}`. Reply: the route plan (chosen carrier, price, ordered fallbacks, the lookup,
and the explanation), or `{"error": ...}` for a number that is not valid. `hermes.router.route_many`
takes `{"to": [...]}` and answers `{"plans": [...]}`, one per number in order (the cascade's form).
Wiring only: the lookup order and the decision live in `services/route_planner.py` and `domain/routing/`.

Carriers and rates are held in memory: re-read when admin announces a `carrier`, `rates` or `mnp`
change on `hermes.registry.changed`, and every `REGISTRY_RELOAD_S` in case an announcement was lost.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import msgspec
from nats.aio.msg import Msg

from appliance.bus.connection import close_bus, connect
from appliance.bus.streams import REGISTRY_CHANGED, ROUTE_MANY_SUBJECT, ROUTE_SUBJECT, ROUTE_UNAVAILABLE
from appliance.daemons.runtime import DaemonContext
from appliance.errors import InvalidInput
from appliance.logs import get_logger
from appliance.services.carrier_health import HEALTH_SUBJECT_ALL, HealthBoard
from appliance.services.route_planner import RoutePlanner, plan_body, planner_from_config
from appliance.store import open_store

log = get_logger("hermes.router")
REGISTRY_RELOAD_S = 10.0
MAX_NUMBERS = 1_000


class RouteRequest(msgspec.Struct, forbid_unknown_fields=True):
    to: str


class RouteManyRequest(msgspec.Struct, forbid_unknown_fields=True):
    to: list[str]


async def _plan_or_error(planner: RoutePlanner, to: str) -> dict[str, Any]:
    """The plan; `invalid_number` for a number no plan can route; `unavailable` (ask again later) when
    planning failed otherwise (a store or lookup outage, a bug), so one number's failure never takes
    the other numbers of its request down with it."""
    try:
        return plan_body(await planner.plan(to))
    except InvalidInput as exc:
        return {"error": {"code": "invalid_number", "message": str(exc)}}
    except Exception as exc:
        log.error("route planning failed", action="router.plan_failed", to=to, error=repr(exc))
        return {"error": {"code": ROUTE_UNAVAILABLE, "message": f"route planning failed: {exc!r}"}}


def _bad_request(reason: str) -> bytes:
    return msgspec.json.encode({"error": {"code": "bad_request", "message": reason}})


async def answer(planner: RoutePlanner, data: bytes) -> bytes:
    """One request's reply (a bad request is answered, never dropped: the asker must not hang)."""
    try:
        request = msgspec.json.decode(data, type=RouteRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _bad_request(str(exc))
    return msgspec.json.encode(await _plan_or_error(planner, request.to))


async def answer_many(planner: RoutePlanner, data: bytes) -> bytes:
    """`{"to": [...]}` -> `{"plans": [...]}`, a plan (or its error) per number in order: what the
    cascade asks for the steps of one loop turn together."""
    try:
        request = msgspec.json.decode(data, type=RouteManyRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _bad_request(str(exc))
    if len(request.to) > MAX_NUMBERS:
        return _bad_request(f"at most {MAX_NUMBERS} numbers per request, not {len(request.to)}")
    return msgspec.json.encode({"plans": [await _plan_or_error(planner, to) for to in request.to]})


async def serve(ctx: DaemonContext) -> None:
    store = await open_store(ctx.config.store)
    nats = await connect(ctx.config, name="router")
    http = httpx.AsyncClient()
    try:
        health = HealthBoard()
        planner = planner_from_config(
            ctx.config.router, store, health.health, http, registry_ttl_s=REGISTRY_RELOAD_S
        )

        async def on_health(msg: Msg) -> None:
            health.receive(msg.subject, msg.data)

        async def on_change(msg: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, AttributeError):
                kind = msgspec.json.decode(msg.data).get("kind")
                if kind == "mnp":
                    planner.forget()
                elif kind in ("carrier", "rates"):
                    planner.forget_registry()

        async def on_request(msg: Msg) -> None:
            await msg.respond(await answer(planner, msg.data))

        async def on_request_many(msg: Msg) -> None:
            await msg.respond(await answer_many(planner, msg.data))

        await nats.subscribe(HEALTH_SUBJECT_ALL, cb=on_health)
        await nats.subscribe(REGISTRY_CHANGED, cb=on_change)
        await nats.subscribe(ROUTE_SUBJECT, queue="router", cb=on_request)
        await nats.subscribe(ROUTE_MANY_SUBJECT, queue="router", cb=on_request_many)
        ctx.ready(f"answering {ROUTE_SUBJECT}")
        await ctx.stopping.wait()
    finally:
        await close_bus(nats)
        await http.aclose()
        await store.close()
