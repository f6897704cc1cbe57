//! The sync log: one row per cycle of one flow (the seed's per-cycle log).

use super::StoreError;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::future::Future;

/// One cycle of one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleLog {
    pub flow_id: String,
    pub started_at: Timestamp,
    /// Changes the flow's feeds returned (orders for order delivery).
    pub found: u64,
    /// Packets delivered during the cycle.
    pub sent: u64,
    /// Failed attempts during the cycle (retried later or given up).
    pub failed: u64,
    /// Packets given back untried because a target's circuit breaker was open.
    pub held_back: u64,
    /// `None` when the cycle succeeded.
    pub error_message: Option<String>,
    pub duration_ms: u64,
}

impl CycleLog {
    /// Whether the cycle shows trouble: an error, failed attempts or packets held back.
    pub fn is_problem(&self) -> bool {
        self.error_message.is_some() || self.failed > 0 || self.held_back > 0
    }

    /// When the cycle ended.
    pub fn finished_at(&self) -> Timestamp {
        let took = SignedDuration::from_millis(i64::try_from(self.duration_ms).unwrap_or(i64::MAX));
        self.started_at.checked_add(took).unwrap_or(self.started_at)
    }
}

/// For each flow among `logs` with a successful cycle, the end of its latest one: what
/// [`SyncLogStore::record_cycles`] sets as the flow's `last_sync_at`.
pub fn last_syncs(logs: &[CycleLog]) -> Vec<(&str, Timestamp)> {
    let mut latest: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for log in logs.iter().filter(|log| log.error_message.is_none()) {
        let end = log.finished_at();
        latest
            .entry(log.flow_id.as_str())
            .and_modify(|at| *at = (*at).max(end))
            .or_insert(end);
    }
    latest.into_iter().collect()
}

/// A stored [`CycleLog`] with its id (arrival order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleLogEntry {
    pub id: i64,
    pub log: CycleLog,
}

pub trait SyncLogStore: Send + Sync {
    /// In one transaction: appends the cycles (of any flows; cycles of flows removed
    /// meanwhile are dropped) and moves each flow's `last_sync_at` to the end of its latest
    /// successful cycle among them ([`last_syncs`]). The runtime writes the cycles of every
    /// flow it runs in one batch per reload, so an idle flow costs no statement per poll.
    fn record_cycles(
        &self,
        logs: &[CycleLog],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Newest first, optionally of one flow; at most `limit` rows (0: no limit).
    fn cycles(
        &self,
        flow_id: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<CycleLogEntry>, StoreError>> + Send;

    /// Deletes rows older than `before`; returns how many.
    fn prune_cycles(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
