//! The inbox: every event a flow takes in, stored before it is answered.
//!
//! The mirror image of the outbox. An inbound request is verified, then stored durably and
//! deduplicated by its event id (the sender's `webhook-id`) *before* the HTTP answer, so an
//! answered event is never lost and a resent one is stored once. A worker of the flow then
//! applies it with the same lease, retry and failed-state machinery as outgoing packets; every
//! application is recorded, and an event that keeps failing ends FAILED (visible, retried only
//! by a person), never retried forever.

use super::StoreError;
use crate::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;

/// Where an inbound event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboundStatus {
    /// Waiting for its first application or its next retry.
    Pending,
    /// Applied (or found to need nothing): done.
    Applied,
    /// Applications exhausted or refused for good: waits for a person.
    Failed,
    /// A person dropped it.
    Discarded,
}

impl InboundStatus {
    pub const ALL: [InboundStatus; 4] = [
        InboundStatus::Pending,
        InboundStatus::Applied,
        InboundStatus::Failed,
        InboundStatus::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Pending => "PENDING",
            InboundStatus::Applied => "APPLIED",
            InboundStatus::Failed => "FAILED",
            InboundStatus::Discarded => "DISCARDED",
        }
    }

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<InboundStatus> {
        InboundStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for InboundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inbound event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboundEvent {
    pub flow_id: String,
    /// The sender's id of the event (`webhook-id`): unique per flow.
    pub event_id: String,
    /// What kind of event (`cartona.status`), so the flow knows how to read it.
    pub kind: String,
    /// What the event is about, when the receiving side can tell (an order's reference):
    /// events of one subject are applied in the order they arrived.
    pub subject: Option<String>,
    /// Who sent it (the peer's address).
    pub source: String,
    /// The request headers that matter (never a secret), as a JSON object.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The body exactly as received.
    pub body: String,
    pub max_attempts: u32,
    pub received_at: Timestamp,
}

/// A stored inbound event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// The store's sequence number: arrival order.
    pub id: i64,
    pub flow_id: String,
    pub event_id: String,
    pub kind: String,
    pub subject: Option<String>,
    pub source: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: String,
    pub status: InboundStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub failure_class: Option<FailureClass>,
    /// What the last successful application did, for people.
    pub result: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
    pub applied_at: Option<Timestamp>,
}

/// What [`InboxStore::receive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored now, under this sequence number.
    Stored(i64),
    /// The flow already had this event id (stored under this number): nothing written.
    Duplicate(i64),
}

impl Received {
    pub fn id(self) -> i64 {
        match self {
            Received::Stored(id) | Received::Duplicate(id) => id,
        }
    }
}

/// The result of one application.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplicationOutcome {
    /// Done; `result` says what it did.
    Applied { result: String },
    Retry {
        error: String,
        failure_class: FailureClass,
        next_attempt_at: Timestamp,
    },
    Failed {
        error: String,
        failure_class: FailureClass,
    },
}

impl ApplicationOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            ApplicationOutcome::Applied { .. } => "applied",
            ApplicationOutcome::Retry { .. } => "retry",
            ApplicationOutcome::Failed { .. } => "failed",
        }
    }
}

/// One application, as [`InboxStore::record_application`] writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub outcome: ApplicationOutcome,
}

/// One row of an event's application history.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRecord {
    pub event: i64,
    pub worker: String,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// `applied`, `retry` or `failed`.
    pub outcome: String,
    pub failure_class: Option<FailureClass>,
    /// The result or the error.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundFilter {
    pub flow_id: Option<String>,
    pub status: Option<InboundStatus>,
    /// At most this many events; 0 means no limit.
    pub limit: u32,
}

/// The inbox of every flow.
pub trait InboxStore: Send + Sync {
    /// Stores an event unless its flow already has its event id. A missing flow is
    /// [`StoreError::NotFound`].
    fn receive(
        &self,
        event: &NewInboundEvent,
    ) -> impl Future<Output = Result<Received, StoreError>> + Send;

    /// Leases up to `limit` PENDING events of a flow due at `now` that no live lease holds,
    /// in arrival order, and only the oldest pending event of each subject.
    fn claim_inbound(
        &self,
        owner: &str,
        flow_id: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<InboundEvent>, StoreError>> + Send;

    /// Frees every lease `owner` holds on PENDING events, due at once: a worker restarted
    /// after a crash applies the events it had in hand without waiting for its old leases to
    /// expire. Returns how many it freed.
    fn release_inbound_leases_of(
        &self,
        owner: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// For each flow with PENDING events, the earliest `next_attempt_at` among them.
    fn next_inbound_due_by_flow(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, Timestamp>, StoreError>> + Send;

    /// Applies an application's outcome (attempts + 1, a history row) if `owner` still holds
    /// the lease, and releases it; `false` when the lease was lost.
    fn record_application(
        &self,
        id: i64,
        owner: &str,
        application: &Application,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn inbound_event(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<InboundEvent>, StoreError>> + Send;

    /// Newest first.
    fn inbound_events(
        &self,
        filter: &InboundFilter,
    ) -> impl Future<Output = Result<Vec<InboundEvent>, StoreError>> + Send;

    /// An event's applications, oldest first.
    fn applications(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Vec<ApplicationRecord>, StoreError>> + Send;

    /// A PENDING or FAILED event becomes PENDING, due at `now`, attempts reset, no lease;
    /// `false` otherwise.
    fn retry_inbound(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A PENDING or FAILED event becomes DISCARDED; `false` otherwise.
    fn discard_inbound(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
