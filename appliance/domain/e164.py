"""Canonical E.164 numbers without phonenumbers' generic parser.

`phonenumbers.parse` handles every way people write numbers (national formats, trunk and IDD prefixes,
extensions) and costs more than the rest of a gateway request or a route decision. Messages carry
numbers already canonical (`+4523456789`: the gateway stores them that way), so for those the country
code is split off by table lookup and phonenumbers only checks validity against its metadata.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers

CANONICAL_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")


def split_canonical(text: str) -> phonenumbers.PhoneNumber | None:
    """`+<country code><national number>` split by the country codes phonenumbers knows (1-3 digits),
    unvalidated; None when `text` is not canonical or is a case for the full parser."""
    if not CANONICAL_E164.fullmatch(text):
        return None
    for length in (1, 2, 3):
        code = int(text[1 : 1 + length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + length :]
            if not national or national.startswith("0"):
                return None  # a leading 0 is a trunk prefix or an Italian-style zero: the full parser decides
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None
