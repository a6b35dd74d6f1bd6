"""The inbound SMPP server over real loopback TCP, driven by smpplib (an independent implementation):
binds and their refusals, submit_sm through the real pipeline onto a real nats-server, concatenated
UCS-2 reassembled, receipts from contract events on the transceiver, on a separate receiver, and
held while nobody is bound, malformed PDUs, and throttling."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from appliance.daemons.gateway.smpp_server import SmppGateway, start_smpp
from appliance.domain.gsm import encode_ucs2
from appliance.domain.message import Message
from tests.conftest import free_port
from tests.integration.gateway_harness import Harness, gateway_harness

pytestmark = pytest.mark.timeout(60)
ESME_RBINDFAIL = 0x0D
ESME_RALYBND = 0x05
ESME_RTHROTTLED = 0x58
ESME_RINVDSTADR = 0x0B
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03


class Esme:
    """A blocking smpplib client, driven from a worker thread (`await esme.call(...)`)."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        self.responses: list[Any] = []
        self.receipts: list[Any] = []
        self.errors: list[Any] = []
        self.client.set_message_sent_handler(lambda pdu, **_: self.responses.append(pdu))
        self.client.set_message_received_handler(lambda pdu, **_: self.receipts.append(pdu))
        self.client.set_error_pdu_handler(self._error)

    def _error(self, pdu: Any) -> None:
        self.errors.append(pdu)
        if pdu.command == "submit_sm_resp":
            self.responses.append(pdu)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def bind(self, kind: str, system_id: str, password: str) -> int:
        """Connect and bind; the bind_resp status (0 = bound)."""
        self.client.connect()
        try:
            getattr(self.client, f"bind_{kind}")(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as exc:
            return int(exc.args[1])
        return 0

    def submit(self, **fields: Any) -> Any:
        """One submit_sm; returns its submit_sm_resp (receipts arriving meanwhile are answered)."""
        before = len(self.responses)
        fields.setdefault("source_addr_ton", 1)
        fields.setdefault("source_addr", "4523456780")
        fields.setdefault("dest_addr_ton", 1)
        fields.setdefault("dest_addr_npi", 1)
        fields.setdefault("destination_addr", "4523456789")
        self.client.send_message(**fields)
        deadline = time.monotonic() + 10
        while len(self.responses) == before and time.monotonic() < deadline:
            self.client.read_once()
        return self.responses[before]

    def send_only(self, **fields: Any) -> None:
        fields.setdefault("source_addr_ton", 1)
        fields.setdefault("source_addr", "4523456780")
        fields.setdefault("dest_addr_ton", 1)
        fields.setdefault("dest_addr_npi", 1)
        fields.setdefault("destination_addr", "4523456789")
        self.client.send_message(**fields)

    def read_until(self, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            try:
                self.client.read_once()
            except TimeoutError:
                continue

    def read_one(self) -> Any:
        return self.client.read_pdu()

    def close(self) -> None:
        try:
            if self.client.state in (
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX,
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_RX,
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX,
            ):
                self.client.unbind()
        except (smpplib.exceptions.PDUError, OSError, smpplib.exceptions.ConnectionError):
            pass
        self.client.disconnect()


class Stand:
    def __init__(self, harness: Harness, smpp: SmppGateway, port: int) -> None:
        self.h = harness
        self.smpp = smpp
        self.port = port
        self.esmes: list[Esme] = []

    async def tenant(self, name: str, system_id: str, password: str = "secret", **edits: Any) -> str:
        tenant_id, _ = await self.h.tenant(name, **edits)
        await self.h.admin.add_smpp("test", tenant_id, system_id, password)
        return tenant_id

    async def esme(self, kind: str, system_id: str, password: str = "secret") -> tuple[Esme, int]:
        esme = Esme(self.port)
        self.esmes.append(esme)
        status = await esme.call(esme.bind, kind, system_id, password)
        return esme, status

    async def accepted(self) -> list[Message]:
        """Every message on MESSAGES, oldest first."""
        js = self.h.nats.jetstream()
        info = await js.stream_info("MESSAGES")
        out: list[Message] = []
        if not info.state.messages:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg("MESSAGES", seq)
            assert raw.data is not None
            out.append(msgspec.json.decode(raw.data, type=Message))
        return out

    async def final_event(self, message: Message, kind: str = "delivered", **extra: Any) -> None:
        """Publish the cascade's final event as the contract describes it."""
        target = message.channels[0]
        data = {
            "origin": message.origin,
            "metadata": message.metadata,
            "channel": target.channel,
            "to": target.to,
            "sender": message.sender,
            "created_at": message.created_at,
            "attempt": 1,
            **extra,
        }
        body = {
            "kind": kind,
            "id": f"{message.id}:{kind}",
            "message_id": message.id,
            "tenant_id": message.tenant_id,
            "at": time.time(),
            "state": "1_delivered" if kind == "delivered" else "all_failed",
            "data": data,
        }
        await self.h.nats.jetstream().publish(
            f"evt.{message.tenant_id}.{kind}",
            msgspec.json.encode(body),
            headers={"Nats-Msg-Id": body["id"]},
        )


@pytest.fixture
async def stand(tmp_path: Path, nats_server: str) -> AsyncIterator[Stand]:
    port = free_port()
    toml = (
        f'[gateway.smpp]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
        "bind_failure_delay_s = 0.2\nbind_failure_max_delay_s = 1.0\nmax_binds_per_tenant = 3\n"
    )
    async with gateway_harness(tmp_path, nats_server, toml) as harness:
        gw = harness.gateway
        smpp = await start_smpp(
            harness.config, ingress=gw.ingress, registry=gw.registry, store=harness.store, nats=harness.nats
        )
        gw.smpp = smpp
        s = Stand(harness, smpp, port)
        try:
            yield s
        finally:
            for esme in s.esmes:
                await asyncio.to_thread(esme.close)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling the objects under test is the point
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["transmitter", "receiver", "transceiver"])
async def test_each_bind_type_binds_and_is_listed(stand: Stand, kind: str) -> None:
    tenant_id = await stand.tenant("acme", "acme01")
    _, status = await stand.esme(kind, "acme01")
    assert status == 0
    [listed] = stand.smpp.sessions()
    assert listed["tenant_id"] == tenant_id
    assert listed["system_id"] == "acme01"
    assert listed["bind_type"] == kind
    assert listed["address"].startswith("127.0.0.1:")


async def test_wrong_password_is_bindfail_and_slowed_down(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    timings = []
    for _ in range(3):
        started = time.monotonic()
        _, status = await stand.esme("transceiver", "acme01", "wrong")
        timings.append(time.monotonic() - started)
        assert status == ESME_RBINDFAIL
    assert timings[2] >= 0.7  # 0.2, 0.4, 0.8 s: each failure from this address waits longer
    _, unknown = await stand.esme("transmitter", "nobody", "secret")
    assert unknown == ESME_RBINDFAIL
    _, ok = await stand.esme("transmitter", "acme01", "secret")
    assert ok == 0
    assert stand.smpp.guard.failures("127.0.0.1", time.monotonic()) == 0


async def test_suspended_tenant_cannot_bind(stand: Stand) -> None:
    tenant_id = await stand.tenant("acme", "acme01")
    await stand.h.admin.set_status("test", tenant_id, "suspended")
    stand.h.gateway.apply_change("tenant", tenant_id)
    _, status = await stand.esme("transceiver", "acme01")
    assert status == ESME_RBINDFAIL


async def test_a_tenant_holds_at_most_max_binds(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    for _ in range(3):
        assert (await stand.esme("transmitter", "acme01"))[1] == 0
    assert (await stand.esme("transmitter", "acme01"))[1] == ESME_RALYBND


async def test_submit_sm_goes_through_the_pipeline_and_answers_our_id(stand: Stand) -> None:
    tenant_id = await stand.tenant("acme", "acme01")
    esme, _ = await stand.esme("transmitter", "acme01")
    resp = await esme.call(
        esme.submit, short_message="Hi {there} €5".encode("latin-1", "replace"), data_coding=3
    )
    assert resp.status == 0
    [message] = await stand.accepted()
    assert resp.message_id.decode() == message.id
    assert message.origin == "smpp"
    assert message.tenant_id == tenant_id
    assert message.channels[0].to == "+4523456789"
    assert message.sender == "+4523456780"
    assert message.metadata["smpp.system_id"] == "acme01"
    assert message.metadata["smpp.source"] == "1/0/4523456780"
    # GSM 7-bit (data_coding 0) with the extension table: ESC 0x65 is the euro sign
    resp2 = await esme.call(esme.submit, short_message=b"Pay \x1be5 \x1b(ok\x1b)", data_coding=0)
    assert resp2.status == 0
    assert (await stand.accepted())[1].body == "Pay €5 {ok}"
    listed = stand.smpp.sessions()[0]
    assert listed["submitted"] == 2


async def test_bad_destination_is_rinvdstadr(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    esme, _ = await stand.esme("transmitter", "acme01")
    resp = await esme.call(esme.submit, short_message=b"hi", destination_addr="12", dest_addr_ton=2)
    assert resp.status == ESME_RINVDSTADR
    assert await stand.accepted() == []


async def test_long_ucs2_message_in_three_parts_becomes_one_message(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    esme, _ = await stand.esme("transceiver", "acme01")
    text = "Привет, мир! " * 15  # 195 UCS-2 characters: three parts of up to 67
    data = encode_ucs2(text)
    chunks = [data[i : i + 134] for i in range(0, len(data), 134)]
    assert len(chunks) == 3
    ids = []
    for seq, chunk in enumerate(chunks, 1):
        udh = bytes([5, 0, 3, 0x2A, 3, seq])
        resp = await esme.call(esme.submit, short_message=udh + chunk, data_coding=8, esm_class=0x40)
        assert resp.status == 0
        ids.append(resp.message_id.decode())
    [message] = await stand.accepted()
    assert message.body == text
    assert message.id == ids[-1]
    assert message.metadata["smpp.part_ids"] == ",".join(ids[:2])
    assert message.sms_encoding == "ucs2"
    assert message.sms_parts == 3


async def test_sar_tlv_parts_are_reassembled(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    esme, _ = await stand.esme("transmitter", "acme01")
    for seq, chunk in ((2, b"world"), (1, b"hello ")):
        resp = await esme.call(
            esme.submit,
            short_message=chunk,
            sar_msg_ref_num=7,
            sar_total_segments=2,
            sar_segment_seqnum=seq,
        )
        assert resp.status == 0
    [message] = await stand.accepted()
    assert message.body == "hello world"


async def test_receipt_on_the_transceiver_and_on_a_separate_receiver(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    await stand.h.admin.add_smpp("test", "acme", "acme02", "secret")
    trx, _ = await stand.esme("transceiver", "acme01")
    resp = await trx.call(trx.submit, short_message=b"Your code is 1234", registered_delivery=1)
    [message] = await stand.accepted()
    await stand.final_event(message, "delivered", stat="DELIVRD", err="000")
    await trx.call(trx.read_until, lambda: bool(trx.receipts))
    [dlr] = trx.receipts
    assert dlr.esm_class == 0x04
    assert dlr.receipted_message_id.decode() == resp.message_id.decode()
    assert dlr.message_state == 2
    text = dlr.short_message.decode()
    assert text.startswith(f"id:{message.id} sub:001 dlvrd:001 submit date:")
    assert " stat:DELIVRD err:000 text:Your code is 1234" in text
    assert dlr.source_addr.decode() == "4523456789"
    assert dlr.destination_addr.decode() == "4523456780"
    # a transmitter submits, a receiver of another system_id of the same tenant gets the receipt
    tx, _ = await stand.esme("transmitter", "acme02")
    rx, _ = await stand.esme("receiver", "acme01")
    await trx.call(trx.close)
    await tx.call(tx.submit, short_message=b"second", registered_delivery=1)
    second = (await stand.accepted())[1]
    await stand.final_event(second, "dead_lettered", stat="UNDELIV", err="34")
    await rx.call(rx.read_until, lambda: bool(rx.receipts))
    [failed] = rx.receipts
    assert failed.message_state == 5
    assert b"stat:UNDELIV err:034" in failed.short_message
    await wait_for(lambda: stand.smpp.sessions()[-1]["receipts_sent"] == 1)


async def test_receipts_wait_while_nobody_can_receive_and_come_on_bind(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    tx, _ = await stand.esme("transmitter", "acme01")
    for i in range(3):
        await tx.call(tx.submit, short_message=f"m{i}".encode(), registered_delivery=1)
    await tx.call(tx.submit, short_message=b"no receipt wanted", registered_delivery=0)
    messages = await stand.accepted()
    for message in messages:
        await stand.final_event(message, "delivered")
    await asyncio.sleep(0.3)
    assert not tx.receipts  # a transmitter gets none
    rx, _ = await stand.esme("receiver", "acme01")
    await rx.call(rx.read_until, lambda: len(rx.receipts) >= 3)
    await asyncio.sleep(0.3)
    await rx.call(rx.client.poll)
    ids = sorted(r.receipted_message_id.decode() for r in rx.receipts)
    assert ids == sorted(m.id for m in messages[:3])


async def test_throttling_is_rthrottled(stand: Stand) -> None:
    tenant_id = await stand.tenant("acme", "acme01", rate_limit=1, burst=1)
    esme, _ = await stand.esme("transmitter", "acme01")
    statuses = [(await esme.call(esme.submit, short_message=b"x")).status for _ in range(3)]
    assert statuses[0] == 0
    assert ESME_RTHROTTLED in statuses[1:]
    assert len(await stand.accepted()) == statuses.count(0)
    assert tenant_id


def _raw_pdu(command_id: int, seq: int, body: bytes = b"", length: int | None = None) -> bytes:
    total = 16 + len(body) if length is None else length
    return struct.pack(">IIII", total, command_id, 0, seq) + body


async def _read_pdu(reader: asyncio.StreamReader) -> tuple[int, int, int]:
    async with asyncio.timeout(5):
        head = await reader.readexactly(16)
    length, command_id, status, seq = struct.unpack(">IIII", head)
    await reader.readexactly(length - 16)
    return command_id, status, seq


_BIND_RESP = {"bind_transmitter": 0x80000002, "bind_transceiver": 0x80000009}


async def _raw_bind(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str = "bind_transmitter"
) -> smpplib.client.Client:
    """Bind acme01 on a raw stream (PDUs built by smpplib, numbered by hand); returns the smpplib
    client the following PDUs are built with."""
    numbers = smpplib.client.Client("127.0.0.1", 0, allow_unknown_opt_params=True)
    bind = smpplib.smpp.make_pdu(command, client=numbers, system_id="acme01", password="secret")
    bind.sequence = 1
    writer.write(bind.generate())
    assert (await _read_pdu(reader))[:2] == (_BIND_RESP[command], 0)
    return numbers


def _message_pdu(numbers: smpplib.client.Client, command: str, sequence: int, **fields: Any) -> bytes:
    """A submit_sm or data_sm from +4523456780 to +4523456789, as bytes with its sequence number."""
    pdu = smpplib.smpp.make_pdu(
        command,
        client=numbers,
        source_addr_ton=1,
        source_addr="4523456780",
        dest_addr_ton=1,
        destination_addr="4523456789",
        **fields,
    )
    pdu.sequence = sequence
    return bytes(pdu.generate())


async def test_malformed_pdus_are_nacked_and_other_sessions_go_on(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    bystander, _ = await stand.esme("transmitter", "acme01")
    reader, writer = await asyncio.open_connection("127.0.0.1", stand.port)
    try:
        bind = smpplib.smpp.make_pdu(
            "bind_transmitter", client=bystander.client, system_id="acme01", password="secret"
        )
        bind.sequence = 1
        writer.write(bind.generate())
        assert (await _read_pdu(reader))[:2] == (0x80000002, 0)
        writer.write(_raw_pdu(0x00000666, 2))  # unknown command id
        assert await _read_pdu(reader) == (0x80000000, ESME_RINVCMDID, 2)
        writer.write(_raw_pdu(0x00000004, 3, b"\x00\x01"))  # a submit_sm whose body is truncated
        assert await _read_pdu(reader) == (0x80000000, ESME_RINVCMDLEN, 3)
        writer.write(_raw_pdu(0x00000015, 4))  # the session still answers enquire_link
        assert await _read_pdu(reader) == (0x80000015, 0, 4)
        writer.write(_raw_pdu(0x00000015, 5, length=8))  # a length below the header: framing is lost
        assert await _read_pdu(reader) == (0x80000000, ESME_RINVCMDLEN, 5)
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # ... so that session is closed
    finally:
        writer.close()
        await writer.wait_closed()
    resp = await bystander.call(bystander.submit, short_message=b"still here")
    assert resp.status == 0


async def test_answered_parts_survive_a_gateway_restart(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    esme, _ = await stand.esme("transmitter", "acme01")
    ids = []
    for seq, chunk in ((1, b"first "), (2, b"second ")):
        udh = bytes([5, 0, 3, 0x11, 3, seq])
        resp = await esme.call(esme.submit, short_message=udh + chunk, esm_class=0x40)
        assert resp.status == 0
        ids.append(resp.message_id.decode())
    await asyncio.to_thread(esme.close)
    await stand.smpp.close()  # the gateway goes away with two answered parts
    port = free_port()
    gw = stand.h.gateway
    config = msgspec.structs.replace(
        stand.h.config,
        gateway=msgspec.structs.replace(
            stand.h.config.gateway,
            smpp=msgspec.structs.replace(stand.h.config.gateway.smpp, listen=f"127.0.0.1:{port}"),
        ),
    )
    gw.smpp = stand.smpp = await start_smpp(
        config, ingress=gw.ingress, registry=gw.registry, store=stand.h.store, nats=stand.h.nats
    )
    stand.port = port
    again, _ = await stand.esme("transmitter", "acme01")
    resp = await again.call(
        again.submit, short_message=bytes([5, 0, 3, 0x11, 3, 3]) + b"third", esm_class=0x40
    )
    assert resp.status == 0
    [message] = await stand.accepted()
    assert message.body == "first second third"
    assert message.metadata["smpp.part_ids"] == ",".join(ids)


async def test_suspending_a_tenant_unbinds_its_clients(stand: Stand) -> None:
    tenant_id = await stand.tenant("acme", "acme01")
    await stand.esme("transceiver", "acme01")
    await wait_for(lambda: len(stand.smpp.sessions()) == 1)
    await stand.h.admin.set_status("test", tenant_id, "suspended")
    stand.h.gateway.apply_change("tenant", tenant_id)
    esme = stand.esmes[0]
    unbind = await esme.call(esme.read_one)
    assert unbind.command == "unbind"  # smpplib does not answer it, so the server closes after 2 s
    await wait_for(lambda: not stand.smpp.server.sessions, 10.0)


async def test_an_idle_bind_is_closed(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    section = msgspec.structs.replace(
        stand.h.config.gateway.smpp, listen=f"127.0.0.1:{free_port()}", idle_timeout_s=0.5, enquire_link_s=0.0
    )
    config = msgspec.structs.replace(
        stand.h.config, gateway=msgspec.structs.replace(stand.h.config.gateway, smpp=section)
    )
    gw = stand.h.gateway
    quiet = await start_smpp(
        config, ingress=gw.ingress, registry=gw.registry, store=stand.h.store, nats=stand.h.nats
    )
    try:
        reader, writer = await asyncio.open_connection(*quiet.server.address)
        try:
            bind = smpplib.smpp.make_pdu(
                "bind_transceiver",
                client=smpplib.client.Client("127.0.0.1", 0, allow_unknown_opt_params=True),
                system_id="acme01",
                password="secret",
            )
            bind.sequence = 1
            started = time.monotonic()  # the idle clock starts when the bind arrives, after this
            writer.write(bind.generate())
            assert (await _read_pdu(reader))[:2] == (0x80000009, 0)
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # nothing sent, not even enquire_link: closed
            assert time.monotonic() - started >= 0.5
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        await quiet.close()


async def test_tls_listener_binds_and_submits(stand: Stand, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    await stand.tenant("acme", "acme01")
    section = msgspec.structs.replace(
        stand.h.config.gateway.smpp,
        listen=f"127.0.0.1:{free_port()}",
        tls_listen=f"127.0.0.1:{free_port()}",
        tls_cert_file=str(cert),
        tls_key_file=str(key),
    )
    config = msgspec.structs.replace(
        stand.h.config, gateway=msgspec.structs.replace(stand.h.config.gateway, smpp=section)
    )
    gw = stand.h.gateway
    secure = await start_smpp(
        config, ingress=gw.ingress, registry=gw.registry, store=stand.h.store, nats=stand.h.nats
    )
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        host, port = section.tls_listen.split(":")
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        try:
            numbers = await _raw_bind(reader, writer)
            writer.write(_message_pdu(numbers, "submit_sm", 2, short_message=b"over TLS"))
            assert (await _read_pdu(reader))[:3] == (0x80000004, 0, 2)
            assert (await stand.accepted())[0].body == "over TLS"
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()
    finally:
        await secure.close()


async def test_data_sm_with_a_message_payload_is_accepted(stand: Stand) -> None:
    await stand.tenant("acme", "acme01")
    reader, writer = await asyncio.open_connection("127.0.0.1", stand.port)
    try:
        numbers = await _raw_bind(reader, writer)
        payload = encode_ucs2("Данные через data_sm")
        writer.write(_message_pdu(numbers, "data_sm", 2, data_coding=8, message_payload=payload))
        assert (await _read_pdu(reader))[:3] == (0x80000103, 0, 2)
        [message] = await stand.accepted()
        assert message.body == "Данные через data_sm"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_full_window_of_pipelined_submits_is_answered_once_each_after_it_is_durable(
    stand: Stand,
) -> None:
    await stand.tenant("acme", "acme01", rate_limit=0, burst=0)
    reader, writer = await asyncio.open_connection("127.0.0.1", stand.port)
    try:
        numbers = await _raw_bind(reader, writer, "bind_transceiver")
        burst = [
            _message_pdu(numbers, "submit_sm", seq, short_message=f"message {seq}".encode())
            for seq in range(2, 102)
        ]
        writer.write(b"".join(burst))  # the whole window in one write: handled as one batch or a few
        ids: dict[int, str] = {}
        for _ in range(100):
            async with asyncio.timeout(10):
                head = await reader.readexactly(16)
            length, command_id, status, seq = struct.unpack(">IIII", head)
            body = await reader.readexactly(length - 16)
            assert (command_id, status) == (0x80000004, 0)
            ids[seq] = body.rstrip(b"\x00").decode()
        assert sorted(ids) == list(range(2, 102))
        messages = {m.id: m for m in await stand.accepted()}
        assert set(ids.values()) == set(messages)  # every answered id is on MESSAGES, no other
        assert all(messages[ids[seq]].body == f"message {seq}" for seq in ids)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_whole_message_refused_after_its_parts_were_answered_gets_rejectd_receipts(
    stand: Stand,
) -> None:
    """Parts are answered before the message exists; when the whole is refused (here: a URL shortener
    split across parts, L7), every id already answered gets a REJECTD receipt, none is left hanging."""
    await stand.tenant("acme", "acme01")
    trx, _ = await stand.esme("transceiver", "acme01")
    first = await trx.call(
        trx.submit,
        short_message=bytes([5, 0, 3, 7, 2, 1]) + b"see bit",
        esm_class=0x40,
        registered_delivery=1,
    )
    assert first.status == 0
    last = await trx.call(
        trx.submit, short_message=bytes([5, 0, 3, 7, 2, 2]) + b".ly/x", esm_class=0x40, registered_delivery=1
    )
    assert last.status == 0x0401  # the vendor code for content refused
    await trx.call(trx.read_until, lambda: bool(trx.receipts))
    [receipt] = trx.receipts
    assert receipt.receipted_message_id.decode() == first.message_id.decode()
    assert b"stat:REJECTD err:401 text:see bit.ly/x" in receipt.short_message
    assert await stand.accepted() == []
    assert stand.smpp.parts.pending == 0


async def test_parts_of_a_message_that_never_completes_get_rejectd_receipts_after_the_timeout(
    stand: Stand,
) -> None:
    await stand.tenant("acme", "acme01")
    trx, _ = await stand.esme("transceiver", "acme01")
    ids = []
    for seq in (1, 3):  # part 2 of 3 never comes
        resp = await trx.call(
            trx.submit,
            short_message=bytes([5, 0, 3, 9, 3, seq]) + b"part",
            esm_class=0x40,
            registered_delivery=2,  # receipts on failure only
        )
        assert resp.status == 0
        ids.append(resp.message_id.decode())
    stand.smpp.parts.timeout = 0.0  # the reassembly timeout has run out
    assert await stand.smpp.sweep_parts() == 1
    await trx.call(trx.read_until, lambda: len(trx.receipts) == 2)
    assert sorted(r.receipted_message_id.decode() for r in trx.receipts) == sorted(ids)
    assert all(b"stat:REJECTD" in r.short_message for r in trx.receipts)
    assert stand.smpp.parts.pending == 0 and await stand.accepted() == []


async def test_a_login_set_to_parts_passes_each_part_on_as_its_own_message(stand: Stand) -> None:
    tenant_id, _ = await stand.h.tenant("acme")
    await stand.h.admin.add_smpp("test", tenant_id, "acme01", "secret", concatenated="parts")
    trx, _ = await stand.esme("transceiver", "acme01")
    ids = []
    for seq, chunk in ((2, b"world"), (1, b"hello ")):
        resp = await trx.call(
            trx.submit, short_message=bytes([6, 8, 4, 0x01, 0x2C, 2, seq]) + chunk, esm_class=0x40
        )
        assert resp.status == 0
        ids.append(resp.message_id.decode())
    messages = await stand.accepted()
    assert [(m.id, m.body, m.metadata["smpp.concat"]) for m in messages] == [
        (ids[0], "world", "300/2/2"),
        (ids[1], "hello ", "300/2/1"),
    ]
    assert all("smpp.part_ids" not in m.metadata and m.sms_parts == 1 for m in messages)
    too_long = await trx.call(
        trx.submit, short_message=bytes([5, 0, 3, 1, 2, 1]) + b"x" * 154, esm_class=0x40
    )
    assert too_long.status == 0x01  # ESME_RINVMSGLEN: it would not fit one part on the way out
    assert stand.smpp.parts.pending == 0
