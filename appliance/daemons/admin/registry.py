"""The registry service behind the admin API: every change validated, stored, audited, announced.

Callers: the admin HTTP handlers (one call per request). Validation lives in `domain/`; this class
only orders the steps: check → write → audit row → `hermes.registry.changed` so daemons refresh caches.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from appliance.config.schema import TiersSection
from appliance.domain import credentials
from appliance.domain.accounts import month_of
from appliance.domain.message import CHANNELS
from appliance.domain.pipeline import is_plausible_email, normalize_address, parse_e164
from appliance.domain.tenants import (
    check_email,
    check_label,
    check_smpp_password,
    check_smpp_system_id,
    check_tenant_name,
    check_tier,
    new_tenant_id,
)
from appliance.errors import InvalidInput, NotFound
from appliance.store import (
    Account,
    ApiKey,
    AuditEntry,
    FullStore,
    OperatorToken,
    SmppCredential,
    Suppression,
    Tenant,
    Webhook,
    WebhookDelivery,
)
from appliance.store.models import ConcatenatedMode, TenantStatus

Announce = Callable[[str, str], Awaitable[None]]


async def _no_announce(kind: str, ident: str) -> None:
    return None


class RegistryService:
    def __init__(
        self,
        store: FullStore,
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
        valid_tier = check_tier(tier)
        limits = self._tiers.limits(valid_tier)
        check_email(email)
        now = self._clock()
        tenant = Tenant(
            id=new_tenant_id(),
            name=name,
            tier=valid_tier,
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

    async def edit_tenant(
        self,
        actor: str,
        ref: str,
        *,
        tier: str | None = None,
        email: str | None = None,
        rate_limit: int | None = None,
        burst: int | None = None,
        monthly_quota: int | None = None,
    ) -> Tenant:
        """Change a tenant; a new tier brings its limits unless limits are given too (0 = unlimited)."""
        tenant = await self._store.get_tenant(ref)
        changes: dict[str, Any] = {}
        if tier is not None and tier != tenant.tier:
            limits = self._tiers.limits(check_tier(tier))
            changes.update(
                tier=tier,
                rate_limit=limits.rate_limit,
                burst=limits.burst,
                monthly_quota=limits.monthly_quota,
            )
        if email is not None:
            changes["email"] = check_email(email)
        for name, value in (("rate_limit", rate_limit), ("burst", burst), ("monthly_quota", monthly_quota)):
            if value is not None:
                if value < 0:
                    raise InvalidInput(name, "must be 0 (unlimited) or more")
                changes[name] = value
        if not changes:
            return tenant
        updated = await self._store.update_tenant(
            msgspec.structs.replace(tenant, **changes, updated_at=self._clock())
        )
        await self._audit(actor, "tenant.edit", tenant.id, **changes)
        await self._announce("tenant", tenant.id)
        return updated

    # ---- money and quota -----------------------------------------------------------------------
    async def account(self, ref: str) -> tuple[Tenant, Account]:
        tenant = await self._store.get_tenant(ref)
        return tenant, await self._store.get_account(tenant.id, month_of(self._clock()))

    async def credit(self, actor: str, ref: str, amount: float, note: str) -> tuple[Tenant, Account]:
        if not math.isfinite(amount) or amount == 0:
            raise InvalidInput("amount", "must be a non-zero number")
        tenant = await self._store.get_tenant(ref)
        account = await self._store.credit(tenant.id, amount, at=self._clock(), note=check_label(note))
        await self._audit(
            actor, "tenant.credit", tenant.id, amount=amount, note=note, balance=account.balance
        )
        await self._announce("account", tenant.id)
        return tenant, account

    # ---- suppressions --------------------------------------------------------------------------
    async def _suppression_owner(self, ref: str) -> str:
        return "*" if ref == "*" else (await self._store.get_tenant(ref)).id

    async def suppress(self, actor: str, ref: str, channel: str, addresses: list[str], reason: str) -> int:
        owner = await self._suppression_owner(ref)
        if channel not in CHANNELS:
            raise InvalidInput("channel", f"must be one of {', '.join(CHANNELS)}")
        normalized = []
        for address in addresses:
            if channel in ("sms", "whatsapp") and parse_e164(address) is None:
                raise InvalidInput("address", f"{address!r} is not an E.164 number")
            if channel == "email" and not is_plausible_email(address):
                raise InvalidInput("address", f"{address!r} is not an email address")
            normalized.append(normalize_address(channel, address))
        now = self._clock()
        for address in normalized:
            await self._store.add_suppression(
                Suppression(tenant_id=owner, address=address, reason=check_label(reason), created_at=now)
            )
        await self._audit(actor, "suppression.add", owner, count=len(normalized), channel=channel)
        await self._announce("suppression", owner)
        return len(normalized)

    async def unsuppress(self, actor: str, ref: str, channel: str, address: str) -> None:
        owner = await self._suppression_owner(ref)
        await self._store.remove_suppression(owner, normalize_address(channel, address))
        await self._audit(actor, "suppression.remove", owner, channel=channel)
        await self._announce("suppression", owner)

    async def suppressions(self, ref: str, *, after: str | None, limit: int) -> list[Suppression]:
        return await self._store.list_suppressions(
            await self._suppression_owner(ref), after=after, limit=limit
        )

    # ---- webhooks --------------------------------------------------------------------------------
    async def set_webhook(
        self, actor: str, ref: str, url: str, events: str, secret: str | None
    ) -> tuple[Tenant, Webhook]:
        tenant = await self._store.get_tenant(ref)
        if not url.startswith(("https://", "http://")) or len(url) > 2048 or " " in url:
            raise InvalidInput("url", "must be an http(s) URL of at most 2048 characters")
        if events not in ("final", "all"):
            raise InvalidInput("events", "must be final or all")
        if secret is not None and len(secret) < 16:
            raise InvalidInput("secret", "must be at least 16 characters")
        hook = Webhook(
            tenant_id=tenant.id,
            url=url,
            secret=secret or secrets.token_hex(32),
            events="all" if events == "all" else "final",
            created_at=self._clock(),
        )
        await self._store.set_webhook(hook)
        await self._audit(actor, "tenant.webhook.set", tenant.id, url=url, events=events)
        await self._announce("webhook", tenant.id)
        return tenant, hook

    async def webhook(self, ref: str) -> tuple[Tenant, Webhook | None, list[WebhookDelivery]]:
        tenant = await self._store.get_tenant(ref)
        return (
            tenant,
            await self._store.get_webhook(tenant.id),
            await self._store.list_deliveries(tenant.id, limit=20),
        )

    async def remove_webhook(self, actor: str, ref: str) -> None:
        tenant = await self._store.get_tenant(ref)
        await self._store.delete_webhook(tenant.id)
        await self._audit(actor, "tenant.webhook.remove", tenant.id)
        await self._announce("webhook", tenant.id)

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
        await self._announce("api_key", key.id)
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
    async def add_smpp(
        self,
        actor: str,
        ref: str,
        system_id: str,
        password: str,
        concatenated: ConcatenatedMode = "reassemble",
    ) -> SmppCredential:
        tenant = await self._store.get_tenant(ref)
        check_smpp_system_id(system_id)
        check_smpp_password(password)
        credential = SmppCredential(
            system_id=system_id, tenant_id=tenant.id, created_at=self._clock(), concatenated=concatenated
        )
        await self._store.add_smpp_credential(credential, credentials.hash_password(password))
        await self._audit(actor, "tenant.smpp.add", tenant.id, system_id=system_id, concatenated=concatenated)
        await self._announce("smpp_credential", system_id)
        return credential

    async def set_smpp(
        self, actor: str, ref: str, system_id: str, concatenated: ConcatenatedMode
    ) -> SmppCredential:
        """Change how a login's concatenated messages are taken (binds made from now on)."""
        tenant = await self._store.get_tenant(ref)
        credential = await self._store.set_smpp_concatenated(tenant.id, system_id, concatenated)
        await self._audit(actor, "tenant.smpp.set", tenant.id, system_id=system_id, concatenated=concatenated)
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
