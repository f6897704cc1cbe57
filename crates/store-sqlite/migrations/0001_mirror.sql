-- The mirror's three tables (seed 003), in SQLite.
-- Timestamps are RFC 3339 UTC text with six fractional digits and a `Z`, so that comparing the
-- text compares the times (prune_runs, ordering) without parsing.

CREATE TABLE odoo_raw_records (
    model        TEXT    NOT NULL,
    odoo_id      INTEGER NOT NULL,
    -- The record as `search_read` returned it, as JSON text.
    payload      TEXT    NOT NULL CHECK (json_valid(payload)),
    write_date   TEXT,
    synced_at    TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    -- Set when deletion reconciliation no longer finds the record in Odoo; rows are never deleted.
    deleted_at   TEXT,
    PRIMARY KEY (model, odoo_id)
);

-- Counting and restoring stamped rows should not scan a model's live rows.
CREATE INDEX odoo_raw_records_deleted ON odoo_raw_records (model, odoo_id)
    WHERE deleted_at IS NOT NULL;

CREATE TABLE odoo_sync_state (
    model             TEXT    PRIMARY KEY NOT NULL,
    -- The checkpoint's whole second.
    last_cursor_value TEXT    NOT NULL,
    -- The checkpoint's last id; i64::MAX means the whole second is done.
    last_cursor_id    INTEGER NOT NULL,
    updated_at        TEXT    NOT NULL
);

CREATE TABLE odoo_sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('running', 'success', 'partial', 'failed')),
    error       TEXT,
    pages       INTEGER NOT NULL DEFAULT 0,
    fetched     INTEGER NOT NULL DEFAULT 0,
    inserted    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    restored    INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX odoo_sync_runs_started_at ON odoo_sync_runs (started_at);
