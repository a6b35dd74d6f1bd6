"""The `Store` contract, run unchanged against every backend (see the `store` fixture in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.config.schema import StoreSection
from appliance.errors import Conflict, NotFound, StoreError
from appliance.store import (
    ApiKey,
    AuditEntry,
    OperatorToken,
    SmppCredential,
    Store,
    Tenant,
    open_store,
)
from appliance.store.sql import load_migrations

T0 = 1_700_000_000.25


def _tenant(name: str, **changes: Any) -> Tenant:
    tenant = Tenant(
        id=f"t-{name}",
        name=name,
        tier="business",
        status="active",
        email=f"ops@{name}.example",
        rate_limit=50,
        burst=100,
        monthly_quota=5_000_000_000,
        created_at=T0,
        updated_at=T0,
    )
    return msgspec.structs.replace(tenant, **changes)


def _key(key_id: str, tenant_id: str, created_at: float = T0) -> ApiKey:
    return ApiKey(id=key_id, tenant_id=tenant_id, label=f"label {key_id}", created_at=created_at)


def _audit(target: str, action: str = "tenant.add", **details: Any) -> AuditEntry:
    return AuditEntry(id=None, at=T0, actor="socket:0", action=action, target=target, details=details)


# lifecycle


async def test_migrate_applies_every_migration_once_and_records_it(empty_store: Store) -> None:
    names = [name for _, name, _ in load_migrations()]
    assert names[0] == "0001_registry"
    assert await empty_store.schema_version() == 0

    assert await empty_store.migrate() == names
    assert await empty_store.migrate() == []
    assert await empty_store.schema_version() == max(version for version, _, _ in load_migrations())


async def test_ping_and_close_is_idempotent(store: Store) -> None:
    await store.ping()
    await store.close()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()


# tenants


async def test_tenant_create_get_list_update(store: Store) -> None:
    beta, acme = _tenant("beta"), _tenant("acme", tier="enterprise", monthly_quota=0)
    assert await store.create_tenant(beta) == beta
    await store.create_tenant(acme)

    assert await store.get_tenant("t-acme") == acme
    assert await store.get_tenant("acme") == acme
    assert await store.list_tenants() == [acme, beta]

    changed = msgspec.structs.replace(
        beta, name="ignored", tier="starter", status="suspended", email="new@beta.example",
        rate_limit=1, burst=2, monthly_quota=3, created_at=0.0, updated_at=T0 + 60,
    )  # fmt: skip
    updated = await store.update_tenant(changed)
    assert updated == msgspec.structs.replace(changed, name="beta", created_at=T0)
    assert await store.get_tenant("beta") == updated


async def test_get_tenant_prefers_the_id_over_another_tenants_name(store: Store) -> None:
    first = await store.create_tenant(_tenant("first", id="x1"))
    await store.create_tenant(_tenant("x1", id="x2"))
    assert await store.get_tenant("x1") == first


async def test_tenant_name_or_id_taken_is_a_conflict(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    with pytest.raises(Conflict) as by_name:
        await store.create_tenant(_tenant("acme", id="t-other"))
    assert (by_name.value.kind, by_name.value.ref) == ("tenant", "acme")
    with pytest.raises(Conflict) as by_id:
        await store.create_tenant(_tenant("other", id="t-acme"))
    assert (by_id.value.kind, by_id.value.ref) == ("tenant", "t-acme")
    assert [t.name for t in await store.list_tenants()] == ["acme"]


async def test_delete_tenant_cascades_to_keys_and_credentials_but_keeps_audit(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    await store.add_api_key(_key("k1", "t-acme"), "hash-k1")
    await store.add_smpp_credential(
        SmppCredential(system_id="acme1", tenant_id="t-acme", created_at=T0), "pw"
    )
    await store.append_audit(_audit("t-acme"))

    await store.delete_tenant("t-acme")

    with pytest.raises(NotFound):
        await store.get_tenant("t-acme")
    assert await store.list_api_keys("t-acme") == []
    assert await store.list_smpp_credentials("t-acme") == []
    with pytest.raises(NotFound):
        await store.find_api_key("k1")
    with pytest.raises(NotFound):
        await store.find_smpp_credential("acme1")
    assert [entry.target for entry in await store.list_audit()] == ["t-acme"]
    # The freed names can be used again.
    await store.create_tenant(_tenant("acme"))
    await store.add_smpp_credential(
        SmppCredential(system_id="acme1", tenant_id="t-acme", created_at=T0), "pw"
    )


async def test_unknown_references_are_not_found(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    await store.add_api_key(_key("k1", "t-acme"), "hash")
    smpp = SmppCredential(system_id="s", tenant_id="t-nope", created_at=T0)
    attempts: list[tuple[str, str, Callable[[], Awaitable[object]]]] = [
        ("tenant", "nope", lambda: store.get_tenant("nope")),
        ("tenant", "t-nope", lambda: store.update_tenant(_tenant("nope"))),
        ("tenant", "t-nope", lambda: store.delete_tenant("t-nope")),
        ("tenant", "t-nope", lambda: store.add_api_key(_key("k2", "t-nope"), "hash")),
        ("tenant", "t-nope", lambda: store.add_smpp_credential(smpp, "pw")),
        ("api key", "k9", lambda: store.find_api_key("k9")),
        ("api key", "k9", lambda: store.revoke_api_key("t-acme", "k9", T0)),
        ("smpp credential", "s9", lambda: store.find_smpp_credential("s9")),
        ("smpp credential", "s9", lambda: store.remove_smpp_credential("t-acme", "s9")),
        ("operator token", "o9", lambda: store.find_operator_token("o9")),
        ("operator token", "o9", lambda: store.revoke_operator_token("o9", T0)),
    ]
    for kind, ref, attempt in attempts:
        with pytest.raises(NotFound) as caught:
            await attempt()
        assert (caught.value.kind, caught.value.ref) == (kind, ref)


# API keys


async def test_api_keys_add_find_list_revoke(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    await store.create_tenant(_tenant("beta"))
    late, early = _key("k-late", "t-acme", T0 + 10), _key("k-early", "t-acme", T0)
    await store.add_api_key(late, "hash-late")
    await store.add_api_key(early, "hash-early")
    await store.add_api_key(_key("k-beta", "t-beta"), "hash-beta")

    assert await store.find_api_key("k-late") == (late, "hash-late")
    assert await store.list_api_keys("t-acme") == [early, late]
    with pytest.raises(Conflict) as caught:
        await store.add_api_key(_key("k-late", "t-beta"), "other")
    assert (caught.value.kind, caught.value.ref) == ("api key", "k-late")

    revoked = await store.revoke_api_key("t-acme", "k-late", T0 + 20)
    assert revoked == msgspec.structs.replace(late, revoked_at=T0 + 20)
    assert await store.revoke_api_key("t-acme", "k-late", T0 + 99) == revoked  # keeps the first time
    assert await store.list_api_keys("t-acme") == [early, revoked]
    assert await store.find_api_key("k-late") == (revoked, "hash-late")

    with pytest.raises(NotFound):
        await store.revoke_api_key("t-acme", "k-beta", T0)  # another tenant's key
    assert (await store.find_api_key("k-beta"))[0].revoked_at is None


# SMPP credentials


async def test_smpp_credentials_are_unique_across_tenants(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    await store.create_tenant(_tenant("beta"))
    b = SmppCredential(system_id="b-acme", tenant_id="t-acme", created_at=T0)
    a = SmppCredential(system_id="a-acme", tenant_id="t-acme", created_at=T0 + 1)
    await store.add_smpp_credential(b, "hash-b")
    await store.add_smpp_credential(a, "hash-a")

    assert await store.list_smpp_credentials("t-acme") == [a, b]
    assert await store.find_smpp_credential("b-acme") == (b, "hash-b")
    with pytest.raises(Conflict) as caught:
        await store.add_smpp_credential(msgspec.structs.replace(a, tenant_id="t-beta"), "x")
    assert (caught.value.kind, caught.value.ref) == ("smpp credential", "a-acme")
    assert await store.list_smpp_credentials("t-beta") == []

    with pytest.raises(NotFound):
        await store.remove_smpp_credential("t-beta", "a-acme")  # not beta's
    await store.remove_smpp_credential("t-acme", "a-acme")
    assert await store.list_smpp_credentials("t-acme") == [b]


# operator tokens


async def test_operator_tokens(store: Store) -> None:
    second = OperatorToken(id="o2", label="ci", created_at=T0 + 5)
    first = OperatorToken(id="o1", label="laptop", created_at=T0)
    await store.add_operator_token(second, "hash-2")
    await store.add_operator_token(first, "hash-1")
    with pytest.raises(Conflict) as caught:
        await store.add_operator_token(first, "again")
    assert (caught.value.kind, caught.value.ref) == ("operator token", "o1")

    assert await store.list_operator_tokens() == [first, second]
    assert await store.find_operator_token("o2") == (second, "hash-2")
    revoked = await store.revoke_operator_token("o2", T0 + 7)
    assert revoked.revoked_at == T0 + 7
    assert await store.revoke_operator_token("o2", T0 + 8) == revoked
    assert await store.find_operator_token("o2") == (revoked, "hash-2")


# audit


async def test_audit_is_newest_first_with_limit_target_and_details(store: Store) -> None:
    details = {"tier": "business", "limits": [1, 2.5], "nested": {"ok": True, "none": None}}
    first = await store.append_audit(_audit("t-acme", "tenant.add", **details))
    second = await store.append_audit(_audit("t-beta"))
    third = await store.append_audit(_audit("t-acme", "tenant.key.revoke", key="k1"))
    ids = [entry.id or 0 for entry in (first, second, third)]
    assert 0 < ids[0] < ids[1] < ids[2]
    assert first == msgspec.structs.replace(_audit("t-acme", "tenant.add", **details), id=first.id)

    assert await store.list_audit() == [third, second, first]
    assert await store.list_audit(limit=2) == [third, second]
    assert await store.list_audit(target="t-acme") == [third, first]
    assert await store.list_audit(target="t-acme", limit=1) == [third]
    assert await store.list_audit(target="nobody") == []
    assert (await store.list_audit(target="t-acme"))[-1].details == details


# concurrency


async def test_concurrent_calls_all_succeed(store: Store) -> None:
    names = [f"tenant{i:02}" for i in range(20)]
    created = await asyncio.gather(*(store.create_tenant(_tenant(name)) for name in names))
    assert [t.name for t in created] == names
    reads = await asyncio.gather(*(store.get_tenant(name) for name in names), store.list_tenants())
    assert reads[-1] == created
    entries = await asyncio.gather(*(store.append_audit(_audit(name)) for name in names))
    assert len({entry.id for entry in entries}) == 20


async def test_two_sqlite_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    """Two daemons of one node each hold a connection; BEGIN IMMEDIATE + busy_timeout make them queue."""
    section = StoreSection(backend="sqlite", path=str(tmp_path / "hermes.db"))
    first, second = await open_store(section), await open_store(section)
    try:
        await first.migrate()
        assert await second.migrate() == []
        names = [f"tenant{i:02}" for i in range(20)]
        await asyncio.gather(
            *(s.create_tenant(_tenant(n)) for s, n in zip([first, second] * 10, names, strict=True))
        )
        assert [t.name for t in await first.list_tenants()] == names
    finally:
        await first.close()
        await second.close()


# opening


async def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "hermes.db"
    store = await open_store(StoreSection(backend="sqlite", path=str(path)))
    try:
        assert await store.migrate() == [name for _, name, _ in load_migrations()]
    finally:
        await store.close()
    assert path.is_file()


async def test_path_under_a_file_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    path = tmp_path / "plain-file" / "data" / "hermes.db"
    with pytest.raises(StoreError, match=re.escape(str(path))):
        await open_store(StoreSection(backend="sqlite", path=str(path)))


async def test_unwritable_directory_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root?) can write to a read-only directory")
        path = locked / "hermes.db"
        with pytest.raises(StoreError, match=re.escape(str(path))):
            await open_store(StoreSection(backend="sqlite", path=str(path)))
    finally:
        locked.chmod(0o700)


async def test_memory_store_works_for_unit_tests() -> None:
    store = await open_store(StoreSection(backend="sqlite", path=":memory:"))
    try:
        await store.migrate()
        assert await store.create_tenant(_tenant("acme")) == await store.get_tenant("acme")
    finally:
        await store.close()


def test_importing_the_store_does_not_import_psycopg() -> None:
    code = "import sys, appliance.store; sys.exit('psycopg' in sys.modules or 'aiosqlite' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_an_smpp_login_takes_concatenated_messages_as_it_is_set_to(store: Store) -> None:
    await store.create_tenant(_tenant("acme"))
    await store.add_smpp_credential(
        SmppCredential(system_id="acme1", tenant_id="t-acme", created_at=T0, concatenated="parts"), "pw"
    )
    await store.add_smpp_credential(
        SmppCredential(system_id="acme2", tenant_id="t-acme", created_at=T0), "pw"
    )
    assert [(c.system_id, c.concatenated) for c in await store.list_smpp_credentials("t-acme")] == [
        ("acme1", "parts"),
        ("acme2", "reassemble"),
    ]
    changed = await store.set_smpp_concatenated("t-acme", "acme2", "parts")
    assert changed.concatenated == "parts"
    credential, _ = await store.find_smpp_credential("acme2")
    assert credential.concatenated == "parts"
    with pytest.raises(NotFound):
        await store.set_smpp_concatenated("t-other", "acme2", "reassemble")  # not that tenant's login
