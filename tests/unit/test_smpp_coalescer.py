"""The SMPP server's coalescer: submits that arrive in one loop turn reach the pipeline as one batch,
and each caller gets its own result (or the batch's failure)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from appliance.daemons.gateway.registry_cache import Authenticated
from appliance.daemons.gateway.smpp_coalescer import SubmitCoalescer
from appliance.domain.message import Message, MessageRequest
from appliance.domain.pipeline import Rejection
from appliance.store import Tenant

TENANT = Tenant(
    id="tn_1",
    name="acme",
    tier="starter",
    status="active",
    email="a@b.c",
    rate_limit=0,
    burst=0,
    monthly_quota=0,
    created_at=0.0,
    updated_at=0.0,
)
AUTH = Authenticated("smpp:acme01", TENANT)


class _Ingress:
    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    async def submit_authenticated_many(
        self, items: Sequence[tuple[Authenticated, MessageRequest]], origin: str
    ) -> list[Message | Rejection]:
        await asyncio.sleep(0)
        bodies = [str(request.body) for _, request in items]
        self.batches.append(bodies)
        if self.fail is not None:
            raise self.fail
        return [
            Rejection(429, "rate_limited", "slow down", "L3")
            if body == "refuse me"
            else Message(id=f"msg_{body}", tenant_id="tn_1", origin="smpp", channels=(), created_at=0.0)
            for body in bodies
        ]


async def test_one_turn_of_submits_is_one_batch_and_each_gets_its_own_answer() -> None:
    ingress = _Ingress()
    tasks: set[asyncio.Task[None]] = set()
    coalescer = SubmitCoalescer(ingress, tasks)  # type: ignore[arg-type]
    bodies = ["a", "b", "refuse me", "d"]
    results: list[Any] = await asyncio.gather(
        *(coalescer.submit(AUTH, MessageRequest(body=body)) for body in bodies)
    )
    assert ingress.batches == [bodies]
    assert [r.id if isinstance(r, Message) else r.code for r in results] == [
        "msg_a",
        "msg_b",
        "rate_limited",
        "msg_d",
    ]
    later = await coalescer.submit(AUTH, MessageRequest(body="e"))
    assert isinstance(later, Message)
    assert ingress.batches[-1] == ["e"]
    await asyncio.sleep(0)  # the finished batch task leaves the set in its done callback
    assert not tasks


async def test_a_failed_batch_fails_every_submit_in_it() -> None:
    coalescer = SubmitCoalescer(_Ingress(fail=RuntimeError("bus down")), set())  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        *(coalescer.submit(AUTH, MessageRequest(body=b)) for b in "xyz"), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    with pytest.raises(RuntimeError):
        await coalescer.submit(AUTH, MessageRequest(body="again"))
