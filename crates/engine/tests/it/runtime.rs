//! The flow runtime on a manual clock: schedules, edits, backoff, the inbox end to end, and
//! replicas sharing a store — with a flow kind of the tests' own (it counts its polls and
//! records the events it applies), so that only the runtime is under test.

use axum::http::StatusCode;
use engine::clock::Clock;
use engine::inbox::InboundApplier;
use engine::inbox::receive::{self, Receiver};
use engine::outbox::{BoxFuture, PacketSender};
use engine::runtime::{
    FlowError, FlowFactory, FlowHandler, FlowSetup, PollReport, Runtime, RuntimeConfig,
    RuntimeHandle,
};
use engine::store::{
    CoordinationStore, Flow, FlowKind, FlowSecrets, InboundEvent, InboundFilter, InboundStatus,
    InboxStore, MarketplaceStore, SecretValue, Store, SyncLogStore, Tenant, TenantStore,
};
use engine::webhook::{DeliveryError, FailureClass, WebhookSecret};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, TransportChoice};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_sqlite::SqliteStore;

const INBOUND_SECRET: &str = "inbound-secret-of-the-tests-0001";

/// What the test flows did, per flow id.
#[derive(Debug, Default)]
struct Journal {
    /// When each flow was polled, on the runtime's clock.
    polls: HashMap<String, Vec<Timestamp>>,
    /// Flows whose polls fail.
    failing: Vec<String>,
    /// Bodies applied, per flow.
    applied: HashMap<String, Vec<String>>,
    /// Applications still to fail (retryably) before they succeed.
    refusals_left: u32,
}

#[derive(Clone, Default)]
struct TestFlows(Arc<Mutex<Journal>>);

impl TestFlows {
    fn polls(&self, flow: &str) -> u32 {
        self.0
            .lock()
            .unwrap()
            .polls
            .get(flow)
            .map_or(0, |at| at.len() as u32)
    }

    /// Seconds between the flow's consecutive polls.
    fn gaps(&self, flow: &str) -> Vec<i64> {
        let journal = self.0.lock().unwrap();
        let at = journal.polls.get(flow).cloned().unwrap_or_default();
        at.windows(2)
            .map(|pair| pair[1].duration_since(pair[0]).as_secs())
            .collect()
    }

    fn applied(&self, flow: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .applied
            .get(flow)
            .cloned()
            .unwrap_or_default()
    }

    fn fail_polls_of(&self, flow: &str) {
        self.0.lock().unwrap().failing.push(flow.to_owned());
    }

    fn refuse_applications(&self, times: u32) {
        self.0.lock().unwrap().refusals_left = times;
    }
}

struct TestFlow {
    id: String,
    journal: TestFlows,
    clock: Clock,
}

impl<S: Store> FlowHandler<S> for TestFlow {
    fn poll<'a>(&'a self, _store: &'a S) -> BoxFuture<'a, Result<PollReport, FlowError>> {
        Box::pin(async move {
            let mut journal = self.journal.0.lock().unwrap();
            journal
                .polls
                .entry(self.id.clone())
                .or_default()
                .push(self.clock.now());
            if journal.failing.contains(&self.id) {
                return Err(FlowError::new(FailureClass::OdooError, "Odoo said no"));
            }
            Ok(PollReport::default())
        })
    }

    fn sender(&self) -> Option<&dyn PacketSender> {
        None
    }

    fn applier(&self) -> Option<&dyn InboundApplier> {
        Some(self)
    }
}

impl InboundApplier for TestFlow {
    fn apply<'a>(
        &'a self,
        event: &'a InboundEvent,
    ) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(async move {
            let mut journal = self.journal.0.lock().unwrap();
            if journal.refusals_left > 0 {
                journal.refusals_left -= 1;
                return Err(DeliveryError::before_sending(
                    FailureClass::OdooError,
                    false,
                    "Odoo is busy",
                ));
            }
            journal
                .applied
                .entry(self.id.clone())
                .or_default()
                .push(event.body.clone());
            Ok(format!("applied {}", event.event_id))
        })
    }
}

