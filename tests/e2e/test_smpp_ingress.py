"""An enterprise SMPP client against the whole appliance: hermesd with the carrier simulator and the
inbound SMPP server; smpplib binds, submits, and gets its receipt after the real cascade, router and
smpp daemon carried the message to the simulator; `hermesctl tenant smpp sessions` lists the bind."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import smpplib.client

from tests.conftest import free_port
from tests.e2e.node import Node

pytestmark = pytest.mark.slow


def test_smpp_client_submits_and_gets_its_receipt_through_the_whole_appliance(tmp_path: Path) -> None:
    node = Node(tmp_path, simulator=True)
    smpp_port = free_port()
    node.config.write_text(
        node.config.read_text() + f'[gateway.smpp]\nenabled = true\nlisten = "127.0.0.1:{smpp_port}"\n'
    )
    try:
        node.start()
        node.wait_healthy()
        node.wait_until_carriers_bound()
        node.ctl("tenant", "add", "acme", "--email", "ops@acme.test", "--json", check=True)
        node.ctl("tenant", "smpp", "add", "acme", "--system-id", "acme1", "--password", "pw1", check=True)
        client, sent, receipts = _transceiver(smpp_port)
        try:
            client.bind_transceiver(system_id="acme1", password="pw1")
            listed = json.loads(node.ctl("tenant", "smpp", "sessions", "--json", check=True).stdout)
            assert [(s["tenant"], s["system_id"], s["bind_type"]) for s in listed] == [
                ("acme", "acme1", "transceiver")
            ]
            _submit(client, short_message=b"Your code is 1234")
            deadline = time.monotonic() + 30
            while not receipts and time.monotonic() < deadline:
                client.read_once()
            [resp] = sent
            assert resp.status == 0
            [receipt] = receipts
            assert receipt.receipted_message_id == resp.message_id
            assert b"stat:DELIVRD" in receipt.short_message
            shown = node.ctl("tenant", "smpp", "sessions", "--tenant", "acme", check=True).stdout
            assert "acme1" in shown
            client.unbind()
        finally:
            client.disconnect()
        _parts_pass_through_to_the_carrier(node, smpp_port)
        assert node.terminate() == 0
    finally:
        node.kill_everything()


def _parts_pass_through_to_the_carrier(node: Node, smpp_port: int) -> None:
    """A login set to `concatenated = parts`: each part is its own message, sent to the carrier as that
    part, with its own id and its own receipt."""
    node.ctl("tenant", "smpp", "set", "acme", "acme1", "--concatenated", "parts", check=True)
    listed = json.loads(node.ctl("tenant", "smpp", "list", "acme", "--json", check=True).stdout)
    assert [(c["system_id"], c["concatenated"]) for c in listed] == [("acme1", "parts")]
    client, sent, receipts = _transceiver(smpp_port)
    try:
        client.bind_transceiver(system_id="acme1", password="pw1")
        for seq, text in ((1, b"Your parcel is on "), (2, b"its way")):
            _submit(client, esm_class=0x40, short_message=bytes([5, 0, 3, 0x33, 2, seq]) + text)
        deadline = time.monotonic() + 30
        while len(receipts) < 2 and time.monotonic() < deadline:
            client.read_once()
        assert [r.status for r in sent] == [0, 0]
        assert sorted(r.receipted_message_id for r in receipts) == sorted(r.message_id for r in sent)
        assert all(b"stat:DELIVRD" in r.short_message for r in receipts)
        client.unbind()
    finally:
        client.disconnect()


def _transceiver(port: int) -> tuple[smpplib.client.Client, list[Any], list[Any]]:
    """A connected smpplib client, with the submit_sm_resp it gets and the receipts it is sent."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    sent: list[Any] = []
    receipts: list[Any] = []
    client.set_message_sent_handler(lambda pdu, **_: sent.append(pdu))
    client.set_message_received_handler(lambda pdu, **_: receipts.append(pdu))
    client.connect()
    return client, sent, receipts


def _submit(client: smpplib.client.Client, **fields: Any) -> None:
    """A submit_sm from "Acme" to a Danish mobile number, asking for a receipt."""
    client.send_message(
        source_addr_ton=5,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4528123456",
        registered_delivery=1,
        **fields,
    )
