//! The mirror flow (seed 003): copy configured Odoo models into a store, incrementally.
//!
//! One run: check every selected model against the live Odoo before writing anything (a field
//! it does not have, a cursor field or domain it refuses stops the run with the store
//! untouched), take the lock (or stop at once), open a run row, then for each model in turn
//! read it — by id with parallel readers when there is no checkpoint (a backfill), then by
//! its change feed from the saved checkpoint minus the overlap — and write every page
//! together with its checkpoint in one transaction. A model's failure is recorded and the
//! next model still runs; an authentication failure stops the run, since every later call
//! would fail the same way.
//!
//! `config check` and `sync --dry-run` run the same checks ([`plan`]), so all three give the
//! same verdict about a configuration.

use crate::change_feed::{
    BackfillBounds, ChangeFeed, Checkpoint, FeedError, FeedSpec, all_ids, backfill_bounds, id_page,
    truncate,
};
use crate::clock::Clock;
use crate::config::{ConfigError, MirrorConfig, ModelConfig, closest};
use crate::mirror_store::{MirrorRow, MirrorStore, RunStatus, StoreError};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{Context, OdooClient, OdooErrorKind, Record, ServerVersion, WerkzeugKind, field};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
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
    /// The configuration asks this Odoo for something it does not have; nothing was written.
    #[error("{}", configuration_summary(.0))]
    Configuration(Vec<ConfigProblem>),
}

fn configuration_summary(problems: &[ConfigProblem]) -> String {
    let mut text = format!(
        "the configuration does not match this Odoo ({} problem(s)); nothing was mirrored:",
        problems.len()
    );
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

/// Why a configured model cannot be mirrored from this Odoo as written. Found before a run
/// writes anything, by the same checks in `sync`, `sync --dry-run` and `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// Odoo refuses the model itself: not installed, misspelt, or not readable by the user.
    Model { model: String, reason: String },
    /// A configured field this Odoo does not have, and that no Odoo release is known to have
    /// removed: a typo. Mirroring without it would rewrite every stored row without it.
    UnknownField {
        model: String,
        field: String,
        suggestion: Option<String>,
    },
    /// The cursor field does not exist: the change feed cannot follow the model.
    CursorField {
        model: String,
        field: String,
        suggestion: Option<String>,
    },
    /// Odoo refuses the model's domain (a field or operator it does not know).
    Domain { model: String, reason: String },
}

impl ConfigProblem {
    pub fn model(&self) -> &str {
        match self {
            ConfigProblem::Model { model, .. }
            | ConfigProblem::UnknownField { model, .. }
            | ConfigProblem::CursorField { model, .. }
            | ConfigProblem::Domain { model, .. } => model,
        }
    }

    /// This problem as an error positioned on the line of `config` to fix.
    pub fn located(&self, config: &MirrorConfig) -> ConfigError {
        let locations = config.locations(self.model());
        let location = locations.and_then(|at| match self {
            ConfigProblem::Model { .. } => Some(at.name),
            ConfigProblem::UnknownField { field, .. } => at.fields.get(field).copied(),
            ConfigProblem::CursorField { .. } => at.cursor_field.or(Some(at.name)),
            ConfigProblem::Domain { .. } => at.domain,
        });
        config.error_at(location, self.to_string())
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|suggestion| format!(" (did you mean `{suggestion}`?)"))
        .unwrap_or_default()
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::Model { model, reason } => {
                write!(f, "{model}: Odoo refuses this model: {reason}")
            }
            ConfigProblem::UnknownField {
                model,
                field,
                suggestion,
            } => write!(
                f,
                "{model}: field `{field}` does not exist on this Odoo{}; correct it or remove it from `fields`",
                did_you_mean(suggestion.as_deref())
            ),
            ConfigProblem::CursorField {
                model,
                field,
                suggestion,
            } => write!(
                f,
                "{model}: cursor_field `{field}` does not exist on this Odoo{}",
                did_you_mean(suggestion.as_deref())
            ),
            ConfigProblem::Domain { model, reason } => {
                write!(f, "{model}: Odoo refuses the domain: {reason}")
            }
        }
    }
}

/// An Odoo release, as `(major, minor)`: `18.0` is `(18, 0)`, Odoo Online's `saas~18.2` is
/// `(18, 2)`, so releases compare in the order Odoo shipped them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

