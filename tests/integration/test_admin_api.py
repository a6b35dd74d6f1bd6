"""The admin API over a real store (SQLite and PostgreSQL), in process: every route and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from appliance.config.schema import TiersSection
from appliance.daemons.admin.app import create_admin_app
from appliance.daemons.admin.registry import RegistryService
from appliance.domain import credentials
from appliance.store import FullStore

SECRET = b"s" * 32
Client = AsyncTestClient[Any]


async def _status() -> dict[str, Any]:
    return {"node": "test", "healthy": True}


@pytest.fixture
def announced() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def registry(store: FullStore, announced: list[tuple[str, str]]) -> RegistryService:
    async def announce(kind: str, ident: str) -> None:
        announced.append((kind, ident))

    return RegistryService(store, node_secret=SECRET, tiers=TiersSection(), announce=announce)


@pytest.fixture
async def admin(registry: RegistryService) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_admin_app(registry, _status)) as client:
        yield client


async def add(admin: Client, name: str = "acme", tier: str = "starter") -> dict[str, Any]:
    response = await admin.post("/v1/tenants", json={"name": name, "tier": tier, "email": "ops@acme.test"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


async def test_add_tenant_returns_id_and_a_working_key_once(admin: Client, store: FullStore) -> None:
    created = await add(admin, tier="business")
    assert created["tenant_id"].startswith("tn_")
    assert created["status"] == "active"
    assert (created["rate_limit"], created["burst"], created["monthly_quota"]) == (500, 1000, 5_000_000)
    parts = credentials.split_presented("hk", created["api_key"])
    assert parts is not None
    key, stored_hash = await store.find_api_key(parts[0])
    assert key.tenant_id == created["tenant_id"]
    assert credentials.verify_secret(SECRET, parts[1], stored_hash)
    shown = (await admin.get(f"/v1/tenants/{created['tenant_id']}")).json()
    assert "api_key" not in shown
    assert created["api_key"] not in str(shown)
    assert [k["key_id"] for k in shown["keys"]] == [created["key_id"]]


async def test_tenants_are_found_by_name_or_id_and_listed(admin: Client) -> None:
    acme = await add(admin, "acme")
    await add(admin, "beta")
    assert (await admin.get("/v1/tenants/acme")).json()["tenant_id"] == acme["tenant_id"]
    assert (await admin.get(f"/v1/tenants/{acme['tenant_id']}")).json()["name"] == "acme"
    assert [t["name"] for t in (await admin.get("/v1/tenants")).json()] == ["acme", "beta"]


async def test_duplicate_name_is_a_conflict(admin: Client) -> None:
    await add(admin, "acme")
    response = await admin.post("/v1/tenants", json={"name": "acme", "tier": "starter", "email": "a@b.cd"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "acme", "tier": "gold", "email": "a@b.cd"}, "tier"),
        ({"name": "Bad Name", "tier": "starter", "email": "a@b.cd"}, "name"),
        ({"name": "acme", "tier": "starter", "email": "nope"}, "email"),
    ],
)
async def test_invalid_tenant_fields_are_422_naming_the_field(
    admin: Client, body: dict[str, str], field: str
) -> None:
    response = await admin.post("/v1/tenants", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["details"]["field"] == field


async def test_malformed_json_and_missing_fields_are_400_not_500(admin: Client) -> None:
    response = await admin.post(
        "/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"
    response = await admin.post("/v1/tenants", json={"name": "acme"})
    assert response.status_code == 400
    response = await admin.post(
        "/v1/tenants", json={"name": "acme", "tier": "starter", "email": "a@b.cd", "x": 1}
    )
    assert response.status_code == 400


async def test_unknown_tenant_is_404(admin: Client) -> None:
    for method, path in [
        ("GET", "/v1/tenants/nobody"),
        ("POST", "/v1/tenants/nobody/suspend"),
        ("DELETE", "/v1/tenants/tn_0000000000000000"),
        ("GET", "/v1/tenants/nobody/keys"),
    ]:
        response = await admin.request(method, path)
        assert response.status_code == 404, (method, path)
        assert error_of(response)["code"] == "not_found"


async def test_suspend_resume_and_delete_are_audited_and_announced(
    admin: Client, announced: list[tuple[str, str]]
) -> None:
    tenant = await add(admin)
    tenant_id = tenant["tenant_id"]
    assert (await admin.post("/v1/tenants/acme/suspend")).json()["status"] == "suspended"
    assert (await admin.post("/v1/tenants/acme/suspend")).json()["status"] == "suspended"
    assert (await admin.post("/v1/tenants/acme/resume")).json()["status"] == "active"
    assert (await admin.delete("/v1/tenants/acme")).json()["deleted"] is True
    assert (await admin.get("/v1/tenants/acme")).status_code == 404
    actions = [e["action"] for e in (await admin.get("/v1/audit", params={"target": tenant_id})).json()]
    assert actions == ["tenant.delete", "tenant.resume", "tenant.suspend", "tenant.add"]
    assert ("tenant", tenant_id) in announced


async def test_keys_can_be_created_listed_and_revoked(
    admin: Client, announced: list[tuple[str, str]]
) -> None:
    await add(admin)
    created = (await admin.post("/v1/tenants/acme/keys", json={"label": "ci"})).json()
    assert created["api_key"].startswith(f"hk_{created['key_id']}_")
    keys = (await admin.get("/v1/tenants/acme/keys")).json()
    assert len(keys) == 2
    assert all("api_key" not in k and "secret_hash" not in k for k in keys)
    revoked = (await admin.delete(f"/v1/tenants/acme/keys/{created['key_id']}")).json()
    assert revoked["revoked_at"] is not None
    assert ("api_key", created["key_id"]) in announced
    assert (await admin.delete("/v1/tenants/acme/keys/nosuchkey")).status_code == 404


async def test_a_key_of_another_tenant_cannot_be_revoked_through_this_one(admin: Client) -> None:
    await add(admin, "acme")
    beta = await add(admin, "beta")
    response = await admin.delete(f"/v1/tenants/acme/keys/{beta['key_id']}")
    assert response.status_code == 404


async def test_smpp_logins(admin: Client, store: FullStore) -> None:
    await add(admin, "acme")
    await add(admin, "beta")
    response = await admin.post("/v1/tenants/acme/smpp", json={"system_id": "acme1", "password": "pw123456"})
    assert response.status_code == 201
    assert "password" not in response.json()
    _, stored = await store.find_smpp_credential("acme1")
    assert credentials.verify_password("pw123456", stored)
    taken = await admin.post("/v1/tenants/beta/smpp", json={"system_id": "acme1", "password": "x"})
    assert taken.status_code == 409
    too_long = await admin.post("/v1/tenants/beta/smpp", json={"system_id": "b", "password": "123456789"})
    assert too_long.status_code == 422
    assert [c["system_id"] for c in (await admin.get("/v1/tenants/acme/smpp")).json()] == ["acme1"]
    changed = await admin.patch("/v1/tenants/acme/smpp/acme1", json={"concatenated": "parts"})
    assert (changed.status_code, changed.json()["concatenated"]) == (200, "parts")
    assert (await admin.patch("/v1/tenants/acme/smpp/acme1", json={"concatenated": "x"})).status_code == 400
    not_theirs = await admin.patch("/v1/tenants/beta/smpp/acme1", json={"concatenated": "parts"})
    assert not_theirs.status_code == 404
    assert (await admin.delete("/v1/tenants/beta/smpp/acme1")).status_code == 404
    assert (await admin.delete("/v1/tenants/acme/smpp/acme1")).status_code == 200
    assert (await admin.get("/v1/tenants/acme/smpp")).json() == []


async def test_audit_limit_is_checked(admin: Client) -> None:
    assert (await admin.get("/v1/audit", params={"limit": 0})).status_code == 422
    assert (await admin.get("/v1/audit", params={"limit": "x"})).status_code == 400


async def test_tcp_listener_needs_a_live_operator_token(registry: RegistryService) -> None:
    token, presented = await registry.create_operator_token("test", "laptop")
    app = create_admin_app(registry, _status, require_token=True)
    async with AsyncTestClient(app=app) as remote:
        assert (await remote.get("/v1/tenants")).status_code == 401
        bad = await remote.get("/v1/tenants", headers={"Authorization": "Bearer ho_nope"})
        assert bad.status_code == 401
        assert error_of(bad)["code"] == "unauthorized"
        good = {"Authorization": f"Bearer {presented}"}
        assert (await remote.get("/v1/tenants", headers=good)).status_code == 200
        created = await remote.post(
            "/v1/tenants", json={"name": "remote", "tier": "starter", "email": "a@b.cd"}, headers=good
        )
        assert created.status_code == 201
        audit = (await remote.get("/v1/audit", params={"limit": 1}, headers=good)).json()
        assert audit[0]["actor"] == f"token:{token.id}"
        await registry.revoke_operator_token("test", token.id)
        assert (await remote.get("/v1/tenants", headers=good)).status_code == 401


async def test_edit_changes_limits_and_a_new_tier_brings_its_defaults(admin: Client) -> None:
    await add(admin)
    edited = await admin.patch("/v1/tenants/acme", json={"rate_limit": 7, "monthly_quota": 0})
    assert edited.status_code == 200
    assert (edited.json()["rate_limit"], edited.json()["monthly_quota"]) == (7, 0)
    upgraded = (await admin.patch("/v1/tenants/acme", json={"tier": "business"})).json()
    assert (upgraded["tier"], upgraded["rate_limit"], upgraded["burst"]) == ("business", 500, 1000)
    assert (await admin.patch("/v1/tenants/acme", json={"burst": -1})).status_code == 422
    assert (await admin.patch("/v1/tenants/acme", json={"tier": "gold"})).status_code == 422
    assert (await admin.patch("/v1/tenants/nobody", json={"burst": 1})).status_code == 404


async def test_credit_makes_prepaid_and_shows_in_the_account(admin: Client) -> None:
    await add(admin)
    fresh = (await admin.get("/v1/tenants/acme/account")).json()
    assert (fresh["prepaid"], fresh["balance"], fresh["quota_used"]) == (False, 0.0, 0)
    credited = (
        await admin.post("/v1/tenants/acme/credit", json={"amount": 25.5, "note": "invoice 7"})
    ).json()
    assert (credited["prepaid"], credited["balance"], credited["available"]) == (True, 25.5, 25.5)
    assert (await admin.post("/v1/tenants/acme/credit", json={"amount": 0})).status_code == 422
    assert (await admin.post("/v1/tenants/acme/credit", json={"amount": "x"})).status_code == 400


async def test_suppressions_for_a_tenant_and_globally(
    admin: Client, announced: list[tuple[str, str]]
) -> None:
    tenant = await add(admin)
    added = await admin.post(
        "/v1/tenants/acme/suppressions",
        json={"addresses": ["+45 23 45 67 89", "+4523456780"], "channel": "sms"},
    )
    assert added.json() == {"added": 2}
    listed = (await admin.get("/v1/tenants/acme/suppressions")).json()
    assert [s["address"] for s in listed] == ["+4523456780", "+4523456789"]
    assert ("suppression", tenant["tenant_id"]) in announced
    bad = await admin.post("/v1/tenants/acme/suppressions", json={"addresses": ["12"], "channel": "sms"})
    assert bad.status_code == 422
    assert (await admin.delete("/v1/tenants/acme/suppressions/sms/+4523456780")).status_code == 200
    assert (await admin.delete("/v1/tenants/acme/suppressions/sms/+4523456780")).status_code == 404
    glob = await admin.post(
        "/v1/tenants/*/suppressions", json={"addresses": ["Stop@Example.com"], "channel": "email"}
    )
    assert glob.status_code == 200
    assert [s["address"] for s in (await admin.get("/v1/tenants/*/suppressions")).json()] == [
        "stop@example.com"
    ]


async def test_webhook_set_show_remove(admin: Client) -> None:
    await add(admin)
    created = (await admin.put("/v1/tenants/acme/webhook", json={"url": "https://hooks.acme.test/h"})).json()
    assert created["events"] == "final"
    assert len(created["secret"]) == 64
    shown = (await admin.get("/v1/tenants/acme/webhook")).json()
    assert shown["url"] == "https://hooks.acme.test/h"
    assert "secret" not in shown
    assert (await admin.put("/v1/tenants/acme/webhook", json={"url": "ftp://x"})).status_code == 422
    assert (
        await admin.put("/v1/tenants/acme/webhook", json={"url": "https://x.test", "events": "some"})
    ).status_code == 422
    assert (await admin.delete("/v1/tenants/acme/webhook")).status_code == 200
    assert (await admin.delete("/v1/tenants/acme/webhook")).status_code == 404
