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
//!
//! Beside the orders: the **sync log** (one row per event, either direction, keyed by the
//! event so a retry updates its row instead of adding one) and the **conflicts** (seed 001's
//! both sides' states, type, severity, recommended action, auto-resolvable flag; at most one
//! open conflict of a type per order).

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

    /// Sets the last status seen from the marketplace to `to` if it is still `from` (`None`:
    /// none yet) and the order is imported: a compare-and-set, so two appliers of one order
    /// cannot overwrite each other's status. `false` when the order is not imported or its
    /// status moved meanwhile.
    fn set_marketplace_status(
        &self,
        flow_id: &str,
        hashed_id: &str,
        from: Option<&str>,
        to: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes the log row of `entry.event_key`: inserted the first time, replaced by a later
    /// try of the same event (an earlier `at` than the stored one changes nothing). A missing
    /// flow is [`StoreError::NotFound`].
    fn record_log(&self, entry: &LogEntry) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Newest first (by `at`, then id), filtered; at most `filter.limit` rows (0: no limit).
    fn marketplace_log(
        &self,
        filter: &LogFilter,
    ) -> impl Future<Output = Result<Vec<StoredLogEntry>, StoreError>> + Send;

    /// Deletes the log rows of every flow written before `before`; returns how many. (A
    /// retry of an event that old cannot come, so its row's uniqueness is no longer needed.)
    fn prune_log(&self, before: Timestamp) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Totals of the log rows at or after `since`, and how many imported orders are in sync
    /// now (no open conflict, and their newest log row other than a conflict's — a stale
    /// status settled by itself leaves an order in sync — a success), of one flow or all.
    fn log_stats(
        &self,
        flow_id: Option<&str>,
        since: Timestamp,
    ) -> impl Future<Output = Result<LogStats, StoreError>> + Send;

    /// Records a conflict. Unresolved (`resolution` `None`), it opens the order's conflict of
    /// that kind, or updates the open one with these states (the first event's key stays);
    /// resolved at once by a rule, it is kept once per `event_key`. Returns the stored
    /// conflict. A missing flow is [`StoreError::NotFound`].
    fn record_conflict(
        &self,
        conflict: &NewConflict,
    ) -> impl Future<Output = Result<Conflict, StoreError>> + Send;

    /// Conflicts newest first, of one flow or all, open ones only or all.
    fn conflicts(
        &self,
        flow_id: Option<&str>,
        open_only: bool,
    ) -> impl Future<Output = Result<Vec<Conflict>, StoreError>> + Send;

    fn conflict(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Conflict>, StoreError>> + Send;

    /// Resolves an open conflict with `resolution`; a conflict already resolved keeps its
    /// resolution (two people resolving at once: the first stands).
    fn resolve_conflict(
        &self,
        id: i64,
        resolution: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Resolve, StoreError>> + Send;
}

/// Which way a logged event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogDirection {
    /// Marketplace → Odoo: imports and inbound statuses.
    Inbound,
    /// Odoo → marketplace: acknowledgements and pushed statuses.
    Outbound,
}

impl LogDirection {
    pub const ALL: [LogDirection; 2] = [LogDirection::Inbound, LogDirection::Outbound];

    pub fn as_str(self) -> &'static str {
        match self {
            LogDirection::Inbound => "inbound",
            LogDirection::Outbound => "outbound",
        }
    }

    pub fn parse(text: &str) -> Option<LogDirection> {
        LogDirection::ALL.into_iter().find(|it| it.as_str() == text)
    }
}

/// How a logged event ended (seed 001's sync log statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogOutcome {
    Success,
    Failed,
    /// Not applied: a conflict was recorded instead.
    Conflict,
    /// Failed this time; it will be tried again.
    Retrying,
}

impl LogOutcome {
    pub const ALL: [LogOutcome; 4] = [
        LogOutcome::Success,
        LogOutcome::Failed,
        LogOutcome::Conflict,
        LogOutcome::Retrying,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogOutcome::Success => "success",
            LogOutcome::Failed => "failed",
            LogOutcome::Conflict => "conflict",
            LogOutcome::Retrying => "retrying",
        }
    }

    pub fn parse(text: &str) -> Option<LogOutcome> {
        LogOutcome::ALL.into_iter().find(|it| it.as_str() == text)
    }
}

