-- Enrichment jobs (seed 000): the emission guard. One row per (job, record, packet version),
-- written before the packet is sent and keeping the exact packet, so that a sender that died
-- after sending sends the same packet (same id) again. A sender claims the row first
-- (claim_owner, claim_until) with INSERT … ON CONFLICT … DO UPDATE … WHERE: two processes
-- never emit one record at once.
CREATE TABLE enrich_emissions (
    job            text    NOT NULL,
    record_id      bigint  NOT NULL,
    packet_version text    NOT NULL,
    model          text    NOT NULL,
    environment    text    NOT NULL,
    packet_id      text    NOT NULL UNIQUE,
    payload_hash   text    NOT NULL,
    packet         text    NOT NULL,
    state          text    NOT NULL CHECK (state IN ('pending', 'applied')),
    failure_class  text,
    last_error     text,
    failures       bigint  NOT NULL DEFAULT 0 CHECK (failures >= 0),
    disabled       boolean NOT NULL DEFAULT false,
    claim_owner    text,
    claim_until    timestamptz,
    emitted_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    applied_at     timestamptz,
    replays        bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (job, record_id, packet_version)
);

-- Every forced replay, with the packet it replaced: drift is a changed payload hash.
CREATE TABLE enrich_replays (
    id                 bigserial PRIMARY KEY,
    job                text    NOT NULL,
    record_id          bigint  NOT NULL,
    packet_version     text    NOT NULL,
    previous_packet_id text    NOT NULL,
    previous_hash      text    NOT NULL,
    packet_id          text    NOT NULL,
    payload_hash       text    NOT NULL,
    drift              boolean NOT NULL,
    replayed_at        timestamptz NOT NULL
);

CREATE INDEX enrich_replays_record ON enrich_replays (job, record_id, id);

-- The one environment (prod, staging, …) whose packets this store keeps: bound by the first
-- job run, so that a configuration of another environment is refused.
CREATE TABLE enrich_environment (
    id          integer PRIMARY KEY CHECK (id = 1),
    environment text    NOT NULL,
    bound_at    timestamptz NOT NULL
);
