//! What order delivery (seed 002) needs from a store: connections (one per Odoo tenant),
//! the durable outbox of webhook packets with its retry queue, and the sync log. Two
//! implementations: `store-sqlite` (the embedded default) and `store-pg` (several `run`
//! processes sharing one database).
//!
//! Exactly-once effect rests on three rules every implementation keeps:
//! - a packet is written before it is sent, unique per (connection, order, version), and its
//!   id (the `webhook-id` header) is fixed when it is written, so a resend after a crash
//!   carries the same id and a receiver can drop it;
//! - a page's packets and the connection's cursor are saved in one transaction, so the cursor
//!   never moves past an order whose packet is not stored;
//! - a worker changes a packet only while it holds its lease (`lease_owner`, `lease_until`);
//!   claims skip leased packets (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE`
//!   on SQLite), and an expired lease (a crashed worker) makes the packet claimable again.

use crate::change_feed::Checkpoint;
use crate::mirror_store::StoreError;
pub use crate::webhook::WebhookSecret;
use jiff::{SignedDuration, Timestamp};
/// Re-exported so that a store can build a [`Connection`] without depending on `odoo-rpc`.
pub use odoo_rpc::ApiKey;
use std::collections::HashMap;
use std::future::Future;

/// Which events a connection sends (default: all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet {
    pub confirmed: bool,
    pub updated: bool,
    pub cancelled: bool,
}

impl Default for EventSet {
    fn default() -> EventSet {
        EventSet {
            confirmed: true,
            updated: true,
            cancelled: true,
        }
    }
}

impl EventSet {
    pub fn contains(&self, event: Event) -> bool {
        match event {
            Event::OrderConfirmed => self.confirmed,
            Event::OrderUpdated => self.updated,
            Event::OrderCancelled => self.cancelled,
        }
    }

    /// Comma-separated event names, as stored and shown: `order.confirmed,order.updated`.
    pub fn to_list(&self) -> String {
        Event::ALL
            .into_iter()
            .filter(|event| self.contains(*event))
            .map(Event::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`EventSet::to_list`]'s form; unknown names are an error naming them.
    pub fn parse_list(text: &str) -> Result<EventSet, String> {
        let mut set = EventSet {
            confirmed: false,
            updated: false,
            cancelled: false,
        };
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match Event::parse(name) {
                Some(Event::OrderConfirmed) => set.confirmed = true,
                Some(Event::OrderUpdated) => set.updated = true,
                Some(Event::OrderCancelled) => set.cancelled = true,
                None => {
                    return Err(format!(
                        "unknown event {name:?}; events are order.confirmed, order.updated, order.cancelled"
                    ));
                }
            }
        }
        Ok(set)
    }
}

/// A webhook event about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    OrderConfirmed,
    OrderUpdated,
    OrderCancelled,
}

impl Event {
    pub const ALL: [Event; 3] = [
        Event::OrderConfirmed,
        Event::OrderUpdated,
        Event::OrderCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::OrderConfirmed => "order.confirmed",
            Event::OrderUpdated => "order.updated",
            Event::OrderCancelled => "order.cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// One Odoo tenant: where to poll, where to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// 16 lowercase hex characters (the seed's `lower(hex(randomblob(8)))`).
    pub id: String,
    /// Unique, chosen by a person.
    pub name: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    pub odoo_api_key: ApiKey,
    pub webhook_url: String,
    pub webhook_secret: WebhookSecret,
    pub store_id: String,
    pub client_id: String,
    pub polling_interval_seconds: u32,
    /// Minimum delay between two Odoo calls of this connection, in milliseconds (0: none).
    pub odoo_min_delay_ms: u32,
    pub is_active: bool,
    pub events: EventSet,
    /// End of the last successful cycle.
    pub last_sync_at: Option<Timestamp>,
    /// Where the order feed resumes.
    pub cursor: Option<Checkpoint>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

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
    pub fn as_str(self) -> &'static str {
        match self {
            PacketStatus::Pending => "PENDING",
            PacketStatus::Delivered => "DELIVERED",
            PacketStatus::Failed => "FAILED",
            PacketStatus::Discarded => "DISCARDED",
        }
    }

