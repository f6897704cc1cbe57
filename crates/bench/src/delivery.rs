//! `odoo-bridge-bench delivery` and `odoo-bridge-bench idle`: order delivery's figures,
//! printed, never asserted.
//!
//! Processes, so that CPU and memory can be told apart (all on loopback):
//! - the **simulator**: `odoo-bridge-bench sim-tenants` ([`crate::tenants`]), one child
//!   process serving N simulated Odoo databases, each on a port of its own. It takes commands
//!   on its standard input: `orders TOTAL LINES` writes and confirms orders directly in its
//!   databases (not over RPC, so that writing them costs the engine nothing), `calls` answers
//!   its call counters (the server's own, per model and method);
//! - the **receiver**: `odoo-bridge-bench receiver` ([`crate::receiver`]), an axum server
//!   that answers 200 to every POST and notes the arrival time (wall clock, µs) of each
//!   `webhook-id`;
//! - the **daemon**: the product binary itself, `odoo-bridge run` (the store from
//!   `POLLER_DB_PATH` or `DATABASE_URL`), against a scratch store; stopped with SIGTERM;
//! - this process only orchestrates: it fills the scratch store with the connections, reads
//!   the others' CPU and memory in `/proc`, and prints.

use crate::child::ChildProcess;
use crate::exit::{Exit, Failure, failure};
use clap::{Args, ValueEnum};
use engine::connection_form::{new_connection_id, new_webhook_secret};
use engine::mirror_store::MirrorStore as _;
use engine::order_delivery::{ApiKey, Connection, ConnectionStore as _, EventSet, WebhookSecret};
use engine::store::{CoordinationStore as _, CycleLogEntry, FlowLease, SyncLogStore as _};
use jiff::Timestamp;
use serde_json::Value;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The scratch PostgreSQL database is `odoo_bridge_bench_delivery_<pid>`.
const SCRATCH_PREFIX: &str = "odoo_bridge_bench_delivery_";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a child gets to start and answer its first line.
const START_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    Sqlite,
    Postgres,
}

impl StoreChoice {
    fn name(self) -> &'static str {
        match self {
            StoreChoice::Sqlite => "sqlite",
            StoreChoice::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Confirmed orders to deliver, spread evenly over the tenants.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    orders: u64,
    /// Tenants: simulated Odoo databases, one connection each.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    tenants: u16,
    /// Lines per order.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    lines: u16,
    /// The delivery store.
    #[arg(long, value_enum, default_value_t = StoreChoice::Sqlite)]
    store: StoreChoice,
    /// A loopback PostgreSQL to create the scratch database in (dropped afterwards), with
    /// `--store postgres`.
    #[arg(long, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// How many `odoo-bridge run` share the store (more than one needs `--store postgres`).
    /// A list (`--replicas 1,2,3,4`) runs the benchmark once per entry, each on a fresh
    /// store, simulator and receiver, and ends with a table comparing them.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u16).range(1..=8))]
    replicas: Vec<u16>,
    /// Every connection's polling interval, seconds (the product's default is 60: the
    /// benchmark polls faster so that waiting for the next poll does not hide the engine).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    interval: u32,
    /// How far each poll rewinds the cursor, seconds (`run --overlap-seconds`). The product's
    /// 120 s over its 60 s interval reads each order about three times; 10 s over 5 s keeps
    /// that ratio.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    overlap: u64,
    /// Give up when the orders are not all delivered after this many seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=7200))]
    timeout: u64,
    /// The daemon's log level (its JSON lines go to a file of the scratch directory).
    #[arg(long, default_value = "info")]
    daemon_log_level: String,
    /// An extra `odoo-bridge run` argument for the daemon, e.g. `--run-arg=--reload-every=60`
    /// (repeatable).
    #[arg(long = "run-arg", allow_hyphen_values = true)]
    run_args: Vec<String>,
    #[command(flatten)]
    product: ProductBinary,
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Active connections, all polling one simulator that has no orders.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    connections: u32,
    /// How long the daemon runs, seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(5..=3600))]
    seconds: u64,
    /// Every connection's polling interval, seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    interval: u32,
    /// The delivery store.
    #[arg(long, value_enum, default_value_t = StoreChoice::Sqlite)]
    store: StoreChoice,
    /// A loopback PostgreSQL to create the scratch database in, with `--store postgres`.
    #[arg(long, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// The daemon's log level (its JSON lines go to a file of the scratch directory).
    #[arg(long, default_value = "info")]
    daemon_log_level: String,
    /// An extra `odoo-bridge run` argument for the daemon, e.g. `--run-arg=--reload-every=60`
    /// (repeatable).
    #[arg(long = "run-arg", allow_hyphen_values = true)]
    run_args: Vec<String>,
    #[command(flatten)]
    product: ProductBinary,
}

/// Where the product binary is: the daemon measured is `odoo-bridge run` itself.
#[derive(Debug, Args)]
pub struct ProductBinary {
    /// The `odoo-bridge` binary to run as the daemon (default: the one beside this program,
    /// built by `cargo build [--release] -p odoo-bridge`).
    #[arg(long = "odoo-bridge", env = "ODOO_BRIDGE_BIN")]
    path: Option<PathBuf>,
}

impl ProductBinary {
    pub(crate) fn resolve(&self) -> Result<PathBuf, Failure> {
        let path = match &self.path {
            Some(path) => path.clone(),
            None => exe()?.with_file_name("odoo-bridge"),
        };
        if path.is_file() {
            return Ok(path);
        }
        Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "{} is not there: build it first (`cargo build --release -p odoo-bridge`, or without --release for a debug build of this program), or point --odoo-bridge at it",
                path.display()
            ),
        ))
    }
}

/// When the binary was built, as its file says: the figures are that build's.
fn built_at(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| Timestamp::try_from(time).ok())
        .map_or_else(
            || "unknown".to_owned(),
            |time| time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

use crate::procfs::{
    Status, backend_cpu, backend_cpu_used, context_switches, cpu_seconds, descriptors,
    machine_busy_seconds, status_value, threads,
};

pub async fn delivery(args: DeliveryArgs) -> Result<(), Failure> {
    let product = args.product.resolve()?;
    if args.store == StoreChoice::Sqlite && args.replicas.iter().any(|n| *n > 1) {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "replicas share a PostgreSQL store: add --store postgres (an SQLite file belongs to one process)"
            ),
        ));
    }
    let mut summaries = Vec::with_capacity(args.replicas.len());
    for (index, &replicas) in args.replicas.iter().enumerate() {
        if index > 0 {
            say!("");
        }
        let scratch = Scratch::create(args.store, &args.database_url).await?;
        let outcome = tokio::select! {
            outcome = measure_delivery(&args, usize::from(replicas), &product, &scratch) => outcome,
            _ = tokio::signal::ctrl_c() => Err(failure("interrupted")),
        };
        scratch.remove().await;
        summaries.push(outcome?);
    }
    if summaries.len() > 1 {
        report_replicas(&args, &summaries);
    }
    Ok(())
}

