//! `odoo-bridge connections|retries|logs` through the real binary, on an SQLite file in a
//! temporary directory (and once on a fresh PostgreSQL database), against a simulator
//! process and a Standard Webhooks receiver on loopback.

use crate::mirror_postgres::PgDb;
use crate::ping::{BINARY, SimProcess};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use engine::change_feed::Checkpoint;
use engine::mirror_store::MirrorStore;
use engine::order_delivery::{ConnectionStore, Event, WebhookSecret};
use engine::store::{
    Attempt, AttemptOutcome, CycleLog, FeedCursor, NewPacket, OutboxStore, Subject, SyncLogStore,
};
use engine::webhook::FailureClass;
use engine::webhook::Verifier;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use store_sqlite::SqliteStore;

/// The Odoo API key the tests put in the environment: it must never be printed.
const KEY: &str = "odoo-key-NEVER-ECHOED-7c41d0e5b2a9";

/// One store for the binary: an SQLite file in a temporary directory, or a PostgreSQL URL.
struct Bridge {
    _dir: tempfile::TempDir,
    db_path: PathBuf,
    database_url: Option<String>,
    /// Everything every command printed, to look for secrets.
    printed: Mutex<String>,
}

impl Bridge {
    fn sqlite() -> Bridge {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("nested/dir/bridge.db");
        Bridge {
            _dir: dir,
            db_path,
            database_url: None,
            printed: Mutex::new(String::new()),
        }
    }

    fn postgres(url: String) -> Bridge {
        let mut bridge = Bridge::sqlite();
        bridge.database_url = Some(url);
        bridge
    }

    /// Runs `odoo-bridge ARGS` with `ODOO_API_KEY` set to `key` (or unset), stdin not a
    /// terminal.
    fn run_with_key(&self, key: Option<&str>, args: &[&str]) -> Output {
        self.run_with_env(key, &[], args)
    }

    /// [`Bridge::run_with_key`] with more variables set.
    fn run_with_env(&self, key: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = Command::new(BINARY);
        command
            .args(["--log-format", "json"])
            .args(args)
            .env("POLLER_DB_PATH", &self.db_path)
            .env_remove("DATABASE_URL")
            .env_remove("POLLER_DEFAULT_WEBHOOK_URL")
            .env_remove("ODOO_API_KEY")
            .env_remove("ODOO_BRIDGE_LOG_LEVEL")
            .env_remove("ODOO_BRIDGE_ENCRYPTION_KEY")
            .env_remove("ODOO_BRIDGE_NEW_ENCRYPTION_KEY")
            .env_remove("ODOO_BRIDGE_ENCRYPTION_KEY_FILE");
        if let Some(url) = &self.database_url {
            command.env("DATABASE_URL", url);
            // Not the default ./data/odoo-bridge.key of the working directory (the source tree).
            command.env(
                "ODOO_BRIDGE_ENCRYPTION_KEY_FILE",
                self._dir.path().join("postgres.key"),
            );
        }
        if let Some(key) = key {
            command.env("ODOO_API_KEY", key);
        }
        command.envs(env.iter().copied());
        let output = command.output().expect("the binary runs");
        self.printed.lock().unwrap().push_str(&text(&output));
        output
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_key(Some(KEY), args)
    }

