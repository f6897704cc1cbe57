//! The mirror flow (seed 003): copy configured Odoo models into a store, incrementally.
//!
//! One run: take the lock (or stop at once), open a run row, then for each model in turn
//! read it — by id with parallel readers when there is no checkpoint (a backfill), then by
//! its change feed from the saved checkpoint minus the overlap — and write every page
//! together with its checkpoint in one transaction. The configured fields are checked against
//! the server only when a read fails. A model's failure is recorded and the next model still
//! runs; an authentication failure stops the run, since every later call would fail the same
//! way.

use crate::change_feed::{
    BackfillBounds, ChangeFeed, Checkpoint, FeedError, FeedSpec, all_ids, backfill_bounds, id_page,
    truncate,
};
use crate::config::{ModelConfig, closest};
use crate::mirror_store::{MirrorRow, MirrorStore, RunStatus, StoreError};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{Context, OdooClient, Record, field};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("another mirror run holds the lock; this one stops without doing anything")]
    LockBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Odoo refused the credentials: {0}")]
    Authentication(odoo_rpc::Error),
}

/// What to mirror this time.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only this model (`--model`).
    pub only_model: Option<String>,
    /// Ignore checkpoints and read everything again (`--full`).
    pub full: bool,
    /// Whether to take the store's run lock (`lock_strategy: none` turns it off).
    pub use_lock: bool,
    /// Delete runs older than this many days at the end of the run.
    pub retention_days: u32,
}

/// What one model's sync did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReport {
    pub model: String,
    pub pages: u64,
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub restored: u64,
    /// Rows refreshed because their record no longer matches the model's domain.
    pub left_filter: u64,
    /// Configured fields this server does not have, each with the closest existing name.
    pub missing_fields: Vec<(String, Option<String>)>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub run_id: i64,
    pub status: RunStatus,
    pub models: Vec<ModelReport>,
}

/// Where a run reports its progress: progress bars on a terminal, JSON log lines otherwise.
pub trait Progress: Send + Sync {
    /// A model starts; `total` is how many records its feed will visit at most, when known.
    fn model_started(&self, _model: &str, _total: Option<u64>) {}
    /// A page was written.
    fn page_written(&self, _report: &ModelReport) {}
    fn model_finished(&self, _report: &ModelReport) {}
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Lowercase hex SHA-256 of the value's canonical JSON (RFC 8785): equal content, equal
/// hash, whatever the key order Odoo answered in.
pub fn content_hash(value: &serde_json::Value) -> String {
    let mut canonical = Vec::with_capacity(1024);
    write_canonical(value, &mut canonical);
    hex::encode(Sha256::digest(&canonical))
}

/// Appends `value` as RFC 8785 canonical JSON: the bytes `serde_json_canonicalizer` writes
/// (its output is this function's test oracle), without its cost on objects: it parses every
/// key back to sort it, which made hashing the mirror's main CPU cost per record.
pub fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // ECMAScript's number layout (ties to even digits included) is the reference
        // implementation's own: it is only slow on objects.
        Value::Number(number) => match serde_json_canonicalizer::to_vec(number) {
            Ok(text) => out.extend_from_slice(&text),
            // Only NaN and infinities fail, and a serde_json number is never one of them.
            Err(_) => out.extend_from_slice(number.to_string().as_bytes()),
        },
        Value::String(text) => write_canonical_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Keys sort by UTF-16 code units (not bytes: they differ past U+E000). The map's
            // own order cannot be relied on: serde_json keeps insertion order when any crate
            // of the build enables its `preserve_order` feature.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical_string(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
    }
}

/// A string with only the escapes RFC 8785 allows: `\"`, `\\`, the short forms of control
/// characters and `\u00xx` (lowercase) for the others; everything else as UTF-8.
fn write_canonical_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..index]);
        out.extend_from_slice(escape);
        plain = index + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

