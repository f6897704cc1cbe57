//! What a marketplace flow keeps per marketplace order: whether it became an Odoo order (and
//! which), was refused (and why), or is being imported right now (and by whom), with the last
//! status seen from each side.
//!
//! Exactly one Odoo order per marketplace order rests on this table: Odoo has no unique
//! constraint to lean on, so an importer first **claims** (flow, hashed id) here — one row per
//! pair, taken with `INSERT … ON CONFLICT … DO UPDATE … WHERE` so that two importers racing
//! for it cannot both win — and only the claim's holder may create the order. A claim lasts
//! until `claim_until`; a holder that dies leaves it to run out, and whoever claims next
//! searches Odoo by the reference field before creating (the create may have happened).

use super::StoreError;
use jiff::Timestamp;
use std::fmt;
use std::future::Future;

/// Where a marketplace order stands in its import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportState {
    /// An importer holds it (or held it and died): not imported yet.
    Claimed,
    /// It is an Odoo order (`odoo_order_id`).
    Imported,
    /// Refused whole (`issue_code`); a later pull tries it again.
    Refused,
}

impl ImportState {
    pub const ALL: [ImportState; 3] = [
        ImportState::Claimed,
        ImportState::Imported,
        ImportState::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Claimed => "claimed",
            ImportState::Imported => "imported",
            ImportState::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<ImportState> {
        ImportState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for ImportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One marketplace order of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceOrder {
    pub flow_id: String,
    /// The marketplace's id of the order (Cartona's `hashed_id`).
    pub hashed_id: String,
    pub state: ImportState,
    pub odoo_order_id: Option<i64>,
    pub claim_owner: Option<String>,
    pub claim_until: Option<Timestamp>,
    /// Why it was refused (`variant_not_found`, …) and the details, for people.
    pub issue_code: Option<String>,
    pub issue_detail: Option<String>,
    /// The last status the marketplace gave the order.
    pub marketplace_status: Option<String>,
    /// The last status we derived from Odoo (and pushed, or applied) for it.
    pub odoo_status: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub imported_at: Option<Timestamp>,
}

/// What [`MarketplaceStore::claim_import`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportClaim {
    /// The caller holds the order until `claim_until`: it may create it in Odoo.
    Granted(MarketplaceOrder),
    /// Already an Odoo order: nothing to create.
    Imported(MarketplaceOrder),
    /// Another importer holds a live claim: leave it.
    HeldElsewhere(MarketplaceOrder),
}

/// The marketplace orders of every marketplace flow. Every write is an upsert or guarded by
/// the (flow, hashed id) key.
pub trait MarketplaceStore: Send + Sync {
    /// Claims (flow, `hashed_id`) for `owner` until `until`, unless it is imported or another
    /// owner's claim is still live at `now` (a claim `owner` already holds is renewed). A
    /// missing flow is [`StoreError::NotFound`].
    fn claim_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<ImportClaim, StoreError>> + Send;

    /// Records that the order is Odoo's `odoo_order_id`, releasing the claim, unless it is
    /// recorded already (the first record stands: a second importer that found the same Odoo
    /// order by its reference changes nothing). Returns the order as it then stands; `None`
    /// when it was never claimed.
    fn record_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        odoo_order_id: i64,
        marketplace_status: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<MarketplaceOrder>, StoreError>> + Send;

    /// Records that the order was refused whole, releasing any claim; an imported order is
    /// left as it is. A missing flow is [`StoreError::NotFound`].
    fn record_refusal(
        &self,
        flow_id: &str,
        hashed_id: &str,
        issue_code: &str,
        issue_detail: &str,
        marketplace_status: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives back a claim `owner` holds on an order not imported (its import failed before
    /// Odoo could have created anything), so the next pull takes it at once; `false` when
    /// `owner` did not hold it.
    fn release_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn marketplace_order(
        &self,
        flow_id: &str,
        hashed_id: &str,
    ) -> impl Future<Output = Result<Option<MarketplaceOrder>, StoreError>> + Send;

    /// A flow's orders, by hashed id.
    fn marketplace_orders(
        &self,
        flow_id: &str,
    ) -> impl Future<Output = Result<Vec<MarketplaceOrder>, StoreError>> + Send;
}
