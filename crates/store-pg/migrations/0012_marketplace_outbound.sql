-- Marketplace statuses pushed from Odoo (seed 001, Odoo → Cartona): what the import learns
-- about an order that decides what may be pushed back. `delivered_by`: orders delivered by
-- Cartona push only cancellations. `payment_method`: `delivered` on an installment or
-- wallet_top_up order carries the retailer's OTP. NULL for orders imported before this
-- migration until a re-pull fills them in (NULL delivered_by reads as the supplier's, as
-- Cartona's own module reads anything but `delivered_by_cartona`).
ALTER TABLE marketplace_orders ADD COLUMN delivered_by text;
ALTER TABLE marketplace_orders ADD COLUMN payment_method text;