fn mirror_row(model: &str, record: Record, cursor_field: &str) -> Result<MirrorRow, FeedError> {
    let odoo_id = record.id().map_err(|error| FeedError::BadCursor {
        model: model.to_owned(),
        id: 0,
        field: "id".into(),
        detail: error.to_string(),
    })?;
    let write_date = record.datetime(cursor_field).ok().flatten();
    let payload = serde_json::Value::Object(record.into_map());
    let content_hash = content_hash(&payload);
    Ok(MirrorRow {
        odoo_id,
        payload,
        write_date,
        content_hash,
    })
}

/// Runs the mirror once over `models`.
pub async fn run<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    models: &[ModelConfig],
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, MirrorError> {
    store.migrate().await?;
    let lock = if options.use_lock {
        match store.try_lock().await? {
            Some(lock) => Some(lock),
            None => return Err(MirrorError::LockBusy),
        }
    } else {
        None
    };
    let outcome = run_locked(client, store, models, options, progress).await;
    if let Some(lock) = lock {
        match (store.unlock(lock).await, &outcome) {
            (Ok(()), _) => {}
            // The run's own error says more than the unlock's (often the same lost database).
            (Err(error), Err(_)) => {
                tracing::warn!(error = %error, "could not release the run lock")
            }
            (Err(error), Ok(_)) => return Err(error.into()),
        }
    }
    outcome
}

async fn run_locked<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    models: &[ModelConfig],
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, MirrorError> {
    let run_id = store.start_run(Timestamp::now()).await?;
    let selected: Vec<&ModelConfig> = models
        .iter()
        .filter(|model| {
            options
                .only_model
                .as_deref()
                .is_none_or(|only| only == model.name)
        })
        .collect();
    let mut reports = Vec::with_capacity(selected.len());
    let mut authentication_failure = None;
    for model in selected {
        let mut report = ModelReport {
            model: model.name.clone(),
            ..ModelReport::default()
        };
        match sync_model(client, store, run_id, model, options, progress, &mut report).await {
            Ok(()) => {}
            Err(ModelFailure::Store(error)) => {
                // The store itself failing (disk full, database gone) ends the run.
                report.error = Some(error.to_string());
                reports.push(report);
                let summary = failure_summary(&reports);
                let _ = store
                    .finish_run(run_id, RunStatus::Failed, Some(&summary), Timestamp::now())
                    .await;
                return Err(MirrorError::Store(error));
            }
            Err(ModelFailure::Odoo(error)) if error.is_authentication() => {
                report.error = Some(error.to_string());
                authentication_failure = Some(error);
            }
            Err(ModelFailure::Odoo(error)) => report.error = Some(error.to_string()),
            Err(ModelFailure::Feed(error)) => report.error = Some(error.to_string()),
            Err(ModelFailure::Reader(error)) => report.error = Some(error),
        }
        tracing::info!(
            model = %report.model, pages = report.pages, fetched = report.fetched, inserted = report.inserted,
            updated = report.updated, unchanged = report.unchanged, deleted = report.deleted,
            restored = report.restored, left_filter = report.left_filter, error = report.error.as_deref().unwrap_or(""), "model mirrored"
        );
        progress.model_finished(&report);
        reports.push(report);
        if authentication_failure.is_some() {
            break;
        }
    }
    let failed = reports
        .iter()
        .filter(|report| report.error.is_some())
        .count();
    let status = if failed == 0 {
        RunStatus::Success
    } else if failed == reports.len() || authentication_failure.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Partial
    };
    let summary = (failed > 0).then(|| failure_summary(&reports));
    store
        .finish_run(run_id, status, summary.as_deref(), Timestamp::now())
        .await?;
    let cutoff = Timestamp::now()
        .checked_sub(SignedDuration::from_hours(
            24 * i64::from(options.retention_days.max(1)),
        ))
        .ok();
    if let Some(cutoff) = cutoff {
        store.prune_runs(cutoff).await?;
    }
    if let Some(error) = authentication_failure {
        return Err(MirrorError::Authentication(error));
    }
    Ok(RunReport {
        run_id,
        status,
        models: reports,
    })
}

