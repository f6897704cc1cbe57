//! `odoo-bridge-bench mirror`: the mirror's full backfill and an incremental run after a bulk
//! import, against ceilings measured in the same run: a bare serial id-keyset fetch loop (what
//! a user would script instead) and a bulk load of the same rows alone (PostgreSQL COPY, one
//! SQLite transaction). Figures are printed, never asserted.
//!
//! Processes, so that memory figures mean something:
//! - the simulator (holding every record in memory) runs as `odoo-bridge-bench sim-records`
//!   in a child process ([`crate::records`]), filled directly with the benchmark model
//!   (`odoo_sim::bench_model`); it also makes the bulk import, in one transaction;
//! - every measured phase runs as `odoo-bridge-bench mirror --phase …` in a child process of
//!   its own and reports its own peak RSS (VmHWM), which a process cannot reset;
//! - this process only orchestrates: it creates and drops the scratch stores, and prints.

use crate::child::ChildProcess;
use crate::exit::{Exit, Failure, failure};
use crate::procfs::{
    Status, backend_cpu, backend_cpu_used, cpu_seconds, machine_busy_seconds, status_value,
};
use clap::{Args, ValueEnum};
use engine::config::{DEFAULT_PARALLELISM, ModelConfig};
use engine::mirror::{self, NoProgress, RunOptions};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ClientConfig, Context, Domain, OdooClient, SearchReadOptions, field};
use odoo_sim::bench_model::{self, BenchSpec};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor, QueryBuilder, Sqlite};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MAX_RECORDS: u64 = 1_000_000;
/// How the database URL reaches the phase processes: not on their command line, where `ps`
/// would show a password.
const DATABASE_URL_ENV: &str = "ODOO_BRIDGE_BENCH_DATABASE_URL";
/// Scratch databases are `odoo_bridge_bench_<pid>_<n>`.
const SCRATCH_PREFIX: &str = "odoo_bridge_bench_";
/// The table the PostgreSQL write ceiling copies into: `odoo_raw_records`' shape.
const CEILING_TABLE: &str = "odoo_raw_records_ceiling";
const COLUMNS: &str = "model, odoo_id, payload, write_date, synced_at, content_hash, deleted_at";
/// Rows per multi-row INSERT in the SQLite write ceiling (seven values each).
const SQLITE_CHUNK: usize = 500;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the simulator gets to fill its model and print its details.
const START_TIMEOUT: Duration = Duration::from_secs(600);

// The goals of issue 12, printed next to the figures.
const GOAL_TIME_RATIO: f64 = 1.0;
const GOAL_FETCHED_RATIO: f64 = 1.01;
const GOAL_IMPORT_RATIO: f64 = 1.02;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    Sqlite,
    Postgres,
    Both,
}

impl TargetChoice {
    fn name(self) -> &'static str {
        match self {
            TargetChoice::Sqlite => "sqlite",
            TargetChoice::Postgres => "postgres",
            TargetChoice::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// The ceiling: `search_read` by id keyset, one page after the other, discarded.
    Fetch,
    /// The load ceiling: the same rows bulk-loaded alone.
    Write,
    /// A first run into an empty store (a backfill).
    Mirror,
    /// A run on the store the mirror phase left, after a bulk import.
    Incremental,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Fetch => "fetch",
            Phase::Write => "write",
            Phase::Mirror => "mirror",
            Phase::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Records of the benchmark model (at most 1,000,000).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=MAX_RECORDS))]
    records: u64,
    /// Fields read per record, `id` not counted: name, active, create_date, write_date and
    /// generated char, text, integer, float, monetary, boolean, date, datetime, selection and
    /// many2one fields.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(4..=200))]
    fields: u64,
    /// Records per page (the mirror's `page_size`).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    page_size: u64,
    /// Records sharing each write_date second, as a bulk import leaves them.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    per_second: u64,
    /// The mirror's `parallelism`: backfill readers at once.
    #[arg(long, default_value_t = DEFAULT_PARALLELISM as u64, value_parser = clap::value_parser!(u64).range(1..=16))]
    parallelism: u64,
    /// Records of the bulk import (one `create`, one transaction) before the incremental run.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    import: u64,
    /// Where to mirror. With `both`, an unreachable PostgreSQL is skipped (and said so).
    #[arg(long, value_enum, default_value_t = TargetChoice::Both)]
    target: TargetChoice,
    /// A loopback PostgreSQL to create scratch databases in (dropped afterwards).
    #[arg(long, default_value = DEFAULT_DATABASE_URL, hide_default_value = false)]
    database_url: String,

    // What the orchestrating process hands to a phase process.
    #[arg(long, hide = true, value_enum)]
    phase: Option<Phase>,
    #[arg(long, hide = true)]
    sim_url: Option<String>,
    #[arg(long, hide = true, default_value = "odoo")]
    sim_db: String,
    #[arg(long, hide = true, default_value = "admin")]
    sim_login: String,
    /// The scratch PostgreSQL database, or the scratch SQLite file.
    #[arg(long, hide = true)]
    scratch: Option<String>,
    /// Mirror only records with `id <= LIMIT`.
    #[arg(long, hide = true)]
    limit: Option<u64>,
}

impl MirrorArgs {
    fn bench(&self) -> BenchSpec {
        BenchSpec::new(
            self.records as usize,
            self.fields as usize,
            self.per_second as usize,
        )
    }
}

