-- Enrichment jobs (seed 000): the emission guard. One row per (job, record, packet version),
-- written before the packet is sent and keeping the exact packet, so that a sender that died
-- after sending sends the same packet (same id) again. A sender claims the row first
-- (claim_owner, claim_until) with INSERT … ON CONFLICT … DO UPDATE … WHERE: two processes
-- never emit one record at once.
CREATE TABLE enrich_emissions (
    job            TEXT    NOT NULL,
    record_id      INTEGER NOT NULL,
    packet_version TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    packet_id      TEXT    NOT NULL UNIQUE,
    payload_hash   TEXT    NOT NULL,
    packet         TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'applied')),
    failure_class  TEXT,
    last_error     TEXT,
    failures       INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    claim_owner    TEXT,
    claim_until    TEXT,
    emitted_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    applied_at     TEXT,
    replays        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, record_id, packet_version)
);

-- Every forced replay, with the packet it replaced: drift is a changed payload hash.
CREATE TABLE enrich_replays (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    job                TEXT    NOT NULL,
    record_id          INTEGER NOT NULL,
    packet_version     TEXT    NOT NULL,
    previous_packet_id TEXT    NOT NULL,
    previous_hash      TEXT    NOT NULL,
    packet_id          TEXT    NOT NULL,
    payload_hash       TEXT    NOT NULL,
    drift              INTEGER NOT NULL CHECK (drift IN (0, 1)),
    replayed_at        TEXT    NOT NULL
);

CREATE INDEX enrich_replays_record ON enrich_replays (job, record_id, id);

-- The one environment (prod, staging, …) whose packets this store keeps: bound by the first
-- job run, so that a configuration of another environment is refused.
CREATE TABLE enrich_environment (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    environment TEXT    NOT NULL,
    bound_at    TEXT    NOT NULL
);
