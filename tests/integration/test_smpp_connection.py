"""SMPP over real loopback TCP: our client against our simulator and server, smpplib (an independent
implementation) against our simulator, our client against a raw SMSC speaking smpplib's PDUs, and
malformed bytes against our server. Every test is bounded and leaves no task or socket behind."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import smpplib.client
import smpplib.smpp

from appliance.domain.gsm import decode_ucs2
from appliance.domain.segmentation import parse_udh
from appliance.protocols.smpp import (
    BindTransceiver,
    BindTransceiverResp,
    CommandId,
    CommandStatus,
    DataSm,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    decode,
    encode,
)
from appliance.protocols.smpp.client import BindError, SmppClient, SubmitError
from appliance.protocols.smpp.connection import ConnectionLost, Reject, RequestTimeout, SessionConfig
from appliance.protocols.smpp.server import ServerSession, SmppServer
from appliance.protocols.smpp.session import BindType, SessionUsageError, State
from appliance.sim import SimOptions, SmscSimulator
from tests.conftest import free_port

S = CommandStatus
Address = tuple[str, int]
Handler = Callable[[ServerSession, Pdu], Awaitable[Pdu | None]]
RECEIPT = re.compile(
    rb"id:(\S+) sub:001 dlvrd:(\d{3}) submit date:\d{10} done date:\d{10} stat:(\w+) err:(\d{3}) text:(.*)"
)
pytestmark = pytest.mark.timeout(30)


def with_config(options: dict[str, Any]) -> dict[str, Any]:
    """Gather SessionConfig fields among keyword options into `config=`, so tests read flat."""
    names = {f.name for f in dataclasses.fields(SessionConfig)}
    config = {name: options.pop(name) for name in list(options) if name in names}
    return {**options, "config": SessionConfig(**config)}


async def wait_until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling the objects under test is the point
            await asyncio.sleep(0.01)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(3):
        head = await reader.readexactly(4)
        (length,) = struct.unpack(">I", head)
        return head + await reader.readexactly(length - 4)


def submit(text: bytes = b"hello", **fields: Any) -> SubmitSm:
    return SubmitSm(0, destination_addr="4512345678", short_message=text, **fields)


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    yield
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leftover, leftover


@pytest.fixture
async def sims() -> AsyncIterator[Callable[..., Awaitable[SmscSimulator]]]:
    started: list[SmscSimulator] = []

    async def start(**options: Any) -> SmscSimulator:
        sim = SmscSimulator(SimOptions(**options))
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.close(2.0)


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., Awaitable[SmppServer]]]:
    started: list[SmppServer] = []

    async def accept_all(system_id: str, password: str, bind_type: BindType, peer: str) -> bool:
        return True

    async def start(handler: Handler, **options: Any) -> SmppServer:
        server = SmppServer(authenticate=accept_all, handler=handler, **with_config(options))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close(2.0)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Awaitable[SmppClient]]]:
    made: list[SmppClient] = []

    async def connect(address: Address, **options: Any) -> SmppClient:
        options.setdefault("system_id", "acme")
        options.setdefault("password", "secret")
        client = SmppClient(*address, **with_config(options))
        made.append(client)
        await client.connect()
        return client

    yield connect
    for client in made:
        await client.close(2.0)


async def echo_ids(session: ServerSession, pdu: Pdu) -> Pdu:
    return SubmitSmResp(pdu.sequence_number, message_id=f"id-{pdu.sequence_number}")


# -- our client and our simulator ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind_type", "state"),
    [("transmitter", State.BOUND_TX), ("receiver", State.BOUND_RX), ("transceiver", State.BOUND_TRX)],
)
async def test_our_client_binds_to_the_simulator_as_each_type(
    sims: Any, clients: Any, bind_type: BindType, state: State
) -> None:
    sim = await sims()
    client = await clients(sim.address, bind_type=bind_type)
    assert client.state is state
    assert client.smsc_system_id == "hermes-sim"
    [session] = sim.server.sessions
    assert (session.system_id, session.bind_type, session.state) == ("acme", bind_type, state)
    if bind_type == "receiver":
        with pytest.raises(SessionUsageError):
            await client.submit("4512345678", "a receiver may not submit")
    await client.close()
    assert client.state is State.CLOSED
    assert await client.wait_closed() == "unbound"
    await wait_until(lambda: not sim.server.sessions)


async def test_a_wrong_password_is_a_bind_error_with_rbindfail(sims: Any) -> None:
    sim = await sims(system_id="acme", password="secret")
    for system_id, password in [("acme", "wrong"), ("other", "secret")]:
        client = SmppClient(*sim.address, system_id=system_id, password=password)
        with pytest.raises(BindError) as caught:
            await client.connect()
        assert caught.value.command_status == S.ESME_RBINDFAIL
        assert caught.value.status_name == "ESME_RBINDFAIL"
        assert client.state is State.CLOSED
    await wait_until(lambda: not sim.server.sessions)


async def test_no_listener_and_a_silent_listener_are_bind_errors() -> None:
    with pytest.raises(BindError, match="cannot connect") as caught:
        await SmppClient("127.0.0.1", free_port(), system_id="a", password="b").connect()
    assert caught.value.command_status is None

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        client = SmppClient(
            "127.0.0.1", port, system_id="a", password="b", config=SessionConfig(bind_timeout_s=0.3)
        )
        with pytest.raises(BindError, match="no response"):
            await client.connect()
        assert time.monotonic() - started < 2
    finally:
        server.close()
        await server.wait_closed()


async def test_submit_gets_a_message_id_and_a_delivery_receipt(sims: Any, clients: Any) -> None:
    receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
    sim = await sims(dlr_delay_ms=20)
    client = await clients(sim.address, on_deliver=receipts.put)
    [message_id] = await client.submit("4512345678", "Your OTP is 847291 - thanks", source="Hermes")
    async with asyncio.timeout(3):
        dlr = await receipts.get()
    assert isinstance(dlr, DeliverSm)
    assert dlr.esm_class == 0x04
    assert (dlr.source_addr, dlr.destination_addr) == ("4512345678", "Hermes")
    assert dlr.tlvs.receipted_message_id == message_id
    assert dlr.tlvs.message_state == 2
    match = RECEIPT.fullmatch(dlr.short_message)
    assert match is not None
    assert match.groups() == (message_id.encode(), b"001", b"DELIVRD", b"000", b"Your OTP is 847291 -")
    await wait_until(lambda: sim.counters.delivered == 1)
    assert sim.counters.submitted == 1


async def test_fail_rate_and_registered_delivery_shape_the_receipts(sims: Any, clients: Any) -> None:
    receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
    sim = await sims(dlr_delay_ms=10, fail_rate=1.0)
    client = await clients(sim.address, on_deliver=receipts.put)
    await client.submit("4512345678", "no receipt wanted", registered_delivery=0)
    [failed_id] = await client.submit("4512345678", "receipt on failure", registered_delivery=2)
    async with asyncio.timeout(3):
        dlr = await receipts.get()
    assert isinstance(dlr, DeliverSm)
    match = RECEIPT.fullmatch(dlr.short_message)
    assert match is not None
    assert match.groups()[:4] == (failed_id.encode(), b"000", b"UNDELIV", b"001")
    assert dlr.tlvs.message_state == 5
    await wait_until(lambda: sim.counters.failed == 1)
    await asyncio.sleep(0.1)
    assert receipts.empty()
    assert sim.pending_receipts == 0


async def test_a_receipt_waits_for_a_receiver_bind_of_the_same_system_id(sims: Any, clients: Any) -> None:
    receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
    sim = await sims(dlr_delay_ms=0)
    sender = await clients(sim.address, bind_type="transmitter")
    [message_id] = await sender.submit("4512345678", "parked")
    await wait_until(lambda: sim.pending_receipts == 1)
    await asyncio.sleep(0.05)
    assert sim.pending_receipts == 1
    await clients(sim.address, bind_type="receiver", on_deliver=receipts.put)
    async with asyncio.timeout(3):
        dlr = await receipts.get()
    assert dlr.tlvs.receipted_message_id == message_id


async def test_throttling_is_answered_with_rthrottled(sims: Any, clients: Any) -> None:
    sim = await sims(throttle_tps=5)
    client = await clients(sim.address, window=50)
    results = await asyncio.gather(
        *(client.submit("4512345678", f"m{i}", registered_delivery=0) for i in range(20)),
        return_exceptions=True,
    )
    throttled = [r for r in results if isinstance(r, SubmitError)]
    assert all(e.status_name == "ESME_RTHROTTLED" for e in throttled)
    assert 5 <= 20 - len(throttled) <= 7
    assert sim.counters.throttled == len(throttled)


async def test_reject_rate_answers_rsubmitfail(sims: Any, clients: Any) -> None:
    sim = await sims(reject_rate=1.0)
    client = await clients(sim.address)
    with pytest.raises(SubmitError) as caught:
        await client.submit("4512345678", "refused")
    assert caught.value.command_status == S.ESME_RSUBMITFAIL
    assert sim.counters.rejected == 1


async def test_drop_after_n_submits_the_client_sees_the_loss_and_can_rebind(sims: Any, clients: Any) -> None:
    receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
    sim = await sims(drop_after=3, dlr_delay_ms=200)
    client = await clients(sim.address)
    ids = [(await client.submit("4512345678", f"m{i}"))[0] for i in range(3)]
    async with asyncio.timeout(3):
        assert await client.wait_closed() == "the peer closed the connection"
    with pytest.raises(ConnectionLost):
        await client.submit("4512345678", "after the drop")
    again = await clients(sim.address, on_deliver=receipts.put)
    got: set[str | None] = set()
    async with asyncio.timeout(3):
        while len(got) < 3:  # the receipts of the dropped session come on the new bind
            got.add((await receipts.get()).tlvs.receipted_message_id)
    assert got == set(ids)
    assert again.is_bound


async def test_a_three_part_ucs2_message_is_sent_with_a_udh(servers: Any, clients: Any) -> None:
    captured: list[SubmitSm] = []

    async def capture(session: ServerSession, pdu: Pdu) -> Pdu:
        assert isinstance(pdu, SubmitSm)
        captured.append(pdu)
        return SubmitSmResp(pdu.sequence_number, message_id=f"m{len(captured)}")

    server = await servers(capture)
    client = await clients(server.address)
    text = "Привет, мир! Ваш код: 847291. " * 5
    assert await client.submit("4512345678", text) == ["m1", "m2", "m3"]
    payloads = []
    references = set()
    for seq, pdu in enumerate(captured, 1):
        assert pdu.data_coding == 0x08
        assert pdu.esm_class & 0x40
        udh, payload = parse_udh(pdu.short_message)
        assert udh.concat is not None
        assert (udh.concat.total, udh.concat.seq) == (3, seq)
        references.add(udh.concat.reference)
        payloads.append(payload)
    assert len(references) == 1
    assert decode_ucs2(b"".join(payloads)) == text

    captured.clear()
    await client.submit("4512345678", text, use_sar=True)
    assert [(p.tlvs.sar_total_segments, p.tlvs.sar_segment_seqnum) for p in captured] == [
        (3, 1),
        (3, 2),
        (3, 3),
    ]
    assert not any(p.esm_class & 0x40 for p in captured)
    assert len({p.tlvs.sar_msg_ref_num for p in captured}) == 1


async def test_a_refused_part_names_itself_and_the_accepted_ones(servers: Any, clients: Any) -> None:
    async def refuse_second(session: ServerSession, pdu: Pdu) -> Pdu:
        assert isinstance(pdu, SubmitSm)
        udh, _ = parse_udh(pdu.short_message)
        assert udh.concat is not None
        if udh.concat.seq == 2:
            raise Reject(S.ESME_RMSGQFUL)
        return SubmitSmResp(pdu.sequence_number, message_id=f"part{udh.concat.seq}")

    server = await servers(refuse_second)
    client = await clients(server.address)
    with pytest.raises(SubmitError) as caught:
        await client.submit("4512345678", "x" * 400)
    assert (caught.value.part, caught.value.accepted) == (2, ("part1", "part3"))
    assert caught.value.status_name == "ESME_RMSGQFUL"


# -- windows, ordering, timeouts and errors --------------------------------------------------------


async def test_the_window_holds_back_requests_until_a_slow_server_answers(servers: Any, clients: Any) -> None:
    release = asyncio.Event()
    active = peak = 0

    async def slow(session: ServerSession, pdu: Pdu) -> Pdu:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1
        return SubmitSmResp(pdu.sequence_number, message_id=f"id-{pdu.sequence_number}")

    server = await servers(slow)
    client = await clients(server.address, window=3)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(client.submit_sm(submit())) for _ in range(10)]
        await wait_until(lambda: active == 3)
        await asyncio.sleep(0.1)
        assert peak == 3
        assert client.connection.session.in_flight == 3
        release.set()
    assert len({t.result() for t in tasks}) == 10
    assert peak == 3


async def test_timeouts_say_whether_the_request_went_out(servers: Any, clients: Any) -> None:
    never = asyncio.Event()

    async def mute(session: ServerSession, pdu: Pdu) -> Pdu:
        await never.wait()
        return SubmitSmResp(pdu.sequence_number, message_id="late")

    server = await servers(mute)
    client = await clients(server.address, window=1)
    first = asyncio.create_task(client.submit_sm(submit(), timeout_s=0.3))
    await asyncio.sleep(0.05)
    with pytest.raises(RequestTimeout) as waiting:
        await client.submit_sm(submit(), timeout_s=0.1)
    assert waiting.value.sent is False
    with pytest.raises(RequestTimeout) as answered:
        await first
    assert answered.value.sent is True
    assert client.connection.session.in_flight == 0
    never.set()  # let the server's handler finish, so the unbind is not held up by it


async def test_responses_leave_in_order_of_completion(servers: Any, clients: Any) -> None:
    async def variable(session: ServerSession, pdu: Pdu) -> Pdu:
        assert isinstance(pdu, SubmitSm)
        await asyncio.sleep(0.3 if pdu.short_message == b"slow" else 0.0)
        return SubmitSmResp(pdu.sequence_number, message_id=pdu.short_message.decode())

    server = await servers(variable)
    client = await clients(server.address)
    finished: list[str] = []

    async def one(text: bytes) -> None:
        finished.append(await client.submit_sm(submit(text)))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(one(b"slow"))
        await asyncio.sleep(0.05)
        tg.create_task(one(b"fast"))
    assert finished == ["fast", "slow"]


async def test_handler_errors_become_command_statuses(servers: Any, clients: Any) -> None:
    async def picky(session: ServerSession, pdu: Pdu) -> Pdu:
        assert isinstance(pdu, SubmitSm)
        if pdu.short_message == b"bad address":
            raise Reject(S.ESME_RINVDSTADR)
        raise ValueError("a bug in the handler")

    server = await servers(picky)
    client = await clients(server.address)
    with pytest.raises(SubmitError) as refused:
        await client.submit_sm(submit(b"bad address"))
    assert refused.value.status_name == "ESME_RINVDSTADR"
    with pytest.raises(SubmitError) as crashed:
        await client.submit_sm(submit(b"boom"))
    assert crashed.value.status_name == "ESME_RSYSERR"
    assert client.is_bound


async def test_a_lost_connection_fails_pending_requests(servers: Any, clients: Any) -> None:
    never = asyncio.Event()

    async def mute(session: ServerSession, pdu: Pdu) -> Pdu:
        await never.wait()
        raise AssertionError

    server = await servers(mute)
    client = await clients(server.address)
    pending = asyncio.create_task(client.submit_sm(submit(), timeout_s=10))
    await wait_until(lambda: client.connection.session.in_flight == 1)
    server.sessions[0].abort("test drops the line")
    with pytest.raises(ConnectionLost):
        await pending
    assert await client.wait_closed() == "the peer closed the connection"


async def test_deliver_honours_the_receivers_window(servers: Any, clients: Any) -> None:
    release = asyncio.Event()
    active = peak = 0

    async def slow_receiver(pdu: DeliverSm | DataSm) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1

    server = await servers(echo_ids, window=2)
    await clients(server.address, bind_type="receiver", on_deliver=slow_receiver)
    await clients(server.address, bind_type="transmitter", system_id="other")
    [receiver] = server.receivers("acme")
    assert server.receivers("other") == []
    transmitter = next(s for s in server.sessions if s.system_id == "other")
    with pytest.raises(SessionUsageError):
        await transmitter.deliver(DeliverSm(0))
    mo = DeliverSm(0, source_addr="4512345678", destination_addr="1234", short_message=b"MO text")
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(receiver.deliver(mo)) for _ in range(6)]
        await wait_until(lambda: active == 2)
        await asyncio.sleep(0.1)
        assert receiver.connection.session.in_flight == 2
        release.set()
    assert peak == 2
    assert [t.result().command_status for t in tasks] == [0] * 6


# -- keep-alive, dead peers, idle and shutdown -----------------------------------------------------


async def test_enquire_link_keeps_an_idle_session_alive_both_ways(servers: Any, clients: Any) -> None:
    server = await servers(echo_ids, idle_timeout_s=0.4, enquire_link_s=None)
    kept = await clients(server.address, enquire_link_s=0.1)
    quiet = await clients(server.address, enquire_link_s=None)
    async with asyncio.timeout(3):
        assert await quiet.wait_closed() == "the peer closed the connection"
    await asyncio.sleep(0.6)
    assert kept.is_bound

    probing = await servers(echo_ids, enquire_link_s=0.1, enquire_link_timeout_s=0.3)
    answering = await clients(probing.address, enquire_link_s=None)
    await asyncio.sleep(0.8)  # unanswered probes would have closed it after 0.4 s
    assert answering.is_bound
    assert probing.sessions[0].is_bound


async def _bind_then(action: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A raw SMSC: answers the bind with our codec, then goes silent or sends a broken length."""
    bind = decode(await read_frame(reader))
    assert isinstance(bind, BindTransceiver)
    writer.write(encode(BindTransceiverResp(bind.sequence_number, system_id="raw")))
    if action == "garbage":
        writer.write(struct.pack(">IIII", 4, 0x15, 0, 99))
    await reader.read()  # swallow everything until the client hangs up
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize(
    ("action", "reason"), [("silent", "no enquire_link_resp"), ("garbage", "framing lost")]
)
async def test_our_client_drops_a_dead_or_garbled_peer(clients: Any, action: str, reason: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _bind_then(action, reader, writer)

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        client = await clients(
            server.sockets[0].getsockname()[:2], enquire_link_s=0.1, enquire_link_timeout_s=0.2
        )
        pending = asyncio.create_task(client.submit_sm(submit(), timeout_s=30))
        async with asyncio.timeout(3):
            assert (await client.wait_closed()).startswith(reason)
        with pytest.raises(ConnectionLost):
            await pending
    finally:
        server.close()
        await server.wait_closed()


async def test_server_close_unbinds_every_session_in_bounded_time(servers: Any, clients: Any) -> None:
    server = await servers(echo_ids)
    first = await clients(server.address)
    second = await clients(server.address, bind_type="receiver")
    started = time.monotonic()
    await server.close(1.0)
    assert time.monotonic() - started < 2
    assert await first.wait_closed() == "the peer unbound"
    assert await second.wait_closed() == "the peer unbound"
    assert server.sessions == []


# -- malformed and illegal input against our server ------------------------------------------------


def _header(length: int, command_id: int, seq: int = 7) -> bytes:
    return struct.pack(">IIII", length, command_id, 0, seq)


@pytest.mark.parametrize(
    ("frame", "status", "closes"),
    [
        (_header(8, CommandId.ENQUIRE_LINK), S.ESME_RINVCMDLEN, True),
        (_header(0x7FFFFFFF, CommandId.SUBMIT_SM), S.ESME_RINVCMDLEN, True),
        (_header(19, CommandId.SUBMIT_SM) + b"abc", S.ESME_RINVCMDLEN, False),
        (_header(24, CommandId.SUBMIT_SM) + bytes(8), S.ESME_RINVCMDLEN, False),
        (_header(16, 0x00000099), S.ESME_RINVCMDID, False),
    ],
    ids=["length-8", "length-2GiB", "no-nul", "truncated-body", "unknown-command"],
)
async def test_malformed_input_is_nacked_while_another_session_works(
    sims: Any, clients: Any, frame: bytes, status: int, closes: bool
) -> None:
    sim = await sims()
    good = await clients(sim.address)
    reader, writer = await asyncio.open_connection(*sim.address)
    try:
        writer.write(frame)
        assert decode(await read_frame(reader)) == GenericNack(7, status)
        if closes:
            async with asyncio.timeout(3):
                assert await reader.read() == b""
        else:
            writer.write(encode(EnquireLink(8)))
            assert decode(await read_frame(reader)) == EnquireLinkResp(8)
        assert len(await good.submit("4512345678", "still working")) == 1
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_submit_before_bind_is_answered_with_rinvbndsts(sims: Any) -> None:
    sim = await sims()
    reader, writer = await asyncio.open_connection(*sim.address)
    try:
        writer.write(encode(SubmitSm(5, destination_addr="4512345678", short_message=b"too early")))
        assert decode(await read_frame(reader)) == SubmitSmResp(5, S.ESME_RINVBNDSTS)
        writer.write(encode(BindTransceiver(6, system_id="acme", password="x")))
        resp = decode(await read_frame(reader))
        assert isinstance(resp, BindTransceiverResp)
        assert resp.command_status == 0
        writer.write(encode(BindTransceiver(7, system_id="acme", password="x")))
        assert decode(await read_frame(reader)) == BindTransceiverResp(7, S.ESME_RALYBND)
    finally:
        writer.close()
        await writer.wait_closed()


# -- against smpplib, an independent implementation ------------------------------------------------


def _smpplib_session(host: str, port: int) -> tuple[list[str], list[Any]]:
    """Blocking smpplib client: bind_transceiver, submit_sm with a receipt, read until the DLR."""
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    sent: list[str] = []
    received: list[Any] = []
    client.set_message_sent_handler(lambda pdu, **_: sent.append(pdu.message_id.decode()))
    client.set_message_received_handler(lambda pdu, **_: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="acme", password="secret")
        client.send_message(
            source_addr_ton=5,
            source_addr="Hermes",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="4512345678",
            short_message=b"Hello from smpplib",
            registered_delivery=1,
        )
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return sent, received


async def test_smpplib_binds_submits_and_gets_the_receipt_from_our_simulator(sims: Any) -> None:
    sim = await sims(system_id="acme", password="secret", dlr_delay_ms=20)
    async with asyncio.timeout(15):
        sent, received = await asyncio.to_thread(_smpplib_session, *sim.address)
    [message_id] = sent
    [dlr] = received
    assert dlr.command == "deliver_sm"
    assert dlr.esm_class == 0x04
    assert dlr.receipted_message_id.decode() == message_id
    assert dlr.message_state == 2
    match = RECEIPT.fullmatch(dlr.short_message)
    assert match is not None
    assert match.group(3, 5) == (b"DELIVRD", b"Hello from smpplib")
    await wait_until(lambda: sim.counters.delivered == 1 and not sim.server.sessions)


def _smpplib_wrong_password(host: str, port: int) -> int:
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transmitter(system_id="acme", password="nope")
    except smpplib.exceptions.PDUError as exc:
        return int(exc.args[1])
    finally:
        client.disconnect()
    return 0


async def test_smpplib_sees_our_bind_refusal(sims: Any) -> None:
    sim = await sims(system_id="acme", password="secret")
    async with asyncio.timeout(10):
        assert await asyncio.to_thread(_smpplib_wrong_password, *sim.address) == S.ESME_RBINDFAIL
    await wait_until(lambda: not sim.server.sessions)


class _Sequence:
    """smpplib draws sequence numbers from its client object."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


async def test_our_client_against_a_raw_smsc_built_from_smpplib_pdus(clients: Any) -> None:
    seen: list[Any] = []
    numbers = _Sequence()

    def reply(command: str, sequence: int, **fields: Any) -> bytes:
        pdu = smpplib.smpp.make_pdu(command, client=numbers, **fields)
        pdu.sequence = sequence
        generated: bytes = pdu.generate()
        return generated

    async def smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except asyncio.IncompleteReadError:
                    return
                pdu = smpplib.smpp.parse_pdu(frame, client=numbers, allow_unknown_opt_params=True)
                seen.append(pdu)
                if pdu.command == "bind_transceiver":
                    writer.write(reply("bind_transceiver_resp", pdu.sequence, system_id="rawsmsc"))
                elif pdu.command == "submit_sm":
                    writer.write(reply("submit_sm_resp", pdu.sequence, message_id="RAW-1"))
                    text = b"id:RAW-1 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201"
                    text += b" stat:DELIVRD err:000 text:Hello"
                    writer.write(
                        reply(
                            "deliver_sm",
                            4242,
                            service_type="",
                            source_addr_ton=1,
                            source_addr_npi=1,
                            source_addr="4512345678",
                            dest_addr_ton=0,
                            dest_addr_npi=0,
                            destination_addr="Hermes",
                            esm_class=4,
                            protocol_id=0,
                            priority_flag=0,
                            schedule_delivery_time="",
                            validity_period="",
                            registered_delivery=0,
                            replace_if_present_flag=0,
                            data_coding=0,
                            sm_default_msg_id=0,
                            short_message=text,
                            receipted_message_id="RAW-1",
                            message_state=2,
                        )
                    )
                elif pdu.command == "unbind":
                    writer.write(reply("unbind_resp", pdu.sequence))
        finally:
            writer.close()
            await writer.wait_closed()

    receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
    server = await asyncio.start_server(smsc, "127.0.0.1", 0)
    try:
        client = await clients(server.sockets[0].getsockname()[:2], on_deliver=receipts.put)
        assert client.smsc_system_id == "rawsmsc"
        assert await client.submit("4512345678", "Hello", source="Hermes") == ["RAW-1"]
        async with asyncio.timeout(3):
            dlr = await receipts.get()
        assert (dlr.esm_class, dlr.tlvs.receipted_message_id, dlr.tlvs.message_state) == (4, "RAW-1", 2)
        await wait_until(lambda: any(p.command == "deliver_sm_resp" for p in seen))
        await client.close()
        assert await client.wait_closed() == "unbound"
    finally:
        server.close()
        await server.wait_closed()
    bind, sm, dlr_resp, unbind = seen
    assert (bind.command, bind.system_id, bind.password, bind.interface_version) == (
        "bind_transceiver",
        b"acme",
        b"secret",
        0x34,
    )
    assert (sm.command, sm.destination_addr, sm.source_addr, sm.short_message) == (
        "submit_sm",
        b"4512345678",
        b"Hermes",
        b"Hello",
    )
    assert sm.registered_delivery == 1
    assert (dlr_resp.sequence, dlr_resp.status) == (4242, 0)
    assert unbind.command == "unbind"


# -- the simulator as a process --------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_simulator_command_prints_its_address_and_stops_on_a_signal(
    clients: Any, signum: int
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance.sim.smsc",
        *("--host", "127.0.0.1", "--port", "0", "--dlr-delay-ms", "0"),
        *("--system-id", "acme", "--password", "secret"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            line = await process.stdout.readline()
        host, port = json.loads(line)["listening"].rsplit(":", 1)
        receipts: asyncio.Queue[DeliverSm | DataSm] = asyncio.Queue()
        client = await clients((host, int(port)), on_deliver=receipts.put)
        [message_id] = await client.submit("4512345678", "from a separate process")
        async with asyncio.timeout(3):
            assert (await receipts.get()).tlvs.receipted_message_id == message_id
        process.send_signal(signum)
        async with asyncio.timeout(10):
            rest, _ = await process.communicate()
            assert await client.wait_closed() == "the peer unbound"
        assert process.returncode == 0
        assert rest == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
