//! Order delivery end to end in one process: the simulator, the embedded SQLite store, and a
//! webhook receiver on loopback that checks every signature.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use engine::clock::Clock;
use engine::order_delivery::{Connection, ConnectionStore, EventSet, OrderDeliveryFlow};
use engine::outbox::{DispatchReport, Dispatcher};
use engine::runtime::{FlowHandler, FlowOptions, FlowSetup, PollReport};
use engine::store::{BreakerStatus, CoordinationStore, OutboxStore, PacketFilter, PacketStatus};
use engine::webhook::{
    BreakerConfig, CircuitBreaker, FailureClass, SenderConfig, Verifier, WebhookSecret,
    WebhookSender,
};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use store_sqlite::SqliteStore;

const SECRET: &str = "0d7c2f1e-8a8b-4c3d-9e0f-112233445566";

#[derive(Clone)]
struct Receiver {
    verifier: Arc<Verifier>,
    /// `(webhook-id, body)` of every accepted delivery.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// The status to answer with.
    status: Arc<AtomicU16>,
    /// A `Retry-After` to send with it.
    retry_after: Arc<Mutex<Option<String>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if receiver.verifier.verify(&headers, &body).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let status = StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        receiver
            .seen
            .lock()
            .unwrap()
            .push((id, serde_json::from_slice(&body).unwrap()));
    }
    match receiver.retry_after.lock().unwrap().clone() {
        Some(after) => (status, [("retry-after", after)]).into_response(),
        None => status.into_response(),
    }
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver {
        verifier: Arc::new(Verifier::new(WebhookSecret::new(SECRET).unwrap())),
        seen: Arc::default(),
        status: Arc::new(AtomicU16::new(200)),
        retry_after: Arc::default(),
    };
    let app = Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

