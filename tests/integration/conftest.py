"""Fixtures that open a real store on each backend, so one test function runs on SQLite and PostgreSQL,
and a client of a real nats-server with Hermes' streams (`nats`).

SQLite uses a file in the test's temp dir. PostgreSQL uses the server named by HERMES_TEST_POSTGRES_DSN,
in a schema created for the test and dropped after it (the store reaches it through the DSN's
search_path); without that variable the PostgreSQL runs are skipped, never failed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from psycopg import sql

from appliance.bus.streams import ensure_streams
from appliance.config.schema import StoreSection
from appliance.store import FullStore, open_store

POSTGRES_DSN_VAR = "HERMES_TEST_POSTGRES_DSN"
POSTGRES_SKIP_REASON = f"{POSTGRES_DSN_VAR} is not set: PostgreSQL store tests skipped"


async def _run(dsn: str, statement: sql.Composed) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(statement)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FullStore]:
    """A connected store on a database no migration has touched."""
    if request.param == "sqlite":
        store = await open_store(StoreSection(backend="sqlite", path=str(tmp_path / "db" / "hermes.db")))
        try:
            yield store
        finally:
            await store.close()
        return
    dsn = os.environ.get(POSTGRES_DSN_VAR)
    if not dsn:
        pytest.skip(POSTGRES_SKIP_REASON)
    schema = f"hermes_test_{uuid.uuid4().hex[:12]}"
    await _run(dsn, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        scoped = psycopg.conninfo.make_conninfo(dsn, options=f"-csearch_path={schema}")
        store = await open_store(StoreSection(backend="postgres", dsn=scoped, pool_size=4))
        try:
            yield store
        finally:
            await store.close()
    finally:
        await _run(dsn, sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
async def store(empty_store: FullStore) -> FullStore:
    """A connected store with every migration applied."""
    await empty_store.migrate()
    return empty_store


@pytest.fixture
async def nats(nats_server: str) -> AsyncIterator[NatsClient]:
    """A client of a fresh nats-server on which Hermes' streams exist."""
    client = NatsClient()
    await client.connect(servers=[nats_server])
    await ensure_streams(client.jetstream())
    yield client
    await client.close()
