//! What the processes sharing a store tell each other: who is alive (heartbeats), who runs
//! which flow (flow leases), how each flow's targets are doing (breaker states), and whether
//! Odoo's push hints arrive (hint activity).

use super::StoreError;
use jiff::Timestamp;
use std::fmt;
use std::future::Future;

/// A running process's sign of life, written every few seconds. A crashed process's row goes
/// stale; a clean shutdown removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The process's worker id: its name in leases.
    pub worker_id: String,
    /// What runs it: `run`, `tui` or `demo`.
    pub kind: String,
    pub started_at: Timestamp,
    pub beat_at: Timestamp,
}

/// Which process runs a flow, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLease {
    pub flow_id: String,
    pub owner: String,
    pub lease_until: Timestamp,
    pub acquired_at: Timestamp,
}

/// A circuit breaker's position, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerStatus {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerStatus {
    pub const ALL: [BreakerStatus; 3] = [
        BreakerStatus::Closed,
        BreakerStatus::Open,
        BreakerStatus::HalfOpen,
    ];

    /// `closed`, `open`, `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerStatus::Closed => "closed",
            BreakerStatus::Open => "open",
            BreakerStatus::HalfOpen => "half-open",
        }
    }

    pub fn parse(text: &str) -> Option<BreakerStatus> {
        BreakerStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether packets are held back.
    pub fn is_problem(self) -> bool {
        self != BreakerStatus::Closed
    }
}

impl fmt::Display for BreakerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The breaker of one of a flow's targets as the process running the flow last saw it (the
/// breaker itself lives in that process's memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerRecord {
    pub flow_id: String,
    /// The flow's name for the target (`webhook`).
    pub target: String,
    pub status: BreakerStatus,
    /// When an open breaker lets the next probe through.
    pub open_until: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// The Odoo push hints a flow took in, as the processes running it recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintActivity {
    pub flow_id: String,
    /// Hints taken in since hints were first recorded for the flow.
    pub received: u64,
    pub last_received_at: Timestamp,
}

/// Heartbeats, flow leases, breaker states and hint activity.
pub trait CoordinationStore: Send + Sync {
    /// Records a heartbeat (upsert by worker id), and forgets heartbeats older than a day.
    fn record_heartbeat(
        &self,
        heartbeat: &Heartbeat,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a heartbeat (a clean shutdown); `false` when there was none.
    fn remove_heartbeat(
        &self,
        worker_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every recorded heartbeat, the latest beat first (stale ones included: the caller judges).
    fn heartbeats(&self) -> impl Future<Output = Result<Vec<Heartbeat>, StoreError>> + Send;

    /// Takes the flow's lease for `owner` until `until`, when nobody holds it, its holder's lease
    /// ran out before `now`, or `owner` already holds it. `false`: another process holds it.
    /// A missing flow is [`StoreError::NotFound`].
    fn acquire_flow_lease(
        &self,
        flow_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Extends every lease `owner` holds to `until`, in one statement; returns the flows it
    /// still holds (a lease taken over by another process after it ran out is not among them).
    fn renew_flow_leases(
        &self,
        owner: &str,
        until: Timestamp,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Gives a flow's lease up, if `owner` holds it.
    fn release_flow_lease(
        &self,
        flow_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives up every lease `owner` holds (a clean shutdown).
    fn release_flow_leases(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every flow lease, live or run out.
    fn flow_leases(&self) -> impl Future<Output = Result<Vec<FlowLease>, StoreError>> + Send;

    /// Records a target's breaker state (upsert by flow and target).
    fn set_breaker_state(
        &self,
        record: &BreakerRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every recorded breaker state (targets without one are closed).
    fn breaker_states(&self)
    -> impl Future<Output = Result<Vec<BreakerRecord>, StoreError>> + Send;

    /// Adds `count` hints the flow took in, the last at `at` (upsert by flow; nothing for a
    /// flow removed meanwhile).
    fn record_hints(
        &self,
        flow_id: &str,
        count: u64,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every flow's hint activity, by flow id (flows that never took a hint have none).
    fn hint_activity(&self) -> impl Future<Output = Result<Vec<HintActivity>, StoreError>> + Send;
}
