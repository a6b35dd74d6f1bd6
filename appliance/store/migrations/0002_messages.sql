-- 0002: message data (messages and their events, written in batches by the recorder), tenants' money and
-- monthly quota (accounts, quota_usage, the leases gateway workers hold, the ledger), suppression lists,
-- and webhooks with their outstanding deliveries.
--
-- Same portable subset as 0001 (see its header). JSON columns (payload, data) are TEXT written by msgspec.
-- Money (balance, reserved, amount, cost) is DOUBLE PRECISION: amounts are small decimals added and
-- compared a few times per lease, so binary rounding stays far below a cent; counts are BIGINT/INTEGER.
--
-- Foreign keys: what belongs to a live tenant (account, quota usage, leases, webhook) goes with it.
-- Messages and events have none on purpose: message history outlives a deleted tenant, and the recorder
-- must never fail because an event arrives before its message. The ledger and the webhook deliveries
-- have none either (the books survive the tenant; a delivery is a record of what was owed), and
-- suppressions cannot have one because tenant_id "*" is the global opt-out list.

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    origin          TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL,
    estimated_cost  DOUBLE PRECISION NOT NULL,
    cost            DOUBLE PRECISION NOT NULL,
    idempotency_key TEXT,
    payload         TEXT NOT NULL
);

CREATE INDEX messages_tenant ON messages (tenant_id, id);

CREATE INDEX messages_tenant_state ON messages (tenant_id, state, id);

-- state: the message state this event moves to, or NULL.
CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    state      TEXT,
    data       TEXT NOT NULL
);

CREATE INDEX events_message ON events (tenant_id, message_id, at);

-- No row until the first credit or charge; until then a tenant is postpaid with balance 0.
-- prepaid: 0/1. reserved: the sum of the leases' amounts (what gateway workers may still spend).
CREATE TABLE accounts (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    prepaid   INTEGER NOT NULL,
    balance   DOUBLE PRECISION NOT NULL,
    reserved  DOUBLE PRECISION NOT NULL,
    currency  TEXT NOT NULL
);

-- month: "YYYY-MM". leased: the sum of the leases' messages for that month.
CREATE TABLE quota_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    month     TEXT NOT NULL,
    used      BIGINT NOT NULL,
    leased    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, month)
);

-- holder: a gateway worker ("node/worker"). taken_at: the time of the latest take_lease.
CREATE TABLE leases (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    holder    TEXT NOT NULL,
    month     TEXT NOT NULL,
    amount    DOUBLE PRECISION NOT NULL,
    messages  BIGINT NOT NULL,
    taken_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, holder, month)
);

CREATE INDEX leases_holder ON leases (holder);

-- Append-only. kind "credit": an amount added to the balance (negative for a correction), and
-- kind "charge": an amount a gateway worker spent, taken from the balance (positive).
CREATE TABLE ledger (
    id        {AUTO_ID},
    tenant_id TEXT NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    kind      TEXT NOT NULL,
    amount    DOUBLE PRECISION NOT NULL,
    note      TEXT NOT NULL
);

CREATE INDEX ledger_tenant ON ledger (tenant_id, id);

-- tenant_id "*": the global opt-out list, applied to every tenant.
CREATE TABLE suppressions (
    tenant_id  TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, address)
);

-- events: "final" or "all".
CREATE TABLE webhooks (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

-- state: pending, delivered, failed. next_at: when a pending delivery is due; once it is delivered or
-- failed, when that happened.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    url         TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    next_at     DOUBLE PRECISION NOT NULL,
    attempts    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    last_status INTEGER,
    last_error  TEXT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);

CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at);