fn failure_summary(reports: &[ModelReport]) -> String {
    reports
        .iter()
        .filter_map(|report| {
            report
                .error
                .as_ref()
                .map(|error| format!("{}: {error}", report.model))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compares the ids Odoo has with the mirror's. Rows whose record is gone get `deleted_at`
/// (and lose it if the record comes back). Rows whose record still exists but no longer
/// matches the model's domain — a mirrored confirmed order that was cancelled — are read
/// again and rewritten, since the change feed, which follows the domain, never sees them.
async fn reconcile<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    run_id: i64,
    model: &ModelConfig,
    fields: &[String],
    report: &mut ModelReport,
) -> Result<(), ModelFailure> {
    // Every id Odoo still has, archived or outside the filter: only a real deletion stamps
    // a row, not a record that was archived or stopped matching the domain.
    let existing = all_ids(client, &model.name, &odoo_rpc::Domain::all(), 10_000).await?;
    let (mirrored, _) = store.count(&model.name).await?;
    if existing.is_empty() && mirrored > 0 {
        // An empty listing is far more likely lost access (record rules, a changed API
        // user) than every record deleted: stamping the whole mirror would be wrong.
        tracing::warn!(model = %model.name, mirrored, "Odoo lists no record at all; deletion reconciliation skipped");
        return Ok(());
    }
    let counts = store
        .reconcile(run_id, &model.name, &existing, Timestamp::now())
        .await?;
    report.deleted = counts.deleted;
    report.restored = counts.restored;
    if model.domain == odoo_rpc::Domain::all() {
        return Ok(());
    }
    let matching: std::collections::HashSet<i64> =
        all_ids(client, &model.name, &model.domain, 10_000)
            .await?
            .into_iter()
            .collect();
    let existing: std::collections::HashSet<i64> = existing.into_iter().collect();
    let left: Vec<i64> = store
        .live_ids(&model.name)
        .await?
        .into_iter()
        .filter(|id| existing.contains(id) && !matching.contains(id))
        .collect();
    let Some(checkpoint) = store.checkpoint(&model.name).await? else {
        return Ok(());
    };
    for chunk in left.chunks(model.page_size.max(1)) {
        let options = odoo_rpc::SearchReadOptions::new(field("id").is_in(chunk.iter().copied()))
            .fields(fields.iter().map(String::as_str))
            .order("id asc")
            .context(Context::new().active_test(false));
        let rows = client
            .search_read(&model.name, &options)
            .await?
            .into_iter()
            .map(|record| mirror_row(&model.name, record, &model.cursor_field))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = store
            .apply_page(run_id, &model.name, &rows, checkpoint, Timestamp::now())
            .await?;
        report.left_filter += rows.len() as u64;
        report.fetched += rows.len() as u64;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        report.inserted += counts.inserted;
    }
    Ok(())
}

#[derive(Debug)]
enum ModelFailure {
    Odoo(odoo_rpc::Error),
    Feed(FeedError),
    Store(StoreError),
    /// A backfill reader task ended without a result (it panicked or was cancelled).
    Reader(String),
}

impl From<odoo_rpc::Error> for ModelFailure {
    fn from(error: odoo_rpc::Error) -> Self {
        ModelFailure::Odoo(error)
    }
}

impl From<FeedError> for ModelFailure {
    fn from(error: FeedError) -> Self {
        match error {
            FeedError::Odoo(error) => ModelFailure::Odoo(error),
            other => ModelFailure::Feed(other),
        }
    }
}

impl From<StoreError> for ModelFailure {
    fn from(error: StoreError) -> Self {
        ModelFailure::Store(error)
    }
}

/// Configured fields this server does not have, each with the closest existing name.
type MissingFields = Vec<(String, Option<String>)>;

/// Checks the configured fields once: the ones this server lacks (a typo, or removed in
/// this version) are reported with the closest existing name and left out of every read,
/// instead of failing every page. Returns the usable ones and the missing ones.
async fn usable_fields(
    client: &OdooClient,
    model: &ModelConfig,
) -> Result<(Vec<String>, MissingFields), odoo_rpc::Error> {
    let available = client.fields_get(&model.name).await?;
    let mut usable = Vec::with_capacity(model.fields.len());
    let mut missing = Vec::new();
    for name in &model.fields {
        if available.contains_key(name) {
            usable.push(name.clone());
        } else {
            let suggestion = closest(name, available.keys().map(String::as_str)).map(str::to_owned);
            tracing::warn!(
                model = %model.name, field = %name, suggestion = suggestion.as_deref().unwrap_or(""),
                "configured field does not exist on this Odoo; it is left out"
            );
            missing.push((name.clone(), suggestion));
        }
    }
    if !available.contains_key(&model.cursor_field) {
        return Err(odoo_rpc::Error::InvalidRequest {
            message: format!(
                "cursor_field {:?} does not exist on {}",
                model.cursor_field, model.name
            ),
        });
    }
    Ok((usable, missing))
}

/// How many records of `model` a run starting at `from` visits at most: the ones whose
/// cursor is at or after the checkpoint's second, archived ones included, and for a backfill
/// under way also the ones it has not reached yet.
async fn pending_count(
    client: &OdooClient,
    model: &ModelConfig,
    from: Option<Checkpoint>,
) -> Result<u64, odoo_rpc::Error> {
    let mut domain = model.domain.clone();
    if let Some(from) = from {
        let changed =
            field(model.cursor_field.as_str()).gte(odoo_rpc::value::format_datetime(from.second));
        domain = match from.backfill_done_through() {
            Some(done) => domain & (field("id").gt(done) | changed),
            None => domain & changed,
        };
    }
    client
        .search_count(
            &model.name,
            &domain,
            Some(&Context::new().active_test(false)),
        )
        .await
}

/// What a run would do for one model, found out without writing anything (`--dry-run`,
/// `config check`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelPlan {
    pub model: String,
    /// Where the run would start: the saved checkpoint rewound by the overlap.
    pub from: Option<Checkpoint>,
    /// Records the run would fetch at most.
    pub would_fetch: u64,
    /// Configured fields this server does not have, each with the closest existing name.
    pub missing_fields: Vec<(String, Option<String>)>,
    /// Why this model cannot be mirrored (unknown model, no cursor field, invalid domain…).
    pub error: Option<String>,
}

/// Checks every selected model against the live Odoo — the model exists, its fields and
/// cursor field exist, its domain is accepted — and counts what a run would fetch from
/// `checkpoints` (none: a full backfill). Reads only; an authentication failure stops it.
pub async fn plan(
    client: &OdooClient,
    models: &[ModelConfig],
    options: &RunOptions,
    checkpoints: &std::collections::HashMap<String, Checkpoint>,
) -> Result<Vec<ModelPlan>, MirrorError> {
    let mut plans = Vec::new();
    for model in models.iter().filter(|model| {
        options
            .only_model
            .as_deref()
            .is_none_or(|only| only == model.name)
    }) {
        let from = if options.full {
            None
        } else {
            checkpoints.get(&model.name).map(|checkpoint| {
                checkpoint.rewound(SignedDuration::from_secs(
                    i64::try_from(model.overlap_seconds).unwrap_or(i64::MAX),
                ))
            })
        };
        let mut plan = ModelPlan {
            model: model.name.clone(),
            from,
            ..ModelPlan::default()
        };
        let checked = match usable_fields(client, model).await {
            Ok((_, missing)) => {
                plan.missing_fields = missing;
                pending_count(client, model, from).await
            }
            Err(error) => Err(error),
        };
        match checked {
            Ok(count) => plan.would_fetch = count,
            Err(error) if error.is_authentication() => {
                return Err(MirrorError::Authentication(error));
            }
            Err(error) => plan.error = Some(error.to_string()),
        }
        plans.push(plan);
    }
    Ok(plans)
}

async fn sync_model<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    run_id: i64,
    model: &ModelConfig,
    options: &RunOptions,
    progress: &dyn Progress,
    report: &mut ModelReport,
) -> Result<(), ModelFailure> {
    if options.full {
        store.reset_checkpoint(&model.name).await?;
    }
    let overlap =
        SignedDuration::from_secs(i64::try_from(model.overlap_seconds).unwrap_or(i64::MAX));
    let from = store
        .checkpoint(&model.name)
        .await?
        .map(|checkpoint| checkpoint.rewound(overlap));
    // Reading starts at once with the configured fields: Odoo refuses a read naming a field
    // it does not have (or ordering by one), so `fields_get` — the slowest call of a start,
    // a third of a second for res.partner on a real Odoo 18 — is only asked when a read
    // fails, to tell which configured field is missing. Nothing is written by then: the
    // model is read again without it.
    let announced = AtomicBool::new(false);
    let attempt = Attempt {
        client,
        store,
        run_id,
        model,
        from,
        progress,
        announced: &announced,
    };
    let fields = match attempt.run(model.fields.clone(), report).await {
        Ok(()) => model.fields.clone(),
        Err(ModelFailure::Odoo(error)) if !error.is_authentication() => {
            // A check that fails (an unknown model, no cursor field) explains more.
            let (fields, missing) = usable_fields(client, model).await?;
            if missing.is_empty() {
                return Err(ModelFailure::Odoo(error));
            }
            report.missing_fields = missing;
            attempt.run(fields.clone(), report).await?;
            fields
        }
        Err(error) => return Err(error),
    };
    if model.reconcile_deletions && run_id % i64::from(model.reconcile_every_runs.max(1)) == 0 {
        reconcile(client, store, run_id, model, &fields, report).await?;
    }
    Ok(())
}