pub async fn run(args: MirrorArgs) -> Result<(), Failure> {
    match args.phase {
        Some(phase) => {
            let report = run_phase(phase, &args).await?;
            let line = serde_json::to_string(&report).map_err(failure)?;
            say!("{line}");
            Ok(())
        }
        None => orchestrate(args).await,
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |kib| format!("{:.1}", kib as f64 / 1024.0),
    )
}

// ----- phase processes ------------------------------------------------------------------------

/// What one phase process measured, printed as one JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PhaseReport {
    /// Records in the store at the end (distinct records fetched for the fetch ceiling, rows
    /// loaded for the write ceiling).
    records: u64,
    /// Records read from Odoo, a record read twice counted twice (0 for the write ceiling).
    rows: u64,
    pages: u64,
    seconds: f64,
    /// VmRSS when the timed part started (runtime, client and store already set up).
    rss_start_kib: Option<u64>,
    /// VmHWM at the end: the process's peak, start-up included.
    peak_rss_kib: Option<u64>,
    /// CPU of this process during the timed part.
    cpu_seconds: Option<f64>,
    /// CPU of the PostgreSQL server processes serving this phase's scratch database during
    /// the timed part, when they are readable in `/proc` (a server on this machine).
    #[serde(default)]
    db_cpu_seconds: Option<f64>,
    /// Busy CPU of the whole machine during the timed part.
    #[serde(default)]
    machine_cpu_seconds: Option<f64>,
}

/// The clock and the memory and CPU readings around a timed part.
struct Probe {
    started: Instant,
    rss_start_kib: Option<u64>,
    cpu_start: Option<f64>,
    machine_start: Option<f64>,
}

impl Probe {
    fn start() -> Probe {
        Probe {
            rss_start_kib: status_value(None, Status::Rss),
            cpu_start: cpu_seconds(None),
            machine_start: machine_busy_seconds(),
            started: Instant::now(),
        }
    }

    fn finish(&self, records: u64, rows: u64, pages: u64) -> PhaseReport {
        let seconds = self.started.elapsed().as_secs_f64();
        PhaseReport {
            records,
            rows,
            pages,
            seconds,
            rss_start_kib: self.rss_start_kib,
            peak_rss_kib: status_value(None, Status::PeakRss),
            cpu_seconds: cpu_seconds(None)
                .zip(self.cpu_start)
                .map(|(end, start)| end - start),
            db_cpu_seconds: None,
            machine_cpu_seconds: machine_busy_seconds()
                .zip(self.machine_start)
                .map(|(end, start)| end - start),
        }
    }
}

async fn run_phase(phase: Phase, args: &MirrorArgs) -> Result<PhaseReport, Failure> {
    let bench = args.bench();
    let target = args.target;
    if target == TargetChoice::Both && phase != Phase::Fetch {
        return Err(failure("a phase process needs --target sqlite or postgres"));
    }
    let scratch = || {
        args.scratch
            .clone()
            .ok_or_else(|| failure("a phase process needs --scratch"))
    };
    match phase {
        Phase::Fetch => fetch_phase(args, &bench).await,
        Phase::Write => write_phase(args, &bench, target, &scratch()?).await,
        Phase::Mirror | Phase::Incremental => {
            mirror_phase(args, &bench, target, &scratch()?, phase).await
        }
    }
}

async fn connect_client(args: &MirrorArgs) -> Result<OdooClient, Failure> {
    let url = args
        .sim_url
        .clone()
        .ok_or_else(|| failure("a phase process needs --sim-url"))?;
    let key = std::env::var("ODOO_API_KEY")
        .map_err(|_| Failure::new(Exit::Config, anyhow::anyhow!("ODOO_API_KEY is not set")))?;
    OdooClient::connect(ClientConfig::new(
        url,
        args.sim_db.clone(),
        args.sim_login.clone(),
        key,
    ))
    .await
    .map_err(failure)
}

fn database_url(args: &MirrorArgs) -> String {
    std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| args.database_url.clone())
}

fn pg_options(url: &str) -> Result<PgConnectOptions, Failure> {
    // sqlx's parse error could echo the URL, and with it a password.
    let options = PgConnectOptions::from_str(url).map_err(|_| {
        Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "--database-url is not a PostgreSQL URL (postgres://user[:password]@host:port/database)"
            ),
        )
    })?;
    // sqlx would otherwise prefer TLS, which `sync` does not use unless the configuration asks
    // (`ssl_mode` defaults to disable): on loopback it would only add encryption to the figures.
    Ok(if url.contains("sslmode=") {
        options
    } else {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    })
}

/// A set of ids 1..=n, to count distinct records without keeping them.
struct IdSet {
    bits: Vec<u64>,
    count: u64,
}

impl IdSet {
    fn new(max: u64) -> IdSet {
        IdSet {
            bits: vec![0; (max as usize).div_ceil(64) + 1],
            count: 0,
        }
    }

    fn insert(&mut self, id: i64) {
        let Ok(id) = usize::try_from(id) else {
            return;
        };
        if let Some(word) = self.bits.get_mut(id / 64) {
            let bit = 1u64 << (id % 64);
            if *word & bit == 0 {
                *word |= bit;
                self.count += 1;
            }
        }
    }
}

