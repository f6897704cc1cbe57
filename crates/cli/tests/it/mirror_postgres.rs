//! Seed 003's mirror through the real `odoo-bridge` binary, into a real PostgreSQL on
//! 127.0.0.1 (one fresh database per test), against a simulator process on loopback.
//!
//! Nothing here waits on a clock: a run is held at a known point with PostgreSQL's own locks
//! (a row or table lock taken by the test, seen in `pg_stat_activity`), and every wait is on
//! a log line or a condition, bounded by [`TIMEOUT`].

use crate::ping::{BINARY, SimProcess};
use engine::config::MirrorConfig;
use odoo_rpc::{ClientConfig, Context, Domain, OdooClient, SearchReadOptions, field};
use serde_json::{Map, Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest any single wait of these tests may take before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// What `POSTGRES_PASSWORD` (the seed's `password_env`) is set to. The server trusts
/// loopback connections, so any value works; it must never show up in any output.
pub const PG_PASSWORD: &str = "pg-pass-Never-Printed-5813";

/// The seed's eight models, in its order.
pub const SEED_MODELS: [&str; 8] = [
    "sale.order",
    "sale.order.line",
    "res.partner",
    "product.template",
    "product.product",
    "res.users",
    "crm.lead",
    "account.move",
];

// ---------------------------------------------------------------------------------------
// PostgreSQL: one database per test.

const PREFIX: &str = "odoo_bridge_it_";
static NEXT: AtomicU32 = AtomicU32::new(0);
static STALE_DROPPED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

fn admin_options() -> PgConnectOptions {
    let url = std::env::var("ODOO_BRIDGE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&url).expect("ODOO_BRIDGE_TEST_PG is not a URL");
    assert!(
        matches!(options.get_host(), "127.0.0.1" | "localhost"),
        "tests only run against a PostgreSQL on 127.0.0.1"
    );
    options
}

async fn admin() -> PgConnection {
    PgConnection::connect_with(&admin_options())
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (start it: pg_ctlcluster <version> main start)")
}

/// Drops the databases of test processes that no longer run (a killed test cannot).
async fn drop_stale(connection: &mut PgConnection) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'odoo\\_bridge\\_it\\_%'",
    )
    .fetch_all(&mut *connection)
    .await
    .expect("list test databases");
    for name in names {
        let pid = name[PREFIX.len()..].split('_').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = connection
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// A fresh, empty database (no tables: the binary creates them), dropped with this value.
#[derive(Debug)]
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let mut connection = admin().await;
        STALE_DROPPED
            .get_or_init(|| drop_stale(&mut connection))
            .await;
        let name = format!(
            "{PREFIX}{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        connection
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create the test database");
        connection.close().await.expect("close");
        PgDb { name }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&admin_options().database(&self.name))
            .await
            .expect("connect to the test database")
    }

    /// One number from a query.
    pub async fn number(&self, sql: &'static str) -> i64 {
        let mut connection = self.connect().await;
        let value: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        connection.close().await.expect("close");
        value
    }

    /// `(rows, distinct ids)` per model in `odoo_raw_records`.
    pub async fn mirrored(&self) -> BTreeMap<String, (i64, i64)> {
        let mut connection = self.connect().await;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT model, count(*), count(DISTINCT odoo_id) FROM odoo_raw_records GROUP BY model",
        )
        .fetch_all(&mut connection)
        .await
        .expect("count rows");
        connection.close().await.expect("close");
        rows.into_iter()
            .map(|(model, rows, ids)| (model, (rows, ids)))
            .collect()
    }

    /// The mirrored ids of one model.
    pub async fn ids(&self, model: &str) -> Vec<i64> {
        let mut connection = self.connect().await;
        let ids = sqlx::query_scalar(
            "SELECT odoo_id FROM odoo_raw_records WHERE model = $1 ORDER BY odoo_id",
        )
        .bind(model)
        .fetch_all(&mut connection)
        .await
        .expect("ids");
        connection.close().await.expect("close");
        ids
    }

    /// Every row: `(model, id)` → the row.
    pub async fn rows(&self) -> BTreeMap<(String, i64), StoredRow> {
        let mut connection = self.connect().await;
        let rows = sqlx::query(
            "SELECT model, odoo_id, payload, synced_at::text AS synced_at, content_hash, \
             deleted_at::text AS deleted_at FROM odoo_raw_records",
        )
        .fetch_all(&mut connection)
        .await
        .expect("rows");
        connection.close().await.expect("close");
        rows.iter()
            .map(|row| {
                let sqlx::types::Json(payload): sqlx::types::Json<Value> = row.get("payload");
                (
                    (row.get("model"), row.get("odoo_id")),
                    StoredRow {
                        payload,
                        synced_at: row.get("synced_at"),
                        content_hash: row.get("content_hash"),
                        deleted_at: row.get("deleted_at"),
                    },
                )
            })
            .collect()
    }

    /// `odoo_sync_runs`, oldest first.
    pub async fn runs(&self) -> Vec<RunRow> {
        let mut connection = self.connect().await;
        let rows = sqlx::query(
            "SELECT id, status, error, finished_at IS NOT NULL AS finished, pages, fetched, \
             inserted, updated, unchanged, deleted, restored FROM odoo_sync_runs ORDER BY id",
        )
        .fetch_all(&mut connection)
        .await
        .expect("runs");
        connection.close().await.expect("close");
        rows.iter()
            .map(|row| RunRow {
                id: row.get("id"),
                status: row.get("status"),
                error: row.get("error"),
                finished: row.get("finished"),
                pages: row.get("pages"),
                fetched: row.get("fetched"),
                inserted: row.get("inserted"),
                updated: row.get("updated"),
                unchanged: row.get("unchanged"),
                deleted: row.get("deleted"),
                restored: row.get("restored"),
            })
            .collect()
    }

    /// How many other sessions of this database wait for a lock (`pg_stat_activity`).
    pub async fn waiting_on_locks(&self, connection: &mut PgConnection) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
        )
        .fetch_one(connection)
        .await
        .expect("pg_stat_activity")
    }

    /// Waits until `count` sessions wait for a lock; fails if one of `processes` ends first.
    pub async fn wait_for_blocked(&self, count: i64, processes: &mut [&mut Background]) {
        // A connection of its own: inside a transaction, `pg_stat_activity` is a snapshot
        // taken at its first read.
        let mut connection = self.connect().await;
        let waited = tokio::time::timeout(TIMEOUT, async {
            loop {
                if self.waiting_on_locks(&mut connection).await >= count {
                    return;
                }
                for process in processes.iter_mut() {
                    if process.has_exited() {
                        panic!(
                            "a run ended before it blocked on the test's lock; stderr:\n{}",
                            process.seen()
                        );
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "no run blocked on the test's lock in {TIMEOUT:?}"
        );
    }

    /// Waits until no other session is connected to this database (a killed client's
    /// sessions end when their server processes notice).
    pub async fn wait_until_alone(&self) {
        let mut connection = self.connect().await;
        let waited = tokio::time::timeout(TIMEOUT, async {
            loop {
                let others: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid()",
                )
                .fetch_one(&mut connection)
                .await
                .expect("pg_stat_activity");
                if others == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "sessions of a dead run stayed connected");
        connection.close().await.expect("close");
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Drop cannot await and the test's runtime may be gone: drop from a thread with a
        // runtime of its own. `WITH (FORCE)` ends sessions a killed run left behind.
        let name = std::mem::take(&mut self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect_with(&admin_options()).await.ok()?;
                connection
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .await
                    .ok()?;
                connection.close().await.ok()
            })
        })
        .join();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub payload: Value,
    pub synced_at: String,
    pub content_hash: String,
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub status: String,
    pub error: Option<String>,
    pub finished: bool,
    pub pages: i64,
    pub fetched: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub restored: i64,
}

// ---------------------------------------------------------------------------------------
// Configurations.

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mirror.yml"))
        .expect("examples/mirror.yml")
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "examples/mirror.yml changed: {from:?} is no longer there once"
    );
    text.replacen(from, to, 1)
}