    pub fn parse(text: &str) -> Option<PacketStatus> {
        [
            PacketStatus::Pending,
            PacketStatus::Delivered,
            PacketStatus::Failed,
            PacketStatus::Discarded,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }
}

/// A packet to write into the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPacket {
    /// `{connection_id}_{order_id}_v{version}`: the `webhook-id` of every attempt.
    pub id: String,
    pub connection_id: String,
    pub odoo_order_id: i64,
    /// `odoo_{db}_{order_id}`.
    pub external_id: String,
    pub event: Event,
    /// 1 for the first packet of an order, then 2, 3… for each update or cancellation.
    pub version: u32,
    /// The payload's canonical JSON (RFC 8785): the exact bytes sent.
    pub body: String,
    /// Lowercase hex SHA-256 of the payload *without* its event and version, so that an
    /// unchanged order hashes alike whatever packet carried it (drift detection).
    pub content_hash: String,
    pub max_attempts: u32,
    pub created_at: Timestamp,
}

/// A packet as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub id: String,
    pub connection_id: String,
    pub odoo_order_id: i64,
    pub external_id: String,
    pub event: Event,
    pub version: u32,
    pub body: String,
    pub content_hash: String,
    pub status: PacketStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    /// `network_error`, `timeout`, `http_4xx`, `http_5xx`, `rate_limited`, `schema_error`,
    /// `odoo_error`.
    pub failure_class: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The newest packet of an order: what the poller compares a fresh payload with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestPacket {
    pub odoo_order_id: i64,
    pub version: u32,
    pub event: Event,
    pub content_hash: String,
}

/// What [`DeliveryStore::enqueue_page`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueCounts {
    pub inserted: u64,
    /// Packets whose (connection, order, version) was already stored: left as they were.
    pub already_stored: u64,
}

/// The result of one delivery attempt, applied by [`DeliveryStore::record_attempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered {
        at: Timestamp,
    },
    /// Try again at `next_attempt_at` (the caller computed the backoff).
    Retry {
        error: String,
        failure_class: String,
        next_attempt_at: Timestamp,
    },
    /// Give up: attempts exhausted or a permanent refusal. The packet becomes FAILED.
    Failed {
        error: String,
        failure_class: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketFilter {
    pub connection_id: Option<String>,
    pub status: Option<PacketStatus>,
    /// At most this many packets; 0 means no limit.
    pub limit: u32,
}

/// One row of the sync log: one polling cycle of one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleLog {
    pub connection_id: String,
    pub started_at: Timestamp,
    pub orders_found: u64,
    pub orders_sent: u64,
    pub orders_failed: u64,
    pub error_message: Option<String>,
    pub duration_ms: u64,
}

/// A stored [`CycleLog`] with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleLogEntry {
    pub id: i64,
    pub log: CycleLog,
}

/// Per-connection figures for the dashboard and `connections list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub connection_id: String,
    pub delivered_since: u64,
    pub pending: u64,
    pub failed: u64,
}

/// A connection's webhook-target circuit breaker as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerRecord {
    pub connection_id: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// When an open breaker lets the next probe through.
    pub open_until: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// A delivery daemon's sign of life, written every few seconds while it polls, so that
/// another process on the same store (the TUI) knows a poller is running and does not start
/// a second one. A crashed daemon's row simply goes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonHeartbeat {
    /// The process's worker id (its name in the outbox leases).
    pub worker_id: String,
    /// What runs the poller: `run` (`odoo-bridge run`) or `tui`.
    pub kind: String,
    pub started_at: Timestamp,
    pub beat_at: Timestamp,
}

