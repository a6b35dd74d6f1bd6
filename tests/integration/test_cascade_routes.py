"""The cascade asks the router for the plans of one loop turn in one request, over a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from appliance.bus.requests import Requests
from appliance.bus.streams import ROUTE_MANY_SUBJECT
from appliance.daemons.cascade.routes import RouteAsker, RouterUnavailable
from appliance.daemons.router import answer_many
from appliance.errors import InvalidInput


async def _connected(url: str) -> NatsClient:
    client = NatsClient()
    await client.connect(servers=[url])
    return client


async def _router(url: str, answer: Callable[[Msg], Awaitable[None]]) -> NatsClient:
    """A stand-in router, subscribed before the asking client connects: nats-server 2.15 may answer a
    request from a client that connected before the subscription with "no responders" (seen in about
    one request in ten here), which would make these tests flaky, not the code under test wrong."""
    router = await _connected(url)
    await router.subscribe(ROUTE_MANY_SUBJECT, cb=answer)
    await router.flush()
    return router


async def test_the_plans_of_one_turn_are_one_request_answered_in_order(nats_server: str) -> None:
    asked: list[list[str]] = []

    async def answer(msg: Msg) -> None:
        numbers = msgspec.json.decode(msg.data)["to"]
        asked.append(numbers)
        await msg.respond(msgspec.json.encode({"plans": [{"chosen": f"c{to}"} for to in numbers]}))

    router = await _router(nats_server, answer)
    cascade = await _connected(nats_server)
    requests = Requests(cascade)
    try:
        routes = RouteAsker(requests, timeout_s=5)
        plans = await asyncio.gather(*(routes.plan(f"+45{n}") for n in range(40)))
        assert [p["chosen"] for p in plans] == [f"c+45{n}" for n in range(40)]
        assert asked == [[f"+45{n}" for n in range(40)]]
        assert (await routes.plan("+451"))["chosen"] == "c+451"  # a later turn: a request of its own
        assert len(asked) == 2
    finally:
        await requests.close()
        await router.close()
        await cascade.close()


async def test_a_wrong_answer_is_an_error_per_number_and_no_router_is_unavailable(nats_server: str) -> None:
    lonely = await _connected(nats_server)
    requests = Requests(lonely)
    try:
        with pytest.raises(RouterUnavailable, match="no responders"):
            await RouteAsker(requests, timeout_s=5).plan("+4528123456")
    finally:
        await requests.close()
        await lonely.close()

    async def short(msg: Msg) -> None:
        await msg.respond(b'{"plans": [{"chosen": "a"}]}')  # one plan for two numbers

    router = await _router(nats_server, short)
    cascade = await _connected(nats_server)
    requests = Requests(cascade)
    try:
        routes = RouteAsker(requests, timeout_s=5)
        plans = await asyncio.gather(routes.plan("+1"), routes.plan("+2"))
        assert all("1 plans for 2" in p["error"]["message"] for p in plans)
    finally:
        await requests.close()
        await router.close()
        await cascade.close()


async def test_a_number_the_router_cannot_plan_now_fails_alone(nats_server: str) -> None:
    async def answer(msg: Msg) -> None:
        plans = [
            {"error": {"code": "unavailable", "message": "store down"}} if to == "+2" else {"chosen": "a"}
            for to in msgspec.json.decode(msg.data)["to"]
        ]
        await msg.respond(msgspec.json.encode({"plans": plans}))

    router = await _router(nats_server, answer)
    cascade = await _connected(nats_server)
    requests = Requests(cascade)
    try:
        routes = RouteAsker(requests, timeout_s=5)
        outcomes: list[object] = await asyncio.gather(
            routes.plan("+1"), routes.plan("+2"), return_exceptions=True
        )
        first, second = outcomes
        assert first == {"chosen": "a"}
        assert isinstance(second, RouterUnavailable) and "store down" in str(second)
    finally:
        await requests.close()
        await router.close()
        await cascade.close()


async def test_the_router_answers_each_number_on_its_own() -> None:
    class Planner:
        async def plan(self, to: str) -> object:
            if to == "+1":
                raise InvalidInput("number", "not valid")
            raise RuntimeError("the MNP store is down")

    reply = msgspec.json.decode(await answer_many(Planner(), b'{"to": ["+1", "+2"]}'))  # type: ignore[arg-type]
    assert [p["error"]["code"] for p in reply["plans"]] == ["invalid_number", "unavailable"]
