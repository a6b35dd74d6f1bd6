"""Rows of the registry as the store hands them out: frozen, typed, free of secrets.

Secret material (API key hashes, SMPP password hashes, operator token hashes) never leaves the store
inside these objects; the `find_*` lookups return it beside them, for the one caller that checks it.
Times are UNIX epoch seconds (float).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

TenantStatus = Literal["active", "suspended"]


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    tier: Literal["starter", "business", "enterprise"]
    status: TenantStatus
    email: str
    # Sustained messages/s and bucket size; monthly message quota. 0 means unlimited.
    rate_limit: int
    burst: int
    monthly_quota: int
    created_at: float
    updated_at: float


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the public key id, part of the key the tenant holds
    tenant_id: str
    label: str
    created_at: float
    revoked_at: float | None = None


class SmppCredential(msgspec.Struct, frozen=True, kw_only=True):
    system_id: str  # unique across the node: a bind names no tenant, only a system_id
    tenant_id: str
    created_at: float


class OperatorToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str
    created_at: float
    revoked_at: float | None = None


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One admin action; append-only, kept when its target is deleted."""

    id: int | None
    at: float
    actor: str  # "socket:<uid>" or "token:<id>"
    action: str  # e.g. "tenant.add", "tenant.key.revoke"
    target: str  # what it acted on, e.g. a tenant id
    details: dict[str, Any] = msgspec.field(default_factory=dict)