pub async fn idle(args: IdleArgs) -> Result<(), Failure> {
    let product = args.product.resolve()?;
    let scratch = Scratch::create(args.store, &args.database_url).await?;
    let outcome = tokio::select! {
        outcome = measure_idle(&args, &product, &scratch) => outcome,
        _ = tokio::signal::ctrl_c() => Err(failure("interrupted")),
    };
    scratch.remove().await;
    outcome
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
    )
}

fn seconds_text(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} s"))
}

fn exe() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|e| failure(format!("cannot find this program's executable: {e}")))
}

struct SimDetails {
    /// `(url, database)` per tenant.
    tenants: Vec<(String, String)>,
    login: String,
    api_key: String,
    odoo_version: String,
}

async fn start_simulator(
    tenants: u16,
    partners: usize,
    products: usize,
) -> Result<(ChildProcess, SimDetails, f64), Failure> {
    let started = Instant::now();
    let mut command = Command::new(exe()?);
    command
        .args(["--log-level", "warn", "sim-tenants", "--database", "tenant"])
        .args(["--tenants", &tenants.to_string()])
        .args(["--partners", &partners.to_string()])
        .args(["--products", &products.to_string()])
        .stderr(Stdio::inherit());
    let mut sim = ChildProcess::spawn("simulator", command, true)?;
    let details = sim.json_line(START_TIMEOUT).await?;
    let text = |value: &Value, key: &str| {
        value[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| failure(format!("the simulator's details lack {key:?}")))
    };
    let mut list = Vec::new();
    for tenant in details["tenants"].as_array().into_iter().flatten() {
        list.push((text(tenant, "url")?, text(tenant, "database")?));
    }
    let details = SimDetails {
        tenants: list,
        login: text(&details, "login")?,
        api_key: text(&details, "api_key")?,
        odoo_version: text(&details, "odoo_version")?,
    };
    Ok((sim, details, started.elapsed().as_secs_f64()))
}

async fn start_receiver() -> Result<(ChildProcess, String), Failure> {
    let mut command = Command::new(exe()?);
    command
        .args(["--log-level", "warn", "receiver"])
        .stderr(Stdio::inherit());
    let mut receiver = ChildProcess::spawn("receiver", command, true)?;
    let details = receiver.json_line(START_TIMEOUT).await?;
    let url = details["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| failure("the receiver printed no url"))?;
    Ok((receiver, url))
}

/// `odoo-bridge run` on the scratch store, its JSON log lines (on its stdout and stderr) in
/// the scratch directory's log file.
fn start_daemon(
    product: &Path,
    scratch: &Scratch,
    replica: usize,
    log_level: &str,
    overlap: u64,
    run_args: &[String],
) -> Result<ChildProcess, Failure> {
    let log = std::fs::File::create(scratch.log_path(replica))
        .map_err(|e| failure(format!("cannot create the daemon's log file: {e}")))?;
    let errors = log
        .try_clone()
        .map_err(|e| failure(format!("cannot share the daemon's log file: {e}")))?;
    let mut command = Command::new(product);
    command
        .args(["--log-level", log_level, "--log-format", "json"])
        .args(["run", "--listen", "127.0.0.1:0"])
        .args(["--overlap-seconds", &overlap.to_string()])
        .args(["--worker-id", &format!("replica-{}", replica + 1)])
        .args(run_args)
        .env_remove("ODOO_BRIDGE_LOG_LEVEL")
        .env_remove("POLLER_LOG_LEVEL")
        .env_remove("ODOO_BRIDGE_LISTEN")
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(errors));
    scratch.set_env(&mut command);
    Ok(ChildProcess::spawn("daemon", command, false)?.stopped_by_sigterm())
}

/// ` with --a --b` for the extra `run` arguments, or nothing.
fn run_args_text(run_args: &[String]) -> String {
    if run_args.is_empty() {
        String::new()
    } else {
        format!(" with {}", run_args.join(" "))
    }
}

/// The last lines of the daemons' logs that are warnings or errors.
fn daemon_trouble(scratch: &Scratch) -> String {
    let mut text = String::new();
    for replica in 0.. {
        match std::fs::read_to_string(scratch.log_path(replica)) {
            Ok(log) => text.push_str(&log),
            Err(_) => break,
        }
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("\"WARN\"") || line.contains("\"ERROR\""))
        .collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    if tail.is_empty() {
        "no warning or error in its log".to_owned()
    } else {
        format!("its last warnings and errors:\n{}", tail.join("\n"))
    }
}

// ----- the scratch store ---------------------------------------------------------------------

/// The scratch directory (the daemon's log; the SQLite file) and, with PostgreSQL, the scratch
/// database. Removed at the end, whatever happened.
struct Scratch {
    dir: PathBuf,
    pg: Option<PgScratch>,
}

struct PgScratch {
    admin: PgConnectOptions,
    name: String,
    /// The URL of the scratch database, handed to the daemon in `DATABASE_URL`.
    url: String,
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
    Ok(if url.contains("sslmode=") {
        options
    } else {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    })
}

/// `url` pointing at database `name` instead (query parameters kept).
fn url_with_database(url: &str, name: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next()?;
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Some(out)
}

async fn pg_connect(options: &PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

async fn pg_execute(options: &PgConnectOptions, statement: String) -> Result<(), String> {
    use sqlx::Executor as _;
    let mut connection = pg_connect(options).await?;
    let outcome = connection
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)))
        .await;
    let _ = connection.close().await;
    outcome.map(|_| ()).map_err(|e| e.to_string())
}

