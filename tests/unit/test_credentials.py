"""API keys, operator tokens and SMPP passwords: minted, split and verified without I/O."""

from __future__ import annotations

import pytest

from appliance.domain import credentials
from appliance.domain.tenants import (
    check_email,
    check_smpp_password,
    check_smpp_system_id,
    check_tenant_name,
    check_tier,
)
from appliance.errors import InvalidInput

SECRET = b"k" * 32


def test_an_issued_key_verifies_and_carries_its_public_id() -> None:
    issued = credentials.issue(credentials.API_KEY_PREFIX, SECRET)
    assert issued.presented.startswith(f"hk_{issued.id}_")
    parts = credentials.split_presented("hk", issued.presented)
    assert parts is not None
    key_id, secret = parts
    assert key_id == issued.id
    assert len(secret) >= 43  # 256 bits, urlsafe base64
    assert credentials.verify_secret(SECRET, secret, issued.hash)
    assert issued.hash != secret and secret not in issued.hash


def test_a_key_does_not_verify_under_another_node_secret_or_with_a_changed_secret() -> None:
    issued = credentials.issue("hk", SECRET)
    parts = credentials.split_presented("hk", issued.presented)
    assert parts is not None
    assert not credentials.verify_secret(b"x" * 32, parts[1], issued.hash)
    changed = parts[1][:-1] + ("B" if parts[1].endswith("A") else "A")  # one in 64 keys ends in "A"
    assert not credentials.verify_secret(SECRET, changed, issued.hash)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "hk",
        "hk_",
        "ho_abcdefghijklmnop_" + "x" * 43,
        "hk_short_" + "x" * 43,
        "hk_abcdefghijklmnop_tooshort",
    ],
)
def test_malformed_keys_are_not_split(presented: str) -> None:
    assert credentials.split_presented("hk", presented) is None


def test_every_issued_key_is_unique() -> None:
    keys = {credentials.issue("hk", SECRET).presented for _ in range(200)}
    assert len(keys) == 200


def test_smpp_passwords_use_a_salted_slow_hash() -> None:
    first = credentials.hash_password("s3cret")
    second = credentials.hash_password("s3cret")
    assert first != second  # salted
    assert first.startswith("scrypt$")
    assert credentials.verify_password("s3cret", first)
    assert not credentials.verify_password("s3creT", first)
    assert not credentials.verify_password("s3cret", "plain$x$y")
    assert not credentials.verify_password("s3cret", "garbage")


@pytest.mark.parametrize("name", ["acme", "a", "acme-corp_2", "0day"])
def test_good_tenant_names(name: str) -> None:
    assert check_tenant_name(name) == name


@pytest.mark.parametrize("name", ["", "Acme", "-acme", "acme corp", "a" * 64, "tn_123", "acme/../x", "ä"])
def test_bad_tenant_names(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_tenant_name(name)
    assert caught.value.field == "name"


def test_tiers() -> None:
    assert check_tier("business") == "business"
    with pytest.raises(InvalidInput, match="starter, business, enterprise"):
        check_tier("gold")


@pytest.mark.parametrize("email", ["", "x", "a@b", "a b@c.de", "@c.de"])
def test_bad_emails(email: str) -> None:
    with pytest.raises(InvalidInput):
        check_email(email)


def test_smpp_limits_follow_the_protocol() -> None:
    assert check_smpp_system_id("acme_smpp") == "acme_smpp"
    with pytest.raises(InvalidInput):
        check_smpp_system_id("x" * 16)
    with pytest.raises(InvalidInput):
        check_smpp_system_id("has space")
    assert check_smpp_password("12345678") == "12345678"
    with pytest.raises(InvalidInput):
        check_smpp_password("123456789")
    with pytest.raises(InvalidInput):
        check_smpp_password("")
