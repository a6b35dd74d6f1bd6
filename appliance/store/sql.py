"""Every `Store` method, written once in portable SQL over the few primitives a backend provides.

A backend (`sqlite.py`, `postgres.py`) supplies `_session()` — a connection for one unit of work, a
transaction when it writes — whose `Session` runs `?`-placeholder SQL, plus two class attributes for the
only spots where the dialects differ. It turns its driver's errors into `StoreError`, or into the two
internal kinds below, which this module alone maps to `Conflict` / `NotFound` because only here is it
known which row was meant.

    StoreError
    ├── UniqueViolationError      (internal) a unique or primary key refused the write -> Conflict
    └── ForeignKeyViolationError  (internal) the referenced tenant is missing -> NotFound("tenant", id)
"""

from __future__ import annotations

import abc
import re
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from appliance.errors import Conflict, NotFound, StoreError
from appliance.store.base import Store
from appliance.store.models import (
    ApiKey,
    AuditEntry,
    ConcatenatedMode,
    OperatorToken,
    SmppCredential,
    Tenant,
)
from appliance.store.sql_accounts import SqlAccounts
from appliance.store.sql_carriers import SqlCarriers
from appliance.store.sql_dead_letters import SqlDeadLetters
from appliance.store.sql_messages import SqlMessages
from appliance.store.sql_smpp import SqlSmpp

Row = tuple[Any, ...]
Params = Sequence[object]
_S = TypeVar("_S", bound=msgspec.Struct)

