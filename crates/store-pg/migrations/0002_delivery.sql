-- Order delivery (seed 002): connections (one per Odoo tenant), the outbox of webhook packets
-- (which is also the retry queue) and the sync log. Timestamps keep microseconds
-- (timestamptz); counters that hold a u32 are bigint so that every u32 fits.

CREATE TABLE connections (
    -- 16 lowercase hex characters, chosen by the caller (the seed's lower(hex(randomblob(8)))).
    id                       text        PRIMARY KEY,
    name                     text        NOT NULL CONSTRAINT connections_name_key UNIQUE,
    odoo_url                 text        NOT NULL,
    odoo_db                  text        NOT NULL,
    odoo_username            text        NOT NULL,
    -- Secrets are stored as given: who may read this table is the operator's decision.
    odoo_api_key             text        NOT NULL,
    webhook_url              text        NOT NULL,
    webhook_secret           text        NOT NULL,
    store_id                 text        NOT NULL,
    client_id                text        NOT NULL,
    polling_interval_seconds bigint      NOT NULL DEFAULT 60 CHECK (polling_interval_seconds >= 0),
    odoo_min_delay_ms        bigint      NOT NULL DEFAULT 0 CHECK (odoo_min_delay_ms >= 0),
    is_active                boolean     NOT NULL DEFAULT true,
    -- Comma-separated event names: order.confirmed,order.updated,order.cancelled
    events                   text        NOT NULL,
    -- End of the last successful cycle.
    last_sync_at             timestamptz,
    -- Where the order feed resumes: the whole second and the last id read in it (both or
    -- neither; i64::MAX as id means the whole second is done).
    cursor_second            timestamptz,
    cursor_id                bigint,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    CHECK ((cursor_second IS NULL) = (cursor_id IS NULL))
);

-- One row per webhook packet, written before it is sent. `id` is the `webhook-id` header
-- ({connection_id}_{order_id}_v{version}), fixed at insertion.
CREATE TABLE outbox (
    id              text        PRIMARY KEY,
    connection_id   text        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    odoo_order_id   bigint      NOT NULL,
    external_id     text        NOT NULL,
    event           text        NOT NULL
        CHECK (event IN ('order.confirmed', 'order.updated', 'order.cancelled')),
    version         bigint      NOT NULL CHECK (version >= 0),
    -- The payload's canonical JSON: the exact bytes sent (text, not jsonb, which would
    -- normalise them).
    body            text        NOT NULL,
    content_hash    text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED', 'DISCARDED')),
    attempts        bigint      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    bigint      NOT NULL CHECK (max_attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    failure_class   text,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    -- Idempotency; its index also serves latest_packets, the "older pending version" test of
    -- claims and the cascade from connections.
    CONSTRAINT outbox_order_version_key UNIQUE (connection_id, odoo_order_id, version)
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
    id            bigserial   PRIMARY KEY,
    connection_id text        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    started_at    timestamptz NOT NULL,
    orders_found  bigint      NOT NULL DEFAULT 0,
    orders_sent   bigint      NOT NULL DEFAULT 0,
    orders_failed bigint      NOT NULL DEFAULT 0,
    -- NULL when the cycle succeeded.
    error_message text,
    duration_ms   bigint      NOT NULL DEFAULT 0
);

CREATE INDEX sync_log_connection ON sync_log (connection_id, id);
-- Retention (prune_cycles).
CREATE INDEX sync_log_started_at ON sync_log (started_at);