struct World {
    sim: OdooSim,
    _running: RunningSim,
    client: OdooClient,
    store: SqliteStore,
    connection_id: String,
    dispatcher: Dispatcher,
    flow: OrderDeliveryFlow,
    receiver: Receiver,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        World::with_orders(40).await
    }

    async fn with_orders(orders: usize) -> World {
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                orders,
                partners: 20,
                products: 10,
                seed: 11,
            },
        );
        let running = sim.clone().serve_on_loopback().await.unwrap();
        let config = sim.config().clone();
        let client = OdooClient::new(ClientConfig::new(
            running.url(),
            config.database.clone(),
            config.admin_login.clone(),
            config.admin_api_key.clone(),
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("delivery.db"))
            .await
            .unwrap();
        engine::mirror_store::MirrorStore::migrate(&store)
            .await
            .unwrap();
        let (url, receiver) = start_receiver().await;
        let now = Timestamp::now();
        let connection = Connection {
            id: "00112233aabbccdd".into(),
            tenant_id: "ddccbbaa33221100".into(),
            name: "Tienda Ñandú".into(),
            odoo_url: running.url(),
            odoo_db: config.database.clone(),
            odoo_username: config.admin_login.clone(),
            odoo_api_key: ApiKey::new(config.admin_api_key.clone()),
            webhook_url: url,
            webhook_secret: WebhookSecret::new(SECRET).unwrap(),
            store_id: "store_xyz".into(),
            client_id: "client_xyz".into(),
            polling_interval_seconds: 60,
            odoo_min_delay_ms: 0,
            is_active: true,
            events: EventSet::default(),
            last_sync_at: None,
            cursor: None,
            created_at: now,
            updated_at: now,
        };
        store.insert_connection(&connection).await.unwrap();
        let mut dispatcher = Dispatcher::new(
            "test-worker".into(),
            std::time::Duration::from_secs(30),
            Clock::system(),
        );
        dispatcher.batch = 16;
        let flow = order_flow(&connection, &client, Clock::system());
        World {
            sim,
            _running: running,
            client,
            store,
            connection_id: connection.id,
            dispatcher,
            flow,
            receiver,
            _dir: dir,
        }
    }

    /// The flow again, on another clock (a manual one walks the retry schedule).
    async fn flow_on(&self, clock: &Clock) -> OrderDeliveryFlow {
        order_flow(&self.connection().await, &self.client, clock.clone())
    }

    async fn poll(&self) -> PollReport {
        FlowHandler::<SqliteStore>::poll(&self.flow, &self.store)
            .await
            .unwrap()
    }

    async fn deliver(&self, dispatcher: &Dispatcher, flow: &OrderDeliveryFlow) -> DispatchReport {
        dispatcher
            .deliver_due(&self.store, &self.connection_id, flow)
            .await
            .unwrap()
    }

    async fn connection(&self) -> Connection {
        self.store
            .connection(&self.connection_id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn cycle(&self) -> (PollReport, DispatchReport) {
        let polled = self.poll().await;
        let sent = self.deliver(&self.dispatcher, &self.flow).await;
        (polled, sent)
    }

    fn deliveries(&self) -> Vec<(String, Value)> {
        self.receiver.seen.lock().unwrap().clone()
    }

    async fn confirmed_ids(&self) -> Vec<i64> {
        self.client
            .search(
                "sale.order",
                &SearchReadOptions::new(field("state").is_in(["sale", "done"])).order("id asc"),
            )
            .await
            .unwrap()
    }
}

fn order_flow(connection: &Connection, client: &OdooClient, clock: Clock) -> OrderDeliveryFlow {
    OrderDeliveryFlow::new(FlowSetup {
        tenant: connection.tenant(),
        flow: connection.flow(),
        odoo: client.clone(),
        webhooks: WebhookSender::new(SenderConfig::default()).unwrap(),
        clock,
        options: FlowOptions::default(),
        worker_id: "test-worker".to_owned(),
    })
    .unwrap()
}

#[tokio::test]
async fn each_confirmed_order_is_delivered_once_then_updates_and_cancellations_follow() {
    let world = World::new().await;
    let confirmed = world.confirmed_ids().await;
    assert!(!confirmed.is_empty());

    let (polled, sent) = world.cycle().await;
    assert_eq!(polled.enqueued, confirmed.len() as u64);
    assert_eq!(sent.delivered, confirmed.len() as u64, "{sent:?}");
    let deliveries = world.deliveries();
    let mut per_order: HashMap<i64, usize> = HashMap::new();
    for (id, body) in &deliveries {
        assert_eq!(body["event"], json!("order.confirmed"));
        let order: i64 = body["order"]["platform_order_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(id, &format!("{}_{order}_v1", world.connection_id));
        assert_eq!(body["external_id"], json!(format!("odoo_odoo_{order}")));
        *per_order.entry(order).or_default() += 1;
    }
    assert_eq!(per_order.len(), confirmed.len());
    assert!(per_order.values().all(|count| *count == 1));

    // Nothing changed: the overlap re-reads orders, nothing is sent again.
    let (polled, sent) = world.cycle().await;
    assert!(polled.found > 0, "the overlap re-reads recent orders");
    assert_eq!((polled.enqueued, sent.delivered), (0, 0));

    // One order changes, another is cancelled.
    let (changed, cancelled) = (confirmed[0], confirmed[1]);
    let mut reference = Map::new();
    reference.insert("client_order_ref".into(), json!("PO-2026-0042"));
    world
        .client
        .write("sale.order", &[changed], reference, None)
        .await
        .unwrap();
    let mut kwargs = Map::new();
    kwargs.insert("context".into(), json!({"disable_cancel_warning": true}));
    world
        .client
        .call_method(
            "sale.order",
            "action_cancel",
            Some(&[cancelled]),
            kwargs,
            None,
        )
        .await
        .unwrap();
    let (polled, sent) = world.cycle().await;
    assert_eq!(
        (polled.enqueued, sent.delivered),
        (2, 2),
        "{polled:?} {sent:?}"
    );
    let latest = &world.deliveries()[deliveries.len()..];
    let by_order: HashMap<String, &Value> = latest
        .iter()
        .map(|(_, body)| {
            (
                body["order"]["platform_order_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                body,
            )
        })
        .collect();
    let update = by_order[&changed.to_string()];
    assert_eq!(update["event"], json!("order.updated"));
    assert_eq!(update["order"]["client_order_ref"], json!("PO-2026-0042"));
    let cancellation = by_order[&cancelled.to_string()];
    assert_eq!(cancellation["event"], json!("order.cancelled"));
    assert_eq!(
        cancellation["order"]["platform_attributes"]["odoo_state"],
        json!("cancel")
    );
    assert!(
        latest
            .iter()
            .any(|(id, _)| id == &format!("{}_{changed}_v2", world.connection_id))
    );

    let (polled, sent) = world.cycle().await;
    assert_eq!(
        (polled.enqueued, sent.delivered),
        (0, 0),
        "a cancellation is sent once"
    );
    drop(world.sim);
}

/// The related records (lines, partners, products, attribute values, countries, states) are
/// read once per batch of up to 500 orders, whatever the feed's pages of 100: more orders
/// than a batch cost two sets of reads, and every order is enqueued once.
#[tokio::test]
async fn related_records_are_read_once_per_batch_of_orders_not_per_page() {
    let world = World::with_orders(1_300).await;
    let confirmed = world.confirmed_ids().await;
    assert!(confirmed.len() > 500, "{} confirmed", confirmed.len());
    let before = world.sim.call_count("sale.order.line", "search_read");
    let polled = world.poll().await;
    assert!(polled.pages >= 6, "{polled:?}");
    assert_eq!(polled.enqueued, confirmed.len() as u64, "{polled:?}");
    let found = usize::try_from(polled.found).unwrap();
    let batches = found.div_ceil(engine::order_delivery::poll::ORDERS_PER_BATCH) as u64;
    for model in [
        "sale.order.line",
        "res.partner",
        "product.product",
        "product.template.attribute.value",
    ] {
        let calls = world.sim.call_count(model, "search_read");
        let calls = if model == "sale.order.line" {
            calls - before
        } else {
            calls
        };
        assert_eq!(calls, batches, "{model}: {calls} reads for {found} orders");
    }
    let packets = world
        .store
        .packets(&engine::store::PacketFilter::default())
        .await
        .unwrap();
    let subjects: std::collections::HashSet<i64> =
        packets.iter().map(|packet| packet.subject.id).collect();
    assert_eq!(subjects.len(), confirmed.len());
    assert_eq!(packets.len(), confirmed.len());
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_on_schedule_and_a_410_fails_for_good() {
    let world = World::new().await;
    world.receiver.status.store(503, Ordering::SeqCst);
    let (polled, sent) = world.cycle().await;
    assert!(polled.enqueued > 0);
    assert_eq!(sent.delivered, 0);
    assert!(sent.retried >= 1, "{sent:?}");
    let pending = world
        .store
        .packets(&PacketFilter {
            status: Some(PacketStatus::Pending),
            ..PacketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len() as u64, polled.enqueued, "nothing lost");
    let tried: Vec<_> = pending
        .iter()
        .filter(|packet| packet.attempts == 1)
        .collect();
    for packet in &tried {
        assert_eq!(packet.failure_class, Some(FailureClass::Http5xx));
        let wait = packet.next_attempt_at.duration_since(packet.updated_at);
        assert!(
            wait >= SignedDuration::from_secs(15) && wait <= SignedDuration::from_secs(30),
            "first retry after 30 s with equal jitter: {wait:?}"
        );
    }
    // Five failures in a row open the target's breaker: the rest are given back untried,
    // without spending an attempt.
    assert!(polled.enqueued > 5);
    assert_eq!(tried.len(), 5, "{sent:?}");
    assert_eq!(sent.retried, 5);
    assert!(sent.held_back >= 1, "{sent:?}");
    assert!(pending.iter().all(|packet| packet.attempts <= 1));

    // The receiver now refuses for good: a due packet becomes FAILED after one attempt.
    world.receiver.status.store(410, Ordering::SeqCst);
    let first = tried[0];
    world
        .store
        .retry_now(&first.id, Timestamp::now())
        .await
        .unwrap();
    let fresh = Dispatcher {
        breaker: CircuitBreaker::new(BreakerConfig::default()),
        ..world.dispatcher.clone()
    };
    world.deliver(&fresh, &world.flow).await;
    let packet = world.store.packet(&first.id).await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Failed);
    assert_eq!(packet.failure_class, Some(FailureClass::Http4xx));
    assert_eq!(packet.event, "order.confirmed");
    // Every attempt is in the packet's history, with what the receiver answered.
    let history = world.store.attempts(&first.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| (a.outcome.as_str(), a.status_code))
            .collect::<Vec<_>>(),
        [("retry", Some(503)), ("failed", Some(410))]
    );
}

/// A dispatcher on a manual clock: the retry schedule is walked in milliseconds.
fn manual_dispatcher(world: &World, clock: &Clock, threshold: u32) -> Dispatcher {
    Dispatcher {
        breaker: CircuitBreaker::with_clock(
            BreakerConfig {
                failure_threshold: threshold,
                ..BreakerConfig::default()
            },
            clock.clone(),
        ),
        clock: clock.clone(),
        ..world.dispatcher.clone()
    }
}

#[tokio::test]
async fn retries_follow_the_seeds_schedule_then_the_packet_fails() {
    let world = World::new().await;
    world.receiver.status.store(503, Ordering::SeqCst);
    let clock = Clock::manual(Timestamp::now());
    let dispatcher = manual_dispatcher(&world, &clock, 1_000);
    let flow = world.flow_on(&clock).await;
    world.poll().await;
    let mut waits: HashMap<String, Vec<SignedDuration>> = HashMap::new();
    for _ in 0..20 {
        let before = clock.now();
        world.deliver(&dispatcher, &flow).await;
        let pending = world
            .store
            .packets(&PacketFilter {
                status: Some(PacketStatus::Pending),
                ..PacketFilter::default()
            })
            .await
            .unwrap();
        for packet in &pending {
            let due_in = packet.next_attempt_at.duration_since(before);
            let seen = waits.entry(packet.id.clone()).or_default();
            if seen.len() < packet.attempts as usize {
                seen.push(due_in);
            }
        }
        // Everything pending is due by the latest retry time: one round per step.
        let Some(next) = pending.iter().map(|packet| packet.next_attempt_at).max() else {
            break;
        };
        clock.set(next);
    }
    let all = world.store.packets(&PacketFilter::default()).await.unwrap();
    assert!(!all.is_empty());
    for packet in &all {
        assert_eq!(packet.status, PacketStatus::Failed, "{packet:?}");
        assert_eq!(packet.attempts, 6, "one send and five retries");
        assert_eq!(packet.failure_class, Some(FailureClass::Http5xx));
        let waits = &waits[&packet.id];
        assert_eq!(waits.len(), 5, "{waits:?}");
        for (retry, wait) in waits.iter().enumerate() {
            let nominal =
                SignedDuration::from_secs(30 * (1 << retry)).min(SignedDuration::from_secs(600));
            assert!(
                *wait >= nominal / 2 && *wait <= nominal,
                "retry {retry}: waited {wait:?}, schedule says {nominal:?} with equal jitter"
            );
        }
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_breaker_opens_then_recovers() {
    let world = World::new().await;
    world.poll().await;
    let clock = Clock::manual(Timestamp::now());
    let dispatcher = manual_dispatcher(&world, &clock, 5);
    let flow = world.flow_on(&clock).await;
    let total = world
        .store
        .packets(&PacketFilter::default())
        .await
        .unwrap()
        .len();
    assert!(total > 6);

    // 429 with Retry-After: 400 s, longer than the schedule's 30 s.
    world.receiver.status.store(429, Ordering::SeqCst);
    *world.receiver.retry_after.lock().unwrap() = Some("400".into());
    let start = clock.now();
    let report = world.deliver(&dispatcher, &flow).await;
    assert_eq!(
        report.retried, 5,
        "five failures open the breaker: {report:?}"
    );
    assert!(report.held_back >= 1, "{report:?}");
    let pending = world.store.packets(&PacketFilter::default()).await.unwrap();
    for packet in pending.iter().filter(|packet| packet.attempts == 1) {
        assert_eq!(packet.failure_class, Some(FailureClass::RateLimited));
        assert!(
            packet.next_attempt_at.duration_since(start) >= SignedDuration::from_secs(399),
            "{packet:?} {start}"
        );
    }
    assert!(
        pending.iter().all(|packet| packet.attempts <= 1),
        "held back packets spent no attempt"
    );

    // The daemon records the breaker for `connections show`.
    let target = engine::webhook::target_key(&world.connection().await.webhook_url);
    let record = dispatcher.breaker_record(&world.connection_id, "webhook", &target);
    assert_eq!(record.status, BreakerStatus::Open);
    world.store.set_breaker_state(&record).await.unwrap();
    let recorded = world.store.breaker_states().await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, BreakerStatus::Open);
    assert!(recorded[0].open_until.is_some());

    // While open, nothing is sent.
    let before = world.deliveries().len();
    clock.advance(SignedDuration::from_secs(10));
    world.deliver(&dispatcher, &flow).await;
    assert_eq!(world.deliveries().len(), before);

    // The target is back; after the cool-down one probe goes through, closes the breaker,
    // and every packet is delivered once its own time comes.
    world.receiver.status.store(200, Ordering::SeqCst);
    *world.receiver.retry_after.lock().unwrap() = None;
    clock.advance(SignedDuration::from_secs(500));
    for _ in 0..5 {
        world.deliver(&dispatcher, &flow).await;
        clock.advance(SignedDuration::from_secs(120));
    }
    let record = dispatcher.breaker_record(&world.connection_id, "webhook", &target);
    assert_eq!(record.status, BreakerStatus::Closed);
    world.store.set_breaker_state(&record).await.unwrap();
    assert_eq!(
        world.store.breaker_states().await.unwrap()[0].status,
        BreakerStatus::Closed
    );
    let delivered: Vec<_> = world.deliveries().into_iter().map(|(id, _)| id).collect();
    assert_eq!(delivered.len(), total, "each packet exactly once");
    let unique: std::collections::HashSet<_> = delivered.iter().collect();
    assert_eq!(unique.len(), total);
}
