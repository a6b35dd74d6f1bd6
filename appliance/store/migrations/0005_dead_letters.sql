-- 0005: dead letters (messages whose every channel failed, kept for an operator to replay or purge), and
-- what the recorder needs to project cascade events faithfully.
--
-- dead_letters: one row per message (a message dead-lettered again after a replay reopens its row).
-- The message itself is not copied: replay reads messages.payload (the accepted message), so a large
-- email is stored once. event_id: the dead_lettered event that wrote the row (a redelivered event
-- changes nothing). attempt: the highest attempt of that run. status: dead (waiting for an operator),
-- replayed (republished; a new dead_lettered event makes it dead again), purged (kept as a tombstone so
-- a redelivered event cannot resurrect it; its history is dropped). history: JSON list, the cascade's
-- whole record of transitions, attempts, routes and costs. No foreign keys: message data outlives tenants.
CREATE TABLE dead_letters (
    message_id       TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    dead_lettered_at DOUBLE PRECISION NOT NULL,
    event_id         TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    replay_count     INTEGER NOT NULL,
    last_replayed_at DOUBLE PRECISION,
    history          TEXT NOT NULL
);

CREATE INDEX dead_letters_status ON dead_letters (status, message_id);

CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, status, message_id);

-- final_attempt: the attempt of the latest final event (delivered, failed, dead_lettered) that moved the
-- message, NULL before one; later events move the state only if they belong to a later attempt (a replay).
ALTER TABLE messages ADD COLUMN final_attempt INTEGER;

-- cost: what the event cost (the route price of a dispatched attempt), summed into messages.cost.
ALTER TABLE events ADD COLUMN cost DOUBLE PRECISION;
