//! The outbox: every packet any flow sends, written before it is sent.
//!
//! A packet is about one **subject** (an Odoo model and record id) of one flow, at one
//! **version**: unique per (flow, subject, version), so whatever writes it twice (a re-poll,
//! two replicas, a crash between write and bookkeeping) writes it once. Its id — the
//! `webhook-id` of every attempt — is fixed when it is written, so a resend after a crash
//! carries the id the receiver already saw.
//!
//! Exactly-once effect rests on three rules every store keeps:
//! - a page's packets and the feed's cursor are saved in one transaction
//!   ([`OutboxStore::enqueue`]), so a cursor never passes a change whose packet is not stored;
//! - a worker changes a packet only while it holds its lease (`lease_owner`, `lease_until`);
//!   claims skip leased packets (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on
//!   SQLite), and an expired lease (a crashed worker) makes the packet claimable again;
//! - only the lowest PENDING version of a subject is claimable: an update never overtakes the
//!   packet it updates.

use super::StoreError;
use super::tenants::FeedCursor;
use crate::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;

/// Where a packet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketStatus {
    /// Waiting for its first attempt or its next retry.
    Pending,
    Delivered,
    /// Attempts exhausted or a permanent refusal (410): stays until a person acts.
    Failed,
    /// A person dropped it.
    Discarded,
}

impl PacketStatus {
    pub const ALL: [PacketStatus; 4] = [
        PacketStatus::Pending,
        PacketStatus::Delivered,
        PacketStatus::Failed,
        PacketStatus::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PacketStatus::Pending => "PENDING",
            PacketStatus::Delivered => "DELIVERED",
            PacketStatus::Failed => "FAILED",
            PacketStatus::Discarded => "DISCARDED",
        }
    }

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<PacketStatus> {
        PacketStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for PacketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a packet is about: an Odoo record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub model: String,
    pub id: i64,
}

impl Subject {
    pub fn new(model: impl Into<String>, id: i64) -> Subject {
        Subject {
            model: model.into(),
            id,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.model, self.id)
    }
}

/// A packet to write into the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPacket {
    /// Fixed now, sent as `webhook-id` on every attempt (`{flow}_{record}_v{version}` for
    /// order delivery).
    pub id: String,
    pub subject: Subject,
    /// How people and receivers know the subject (`odoo_lejuste_42`, a marketplace's order
    /// id); optional.
    pub reference: Option<String>,
    /// The flow's name for where the packet goes (`webhook`); the flow resolves it to a URL
    /// when sending, so editing a flow's URL redirects its queue.
    pub target: String,
    /// What happened (`order.confirmed`, `status.delivered`…).
    pub event: String,
    /// 1 for a subject's first packet, then 2, 3…
    pub version: u32,
    /// The exact bytes sent.
    pub payload: String,
    /// Lowercase hex SHA-256 of the RFC 8785 form of what the packet says about its subject:
    /// an unchanged subject hashes alike whatever packet carried it (drift detection).
    pub payload_hash: String,
    pub max_attempts: u32,
    pub created_at: Timestamp,
}

/// A packet as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub id: String,
    pub flow_id: String,
    pub tenant_id: String,
    pub subject: Subject,
    pub reference: Option<String>,
    pub target: String,
    pub event: String,
    pub version: u32,
    pub payload: String,
    pub payload_hash: String,
    pub status: PacketStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub failure_class: Option<FailureClass>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The newest packet of a subject: what a flow compares a fresh payload with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestPacket {
    pub subject_id: i64,
    pub version: u32,
    pub event: String,
    pub payload_hash: String,
    pub status: PacketStatus,
}

/// What [`OutboxStore::enqueue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueCounts {
    pub inserted: u64,
    /// Packets whose (flow, subject, version) was already stored: left as they were.
    pub already_stored: u64,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at `next_attempt_at` (the caller computed the backoff).
    Retry {
        error: String,
        failure_class: FailureClass,
        next_attempt_at: Timestamp,
    },
    /// Give up: attempts exhausted or a permanent refusal. The packet becomes FAILED.
    Failed {
        error: String,
        failure_class: FailureClass,
    },
}

impl AttemptOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Failed { .. } => "failed",
        }
    }
}

