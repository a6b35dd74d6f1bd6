"""The registry service behind the admin API: every change validated, stored, audited, announced.

Callers: the admin HTTP handlers (one call per request). Validation lives in `domain/`; this class
only orders the steps: check → write → audit row → `hermes.registry.changed` so daemons refresh caches.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from appliance.config.schema import TiersSection
from appliance.domain import credentials
from appliance.domain.tenants import (
    check_email,
    check_label,
    check_smpp_password,
    check_smpp_system_id,
    check_tenant_name,
    check_tier,
    new_tenant_id,
)
from appliance.errors import NotFound
from appliance.store import ApiKey, AuditEntry, OperatorToken, SmppCredential, Store, Tenant
from appliance.store.models import TenantStatus

Announce = Callable[[str, str], Awaitable[None]]


async def _no_announce(kind: str, ident: str) -> None:
    return None


class RegistryService:
    def __init__(
        self,
        store: Store,
        *,
        node_secret: bytes,
        tiers: TiersSection,
        announce: Announce = _no_announce,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._secret = node_secret
        self._tiers = tiers
        self._announce = announce
        self._clock = clock

    async def _audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        entry = AuditEntry(
            id=None, at=self._clock(), actor=actor, action=action, target=target, details=details
        )
        await self._store.append_audit(entry)

    # ---- tenants -----------------------------------------------------------------------------
    async def add_tenant(self, actor: str, *, name: str, tier: str, email: str) -> tuple[Tenant, ApiKey, str]:
        """Create an active tenant with its tier's limits and a first API key (returned once)."""
        check_tenant_name(name)
        limits = self._tiers.limits(check_tier(tier))
        check_email(email)
        now = self._clock()
        tenant = Tenant(
            id=new_tenant_id(),
            name=name,
            tier=check_tier(tier),
            status="active",
            email=email,
            rate_limit=limits.rate_limit,
            burst=limits.burst,
            monthly_quota=limits.monthly_quota,
            created_at=now,
            updated_at=now,
        )
        created = await self._store.create_tenant(tenant)
        key, presented = await self._issue_key(created.id, "default")
        await self._audit(actor, "tenant.add", created.id, name=name, tier=tier, email=email)
        await self._announce("tenant", created.id)
        return created, key, presented

    async def get_tenant(self, ref: str) -> Tenant:
        return await self._store.get_tenant(ref)

    async def list_tenants(self) -> list[Tenant]:
        return await self._store.list_tenants()

    async def set_status(self, actor: str, ref: str, status: TenantStatus) -> Tenant:
        tenant = await self._store.get_tenant(ref)
        if tenant.status == status:
            return tenant
        updated = await self._store.update_tenant(
            msgspec.structs.replace(tenant, status=status, updated_at=self._clock())
        )
        await self._audit(actor, "tenant.suspend" if status == "suspended" else "tenant.resume", tenant.id)
        await self._announce("tenant", tenant.id)
        return updated

    async def delete_tenant(self, actor: str, ref: str) -> Tenant:
        tenant = await self._store.get_tenant(ref)
        await self._store.delete_tenant(tenant.id)
        await self._audit(actor, "tenant.delete", tenant.id, name=tenant.name)
        await self._announce("tenant", tenant.id)
        return tenant

    # ---- API keys ----------------------------------------------------------------------------
    async def _issue_key(self, tenant_id: str, label: str) -> tuple[ApiKey, str]:
        issued = credentials.issue(credentials.API_KEY_PREFIX, self._secret)
        key = ApiKey(id=issued.id, tenant_id=tenant_id, label=label, created_at=self._clock())
        await self._store.add_api_key(key, issued.hash)
        return key, issued.presented

    async def create_key(self, actor: str, ref: str, label: str) -> tuple[ApiKey, str]:
        tenant = await self._store.get_tenant(ref)
        key, presented = await self._issue_key(tenant.id, check_label(label))
        await self._audit(actor, "tenant.key.create", tenant.id, key_id=key.id, label=label)
        return key, presented

    async def list_keys(self, ref: str) -> list[ApiKey]:
        tenant = await self._store.get_tenant(ref)
        return await self._store.list_api_keys(tenant.id)

    async def revoke_key(self, actor: str, ref: str, key_id: str) -> ApiKey:
        tenant = await self._store.get_tenant(ref)
        key = await self._store.revoke_api_key(tenant.id, key_id, self._clock())
        await self._audit(actor, "tenant.key.revoke", tenant.id, key_id=key_id)
        await self._announce("api_key", key_id)
        return key

    # ---- SMPP credentials --------------------------------------------------------------------
    async def add_smpp(self, actor: str, ref: str, system_id: str, password: str) -> SmppCredential:
        tenant = await self._store.get_tenant(ref)
        check_smpp_system_id(system_id)
        check_smpp_password(password)
        credential = SmppCredential(system_id=system_id, tenant_id=tenant.id, created_at=self._clock())
        await self._store.add_smpp_credential(credential, credentials.hash_password(password))
        await self._audit(actor, "tenant.smpp.add", tenant.id, system_id=system_id)
        await self._announce("smpp_credential", system_id)
        return credential

    async def list_smpp(self, ref: str) -> list[SmppCredential]:
        tenant = await self._store.get_tenant(ref)
        return await self._store.list_smpp_credentials(tenant.id)

    async def remove_smpp(self, actor: str, ref: str, system_id: str) -> None:
        tenant = await self._store.get_tenant(ref)
        await self._store.remove_smpp_credential(tenant.id, system_id)
        await self._audit(actor, "tenant.smpp.remove", tenant.id, system_id=system_id)
        await self._announce("smpp_credential", system_id)

    # ---- operator tokens ---------------------------------------------------------------------
    async def create_operator_token(self, actor: str, label: str) -> tuple[OperatorToken, str]:
        issued = credentials.issue(credentials.OPERATOR_TOKEN_PREFIX, self._secret)
        token = OperatorToken(id=issued.id, label=check_label(label), created_at=self._clock())
        await self._store.add_operator_token(token, issued.hash)
        await self._audit(actor, "operator.token.create", token.id, label=label)
        return token, issued.presented

    async def list_operator_tokens(self) -> list[OperatorToken]:
        return await self._store.list_operator_tokens()

    async def revoke_operator_token(self, actor: str, token_id: str) -> OperatorToken:
        token = await self._store.revoke_operator_token(token_id, self._clock())
        await self._audit(actor, "operator.token.revoke", token_id)
        return token

    async def authenticate_operator(self, presented: str) -> OperatorToken | None:
        """The live token behind a presented `ho_...` string, or None."""
        parts = credentials.split_presented(credentials.OPERATOR_TOKEN_PREFIX, presented)
        if parts is None:
            return None
        try:
            token, stored = await self._store.find_operator_token(parts[0])
        except NotFound:
            return None
        if token.revoked_at is not None or not credentials.verify_secret(self._secret, parts[1], stored):
            return None
        return token

    async def list_audit(self, *, limit: int, target: str | None) -> list[AuditEntry]:
        return await self._store.list_audit(limit=limit, target=target)
