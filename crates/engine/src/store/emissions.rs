//! The emission guard of enrichment jobs (seed 000): one row per (job, record, packet
//! version), written before the packet is sent.
//!
//! - **Once**: the key is unique, so a record is emitted once per packet version. The row
//!   keeps the exact packet sent (its id, bytes and payload hash): a sender that died between
//!   sending and bookkeeping sends the *same* packet again, never a new one.
//! - **Exclusive**: a sender claims a row (`claim_owner`, `claim_until`) with one
//!   `INSERT … ON CONFLICT … DO UPDATE … WHERE`; only the holder of a live claim may send it
//!   and record the outcome, so two processes never emit one record at once.
//! - **Breaker**: failures are counted per row; at the job's `max_failures` the row is
//!   disabled and no longer claimable until a forced replay.
//! - **Replays**: a forced replay rewrites the row with a new packet and logs the old and new
//!   packet ids and hashes (drift) in `enrich_replays`.
//! - **Environment**: a store serves one environment (`prod`, `staging`); the first job run
//!   binds it, and a configuration naming another is refused.

use super::StoreError;
use crate::webhook::FailureClass;
use jiff::Timestamp;
use std::fmt;
use std::future::Future;

/// What identifies an emission: a job's record at one packet version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmissionKey {
    pub job: String,
    pub record_id: i64,
    pub packet_version: String,
}

impl EmissionKey {
    pub fn new(job: impl Into<String>, record_id: i64, packet_version: impl Into<String>) -> Self {
        EmissionKey {
            job: job.into(),
            record_id,
            packet_version: packet_version.into(),
        }
    }
}

impl fmt::Display for EmissionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} record {} (packet version {})",
            self.job, self.record_id, self.packet_version
        )
    }
}

/// Where an emission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmissionState {
    /// Written, not yet answered and applied: sent again (the same packet) on the next run,
    /// unless disabled.
    Pending,
    /// The answer passed its schema and was written back: never sent again but by a forced
    /// replay.
    Applied,
}

impl EmissionState {
    pub const ALL: [EmissionState; 2] = [EmissionState::Pending, EmissionState::Applied];

    pub fn as_str(self) -> &'static str {
        match self {
            EmissionState::Pending => "pending",
            EmissionState::Applied => "applied",
        }
    }

    pub fn parse(text: &str) -> Option<EmissionState> {
        EmissionState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for EmissionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A packet about to be emitted, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmission {
    pub key: EmissionKey,
    pub model: String,
    pub environment: String,
    pub packet_id: String,
    /// Lowercase hex SHA-256 of the RFC 8785 form of the payload.
    pub payload_hash: String,
    /// The exact bytes POSTed.
    pub packet: String,
}

/// An emission as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    pub key: EmissionKey,
    pub model: String,
    pub environment: String,
    pub packet_id: String,
    pub payload_hash: String,
    pub packet: String,
    pub state: EmissionState,
    /// The class of the last failure, cleared when the answer is applied.
    pub failure_class: Option<FailureClass>,
    pub last_error: Option<String>,
    /// Failed attempts of this packet (reset by a forced replay).
    pub failures: u32,
    /// Disabled by the breaker after `max_failures`: not sent until re-enabled.
    pub disabled: bool,
    pub claim_owner: Option<String>,
    pub claim_until: Option<Timestamp>,
    /// When the packet was written (its `emitted_at`).
    pub emitted_at: Timestamp,
    pub updated_at: Timestamp,
    pub applied_at: Option<Timestamp>,
    /// Forced replays so far.
    pub replays: u32,
}

/// What [`EmissionStore::claim_emission`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmissionClaim {
    /// The caller holds the emission until its `claim_until` and must send its stored
    /// `packet`: the one just written, or the one a previous sender wrote and did not finish.
    Granted(Emission),
    /// Emitted and applied already: a second emission needs a forced replay.
    AlreadyApplied(Emission),
    /// Disabled by the breaker.
    Disabled(Emission),
    /// Another sender holds a live claim.
    HeldElsewhere(Emission),
}

/// What a failed attempt did to an emission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<'a> {
    pub class: FailureClass,
    pub error: &'a str,
    /// The job's `max_failures`: the row is disabled when its failures reach it.
    pub max_failures: u32,
}

/// One forced replay, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRecord {
    pub key: EmissionKey,
    pub previous_packet_id: String,
    pub previous_hash: String,
    pub packet_id: String,
    pub payload_hash: String,
    /// The payload changed since the previous emission.
    pub drift: bool,
    pub replayed_at: Timestamp,
}

/// The emission guard's rows. Every write is an upsert or guarded by the (job, record,
/// packet version) key and the claim's owner.
pub trait EmissionStore: Send + Sync {
    /// Binds the store to `environment` on first use; the environment it is bound to
    /// otherwise. A caller of another environment must refuse to emit.
    fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Writes `emission` (a new key) or takes the stored one (the packet stored stays as it
    /// is) and claims it for `owner` until `until` — unless it is applied, disabled, or held
    /// by another owner's claim still live at `now` (an owner's own claim is renewed).
    fn claim_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<EmissionClaim, StoreError>> + Send;

    /// A forced replay: rewrites the row (any state) with `emission`'s packet, pending, its
    /// failures reset and re-enabled, claimed for `owner` until `until`, and logs the replay
    /// with the previous packet id and hash, in one transaction. A key never emitted is
    /// written and not logged. `HeldElsewhere` when another owner's claim is live at `now`
    /// (nothing changed); otherwise `Granted`.
    fn replay_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<EmissionClaim, StoreError>> + Send;

    /// The answer was applied: the emission becomes `applied`, its failure class cleared,
    /// the claim released. `false` (nothing changed) when `owner` does not hold the claim.
    fn record_applied(
        &self,
        key: &EmissionKey,
        owner: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A failed attempt: failures + 1, its class and error kept, disabled when the failures
    /// reach `max_failures`, the claim released. The row as it then stands; `None` (nothing
    /// changed) when `owner` does not hold the claim.
    fn record_failure(
        &self,
        key: &EmissionKey,
        owner: &str,
        failure: &Failure<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Emission>, StoreError>> + Send;

    /// Gives back a claim without an attempt (the target's breaker is open, the process is
    /// stopping); `false` when `owner` does not hold it.
    fn release_emission(
        &self,
        key: &EmissionKey,
        owner: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn emission(
        &self,
        key: &EmissionKey,
    ) -> impl Future<Output = Result<Option<Emission>, StoreError>> + Send;

    /// A job's emissions (every job's with `None`), by job, then record id, then version.
    fn emissions(
        &self,
        job: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Emission>, StoreError>> + Send;

    /// The forced replays of one record of a job, oldest first.
    fn replays(
        &self,
        job: &str,
        record_id: i64,
    ) -> impl Future<Output = Result<Vec<ReplayRecord>, StoreError>> + Send;
}
