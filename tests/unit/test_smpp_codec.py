"""The SMPP 3.4 codec: round trips, spec vectors, malformed input, the framer, and smpplib as a witness."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import astuple

from appliance.errors import HermesError, InvalidInput, ProtocolError
from appliance.protocols.smpp import (
    DEFAULT_MAX_PDU_SIZE,
    EMPTY_TLVS,
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    CommandId,
    CommandStatus,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    EsmClass,
    GenericNack,
    MessageState,
    NetworkErrorCode,
    Outbind,
    Pdu,
    PduDecodeError,
    PduEncodeError,
    PduReader,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Tlvs,
    TlvValue,
    Unbind,
    UnbindResp,
    UnsuccessSme,
    decode,
    encode,
    status_name,
)
from appliance.protocols.smpp.constants import TLV_FORMATS
from appliance.protocols.smpp.layout import LAYOUTS, read_steps, write_steps

S = CommandStatus

SAMPLES: list[Pdu] = [
    BindTransmitter(1, system_id="hermes", password="secret", system_type="VMS", addr_ton=1, addr_npi=1),
    BindReceiver(2, system_id="hermes", password="pw", address_range="^45"),
    BindTransceiver(3, system_id="hermes", password="pw", interface_version=0x34),
    BindTransmitterResp(1, system_id="SMSC", tlvs=Tlvs(sc_interface_version=0x34)),
    BindReceiverResp(2, system_id="SMSC"),
    BindTransceiverResp(3, system_id="SMSC"),
    Outbind(4, system_id="SMSC", password="pw"),
    Unbind(5),
    UnbindResp(5),
    GenericNack(6, command_status=S.ESME_RINVCMDID),
    SubmitSm(
        7,
        service_type="CMT",
        source_addr_ton=5,
        source_addr="Hermes",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4512345678",
        esm_class=EsmClass.UDHI,
        registered_delivery=1,
        data_coding=8,
        validity_period="000001000000000R",
        short_message=b"\x05\x00\x03\x01\x02\x01" + "hi".encode("utf-16-be"),
        tlvs=Tlvs(user_message_reference=42, source_port=1, destination_port=2),
    ),
    SubmitSmResp(7, message_id="HRM-00001"),
    DeliverSm(
        8,
        source_addr="4512345678",
        destination_addr="Hermes",
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        short_message=b"id:HRM-00001 sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
        tlvs=Tlvs(
            receipted_message_id="HRM-00001",
            message_state=MessageState.DELIVERED,
            network_error_code=NetworkErrorCode(1, 0x0102),
        ),
    ),
    DeliverSmResp(8),
    DataSm(9, source_addr="a" * 64, destination_addr="b" * 64, tlvs=Tlvs(message_payload=b"x" * 1000)),
    DataSmResp(9, message_id="D1", tlvs=Tlvs(delivery_failure_reason=1, additional_status_info_text="no")),
    QuerySm(10, message_id="HRM-1", source_addr="Hermes"),
    QuerySmResp(10, message_id="HRM-1", final_date="260101120000000+", message_state=2, error_code=0),
    CancelSm(11, message_id="HRM-1", source_addr="Hermes", destination_addr="4512345678"),
    CancelSmResp(11),
    ReplaceSm(12, message_id="HRM-1", source_addr="Hermes", registered_delivery=1, short_message=b"new"),
    ReplaceSmResp(12),
    EnquireLink(13),
    EnquireLinkResp(13),
    AlertNotification(14, source_addr="4512345678", esme_addr="e" * 64, tlvs=Tlvs(ms_availability_status=0)),
    SubmitMulti(
        15,
        source_addr="Hermes",
        dest_addresses=(SmeAddress(1, 1, "4512345678"), DistributionList("staff")),
        short_message=b"hello all",
    ),
    SubmitMultiResp(
        15, message_id="M1", unsuccess_smes=(UnsuccessSme(1, 1, "4500000000", S.ESME_RINVDSTADR),)
    ),
]


def test_every_command_id_has_a_class_and_a_sample() -> None:
    assert {c.command_id for c in PDU_CLASSES} == set(CommandId)
    assert {type(p) for p in SAMPLES} == set(PDU_CLASSES)


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip_every_operation(pdu: Pdu) -> None:
    wire = encode(pdu)
    assert struct.unpack(">II", wire[:8]) == (len(wire), pdu.command_id)
    assert decode(wire) == pdu
    assert encode(decode(wire)) == wire


def _assert_walkers_agree(pdu: Pdu) -> None:
    """The generated fast path and the step interpreter must read and write bodies identically."""
    layout = LAYOUTS[type(pdu)]
    values = astuple(pdu)
    body = layout.write(values)
    assert body == write_steps(layout.steps, values)
    text = body.decode("latin-1")
    assert layout.read(body, text, 0, len(body)) == read_steps(layout.steps, body, text, 0, len(body))


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_generated_and_interpreted_layouts_agree(pdu: Pdu) -> None:
    _assert_walkers_agree(pdu)
    assert "def read(" in LAYOUTS[type(pdu)].source


def test_spec_bind_transmitter_example() -> None:
    """The worked example of SMPP 3.4 §3.2.1, octet for octet."""
    wire = bytes.fromhex(
        "0000002F000000020000000000000001534D50503354455354007365637265743038005355424D4954310050010100"
    )
    pdu = decode(wire)
    assert pdu == BindTransmitter(
        1,
        system_id="SMPP3TEST",
        password="secret08",
        system_type="SUBMIT1",
        interface_version=0x50,
        addr_ton=1,
        addr_npi=1,
    )
    assert encode(pdu) == wire


def test_known_tlvs_are_typed_and_unknown_ones_kept_raw() -> None:
    vendor = 0x1400
    pdu = DeliverSm(1, tlvs=Tlvs({vendor: b"\x01\x02", Tag.SAR_MSG_REF_NUM: 0x1234}, sar_total_segments=3))
    tlvs = decode(encode(pdu)).tlvs
    assert tlvs[vendor] == b"\x01\x02"
    assert tlvs.sar_msg_ref_num == 0x1234
    assert tlvs.sar_total_segments == 3
    assert tlvs.sar_segment_seqnum is None
    assert tlvs.get_str(Tag.SAR_MSG_REF_NUM) is None
    assert list(tlvs) == [vendor, Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS]
    assert tlvs == {vendor: b"\x01\x02", 0x020C: 0x1234, 0x020E: 3}
    assert hash(tlvs) == hash(Tlvs(tlvs))
    assert "sar_msg_ref_num: 4660" in repr(tlvs) and "0x1400" in repr(tlvs)


def test_receipt_tlvs_read_back_through_properties() -> None:
    tlvs = decode(encode(SAMPLES[12])).tlvs
    assert tlvs.receipted_message_id == "HRM-00001"
    assert tlvs.message_state == MessageState.DELIVERED
    assert tlvs.network_error_code == NetworkErrorCode(1, 0x0102)
    assert tlvs.message_payload is None


def test_tlv_name_must_be_known() -> None:
    with pytest.raises(TypeError, match="unknown TLV name"):
        Tlvs(no_such_tlv=1)


def test_error_response_body_is_left_off_and_read_back_empty() -> None:
    wire = encode(SubmitSmResp(3, command_status=S.ESME_RTHROTTLED, message_id="ignored"))
    assert len(wire) == 16
    assert decode(wire) == SubmitSmResp(3, command_status=S.ESME_RTHROTTLED)
    assert decode(encode(BindTransceiverResp(4, command_status=S.ESME_RINVPASWD))).command_status == 0x0E
    # a data_sm_resp keeps its body: delivery_failure_reason is the point of an error answer
    failed = DataSmResp(5, command_status=S.ESME_RDELIVERYFAILURE, tlvs=Tlvs(delivery_failure_reason=2))
    assert decode(encode(failed)) == failed


def test_bind_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(BindTransceiver(1, system_id="hermes", password="s3cret"))
    assert "s3cret" not in str(Outbind(1, password="s3cret"))
    assert "system_id='hermes'" in repr(BindTransceiver(1, system_id="hermes"))


def test_status_names() -> None:
    assert status_name(0x58) == "ESME_RTHROTTLED"
    assert status_name(0x400) == "0x00000400"
    assert len(CommandStatus) == 48


# ------------------------------------------------------------------------------------------- properties

_TEXT = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=20)


def _cstr(size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=size - 1)


def _tlv_value(tag: int) -> st.SearchStrategy[TlvValue]:
    kind, low, high = TLV_FORMATS[tag]
    if kind == "int":
        return st.integers(0, (1 << (8 * low)) - 1)
    if kind == "cstr":
        return _cstr(high)
    if kind == "network_error":
        return st.builds(NetworkErrorCode, st.integers(0, 255), st.integers(0, 0xFFFF))
    return st.binary(min_size=low, max_size=min(high, 300))


_KNOWN_TLV = st.sampled_from(sorted(TLV_FORMATS)).flatmap(lambda t: st.tuples(st.just(t), _tlv_value(t)))
_UNKNOWN_TLV = st.tuples(
    st.integers(0, 0xFFFF).filter(lambda t: t not in TLV_FORMATS), st.binary(max_size=40)
)
_TLVS = st.lists(st.one_of(_KNOWN_TLV, _UNKNOWN_TLV), max_size=6, unique_by=lambda kv: kv[0]).map(
    lambda pairs: Tlvs(dict(pairs))
)
_OCTET = st.integers(0, 255)


@st.composite
def _short_message_pdus(draw: st.DrawFn) -> Pdu:
    cls = draw(st.sampled_from([SubmitSm, DeliverSm]))
    return cls(
        draw(st.integers(0, 0xFFFFFFFF)),
        command_status=draw(st.integers(0, 0xFFFFFFFF)),
        tlvs=draw(_TLVS),
        service_type=draw(_cstr(6)),
        source_addr_ton=draw(_OCTET),
        source_addr_npi=draw(_OCTET),
        source_addr=draw(_cstr(21)),
        dest_addr_ton=draw(_OCTET),
        dest_addr_npi=draw(_OCTET),
        destination_addr=draw(_cstr(21)),
        esm_class=draw(_OCTET),
        protocol_id=draw(_OCTET),
        priority_flag=draw(_OCTET),
        schedule_delivery_time=draw(_cstr(17)),
        validity_period=draw(_cstr(17)),
        registered_delivery=draw(_OCTET),
        replace_if_present_flag=draw(_OCTET),
        data_coding=draw(_OCTET),
        sm_default_msg_id=draw(_OCTET),
        short_message=draw(st.binary(max_size=254)),
    )


@settings(deadline=None, max_examples=300)
@given(_short_message_pdus())
def test_submit_and_deliver_round_trip(pdu: Pdu) -> None:
    wire = encode(pdu)
    assert decode(wire) == pdu
    assert encode(decode(wire)) == wire
    _assert_walkers_agree(pdu)


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(sorted(int(c) for c in CommandId)), st.binary(max_size=300))
def test_decode_of_garbage_raises_only_decode_errors(command_id: int, body: bytes) -> None:
    wire = struct.pack(">IIII", 16 + len(body), command_id, 0, 77) + body
    error: PduDecodeError | None = None
    try:
        pdu = decode(wire)
    except PduDecodeError as exc:
        error = exc
    if error is None:
        assert pdu.sequence_number == 77
    else:
        assert (error.sequence_number, error.command_id) == (77, command_id)
    layout = next(lay for cls, lay in LAYOUTS.items() if cls.command_id == command_id)
    text = body.decode("latin-1")
    try:
        fast = layout.read(body, text, 0, len(body))
    except Exception:  # the fast path may trip on anything; the interpreter then decides
        return
    assert fast == read_steps(layout.steps, body, text, 0, len(body))


@settings(deadline=None)
@given(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=8), st.data())
def test_framer_cuts_any_chunking_back_into_the_frames(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = PduReader()
    frames: list[bytes] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed(stream[start:stop])
        frames.extend(reader)
    assert [decode(f) for f in frames] == pdus
    assert reader.buffered == 0


# -------------------------------------------------------------------------------------------- malformed


def _header(length: int, command_id: int = CommandId.SUBMIT_SM, seq: int = 99) -> bytes:
    return struct.pack(">IIII", length, command_id, 0, seq)


def _decode_error(wire: bytes) -> PduDecodeError:
    with pytest.raises(PduDecodeError) as info:
        decode(wire)
    return info.value


def test_error_classes_sit_in_the_hermes_tree() -> None:
    assert issubclass(PduDecodeError, ProtocolError) and issubclass(ProtocolError, HermesError)
    assert issubclass(PduEncodeError, InvalidInput)


def test_shorter_than_a_header() -> None:
    error = _decode_error(b"\x00\x00\x00\x0c" + b"\x00" * 8)
    assert error.command_status == S.ESME_RINVCMDLEN
    assert error.sequence_number is None
    assert error.reply_command_id == CommandId.GENERIC_NACK


def test_command_length_below_16_with_a_full_header() -> None:
    error = _decode_error(_header(8))
    assert error.command_status == S.ESME_RINVCMDLEN
    assert error.sequence_number == 99


def test_truncated_body() -> None:
    wire = encode(SAMPLES[10])
    cut = wire[:40]
    error = _decode_error(struct.pack(">I", len(cut)) + cut[4:])
    assert error.command_status == S.ESME_RINVCMDLEN
    assert (error.sequence_number, error.command_id) == (7, CommandId.SUBMIT_SM)
    assert error.reply_command_id == CommandId.GENERIC_NACK


def test_length_disagreeing_with_the_frame() -> None:
    wire = encode(EnquireLink(5))
    assert _decode_error(wire + b"\x00").command_status == S.ESME_RINVCMDLEN


def test_unknown_command_id() -> None:
    error = _decode_error(_header(16, command_id=0x00000042, seq=5))
    assert error.command_status == S.ESME_RINVCMDID
    assert error.sequence_number == 5
    assert error.reply_command_id == CommandId.GENERIC_NACK
    assert "ESME_RINVCMDID" in str(error)


def test_missing_c_string_terminator() -> None:
    body = b"\x00\x05\x00Hermes"  # service_type, ton, npi, then source_addr runs off the end
    error = _decode_error(_header(16 + len(body)) + body)
    assert error.command_status == S.ESME_RINVCMDLEN
    assert "source_addr" in error.reason


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"\x00\x01\x01" + b"1" * 21 + b"\x00" + b"\x00" * 40, S.ESME_RINVSRCADR, "source_addr"),
        (b"CMTCMTX\x00" + b"\x00" * 60, S.ESME_RINVSERTYP, "service_type"),
        (b"\x00\x01\x01\x00\x01\x01" + b"2" * 30 + b"\x00" * 30, S.ESME_RINVDSTADR, "destination_addr"),
    ],
)
def test_string_too_long(body: bytes, status: int, field: str) -> None:
    error = _decode_error(_header(16 + len(body), seq=3) + body)
    assert error.command_status == status
    assert field in error.reason
    assert error.reply_command_id == CommandId.SUBMIT_SM_RESP


def test_system_id_too_long_answers_with_the_bind_response() -> None:
    body = b"a" * 16 + b"\x00pw\x00\x00\x34\x00\x00\x00"
    error = _decode_error(_header(16 + len(body), CommandId.BIND_TRANSCEIVER) + body)
    assert error.command_status == S.ESME_RINVSYSID
    assert error.reply_command_id == CommandId.BIND_TRANSCEIVER_RESP


def test_sm_length_beyond_the_body() -> None:
    wire = bytearray(encode(SubmitSm(1, short_message=b"abc")))
    wire[-4] = 200  # sm_length
    assert _decode_error(bytes(wire)).command_status == S.ESME_RINVMSGLEN


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        (b"\x02\x04\x00", S.ESME_RINVOPTPARSTREAM),  # TLV header cut short
        (b"\x02\x04\x00\x05\x00", S.ESME_RINVOPTPARSTREAM),  # value runs past the end
        (b"\x02\x04\x00\x01\x07", S.ESME_RINVPARLEN),  # user_message_reference is two octets
        (b"\x04\x23\x00\x02\x01\x02", S.ESME_RINVPARLEN),  # network_error_code is three
    ],
)
def test_bad_tlv_stream(tail: bytes, status: int) -> None:
    wire = encode(SubmitSm(1)) + tail
    error = _decode_error(struct.pack(">I", len(wire)) + wire[4:])
    assert error.command_status == status


def test_c_string_tlv_without_nul_is_tolerated() -> None:
    wire = encode(DeliverSm(1)) + b"\x00\x1e\x00\x03abc"
    assert decode(struct.pack(">I", len(wire)) + wire[4:]).tlvs.receipted_message_id == "abc"


def test_submit_multi_bad_dest_flag_and_count() -> None:
    good = encode(SAMPLES[25])
    flag_at = good.index(b"\x02\x01\x01") + 1  # number_of_dests=2, then dest_flag=1
    bad = bytearray(good)
    bad[flag_at] = 9
    assert _decode_error(bytes(bad)).command_status == S.ESME_RINVDESTFLAG
    bad[flag_at - 1] = 0
    assert _decode_error(bytes(bad)).command_status == S.ESME_RINVNUMDESTS


def test_malformed_response_or_outbind_gets_generic_nack() -> None:
    body = b"x" * 70
    error = _decode_error(_header(16 + len(body), CommandId.SUBMIT_SM_RESP) + body)
    assert error.command_status == S.ESME_RINVMSGID
    assert error.reply_command_id == CommandId.GENERIC_NACK
    error = _decode_error(_header(16 + 20, CommandId.OUTBIND) + b"y" * 20)
    assert error.reply_command_id == CommandId.GENERIC_NACK


@pytest.mark.parametrize(
    ("pdu", "field", "status"),
    [
        (SubmitSm(1, source_addr="1" * 21), "source_addr", S.ESME_RINVSRCADR),
        (SubmitSm(1, destination_addr="x\x00"), "destination_addr", S.ESME_RINVDSTADR),
        (SubmitSm(1, service_type="€"), "service_type", S.ESME_RINVSERTYP),
        (SubmitSm(1, short_message=b"x" * 255), "short_message", S.ESME_RINVMSGLEN),
        (SubmitSm(1, esm_class=256), "esm_class/protocol_id/priority_flag", S.ESME_RINVPARLEN),
        (BindTransmitter(1, password="0123456789"), "password", S.ESME_RINVPASWD),
        (SubmitSm(1, tlvs=Tlvs(sar_total_segments=256)), "TLV 0x020E", S.ESME_RINVOPTPARAMVAL),
        (SubmitSm(1, tlvs=Tlvs(receipted_message_id="r" * 65)), "TLV 0x001E", S.ESME_RINVPARLEN),
        (SubmitSm(1, tlvs=Tlvs({0x1400: 5})), "TLV 0x1400", S.ESME_RINVOPTPARAMVAL),
        (SubmitSm(1, tlvs=Tlvs(callback_num=b"12")), "TLV 0x0381", S.ESME_RINVPARLEN),
        (SubmitMulti(1), "dest_addresses", S.ESME_RINVNUMDESTS),
        (SubmitSm(-1), "header", S.ESME_RINVPARLEN),
    ],
)
def test_encode_refuses_what_the_spec_forbids(pdu: Pdu, field: str, status: int) -> None:
    with pytest.raises(PduEncodeError) as info:
        encode(pdu)
    assert info.value.field == field
    assert info.value.command_status == status


# ---------------------------------------------------------------------------------------------- framer


def test_framer_byte_by_byte() -> None:
    stream = b"".join(encode(p) for p in SAMPLES)
    reader = PduReader()
    frames: list[bytes] = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        if (frame := reader.next_frame()) is not None:
            frames.append(frame)
    assert reader.next_frame() is None
    assert [decode(f) for f in frames] == SAMPLES


def test_framer_one_big_chunk() -> None:
    stream = b"".join(encode(p) for p in SAMPLES * 50)
    reader = PduReader()
    reader.feed(stream + encode(EnquireLink(1))[:10])
    frames = list(reader)
    assert len(frames) == len(SAMPLES) * 50
    assert reader.buffered == 10


def test_framer_refuses_an_absurd_length_from_four_octets() -> None:
    reader = PduReader(max_pdu_size=4096)
    with pytest.raises(PduDecodeError) as info:
        reader.feed(b"\x7f\xff\xff\xff")
    assert info.value.command_status == S.ESME_RINVCMDLEN
    assert info.value.sequence_number is None
    assert reader.buffered == 0
    with pytest.raises(PduDecodeError):  # the stream cannot be resynced: the error sticks
        reader.feed(encode(EnquireLink(2)))
    with pytest.raises(PduDecodeError):
        reader.next_frame()


def test_framer_reports_the_sequence_when_the_header_is_in() -> None:
    reader = PduReader()
    with pytest.raises(PduDecodeError) as info:
        reader.feed(_header(DEFAULT_MAX_PDU_SIZE + 1, CommandId.SUBMIT_SM, seq=31))
    assert (info.value.sequence_number, info.value.command_id) == (31, CommandId.SUBMIT_SM)
    with pytest.raises(PduDecodeError):
        PduReader().feed(_header(15))


def test_framer_returns_good_frames_before_a_bad_one() -> None:
    reader = PduReader()
    good = encode(EnquireLink(1))
    reader.feed(good + _header(3))
    assert reader.next_frame() == good
    with pytest.raises(PduDecodeError):
        reader.next_frame()


# ------------------------------------------------------------------------------------ smpplib as witness


class _Client:
    """What smpplib wants from its client when building or parsing a PDU: a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def _smpplib_parse(wire: bytes) -> Any:
    return smpplib.smpp.parse_pdu(wire, client=_Client())


