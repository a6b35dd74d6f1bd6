"""How many submit_sm / deliver_sm receipts per second Hermes's SMPP codec builds, encodes and decodes,
next to smpplib doing the same work, in one process.

Each round builds the PDU object, encodes it and decodes the bytes back, for both libraries, from
identical field values; the wire bytes are checked to be identical first, so both do the same job.
Rounds alternate between the two and the best round counts, which keeps a noisy machine fair.

    .venv/bin/python bench/smpp_codec.py [--seconds 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import smpplib.smpp

from appliance.protocols.smpp import DeliverSm, EsmClass, NetworkErrorCode, SubmitSm, Tlvs, decode, encode

BODY = ("Your Hermes code is 847291. " * 6)[:160].encode("ascii")
RECEIPT = (
    b"id:TEL-99887 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000 text:"
)


class _Client:
    """smpplib draws sequence numbers from its client object."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


_CLIENT = _Client()


def ours_submit_sm_wire() -> bytes:
    return encode(
        SubmitSm(
            7,
            source_addr_ton=5,
            source_addr="Hermes",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="4512345678",
            registered_delivery=1,
            short_message=BODY,
        )
    )


def ours_deliver_sm_wire() -> bytes:
    return encode(
        DeliverSm(
            8,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="4512345678",
            destination_addr="Hermes",
            esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
            short_message=RECEIPT,
            tlvs=Tlvs(
                network_error_code=NetworkErrorCode(3, 0), message_state=2, receipted_message_id="TEL-99887"
            ),
        )
    )


def _smpplib_wire(command: str, sequence: int, **fields: Any) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=_CLIENT, **fields)
    pdu.sequence = sequence
    wire: bytes = pdu.generate()
    return wire


_COMMON = {
    "service_type": "",
    "protocol_id": 0,
    "priority_flag": 0,
    "schedule_delivery_time": "",
    "validity_period": "",
    "replace_if_present_flag": 0,
    "data_coding": 0,
    "sm_default_msg_id": 0,
}


def smpplib_submit_sm_wire() -> bytes:
    return _smpplib_wire(
        "submit_sm",
        7,
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Hermes",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4512345678",
        esm_class=0,
        registered_delivery=1,
        short_message=BODY,
        **_COMMON,
    )


def smpplib_deliver_sm_wire() -> bytes:
    return _smpplib_wire(
        "deliver_sm",
        8,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="4512345678",
        dest_addr_ton=0,
        dest_addr_npi=0,
        destination_addr="Hermes",
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        registered_delivery=0,
        short_message=RECEIPT,
        network_error_code=b"\x03\x00\x00",
        message_state=2,
        receipted_message_id="TEL-99887",
        **_COMMON,
    )


def ours_submit_sm() -> Any:
    return decode(ours_submit_sm_wire())


def ours_deliver_sm() -> Any:
    return decode(ours_deliver_sm_wire())


def smpplib_submit_sm() -> Any:
    return smpplib.smpp.parse_pdu(smpplib_submit_sm_wire(), client=_CLIENT)


def smpplib_deliver_sm() -> Any:
    return smpplib.smpp.parse_pdu(smpplib_deliver_sm_wire(), client=_CLIENT)


def _same_wire(ours: Callable[[], bytes], theirs: Callable[[], bytes]) -> None:
    """Both libraries must put the very same octets on the wire, or the race means nothing."""
    if ours() != theirs():
        raise SystemExit(f"{ours.__name__} and {theirs.__name__} encode differently")


def _rate(work: Callable[[], Any], seconds: float) -> float:
    """Calls per second over about `seconds`, in batches so the clock is read rarely."""
    batch, done = 200, 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            work()
        done += batch
    return done / elapsed


def _race(
    ours: Callable[[], Any], theirs: Callable[[], Any], seconds: float, rounds: int = 8
) -> tuple[float, float]:
    best_ours = best_theirs = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, _rate(ours, seconds / rounds))
        best_theirs = max(best_theirs, _rate(theirs, seconds / rounds))
    return best_ours, best_theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per library and operation")
    args = parser.parse_args()

    _same_wire(ours_submit_sm_wire, smpplib_submit_sm_wire)
    _same_wire(ours_deliver_sm_wire, smpplib_deliver_sm_wire)
    ours_submit, smpplib_submit = _race(ours_submit_sm, smpplib_submit_sm, args.seconds)
    ours_deliver, smpplib_deliver = _race(ours_deliver_sm, smpplib_deliver_sm, args.seconds)
    print(
        json.dumps(
            {
                "bench": "smpp_codec",
                "ours_submit_sm_per_s": round(ours_submit),
                "smpplib_submit_sm_per_s": round(smpplib_submit),
                "speedup": round(ours_submit / smpplib_submit, 1),
                "ours_deliver_sm_per_s": round(ours_deliver),
                "smpplib_deliver_sm_per_s": round(smpplib_deliver),
                "deliver_sm_speedup": round(ours_deliver / smpplib_deliver, 1),
                "python": f"{platform.python_implementation()} {platform.python_version()}",
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            }
        )
    )


if __name__ == "__main__":
    main()
