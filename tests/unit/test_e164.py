"""`is_valid_canonical` gives phonenumbers' own answer: `is_valid_number` on the same number, for numbers
of every calling code (valid ones, near misses, random digits), and None where the full parser decides."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from appliance.domain.e164 import is_valid_canonical, split_canonical

_TYPES = list(phonenumbers.PhoneNumberType.values())


def _examples() -> list[str]:
    """Every example number phonenumbers has, per region and type and per non-geographic code."""
    numbers: list[phonenumbers.PhoneNumber | None] = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        numbers += [phonenumbers.example_number_for_type(region, kind) for kind in _TYPES]
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        numbers.append(phonenumbers.example_number_for_non_geo_entity(code))
    return sorted(
        {phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164) for n in numbers if n is not None}
    )


def _corpus(seed: int = 7) -> list[str]:
    """Examples, each with its tail replaced by random digits, one digit more and one less, and random
    digit strings after every calling code."""
    rng = random.Random(seed)
    digits = "0123456789"
    corpus: list[str] = []
    for example in _examples():
        corpus.append(example)
        for keep in (len(example) - 2, len(example) - 4, len(example) - 6):
            if keep > 3:
                tail = len(example) - keep
                corpus += [example[:keep] + "".join(rng.choices(digits, k=tail)) for _ in range(4)]
        corpus += [example + rng.choice(digits), example[:-1]]
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for length in range(4, 15 - len(str(code)) + 1):
            for _ in range(6):
                corpus.append(f"+{code}{rng.choice('123456789')}{''.join(rng.choices(digits, k=length - 1))}")
    return corpus


def test_same_verdict_as_phonenumbers_for_every_calling_code() -> None:
    corpus = _corpus()
    judged = valid = 0
    mismatches = []
    for text in corpus:
        verdict = is_valid_canonical(text)
        if verdict is None:
            continue
        number = split_canonical(text)
        assert number is not None
        expected = phonenumbers.is_valid_number(number)
        judged += 1
        valid += expected
        if verdict != expected:
            mismatches.append((text, verdict, expected))
    assert not mismatches[:20], f"{len(mismatches)} of {judged} differ"
    assert judged > 20_000 and valid > 3_000  # the corpus holds plenty of both


@pytest.mark.parametrize(
    "text",
    [
        "4520123456",
        "+45",
        "+0451234567",
        "+4501234567",
        "+45 20 12 34 56",
        "+3906123456",
        "+1234567890123456",
    ],
)
def test_not_canonical_or_leading_zero_is_left_to_the_full_parser(text: str) -> None:
    assert is_valid_canonical(text) is None


def test_a_code_that_no_region_uses_is_not_split() -> None:
    assert is_valid_canonical("+2812345678") is None  # 28 and 281 are unassigned; 2 alone is no code
