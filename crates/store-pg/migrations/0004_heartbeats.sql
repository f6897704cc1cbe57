-- A heartbeat per running delivery daemon (`odoo-bridge run`, or the TUI's own poller),
-- refreshed every few seconds, so that the TUI can tell that a poller already runs on this
-- store and does not start a second one. A crashed daemon's row goes stale.
CREATE TABLE IF NOT EXISTS daemon_heartbeats (
    worker_id  text PRIMARY KEY,
    -- run | tui
    kind       text NOT NULL,
    started_at timestamptz NOT NULL,
    beat_at    timestamptz NOT NULL
);
