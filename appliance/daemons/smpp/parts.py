"""An `SmsDispatch` as the submit_sm PDUs of its parts, the same every time it is built.

The concatenation reference is derived from (message_id, attempt) rather than counted, so when a
redelivered dispatch finds some of its parts already recorded, the parts it still sends carry the same
reference and UDH (or SAR values) as the first ones, and the handset joins them.
"""

from __future__ import annotations

import zlib

from msgspec.structs import replace

from appliance.domain.dispatch import SmsDispatch
from appliance.domain.segmentation import Segment, parse_concat, segment_part, segment_text
from appliance.protocols.smpp.constants import EsmClass, RegisteredDelivery
from appliance.protocols.smpp.pdu import SubmitSm
from appliance.protocols.smpp.tlv import EMPTY_TLVS, Tlvs
from appliance.store.carrier_models import Carrier

_INTERNATIONAL = (1, 1)  # TON international, NPI ISDN/E.164


def reference(message_id: str, attempt: int, *, use_sar: bool) -> int:
    """The concatenation reference of this attempt: 16 bits with SAR, 8 with a UDH."""
    digest = zlib.crc32(f"{message_id}:{attempt}".encode())
    return digest & 0xFFFF if use_sar else digest & 0xFF


def _source(sender: str | None, carrier: Carrier) -> tuple[str, int, int]:
    """(address, ton, npi): E.164 senders as international numbers, others with the carrier's TON/NPI."""
    if not sender:
        return "", carrier.source_ton, carrier.source_npi
    digits = sender.removeprefix("+")
    if digits.isascii() and digits.isdigit() and (sender.startswith("+") or len(digits) > 8):
        return digits, *_INTERNATIONAL
    return sender, carrier.source_ton, carrier.source_npi


def build_parts(dispatch: SmsDispatch, carrier: Carrier) -> list[SubmitSm]:
    """One submit_sm per part, in order. Raises `InvalidInput` for text no SMS can carry."""
    passed_on = parse_concat(dispatch.concat)
    if passed_on is not None:  # one part of a client's concatenated message, numbered as the client did
        segments: tuple[Segment, ...] = (segment_part(dispatch.body, passed_on, use_sar=carrier.use_sar),)
    else:
        ref = reference(dispatch.message_id, dispatch.attempt, use_sar=carrier.use_sar)
        segments = segment_text(dispatch.body, reference=ref, use_sar=carrier.use_sar)
    source, source_ton, source_npi = _source(dispatch.sender, carrier)
    template = SubmitSm(
        0,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=source,
        dest_addr_ton=carrier.dest_ton,
        dest_addr_npi=carrier.dest_npi,
        destination_addr=dispatch.to.removeprefix("+"),
        priority_flag=min(3, max(0, dispatch.priority)),
        registered_delivery=RegisteredDelivery.RECEIPT_ALWAYS if dispatch.registered_delivery else 0,
    )
    return [_part(template, segment) for segment in segments]


def _part(template: SubmitSm, segment: Segment) -> SubmitSm:
    tlvs = EMPTY_TLVS
    if segment.sar is not None:
        tlvs = Tlvs(
            sar_msg_ref_num=segment.sar.msg_ref_num,
            sar_total_segments=segment.sar.total_segments,
            sar_segment_seqnum=segment.sar.segment_seqnum,
        )
    return replace(
        template,
        esm_class=EsmClass.UDHI if segment.udhi else 0,
        data_coding=segment.data_coding,
        short_message=segment.short_message,
        tlvs=tlvs,
    )