impl Scratch {
    async fn create(store: StoreChoice, database_url: &str) -> Result<Scratch, Failure> {
        let mut pg = None;
        if store == StoreChoice::Postgres {
            let admin = pg_options(database_url)?;
            let host = admin.get_host().to_owned();
            let place = format!("{host}:{}", admin.get_port());
            let loopback = host.starts_with('/')
                || host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(Failure::new(
                    Exit::Config,
                    anyhow::anyhow!(
                        "--database-url points at {place}: the benchmark creates and drops a database, so it only runs against a loopback PostgreSQL"
                    ),
                ));
            }
            let name = format!("{SCRATCH_PREFIX}{}", std::process::id());
            let url = url_with_database(database_url, &name)
                .ok_or_else(|| failure("--database-url has no host"))?;
            pg_execute(&admin, format!("CREATE DATABASE \"{name}\""))
                .await
                .map_err(|e| {
                    failure(format!(
                        "PostgreSQL at {place}: cannot create the scratch database: {e}"
                    ))
                })?;
            pg = Some(PgScratch { admin, name, url });
        }
        let dir =
            std::env::temp_dir().join(format!("odoo-bridge-bench-delivery-{}", std::process::id()));
        let scratch = Scratch { dir, pg };
        std::fs::create_dir_all(&scratch.dir)
            .map_err(|e| failure(format!("cannot create {}: {e}", scratch.dir.display())))?;
        Ok(scratch)
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.join("delivery.db")
    }

    /// The log of daemon `replica` (from 0).
    fn log_path(&self, replica: usize) -> PathBuf {
        self.dir.join(format!("daemon-{}.log", replica + 1))
    }

    fn describe(&self) -> String {
        match &self.pg {
            Some(pg) => format!(
                "PostgreSQL database {} on {}:{}",
                pg.name,
                pg.admin.get_host(),
                pg.admin.get_port()
            ),
            None => format!("SQLite file {}", self.sqlite_path().display()),
        }
    }

    /// Where the daemon finds the store: `odoo-bridge run`'s own variables.
    fn set_env(&self, command: &mut Command) {
        match &self.pg {
            Some(pg) => {
                command.env("DATABASE_URL", &pg.url);
            }
            None => {
                command
                    .env_remove("DATABASE_URL")
                    .env("POLLER_DB_PATH", self.sqlite_path());
            }
        }
    }

    async fn open(&self) -> Result<Store, Failure> {
        let store = match &self.pg {
            Some(pg) => Store::Pg(
                store_pg::PgStore::connect(pg.admin.clone().database(&pg.name))
                    .await
                    .map_err(failure)?,
            ),
            None => Store::Sqlite(
                store_sqlite::SqliteStore::open(&self.sqlite_path())
                    .await
                    .map_err(failure)?,
            ),
        };
        match &store {
            Store::Pg(store) => store.migrate().await,
            Store::Sqlite(store) => store.migrate().await,
        }
        .map_err(failure)?;
        Ok(store)
    }

    async fn remove(&self) {
        if let Some(pg) = &self.pg {
            let forced = pg_execute(
                &pg.admin,
                format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", pg.name),
            )
            .await;
            if forced.is_err()
                && let Err(error) = pg_execute(
                    &pg.admin,
                    format!("DROP DATABASE IF EXISTS \"{}\"", pg.name),
                )
                .await
            {
                tracing::warn!(database = %pg.name, %error, "could not drop the scratch database");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Store {
    Sqlite(store_sqlite::SqliteStore),
    Pg(store_pg::PgStore),
}

macro_rules! on_store {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            Store::Sqlite($s) => $body,
            Store::Pg($s) => $body,
        }
    };
}

impl Store {
    async fn insert(&self, connection: &Connection) -> Result<(), Failure> {
        on_store!(self, s => s.insert_connection(connection).await).map_err(failure)
    }

    async fn connections(&self) -> Result<Vec<Connection>, Failure> {
        on_store!(self, s => s.connections().await).map_err(failure)
    }

    async fn flow_leases(&self) -> Result<Vec<FlowLease>, Failure> {
        on_store!(self, s => s.flow_leases().await).map_err(failure)
    }

    async fn cycles(&self) -> Result<Vec<CycleLogEntry>, Failure> {
        on_store!(self, s => s.cycles(None, 0).await).map_err(failure)
    }

    async fn close(&self) {
        on_store!(self, s => s.close().await);
    }

    /// CPU seconds so far of each PostgreSQL server process connected to the scratch
    /// database (empty for SQLite, or when the server's processes are not in this `/proc`).
    async fn backend_cpu(&self) -> HashMap<i32, f64> {
        let Store::Pg(store) = self else {
            return HashMap::new();
        };
        backend_cpu(store.pool()).await
    }
}

#[allow(clippy::too_many_arguments)]
fn connection(
    index: usize,
    odoo_url: &str,
    odoo_db: &str,
    login: &str,
    api_key: &str,
    webhook_url: &str,
    interval: u32,
    now: Timestamp,
) -> Result<Connection, Failure> {
    Ok(Connection {
        id: new_connection_id(),
        tenant_id: new_connection_id(),
        name: format!("bench-{:05}", index + 1),
        odoo_url: odoo_url.to_owned(),
        odoo_db: odoo_db.to_owned(),
        odoo_username: login.to_owned(),
        odoo_api_key: ApiKey::new(api_key.to_owned()),
        webhook_url: webhook_url.to_owned(),
        webhook_secret: WebhookSecret::new(new_webhook_secret()).map_err(failure)?,
        store_id: format!("store_{}", index + 1),
        client_id: format!("client_{}", index + 1),
        polling_interval_seconds: interval,
        odoo_min_delay_ms: 0,
        is_active: true,
        events: EventSet::default(),
        last_sync_at: None,
        cursor: None,
        created_at: now,
        updated_at: now,
    })
}

// ----- figures -------------------------------------------------------------------------------

/// The `p`-quantile (nearest rank) of sorted values.
pub(crate) fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn spread(values: &[f64]) -> String {
    match (quantile(values, 0.5), quantile(values, 0.99), values.last()) {
        (Some(p50), Some(p99), Some(max)) => {
            format!("{p50:.2} s / {p99:.2} s / {max:.2} s")
        }
        _ => "n/a".to_owned(),
    }
}

fn call_counts(value: &Value) -> BTreeMap<String, u64> {
    value["calls"]
        .as_object()
        .map(|calls| {
            calls
                .iter()
                .map(|(key, count)| (key.clone(), count.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn calls_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(key, count)| {
            (
                key.clone(),
                count.saturating_sub(before.get(key).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// CPU seconds of the three children and of the machine, read together.
#[derive(Debug, Clone, Copy)]
struct CpuReading {
    daemon: Option<f64>,
    sim: Option<f64>,
    receiver: Option<f64>,
    machine: Option<f64>,
}

impl CpuReading {
    fn read(daemons: &[u32], sim: u32, receiver: u32) -> CpuReading {
        CpuReading {
            daemon: sum_over(daemons, |pid| cpu_seconds(Some(pid))),
            sim: cpu_seconds(Some(sim)),
            receiver: cpu_seconds(Some(receiver)),
            machine: machine_busy_seconds(),
        }
    }

    fn since(&self, before: &CpuReading) -> CpuReading {
        let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        CpuReading {
            daemon: delta(self.daemon, before.daemon),
            sim: delta(self.sim, before.sim),
            receiver: delta(self.receiver, before.receiver),
            machine: delta(self.machine, before.machine),
        }
    }
}

/// `read` summed over the processes, when every one of them could be read.
fn sum_over<T: std::iter::Sum<T>>(pids: &[u32], read: impl Fn(u32) -> Option<T>) -> Option<T> {
    pids.iter().map(|pid| read(*pid)).sum()
}

fn row(label: &str, value: impl std::fmt::Display) {
    say!("  {label:<56} {value}");
}

// ----- bench delivery ------------------------------------------------------------------------

async fn measure_delivery(
    args: &DeliveryArgs,
    replicas: usize,
    product: &Path,
    scratch: &Scratch,
) -> Result<Summary, Failure> {
    let tenants = usize::from(args.tenants);
    let orders = args.orders as usize;
    say!(
        "bench delivery: {orders} confirmed orders × {} lines over {tenants} tenants, store {}, {replicas} replica{}, polling every {} s, overlap {} s",
        args.lines,
        args.store.name(),
        if replicas == 1 { "" } else { "s" },
        args.interval,
        args.overlap
    );
    say!(
        "product binary: {} (built {})",
        product.display(),
        built_at(product)
    );
    let (mut sim, details, sim_ready) = start_simulator(args.tenants, 60, 20).await?;
    say!(
        "simulator: process {} serving {tenants} Odoo {} databases ({}…), ready after {sim_ready:.1} s",
        sim.pid(),
        details.odoo_version,
        details
            .tenants
            .first()
            .map(|(url, db)| format!("{db} at {url}"))
            .unwrap_or_default()
    );
    let (mut receiver, webhook_url) = start_receiver().await?;
    say!(
        "receiver: process {} at {webhook_url} (answers 200, notes each webhook-id's arrival)",
        receiver.pid()
    );
    let store = scratch.open().await?;
    let now = Timestamp::now();
    let mut tenant_of: HashMap<String, usize> = HashMap::new();
    for (index, (url, database)) in details.tenants.iter().enumerate() {
        let connection = connection(
            index,
            url,
            database,
            &details.login,
            &details.api_key,
            &webhook_url,
            args.interval,
            now,
        )?;
        tenant_of.insert(connection.id.clone(), index);
        store.insert(&connection).await?;
    }
    let mut daemons = Vec::with_capacity(replicas);
    let mut started = Ok(());
    for replica in 0..replicas {
        match start_daemon(
            product,
            scratch,
            replica,
            &args.daemon_log_level,
            args.overlap,
            &args.run_args,
        ) {
            Ok(daemon) => daemons.push(daemon),
            Err(error) => {
                started = Err(error);
                break;
            }
        }
    }
    say!(
        "daemon{}: process{} {} running `odoo-bridge run`{} on the {} with {tenants} connections (log: {})",
        if replicas == 1 { "" } else { "s" },
        if replicas == 1 { "" } else { "es" },
        daemons
            .iter()
            .map(|daemon| daemon.pid().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        run_args_text(&args.run_args),
        scratch.describe(),
        args.daemon_log_level
    );
    let outcome = match started {
        Ok(()) => {
            delivery_run(
                args,
                scratch,
                &store,
                &mut sim,
                &mut receiver,
                &daemons,
                &tenant_of,
            )
            .await
        }
        Err(error) => Err(error),
    };
    for daemon in daemons {
        daemon.stop().await;
    }
    let outcome = match outcome {
        Ok(run) => {
            let cycles = store.cycles().await;
            cycles.map(|cycles| (run, cycles))
        }
        Err(error) => Err(error),
    };
    store.close().await;
    receiver.stop().await;
    sim.stop().await;
    let (run, cycles) = outcome?;
    Ok(report_delivery(args, replicas, &run, &cycles, &tenant_of))
}

/// What one delivery run measured.
struct DeliveryRun {
    /// Each tenant's write instant (µs).
    written: Vec<i64>,
    /// Orders made per tenant.
    made: Vec<usize>,
    create_seconds: f64,
    create_cpu: Option<f64>,
    /// `(webhook-id, arrival µs)`.
    arrivals: Vec<(String, i64)>,
    received: u64,
    malformed: u64,
    /// When this process saw the last one arrive (the CPU window's end).
    cpu: CpuReading,
    daemon_rss_before: Option<u64>,
    daemon_peak: Option<u64>,
    daemon_rss_after: Option<u64>,
    daemon_threads: Option<u64>,
    calls: BTreeMap<String, u64>,
    wait_first_cycles: f64,
    /// CPU of the PostgreSQL server processes serving the scratch database, when they run on
    /// this machine and `/proc` shows them.
    db_cpu: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
async fn delivery_run(
    args: &DeliveryArgs,
    scratch: &Scratch,
    store: &Store,
    sim: &mut ChildProcess,
    receiver: &mut ChildProcess,
    daemons: &[ChildProcess],
    tenant_of: &HashMap<String, usize>,
) -> Result<DeliveryRun, Failure> {
    // Every connection's first (empty) cycle: the daemon is running and idle.
    let started = Instant::now();
    loop {
        let connections = store.connections().await?;
        if connections.iter().all(|c| c.last_sync_at.is_some()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(failure(format!(
                "{} of {} connections never finished a cycle in 120 s; the daemon's {}",
                connections
                    .iter()
                    .filter(|c| c.last_sync_at.is_none())
                    .count(),
                connections.len(),
                daemon_trouble(scratch)
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if daemons.len() > 1 {
        wait_until_spread(store, daemons.len(), tenant_of.len(), scratch).await?;
    }
    let wait_first_cycles = started.elapsed().as_secs_f64();
    let daemon_pids: Vec<u32> = daemons.iter().map(ChildProcess::pid).collect();
    let pids = (daemon_pids.as_slice(), sim.pid(), receiver.pid());
    let status = |what: Status| sum_over(&daemon_pids, |pid| status_value(Some(pid), what));
    let calls_before = call_counts(&sim.ask("calls").await?);
    let daemon_rss_before = status(Status::Rss);
    let db_before = store.backend_cpu().await;
    let cpu_before = CpuReading::read(pids.0, pids.1, pids.2);
    let created = sim
        .ask(&format!("orders {} {}", args.orders, args.lines))
        .await?;
    let written: Vec<i64> = created["written_micros"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    let made: Vec<usize> = created["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_u64().map(|n| n as usize))
        .collect();
    let total: usize = made.iter().sum();
    if written.len() != tenant_of.len() || total as u64 != args.orders {
        return Err(failure(format!(
            "the simulator made {total} orders in {} tenants, expected {} in {}",
            written.len(),
            args.orders,
            tenant_of.len()
        )));
    }
    tracing::info!(
        orders = total,
        seconds = created["seconds"].as_f64(),
        "orders written; waiting for their delivery"
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last_note = Instant::now();
    let count = loop {
        let count = receiver.ask("count").await?;
        let distinct = count["distinct"].as_u64().unwrap_or(0);
        if distinct >= args.orders {
            break count;
        }
        if Instant::now() > deadline {
            return Err(failure(format!(
                "{distinct} of {} orders delivered after {} s; the daemon's {}",
                args.orders,
                args.timeout,
                daemon_trouble(scratch)
            )));
        }
        if last_note.elapsed() > Duration::from_secs(5) {
            tracing::info!(delivered = distinct, of = args.orders, "delivering");
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = CpuReading::read(pids.0, pids.1, pids.2).since(&cpu_before);
    let db_cpu = backend_cpu_used(&db_before, &store.backend_cpu().await);
    let daemon_peak = status(Status::PeakRss);
    let daemon_rss_after = status(Status::Rss);
    let daemon_threads = status(Status::Threads);
    let calls_after = call_counts(&sim.ask("calls").await?);
    let dump = receiver.ask("dump").await?;
    let arrivals = dump["arrivals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_i64()?)))
        .collect();
    Ok(DeliveryRun {
        written,
        made,
        create_seconds: created["seconds"].as_f64().unwrap_or(0.0),
        create_cpu: created["cpu_seconds"].as_f64(),
        arrivals,
        received: count["received"].as_u64().unwrap_or(0),
        malformed: count["malformed"].as_u64().unwrap_or(0),
        cpu,
        daemon_rss_before,
        daemon_peak,
        daemon_rss_after,
        daemon_threads,
        calls: calls_between(&calls_before, &calls_after),
        wait_first_cycles,
        db_cpu,
    })
}

/// Waits until the replicas share the tenants: every tenant's flow is leased, and by as many
/// replicas as there are (or tenants, when fewer), so that the orders are written to a
/// settled assignment.
async fn wait_until_spread(
    store: &Store,
    replicas: usize,
    tenants: usize,
    scratch: &Scratch,
) -> Result<(), Failure> {
    let started = Instant::now();
    loop {
        let leases = store.flow_leases().await?;
        let now = Timestamp::now();
        let live: Vec<_> = leases.iter().filter(|l| l.lease_until > now).collect();
        let holders: std::collections::HashSet<&str> =
            live.iter().map(|l| l.owner.as_str()).collect();
        if live.len() >= tenants && holders.len() >= replicas.min(tenants) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(failure(format!(
                "after 120 s, {} of {tenants} tenants are leased by {} of {replicas} replicas; the daemons' {}",
                live.len(),
                holders.len(),
                daemon_trouble(scratch)
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The connection id in a `webhook-id` (`{connection_id}_{order_id}_v{version}`).
fn connection_of(webhook_id: &str) -> Option<&str> {
    webhook_id.split('_').next()
}

/// One run's headline figures, for the table comparing replica counts.
struct Summary {
    replicas: usize,
    delivered: usize,
    duplicates: u64,
    orders_per_second: f64,
    latency_p50: Option<f64>,
    latency_p99: Option<f64>,
    calls: u64,
    /// `sale.order/search_read`: the change feed's polls.
    feed_calls: u64,
    daemons_cpu: Option<f64>,
    db_cpu: Option<f64>,
}

fn report_delivery(
    args: &DeliveryArgs,
    replicas: usize,
    run: &DeliveryRun,
    cycles: &[CycleLogEntry],
    tenant_of: &HashMap<String, usize>,
) -> Summary {
    let first_write = run.written.iter().copied().min().unwrap_or(0);
    let last_arrival = run.arrivals.iter().map(|(_, at)| *at).max().unwrap_or(0);
    let wall = (last_arrival - first_write) as f64 / 1e6;
    let delivered = run.arrivals.len();
    // Per tenant: when the cycle that first found its orders started.
    let mut pickup: Vec<Option<i64>> = vec![None; run.written.len()];
    let mut orders_read = 0u64;
    let mut cycles_in_window = 0u64;
    for entry in cycles {
        let log = &entry.log;
        let started = log.started_at.as_microsecond();
        if started > last_arrival || started + (log.duration_ms as i64) * 1000 < first_write {
            continue;
        }
        cycles_in_window += 1;
        orders_read += log.found;
        if log.found == 0 {
            continue;
        }
        if let Some(&tenant) = tenant_of.get(&log.flow_id)
            && let Some(slot) = pickup.get_mut(tenant)
        {
            *slot = Some(slot.map_or(started, |known: i64| known.min(started)));
        }
    }
    let mut from_write = Vec::with_capacity(delivered);
    let mut from_write_date = Vec::with_capacity(delivered);
    let mut from_poll = Vec::with_capacity(delivered);
    for (id, at) in &run.arrivals {
        let Some(&tenant) = connection_of(id).and_then(|c| tenant_of.get(c)) else {
            continue;
        };
        let Some(&written) = run.written.get(tenant) else {
            continue;
        };
        from_write.push((at - written) as f64 / 1e6);
        from_write_date.push((at - written.div_euclid(1_000_000) * 1_000_000) as f64 / 1e6);
        if let Some(Some(started)) = pickup.get(tenant) {
            from_poll.push((at - (*started).max(written)) as f64 / 1e6);
        }
    }
    let poll_waits = sorted(
        pickup
            .iter()
            .zip(&run.written)
            .filter_map(|(started, written)| Some(((*started)? - written).max(0) as f64 / 1e6))
            .collect(),
    );
    let from_write = sorted(from_write);
    let from_write_date = sorted(from_write_date);
    let from_poll = sorted(from_poll);
    let total_calls: u64 = run.calls.values().sum();
    let per_100 = |count: u64, of: u64| {
        if of == 0 {
            "n/a".to_owned()
        } else {
            format!("{:.1}", count as f64 * 100.0 / of as f64)
        }
    };

    let duplicates = run
        .received
        .saturating_sub(delivered as u64 + run.malformed);
    say!("");
    say!(
        "{:<58} {}",
        "measure",
        format!("value ({} store)", args.store.name())
    );
    row(
        "orders delivered (distinct webhook-ids / expected)",
        format!(
            "{delivered} / {} ({} POSTs, {} duplicates, {} malformed)",
            args.orders, run.received, duplicates, run.malformed
        ),
    );
    row(
        "writing the orders in the simulator (not timed)",
        format!(
            "{:.2} s, {} per tenant",
            run.create_seconds,
            run.made.first().copied().unwrap_or(0)
        ),
    );
    row("first write → last delivery", format!("{wall:.2} s"));
    row(
        "orders/s end to end",
        format!("{:.0}", delivered as f64 / wall.max(1e-9)),
    );
    row(
        "latency from the write instant, p50 / p99 / max",
        spread(&from_write),
    );
    row(
        "latency from write_date as Odoo shows it (whole s)",
        spread(&from_write_date),
    );
    row(
        "of which waiting for the next poll (per tenant)",
        spread(&poll_waits),
    );
    row(
        "latency from the poll's start, p50 / p99 / max",
        spread(&from_poll),
    );
    row(
        "daemon RSS: idle before the orders → peak (VmHWM)",
        format!(
            "{} → {} ({} at the end)",
            mib(run.daemon_rss_before),
            mib(run.daemon_peak),
            mib(run.daemon_rss_after)
        ),
    );
    row(
        "daemon threads",
        run.daemon_threads
            .map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
    );
    row(
        "Odoo calls (all tenants, first write → last delivery)",
        total_calls,
    );
    row(
        "Odoo calls per 100 orders delivered",
        per_100(total_calls, delivered as u64),
    );
    row(
        "orders read by the polls (re-reads of the overlap too)",
        format!(
            "{orders_read} in {cycles_in_window} cycles ({:.2} reads per order)",
            orders_read as f64 / delivered.max(1) as f64
        ),
    );
    row(
        "Odoo calls per 100 orders read",
        per_100(total_calls, orders_read),
    );
    let cpu = &run.cpu;
    let sim_serving = cpu
        .sim
        .map(|sim| (sim - run.create_cpu.unwrap_or(0.0)).max(0.0));
    row(
        if replicas == 1 {
            "CPU of the daemon (our engine)"
        } else {
            "CPU of the daemons (our engine), summed"
        },
        seconds_text(cpu.daemon),
    );
    row(
        "CPU of the simulator serving (writing excluded)",
        format!(
            "{} (+{} writing the orders)",
            seconds_text(sim_serving),
            seconds_text(run.create_cpu)
        ),
    );
    row("CPU of the receiver", seconds_text(cpu.receiver));
    if args.store == StoreChoice::Postgres {
        row(
            "CPU of the PostgreSQL server (scratch database)",
            seconds_text(run.db_cpu),
        );
    }
    let others = cpu.machine.map(|machine| {
        (machine
            - cpu.daemon.unwrap_or(0.0)
            - cpu.sim.unwrap_or(0.0)
            - cpu.receiver.unwrap_or(0.0)
            - run.db_cpu.unwrap_or(0.0))
        .max(0.0)
    });
    row(
        "CPU of other processes on the machine (noise)",
        seconds_text(others),
    );
    if let (Some(daemon), Some(sim)) = (cpu.daemon, sim_serving) {
        row(
            "our CPU share: daemon / (daemon + simulator)",
            format!(
                "{:.0} % (daemon {:.2}× the simulator; {:.2} ms of daemon CPU per order)",
                daemon * 100.0 / (daemon + sim).max(1e-9),
                daemon / sim.max(1e-9),
                daemon * 1000.0 / delivered.max(1) as f64
            ),
        );
        if let Some(db) = run.db_cpu {
            let ours = daemon + db;
            row(
                "… counting the PostgreSQL server as ours",
                format!(
                    "{:.0} % ({:.2} ms per order)",
                    ours * 100.0 / (ours + sim).max(1e-9),
                    ours * 1000.0 / delivered.max(1) as f64
                ),
            );
        }
    }
    say!("");
    say!("Odoo calls by model/method (first write → last delivery):");
    for (key, count) in &run.calls {
        say!(
            "  {key:<44} {count:>8}  {:>7} per 100 orders",
            per_100(*count, delivered as u64)
        );
    }
    say!("");
    say!(
        "Latency: from each tenant's write instant in the simulator (µs; Odoo stores it but shows write_date truncated to the second, the second row) to the order's arrival at the receiver, both on this machine's wall clock. All of a tenant's orders were written in one transaction, so each tenant's {} orders are a burst; the poll wait is set by the polling interval ({} s), not by the engine.",
        run.made.first().copied().unwrap_or(0),
        args.interval
    );
    say!(
        "CPU: /proc/<pid>/stat utime+stime of each process from just before the write to when this process saw the last delivery. The daemon ran `odoo-bridge run`'s code in its own process; the receiver is a process of its own too (not counted in ours). Its first cycles took {:.1} s before the orders were written. Odoo calls are the simulator's own counters (every request that reached it), summed over the tenants. This machine has {} CPUs.",
        run.wait_first_cycles,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if cfg!(debug_assertions) {
        say!(
            "note: this is a debug build; run `cargo run --release -p odoo-bridge-bench -- delivery` for real figures"
        );
    }
    Summary {
        replicas,
        delivered,
        duplicates,
        orders_per_second: delivered as f64 / wall.max(1e-9),
        latency_p50: quantile(&from_write, 0.5),
        latency_p99: quantile(&from_write, 0.99),
        calls: total_calls,
        feed_calls: run
            .calls
            .get("sale.order/search_read")
            .copied()
            .unwrap_or(0),
        daemons_cpu: cpu.daemon,
        db_cpu: run.db_cpu,
    }
}

/// The runs side by side: work shared by the replicas shows as Odoo calls that do not grow
/// with them.
fn report_replicas(args: &DeliveryArgs, summaries: &[Summary]) {
    say!("");
    say!(
        "replicas compared: {} orders over {} tenants each run, store {}, polling every {} s",
        args.orders,
        args.tenants,
        args.store.name(),
        args.interval
    );
    say!(
        "  {:>8} {:>10} {:>9} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12}",
        "replicas",
        "delivered",
        "orders/s",
        "p50 lat.",
        "p99 lat.",
        "Odoo calls",
        "feed polls",
        "daemons CPU",
        "PG CPU"
    );
    let seconds =
        |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} s"));
    for summary in summaries {
        say!(
            "  {:>8} {:>10} {:>9.0} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12}",
            summary.replicas,
            if summary.duplicates == 0 {
                summary.delivered.to_string()
            } else {
                format!("{} (+{} dup)", summary.delivered, summary.duplicates)
            },
            summary.orders_per_second,
            seconds(summary.latency_p50),
            seconds(summary.latency_p99),
            summary.calls,
            summary.feed_calls,
            seconds(summary.daemons_cpu),
            seconds(summary.db_cpu)
        );
    }
    say!(
        "Odoo calls and feed polls (sale.order search_read) are the simulators' counters from the first write to the last delivery; CPU is utime+stime over the same window, of the daemons summed and of the PostgreSQL server processes serving the scratch database."
    );
}

// ----- bench idle ----------------------------------------------------------------------------

struct Sample {
    at: f64,
    cpu: Option<f64>,
    rss: Option<u64>,
    switches: u64,
    polls: u64,
    calls: u64,
}

async fn measure_idle(args: &IdleArgs, product: &Path, scratch: &Scratch) -> Result<(), Failure> {
    let count = args.connections as usize;
    say!(
        "bench idle: {count} active connections polling every {} s one simulator with no orders, for {} s; store {}",
        args.interval,
        args.seconds,
        args.store.name()
    );
    say!(
        "product binary: {} (built {})",
        product.display(),
        built_at(product)
    );
    let (mut sim, details, _) = start_simulator(1, 20, 10).await?;
    let Some((url, database)) = details.tenants.first().cloned() else {
        return Err(failure("the simulator serves no tenant"));
    };
    let (mut receiver, webhook_url) = start_receiver().await?;
    let store = scratch.open().await?;
    let now = Timestamp::now();
    for index in 0..count {
        store
            .insert(&connection(
                index,
                &url,
                &database,
                &details.login,
                &details.api_key,
                &webhook_url,
                args.interval,
                now,
            )?)
            .await?;
    }
    // The product's default overlap: idle connections re-read nothing anyway.
    let daemon = start_daemon(
        product,
        scratch,
        0,
        &args.daemon_log_level,
        120,
        &args.run_args,
    )?;
    say!(
        "simulator: process {} at {url}; receiver: process {}; daemon: process {} (`odoo-bridge run`{}, log {}) on the {}",
        sim.pid(),
        receiver.pid(),
        daemon.pid(),
        run_args_text(&args.run_args),
        args.daemon_log_level,
        scratch.describe()
    );
    let outcome = idle_run(args, &mut sim, &daemon).await;
    let pid = daemon.pid();
    let (fds, sockets) = descriptors(pid);
    let received = receiver.ask("count").await.ok();
    daemon.stop().await;
    let cycles = store.cycles().await;
    store.close().await;
    receiver.stop().await;
    sim.stop().await;
    let mut run = outcome?;
    run.fds = fds;
    run.sockets = sockets;
    let cycles = cycles?;
    report_idle(args, &run, &cycles, received.as_ref(), scratch);
    Ok(())
}

struct IdleRun {
    samples: Vec<Sample>,
    /// When every connection had polled once (s after the daemon started), and the samples
    /// index there.
    warm: Option<(f64, usize)>,
    peak: Option<u64>,
    threads_warm: HashMap<u32, (String, f64, u64)>,
    threads_end: HashMap<u32, (String, f64, u64)>,
    sim_cpu: Option<f64>,
    calls: BTreeMap<String, u64>,
    fds: usize,
    sockets: usize,
}

async fn idle_run(
    args: &IdleArgs,
    sim: &mut ChildProcess,
    daemon: &ChildProcess,
) -> Result<IdleRun, Failure> {
    let pid = daemon.pid();
    let started = Instant::now();
    let sim_cpu_before = cpu_seconds(Some(sim.pid()));
    let calls_before = call_counts(&sim.ask("calls").await?);
    let mut samples = Vec::new();
    let mut warm = None;
    let mut threads_warm = HashMap::new();
    let end = Duration::from_secs(args.seconds);
    let mut next = Duration::ZERO;
    loop {
        let elapsed = started.elapsed();
        let calls = calls_between(&calls_before, &call_counts(&sim.ask("calls").await?));
        let polls = calls.get("sale.order/search_read").copied().unwrap_or(0);
        let sample = Sample {
            at: elapsed.as_secs_f64(),
            cpu: cpu_seconds(Some(pid)),
            rss: status_value(Some(pid), Status::Rss),
            switches: context_switches(pid),
            polls,
            calls: calls.values().sum(),
        };
        if sample.cpu.is_none() {
            return Err(failure(
                "the daemon process ended early; its log is in the scratch directory",
            ));
        }
        if warm.is_none() && polls >= u64::from(args.connections) {
            warm = Some((sample.at, samples.len()));
            threads_warm = threads(pid);
        }
        samples.push(sample);
        if elapsed >= end {
            break;
        }
        next += Duration::from_secs(1);
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + next.min(end))).await;
    }
    let calls = calls_between(&calls_before, &call_counts(&sim.ask("calls").await?));
    Ok(IdleRun {
        samples,
        warm,
        peak: status_value(Some(pid), Status::PeakRss),
        threads_warm,
        threads_end: threads(pid),
        sim_cpu: cpu_seconds(Some(sim.pid()))
            .zip(sim_cpu_before)
            .map(|(after, before)| after - before),
        calls,
        fds: 0,
        sockets: 0,
    })
}

fn report_idle(
    args: &IdleArgs,
    run: &IdleRun,
    cycles: &[CycleLogEntry],
    received: Option<&Value>,
    scratch: &Scratch,
) {
    let (Some(first), Some(last)) = (run.samples.first(), run.samples.last()) else {
        return;
    };
    let percent = |from: &Sample, to: &Sample| match (from.cpu, to.cpu) {
        (Some(a), Some(b)) if to.at > from.at => Some((b - a) * 100.0 / (to.at - from.at)),
        _ => None,
    };
    let pct = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} %"));
    // The whole life: CPU since the process started (start-up included) over the wall time.
    let whole = last.cpu.map(|cpu| cpu * 100.0 / last.at.max(1e-9));
    let window = (args.seconds / 10).clamp(5, 60) as f64;
    say!("");
    say!(
        "{:>7} {:>7} {:>9} {:>10} {:>10} {:>10} {:>11}",
        "from s",
        "to s",
        "CPU %",
        "RSS MiB",
        "polls",
        "Odoo calls",
        "wakeups/s"
    );
    let mut start = 0usize;
    while start + 1 < run.samples.len() {
        let from = &run.samples[start];
        let end = run.samples[start..]
            .iter()
            .position(|s| s.at >= from.at + window)
            .map_or(run.samples.len() - 1, |offset| start + offset);
        let to = &run.samples[end];
        say!(
            "{:>7.0} {:>7.0} {:>9} {:>10} {:>10} {:>10} {:>11.0}",
            from.at,
            to.at,
            pct(percent(from, to)),
            to.rss.map_or_else(
                || "n/a".to_owned(),
                |kib| format!("{:.1}", kib as f64 / 1024.0)
            ),
            to.polls - from.polls,
            to.calls - from.calls,
            (to.switches - from.switches) as f64 / (to.at - from.at).max(1e-9)
        );
        start = end;
    }
    let steady = run.warm.and_then(|(_, index)| {
        let from = run.samples.get(index)?;
        percent(from, last)
    });
    say!("");
    say!("{:<58} value", "measure");
    row(
        "daemon CPU, whole run (start-up included)",
        format!(
            "{} of one core ({} s CPU over {:.0} s)",
            pct(whole),
            last.cpu
                .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}")),
            last.at
        ),
    );
    match run.warm {
        Some((at, _)) => row(
            &format!("daemon CPU, after every connection polled once ({at:.0} s; aim < 1 %)"),
            pct(steady),
        ),
        None => row(
            "daemon CPU, after every connection polled once",
            "never happened: not every connection polled",
        ),
    }
    row(
        "daemon RSS: peak (VmHWM) / final (VmRSS)",
        format!("{} / {} (aim < 100 MiB)", mib(run.peak), mib(last.rss)),
    );
    row(
        "daemon at the end: threads, open fds (sockets)",
        format!("{}, {} ({})", run.threads_end.len(), run.fds, run.sockets),
    );
    let steady_seconds = run.warm.map_or(0.0, |(at, _)| last.at - at);
    let wakeups = run
        .warm
        .and_then(|(_, index)| run.samples.get(index))
        .map(|from| (last.switches - from.switches) as f64 / steady_seconds.max(1e-9));
    row(
        "daemon context switches per second after warm-up",
        wakeups.map_or_else(|| "n/a".to_owned(), |w| format!("{w:.0}")),
    );
    let total_calls: u64 = run.calls.values().sum();
    row(
        "Odoo calls (whole run)",
        format!(
            "{total_calls}: {}",
            run.calls
                .iter()
                .map(|(key, count)| format!("{key} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let errors = cycles
        .iter()
        .filter(|entry| entry.log.error_message.is_some())
        .count();
    row(
        "sync-log rows (cycles), with an error",
        format!("{}, {errors}", cycles.len()),
    );
    row(
        "simulator CPU (whole run)",
        format!(
            "{} ({} of one core)",
            seconds_text(run.sim_cpu),
            pct(run.sim_cpu.map(|cpu| cpu * 100.0 / last.at.max(1e-9)))
        ),
    );
    if let Some(received) = received {
        row(
            "webhooks received (none expected)",
            received["received"].as_u64().unwrap_or(0),
        );
    }
    // Where the daemon's CPU went after warm-up, by thread name.
    let mut by_name: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (tid, (name, cpu, _)) in &run.threads_end {
        let before = run.threads_warm.get(tid).map_or(0.0, |(_, cpu, _)| *cpu);
        let entry = by_name.entry(name.clone()).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += cpu - before;
    }
    if steady_seconds > 0.0 {
        say!("");
        say!(
            "daemon CPU after warm-up by thread ({steady_seconds:.0} s; threads that ended meanwhile are not listed):"
        );
        for (name, (count, cpu)) in &by_name {
            say!(
                "  {name:<24} ×{count:<3} {cpu:>7.2} s  {:>6.2} % of one core",
                cpu * 100.0 / steady_seconds
            );
        }
    }
    say!("");
    say!(
        "CPU %: utime+stime of the daemon process (/proc/<pid>/stat) over wall time, per window; polls: sale.order search_read calls the simulator served; wakeups/s: the daemon's threads' context switches. first sample at {:.1} s. Daemon log: {} (removed at the end).",
        first.at,
        scratch.log_path(0).display()
    );
    // The aim is the steady state (the "after warm-up"): start-up logs 1,000 tenants
    // in, which an idle daemon does once.
    let mut missed = Vec::new();
    if run.warm.is_none() || steady.is_some_and(|cpu| cpu >= 1.0) {
        missed.push("CPU");
    }
    if run.peak.is_some_and(|kib| kib >= 100 * 1024) {
        missed.push("memory");
    }
    if missed.is_empty() {
        say!("Both aims met (CPU < 1 %, RSS < 100 MiB).");
    } else {
        say!("Aim missed: {}.", missed.join(" and "));
    }
    if cfg!(debug_assertions) {
        say!(
            "note: this is a debug build; run `cargo run --release -p odoo-bridge-bench -- idle` for real figures"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values = sorted((1..=100).map(f64::from).rev().collect());
        assert_eq!(quantile(&values, 0.5), Some(50.0));
        assert_eq!(quantile(&values, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
    }

    #[test]
    fn the_scratch_url_keeps_everything_but_the_database() {
        assert_eq!(
            url_with_database("postgres://u:p@127.0.0.1:5432/test?sslmode=disable", "x").as_deref(),
            Some("postgres://u:p@127.0.0.1:5432/x?sslmode=disable")
        );
        assert_eq!(
            url_with_database("postgres://127.0.0.1", "x").as_deref(),
            Some("postgres://127.0.0.1/x")
        );
    }

    #[test]
    fn webhook_ids_name_their_connection() {
        assert_eq!(
            connection_of("00aa11bb22cc33dd_42_v1"),
            Some("00aa11bb22cc33dd")
        );
    }
}