impl Release {
    const fn new(major: u32, minor: u32) -> Release {
        Release { major, minor }
    }

    pub fn of(version: &ServerVersion) -> Release {
        Release::new(version.major, version.minor)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{}.0", self.major)
        } else {
            write!(f, "saas~{}.{}", self.major, self.minor)
        }
    }
}

/// When Odoo added or removed a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldChange {
    /// The first release that has the field.
    Added(Release),
    /// The first release without the field.
    Removed(Release),
}

impl FieldChange {
    /// Whether a server of `release` lacks the field.
    fn lacks(self, release: Release) -> bool {
        match self {
            FieldChange::Added(since) => release < since,
            FieldChange::Removed(gone) => release >= gone,
        }
    }
}

/// A standard field that exists only in some Odoo releases. A configured field on this list
/// that the server lacks because of its release is left out with a warning, so that one
/// configuration serves every version (seed 003's example runs on 16 and on 19); any other
/// missing field is refused as a typo.
struct VersionedField {
    model: &'static str,
    field: &'static str,
    change: FieldChange,
    /// Where its data lives in the releases without it, when somewhere.
    instead: Option<&'static str>,
}

const fn removed(
    model: &'static str,
    field: &'static str,
    major: u32,
    minor: u32,
    instead: Option<&'static str>,
) -> VersionedField {
    VersionedField {
        model,
        field,
        change: FieldChange::Removed(Release::new(major, minor)),
        instead,
    }
}

const fn added(
    model: &'static str,
    field: &'static str,
    major: u32,
    minor: u32,
    instead: Option<&'static str>,
) -> VersionedField {
    VersionedField {
        model,
        field,
        change: FieldChange::Added(Release::new(major, minor)),
        instead,
    }
}

/// Each entry was checked against Odoo's own source, the real Odoo 18 of the test machine or
/// the facts in ARCHITECTURE.md.
#[rustfmt::skip]
const VERSIONED_FIELDS: &[VersionedField] = &[
    // 17.0 replaced the "done" quantity and the reservation by `quantity` + `picked`.
    removed("stock.move", "quantity_done", 17, 0, Some("quantity")),
    removed("stock.move", "reserved_availability", 17, 0, Some("quantity")),
    added("stock.move", "quantity", 17, 0, Some("quantity_done")),
    added("stock.move", "picked", 17, 0, None),
    // 18.0 folded the detailed product type into `type` and the `is_storable` flag.
    removed("product.template", "detailed_type", 18, 0, Some("type")),
    removed("product.product", "detailed_type", 18, 0, Some("type")),
    added("product.template", "is_storable", 18, 0, Some("detailed_type")),
    added("product.product", "is_storable", 18, 0, Some("detailed_type")),
    // saas~18.1 renamed the order lines' unit of measure (odoo/odoo#186250).
    removed("sale.order.line", "product_uom", 18, 1, Some("product_uom_id")),
    added("sale.order.line", "product_uom_id", 18, 1, Some("product_uom")),
    removed("purchase.order.line", "product_uom", 18, 1, Some("product_uom_id")),
    added("purchase.order.line", "product_uom_id", 18, 1, Some("product_uom")),
    // saas~18.2 dropped the partner's second phone number.
    removed("res.partner", "mobile", 18, 2, Some("phone")),
];

/// A configured field this server does not have because of its release; read without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOutField {
    pub model: String,
    pub field: String,
    /// This server's version, as it reports it (`19.0`, `saas~18.2+e`).
    pub server: String,
    pub change: FieldChange,
    /// Where its data lives on this server, when somewhere.
    pub instead: Option<&'static str>,
}

impl fmt::Display for LeftOutField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (change, release) = match self.change {
            FieldChange::Added(release) => ("added", release),
            FieldChange::Removed(release) => ("removed", release),
        };
        write!(
            f,
            "{}.{} is left out: Odoo {change} it in {release} and this server runs {}",
            self.model, self.field, self.server
        )?;
        if let Some(instead) = self.instead {
            write!(f, " (its data is in `{instead}` there)")?;
        }
        Ok(())
    }
}

/// The known change that makes a server of `release` lack `model.field`, if any.
fn versioned_absence(
    model: &str,
    field: &str,
    release: Release,
) -> Option<&'static VersionedField> {
    VERSIONED_FIELDS
        .iter()
        .find(|known| known.model == model && known.field == field && known.change.lacks(release))
}

