//! What the mirror needs from a store. Two implementations: `store-sqlite` (the embedded
//! default) and `store-pg` (PostgreSQL JSONB). Both keep seed 003's three tables:
//! `odoo_raw_records`, `odoo_sync_state`, `odoo_sync_runs`.

use crate::change_feed::Checkpoint;
use jiff::Timestamp;
use std::future::Future;

pub use crate::store::StoreError;

/// One Odoo record as the mirror stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRow {
    pub odoo_id: i64,
    /// The record as `search_read` returned it.
    pub payload: serde_json::Value,
    /// `payload` as compact JSON text (what `serde_json::to_string` writes): what the stores
    /// write. Made where the row is built — by the backfill's parallel readers — so that the
    /// store's single writer, which every page waits for, does not serialize.
    pub payload_json: String,
    /// The cursor value read back (whole seconds), when the record has one.
    pub write_date: Option<Timestamp>,
    /// Lowercase hex SHA-256 of the payload's canonical JSON (RFC 8785): a row is rewritten
    /// only when this changes.
    pub content_hash: String,
}

impl MirrorRow {
    /// A row of `payload`, its JSON text made from it.
    pub fn new(
        odoo_id: i64,
        payload: serde_json::Value,
        write_date: Option<Timestamp>,
        content_hash: String,
    ) -> MirrorRow {
        // Straight into a buffer: `Display` (`to_string`) goes through `fmt` and is slower.
        // Serializing a `Value` cannot fail (its keys are strings), so the fallback is
        // never taken.
        let payload_json = serde_json::to_string(&payload).unwrap_or_else(|_| payload.to_string());
        MirrorRow {
            odoo_id,
            payload_json,
            payload,
            write_date,
            content_hash,
        }
    }
}

/// What a page did to the mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What deletion reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileCounts {
    /// Rows whose record is gone from Odoo: `deleted_at` stamped (rows are never deleted).
    pub deleted: u64,
    /// Rows stamped deleted earlier whose record exists again: `deleted_at` cleared.
    pub restored: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Success,
    /// Some models failed, the others were mirrored.
    Partial,
    Failed,
    /// The process running it stopped without finishing (killed, crashed, its machine lost):
    /// found by a later run and marked so, its counters kept. Never a run's own outcome.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Partial,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// The error text of a run marked [`RunStatus::Interrupted`].
pub const INTERRUPTED_ERROR: &str = "interrupted: the process running it stopped without \
     finishing (killed or crashed); the next run resumed from the last page it committed";

/// One row of `odoo_sync_runs`, with the counters summed over its pages.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub pages: u64,
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub restored: u64,
    /// The run's last sign of life while it ran (its start for a run written before the
    /// heartbeat existed): what tells a slow run from a dead one.
    pub heartbeat_at: Option<Timestamp>,
}

/// One row of `odoo_raw_records`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub model: String,
    pub odoo_id: i64,
    pub payload: serde_json::Value,
    pub write_date: Option<Timestamp>,
    pub synced_at: Timestamp,
    pub content_hash: String,
    pub deleted_at: Option<Timestamp>,
}

/// The mirror's storage. Every write is idempotent: running the same page twice leaves the
/// same rows (the second time counted as unchanged).
pub trait MirrorStore: Send + Sync {
    /// Proof that this process holds the run lock; give it back with [`MirrorStore::unlock`].
    /// If the process dies, the lock is released by the database or the OS.
    type Lock: Send;

    /// Creates or upgrades the schema (idempotent; the migrations live in the store crate).
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the run lock without waiting; `None` when another run holds it.
    fn try_lock(&self) -> impl Future<Output = Result<Option<Self::Lock>, StoreError>> + Send;

