-- Order delivery (seed 002): connections (one per Odoo tenant), the outbox of webhook packets
-- (which is also the retry queue) and the sync log, in SQLite.
-- Timestamps as in 0001: RFC 3339 UTC text with six fractional digits and a `Z`, so comparing
-- the text compares the times. Booleans are 0 / 1.

CREATE TABLE connections (
    -- 16 lowercase hex characters, chosen by the caller (the seed's lower(hex(randomblob(8)))).
    id                       TEXT    PRIMARY KEY NOT NULL,
    name                     TEXT    NOT NULL UNIQUE,
    odoo_url                 TEXT    NOT NULL,
    odoo_db                  TEXT    NOT NULL,
    odoo_username            TEXT    NOT NULL,
    -- Secrets are stored as given: the file is created 0600.
    odoo_api_key             TEXT    NOT NULL,
    webhook_url              TEXT    NOT NULL,
    webhook_secret           TEXT    NOT NULL,
    store_id                 TEXT    NOT NULL,
    client_id                TEXT    NOT NULL,
    polling_interval_seconds INTEGER NOT NULL DEFAULT 60 CHECK (polling_interval_seconds >= 0),
    odoo_min_delay_ms        INTEGER NOT NULL DEFAULT 0 CHECK (odoo_min_delay_ms >= 0),
    is_active                INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    -- Comma-separated event names: order.confirmed,order.updated,order.cancelled
    events                   TEXT    NOT NULL,
    -- End of the last successful cycle.
    last_sync_at             TEXT,
    -- Where the order feed resumes: the whole second and the last id read in it (both or
    -- neither; i64::MAX as id means the whole second is done).
    cursor_second            TEXT,
    cursor_id                INTEGER,
    created_at               TEXT    NOT NULL,
    updated_at               TEXT    NOT NULL,
    CHECK ((cursor_second IS NULL) = (cursor_id IS NULL))
);

-- One row per webhook packet, written before it is sent. `id` is the `webhook-id` header
-- ({connection_id}_{order_id}_v{version}), fixed at insertion.
CREATE TABLE outbox (
    id              TEXT    PRIMARY KEY NOT NULL,
    connection_id   TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    odoo_order_id   INTEGER NOT NULL,
    external_id     TEXT    NOT NULL,
    event           TEXT    NOT NULL
        CHECK (event IN ('order.confirmed', 'order.updated', 'order.cancelled')),
    version         INTEGER NOT NULL CHECK (version >= 0),
    -- The payload's canonical JSON: the exact bytes sent.
    body            TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED', 'DISCARDED')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 0),
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    failure_class   TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    delivered_at    TEXT,
    -- Idempotency; its index also serves latest_packets and the "older pending version" test
    -- of claims.
    UNIQUE (connection_id, odoo_order_id, version)
);

-- Claims: only PENDING packets, in due order. Delivered packets pile up; they stay out of it.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'PENDING';
-- Listings (`retries list`), newest first, all or per connection.
CREATE INDEX outbox_created ON outbox (created_at, id);
CREATE INDEX outbox_connection_created ON outbox (connection_id, created_at, id);
-- Statistics: packets delivered since a time.
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- One row per polling cycle of one connection.
CREATE TABLE sync_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    started_at    TEXT    NOT NULL,
    orders_found  INTEGER NOT NULL DEFAULT 0,
    orders_sent   INTEGER NOT NULL DEFAULT 0,
    orders_failed INTEGER NOT NULL DEFAULT 0,
    -- NULL when the cycle succeeded.
    error_message TEXT,
    duration_ms   INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX sync_log_connection ON sync_log (connection_id, id);
-- Retention (prune_cycles).
CREATE INDEX sync_log_started_at ON sync_log (started_at);
