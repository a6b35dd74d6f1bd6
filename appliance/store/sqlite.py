"""The SQLite backend: the default single-node store, one aiosqlite connection per `Store`.

The file runs in WAL mode so the daemons of one node can read while admin writes; `busy_timeout` makes a
second writer wait instead of failing. One connection is shared by the coroutines of a process, so a lock
gives each unit of work the connection to itself (a transaction is per connection in SQLite). Writes
start with `BEGIN IMMEDIATE`, which takes the write lock up front: a deferred transaction that later
needs it fails with SQLITE_BUSY instead of waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from appliance.errors import StoreError
from appliance.store.sql import ForeignKeyViolationError, Params, Row, Session, SqlStore, UniqueViolationError

MEMORY = ":memory:"
_PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL")
_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


class _SqliteSession:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> int:
        if not rows:
            return 0
        async with self._conn.executemany(sql, rows) as cursor:
            return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


class SqliteStore(SqlStore):
    """A store in one SQLite file (or in memory, for unit tests)."""

    _AUTO_ID = "INTEGER PRIMARY KEY AUTOINCREMENT"
    _TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        """Use `await SqliteStore.open(path)`; this only wraps an open, configured connection."""
        self._conn: aiosqlite.Connection | None = conn
        self._path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, *, busy_timeout_ms: int = 5000) -> SqliteStore:
        """Open (creating the file and its directory if missing) and configure the connection."""
        if path != MEMORY:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of the store {path}: {exc}") from exc
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        try:
            for pragma in (f"PRAGMA busy_timeout = {int(busy_timeout_ms)}", *_PRAGMAS):
                await conn.execute(pragma)
        except sqlite3.Error as exc:
            await conn.close()
            raise StoreError(f"cannot configure the store {path}: {exc}") from exc
        return cls(conn, path)

    @asynccontextmanager
    async def _session(self, *, write: bool) -> AsyncIterator[Session]:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"the store {self._path} is closed")
            try:
                if write:
                    await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteSession(conn)
                    if write:
                        await conn.execute("COMMIT")
                except BaseException:
                    # Also after a failed COMMIT (e.g. busy), so the next BEGIN finds no open transaction.
                    if conn.in_transaction:
                        await conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        name = getattr(exc, "sqlite_errorname", "")
        if name in _UNIQUE:
            return UniqueViolationError(str(exc))
        if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
            return ForeignKeyViolationError(str(exc))
        return StoreError(f"store {self._path}: {exc}")

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
