"""`CarrierPool` against a scripted SMSC on loopback: what it does with each class of answer, with no
answer, and with a bind the SMSC refuses."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from appliance.daemons.smpp import CarrierPool, NoBind, SmppSettings, SubmitFailed, SubmitRefused
from appliance.protocols.smpp import CommandStatus, DataSm, DeliverSm, Pdu, SubmitSm, SubmitSmResp
from appliance.protocols.smpp.connection import Reject, SessionConfig
from appliance.protocols.smpp.server import ServerSession, SmppServer
from appliance.protocols.smpp.session import BindType
from appliance.store.carrier_models import Carrier

S = CommandStatus
SETTINGS = SmppSettings(
    response_timeout_s=0.3, bind_timeout_s=1.0, rebind_initial_s=0.05, rebind_max_s=0.2, bind_wait_s=1.0,
    drain_timeout_s=0.5, throttle_hold_s=0.5,
)  # fmt: skip
Script = Callable[[ServerSession, int], Awaitable[int | None]]
"""(session, n-th submit overall) -> command_status to answer, or None to never answer."""
pytestmark = pytest.mark.timeout(30)


class Smsc:
    def __init__(self, script: Script, *, accept: bool = True) -> None:
        self.script = script
        self.accept = accept
        self.submits: list[str] = []  # the peer of each submit, in order
        self.server = SmppServer(
            authenticate=self._authenticate, handler=self._handle, config=SessionConfig(close_timeout_s=0.5)
        )

    async def _authenticate(self, system_id: str, password: str, bind_type: BindType, peer: str) -> bool:
        return self.accept

    async def _handle(self, session: ServerSession, pdu: Pdu) -> Pdu | None:
        assert isinstance(pdu, SubmitSm)
        self.submits.append(session.peer)
        status = await self.script(session, len(self.submits))
        if status is None:
            await asyncio.sleep(60)  # cancelled when the connection closes
            return None
        if status:
            raise Reject(status)
        return SubmitSmResp(pdu.sequence_number, message_id=f"id{len(self.submits)}")


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    yield
    for _ in range(5):
        await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leftover, leftover


async def _ignore(carrier: str, pdu: DeliverSm | DataSm) -> None:
    return None


@pytest.fixture
async def pool_on() -> AsyncIterator[Callable[..., Awaitable[tuple[Smsc, CarrierPool]]]]:
    made: list[tuple[Smsc, CarrierPool]] = []

    async def make(script: Script, *, accept: bool = True, **fields: Any) -> tuple[Smsc, CarrierPool]:
        smsc = Smsc(script, accept=accept)
        await smsc.server.start()
        host, port = smsc.server.address
        carrier = Carrier(
            name="c", kind="direct", host=host, port=port, system_id="s", password="p", created_at=0,
            updated_at=0, **fields,
        )  # fmt: skip
        pool = CarrierPool(carrier, settings=SETTINGS, on_deliver=_ignore)
        pool.start()
        made.append((smsc, pool))
        if accept:
            assert await pool.wait_bound(3.0)
        return smsc, pool

    yield make
    for smsc, pool in made:
        await pool.close(0.5)
        await smsc.server.close(1.0)


def statuses(*answers: int | None) -> Script:
    async def script(session: ServerSession, n: int) -> int | None:
        return answers[min(n, len(answers)) - 1]

    return script


PDU = SubmitSm(0, destination_addr="4523456789", short_message=b"hi")


async def test_a_temporary_error_is_retried_on_the_other_connection(pool_on: Any) -> None:
    smsc, pool = await pool_on(statuses(S.ESME_RSYSERR, 0), connections=2)
    assert await pool.submit(PDU) == "id2"
    assert len(set(smsc.submits)) == 2  # the second try went on the other connection
    assert sum(bind.errors for bind in pool.binds) == 1


async def test_temporary_errors_use_up_the_tries(pool_on: Any) -> None:
    smsc, pool = await pool_on(statuses(S.ESME_RSYSERR))
    with pytest.raises(SubmitFailed) as failed:
        await pool.submit(PDU)
    assert failed.value.status_name == "ESME_RSYSERR"
    assert len(smsc.submits) == SETTINGS.max_submit_tries and pool.failed == 1


async def test_a_permanent_error_is_not_retried(pool_on: Any) -> None:
    smsc, pool = await pool_on(statuses(S.ESME_RINVDSTADR))
    with pytest.raises(SubmitRefused) as refused:
        await pool.submit(PDU)
    assert refused.value.command_status == S.ESME_RINVDSTADR and len(smsc.submits) == 1


async def test_throttling_slows_the_pace_and_sends_again(pool_on: Any) -> None:
    _, pool = await pool_on(statuses(S.ESME_RTHROTTLED, S.ESME_RMSGQFUL, 0), tps=100)
    assert await pool.submit(PDU) == "id3"
    assert pool.throttled == 2 and pool.pace.slowed and pool.pace.rate < 100
    assert pool.health()["error_rate"] == 0.0  # back-pressure is not an error


async def test_no_answer_is_sent_again_and_counted_as_a_possible_duplicate(pool_on: Any) -> None:
    _, pool = await pool_on(statuses(None, 0))
    started = time.monotonic()
    assert await pool.submit(PDU) == "id2"
    assert time.monotonic() - started >= SETTINGS.response_timeout_s
    assert pool.possible_duplicates == 1


async def test_a_refused_bind_is_retried_and_reported_down(pool_on: Any) -> None:
    smsc, pool = await pool_on(statuses(0), accept=False, connections=2)
    await asyncio.sleep(0.3)
    health = pool.health()
    assert health["status"] == "down" and {c["state"] for c in health["connections"]} <= {
        "down",
        "connecting",
    }
    assert all("ESME_RBINDFAIL" in (c["last_error"] or "") for c in health["connections"])
    with pytest.raises(NoBind):
        await pool.submit(PDU)
    smsc.accept = True
    assert await pool.wait_bound(3.0)
    assert await pool.submit(PDU) == "id1"


async def test_a_closing_pool_refuses_new_submits(pool_on: Any) -> None:
    smsc, pool = await pool_on(statuses(0))
    pool.refuse()
    with pytest.raises(NoBind):
        await pool.submit(PDU)
    assert smsc.submits == []


async def test_closing_does_not_wait_for_a_bind_that_hangs() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the bind and never answers it
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    carrier = Carrier(
        name="c", kind="direct", host=host, port=port, system_id="s", password="p", created_at=0, updated_at=0
    )
    settings = dataclasses.replace(SETTINGS, bind_timeout_s=30.0)
    pool = CarrierPool(carrier, settings=settings, on_deliver=_ignore)
    pool.start()
    await asyncio.sleep(0.2)
    assert pool.health()["connections"][0]["state"] == "connecting"
    started = time.monotonic()
    await pool.close(0.5)
    assert time.monotonic() - started < 2.0
    server.close()
    await server.wait_closed()
