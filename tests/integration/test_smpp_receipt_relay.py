"""`ReceiptRelay` on a real nats-server, with stand-in receiver binds whose answers the test decides:
receipts are relayed in batches off one long pull, acked only after deliver_sm_resp OK, sent again
after an error status, and wait in the consumer while nobody is bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client as NatsClient

from appliance.daemons.gateway.smpp_receipts import ReceiptRelay
from appliance.protocols.smpp.pdu import DeliverSm, DeliverSmResp, Pdu

pytestmark = pytest.mark.timeout(60)
TENANT = "tn_relay"


class _Receiver:
    """A receiver bind: `window` deliver_sm in flight at most; answers with `status_for(pdu)`."""

    def __init__(self, window: int = 20, status_for: Callable[[DeliverSm], int] = lambda _pdu: 0) -> None:
        self.system_id: str | None = "acme01"
        self.receipts_sent = 0
        self.window = window
        self.status_for = status_for
        self.in_flight = 0
        self.got: list[str] = []

    @property
    def room(self) -> int:
        return max(0, self.window - self.in_flight)

    async def issue(self, pdu: Pdu, timeout_s: float = 30.0) -> asyncio.Future[Pdu]:
        assert isinstance(pdu, DeliverSm)
        self.in_flight += 1
        self.got.append(pdu.tlvs.receipted_message_id or "")
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()

        def answer() -> None:
            self.in_flight -= 1
            if not future.done():
                future.set_result(DeliverSmResp(0, self.status_for(pdu)))

        asyncio.get_running_loop().call_later(0.001, answer)
        return future


async def _final(nats: NatsClient, message_id: str, *, smpp: bool = True) -> None:
    data: dict[str, Any] = {
        "origin": "smpp" if smpp else "api",
        "metadata": {
            "smpp.system_id": "acme01",
            "smpp.registered_delivery": "1",
            "smpp.source": "5:0:Hermes",
            "smpp.destination": "1:1:4523456789",
            "smpp.text": "hi",
        },
        "created_at": time.time(),
        "attempt": 1,
    }
    body = {
        "kind": "delivered",
        "id": f"{message_id}:delivered",
        "message_id": message_id,
        "tenant_id": TENANT,
        "at": time.time(),
        "state": "1_delivered",
        "data": data,
    }
    await nats.jetstream().publish(
        f"evt.{TENANT}.delivered", msgspec.json.encode(body), headers={"Nats-Msg-Id": body["id"]}
    )


async def _eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling the objects under test is the point
            await asyncio.sleep(0.02)


async def _queued(relay: ReceiptRelay) -> int | None:
    return await relay.queued(TENANT)


async def test_receipts_go_out_in_windows_and_are_acked_once_answered(nats: NatsClient) -> None:
    relay = ReceiptRelay(nats, timeout_s=2.0)
    receiver = _Receiver(window=20)
    relay.set_receivers(lambda _tenant: [receiver])
    await relay.ensure_consumer(TENANT)
    for n in range(150):
        await _final(nats, f"msg_{n:03d}")
    await _final(nats, "msg_rest", smpp=False)  # owes no receipt: acked at once
    relay.attach(TENANT)
    try:
        await _eventually(lambda: receiver.receipts_sent == 150)
        assert sorted(receiver.got) == sorted(f"msg_{n:03d}" for n in range(150))
        for _ in range(50):
            if await _queued(relay) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _queued(relay) == 0
    finally:
        await relay.close()


async def test_an_error_answer_sends_the_receipt_again(nats: NatsClient) -> None:
    refused: set[str] = set()

    def status_for(pdu: DeliverSm) -> int:
        receipted = pdu.tlvs.receipted_message_id or ""
        if receipted == "msg_bad" and receipted not in refused:
            refused.add(receipted)
            return 0x08  # ESME_RSYSERR, once
        return 0

    relay = ReceiptRelay(nats, timeout_s=2.0)
    receiver = _Receiver(status_for=status_for)
    relay.set_receivers(lambda _tenant: [receiver])
    await relay.ensure_consumer(TENANT)
    await _final(nats, "msg_good")
    await _final(nats, "msg_bad")
    relay.attach(TENANT)
    try:
        await _eventually(lambda: receiver.receipts_sent == 2)
        assert sorted(receiver.got) == ["msg_bad", "msg_bad", "msg_good"]
    finally:
        await relay.close()


async def test_receipts_wait_while_nobody_is_bound_and_a_new_bind_gets_them(nats: NatsClient) -> None:
    relay = ReceiptRelay(nats, timeout_s=2.0)
    bound: list[_Receiver] = [_Receiver()]
    relay.set_receivers(lambda _tenant: list(bound))
    await relay.ensure_consumer(TENANT)
    relay.attach(TENANT)
    try:
        await _final(nats, "msg_1")
        await _eventually(lambda: bound[0].receipts_sent == 1)
        bound.clear()
        relay.wake(TENANT)
        await _final(nats, "msg_2")  # may reach the pull still open: handed back, not lost
        await asyncio.sleep(0.3)
        later = _Receiver()
        bound.append(later)
        relay.attach(TENANT)
        await _eventually(lambda: later.receipts_sent == 1, timeout_s=15.0)
        assert later.got == ["msg_2"]
    finally:
        await relay.close()
