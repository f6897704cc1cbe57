-- One engine for every flow (release 0.2): tenants and their flows, one outbox and one inbox
-- for every flow, flow leases for replicas. Everything release 0.1 stored is carried over:
-- each connection becomes a tenant and its order-delivery flow under the same id (so packet
-- ids, the `webhook-id`s receivers have seen, stay valid), packets keep their status, attempts
-- and schedule, and the cursor, sync log and breaker states move with them.

CREATE TABLE tenants (
    -- 16 lowercase hex characters.
    id                text        PRIMARY KEY,
    name              text        NOT NULL,
    odoo_url          text        NOT NULL,
    odoo_db           text        NOT NULL,
    odoo_username     text        NOT NULL,
    odoo_api_key      text        NOT NULL,
    transport         text        NOT NULL DEFAULT 'auto'
        CHECK (transport IN ('auto', 'jsonrpc', 'json2')),
    odoo_min_delay_ms bigint      NOT NULL DEFAULT 0 CHECK (odoo_min_delay_ms >= 0),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE flows (
    -- 16 lowercase hex characters; an order-delivery flow's id prefixes its packet ids.
    id               text        PRIMARY KEY,
    tenant_id        text        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- order_delivery | marketplace | enrichment (checked by the engine, so that a newer kind
    -- needs no migration)
    kind             text        NOT NULL,
    name             text        NOT NULL,
    is_active        boolean     NOT NULL DEFAULT true,
    interval_seconds bigint      NOT NULL DEFAULT 60 CHECK (interval_seconds >= 0),
    -- The kind's own settings, nothing secret.
    settings         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The flow's secrets by name (a JSON object as text).
    secrets          text        NOT NULL DEFAULT '{}',
    -- End of the last successful cycle.
    last_sync_at     timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT flows_kind_name UNIQUE (kind, name)
);

CREATE INDEX flows_tenant ON flows (tenant_id);

-- Where each change feed of a flow resumes: the whole second and the last id read in it
-- (i64::MAX as id means the whole second is done).
CREATE TABLE flow_cursors (
    flow_id       text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    feed          text        NOT NULL,
    cursor_second timestamptz NOT NULL,
    cursor_id     bigint      NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (flow_id, feed)
);

-- Every packet any flow sends, written before it is sent. `id` is the `webhook-id` of every
-- attempt, fixed at insertion.
CREATE TABLE packets (
    id              text        PRIMARY KEY,
    flow_id         text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    subject_model   text        NOT NULL,
    subject_id      bigint      NOT NULL,
    -- How people and receivers know the subject (odoo_lejuste_42).
    reference       text,
    -- The flow's name for where the packet goes; resolved when it is sent.
    target          text        NOT NULL,
    event           text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 0),
    -- The exact bytes sent (text, not jsonb, which would normalise them).
    payload         text        NOT NULL,
    payload_hash    text        NOT NULL,
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
    -- claims and the cascade from flows.
    CONSTRAINT packets_subject_version UNIQUE (flow_id, subject_model, subject_id, version)
);

INSERT INTO tenants (id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, transport,
    odoo_min_delay_ms, created_at, updated_at)
SELECT id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, 'auto', odoo_min_delay_ms,
    created_at, updated_at
FROM connections;

INSERT INTO flows (id, tenant_id, kind, name, is_active, interval_seconds, settings, secrets,
    last_sync_at, created_at, updated_at)
SELECT id, id, 'order_delivery', name, is_active, polling_interval_seconds,
    jsonb_build_object('webhook_url', webhook_url, 'store_id', store_id,
                       'client_id', client_id, 'events', events),
    jsonb_build_object('webhook_secret', webhook_secret)::text,
    last_sync_at, created_at, updated_at
FROM connections;

INSERT INTO flow_cursors (flow_id, feed, cursor_second, cursor_id, updated_at)
SELECT id, 'sale.order', cursor_second, cursor_id, updated_at
FROM connections
WHERE cursor_second IS NOT NULL;

INSERT INTO packets (id, flow_id, tenant_id, subject_model, subject_id, reference, target, event,
    version, payload, payload_hash, status, attempts, max_attempts, next_attempt_at, last_error,
    failure_class, lease_owner, lease_until, created_at, updated_at, delivered_at)
SELECT id, connection_id, connection_id, 'sale.order', odoo_order_id, external_id, 'webhook',
    event, version, body, content_hash, status, attempts, max_attempts, next_attempt_at,
    last_error, failure_class, lease_owner, lease_until, created_at, updated_at, delivered_at
FROM outbox;

-- Claims: only PENDING packets, in due order; per flow (each flow's task claims its own, and a
-- generic plan of one statement for both cases walked every pending packet).
CREATE INDEX packets_due ON packets (next_attempt_at, id) WHERE status = 'PENDING';
CREATE INDEX packets_due_by_flow ON packets (flow_id, next_attempt_at, id)
    WHERE status = 'PENDING';
