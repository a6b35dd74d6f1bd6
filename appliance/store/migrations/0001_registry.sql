-- 0001: the registry written by admin: tenants, their API keys and SMPP credentials, operator tokens,
-- and the append-only audit trail.
--
-- Migration files are applied in file-name order, each in its own transaction, by SqlStore.migrate().
-- Write them in the subset both SQLite and PostgreSQL run unchanged: TEXT, INTEGER, BIGINT,
-- DOUBLE PRECISION (epoch seconds), INTEGER 0/1 instead of BOOLEAN. A statement ends with ';' at the end
-- of a line. The one non-portable need, an auto-numbered key, is written as the marker {AUTO_ID}, which
-- each backend replaces with its own column definition (sqlite.py, postgres.py: _AUTO_ID).

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    tier          TEXT NOT NULL,
    status        TEXT NOT NULL,
    email         TEXT NOT NULL,
    rate_limit    INTEGER NOT NULL,
    burst         INTEGER NOT NULL,
    monthly_quota BIGINT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE smpp_credentials (
    system_id     TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL
);

CREATE INDEX smpp_credentials_tenant ON smpp_credentials (tenant_id, system_id);

CREATE TABLE operator_tokens (
    id          TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
);

-- No foreign key: audit rows outlive what they describe.
CREATE TABLE audit (
    id      {AUTO_ID},
    at      DOUBLE PRECISION NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE INDEX audit_target ON audit (target, id);
