//! What the engine needs from a store, in focused traits, and what the stores share.
//!
//! Two implementations, each in its own crate: `store-sqlite` (the embedded default, one
//! file) and `store-pg` (PostgreSQL: JSONB mirror, several `run` replicas sharing the work).
//! Both pass one contract test suite ([`contract`], behind the `store-contract` feature).
//!
//! - [`TenantStore`]: tenants (an Odoo to talk to) and their flows, with the flows' cursors;
//! - [`OutboxStore`]: every packet any flow sends, written before it is sent;
//! - [`InboxStore`]: every event any flow takes in, stored before it is answered;
//! - [`CoordinationStore`]: heartbeats, flow leases (which replica runs which flow), breakers;
//! - [`SyncLogStore`]: one row per flow cycle;
//! - [`MarketplaceStore`]: each marketplace order's import (claims for exactly-once creation)
//!   and the last status seen from each side;
//! - [`EnvironmentStore`]: the one environment (`prod`, `staging`…) the store belongs to;
//! - [`MarketplaceOutboundStore`]: each marketplace order's terms (who delivers it, how it is
//!   paid) and the last status derived from Odoo, for the statuses pushed back;
//! - [`MirrorStore`](crate::mirror_store::MirrorStore): the mirror's tables, and the schema's
//!   one migration path ([`MirrorStore::migrate`](crate::mirror_store::MirrorStore::migrate)
//!   creates or upgrades every table).

pub mod coordination;
pub mod environment;
mod error;
pub mod inbox;
pub mod marketplace;
pub mod marketplace_outbound;
pub mod outbox;
pub mod rows;
pub mod secrets_at_rest;
pub mod sync_log;
pub mod tenants;

#[cfg(feature = "store-contract")]
pub mod contract;

pub use coordination::{
    BreakerRecord, BreakerStatus, CoordinationStore, FlowLease, Heartbeat, HintActivity,
};
pub use environment::{EnvironmentMismatch, EnvironmentStore};
pub use error::{ErrorSource, StoreError};
pub use inbox::{
    Application, ApplicationOutcome, ApplicationRecord, InboundEvent, InboundFilter, InboundStatus,
    InboxStore, NewInboundEvent, Received,
};
pub use marketplace::{
    Conflict, ConflictSeverity, ImportClaim, ImportState, LogDirection, LogEntry, LogFilter,
    LogOutcome, LogStats, MarketplaceOrder, MarketplaceStore, NewConflict, Resolve, StoredLogEntry,
};
pub use marketplace_outbound::{MarketplaceOutboundStore, OutboundOrder};
pub use outbox::{
    Attempt, AttemptOutcome, AttemptRecord, EnqueueCounts, FlowStats, LatestPacket, NewPacket,
    OutboxStore, Packet, PacketFilter, PacketStatus, Subject,
};
pub use secrets_at_rest::{EncryptionKey, KeySource, Keyring, Reseal};
pub use sync_log::{CycleLog, CycleLogEntry, SyncLogStore};
pub use tenants::{
    FeedCursor, Flow, FlowKind, FlowSecrets, SecretValue, StoredCursor, Tenant, TenantStore,
};

use crate::mirror_store::MirrorStore;

/// Everything a store offers: what the runtime, the CLI and the TUI are generic over.
/// Cloning is cheap (clones share the connection pool).
pub trait Store:
    MirrorStore
    + TenantStore
    + OutboxStore
    + InboxStore
    + CoordinationStore
    + SyncLogStore
    + MarketplaceStore
    + EnvironmentStore
    + MarketplaceOutboundStore
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: MirrorStore
        + TenantStore
        + OutboxStore
        + InboxStore
        + CoordinationStore
        + SyncLogStore
        + MarketplaceStore
        + EnvironmentStore
        + MarketplaceOutboundStore
        + Clone
        + Send
        + Sync
        + 'static
{
}