/// One model's pages, read with a given field list.
struct Attempt<'a, S> {
    client: &'a OdooClient,
    store: &'a S,
    run_id: i64,
    model: &'a ModelConfig,
    /// The saved checkpoint, rewound by the overlap.
    from: Option<Checkpoint>,
    progress: &'a dyn Progress,
    /// Whether the model was announced to `progress` (once, whatever the attempts).
    announced: &'a AtomicBool,
}

impl<S: MirrorStore> Attempt<'_, S> {
    async fn run(&self, fields: Vec<String>, report: &mut ModelReport) -> Result<(), ModelFailure> {
        let (client, model, from) = (self.client, self.model, self.from);
        let mut spec = FeedSpec::new(model.name.clone());
        spec.fields = fields;
        spec.domain = model.domain.clone();
        spec.cursor_field = model.cursor_field.clone();
        spec.page_size = model.page_size;
        // Without a checkpoint, or with a backfill under way, the model is read by id.
        let backfill_after = match from {
            None => Some(0),
            Some(checkpoint) => checkpoint.backfill_done_through(),
        };
        // The count for the progress bar and a backfill's bounds do not depend on each
        // other. The model is announced as soon as its count is known, before any read of
        // its records has answered.
        let counted = async {
            // The count only feeds the progress bar and the backfill's range size: without
            // it both still work.
            let total = pending_count(client, model, from).await.ok();
            if !self.announced.swap(true, Ordering::Relaxed) {
                self.progress.model_started(&model.name, total);
            }
            total
        };
        let bounds = async {
            match backfill_after {
                Some(_) => backfill_bounds(client, &spec).await.map(Some),
                None => Ok(None),
            }
        };
        let (total, bounds) = tokio::join!(counted, bounds);
        let bounds = bounds?;
        let backfill = backfill_after.zip(bounds).and_then(|(after, bounds)| {
            // A backfill resumed after a crash keeps the high-water mark it started with:
            // what changed since then below its progress must still come through the feed.
            let high_water = from
                .map(|checkpoint| checkpoint.second)
                .or(bounds.high_water)?;
            Some((after, high_water, bounds))
        });
        let (store, run_id, progress) = (self.store, self.run_id, self.progress);
        match backfill {
            Some((after, high_water, BackfillBounds { last_id, .. })) => {
                let plan = BackfillPlan {
                    run_id,
                    high_water,
                    after,
                    last_id: last_id.unwrap_or(after),
                    expected: total,
                    parallelism: model.parallelism.max(1),
                };
                let read_at_high_water =
                    run_backfill(client, store, model, &spec, &plan, progress, report).await?;
                let feed = ChangeFeed::within_second(client, spec, high_water, read_at_high_water);
                follow(store, run_id, model, feed, progress, report).await
            }
            // A model with no record yet has nothing to backfill: the feed reads what comes.
            None => {
                let feed = ChangeFeed::new(client, spec, from);
                follow(store, run_id, model, feed, progress, report).await
            }
        }
    }
}

