"""What the numbering plan alone says about a destination: E.164 form, country, region, number type, and
the carrier its range was first allocated to.

The router calls `parse_number` before any MNP table or HLR lookup: an invalid number is refused here
(`InvalidInput`), so nothing is looked up or priced for it. The allocated carrier is only a guess once
numbers can be ported; `mnp.py` and HLR answers override it. Pure: phonenumbers' metadata is in-process.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec
import phonenumbers
from phonenumbers import carrier as _carrier
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata
from phonenumbers.phonenumberutil import _number_type_helper

from appliance.domain.e164 import split_canonical
from appliance.errors import InvalidInput

NumberType = Literal[
    "fixed_line",
    "mobile",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]

_TYPES: Final[dict[int, NumberType]] = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}
_PARSE_ERRORS: Final[dict[int, str]] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no valid country code (start with '+')",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}
# Digits with the usual separators; letters (vanity numbers, "ext.") are refused rather than converted.
_PHONE_CHARS: Final = re.compile(r"\+?[0-9 ().\-]{1,40}")


class NumberInfo(msgspec.Struct, frozen=True, kw_only=True):
    e164: str
    """"+4520123456"."""
    country_code: int
    """The calling code, 45."""
    region: str | None
    """ISO 3166 alpha-2 ("DK"), "001" for non-geographic numbers, None when the plan names none."""
    national_number: str
    """The national significant number as digits, leading zeros kept ("0612345678" in Italy)."""
    number_type: NumberType
    original_carrier_name: str | None
    """The carrier the range was allocated to (English name), None when the plan does not say."""


def parse_number(text: str, *, default_region: str | None = None, language: str = "en") -> NumberInfo:
    """Parse and validate a destination. Without `default_region` the number must start with "+".

    InvalidInput("number", ...) when it is not a valid number of any numbering plan.
    """
    if not _PHONE_CHARS.fullmatch(text.strip()):
        raise InvalidInput("number", f"{text!r} is not a phone number (digits, '+', spaces, '-', '.', '()')")
    # canonical input (what the cascade asks about) skips the generic parser when it is valid as split
    split = split_canonical(text)
    kind = None
    if split is not None:
        number = split
        region = phonenumbers.region_code_for_number(number)
        national = phonenumbers.national_significant_number(number)
        kind = _valid_type(number, region, national)
    if kind is None:
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException as exc:
            reason = _PARSE_ERRORS.get(exc.error_type, "not a phone number")
            raise InvalidInput("number", f"{text!r}: {reason}") from None
        region = phonenumbers.region_code_for_number(number)
        national = phonenumbers.national_significant_number(number)
        kind = _valid_type(number, region, national)
    if kind is None:
        raise InvalidInput("number", f"{text!r} is not a valid number in its numbering plan")
    return NumberInfo(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country_code=int(number.country_code or 0),
        region=region or None,
        national_number=national,
        number_type=_TYPES.get(kind, "unknown"),
        original_carrier_name=_carrier.name_for_valid_number(number, language) or None,
    )


def _valid_type(number: phonenumbers.PhoneNumber, region: str | None, national: str) -> int | None:
    """`phonenumbers.number_type` of a number that `phonenumbers.is_valid_number` accepts, else None.

    The same checks as `is_valid_number` (via `is_valid_number_for_region`), but matching the national
    number against the type patterns once instead of twice: that match is most of `parse_number`'s time,
    and the router parses every destination. tests/unit/routing/test_numbers.py holds it to the originals.
    """
    country_code = number.country_code
    if region is None or country_code is None:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None or (
        region != REGION_CODE_FOR_NON_GEO_ENTITY
        and country_code != phonenumbers.country_code_for_valid_region(region)
    ):
        return None
    kind = _number_type_helper(national, metadata)
    return None if kind == phonenumbers.PhoneNumberType.UNKNOWN else kind
