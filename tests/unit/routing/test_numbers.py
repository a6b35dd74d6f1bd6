"""parse_number: E.164, country, region, type and allocated carrier; invalid numbers refused."""

from __future__ import annotations

import pytest

from appliance.domain.routing import NumberInfo, parse_number
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