impl<S: Store> FlowFactory<S> for TestFlows {
    fn build(&self, setup: FlowSetup, _store: &S) -> Result<Box<dyn FlowHandler<S>>, String> {
        Ok(Box::new(TestFlow {
            id: setup.flow.id,
            journal: self.clone(),
            clock: setup.clock,
        }))
    }
}

fn t0() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.to_owned(),
        name: format!("tenant {id}"),
        odoo_url: "http://127.0.0.1:9".to_owned(),
        odoo_db: "odoo".to_owned(),
        odoo_username: "admin".to_owned(),
        odoo_api_key: ApiKey::new("test-key-0000000000000000"),
        transport: TransportChoice::JsonRpc,
        odoo_min_delay_ms: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn flow(id: &str, tenant_id: &str, interval_seconds: u32) -> Flow {
    let mut secrets = FlowSecrets::new();
    secrets.insert(
        receive::INBOUND_SECRET.to_owned(),
        SecretValue::new(INBOUND_SECRET),
    );
    Flow {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        kind: FlowKind::Enrichment,
        name: format!("flow {id}"),
        is_active: true,
        interval_seconds,
        settings: serde_json::Map::new(),
        secrets,
        last_sync_at: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

struct World {
    store: SqliteStore,
    clock: Clock,
    flows: TestFlows,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db"))
            .await
            .unwrap();
        engine::mirror_store::MirrorStore::migrate(&store)
            .await
            .unwrap();
        World {
            store,
            clock: Clock::manual(t0()),
            flows: TestFlows::default(),
            dir,
        }
    }

    /// Another handle on the same file, as another process would have.
    async fn other_store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("store.db"))
            .await
            .unwrap()
    }

    fn runtime(&self, store: SqliteStore, worker: &str) -> Runtime<SqliteStore> {
        let config = RuntimeConfig {
            shutdown_deadline: Duration::from_secs(5),
            ..RuntimeConfig::new(worker.to_owned(), "run")
        };
        Runtime::new(store, config, self.clock.clone())
            .unwrap()
            .with_factory(Arc::new(self.flows.clone()))
    }

    fn start(&self, worker: &str) -> RuntimeHandle {
        self.runtime(self.store.clone(), worker).start()
    }

    /// Moves the clock forward in steps of one reload (5 s), letting the runtime catch up.
    async fn advance(&self, seconds: i64) {
        let mut left = seconds;
        while left > 0 {
            let step = left.min(5);
            self.clock.advance(SignedDuration::from_secs(step));
            left -= step;
            // Let every task react before time moves on: the runtime's work here is store
            // I/O on loopback, done within a few milliseconds.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

impl World {
    /// Like [`World::advance`], but after each step waits until each of `alive` has written
    /// its heartbeat for the step: replicas sharing the clock then never see each other as
    /// stale merely because the test moved time faster than one of them could follow.
    async fn advance_in_step(&self, seconds: i64, alive: &[&str]) {
        let mut left = seconds;
        while left > 0 {
            let step = left.min(5);
            self.clock.advance(SignedDuration::from_secs(step));
            left -= step;
            let now = self.clock.now();
            wait_until("every replica's heartbeat", || async {
                let beats = self.store.heartbeats().await.unwrap();
                alive.iter().all(|worker| {
                    beats
                        .iter()
                        .any(|beat| beat.worker_id == *worker && beat.beat_at >= now)
                })
            })
            .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

/// Waits (in real time, bounded) until `done` holds.
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn holder_of(store: &SqliteStore, flow: &str) -> Option<String> {
    store
        .flow_leases()
        .await
        .unwrap()
        .into_iter()
        .find(|lease| lease.flow_id == flow)
        .map(|lease| lease.owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_polled_on_its_interval_and_its_cycles_are_logged() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 60)])
        .await
        .unwrap();
    let running = world.start("w1");
    wait_until("the flow's lease", || async {
        holder_of(&world.store, "f1").await.as_deref() == Some("w1")
    })
    .await;
    // The first poll comes within 5 s (spread over that), then one per interval (plus up to
    // 10 % of jitter, so that many flows drift apart).
    for expected in 1..=4 {
        wait_until("the next poll", || async {
            world.advance(5).await;
            world.flows.polls("f1") == expected
        })
        .await;
    }
    // Each gap is the interval and its jitter, read at the 5 s steps the clock moved in.
    let gaps = world.flows.gaps("f1");
    assert_eq!(gaps.len(), 3);
    for gap in gaps {
        assert!((60..=71).contains(&gap), "{gap} s between polls");
    }
    // Idle cycles are written in batches at the reloads, every one of them.
    world.advance(5).await;
    wait_until("four cycles in the sync log", || async {
        world.store.cycles(Some("f1"), 0).await.unwrap().len() == 4
    })
    .await;
    let flow = world.store.flow(None, "f1").await.unwrap().unwrap();
    assert!(flow.last_sync_at.is_some_and(|at| at > t0()));
    // A clean shutdown gives the lease back and removes the heartbeat.
    running.shutdown().await;
    assert_eq!(holder_of(&world.store, "f1").await, None);
    assert!(world.store.heartbeats().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_pauses_and_removals_take_effect_at_the_next_reload() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 60), flow("f2", "t1", 60)])
        .await
        .unwrap();
    let running = world.start("w1");
    wait_until("both polled", || async {
        world.advance(5).await;
        world.flows.polls("f1") == 1 && world.flows.polls("f2") == 1
    })
    .await;
    // f1 now every 10 s: its task restarts (a first poll within 5 s), then every 10 s.
    let mut edited = flow("f1", "t1", 10);
    edited.updated_at = t0() + SignedDuration::from_secs(1);
    assert!(
        world
            .store
            .update_tenant(&tenant("t1"), &[edited])
            .await
            .unwrap()
    );
    wait_until("the edited flow polled again", || async {
        world.advance(5).await;
        world.flows.polls("f1") >= 2
    })
    .await;
    let before = world.flows.polls("f1");
    // Every 10 s (+ 1 s of jitter, read at the clock's 5 s steps): two more within 35 s.
    world.advance(35).await;
    wait_until("two more polls of the edited flow", || async {
        world.flows.polls("f1") >= before + 2
    })
    .await;
    assert!(
        world.flows.gaps("f1").last().is_some_and(|gap| *gap <= 16),
        "the edited interval holds: {:?}",
        world.flows.gaps("f1")
    );
    // f2 paused: no more polls, its lease given back.
    let mut paused = flow("f2", "t1", 60);
    paused.is_active = false;
    paused.updated_at = t0() + SignedDuration::from_secs(2);
    world
        .store
        .update_tenant(&tenant("t1"), &[paused])
        .await
        .unwrap();
    world.advance(5).await;
    wait_until("the paused flow's lease given back", || async {
        holder_of(&world.store, "f2").await.is_none()
    })
    .await;
    let f2_polls = world.flows.polls("f2");
    world.advance(180).await;
    assert_eq!(world.flows.polls("f2"), f2_polls);
    // f1 removed: its task stops.
    assert!(world.store.delete_flow("f1").await.unwrap());
    world.advance(5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f1_polls = world.flows.polls("f1");
    world.advance(60).await;
    assert_eq!(world.flows.polls("f1"), f1_polls);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flow_backs_off_from_its_interval() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 60)])
        .await
        .unwrap();
    world.flows.fail_polls_of("f1");
    let running = world.start("w1");
    for expected in 1..=3 {
        wait_until("the next poll", || async {
            world.advance(5).await;
            world.flows.polls("f1") == expected
        })
        .await;
    }
    // 120 s (the interval doubled), with up to 10 % of jitter, then 240 s.
    let gaps = world.flows.gaps("f1");
    assert!((120..=137).contains(&gaps[0]), "{gaps:?}");
    assert!((240..=269).contains(&gaps[1]), "{gaps:?}");
    // The failures are in the sync log, with their text.
    world.advance(5).await;
    wait_until("the failed cycles logged", || async {
        let cycles = world.store.cycles(Some("f1"), 0).await.unwrap();
        cycles.len() == 3
            && cycles
                .iter()
                .all(|c| c.log.error_message.as_deref() == Some("Odoo said no"))
    })
    .await;
    running.shutdown().await;
}