    fn unlock(&self, lock: Self::Lock) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts a `running` row into `odoo_sync_runs` and returns its id. Its heartbeat is
    /// `started_at`; `holds_lock` says whether the run holds the run lock, which is what lets
    /// [`MirrorStore::interrupt_abandoned_runs`] judge it by the lock alone.
    fn start_run(
        &self,
        started_at: Timestamp,
        holds_lock: bool,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stamps a `running` run's heartbeat: the run is alive at `at`. A run no longer
    /// `running` (marked interrupted by mistake, finished) is left as it is.
    fn beat_run(
        &self,
        run: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks as [`RunStatus::Interrupted`] the `running` runs whose process is provably gone,
    /// and returns their ids: those that held the run lock when `lock_held` (the caller holds
    /// it now, so their process no longer does: the database or the OS released it when the
    /// process died), and any whose last heartbeat is older than `stale_before` (runs
    /// without the lock, `lock_strategy: none`). Their counters stay; `finished_at` becomes
    /// their last heartbeat, the last time they were known alive.
    fn interrupt_abandoned_runs(
        &self,
        lock_held: bool,
        stale_before: Timestamp,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// The model's saved checkpoint (`last_cursor_value`, `last_cursor_id`), if any.
    fn checkpoint(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// Forgets the model's checkpoint (a `--full` backfill); rows stay.
    fn reset_checkpoint(&self, model: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// In ONE transaction: upserts `rows` of `model` keyed by `(model, odoo_id)` (rewriting a
    /// row only when its `content_hash` differs; a written row gets `synced_at` and its
    /// `deleted_at` cleared), saves `checkpoint` as the model's state, and adds the page's
    /// counts (pages + 1, fetched += rows.len(), inserted, updated, unchanged) to run `run`.
    fn apply_page(
        &self,
        run: i64,
        model: &str,
        rows: &[MirrorRow],
        checkpoint: Checkpoint,
        synced_at: Timestamp,
    ) -> impl Future<Output = Result<PageCounts, StoreError>> + Send;

    /// Saves `checkpoint` as the model's state on its own: where a run ends that had no
    /// page left to carry it (a backfill after which nothing changed).
    fn save_checkpoint(
        &self,
        model: &str,
        checkpoint: Checkpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// In one transaction: stamps `deleted_at = at` on the model's rows whose id is not in
    /// `odoo_ids` (and are not stamped yet), clears `deleted_at` on stamped rows whose id is
    /// in it, and adds both counts to run `run`. `odoo_ids` may be large (1e6): implementations
    /// must not build one SQL statement per id.
    fn reconcile(
        &self,
        run: i64,
        model: &str,
        odoo_ids: &[i64],
        at: Timestamp,
    ) -> impl Future<Output = Result<ReconcileCounts, StoreError>> + Send;

    /// Marks the run finished with its status and error text.
    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        error: Option<&str>,
        finished_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes runs started before `before`; returns how many.
    fn prune_runs(&self, before: Timestamp)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Runs, newest first.
    fn runs(&self, limit: u32) -> impl Future<Output = Result<Vec<RunRecord>, StoreError>> + Send;

    fn record(
        &self,
        model: &str,
        odoo_id: i64,
    ) -> impl Future<Output = Result<Option<StoredRecord>, StoreError>> + Send;

    /// How many rows of `model` there are, and how many of them are stamped deleted.
    fn count(&self, model: &str) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send;

    /// Ids of the model's rows not stamped deleted, ascending.
    fn live_ids(&self, model: &str) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
}

/// What applying one row does to the mirror, given what is stored under its id (its content
/// hash, and whether it is stamped deleted): the rule both stores count by. Rows of one page
/// are judged in order, each against the state the rows before it left, so an id twice in a
/// page counts its second occurrence as `updated` when it differs from the first and as
/// `unchanged` when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowEffect {
    Inserted,
    Updated,
    Unchanged,
}

impl RowEffect {
    pub fn judge(stored: Option<(&str, bool)>, hash: &str) -> RowEffect {
        match stored {
            None => RowEffect::Inserted,
            Some((stored_hash, deleted)) if deleted || stored_hash != hash => RowEffect::Updated,
            Some(_) => RowEffect::Unchanged,
        }
    }
}
