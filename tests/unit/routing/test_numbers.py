"""parse_number: E.164, country, region, type and allocated carrier; invalid numbers refused; the same
answers as phonenumbers' public functions."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import carrier

from appliance.domain.routing import NumberInfo, parse_number
from appliance.domain.routing.numbers import _TYPES
from appliance.errors import InvalidInput


def test_danish_mobile_number() -> None:
    assert parse_number("+45 20 12 34 56") == NumberInfo(
        e164="+4520123456",
        country_code=45,
        region="DK",
        national_number="20123456",
        number_type="fixed_line_or_mobile",
        original_carrier_name="tdc",
    )


def test_mobile_number_in_a_crown_dependency_keeps_its_own_region_and_carrier() -> None:
    info = parse_number("+447911123456")
    assert (info.country_code, info.number_type) == (44, "mobile")
    assert (info.region, info.e164, info.original_carrier_name) == ("GG", "+447911123456", "JT")


def test_national_format_with_default_region() -> None:
    assert parse_number("20 12 34 56", default_region="DK").e164 == "+4520123456"


def test_italian_leading_zero_is_kept_in_the_national_number() -> None:
    info = parse_number("+39 06 1234 5678")
    assert (info.region, info.national_number, info.number_type) == ("IT", "0612345678", "fixed_line")


def test_no_allocated_carrier_is_none_not_empty() -> None:
    assert parse_number("+12015550123").original_carrier_name is None


def test_non_geographic_number_has_region_001() -> None:
    info = parse_number("+800 1234 5678")
    assert (info.region, info.number_type) == ("001", "toll_free")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not a phone number"),
        ("+45 CALL NOW", "is not a phone number"),
        ("20123456", "no valid country code"),
        ("+4520", "not a valid number"),
        ("+45201234567890123", "not a valid number"),
        ("+4520123456789012345678", "too long"),
        ("+999 1234567", "no valid country code"),
        ("+45 2012 3456 ext. 7", "is not a phone number"),
    ],
)
def test_invalid_numbers_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        parse_number(text)
    assert caught.value.field == "number"


def _reference(text: str) -> NumberInfo | None:
    """parse_number as phonenumbers' public functions say it (validity and type each matched once)."""
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    region = phonenumbers.region_code_for_number(number)
    return NumberInfo(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country_code=int(number.country_code or 0),
        region=region or None,
        national_number=phonenumbers.national_significant_number(number),
        number_type=_TYPES.get(phonenumbers.number_type(number), "unknown"),
        original_carrier_name=carrier.name_for_valid_number(number, "en") or None,
    )


def _parsed(text: str) -> NumberInfo | None:
    try:
        return parse_number(text)
    except InvalidInput:
        return None


def _examples() -> list[str]:
    """An example number of every type of every region and non-geographic calling code, E.164."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return found


def test_parse_number_agrees_with_phonenumbers_on_example_numbers_and_their_neighbours() -> None:
    examples = _examples()
    assert len(examples) > 1000
    for text in examples:
        assert _parsed(text) is not None, text
        variants = [
            text,
            text[:-1],
            text + "1",
            text[:-1] + str((int(text[-1]) + 5) % 10),
            text[:4] + text[5:],
        ]
        for variant in variants:
            assert _parsed(variant) == _reference(variant), variant


@given(st.text("0123456789", min_size=3, max_size=15))
def test_parse_number_agrees_with_phonenumbers_on_any_digits(digits: str) -> None:
    assert _parsed("+" + digits) == _reference("+" + digits)