/// Writes every page of `feed` with its checkpoint, then the feed's final position when the
/// last page did not carry it (the queries after it found nothing more).
async fn follow<S: MirrorStore>(
    store: &S,
    run_id: i64,
    model: &ModelConfig,
    mut feed: ChangeFeed<'_>,
    progress: &dyn Progress,
    report: &mut ModelReport,
) -> Result<(), ModelFailure> {
    let mut saved = None;
    // The next page is fetched while the current one is written, so a run takes about as
    // long as the slower of reading and writing, not their sum. At most two pages are held.
    let mut next = feed.next_page().await?;
    while let Some(page) = next {
        let rows = page
            .records
            .into_iter()
            .map(|record| mirror_row(&model.name, record, &model.cursor_field))
            .collect::<Result<Vec<_>, _>>()?;
        let synced_at = Timestamp::now();
        let write = store.apply_page(run_id, &model.name, &rows, page.checkpoint, synced_at);
        let (written, fetched) = tokio::join!(write, feed.next_page());
        let counts = written?;
        saved = Some(page.checkpoint);
        report.pages += 1;
        report.fetched += rows.len() as u64;
        report.inserted += counts.inserted;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        progress.page_written(report);
        next = fetched?;
    }
    // Every page is committed by now, so the position (after them) is safe to store.
    if let Some(position) = feed.position()
        && Some(position) != saved
    {
        store.save_checkpoint(&model.name, position).await?;
    }
    Ok(())
}