# The marker a migration writes where an auto-numbered primary key column definition goes.
AUTO_ID_MARKER = "{AUTO_ID}"
_MIGRATION_FILE = re.compile(r"^(\d{4})_\w+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


class UniqueViolationError(StoreError):
    """A unique constraint refused the write."""


class ForeignKeyViolationError(StoreError):
    """A foreign key refused the write."""


class Session(Protocol):
    """One connection for one unit of work; SQL uses `?` placeholders."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it touched."""
        ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> int:
        """Run one statement once per parameter row, in one driver call; return the rows touched in all."""
        ...


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, script) of every `migrations/NNNN_name.sql`, in version order."""
    folder = resources.files("appliance.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append((int(match[1]), entry.name.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found)


def split_statements(script: str) -> list[str]:
    """Cut a script at each `;` ending a line, dropping whole-line `--` comments and empty pieces."""
    statements = []
    for chunk in _STATEMENT_END.split(script):
        lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip()
        if statement:
            statements.append(statement)
    return statements


def _columns(model: type[msgspec.Struct]) -> str:
    return ", ".join(model.__struct_fields__)


def _insert(table: str, columns: str) -> str:
    marks = ", ".join("?" for _ in columns.split(","))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


def _make(model: type[_S], row: Row) -> _S:
    return model(**dict(zip(model.__struct_fields__, row, strict=True)))


_TENANT = _columns(Tenant)
_API_KEY = _columns(ApiKey)
_SMPP = _columns(SmppCredential)
_TOKEN = _columns(OperatorToken)
_AUDIT = "id, at, actor, action, target, details"
_SECRET_COLUMN = {
    "api_keys": "secret_hash",
    "smpp_credentials": "password_hash",
    "operator_tokens": "secret_hash",
}


class SqlStore(SqlDeadLetters, SqlSmpp, SqlCarriers, SqlMessages, SqlAccounts, Store, abc.ABC):
    """The shared implementation; a backend adds `_session`, `close` and the two dialect attributes."""

    # Column definition that replaces AUTO_ID_MARKER in migrations.
    _AUTO_ID: ClassVar[str]
    # A query with one `?` (a table name) that yields a row iff that table exists.
    _TABLE_EXISTS: ClassVar[str]

    @abc.abstractmethod
    def _session(self, *, write: bool) -> AbstractAsyncContextManager[Session]:
        """A connection; with write=True also a transaction, committed unless the block raises."""

    async def _fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._session(write=False) as session:
            return await session.fetch_one(sql, params)

    async def _fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._session(write=False) as session:
            return await session.fetch_all(sql, params)

    # lifecycle

    async def migrate(self) -> list[str]:
        async with self._session(write=True) as session:
            await session.execute(_SCHEMA_MIGRATIONS)
        applied = []
        for version, name, script in load_migrations():
            async with self._session(write=True) as session:
                # Checked inside the transaction, so a second migrator skips what the first applied.
                if await session.fetch_one("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for statement in split_statements(script.replace(AUTO_ID_MARKER, self._AUTO_ID)):
                    await session.execute(statement)
                await session.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
            applied.append(name)
        return applied

    async def schema_version(self) -> int:
        async with self._session(write=False) as session:
            if await session.fetch_one(self._TABLE_EXISTS, ("schema_migrations",)) is None:
                return 0
            row = await session.fetch_one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def ping(self) -> None:
        if await self._fetch_one("SELECT 1") is None:
            raise StoreError("the database returned nothing for SELECT 1")

    # tenants

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        try:
            async with self._session(write=True) as session:
                await session.execute(_insert("tenants", _TENANT), msgspec.structs.astuple(tenant))
        except UniqueViolationError:
            id_taken = await self._fetch_one("SELECT 1 FROM tenants WHERE id = ?", (tenant.id,))
            raise Conflict("tenant", tenant.id if id_taken else tenant.name) from None
        return tenant

    async def get_tenant(self, ref: str) -> Tenant:
        row = await self._fetch_one(
            f"SELECT {_TENANT} FROM tenants WHERE id = ? OR name = ? "
            "ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1",
            (ref, ref, ref),
        )
        if row is None:
            raise NotFound("tenant", ref)
        return _make(Tenant, row)

    async def list_tenants(self) -> list[Tenant]:
        return [
            _make(Tenant, row)
            for row in await self._fetch_all(f"SELECT {_TENANT} FROM tenants ORDER BY name")
        ]

    async def update_tenant(self, tenant: Tenant) -> Tenant:
        t = tenant
        sql = (
            "UPDATE tenants SET tier = ?, status = ?, email = ?, rate_limit = ?, burst = ?, "
            "monthly_quota = ?, updated_at = ? WHERE id = ?"
        )
        params = (t.tier, t.status, t.email, t.rate_limit, t.burst, t.monthly_quota, t.updated_at, t.id)
        return await self._update_one(Tenant, "tenants", "tenant", t.id, sql, params)

    async def delete_tenant(self, tenant_id: str) -> None:
        async with self._session(write=True) as session:
            if not await session.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,)):
                raise NotFound("tenant", tenant_id)

    # API keys

    async def add_api_key(self, key: ApiKey, secret_hash: str) -> None:
        await self._insert_secret("api_keys", key, secret_hash, Conflict("api key", key.id), key.tenant_id)

    async def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        sql = f"SELECT {_API_KEY} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id"
        return [_make(ApiKey, row) for row in await self._fetch_all(sql, (tenant_id,))]

    async def find_api_key(self, key_id: str) -> tuple[ApiKey, str]:
        return await self._find_secret(ApiKey, "api_keys", "api key", "id", key_id)

    async def revoke_api_key(self, tenant_id: str, key_id: str, at: float) -> ApiKey:
        sql = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?"
        return await self._update_one(ApiKey, "api_keys", "api key", key_id, sql, (at, key_id, tenant_id))

    # SMPP credentials

    async def add_smpp_credential(self, credential: SmppCredential, password_hash: str) -> None:
        conflict = Conflict("smpp credential", credential.system_id)
        await self._insert_secret(
            "smpp_credentials", credential, password_hash, conflict, credential.tenant_id
        )

    async def list_smpp_credentials(self, tenant_id: str) -> list[SmppCredential]:
        sql = f"SELECT {_SMPP} FROM smpp_credentials WHERE tenant_id = ? ORDER BY system_id"
        return [_make(SmppCredential, row) for row in await self._fetch_all(sql, (tenant_id,))]

    async def find_smpp_credential(self, system_id: str) -> tuple[SmppCredential, str]:
        return await self._find_secret(
            SmppCredential, "smpp_credentials", "smpp credential", "system_id", system_id
        )

    async def set_smpp_concatenated(
        self, tenant_id: str, system_id: str, concatenated: ConcatenatedMode
    ) -> SmppCredential:
        async with self._session(write=True) as session:
            updated = await session.execute(
                "UPDATE smpp_credentials SET concatenated = ? WHERE system_id = ? AND tenant_id = ?",
                (concatenated, system_id, tenant_id),
            )
            row = await session.fetch_one(
                f"SELECT {_SMPP} FROM smpp_credentials WHERE system_id = ?", (system_id,)
            )
        if not updated or row is None:
            raise NotFound("smpp credential", system_id)
        return _make(SmppCredential, row)

    async def remove_smpp_credential(self, tenant_id: str, system_id: str) -> None:
        async with self._session(write=True) as session:
            deleted = await session.execute(
                "DELETE FROM smpp_credentials WHERE system_id = ? AND tenant_id = ?", (system_id, tenant_id)
            )
            if not deleted:
                raise NotFound("smpp credential", system_id)

    # operator tokens

    async def add_operator_token(self, token: OperatorToken, secret_hash: str) -> None:
        await self._insert_secret("operator_tokens", token, secret_hash, Conflict("operator token", token.id))

    async def list_operator_tokens(self) -> list[OperatorToken]:
        sql = f"SELECT {_TOKEN} FROM operator_tokens ORDER BY created_at, id"
        return [_make(OperatorToken, row) for row in await self._fetch_all(sql)]

    async def find_operator_token(self, token_id: str) -> tuple[OperatorToken, str]:
        return await self._find_secret(OperatorToken, "operator_tokens", "operator token", "id", token_id)

    async def revoke_operator_token(self, token_id: str, at: float) -> OperatorToken:
        sql = "UPDATE operator_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"
        return await self._update_one(
            OperatorToken, "operator_tokens", "operator token", token_id, sql, (at, token_id)
        )

    # audit

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        details = msgspec.json.encode(entry.details).decode()
        async with self._session(write=True) as session:
            row = await session.fetch_one(
                "INSERT INTO audit (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (entry.at, entry.actor, entry.action, entry.target, details),
            )
        if row is None:
            raise StoreError("INSERT ... RETURNING id returned no row")
        return msgspec.structs.replace(entry, id=int(row[0]))

    async def list_audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        where, params = ("WHERE target = ? ", (target, limit)) if target is not None else ("", (limit,))
        rows = await self._fetch_all(f"SELECT {_AUDIT} FROM audit {where}ORDER BY id DESC LIMIT ?", params)
        return [_audit_entry(row) for row in rows]

    # helpers shared by the methods above

    async def _insert_secret(
        self, table: str, obj: msgspec.Struct, secret: str, conflict: Conflict, tenant_id: str | None = None
    ) -> None:
        """Insert a row (its model's columns plus the secret hash), naming the row or tenant when refused."""
        columns = f"{_columns(type(obj))}, {_SECRET_COLUMN[table]}"
        try:
            async with self._session(write=True) as session:
                await session.execute(_insert(table, columns), (*msgspec.structs.astuple(obj), secret))
        except UniqueViolationError:
            raise conflict from None
        except ForeignKeyViolationError:
            raise NotFound("tenant", str(tenant_id)) from None

    async def _find_secret(
        self, model: type[_S], table: str, kind: str, key: str, value: str
    ) -> tuple[_S, str]:
        """One row by its key, with its secret hash beside it (the only way a hash leaves the store)."""
        sql = f"SELECT {_columns(model)}, {_SECRET_COLUMN[table]} FROM {table} WHERE {key} = ?"
        row = await self._fetch_one(sql, (value,))
        if row is None:
            raise NotFound(kind, value)
        return _make(model, row[:-1]), str(row[-1])

    async def _update_one(
        self, model: type[_S], table: str, kind: str, row_id: str, update: str, params: Params
    ) -> _S:
        """Run an UPDATE of the row `row_id` and read that row back in the same transaction; NotFound."""
        async with self._session(write=True) as session:
            if await session.execute(update, params):
                row = await session.fetch_one(
                    f"SELECT {_columns(model)} FROM {table} WHERE id = ?", (row_id,)
                )
                if row is not None:
                    return _make(model, row)
        raise NotFound(kind, row_id)


def _audit_entry(row: Row) -> AuditEntry:
    id_, at, actor, action, target, details = row
    decoded = msgspec.json.decode(details, type=dict[str, Any])
    return AuditEntry(id=int(id_), at=at, actor=actor, action=action, target=target, details=decoded)
