"""`Batcher`: concurrent calls served by one batched call at a time, each caller with its own result."""

from __future__ import annotations

import asyncio

import pytest

from appliance.daemons.smpp.batching import Batcher


class _Doubler:
    """A batch function that records the batches it was given."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.gate.wait()
        if self.fail_on in items:
            raise ValueError("store away")
        return [item * 2 for item in items]


async def test_calls_made_together_share_one_batch() -> None:
    run = _Doubler()
    batcher = Batcher(run)
    assert await asyncio.gather(*(batcher(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert run.batches == [[0, 1, 2, 3, 4]]
    assert (batcher.batches, batcher.items) == (1, 5)


async def test_calls_during_a_batch_form_the_next_one_up_to_max_batch() -> None:
    run = _Doubler()
    run.gate.clear()
    batcher = Batcher(run, max_batch=2)
    first = asyncio.ensure_future(batcher(1))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    run.gate.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6, 8]
    assert run.batches == [[1], [2, 3], [4]]


async def test_a_failed_batch_fails_its_callers_only() -> None:
    run = _Doubler(fail_on=2)
    batcher = Batcher(run)
    results = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    assert await batcher(3) == 6


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    run = _Doubler()
    run.gate.clear()
    batcher = Batcher(run)
    gone = asyncio.ensure_future(batcher(1))
    stays = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0)
    gone.cancel()
    run.gate.set()
    assert await stays == 4
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_the_worker_stops_when_nothing_is_queued() -> None:
    batcher = Batcher(_Doubler())
    await batcher(1)
    for _ in range(3):
        await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert await batcher(2) == 4
