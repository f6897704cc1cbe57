-- Interrupted runs (issue 13). A run killed with kill -9 stayed `running` forever; the next run
-- now finds such runs and marks them `interrupted`, keeping their counters. It needs:
-- - the status `interrupted`, which 0001's CHECK refuses: SQLite cannot alter a CHECK, so the
--   table is rebuilt with every row and id kept;
-- - `heartbeat_at`, the run's last sign of life (NULL on rows written before this migration:
--   their start is used instead);
-- - `holds_lock`, whether the run held the run lock: such a run is provably gone when another
--   run holds the lock. Every run before this migration held it (SQLite runs always lock).
-- Timestamps as in 0001: RFC 3339 UTC text with six fractional digits and a `Z`.

CREATE TABLE odoo_sync_runs_0007 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    status       TEXT    NOT NULL
        CHECK (status IN ('running', 'success', 'partial', 'failed', 'interrupted')),
    error        TEXT,
    pages        INTEGER NOT NULL DEFAULT 0,
    fetched      INTEGER NOT NULL DEFAULT 0,
    inserted     INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    deleted      INTEGER NOT NULL DEFAULT 0,
    restored     INTEGER NOT NULL DEFAULT 0,
    heartbeat_at TEXT,
    holds_lock   INTEGER NOT NULL DEFAULT 1 CHECK (holds_lock IN (0, 1))
);

INSERT INTO odoo_sync_runs_0007
    (id, started_at, finished_at, status, error, pages, fetched, inserted, updated, unchanged,
     deleted, restored, heartbeat_at, holds_lock)
SELECT id, started_at, finished_at, status, error, pages, fetched, inserted, updated, unchanged,
       deleted, restored, NULL, 1
FROM odoo_sync_runs;

-- AUTOINCREMENT never reuses an id, even of a pruned run: the new table starts where the old
-- one was (sqlite_sequence has no key, hence the delete first).
DELETE FROM sqlite_sequence WHERE name = 'odoo_sync_runs_0007';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'odoo_sync_runs_0007', seq FROM sqlite_sequence WHERE name = 'odoo_sync_runs';

DROP TABLE odoo_sync_runs;
ALTER TABLE odoo_sync_runs_0007 RENAME TO odoo_sync_runs;

CREATE INDEX odoo_sync_runs_started_at ON odoo_sync_runs (started_at);
-- Each run looks for the runs still `running`: a few rows among months of runs.
CREATE INDEX odoo_sync_runs_running ON odoo_sync_runs (id) WHERE status = 'running';
