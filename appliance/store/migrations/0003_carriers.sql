-- 0003: the SMS routing registry written by admin and cached by the router and smpp daemons: carriers
-- (their SMPP binds and the networks they own), their rates, and the local MNP table.
--
-- Same portable subset as 0001 (see its header). "window" is a reserved word in PostgreSQL, so that
-- column is always written quoted.
--
-- carriers.password is the credential Hermes presents when it binds to the carrier, so it must be usable
-- as given and is stored as given (not hashed, unlike the tenants' SMPP passwords in 0001). What protects
-- it is access to the database: the SQLite file and its directory are readable by the hermes user only
-- (0600/0700), and the PostgreSQL role is Hermes' own. The store never logs it, and `Carrier`'s repr
-- hides it. kind: direct | aggregator | retail. bind_type: transceiver | transmitter | receiver.
-- tps 0: no limit of our own. use_sar, enabled: 0/1. mccmnc_list: the networks the carrier owns
-- ("238-01,238-10"), i.e. the destinations for which it is the home network; "" for none.
CREATE TABLE carriers (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    system_id   TEXT NOT NULL,
    password    TEXT NOT NULL,
    bind_type   TEXT NOT NULL,
    connections INTEGER NOT NULL,
    "window"    INTEGER NOT NULL,
    tps         INTEGER NOT NULL,
    system_type TEXT NOT NULL,
    source_ton  INTEGER NOT NULL,
    source_npi  INTEGER NOT NULL,
    dest_ton    INTEGER NOT NULL,
    dest_npi    INTEGER NOT NULL,
    use_sar     INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    mccmnc_list TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);

-- prefix: E.164 digits without "+", "" for every number. mccmnc: "238-01", or "" for any network (a
-- primary key column cannot be NULL in PostgreSQL; the store hands "" out as None). price: per message
-- part in currency, DOUBLE PRECISION like the money of 0002. valid_from: epoch seconds.
CREATE TABLE rates (
    carrier    TEXT NOT NULL REFERENCES carriers (name) ON DELETE CASCADE,
    prefix     TEXT NOT NULL,
    mccmnc     TEXT NOT NULL,
    price      DOUBLE PRECISION NOT NULL,
    currency   TEXT NOT NULL,
    valid_from DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (carrier, prefix, mccmnc)
);

-- number_or_prefix: E.164 digits without "+": a whole (ported) number or a range. The longest one a number
-- starts with wins; the primary key index serves that lookup (one IN list of the number's prefixes).
CREATE TABLE mnp (
    number_or_prefix TEXT PRIMARY KEY,
    mccmnc           TEXT NOT NULL,
    carrier_name     TEXT,
    updated_at       DOUBLE PRECISION NOT NULL
);
