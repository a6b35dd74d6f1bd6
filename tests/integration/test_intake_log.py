"""`power` durability: the fsynced intake log survives a crash and relays exactly what it holds."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client as NatsClient

from appliance.bus.intake_log import IntakeLog, read_records
from appliance.bus.publisher import Envelope, JetStreamPublisher
from appliance.errors import BusError
from tests.integration.gateway_harness import gateway_harness

SMS = {"to": "+4523456789", "channel": "sms", "body": "hello"}


class _DownPublisher(JetStreamPublisher):
    """JetStream unreachable: every relay attempt fails."""

    def __init__(self) -> None:
        self.attempts = 0

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.attempts += 1
        raise BusError("nats down")


def envelope(n: int) -> Envelope:
    return Envelope("tn_1", f"msg_{n:04d}", b'{"id": "%d"}' % n, b"{}", 1_700_000_000.0 + n)


async def _stream_count(nats: NatsClient, stream: str) -> int:
    return int((await nats.jetstream().stream_info(stream)).state.messages)


async def test_appends_survive_a_crash_and_are_relayed_after_restart(
    tmp_path: Path, nats: NatsClient
) -> None:
    down = _DownPublisher()
    first = IntakeLog(tmp_path, down)
    await first.open()
    await first.append([envelope(n) for n in range(50)])
    await first.append([envelope(50)])
    await asyncio.sleep(0.2)
    assert down.attempts >= 1
    # crash: the process dies without close(); only what is on disk remains
    for task in first._tasks:
        task.cancel()
    await asyncio.gather(*first._tasks, return_exceptions=True)
    segment = next(tmp_path.glob("*.log"))
    with segment.open("ab") as handle:  # a write torn by the power cut
        handle.write(b"\x00\x00\x01\x00garbage")

    second = IntakeLog(tmp_path, JetStreamPublisher(nats))
    await second.open()
    assert second.recovered == 51
    for _ in range(100):
        if second.relayed == 51:
            break
        await asyncio.sleep(0.05)
    await second.close()
    assert await _stream_count(nats, "MESSAGES") == 51
    assert not list(tmp_path.glob("00000000000[1].log"))  # relayed segments are removed

    third = IntakeLog(tmp_path, JetStreamPublisher(nats))
    await third.open()
    assert third.recovered == 0
    await third.close()


async def test_power_mode_answers_after_fsync_and_relays(tmp_path: Path, nats_server: str) -> None:
    async with gateway_harness(tmp_path, nats_server, '[gateway]\ndurability = "power"\n') as gw:
        _, key = await gw.tenant("acme")
        results = await asyncio.gather(*(gw.post(key, SMS) for _ in range(20)))
        assert [r.status_code for r in results] == [202] * 20
        assert gw.gateway.intake is not None
        for _ in range(100):
            if await gw.stream_count("MESSAGES") == 20:
                break
            await asyncio.sleep(0.05)
        assert await gw.stream_count("MESSAGES") == 20
        assert await _audit_records(gw.nats) == 20  # in one or more AUDIT messages (arrays of records)


async def _audit_records(nats: NatsClient) -> int:
    js = nats.jetstream()
    last = (await js.stream_info("AUDIT")).state.last_seq
    records = 0
    for seq in range(1, last + 1):
        records += len(json.loads((await js.get_msg("AUDIT", seq)).data or b"[]"))
    return records


def test_records_written_before_the_accepted_at_field_are_still_read(tmp_path: Path) -> None:
    """Logs of earlier versions held the accepted event as a fifth field: an upgrade must still relay them."""
    payload = msgspec.msgpack.encode(["tn_1", "msg_1", b'{"id":"msg_1"}', b"{}", b'{"kind":"accepted"}'])
    data = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    [(end, env)], valid = read_records(data, 0)
    assert (end, valid) == (len(data), len(data))
    assert (env.message_id, env.message, env.accepted_at) == ("msg_1", b'{"id":"msg_1"}', 0.0)


async def test_a_backlog_that_is_not_relayed_is_refused_not_grown(tmp_path: Path) -> None:
    log = IntakeLog(tmp_path, _DownPublisher(), max_backlog=10)
    await log.open()
    await log.append([envelope(n) for n in range(11)])
    with pytest.raises(BusError, match="backlog"):
        await log.append([envelope(99)])
    for task in log._tasks:
        task.cancel()
    await asyncio.gather(*log._tasks, return_exceptions=True)


async def test_once_the_relay_is_idle_its_marks_are_exact_so_a_crash_republishes_nothing(
    tmp_path: Path, nats: NatsClient
) -> None:
    """Marks are written at most every 0.2 s while the relay is busy, and always when it catches up."""
    first = IntakeLog(tmp_path, JetStreamPublisher(nats))
    await first.open()
    for n in range(5):  # several relay batches within one mark interval
        await first.append([envelope(10 * n + i) for i in range(10)])
    for _ in range(100):
        if first.relayed == 50:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # the relay writes its marks before it idles
    for task in first._tasks:  # crash: no close(), so no final marks
        task.cancel()
    await asyncio.gather(*first._tasks, return_exceptions=True)
    second = IntakeLog(tmp_path, JetStreamPublisher(nats))
    await second.open()
    assert second.recovered == 0
    await second.close()
    assert await _stream_count(nats, "MESSAGES") == 50