/// A backfill's id ranges hold about this many pages each: readers take them in id order, and
/// a crash repeats at most one range per reader.
const PAGES_PER_RANGE: u64 = 8;

/// What a backfill by id reads: ids `after < id <= last_id`, then the feed takes over at
/// `high_water`.
#[derive(Debug, Clone, Copy)]
struct BackfillPlan {
    run_id: i64,
    high_water: Timestamp,
    after: i64,
    last_id: i64,
    /// About how many records that is (`search_count`), to size the id ranges.
    expected: Option<u64>,
    parallelism: usize,
}

impl BackfillPlan {
    /// Ids per range: `PAGES_PER_RANGE` pages' worth at the model's density of ids.
    fn span(&self, page_size: usize) -> i64 {
        let ids = self.last_id.saturating_sub(self.after).max(1);
        let records = self.expected.unwrap_or(ids as u64).max(1);
        let per_range = PAGES_PER_RANGE.saturating_mul(page_size.max(1) as u64);
        let span = (per_range as u128 * ids as u128).div_ceil(records as u128);
        i64::try_from(span).unwrap_or(i64::MAX).clamp(1, ids)
    }
}

/// One range's progress, from a reader to the writer: ids `start < id <= through` of the
/// range `(start, end]` are read, `rows` being the latest of them.
#[derive(Debug)]
struct RangePage {
    start: i64,
    end: i64,
    through: i64,
    rows: Vec<MirrorRow>,
}

/// Hands out id ranges in ascending order, so that the ranges done form a growing prefix.
#[derive(Debug)]
struct Ranges {
    next: Mutex<i64>,
    last_id: i64,
    span: i64,
    readers: i64,
}

