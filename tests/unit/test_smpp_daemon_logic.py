"""The pure parts of the smpp daemon: pacing under throttling, re-bind delays, building the parts, events."""

from __future__ import annotations

import random

import msgspec
import pytest

from appliance.daemons.smpp.pace import Ewma, Pace, RecentShare, combined, rebind_delay
from appliance.daemons.smpp.parts import build_parts, reference
from appliance.daemons.smpp.publish import attempt_outcome, dlr_event, rejected_event, submitted_event
from appliance.domain.dispatch import SmsDispatch
from appliance.domain.dlr import parse_receipt
from appliance.domain.segmentation import parse_udh
from appliance.errors import InvalidInput
from appliance.protocols.smpp import EsmClass, RegisteredDelivery
from appliance.store.carrier_models import Carrier
from appliance.store.smpp_base import DlrOutcome, SmppSubmission

CARRIER = Carrier(
    name="telia_dk", kind="direct", host="h", port=1, system_id="s", password="p", created_at=0, updated_at=0
)


def _granted(pace: Pace, start: float, seconds: float, step: float = 0.001) -> int:
    granted, now = 0, start
    while now < start + seconds:
        if pace.take(now) == 0.0:
            granted += 1
        now += step
    return granted


def test_pace_holds_the_carrier_tps() -> None:
    pace = Pace(50, 0.0)
    assert 48 <= _granted(pace, 0.0, 1.0) <= 61  # 50/s plus the 10-token burst it starts with
    assert not pace.slowed


def test_unlimited_pace_grants_everything() -> None:
    pace = Pace(0, 0.0)
    assert all(pace.take(0.0) == 0.0 for _ in range(1000))
    assert pace.observed(0.5) == 1000


def test_throttle_halves_then_recovers() -> None:
    pace = Pace(100, 0.0, hold_s=1.0)
    pace.throttled(0.0)
    assert pace.rate == 50 and pace.slowed
    pace.throttled(0.05)  # the same burst of refusals: counted, not halved again
    assert pace.rate == 50 and pace.throttles == 2
    pace.throttled(0.5)
    assert pace.rate == 25
    pace.take(1.4)
    assert pace.rate == 25  # still held
    pace.take(1.6)
    assert pace.rate == 50
    pace.take(2.7)
    assert pace.rate == 100 and not pace.slowed


def test_throttle_without_a_limit_starts_from_what_was_used() -> None:
    pace = Pace(0, 0.0, hold_s=1.0)
    for i in range(200):
        pace.take(i / 400)  # 200 granted within half a second
    pace.throttled(0.5)
    assert pace.rate == 100
    assert 38 <= _granted(pace, 0.5, 0.4) <= 41  # 100/s, and no burst right after a throttle
    for second in range(2, 12):  # demand stays low: the pace doubles back up, then is lifted
        pace.take(float(second))
    assert pace.rate == 0 and not pace.slowed


def test_pace_never_stops() -> None:
    pace = Pace(1, 0.0, hold_s=1.0)
    for i in range(10):
        pace.throttled(i * 0.2)
    assert pace.rate == 1.0
    assert pace.take(10.0) == 0.0


def test_rebind_delay_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [rebind_delay(n, initial_s=1.0, max_s=30.0, rng=rng) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(15.0 <= d <= 30.0 for d in delays[5:])
    assert len({round(d, 6) for d in delays[5:]}) > 1


def test_ewma() -> None:
    average = Ewma(0.5)
    assert average.value is None
    average.add(10.0)
    average.add(20.0)
    assert average.value == 15.0


def test_recent_share_needs_enough_samples_and_forgets_old_ones() -> None:
    share = RecentShare(size=10, min_samples=4)
    for hit in (True, False, False):
        share.add(hit)
    assert share.value is None
    share.add(False)
    assert share.value == 0.25
    for _ in range(10):
        share.add(False)
    assert share.value == 0.0 and share.hits == 0
    other = RecentShare(size=10, min_samples=4)
    other.add(True)
    assert combined([share, other]) == 1 / 11
    assert combined([RecentShare(min_samples=4), other]) is None
    assert combined([]) is None


def _dispatch(body: str = "hello", **changes: object) -> SmsDispatch:
    dispatch = SmsDispatch(
        message_id="msg_1", tenant_id="tn_a", attempt=1, carrier="telia_dk", to="+4523456789", body=body,
        sender="Hermes",
    )  # fmt: skip
    return msgspec.structs.replace(dispatch, **changes)


def test_one_part() -> None:
    (pdu,) = build_parts(_dispatch(), CARRIER)
    assert pdu.destination_addr == "4523456789" and (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("Hermes", 5, 0)
    assert pdu.registered_delivery == RegisteredDelivery.RECEIPT_ALWAYS
    assert pdu.short_message == b"hello" and pdu.esm_class == 0


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("+4512345678", ("4512345678", 1, 1)), ("4512345678", ("4512345678", 1, 1)), ("1234", ("1234", 5, 0))],
)
def test_numeric_senders_are_international(sender: str, expected: tuple[str, int, int]) -> None:
    (pdu,) = build_parts(_dispatch(sender=sender), CARRIER)
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == expected


