-- The mirror's three tables (seed 003): one row per Odoo record, one cursor per model, one row
-- per run.

CREATE TABLE odoo_raw_records (
    model        text        NOT NULL,
    odoo_id      bigint      NOT NULL,
    payload      jsonb       NOT NULL,
    write_date   timestamptz NULL,
    synced_at    timestamptz NOT NULL,
    content_hash text        NOT NULL,
    -- Stamped by deletion reconciliation; rows are never deleted.
    deleted_at   timestamptz NULL,
    PRIMARY KEY (model, odoo_id)
);

CREATE TABLE odoo_sync_state (
    model             text PRIMARY KEY,
    last_cursor_value timestamptz,
    last_cursor_id    bigint,
    updated_at        timestamptz
);

CREATE TABLE odoo_sync_runs (
    id          bigserial PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text        NOT NULL,
    error       text,
    -- NOT NULL so the counters always add up (NULL + 1 would stay NULL).
    pages       bigint NOT NULL DEFAULT 0,
    fetched     bigint NOT NULL DEFAULT 0,
    inserted    bigint NOT NULL DEFAULT 0,
    updated     bigint NOT NULL DEFAULT 0,
    unchanged   bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    restored    bigint NOT NULL DEFAULT 0
);

-- Retention (`prune_runs`) and the newest-first listing both go by start time.
CREATE INDEX odoo_sync_runs_started_at ON odoo_sync_runs (started_at);
