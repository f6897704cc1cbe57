//! `odoo-bridge enrich` end to end: the real binary against an in-process simulator (with the
//! custom fields a test declares) and a fake matching service on loopback.

use crate::mirror_postgres::{Background, PgDb, bridge, finish, pg_section};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use engine::enrich::packet::{PACKET_KEYS, payload_hash};
use engine::webhook::{Verifier, WebhookSecret};
use odoo_rpc::{ClientConfig, OdooClient};
use odoo_sim::schema::{FieldDef, FieldType};
use odoo_sim::{Fault, FaultRule, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const SECRET_ENV: &str = "MATCHER_SECRET";
const SECRET: &str = "whsec_bWF0Y2hlci1zZWNyZXQtbmV2ZXItcHJpbnRlZA==";

// ---------------------------------------------------------------------------------------
// The fake matching service.

#[derive(Debug, Clone)]
enum Reply {
    /// A valid answer, with fields the writeback must never let through.
    Match,
    /// JSON that fails the response schema.
    BadSchema,
    /// A 2xx that is not JSON.
    NotJson,
    Status(u16),
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
    envelope: Value,
}

#[derive(Debug, Default)]
struct MatcherState {
    received: Vec<Received>,
    replies: HashMap<i64, Reply>,
    /// Answers wait this long (two senders racing overlap).
    delay: Duration,
    /// While set, the first request is held until notified (a sender killed mid-request).
    hold: Option<Arc<Notify>>,
}

#[derive(Debug, Clone)]
struct Matcher {
    state: Arc<Mutex<MatcherState>>,
    url: String,
    arrived: Arc<Notify>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl Matcher {
    async fn start() -> Matcher {
        let state = Arc::new(Mutex::new(MatcherState::default()));
        let arrived = Arc::new(Notify::new());
        let app = Router::new()
            .route("/match", post(answer))
            .with_state((state.clone(), arrived.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/match", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Matcher {
            state,
            url,
            arrived,
            _server: Arc::new(server),
        }
    }

    fn reply(&self, record: i64, reply: Reply) {
        self.state.lock().unwrap().replies.insert(record, reply);
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn packets_for(&self, record: i64) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|received| received.envelope["record_id"] == json!(record))
            .collect()
    }
}

type Shared = (Arc<Mutex<MatcherState>>, Arc<Notify>);

async fn answer(
    State((state, arrived)): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let envelope: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let record = envelope["record_id"].as_i64().unwrap_or_default();
    let (reply, delay, hold) = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            headers: headers.clone(),
            body: body.clone(),
            envelope: envelope.clone(),
        });
        (
            state.replies.get(&record).cloned().unwrap_or(Reply::Match),
            state.delay,
            state.hold.take(),
        )
    };
    arrived.notify_one();
    if let Some(hold) = hold {
        hold.notified().await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // The service refuses packets of another environment, as the issue asks of targets.
    if envelope["environment"] != json!("prod") {
        return (StatusCode::UNPROCESSABLE_ENTITY, "wrong environment").into_response();
    }
    match reply {
        Reply::Match => axum::Json(json!({
            "status": "matched",
            "ranked_buyers": [{"partner_id": 7, "score": 0.93}, {"partner_id": 3, "score": 0.5}],
            "name": "HACKED BY THE MATCHER",
            "expected_revenue": 0,
        }))
        .into_response(),
        Reply::BadSchema => {
            axum::Json(json!({"status": 3, "ranked_buyers": "none"})).into_response()
        }
        Reply::NotJson => (StatusCode::OK, "<html>maintenance</html>").into_response(),
        Reply::Status(status) => {
            (StatusCode::from_u16(status).unwrap(), "matcher failure").into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Odoo: the simulator with the fields a Studio user would add to crm.lead.

struct Odoo {
    sim: OdooSim,
    running: RunningSim,
}

fn vals(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

impl Odoo {
    async fn start(opportunities: usize) -> Odoo {
        let sim = OdooSim::new(SimConfig::default());
        sim.with_database(|database, env| {
            database
                .add_field(
                    "crm.lead",
                    FieldDef::new("x_match_status", "Match status", FieldType::Char),
                )
                .unwrap();
            database
                .add_field(
                    "crm.lead",
                    FieldDef::new("x_match_response", "Match response", FieldType::Text),
                )
                .unwrap();
            for n in 0..opportunities {
                database
                    .create(
                        env,
                        "crm.lead",
                        &[vals(json!({
                            "name": format!("Opportunity {n}"),
                            "type": "opportunity",
                            "expected_revenue": 1000.0 + n as f64,
                        }))],
                    )
                    .unwrap();
            }
            // Outside the job's domain.
            database
                .create(
                    env,
                    "crm.lead",
                    &[vals(json!({"name": "A plain lead", "type": "lead"}))],
                )
                .unwrap();
        });
        let running = sim.clone().serve_on_loopback().await.unwrap();
        Odoo { sim, running }
    }

    fn url(&self) -> String {
        self.running.url()
    }

    fn key(&self) -> String {
        self.sim.config().admin_api_key.clone()
    }

    fn client(&self) -> OdooClient {
        OdooClient::new(ClientConfig::new(self.url(), "odoo", "admin", self.key())).unwrap()
    }

    async fn opportunities(&self) -> Vec<i64> {
        let mut ids = self
            .client()
            .search(
                "crm.lead",
                &odoo_rpc::SearchReadOptions::new(
                    odoo_rpc::Domain::from_json(&json!([["type", "=", "opportunity"]])).unwrap(),
                ),
            )
            .await
            .unwrap();
        ids.sort_unstable();
        ids
    }

    async fn lead(&self, id: i64) -> Map<String, Value> {
        self.client()
            .read(
                "crm.lead",
                &[id],
                &[
                    "name",
                    "expected_revenue",
                    "x_match_status",
                    "x_match_response",
                ],
                None,
            )
            .await
            .unwrap()
            .remove(0)
            .into_map()
    }
}

// ---------------------------------------------------------------------------------------
// Configuration and the binary.

fn sqlite_section(dir: &Path) -> String {
    format!("sqlite:\n  path: {}\n", dir.join("enrich.db").display())
}

fn config(odoo_url: &str, store: &str, endpoint: &str, extra: &str) -> String {
    format!(
        r#"odoo: {{base_url: "{odoo_url}", database: "odoo", username: "admin"}}
environment: "prod"
{store}sync:
  request_timeout_seconds: 10
  max_retries: 0
enrich:
  - name: buyer-match
    model: crm.lead
    domain: [["type", "=", "opportunity"]]
    fields: [name, partner_id, expected_revenue]
    endpoint: "{endpoint}"
    packet_version: "1"
    timeout_seconds: 5
    response_schema: {{type: object, required: [ranked_buyers, status],
                      properties: {{ranked_buyers: {{type: array}}, status: {{type: string}}}}}}
    writeback:
      x_match_status: /status
      x_match_response: ""
    secret_env: {SECRET_ENV}
{extra}"#
    )
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("enrich.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn enrich(args: &[&str], config: &Path, key: &str) -> tokio::process::Command {
    let mut full = vec!["enrich"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--config", config.to_str().unwrap()]);
    let mut command = bridge(&full, Some(key));
    command
        .env(SECRET_ENV, SECRET)
        .env_remove("ODOO_BRIDGE_WORKER_ID");
    command
}

async fn status_json(config: &Path, key: &str) -> Value {
    let status = finish(enrich(&["status", "--json"], config, key)).await;
    assert_eq!(status.code, Some(0), "{status:?}");
    serde_json::from_str(&status.stdout).unwrap()
}

fn records(status: &Value) -> Vec<Value> {
    status["jobs"][0]["records"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_emits_each_record_once_signed_and_writes_back_only_the_whitelist() {
    let odoo = Odoo::start(3).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(&odoo.url(), &sqlite_section(dir.path()), &matcher.url, ""),
    );
    let ids = odoo.opportunities().await;
    let before: Vec<Map<String, Value>> = {
        let mut leads = Vec::new();
        for id in &ids {
            leads.push(odoo.lead(*id).await);
        }
        leads
    };

    let first = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(
        first
            .stdout
            .contains("buyer-match: 3 matching, 3 applied, 0 failed"),
        "{first:?}"
    );
    let received = matcher.received();
    assert_eq!(received.len(), 3);
    let verifier = Verifier::new(WebhookSecret::new(SECRET).unwrap());
    let mut seen_records = HashSet::new();
    for packet in &received {
        // Exactly the frozen envelope, signed, tagged with its environment.
        let envelope = packet.envelope.as_object().unwrap();
        let mut keys: Vec<&str> = envelope.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut frozen = PACKET_KEYS.to_vec();
        frozen.sort_unstable();
        assert_eq!(keys, frozen);
        assert_eq!(envelope["environment"], "prod");
        assert_eq!(envelope["job"], "buyer-match");
        assert_eq!(envelope["model"], "crm.lead");
        assert_eq!(envelope["packet_version"], "1");
        let payload = envelope["payload"].as_object().unwrap();
        assert_eq!(envelope["payload_hash"], json!(payload_hash(payload)));
        assert_eq!(payload["partner_id"], Value::Null, "Odoo's false is null");
        assert_eq!(
            packet.headers["webhook-id"].to_str().unwrap(),
            envelope["packet_id"].as_str().unwrap()
        );
        assert_eq!(packet.headers["x-odoo-bridge-environment"], "prod");
        verifier
            .verify(&packet.headers, packet.body.as_bytes())
            .unwrap();
        assert!(seen_records.insert(envelope["record_id"].as_i64().unwrap()));
    }
    assert_eq!(seen_records, ids.iter().copied().collect::<HashSet<_>>());
    for (id, before) in ids.iter().zip(&before) {
        let lead = odoo.lead(*id).await;
        assert_eq!(lead["x_match_status"], "matched");
        let response: Value =
            serde_json::from_str(lead["x_match_response"].as_str().unwrap()).unwrap();
        assert_eq!(response["ranked_buyers"][0]["partner_id"], 7);
        // What the answer says about other fields never reaches Odoo.
        assert_eq!(lead["name"], before["name"]);
        assert_eq!(lead["expected_revenue"], before["expected_revenue"]);
    }

    // One emission per (job, record, packet version): a second run sends nothing.
    let second = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(
        second
            .stdout
            .contains("0 applied, 0 failed, 3 already applied"),
        "{second:?}"
    );
    assert_eq!(matcher.received().len(), 3);

    let status = status_json(&path, &odoo.key()).await;
    assert_eq!(status["jobs"][0]["job"], "buyer-match");
    assert_eq!(status["jobs"][0]["health_score"], 1.0);
    let records = records(&status);
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record["state"], "applied");
        assert_eq!(record["failures"], 0);
        assert_eq!(record["health_score"], 1.0);
        assert_eq!(record["disabled"], false);
        assert_eq!(record["failure_class"], Value::Null);
    }
    let table = finish(enrich(&["status"], &path, &odoo.key())).await;
    assert!(
        table
            .stdout
            .contains("job buyer-match: health 1.00, 3 record(s) emitted"),
        "{table:?}"
    );
    assert!(!format!("{first:?}{second:?}{table:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_emission_is_refused_unless_forced_and_a_forced_replay_reports_drift() {
    let odoo = Odoo::start(2).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(&odoo.url(), &sqlite_section(dir.path()), &matcher.url, ""),
    );
    let ids = odoo.opportunities().await;
    let record = ids[0].to_string();
    // A record never emitted: replay is its first emission.
    let first = finish(enrich(
        &["replay", "--job", "buyer-match", "--record", &record],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(first.stdout.contains("applied"), "{first:?}");
    let original = matcher.packets_for(ids[0]);
    assert_eq!(original.len(), 1);

    let refused = finish(enrich(
        &["replay", "--job", "buyer-match", "--record", &record],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(refused.code, Some(10), "{refused:?}");
    assert!(
        refused.stderr.contains("already emitted") && refused.stderr.contains("--force"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("no drift"), "{refused:?}");
    assert_eq!(matcher.packets_for(ids[0]).len(), 1, "nothing was sent");

    // The record changes; a forced replay sends a new packet and reports the drift.
    odoo.client()
        .write(
            "crm.lead",
            &[ids[0]],
            vals(json!({"name": "Renamed"})),
            None,
        )
        .await
        .unwrap();
    let refused = finish(enrich(
        &["replay", "--job", "buyer-match", "--record", &record],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(refused.code, Some(10));
    assert!(
        refused.stderr.contains("drift: the record changed since"),
        "{refused:?}"
    );
    let forced = finish(enrich(
        &[
            "replay",
            "--job",
            "buyer-match",
            "--record",
            &record,
            "--force",
        ],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(forced.code, Some(0), "{forced:?}");
    let packets = matcher.packets_for(ids[0]);
    assert_eq!(packets.len(), 2);
    let old_hash = packets[0].envelope["payload_hash"].as_str().unwrap();
    let new_hash = packets[1].envelope["payload_hash"].as_str().unwrap();
    assert_ne!(old_hash, new_hash);
    assert_ne!(
        packets[0].envelope["packet_id"],
        packets[1].envelope["packet_id"]
    );
    assert!(forced.stdout.contains(&format!("drift: the payload changed since the last emission (payload hash {old_hash} → {new_hash})")), "{forced:?}");
    let status = status_json(&path, &odoo.key()).await;
    let replayed = records(&status)
        .into_iter()
        .find(|r| r["record_id"] == json!(ids[0]))
        .unwrap();
    assert_eq!(replayed["replays"], 1);
    assert_eq!(replayed["packet_id"], packets[1].envelope["packet_id"]);

    // A record that does not exist; a job that does not.
    let missing = finish(enrich(
        &["replay", "--job", "buyer-match", "--record", "999999"],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(missing.code, Some(9), "{missing:?}");
    let no_job = finish(enrich(
        &["replay", "--job", "nope", "--record", &record],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(no_job.code, Some(2), "{no_job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_nothing_is_written_and_the_breaker_disables_the_record() {
    let odoo = Odoo::start(4).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(
            &odoo.url(),
            &sqlite_section(dir.path()),
            &matcher.url,
            "    max_failures: 2\n",
        ),
    );
    let ids = odoo.opportunities().await;
    matcher.reply(ids[0], Reply::BadSchema);
    matcher.reply(ids[1], Reply::NotJson);
    matcher.reply(ids[2], Reply::Status(422));
    // The fourth answers well, but Odoo refuses the write.
    odoo.sim.inject(
        FaultRule::new(Fault::OdooError {
            name: "odoo.exceptions.ValidationError".into(),
            message: "x_match_status is locked".into(),
        })
        .on("crm.lead", Some("write"))
        .always(),
    );
    let first = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(first.code, Some(8), "{first:?}");
    assert!(
        first.stdout.contains("4 matching, 0 applied, 4 failed"),
        "{first:?}"
    );
    let status = status_json(&path, &odoo.key()).await;
    let class_of = |status: &Value, id: i64| {
        records(status)
            .into_iter()
            .find(|r| r["record_id"] == json!(id))
            .unwrap()
    };
    assert_eq!(class_of(&status, ids[0])["failure_class"], "schema_error");
    assert_eq!(class_of(&status, ids[1])["failure_class"], "upstream_error");
    assert_eq!(class_of(&status, ids[2])["failure_class"], "http_4xx");
    assert_eq!(
        class_of(&status, ids[3])["failure_class"],
        "writeback_error"
    );
    assert!(
        class_of(&status, ids[0])["last_error"]
            .as_str()
            .unwrap()
            .contains("nothing was written"),
        "{status:#}"
    );
    for id in &ids {
        let record = class_of(&status, *id);
        assert_eq!(record["failures"], 1);
        assert_eq!(record["health_score"], 0.8);
        assert_eq!(record["disabled"], false);
        // A failed answer writes nothing.
        assert_eq!(odoo.lead(*id).await["x_match_status"], false);
    }
    // Four records failing: the job's score is 1 − 4/5.
    assert!((status["jobs"][0]["health_score"].as_f64().unwrap() - 0.2).abs() < 1e-9);

    // A failed emission is sent again as the same packet; the second failure disables it.
    let packet_ids: Vec<Value> = ids
        .iter()
        .map(|id| matcher.packets_for(*id)[0].envelope["packet_id"].clone())
        .collect();
    let second = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(second.code, Some(8), "{second:?}");
    for (id, packet_id) in ids.iter().zip(&packet_ids) {
        let packets = matcher.packets_for(*id);
        assert_eq!(packets.len(), 2);
        assert_eq!(&packets[1].envelope["packet_id"], packet_id);
        assert_eq!(packets[1].body, packets[0].body, "the same bytes");
    }
    let status = status_json(&path, &odoo.key()).await;
    for id in &ids {
        let record = class_of(&status, *id);
        assert_eq!(record["failures"], 2);
        assert_eq!(record["disabled"], true);
        assert_eq!(record["health_score"], 0.6);
    }
    // Disabled: no longer sent.
    let third = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(
        third
            .stdout
            .contains("0 failed, 0 already applied, 4 disabled"),
        "{third:?}"
    );
    assert_eq!(matcher.received().len(), 8);

    // A forced replay re-enables one once the service and Odoo are fixed.
    odoo.sim.clear_faults();
    matcher.reply(ids[0], Reply::Match);
    let forced = finish(enrich(
        &[
            "replay",
            "--job",
            "buyer-match",
            "--record",
            &ids[0].to_string(),
            "--force",
        ],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(forced.code, Some(0), "{forced:?}");
    let status = status_json(&path, &odoo.key()).await;
    let healed = class_of(&status, ids[0]);
    assert_eq!(
        (
            healed["state"].clone(),
            healed["disabled"].clone(),
            healed["failures"].clone()
        ),
        (json!("applied"), json!(false), json!(0))
    );
    assert_eq!(odoo.lead(ids[0]).await["x_match_status"], "matched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_network_error() {
    let odoo = Odoo::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/match", closed.local_addr().unwrap());
    drop(closed);
    let path = write(
        dir.path(),
        &config(&odoo.url(), &sqlite_section(dir.path()), &endpoint, ""),
    );
    let run = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(run.code, Some(8), "{run:?}");
    assert!(run.stdout.contains("(network_error 1)"), "{run:?}");
}

async fn two_runs_at_once(store: String, dir: &Path) {
    let odoo = Odoo::start(30).await;
    let matcher = Matcher::start().await;
    matcher.state.lock().unwrap().delay = Duration::from_millis(20);
    let path = write(dir, &config(&odoo.url(), &store, &matcher.url, ""));
    // The store is created before the race, as a deployment's first `migrate` does: two
    // SQLite processes creating one file's tables at once collide in sqlx's migration table.
    let migrated = finish(bridge(
        &["migrate", "--config", path.to_str().unwrap()],
        None,
    ))
    .await;
    assert_eq!(migrated.code, Some(0), "{migrated:?}");
    let mut runs = Vec::new();
    for worker in ["replica-a", "replica-b"] {
        let mut command = enrich(&["run"], &path, &odoo.key());
        command.env("ODOO_BRIDGE_WORKER_ID", worker);
        runs.push(Background::spawn(command));
    }
    let mut applied = 0;
    let mut by_each = Vec::new();
    for run in runs {
        let finished = run.finish().await;
        assert!(matches!(finished.code, Some(0)), "{finished:?}");
        let line = finished
            .stdout
            .lines()
            .find(|line| line.starts_with("buyer-match:"))
            .unwrap()
            .to_owned();
        let count: u64 = line
            .split(", ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        applied += count;
        by_each.push(count);
    }
    assert_eq!(applied, 30);
    // Both worked at once: neither waited for the other to finish.
    assert!(by_each.iter().all(|count| *count > 0), "{by_each:?}");
    let mut per_record: HashMap<i64, usize> = HashMap::new();
    for packet in matcher.received() {
        *per_record
            .entry(packet.envelope["record_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_record.len(), 30);
    assert!(
        per_record.values().all(|count| *count == 1),
        "{per_record:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_never_emit_a_record_twice_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    two_runs_at_once(sqlite_section(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_never_emit_a_record_twice_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = PgDb::create().await;
    two_runs_at_once(
        pg_section(&database.name, "advisory", "POSTGRES_PASSWORD"),
        dir.path(),
    )
    .await;
}

async fn killed_between_send_and_bookkeeping(store: String, dir: &Path) {
    let odoo = Odoo::start(1).await;
    let matcher = Matcher::start().await;
    let hold = Arc::new(Notify::new());
    matcher.state.lock().unwrap().hold = Some(hold.clone());
    let path = write(dir, &config(&odoo.url(), &store, &matcher.url, ""));
    let mut command = enrich(&["run"], &path, &odoo.key());
    command.env("ODOO_BRIDGE_WORKER_ID", "cron-1");
    let mut run = Background::spawn(command);
    // The packet reached the service; the sender dies before it hears back.
    tokio::time::timeout(Duration::from_secs(60), matcher.arrived.notified())
        .await
        .expect("the packet arrives");
    run.kill().await;
    hold.notify_one();
    let id = odoo.opportunities().await[0];
    assert_eq!(
        odoo.lead(id).await["x_match_status"],
        false,
        "nothing applied yet"
    );
    // Restarted under the same worker id: the same packet again, at once.
    let mut again = enrich(&["run"], &path, &odoo.key());
    again.env("ODOO_BRIDGE_WORKER_ID", "cron-1");
    let finished = finish(again).await;
    assert_eq!(finished.code, Some(0), "{finished:?}");
    let packets = matcher.packets_for(id);
    assert_eq!(packets.len(), 2);
    assert_eq!(
        packets[0].envelope["packet_id"],
        packets[1].envelope["packet_id"]
    );
    assert_eq!(packets[0].body, packets[1].body);
    assert_eq!(
        packets[0].headers["webhook-id"],
        packets[1].headers["webhook-id"]
    );
    assert_eq!(odoo.lead(id).await["x_match_status"], "matched");
    // Another process meanwhile would have found the record held, not emitted it anew.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_send_and_bookkeeping_resends_the_same_packet_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_between_send_and_bookkeeping(sqlite_section(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_send_and_bookkeeping_resends_the_same_packet_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = PgDb::create().await;
    killed_between_send_and_bookkeeping(
        pg_section(&database.name, "advisory", "POSTGRES_PASSWORD"),
        dir.path(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_guard_too() {
    let odoo = Odoo::start(2).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let database = PgDb::create().await;
    let store = pg_section(&database.name, "advisory", "POSTGRES_PASSWORD");
    let path = write(dir.path(), &config(&odoo.url(), &store, &matcher.url, ""));
    let first = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let second = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert!(second.stdout.contains("2 already applied"), "{second:?}");
    let id = odoo.opportunities().await[0].to_string();
    let refused = finish(enrich(
        &["replay", "--job", "buyer-match", "--record", &id],
        &path,
        &odoo.key(),
    ))
    .await;
    assert_eq!(refused.code, Some(10), "{refused:?}");
    assert_eq!(matcher.received().len(), 2);
    let status = status_json(&path, &odoo.key()).await;
    assert_eq!(records(&status).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_problems_name_the_file_line_and_key() {
    let odoo = Odoo::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let good = config(
        &odoo.url(),
        &sqlite_section(dir.path()),
        "http://127.0.0.1:9/match",
        "",
    );
    // A typo in a job's key.
    let path = write(
        dir.path(),
        &good.replace("    timeout_seconds: 5\n", "    timeout_second: 5\n"),
    );
    let typo = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(typo.code, Some(3), "{typo:?}");
    assert!(
        typo.stderr.contains("enrich.yml:15:")
            && typo.stderr.contains("did you mean `timeout_seconds`?"),
        "{typo:?}"
    );
    // No environment.
    let path = write(dir.path(), &good.replace("environment: \"prod\"\n", ""));
    let missing = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(missing.code, Some(3), "{missing:?}");
    assert!(missing.stderr.contains("need `environment`"), "{missing:?}");
    // A writeback into a field Odoo does not have: found against the live Odoo, on its line.
    let path = write(
        dir.path(),
        &good.replace("x_match_status: /status", "x_match_stat: /status"),
    );
    let unknown = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert!(
        unknown.stderr.contains("enrich.yml:19:")
            && unknown.stderr.contains("did you mean `x_match_status`?"),
        "{unknown:?}"
    );
    // A schema file that is not a JSON Schema; a schema file that is.
    std::fs::write(
        dir.path().join("answer.schema.json"),
        r#"{"type": "objekt"}"#,
    )
    .unwrap();
    let with_file = good.replace(
        "    response_schema: {type: object, required: [ranked_buyers, status],\n                      properties: {ranked_buyers: {type: array}, status: {type: string}}}\n",
        "    response_schema: answer.schema.json\n",
    );
    let path = write(dir.path(), &with_file);
    let bad_schema = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(bad_schema.code, Some(3), "{bad_schema:?}");
    assert!(
        bad_schema
            .stderr
            .contains("response_schema: not a valid JSON Schema"),
        "{bad_schema:?}"
    );
    // The secret's variable unset.
    let path = write(dir.path(), &good);
    let mut unset = enrich(&["run"], &path, &odoo.key());
    unset.env_remove(SECRET_ENV);
    let unset = finish(unset).await;
    assert_eq!(unset.code, Some(3), "{unset:?}");
    assert!(
        unset.stderr.contains("MATCHER_SECRET is not set"),
        "{unset:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_environment_refuses_the_packets() {
    let odoo = Odoo::start(1).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let prod = config(&odoo.url(), &sqlite_section(dir.path()), &matcher.url, "");
    let path = write(dir.path(), &prod);
    assert_eq!(
        finish(enrich(&["run"], &path, &odoo.key())).await.code,
        Some(0)
    );
    let path = write(
        dir.path(),
        &prod.replace("environment: \"prod\"", "environment: \"staging\""),
    );
    let refused = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused.stderr.contains("belongs to environment \"prod\""),
        "{refused:?}"
    );
    assert_eq!(matcher.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_intake_model_is_enriched_like_any_other() {
    use odoo_sim::schema::ModelDef;
    let sim = OdooSim::new(SimConfig::default());
    let intake = sim.with_database(|database, env| {
        database.declare_model(
            ModelDef::new("plasticos.intake", "Intake")
                .field(FieldDef::new("name", "Name", FieldType::Char).required())
                .field(FieldDef::new("polymer", "Polymer", FieldType::Char))
                .field(FieldDef::new("form", "Form", FieldType::Char))
                .field(FieldDef::new("quantity", "Quantity", FieldType::Float))
                .field(FieldDef::new("last_packet_id", "Last packet id", FieldType::Char))
                .field(FieldDef::new("last_packet_version", "Last packet version", FieldType::Char))
                .field(FieldDef::new("match_status", "Match status", FieldType::Char))
                .field(FieldDef::new("match_response", "Match response", FieldType::Text)),
        );
        database
            .create(
                env,
                "plasticos.intake",
                &[vals(json!({"name": "IN-0001", "polymer": "HDPE", "form": "regrind", "quantity": 12.5}))],
            )
            .unwrap()[0]
    });
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&running.url(), &sqlite_section(dir.path()), &matcher.url, "")
        .replace("name: buyer-match\n    model: crm.lead\n    domain: [[\"type\", \"=\", \"opportunity\"]]\n    fields: [name, partner_id, expected_revenue]", "name: buyer-match\n    model: plasticos.intake\n    fields: [name, polymer, form, quantity]")
        .replace("x_match_status: /status\n      x_match_response: \"\"", "match_status: /status\n      match_response: \"\"");
    let path = write(dir.path(), &text);
    let key = sim.config().admin_api_key.clone();
    let run = finish(enrich(&["run"], &path, &key)).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let packets = matcher.received();
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].envelope["model"], "plasticos.intake");
    assert_eq!(
        packets[0].envelope["payload"],
        json!({"name": "IN-0001", "polymer": "HDPE", "form": "regrind", "quantity": 12.5})
    );
    let client = OdooClient::new(ClientConfig::new(running.url(), "odoo", "admin", key)).unwrap();
    let read = client
        .read(
            "plasticos.intake",
            &[intake],
            &["polymer", "form", "match_status"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(read[0].raw("match_status"), Some(&json!("matched")));
    // The boundary stays: polymer and form are the intake's, whatever the matcher says.
    assert_eq!(read[0].raw("polymer"), Some(&json!("HDPE")));
}

/// Against the real Odoo 18: custom `x_` fields created over the API on a fresh copy of the
/// demo database, a job over its opportunities, the answers written back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_real_odoo_18_x_fields_are_written_back() {
    let Some(real) = odoo_sim::real_odoo::RealOdoo::from_env("enrichment writeback") else {
        return;
    };
    let db = real.fresh_db("enrich").unwrap();
    let odoo = OdooClient::new(ClientConfig::new(
        real.url.clone(),
        db.name().to_owned(),
        real.login.clone(),
        real.api_key.clone(),
    ))
    .unwrap();
    let model = odoo
        .search_read(
            "ir.model",
            &odoo_rpc::SearchReadOptions::new(
                odoo_rpc::Domain::from_json(&json!([["model", "=", "crm.lead"]])).unwrap(),
            )
            .fields(["id", "model"]),
        )
        .await
        .unwrap();
    let model_id = model[0].id().unwrap();
    odoo.create(
        "ir.model.fields",
        vec![
            vals(json!({"name": "x_match_status", "model_id": model_id, "ttype": "char", "field_description": "Match status"})),
            vals(json!({"name": "x_match_response", "model_id": model_id, "ttype": "text", "field_description": "Match response"})),
        ],
        None,
    )
    .await
    .unwrap();
    // A domain of a few demo opportunities: those won.
    let domain = json!([["type", "=", "opportunity"], ["probability", "=", 100]]);
    let ids = odoo
        .search(
            "crm.lead",
            &odoo_rpc::SearchReadOptions::new(odoo_rpc::Domain::from_json(&domain).unwrap()),
        )
        .await
        .unwrap();
    assert!(!ids.is_empty(), "the demo data has won opportunities");
    let before = odoo
        .read("crm.lead", &ids, &["name", "expected_revenue"], None)
        .await
        .unwrap();
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&real.url, &sqlite_section(dir.path()), &matcher.url, "")
        .replace(
            "database: \"odoo\", username: \"admin\"",
            &format!("database: \"{}\", username: \"{}\"", db.name(), real.login),
        )
        .replace(
            "domain: [[\"type\", \"=\", \"opportunity\"]]",
            &format!("domain: {domain}"),
        );
    let path = write(dir.path(), &text);
    let run = finish(enrich(&["run"], &path, &real.api_key)).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(matcher.received().len(), ids.len());
    let after = odoo
        .read(
            "crm.lead",
            &ids,
            &[
                "name",
                "expected_revenue",
                "x_match_status",
                "x_match_response",
            ],
            None,
        )
        .await
        .unwrap();
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(after.raw("x_match_status"), Some(&json!("matched")));
        assert!(
            after
                .str("x_match_response")
                .unwrap()
                .unwrap()
                .contains("ranked_buyers")
        );
        assert_eq!(after.raw("name"), before.raw("name"));
        assert_eq!(
            after.raw("expected_revenue"),
            before.raw("expected_revenue")
        );
    }
    // A second run sends nothing more.
    let again = finish(enrich(&["run"], &path, &real.api_key)).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(matcher.received().len(), ids.len());
}

/// `GET path` on the daemon's listener, the body.
async fn http_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_the_jobs_on_their_interval_and_serves_their_health() {
    let odoo = Odoo::start(2).await;
    let matcher = Matcher::start().await;
    matcher.reply(odoo.opportunities().await[1], Reply::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(
            &odoo.url(),
            &sqlite_section(dir.path()),
            &matcher.url,
            "    interval_seconds: 1\n    max_failures: 50\n",
        ),
    );
    let mut command = bridge(
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--worker-id",
            "daemon-1",
            "--config",
            path.to_str().unwrap(),
        ],
        Some(&odoo.key()),
    );
    command
        .env("POLLER_DB_PATH", dir.path().join("delivery.db"))
        .env(SECRET_ENV, SECRET);
    let mut daemon = Background::spawn(command);
    let started = daemon
        .wait_for_log(|line| line["message"] == "odoo-bridge run: started")
        .await;
    let address = started["address"].as_str().unwrap().to_owned();
    daemon
        .wait_for_log(|line| line["message"] == "enrichment job run" && line["applied"] == 1)
        .await;
    // A new opportunity is emitted at the job's next turn; the failing one is tried again.
    odoo.client()
        .create(
            "crm.lead",
            vec![vals(json!({"name": "Later", "type": "opportunity"}))],
            None,
        )
        .await
        .unwrap();
    daemon
        .wait_for_log(|line| {
            line["message"] == "enrichment job run"
                && line["applied"] == 1
                && line["already_applied"] == 1
        })
        .await;
    let metrics = http_get(&address, "/metrics").await;
    assert!(
        metrics.contains("odoo_bridge_enrich_job_health{job=\"buyer-match\"} 0.8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("odoo_bridge_enrich_record_health{job=\"buyer-match\",record_id="),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("odoo_bridge_enrich_failures_total{job=\"buyer-match\",class=\"http_5xx\"}"),
        "{metrics}"
    );
    daemon.kill().await;
}

/// Figures for the README: one pass over 1,000 records, then a pass with nothing due, on
/// both stores. `cargo test -p odoo-bridge --test it measure_enrich -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn measure_enrich_passes_over_1000_records() {
    let odoo = Odoo::start(1000).await;
    for store in ["sqlite", "postgres"] {
        let matcher = Matcher::start().await;
        let dir = tempfile::tempdir().unwrap();
        let database = PgDb::create().await;
        let section = match store {
            "sqlite" => sqlite_section(dir.path()),
            _ => pg_section(&database.name, "advisory", "POSTGRES_PASSWORD"),
        };
        let path = write(dir.path(), &config(&odoo.url(), &section, &matcher.url, ""));
        let started = std::time::Instant::now();
        let first = finish(enrich(&["run"], &path, &odoo.key())).await;
        let first_took = started.elapsed();
        assert!(first.stdout.contains("1000 applied"), "{first:?}");
        let started = std::time::Instant::now();
        let second = finish(enrich(&["run"], &path, &odoo.key())).await;
        let second_took = started.elapsed();
        assert!(second.stdout.contains("1000 already applied"), "{second:?}");
        assert_eq!(matcher.received().len(), 1000);
        println!(
            "{store}: 1,000 records emitted, answered and written back in {:.2} s ({:.0}/s); a pass with nothing due {:.2} s",
            first_took.as_secs_f64(),
            1000.0 / first_took.as_secs_f64(),
            second_took.as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_again_and_again_opens_its_breaker_and_the_rest_waits() {
    let odoo = Odoo::start(12).await;
    let matcher = Matcher::start().await;
    for id in odoo.opportunities().await {
        matcher.reply(id, Reply::Status(503));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(
            &odoo.url(),
            &sqlite_section(dir.path()),
            &matcher.url,
            "    concurrency: 1\n    max_failures: 10\n",
        ),
    );
    let run = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(run.code, Some(8), "{run:?}");
    // Five failures in a row open the endpoint's breaker: the other records are not sent,
    // and nothing is counted against them.
    assert!(
        run.stdout
            .contains("12 matching, 0 applied, 5 failed (http_5xx 5)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("circuit breaker is open"), "{run:?}");
    assert_eq!(matcher.received().len(), 5);
    let status = status_json(&path, &odoo.key()).await;
    let records = records(&status);
    let failed: Vec<&Value> = records.iter().filter(|r| r["failures"] == 1).collect();
    assert_eq!(failed.len(), 5);
    assert!(records.iter().all(|r| r["failures"].as_u64().unwrap() <= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_enriches_the_simulators_opportunities() {
    let dir = tempfile::tempdir().unwrap();
    let demo = finish(bridge(
        &[
            "demo",
            "--orders",
            "40",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        None,
    ))
    .await;
    assert_eq!(demo.code, Some(0), "{demo:?}");
    let line = demo
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("buyer-match:"))
        .unwrap_or_else(|| panic!("{demo:?}"));
    assert!(
        line.contains("0 failed") && !line.contains(" 0 applied"),
        "{line}"
    );
    assert!(
        demo.stdout.contains("a second pass: buyer-match:"),
        "{demo:?}"
    );
    assert!(
        demo.stdout.contains("without --force is refused"),
        "{demo:?}"
    );
    let status = finish(bridge(
        &[
            "enrich",
            "status",
            "--json",
            "--config",
            dir.path().join("enrich.yml").to_str().unwrap(),
        ],
        None,
    ))
    .await;
    assert_eq!(status.code, Some(0), "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let records = records(&status);
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|record| record["state"] == "applied" && record["environment"] == "demo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_of_another_environment_is_refused_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("delivery.db");
    let start = |environment: &str| {
        let mut command = bridge(
            &["run", "--listen", "127.0.0.1:0", "--worker-id", "env-1"],
            None,
        );
        command
            .env("POLLER_DB_PATH", &database)
            .env("ODOO_BRIDGE_ENVIRONMENT", environment);
        command
    };
    let mut first = Background::spawn(start("prod"));
    first
        .wait_for_log(|line| line["message"] == "odoo-bridge run: started")
        .await;
    first.kill().await;
    // The store is prod's now: a staging daemon reads no flow and sends nothing.
    let refused = finish(start("staging")).await;
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused.stderr.contains("\"prod\"") && refused.stderr.contains("\"staging\""),
        "{refused:?}"
    );
    // The same environment again is welcome.
    let mut again = Background::spawn(start("prod"));
    again
        .wait_for_log(|line| line["message"] == "odoo-bridge run: started")
        .await;
    again.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_of_run_takes_the_jobs_registered_in_its_store() {
    let odoo = Odoo::start(2).await;
    let matcher = Matcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &config(
            &odoo.url(),
            &sqlite_section(dir.path()),
            &matcher.url,
            "    interval_seconds: 1\n",
        ),
    );
    let first = finish(enrich(&["run"], &path, &odoo.key())).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(matcher.received().len(), 2);
    // The registration keeps the Odoo key and the signing secret sealed: neither is in the
    // store's files in clear.
    for suffix in ["", "-wal"] {
        let file = dir.path().join(format!("enrich.db{suffix}"));
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&odoo.key()),
            "{} holds the API key",
            file.display()
        );
        assert!(
            !text.contains(SECRET),
            "{} holds the signing secret",
            file.display()
        );
        assert!(
            !text.contains("bWF0Y2hlci1zZWNyZXQtbmV2ZXItcHJpbnRlZA"),
            "{} holds the signing secret",
            file.display()
        );
    }
    let later = odoo
        .client()
        .create(
            "crm.lead",
            vec![vals(json!({"name": "Later", "type": "opportunity"}))],
            None,
        )
        .await
        .unwrap()[0];
    // A plain daemon on the same store, without the file and without the secrets in its
    // environment: the job is a flow of the store, its key and signing secret sealed there.
    let mut command = bridge(
        &["run", "--listen", "127.0.0.1:0", "--worker-id", "daemon-2"],
        None,
    );
    command.env("POLLER_DB_PATH", dir.path().join("enrich.db"));
    let mut daemon = Background::spawn(command);
    daemon
        .wait_for_log(|line| line["message"] == "odoo-bridge run: started")
        .await;
    for _ in 0..200 {
        if !matcher.packets_for(later).is_empty()
            && odoo.lead(later).await["x_match_status"] == "matched"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.kill().await;
    let packets = matcher.packets_for(later);
    assert_eq!(packets.len(), 1, "emitted once");
    assert_eq!(odoo.lead(later).await["x_match_status"], "matched");
    let verifier = Verifier::new(WebhookSecret::new(SECRET).unwrap());
    verifier
        .verify(&packets[0].headers, packets[0].body.as_bytes())
        .unwrap();
    assert_eq!(
        matcher.received().len(),
        3,
        "the first two were not sent again"
    );
}
