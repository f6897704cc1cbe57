-- Marketplace flows (seed 001): the sync log (one row per event, either direction) and the
-- conflicts that wait for a person (or were resolved by a rule).

-- One row per event. `event_key` names the event (an import of an order, an inbound event,
-- an outbound packet): a retried event updates its row, so a crash and a retry never log it
-- twice. No foreign key to marketplace_orders: an event about an unknown order is logged too.
CREATE TABLE marketplace_log (
    id                  bigserial   PRIMARY KEY,
    flow_id             text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    event_key           text        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    hashed_id           text        NOT NULL,
    odoo_order_id       bigint,
    action              text        NOT NULL,
    outcome             text        NOT NULL
                        CHECK (outcome IN ('success', 'failed', 'conflict', 'retrying')),
    marketplace_status  text,
    odoo_order_state    text,
    odoo_delivery_state text,
    response_time_ms    bigint      CHECK (response_time_ms >= 0),
    retries             bigint      NOT NULL DEFAULT 0 CHECK (retries >= 0),
    error_code          text,
    error_text          text,
    at                  timestamptz NOT NULL,
    UNIQUE (flow_id, event_key)
);

CREATE INDEX marketplace_log_order ON marketplace_log (flow_id, hashed_id, at);
CREATE INDEX marketplace_log_at ON marketplace_log (at);

-- A conflict: both sides' states, its type, severity, the recommended action, whether a rule
-- may resolve it, and its resolution. At most one OPEN conflict of a type per order (seen
-- again, it is updated); a conflict a rule resolved at once is kept once per event.
CREATE TABLE marketplace_conflicts (
    id                  bigserial   PRIMARY KEY,
    flow_id             text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    hashed_id           text        NOT NULL,
    event_key           text        NOT NULL,
    odoo_order_id       bigint,
    kind                text        NOT NULL,
    severity            text        NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    marketplace_status  text,
    odoo_status         text,
    odoo_order_state    text,
    odoo_delivery_state text,
    recommended_action  text        NOT NULL,
    auto_resolvable     boolean     NOT NULL,
    detail              text        NOT NULL,
    state               text        NOT NULL CHECK (state IN ('open', 'resolved')),
    resolution          text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    resolved_at         timestamptz,
    UNIQUE (flow_id, event_key),
    CHECK (state = 'open' OR (resolution IS NOT NULL AND resolved_at IS NOT NULL))
);

CREATE UNIQUE INDEX marketplace_conflicts_open
    ON marketplace_conflicts (flow_id, hashed_id, kind) WHERE state = 'open';
CREATE INDEX marketplace_conflicts_state ON marketplace_conflicts (state, flow_id);
