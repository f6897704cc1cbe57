-- A heartbeat per running delivery daemon (`odoo-bridge run`, or the TUI's own poller),
-- refreshed every few seconds, so that the TUI can tell that a poller already runs on this
-- store and does not start a second one. A crashed daemon's row goes stale.
CREATE TABLE IF NOT EXISTS daemon_heartbeats (
    worker_id  TEXT PRIMARY KEY NOT NULL,
    -- run | tui
    kind       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    beat_at    TEXT NOT NULL
);
