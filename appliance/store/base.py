"""The store interface every backend implements, and the factory that opens one from config.

Callers: the admin daemon writes the registry; other daemons read it (and cache it); the supervisor
runs `migrate()` once before any daemon starts. Backends: `sqlite.py` (aiosqlite, WAL, default,
single node) and `postgres.py` (psycopg 3 async pool, cluster). Both run the same migration set
(`migrations/NNNN_name.sql`) and pass the same test-suite (`tests/integration/test_store.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from appliance.store.carrier_base import CarrierStore
from appliance.store.dlq_base import DeadLetterStore
from appliance.store.models import (
    Account,
    ApiKey,
    AuditEntry,
    ConcatenatedMode,
    EventRecord,
    Lease,
    MessageRecord,
    OperatorToken,
    SmppCredential,
    Suppression,
    Tenant,
    Webhook,
    WebhookDelivery,
)
from appliance.store.smpp_base import SmppStore


class Store(Protocol):
    # lifecycle
    async def migrate(self) -> list[str]:
        """Apply pending migrations in order, each in its own transaction; return the names applied."""

    async def schema_version(self) -> int:
        """Highest applied migration number (0 on an empty database)."""

    async def ping(self) -> None:
        """Raise StoreError unless the database answers a trivial query."""

    async def close(self) -> None:
        """Close connections; idempotent."""

    # tenants
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Insert; Conflict if the name or id is taken."""

    async def get_tenant(self, ref: str) -> Tenant:
        """By id or by name; NotFound."""

    async def list_tenants(self) -> list[Tenant]:
        """All tenants ordered by name."""

    async def update_tenant(self, tenant: Tenant) -> Tenant:
        """Replace the mutable fields (tier, status, email, limits, updated_at) of tenant.id; NotFound."""

    async def delete_tenant(self, tenant_id: str) -> None:
        """Delete the tenant with its keys and SMPP credentials (audit rows stay); NotFound."""

    # API keys
    async def add_api_key(self, key: ApiKey, secret_hash: str) -> None:
        """Insert; Conflict on a duplicate id; NotFound if the tenant does not exist."""

    async def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        """Ordered by created_at, revoked ones included."""

    async def find_api_key(self, key_id: str) -> tuple[ApiKey, str]:
        """The key and its secret hash; NotFound."""

    async def revoke_api_key(self, tenant_id: str, key_id: str, at: float) -> ApiKey:
        """Set revoked_at (idempotent: keeps the first time); NotFound if not that tenant's key."""

    # SMPP credentials
    async def add_smpp_credential(self, credential: SmppCredential, password_hash: str) -> None:
        """Insert; Conflict on a system_id taken by any tenant; NotFound if the tenant does not exist."""

    async def list_smpp_credentials(self, tenant_id: str) -> list[SmppCredential]:
        """Ordered by system_id."""

    async def find_smpp_credential(self, system_id: str) -> tuple[SmppCredential, str]:
        """The credential and its password hash; NotFound."""

    async def set_smpp_concatenated(
        self, tenant_id: str, system_id: str, concatenated: ConcatenatedMode
    ) -> SmppCredential:
        """Change how a login's concatenated messages are taken; NotFound unless the tenant has it."""

    async def remove_smpp_credential(self, tenant_id: str, system_id: str) -> None:
        """Delete; NotFound if not that tenant's."""

    # operator tokens
    async def add_operator_token(self, token: OperatorToken, secret_hash: str) -> None:
        """Insert; Conflict on a duplicate id."""

    async def list_operator_tokens(self) -> list[OperatorToken]:
        """Ordered by created_at."""

    async def find_operator_token(self, token_id: str) -> tuple[OperatorToken, str]:
        """The token and its secret hash; NotFound."""

    async def revoke_operator_token(self, token_id: str, at: float) -> OperatorToken:
        """Set revoked_at (idempotent); NotFound."""

    # audit
    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append; returns the entry with its id."""

    async def list_audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        """Newest first."""


class MessageStore(Protocol):
    """Message data: written in batches by the recorder, read by the REST API, never on the hot path."""

    async def record(self, messages: Sequence[MessageRecord], events: Sequence[EventRecord]) -> None:
        """One transaction: insert messages (an existing id is left as it is), insert events (an existing
        event id is skipped), and for each new event with a `state`, in (at, id) order, set the message's
        state and updated_at unless the message already holds a later updated_at (late events never rewind
        it) or a final event (delivered, failed, dead_lettered) of the same or a later attempt has already
        moved it (see domain/trace.py `moves_state`). Then messages.cost becomes the sum of its events'
        costs, for messages that have any. `state` in `list_messages` is a state or a group of
        domain/states.py (delivered, failed, pending)."""

    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord:
        """NotFound("message", id) when absent *or another tenant's* (no leaks across tenants)."""

    async def list_messages(
        self,
        tenant_id: str,
        *,
        state: str | None = None,
        since: float | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        """Ascending by id (= creation time); `after_id` is the paging cursor; `since` bounds created_at."""

    async def list_events(self, tenant_id: str, message_id: str) -> list[EventRecord]:
        """Ordered by (at, id)."""

    async def find_message(self, message_id: str) -> MessageRecord:
        """By id alone, whatever its tenant: for operators (admin API), never for tenants. NotFound."""


class AccountStore(Protocol):
    """Balances and quotas. Gateway workers take leases (reserve in bulk), spend locally, then settle,
    so a tenant can never overspend and the hot path rarely touches the store."""

    async def get_account(self, tenant_id: str, month: str) -> Account:
        """The account (a fresh one — not prepaid, balance 0, currency from the caller's default "EUR" —
        when none exists yet) with `month`'s quota usage. NotFound when the tenant does not exist."""

    async def credit(self, tenant_id: str, amount: float, *, at: float, note: str) -> Account:
        """Add `amount` (negative to correct) to the balance, make the account prepaid, write a ledger row.
        Refuses (InvalidInput "amount") a debit that would take the balance below what is reserved."""

    async def take_lease(
        self, tenant_id: str, holder: str, *, month: str, amount: float, messages: int, quota: int, at: float
    ) -> bool:
        """Atomically reserve `amount` of balance (only if prepaid; needs balance - reserved >= amount) and
        `messages` of the month's quota (only if quota > 0; needs used + leased + messages <= quota) for
        `holder`, adding to its lease. False, changing nothing, when either does not fit."""

    async def settle_lease(
        self,
        tenant_id: str,
        holder: str,
        *,
        month: str,
        spent_amount: float,
        spent_messages: int,
        release: bool,
        at: float,
    ) -> None:
        """Charge what the holder spent out of its lease (balance -= spent, quota used += spent, ledger row);
        with `release`, also hand back the unspent rest. Never leaves negative lease or reserved values."""

    async def leases_of(self, holder: str) -> list[Lease]:
        """Outstanding leases of a holder (a restarted worker settles and releases them)."""


class ComplianceStore(Protocol):
    async def add_suppression(self, entry: Suppression) -> None:
        """Insert; an existing (tenant_id, address) keeps its first reason (idempotent)."""

    async def remove_suppression(self, tenant_id: str, address: str) -> None:
        """NotFound("suppression", address)."""

    async def list_suppressions(
        self, tenant_id: str, *, after: str | None = None, limit: int = 1000
    ) -> list[Suppression]:
        """Ordered by address; `after` is the paging cursor."""

    async def suppressed_addresses(self, tenant_id: str) -> set[str]:
        """All addresses of a tenant ("*" for the global opt-out list), for the gateway's cache."""


class WebhookStore(Protocol):
    async def set_webhook(self, webhook: Webhook) -> None:
        """Insert or replace the tenant's webhook. NotFound("tenant") when the tenant does not exist."""

    async def get_webhook(self, tenant_id: str) -> Webhook | None: ...
    async def list_webhooks(self) -> list[Webhook]:
        """Every tenant's webhook, by tenant id."""

    async def delete_webhook(self, tenant_id: str) -> None:
        """NotFound("webhook", tenant_id)."""

    async def enqueue_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Insert pending deliveries, skipping ids that exist; return how many were new."""

    async def due_deliveries(self, now: float, *, limit: int = 100) -> list[WebhookDelivery]:
        """Pending deliveries with next_at <= now, oldest next_at first."""

    async def finish_delivery(
        self, delivery_id: str, *, state: str, status: int | None, error: str | None, at: float
    ) -> None:
        """Mark delivered or failed (terminal), counting the attempt."""

    async def retry_delivery(
        self, delivery_id: str, *, next_at: float, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and schedule the next one."""

    async def list_deliveries(self, tenant_id: str, *, limit: int = 100) -> list[WebhookDelivery]:
        """Newest first, for `hermesctl tenant webhook status`."""


class FullStore(
    Store,
    MessageStore,
    AccountStore,
    ComplianceStore,
    WebhookStore,
    CarrierStore,
    SmppStore,
    DeadLetterStore,
    Protocol,
):
    """Everything one backend implements; `open_store` returns this."""
