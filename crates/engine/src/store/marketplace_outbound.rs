//! What the Odoo → marketplace direction keeps per marketplace order, beside its import:
//! the terms the marketplace gave it (who delivers it, how it is paid), which decide what may
//! be pushed back, and the last status derived from Odoo (`odoo_status`).
//!
//! Kept apart from [`MarketplaceStore`](super::MarketplaceStore) (the import's claims) so
//! that each direction owns its writes: the import records the terms once it knows the
//! order; the outbound poll reads them with both sides' last statuses and records what it
//! derived.

use super::StoreError;
use jiff::Timestamp;
use std::collections::HashMap;
use std::future::Future;

/// An imported marketplace order as the outbound poll sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundOrder {
    pub hashed_id: String,
    pub odoo_order_id: i64,
    /// `delivered_by_supplier`, `delivered_by_cartona`, or `None` when not known yet.
    pub delivered_by: Option<String>,
    /// `installment`, `wallet_top_up`, `cartona_credit`, or `None` (cash, or not known).
    pub payment_method: Option<String>,
    /// The last status the marketplace gave the order.
    pub marketplace_status: Option<String>,
    /// The last status derived from Odoo (pushed, or decided not to push).
    pub odoo_status: Option<String>,
}

pub trait MarketplaceOutboundStore: Send + Sync {
    /// Records who delivers the order and how it is paid, when the order is known (claimed,
    /// imported or refused); a `None` keeps what is stored. `false` for an unknown order.
    fn record_order_terms(
        &self,
        flow_id: &str,
        hashed_id: &str,
        delivered_by: Option<&str>,
        payment_method: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The flow's imported orders among the Odoo orders `odoo_order_ids`, by Odoo id.
    fn outbound_orders(
        &self,
        flow_id: &str,
        odoo_order_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<OutboundOrder>, StoreError>> + Send;

    /// Records the status last derived from Odoo for an imported order; `false` for an
    /// unknown or not imported order.
    fn record_odoo_status(
        &self,
        flow_id: &str,
        hashed_id: &str,
        odoo_status: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The content hash last pushed for each of `product_ids` that has one (catalog push).
    fn catalog_hashes(
        &self,
        flow_id: &str,
        product_ids: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, String>, StoreError>> + Send;

    /// Records what was pushed (product id, content hash), in one transaction (upserts).
    fn record_catalog_pushed(
        &self,
        flow_id: &str,
        pushed: &[(i64, String)],
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