/// The ceiling: what a user would script instead of the mirror. `search_read` of the same
/// fields by id keyset (`id > last`, ordered by id), one page after the other, discarded.
async fn fetch_phase(args: &MirrorArgs, bench: &BenchSpec) -> Result<PhaseReport, Failure> {
    let client = connect_client(args).await?;
    let fields = bench.field_names();
    let page_size = args.page_size;
    let mut seen = IdSet::new(args.records);
    let (mut rows, mut pages, mut last) = (0u64, 0u64, 0i64);
    let probe = Probe::start();
    loop {
        let options = SearchReadOptions::new(field("id").gt(last))
            .fields(fields.iter().map(String::as_str))
            .order("id asc")
            .limit(page_size)
            .context(Context::new().active_test(false));
        let page = client
            .search_read(bench_model::MODEL, &options)
            .await
            .map_err(failure)?;
        pages += 1;
        rows += page.len() as u64;
        for record in &page {
            if let Ok(id) = record.id() {
                seen.insert(id);
                last = last.max(id);
            }
        }
        if (page.len() as u64) < page_size {
            break;
        }
    }
    let report = probe.finish(seen.count, rows, pages);
    if report.records != args.records {
        return Err(failure(format!(
            "the id loop read {} distinct records, expected {}",
            report.records, args.records
        )));
    }
    Ok(report)
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `2024-01-01T00:00:00.000000Z`: the stores' text for a timestamp (PostgreSQL reads it too).
fn timestamp_text(micros: i64) -> String {
    let mut text = odoo_sim::values::format_datetime_precise(micros).replacen(' ', "T", 1);
    text.push('Z');
    text
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

/// PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn copy_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Writes the N rows the mirror would store (payload as `search_read` returns it, write_date,
/// content hash) to `path` in COPY text format. Not timed.
fn write_rows(bench: &BenchSpec, path: &Path) -> Result<u64, Failure> {
    let file = std::fs::File::create(path)
        .map_err(|e| failure(format!("cannot create {}: {e}", path.display())))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let synced_at = timestamp_text(now_micros());
    let mut line = String::with_capacity(4096);
    for id in 1..=bench.records as i64 {
        let payload = bench.read_json(id);
        let hash = mirror::content_hash(&payload);
        let json = serde_json::to_string(&payload).map_err(failure)?;
        let second = bench.write_micros(id) / 1_000_000 * 1_000_000;
        line.clear();
        let _ = write!(line, "{}\t{id}\t", bench_model::MODEL);
        copy_escape(&json, &mut line);
        let _ = writeln!(
            line,
            "\t{}\t{synced_at}\t{hash}\t\\N",
            timestamp_text(second)
        );
        out.write_all(line.as_bytes()).map_err(failure)?;
    }
    out.flush().map_err(failure)?;
    Ok(bench.records as u64)
}

/// Bulk-loads the same rows the mirror writes, alone: PostgreSQL COPY into a table of
/// `odoo_raw_records`' shape, or one SQLite transaction of multi-row INSERTs.
async fn write_phase(
    args: &MirrorArgs,
    bench: &BenchSpec,
    target: TargetChoice,
    scratch: &str,
) -> Result<PhaseReport, Failure> {
    let rows_file = TempFile(
        std::env::temp_dir().join(format!("odoo-bridge-bench-{}-rows.tsv", std::process::id())),
    );
    let expected = write_rows(bench, &rows_file.0)?;
    let report = match target {
        TargetChoice::Postgres => {
            let options = pg_options(&database_url(args))?.database(scratch);
            let store = store_pg::PgStore::connect(options).await.map_err(failure)?;
            store.migrate().await.map_err(failure)?;
            let mut connection = store.pool().acquire().await.map_err(failure)?;
            connection
                .execute(
                    "CREATE TABLE odoo_raw_records_ceiling (LIKE odoo_raw_records INCLUDING ALL)",
                )
                .await
                .map_err(failure)?;
            let mut file = std::fs::File::open(&rows_file.0).map_err(failure)?;
            let mut buffer = vec![0u8; 1 << 20];
            let db_before = backend_cpu(store.pool()).await;
            let probe = Probe::start();
            let mut copy = connection
                .copy_in_raw(&format!("COPY {CEILING_TABLE} ({COLUMNS}) FROM STDIN"))
                .await
                .map_err(failure)?;
            loop {
                let read = file.read(&mut buffer).map_err(failure)?;
                if read == 0 {
                    break;
                }
                copy.send(&buffer[..read]).await.map_err(failure)?;
            }
            let rows = copy.finish().await.map_err(failure)?;
            let mut report = probe.finish(rows, 0, 0);
            report.db_cpu_seconds = backend_cpu_used(&db_before, &backend_cpu(store.pool()).await);
            drop(connection);
            store.close().await;
            report
        }
        _ => {
            let path = Path::new(scratch);
            let store = store_sqlite::SqliteStore::open(path)
                .await
                .map_err(failure)?;
            store.migrate().await.map_err(failure)?;
            store.close().await;
            // The store's own pragmas, on a connection of our own.
            let options = SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let mut connection = SqliteConnection::connect_with(&options)
                .await
                .map_err(failure)?;
            let reader = BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&rows_file.0).map_err(failure)?,
            );
            let probe = Probe::start();
            let rows = sqlite_load(&mut connection, reader).await?;
            let report = probe.finish(rows, 0, 0);
            connection.close().await.map_err(failure)?;
            report
        }
    };
    if report.records != expected {
        return Err(failure(format!(
            "the write ceiling loaded {} rows, expected {expected}",
            report.records
        )));
    }
    Ok(report)
}

type SqliteRow = (String, i64, String, String, String, String);

