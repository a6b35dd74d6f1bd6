"""The store interface every backend implements, and the factory that opens one from config.

Callers: the admin daemon writes the registry; other daemons read it (and cache it); the supervisor
runs `migrate()` once before any daemon starts. Backends: `sqlite.py` (aiosqlite, WAL, default,
single node) and `postgres.py` (psycopg 3 async pool, cluster). Both run the same migration set
(`migrations/NNNN_name.sql`) and pass the same test-suite (`tests/integration/test_store.py`).
"""

from __future__ import annotations

from typing import Protocol

from appliance.store.models import ApiKey, AuditEntry, OperatorToken, SmppCredential, Tenant


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
