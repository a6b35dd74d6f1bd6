"""`parse_number`'s fast path for canonical E.164 input agrees with phonenumbers' generic parser."""

from __future__ import annotations

from unittest.mock import patch

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.routing.numbers import parse_number
from appliance.errors import InvalidInput


def _examples() -> list[str]:
    """A valid example number of each type of each region phonenumbers knows."""
    found = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(found)


_EXAMPLES = _examples()


@settings(max_examples=600, deadline=None)
@given(
    text=st.one_of(
        st.sampled_from(_EXAMPLES),
        # an example with its last digits changed: valid or not, both paths must agree
        st.tuples(st.sampled_from(_EXAMPLES), st.text(alphabet="0123456789", min_size=1, max_size=3)).map(
            lambda pair: pair[0][: -len(pair[1])] + pair[1]
        ),
        st.tuples(
            st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
            st.text(alphabet="0123456789", min_size=4, max_size=13),
        ).map(lambda pair: f"+{pair[0]}{pair[1]}"),
    )
)
def test_canonical_numbers_parse_the_same_without_the_generic_parser(text: str) -> None:
    """The split-by-country-code fast path never answers differently from phonenumbers.parse."""
    fast = _outcome(text)
    with patch("appliance.domain.routing.numbers.split_canonical", return_value=None):
        slow = _outcome(text)
    assert fast == slow


def _outcome(text: str) -> object:
    try:
        return parse_number(text)
    except InvalidInput as exc:
        return str(exc)
