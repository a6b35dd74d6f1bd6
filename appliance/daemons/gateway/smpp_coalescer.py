"""Submits of SMPP binds that arrive in one loop turn go through the pipeline together (one durable wait)."""

from __future__ import annotations

import asyncio

from appliance.daemons.gateway.ingress import Ingress
from appliance.daemons.gateway.registry_cache import Authenticated
from appliance.domain.message import Message, MessageRequest
from appliance.domain.pipeline import Rejection


class SubmitCoalescer:
    """Hands the pipeline, together, the submits that reach it in one turn of the event loop.

    A client keeps up to its window of submit_sm in flight; a read brings many PDUs, their handlers
    run in the same turn and each waits here. One `submit_authenticated_many` call then validates
    each message on its own and waits once for JetStream's acks of all, instead of once per message.
    Every submit_sm_resp still leaves only after its own message is durable.
    """

    def __init__(self, ingress: Ingress, tasks: set[asyncio.Task[None]]) -> None:
        self._ingress = ingress
        self._tasks = tasks
        self._queue: list[tuple[Authenticated, MessageRequest, asyncio.Future[Message | Rejection]]] = []

    async def submit(self, auth: Authenticated, request: MessageRequest) -> Message | Rejection:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message | Rejection] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((auth, request, future))
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, batch: list[tuple[Authenticated, MessageRequest, asyncio.Future[Message | Rejection]]]
    ) -> None:
        try:
            results = await self._ingress.submit_authenticated_many([(a, r) for a, r, _ in batch], "smpp")
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # each handler answers ESME_RSYSERR (the connection logs it)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
