"""Canonical E.164 numbers without phonenumbers' generic parser.

`phonenumbers.parse` handles every way people write numbers (national formats, trunk and IDD prefixes,
extensions) and costs more than the rest of a gateway request or a route decision. Messages carry
numbers already canonical (`+4523456789`: the gateway stores them that way), so for those the country
code is split off by table lookup and phonenumbers only checks validity against its metadata.

`is_valid_canonical` goes one step further for the gateway, which validates every recipient of every
message: phonenumbers' `is_valid_number` matches the national number against up to eleven patterns of
its metadata one Python call at a time (4 µs a number alone; 5% of a gateway worker's profile in a batch
load). The same metadata, the same rules, compiled per country and number length into one regex, answer
in well under a microsecond. tests/unit/test_e164.py holds it to `is_valid_number` on numbers
of every calling code.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata, PhoneNumberDesc

CANONICAL_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
_CALLING_CODES: Final = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def split_canonical(text: str) -> phonenumbers.PhoneNumber | None:
    """`+<country code><national number>` split by the country codes phonenumbers knows (1-3 digits),
    unvalidated; None when `text` is not canonical or is a case for the full parser."""
    split = _split(text)
    if split is None:
        return None
    code, national = split
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


def is_valid_canonical(text: str) -> bool | None:
    """What `phonenumbers.is_valid_number` says of canonical `text`; None when `text` is not canonical
    or is a case for the full parser (a national number with a leading zero)."""
    split = _split(text)
    if split is None:
        return None
    code, national = split
    country = _COUNTRIES.get(code)
    if country is None:
        country = _COUNTRIES[code] = _Country(code)
    return country.is_valid(national)


def _split(text: str) -> tuple[int, str] | None:
    if not CANONICAL_E164.fullmatch(text):
        return None
    for length in (1, 2, 3):
        code = _CALLING_CODES.get(text[1 : 1 + length])
        if code is not None:
            national = text[1 + length :]
            if not national or national.startswith("0"):
                return None  # a leading 0 is a trunk prefix or an Italian-style zero: the full parser decides
            return code, national
    return None


# The number types `_number_type_helper` tries after the general description; a match of any makes the
# number valid. Mobile is tried only where its pattern differs from fixed line's.
_TYPE_DESCS: Final = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _fits(desc: PhoneNumberDesc | None, length: int) -> bool:
    """`_is_number_matching_desc`'s checks that depend on the length alone."""
    if desc is None or not desc.national_number_pattern:
        return False
    return not desc.possible_length or length in desc.possible_length


class _Region:
    """One region's validity rules: `_number_type_helper(national, metadata) != UNKNOWN`, as one regex
    per national number length (the lengths each pattern applies to are known up front)."""

    __slots__ = ("_by_length", "_metadata", "leading_digits", "usable")

    def __init__(self, metadata: PhoneMetadata, usable: bool) -> None:
        self._metadata = metadata
        self.usable = usable
        self.leading_digits = None if metadata.leading_digits is None else re.compile(metadata.leading_digits)
        self._by_length: dict[int, re.Pattern[str] | None] = {}

    def matches(self, national: str) -> bool:
        length = len(national)
        try:
            pattern = self._by_length[length]
        except KeyError:
            pattern = self._by_length[length] = self._compile(length)
        return pattern is not None and pattern.fullmatch(national) is not None

    def _compile(self, length: int) -> re.Pattern[str] | None:
        metadata = self._metadata
        general = metadata.general_desc
        if general is None or not _fits(general, length):
            return None
        descs = [getattr(metadata, name) for name in _TYPE_DESCS]
        if not metadata.same_mobile_and_fixed_line_pattern:
            descs.append(metadata.mobile)
        alternatives = [f"(?:{desc.national_number_pattern})" for desc in descs if _fits(desc, length)]
        if not alternatives:
            return None
        return re.compile(rf"(?=(?:{general.national_number_pattern})\Z)(?:{'|'.join(alternatives)})")


class _Country:
    """`is_valid_number` for one calling code: pick the region as `region_code_for_number` does, then
    validate against that region as `is_valid_number_for_region` does."""

    __slots__ = ("_regions", "_single")

    def __init__(self, code: int) -> None:
        names = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
        regions: list[_Region] = []
        for name in names:
            if name == REGION_CODE_FOR_NON_GEO_ENTITY:
                metadata = PhoneMetadata.metadata_for_nongeo_region(code, None)
                usable = True
            else:
                metadata = PhoneMetadata.metadata_for_region(name.upper(), None)
                usable = phonenumbers.country_code_for_region(name) == code
            if metadata is not None:
                regions.append(_Region(metadata, usable))
        self._regions = tuple(regions)
        # a lone region is taken as it is; its metadata missing means no number is valid
        self._single = len(names) == 1

    def is_valid(self, national: str) -> bool:
        if self._single:
            return bool(self._regions) and self._regions[0].usable and self._regions[0].matches(national)
        for region in self._regions:
            if region.leading_digits is None:
                if region.matches(national):  # chosen by its own rules, so valid by them too
                    return region.usable
            elif region.leading_digits.match(national) is not None:
                return region.usable and region.matches(national)
        return False


_COUNTRIES: dict[int, _Country] = {}
