-- Marketplace flows (seed 001): one row per marketplace order of a flow. The primary key is
-- what makes an import exactly once: an importer claims (flow, hashed id) with
-- INSERT … ON CONFLICT … DO UPDATE … WHERE before it may create the Odoo order.
CREATE TABLE marketplace_orders (
    flow_id            text        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    -- The marketplace's id of the order (Cartona's hashed_id).
    hashed_id          text        NOT NULL,
    state              text        NOT NULL CHECK (state IN ('claimed', 'imported', 'refused')),
    odoo_order_id      bigint,
    claim_owner        text,
    claim_until        timestamptz,
    issue_code         text,
    issue_detail       text,
    -- The last status seen from each side.
    marketplace_status text,
    odoo_status        text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    imported_at        timestamptz,
    PRIMARY KEY (flow_id, hashed_id),
    CHECK (state <> 'imported' OR odoo_order_id IS NOT NULL)
);

CREATE INDEX marketplace_orders_odoo ON marketplace_orders (flow_id, odoo_order_id);