impl fmt::Display for LogOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of a marketplace flow, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub flow_id: String,
    /// Names the event, unique per flow: `import:{hashed_id}`, `inbox:{event id}`,
    /// `packet:{packet id}`. A retry of the event writes the same key.
    pub event_key: String,
    pub direction: LogDirection,
    pub hashed_id: String,
    pub odoo_order_id: Option<i64>,
    /// What the event was: `import`, `status`, `ack`, …
    pub action: String,
    pub outcome: LogOutcome,
    /// The marketplace status the event carried (or pushed).
    pub marketplace_status: Option<String>,
    /// The Odoo order's state and primary delivery state after the event, when read.
    pub odoo_order_state: Option<String>,
    pub odoo_delivery_state: Option<String>,
    pub response_time_ms: Option<u64>,
    /// Tries before this one.
    pub retries: u32,
    /// An issue code (`variant_not_found`, …), a conflict kind or a failure class.
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub at: Timestamp,
}

/// A stored [`LogEntry`] with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEntry {
    pub id: i64,
    pub entry: LogEntry,
}

/// Which log rows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub flow_id: Option<String>,
    pub hashed_id: Option<String>,
    /// 0: no limit.
    pub limit: u32,
}

/// The seed's dashboard figures over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub total: u64,
    pub success: u64,
    pub failed: u64,
    pub conflict: u64,
    pub retrying: u64,
    /// Sum and count of the rows' response times (rows without one are left out).
    pub response_time_ms_sum: u64,
    pub response_times: u64,
    /// Imported orders (any time).
    pub orders: u64,
    /// Imported orders with no open conflict whose newest log row (conflicts aside) is a
    /// success.
    pub orders_in_sync: u64,
    pub open_conflicts: u64,
}

impl LogStats {
    /// The average response time, when any row had one.
    pub fn average_response_ms(&self) -> Option<f64> {
        (self.response_times > 0)
            .then(|| self.response_time_ms_sum as f64 / self.response_times as f64)
    }
}

/// How serious a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictSeverity {
    Low,
    Medium,
    High,
}

impl ConflictSeverity {
    pub const ALL: [ConflictSeverity; 3] = [
        ConflictSeverity::Low,
        ConflictSeverity::Medium,
        ConflictSeverity::High,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConflictSeverity::Low => "low",
            ConflictSeverity::Medium => "medium",
            ConflictSeverity::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<ConflictSeverity> {
        ConflictSeverity::ALL
            .into_iter()
            .find(|it| it.as_str() == text)
    }
}

impl fmt::Display for ConflictSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conflict as detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConflict {
    pub flow_id: String,
    pub hashed_id: String,
    /// The event that raised it (as in [`LogEntry::event_key`]).
    pub event_key: String,
    pub odoo_order_id: Option<i64>,
    /// Its type: `cancel_after_delivery`, `reopen_confirmed`, `stale_status`, …
    pub kind: String,
    pub severity: ConflictSeverity,
    /// The marketplace's side: the status it sent.
    pub marketplace_status: Option<String>,
    /// Odoo's side: the status derived from it, and its order and delivery states.
    pub odoo_status: Option<String>,
    pub odoo_order_state: Option<String>,
    pub odoo_delivery_state: Option<String>,
    pub recommended_action: String,
    pub auto_resolvable: bool,
    pub detail: String,
    /// Set when a rule resolved it at once (it is then stored resolved).
    pub resolution: Option<String>,
    pub at: Timestamp,
}

/// A stored conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: i64,
    pub conflict: NewConflict,
    pub open: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// What [`MarketplaceStore::resolve_conflict`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve {
    Resolved(Conflict),
    /// It was resolved before (its resolution stands).
    AlreadyResolved(Conflict),
    NotFound,
}
