"""GSM 03.38 (3GPP TS 23.038) text: the 7-bit default alphabet, UCS-2, and decoding by data_coding.

SMPP carries GSM 7-bit text unpacked, one septet per octet (data_coding 0), so that is what
`encode_gsm7`/`decode_gsm7` produce and read; `pack_septets`/`unpack_septets` give the packed form the
air interface (and a UDH-bearing TPDU) uses. Characters of the extension table cost two septets
(escape 0x1B + code), which is why lengths are counted here and not with `len()`. Segmentation into
message parts lives in `appliance.domain.segmentation`. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from appliance.errors import InvalidInput, ProtocolError

TextEncoding = Literal["gsm7", "ucs2"]

ESCAPE: Final = 0x1B
"""Septet that switches the next septet to the extension table."""

GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The default alphabet, indexed by septet; index 0x1B is the escape, not a character."""

GSM7_EXTENSION: Final = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
"""The basic extension table: each character is sent as ESCAPE followed by this code."""

DATA_CODING_GSM7: Final = 0x00
DATA_CODING_IA5: Final = 0x01
DATA_CODING_LATIN1: Final = 0x03
DATA_CODING_BINARY: Final = 0x04
DATA_CODING_UCS2: Final = 0x08

_ENCODE_MAP: Final[dict[int, str]] = {ord(c): chr(i) for i, c in enumerate(GSM7_BASIC) if i != ESCAPE}
_ENCODE_MAP.update({ord(c): f"\x1b{chr(code)}" for c, code in GSM7_EXTENSION.items()})
_DECODE_MAP: Final[dict[int, str]] = {i: c for i, c in enumerate(GSM7_BASIC) if i != ESCAPE}
_EXTENSION_DECODE: Final[dict[int, str]] = {code: c for c, code in GSM7_EXTENSION.items()}
_EXTENSION_DECODE[ESCAPE] = " "  # 0x1B1B is reserved for a further table; 23.038 says show a space
_NON_GSM7: Final = re.compile(
    "[^" + "".join(re.escape(chr(cp)) for cp in _ENCODE_MAP) + "]",
)
_EXTENSION_CHARS: Final = re.compile("[" + "".join(re.escape(c) for c in GSM7_EXTENSION) + "]")
_CR: Final = 0x0D


def is_gsm7(text: str) -> bool:
    """Whether every character is in the default alphabet or its extension table."""
    return _NON_GSM7.search(text) is None


def gsm7_length(text: str) -> int:
    """Septets `text` takes in GSM 7-bit: extension characters count twice. Assumes `is_gsm7(text)`."""
    return len(text) + len(_EXTENSION_CHARS.findall(text))


def ucs2_length(text: str) -> int:
    """UTF-16 code units: a character outside the BMP (an emoji) is a surrogate pair, two units."""
    return len(text) if text.isascii() else len(text.encode("utf-16-be", "surrogatepass")) // 2


def choose_encoding(text: str) -> TextEncoding:
    """GSM 7-bit when every character fits, else UCS-2: the cheapest encoding that loses nothing."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def encode_gsm7(text: str) -> bytes:
    """Text -> unpacked septets, one per octet, as SMPP sends with data_coding 0."""
    bad = _NON_GSM7.search(text)
    if bad is not None:
        raise InvalidInput("text", f"{bad.group()!r} at {bad.start()} is not in the GSM 7-bit alphabet")
    return text.translate(_ENCODE_MAP).encode("latin-1")


def decode_gsm7(septets: bytes) -> str:
    """Unpacked septets -> text. An unknown escape shows the base character, as 23.038 asks."""
    if not septets.isascii():
        raise ProtocolError("GSM 7-bit data has an octet above 0x7F")
    text = septets.decode("latin-1")
    if "\x1b" not in text:
        return text.translate(_DECODE_MAP)
    parts: list[str] = []
    pos = 0
    while (esc := text.find("\x1b", pos)) >= 0:
        parts.append(text[pos:esc].translate(_DECODE_MAP))
        if esc + 1 == len(text):
            parts.append(" ")  # a dangling escape: nothing to extend
            return "".join(parts)
        code = septets[esc + 1]
        parts.append(_EXTENSION_DECODE.get(code) or _DECODE_MAP[code])
        pos = esc + 2
    parts.append(text[pos:].translate(_DECODE_MAP))
    return "".join(parts)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB-first into octets, after `fill_bits` zero bits (to align behind a UDH).

    When exactly 7 bits are left over in the last octet they hold CR, so a receiver does not read a
    spurious '@' there (23.038 §6.1.2.3.1).
    """
    if not 0 <= fill_bits <= 6:
        raise InvalidInput("fill_bits", "must be 0..6")
    if not septets.isascii():
        raise InvalidInput("septets", "a septet is 0..0x7F")
    bits = fill_bits + 7 * len(septets)
    value = 0
    for i, septet in enumerate(septets):
        value |= septet << (fill_bits + 7 * i)
    if bits % 8 == 1:
        value |= _CR << bits
        bits += 7
    return value.to_bytes((bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Packed octets -> one septet per octet; without `count` (the UDL) a padding CR is dropped."""
    if not 0 <= fill_bits <= 6:
        raise InvalidInput("fill_bits", "must be 0..6")
    available = (8 * len(data) - fill_bits) // 7
    if count is None:
        count = available
        strip_cr = (8 * len(data) - fill_bits) % 7 == 0 and count > 0
    else:
        if count > available:
            raise ProtocolError(f"{len(data)} octets cannot hold {count} septets")
        strip_cr = False
    value = int.from_bytes(data, "little") >> fill_bits
    septets = bytes((value >> (7 * i)) & 0x7F for i in range(count))
    if strip_cr and septets[-1] == _CR:
        septets = septets[:-1]
    return septets


def encode_ucs2(text: str) -> bytes:
    """Text -> UCS-2 as SMPP data_coding 8 carries it: UTF-16-BE, so an emoji becomes a surrogate pair."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise InvalidInput("text", f"unpaired surrogate at {exc.start}") from None


def decode_ucs2(data: bytes) -> str:
    """UTF-16-BE octets -> text; an odd length or an unpaired surrogate is the peer's fault."""
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UCS-2/UTF-16: {exc.reason} at octet {exc.start}") from None


def decode_latin1(data: bytes) -> str:
    """data_coding 3 (ISO-8859-1): every octet is a character, so this cannot fail."""
    return data.decode("latin-1")


def decode_text(data: bytes, data_coding: int) -> str:
    """Short-message octets (no UDH) -> text, by SMPP data_coding; 0 is taken to mean GSM 7-bit."""
    if data_coding == DATA_CODING_GSM7:
        return decode_gsm7(data)
    if data_coding == DATA_CODING_UCS2:
        return decode_ucs2(data)
    if data_coding == DATA_CODING_LATIN1:
        return decode_latin1(data)
    if data_coding == DATA_CODING_IA5:
        if not data.isascii():
            raise ProtocolError("IA5 data has an octet above 0x7F")
        return data.decode("ascii")
    if data_coding & 0xF4 == 0xF0:  # GSM message-class coding group, default alphabet
        return decode_gsm7(data)
    raise ProtocolError(f"data_coding 0x{data_coding:02X} is not a text encoding Hermes reads")