/// Signs `body` for the tests' inbound secret, as a sender of Standard Webhooks would.
fn signed(id: &str, at: Timestamp, body: &str) -> Vec<(&'static str, String)> {
    let secret = WebhookSecret::new(INBOUND_SECRET).unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.as_second().to_string()),
        (
            "webhook-signature",
            secret.sign(id, at.as_second(), body.as_bytes()),
        ),
        ("content-type", "application/json".to_owned()),
    ]
}

async fn serve_inbox(world: &World, runtime: &Runtime<SqliteStore>) -> String {
    let receiver = Receiver::new(world.store.clone(), world.clock.clone(), runtime.signals());
    let app = engine::http::layers(receive::routes(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    url
}

async fn post(
    url: &str,
    headers: &[(&'static str, String)],
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (status, body, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_stores_each_signed_event_once_and_the_flow_applies_it() {
    let world = World::new().await;
    let mut guarded = flow("f2", "t1", 60);
    guarded
        .settings
        .insert("allow_from".into(), json!(["10.0.0.0/8", "192.0.2.7"]));
    let mut limited = flow("f3", "t1", 60);
    limited
        .settings
        .insert("inbound_per_minute".into(), json!(3));
    let mut closed = flow("f4", "t1", 60);
    closed.secrets.clear();
    world
        .store
        .insert_tenant(
            &tenant("t1"),
            &[flow("f1", "t1", 60), guarded, limited, closed],
        )
        .await
        .unwrap();
    let runtime = world.runtime(world.store.clone(), "w1");
    let base = serve_inbox(&world, &runtime).await;
    let running = runtime.start();
    wait_until("the flow runs", || async { running.signals().runs("f1") }).await;
    let now = world.clock.now();
    let body = r#"{"type":"status","subject":"H-1","status":"approved"}"#;

    // Stored (202), then recognised (200): applied once.
    let (status, answer, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-1", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "accepted");
    let (status, answer, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-1", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    wait_until("the event applied", || async {
        world.flows.applied("f1").len() == 1
    })
    .await;
    let events = world
        .store
        .inbound_events(&InboundFilter {
            flow_id: Some("f1".into()),
            ..InboundFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "status");
    assert_eq!(events[0].subject.as_deref(), Some("H-1"));
    assert_eq!(events[0].headers["webhook-id"], "evt-1");
    assert!(!events[0].headers.contains_key("webhook-signature"));
    wait_until("the application recorded", || async {
        world
            .store
            .inbound_event(events[0].id)
            .await
            .unwrap()
            .unwrap()
            .status
            == InboundStatus::Applied
    })
    .await;
    let applications = world.store.applications(events[0].id).await.unwrap();
    assert_eq!(applications.len(), 1);
    assert_eq!(applications[0].detail.as_deref(), Some("applied evt-1"));

    // Each refusal has its status and stores nothing.
    let stored_before = world
        .store
        .inbound_events(&InboundFilter::default())
        .await
        .unwrap()
        .len();
    let unsigned = [("content-type", "application/json".to_owned())];
    let (status, _, _) = post(&format!("{base}/inbox/f1"), &unsigned, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut forged = signed("evt-2", now, body);
    forged[2].1 = WebhookSecret::new("another-secret-entirely-000")
        .unwrap()
        .sign("evt-2", now.as_second(), body.as_bytes());
    let (status, answer, _) = post(&format!("{base}/inbox/f1"), &forged, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!answer.to_string().contains(INBOUND_SECRET));
    let stale = now - SignedDuration::from_secs(301);
    let (status, _, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-3", stale, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-4", now, "{not json"),
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024));
    let (status, _, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-5", now, &huge),
        huge.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = post(
        &format!("{base}/inbox/nope"),
        &signed("evt-6", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = post(
        &format!("{base}/inbox/f4"),
        &signed("evt-7", now, body),
        body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a flow without an inbound secret takes nothing in"
    );
    let (status, _, _) = post(
        &format!("{base}/inbox/f2"),
        &signed("evt-8", now, body),
        body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "127.0.0.1 is not in allow_from"
    );
    assert_eq!(
        world
            .store
            .inbound_events(&InboundFilter::default())
            .await
            .unwrap()
            .len(),
        stored_before
    );
    // Beyond the rate of a source: 429 with Retry-After (and nothing stored).
    for n in 0..3 {
        let id = format!("rate-{n}");
        let (status, _, _) = post(&format!("{base}/inbox/f3"), &signed(&id, now, body), body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, _, retry_after) = post(
        &format!("{base}/inbox/f3"),
        &signed("rate-4", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|after| after.parse::<u64>().unwrap() >= 1));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_keeps_failing_ends_failed_and_a_person_can_retry_it() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 3_600)])
        .await
        .unwrap();
    world.flows.refuse_applications(6);
    let runtime = world.runtime(world.store.clone(), "w1");
    let base = serve_inbox(&world, &runtime).await;
    let running = runtime.start();
    wait_until("the flow runs", || async { running.signals().runs("f1") }).await;
    let body = r#"{"status":"approved"}"#;
    let (status, answer, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-1", world.clock.now(), body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = answer["id"].as_i64().unwrap();
    // A first try, then five retries on the outbox's schedule (30 s … 8 min, jittered):
    // then FAILED, visible, and never tried again on its own.
    wait_until("the event failed for good", || async {
        world.advance(60).await;
        world.store.inbound_event(id).await.unwrap().unwrap().status == InboundStatus::Failed
    })
    .await;
    let failed = world.store.inbound_event(id).await.unwrap().unwrap();
    assert_eq!(failed.attempts, 6);
    assert_eq!(failed.failure_class, Some(FailureClass::OdooError));
    assert_eq!(failed.last_error.as_deref(), Some("Odoo is busy"));
    assert_eq!(world.store.applications(id).await.unwrap().len(), 6);
    world.advance(3_600).await;
    assert_eq!(world.store.applications(id).await.unwrap().len(), 6);
    assert!(world.flows.applied("f1").is_empty());
    // A person retries it: applied (the refusals are used up).
    assert!(
        world
            .store
            .retry_inbound(id, world.clock.now())
            .await
            .unwrap()
    );
    wait_until("the retried event applied", || async {
        world.advance(5).await;
        world.store.inbound_event(id).await.unwrap().unwrap().status == InboundStatus::Applied
    })
    .await;
    assert_eq!(world.flows.applied("f1"), [body.to_owned()]);
    running.shutdown().await;
}

/// A runtime restarted under its worker id after a crash applies the event its previous life
/// had in hand at once: the 5-minute lease it held itself is given back, not waited out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_applies_the_events_it_had_in_hand_without_waiting_for_the_lease() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 3_600)])
        .await
        .unwrap();
    let body = r#"{"status":"approved"}"#;
    let engine::store::Received::Stored(id) = world
        .store
        .receive(&engine::store::NewInboundEvent {
            flow_id: "f1".into(),
            event_id: "evt-1".into(),
            kind: "test.status".into(),
            subject: Some("S1".into()),
            source: "127.0.0.1".into(),
            headers: serde_json::Map::new(),
            body: body.into(),
            max_attempts: 5,
            received_at: t0(),
        })
        .await
        .unwrap()
    else {
        panic!("stored");
    };
    // w1 had leased it (for the inbox worker's 5 minutes) when it was killed.
    let lease = SignedDuration::from_secs(300);
    let claimed = world
        .store
        .claim_inbound("w1", "f1", t0(), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let running = world.start("w1");
    wait_until("the event applied", || async {
        world.advance(5).await;
        assert!(
            world.clock.now() < t0() + SignedDuration::from_secs(60),
            "not applied a minute after the restart; the old lease ran until {}",
            t0() + lease
        );
        world.store.inbound_event(id).await.unwrap().unwrap().status == InboundStatus::Applied
    })
    .await;
    assert_eq!(world.flows.applied("f1"), [body.to_owned()]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_tenants_and_take_over_from_a_dead_one() {
    let world = World::new().await;
    let tenants = ["t1", "t2", "t3", "t4", "t5", "t6"];
    for (n, id) in tenants.iter().enumerate() {
        world
            .store
            .insert_tenant(&tenant(id), &[flow(&format!("f{n}"), id, 60)])
            .await
            .unwrap();
    }
    let flows: Vec<String> = (0..tenants.len()).map(|n| format!("f{n}")).collect();
    let a = world.start("replica-a");
    let b = world
        .runtime(world.other_store().await, "replica-b")
        .start();
    let c = world
        .runtime(world.other_store().await, "replica-c")
        .start();
    // Once each has seen the others' heartbeats, every flow has one holder and each replica
    // two: the tenants are spread evenly.
    let all = ["replica-a", "replica-b", "replica-c"];
    wait_until("the flows spread over three replicas", || async {
        world.advance_in_step(5, &all).await;
        let mut load: HashMap<String, usize> = HashMap::new();
        for flow in &flows {
            match holder_of(&world.store, flow).await {
                Some(owner) => *load.entry(owner).or_default() += 1,
                None => return false,
            }
        }
        load.len() == 3 && load.values().all(|count| *count == 2)
    })
    .await;
    // A flow that changed hands is polled at once by its new holder; let those polls pass.
    world.advance_in_step(10, &all).await;
    // Each flow is polled once per interval, by its holder alone.
    let before: Vec<u32> = flows.iter().map(|f| world.flows.polls(f)).collect();
    world.advance_in_step(70, &all).await;
    wait_until("one poll of every flow", || async {
        flows
            .iter()
            .zip(&before)
            .all(|(flow, polls)| world.flows.polls(flow) > *polls)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (flow, polls) in flows.iter().zip(&before) {
        assert_eq!(world.flows.polls(flow), polls + 1, "{flow} polled twice");
    }
    // Two replicas die (no goodbye: leases and heartbeats are left to run out); the survivor
    // takes every flow over within five reloads.
    b.abort().await;
    c.abort().await;
    world.advance_in_step(25, &["replica-a"]).await;
    wait_until("the survivor holds every flow", || async {
        world.advance_in_step(5, &["replica-a"]).await;
        let mut all = true;
        for flow in &flows {
            all &= holder_of(&world.store, flow).await.as_deref() == Some("replica-a");
        }
        all
    })
    .await;
    let before: Vec<u32> = flows.iter().map(|f| world.flows.polls(f)).collect();
    world.advance_in_step(70, &["replica-a"]).await;
    wait_until("the survivor polls every flow", || async {
        flows
            .iter()
            .zip(&before)
            .all(|(flow, polls)| world.flows.polls(flow) > *polls)
    })
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_of_one_environment_refuses_signed_events_of_another() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 60)])
        .await
        .unwrap();
    let runtime = world.runtime(world.store.clone(), "w1");
    let receiver = Receiver::new(world.store.clone(), world.clock.clone(), runtime.signals())
        .with_environment(Some("prod".to_owned()));
    let app = engine::http::layers(receive::routes(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let now = world.clock.now();
    let body = r#"{"type":"status","subject":"H-1"}"#;
    let tagged = |id: &str, environment: &str| {
        let mut headers = signed(id, now, body);
        headers.push(("x-odoo-bridge-environment", environment.to_owned()));
        headers
    };
    let (status, answer, _) = post(
        &format!("{base}/inbox/f1"),
        &tagged("evt-s", "staging"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("\"staging\""),
        "{answer}"
    );
    // Unsigned, the tag is not even looked at.
    let (status, _, _) = post(
        &format!("{base}/inbox/f1"),
        &[
            ("content-type", "application/json".to_owned()),
            ("x-odoo-bridge-environment", "staging".to_owned()),
        ],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        world
            .store
            .inbound_events(&InboundFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
    // Its own environment, or no tag at all, is taken.
    let (status, _, _) = post(&format!("{base}/inbox/f1"), &tagged("evt-p", "prod"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = post(
        &format!("{base}/inbox/f1"),
        &signed("evt-n", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_keep_their_rows_for_the_retention_and_no_longer() {
    let world = World::new().await;
    world
        .store
        .insert_tenant(&tenant("t1"), &[flow("f1", "t1", 86_400)])
        .await
        .unwrap();
    let cycle = |days_ago: i64| engine::store::CycleLog {
        flow_id: "f1".into(),
        started_at: t0() - SignedDuration::from_hours(24 * days_ago),
        found: 0,
        sent: 0,
        failed: 0,
        held_back: 0,
        error_message: None,
        duration_ms: 5,
    };
    world
        .store
        .record_cycles(&[cycle(100), cycle(10)])
        .await
        .unwrap();
    let log_row = |key: &str, days_ago: i64| engine::store::LogEntry {
        flow_id: "f1".into(),
        event_key: key.into(),
        direction: engine::store::LogDirection::Inbound,
        hashed_id: "H1".into(),
        odoo_order_id: None,
        action: "status".into(),
        outcome: engine::store::LogOutcome::Success,
        marketplace_status: None,
        odoo_order_state: None,
        odoo_delivery_state: None,
        response_time_ms: None,
        retries: 0,
        error_code: None,
        error_text: None,
        at: t0() - SignedDuration::from_hours(24 * days_ago),
    };
    world.store.record_log(&log_row("old", 100)).await.unwrap();
    world
        .store
        .record_log(&log_row("recent", 10))
        .await
        .unwrap();
    let cycles_before = |days: i64| {
        let store = world.store.clone();
        async move {
            store
                .cycles(Some("f1"), 0)
                .await
                .unwrap()
                .iter()
                .filter(|entry| entry.log.started_at < t0() - SignedDuration::from_hours(24 * days))
                .count()
        }
    };
    let log_keys = || {
        let store = world.store.clone();
        async move {
            store
                .marketplace_log(&engine::store::LogFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|row| row.entry.event_key)
                .collect::<Vec<_>>()
        }
    };
    // The default retention is 90 days: at start, the 100-day-old rows go.
    let running = world.start("w1");
    wait_until("the 100-day-old rows pruned", || async {
        cycles_before(50).await == 0 && log_keys().await == ["recent"]
    })
    .await;
    assert_eq!(cycles_before(5).await, 1, "the 10-day-old cycle stays");
    // 81 days later the 10-day-old rows are past it too: the hourly pass takes them.
    world.clock.advance(SignedDuration::from_hours(24 * 81));
    wait_until("the 10-day-old rows pruned", || async {
        cycles_before(5).await == 0 && log_keys().await.is_empty()
    })
    .await;
    running.shutdown().await;
}
