"""L6: suppression, global opt-out and marketing consent, matched on normalized addresses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.domain.message import ChannelTarget, Message
from appliance.domain.pipeline import check_compliance, normalize_address


def message(*targets: tuple[str, str], marketing: bool = False, consent: bool = False) -> Message:
    return Message(
        id="msg_1",
        tenant_id="tn_1",
        origin="rest",
        channels=tuple(ChannelTarget(channel=c, to=t) for c, t in targets),
        created_at=0.0,
        body="x",
        marketing=marketing,
        consent=consent,
    )


def listed(*addresses: str) -> Callable[[str], bool]:
    return frozenset(addresses).__contains__


NOBODY = listed()


@pytest.mark.parametrize(
    ("channel", "to", "expected"),
    [
        ("sms", "+45 23 45 67 89", "+4523456789"),
        ("whatsapp", "+45-2345-6789", "+4523456789"),
        ("sms", " +4523456789 ", "+4523456789"),
        ("sms", "+99 (12) 34", "+991234"),  # not a valid number, still one stable key
        ("email", " Bob@Example.COM ", "bob@example.com"),
        ("push", " Token-AbC ", "Token-AbC"),
        ("telegram", "@Channel", "@Channel"),
    ],
)
def test_normalize_address(channel: str, to: str, expected: str) -> None:
    assert normalize_address(channel, to) == expected


def test_a_clean_message_passes_and_lookups_see_normalized_addresses() -> None:
    seen: list[str] = []

    def record(address: str) -> bool:
        seen.append(address)
        return False

    msg = message(("sms", "+45 23 45 67 89"), ("email", "Ana@Example.com"))
    assert (
        check_compliance(
            msg,
            suppressed=record,
            globally_opted_out=record,
            consent_required_for_marketing=True,
            has_consent=record,
        )
        is None
    )
    assert seen == ["+4523456789", "+4523456789", "ana@example.com", "ana@example.com"]


def test_any_blocked_channel_refuses_the_whole_message() -> None:
    msg = message(("sms", "+4523456789"), ("email", "Bob@Example.COM"))
    refused = check_compliance(
        msg,
        suppressed=listed("bob@example.com"),
        globally_opted_out=NOBODY,
        consent_required_for_marketing=False,
        has_consent=NOBODY,
    )
    assert refused is not None
    assert (refused.status, refused.code, refused.layer) == (451, "suppressed", "L6")
    assert refused.details == {"channel": "email", "to": "bob@example.com", "field": "channels[1].to"}
    assert "bob@example.com" in refused.message and "email" in refused.message


def test_a_global_opt_out_wins_over_the_tenant_list_and_covers_whatsapp_too() -> None:
    msg = message(("whatsapp", "+45 23 45 67 89"))
    refused = check_compliance(
        msg,
        suppressed=listed("+4523456789"),
        globally_opted_out=listed("+4523456789"),
        consent_required_for_marketing=False,
        has_consent=NOBODY,
    )
    assert refused is not None and refused.code == "opted_out"
    assert refused.details["channel"] == "whatsapp"


@pytest.mark.parametrize(
    ("marketing", "required", "asserted", "stored", "refused"),
    [
        (True, True, False, False, True),
        (True, True, True, False, False),  # the tenant asserts consent on the message
        (True, True, False, True, False),  # a stored opt-in
        (True, False, False, False, False),  # the jurisdiction does not require opt-in
        (False, True, False, False, False),  # transactional messages need no consent
    ],
)
def test_marketing_consent(
    marketing: bool, required: bool, asserted: bool, stored: bool, refused: bool
) -> None:
    msg = message(("sms", "+4523456789"), marketing=marketing, consent=asserted)
    result = check_compliance(
        msg,
        suppressed=NOBODY,
        globally_opted_out=NOBODY,
        consent_required_for_marketing=required,
        has_consent=listed("+4523456789") if stored else NOBODY,
    )
    if refused:
        assert result is not None and (result.status, result.code) == (451, "no_consent")
        assert result.details["to"] == "+4523456789"
    else:
        assert result is None
