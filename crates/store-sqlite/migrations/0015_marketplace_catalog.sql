-- The catalog push (Odoo → Cartona price and free quantity, `supplier-product/bulk-update`):
-- what was last pushed per product, as a hash, so that a pass sends only what changed.
-- (Its own migration: 0012 shipped in a release without it, and a shipped migration never
-- changes, or the stores it was applied to would refuse to open.)
CREATE TABLE marketplace_catalog (
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    product_id   INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    pushed_at    TEXT    NOT NULL,
    PRIMARY KEY (flow_id, product_id)
);