/// The delivery side of a store. Every write is idempotent or guarded by a unique key.
pub trait DeliveryStore: Send + Sync {
    /// Creates or upgrades the delivery tables (idempotent).
    fn migrate_delivery(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds a connection; a taken name or id is [`StoreError::Conflict`].
    fn insert_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rewrites a connection's editable fields (everything but id, cursor, last_sync_at and
    /// created_at); a taken name is [`StoreError::Conflict`]; `false` when it does not exist.
    fn update_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a connection with its outbox and sync log; `false` when it did not exist.
    fn delete_connection(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// By id, or else by name.
    fn connection(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;

    /// Every connection, by name.
    fn connections(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;

    /// The newest packet of each of `order_ids` that has one.
    fn latest_packets(
        &self,
        connection_id: &str,
        order_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<LatestPacket>, StoreError>> + Send;

    /// In ONE transaction: inserts `packets` (one already stored under the same
    /// (connection, order, version) is left untouched and counted), moves the connection's
    /// cursor to `cursor` and, when given, sets `last_sync_at`.
    fn enqueue_page(
        &self,
        connection_id: &str,
        packets: &[NewPacket],
        cursor: Checkpoint,
        last_sync_at: Option<Timestamp>,
    ) -> impl Future<Output = Result<EnqueueCounts, StoreError>> + Send;

    /// Sets `last_sync_at` (a cycle that found nothing still counts as a sync).
    fn mark_synced(
        &self,
        connection_id: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Leases up to `limit` PENDING packets (of one connection, or of all) due at `now` (next_attempt_at ≤ now) that no live
    /// lease holds, oldest due first, and only the lowest pending version of each order (an
    /// update never overtakes the packet it updates; an older FAILED or DISCARDED version does
    /// not hold it back). The lease lasts `lease`.
    fn claim_due(
        &self,
        owner: &str,
        connection_id: Option<&str>,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Packet>, StoreError>> + Send;

    /// For each connection with PENDING packets, the earliest `next_attempt_at` among them
    /// (leased ones included): one cheap read tells a daemon which connections have
    /// retries coming, so that idle connections never query the outbox.
    fn next_due_by_connection(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, Timestamp>, StoreError>> + Send;

    /// Gives a leased packet back without counting an attempt (the target's circuit breaker
    /// refused it, or the worker is shutting down): due again at `next_attempt_at`. `false`
    /// when `owner` no longer holds it.
    fn release(
        &self,
        packet_id: &str,
        owner: &str,
        next_attempt_at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies an attempt's outcome (attempts + 1) if `owner` still holds the lease, and
    /// releases it; `false` when the lease was lost (another worker may have the packet).
    /// The lease is judged by owner alone: an expired lease nobody re-claimed still counts,
    /// so `owner` must be unique per worker.
    fn record_attempt(
        &self,
        packet_id: &str,
        owner: &str,
        outcome: &AttemptOutcome,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn packet(&self, id: &str) -> impl Future<Output = Result<Option<Packet>, StoreError>> + Send;

    /// Newest first.
    fn packets(
        &self,
        filter: &PacketFilter,
    ) -> impl Future<Output = Result<Vec<Packet>, StoreError>> + Send;

    /// A PENDING or FAILED packet becomes PENDING, due at `now`, with its attempts reset to
    /// 0 and no lease; `false` for any other status or an unknown id.
    fn retry_now(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A PENDING or FAILED packet becomes DISCARDED; `false` otherwise.
    fn discard(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Appends one cycle to the sync log.
    fn log_cycle(&self, log: &CycleLog) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Newest first, optionally for one connection; at most `limit` rows (0: no limit).
    fn cycles(
        &self,
        connection_id: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<CycleLogEntry>, StoreError>> + Send;

    /// Per connection: packets delivered since `since`, pending and failed now.
    fn connection_stats(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<ConnectionStats>, StoreError>> + Send;

    /// Deletes sync-log rows older than `before`; returns how many.
    fn prune_cycles(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records a connection's breaker state (upsert).
    fn set_breaker_state(
        &self,
        record: &BreakerRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every recorded breaker state (connections without one are closed).
    fn breaker_states(&self)
    -> impl Future<Output = Result<Vec<BreakerRecord>, StoreError>> + Send;

    /// Records a daemon's heartbeat (upsert by worker id), and forgets heartbeats older than
    /// a day (processes that died long ago).
    fn record_heartbeat(
        &self,
        heartbeat: &DaemonHeartbeat,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a daemon's heartbeat (a clean shutdown); `false` when there was none.
    fn remove_heartbeat(
        &self,
        worker_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every recorded heartbeat, the latest beat first (stale ones included: the caller
    /// judges freshness).
    fn heartbeats(&self) -> impl Future<Output = Result<Vec<DaemonHeartbeat>, StoreError>> + Send;
}
