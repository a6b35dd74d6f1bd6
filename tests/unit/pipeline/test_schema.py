"""L5: request shapes, per-channel rules, every violation at once, and msgspec decode errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.message import BatchRequest, Message, MessageRequest
from appliance.domain.pipeline import Rejected, Rejection, describe_decode_error, normalize

EMAIL = {
    "channel": "email",
    "to": "ana@example.com",
    "from": "shop@example.org",
    "subject": "Hi",
    "body": "x",
}


def decode(body: dict[str, Any]) -> MessageRequest:
    return msgspec.json.decode(json.dumps(body).encode(), type=MessageRequest)


def run(body: dict[str, Any], **kwargs: Any) -> Message | Rejection:
    options: dict[str, Any] = {"tenant_id": "tn_1", "origin": "rest", "message_id": "msg_1", "now": 1700.0}
    return normalize(decode(body), **{**options, **kwargs})


def accepted(body: dict[str, Any], **kwargs: Any) -> Message:
    result = run(body, **kwargs)
    assert isinstance(result, Message), result
    return result


def errors(body: dict[str, Any]) -> dict[str, str]:
    result = run(body)
    assert isinstance(result, Rejection), result
    assert (result.status, result.code, result.layer) == (422, "invalid_message", "L5")
    return {e["field"]: e["reason"] for e in result.details["fields"]}


def test_short_sms_is_normalized_to_e164_with_its_parts() -> None:
    message = accepted({"to": "+45 23 45 67 89", "channel": "sms", "body": "Hello €"}, idempotency_key="k1")
    assert [(c.channel, c.to, c.timeout_s, c.success) for c in message.channels] == [
        ("sms", "+4523456789", 60.0, "delivered")
    ]
    assert (message.id, message.tenant_id, message.origin, message.created_at) == (
        "msg_1",
        "tn_1",
        "rest",
        1700.0,
    )
    assert (message.sms_encoding, message.sms_parts, message.idempotency_key) == ("gsm7", 1, "k1")
    assert (message.priority, message.metadata, message.marketing, message.notify_all) == (
        "normal",
        {},
        False,
        False,
    )


def test_short_email_carries_sender_subject_and_html() -> None:
    message = accepted({**EMAIL, "html": "<p>x</p>"})
    assert (message.channels[0].to, message.channels[0].timeout_s) == ("ana@example.com", 300.0)
    assert (message.sender, message.subject, message.body, message.html) == (
        "shop@example.org",
        "Hi",
        "x",
        "<p>x</p>",
    )
    assert message.sms_parts == 0 and message.sms_encoding is None


def test_email_with_only_html_is_fine() -> None:
    body = {k: v for k, v in EMAIL.items() if k != "body"}
    assert accepted({**body, "html": "<b>x</b>"}).body is None


@pytest.mark.parametrize(
    ("channel", "to", "expected"),
    [
        ("whatsapp", "+1 202 555 0143", "+12025550143"),
        ("push", "fcm:dGVzdA-token_1", "fcm:dGVzdA-token_1"),
        ("telegram", "-1001234567", "-1001234567"),
    ],
)
def test_short_form_for_other_channels(channel: str, to: str, expected: str) -> None:
    message = accepted({"to": to, "channel": channel, "body": "Hi"})
    assert message.channels[0].to == expected
    assert message.sms_parts == 0


def test_full_form_keeps_the_cascade_order_timeouts_and_success() -> None:
    message = accepted(
        {
            "channels": [
                {"channel": "whatsapp", "to": "+4523456789", "timeout_s": 30, "success": "read"},
                {"channel": "sms", "to": "+45 23 45 67 89"},
                {"channel": "email", "to": "ana@example.com", "timeout_s": 86400},
            ],
            "body": "Your order shipped",
            "subject": "Order",
            "from": "shop@example.org",
            "metadata": {"order": "42"},
            "priority": "high",
            "webhook_url": "https://hooks.example.com/hermes?x=1",
            "marketing": False,
            "consent": True,
            "notify_all": True,
        },
        default_timeouts={"sms": 45.0},
    )
    assert [(c.channel, c.to, c.timeout_s, c.success) for c in message.channels] == [
        ("whatsapp", "+4523456789", 30.0, "read"),
        ("sms", "+4523456789", 45.0, "delivered"),
        ("email", "ana@example.com", 86400.0, "delivered"),
    ]
    assert (message.priority, message.metadata, message.notify_all, message.consent) == (
        "high",
        {"order": "42"},
        True,
        True,
    )
    assert message.webhook_url == "https://hooks.example.com/hermes?x=1"
    assert (message.sms_encoding, message.sms_parts, message.sender) == ("gsm7", 1, "shop@example.org")


def test_every_violation_is_listed_at_once_with_its_path() -> None:
    found = errors(
        {
            "channels": [
                {"channel": "fax", "to": "+4523456789"},
                {"channel": "sms", "to": "4523456789", "colour": "red"},
                {"channel": "email", "to": "not-an-address", "timeout_s": 0},
                {"channel": "push", "success": "maybe"},
            ],
            "metadata": {"team": 7},
            "priority": "urgent",
            "webhook_url": "ftp://example.com/x",
            "marketing": "yes",
            "notify_all": 1,
            "subject": 5,
        }
    )
    assert set(found) == {
        "channels[0].channel",
        "channels[1].to",
        "channels[1].colour",
        "channels[2].to",
        "channels[2].timeout_s",
        "channels[3].to",
        "channels[3].success",
        "body",
        "subject",
        "from",
        "metadata.team",
        "priority",
        "webhook_url",
        "marketing",
        "notify_all",
    }
    assert found["channels[1].colour"] == "unknown field"
    assert found["channels[3].to"] == "required"
    assert "international" in found["channels[1].to"]


def test_the_message_of_a_single_error_names_it() -> None:
    result = run({"to": "+4523456789", "channel": "sms"})
    assert isinstance(result, Rejection)
    assert result.message == "body: required."
    assert result.body() == {
        "error": {
            "code": "invalid_message",
            "message": "body: required.",
            "layer": "L5",
            "details": {"fields": [{"field": "body", "reason": "required"}]},
        }
    }
    with pytest.raises(Rejected, match="invalid_message") as raised:
        raise Rejected(result)
    assert raised.value.rejection is result


def test_both_shapes_at_once_are_refused() -> None:
    found = errors({"to": "+4523456789", "channel": "sms", "channels": [], "body": "x"})
    assert set(found) == {"channels"} and "not both" in found["channels"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "x"}, "channels"),
        ({"to": "+4523456789", "body": "x"}, "channel"),
        ({"channel": "sms", "body": "x"}, "to"),
        ({"channels": [], "body": "x"}, "channels"),
        ({"channels": "sms", "body": "x"}, "channels"),
        ({"channels": ["sms"], "body": "x"}, "channels[0]"),
    ],
)
def test_missing_or_malformed_shapes(body: dict[str, Any], field: str) -> None:
    assert set(errors(body)) == {field}


def test_email_needs_sender_subject_and_content() -> None:
    assert set(errors({"to": "ana@example.com", "channel": "email"})) == {"from", "subject", "body"}


@pytest.mark.parametrize(
    "to",
    ["4523456789", "+45 2345", "+1-800-FLOWERS", "+4523456789 ext. 12", "+999 1234567", "", "+" + "1" * 60],
)
def test_bad_phone_numbers(to: str) -> None:
    assert set(errors({"to": to, "channel": "sms", "body": "x"})) == {"to"}


@pytest.mark.parametrize(
    "to",
    [
        "bob",
        "bob@example",
        "bob @example.com",
        "a@b@c.com",
        "bob@example.com\n",
        "bob@.com",
        "b\x00b@example.com",
    ],
)
def test_bad_email_addresses(to: str) -> None:
    assert set(errors({**EMAIL, "to": to})) == {"to"}


def test_length_boundaries() -> None:
    local = "a" * 64
    address = f"{local}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com"
    assert len(address) == 254
    assert accepted({**EMAIL, "to": address})
    assert set(errors({**EMAIL, "to": address.replace(".com", ".comm")})) == {"to"}
    assert accepted({**EMAIL, "subject": "s" * 998})
    assert set(errors({**EMAIL, "subject": "s" * 999})) == {"subject"}
    assert set(errors({**EMAIL, "subject": "Hi\r\nBcc: x@example.com"})) == {"subject"}
    assert accepted({**EMAIL, "html": "h" * 1_048_576})
    assert set(errors({**EMAIL, "html": "h" * 1_048_577})) == {"html"}
    assert set(errors({**EMAIL, "body": "é" * 524_289})) == {"body"}  # counted in UTF-8 bytes
    token = {"to": "t" * 4096, "channel": "push", "body": "x"}
    assert accepted(token)
    assert set(errors({**token, "to": "t" * 4097})) == {"to"}
    assert set(errors({**token, "to": "two words"})) == {"to"}
    assert set(errors({**token, "body": "x" * 4097})) == {"body"}
    sms = {"to": "+4523456789", "channel": "sms"}
    assert set(errors({**sms, "body": "x" * 1601})) == {"body"}
    assert set(errors({**sms, "body": ""})) == {"body"}


def test_metadata_limits() -> None:
    sms = {"to": "+4523456789", "channel": "sms", "body": "x"}
    assert accepted({**sms, "metadata": {f"k{i}": "v" * 512 for i in range(20)}})
    assert accepted({**sms, "metadata": {"k" * 64: "v"}})
    assert set(errors({**sms, "metadata": {f"k{i}": "v" for i in range(21)}})) == {"metadata"}
    assert set(errors({**sms, "metadata": {"k" * 65: "v"}})) == {"metadata"}
    assert set(errors({**sms, "metadata": {"k": "v" * 513}})) == {"metadata.k"}
    assert set(errors({**sms, "metadata": ["k"]})) == {"metadata"}


def test_webhook_and_timeout_limits() -> None:
    sms = {"to": "+4523456789", "channel": "sms", "body": "x"}
    url = "https://example.com/" + "p" * 2028
    assert accepted({**sms, "webhook_url": url}).webhook_url == url
    assert set(errors({**sms, "webhook_url": url + "p"})) == {"webhook_url"}
    assert set(errors({**sms, "webhook_url": "https:///nohost"})) == {"webhook_url"}
    assert set(errors({**sms, "webhook_url": "https://exa mple.com/"})) == {"webhook_url"}
    step = {"channel": "sms", "to": "+4523456789"}
    for good in (1, 86400, 2.5):
        assert (
            accepted({"channels": [{**step, "timeout_s": good}], "body": "x"}).channels[0].timeout_s == good
        )
    for bad in (0.5, 86401, True, "60", None):
        body = {"channels": [{**step, "timeout_s": bad}], "body": "x"}
        assert bad is None or set(errors(body)) == {"channels[0].timeout_s"}


def test_at_most_five_channels() -> None:
    step = {"channel": "sms", "to": "+4523456789"}
    assert len(accepted({"channels": [step] * 5, "body": "x"}).channels) == 5
    assert set(errors({"channels": [step] * 6, "body": "x"})) == {"channels"}


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("x" * 160, "gsm7", 1),
        ("x" * 161, "gsm7", 2),
        ("€" * 80, "gsm7", 1),  # an extension character takes two septets
        ("€" * 81, "gsm7", 2),
        ("x" * 1530, "gsm7", 10),
        ("Hej 😀", "ucs2", 1),
        ("ж" * 70, "ucs2", 1),
        ("ж" * 71, "ucs2", 2),
        ("ж" * 670, "ucs2", 10),
    ],
)
def test_sms_parts_and_encoding_are_reported(text: str, encoding: str, parts: int) -> None:
    message = accepted({"to": "+4523456789", "channel": "sms", "body": text})
    assert (message.sms_encoding, message.sms_parts) == (encoding, parts)


@pytest.mark.parametrize("text", ["x" * 1531, "ж" * 671])
def test_more_than_ten_parts_are_refused(text: str) -> None:
    found = errors({"to": "+4523456789", "channel": "sms", "body": text})
    assert set(found) == {"body"} and "11 SMS parts" in found["body"]


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("+45 23 45 67 89", "+4523456789"),
        ("Hermes", "Hermes"),
        ("ABCDEFGHIJK", "ABCDEFGHIJK"),
        ("Shop{1}", "Shop{1}"),
    ],
)
def test_sms_senders(sender: str, expected: str) -> None:
    assert accepted({"to": "+4523456789", "channel": "sms", "body": "x", "from": sender}).sender == expected


@pytest.mark.parametrize("sender", ["ABCDEFGHIJKL", "ABCDEFGHI{}", "Ünïcode", "+45 12", "Tab\tName", "", 42])
def test_bad_sms_senders(sender: object) -> None:
    assert set(errors({"to": "+4523456789", "channel": "sms", "body": "x", "from": sender})) == {"from"}


def test_an_sms_sender_must_be_an_address_when_email_is_in_the_cascade() -> None:
    cascade = {
        "channels": [{"channel": "sms", "to": "+4523456789"}, {"channel": "email", "to": "ana@example.com"}],
        "body": "x",
        "subject": "s",
    }
    assert set(errors({**cascade, "from": "Hermes"})) == {"from"}
    assert accepted({**cascade, "from": "shop@example.org"}).sender == "shop@example.org"


def test_malformed_json_is_a_400() -> None:
    with pytest.raises(msgspec.DecodeError) as raised:
        msgspec.json.decode(b'{"to": ', type=MessageRequest)
    rejection = describe_decode_error(raised.value)
    assert (rejection.status, rejection.code, rejection.layer) == (400, "malformed_json", "L5")
    assert rejection.details == {"reason": "Input data was truncated"}


@pytest.mark.parametrize(
    ("raw", "kind", "field", "reason"),
    [
        (b'{"to": "+4523456789", "bogus": 1}', MessageRequest, "bogus", "unknown field"),
        (b"[1, 2]", MessageRequest, "$", "expected object, got array"),
        (b"null", MessageRequest, "$", "expected object, got null"),
        (b"{}", BatchRequest, "messages", "required"),
        (b'{"messages": 5}', BatchRequest, "messages", "expected array, got int"),
    ],
)
def test_decode_errors_name_the_field(raw: bytes, kind: type[Any], field: str, reason: str) -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.json.decode(raw, type=kind)
    rejection = describe_decode_error(raised.value)
    assert (rejection.status, rejection.code, rejection.layer) == (422, "invalid_message", "L5")
    assert rejection.details == {"fields": [{"field": field, "reason": reason}]}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from(
    ["to", "channel", "channels", "body", "subject", "html", "from", "metadata", "priority", "webhook_url"]
)
_channels = st.lists(
    st.fixed_dictionaries(
        {"channel": st.sampled_from(["sms", "email", "push", "fax"]) | _json},
        optional={"to": st.sampled_from(["+4523456789", "a@b.example", "tok"]) | _json, "timeout_s": _json},
    ),
    max_size=6,
)


@given(body=st.dictionaries(_fields, _json, max_size=8), channels=st.none() | _channels)
def test_any_json_body_gets_a_message_or_a_422_never_an_exception(
    body: dict[str, Any], channels: list[dict[str, Any]] | None
) -> None:
    if channels is not None:
        body = {**body, "channels": channels}
    result = run(body)
    if isinstance(result, Rejection):
        assert result.status == 422 and result.details["fields"]
        assert all(set(error) == {"field", "reason"} for error in result.details["fields"])
    else:
        assert 1 <= len(result.channels) <= 5


@given(st.integers(min_value=1, max_value=999), st.text(alphabet="0123456789", min_size=4, max_size=13))
def test_the_canonical_fast_path_agrees_with_phonenumbers(country: int, national: str) -> None:
    import phonenumbers

    from appliance.domain.pipeline.fields import parse_e164

    text = f"+{country}{national}"
    try:
        parsed = phonenumbers.parse(text, None)
        expected = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed)
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    assert parse_e164.__wrapped__(text) == expected
