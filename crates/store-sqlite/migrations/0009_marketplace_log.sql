-- Marketplace flows (seed 001): the sync log (one row per event, either direction) and the
-- conflicts that wait for a person (or were resolved by a rule).

-- One row per event. `event_key` names the event (an import of an order, an inbound event,
-- an outbound packet): a retried event updates its row, so a crash and a retry never log it
-- twice. No foreign key to marketplace_orders: an event about an unknown order is logged too.
CREATE TABLE marketplace_log (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id             TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    event_key           TEXT    NOT NULL,
    direction           TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    hashed_id           TEXT    NOT NULL,
    odoo_order_id       INTEGER,
    action              TEXT    NOT NULL,
    outcome             TEXT    NOT NULL
                        CHECK (outcome IN ('success', 'failed', 'conflict', 'retrying')),
    marketplace_status  TEXT,
    odoo_order_state    TEXT,
    odoo_delivery_state TEXT,
    response_time_ms    INTEGER CHECK (response_time_ms >= 0),
    retries             INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0),
    error_code          TEXT,
    error_text          TEXT,
    at                  TEXT    NOT NULL,
    UNIQUE (flow_id, event_key)
);

CREATE INDEX marketplace_log_order ON marketplace_log (flow_id, hashed_id, at);
CREATE INDEX marketplace_log_at ON marketplace_log (at);

-- A conflict: both sides' states, its type, severity, the recommended action, whether a rule
-- may resolve it, and its resolution. At most one OPEN conflict of a type per order (seen
-- again, it is updated); a conflict a rule resolved at once is kept once per event.
CREATE TABLE marketplace_conflicts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id             TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    hashed_id           TEXT    NOT NULL,
    event_key           TEXT    NOT NULL,
    odoo_order_id       INTEGER,
    kind                TEXT    NOT NULL,
    severity            TEXT    NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    marketplace_status  TEXT,
    odoo_status         TEXT,
    odoo_order_state    TEXT,
    odoo_delivery_state TEXT,
    recommended_action  TEXT    NOT NULL,
    auto_resolvable     INTEGER NOT NULL CHECK (auto_resolvable IN (0, 1)),
    detail              TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    resolution          TEXT,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    resolved_at         TEXT,
    UNIQUE (flow_id, event_key),
    CHECK (state = 'open' OR (resolution IS NOT NULL AND resolved_at IS NOT NULL))
);

CREATE UNIQUE INDEX marketplace_conflicts_open
    ON marketplace_conflicts (flow_id, hashed_id, kind) WHERE state = 'open';
CREATE INDEX marketplace_conflicts_state ON marketplace_conflicts (state, flow_id);
