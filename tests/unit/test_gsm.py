"""GSM 03.38 text, segmentation into SMS parts, UDH parsing and reassembly."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.gsm import (
    ESCAPE,
    GSM7_BASIC,
    GSM7_EXTENSION,
    choose_encoding,
    decode_gsm7,
    decode_text,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    gsm7_length,
    is_gsm7,
    pack_septets,
    ucs2_length,
    unpack_septets,
)
from appliance.domain.segmentation import (
    Concat,
    Reassembler,
    Sar,
    format_concat,
    parse_concat,
    parse_udh,
    segment_binary,
    segment_count,
    segment_part,
    segment_text,
)
from appliance.errors import InvalidInput, ProtocolError
from appliance.protocols.smpp import EsmClass, SubmitSm, Tlvs, decode, encode

GSM_CHARS = [c for i, c in enumerate(GSM7_BASIC) if i != ESCAPE] + list(GSM7_EXTENSION)


# ------------------------------------------------------------------------------------------- alphabet


def test_alphabet_tables_have_the_published_shape() -> None:
    assert len(GSM7_BASIC) == 128
    assert (GSM7_BASIC[0x00], GSM7_BASIC[0x02], GSM7_BASIC[0x11], GSM7_BASIC[0x24]) == ("@", "$", "_", "¤")
    assert (GSM7_BASIC[0x40], GSM7_BASIC[0x60], GSM7_BASIC[0x7F]) == ("¡", "¿", "à")
    assert set(GSM7_EXTENSION) == set("^{}\\[~]|€\f")


def test_hellohello_packs_to_the_published_octets() -> None:
    septets = encode_gsm7("hellohello")
    assert septets == b"hellohello"
    packed = pack_septets(septets)
    assert packed == bytes.fromhex("E8 32 9B FD 46 97 D9 EC 37")
    assert unpack_septets(packed) == septets
    assert unpack_septets(packed, 10) == septets


def test_seven_spare_bits_are_filled_with_cr_and_dropped_again() -> None:
    septets = encode_gsm7("1234567")
    packed = pack_septets(septets)
    assert len(packed) == 7
    assert packed[-1] >> 1 == 0x0D
    assert unpack_septets(packed) == septets
    assert unpack_septets(packed, 7) == septets


def test_fill_bits_align_septets_behind_a_udh() -> None:
    septets = encode_gsm7("concatenated")
    packed = pack_septets(septets, fill_bits=1)
    assert packed[0] & 1 == 0
    assert unpack_septets(packed, len(septets), fill_bits=1) == septets


def test_extension_characters_cost_two_septets() -> None:
    assert encode_gsm7("€") == b"\x1b\x65"
    assert encode_gsm7("[x]") == b"\x1b\x3cx\x1b\x3e"
    assert gsm7_length("€") == 2
    assert gsm7_length("{}^~|\\[]€\f") == 20
    assert gsm7_length("abc") == 3


def test_euro_in_gsm_versus_ucs2() -> None:
    assert is_gsm7("€5")
    assert encode_gsm7("€5") == b"\x1b\x655"  # three septets
    assert encode_ucs2("€5") == b"\x20\xac\x00\x35"  # two units
    assert segment_count("€" * 80) == ("gsm7", 1)
    assert segment_count("€" * 81) == ("gsm7", 2)


def test_emoji_forces_ucs2_and_counts_as_two_units() -> None:
    text = "Hi 😀"
    assert not is_gsm7(text)
    assert choose_encoding(text) == "ucs2"
    assert ucs2_length(text) == 5
    assert encode_ucs2("😀") == bytes.fromhex("D83D DE00")
    assert decode_ucs2(encode_ucs2(text)) == text
    assert segment_count("😀" * 35) == ("ucs2", 1)
    assert segment_count("😀" * 36) == ("ucs2", 2)


def test_gsm_decoding_of_escapes() -> None:
    assert decode_gsm7(b"\x1b\x65 \x00\x02") == "€ @$"
    assert decode_gsm7(b"\x1b\x41") == "A"  # unknown extension: the base character
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"  # reserved double escape shows a space
    assert decode_gsm7(b"a\x1b") == "a "
    with pytest.raises(ProtocolError):
        decode_gsm7(b"\x80")


def test_non_gsm_text_is_refused_by_the_gsm_encoder() -> None:
    assert not is_gsm7("ç")  # only capital Ç is in the table
    with pytest.raises(InvalidInput, match="not in the GSM 7-bit alphabet"):
        encode_gsm7("façade")
    with pytest.raises(InvalidInput):
        encode_ucs2("\ud800")


def test_decode_by_data_coding() -> None:
    assert decode_text(b"\x00\x1b\x65", 0) == "@€"
    assert decode_text(b"plain", 1) == "plain"
    assert decode_text("café".encode("latin-1"), 3) == "café"
    assert decode_text("жž😀".encode("utf-16-be"), 8) == "жž😀"
    assert decode_text(b"hi", 0xF0) == "hi"
    with pytest.raises(ProtocolError):
        decode_text(b"\x00", 8)  # odd length
    with pytest.raises(ProtocolError):
        decode_text(b"\x00\x01", 4)  # binary is not text


@settings(deadline=None)
@given(st.text(st.sampled_from(GSM_CHARS), max_size=400))
def test_gsm_round_trip(text: str) -> None:
    septets = encode_gsm7(text)
    assert len(septets) == gsm7_length(text)
    assert decode_gsm7(septets) == text
    assert unpack_septets(pack_septets(septets), len(septets)) == septets


# --------------------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("gsm7", 1)),
        ("a" * 160, ("gsm7", 1)),
        ("a" * 161, ("gsm7", 2)),
        ("a" * 306, ("gsm7", 2)),
        ("a" * 307, ("gsm7", 3)),
        ("ж" * 70, ("ucs2", 1)),
        ("ж" * 71, ("ucs2", 2)),
        ("ж" * 134, ("ucs2", 2)),
        ("ж" * 135, ("ucs2", 3)),
        ("€" * 152, ("gsm7", 2)),  # 76 euros (152 septets) per part
        ("€" * 153, ("gsm7", 3)),  # 306 septets, yet a 77th euro cannot straddle parts
        ("a" * 152 + "€" + "a" * 152, ("gsm7", 3)),  # the escape moves to part 2, pushing 1 septet on
    ],
)
def test_segment_count_boundaries(text: str, expected: tuple[str, int]) -> None:
    assert segment_count(text) == expected
    assert len(segment_text(text)) == expected[1]


def test_single_part_has_no_udh() -> None:
    (part,) = segment_text("a" * 160)
    assert (part.short_message, part.data_coding, part.udhi, part.sar) == (b"a" * 160, 0, False, None)


def test_parts_carry_an_8_bit_concat_udh() -> None:
    parts = segment_text("b" * 200, reference=0x42)
    assert [p.short_message[:6] for p in parts] == [b"\x05\x00\x03\x42\x02\x01", b"\x05\x00\x03\x42\x02\x02"]
    assert [len(p.short_message) - 6 for p in parts] == [153, 47]
    assert all(p.udhi and p.data_coding == 0 for p in parts)
    ucs2 = segment_text("ж" * 100, reference=7)
    assert [len(p.short_message) for p in ucs2] == [140, 72]
    assert all(p.data_coding == 8 for p in ucs2)


def test_parts_can_use_sar_instead_of_udh() -> None:
    parts = segment_text("c" * 200, reference=0x1234, use_sar=True)
    assert [p.sar for p in parts] == [Sar(0x1234, 2, 1), Sar(0x1234, 2, 2)]
    assert [len(p.short_message) for p in parts] == [153, 47]
    assert not any(p.udhi for p in parts)


def test_escape_pair_is_never_split() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = segment_text(text, reference=1)
    payloads = [p.short_message[6:] for p in parts]
    assert [len(p) for p in payloads] == [152, 12]
    assert payloads[1].startswith(b"\x1b\x65")
    assert decode_gsm7(b"".join(payloads)) == text
    assert [decode_gsm7(p) for p in payloads] == ["a" * 152, "€" + "b" * 10]


def test_surrogate_pair_is_never_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10
    parts = segment_text(text, reference=1)
    payloads = [p.short_message[6:] for p in parts]
    assert [len(p) for p in payloads] == [132, 24]
    assert [decode_ucs2(p) for p in payloads] == ["ж" * 66, "😀" + "ж" * 10]


def test_forced_encodings_and_limits() -> None:
    assert segment_text("hi", encoding="ucs2")[0].short_message == b"\x00h\x00i"
    with pytest.raises(InvalidInput):
        segment_text("😀", encoding="gsm7")
    with pytest.raises(InvalidInput, match="reference"):
        segment_text("x" * 200, reference=256)
    with pytest.raises(InvalidInput, match="at most 255"):
        segment_text("x" * 153 * 256)


def test_binary_segments() -> None:
    assert len(segment_binary(b"\xff" * 140)) == 1
    parts = segment_binary(b"\xff" * 141, reference=9)
    assert [len(p.short_message) for p in parts] == [140, 13]
    assert all(p.data_coding == 4 for p in parts)


_ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=400)


@settings(deadline=None, max_examples=200)
@given(st.one_of(_ANY_TEXT, st.text(st.sampled_from(GSM_CHARS), max_size=700)), st.booleans())
def test_segments_rejoin_to_the_text_and_respect_limits(text: str, use_sar: bool) -> None:
    encoding, count = segment_count(text)
    parts = segment_text(text, reference=5, use_sar=use_sar)
    assert len(parts) == count
    payloads = [p.short_message[0 if use_sar or count == 1 else 6 :] for p in parts]
    decode = decode_gsm7 if encoding == "gsm7" else decode_ucs2
    assert decode(b"".join(payloads)) == text
    assert all(decode(p) for p in payloads[1:])  # every part decodes alone: nothing split mid-character
    limit = (160 if encoding == "gsm7" else 140) if count == 1 else (153 if encoding == "gsm7" else 134)
    assert all(len(p) <= limit for p in payloads)


# -------------------------------------------------------------------------------------- UDH, reassembly


def test_parse_udh_8_and_16_bit_concat_and_ports() -> None:
    udh, payload = parse_udh(segment_text("d" * 200, reference=0x42)[1].short_message)
    assert udh.concat == Concat(0x42, 2, 2)
    assert payload == b"d" * 47
    udh, payload = parse_udh(b"\x0c\x08\x04\x12\x34\x03\x02\x05\x04\x0b\x84\x23\xf0rest")
    assert udh.concat == Concat(0x1234, 3, 2)
    assert udh.ports == (0x0B84, 0x23F0)
    assert [iei for iei, _ in udh.elements] == [0x08, 0x05]
    assert payload == b"rest"


def test_parse_udh_ignores_nonsense_concat_and_refuses_overruns() -> None:
    assert parse_udh(b"\x05\x00\x03\x01\x02\x03x")[0].concat is None  # part 3 of 2
    assert parse_udh(b"\x05\x00\x03\x01\x00\x00x")[0].concat is None
    for bad in (b"", b"\x09\x00\x03\x01", b"\x03\x00\x05\x01\x02", b"\x01\x00"):
        with pytest.raises(ProtocolError):
            parse_udh(bad)


def _parts_of(text: str, reference: int) -> list[tuple[Concat, bytes]]:
    out = []
    for part in segment_text(text, reference=reference):
        udh, payload = parse_udh(part.short_message)
        assert udh.concat is not None
        out.append((udh.concat, payload))
    return out


@settings(deadline=None)
@given(st.integers(2, 6), st.randoms(use_true_random=False))
def test_reassembly_in_any_order_with_duplicates(total: int, rng: random.Random) -> None:
    text = "".join(rng.choice(GSM_CHARS) for _ in range(153 * total - 20))
    parts = _parts_of(text, reference=9)
    arrivals = parts + rng.sample(parts, k=rng.randint(0, len(parts)))
    rng.shuffle(arrivals)
    last_new_part = max(arrivals.index(part) for part in parts)
    reassembler = Reassembler()
    for i, (concat, payload) in enumerate(arrivals[: last_new_part + 1]):
        whole = reassembler.add(("4512345678", "Hermes"), concat, payload, now=1.0)
        assert (whole is None) == (i < last_new_part)  # duplicates before then change nothing
    assert whole is not None
    assert decode_gsm7(whole) == text
    assert reassembler.pending == 0


def test_single_part_concat_passes_straight_through() -> None:
    assert Reassembler().add("k", Concat(1, 1, 1), b"x", now=0.0) == b"x"
    with pytest.raises(InvalidInput):
        Reassembler().add("k", Concat(1, 2, 3), b"x", now=0.0)


def test_sets_are_kept_apart_by_key_and_reference() -> None:
    reassembler = Reassembler()
    assert reassembler.add("alice", Concat(1, 2, 1), b"A1", now=0) is None
    assert reassembler.add("bob", Concat(1, 2, 2), b"B2", now=0) is None
    assert reassembler.add("alice", Concat(2, 2, 2), b"X2", now=0) is None
    assert reassembler.add("alice", Concat(1, 2, 2), b"A2", now=0) == b"A1A2"
    assert reassembler.pending == 2


def test_incomplete_sets_expire_with_the_clock_passed_in() -> None:
    reassembler = Reassembler(timeout=60)
    reassembler.add("k", Concat(5, 3, 1), b"p1", now=100.0)
    reassembler.add("k", Concat(5, 3, 3), b"p3", now=130.0)
    assert reassembler.expire(now=160.0) == []
    (gone,) = reassembler.expire(now=160.5)
    assert (gone.key, gone.reference, gone.total, gone.received, gone.first_seen) == (
        "k",
        5,
        3,
        (1, 3),
        100.0,
    )
    assert reassembler.pending == 0
    # a part that arrives after its set expired starts over rather than completing stale parts
    reassembler.add("k", Concat(6, 2, 1), b"q1", now=0.0)
    assert reassembler.add("k", Concat(6, 2, 2), b"q2", now=61.0) is None
    assert [g.received for g in reassembler.expire(now=61.0)] == [(1,)]
    assert reassembler.pending == 1


def test_pending_sets_are_bounded() -> None:
    reassembler = Reassembler(max_pending=2)
    for ref in range(3):
        reassembler.add("k", Concat(ref, 2, 1), b"x", now=float(ref))
    assert reassembler.pending == 2
    assert [g.reference for g in reassembler.expire(now=3.0)] == [0]


def test_parts_travel_through_submit_sm_and_back_together() -> None:
    """Segmentation, the SMPP codec, UDH parsing and reassembly, end to end (UDH and SAR flavours)."""
    text = "Grüße aus Kopenhagen, {Hermes} " * 8
    by_udh, by_sar = Reassembler(), Reassembler()
    whole_udh = whole_sar = None
    for seq, part in enumerate(segment_text(text, reference=77)):
        pdu = decode(encode(SubmitSm(seq, esm_class=EsmClass.UDHI, short_message=part.short_message)))
        assert isinstance(pdu, SubmitSm)
        udh, payload = parse_udh(pdu.short_message)
        assert udh.concat is not None
        whole_udh = by_udh.add(("4512345678", "Hermes"), udh.concat, payload, now=0.0)
    for seq, part in enumerate(segment_text(text, reference=4242, use_sar=True)):
        assert part.sar is not None
        tlvs = Tlvs(
            sar_msg_ref_num=part.sar.msg_ref_num,
            sar_total_segments=part.sar.total_segments,
            sar_segment_seqnum=part.sar.segment_seqnum,
        )
        pdu = decode(encode(SubmitSm(seq, short_message=part.short_message, tlvs=tlvs)))
        assert isinstance(pdu, SubmitSm)
        ref, total, index = pdu.tlvs.sar_msg_ref_num, pdu.tlvs.sar_total_segments, pdu.tlvs.sar_segment_seqnum
        assert ref is not None and total is not None and index is not None
        whole_sar = by_sar.add("conversation", Concat(ref, total, index), pdu.short_message, now=0.0)
    assert whole_udh is not None and whole_sar is not None
    assert decode_text(whole_udh, 0) == decode_text(whole_sar, 0) == text


def test_a_client_part_keeps_its_numbering_and_must_fit_one_part() -> None:
    assert parse_concat(format_concat(Concat(300, 4, 2))) == Concat(300, 4, 2)
    for bad in (None, "", "1/2", "a/2/1", "1/2/3", "1/0/0", "70000/2/1"):
        assert parse_concat(bad) is None
    eight = segment_part("x" * 153, Concat(7, 2, 1), use_sar=False)
    assert eight.short_message[:6] == bytes([5, 0, 3, 7, 2, 1]) and eight.udhi
    sixteen = segment_part("x" * 152, Concat(0x1234, 2, 2), use_sar=False)
    assert sixteen.short_message[:7] == bytes([6, 8, 4, 0x12, 0x34, 2, 2])
    with pytest.raises(InvalidInput):
        segment_part("x" * 153, Concat(0x1234, 2, 2), use_sar=False)  # the 16-bit IE leaves 152
    with pytest.raises(InvalidInput):
        segment_part("ж" * 68, Concat(7, 2, 1), use_sar=False)  # UCS-2 parts hold 67
