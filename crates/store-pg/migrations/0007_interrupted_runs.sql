-- Interrupted runs (issue 13). A run killed with kill -9 stayed `running` forever; the next run
-- now finds such runs and marks them `interrupted`, keeping their counters. It needs:
-- - `heartbeat_at`, the run's last sign of life (NULL on rows written before this migration:
--   their start is used instead);
-- - `holds_lock`, whether the run held the advisory lock: such a run is provably gone when
--   another run holds the lock (PostgreSQL releases a session's lock when its connection
--   dies). Runs before this migration are taken to have held it (the default strategy);
-- - the statuses checked, as SQLite's table does, now that there is a fifth.

ALTER TABLE odoo_sync_runs
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN holds_lock   boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT odoo_sync_runs_status
        CHECK (status IN ('running', 'success', 'partial', 'failed', 'interrupted'));

-- Each run looks for the runs still `running`: a few rows among months of runs.
CREATE INDEX odoo_sync_runs_running ON odoo_sync_runs (id) WHERE status = 'running';