async fn sqlite_load(
    connection: &mut SqliteConnection,
    reader: impl BufRead,
) -> Result<u64, Failure> {
    let mut transaction = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(failure)?;
    let mut chunk: Vec<SqliteRow> = Vec::with_capacity(SQLITE_CHUNK);
    let mut rows = 0u64;
    let mut lines = reader.lines();
    loop {
        let line = lines.next().transpose().map_err(failure)?;
        if let Some(line) = &line {
            let columns: Vec<&str> = line.split('\t').collect();
            let [model, id, payload, write_date, synced_at, hash, _deleted] = columns[..] else {
                return Err(failure(format!("malformed row: {line:.80}")));
            };
            chunk.push((
                model.to_owned(),
                id.parse().map_err(failure)?,
                copy_unescape(payload),
                write_date.to_owned(),
                synced_at.to_owned(),
                hash.to_owned(),
            ));
        }
        if chunk.len() == SQLITE_CHUNK || (line.is_none() && !chunk.is_empty()) {
            let full = chunk.len() == SQLITE_CHUNK;
            let mut query =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO odoo_raw_records ({COLUMNS}) "));
            query.push_values(
                chunk.drain(..),
                |mut tuple, (model, id, payload, write_date, synced_at, hash)| {
                    tuple
                        .push_bind(model)
                        .push_bind(id)
                        .push_bind(payload)
                        .push_bind(write_date)
                        .push_bind(synced_at)
                        .push_bind(hash)
                        .push("NULL");
                },
            );
            rows += query
                .build()
                .persistent(full)
                .execute(&mut *transaction)
                .await
                .map_err(failure)?
                .rows_affected();
        }
        if line.is_none() {
            break;
        }
    }
    transaction.commit().await.map_err(failure)?;
    Ok(rows)
}

/// The real thing: `engine::mirror::run`, into a fresh store (a backfill) or into the store
/// a backfill left (an incremental run after the orchestrator's bulk import).
async fn mirror_phase(
    args: &MirrorArgs,
    bench: &BenchSpec,
    target: TargetChoice,
    scratch: &str,
    phase: Phase,
) -> Result<PhaseReport, Failure> {
    let client = connect_client(args).await?;
    let (domain, expected) = match (args.limit, phase) {
        (Some(limit), _) => (field("id").lte(limit as i64), limit.min(args.records)),
        (None, Phase::Incremental) => (Domain::all(), args.records + args.import),
        (None, _) => (Domain::all(), args.records),
    };
    let model = ModelConfig {
        name: bench_model::MODEL.to_owned(),
        fields: bench.field_names(),
        domain,
        cursor_field: "write_date".to_owned(),
        // As measured in the issue: with the default 120 s, an incremental run also reads
        // the two minutes before its checkpoint again, on purpose.
        overlap_seconds: 0,
        page_size: args.page_size as usize,
        // Deletion reconciliation is a pass of its own after the pages: not measured here.
        reconcile_deletions: false,
        reconcile_every_runs: 1,
        parallelism: args.parallelism as usize,
    };
    let options = RunOptions {
        use_lock: true,
        retention_days: 30,
        ..RunOptions::default()
    };
    match target {
        TargetChoice::Postgres => {
            let options_pg = pg_options(&database_url(args))?.database(scratch);
            let store = store_pg::PgStore::connect(options_pg)
                .await
                .map_err(failure)?;
            let report = measure_mirror(
                &client,
                &store,
                Some(store.pool()),
                &model,
                &options,
                expected,
            )
            .await;
            store.close().await;
            report
        }
        _ => {
            let store = store_sqlite::SqliteStore::open(Path::new(scratch))
                .await
                .map_err(failure)?;
            let report = measure_mirror(&client, &store, None, &model, &options, expected).await;
            store.close().await;
            report
        }
    }
}

async fn measure_mirror<S: MirrorStore>(
    client: &OdooClient,
    store: &S,
    pg_pool: Option<&sqlx::PgPool>,
    model: &ModelConfig,
    options: &RunOptions,
    expected: u64,
) -> Result<PhaseReport, Failure> {
    // The schema is set up before the clock starts; the run's own migrate() is then a no-op.
    store.migrate().await.map_err(failure)?;
    let db_before = match pg_pool {
        Some(pool) => backend_cpu(pool).await,
        None => Default::default(),
    };
    let probe = Probe::start();
    let run = mirror::run(
        client,
        store,
        std::slice::from_ref(model),
        options,
        &NoProgress,
    )
    .await
    .map_err(failure)?;
    let mut report = probe.finish(0, 0, 0);
    if let Some(pool) = pg_pool {
        report.db_cpu_seconds = backend_cpu_used(&db_before, &backend_cpu(pool).await);
    }
    let Some(model_report) = run.models.first() else {
        return Err(failure("the mirror run reported no model"));
    };
    if let Some(error) = &model_report.error {
        return Err(failure(format!("the mirror failed: {error}")));
    }
    let (stored, _) = store.count(&model.name).await.map_err(failure)?;
    if stored != expected {
        return Err(failure(format!(
            "the mirror stored {stored} records, expected {expected}"
        )));
    }
    report.records = stored;
    report.rows = model_report.fetched;
    report.pages = model_report.pages;
    Ok(report)
}

// ----- the orchestrating process --------------------------------------------------------------

/// The simulator's child process, with its connection details.
struct Simulator {
    process: ChildProcess,
    url: String,
    database: String,
    login: String,
    api_key: String,
    ready_seconds: f64,
}

