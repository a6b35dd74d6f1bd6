"""The relational store: the `Store` interfaces, their row models, and `open_store` to get one from config.

The backends are imported inside `open_store`, so importing this package loads no database driver (and a
node on SQLite never imports psycopg).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.errors import StoreError
from appliance.store.base import (
    AccountStore,
    ComplianceStore,
    FullStore,
    MessageStore,
    Store,
    WebhookStore,
)
from appliance.store.carrier_base import CarrierStore
from appliance.store.carrier_models import BindType, Carrier, CarrierKind, MnpEntry, RateRow
from appliance.store.dlq_base import DeadLetterFilter, DeadLetterStore, NotDeadLettered
from appliance.store.models import (
    Account,
    ApiKey,
    AuditEntry,
    DeadLetter,
    EventRecord,
    Lease,
    MessageRecord,
    OperatorToken,
    SmppCredential,
    Suppression,
    Tenant,
    TenantStatus,
    Webhook,
    WebhookDelivery,
)
from appliance.store.smpp_base import DlrMark, DlrOutcome, SmppStore, SmppSubmission

if TYPE_CHECKING:
    from appliance.config.schema import StoreSection

__all__ = [
    "Account",
    "AccountStore",
    "ApiKey",
    "AuditEntry",
    "BindType",
    "Carrier",
    "CarrierKind",
    "CarrierStore",
    "ComplianceStore",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "DlrMark",
    "DlrOutcome",
    "EventRecord",
    "FullStore",
    "Lease",
    "MessageRecord",
    "MessageStore",
    "MnpEntry",
    "NotDeadLettered",
    "OperatorToken",
    "RateRow",
    "SmppCredential",
    "SmppStore",
    "SmppSubmission",
    "Store",
    "Suppression",
    "Tenant",
    "TenantStatus",
    "Webhook",
    "WebhookDelivery",
    "WebhookStore",
    "open_store",
]


async def open_store(section: StoreSection) -> FullStore:
    """Open and connect the configured backend; the caller runs `migrate()` when it is its job."""
    if section.backend == "postgres":
        if not section.dsn:
            raise StoreError("store.dsn is empty: the postgres backend needs a DSN")
        from appliance.store.postgres import PostgresStore

        return await PostgresStore.open(section.dsn, pool_size=section.pool_size)
    if not section.path:
        raise StoreError("store.path is empty: the sqlite backend needs a file")
    from appliance.store.sqlite import SqliteStore

    return await SqliteStore.open(section.path)