impl Ranges {
    fn take(&self) -> Option<(i64, i64)> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if *next >= self.last_id {
            return None;
        }
        let start = *next;
        // Near the end the ranges shrink (down to a page's worth), so that the readers
        // finish together instead of one reading the last long range alone.
        let remaining = self.last_id - start;
        let page = (self.span / PAGES_PER_RANGE as i64).max(1);
        let span = self.span.min((remaining / self.readers).max(page));
        let end = start.saturating_add(span).min(self.last_id);
        *next = end;
        Some((start, end))
    }
}

/// Which ids are stored, as the writer knows it: ranges complete from `plan.after` up to
/// `complete`, and the progress of the ranges above, not contiguous yet.
#[derive(Debug)]
struct Stored {
    complete: i64,
    /// start → (through, end)
    partial: BTreeMap<i64, (i64, i64)>,
}

impl Stored {
    /// Notes a range's progress; returns the id up to which every record is stored.
    fn advance(&mut self, start: i64, through: i64, end: i64) -> i64 {
        self.partial.insert(start, (through, end));
        while let Some(&(through, end)) = self.partial.get(&self.complete) {
            if through < end {
                return through;
            }
            self.partial.remove(&self.complete);
            self.complete = end;
        }
        self.complete
    }
}

/// Reads ids `(plan.after, plan.last_id]` with `plan.parallelism` readers, each taking the
/// next id range and reading it page by page, and writes every page from here, in the order
/// they arrive, each in one transaction with the checkpoint [`Checkpoint::backfill`] of the
/// id up to which *all* ranges are stored: a range half done above a range not finished is
/// read again after a crash, never skipped. Returns the ids read whose cursor second is the
/// high-water mark, which the feed then leaves out.
async fn run_backfill<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    model: &ModelConfig,
    spec: &FeedSpec,
    plan: &BackfillPlan,
    progress: &dyn Progress,
    report: &mut ModelReport,
) -> Result<Vec<i64>, ModelFailure> {
    let ranges = Arc::new(Ranges {
        next: Mutex::new(plan.after),
        last_id: plan.last_id,
        span: plan.span(spec.page_size),
        readers: i64::try_from(plan.parallelism).unwrap_or(1).max(1),
    });
    // Readers wait when the writer is this many pages behind: memory stays flat.
    let (sender, mut pages) = mpsc::channel::<Result<RangePage, FeedError>>(plan.parallelism);
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..plan.parallelism {
        readers.spawn(read_ranges(
            client.clone(),
            spec.clone(),
            Arc::clone(&ranges),
            sender.clone(),
        ));
    }
    drop(sender);
    let high_water = truncate(plan.high_water);
    let mut read_at_high_water = Vec::new();
    let mut stored = Stored {
        complete: plan.after,
        partial: BTreeMap::new(),
    };
    // Dropping `readers` on an early return aborts them.
    while let Some(page) = pages.recv().await {
        let page = page?;
        let done_through = stored.advance(page.start, page.through, page.end);
        if page.rows.is_empty() {
            continue;
        }
        read_at_high_water.extend(
            page.rows
                .iter()
                .filter(|row| row.write_date.map(truncate) == Some(high_water))
                .map(|row| row.odoo_id),
        );
        let checkpoint = Checkpoint::backfill(plan.high_water, done_through);
        let counts = store
            .apply_page(
                plan.run_id,
                &model.name,
                &page.rows,
                checkpoint,
                Timestamp::now(),
            )
            .await?;
        report.pages += 1;
        report.fetched += page.rows.len() as u64;
        report.inserted += counts.inserted;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        progress.page_written(report);
    }
    while let Some(ended) = readers.join_next().await {
        ended
            .map_err(|error| ModelFailure::Reader(format!("a backfill reader stopped: {error}")))?;
    }
    Ok(read_at_high_water)
}