def _smpplib_make(command: str, sequence: int, **fields: Any) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=_Client(), **fields)
    pdu.sequence = sequence
    wire: bytes = pdu.generate()
    return wire


def test_smpplib_reads_our_bind_transceiver() -> None:
    parsed = _smpplib_parse(encode(BindTransceiver(11, system_id="hermes", password="pw", system_type="X")))
    assert (parsed.command, parsed.sequence) == ("bind_transceiver", 11)
    assert (parsed.system_id, parsed.password, parsed.system_type) == (b"hermes", b"pw", b"X")
    assert parsed.interface_version == 0x34


def test_smpplib_reads_our_submit_sm_with_tlvs() -> None:
    ours = SubmitSm(
        12,
        source_addr="Hermes",
        source_addr_ton=5,
        destination_addr="4512345678",
        dest_addr_ton=1,
        dest_addr_npi=1,
        esm_class=EsmClass.UDHI,
        data_coding=8,
        registered_delivery=1,
        short_message=b"\x05\x00\x03\x07\x02\x01" + "æøå".encode("utf-16-be"),
        tlvs=Tlvs(user_message_reference=513, source_port=9200, destination_port=2948, callback_num=b"4512"),
    )
    parsed = _smpplib_parse(encode(ours))
    assert (parsed.command, parsed.sequence) == ("submit_sm", 12)
    assert (parsed.source_addr, parsed.destination_addr) == (b"Hermes", b"4512345678")
    assert (parsed.source_addr_ton, parsed.dest_addr_ton, parsed.dest_addr_npi) == (5, 1, 1)
    assert (parsed.esm_class, parsed.data_coding, parsed.registered_delivery) == (0x40, 8, 1)
    assert parsed.sm_length == len(ours.short_message)
    assert parsed.short_message == ours.short_message
    assert (parsed.user_message_reference, parsed.source_port, parsed.destination_port) == (513, 9200, 2948)
    assert parsed.callback_num == b"4512"


