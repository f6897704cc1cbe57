-- The circuit breaker of each connection's webhook target, as the daemon last saw it, so
-- that `connections show/list` and the TUI can show it (the breaker itself lives in the
-- daemon's memory). A connection without a row has a closed breaker.
CREATE TABLE breaker_states (
    connection_id text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    state         text NOT NULL CHECK (state IN ('closed', 'open', 'half-open')),
    -- When an open breaker lets the next probe through.
    open_until    timestamptz,
    updated_at    timestamptz NOT NULL
);