impl Simulator {
    async fn start(exe: &Path, args: &MirrorArgs) -> Result<Simulator, Failure> {
        let started = Instant::now();
        let mut command = Command::new(exe);
        command
            .args(["--log-level", "warn", "sim-records"])
            .args(["--records", &args.records.to_string()])
            .args(["--fields", &args.fields.to_string()])
            .args(["--per-second", &args.per_second.to_string()])
            .stderr(Stdio::inherit());
        let mut process = ChildProcess::spawn("simulator", command, true)?;
        let details = process.json_line(START_TIMEOUT).await?;
        let text = |key: &str| {
            details[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| failure(format!("the simulator's details lack {key:?}")))
        };
        Ok(Simulator {
            url: text("url")?,
            database: text("database")?,
            login: text("login")?,
            api_key: text("api_key")?,
            process,
            ready_seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's call counters so far, per `model/method`.
    async fn calls(&mut self) -> Result<BTreeMap<String, u64>, Failure> {
        let answer = self.process.ask("calls").await?;
        Ok(answer["calls"]
            .as_object()
            .map(|calls| {
                calls
                    .iter()
                    .map(|(key, count)| (key.clone(), count.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A phase process; killed when dropped before it ended.
struct PhaseChild(Option<Child>);

impl Drop for PhaseChild {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Scratch stores created and not yet removed: removed at the end, whatever happened.
#[derive(Default)]
struct Scratch {
    databases: Mutex<Vec<String>>,
    directories: Mutex<Vec<PathBuf>>,
    counter: Mutex<u32>,
}

impl Scratch {
    fn next(&self) -> u32 {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        *counter += 1;
        *counter
    }
}

/// The loopback PostgreSQL the scratch databases are created in.
struct Pg {
    url: String,
    options: PgConnectOptions,
    place: String,
}

enum PgProblem {
    Config(Failure),
    Unreachable(String),
}

impl Pg {
    async fn check(url: &str) -> Result<Pg, PgProblem> {
        let options = pg_options(url).map_err(PgProblem::Config)?;
        let host = options.get_host().to_owned();
        let place = format!("{host}:{}", options.get_port());
        let loopback = host.starts_with('/')
            || host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(PgProblem::Config(Failure::new(
                Exit::Config,
                anyhow::anyhow!(
                    "--database-url points at {place}: the benchmark creates and drops databases, so it only runs against a loopback PostgreSQL (127.0.0.1, ::1, localhost or a socket)"
                ),
            )));
        }
        let pg = Pg {
            url: url.to_owned(),
            options,
            place,
        };
        let mut connection = pg
            .connect()
            .await
            .map_err(|e| PgProblem::Unreachable(format!("{e:#}")))?;
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'odoo\\_bridge\\_bench\\_%' ORDER BY 1",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap_or_default();
        let _ = connection.close().await;
        if !leftovers.is_empty() {
            tracing::warn!(
                databases = %leftovers.join(", "),
                "scratch databases of earlier, interrupted benchmark runs exist; drop them when no benchmark runs"
            );
        }
        Ok(pg)
    }

    async fn connect(&self) -> anyhow::Result<PgConnection> {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.options)).await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(anyhow::anyhow!("{error}")),
            Err(_) => Err(anyhow::anyhow!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    /// Runs one statement of ours (names built here, never from input) on a new connection.
    async fn execute(&self, statement: String) -> anyhow::Result<()> {
        let mut connection = self.connect().await?;
        let outcome = connection
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)))
            .await;
        let _ = connection.close().await;
        outcome.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn create(&self, name: &str) -> Result<(), Failure> {
        self.execute(format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| failure(format!("cannot create the scratch database {name}: {e:#}")))
    }

    async fn drop_database(&self, name: &str) {
        let forced = self
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        if forced.is_err()
            && let Err(error) = self
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await
        {
            tracing::warn!(database = name, %error, "could not drop a scratch database");
        }
    }
}

/// One measured phase as the table shows it.
struct Measured {
    label: &'static str,
    target: &'static str,
    report: PhaseReport,
    sim_cpu: Option<f64>,
    /// Requests the simulator served during the phase (`search_read`, `search`, …).
    calls: Option<u64>,
}

/// A scratch store: a PostgreSQL database or a directory holding the SQLite file.
enum ScratchStore {
    Database(String),
    Directory(PathBuf),
}

impl ScratchStore {
    /// What a phase process is told: the database's name, or the SQLite file.
    fn argument(&self) -> String {
        match self {
            ScratchStore::Database(name) => name.clone(),
            ScratchStore::Directory(directory) => {
                directory.join("mirror.db").to_string_lossy().into_owned()
            }
        }
    }
}

struct Run<'a> {
    exe: PathBuf,
    args: &'a MirrorArgs,
    sim: Simulator,
    pg: Option<&'a Pg>,
    scratch: &'a Scratch,
}

impl Run<'_> {
    async fn calls(&mut self) -> Option<u64> {
        let calls = self.sim.calls().await.ok()?;
        Some(calls.values().sum())
    }

    async fn child(
        &mut self,
        phase: Phase,
        target: TargetChoice,
        scratch: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Measured, Failure> {
        let args = self.args;
        let sim = &self.sim;
        let (sim_pid, sim_url, sim_db, sim_login, sim_key) = (
            sim.pid(),
            sim.url.clone(),
            sim.database.clone(),
            sim.login.clone(),
            sim.api_key.clone(),
        );
        let mut command = Command::new(&self.exe);
        command
            .args(["--log-level", "warn", "mirror"])
            .args(["--phase", phase.name(), "--target", target.name()])
            .args(["--records", &args.records.to_string()])
            .args(["--fields", &args.fields.to_string()])
            .args(["--page-size", &args.page_size.to_string()])
            .args(["--per-second", &args.per_second.to_string()])
            .args(["--parallelism", &args.parallelism.to_string()])
            .args(["--import", &args.import.to_string()])
            .args(["--sim-url", &sim_url])
            .args(["--sim-db", &sim_db])
            .args(["--sim-login", &sim_login])
            .env("ODOO_API_KEY", &sim_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(scratch) = scratch {
            command.args(["--scratch", scratch]);
        }
        if let Some(limit) = limit {
            command.args(["--limit", &limit.to_string()]);
        }
        if let Some(pg) = self.pg {
            command.env(DATABASE_URL_ENV, &pg.url);
        }
        let calls_before = self.calls().await;
        let sim_cpu_before = cpu_seconds(Some(sim_pid));
        let mut child = PhaseChild(Some(command.spawn().map_err(|e| {
            failure(format!(
                "cannot start the {} phase process: {e}",
                phase.name()
            ))
        })?));
        let stdout = child.0.as_mut().and_then(|child| child.stdout.take());
        let output = match stdout {
            Some(mut stdout) => tokio::task::spawn_blocking(move || {
                let mut text = String::new();
                stdout.read_to_string(&mut text).map(|_| text)
            })
            .await
            .map_err(failure)?
            .map_err(failure)?,
            None => String::new(),
        };
        let status = loop {
            let Some(process) = child.0.as_mut() else {
                return Err(failure("the phase process went missing"));
            };
            if let Some(status) = process.try_wait().map_err(failure)? {
                child.0 = None;
                break status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let sim_cpu = cpu_seconds(Some(sim_pid))
            .zip(sim_cpu_before)
            .map(|(after, before)| after - before);
        // The counters' own request is not the phase's.
        let calls = self
            .calls()
            .await
            .zip(calls_before)
            .map(|(after, before)| after.saturating_sub(before + 1));
        if !status.success() {
            return Err(failure(format!(
                "the {} phase ({}) failed: {status}; its error is above",
                phase.name(),
                target.name()
            )));
        }
        let line = output
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with('{'))
            .unwrap_or_default();
        let report: PhaseReport = serde_json::from_str(line).map_err(|e| {
            failure(format!(
                "the {} phase printed no report ({e}): {output:?}",
                phase.name()
            ))
        })?;
        Ok(Measured {
            label: "",
            target: target.name(),
            report,
            sim_cpu,
            calls,
        })
    }

    /// A fresh scratch store of `target`, noted for removal whatever happens.
    async fn create_scratch(&self, target: TargetChoice) -> Result<ScratchStore, Failure> {
        let number = self.scratch.next();
        match (target, self.pg) {
            (TargetChoice::Postgres, Some(pg)) => {
                let name = format!("{SCRATCH_PREFIX}{}_{number}", std::process::id());
                pg.create(&name).await?;
                lock(&self.scratch.databases).push(name.clone());
                Ok(ScratchStore::Database(name))
            }
            (TargetChoice::Postgres, None) => Err(failure("PostgreSQL is not available")),
            _ => {
                let directory = std::env::temp_dir()
                    .join(format!("odoo-bridge-bench-{}-{number}", std::process::id()));
                lock(&self.scratch.directories).push(directory.clone());
                Ok(ScratchStore::Directory(directory))
            }
        }
    }

    async fn remove_scratch(&self, store: ScratchStore) {
        match store {
            ScratchStore::Database(name) => {
                if let Some(pg) = self.pg {
                    pg.drop_database(&name).await;
                }
                lock(&self.scratch.databases).retain(|other| other != &name);
            }
            ScratchStore::Directory(directory) => {
                let _ = std::fs::remove_dir_all(&directory);
                lock(&self.scratch.directories).retain(|other| other != &directory);
            }
        }
    }

    /// Runs a phase against a fresh scratch store, removed afterwards.
    async fn with_scratch(
        &mut self,
        label: &'static str,
        phase: Phase,
        target: TargetChoice,
        limit: Option<u64>,
    ) -> Result<Measured, Failure> {
        let store = self.create_scratch(target).await?;
        let outcome = self
            .child(phase, target, Some(&store.argument()), limit)
            .await;
        self.remove_scratch(store).await;
        outcome.map(|measured| Measured { label, ..measured })
    }

    /// The backfill into a fresh store, then a bulk import in the simulator and an
    /// incremental run on that store; the import is removed again afterwards, so that every
    /// phase sees the same model.
    async fn backfill_then_import(
        &mut self,
        target: TargetChoice,
    ) -> Result<Vec<Measured>, Failure> {
        let store = self.create_scratch(target).await?;
        let outcome = async {
            let backfill = self
                .child(Phase::Mirror, target, Some(&store.argument()), None)
                .await?;
            let import = self.args.import;
            let imported = self.sim.process.ask(&format!("import {import}")).await?;
            if imported["count"].as_u64() != Some(import) {
                return Err(failure(format!("the simulator imported {imported}")));
            }
            let incremental = self
                .child(Phase::Incremental, target, Some(&store.argument()), None)
                .await;
            self.sim.process.ask("remove").await?;
            Ok(vec![
                Measured {
                    label: "mirror: backfill",
                    ..backfill
                },
                Measured {
                    label: "mirror: after an import",
                    ..incremental?
                },
            ])
        }
        .await;
        self.remove_scratch(store).await;
        outcome
    }

    async fn target(&mut self, target: TargetChoice) -> Result<Vec<Measured>, Failure> {
        let name = target.name();
        let quarter = (self.args.records / 4).max(1);
        let mut measured = Vec::new();
        tracing::info!(store = name, "fetch ceiling: the bare serial id loop");
        let ceiling = self.child(Phase::Fetch, target, None, None).await?;
        measured.push(Measured {
            label: "ceiling: id loop",
            ..ceiling
        });
        tracing::info!(store = name, "load ceiling");
        measured.push(
            self.with_scratch(
                if target == TargetChoice::Postgres {
                    "ceiling: load (COPY)"
                } else {
                    "ceiling: load (1 tx)"
                },
                Phase::Write,
                target,
                None,
            )
            .await?,
        );
        tracing::info!(store = name, "mirror: backfill, import, incremental run");
        measured.extend(self.backfill_then_import(target).await?);
        tracing::info!(store = name, records = quarter, "mirror at N/4");
        measured.push(
            self.with_scratch("mirror: backfill N/4", Phase::Mirror, target, Some(quarter))
                .await?,
        );
        Ok(measured)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn orchestrate(args: MirrorArgs) -> Result<(), Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| failure(format!("cannot find this program's executable: {e}")))?;
    let mut pg = None;
    let mut pg_skipped = None;
    if args.target != TargetChoice::Sqlite {
        match Pg::check(&args.database_url).await {
            Ok(found) => pg = Some(found),
            Err(PgProblem::Config(problem)) => return Err(problem),
            Err(PgProblem::Unreachable(reason)) => {
                let place = pg_options(&args.database_url)
                    .map(|o| format!("{}:{}", o.get_host(), o.get_port()))
                    .unwrap_or_default();
                if args.target == TargetChoice::Postgres {
                    return Err(failure(format!(
                        "PostgreSQL at {place} is not reachable: {reason}. Start it, point --database-url at a loopback PostgreSQL, or run --target sqlite"
                    )));
                }
                pg_skipped = Some(format!("PostgreSQL at {place} is not reachable: {reason}"));
            }
        }
    }
    let scratch = Scratch::default();
    let outcome = tokio::select! {
        outcome = measure(&args, exe, pg.as_ref(), pg_skipped.as_deref(), &scratch) => outcome,
        _ = tokio::signal::ctrl_c() => Err(failure("interrupted")),
    };
    // Whatever happened: no scratch database or file is left behind.
    if let Some(pg) = &pg {
        let names = lock(&scratch.databases).clone();
        for name in names {
            pg.drop_database(&name).await;
        }
    }
    for directory in lock(&scratch.directories).iter() {
        let _ = std::fs::remove_dir_all(directory);
    }
    outcome
}

async fn measure(
    args: &MirrorArgs,
    exe: PathBuf,
    pg: Option<&Pg>,
    pg_skipped: Option<&str>,
    scratch: &Scratch,
) -> Result<(), Failure> {
    say!(
        "bench mirror: {} records of {} × {} fields read (id not counted), {} records per write_date second, pages of {}, parallelism {}, then a bulk import of {}",
        args.records,
        bench_model::MODEL,
        args.fields,
        args.per_second,
        args.page_size,
        args.parallelism,
        args.import
    );
    let sim = Simulator::start(&exe, args).await?;
    say!(
        "simulator: process {} at {}, filled and listening after {:.1} s",
        sim.pid(),
        sim.url,
        sim.ready_seconds
    );
    if let Some(pg) = pg {
        say!(
            "postgres: scratch databases {SCRATCH_PREFIX}{}_<n> on {}, each dropped after its phase",
            std::process::id(),
            pg.place
        );
    }
    let mut run = Run {
        exe,
        args,
        sim,
        pg,
        scratch,
    };
    let mut targets = Vec::new();
    if args.target != TargetChoice::Postgres {
        targets.push(TargetChoice::Sqlite);
    }
    if pg.is_some() {
        targets.push(TargetChoice::Postgres);
    }
    let mut measured = Vec::new();
    for target in targets {
        measured.extend(run.target(target).await?);
    }
    let sim_peak = status_value(Some(run.sim.pid()), Status::PeakRss);
    run.sim.process.stop().await;
    print_table(&measured);
    print_goals(args, &measured);
    say!("");
    say!(
        "Each phase ran in a process of its own; peak RSS is that process's VmHWM (start-up included), start RSS its VmRSS when the clock started. The simulator's records live in another process ({} MiB peak) and are not counted.",
        mib(sim_peak)
    );
    say!(
        "cpu: the phase process's CPU while timed (SQLite runs inside it). sim cpu: the simulator's CPU during the phase. db cpu: the PostgreSQL server processes' CPU for the phase's scratch database, when readable. others: CPU that other processes of this machine used meanwhile (noise). calls: requests the simulator served. This machine has {} CPUs.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    say!(
        "records: rows in the store at the end (distinct records for the id loop); fetched: records read from Odoo, a record read twice counted twice."
    );
    if let Some(reason) = pg_skipped {
        say!("PostgreSQL skipped: {reason}.");
    }
    if cfg!(debug_assertions) {
        say!(
            "note: this is a debug build; run `cargo run --release -p odoo-bridge-bench -- mirror` for real figures"
        );
    }
    Ok(())
}

fn print_table(measured: &[Measured]) {
    say!("");
    say!(
        "{:<24} {:<8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>10} {:>9} {:>9} {:>6} {:>7} {:>7} {:>7}",
        "phase",
        "target",
        "records",
        "fetched",
        "pages",
        "calls",
        "seconds",
        "records/s",
        "peak RSS",
        "start RSS",
        "cpu",
        "sim cpu",
        "db cpu",
        "others"
    );
    say!(
        "{:<24} {:<8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>10} {:>9} {:>9} {:>6} {:>7} {:>7} {:>7}",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "MiB",
        "MiB",
        "s",
        "s",
        "s",
        "cpu s"
    );
    for row in measured {
        let report = &row.report;
        let dash = |value: Option<u64>| match value {
            Some(value) if value > 0 => value.to_string(),
            _ => "-".to_owned(),
        };
        // The machine's busy CPU not spent by the phase, the simulator or the phase's database
        // server processes: other work on this machine competing for its CPUs.
        let others = report.machine_cpu_seconds.map(|machine| {
            (machine
                - report.cpu_seconds.unwrap_or(0.0)
                - row.sim_cpu.unwrap_or(0.0)
                - report.db_cpu_seconds.unwrap_or(0.0))
            .max(0.0)
        });
        let seconds =
            |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        // Rows that moved: the fetched ones, or the loaded ones for the load ceiling.
        let moved = if report.rows > 0 {
            report.rows
        } else {
            report.records
        };
        say!(
            "{:<24} {:<8} {:>8} {:>8} {:>6} {:>6} {:>8.2} {:>10.0} {:>9} {:>9} {:>6} {:>7} {:>7} {:>7}",
            row.label,
            row.target,
            report.records,
            dash(Some(report.rows)),
            dash(Some(report.pages)),
            dash(row.calls),
            report.seconds,
            moved as f64 / report.seconds.max(1e-9),
            mib(report.peak_rss_kib),
            mib(report.rss_start_kib),
            seconds(report.cpu_seconds),
            seconds(row.sim_cpu),
            seconds(report.db_cpu_seconds),
            seconds(others),
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "goal met" } else { "goal MISSED" }
}

fn print_goals(args: &MirrorArgs, measured: &[Measured]) {
    say!("");
    say!("goals, each against a figure of this same run:");
    for target in ["sqlite", "postgres"] {
        let find = |label: &str| {
            measured
                .iter()
                .find(|row| row.target == target && row.label == label)
                .map(|row| &row.report)
        };
        let Some(backfill) = find("mirror: backfill") else {
            continue;
        };
        if let Some(ceiling) = find("ceiling: id loop") {
            let ratio = backfill.seconds / ceiling.seconds.max(1e-9);
            say!(
                "  {target:<8} full backfill {:.2} s / bare serial id loop {:.2} s = {ratio:.2}× (goal ≤ {GOAL_TIME_RATIO:.1}×): {}",
                backfill.seconds,
                ceiling.seconds,
                verdict(ratio <= GOAL_TIME_RATIO)
            );
        }
        let ratio = backfill.rows as f64 / args.records.max(1) as f64;
        say!(
            "  {target:<8} fetched ÷ records in the model: {} / {} = {ratio:.4} (goal ≤ {GOAL_FETCHED_RATIO}): {}",
            backfill.rows,
            args.records,
            verdict(ratio <= GOAL_FETCHED_RATIO)
        );
        if let Some(import) = find("mirror: after an import") {
            let ratio = import.rows as f64 / args.import.max(1) as f64;
            say!(
                "  {target:<8} after a {}-record bulk import: fetched {} = {ratio:.3}× (goal ≤ {GOAL_IMPORT_RATIO}×) in {:.2} s: {}",
                args.import,
                import.rows,
                import.seconds,
                verdict(ratio <= GOAL_IMPORT_RATIO)
            );
        }
        let load = measured
            .iter()
            .find(|row| row.target == target && row.label.starts_with("ceiling: load"));
        if let Some(load) = load {
            say!(
                "  {target:<8} (for scale) loading the same rows alone took {:.2} s: the backfill is {:.2}× that",
                load.report.seconds,
                backfill.seconds / load.report.seconds.max(1e-9)
            );
        }
        if let Some(quarter) = find("mirror: backfill N/4") {
            let growth = match (quarter.peak_rss_kib, backfill.peak_rss_kib) {
                (Some(q), Some(f)) => format!("{:+.1} MiB", (f as f64 - q as f64) / 1024.0),
                _ => "n/a".to_owned(),
            };
            say!(
                "  {target:<8} peak RSS {} MiB at {} records, {} MiB at {}: {growth} for {:.1}× the records (goal: flat)",
                mib(quarter.peak_rss_kib),
                quarter.records,
                mib(backfill.peak_rss_kib),
                backfill.records,
                backfill.records as f64 / quarter.records.max(1) as f64
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn copy_escaping_round_trips() {
        let text = "a\\b\tc\nd\re \"f\" 東京";
        let mut escaped = String::new();
        copy_escape(text, &mut escaped);
        assert!(!escaped.contains('\t') && !escaped.contains('\n'));
        assert_eq!(copy_unescape(&escaped), text);
    }

    #[test]
    fn timestamps_have_the_stores_shape() {
        assert_eq!(
            timestamp_text(1_704_067_200_000_000),
            "2024-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn the_id_set_counts_each_id_once() {
        let mut set = IdSet::new(100);
        for id in [1, 2, 2, 64, 100, 100, 101, -1] {
            set.insert(id);
        }
        assert_eq!(set.count, 5);
    }
}
