//! `odoo-bridge run` end to end: the real daemon as a child process, its connections made with
//! `odoo-bridge connections add`, simulated Odoo tenants served in this process on loopback
//! (so their call counters can be read), and a Standard Webhooks receiver in this process
//! that verifies every signature and records what it got.
//!
//! Nothing here asserts on a clock: every wait is on a condition (a log line, the outbox,
//! what the receiver got), bounded by [`TIMEOUT`]. The one bound that involves elapsed time
//! (the wrong-key test) gets looser, never tighter, on a slow machine.

use crate::mirror_postgres::{PgDb, odoo_ids};
use crate::ping::BINARY;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use engine::webhook::{Verifier, WebhookSecret};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, field};
use odoo_sim::{DataSpec, Fault, FaultRule, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The longest any single wait may take before the test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(240);

/// The simulator's administrator key (`SimConfig::default()`).
pub(crate) fn sim_key() -> String {
    SimConfig::default().admin_api_key
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until `check` holds, polling; fails the test naming `what` after [`TIMEOUT`].
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Simulated tenants, in this process.

struct Tenant {
    sim: OdooSim,
    running: RunningSim,
}

impl Tenant {
    async fn start(seed: u64, orders: usize) -> Tenant {
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                seed,
                partners: 12,
                products: 8,
                orders,
            },
        );
        let running = sim
            .clone()
            .serve_on_loopback()
            .await
            .expect("the sim serves");
        Tenant { sim, running }
    }

    fn url(&self) -> String {
        self.running.url()
    }

    fn client(&self) -> OdooClient {
        OdooClient::new(ClientConfig::new(
            self.url(),
            "odoo",
            "admin",
            ApiKey::from(sim_key()),
        ))
        .expect("a client")
    }

    /// The ids of the orders the daemon must deliver: confirmed ones (a cancelled order
    /// that was never delivered is no news to the receiver).
    async fn confirmed(&self) -> BTreeSet<i64> {
        odoo_ids(
            &self.client(),
            "sale.order",
            field("state").is_in(["sale", "done"]),
        )
        .await
        .into_iter()
        .collect()
    }

    async fn quotations(&self) -> Vec<i64> {
        odoo_ids(
            &self.client(),
            "sale.order",
            field("state").is_in(["draft", "sent"]),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// The webhook receiver, in this process.

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    /// `ok`, `garbage` or `gone`: the last segment of the URL, which chooses the answer.
    kind: String,
    webhook_id: String,
    connection_id: String,
    verified: bool,
    body: Value,
}

impl Hit {
    /// `(order id, version)` from the webhook-id `{connection}_{order}_v{version}`.
    fn order_version(&self) -> (i64, u32) {
        let mut parts = self.webhook_id.rsplitn(3, '_');
        let version = parts.next().and_then(|v| v.strip_prefix('v'));
        let order = parts.next();
        let connection = parts.next();
        assert_eq!(connection, Some(self.connection_id.as_str()), "{self:?}");
        (
            order.and_then(|o| o.parse().ok()).expect("an order id"),
            version.and_then(|v| v.parse().ok()).expect("a version"),
        )
    }
}

struct ReceiverState {
    secrets: Mutex<HashMap<String, WebhookSecret>>,
    hits: Mutex<Vec<Hit>>,
    /// With a gate: how many more `ok` requests are answered before the next ones are held.
    pass: Mutex<Option<usize>>,
    /// The webhook-ids of the requests held at the gate now.
    held: Mutex<BTreeSet<String>>,
    open: watch::Sender<bool>,
}

struct Receiver {
    base: String,
    state: Arc<ReceiverState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn hook(
    State(state): State<Arc<ReceiverState>>,
    UrlPath(kind): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let connection_id = header("x-odoo-connection-id");
    let secret = lock(&state.secrets).get(&connection_id).cloned();
    let verified = secret.is_some_and(|secret| {
        header("x-webhook-secret") == secret.expose()
            && Verifier::new(secret).verify(&headers, &body).is_ok()
    });
    let webhook_id = header("webhook-id");
    lock(&state.hits).push(Hit {
        kind: kind.clone(),
        webhook_id: webhook_id.clone(),
        connection_id,
        verified,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if !verified {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    match kind.as_str() {
        "garbage" => (StatusCode::OK, "<html>{{ not json \u{0} at all".into()),
        "gone" => (StatusCode::GONE, "this endpoint was removed".into()),
        _ => {
            let hold = match lock(&state.pass).as_mut() {
                None => false,
                Some(0) => true,
                Some(left) => {
                    *left -= 1;
                    false
                }
            };
            if hold {
                lock(&state.held).insert(webhook_id.clone());
                let mut open = state.open.subscribe();
                let _ = open.wait_for(|open| *open).await;
                lock(&state.held).remove(&webhook_id);
            }
            (StatusCode::OK, "{\"ok\":true}".into())
        }
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState {
            secrets: Mutex::default(),
            hits: Mutex::default(),
            pass: Mutex::default(),
            held: Mutex::default(),
            open: watch::channel(true).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/hooks", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/hooks/{kind}", post(hook))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            base,
            state,
            stop: Some(stop),
        }
    }

    /// The URL answering `kind`: `ok` (200 `{"ok":true}`), `garbage` (200, not JSON) or
    /// `gone` (410).
    fn url(&self, kind: &str) -> String {
        format!("{}/{kind}", self.base)
    }

    fn trust(&self, connection: &Conn) {
        lock(&self.state.secrets).insert(
            connection.id.clone(),
            WebhookSecret::new(connection.secret.clone()).unwrap(),
        );
    }

    fn hits(&self) -> Vec<Hit> {
        lock(&self.state.hits).clone()
    }

    /// Answers `count` more `ok` requests, then holds the next ones until [`Receiver::open`].
    fn hold_after(&self, count: usize) {
        *lock(&self.state.pass) = Some(count);
        self.state.open.send_replace(false);
    }

    fn open(&self) {
        *lock(&self.state.pass) = None;
        self.state.open.send_replace(true);
    }

    fn held(&self) -> BTreeSet<String> {
        lock(&self.state.held).clone()
    }

    /// Every request of `connection` to the `ok` URL.
    fn ok_hits(&self, connection: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.kind == "ok" && hit.connection_id == connection)
            .collect()
    }

    /// The orders of `connection` that reached the receiver.
    fn orders_of(&self, connection: &str, kind: &str) -> BTreeSet<i64> {
        self.hits()
            .iter()
            .filter(|hit| hit.kind == kind && hit.connection_id == connection)
            .map(|hit| hit.order_version().0)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.open();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Every request was signed right, and every order of `expected` arrived at the `ok` URL
/// exactly once, under one webhook-id, as `order.confirmed` version 1; nothing else arrived.
fn assert_exactly_once(receiver: &Receiver, connection: &str, expected: &BTreeSet<i64>) {
    let hits = receiver.ok_hits(connection);
    let mut by_order: BTreeMap<i64, Vec<&Hit>> = BTreeMap::new();
    for hit in &hits {
        assert!(hit.verified, "a signature did not verify: {hit:?}");
        by_order.entry(hit.order_version().0).or_default().push(hit);
    }
    let got: BTreeSet<i64> = by_order.keys().copied().collect();
    assert_eq!(&got, expected, "the orders delivered for {connection}");
    for (order, hits) in by_order {
        assert_eq!(
            hits.len(),
            1,
            "order {order} of {connection} arrived {} times: {:?}",
            hits.len(),
            hits.iter().map(|h| &h.webhook_id).collect::<Vec<_>>()
        );
        let hit = hits[0];
        assert_eq!(hit.webhook_id, format!("{connection}_{order}_v1"));
        assert_eq!(hit.body["event"], "order.confirmed", "{hit:?}");
        assert_eq!(hit.body["external_id"], format!("odoo_odoo_{order}"));
    }
}

/// A loopback URL nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hooks/refused")
}

// ---------------------------------------------------------------------------------------
// The store, and the CLI over it.

/// A connection as `connections add --json` made it.
#[derive(Debug, Clone)]
struct Conn {
    id: String,
    name: String,
    secret: String,
}

/// The store every command of a test uses: an SQLite file in a temporary directory, or a
/// fresh PostgreSQL database.
pub(crate) struct Place {
    _dir: tempfile::TempDir,
    db_path: PathBuf,
    database_url: Option<String>,
    /// Everything the commands printed, to look for secrets.
    printed: Mutex<String>,
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl Place {
    pub(crate) fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("bridge.db");
        Place {
            _dir: dir,
            db_path,
            database_url: None,
            printed: Mutex::default(),
        }
    }

    fn postgres(db: &PgDb) -> Place {
        let mut place = Place::sqlite();
        place.database_url = Some(format!("postgres://postgres@127.0.0.1:5432/{}", db.name));
        place
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(["--log-format", "json"])
            .args(args)
            .env("POLLER_DB_PATH", &self.db_path)
            .env_remove("DATABASE_URL")
            .env_remove("ODOO_API_KEY")
            .env_remove("CARTONA_API_TOKEN")
            .env_remove("ODOO_BRIDGE_LOG_LEVEL")
            .env_remove("ODOO_BRIDGE_LISTEN")
            .env_remove("ODOO_BRIDGE_WORKER_ID")
            .env_remove("POLLER_LOG_LEVEL")
            .env_remove("POLLER_DEFAULT_WEBHOOK_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = &self.database_url {
            command.env("DATABASE_URL", url);
        }
        command
    }

    pub(crate) async fn output(&self, mut command: Command, args: &[&str]) -> Output {
        let output = tokio::time::timeout(TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("odoo-bridge {args:?} did not finish"))
            .expect("the binary runs");
        lock(&self.printed).push_str(&text(&output));
        output
    }

    /// Runs `odoo-bridge ARGS`, expects exit 0, and returns its stdout as JSON.
    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let output = self.output(self.command(args), args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "odoo-bridge {args:?}:\n{}",
            text(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("odoo-bridge {args:?} printed {}: {e}", text(&output)))
    }

    async fn expect(&self, args: &[&str]) -> String {
        let output = self.output(self.command(args), args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "odoo-bridge {args:?}:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `connections add` polling every second, with `key` in `ODOO_API_KEY`.
    async fn add(&self, name: &str, odoo_url: &str, key: &str, webhook_url: &str) -> Conn {
        let args = [
            "connections",
            "add",
            "--name",
            name,
            "--odoo-url",
            odoo_url,
            "--odoo-db",
            "odoo",
            "--odoo-username",
            "admin",
            "--webhook-url",
            webhook_url,
            "--store-id",
            "store_xyz",
            "--client-id",
            "client_xyz",
            "--interval",
            "1",
            "--json",
        ];
        let mut command = self.command(&args);
        command.env("ODOO_API_KEY", key);
        let output = self.output(command, &args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}:\n{}",
            text(&output)
        );
        let added: Value = serde_json::from_slice(&output.stdout).unwrap();
        Conn {
            id: added["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            secret: added["webhook_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// `logs --json`, every cycle, newest first.
    async fn cycles(&self, connection: &str) -> Vec<Value> {
        let logs = self
            .json(&["logs", "--connection", connection, "--limit", "0", "--json"])
            .await;
        logs.as_array().unwrap().clone()
    }

    /// `retries list --json`, every packet of `connection`.
    async fn packets(&self, connection: &str) -> Vec<Value> {
        let packets = self
            .json(&[
                "retries",
                "list",
                "--connection",
                connection,
                "--limit",
                "0",
                "--json",
            ])
            .await;
        packets.as_array().unwrap().clone()
    }

    /// Whether every order of `expected` has its packet, and every packet is `status`.
    async fn all_are(&self, connection: &str, status: &str, expected: &BTreeSet<i64>) -> bool {
        let packets = self.packets(connection).await;
        let orders: BTreeSet<i64> = packets
            .iter()
            .filter(|p| p["status"] == status)
            .map(|p| p["odoo_order_id"].as_i64().unwrap())
            .collect();
        packets.len() == expected.len() && &orders == expected
    }

    pub(crate) fn printed(&self) -> String {
        lock(&self.printed).clone()
    }
}

// ---------------------------------------------------------------------------------------
// The daemon, as a child process.

/// How a daemon is given its worker id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerIdIn {
    Flag,
    Environment,
}

pub(crate) struct Daemon {
    child: Child,
    name: String,
    /// Its stdout (JSON log lines) and stderr.
    pub(crate) lines: Arc<Mutex<Vec<String>>>,
    address: String,
}

/// Copies `stream` line by line into `lines`.
fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lock(&lines).push(line);
        }
    });
}

impl Daemon {
    /// Starts `odoo-bridge run` as `worker` and waits for its "started" line.
    pub(crate) async fn start(place: &Place, worker: &str) -> Daemon {
        // The lease is 4 × this, at least 60 s: how long a killed worker's packet waits.
        Daemon::start_with(place, worker, "15", WorkerIdIn::Flag).await
    }

    /// [`Daemon::start`] with `--webhook-timeout webhook_timeout` (the packet lease is 4 ×
    /// that, at least 60 s), the worker id given as `id_in`.
    async fn start_with(
        place: &Place,
        worker: &str,
        webhook_timeout: &str,
        id_in: WorkerIdIn,
    ) -> Daemon {
        let mut args = vec![
            "--log-level",
            "info",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--reload-every",
            "1",
            "--webhook-timeout",
            webhook_timeout,
            "--shutdown-deadline",
            "30",
        ];
        if id_in == WorkerIdIn::Flag {
            args.extend(["--worker-id", worker]);
        }
        let mut command = place.command(&args);
        if id_in == WorkerIdIn::Environment {
            command.env("ODOO_BRIDGE_WORKER_ID", worker);
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("odoo-bridge run starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take().unwrap(), lines.clone());
        collect_lines(child.stderr.take().unwrap(), lines.clone());
        let mut daemon = Daemon {
            child,
            name: worker.to_owned(),
            lines,
            address: String::new(),
        };
        let started = daemon
            .wait_for_log("the daemon's start", |line| {
                line["message"] == "odoo-bridge run: started"
            })
            .await;
        daemon.address = started["address"].as_str().unwrap().to_owned();
        daemon
    }

    /// Where its listener is (`127.0.0.1:PORT`).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn logs(&self) -> Vec<Value> {
        lock(&self.lines)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub(crate) fn output(&self) -> String {
        lock(&self.lines).join("\n")
    }

    async fn wait_for_log(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(line) = self.logs().into_iter().find(|line| matches(line)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what} from {}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET `path` of the daemon's HTTP server: (status line, body).
    async fn get(&self, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.address
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    }

    /// POST `body` to `path` of the daemon's HTTP server with `headers`: the status code.
    pub(crate) async fn post(&self, path: &str, headers: &[(&str, String)], body: &str) -> u16 {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {answer:?}"))
    }

    /// SIGTERM, and the exit status within [`TIMEOUT`].
    pub(crate) async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} ignored SIGTERM:\n{}", self.name, self.output()))
            .unwrap();
        self.assert_no_panic();
        status
    }

    /// SIGKILL: no chance to finish anything.
    async fn kill9(mut self) {
        self.child.kill().await.unwrap();
    }

    fn assert_no_panic(&self) {
        let output = self.output();
        assert!(!output.contains("panicked"), "{}:\n{output}", self.name);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} printed:\n{}", self.name, self.output());
        }
        let _ = self.child.start_kill();
    }
}

fn message_is(line: &Value, message: &str) -> bool {
    line["message"].as_str() == Some(message)
}

// ---------------------------------------------------------------------------------------
// 1. Delivery.

#[tokio::test(flavor = "multi_thread")]
async fn daemon_delivers_every_confirmed_order_once_and_stops_on_sigterm() {
    let tenant = Tenant::start(7, 200).await;
    let expected = tenant.confirmed().await;
    assert!(
        expected.len() > 100,
        "more than one page: {}",
        expected.len()
    );
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let conn = place
        .add("Shop", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&conn);

    let daemon = Daemon::start(&place, "solo").await;
    let (status, body) = daemon.get("/readyz").await;
    assert!(status.contains("200"), "{status} {body}");
    wait_until("every confirmed order delivered", || async {
        receiver.orders_of(&conn.id, "ok").len() >= expected.len()
            && place.all_are(&conn.id, "delivered", &expected).await
    })
    .await;
    // Two more cycles after everything was sent: nothing is sent again.
    let before = place.cycles(&conn.name).await.len();
    wait_until("two more cycles", || async {
        place.cycles(&conn.name).await.len() >= before + 2
    })
    .await;
    assert_exactly_once(&receiver, &conn.id, &expected);

    // The sync log: one row per cycle, the first found every order, none failed.
    let cycles = place.cycles(&conn.name).await;
    assert!(cycles.len() >= 3, "{cycles:?}");
    for cycle in &cycles {
        assert_eq!(cycle["connection_id"], conn.id.as_str());
        assert_eq!(cycle["connection_name"], "Shop");
        assert_eq!(cycle["error"], Value::Null, "{cycle}");
        assert_eq!(cycle["orders_failed"], 0, "{cycle}");
    }
    let oldest = cycles.last().unwrap();
    assert!(
        oldest["orders_found"].as_u64().unwrap() >= expected.len() as u64,
        "{oldest}"
    );
    let sent: u64 = cycles
        .iter()
        .map(|c| c["orders_sent"].as_u64().unwrap())
        .sum();
    assert!(sent <= expected.len() as u64, "{sent}");
    // Later cycles start from the cursor: they re-read the overlap, not every order.
    let newest = &cycles[0];
    assert!(
        newest["orders_found"].as_u64().unwrap() < expected.len() as u64 / 2,
        "a later cycle read every order again instead of starting at the cursor: {newest}"
    );
    let table = place.expect(&["logs", "--connection", "Shop"]).await;
    assert!(table.contains("FOUND") && table.contains("Shop"), "{table}");
    let shown = place
        .json(&["connections", "show", &conn.id, "--json"])
        .await;
    assert_ne!(shown["last_sync_at"], Value::Null, "{shown}");
    assert_ne!(shown["cursor"], Value::Null, "{shown}");

    // Every line of the tenant's work names the connection.
    let logs = daemon.logs();
    let delivered: Vec<&Value> = logs
        .iter()
        .filter(|l| message_is(l, "packet delivered"))
        .collect();
    assert_eq!(delivered.len(), expected.len());
    assert!(
        delivered
            .iter()
            .all(|l| l["connection_id"] == conn.id.as_str())
    );
    assert!(
        logs.iter()
            .filter(|l| message_is(l, "cycle done"))
            .all(|l| l["connection_id"] == conn.id.as_str())
    );
    let (status, metrics) = daemon.get("/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(metrics.contains(&conn.id), "{metrics}");
    // What the listener serves names tenants but never shows a secret: neither the Odoo API
    // key, nor the webhook secret, nor the webhook URL's path.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (_, body) = daemon.get(path).await;
        for secret in [sim_key(), conn.secret.clone(), receiver.url("ok")] {
            assert!(!body.contains(&secret), "{path} shows {secret}: {body}");
        }
    }

    let started = Instant::now();
    let status = daemon.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM: exit 0");
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
    assert!(!place.printed().contains(&sim_key()), "the API key leaked");
}

/// `odoo-bridge healthcheck`, the container's HEALTHCHECK: 0 while the daemon answers, 1
/// once it is gone; it finds the daemon the way the image configures it, from
/// `ODOO_BRIDGE_LISTEN=0.0.0.0:PORT`.
#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_0_while_the_daemon_answers_and_1_when_it_does_not() {
    let place = Place::sqlite();
    let daemon = Daemon::start(&place, "probed").await;
    let port = daemon.address.rsplit(':').next().unwrap().to_owned();
    let check = |extra: &[&str], listen: String| {
        let mut args = vec!["healthcheck", "--timeout", "5"];
        args.extend_from_slice(extra);
        let mut command = place.command(&args);
        command.env("ODOO_BRIDGE_LISTEN", listen);
        command
    };
    for extra in [&[][..], &["--ready"][..]] {
        let output = place
            .output(check(extra, format!("0.0.0.0:{port}")), extra)
            .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{extra:?}: {}",
            text(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with("ok: "),
            "{}",
            text(&output)
        );
    }
    assert_eq!(daemon.terminate().await.code(), Some(0));
    let output = place
        .output(check(&[], format!("127.0.0.1:{port}")), &[])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("cannot ask"), "{}", text(&output));
}

// ---------------------------------------------------------------------------------------
// 2. Idempotency across kill -9 and restart.

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_flight_then_restart_resends_only_what_was_in_flight() {
    kill_9_then_restart(Place::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_flight_then_restart_on_postgres() {
    let db = PgDb::create().await;
    kill_9_then_restart(Place::postgres(&db)).await;
}

async fn kill_9_then_restart(place: Place) {
    let tenants = [Tenant::start(21, 100).await, Tenant::start(22, 100).await];
    let receiver = Receiver::start().await;
    let mut expected = BTreeMap::new();
    let mut conns = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        let conn = place
            .add(
                &format!("Tenant {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        expected.insert(conn.id.clone(), tenant.confirmed().await);
        conns.push(conn);
    }
    let total: usize = expected.values().map(BTreeSet::len).sum();
    assert!(total > 80, "{total}");

    // A few deliveries go through, then the receiver holds every request: each
    // connection's sender waits for its answer (they send one packet at a time).
    receiver.hold_after(10);
    let first = Daemon::start(&place, "first").await;
    wait_until(
        "a request of each connection held by the receiver",
        || async {
            let held: BTreeSet<String> = receiver
                .held()
                .iter()
                .map(|id| id.split('_').next().unwrap().to_owned())
                .collect();
            held.len() == conns.len()
        },
    )
    .await;
    let in_flight = receiver.held();
    let before_kill = receiver.hits().len();
    first.kill9().await;
    receiver.open();
    assert!(
        before_kill >= 10 + conns.len() && before_kill < total,
        "mid-flight: {before_kill} of {total}"
    );

    // The second process finds the packets the first one leased and never finished: their
    // lease must run out before it may send them again (a live worker could still be
    // sending them).
    let second = Daemon::start(&place, "second").await;
    for conn in &conns {
        let want = &expected[&conn.id];
        wait_until(
            &format!("every order of {} delivered", conn.name),
            || async { place.all_are(&conn.id, "delivered", want).await },
        )
        .await;
    }

    // Every order arrived, each under exactly one webhook-id; a webhook-id arrived twice
    // only if it was in flight when the first process was killed.
    let hits = receiver.hits();
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids_per_order: BTreeMap<(String, i64, u32), BTreeSet<String>> = BTreeMap::new();
    for hit in &hits {
        assert!(hit.verified, "{hit:?}");
        assert_eq!(hit.kind, "ok");
        *times.entry(hit.webhook_id.clone()).or_default() += 1;
        let (order, version) = hit.order_version();
        assert_eq!(version, 1, "{hit:?}");
        ids_per_order
            .entry((hit.connection_id.clone(), order, version))
            .or_default()
            .insert(hit.webhook_id.clone());
    }
    for conn in &conns {
        assert_eq!(
            receiver.orders_of(&conn.id, "ok"),
            expected[&conn.id],
            "{}",
            conn.name
        );
    }
    for (key, ids) in &ids_per_order {
        assert_eq!(ids.len(), 1, "{key:?} went out under several ids: {ids:?}");
    }
    let resent: BTreeSet<String> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        times.values().all(|n| *n <= 2),
        "a packet arrived more than twice: {times:?}"
    );
    assert!(
        resent.is_subset(&in_flight),
        "resent {resent:?}, but only {in_flight:?} were in flight at the kill"
    );
    assert!(resent.len() <= in_flight.len());
    // Nothing held at the kill got its answer recorded, so each was sent again.
    assert_eq!(resent, in_flight);
    assert_eq!(hits.len(), total + resent.len());

    let status = second.terminate().await;
    assert_eq!(status.code(), Some(0));
}

/// How soon a daemon restarted under its worker id must resend what it had in flight.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn restarted_under_its_worker_id_after_kill_9_it_resends_in_flight_packets_at_once() {
    restart_takes_its_packets_back(Place::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restarted_under_its_worker_id_after_kill_9_on_postgres_it_resends_at_once() {
    let db = PgDb::create().await;
    restart_takes_its_packets_back(Place::postgres(&db)).await;
}

/// A daemon killed with kill -9 while its webhooks are in flight (the receiver holds them,
/// as a slow one would) and restarted with the same `--worker-id` sends those packets again
/// at once, under the same `webhook-id`s, instead of waiting out the leases it held itself.
/// The leases here are 4 minutes long (`--webhook-timeout 60`): every resend must arrive
/// within [`RECOVERY_BOUND`] of the restart, far before they would have run out.
async fn restart_takes_its_packets_back(place: Place) {
    let tenants = [Tenant::start(31, 40).await, Tenant::start(32, 40).await];
    let receiver = Receiver::start().await;
    let mut expected = BTreeMap::new();
    let mut conns = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        let conn = place
            .add(
                &format!("Tenant {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        expected.insert(conn.id.clone(), tenant.confirmed().await);
        conns.push(conn);
    }

    receiver.hold_after(4);
    let first = Daemon::start_with(&place, "bridge-1", "60", WorkerIdIn::Flag).await;
    wait_until(
        "a request of each connection held by the receiver",
        || async {
            let held: BTreeSet<String> = receiver
                .held()
                .iter()
                .map(|id| id.split('_').next().unwrap().to_owned())
                .collect();
            held.len() == conns.len()
        },
    )
    .await;
    let in_flight = receiver.held();
    first.kill9().await;
    receiver.open();

    let restarted = Instant::now();
    // The same id, this time from the environment (as a container would set it).
    let mut second = Daemon::start_with(&place, "bridge-1", "60", WorkerIdIn::Environment).await;
    let took_back = second
        .wait_for_log("the packets taken back", |line| {
            message_is(line, "took back the packets this worker had in flight")
        })
        .await;
    // A worker leases a batch of packets per claim: the one it was sending and those queued
    // behind it.
    assert!(
        took_back["freed"].as_u64().unwrap() >= in_flight.len() as u64,
        "{took_back}"
    );
    let resend_deadline = restarted + RECOVERY_BOUND;
    loop {
        let resent: BTreeSet<String> = receiver
            .hits()
            .iter()
            .filter(|hit| in_flight.contains(&hit.webhook_id))
            .fold(BTreeMap::<String, usize>::new(), |mut times, hit| {
                *times.entry(hit.webhook_id.clone()).or_default() += 1;
                times
            })
            .into_iter()
            .filter(|(_, times)| *times >= 2)
            .map(|(id, _)| id)
            .collect();
        if resent == in_flight {
            break;
        }
        assert!(
            Instant::now() < resend_deadline,
            "{resent:?} of {in_flight:?} resent within {RECOVERY_BOUND:?} of the restart \
             (the leases were 240 s long):\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resend_delay = restarted.elapsed();
    eprintln!(
        "resent {} in-flight packets {resend_delay:?} after the restart",
        in_flight.len()
    );

    // Then everything is delivered, each order under one webhook-id, and only the packets in
    // flight at the kill arrived twice.
    for conn in &conns {
        let want = &expected[&conn.id];
        wait_until(
            &format!("every order of {} delivered", conn.name),
            || async { place.all_are(&conn.id, "delivered", want).await },
        )
        .await;
    }
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for hit in receiver.hits() {
        assert!(hit.verified, "{hit:?}");
        *times.entry(hit.webhook_id).or_default() += 1;
    }
    let twice: BTreeSet<String> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(twice, in_flight);
    assert!(times.values().all(|n| *n <= 2), "{times:?}");
    for conn in &conns {
        assert_eq!(receiver.orders_of(&conn.id, "ok"), expected[&conn.id]);
    }
    assert_eq!(second.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 3. Three processes on one PostgreSQL database.

#[tokio::test(flavor = "multi_thread")]
async fn three_processes_sharing_postgres_deliver_each_packet_once() {
    let db = PgDb::create().await;
    let place = Place::postgres(&db);
    let receiver = Receiver::start().await;
    let mut tenants = Vec::new();
    let mut expected = BTreeMap::new();
    let mut conns = Vec::new();
    for index in 0..5 {
        let tenant = Tenant::start(100 + index, 40).await;
        let conn = place
            .add(
                &format!("Tenant {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        expected.insert(conn.id.clone(), tenant.confirmed().await);
        conns.push(conn);
        tenants.push(tenant);
    }
    let total: usize = expected.values().map(BTreeSet::len).sum();

    let mut daemons = Vec::new();
    for worker in ["worker-a", "worker-b", "worker-c"] {
        daemons.push(Daemon::start(&place, worker).await);
    }
    for conn in &conns {
        let want = &expected[&conn.id];
        wait_until(
            &format!("every order of {} delivered", conn.name),
            || async { place.all_are(&conn.id, "delivered", want).await },
        )
        .await;
    }
    // A few more cycles of every process: nothing is sent again.
    let before = place.json(&["logs", "--limit", "0", "--json"]).await;
    let before = before.as_array().unwrap().len();
    wait_until("more cycles", || async {
        let now = place.json(&["logs", "--limit", "0", "--json"]).await;
        now.as_array().unwrap().len() >= before + 3 * conns.len()
    })
    .await;

    for conn in &conns {
        assert_exactly_once(&receiver, &conn.id, &expected[&conn.id]);
    }
    assert_eq!(receiver.hits().len(), total, "no packet twice");
    let mut by_worker = Vec::new();
    for daemon in &daemons {
        let sent = daemon
            .logs()
            .iter()
            .filter(|l| message_is(l, "packet delivered"))
            .count();
        by_worker.push((daemon.name.clone(), sent));
    }
    let sent: usize = by_worker.iter().map(|(_, n)| n).sum();
    assert_eq!(sent, total, "{by_worker:?}");
    eprintln!("deliveries per process: {by_worker:?}");
    for daemon in daemons {
        assert_eq!(daemon.terminate().await.code(), Some(0));
    }
    assert!(!place.printed().contains(&sim_key()));
}

// ---------------------------------------------------------------------------------------
// 4. One tenant down while the others deliver.

#[tokio::test(flavor = "multi_thread")]
async fn one_tenant_down_does_not_stop_the_others() {
    let down = Tenant::start(31, 20).await;
    down.sim.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .always(),
    );
    let up = [Tenant::start(32, 60).await, Tenant::start(33, 60).await];
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let bad = place
        .add("Down", &down.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&bad);
    let mut good = Vec::new();
    for (index, tenant) in up.iter().enumerate() {
        let conn = place
            .add(
                &format!("Up {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        good.push((conn, tenant.confirmed().await));
    }

    let daemon = Daemon::start(&place, "solo").await;
    for (conn, want) in &good {
        wait_until(
            &format!("every order of {} delivered", conn.name),
            || async { place.all_are(&conn.id, "delivered", want).await },
        )
        .await;
    }
    wait_until("a failed cycle of the tenant that is down", || async {
        !place.cycles(&bad.name).await.is_empty()
    })
    .await;
    for (conn, want) in &good {
        assert_exactly_once(&receiver, &conn.id, want);
        assert!(
            place
                .cycles(&conn.name)
                .await
                .iter()
                .all(|c| c["error"].is_null())
        );
    }
    let cycles = place.cycles(&bad.name).await;
    for cycle in &cycles {
        let error = cycle["error"].as_str().unwrap_or_else(|| panic!("{cycle}"));
        assert!(error.contains("503"), "{error}");
        assert_eq!(cycle["orders_found"], 0);
    }
    let table = place.expect(&["logs", "--connection", "Down"]).await;
    assert!(table.contains("503"), "{table}");
    assert!(place.packets(&bad.id).await.is_empty());
    assert!(receiver.ok_hits(&bad.id).is_empty());
    assert!(
        daemon
            .logs()
            .iter()
            .any(|l| message_is(l, "poll failed") && l["connection_id"] == bad.id.as_str()),
        "the failure is logged with the connection's id"
    );
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 5. A wrong API key: a clear error, and no retry storm.

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_api_key_backs_off_and_says_so_without_the_key() {
    let locked = Tenant::start(41, 20).await;
    let fine = Tenant::start(42, 40).await;
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let wrong = "wrong-key-MUST-NOT-LEAK-5f2c9a7e31d0";
    let bad = place
        .add("Wrong key", &locked.url(), wrong, &receiver.url("ok"))
        .await;
    let good = place
        .add("Right key", &fine.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&bad);
    receiver.trust(&good);
    let want = fine.confirmed().await;
    locked.sim.reset_calls();

    let started = Instant::now();
    let daemon = Daemon::start(&place, "solo").await;
    wait_until("every order of the right key delivered", || async {
        place.all_are(&good.id, "delivered", &want).await
    })
    .await;
    wait_until("a failed cycle of the wrong key", || async {
        !place.cycles(&bad.name).await.is_empty()
    })
    .await;
    // Watch the wrong key for a while. The daemon polls every second (interval 1 s), and
    // after n consecutive failed cycles waits 2^n seconds (daemon.rs `backoff`, plus up to
    // 10 % jitter): logins at t0 ≥ 0, then ≥ t0+2, ≥ t0+6, ≥ t0+14 … — at most
    // floor(log2(E + 2)) of them within E seconds of the start. Each failed cycle costs
    // exactly one `common.authenticate` (a refused login is not retried by the client).
    let watch = Duration::from_secs(10);
    if let Some(rest) = watch.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let logins = locked.sim.call_count("common", "authenticate");
    let elapsed = started.elapsed().as_secs_f64();
    let bound = (elapsed + 2.0).log2().floor() as u64;
    assert!(
        (1..=bound).contains(&logins),
        "{logins} logins in {elapsed:.1} s (at most {bound} expected)"
    );
    assert_eq!(locked.sim.call_count("sale.order", "search_read"), 0);
    assert!(receiver.ok_hits(&bad.id).is_empty());
    assert_exactly_once(&receiver, &good.id, &want);

    // The sync log says what is wrong, on that connection only.
    let cycles = place.cycles(&bad.name).await;
    assert!(cycles.len() as u64 <= logins, "{cycles:?}");
    for cycle in &cycles {
        let error = cycle["error"].as_str().unwrap_or_else(|| panic!("{cycle}"));
        assert!(
            error.contains("wrong database, login or API key"),
            "{error}"
        );
    }
    assert!(
        place
            .cycles(&good.name)
            .await
            .iter()
            .all(|c| c["error"].is_null())
    );
    let table = place.expect(&["logs", "--connection", "Wrong key"]).await;
    assert!(table.contains("authentication failed"), "{table}");
    let output = daemon.output();
    assert_eq!(daemon.terminate().await.code(), Some(0));
    for printed in [output, place.printed()] {
        assert!(!printed.contains(wrong), "the key leaked:\n{printed}");
        assert!(!printed.contains(&sim_key()), "the key leaked:\n{printed}");
    }
}

// ---------------------------------------------------------------------------------------
// 6. Receivers that refuse connections, answer garbage, or are gone.

#[tokio::test(flavor = "multi_thread")]
async fn receiver_refusing_answering_garbage_or_gone() {
    let tenant = Tenant::start(61, 30).await;
    let want = tenant.confirmed().await;
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let refused = place
        .add("Refused", &tenant.url(), &sim_key(), &refused_url())
        .await;
    let garbage = place
        .add(
            "Garbage",
            &tenant.url(),
            &sim_key(),
            &receiver.url("garbage"),
        )
        .await;
    let gone = place
        .add("Gone", &tenant.url(), &sim_key(), &receiver.url("gone"))
        .await;
    for conn in [&refused, &garbage, &gone] {
        receiver.trust(conn);
    }

    let daemon = Daemon::start(&place, "solo").await;
    wait_until("garbage answers counted as delivered", || async {
        place.all_are(&garbage.id, "delivered", &want).await
    })
    .await;
    wait_until("410 answers failed for good", || async {
        place.all_are(&gone.id, "failed", &want).await
    })
    .await;
    wait_until("refused packets queued and tried", || async {
        let packets = place.packets(&refused.id).await;
        packets.len() == want.len() && packets.iter().any(|p| p["attempts"].as_u64() > Some(0))
    })
    .await;

    // 200 with a body that is not JSON: a success, sent once.
    let hits: Vec<Hit> = receiver
        .hits()
        .into_iter()
        .filter(|h| h.kind == "garbage")
        .collect();
    assert_eq!(hits.len(), want.len());
    assert!(hits.iter().all(|h| h.verified));
    assert_eq!(receiver.orders_of(&garbage.id, "garbage"), want);

    // 410: FAILED after one attempt, never sent again, listed under --status failed.
    let failed = place
        .json(&[
            "retries",
            "list",
            "--connection",
            "Gone",
            "--status",
            "failed",
            "--limit",
            "0",
            "--json",
        ])
        .await;
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), want.len());
    for packet in failed {
        assert_eq!(packet["attempts"], 1, "{packet}");
        assert_eq!(packet["failure_class"], "http_4xx", "{packet}");
        assert!(
            packet["last_error"].as_str().unwrap().contains("410"),
            "{packet}"
        );
    }
    assert_eq!(
        receiver.hits().iter().filter(|h| h.kind == "gone").count(),
        want.len(),
        "a 410 is not retried"
    );

    // Connection refused: PENDING, waiting for a retry, classed network_error.
    let pending = place
        .json(&[
            "retries",
            "list",
            "--connection",
            "Refused",
            "--status",
            "pending",
            "--limit",
            "0",
            "--json",
        ])
        .await;
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), want.len());
    let tried: Vec<&Value> = pending
        .iter()
        .filter(|p| p["attempts"].as_u64() > Some(0))
        .collect();
    assert!(!tried.is_empty());
    for packet in tried {
        assert_eq!(packet["failure_class"], "network_error", "{packet}");
    }
    assert!(
        place
            .packets(&refused.id)
            .await
            .iter()
            .all(|p| p["status"] == "pending")
    );
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 7. Connections paused and resumed while the daemon runs.

#[tokio::test(flavor = "multi_thread")]
async fn pausing_stops_the_polls_and_resuming_delivers_what_was_confirmed_meanwhile() {
    let shop = Tenant::start(71, 40).await;
    let other = Tenant::start(72, 20).await;
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let paused = place
        .add("Paused", &shop.url(), &sim_key(), &receiver.url("ok"))
        .await;
    let busy = place
        .add("Busy", &other.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&paused);
    receiver.trust(&busy);
    let mut want = shop.confirmed().await;
    let other_want = other.confirmed().await;

    let mut daemon = Daemon::start(&place, "solo").await;
    wait_until("everything delivered", || async {
        place.all_are(&paused.id, "delivered", &want).await
            && place.all_are(&busy.id, "delivered", &other_want).await
    })
    .await;

    place.expect(&["connections", "pause", "Paused"]).await;
    daemon
        .wait_for_log("the paused connection's task stopped", |l| {
            message_is(
                l,
                "flow removed, paused, edited or handed over: stopping its task",
            ) && l["connection_id"] == paused.id.as_str()
        })
        .await;
    // A cycle in progress when the task was told to stop still finishes and is logged.
    let count_at_stop = place.cycles(&paused.name).await.len();
    let busy_count = place.cycles(&busy.name).await.len();
    wait_until("three cycles of the other connection", || async {
        place.cycles(&busy.name).await.len() >= busy_count + 3
    })
    .await;
    let paused_count = place.cycles(&paused.name).await.len();
    assert!(
        paused_count <= count_at_stop + 1,
        "{paused_count} > {count_at_stop} + 1"
    );

    // An order confirmed while the connection is paused is not picked up...
    let quotation = shop.quotations().await[0];
    shop.client()
        .call_method(
            "sale.order",
            "action_confirm",
            Some(&[quotation]),
            Map::new(),
            None,
        )
        .await
        .unwrap();
    assert!(shop.confirmed().await.contains(&quotation));
    let busy_count = place.cycles(&busy.name).await.len();
    wait_until("three more cycles of the other connection", || async {
        place.cycles(&busy.name).await.len() >= busy_count + 3
    })
    .await;
    assert_eq!(
        place.cycles(&paused.name).await.len(),
        paused_count,
        "no cycle of a paused connection"
    );
    assert!(!receiver.orders_of(&paused.id, "ok").contains(&quotation));
    assert_eq!(
        place
            .json(&["connections", "show", "Paused", "--json"])
            .await["status"],
        "paused"
    );

    // ... until it is resumed.
    place.expect(&["connections", "resume", "Paused"]).await;
    want.insert(quotation);
    wait_until("the order confirmed meanwhile delivered", || async {
        place.all_are(&paused.id, "delivered", &want).await
    })
    .await;
    assert!(place.cycles(&paused.name).await.len() > paused_count);
    assert_exactly_once(&receiver, &paused.id, &want);
    assert_exactly_once(&receiver, &busy.id, &other_want);
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 8. Odoo answering malformed JSON.

#[tokio::test(flavor = "multi_thread")]
async fn malformed_odoo_answers_fail_the_cycle_and_later_cycles_deliver() {
    let tenant = Tenant::start(81, 40).await;
    let want = tenant.confirmed().await;
    tenant.sim.inject(
        FaultRule::new(Fault::MalformedJson)
            .on("sale.order", Some("search_read"))
            .times(3),
    );
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let conn = place
        .add("Flaky", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&conn);

    let daemon = Daemon::start(&place, "solo").await;
    wait_until("every order delivered", || async {
        place.all_are(&conn.id, "delivered", &want).await
    })
    .await;
    wait_until("a clean cycle logged", || async {
        place.cycles(&conn.name).await[0]["error"].is_null()
    })
    .await;
    assert_exactly_once(&receiver, &conn.id, &want);
    let cycles = place.cycles(&conn.name).await;
    let failed: Vec<&Value> = cycles.iter().filter(|c| !c["error"].is_null()).collect();
    assert!(!failed.is_empty(), "{cycles:?}");
    for cycle in &failed {
        assert_eq!(cycle["orders_sent"], 0, "{cycle}");
        let error = cycle["error"].as_str().unwrap();
        assert!(error.contains("malformed response from Odoo"), "{error}");
    }
    assert!(tenant.sim.call_count("sale.order", "search_read") > 3);
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 8. Replicas on one PostgreSQL: the work is shared, not multiplied, and survives kill -9.

/// Three runtimes (as three `odoo-bridge run` would) on one PostgreSQL and one manual clock:
/// each tenant is polled once per interval whatever the number of replicas — the simulators'
/// call counters say so — and when two replicas die the third polls and delivers every tenant.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_postgres_poll_a_tenant_no_more_than_one_does() {
    use engine::clock::Clock;
    use engine::runtime::{Runtime, RuntimeConfig};
    use engine::store::CoordinationStore;
    use jiff::SignedDuration;

    let db = PgDb::create().await;
    let place = Place::postgres(&db);
    let receiver = Receiver::start().await;
    let mut tenants = Vec::new();
    let mut conns = Vec::new();
    for index in 0..5 {
        let tenant = Tenant::start(200 + index, 12).await;
        let conn = place
            .add(
                &format!("Replicated {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        conns.push(conn);
        tenants.push(tenant);
    }
    let url = place.database_url.clone().unwrap();
    let open = || async {
        store_pg::PgStore::connect(store_pg::PgTarget::from_url(&url).unwrap())
            .await
            .unwrap()
    };
    let store = open().await;
    // Whole seconds: PostgreSQL keeps microseconds, and a beat read back must compare equal.
    let start = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let clock = Clock::manual(start);
    let runtime = |store: store_pg::PgStore, worker: &str| {
        Runtime::new(
            store,
            RuntimeConfig::new(worker.to_owned(), "run"),
            clock.clone(),
        )
        .unwrap()
        .start()
    };
    // One step: 5 s of the clock (one reload; every flow, polling each second, is due), then
    // wait until each live replica has beaten for it, so none looks stale to the others.
    let step = |alive: Vec<&'static str>| {
        let clock = clock.clone();
        let store = store.clone();
        async move {
            clock.advance(SignedDuration::from_secs(5));
            let now = clock.now();
            wait_until("every replica's heartbeat", || async {
                let beats = store.heartbeats().await.unwrap();
                alive
                    .iter()
                    .all(|w| beats.iter().any(|b| b.worker_id == *w && b.beat_at >= now))
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let holders = || async {
        let leases = store.flow_leases().await.unwrap();
        conns
            .iter()
            .map(|conn| {
                leases
                    .iter()
                    .find(|lease| lease.flow_id == conn.id)
                    .map(|lease| lease.owner.clone())
            })
            .collect::<Vec<_>>()
    };
    let feed_calls = || {
        tenants
            .iter()
            .map(|tenant| tenant.sim.call_count("sale.order", "search_read"))
            .collect::<Vec<u64>>()
    };

    // One replica: everything delivered, then the calls of three steps counted.
    let first = runtime(store.clone(), "replica-1");
    let mut expected = Vec::new();
    for tenant in &tenants {
        expected.push(tenant.confirmed().await);
    }
    wait_until("every order delivered by one replica", || async {
        step(vec!["replica-1"]).await;
        conns
            .iter()
            .zip(&expected)
            .all(|(conn, want)| &receiver.orders_of(&conn.id, "ok") == want)
    })
    .await;
    let before = feed_calls();
    for _ in 0..3 {
        step(vec!["replica-1"]).await;
    }
    let alone: Vec<u64> = feed_calls()
        .iter()
        .zip(&before)
        .map(|(a, b)| a - b)
        .collect();

    // Three replicas: the tenants are spread (2, 2, 1), then the same three steps counted.
    let second = runtime(open().await, "replica-2");
    let third = runtime(open().await, "replica-3");
    let all = vec!["replica-1", "replica-2", "replica-3"];
    wait_until("the tenants spread over three replicas", || async {
        step(all.clone()).await;
        let held = holders().await;
        let mut load: HashMap<String, usize> = HashMap::new();
        for owner in held.iter().flatten() {
            *load.entry(owner.clone()).or_default() += 1;
        }
        held.iter().all(Option::is_some) && load.len() == 3 && load.values().all(|n| *n <= 2)
    })
    .await;
    // A tenant that changed hands is polled at once by its new holder: let that pass.
    step(all.clone()).await;
    step(all.clone()).await;
    let before = feed_calls();
    for _ in 0..3 {
        step(all.clone()).await;
    }
    let shared: Vec<u64> = feed_calls()
        .iter()
        .zip(&before)
        .map(|(a, b)| a - b)
        .collect();
    eprintln!(
        "sale.order search_read per tenant over 3 polls: one replica {alone:?}, three {shared:?}"
    );
    for (index, (one, three)) in alone.iter().zip(&shared).enumerate() {
        assert!(*one > 0, "tenant {index} was polled");
        assert!(
            three <= one,
            "tenant {index}: three replicas made {three} calls where one made {one}"
        );
    }

    // Two replicas die without a word; the survivor takes every tenant and delivers what
    // each confirms next.
    second.abort().await;
    third.abort().await;
    wait_until("the survivor holds every tenant", || async {
        step(vec!["replica-1"]).await;
        holders()
            .await
            .iter()
            .all(|owner| owner.as_deref() == Some("replica-1"))
    })
    .await;
    for (tenant, want) in tenants.iter().zip(expected.iter_mut()) {
        let quotation = tenant.quotations().await[0];
        tenant
            .client()
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[quotation]),
                Map::new(),
                None,
            )
            .await
            .unwrap();
        want.insert(quotation);
    }
    wait_until("the new orders delivered by the survivor", || async {
        step(vec!["replica-1"]).await;
        conns
            .iter()
            .zip(&expected)
            .all(|(conn, want)| &receiver.orders_of(&conn.id, "ok") == want)
    })
    .await;
    for (conn, want) in conns.iter().zip(&expected) {
        assert_exactly_once(&receiver, &conn.id, want);
    }
    first.shutdown().await;
    store.close().await;
}

/// The same with real processes and a real kill -9: two of three `odoo-bridge run` die; the
/// third takes their tenants over (within five reloads) and delivers what is confirmed after.
#[tokio::test(flavor = "multi_thread")]
async fn killed_replicas_leave_their_tenants_to_the_survivor() {
    let db = PgDb::create().await;
    let place = Place::postgres(&db);
    let receiver = Receiver::start().await;
    let mut tenants = Vec::new();
    let mut conns = Vec::new();
    let mut expected = Vec::new();
    for index in 0..4 {
        let tenant = Tenant::start(300 + index, 10).await;
        let conn = place
            .add(
                &format!("Shared {index}"),
                &tenant.url(),
                &sim_key(),
                &receiver.url("ok"),
            )
            .await;
        receiver.trust(&conn);
        expected.push(tenant.confirmed().await);
        conns.push(conn);
        tenants.push(tenant);
    }
    let survivor = Daemon::start(&place, "survivor").await;
    let doomed = [
        Daemon::start(&place, "doomed-1").await,
        Daemon::start(&place, "doomed-2").await,
    ];
    for (conn, want) in conns.iter().zip(&expected) {
        wait_until(&format!("{} delivered", conn.name), || async {
            place.all_are(&conn.id, "delivered", want).await
        })
        .await;
    }
    // Wait until the work is spread: no replica holds more than two of the four tenants, so
    // the two about to die hold at least two between them.
    wait_until("tenants held by the doomed replicas", || async {
        let taken: HashSet<String> = doomed
            .iter()
            .flat_map(|daemon| daemon.logs())
            .filter(|l| message_is(l, "took the flow's lease"))
            .filter_map(|l| l["connection_id"].as_str().map(str::to_owned))
            .collect();
        taken.len() >= 2
    })
    .await;
    for daemon in doomed {
        daemon.kill9().await;
    }
    for (tenant, want) in tenants.iter().zip(expected.iter_mut()) {
        let quotation = tenant.quotations().await[0];
        tenant
            .client()
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[quotation]),
                Map::new(),
                None,
            )
            .await
            .unwrap();
        want.insert(quotation);
    }
    for (conn, want) in conns.iter().zip(&expected) {
        wait_until(&format!("{}'s new order delivered", conn.name), || async {
            place.all_are(&conn.id, "delivered", want).await
        })
        .await;
        assert_exactly_once(&receiver, &conn.id, want);
    }
    let took = survivor
        .logs()
        .iter()
        .filter(|l| message_is(l, "took the flow's lease"))
        .count();
    assert!(
        took >= conns.len(),
        "the survivor took every tenant: {took}"
    );
    assert_eq!(survivor.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 9. The inbox: events `run` takes in, handled with `odoo-bridge inbox …`.

/// `run` stores a signed event once (202, then 200 for the same `webhook-id`) and refuses a
/// forged one; `inbox list/show/retry/discard` show where each stands and handle a FAILED one;
/// unknown numbers and flows exit 9, a wrong status 3; no secret is printed.
#[tokio::test(flavor = "multi_thread")]
async fn inbound_events_are_stored_by_run_and_handled_with_the_inbox_commands() {
    use engine::inbox::receive::INBOUND_SECRET;
    use engine::store::{
        Application, ApplicationOutcome, InboxStore as _, SecretValue, TenantStore as _,
    };
    const SECRET: &str = "inbound-secret-of-the-cli-tests-01";

    let place = Place::sqlite();
    let tenant = Tenant::start(400, 0).await;
    let receiver = Receiver::start().await;
    let conn = place
        .add("Inbound", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    // No command gives a flow an inbound secret yet (the marketplace's flows will have one):
    // set it through the store.
    let store = store_sqlite::SqliteStore::open_existing(&place.db_path)
        .await
        .unwrap();
    let mut flow = store.flow(None, &conn.id).await.unwrap().unwrap();
    flow.secrets
        .insert(INBOUND_SECRET.to_owned(), SecretValue::new(SECRET));
    let owner = store.tenant(&flow.tenant_id).await.unwrap().unwrap();
    assert!(store.update_tenant(&owner, &[flow]).await.unwrap());

    let daemon = Daemon::start(&place, "inbox-worker").await;
    let path = format!("/inbox/{}", conn.id);
    let body = r#"{"status":"delivered","order":"SO042"}"#;
    let now = jiff::Timestamp::now().as_second();
    let sign = |id: &str, secret: &str| {
        let signature = WebhookSecret::new(secret)
            .unwrap()
            .sign(id, now, body.as_bytes());
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", now.to_string()),
            ("webhook-signature", signature),
            ("content-type", "application/json".to_owned()),
        ]
    };
    assert_eq!(daemon.post(&path, &sign("evt-1", SECRET), body).await, 202);
    assert_eq!(daemon.post(&path, &sign("evt-1", SECRET), body).await, 200);
    assert_eq!(daemon.post(&path, &sign("evt-2", SECRET), body).await, 202);
    let forged = sign("evt-3", "another-secret-entirely-00000001");
    assert_eq!(daemon.post(&path, &forged, body).await, 401);
    assert_eq!(
        daemon
            .post("/inbox/0000000000000000", &sign("evt-4", SECRET), body)
            .await,
        404
    );

    let listed = place.json(&["inbox", "list", "--json"]).await;
    let events = listed.as_array().unwrap();
    assert_eq!(events.len(), 2, "{listed}");
    assert!(
        events
            .iter()
            .all(|e| e["status"] == "pending" && e["flow_id"] == conn.id.as_str())
    );
    let first = events.iter().find(|e| e["event_id"] == "evt-1").unwrap()["id"]
        .as_i64()
        .unwrap();

    // The flow's worker gives up on it (an order-delivery flow applies nothing itself).
    let claimed = store
        .claim_inbound(
            "a-test-worker",
            &conn.id,
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.first().map(|e| e.id), Some(first));
    let failed = Application {
        started_at: jiff::Timestamp::now(),
        duration_ms: 12,
        outcome: ApplicationOutcome::Failed {
            error: "Odoo refused the status change: the order is locked".to_owned(),
            failure_class: engine::webhook::FailureClass::OdooError,
        },
    };
    assert!(
        store
            .record_application(first, "a-test-worker", &failed)
            .await
            .unwrap()
    );

    let failed_only = place
        .json(&[
            "inbox", "list", "--status", "failed", "--flow", "Inbound", "--json",
        ])
        .await;
    assert_eq!(failed_only.as_array().unwrap().len(), 1, "{failed_only}");
    let table = place.expect(&["inbox", "list"]).await;
    assert!(table.contains("waiting for a person"), "{table}");
    let shown = place
        .json(&["inbox", "show", &first.to_string(), "--json"])
        .await;
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["body"]["order"], "SO042");
    assert_eq!(shown["headers"]["webhook-id"], "evt-1");
    assert!(
        shown["headers"].get("webhook-signature").is_none(),
        "{shown}"
    );
    assert_eq!(shown["history"][0]["outcome"], "failed");
    assert!(
        shown["history"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("locked")
    );

    place.expect(&["inbox", "retry", &first.to_string()]).await;
    let retried = place
        .json(&["inbox", "show", &first.to_string(), "--json"])
        .await;
    assert_eq!(
        (retried["status"].clone(), retried["attempts"].clone()),
        ("pending".into(), 0.into())
    );
    place
        .expect(&["inbox", "discard", &first.to_string(), "--yes"])
        .await;
    let again = place
        .output(
            place.command(&["inbox", "retry", &first.to_string()]),
            &["inbox", "retry"],
        )
        .await;
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("discarded"), "{}", text(&again));
    for args in [
        &["inbox", "show", "999999"][..],
        &["inbox", "list", "--flow", "no such flow"][..],
    ] {
        let missing = place.output(place.command(args), args).await;
        assert_eq!(
            missing.status.code(),
            Some(9),
            "{args:?}: {}",
            text(&missing)
        );
    }
    assert!(!place.printed().contains(SECRET));
    assert!(!daemon.output().contains(SECRET));
    store.close().await;
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 10. A store written by release 0.1, driven by this release's binary.

/// The release-0.1 SQLite fixture (`crates/store-sqlite/tests/fixtures`), opened by this
/// binary: the connections read as before; pointed at a live receiver, `run` sends every
/// packet 0.1 left PENDING exactly once, with its 0.1 `webhook-id` and a signature under the
/// connection's 0.1 secret, and not one packet 0.1 had delivered or given up on.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_0_1_store_runs_on_with_only_its_pending_packets_sent() {
    let place = Place::sqlite();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../store-sqlite/tests/fixtures/release-0.1.db");
    std::fs::copy(&fixture, &place.db_path).unwrap();

    let listed = place.json(&["connections", "list", "--json"]).await;
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Le Juste", "Paused shop", "Receiver down"]);
    let before = place
        .json(&["retries", "list", "--limit", "0", "--json"])
        .await;
    let ids_with = |status: &str| -> BTreeSet<String> {
        before
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == status)
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (pending, delivered, failed) = (
        ids_with("pending"),
        ids_with("delivered"),
        ids_with("failed"),
    );
    assert_eq!(
        (pending.len(), delivered.len(), failed.len()),
        (46, 22, 8),
        "the fixture's packets"
    );

    let receiver = Receiver::start().await;
    for (name, secret) in [
        ("Le Juste", "fixture-secret-le-juste"),
        ("Receiver down", "fixture-secret-down"),
    ] {
        let id = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        receiver.trust(&Conn {
            id,
            name: name.to_owned(),
            secret: secret.to_owned(),
        });
        place
            .expect(&[
                "connections",
                "edit",
                name,
                "--webhook-url",
                &receiver.url("ok"),
            ])
            .await;
    }
    let daemon = Daemon::start(&place, "after-the-upgrade").await;
    wait_until("every pending packet of 0.1 delivered", || async {
        let arrived: BTreeSet<String> = receiver
            .hits()
            .iter()
            .map(|hit| hit.webhook_id.clone())
            .collect();
        arrived.is_superset(&pending)
    })
    .await;
    wait_until("no packet left pending in the store", || async {
        place
            .json(&["retries", "list", "--status", "pending", "--json"])
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    assert_eq!(daemon.terminate().await.code(), Some(0));

    let hits = receiver.hits();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for hit in &hits {
        assert!(hit.verified, "signed under the 0.1 secret: {hit:?}");
        *sent.entry(hit.webhook_id.clone()).or_default() += 1;
    }
    let sent_ids: BTreeSet<String> = sent.keys().cloned().collect();
    assert_eq!(sent_ids, pending, "exactly the packets 0.1 left pending");
    assert!(sent.values().all(|n| *n == 1), "each once: {sent:?}");
    let after = place
        .json(&["retries", "list", "--limit", "0", "--json"])
        .await;
    for packet in after.as_array().unwrap() {
        let id = packet["id"].as_str().unwrap();
        let expected = if failed.contains(id) {
            "failed"
        } else {
            "delivered"
        };
        assert_eq!(packet["status"], expected, "{packet}");
    }
}

// ---------------------------------------------------------------------------------------
// 10. The fault matrix's delivery cases (the README's table names each test).

/// Confirms the tenant's first quotation; returns its id.
async fn confirm_a_quotation(tenant: &Tenant) -> i64 {
    let quotation = tenant.quotations().await[0];
    tenant
        .client()
        .call_method(
            "sale.order",
            "action_confirm",
            Some(&[quotation]),
            Map::new(),
            None,
        )
        .await
        .unwrap();
    quotation
}

/// Odoo goes away (its port refuses connections) while the daemon polls, and comes back
/// with its data: the cycles in between fail and are logged, nothing is sent twice, and an
/// order confirmed after the restart is delivered once.
#[tokio::test(flavor = "multi_thread")]
async fn odoo_restarting_mid_run_loses_nothing_and_sends_nothing_twice() {
    let Tenant { sim, running } = Tenant::start(91, 30).await;
    let address = running.address();
    let tenant = Tenant { sim, running };
    let mut want = tenant.confirmed().await;
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let conn = place
        .add("Restarting", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&conn);
    let daemon = Daemon::start(&place, "solo").await;
    wait_until("the first orders delivered", || async {
        place.all_are(&conn.id, "delivered", &want).await
    })
    .await;

    let Tenant { sim, running } = tenant;
    running.shutdown().await;
    wait_until("a failed cycle while Odoo is down", || async {
        place.cycles(&conn.name).await[0]["error"]
            .as_str()
            .is_some_and(|error| !error.is_empty())
    })
    .await;
    let running = sim
        .clone()
        .serve_on(address)
        .await
        .expect("Odoo restarts on its port");
    let tenant = Tenant { sim, running };
    want.insert(confirm_a_quotation(&tenant).await);
    wait_until(
        "the order confirmed after the restart delivered",
        || async { place.all_are(&conn.id, "delivered", &want).await },
    )
    .await;
    assert_exactly_once(&receiver, &conn.id, &want);
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

/// Bursts of 503, and 429 with `Retry-After`, on the polls: retried, every order delivered
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_5xx_and_429_from_odoo_are_retried_and_every_order_sent_once() {
    let tenant = Tenant::start(92, 30).await;
    let want = tenant.confirmed().await;
    for rule in [
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .on("sale.order", Some("search_read"))
        .times(3),
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some("1".to_owned()),
        })
        .on("sale.order", Some("search_read"))
        .times(2),
    ] {
        tenant.sim.inject(rule);
    }
    let receiver = Receiver::start().await;
    let place = Place::sqlite();
    let conn = place
        .add("Bursty", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&conn);
    let daemon = Daemon::start(&place, "solo").await;
    wait_until("every order delivered", || async {
        place.all_are(&conn.id, "delivered", &want).await
    })
    .await;
    assert_exactly_once(&receiver, &conn.id, &want);
    assert!(tenant.sim.call_count("sale.order", "search_read") > 5);
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

/// The SQLite store's disk fills up: the cycles fail with a clear error naming the disk and
/// the daemon keeps running; an order is only ever sent under the one packet id recorded for
/// it (a send whose outcome could not be recorded is resent later with the same
/// `webhook-id`, which receivers deduplicate); once space is freed, every order is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_under_the_sqlite_store_fails_cycles_clearly_and_loses_nothing() {
    let Some(disk) = crate::full_disk::SmallDisk::mount(64) else {
        return;
    };
    let tenant = Tenant::start(93, 30).await;
    let mut want = tenant.confirmed().await;
    let receiver = Receiver::start().await;
    let mut place = Place::sqlite();
    place.db_path = disk.path("bridge.db");
    let conn = place
        .add("Cramped", &tenant.url(), &sim_key(), &receiver.url("ok"))
        .await;
    receiver.trust(&conn);
    let mut daemon = Daemon::start(&place, "solo").await;
    wait_until("the first orders delivered", || async {
        place.all_are(&conn.id, "delivered", &want).await
    })
    .await;

    assert_exactly_once(&receiver, &conn.id, &want);
    disk.fill();
    let confirmed_while_full = confirm_a_quotation(&tenant).await;
    daemon
        .wait_for_log("a write refused by the full disk, said clearly", |line| {
            line.to_string()
                .contains("the disk holding the SQLite store: it is full or failing")
        })
        .await;
    disk.free();
    want.insert(confirmed_while_full);
    wait_until(
        "the order confirmed while the disk was full delivered",
        || async { place.all_are(&conn.id, "delivered", &want).await },
    )
    .await;
    let hits = receiver.ok_hits(&conn.id);
    for order in &want {
        let ids: BTreeSet<&str> = hits
            .iter()
            .filter(|hit| hit.order_version().0 == *order)
            .map(|hit| hit.webhook_id.as_str())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "order {order}: one packet id, resent or not: {ids:?}"
        );
    }
    let sent: BTreeSet<i64> = hits.iter().map(|hit| hit.order_version().0).collect();
    assert_eq!(sent, want, "no order that was not confirmed");
    daemon.assert_no_panic();
    assert_eq!(daemon.terminate().await.code(), Some(0));
}
