"""L7: prohibited patterns, blocked link domains, link counts and the spam score."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.message import ChannelTarget, Message
from appliance.domain.pipeline import ContentRules, ContentScanner, Rejection
from appliance.errors import InvalidInput

SMS = (
    "Hi Anna, your parcel 12345 arrives tomorrow 10-12. "
    "Track it at https://post.example.com/t/12345 or reply STOP."
)


def message(body: str | None = SMS, *, subject: str | None = None, html: str | None = None) -> Message:
    return Message(
        id="msg_1",
        tenant_id="tn_1",
        origin="rest",
        channels=(ChannelTarget(channel="sms", to="+4523456789"),),
        created_at=0.0,
        body=body,
        subject=subject,
        html=html,
    )


def refused(scanner: ContentScanner, msg: Message) -> dict[str, Any]:
    result = scanner.scan(msg)
    assert isinstance(result, Rejection), "expected a refusal"
    assert (result.status, result.code, result.layer) == (400, "content_rejected", "L7")
    return result.details


DEFAULT = ContentScanner(ContentRules())


def test_a_clean_sms_passes_the_default_rules() -> None:
    assert DEFAULT.scan(message()) is None
    assert DEFAULT.spam_score(message()) == (0.0, [])


def test_rules_load_from_config_and_refuse_unknown_keys() -> None:
    rules = msgspec.convert({"blocked_domains": ["evil.example"], "max_urls": 3}, ContentRules)
    assert (rules.blocked_domains, rules.max_urls, rules.default_shorteners) == (["evil.example"], 3, True)
    with pytest.raises(msgspec.ValidationError, match="unknown field `max_links`"):
        msgspec.convert({"max_links": 3}, ContentRules)


def test_prohibited_patterns_match_case_insensitively_in_any_part() -> None:
    scanner = ContentScanner(ContentRules(prohibited_patterns=[r"crypto\s+giveaway", r"(\d)\1{5}"]))
    assert refused(scanner, message("Join the CRYPTO  Giveaway today")) == {
        "rule": "prohibited_pattern",
        "match": "CRYPTO  Giveaway",
        "field": "body",
    }
    details = refused(scanner, message("fine", subject="Your PIN is 777777"))
    assert (details["match"], details["field"]) == ("777777", "subject")  # a backreference still works
    assert scanner.scan(message("crypto news, PIN 123456")) is None


def test_a_pattern_with_a_global_flag_still_works_beside_others() -> None:
    scanner = ContentScanner(ContentRules(prohibited_patterns=["(?s)begin.end", "casino"]))
    assert refused(scanner, message("begin\nend"))["match"] == "begin\nend"
    assert refused(scanner, message("online CASINO"))["match"] == "CASINO"
    assert scanner.scan(message()) is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(unclosed", "not a valid regex"),
        ("(a+)+$", "nests quantifiers"),
        (r"(\w*\s?)*x", "nests"),
        ("", "1..512"),
    ],
)
def test_a_bad_pattern_stops_the_rules_from_loading(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(reason)) as raised:
        ContentScanner(ContentRules(prohibited_patterns=["fine", pattern]))
    assert raised.value.field == "prohibited_patterns[1]"


def test_an_atomic_group_is_the_accepted_rewrite() -> None:
    scanner = ContentScanner(ContentRules(prohibited_patterns=["(?>a+)+b"]))
    assert scanner.scan(message("a" * 5000)) is None


@pytest.mark.parametrize(
    "text",
    [
        "Log in at https://login.evil.example/reset now",
        "Log in at evil.example/reset",
        "see www.evil.example",
        "HTTPS://EVIL.EXAMPLE./x",
        "https://user:pw@a.b.evil.example:8443/x",
    ],
)
def test_blocked_domains_match_their_subdomains(text: str) -> None:
    scanner = ContentScanner(ContentRules(blocked_domains=["*.Evil.Example"], default_shorteners=False))
    details = refused(scanner, message(text))
    assert (details["rule"], details["domain"], details["field"]) == (
        "blocked_domain",
        "evil.example",
        "body",
    )


def test_internationalized_domains_match_in_either_form() -> None:
    unicode_rule = ContentScanner(ContentRules(blocked_domains=["bücher.example"], default_shorteners=False))
    puny_rule = ContentScanner(
        ContentRules(blocked_domains=["xn--bcher-kva.example"], default_shorteners=False)
    )
    for scanner in (unicode_rule, puny_rule):
        for text in ("https://shop.bücher.example/x", "https://xn--bcher-kva.example/x"):
            assert refused(scanner, message(text))["rule"] == "blocked_domain"


@pytest.mark.parametrize(
    "text",
    ["https://notevil.example/x", "evil.example.org/x", "mail me at bob@evil.example", "evil-example.com"],
)
def test_lookalike_hosts_are_not_blocked(text: str) -> None:
    scanner = ContentScanner(ContentRules(blocked_domains=["evil.example"], default_shorteners=False))
    assert scanner.scan(message(text)) is None


def test_public_shorteners_are_blocked_by_default_and_can_be_allowed() -> None:
    text = "Claim it: bit.ly/3xYz"
    assert refused(DEFAULT, message(text))["match"] == "bit.ly"
    html = '<a href="https://tinyurl.com/abc">here</a>'
    assert refused(DEFAULT, message(None, subject="Hi", html=html))["field"] == "html"
    assert ContentScanner(ContentRules(default_shorteners=False)).scan(message(text)) is None


def test_bad_blocked_domains_are_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        ContentScanner(ContentRules(blocked_domains=["ok.example", "https://x.example/"]))
    assert raised.value.field == "blocked_domains[1]"


def test_too_many_urls() -> None:
    scanner = ContentScanner(ContentRules(max_urls=2))
    two = "https://a.example/1 and www.b.example"
    assert scanner.scan(message(two + " and plain c.example in prose")) is None
    details = refused(scanner, message(two + " and c.example/3"))
    assert details == {"rule": "too_many_urls", "match": "c.example/3", "field": "body", "max_urls": 2}
    assert refused(ContentScanner(ContentRules(max_urls=0)), message())["rule"] == "too_many_urls"


def test_the_spam_score_adds_up_documented_signals() -> None:
    text = "CONGRATULATIONS YOU HAVE WON!!! CLICK   HERE TO CLAIM YOUR PRIZE $$$ act now!!"
    score, signals = DEFAULT.spam_score(message(text))
    assert score == 2.0 + 2.0 + 1.0 + 4 * 1.5
    assert signals == [
        "all_caps",
        "exclamations x2",
        "currency_run",
        "phrase 'act now'",
        "phrase 'claim your prize'",
        "phrase 'click here'",
        "phrase 'you have won'",
    ]
    details = refused(DEFAULT, message(text))
    assert (details["rule"], details["score"], details["threshold"]) == ("spam_score", 11.0, 5.0)
    assert ContentScanner(ContentRules(spam_score_threshold=0)).scan(message(text)) is None


def test_operators_add_spam_phrases() -> None:
    scanner = ContentScanner(ContentRules(spam_phrases=["Hot  Deal"], spam_score_threshold=1.5))
    assert refused(scanner, message("a HOT deal for you"))["match"] == "phrase 'hot deal'"
    assert scanner.scan(message("a hotdeal for you")) is None  # whole words only


def test_short_shouting_is_not_all_caps() -> None:
    assert DEFAULT.spam_score(message("OK, see you at 5 PM"))[1] == []
    assert DEFAULT.spam_score(message("ÆBLER OG PÆRER ER BILLIGE"))[1] == ["all_caps"]  # not only ASCII


def test_scanning_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = ContentScanner(
        ContentRules(prohibited_patterns=["viagra", r"(\d)\1{5}"], blocked_domains=["x.example"])
    )

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("scan must only use precompiled regexes")

    for name in ("compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "split"):
        monkeypatch.setattr(re, name, forbidden)
    text = "SALE!! Visit https://shop.example/x and www.other.example, call 555-1234 $$ now"
    assert scanner.scan(message(text, subject="Hello", html="<p>Hello</p>")) is None


@given(text=st.text(max_size=300))
def test_any_text_is_scanned_without_error(text: str) -> None:
    result = DEFAULT.scan(message(text or None, subject=text[:20] or None, html=text or None))
    assert result is None or result.code == "content_rejected"