def test_parts_are_the_same_every_time() -> None:
    first = build_parts(_dispatch("x" * 400), CARRIER)
    again = build_parts(_dispatch("x" * 400), CARRIER)
    assert first == again and len(first) == 3
    udh, _ = parse_udh(first[1].short_message)
    assert udh.concat is not None and udh.concat.reference == reference("msg_1", 1, use_sar=False)
    assert all(pdu.esm_class & EsmClass.UDHI for pdu in first)
    other_attempt = build_parts(_dispatch("x" * 400, attempt=2), CARRIER)
    assert other_attempt[0].short_message[:6] != first[0].short_message[:6]


def test_sar_parts() -> None:
    parts = build_parts(
        _dispatch("x" * 400, registered_delivery=False), msgspec.structs.replace(CARRIER, use_sar=True)
    )
    assert [p.tlvs.sar_segment_seqnum for p in parts] == [1, 2, 3]
    assert {p.tlvs.sar_msg_ref_num for p in parts} == {reference("msg_1", 1, use_sar=True)}
    assert all(p.esm_class == 0 and p.registered_delivery == 0 for p in parts)


def test_text_too_long_for_sms() -> None:
    with pytest.raises(InvalidInput):
        build_parts(_dispatch("x" * 153 * 256), CARRIER)


def _sub(part: int, outcome: DlrOutcome | None, parts: int = 3) -> SmppSubmission:
    return SmppSubmission(
        carrier="telia_dk", carrier_message_id=f"id{part}", id_key=f"id{part}", message_id="msg_1",
        tenant_id="tn_a", attempt=2, part=part, parts=parts, submitted_at=0.0,
        dlr_state=None if outcome is None else outcome.upper(), dlr_outcome=outcome,
    )  # fmt: skip


def test_attempt_outcome() -> None:
    assert attempt_outcome([_sub(1, "delivered"), _sub(2, "delivered")]) == "pending"  # part 3 unknown
    assert attempt_outcome([_sub(n, "delivered") for n in (1, 2, 3)]) == "delivered"
    assert attempt_outcome([_sub(1, "delivered"), _sub(2, "failed")]) == "failed"
    assert attempt_outcome([_sub(1, "pending", parts=1)]) == "pending"
    assert attempt_outcome([]) == "pending"


def test_event_ids_are_derived_from_what_they_are_about() -> None:
    dispatch = _dispatch(attempt=2)
    parts = [_sub(1, None), _sub(2, None)]
    assert submitted_event(dispatch, parts).id == "msg_1:2:submitted"
    assert submitted_event(dispatch, parts).data["carrier_message_ids"] == ["id1", "id2"]
    assert rejected_event(dispatch, reason="refused").id == "msg_1:2:rejected"
    settled = _sub(1, "delivered")
    event = dlr_event(settled, parse_receipt(short_message=b"id:id1 stat:UNDELIV err:001"), [settled])
    assert event.id == "msg_1:2:dlr:1:DELIVERED"  # the state that won in the store, not this late one
    assert (event.kind, event.tenant_id, event.data["outcome"], event.data["final"]) == (
        "dlr",
        "tn_a",
        "delivered",
        True,
    )


def test_a_part_passed_on_is_sent_as_that_part_with_the_clients_numbering() -> None:
    dispatch = SmsDispatch(
        message_id="m1",
        tenant_id="t",
        attempt=1,
        carrier="c",
        to="+4523456789",
        body="on its way",
        concat="51/3/2",
    )
    [pdu] = build_parts(dispatch, CARRIER)
    assert pdu.esm_class == EsmClass.UDHI
    udh, text = parse_udh(pdu.short_message)
    assert udh.concat is not None
    assert (udh.concat.reference, udh.concat.total, udh.concat.seq) == (51, 3, 2)
    assert text == b"on its way"
    sar = msgspec.structs.replace(CARRIER, use_sar=True)
    [pdu] = build_parts(msgspec.structs.replace(dispatch, concat="700/3/3"), sar)
    assert (pdu.esm_class, pdu.short_message) == (0, b"on its way")
    assert (pdu.tlvs.sar_msg_ref_num, pdu.tlvs.sar_total_segments, pdu.tlvs.sar_segment_seqnum) == (700, 3, 3)
