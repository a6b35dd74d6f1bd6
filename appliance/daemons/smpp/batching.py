"""Store work of concurrent dispatches and receipts, gathered into batches: `Batcher` and `SubmissionBook`.

Why: every dispatch (`find_attempt`, `record_submission`) and every receipt (`find_submission`,
`mark_dlr`, `find_attempt`) used to take the store's lock for a transaction of its own, a few SQLite
round trips each through aiosqlite's thread. Under load the smpp daemon spent its time queueing for that
lock and held the carrier's window meanwhile: a few hundred messages a second, with receipts trailing.

`Batcher`: a caller queues its item and awaits its own result; one worker runs the batch function on
everything queued (up to `max_batch`), and what arrives meanwhile forms the next batch. Batches grow
with the load, and an idle daemon adds no delay (nothing lingers). When the batch function raises,
every caller of that batch gets the error, as when its own call failed. The worker stops when the
queue is empty, so there is nothing to close.

`SubmissionBook`: the store as the daemon uses it, each method batched; callers keep their guarantees
(a part is recorded, a receipt marked, before the call returns).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import msgspec

from appliance.store.smpp_base import DlrMark, DlrUpdate, SmppStore, SmppSubmission, best_match

T = TypeVar("T")
R = TypeVar("R")
MAX_BATCH = 500


class Batcher(Generic[T, R]):
    """`await batcher(item)` -> its result, computed by `run(items)` (one result per item, in order)."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = MAX_BATCH, name: str = ""
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._name = name or "batcher"
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._worker is None:
            self._worker = loop.create_task(self._work(), name=self._name)
        return await future

    async def _work(self) -> None:
        queue = self._queue
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
                self.batches += 1
                self.items += len(batch)
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:
                    _fail(batch, exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                batch = []
        except BaseException:  # cancelled with the loop: nobody is left waiting
            _fail([*batch, *queue], asyncio.CancelledError())
            queue.clear()
            raise
        finally:
            self._worker = None


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


class Settled(msgspec.Struct, frozen=True):
    """A receipt recorded on its part, and the parts of that attempt as they stand now."""

    mark: DlrMark
    siblings: list[SmppSubmission]


class _Receipt(msgspec.Struct, frozen=True):
    carrier: str
    id_keys: Sequence[str]
    update: DlrUpdate


class SubmissionBook:
    """`find_attempt`, `record_submission` and `settle` from any number of tasks, batched."""

    def __init__(self, store: SmppStore, *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._find = Batcher(self._find_attempts, max_batch=max_batch, name="smpp find attempts")
        self._record = Batcher(self._record_all, max_batch=max_batch, name="smpp record parts")
        self._settle = Batcher(self._settle_all, max_batch=max_batch, name="smpp settle receipts")

    async def find_attempt(self, carrier: str, message_id: str, attempt: int) -> list[SmppSubmission]:
        """The recorded parts of one attempt on one carrier, ordered by part."""
        return await self._find((carrier, message_id, attempt))

    async def record_submission(self, submission: SmppSubmission) -> None:
        """Record a part (idempotent); returns once it is committed."""
        await self._record(submission)

    async def settle(self, carrier: str, id_keys: Sequence[str], update: DlrUpdate) -> Settled | None:
        """Record a receipt on the carrier's part whose id_key is one of `id_keys` (`update`'s
        carrier_message_id is replaced by the part's); None when no part matches."""
        return await self._settle(_Receipt(carrier, id_keys, update))

    async def _find_attempts(self, asked: list[tuple[str, str, int]]) -> list[list[SmppSubmission]]:
        found: dict[tuple[str, str, int], list[SmppSubmission]] = {}
        for carrier, attempts in _by_carrier([(c, (m, a)) for c, m, a in asked]).items():
            parts = await self._store.find_attempts(carrier, attempts)
            found.update({(carrier, *key): value for key, value in parts.items()})
        return [found[key] for key in asked]

    async def _record_all(self, submissions: list[SmppSubmission]) -> list[None]:
        await self._store.record_submissions(submissions)
        return [None] * len(submissions)

    async def _settle_all(self, receipts: list[_Receipt]) -> list[Settled | None]:
        settled: list[Settled | None] = [None] * len(receipts)
        by_carrier = _by_carrier([(r.carrier, index) for index, r in enumerate(receipts)])
        for carrier, indexes in by_carrier.items():
            keys = [key for index in indexes for key in receipts[index].id_keys]
            rows = await self._store.find_submissions(carrier, keys)
            found: list[tuple[int, DlrUpdate]] = []
            for index in indexes:
                part = best_match(rows, receipts[index].id_keys)
                if part is not None:
                    update = msgspec.structs.replace(
                        receipts[index].update, carrier_message_id=part.carrier_message_id
                    )
                    found.append((index, update))
            marks = await self._store.mark_dlrs(carrier, [update for _, update in found])
            attempts = list({(m.submission.message_id, m.submission.attempt) for m in marks if m is not None})
            siblings = await self._store.find_attempts(carrier, attempts)
            for (index, _), mark in zip(found, marks, strict=True):
                if mark is not None:
                    attempt = (mark.submission.message_id, mark.submission.attempt)
                    settled[index] = Settled(mark, siblings[attempt])
        return settled


def _by_carrier(items: Sequence[tuple[str, T]]) -> dict[str, list[T]]:
    grouped: dict[str, list[T]] = {}
    for carrier, value in items:
        grouped.setdefault(carrier, []).append(value)
    return grouped