def test_smpplib_reads_our_deliver_sm_receipt() -> None:
    parsed = _smpplib_parse(encode(SAMPLES[12]))
    assert (parsed.command, parsed.sequence, parsed.esm_class) == ("deliver_sm", 8, 0x04)
    assert parsed.short_message.startswith(b"id:HRM-00001")
    assert parsed.receipted_message_id == b"HRM-00001"
    assert parsed.message_state == 2
    assert parsed.network_error_code == b"\x01\x01\x02"


def test_smpplib_reads_our_enquire_link() -> None:
    parsed = _smpplib_parse(encode(EnquireLink(0x7FFFFFFF)))
    assert (parsed.command, parsed.sequence, parsed.status) == ("enquire_link", 0x7FFFFFFF, 0)


def test_we_read_smpplib_bind_transceiver() -> None:
    wire = _smpplib_make("bind_transceiver", 21, system_id="esme", password="secret", system_type="")
    assert decode(wire) == BindTransceiver(21, system_id="esme", password="secret", interface_version=0x34)


def test_we_read_smpplib_submit_sm_with_tlvs() -> None:
    wire = _smpplib_make(
        "submit_sm",
        22,
        service_type="",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Hermes",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4512345678",
        esm_class=0,
        protocol_id=0,
        priority_flag=0,
        schedule_delivery_time="",
        validity_period="",
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=0,
        sm_default_msg_id=0,
        short_message=b"Your OTP is 847291",
        sar_msg_ref_num=7,
        sar_total_segments=2,
        sar_segment_seqnum=1,
        user_message_reference=99,
    )
    pdu = decode(wire)
    assert isinstance(pdu, SubmitSm)
    assert (pdu.sequence_number, pdu.source_addr, pdu.destination_addr) == (22, "Hermes", "4512345678")
    assert (pdu.source_addr_ton, pdu.dest_addr_ton, pdu.registered_delivery) == (5, 1, 1)
    assert pdu.short_message == b"Your OTP is 847291"
    assert (pdu.tlvs.sar_msg_ref_num, pdu.tlvs.sar_total_segments, pdu.tlvs.sar_segment_seqnum) == (7, 2, 1)
    assert pdu.tlvs.user_message_reference == 99
    assert encode(pdu) == wire


def test_we_read_smpplib_deliver_sm_receipt() -> None:
    text = b"id:TEL-99887 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000"
    wire = _smpplib_make(
        "deliver_sm",
        23,
        source_addr="4512345678",
        destination_addr="Hermes",
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        short_message=text,
        receipted_message_id="TEL-99887",
        message_state=MessageState.DELIVERED,
        network_error_code=b"\x03\x00\x00",
    )
    pdu = decode(wire)
    assert isinstance(pdu, DeliverSm)
    assert pdu.esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_DELIVERY_RECEIPT
    assert pdu.short_message == text
    assert pdu.tlvs.receipted_message_id == "TEL-99887"
    assert pdu.tlvs.message_state == MessageState.DELIVERED
    assert pdu.tlvs.network_error_code == NetworkErrorCode(3, 0)


def test_we_read_smpplib_enquire_link() -> None:
    assert decode(_smpplib_make("enquire_link", 24)) == EnquireLink(24, tlvs=EMPTY_TLVS)