/// Seed 003's example, unchanged apart from the Odoo and PostgreSQL host, database and user.
pub fn seed_config(odoo_url: &str, database: &str) -> String {
    let text = example();
    let text = replace_once(
        &text,
        "\"https://your-odoo-host\"",
        &format!("\"{odoo_url}\""),
    );
    let text = replace_once(&text, "\"odoo_db\"", "\"odoo\"");
    let text = replace_once(&text, "\"connector_user\"", "\"admin\"");
    let text = replace_once(&text, "host: \"localhost\"", "host: \"127.0.0.1\"");
    let text = replace_once(&text, "\"ingest_db\"", &format!("\"{database}\""));
    replace_once(&text, "\"ingest_user\"", "\"postgres\"")
}

/// The `postgres` section for a test database.
pub fn pg_section(database: &str, lock_strategy: &str, password_env: &str) -> String {
    format!(
        "postgres:\n  connection:\n    type: params\n    host: 127.0.0.1\n    port: 5432\n    database: {database}\n    user: postgres\n    password_env: {password_env}\n  ssl_mode: disable\n  lock_strategy: {lock_strategy}\n"
    )
}

/// A configuration of our own: `target` is a `postgres:` or `sqlite:` section, `models` the
/// YAML list under `models:`. Retries are quick.
pub fn custom_config(odoo_url: &str, target: &str, models: &str) -> String {
    format!(
        "odoo:\n  base_url: \"{odoo_url}\"\n  database: odoo\n  username: admin\n{target}sync:\n  request_timeout_seconds: 30\n  max_retries: 3\n  backoff_base_ms: 10\nmodels:\n{models}"
    )
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.yml");
    std::fs::write(&path, text).expect("write the configuration");
    path
}

// ---------------------------------------------------------------------------------------
// The binary.

/// `odoo-bridge --log-format json <args>` with a clean environment: the Odoo key only if
/// given, `POSTGRES_PASSWORD` set, killed if the test drops it.
pub fn bridge(args: &[&str], key: Option<&str>) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--log-format", "json"])
        .args(args)
        .env_remove("ODOO_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("ODOO_BRIDGE_LOG_LEVEL")
        .env("POSTGRES_PASSWORD", PG_PASSWORD)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(key) = key {
        command.env("ODOO_API_KEY", key);
    }
    command
}

/// `odoo-bridge sync --config <config> <extra>`.
pub fn sync_command(config: &Path, key: Option<&str>, extra: &[&str]) -> Command {
    let config = config.to_str().expect("a UTF-8 path");
    let mut args = vec!["sync", "--config", config];
    args.extend_from_slice(extra);
    bridge(&args, key)
}

/// What a finished process left.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The counts `sync` printed for `model`.
    pub fn printed(&self, model: &str) -> Printed {
        let line = self
            .stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(model))
            .unwrap_or_else(|| panic!("no line for {model}:\n{}", self.text()));
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 5, "{line}");
        Printed {
            fetched: numbers[0],
            new: numbers[1],
            changed: numbers[2],
            unchanged: numbers[3],
            deleted: numbers[4],
        }
    }

    /// The JSON log lines on stderr.
    pub fn logs(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.text()
        );
    }
}

/// The counters of one model's summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printed {
    pub fetched: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

/// Runs a command to its end (at most [`TIMEOUT`]).
pub async fn finish(mut command: Command) -> Finished {
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("odoo-bridge did not finish in {TIMEOUT:?}"))
        .expect("the binary runs");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A command running in the background, its stderr lines readable as they come.
