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


ConcatenatedMode = Literal["reassemble", "parts"]
"""What the inbound SMPP server does with the parts of a concatenated message from a login."""


class SmppCredential(msgspec.Struct, frozen=True, kw_only=True):
    system_id: str  # unique across the node: a bind names no tenant, only a system_id
    tenant_id: str
    created_at: float
    concatenated: ConcatenatedMode = "reassemble"


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


# ---- message data (written in batches by the recorder; read by the REST API) ------------------------


class MessageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A message as the store keeps it: its summary columns plus the accepted message as JSON."""

    id: str
    tenant_id: str
    origin: str
    state: str  # design.md §7: created, <n>_sending, <n>_waiting, <n>_delivered, <n>_failed, all_failed
    created_at: float
    updated_at: float
    estimated_cost: float = 0.0
    cost: float = 0.0
    idempotency_key: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)  # the unified Message as accepted


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a message; `id` is unique so a redelivered event is stored once."""

    id: str
    message_id: str
    tenant_id: str
    kind: str  # accepted, submitted, dlr, bounce, deferred, timeout, channel_failed, delivered, failed, ...
    at: float
    state: str | None = None  # the message state this event moves to, if any
    cost: float | None = None  # what the event cost (a dispatched attempt's route price), summed per message
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message whose every channel failed (`all_failed`), waiting for an operator to replay or purge it."""

    message_id: str
    tenant_id: str
    dead_lettered_at: float
    event_id: str  # the dead_lettered event that wrote this entry
    attempt: int  # the highest attempt number of the run that failed
    reason: str
    status: Literal["dead", "replayed", "purged"] = "dead"
    replay_count: int = 0
    last_replayed_at: float | None = None
    history: list[Any] = msgspec.field(default_factory=list)  # the cascade's record of the run


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's money and this month's message count. `reserved`/`quota_leased` are held by gateway
    workers' leases: spendable by them, not by anyone else."""

    tenant_id: str
    prepaid: bool
    balance: float
    reserved: float
    currency: str
    month: str  # "YYYY-MM"
    quota_used: int
    quota_leased: int


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """What one holder (a gateway worker, "node/worker") has reserved of a tenant's balance and quota."""

    tenant_id: str
    holder: str
    month: str
    amount: float
    messages: int
    taken_at: float


class Suppression(msgspec.Struct, frozen=True, kw_only=True):
    """An address never to be contacted: for one tenant, or for all (`tenant_id == "*"`, opt-outs)."""

    tenant_id: str
    address: str  # normalised: E.164 for phones, lower-case for email
    reason: str
    created_at: float


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    url: str
    secret: str  # HMAC-SHA256 signing key; retrievable by design (we sign with it), never logged
    events: Literal["final", "all"]
    created_at: float


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """One POST owed to a tenant, retried with backoff until delivered or given up after 24 h."""

    id: str  # unique per (event, webhook): a redelivered event enqueues nothing new
    tenant_id: str
    url: str
    body: str  # the exact JSON that is signed and sent
    created_at: float
    next_at: float
    attempts: int = 0
    state: Literal["pending", "delivered", "failed"] = "pending"
    last_status: int | None = None
    last_error: str | None = None
