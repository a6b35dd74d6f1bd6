"""Route plans for the cascade, asked of the router a loop turn at a time.

Every message's first step asks the router where its SMS should go. Steps run concurrently, and many
reach that question in the same turn of the event loop; one request (`hermes.router.route_many`) for
all of them costs the cascade, nats-server and the router one message and one reply instead of one
each, which at a few thousand steps a second is a good share of what routing costs.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import msgspec

from appliance.bus.requests import Requests
from appliance.bus.streams import ROUTE_MANY_SUBJECT, ROUTE_UNAVAILABLE
from appliance.errors import BusError


class RouterUnavailable(BusError):
    """The router did not answer in time; the input is handed back and tried again."""


class _Plans(msgspec.Struct):
    plans: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None


_PLANS: Final = msgspec.json.Decoder(_Plans)
_JSON: Final = msgspec.json.Encoder()
Waiting = list[tuple[str, "asyncio.Future[dict[str, Any]]"]]


class RouteAsker:
    """`await plan(to)`: the router's plan for one number, asked together with the others of its turn."""

    def __init__(self, requests: Requests, *, timeout_s: float = 5.0, max_batch: int = 500) -> None:
        self._requests = requests
        self._timeout_s = timeout_s
        self._max_batch = max_batch
        self._waiting: Waiting = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def plan(self, to: str) -> dict[str, Any]:
        """The plan (or `{"error": ...}` for a number the router refuses); RouterUnavailable when no
        router answered within the timeout."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._flush)
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting.append((to, future))
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), self._max_batch):
            task = asyncio.get_running_loop().create_task(self._ask(waiting[start : start + self._max_batch]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ask(self, waiting: Waiting) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._requests.request(
                    ROUTE_MANY_SUBJECT, _JSON.encode({"to": [to for to, _ in waiting]})
                )
        except (TimeoutError, BusError, OSError) as exc:
            _fail(waiting, RouterUnavailable(f"the router did not answer: {exc!r}"))
            return
        except BaseException as exc:
            _fail(waiting, RouterUnavailable(f"the router was not asked: {exc!r}"))
            raise
        if not reply.data and reply.headers and reply.headers.get("Status") == "503":
            _fail(waiting, RouterUnavailable("the router did not answer: no responders"))
            return
        plans = _plans_of(reply.data, len(waiting))
        for (to, future), plan in zip(waiting, plans, strict=True):
            if future.done():
                continue
            error = plan.get("error")
            if isinstance(error, dict) and error.get("code") == ROUTE_UNAVAILABLE:
                future.set_exception(RouterUnavailable(f"no plan for {to} now: {error.get('message')}"))
                future.exception()
            else:
                future.set_result(plan)


def _plans_of(data: bytes, count: int) -> list[dict[str, Any]]:
    """One plan per number asked, in order; an answer that is not that is an error for each."""
    try:
        answer = _PLANS.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        answer = _Plans(error={"message": "unreadable router answer"})
    if answer.plans is not None and len(answer.plans) == count:
        return answer.plans
    error = answer.error or {"message": f"the router answered {len(answer.plans or [])} plans for {count}"}
    return [{"error": error}] * count


def _fail(waiting: Waiting, exc: RouterUnavailable) -> None:
    for _, future in waiting:
        if not future.done():
            future.set_exception(exc)
            future.exception()  # retrieved: a step that timed out meanwhile must not log it as lost