#[derive(Debug)]
pub struct Background {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Background {
    pub fn spawn(mut command: Command) -> Background {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = tokio::spawn(async move {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text).await;
            text
        });
        let (sender, lines) = mpsc::unbounded_channel();
        let err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut reader = BufReader::new(err).lines();
            let mut text = String::new();
            while let Ok(Some(line)) = reader.next_line().await {
                text.push_str(&line);
                text.push('\n');
                let _ = sender.send(line);
            }
            text
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
            stdout,
            stderr,
        }
    }

    /// Waits for a JSON log line `matches` accepts, and returns it.
    pub async fn wait_for_log(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(TIMEOUT, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && matches(&value)
                {
                    return Some(value);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(value)) => value,
            Ok(None) => panic!(
                "the process ended without the expected log line:\n{}",
                self.seen()
            ),
            Err(_) => panic!("no expected log line in {TIMEOUT:?}:\n{}", self.seen()),
        }
    }

    /// The stderr lines read so far.
    pub fn seen(&self) -> String {
        self.seen.join("\n")
    }

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, as `kill -9` sends it.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill the run");
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the killed run ends")
            .expect("wait");
    }

    pub async fn finish(mut self) -> Finished {
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the run did not end in {TIMEOUT:?}:\n{}", self.seen()))
            .expect("wait");
        let stdout = self.stdout.await.expect("stdout reader");
        let stderr = self.stderr.await.expect("stderr reader");
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

/// A "page written" log line of `model` with at least `pages` pages.
pub fn page_written(model: &'static str, pages: u64) -> impl Fn(&Value) -> bool {
    move |line| {
        line["message"] == "page written"
            && line["model"] == model
            && line["pages"].as_u64().is_some_and(|n| n >= pages)
    }
}

// ---------------------------------------------------------------------------------------
// Odoo.

pub fn odoo(sim: &SimProcess) -> OdooClient {
    OdooClient::new(ClientConfig::new(sim.url(), "odoo", "admin", sim.key())).expect("a client")
}

fn all_records() -> Context {
    Context::new().active_test(false)
}

/// How many records of each configured model Odoo has under the model's domain, archived
/// ones included: what a full backfill must mirror.
pub async fn odoo_counts(
    client: &OdooClient,
    config_text: &str,
    skip: &[&str],
) -> BTreeMap<String, i64> {
    let config = MirrorConfig::parse(Path::new("config.yml"), config_text).expect("valid");
    let mut counts = BTreeMap::new();
    for model in config
        .models
        .iter()
        .filter(|m| !skip.contains(&m.name.as_str()))
    {
        let count = client
            .search_count(&model.name, &model.domain, Some(&all_records()))
            .await
            .unwrap_or_else(|e| panic!("search_count {}: {e}", model.name));
        counts.insert(model.name.clone(), i64::try_from(count).expect("count"));
    }
    counts
}

/// Every id of `model` under `domain`, archived ones included.
pub async fn odoo_ids(client: &OdooClient, model: &str, domain: Domain) -> Vec<i64> {
    let mut ids = client
        .search(
            model,
            &SearchReadOptions::new(domain)
                .order("id asc")
                .context(all_records()),
        )
        .await
        .expect("search");
    ids.sort_unstable();
    ids
}

fn vals(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// Asserts the mirror holds exactly what Odoo has, once, for every model of `expected`.
pub async fn assert_mirrors(db: &PgDb, expected: &BTreeMap<String, i64>) {
    let mirrored = db.mirrored().await;
    for (model, count) in expected {
        let (rows, ids) = mirrored.get(model).copied().unwrap_or((0, 0));
        assert_eq!(rows, ids, "{model}: duplicated ids");
        assert_eq!(rows, *count, "{model}: mirrored rows vs Odoo's records");
    }
}

/// Ids of active `res.partner` records nothing points at (no order, user, company or
/// contact): safe to rename, archive or delete without touching other records.
async fn free_partners(client: &OdooClient) -> Vec<i64> {
    let mut used = BTreeSet::new();
    for (model, fields) in [
        (
            "sale.order",
            &["partner_id", "partner_invoice_id", "partner_shipping_id"][..],
        ),
        ("res.users", &["partner_id"][..]),
        ("res.company", &["partner_id"][..]),
        ("res.partner", &["parent_id"][..]),
    ] {
        let (present, _) = client
            .existing_fields(model, fields)
            .await
            .expect("fields_get");
        let records = client
            .search_read(
                model,
                &SearchReadOptions::new(Domain::all())
                    .fields(present.iter().map(String::as_str))
                    .context(all_records()),
            )
            .await
            .expect("search_read");
        for record in &records {
            for name in &present {
                if let Ok(Some(reference)) = record.many2one(name) {
                    used.insert(reference.id);
                }
            }
        }
    }
    let mut partners = odoo_ids(client, "res.partner", field("active").eq(true)).await;
    partners.retain(|id| !used.contains(id));
    partners
}

// ---------------------------------------------------------------------------------------
// 1. Full backfill.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_config_backfills_all_eight_models_into_postgres() {
    let sim = SimProcess::start_with_data(
        &["--partners", "40", "--orders", "30", "--products", "10"],
        &[],
    );
    let client = odoo(&sim);
    // The generator makes no leads or invoices: add some, plus a journal entry the seed's
    // account.move domain must leave out.
    let partner = free_partners(&client).await[0];
    client
        .create(
            "crm.lead",
            vec![
                vals(json!({"name": "Lead A"})),
                vals(json!({"name": "Lead B"})),
            ],
            None,
        )
        .await
        .expect("create leads");
    client
        .create(
            "account.move",
            vec![
                vals(json!({"move_type": "out_invoice", "partner_id": partner})),
                vals(json!({"move_type": "out_refund", "partner_id": partner})),
            ],
            None,
        )
        .await
        .expect("create invoices");
    let entry = client
        .create(
            "account.move",
            vec![vals(json!({"move_type": "entry"}))],
            None,
        )
        .await
        .expect("create an entry")[0];

    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_config(sim.url(), &db.name);
    let config = write_config(dir.path(), &text);
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(!run.text().contains("does not exist"), "{}", run.text());

    let expected = odoo_counts(&client, &text, &[]).await;
    assert_eq!(expected.len(), 8);
    for (model, count) in &expected {
        assert!(*count > 0, "{model} has records in the simulator");
        let printed = run.printed(model);
        assert_eq!(printed.new, *count as u64, "{model}: {printed:?}");
        assert_eq!(printed.changed, 0, "{model}");
        assert_eq!(
            printed.fetched,
            printed.new + printed.unchanged,
            "{model}: {printed:?}"
        );
    }
    assert_mirrors(&db, &expected).await;
    assert!(
        !db.ids("account.move").await.contains(&entry),
        "the journal entry is outside the seed's domain"
    );

    // Payloads hold the configured fields, hashed.
    let rows = db.rows().await;
    let (key, row) = rows
        .iter()
        .find(|((model, _), _)| model == "res.partner")
        .expect("a partner row");
    for name in [
        "id",
        "name",
        "zip",
        "country_id",
        "active",
        "lang",
        "write_date",
    ] {
        assert!(
            row.payload.get(name).is_some(),
            "{key:?} lacks {name}: {row:?}"
        );
    }
    assert_eq!(row.content_hash.len(), 64);
    assert!(rows.values().all(|row| row.deleted_at.is_none()));

    // One checkpoint per model.
    let mut connection = db.connect().await;
    let state: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT model, last_cursor_value IS NOT NULL, last_cursor_id IS NOT NULL \
         FROM odoo_sync_state ORDER BY model",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let models: BTreeSet<&str> = state.iter().map(|(model, ..)| model.as_str()).collect();
    assert_eq!(models, SEED_MODELS.into_iter().collect(), "{state:?}");
    assert!(
        state.iter().all(|(_, value, id)| *value && *id),
        "{state:?}"
    );

    // One successful run whose counters add up.
    let runs = db.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let summary = &runs[0];
    assert_eq!(summary.status, "success");
    assert!(summary.finished && summary.error.is_none(), "{summary:?}");
    assert_eq!(
        summary.inserted,
        expected.values().sum::<i64>(),
        "{summary:?}"
    );
    assert_eq!(summary.updated, 0);
    assert_eq!(summary.deleted, 0);
    assert_eq!(summary.fetched, summary.inserted + summary.unchanged);
    assert!(summary.pages >= 8, "{summary:?}");
    assert!(!run.text().contains(PG_PASSWORD));
}

// ---------------------------------------------------------------------------------------
// 2. Incremental run.

/// `write_date` per record of each configured model, from Odoo.
async fn odoo_write_dates(
    client: &OdooClient,
    config_text: &str,
) -> BTreeMap<(String, i64), String> {
    let config = MirrorConfig::parse(Path::new("config.yml"), config_text).expect("valid");
    let mut dates = BTreeMap::new();
    for model in &config.models {
        let records = client
            .search_read(
                &model.name,
                &SearchReadOptions::new(model.domain.clone())
                    .fields(["write_date"])
                    .context(all_records()),
            )
            .await
            .expect("search_read");
        for record in records {
            let date = record
                .str("write_date")
                .ok()
                .flatten()
                .expect("a write_date")
                .to_owned();
            dates.insert((model.name.clone(), record.id().expect("id")), date);
        }
    }
    dates
}

/// Per model, how many records Odoo has from the saved checkpoint rewound by the seed's
/// 120 s overlap on: what the next run reads (one page per model at these sizes).
async fn overlap_window(
    client: &OdooClient,
    db: &PgDb,
    config_text: &str,
) -> BTreeMap<&'static str, u64> {
    let config = MirrorConfig::parse(Path::new("config.yml"), config_text).expect("valid");
    let mut connection = db.connect().await;
    let mut window = BTreeMap::new();
    for model in &config.models {
        assert_eq!(model.overlap_seconds, 120);
        let from: String = sqlx::query_scalar(
            "SELECT to_char(last_cursor_value AT TIME ZONE 'UTC' - interval '120 seconds', \
             'YYYY-MM-DD HH24:MI:SS') FROM odoo_sync_state WHERE model = $1",
        )
        .bind(&model.name)
        .fetch_one(&mut connection)
        .await
        .expect("a checkpoint");
        let count = client
            .search_count(
                &model.name,
                &(model.domain.clone() & field("write_date").gte(from)),
                Some(&all_records()),
            )
            .await
            .expect("search_count");
        let name = SEED_MODELS
            .into_iter()
            .find(|name| *name == model.name)
            .expect("a seed model");
        window.insert(name, count);
    }
    connection.close().await.expect("close");
    window
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_fetches_only_the_changes() {
    let sim = SimProcess::start_with_data(
        &["--partners", "300", "--orders", "30", "--products", "10"],
        &[],
    );
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_config(sim.url(), &db.name);
    let config = write_config(dir.path(), &text);
    let first = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    let before = db.rows().await;

    // Rename two partners, archive a third, confirm two quotations.
    let partners = free_partners(&client).await;
    assert!(partners.len() >= 3, "{partners:?}");
    let (renamed, archived) = (&partners[..2], partners[2]);
    for (index, id) in renamed.iter().enumerate() {
        client
            .write(
                "res.partner",
                &[*id],
                vals(json!({"name": format!("Renamed {index}")})),
                None,
            )
            .await
            .expect("rename");
    }
    client
        .write(
            "res.partner",
            &[archived],
            vals(json!({"active": false})),
            None,
        )
        .await
        .expect("archive");
    // Two quotations with lines.
    let draft_lines = client
        .search_read(
            "sale.order.line",
            &SearchReadOptions::new(field("order_id.state").eq("draft"))
                .fields(["order_id"])
                .order("id asc"),
        )
        .await
        .expect("quotation lines");
    let quotations: Vec<i64> = draft_lines
        .iter()
        .filter_map(|line| line.many2one("order_id").ok().flatten().map(|o| o.id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(2)
        .collect();
    assert_eq!(
        quotations.len(),
        2,
        "the simulator has quotations with lines"
    );
    client
        .call_method(
            "sale.order",
            "action_confirm",
            Some(&quotations),
            Map::new(),
            None,
        )
        .await
        .expect("confirm");
    let confirmed_lines = odoo_ids(
        &client,
        "sale.order.line",
        field("order_id").is_in(quotations.iter().copied()),
    )
    .await;
    assert!(
        !confirmed_lines.is_empty(),
        "{quotations:?} {draft_lines:?}"
    );

    // What the second run must pick up: records new to the mirror, and records whose
    // write_date moved (the only way a record's content changes in Odoo).
    let now = odoo_write_dates(&client, &text).await;
    let mut expected_new: BTreeMap<&str, u64> = BTreeMap::new();
    let mut expected_changed: BTreeMap<&str, u64> = BTreeMap::new();
    let mut touched = BTreeSet::new();
    for ((model, id), date) in &now {
        let model_name = SEED_MODELS
            .into_iter()
            .find(|name| name == model)
            .expect("a seed model");
        match before.get(&(model.clone(), *id)) {
            None => *expected_new.entry(model_name).or_default() += 1,
            Some(row) if row.payload["write_date"] != json!(date) => {
                *expected_changed.entry(model_name).or_default() += 1;
            }
            Some(_) => continue,
        }
        touched.insert((model.clone(), *id));
    }
    assert_eq!(expected_new.get("sale.order"), Some(&2), "{expected_new:?}");
    assert_eq!(
        expected_new.get("sale.order.line").copied(),
        Some(confirmed_lines.len() as u64)
    );
    assert_eq!(
        expected_changed.get("res.partner"),
        Some(&3),
        "{expected_changed:?}"
    );

    let window = overlap_window(&client, &db, &text).await;
    let second = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    let expected = odoo_counts(&client, &text, &[]).await;
    for model in SEED_MODELS {
        let printed = second.printed(model);
        assert_eq!(
            printed.new,
            expected_new.get(model).copied().unwrap_or(0),
            "{model}: {printed:?}"
        );
        assert_eq!(
            printed.changed,
            expected_changed.get(model).copied().unwrap_or(0),
            "{model}: {printed:?}"
        );
        assert_eq!(
            printed.fetched,
            printed.new + printed.changed + printed.unchanged
        );
        // What is read again: the records stamped at or after the checkpoint rewound by
        // the overlap (120 s), which includes every change.
        assert_eq!(printed.fetched, window[model], "{model}: {printed:?}");
    }
    // The generator spreads partners over 30 days: far fewer than all are read again.
    assert!(
        (second.printed("res.partner").fetched as i64) < expected["res.partner"] / 2,
        "{}",
        second.stdout
    );
    assert_mirrors(&db, &expected).await;

    let after = db.rows().await;
    for index in 0..2 {
        assert_eq!(
            after[&("res.partner".to_owned(), renamed[index])].payload["name"],
            json!(format!("Renamed {index}"))
        );
    }
    let archived_row = &after[&("res.partner".to_owned(), archived)];
    assert_eq!(archived_row.payload["active"], json!(false));
    assert!(archived_row.deleted_at.is_none());
    for id in &quotations {
        assert_eq!(
            after[&("sale.order".to_owned(), *id)].payload["state"],
            json!("sale")
        );
    }
    // A row is rewritten exactly when its record changed; the others keep their synced_at.
    for (key, row) in &before {
        let now_row = &after[key];
        if touched.contains(key) {
            assert_ne!(now_row.content_hash, row.content_hash, "{key:?}");
            assert_ne!(now_row.synced_at, row.synced_at, "{key:?}");
        } else {
            assert_eq!(now_row, row, "{key:?} was rewritten without a change");
        }
    }
    let runs = db.runs().await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, "success");
    assert_eq!(runs[1].inserted as u64, expected_new.values().sum::<u64>());
    assert_eq!(
        runs[1].updated as u64,
        expected_changed.values().sum::<u64>()
    );
}

// ---------------------------------------------------------------------------------------
// 3. Crash and resume.

const PARTNERS_ONLY: &str =
    "  - name: res.partner\n    fields: [id, name, active, write_date]\n    page_size: 100\n";

/// The id of the `position`-th partner in the feed's order (write_date, then id).
async fn partner_at(client: &OdooClient, position: u64) -> i64 {
    client
        .search(
            "res.partner",
            &SearchReadOptions::new(Domain::all())
                .order("write_date asc, id asc")
                .offset(position)
                .limit(1)
                .context(all_records()),
        )
        .await
        .expect("search")[0]
}

/// Inserts a placeholder row for `odoo_id` (committed), then locks it in a transaction of
/// `connection`: a run's page holding that id blocks inside its transaction, mid-page.
async fn lock_partner_row(connection: &mut PgConnection, odoo_id: i64) {
    sqlx::query(
        "INSERT INTO odoo_raw_records (model, odoo_id, payload, synced_at, content_hash) \
         VALUES ('res.partner', $1, '{}', now(), 'placeholder')",
    )
    .bind(odoo_id)
    .execute(&mut *connection)
    .await
    .expect("placeholder row");
    connection.execute("BEGIN").await.expect("begin");
    sqlx::query(
        "SELECT 1 FROM odoo_raw_records WHERE model = 'res.partner' AND odoo_id = $1 FOR UPDATE",
    )
    .bind(odoo_id)
    .execute(&mut *connection)
    .await
    .expect("lock the row");
}

async fn migrate(config: &Path) {
    let migrated = finish(bridge(
        &["migrate", "--config", config.to_str().unwrap()],
        None,
    ))
    .await;
    assert_eq!(migrated.code, Some(0), "{}", migrated.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_page_resumes_from_its_checkpoint() {
    let sim = SimProcess::start_with_data(
        &["--partners", "1000", "--orders", "5", "--products", "5"],
        &[],
    );
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = custom_config(
        sim.url(),
        &pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"),
        PARTNERS_ONLY,
    );
    let config = write_config(dir.path(), &text);
    migrate(&config).await;
    let total = odoo_ids(&client, "res.partner", Domain::all()).await;
    assert!(total.len() > 1000);

    // The third full page (records 200..300 in feed order) holds a row the test locks.
    let blocker = partner_at(&client, 250).await;
    let mut holder = db.connect().await;
    lock_partner_row(&mut holder, blocker).await;
    let mut run = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
    run.wait_for_log(page_written("res.partner", 1)).await;
    db.wait_for_blocked(1, &mut [&mut run]).await;
    // The run is inside a page's transaction, waiting for the row: kill -9 it there.
    run.kill().await;
    holder.execute("ROLLBACK").await.expect("release the row");
    holder.close().await.expect("close");
    db.wait_until_alone().await;

    let runs = db.runs().await;
    assert_eq!(runs.len(), 1);
    // A killed run cannot mark itself: its row stays `running`, without finished_at, with
    // the counts of the pages it committed, until the next run.
    assert_eq!(runs[0].status, "running", "{runs:?}");
    assert!(!runs[0].finished);
    let written = db.ids("res.partner").await;
    assert!(
        written.len() > 100 && written.len() < total.len(),
        "{} rows after the kill",
        written.len()
    );
    assert!(written.len() as i64 >= runs[0].inserted);

    let rerun = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    let printed = rerun.printed("res.partner");
    assert!(
        printed.fetched < total.len() as u64,
        "the rerun starts from the checkpoint, not from the beginning: {printed:?}"
    );
    assert_eq!(
        db.ids("res.partner").await,
        total,
        "every partner exactly once"
    );
    let rows = db.rows().await;
    let placeholder = &rows[&("res.partner".to_owned(), blocker)];
    assert_ne!(placeholder.content_hash, "placeholder");
    assert_eq!(placeholder.payload["id"], json!(blocker));
    // The rerun held the lock the killed run had held: it marked that run interrupted,
    // keeping its counts.
    let killed = runs[0].clone();
    let runs = db.runs().await;
    assert_eq!(
        runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["interrupted", "success"]
    );
    assert!(runs[0].finished);
    assert_eq!(
        (runs[0].pages, runs[0].fetched, runs[0].inserted),
        (killed.pages, killed.fetched, killed.inserted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_connection_mid_page_fails_cleanly_and_a_rerun_completes() {
    let sim = SimProcess::start_with_data(
        &["--partners", "1000", "--orders", "5", "--products", "5"],
        &[],
    );
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = custom_config(
        sim.url(),
        &pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"),
        PARTNERS_ONLY,
    );
    let config = write_config(dir.path(), &text);
    migrate(&config).await;
    let total = odoo_ids(&client, "res.partner", Domain::all()).await;

    let blocker = partner_at(&client, 250).await;
    let mut holder = db.connect().await;
    lock_partner_row(&mut holder, blocker).await;
    let mut run = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
    run.wait_for_log(page_written("res.partner", 1)).await;
    db.wait_for_blocked(1, &mut [&mut run]).await;
    // Every session of the run goes, the one inside the page's transaction included.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut holder)
    .await
    .expect("terminate");
    assert!(
        ended.len() >= 2,
        "the run's lock and page sessions: {ended:?}"
    );
    holder.execute("ROLLBACK").await.expect("release the row");
    let failed = run.finish().await;
    failed.assert_no_panic();
    assert!(
        !matches!(failed.code, Some(0) | None),
        "the run must fail: {}",
        failed.text()
    );
    assert!(
        failed.stderr.contains("error: database unavailable"),
        "a clear message: {}",
        failed.text()
    );
    assert!(!failed.text().contains(PG_PASSWORD));

    let rerun = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    assert!(rerun.printed("res.partner").fetched < total.len() as u64);
    assert_eq!(
        db.ids("res.partner").await,
        total,
        "every partner exactly once"
    );
    let runs = db.runs().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    // The failed run's row says so, through a new connection of the pool.
    assert_eq!(runs[0].status, "failed", "{runs:?}");
    assert!(
        runs[0]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("res.partner: database unavailable")),
        "{runs:?}"
    );
    assert_eq!(runs[1].status, "success", "{runs:?}");
}

// ---------------------------------------------------------------------------------------
// 4. Concurrent runs.

/// Holds `LOCK TABLE odoo_raw_records IN SHARE MODE` in a transaction of `connection`: a
/// run gets its run lock and run row, then blocks on its first page.
async fn block_page_writes(connection: &mut PgConnection) {
    connection.execute("BEGIN").await.expect("begin");
    connection
        .execute("LOCK TABLE odoo_raw_records IN SHARE MODE")
        .await
        .expect("lock the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_exits_with_lock_busy_and_writes_nothing() {
    let sim = SimProcess::start(&[]);
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_config(sim.url(), &db.name);
    let config = write_config(dir.path(), &text);
    migrate(&config).await;

    // A first run holds the lock, stuck on its first page.
    let mut holder = db.connect().await;
    block_page_writes(&mut holder).await;
    let mut first = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
    db.wait_for_blocked(1, &mut [&mut first]).await;
    let second = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(second.code, Some(7), "{}", second.text());
    assert!(second.stderr.contains("lock"), "{}", second.text());
    second.assert_no_panic();
    assert_eq!(db.runs().await.len(), 1, "the second run added no run row");
    holder.execute("ROLLBACK").await.expect("release");
    let first = first.finish().await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    assert_mirrors(&db, &odoo_counts(&client, &text, &[]).await).await;

    // The advisory lock held by anyone else (here the test) has the same effect.
    let mut other = db.connect().await;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(store_pg::LOCK_KEY)
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(locked);
    let rows_before = db.rows().await;
    let busy = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(busy.code, Some(7), "{}", busy.text());
    assert_eq!(db.runs().await.len(), 1);
    assert_eq!(db.rows().await, rows_before);
    other.close().await.unwrap();
    let after = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(
        after.code,
        Some(0),
        "the lock went with its session: {}",
        after.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lock_strategy_none_concurrent_runs_both_proceed() {
    let sim = SimProcess::start_with_data(
        &["--partners", "300", "--orders", "5", "--products", "5"],
        &[],
    );
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let models =
        "  - name: res.partner\n    fields: [id, name, active, write_date]\n    page_size: 20\n";
    let text = custom_config(
        sim.url(),
        &pg_section(&db.name, "none", "POSTGRES_PASSWORD"),
        models,
    );
    let config = write_config(dir.path(), &text);
    migrate(&config).await;

    // The advisory lock is not even looked at.
    let mut other = db.connect().await;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(store_pg::LOCK_KEY)
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(locked);
    let alone = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(alone.code, Some(0), "{}", alone.text());
    other.close().await.unwrap();

    // Two runs at once, both held at their first page until both are there.
    let mut holder = db.connect().await;
    block_page_writes(&mut holder).await;
    let mut first = Background::spawn(sync_command(&config, Some(sim.key()), &["--full"]));
    let mut second = Background::spawn(sync_command(&config, Some(sim.key()), &["--full"]));
    db.wait_for_blocked(2, &mut [&mut first, &mut second]).await;
    holder.execute("ROLLBACK").await.expect("release");
    let (first, second) = (first.finish().await, second.finish().await);
    assert_eq!(first.code, Some(0), "{}", first.text());
    assert_eq!(second.code, Some(0), "{}", second.text());
    assert_mirrors(&db, &odoo_counts(&client, &text, &[]).await).await;
    let runs = db.runs().await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|run| run.status == "success"), "{runs:?}");
}

// ---------------------------------------------------------------------------------------
// 6. Deletion reconciliation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_are_stamped_once_and_archived_ones_are_not() {
    let sim = SimProcess::start_with_data(
        &["--partners", "40", "--orders", "10", "--products", "5"],
        &[],
    );
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let models = "  - name: res.partner\n    fields: [id, name, active, write_date]\n    reconcile_deletions: true\n    reconcile_every_runs: 1\n  - name: sale.order\n    fields: [id, name, state, partner_id, write_date]\n";
    let text = custom_config(
        sim.url(),
        &pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"),
        models,
    );
    let config = write_config(dir.path(), &text);
    let first = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    assert_eq!(first.printed("res.partner").deleted, 0);
    let mirrored_before = db.ids("res.partner").await;

    let partners = free_partners(&client).await;
    assert!(partners.len() >= 5, "{partners:?}");
    let (deleted, archived) = (&partners[..3], &partners[3..5]);
    client
        .unlink("res.partner", deleted, None)
        .await
        .expect("unlink");
    client
        .write(
            "res.partner",
            archived,
            vals(json!({"active": false})),
            None,
        )
        .await
        .expect("archive");

    let second = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    assert_eq!(
        second.printed("res.partner").deleted,
        3,
        "{}",
        second.text()
    );
    assert_eq!(second.printed("sale.order").deleted, 0);
    let rows = db.rows().await;
    assert_eq!(
        db.ids("res.partner").await,
        mirrored_before,
        "no row is removed"
    );
    for id in deleted {
        assert!(
            rows[&("res.partner".to_owned(), *id)].deleted_at.is_some(),
            "{id} was unlinked"
        );
    }
    for id in archived {
        let row = &rows[&("res.partner".to_owned(), *id)];
        assert!(row.deleted_at.is_none(), "archived is not deleted: {row:?}");
        assert_eq!(row.payload["active"], json!(false));
    }
    let stamped = rows
        .iter()
        .filter(|((model, _), row)| model == "res.partner" && row.deleted_at.is_some())
        .count();
    assert_eq!(stamped, 3);
    let runs = db.runs().await;
    assert_eq!(runs[1].deleted, 3, "{runs:?}");

    let third = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(third.code, Some(0), "{}", third.text());
    assert_eq!(third.printed("res.partner").deleted, 0, "{}", third.text());
    let runs = db.runs().await;
    assert_eq!(runs[2].deleted, 0, "{runs:?}");
    assert_eq!(runs[2].restored, 0, "{runs:?}");
    let again = db.rows().await;
    for id in deleted {
        let key = ("res.partner".to_owned(), *id);
        assert_eq!(
            again[&key].deleted_at, rows[&key].deleted_at,
            "stamped once"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. Dry run, config check, migrate, runs, prune.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_and_prints_what_it_would_fetch() {
    let sim = SimProcess::start(&[]);
    let client = odoo(&sim);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_config(sim.url(), &db.name);
    let config = write_config(dir.path(), &text);
    let expected = odoo_counts(&client, &text, &[]).await;

    let dry = finish(sync_command(&config, Some(sim.key()), &["--dry-run"])).await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    assert!(dry.stdout.contains("dry run"), "{}", dry.stdout);
    assert_eq!(
        db.number("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .await,
        0,
        "a dry run creates no table"
    );
    for (model, count) in &expected {
        let line = dry
            .stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(model))
            .unwrap_or_else(|| panic!("no line for {model}: {}", dry.stdout));
        assert!(
            line.contains(&format!("{count} to fetch (full backfill)")),
            "{line}"
        );
    }
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let rows = db.rows().await;
    let again = finish(sync_command(&config, Some(sim.key()), &["--dry-run"])).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let partners = again
        .stdout
        .lines()
        .find(|line| line.starts_with("res.partner "))
        .expect("a res.partner line");
    assert!(partners.contains("to fetch (from "), "{partners}");
    assert_eq!(db.runs().await.len(), 1, "a dry run adds no run");
    assert_eq!(db.rows().await, rows, "a dry run writes no row");

    // On SQLite, not even the file is made.
    let sqlite = dir.path().join("data/mirror.db");
    let sqlite_text = custom_config(
        sim.url(),
        &format!("sqlite:\n  path: {}\n", sqlite.display()),
        "  - name: res.partner\n",
    );
    let sqlite_config = dir.path().join("sqlite.yml");
    std::fs::write(&sqlite_config, sqlite_text).unwrap();
    let dry = finish(sync_command(
        &sqlite_config,
        Some(sim.key()),
        &["--dry-run"],
    ))
    .await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    assert!(
        dry.stdout
            .contains(&format!("{} to fetch", expected["res.partner"])),
        "{}",
        dry.stdout
    );
    assert!(!sqlite.exists() && !dir.path().join("data").exists());
}

fn config_check(config: &Path, key: Option<&str>) -> Command {
    bridge(
        &["config", "check", "--config", config.to_str().unwrap()],
        key,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_accepts_the_seed_and_names_what_is_wrong() {
    let sim = SimProcess::start(&[]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &seed_config(sim.url(), &db.name));
    let ok = finish(config_check(&config, Some(sim.key()))).await;
    assert_eq!(ok.code, Some(0), "{}", ok.text());
    assert!(
        ok.stdout.contains(&format!(
            "store: PostgreSQL database {} at 127.0.0.1:5432 does not exist yet",
            db.name
        )),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("ok: every model, field, cursor field and domain is accepted"),
        "{}",
        ok.stdout
    );
    assert!(!ok.text().contains(PG_PASSWORD));
    assert_eq!(
        db.number("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .await,
        0,
        "a check creates no table"
    );

    let target = pg_section(&db.name, "advisory", "POSTGRES_PASSWORD");
    // A field this Odoo does not have.
    let typo = write_config(
        dir.path(),
        &custom_config(
            sim.url(),
            &target,
            "  - name: res.partner\n    fields: [name, emial]\n",
        ),
    );
    let output = finish(config_check(&typo, Some(sim.key()))).await;
    assert_eq!(output.code, Some(3), "{}", output.text());
    assert!(
        output.stderr.contains(
            "config.yml:21:20: res.partner: field `emial` does not exist on this Odoo (did you mean `email`?)"
        ),
        "{}",
        output.text()
    );

    // A model this Odoo does not have.
    let unknown = write_config(
        dir.path(),
        &custom_config(
            sim.url(),
            &target,
            "  - name: res.partner\n  - name: no.such.model\n",
        ),
    );
    let output = finish(config_check(&unknown, Some(sim.key()))).await;
    assert_eq!(output.code, Some(3), "{}", output.text());
    let line = output
        .stdout
        .lines()
        .find(|line| line.starts_with("no.such.model"))
        .unwrap_or_else(|| panic!("{}", output.stdout));
    assert!(line.contains("REFUSED"), "{line}");
    assert!(
        output
            .stderr
            .contains("no.such.model: Odoo refuses this model"),
        "{}",
        output.text()
    );

    // A misspelt key of the file itself: file, line, column and the right key.
    let key_typo = write_config(
        dir.path(),
        &custom_config(
            sim.url(),
            &target,
            "  - name: res.partner\n    page_szie: 10\n",
        ),
    );
    let output = finish(config_check(&key_typo, Some(sim.key()))).await;
    assert_eq!(output.code, Some(3), "{}", output.text());
    assert!(
        output.stderr.contains("config.yml:21:5"),
        "{}",
        output.text()
    );
    assert!(
        output.stderr.contains("did you mean `page_size`?"),
        "{}",
        output.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_yaml_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "odoo:\n  base_url: \"http://127.0.0.1:1\"\n  database: odoo\n  username: admin\nmodels:\n  - name: res.partner\n    fields: [name, email\n  - name: sale.order\n",
    );
    for command in [
        sync_command(&config, Some("key"), &[]),
        config_check(&config, Some("key")),
        bridge(&["migrate", "--config", config.to_str().unwrap()], None),
    ] {
        let output = finish(command).await;
        assert_eq!(output.code, Some(3), "{}", output.text());
        let error = output
            .stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_else(|| panic!("{}", output.text()));
        let position = error
            .split_once("config.yml:")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no file in {error}"));
        let mut numbers = position.split(':').take(2).map(str::parse::<u32>);
        assert!(
            matches!((numbers.next(), numbers.next()), (Some(Ok(line)), Some(Ok(_))) if (7..=9).contains(&line)),
            "line and column: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_runs_and_prune_work_on_postgres() {
    let sim = SimProcess::start(&[]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &seed_config(sim.url(), &db.name));
    let path = config.to_str().unwrap();
    // Store maintenance needs no Odoo key.
    for _ in 0..2 {
        let migrated = finish(bridge(&["migrate", "--config", path], None)).await;
        assert_eq!(migrated.code, Some(0), "{}", migrated.text());
        assert!(
            migrated.stdout.contains(&format!(
                "PostgreSQL database {} at 127.0.0.1:5432: schema up to date",
                db.name
            )),
            "{}",
            migrated.stdout
        );
    }
    let tables = db
        .number(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name IN ('odoo_raw_records', 'odoo_sync_state', 'odoo_sync_runs')",
        )
        .await;
    assert_eq!(tables, 3);

    let none = finish(bridge(&["runs", "--json", "--config", path], None)).await;
    assert_eq!(none.code, Some(0), "{}", none.text());
    assert_eq!(none.stdout.trim(), "");
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(0), "{}", run.text());

    let listed = finish(bridge(&["runs", "--json", "--config", path], None)).await;
    assert_eq!(listed.code, Some(0), "{}", listed.text());
    let lines: Vec<Value> = listed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", listed.stdout);
    let stored = &db.runs().await[0];
    assert_eq!(lines[0]["id"], json!(stored.id));
    assert_eq!(lines[0]["status"], "success");
    assert_eq!(lines[0]["fetched"], json!(stored.fetched));
    assert_eq!(lines[0]["inserted"], json!(stored.inserted));
    assert!(lines[0]["finished_at"].is_string());
    let table = finish(bridge(&["runs", "--config", path], None)).await;
    assert_eq!(table.code, Some(0), "{}", table.text());
    assert!(table.stdout.contains("success"), "{}", table.stdout);

    let kept = finish(bridge(
        &["prune", "--older-than-days", "1", "--config", path],
        None,
    ))
    .await;
    assert_eq!(kept.code, Some(0), "{}", kept.text());
    assert!(kept.stdout.contains("deleted 0 run(s)"), "{}", kept.stdout);
    let mut connection = db.connect().await;
    connection
        .execute("UPDATE odoo_sync_runs SET started_at = started_at - interval '2 days'")
        .await
        .unwrap();
    let pruned = finish(bridge(
        &["prune", "--older-than-days", "1", "--config", path],
        None,
    ))
    .await;
    assert_eq!(pruned.code, Some(0), "{}", pruned.text());
    assert!(
        pruned.stdout.contains("deleted 1 run(s)"),
        "{}",
        pruned.stdout
    );
    assert!(db.runs().await.is_empty());
    assert!(db.rows().await.len() > 1, "prune keeps the mirrored rows");
}

// ---------------------------------------------------------------------------------------
// 8. Secrets.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_password_variable_is_a_configuration_error_and_a_set_one_is_never_shown() {
    let sim = SimProcess::start(&[]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let variable = "ODOO_BRIDGE_IT_UNSET_PG_PASSWORD";
    let text = custom_config(
        sim.url(),
        &pg_section(&db.name, "advisory", variable),
        "  - name: res.partner\n",
    );
    let config = write_config(dir.path(), &text);
    let path = config.to_str().unwrap();
    let unset = |mut command: Command| {
        command.env_remove(variable);
        command
    };
    for command in [
        unset(sync_command(&config, Some(sim.key()), &[])),
        unset(config_check(&config, Some(sim.key()))),
        unset(bridge(&["migrate", "--config", path], None)),
        unset(bridge(&["runs", "--config", path], None)),
        unset(bridge(&["prune", "--config", path], None)),
    ] {
        let output = finish(command).await;
        assert_eq!(output.code, Some(3), "{}", output.text());
        assert!(output.stderr.contains(variable), "{}", output.text());
    }
    assert_eq!(
        db.number("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .await,
        0
    );

    // Set, the value appears nowhere: not in a successful run's output or its debug logs,
    // nor in the error of a database that does not exist.
    let secret = "pg-secret-Value-9731";
    let mut run = sync_command(&config, Some(sim.key()), &[]);
    run.env(variable, secret)
        .env("ODOO_BRIDGE_LOG_LEVEL", "debug");
    let output = finish(run).await;
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert!(!output.text().contains(secret), "{}", output.text());
    let missing_db = write_config(
        dir.path(),
        &custom_config(
            sim.url(),
            &pg_section(&format!("{}_missing", db.name), "advisory", variable),
            "  - name: res.partner\n",
        ),
    );
    let mut run = sync_command(&missing_db, Some(sim.key()), &[]);
    run.env(variable, secret)
        .env("ODOO_BRIDGE_LOG_LEVEL", "debug");
    let output = finish(run).await;
    assert!(!matches!(output.code, Some(0) | None), "{}", output.text());
    assert!(output.stderr.contains("error: "), "{}", output.text());
    assert!(!output.text().contains(secret), "{}", output.text());
    output.assert_no_panic();
}