/// What the live Odoo says about one configured model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCheck {
    pub model: String,
    /// The fields to read: the configured ones this Odoo has (empty: every field).
    pub fields: Vec<String>,
    /// Configured fields this release does not have; read without them, with a warning.
    pub left_out: Vec<LeftOutField>,
    /// Why the model cannot be mirrored as configured; empty when it can.
    pub problems: Vec<ConfigProblem>,
}

/// Whether Odoo refused a check because of what the configuration asks (a model that is not
/// there or not readable, a field or domain it does not know), rather than failing for a
/// while (network, load) or refusing the credentials.
fn refuses_configuration(error: &odoo_rpc::Error) -> bool {
    error.odoo().is_some_and(|odoo| {
        matches!(
            odoo.kind,
            OdooErrorKind::UserError
                | OdooErrorKind::AccessError
                | OdooErrorKind::ValueError
                | OdooErrorKind::ValidationError
                | OdooErrorKind::MissingError
                | OdooErrorKind::Werkzeug(WerkzeugKind::NotFound)
        )
    })
}

/// Checks one configured model against the live Odoo: the model, every field, the cursor
/// field and the domain. Reads only. `Err` is Odoo failing to answer (or refusing the
/// credentials); what the configuration gets wrong is in [`ModelCheck::problems`].
pub async fn check_model(
    client: &OdooClient,
    model: &ModelConfig,
) -> Result<ModelCheck, odoo_rpc::Error> {
    let mut check = ModelCheck {
        model: model.name.clone(),
        ..ModelCheck::default()
    };
    let available = match client.fields_get(&model.name).await {
        Ok(available) => available,
        Err(error) if refuses_configuration(&error) => {
            check.problems.push(ConfigProblem::Model {
                model: model.name.clone(),
                reason: error.to_string(),
            });
            return Ok(check);
        }
        Err(error) => return Err(error),
    };
    let suggest =
        |name: &str| closest(name, available.keys().map(String::as_str)).map(str::to_owned);
    for name in &model.fields {
        if available.contains_key(name) {
            check.fields.push(name.clone());
            continue;
        }
        // Asked only now: the client caches the version, and most runs never need it.
        let version = client.server_version().await?;
        match versioned_absence(&model.name, name, Release::of(&version)) {
            Some(known) => check.left_out.push(LeftOutField {
                model: model.name.clone(),
                field: name.clone(),
                server: version.raw.clone(),
                change: known.change,
                instead: known.instead,
            }),
            None => check.problems.push(ConfigProblem::UnknownField {
                model: model.name.clone(),
                field: name.clone(),
                suggestion: suggest(name),
            }),
        }
    }
    if !available.contains_key(&model.cursor_field) {
        check.problems.push(ConfigProblem::CursorField {
            model: model.name.clone(),
            field: model.cursor_field.clone(),
            suggestion: suggest(&model.cursor_field),
        });
    }
    if model.domain != odoo_rpc::Domain::all() {
        // Odoo validates the whole domain before running it; `id = 0` keeps the count itself
        // to one index lookup, however large the model.
        let probe = model.domain.clone() & field("id").eq(0);
        let context = Context::new().active_test(false);
        match client
            .search_count(&model.name, &probe, Some(&context))
            .await
        {
            Ok(_) => {}
            Err(error) if refuses_configuration(&error) => {
                check.problems.push(ConfigProblem::Domain {
                    model: model.name.clone(),
                    reason: error.to_string(),
                });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(check)
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
    /// What stamps runs and rows and decides which runs are old enough to delete.
    pub clock: Clock,
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
    /// Configured fields this release of Odoo does not have; read without them.
    pub left_out: Vec<LeftOutField>,
    pub error: Option<String>,
    /// The Odoo client's error, when that is why the model failed: callers tell an Odoo they
    /// could not reach from one that answered with an error by its kind (the CLI's exit code).
    pub odoo_error: Option<odoo_rpc::Error>,
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
        Value::Number(number) => write_canonical_number(number, out),
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
            // Below U+E000, UTF-8 bytes sort as UTF-16 code units do, and comparing bytes
            // is several times cheaper: keys with no byte from 0xEE up take the fast way.
            if entries
                .iter()
                .all(|(key, _)| key.bytes().all(|byte| byte < 0xEE))
            {
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            } else {
                entries.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
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

/// A number in ECMAScript's layout, as RFC 8785 asks and `serde_json_canonicalizer` writes it:
/// every number is read as an IEEE double (integers too, exactly as it does) and printed by
/// `ryu-js`, which the reference implementation uses; integers a double holds exactly print
/// as their digits, without going through the double.
fn write_canonical_number(number: &serde_json::Number, out: &mut Vec<u8>) {
    const EXACT_INTEGERS: u64 = 1 << 53;
    if let Some(integer) = number.as_i64()
        && integer.unsigned_abs() <= EXACT_INTEGERS
    {
        out.extend_from_slice(itoa::Buffer::new().format(integer).as_bytes());
        return;
    }
    match number.as_f64() {
        Some(double) if double.is_finite() => {
            out.extend_from_slice(ryu_js::Buffer::new().format_finite(double).as_bytes());
        }
        // Only NaN and infinities are not finite, and a serde_json number is never one.
        _ => out.extend_from_slice(number.to_string().as_bytes()),
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
    Ok(MirrorRow::new(odoo_id, payload, write_date, content_hash))
}

/// The selected models: all of them, or only `--model`'s.
fn selected<'m>(models: &'m [ModelConfig], options: &RunOptions) -> Vec<&'m ModelConfig> {
    models
        .iter()
        .filter(|model| {
            options
                .only_model
                .as_deref()
                .is_none_or(|only| only == model.name)
        })
        .collect()
}

/// Runs the mirror once over `models`.
///
/// Every selected model is checked against the live Odoo first ([`check_model`]); if the
/// configuration asks for a field, cursor field or domain this Odoo does not have, the run
/// stops with [`MirrorError::Configuration`] before the store is touched. Fields that this
/// release of Odoo is known to lack are left out, with one warning each.
pub async fn run<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    models: &[ModelConfig],
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, MirrorError> {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    let mut refused = false;
    // The models are checked concurrently: a start waits for the slowest check, not their sum.
    let checks = futures_util::future::join_all(
        selected(models, options)
            .into_iter()
            .map(|model| async move { (model, check_model(client, model).await) }),
    )
    .await;
    for (model, check) in checks {
        refused = check
            .as_ref()
            .is_err_and(odoo_rpc::Error::is_authentication);
        if let Ok(check) = &check {
            problems.extend(check.problems.iter().cloned());
        }
        checked.push((model, check));
        if refused {
            // Refused credentials are recorded by the run, which stops at this model: every
            // further question would be refused alike.
            break;
        }
    }
    if !problems.is_empty() && !refused {
        return Err(MirrorError::Configuration(problems));
    }
    for (_, check) in &checked {
        for left_out in check.iter().flat_map(|check| &check.left_out) {
            tracing::warn!(model = %left_out.model, field = %left_out.field, server = %left_out.server, "{left_out}");
        }
    }
    store.migrate().await?;
    let lock = if options.use_lock {
        match store.try_lock().await? {
            Some(lock) => Some(lock),
            None => return Err(MirrorError::LockBusy),
        }
    } else {
        None
    };
    // Runs a dead process left `running` would stay so forever: found now, while this run
    // holds the lock (so no other run that takes it is alive), and marked interrupted.
    let stale_before = options
        .clock
        .now()
        .checked_sub(RUN_STALE_AFTER)
        // At the dawn of time no heartbeat can be older: none is taken for stale.
        .unwrap_or(Timestamp::MIN);
    let outcome = match store
        .interrupt_abandoned_runs(lock.is_some(), stale_before)
        .await
    {
        Ok(interrupted) => {
            if !interrupted.is_empty() {
                tracing::warn!(runs = ?interrupted, "runs left running by a process that stopped were marked interrupted");
            }
            run_locked(client, store, checked, options, progress, lock.is_some()).await
        }
        Err(error) => Err(error.into()),
    };
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
    checked: Vec<(&ModelConfig, Result<ModelCheck, odoo_rpc::Error>)>,
    options: &RunOptions,
    progress: &dyn Progress,
    holds_lock: bool,
) -> Result<RunReport, MirrorError> {
    let started_at = options.clock.now();
    let run_id = store.start_run(started_at, holds_lock).await?;
    // The heartbeat goes on beside the models, in this task: it stops with the run, and a
    // run without the lock is judged alive by it (`interrupt_abandoned_runs`). At a fixed
    // rate from the start, so a slow write does not push the later beats back.
    let beat = async {
        let mut next = started_at;
        loop {
            next = crate::clock::later(next, RUN_HEARTBEAT_EVERY);
            options.clock.sleep_until(next).await;
            if let Err(error) = store.beat_run(run_id, options.clock.now()).await {
                tracing::warn!(error = %error, run = run_id, "cannot write the run's heartbeat");
            }
        }
    };
    tokio::select! {
        outcome = run_models(client, store, run_id, checked, options, progress) => outcome,
        never = beat => match never {},
    }
}

/// The heartbeat of a running mirror run: how often it is written.
pub const RUN_HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A run without the lock whose heartbeat is older than this is taken for dead (ten missed
/// beats: a store too slow to take a beat for five minutes is down anyway).
pub const RUN_STALE_AFTER: SignedDuration = SignedDuration::from_mins(5);

async fn run_models<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    run_id: i64,
    checked: Vec<(&ModelConfig, Result<ModelCheck, odoo_rpc::Error>)>,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, MirrorError> {
    let run = ModelRun {
        client,
        store,
        run_id,
        options,
        progress,
    };
    let mut reports = Vec::with_capacity(checked.len());
    let mut authentication_failure = None;
    for (model, check) in checked {
        let mut report = ModelReport {
            model: model.name.clone(),
            ..ModelReport::default()
        };
        let outcome = match check {
            Ok(check) => {
                report.left_out = check.left_out;
                sync_model(&run, model, check.fields, &mut report).await
            }
            Err(error) => Err(ModelFailure::Odoo(error)),
        };
        match outcome {
            Ok(()) => {}
            Err(ModelFailure::Store(error)) => {
                // The store itself failing (disk full, database gone) ends the run.
                report.error = Some(error.to_string());
                reports.push(report);
                let summary = failure_summary(&reports);
                let _ = store
                    .finish_run(
                        run_id,
                        RunStatus::Failed,
                        Some(&summary),
                        options.clock.now(),
                    )
                    .await;
                return Err(MirrorError::Store(error));
            }
            Err(ModelFailure::Odoo(error)) if error.is_authentication() => {
                report.error = Some(error.to_string());
                authentication_failure = Some(error);
            }
            Err(ModelFailure::Odoo(error)) => {
                report.error = Some(error.to_string());
                report.odoo_error = Some(error);
            }
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
        .finish_run(run_id, status, summary.as_deref(), options.clock.now())
        .await?;
    let cutoff = options
        .clock
        .now()
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

/// The run's error text: one line per distinct error, naming the models that had it (a
/// network failure hits every model alike and is said once).
fn failure_summary(reports: &[ModelReport]) -> String {
    let mut lines: Vec<(Vec<&str>, &str)> = Vec::new();
    for report in reports {
        let Some(error) = report.error.as_deref() else {
            continue;
        };
        match lines.iter_mut().find(|(_, seen)| *seen == error) {
            Some((models, _)) => models.push(&report.model),
            None => lines.push((vec![&report.model], error)),
        }
    }
    lines
        .iter()
        .map(|(models, error)| format!("{}: {error}", models.join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares the ids Odoo has with the mirror's. Rows whose record is gone get `deleted_at`
/// (and lose it if the record comes back). Rows whose record still exists but no longer
/// matches the model's domain — a mirrored confirmed order that was cancelled — are read
/// again and rewritten, since the change feed, which follows the domain, never sees them.
async fn reconcile<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    clock: &Clock,
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
        .reconcile(run_id, &model.name, &existing, clock.now())
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
            .apply_page(run_id, &model.name, &rows, checkpoint, clock.now())
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
    /// Configured fields this release of Odoo does not have; a run reads without them.
    pub left_out: Vec<LeftOutField>,
    /// What the configuration gets wrong for this Odoo: a run refuses to start.
    pub problems: Vec<ConfigProblem>,
    /// Odoo failed to answer the checks (network, server error): a run would fail this model.
    pub error: Option<String>,
    /// The Odoo client's error behind `error`, for callers that tell its kinds apart.
    pub odoo_error: Option<odoo_rpc::Error>,
}

/// Checks every selected model against the live Odoo exactly as a run does ([`check_model`])
/// and counts what a run would fetch from `checkpoints` (none: a full backfill). Reads only;
/// an authentication failure stops it.
pub async fn plan(
    client: &OdooClient,
    models: &[ModelConfig],
    options: &RunOptions,
    checkpoints: &HashMap<String, Checkpoint>,
) -> Result<Vec<ModelPlan>, MirrorError> {
    // Each model's checks and count are independent of the others': asked concurrently.
    let planned = futures_util::future::join_all(
        selected(models, options)
            .into_iter()
            .map(|model| plan_model(client, model, options, checkpoints)),
    )
    .await;
    let mut plans = Vec::with_capacity(planned.len());
    for plan in planned {
        plans.push(plan.map_err(MirrorError::Authentication)?);
    }
    Ok(plans)
}

/// One model's [`plan`]; `Err` only for refused credentials.
async fn plan_model(
    client: &OdooClient,
    model: &ModelConfig,
    options: &RunOptions,
    checkpoints: &HashMap<String, Checkpoint>,
) -> Result<ModelPlan, odoo_rpc::Error> {
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
    let counted = match check_model(client, model).await {
        Ok(check) => {
            plan.left_out = check.left_out;
            plan.problems = check.problems;
            if plan.problems.is_empty() {
                pending_count(client, model, from).await.map(Some)
            } else {
                Ok(None)
            }
        }
        Err(error) => Err(error),
    };
    match counted {
        Ok(count) => plan.would_fetch = count.unwrap_or(0),
        Err(error) if error.is_authentication() => return Err(error),
        Err(error) => {
            plan.error = Some(error.to_string());
            plan.odoo_error = Some(error);
        }
    }
    Ok(plan)
}

/// What every model of one run shares.
struct ModelRun<'a, S> {
    client: &'a OdooClient,
    store: &'a S,
    run_id: i64,
    options: &'a RunOptions,
    progress: &'a dyn Progress,
}

/// Mirrors one checked model: `fields` are the ones to read ([`ModelCheck::fields`]).
async fn sync_model<S: MirrorStore>(
    run: &ModelRun<'_, S>,
    model: &ModelConfig,
    fields: Vec<String>,
    report: &mut ModelReport,
) -> Result<(), ModelFailure> {
    let ModelRun {
        client,
        store,
        run_id,
        options,
        progress,
    } = *run;
    if options.full {
        store.reset_checkpoint(&model.name).await?;
    }
    let overlap =
        SignedDuration::from_secs(i64::try_from(model.overlap_seconds).unwrap_or(i64::MAX));
    let from = store
        .checkpoint(&model.name)
        .await?
        .map(|checkpoint| checkpoint.rewound(overlap));
    let announced = AtomicBool::new(false);
    let attempt = Attempt {
        client,
        store,
        clock: &options.clock,
        run_id,
        model,
        from,
        progress,
        announced: &announced,
    };
    attempt.run(fields.clone(), report).await?;
    if model.reconcile_deletions && run_id % i64::from(model.reconcile_every_runs.max(1)) == 0 {
        reconcile(
            client,
            store,
            &options.clock,
            run_id,
            model,
            &fields,
            report,
        )
        .await?;
    }
    Ok(())
}

/// One model's pages, read with a given field list.
struct Attempt<'a, S> {
    client: &'a OdooClient,
    store: &'a S,
    clock: &'a Clock,
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
                let read_at_high_water = run_backfill(
                    client, store, self.clock, model, &spec, &plan, progress, report,
                )
                .await?;
                let feed = ChangeFeed::within_second(client, spec, high_water, read_at_high_water);
                follow(store, self.clock, run_id, model, feed, progress, report).await
            }
            // A model with no record yet has nothing to backfill: the feed reads what comes.
            None => {
                let feed = ChangeFeed::new(client, spec, from);
                follow(store, self.clock, run_id, model, feed, progress, report).await
            }
        }
    }
}

/// Writes every page of `feed` with its checkpoint, then the feed's final position when the
/// last page did not carry it (the queries after it found nothing more).
async fn follow<S: MirrorStore>(
    store: &S,
    clock: &Clock,
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
        let synced_at = clock.now();
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
#[allow(clippy::too_many_arguments)]
async fn run_backfill<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    clock: &Clock,
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
                clock.now(),
            )
            .await?;
        report.pages += 1;
        report.fetched += page.rows.len() as u64;
        report.inserted += counts.inserted;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        progress.page_written(report);
        // Freeing a page's JSON trees was a third of the writer's own CPU (profiled): it is
        // done beside the writer, which every page waits for, not by it.
        tokio::task::spawn_blocking(move || drop(page));
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
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
        let exact = 1_i64 << 53;
        for number in [
            0_i64,
            -1,
            42,
            i64::MAX,
            i64::MIN,
            exact,
            exact + 1,
            -exact,
            -exact - 1,
        ] {
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
            assert_canonical(&json!(random.random::<i64>() >> random.random_range(0..64)));
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
        // Keys all below U+E000 (sorted by bytes), then one above among them.
        assert_canonical(&json!({"é": 1, "z": 2, "\u{d7ff}": 3, "Z": 4}));
        assert_canonical(&json!({"é": 1, "z": 2, "\u{ffff}": 3, "😀": 4}));
    }

    #[test]
    fn releases_compare_in_shipping_order_and_print_as_odoo_names_them() {
        let parse = |raw: &str| Release::of(&ServerVersion::parse(raw).unwrap());
        assert!(parse("17.0+e") < parse("18.0"));
        assert!(parse("18.0") < parse("saas~18.1"));
        assert!(parse("saas~18.2+e") < parse("19.0"));
        assert_eq!(parse("saas~18.2+e").to_string(), "saas~18.2");
        assert_eq!(parse("19.0").to_string(), "19.0");
    }

    #[test]
    fn only_fields_a_release_is_known_to_lack_are_excused() {
        let mobile = |raw: &str| {
            versioned_absence(
                "res.partner",
                "mobile",
                Release::of(&ServerVersion::parse(raw).unwrap()),
            )
            .is_some()
        };
        assert!(
            !mobile("18.0"),
            "18.0 has mobile: missing there, it is a mistake"
        );
        assert!(mobile("saas~18.2+e"));
        assert!(mobile("19.0"));
        let release = |raw: &str| Release::of(&ServerVersion::parse(raw).unwrap());
        assert!(versioned_absence("sale.order.line", "product_uom", release("19.0")).is_some());
        assert!(versioned_absence("sale.order.line", "product_uom_id", release("18.0")).is_some());
        assert!(versioned_absence("sale.order.line", "product_uom_id", release("19.0")).is_none());
        assert!(versioned_absence("stock.move", "quantity_done", release("17.0")).is_some());
        assert!(versioned_absence("res.partner", "nmae", release("19.0")).is_none());
    }

    #[test]
    fn problems_point_at_the_line_to_fix() {
        let config = MirrorConfig::parse(
            std::path::Path::new("mirror.yml"),
            "odoo:\n  base_url: \"http://x\"\n  database: d\n  username: u\nmodels:\n  - name: res.partner\n    fields: [name, nmae]\n    cursor_field: write_dat\n    domain: [[\"x\", \"=\", 1]]\n",
        )
        .unwrap();
        let located = |problem: ConfigProblem| problem.located(&config).to_string();
        assert_eq!(
            located(ConfigProblem::UnknownField {
                model: "res.partner".into(),
                field: "nmae".into(),
                suggestion: Some("name".into()),
            }),
            "mirror.yml:7:20: res.partner: field `nmae` does not exist on this Odoo (did you mean `name`?); correct it or remove it from `fields`"
        );
        assert!(
            located(ConfigProblem::CursorField {
                model: "res.partner".into(),
                field: "write_dat".into(),
                suggestion: Some("write_date".into()),
            })
            .starts_with("mirror.yml:8:19: ")
        );
        assert!(
            located(ConfigProblem::Domain {
                model: "res.partner".into(),
                reason: "no x".into(),
            })
            .starts_with("mirror.yml:9:13: ")
        );
        assert!(
            located(ConfigProblem::Model {
                model: "res.partner".into(),
                reason: "gone".into(),
            })
            .starts_with("mirror.yml:6:11: ")
        );
    }

    #[test]
    fn a_shared_error_is_one_line_naming_every_model_it_hit() {
        let report = |model: &str, error: Option<&str>| ModelReport {
            model: model.into(),
            error: error.map(str::to_owned),
            ..ModelReport::default()
        };
        let summary = failure_summary(&[
            report("sale.order", Some("Odoo is down")),
            report("res.partner", None),
            report("crm.lead", Some("access error")),
            report("account.move", Some("Odoo is down")),
        ]);
        assert_eq!(
            summary,
            "sale.order, account.move: Odoo is down\ncrm.lead: access error"
        );
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
