//! Odoo push hints through the real binary: `connections install-hint` / `show` /
//! `uninstall-hint` against the simulator and the real Odoo 18, and `odoo-bridge run`
//! delivering an order confirmed in Odoo within seconds although its connection polls every
//! five minutes.
//!
//! Waits are on conditions, bounded by [`TIMEOUT`]; the one bound on elapsed time (an order
//! delivered well before the 300 s interval) only gets looser on a slow machine.

use crate::delivery_daemon::{Daemon, Place, sim_key, text, wait_until};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, field};
use odoo_sim::real_odoo::RealOdoo;
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Five minutes between polls: what arrives sooner came by a hint.
const INTERVAL: &str = "300";

/// A loopback HTTP server recording what is posted to it (order deliveries, or Odoo's raw
/// webhooks), answering 200.
#[derive(Clone, Default)]
struct Recorder {
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn record(State(recorder): State<Recorder>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    recorder.bodies.lock().unwrap().push(value);
    StatusCode::OK
}

impl Recorder {
    async fn start() -> (Recorder, String) {
        let recorder = Recorder::default();
        let app = axum::Router::new()
            .route("/{*path}", post(record))
            .with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (recorder, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Deliveries per order id.
    fn orders(&self) -> BTreeMap<i64, usize> {
        let mut orders = BTreeMap::new();
        for body in self.bodies() {
            if let Some(id) = body["order"]["platform_order_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
            {
                *orders.entry(id).or_default() += 1;
            }
        }
        orders
    }
}

fn client(url: &str, db: &str, login: &str, key: &str) -> OdooClient {
    OdooClient::new(ClientConfig::new(
        url,
        db,
        login,
        ApiKey::from(key.to_owned()),
    ))
    .unwrap()
}

async fn drafts(odoo: &OdooClient) -> Vec<i64> {
    odoo.search(
        "sale.order",
        &SearchReadOptions::new(field("state").is_in(["draft", "sent"])).order("id asc"),
    )
    .await
    .unwrap()
}

async fn confirm(odoo: &OdooClient, id: i64) {
    odoo.call_method(
        "sale.order",
        "action_confirm",
        Some(&[id]),
        Map::new(),
        None,
    )
    .await
    .unwrap();
}

/// `connections add NAME` polling every [`INTERVAL`] seconds; returns the connection's id.
async fn add(
    place: &Place,
    name: &str,
    odoo_url: &str,
    db: &str,
    login: &str,
    key: &str,
    webhook: &str,
) -> String {
    let args = [
        "connections",
        "add",
        "--name",
        name,
        "--odoo-url",
        odoo_url,
        "--odoo-db",
        db,
        "--odoo-username",
        login,
        "--webhook-url",
        webhook,
        "--store-id",
        "s1",
        "--client-id",
        "c1",
        "--interval",
        INTERVAL,
        "--json",
    ];
    let mut command = place.command(&args);
    command.env("ODOO_API_KEY", key);
    let output = place.output(command, &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let added: Value = serde_json::from_slice(&output.stdout).unwrap();
    added["id"].as_str().unwrap().to_owned()
}

async fn odoo_bridge(place: &Place, args: &[&str]) -> (Option<i32>, String, String) {
    let output = place.output(place.command(args), args).await;
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_hint_makes_the_daemon_deliver_a_confirmation_in_seconds() {
    let sim = OdooSim::with_data(
        SimConfig::default(),
        &DataSpec {
            seed: 21,
            partners: 10,
            products: 8,
            orders: 25,
        },
    );
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let odoo = client(&running.url(), "odoo", "admin", &sim_key());
    let (deliveries, receiver) = Recorder::start().await;
    let place = Place::sqlite();
    let id = add(
        &place,
        "Shop",
        &running.url(),
        "odoo",
        "admin",
        &sim_key(),
        &format!("{receiver}/orders"),
    )
    .await;
    let daemon = Daemon::start(&place, "hinted").await;
    let base_url = format!("http://{}", daemon.address());

    // Bad input: a base URL Odoo cannot post to; an Odoo without the app.
    let (code, _, stderr) = odoo_bridge(
        &place,
        &[
            "connections",
            "install-hint",
            "Shop",
            "--base-url",
            "bridge.example.com",
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--base-url"), "{stderr}");

    let install = [
        "connections",
        "install-hint",
        "Shop",
        "--base-url",
        &base_url,
        "--json",
    ];
    let installed = place.json(&install).await;
    assert_eq!(installed["rule"], "created", "{installed}");
    assert!(
        installed["hint_url"].as_str().unwrap().contains("••••"),
        "{installed}"
    );
    let again = place.json(&install).await;
    assert_eq!(again["rule"], "updated", "run twice, one rule: {again}");
    assert_eq!(again["rule_id"], installed["rule_id"]);
    assert_eq!(sim.call_count("base.automation", "create"), 1);

    let shown = place.json(&["connections", "show", "Shop", "--json"]).await;
    assert_eq!(shown["hint"]["rule"], "installed", "{shown}");
    assert_eq!(shown["hint"]["enabled"], true);
    let revealed = place
        .json(&["connections", "show", "Shop", "--json", "--reveal-secret"])
        .await;
    let hint_url = revealed["hint"]["url"].as_str().unwrap().to_owned();
    assert!(
        hint_url.starts_with(&format!("{base_url}/hooks/odoo/{id}/")),
        "{hint_url}"
    );
    let text_show = odoo_bridge(&place, &["connections", "show", "Shop"])
        .await
        .1;
    assert!(
        text_show.contains("push hint") && text_show.contains("installed"),
        "{text_show}"
    );
    assert!(
        !text_show.contains(hint_url.rsplit('/').next().unwrap()),
        "the token is masked"
    );

    // The backfill, then a confirmation: delivered long before the next poll.
    let confirmed = odoo
        .search(
            "sale.order",
            &SearchReadOptions::new(field("state").eq("sale")),
        )
        .await
        .unwrap()
        .len();
    wait_until("the backfill", || async {
        deliveries.orders().len() == confirmed
    })
    .await;
    let draft = drafts(&odoo).await[0];
    let started = Instant::now();
    confirm(&odoo, draft).await;
    wait_until("the hinted delivery", || async {
        deliveries.orders().contains_key(&draft)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "delivered by the hint, not the 300 s poll: {:?}",
        started.elapsed()
    );
    let sent = sim.sent_webhooks();
    assert_eq!(sent.last().unwrap().outcome, "202", "{sent:?}");
    wait_until("the hint activity", || async {
        let shown = place.json(&["connections", "show", "Shop", "--json"]).await;
        shown["hint"]["received"].as_u64().unwrap_or(0) >= 1
            && shown["hint"]["last_received_at"].is_string()
    })
    .await;
    assert!(
        deliveries.orders().values().all(|count| *count == 1),
        "{:?}",
        deliveries.orders()
    );

    // Uninstalled: the rule is gone from Odoo and the old URL refused.
    let removed = place
        .json(&["connections", "uninstall-hint", "Shop", "--json"])
        .await;
    assert_eq!(removed["rule_removed"], true, "{removed}");
    assert_eq!(sim.call_count("base.automation", "unlink"), 1);
    let path = hint_url.strip_prefix(&base_url).unwrap();
    assert_eq!(
        daemon
            .post(path, &[], r#"{"_model": "sale.order", "_id": 1}"#)
            .await,
        404
    );
    let shown = place.json(&["connections", "show", "Shop", "--json"]).await;
    assert_eq!(shown["hint"]["enabled"], false, "{shown}");

    sim.uninstall_base_automation();
    let (code, _, stderr) = odoo_bridge(
        &place,
        &[
            "connections",
            "install-hint",
            "Shop",
            "--base-url",
            &base_url,
        ],
    )
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("Automation Rules") && stderr.contains("base_automation"),
        "{stderr}"
    );
    assert!(
        !place.printed().contains(&sim_key()),
        "the API key never printed"
    );
    assert!(daemon.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_hint_on_the_real_odoo_18_posts_from_action_confirm() {
    let Some(real) = RealOdoo::from_env("install-hint and the webhook of action_confirm") else {
        return;
    };
    let db = real.fresh_db("hints").unwrap();
    let odoo = client(&real.url, db.name(), &real.login, &real.api_key);
    let (deliveries, receiver) = Recorder::start().await;
    let place = Place::sqlite();
    let id = add(
        &place,
        "Real",
        &real.url,
        db.name(),
        &real.login,
        &real.api_key,
        &format!("{receiver}/orders"),
    )
    .await;

    // First the rule posts to a bare loopback listener, to see Odoo's own webhook.
    let (raw, raw_url) = Recorder::start().await;
    let installed = place
        .json(&[
            "connections",
            "install-hint",
            "Real",
            "--base-url",
            &raw_url,
            "--json",
        ])
        .await;
    assert_eq!(installed["rule"], "created", "{installed}");
    let draft = drafts(&odoo).await[0];
    confirm(&odoo, draft).await;
    // Odoo posts while its transaction runs, so the hint is there when the call returns.
    let bodies = raw.bodies();
    assert!(!bodies.is_empty(), "the real Odoo posted nothing");
    for body in &bodies {
        assert_eq!(body["_model"], "sale.order", "{body}");
        assert_eq!(body["_id"], draft, "{body}");
        assert_eq!(body["state"], "sale", "{body}");
    }

    // Then to the daemon: the next confirmation arrives by the hint, not the 300 s poll.
    let daemon = Daemon::start(&place, "real-hints").await;
    let base_url = format!("http://{}", daemon.address());
    let updated = place
        .json(&[
            "connections",
            "install-hint",
            "Real",
            "--base-url",
            &base_url,
            "--json",
        ])
        .await;
    assert_eq!(updated["rule"], "updated", "{updated}");
    assert_eq!(updated["rule_id"], installed["rule_id"]);
    let shown = place.json(&["connections", "show", "Real", "--json"]).await;
    assert_eq!(shown["hint"]["rule"], "installed", "{shown}");
    wait_until("the backfill", || async {
        deliveries.orders().contains_key(&draft)
    })
    .await;
    let next = drafts(&odoo).await[0];
    let started = Instant::now();
    confirm(&odoo, next).await;
    wait_until("the hinted delivery", || async {
        deliveries.orders().contains_key(&next)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "{:?}",
        started.elapsed()
    );
    assert!(
        deliveries.orders().values().all(|count| *count == 1),
        "{:?}",
        deliveries.orders()
    );

    let removed = place
        .json(&["connections", "uninstall-hint", "Real", "--json"])
        .await;
    assert_eq!(removed["rule_removed"], true, "{removed}");
    let left = odoo
        .search(
            "base.automation",
            &SearchReadOptions::new(
                field("name").eq(format!("odoo-bridge push hint ({id})").as_str()),
            )
            .context(odoo_rpc::Context::new().active_test(false)),
        )
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(daemon.terminate().await.success());
}