-- Listings, newest first, all or per flow.
CREATE INDEX packets_created ON packets (created_at, id);
CREATE INDEX packets_flow_created ON packets (flow_id, created_at, id);
-- Statistics: packets delivered since a time.
CREATE INDEX packets_delivered ON packets (delivered_at) WHERE delivered_at IS NOT NULL;

-- Every attempt of every packet: when, how long, what the receiver answered.
CREATE TABLE packet_attempts (
    id            bigserial   PRIMARY KEY,
    packet_id     text        NOT NULL REFERENCES packets (id) ON DELETE CASCADE,
    worker        text        NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   bigint      NOT NULL DEFAULT 0,
    status_code   bigint,
    outcome       text        NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
    failure_class text,
    error         text
);

CREATE INDEX packet_attempts_packet ON packet_attempts (packet_id, id);

-- Every event any flow takes in, stored (and deduplicated by the sender's event id) before it
-- is answered.
CREATE TABLE inbox_events (
    id              bigserial   PRIMARY KEY,
    flow_id         text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    event_id        text        NOT NULL,
    kind            text        NOT NULL,
    -- Events of one subject are applied in arrival order.
    subject         text,
    source          text        NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'APPLIED', 'FAILED', 'DISCARDED')),
    attempts        bigint      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    bigint      NOT NULL CHECK (max_attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    failure_class   text,
    result          text,
    lease_owner     text,
    lease_until     timestamptz,
    received_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    applied_at      timestamptz,
    CONSTRAINT inbox_events_event UNIQUE (flow_id, event_id)
);

CREATE INDEX inbox_events_due ON inbox_events (flow_id, next_attempt_at, id)
    WHERE status = 'PENDING';
CREATE INDEX inbox_events_subject ON inbox_events (flow_id, subject, id)
    WHERE status = 'PENDING';
CREATE INDEX inbox_events_received ON inbox_events (received_at, id);

CREATE TABLE inbox_applications (
    id            bigserial   PRIMARY KEY,
    event         bigint      NOT NULL REFERENCES inbox_events (id) ON DELETE CASCADE,
    worker        text        NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   bigint      NOT NULL DEFAULT 0,
    outcome       text        NOT NULL CHECK (outcome IN ('applied', 'retry', 'failed')),
    failure_class text,
    detail        text
);

CREATE INDEX inbox_applications_event ON inbox_applications (event, id);

-- One row per cycle of one flow.
CREATE TABLE flow_cycles (
    id            bigserial   PRIMARY KEY,
    flow_id       text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    started_at    timestamptz NOT NULL,
    found         bigint      NOT NULL DEFAULT 0,
    sent          bigint      NOT NULL DEFAULT 0,
    failed        bigint      NOT NULL DEFAULT 0,
    held_back     bigint      NOT NULL DEFAULT 0,
    -- NULL when the cycle succeeded.
    error_message text,
    duration_ms   bigint      NOT NULL DEFAULT 0
);

INSERT INTO flow_cycles (id, flow_id, started_at, found, sent, failed, held_back,
    error_message, duration_ms)
SELECT id, connection_id, started_at, orders_found, orders_sent, orders_failed, 0,
    error_message, duration_ms
FROM sync_log;

-- The copied ids must not be handed out again.
SELECT setval(pg_get_serial_sequence('flow_cycles', 'id'),
              greatest((SELECT max(id) FROM flow_cycles), 1),
              (SELECT max(id) FROM flow_cycles) IS NOT NULL);

CREATE INDEX flow_cycles_flow ON flow_cycles (flow_id, id);
CREATE INDEX flow_cycles_started_at ON flow_cycles (started_at);

-- The breakers of each flow's targets, as the process running the flow last saw them.
CREATE TABLE flow_breakers (
    flow_id    text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    target     text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('closed', 'open', 'half-open')),
    open_until timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (flow_id, target)
);

INSERT INTO flow_breakers (flow_id, target, state, open_until, updated_at)
SELECT connection_id, 'webhook', state, open_until, updated_at
FROM breaker_states;

-- Which process runs which flow, until when: replicas sharing a store take and renew them.
CREATE TABLE flow_leases (
    flow_id     text        PRIMARY KEY REFERENCES flows (id) ON DELETE CASCADE,
    owner       text        NOT NULL,
    lease_until timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
);

CREATE INDEX flow_leases_owner ON flow_leases (owner);

-- Release 0.1's tables, now carried over.
DROP TABLE breaker_states;
DROP TABLE sync_log;
DROP TABLE outbox;
DROP TABLE connections;
