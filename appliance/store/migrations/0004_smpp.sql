-- 0004: what the smpp daemon submitted to carriers, so a delivery receipt that arrives hours later, or
-- after a restart, still finds its message. Written by the smpp daemon only (one row per submitted part,
-- once its submit_sm_resp is in), read by it when a receipt comes, purged by age.
--
-- carrier_message_id: the id from submit_sm_resp as the carrier wrote it; (carrier, carrier_message_id)
-- is the key because carriers number independently. id_key: its canonical spelling (domain.dlr.id_key:
-- lower case, no leading zeros), indexed, because the receipt may spell the same id in another base or
-- case; the smpp daemon looks it up by every key the receipt's id may stand for.
-- (message_id, attempt) is the cascade's try: a redelivered dispatch finds its parts here and is not
-- submitted again. dlr_*: NULL until a receipt comes; dlr_outcome is delivered | failed | pending, and
-- the first final one (delivered or failed) wins. No foreign keys: these rows are message data and
-- outlive carriers and tenants until purged.
CREATE TABLE smpp_submissions (
    carrier            TEXT NOT NULL,
    carrier_message_id TEXT NOT NULL,
    id_key             TEXT NOT NULL,
    message_id         TEXT NOT NULL,
    tenant_id          TEXT NOT NULL,
    attempt            INTEGER NOT NULL,
    part               INTEGER NOT NULL,
    parts              INTEGER NOT NULL,
    submitted_at       DOUBLE PRECISION NOT NULL,
    dlr_state          TEXT,
    dlr_outcome        TEXT,
    dlr_err            TEXT,
    dlr_at             DOUBLE PRECISION,
    PRIMARY KEY (carrier, carrier_message_id)
);

CREATE INDEX smpp_submissions_key ON smpp_submissions (carrier, id_key);

CREATE INDEX smpp_submissions_attempt ON smpp_submissions (message_id, attempt);

CREATE INDEX smpp_submissions_age ON smpp_submissions (submitted_at);
