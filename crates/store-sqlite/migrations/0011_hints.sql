-- Odoo push hints each flow took in (issue 14), for `connections show` and the TUI: how many,
-- and when the last arrived. Written by the process running the flow, at most every few
-- seconds per flow.
CREATE TABLE flow_hints (
    flow_id          TEXT    PRIMARY KEY REFERENCES flows (id) ON DELETE CASCADE,
    received         INTEGER NOT NULL CHECK (received >= 0),
    last_received_at TEXT    NOT NULL
);
