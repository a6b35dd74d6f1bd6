"""`power` durability: an fsynced, group-committed intake log in front of JetStream.

JetStream's file store fsyncs every 2 minutes by default, and per message with `sync_interval: always`
(about 4,000 msg/s here). So in `power` mode a gateway worker appends each accepted message to its own
log and answers 202 only after the fsync; concurrent requests share one write and one fdatasync
(group commit). A relay publishes the log to JetStream in order and records, per segment, how far
JetStream has acknowledged (`<segment>.acked`). After a crash or power loss, whatever lies past that
mark is published again: JetStream drops duplicates inside its window (Nats-Msg-Id) and consumers
are idempotent by message id for anything older, so nothing acknowledged to a client is lost.

Record: u32 length, u32 crc32, payload (msgpack of the envelope). A torn tail (short or bad crc) is
where the last write was cut off; nothing past it was ever acknowledged, so it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from appliance.bus.publisher import Envelope, JetStreamPublisher
from appliance.errors import BusError
from appliance.logs import get_logger

_HEADER = struct.Struct(">II")
_SEGMENT_BYTES = 64 * 1024 * 1024
_RELAY_BATCH = 512
_MARK_EVERY_S = 0.2
"""How often the relay's progress is written down while it is busy. A mark that trails costs only
republishing after a crash what JetStream already has (its Nats-Msg-Id window and the consumers' own
idempotency drop those), and writing one per relayed batch cost a file write and rename each time."""
log = get_logger("hermes.intake")


class _Record(msgspec.Struct, array_like=True):
    tenant_id: str
    message_id: str
    message: bytes
    audit: bytes
    accepted_at: float | bytes = 0.0  # bytes in logs written before 2026-11-26 (the accepted event then)


def _encode(env: Envelope) -> bytes:
    payload = msgspec.msgpack.encode(
        _Record(env.tenant_id, env.message_id, env.message, env.audit, env.accepted_at)
    )
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(data: bytes, start: int) -> tuple[list[tuple[int, Envelope]], int]:
    """Records from `start` as (end offset, envelope), and the offset where valid data ends."""
    records: list[tuple[int, Envelope]] = []
    offset = start
    decoder = msgspec.msgpack.Decoder(_Record)
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        payload = data[offset + _HEADER.size : end]
        if end > len(data) or zlib.crc32(payload) != crc:
            break
        rec = decoder.decode(payload)
        records.append(
            (
                end,
                Envelope(
                    rec.tenant_id,
                    rec.message_id,
                    rec.message,
                    rec.audit,
                    rec.accepted_at if isinstance(rec.accepted_at, float) else 0.0,
                ),
            )
        )
        offset = end
    return records, offset


@dataclass
class _Segment:
    number: int
    path: Path
    size: int = 0
    acked: int = 0
    marked: int = 0
    """How far `<segment>.acked` on disk says JetStream has acknowledged (trails `acked`)."""
    fd: int | None = None


class IntakeLog:
    def __init__(
        self,
        directory: Path,
        publisher: JetStreamPublisher,
        *,
        segment_bytes: int = _SEGMENT_BYTES,
        max_backlog: int = 200_000,
    ) -> None:
        self._dir = directory
        self._max_backlog = max_backlog
        self._publisher = publisher
        self._segment_bytes = segment_bytes
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._pending: list[tuple[bytes, Envelope, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._relay_queue: deque[tuple[int, int, Envelope]] = deque()
        self._relay_wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.relayed = 0
        self.recovered = 0
        self._marked_at = 0.0

    # ---- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Recover what earlier runs logged but did not relay, then start writer and relay."""
        self._dir.mkdir(parents=True, exist_ok=True)
        numbers = sorted(int(p.stem) for p in self._dir.glob("*.log") if p.stem.isdigit())
        for number in numbers:
            segment = _Segment(number, self._dir / f"{number:012d}.log")
            data = await asyncio.to_thread(segment.path.read_bytes)
            segment.acked = segment.marked = self._read_mark(segment)
            records, valid_end = read_records(data, segment.acked)
            if valid_end < len(data):
                log.warning(
                    "intake log tail torn; dropping it",
                    action="intake.torn_tail",
                    segment=str(segment.path),
                    dropped_bytes=len(data) - valid_end,
                )
                await asyncio.to_thread(os.truncate, segment.path, valid_end)
            segment.size = valid_end
            self._segments[number] = segment
            for end, env in records:
                self._relay_queue.append((number, end, env))
            self.recovered += len(records)
        if self.recovered:
            log.info(
                "relaying messages recovered from the intake log",
                action="intake.recover",
                count=self.recovered,
            )
            self._relay_wake.set()
        self._rotate(numbers[-1] + 1 if numbers else 1)
        self._tasks = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._relay_loop())]
        for number in numbers:
            self._drop_if_relayed(self._segments[number])

    async def close(self, *, relay_deadline_s: float = 5.0) -> None:
        """Stop accepting, flush, try to relay the rest within the deadline (it stays on disk if not)."""
        self._closing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(relay_deadline_s):
                while self._pending or self._relay_queue:  # noqa: ASYNC110 - two queues, one poll
                    await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for segment in self._segments.values():
            self._write_mark(segment)
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None

    # ---- appending (group commit) ------------------------------------------------------------
    async def append(self, envelopes: Sequence[Envelope]) -> None:
        """Return once every envelope is fsynced to the log."""
        if self._closing:
            raise BusError("intake log is closing")
        if len(self._relay_queue) > self._max_backlog:
            # JetStream is down or slower than intake: refuse (503) rather than let the log grow unbounded
            raise BusError(f"intake backlog of {len(self._relay_queue)} messages is not relayed yet")
        loop = asyncio.get_running_loop()
        futures = []
        for env in envelopes:
            future: asyncio.Future[None] = loop.create_future()
            self._pending.append((_encode(env), env, future))
            futures.append(future)
        self._wake.set()
        if len(futures) == 1:
            await futures[0]  # the common case (one REST message): no gather wrapper
        else:
            await asyncio.gather(*futures)

    def _rotate(self, number: int) -> None:
        path = self._dir / f"{number:012d}.log"
        segment = _Segment(number, path)
        segment.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._segments[number] = segment
        if self._current is not None and self._current.fd is not None:
            os.close(self._current.fd)
            self._current.fd = None
            self._drop_if_relayed(self._current)
        self._current = segment
        with contextlib.suppress(OSError):
            dir_fd = os.open(self._dir, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            segment = self._current
            assert segment is not None
            assert segment.fd is not None
            data = b"".join(record for record, _, _ in batch)
            try:
                await asyncio.to_thread(_write_and_sync, segment.fd, data)
            except OSError as exc:
                error = BusError(f"cannot write the intake log {segment.path}: {exc.strerror}")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            offset = segment.size
            for record, env, future in batch:
                offset += len(record)
                self._relay_queue.append((segment.number, offset, env))
                if not future.done():
                    future.set_result(None)
            segment.size = offset
            self._relay_wake.set()
            if segment.size >= self._segment_bytes:
                self._rotate(segment.number + 1)

    # ---- relaying ----------------------------------------------------------------------------
    async def _relay_loop(self) -> None:
        delay = 0.1
        while True:
            if not self._relay_queue:
                self._relay_wake.clear()  # before the await below, so an append meanwhile still wakes us
                await self._write_marks()  # all caught up: the marks say so before we idle
                await self._relay_wake.wait()
                continue
            batch = [self._relay_queue[i] for i in range(min(_RELAY_BATCH, len(self._relay_queue)))]
            try:
                await self._publisher.publish([env for _, _, env in batch])
            except BusError as exc:
                log.warning(
                    "relay to JetStream failed; retrying",
                    action="intake.relay_retry",
                    error=str(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for _ in batch:
                self._relay_queue.popleft()
            touched: dict[int, int] = {}
            for number, end, _ in batch:
                touched[number] = end
            for number, end in touched.items():
                segment = self._segments[number]
                segment.acked = end
                self._drop_if_relayed(segment)
            self.relayed += len(batch)
            if time.monotonic() - self._marked_at >= _MARK_EVERY_S:
                await self._write_marks()

    # ---- marks -------------------------------------------------------------------------------
    async def _write_marks(self) -> None:
        """Write down the relay's progress in every segment where it moved since the last time."""
        self._marked_at = time.monotonic()
        moved = [segment for segment in self._segments.values() if segment.acked > segment.marked]
        if moved:
            await asyncio.to_thread(self._write_marks_of, moved)

    def _write_marks_of(self, segments: list[_Segment]) -> None:
        for segment in segments:
            self._write_mark(segment)

    def _mark_path(self, segment: _Segment) -> Path:
        return segment.path.with_suffix(".acked")

    def _read_mark(self, segment: _Segment) -> int:
        try:
            return int(self._mark_path(segment).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_mark(self, segment: _Segment) -> None:
        if not segment.path.exists():
            return
        acked = segment.acked
        tmp = self._mark_path(segment).with_suffix(".tmp")
        tmp.write_text(str(acked))
        with contextlib.suppress(FileNotFoundError):  # close() raced a relay's write: one of them landed
            os.replace(tmp, self._mark_path(segment))
        segment.marked = acked

    def _drop_if_relayed(self, segment: _Segment) -> None:
        if segment is self._current or segment.acked < segment.size:
            return
        for path in (segment.path, self._mark_path(segment)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._segments.pop(segment.number, None)


def _write_and_sync(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fdatasync(fd)
