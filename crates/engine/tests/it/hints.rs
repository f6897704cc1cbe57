//! Odoo push hints end to end: the simulator's automation rule posts its webhook (before its
//! transaction commits) to the hint route of a listener on loopback, the runtime (on a
//! manual clock, a 5-minute poll interval) polls on the hint schedule, and a receiver checks
//! every delivery's signature.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use engine::clock::Clock;
use engine::hints::receive::{HintLimits, HintReceiver};
use engine::hints::{self, install};
use engine::order_delivery::{Connection, ConnectionStore, EventSet};
use engine::runtime::{Runtime, RuntimeConfig, RuntimeHandle};
use engine::store::{CoordinationStore, OutboxStore, PacketFilter, TenantStore};
use engine::webhook::{Verifier, WebhookSecret};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_sqlite::SqliteStore;

const SECRET: &str = "5a1c2f1e-8a8b-4c3d-9e0f-112233445566";
const CONNECTION: &str = "0a1b2c3d4e5f6071";
/// Five minutes: the goal is orders within seconds whatever the interval.
const INTERVAL: u32 = 300;

#[derive(Clone)]
struct Deliveries {
    verifier: Arc<Verifier>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn receive(
    State(deliveries): State<Deliveries>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if deliveries.verifier.verify(&headers, &body).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    deliveries
        .seen
        .lock()
        .unwrap()
        .push((id, serde_json::from_slice(&body).unwrap()));
    StatusCode::OK.into_response()
}

struct World {
    sim: OdooSim,
    _odoo: RunningSim,
    client: OdooClient,
    store: SqliteStore,
    clock: Clock,
    deliveries: Deliveries,
    /// The daemon's listener, serving the hint route.
    base_url: String,
    runtime: Option<RuntimeHandle>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(limits: HintLimits) -> World {
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                orders: 30,
                partners: 10,
                products: 8,
                seed: 14,
            },
        );
        let odoo = sim.clone().serve_on_loopback().await.unwrap();
        let config = sim.config().clone();
        let client = OdooClient::new(ClientConfig::new(
            odoo.url(),
            config.database.clone(),
            config.admin_login.clone(),
            config.admin_api_key.clone(),
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db"))
            .await
            .unwrap();
        engine::mirror_store::MirrorStore::migrate(&store)
            .await
            .unwrap();
        let deliveries = Deliveries {
            verifier: Arc::new(Verifier::new(WebhookSecret::new(SECRET).unwrap())),
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/orders", axum::routing::post(receive))
            .with_state(deliveries.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!("http://{}/orders", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let now = Timestamp::now();
        let connection = Connection {
            id: CONNECTION.into(),
            tenant_id: CONNECTION.into(),
            name: "Hinted shop".into(),
            odoo_url: odoo.url(),
            odoo_db: config.database.clone(),
            odoo_username: config.admin_login.clone(),
            odoo_api_key: ApiKey::new(config.admin_api_key.clone()),
            webhook_url,
            webhook_secret: WebhookSecret::new(SECRET).unwrap(),
            store_id: "store_h".into(),
            client_id: "client_h".into(),
            polling_interval_seconds: INTERVAL,
            odoo_min_delay_ms: 0,
            is_active: true,
            events: EventSet::default(),
            last_sync_at: None,
            cursor: None,
            created_at: now,
            updated_at: now,
        };
        store.insert_connection(&connection).await.unwrap();
        let clock = Clock::manual(now);
        let config = RuntimeConfig {
            shutdown_deadline: Duration::from_secs(5),
            ..RuntimeConfig::new("hint-worker".to_owned(), "run")
        };
        let runtime = Runtime::new(store.clone(), config, clock.clone()).unwrap();
        let receiver = HintReceiver::new(store.clone(), clock.clone(), runtime.signals(), limits);
        let app = engine::http::layers(hints::receive::routes(receiver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let mut world = World {
            sim,
            _odoo: odoo,
            client,
            store,
            clock,
            deliveries,
            base_url,
            runtime: None,
            _dir: dir,
        };
        world.runtime = Some(runtime.start());
        world
    }

    fn signals(&self) -> engine::runtime::FlowSignals {
        self.runtime.as_ref().unwrap().signals()
    }

    /// Enables hints and installs the rule in the simulator; returns the hint URL.
    async fn install_hint(&self) -> String {
        let (_, token) = hints::enable(&self.store, CONNECTION, &self.base_url, self.clock.now())
            .await
            .unwrap();
        let url = hints::hint_url(&self.base_url, CONNECTION, token.expose());
        install::install(&self.client, CONNECTION, &url, EventSet::default())
            .await
            .unwrap();
        url
    }

    /// Moves the clock in steps of one reload until the flow has run its first poll (the
    /// backfill) and delivered what it found, so later polls are the hints' or the
    /// interval's.
    async fn settle(&self) {
        // Two reloads: the flow edited by `install_hint` is restarted at the first, and its
        // first poll falls within the next 5 s.
        for _ in 0..12 {
            self.advance(SignedDuration::from_secs(1)).await;
        }
        wait_until("the first poll", || async {
            self.store.cursors(Some(CONNECTION)).await.unwrap().len() == 1
                && self.signals().runs(CONNECTION)
        })
        .await;
        let confirmed = self.confirmed().await.len();
        wait_until("the backfill's deliveries", || async {
            self.delivered_orders().len() == confirmed
        })
        .await;
    }

    /// Moves the clock in steps of 0.2 s (the hints' retries) until `done`, at most 3 s.
    async fn advance_until(&self, what: &str, done: impl AsyncFn() -> bool) {
        for _ in 0..15 {
            if done().await {
                return;
            }
            self.advance(SignedDuration::from_millis(200)).await;
        }
        wait_until(what, done).await;
    }

    async fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    fn hint_counts(&self) -> engine::runtime::hints::HintCounts {
        self.signals().hint_counts(CONNECTION).unwrap_or_default()
    }

    async fn orders_in(&self, states: &[&str]) -> Vec<i64> {
        self.client
            .search(
                "sale.order",
                &SearchReadOptions::new(field("state").is_in(states.iter().copied()))
                    .order("id asc"),
            )
            .await
            .unwrap()
    }

    async fn confirmed(&self) -> Vec<i64> {
        self.orders_in(&["sale"]).await
    }

    async fn drafts(&self) -> Vec<i64> {
        self.orders_in(&["draft", "sent"]).await
    }

    /// `(webhook-id, order id)` of every delivery, in order.
    fn deliveries(&self) -> Vec<(String, i64)> {
        self.deliveries
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(id, body)| {
                let order = body["order"]["platform_order_id"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                (id.clone(), order)
            })
            .collect()
    }

    fn delivered_orders(&self) -> Vec<i64> {
        let mut orders: Vec<i64> = self
            .deliveries()
            .into_iter()
            .map(|(_, order)| order)
            .collect();
        orders.sort_unstable();
        orders.dedup();
        orders
    }

    fn assert_each_packet_delivered_once(&self) {
        let mut count: HashMap<String, usize> = HashMap::new();
        for (id, _) in self.deliveries() {
            *count.entry(id).or_default() += 1;
        }
        let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    }

    async fn confirm(&self, ids: &[i64]) {
        self.client
            .call_method("sale.order", "action_confirm", Some(ids), Map::new(), None)
            .await
            .unwrap();
    }

    async fn shutdown(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown().await;
        }
    }
}

/// Waits (in real time, bounded) until `done` holds.
async fn wait_until(what: &str, done: impl AsyncFn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hint_that_beats_the_commit_is_polled_again_until_the_order_is_delivered() {
    let world = World::new(HintLimits::default()).await;
    world.install_hint().await;
    world.settle().await;
    let draft = world.drafts().await[0];
    let started = world.clock.now();

    // Odoo posts the webhook inside the transaction: held open here, the poll the hint
    // starts at once reads the order as it was.
    world.sim.hold_commits();
    let confirming = {
        let client = world.client.clone();
        tokio::spawn(async move {
            client
                .call_method(
                    "sale.order",
                    "action_confirm",
                    Some(&[draft]),
                    Map::new(),
                    None,
                )
                .await
        })
    };
    wait_until("the hinted poll", || async {
        world.hint_counts().polls >= 1
    })
    .await;
    let sent = world.sim.sent_webhooks();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].outcome, "202");
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["_model"], json!("sale.order"));
    assert_eq!(body["_id"], json!(draft));
    assert_eq!(body["state"], json!("sale"));
    assert!(
        !world.delivered_orders().contains(&draft),
        "read before the commit"
    );

    world.sim.release_commits();
    confirming.await.unwrap().unwrap();
    // The hint's next try, 0.2 s later, sees the committed order.
    world.advance(SignedDuration::from_millis(200)).await;
    wait_until("the order's delivery", || async {
        world.delivered_orders().contains(&draft)
    })
    .await;
    wait_until("the hint seen", || async { world.hint_counts().seen == 1 }).await;
    let counts = world.hint_counts();
    assert_eq!((counts.received, counts.given_up), (1, 0));
    assert_eq!(counts.polls, 2, "at once, then 0.2 s later: {counts:?}");
    assert!(
        world.clock.now().duration_since(started) < SignedDuration::from_secs(1),
        "delivered within the hint schedule, far from the 5-minute interval"
    );
    world.assert_each_packet_delivered_once();
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hints_coalesce_and_hints_and_polls_together_deliver_each_version_once() {
    let world = World::new(HintLimits::default()).await;
    world.install_hint().await;
    world.settle().await;
    let drafts = world.drafts().await;
    assert!(drafts.len() >= 5, "{drafts:?}");
    let before = world.sim.call_count("sale.order", "search_read");

    // One confirmation of every draft: one webhook per order, one transaction.
    let started = world.clock.now();
    world.confirm(&drafts).await;
    world
        .advance_until("every confirmed order", async || {
            drafts
                .iter()
                .all(|id| world.delivered_orders().contains(id))
        })
        .await;
    assert!(world.clock.now().duration_since(started) <= SignedDuration::from_secs(3));
    let counts = world.hint_counts();
    assert_eq!(counts.received, drafts.len() as u64);
    assert!(
        counts.polls < counts.received,
        "hints arriving during a poll wait for one more poll, not one each: {counts:?}"
    );
    assert!(world.sim.call_count("sale.order", "search_read") > before);

    // An update to a confirmed order (a hint), then the regular polls and the hints'
    // retries over the next minutes: each version of each order is delivered once.
    let updated = drafts[0];
    let mut vals = Map::new();
    vals.insert("client_order_ref".into(), json!("PO-HINT-1"));
    world
        .client
        .write("sale.order", &[updated], vals, None)
        .await
        .unwrap();
    world
        .advance_until("the update", async || {
            world
                .deliveries()
                .iter()
                .any(|(id, _)| id == &format!("{CONNECTION}_{updated}_v2"))
        })
        .await;
    for _ in 0..4 {
        world.advance(SignedDuration::from_millis(500)).await;
    }
    for _ in 0..(2 * INTERVAL / 5) {
        world.advance(SignedDuration::from_secs(5)).await;
    }
    world.assert_each_packet_delivered_once();
    let packets = world
        .store
        .packets(&PacketFilter {
            flow_id: Some(CONNECTION.to_owned()),
            status: None,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        packets.len(),
        world.deliveries().len(),
        "one packet per delivery"
    );
    world.shutdown().await;
}

async fn post_hint(url: &str, body: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_not_found_and_a_flood_is_rate_limited() {
    let limits = HintLimits {
        per_connection: governor::Quota::per_hour(NonZeroU32::new(1).unwrap())
            .allow_burst(NonZeroU32::new(3).unwrap()),
        ..HintLimits::default()
    };
    let world = World::new(limits).await;
    // Hints not enabled yet: no URL works.
    let body = r#"{"_model": "sale.order", "_id": 1}"#;
    let guess = hints::hint_url(&world.base_url, CONNECTION, &"0".repeat(48));
    assert_eq!(post_hint(&guess, body).await.0, 404);
    let url = world.install_hint().await;
    world.settle().await;
    let polls_before = world.sim.call_count("sale.order", "search_read");
    let token = url.rsplit('/').next().unwrap().to_owned();
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('a') { "b" } else { "a" });
    for refused in [
        hints::hint_url(&world.base_url, CONNECTION, &wrong),
        hints::hint_url(&world.base_url, CONNECTION, &token[..47]),
        hints::hint_url(&world.base_url, "ffffffffffffffff", &token),
        hints::hint_url(&world.base_url, "Hinted shop", &token),
    ] {
        assert_eq!(post_hint(&refused, body).await.0, 404, "{refused}");
    }
    assert_eq!(world.hint_counts().received, 0, "nothing triggered");
    assert_eq!(
        world.sim.call_count("sale.order", "search_read"),
        polls_before
    );

    // Three at once, then refused with Retry-After; unreadable bodies are hints too.
    assert_eq!(post_hint(&url, body).await.0, 202);
    assert_eq!(post_hint(&url, "not json").await.0, 202);
    assert_eq!(post_hint(&url, "").await.0, 202);
    let (status, retry_after) = post_hint(&url, body).await;
    assert_eq!(status, 429);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(world.hint_counts().received, 3);
    // The hint activity `connections show` and the TUI read: the first hint at once, the
    // others added up at most 5 s later.
    world.advance(SignedDuration::from_secs(5)).await;
    wait_until("the hint activity", async || {
        let activity = world.store.hint_activity().await.unwrap();
        activity.len() == 1 && activity[0].received == 3
    })
    .await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_hint_costs_latency_not_the_order() {
    let world = World::new(HintLimits::default()).await;
    world.install_hint().await;
    world.settle().await;
    // The rule posts where nothing listens (the daemon is down, a proxy drops it).
    let (_, token) = hints::enable(&world.store, CONNECTION, &world.base_url, world.clock.now())
        .await
        .unwrap();
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = hints::hint_url(
        &format!("http://{}", dead.local_addr().unwrap()),
        CONNECTION,
        token.expose(),
    );
    drop(dead);
    install::install(&world.client, CONNECTION, &dead_url, EventSet::default())
        .await
        .unwrap();
    let draft = world.drafts().await[0];
    let confirmed_at = world.clock.now();
    world.confirm(&[draft]).await;
    let sent = world.sim.sent_webhooks();
    assert!(
        sent.last().unwrap().outcome.starts_with("error"),
        "{sent:?}"
    );
    assert_eq!(world.hint_counts().received, 0);
    // The next regular poll, at most the interval and its 10 % jitter later, delivers it.
    for _ in 0..(INTERVAL * 6 / 5 / 5 + 1) {
        if world.clock.now().duration_since(confirmed_at) < SignedDuration::from_secs(200) {
            assert!(
                !world.delivered_orders().contains(&draft),
                "no hint, no early poll"
            );
        }
        world.advance(SignedDuration::from_secs(5)).await;
    }
    wait_until("the regular poll's delivery", || async {
        world.delivered_orders().contains(&draft)
    })
    .await;
    world.assert_each_packet_delivered_once();
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_uninstall_removes_the_rule() {
    let world = World::new(HintLimits::default()).await;
    let url = world.install_hint().await;
    let first = install::find(&world.client, CONNECTION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.webhook_url.as_deref(), Some(url.as_str()));
    assert!(first.active);
    let again = install::install(&world.client, CONNECTION, &url, EventSet::default())
        .await
        .unwrap();
    assert_eq!(
        again,
        install::Installed::Updated {
            rule_id: first.rule_id,
            action_id: first.action_id.unwrap()
        }
    );
    assert_eq!(
        world.sim.call_count("base.automation", "create"),
        1,
        "updated, not added"
    );
    // Editing the connection keeps its hint token.
    let mut connection = world.store.connection(CONNECTION).await.unwrap().unwrap();
    connection.polling_interval_seconds = 600;
    assert!(world.store.update_connection(&connection).await.unwrap());
    let flow = world.store.flow(None, CONNECTION).await.unwrap().unwrap();
    assert!(url.ends_with(hints::HintToken::of(&flow).unwrap().expose()));

    assert!(install::uninstall(&world.client, CONNECTION).await.unwrap());
    assert_eq!(
        install::find(&world.client, CONNECTION).await.unwrap(),
        None
    );
    assert!(!install::uninstall(&world.client, CONNECTION).await.unwrap());

    // An API user without the rights gets told what to give it.
    let access = odoo_sim::Access {
        readable: [
            "ir.model",
            "ir.model.fields",
            "base.automation",
            "ir.actions.server",
            "sale.order",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        writable: ["sale.order".to_owned()].into_iter().collect(),
    };
    world
        .sim
        .add_user("picker", "picker-api-key-000000000000", Some(access))
        .unwrap();
    let limited = OdooClient::new(ClientConfig::new(
        world._odoo.url(),
        world.sim.config().database.clone(),
        "picker".to_owned(),
        "picker-api-key-000000000000".to_owned(),
    ))
    .unwrap();
    match install::install(&limited, CONNECTION, &url, EventSet::default()).await {
        Err(error @ install::InstallError::Rights { .. }) => {
            assert!(
                error.to_string().contains("Administration: Settings"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }

    world.sim.uninstall_base_automation();
    match install::install(&world.client, CONNECTION, &url, EventSet::default()).await {
        Err(error @ install::InstallError::ModuleMissing) => {
            assert!(error.to_string().contains("Automation Rules"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    world.shutdown().await;
}