/// One attempt, as [`OutboxStore::record_attempt`] writes it into the packet and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub outcome: AttemptOutcome,
}

/// One row of a packet's attempt history.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub packet_id: String,
    pub worker: String,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    pub failure_class: Option<FailureClass>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketFilter {
    pub flow_id: Option<String>,
    pub status: Option<PacketStatus>,
    /// At most this many packets; 0 means no limit.
    pub limit: u32,
}

/// Per flow: figures for dashboards and `connections list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub flow_id: String,
    pub delivered_since: u64,
    pub pending: u64,
    pub failed: u64,
    /// Inbound events waiting to be applied, and given up on (waiting for a person).
    pub inbound_pending: u64,
    pub inbound_failed: u64,
}

/// The outbox of every flow. Every write is idempotent or guarded by a unique key.
pub trait OutboxStore: Send + Sync {
    /// The newest packet of each of `subject_ids` (of `model`) that has one, any status.
    fn latest_packets(
        &self,
        flow_id: &str,
        model: &str,
        subject_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<LatestPacket>, StoreError>> + Send;

    /// In ONE transaction: inserts `packets` (one already stored under the same (flow,
    /// subject, version) is left untouched and counted) and, when given, moves the flow's
    /// feed cursor. A missing flow is [`StoreError::NotFound`]; a packet id taken by another
    /// subject or version is [`StoreError::Conflict`].
    fn enqueue(
        &self,
        flow_id: &str,
        packets: &[NewPacket],
        cursor: Option<FeedCursor<'_>>,
    ) -> impl Future<Output = Result<EnqueueCounts, StoreError>> + Send;

    /// Leases up to `limit` PENDING packets (of one flow, or of all) due at `now` that no live
    /// lease holds, oldest due first, and only the lowest pending version of each subject. The
    /// lease lasts `lease`.
    fn claim_due(
        &self,
        owner: &str,
        flow_id: Option<&str>,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Packet>, StoreError>> + Send;

    /// For each flow with PENDING packets, the earliest `next_attempt_at` among them (leased
    /// ones included): one cheap read tells a runtime which flows have deliveries coming.
    fn next_due_by_flow(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, Timestamp>, StoreError>> + Send;

    /// Gives a leased packet back without counting an attempt (the target's breaker refused
    /// it, or the worker is stopping): due again at `next_attempt_at`. `false` when `owner`
    /// no longer holds it.
    fn release(
        &self,
        packet_id: &str,
        owner: &str,
        next_attempt_at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies an attempt (attempts + 1, its outcome, a history row) if `owner` still holds the
    /// lease, and releases it; `false` when the lease was lost. The lease is judged by owner
    /// alone: an expired lease nobody re-claimed still counts, so owners must be unique.
    fn record_attempt(
        &self,
        packet_id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Frees every lease `owner` holds, due at once: a worker restarted after a crash takes
    /// its in-flight packets back without waiting for its old leases to expire. Returns how
    /// many were freed.
    fn release_leases_of(
        &self,
        owner: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn packet(&self, id: &str) -> impl Future<Output = Result<Option<Packet>, StoreError>> + Send;

    /// Newest first; packets written together by subject id, then version, both descending
    /// (numerically: order 27 before order 9).
    fn packets(
        &self,
        filter: &PacketFilter,
    ) -> impl Future<Output = Result<Vec<Packet>, StoreError>> + Send;

    /// A packet's attempts, oldest first.
    fn attempts(
        &self,
        packet_id: &str,
    ) -> impl Future<Output = Result<Vec<AttemptRecord>, StoreError>> + Send;

    /// A PENDING or FAILED packet becomes PENDING, due at `now`, attempts reset to 0, no lease;
    /// `false` for any other status or an unknown id.
    fn retry_now(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The flow's PENDING packets waiting for a later retry, and held by no live lease, become
    /// due at `now`, their attempts kept: a pass run by hand or by cron (`enrich run`) is the
    /// retry its packets were waiting for. The number brought forward.
    fn bring_forward(
        &self,
        flow_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A PENDING or FAILED packet becomes DISCARDED; `false` otherwise.
    fn discard(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Per flow (every flow, zeros included): packets delivered since `since`, pending and
    /// failed now.
    fn flow_stats(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<FlowStats>, StoreError>> + Send;
}