    /// Runs and expects exit `code`; returns stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "odoo-bridge {args:?}:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let stdout = self.expect(0, args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed {stdout:?}: {e}"))
    }

    /// Adds a connection named `name` with the test key; returns `add --json`'s object.
    fn add(&self, name: &str, odoo_url: &str, webhook_url: &str, extra: &[&str]) -> Value {
        self.add_with_key(KEY, name, odoo_url, webhook_url, extra)
    }

    /// [`Bridge::add`] with `key` in `ODOO_API_KEY`.
    fn add_with_key(
        &self,
        key: &str,
        name: &str,
        odoo_url: &str,
        webhook_url: &str,
        extra: &[&str],
    ) -> Value {
        let mut args = vec![
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
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = self.run_with_key(Some(key), &args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}:\n{}",
            text(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    async fn store(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.db_path).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn packet(connection_id: &str, order: i64, version: u32, event: Event) -> NewPacket {
    let body = serde_json::json!({
        "event": event.as_str(),
        "external_id": format!("odoo_odoo_{order}"),
        "order": {"platform_order_id": order.to_string(), "amount_total": 5_990_000},
        "version": version,
    });
    NewPacket {
        id: format!("{connection_id}_{order}_v{version}"),
        subject: Subject::new("sale.order", order),
        reference: Some(format!("odoo_odoo_{order}")),
        target: "webhook".to_owned(),
        event: event.as_str().to_owned(),
        version,
        payload: body.to_string(),
        payload_hash: format!("{order:064x}"),
        max_attempts: 5,
        created_at: Timestamp::now(),
    }
}

fn checkpoint(second: i64, last_id: i64) -> Option<FeedCursor<'static>> {
    Some(FeedCursor {
        feed: "sale.order",
        checkpoint: Checkpoint {
            second: Timestamp::from_second(second).unwrap(),
            last_id,
        },
    })
}

/// A successful cycle of `connection_id` just now (what moves its last sync).
fn quiet_cycle(connection_id: &str) -> CycleLog {
    CycleLog {
        flow_id: connection_id.to_owned(),
        started_at: Timestamp::now(),
        found: 0,
        sent: 0,
        failed: 0,
        held_back: 0,
        error_message: None,
        duration_ms: 1,
    }
}

// ---------------------------------------------------------------------------------------
// A webhook receiver that checks Standard Webhooks signatures.

#[derive(Debug, Clone)]
struct Received {
    body: Value,
    verified: bool,
    secret_header_matches: bool,
    webhook_id: String,
    connection_header: String,
}

#[derive(Default)]
struct Shared {
    secret: Mutex<Option<WebhookSecret>>,
    received: Mutex<Vec<Received>>,
}

struct Receiver {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = shared.secret.lock().unwrap().clone();
    let verified = secret.as_ref().is_some_and(|secret| {
        Verifier::new(secret.clone())
            .verify(&headers, &body)
            .is_ok()
    });
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let secret_header_matches = secret
        .as_ref()
        .is_some_and(|secret| header("x-webhook-secret") == secret.expose());
    shared.received.lock().unwrap().push(Received {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
        secret_header_matches,
        webhook_id: header("webhook-id"),
        connection_header: header("x-odoo-connection-id"),
    });
    if verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

impl Receiver {
    fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hooks/odoo", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let router = axum::Router::new()
                    .route("/hooks/odoo", post(hook))
                    .with_state(state);
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn expect_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = Some(WebhookSecret::new(secret).unwrap());
    }

    fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback URL nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hooks/odoo")
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn connections_add_list_show_edit_pause_resume_remove() {
    let bridge = Bridge::sqlite();
    // Reading commands do not create a store (nor its directory): only `add` does.
    for read in [
        vec!["connections", "list"],
        vec!["connections", "show", "nope"],
        vec!["retries", "list"],
        vec!["logs"],
    ] {
        let output = bridge.run(&read);
        assert_eq!(output.status.code(), Some(3), "{read:?}: {}", text(&output));
        assert!(
            text(&output).contains("no odoo-bridge store at SQLite file"),
            "{}",
            text(&output)
        );
        assert!(!bridge.db_path.exists(), "{read:?} created the store");
        assert!(
            !bridge.db_path.parent().unwrap().exists(),
            "{read:?} created the store's directory"
        );
    }

    let added = bridge.add(
        "Le Juste Odoo",
        "https://lejuste.odoo.com/",
        "https://hooks.example.com/odoo",
        &[
            "--interval",
            "90",
            "--events",
            "order.confirmed,order.cancelled",
        ],
    );
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert!(
        id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{id}"
    );
    let secret = added["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(uuid_version(&secret), Some('4'), "{secret}");
    assert_eq!(added["is_active"], true);

    // The file is private to its owner.
    let mode = std::fs::metadata(&bridge.db_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // The text form of add prints the id and the secret once, and masks the key.
    let other = bridge.expect(
        0,
        &[
            "connections",
            "add",
            "--name",
            "Empresa X",
            "--odoo-url",
            "http://10.0.0.5:8069",
            "--odoo-db",
            "empresax",
            "--odoo-username",
            "api@empresax.cl",
            "--store-id",
            "s2",
            "--client-id",
            "c2",
            "--paused",
        ],
    );
    assert!(other.contains("Webhook secret (shown this once"), "{other}");
    assert!(other.contains("••••"), "{other}");
    // The seed's default webhook URL.
    assert!(
        other.contains("https://stockmaster.notorios.cl/api/webhooks/odoo"),
        "{other}"
    );

    let list = bridge.json(&["connections", "list", "--json"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "Empresa X");
    assert_eq!(rows[0]["status"], "paused");
    assert_eq!(rows[1]["name"], "Le Juste Odoo");
    assert_eq!(rows[1]["status"], "active");
    assert_eq!(rows[1]["polling_interval_seconds"], 90);
    assert_eq!(rows[1]["last_sync_at"], Value::Null);
    assert_eq!(rows[1]["webhook_url"], "https://hooks.example.com/odoo");
    let table = bridge.expect(0, &["connections", "list"]);
    assert!(
        table.contains("● active") && table.contains("○ paused"),
        "{table}"
    );
    assert!(table.contains("never"), "{table}");

    // show: every field, secrets masked, by name or id.
    let show = bridge.json(&["connections", "show", "le juste odoo", "--json"]);
    assert_eq!(show["id"], id.as_str());
    assert_eq!(show["odoo_url"], "https://lejuste.odoo.com");
    assert_eq!(
        show["odoo_api_key"],
        format!("••••{}", &KEY[KEY.len() - 4..])
    );
    assert_eq!(
        show["webhook_secret"],
        format!("••••{}", &secret[secret.len() - 4..])
    );
    assert_eq!(
        show["events"],
        serde_json::json!(["order.confirmed", "order.cancelled"])
    );
    assert_eq!(show["cursor"], Value::Null);
    let revealed = bridge.json(&["connections", "show", &id, "--json", "--reveal-secret"]);
    assert_eq!(revealed["webhook_secret"], secret.as_str());
    let shown = bridge.expect(0, &["connections", "show", &id]);
    assert!(shown.contains("--reveal-secret shows it"), "{shown}");
    assert!(!shown.contains(&secret), "{shown}");

    // The feed has moved and packets are queued: editing must keep both.
    {
        let store = bridge.store().await;
        store
            .enqueue(
                &id,
                &[packet(&id, 7, 1, Event::OrderConfirmed)],
                checkpoint(1_795_000_000, 42),
            )
            .await
            .unwrap();
        store.record_cycles(&[quiet_cycle(&id)]).await.unwrap();
        store.close().await;
    }
    let rotated_key = "rotated-key-ALSO-SECRET-0000111122223333";
    let output = bridge.run_with_key(
        Some(rotated_key),
        &[
            "connections",
            "edit",
            &id,
            "--rotate-api-key",
            "--interval",
            "300",
            "--odoo-url",
            "https://lejuste2.odoo.com",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("odoo_api_key"), "{stdout}");
    assert!(stdout.contains("cursor and its queue are kept"), "{stdout}");
    let edited = bridge.json(&["connections", "show", &id, "--json"]);
    assert_eq!(edited["odoo_url"], "https://lejuste2.odoo.com");
    assert_eq!(edited["polling_interval_seconds"], 300);
    assert_eq!(edited["odoo_api_key"], "••••3333");
    assert_eq!(edited["cursor"]["last_id"], 42);
    assert_eq!(edited["pending"], 1);
    assert_eq!(edited["webhook_secret"], show["webhook_secret"]);
    assert_ne!(edited["last_sync_at"], Value::Null);
    let packets = bridge.json(&["retries", "list", "--connection", &id, "--json"]);
    assert_eq!(packets.as_array().unwrap().len(), 1);
    {
        let store = bridge.store().await;
        let stored = store.connection(&id).await.unwrap().unwrap();
        assert_eq!(stored.odoo_api_key.expose(), rotated_key);
        store.close().await;
    }

    // Renaming onto another connection's name is refused, whatever the case.
    let output = bridge.run(&["connections", "edit", &id, "--name", "EMPRESA X"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("already used"), "{}", text(&output));
    // Nothing to change is a usage error; an unknown connection is "not found" (exit 9).
    assert_eq!(
        bridge.run(&["connections", "edit", &id]).status.code(),
        Some(2)
    );
    let output = bridge.run(&["connections", "show", "nope"]);
    assert_eq!(output.status.code(), Some(9));
    assert!(text(&output).contains("no connection"), "{}", text(&output));

    // pause / resume.
    assert!(
        bridge
            .expect(0, &["connections", "pause", "Le Juste Odoo"])
            .contains("Paused")
    );
    assert_eq!(
        bridge.json(&["connections", "show", &id, "--json"])["is_active"],
        false
    );
    assert!(
        bridge
            .expect(0, &["connections", "pause", &id])
            .contains("already paused")
    );
    assert!(
        bridge
            .expect(0, &["connections", "resume", &id])
            .contains("Resumed")
    );
    assert_eq!(
        bridge.json(&["connections", "show", &id, "--json"])["status"],
        "active"
    );

    // remove: refused without a terminal and without --yes; done with --yes.
    let output = bridge.run(&["connections", "remove", &id]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--yes"), "{}", text(&output));
    assert_eq!(
        bridge
            .json(&["connections", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let removed = bridge.expect(0, &["connections", "remove", &id, "--yes"]);
    assert!(removed.contains("1 outbox packet"), "{removed}");
    let list = bridge.json(&["connections", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        bridge
            .json(&["retries", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // No output ever carried an API key; the webhook secret only where it is meant to.
    let printed = bridge.printed();
    assert!(!printed.contains(KEY), "the API key leaked:\n{printed}");
    assert!(!printed.contains(rotated_key), "the rotated key leaked");
    assert_eq!(
        printed.matches(&secret).count(),
        2,
        "the secret is printed by add --json and show --reveal-secret only"
    );
}

fn uuid_version(text: &str) -> Option<char> {
    let parts: Vec<&str> = text.split('-').collect();
    (parts.len() == 5 && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]))
        .then(|| parts[2].chars().next())
        .flatten()
}

#[test]
fn connections_validation_lists_every_field_error() {
    let bridge = Bridge::sqlite();
    let output = bridge.run(&[
        "connections",
        "add",
        "--name",
        " ",
        "--odoo-url",
        "https://lejuste.odoo.com/web",
        "--odoo-db",
        "",
        "--odoo-username",
        "admin",
        "--webhook-url",
        "lejuste.example.com/hook",
        "--webhook-secret",
        "not a secret",
        "--store-id",
        "",
        "--client-id",
        "c",
        "--interval",
        "0",
        "--min-delay-ms",
        "soon",
        "--events",
        "order.created",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "9 problems",
        "--name: is required",
        "--odoo-url: points to a page of Odoo (/web), not to its base URL: use https://lejuste.odoo.com",
        "--odoo-db: is required",
        "--webhook-url: must start with https://",
        "--webhook-secret: must be printable ASCII",
        "--store-id: is required",
        "--interval: must be positive",
        "--min-delay-ms: must be a whole number",
        "--events: unknown event \"order.created\"",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains("not a secret"), "{stderr}");

    // A missing key (no variable, no terminal) is named with the other problems.
    let output = bridge.run_with_key(
        None,
        &[
            "connections",
            "add",
            "--name",
            "A",
            "--odoo-url",
            "https://a.odoo.com",
            "--odoo-db",
            "a",
            "--odoo-username",
            "admin",
            "--store-id",
            "s",
            "--client-id",
            "c",
            "--interval",
            "86401",
        ],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("API key ($ODOO_API_KEY): is missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--interval: must be at most 86400"),
        "{stderr}"
    );
    // Another variable can be named.
    let output = Command::new(BINARY)
        .args([
            "connections",
            "add",
            "--name",
            "B",
            "--odoo-url",
            "https://b.odoo.com",
            "--odoo-db",
            "b",
            "--odoo-username",
            "admin",
            "--store-id",
            "s",
            "--client-id",
            "c",
            "--api-key-env",
            "TENANT_B_KEY",
        ])
        .env("POLLER_DB_PATH", &bridge.db_path)
        .env_remove("DATABASE_URL")
        .env_remove("ODOO_API_KEY")
        .env("TENANT_B_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(!text(&output).contains(KEY));

    // A duplicate name is exit 3 with a clear message, and nothing is added.
    bridge.add(
        "Tenant",
        "https://t.odoo.com",
        "https://hooks.example.com/x",
        &[],
    );
    let output = bridge.run(&[
        "connections",
        "add",
        "--name",
        "Tenant",
        "--odoo-url",
        "https://t2.odoo.com",
        "--odoo-db",
        "t2",
        "--odoo-username",
        "admin",
        "--store-id",
        "s",
        "--client-id",
        "c",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--name: is already used by connection"),
        "{}",
        text(&output)
    );
    let names: Vec<String> = bridge
        .json(&["connections", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["B", "Tenant"]);

    // Missing required flags are clap's usage errors, all named at once.
    let output = bridge.run(&["connections", "add", "--name", "C"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--odoo-url") && stderr.contains("--client-id"),
        "{stderr}"
    );
    // The key is not a flag.
    let output = bridge.run(&["connections", "add", "--api-key", KEY]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!text(&output).contains(KEY), "{}", text(&output));
}

#[test]
fn connections_test_against_the_simulator_and_a_receiver() {
    let sim = SimProcess::start(&[]);
    let receiver = Receiver::start();
    let bridge = Bridge::sqlite();

    // (a) Odoo ok and (b) a signed ping the receiver verifies.
    let added = bridge.add_with_key(sim.key(), "Sim", sim.url(), &receiver.url, &[]);
    let id = added["id"].as_str().unwrap().to_owned();
    receiver.expect_secret(added["webhook_secret"].as_str().unwrap());
    let output = bridge.run_with_key(Some(sim.key()), &["connections", "test", "Sim", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["odoo"]["ok"], true);
    assert_eq!(report["odoo"]["server_version"], "18.0");
    assert_eq!(report["odoo"]["uid"], 2);
    assert_eq!(report["odoo"]["transport"], "jsonrpc");
    assert_eq!(report["webhook"]["ok"], true);
    assert_eq!(report["webhook"]["status"], 200);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let ping = &received[0];
    assert!(ping.verified, "the signature must verify: {ping:?}");
    assert!(ping.secret_header_matches);
    assert_eq!(ping.body["event"], "ping");
    assert_eq!(ping.body["connection_id"], id.as_str());
    assert!(ping.body["sent_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ping.connection_header, id);
    assert_eq!(report["webhook"]["webhook_id"], ping.webhook_id.as_str());
    // The text report names both checks.
    let output = bridge.run(&["connections", "test", &id]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Odoo     ok") && stdout.contains("uid 2"),
        "{stdout}"
    );
    assert!(stdout.contains("Webhook  ok      HTTP 200"), "{stdout}");

    // A wrong key: exit 4, the reason, and the key nowhere.
    let wrong = "wrong-key-STAYS-SECRET-4242-abcdef";
    let output = bridge.run_with_key(
        Some(wrong),
        &[
            "connections",
            "add",
            "--name",
            "Wrong key",
            "--odoo-url",
            sim.url(),
            "--odoo-db",
            "odoo",
            "--odoo-username",
            "admin",
            "--webhook-url",
            &receiver.url,
            "--store-id",
            "s",
            "--client-id",
            "c",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = bridge.run(&["connections", "test", "Wrong key"]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let all = text(&output);
    assert!(all.contains("Odoo     FAILED  authentication"), "{all}");
    assert!(all.contains("wrong database, login or API key"), "{all}");
    assert!(!bridge.printed().contains(wrong), "the wrong key leaked");

    // The receiver down: Odoo still ok, the webhook reported as unreachable, exit 5.
    let output = bridge.run_with_key(
        Some(sim.key()),
        &[
            "connections",
            "add",
            "--name",
            "Receiver down",
            "--odoo-url",
            sim.url(),
            "--odoo-db",
            "odoo",
            "--odoo-username",
            "admin",
            "--webhook-url",
            &refused_url(),
            "--store-id",
            "s",
            "--client-id",
            "c",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = bridge.run(&["connections", "test", "Receiver down", "--json"]);
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["odoo"]["ok"], true);
    assert_eq!(report["webhook"]["ok"], false);
    assert_eq!(report["webhook"]["class"], "network_error");
    let output = bridge.run(&["connections", "test", "Receiver down", "--timeout", "5"]);
    assert_eq!(output.status.code(), Some(5));
    assert!(
        text(&output).contains("Webhook  FAILED  network_error"),
        "{}",
        text(&output)
    );

    // A receiver refusing the signature (another secret): reported with its status, exit 1.
    receiver.expect_secret("someone-elses-secret-0000");
    let output = bridge.run(&["connections", "test", "Sim"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("http_4xx"), "{}", text(&output));

    let printed = bridge.printed();
    assert!(!printed.contains(sim.key()), "the simulator's key leaked");
    assert!(!printed.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_retries_and_logs_over_packets_in_the_store() {
    let bridge = Bridge::sqlite();
    let a = bridge.add(
        "Alpha",
        "https://a.odoo.com",
        "https://hooks.example.com/a",
        &[],
    );
    let b = bridge.add(
        "Beta",
        "https://b.odoo.com",
        "https://hooks.example.com/b",
        &[],
    );
    let a = a["id"].as_str().unwrap().to_owned();
    let b = b["id"].as_str().unwrap().to_owned();

    let store = bridge.store().await;
    store
        .enqueue(
            &a,
            &[
                packet(&a, 1, 1, Event::OrderConfirmed),
                packet(&a, 2, 1, Event::OrderConfirmed),
                packet(&a, 3, 1, Event::OrderConfirmed),
            ],
            checkpoint(1_795_000_000, 3),
        )
        .await
        .unwrap();
    store
        .enqueue(
            &b,
            &[packet(&b, 9, 1, Event::OrderConfirmed)],
            checkpoint(1_795_000_000, 9),
        )
        .await
        .unwrap();
    // Order 1 is delivered, order 2 has FAILED, order 3 and Beta's 9 are pending.
    let claimed = store
        .claim_due(
            "test-worker",
            None,
            Timestamp::now(),
            SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    for packet in &claimed {
        let (outcome, status_code) = match packet.subject.id {
            1 => (AttemptOutcome::Delivered, 200),
            2 => (
                AttemptOutcome::Failed {
                    error: "webhook at https://hooks.example.com/a answered HTTP 410 Gone".into(),
                    failure_class: FailureClass::Http4xx,
                },
                410,
            ),
            _ => (
                AttemptOutcome::Retry {
                    error: "webhook at https://hooks.example.com/a answered HTTP 503".into(),
                    failure_class: FailureClass::Http5xx,
                    next_attempt_at: Timestamp::now() + SignedDuration::from_secs(30),
                },
                503,
            ),
        };
        let outcome = Attempt {
            started_at: Timestamp::now(),
            duration_ms: 12,
            status_code: Some(status_code),
            outcome,
        };
        assert!(
            store
                .record_attempt(&packet.id, "test-worker", &outcome)
                .await
                .unwrap()
        );
    }
    let started = Timestamp::now();
    for (connection_id, found, sent, failed, error) in [
        (
            &a,
            3,
            1,
            1,
            Some("webhook at https://hooks.example.com/a answered HTTP 410 Gone"),
        ),
        (&b, 1, 0, 0, None),
        (&a, 0, 0, 0, None),
    ] {
        store
            .record_cycles(&[CycleLog {
                flow_id: connection_id.clone(),
                started_at: started,
                found,
                sent,
                failed,
                held_back: 0,
                error_message: error.map(str::to_owned),
                duration_ms: 1_234,
            }])
            .await
            .unwrap();
    }
    store.close().await;

    // list, with filters.
    let all = bridge.json(&["retries", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 4);
    let failed = bridge.json(&["retries", "list", "--status", "failed", "--json"]);
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], format!("{a}_2_v1"));
    assert_eq!(failed[0]["connection_name"], "Alpha");
    assert_eq!(failed[0]["failure_class"], "http_4xx");
    assert_eq!(failed[0]["attempts"], 1);
    let pending = bridge.json(&[
        "retries",
        "list",
        "--connection",
        "Alpha",
        "--status",
        "pending",
        "--json",
    ]);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["odoo_order_id"], 3);
    let limited = bridge.json(&["retries", "list", "--limit", "2", "--json"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let table = bridge.expect(0, &["retries", "list", "--connection", &b]);
    assert!(
        table.contains("Beta") && table.contains("pending"),
        "{table}"
    );
    assert!(!table.contains("Alpha"), "{table}");
    assert_eq!(
        bridge
            .run(&["retries", "list", "--status", "lost"])
            .status
            .code(),
        Some(2)
    );

    // connections list counts them.
    let list = bridge.json(&["connections", "list", "--json"]);
    assert_eq!(list[0]["name"], "Alpha");
    assert_eq!(list[0]["delivered_today"], 1);
    assert_eq!(list[0]["pending"], 1);
    assert_eq!(list[0]["failed"], 1);
    assert_eq!(list[1]["pending"], 1);

    // show prints the metadata and the payload, pretty.
    let failed_id = format!("{a}_2_v1");
    let shown = bridge.expect(0, &["retries", "show", &failed_id]);
    assert!(shown.contains("410 Gone"), "{shown}");
    assert!(shown.contains("\"platform_order_id\": \"2\""), "{shown}");
    assert!(
        shown.contains("  \"event\": \"order.confirmed\""),
        "{shown}"
    );
    let shown = bridge.json(&["retries", "show", &failed_id, "--json"]);
    assert_eq!(shown["payload"]["order"]["amount_total"], 5_990_000);
    assert_eq!(shown["status"], "failed");
    let output = bridge.run(&["retries", "show", "no-such-packet"]);
    assert_eq!(output.status.code(), Some(9));

    // retry: FAILED becomes PENDING, due now, attempts reset.
    let retried = bridge.expect(0, &["retries", "retry", &failed_id]);
    assert!(retried.contains("due now"), "{retried}");
    let shown = bridge.json(&["retries", "show", &failed_id, "--json"]);
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["attempts"], 0);
    // A delivered packet can be neither retried nor discarded.
    let delivered_id = format!("{a}_1_v1");
    let output = bridge.run(&["retries", "retry", &delivered_id]);
    assert_eq!(output.status.code(), Some(3));
    assert!(text(&output).contains("is delivered"), "{}", text(&output));
    assert_eq!(
        bridge
            .run(&["retries", "discard", &delivered_id, "--yes"])
            .status
            .code(),
        Some(3)
    );

    // discard: refused without a terminal and without --yes, then done.
    let output = bridge.run(&["retries", "discard", &failed_id]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--yes"));
    assert_eq!(
        bridge.json(&["retries", "show", &failed_id, "--json"])["status"],
        "pending"
    );
    bridge.expect(0, &["retries", "discard", &failed_id, "--yes"]);
    assert_eq!(
        bridge.json(&["retries", "show", &failed_id, "--json"])["status"],
        "discarded"
    );
    let discarded = bridge.json(&["retries", "list", "--status", "discarded", "--json"]);
    assert_eq!(discarded.as_array().unwrap().len(), 1);

    // logs: newest first, filtered by connection.
    let logs = bridge.json(&["logs", "--json"]);
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["connection_name"], "Alpha");
    assert_eq!(logs[0]["orders_found"], 0);
    assert_eq!(logs[1]["connection_name"], "Beta");
    assert_eq!(logs[2]["orders_failed"], 1);
    assert_eq!(logs[2]["duration_ms"], 1_234);
    let alpha = bridge.json(&["logs", "--connection", "Alpha", "--json"]);
    assert_eq!(alpha.as_array().unwrap().len(), 2);
    let one = bridge.json(&["logs", "--limit", "1", "--json"]);
    assert_eq!(one.as_array().unwrap().len(), 1);
    let table = bridge.expect(0, &["logs", "--connection", &a]);
    assert!(
        table.contains("TIME") && table.contains("DURATION"),
        "{table}"
    );
    assert!(
        table.contains("1.2 s") && table.contains("410 Gone"),
        "{table}"
    );
    assert!(!table.contains("Beta"), "{table}");
    assert_eq!(
        bridge.run(&["logs", "--connection", "nope"]).status.code(),
        Some(9)
    );

    assert!(!bridge.printed().contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_on_postgres_with_database_url() {
    let db = PgDb::create().await;
    let password = "pg-url-Password-NEVER-Shown-9931";
    let bridge = Bridge::postgres(format!(
        "postgres://postgres:{password}@127.0.0.1:5432/{}",
        db.name
    ));
    let added = bridge.add(
        "On PG",
        "https://pg.odoo.com",
        "https://hooks.example.com/pg",
        &[],
    );
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(!bridge.db_path.exists(), "no SQLite file with DATABASE_URL");
    assert_eq!(
        db.number("SELECT count(*) FROM flows WHERE kind = 'order_delivery'")
            .await,
        1,
        "the connection is in PostgreSQL"
    );
    let list = bridge.json(&["connections", "list", "--json"]);
    assert_eq!(list[0]["id"], id.as_str());
    bridge.expect(0, &["connections", "edit", "On PG", "--interval", "120"]);
    assert_eq!(
        bridge.json(&["connections", "show", &id, "--json"])["polling_interval_seconds"],
        120
    );
    bridge.expect(0, &["connections", "pause", &id]);
    let output = bridge.run(&[
        "connections",
        "add",
        "--name",
        "on pg",
        "--odoo-url",
        "https://x.odoo.com",
        "--odoo-db",
        "x",
        "--odoo-username",
        "admin",
        "--store-id",
        "s",
        "--client-id",
        "c",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        bridge
            .json(&["retries", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        bridge
            .json(&["logs", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    bridge.expect(0, &["connections", "remove", &id, "--yes"]);
    assert_eq!(db.number("SELECT count(*) FROM flows").await, 0);
    assert_eq!(db.number("SELECT count(*) FROM tenants").await, 0);

    // A database that does not exist: exit 1, the store named, the URL's password nowhere.
    let missing = Bridge::postgres(format!(
        "postgres://postgres:{password}@127.0.0.1:5432/{}_missing",
        db.name
    ));
    let output = missing.run(&["connections", "list"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("PostgreSQL at 127.0.0.1:5432/"),
        "{}",
        text(&output)
    );
    let bad = Bridge::postgres(format!(
        "postgres://postgres:{password}@127.0.0.1:notaport/x"
    ));
    let output = bad.run(&["connections", "list"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));

    for printed in [bridge.printed(), missing.printed(), bad.printed()] {
        assert!(
            !printed.contains(password),
            "the URL's password leaked:\n{printed}"
        );
        assert!(!printed.contains(KEY));
    }
}

/// Every file of the SQLite store (the file and its WAL) that holds `needle`.
fn store_files_holding(db_path: &std::path::Path, needle: &str) -> Vec<PathBuf> {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    [db_path.to_path_buf(), PathBuf::from(wal)]
        .into_iter()
        .filter(|file| {
            std::fs::read(file).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
        })
        .collect()
}

/// The Odoo API key and the webhook secret are stored encrypted under a key generated beside
/// the store (0600); `secrets rotate-key` re-encrypts them under a new key file, or under the
/// key given by ODOO_BRIDGE_NEW_ENCRYPTION_KEY when the key comes from the environment; a
/// missing, malformed or different key exits 3 naming what to set, and never prints a secret.
#[test]
fn secrets_are_encrypted_at_rest_rotated_and_a_wrong_key_is_refused_with_exit_3() {
    const WEBHOOK_SECRET: &str = "whsec-NEVER-STORED-IN-CLEAR-93b1";
    let bridge = Bridge::sqlite();
    bridge.add(
        "Shop",
        "https://shop.odoo.com",
        "https://hooks.example.com/odoo",
        &["--webhook-secret", WEBHOOK_SECRET],
    );
    bridge.expect(0, &["connections", "list"]);
    for secret in [KEY, WEBHOOK_SECRET] {
        assert_eq!(
            store_files_holding(&bridge.db_path, secret),
            Vec::<PathBuf>::new()
        );
    }
    let key_file = bridge.db_path.with_file_name("bridge.db.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first_key = std::fs::read_to_string(&key_file).unwrap();

    // A key file: rotate-key makes a new one and re-encrypts the tenant's key and the flow's
    // secret under it.
    let rotated = bridge.json(&["secrets", "rotate-key", "--json"]);
    assert_eq!(rotated["rewritten"], 2, "{rotated}");
    assert_eq!(rotated["key_from_environment"], false);
    assert_ne!(rotated["key_id"], rotated["previous_key_id"]);
    let second_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(first_key, second_key);
    let shown = bridge.json(&["connections", "show", "Shop", "--json"]);
    assert_eq!(shown["name"], "Shop");

    // Another key: exit 3, naming the variable and the key ids, never the secrets.
    let other = bridge.expect(0, &["secrets", "generate-key"]);
    let other = other.trim();
    assert_eq!(other.len(), 44, "32 bytes in base64: {other:?}");
    let refused = bridge.run_with_env(
        Some(KEY),
        &[("ODOO_BRIDGE_ENCRYPTION_KEY", other)],
        &["connections", "list"],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let said = text(&refused);
    assert!(said.contains("ODOO_BRIDGE_ENCRYPTION_KEY"), "{said}");
    assert!(said.contains(rotated["key_id"].as_str().unwrap()), "{said}");
    // A malformed key, and no key at all: exit 3 too.
    let malformed = bridge.run_with_env(
        Some(KEY),
        &[("ODOO_BRIDGE_ENCRYPTION_KEY", "not-a-key")],
        &["connections", "list"],
    );
    assert_eq!(malformed.status.code(), Some(3), "{}", text(&malformed));
    assert!(
        text(&malformed).contains("generate-key"),
        "{}",
        text(&malformed)
    );
    let moved = key_file.with_file_name("elsewhere.key");
    std::fs::rename(&key_file, &moved).unwrap();
    let missing = bridge.run(&["connections", "list"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    assert!(
        text(&missing).contains("no key was found"),
        "{}",
        text(&missing)
    );
    std::fs::rename(&moved, &key_file).unwrap();

    // The key in the environment: the new one must be given, then replaces it.
    let current = second_key.trim();
    let with_env = [("ODOO_BRIDGE_ENCRYPTION_KEY", current)];
    let asked = bridge.run_with_env(Some(KEY), &with_env, &["secrets", "rotate-key"]);
    assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
    assert!(
        text(&asked).contains("ODOO_BRIDGE_NEW_ENCRYPTION_KEY"),
        "{}",
        text(&asked)
    );
    let during = [
        ("ODOO_BRIDGE_ENCRYPTION_KEY", current),
        ("ODOO_BRIDGE_NEW_ENCRYPTION_KEY", other),
    ];
    let done = bridge.run_with_env(Some(KEY), &during, &["secrets", "rotate-key", "--json"]);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    let done: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done["rewritten"], 2);
    assert_eq!(done["key_from_environment"], true);
    let after = [("ODOO_BRIDGE_ENCRYPTION_KEY", other)];
    let listed = bridge.run_with_env(Some(KEY), &after, &["connections", "show", "Shop"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    for secret in [KEY, WEBHOOK_SECRET] {
        assert_eq!(
            store_files_holding(&bridge.db_path, secret),
            Vec::<PathBuf>::new()
        );
    }
    // (`add` prints the webhook secret once, by design; the API key never.)
    assert!(!bridge.printed.lock().unwrap().contains(KEY));
}