/// One backfill reader: takes id ranges until none is left and sends each page read, turned
/// into rows (hashing happens here, in parallel, not in the writer).
async fn read_ranges(
    client: OdooClient,
    spec: FeedSpec,
    ranges: Arc<Ranges>,
    pages: mpsc::Sender<Result<RangePage, FeedError>>,
) {
    let page_size = spec.page_size.max(1);
    while let Some((start, end)) = ranges.take() {
        let mut after = start;
        loop {
            let read = id_page(&client, &spec, after, end)
                .await
                .and_then(|records| {
                    let full = records.len() >= page_size;
                    let rows = records
                        .into_iter()
                        .map(|record| mirror_row(&spec.model, record, &spec.cursor_field))
                        .collect::<Result<Vec<_>, _>>()?;
                    let last = rows.last().map(|row| row.odoo_id);
                    Ok((rows, full, last))
                });
            let (rows, through) = match read {
                Ok((rows, true, Some(last))) if last < end => (rows, last),
                Ok((rows, _, _)) => (rows, end),
                Err(error) => {
                    let _ = pages.send(Err(error)).await;
                    return;
                }
            };
            let page = RangePage {
                start,
                end,
                through,
                rows,
            };
            if pages.send(Ok(page)).await.is_err() {
                // The writer stopped: nothing more to do.
                return;
            }
            if through == end {
                break;
            }
            after = through;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{content_hash, write_canonical};
    use rand::{RngExt as _, SeedableRng};
    use serde_json::{Value, json};

    fn assert_canonical(value: &Value) {
        let mut ours = Vec::new();
        write_canonical(value, &mut ours);
        let reference = serde_json_canonicalizer::to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&reference),
            "for {value}"
        );
    }

    #[test]
    fn canonical_json_is_byte_for_byte_the_reference_implementations() {
        let spec = odoo_sim::bench_model::BenchSpec::new(2_000, 60, 7);
        for id in 1..=2_000 {
            assert_canonical(&spec.read_json(id));
        }
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.1 + 0.2,
            29.95,
            4.35,
            5.0,
            1e21,
            1e20,
            123_456_789_012_345_680_000.0,
            1e-6,
            1e-7,
            1.5e-7,
            0.000_001_234,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            9_007_199_254_740_993.0,
            -333_333.333_333,
        ];
        for number in edges {
            assert_canonical(&json!(number));
        }
        for number in [0_i64, -1, 42, i64::MAX, i64::MIN, 9_007_199_254_740_993] {
            assert_canonical(&json!(number));
        }
        assert_canonical(&json!(u64::MAX));
        let mut random = rand::rngs::StdRng::seed_from_u64(8785);
        for _ in 0..100_000 {
            let number = f64::from_bits(random.random::<u64>());
            if number.is_finite() {
                assert_canonical(&json!(number));
            }
            let decimal = (random.random_range(-1_000_000_000_i64..1_000_000_000) as f64)
                / 10f64.powi(random.random_range(0..12));
            assert_canonical(&json!(decimal));
        }
        let text = "quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} é 東京 😀 \u{e000}";
        assert_canonical(&json!(text));
        assert_canonical(&json!({
            "b": [1, 2.5, {"z": null, "a": [true, false, []], "": {}}],
            "a": text,
            "\u{e000}": 1,
            "😀": 2,
            "\u{1}": 3,
            "é": 4,
            "e": 5,
            "aa": 6,
        }));
    }

    #[test]
    fn the_hash_ignores_key_order_and_sees_every_change() {
        let a = json!({"id": 1, "name": "Zoë", "partner_id": [3, "Nile"], "amount": 29.95});
        let b = json!({"amount": 29.95, "partner_id": [3, "Nile"], "name": "Zoë", "id": 1});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 64);
        let changed = json!({"id": 1, "name": "Zoe", "partner_id": [3, "Nile"], "amount": 29.95});
        assert_ne!(content_hash(&a), content_hash(&changed));
        assert_ne!(
            content_hash(&a),
            content_hash(
                &json!({"id": 1, "name": "Zoë", "partner_id": [3, "Nile"], "amount": 29.96})
            )
        );
    }
}
