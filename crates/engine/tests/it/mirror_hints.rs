//! The mirror's push hints end to end: the simulator's automation rule on `res.partner` posts
//! its webhook (before its transaction commits) to the mirror's hint route on a listener on
//! loopback, and the mirror's schedule (on a manual clock, a 5-minute interval) syncs the
//! model on the hint schedule into the embedded SQLite store.

use engine::clock::Clock;
use engine::config::MirrorConfig;
use engine::hints::install::{self, RuleSpec};
use engine::hints::mirror::MirrorHintReceiver;
use engine::hints::receive::HintLimits;
use engine::hints::{self, HintToken};
use engine::mirror_schedule::{MirrorSignals, Scheduler};
use engine::mirror_store::MirrorStore;
use engine::runtime::hints::HintCounts;
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ClientConfig, OdooClient, SearchReadOptions};
use odoo_sim::{DataSpec, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use store_sqlite::SqliteStore;
use tokio::sync::watch;

const PARTNERS: &str = "res.partner";
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
/// Five minutes: what is mirrored sooner came by a hint.
const INTERVAL: i64 = 300;

fn config(odoo_url: &str) -> MirrorConfig {
    let text = format!(
        "odoo:\n  base_url: \"{odoo_url}\"\n  database: odoo\n  username: admin\n\
         mirror:\n  interval_seconds: {INTERVAL}\n\
         hints:\n  token_env: MIRROR_HINT_TOKEN\n\
         models:\n  - name: res.partner\n    fields: [name, write_date]\n    hint: true\n\
         \x20 - name: res.country\n    fields: [name]\n"
    );
    MirrorConfig::parse(Path::new("mirror.yml"), &text).unwrap()
}

struct World {
    sim: OdooSim,
    _odoo: RunningSim,
    client: OdooClient,
    store: SqliteStore,
    clock: Clock,
    signals: MirrorSignals,
    /// The daemon's listener, serving the mirror's hint route.
    base_url: String,
    stop: watch::Sender<bool>,
    schedule: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                orders: 5,
                partners: 12,
                products: 4,
                seed: 41,
            },
        );
        let odoo = sim.clone().serve_on_loopback().await.unwrap();
        let sim_config = sim.config().clone();
        let client = OdooClient::new(ClientConfig::new(
            odoo.url(),
            sim_config.database.clone(),
            sim_config.admin_login.clone(),
            sim_config.admin_api_key.clone(),
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mirror.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let config = config(&odoo.url());
        let token = config
            .hint_token(|name| (name == "MIRROR_HINT_TOKEN").then(|| TOKEN.to_owned()))
            .unwrap()
            .unwrap();
        let clock = Clock::manual(Timestamp::now());
        let scheduler = Scheduler::new(config, clock.clone());
        let signals = scheduler.signals();
        let receiver =
            MirrorHintReceiver::new(token, signals.clone(), clock.clone(), HintLimits::default());
        let app = engine::http::layers(hints::mirror::routes(receiver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let (stop, stopped) = watch::channel(false);
        let schedule = {
            let client = client.clone();
            let store = store.clone();
            tokio::spawn(async move { scheduler.run(&client, &store, true, stopped).await })
        };
        let world = World {
            sim,
            _odoo: odoo,
            client,
            store,
            clock,
            signals,
            base_url,
            stop,
            schedule,
            _dir: dir,
        };
        // Every model's first sync starts at once.
        wait_until("the first sync", || async {
            let runs = world.store.runs(10).await.unwrap();
            runs.len() == 1 && runs[0].status.as_str() == "success"
        })
        .await;
        world
    }

    fn hint_url(&self) -> String {
        hints::mirror_hint_url(&self.base_url, PARTNERS, TOKEN)
    }

    /// Installs the rule on `res.partner`, posting to `url`.
    async fn install(&self, url: &str) {
        install::install_rule(&self.client, &RuleSpec::for_mirror(PARTNERS), url)
            .await
            .unwrap();
    }

    async fn partner_ids(&self) -> Vec<i64> {
        self.client
            .search(PARTNERS, &SearchReadOptions::default().order("id asc"))
            .await
            .unwrap()
    }

    async fn rename(&self, id: i64, name: &str) {
        let mut vals = Map::new();
        vals.insert("name".into(), json!(name));
        self.client
            .write(PARTNERS, &[id], vals, None)
            .await
            .unwrap();
    }

    /// The partner's name in the mirror.
    async fn mirrored_name(&self, id: i64) -> Option<String> {
        self.store
            .record(PARTNERS, id)
            .await
            .unwrap()
            .and_then(|record| record.payload["name"].as_str().map(str::to_owned))
    }

    async fn runs(&self) -> usize {
        self.store.runs(1000).await.unwrap().len()
    }

    fn counts(&self) -> HintCounts {
        self.signals.hint_counts(PARTNERS).unwrap()
    }

    async fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.schedule)
            .await
            .expect("the schedule stops when told")
            .unwrap();
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

async fn post(url: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hint_that_beats_the_commit_is_synced_again_until_the_record_is_mirrored() {
    let world = World::new().await;
    world.install(&world.hint_url()).await;
    let partner = world.partner_ids().await[0];
    let started = world.clock.now();
    let runs_before = world.runs().await;

    // Odoo posts the webhook inside the transaction: held open here, the sync the hint
    // starts at once reads the partner as it was.
    world.sim.hold_commits();
    let writing = {
        let client = world.client.clone();
        tokio::spawn(async move {
            let mut vals = Map::new();
            vals.insert("name".into(), json!("Renamed before commit"));
            client.write(PARTNERS, &[partner], vals, None).await
        })
    };
    wait_until("the hinted sync", || async { world.counts().polls >= 1 }).await;
    wait_until("the webhook's answer", || async {
        !world.sim.sent_webhooks().is_empty()
    })
    .await;
    let sent = world.sim.sent_webhooks();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].outcome, "202");
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["_model"], json!(PARTNERS));
    assert_eq!(body["_id"], json!(partner));
    assert!(body["write_date"].is_string(), "{body}");
    assert_ne!(
        world.mirrored_name(partner).await.as_deref(),
        Some("Renamed before commit"),
        "read before the commit"
    );
    assert_eq!(world.runs().await, runs_before + 1, "one sync, at once");

    world.sim.release_commits();
    writing.await.unwrap().unwrap();
    // The hint's next try, 0.2 s later, mirrors the committed write.
    world.advance(SignedDuration::from_millis(200)).await;
    wait_until("the record mirrored", || async {
        world.mirrored_name(partner).await.as_deref() == Some("Renamed before commit")
    })
    .await;
    wait_until("the hint seen", || async { world.counts().seen == 1 }).await;
    let counts = world.counts();
    assert_eq!((counts.received, counts.polls, counts.given_up), (1, 2, 0));
    assert!(
        world.clock.now().duration_since(started) < SignedDuration::from_secs(1),
        "mirrored within the hint schedule, far from the 5-minute interval"
    );
    // Only the hinted model was synced by the hints.
    let last = &world.store.runs(1).await.unwrap()[0];
    assert_eq!(last.status.as_str(), "success");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_a_model_without_hints_is_not_found_and_syncs_nothing() {
    let world = World::new().await;
    let runs_before = world.runs().await;
    let reads_before = world.sim.call_count(PARTNERS, "search_read");
    let body = r#"{"_model": "res.partner", "_id": 1}"#;
    let mut wrong = TOKEN.to_owned();
    wrong.replace_range(0..1, "f");
    for refused in [
        hints::mirror_hint_url(&world.base_url, PARTNERS, &wrong),
        hints::mirror_hint_url(&world.base_url, PARTNERS, &TOKEN[..47]),
        // Mirrored, but without `hint: true`.
        hints::mirror_hint_url(&world.base_url, "res.country", TOKEN),
        hints::mirror_hint_url(&world.base_url, "sale.order", TOKEN),
        // The connections' route is another one.
        format!("{}/hooks/odoo/{PARTNERS}/{TOKEN}", world.base_url),
    ] {
        assert_eq!(post(&refused, body).await, 404, "{refused}");
    }
    world.advance(SignedDuration::from_secs(5)).await;
    assert_eq!(world.counts().received, 0, "nothing triggered");
    assert_eq!(world.runs().await, runs_before);
    assert_eq!(world.sim.call_count(PARTNERS, "search_read"), reads_before);

    // The right URL, an unreadable body: still a hint, the model is synced at once.
    assert_eq!(post(&world.hint_url(), "not json").await, 202);
    wait_until("the hinted sync", || async {
        world.runs().await == runs_before + 1
    })
    .await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_hint_is_mirrored_by_the_intervals_sync() {
    let world = World::new().await;
    // The rule posts where nothing listens (the daemon is down, a proxy drops it).
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = hints::mirror_hint_url(
        &format!("http://{}", dead.local_addr().unwrap()),
        PARTNERS,
        TOKEN,
    );
    drop(dead);
    world.install(&dead_url).await;
    let partner = world.partner_ids().await[1];
    let written_at = world.clock.now();
    world.rename(partner, "Renamed, hint lost").await;
    let sent = world.sim.sent_webhooks();
    assert!(
        sent.last().unwrap().outcome.starts_with("error"),
        "{sent:?}"
    );
    for _ in 0..(INTERVAL / 5 + 2) {
        if world.clock.now().duration_since(written_at) < SignedDuration::from_secs(INTERVAL - 10) {
            assert_ne!(
                world.mirrored_name(partner).await.as_deref(),
                Some("Renamed, hint lost"),
                "no hint, no early sync"
            );
        }
        world.advance(SignedDuration::from_secs(5)).await;
    }
    wait_until("the interval's sync", || async {
        world.mirrored_name(partner).await.as_deref() == Some("Renamed, hint lost")
    })
    .await;
    assert_eq!(world.counts().received, 0);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_running_elsewhere_skips_the_cycle_and_the_next_hinted_try_mirrors() {
    let world = World::new().await;
    world.install(&world.hint_url()).await;
    let partner = world.partner_ids().await[2];
    let runs_before = world.runs().await;
    // Another process (a `sync` from cron) holds the run lock.
    let lock = world.store.try_lock().await.unwrap().unwrap();
    world.rename(partner, "Renamed while locked").await;
    wait_until("the skipped cycle", || async { world.counts().polls >= 1 }).await;
    assert_eq!(
        world.runs().await,
        runs_before,
        "nothing ran: the lock is taken"
    );
    world.store.unlock(lock).await.unwrap();
    world.advance(SignedDuration::from_millis(200)).await;
    wait_until("the record mirrored", || async {
        world.mirrored_name(partner).await.as_deref() == Some("Renamed while locked")
    })
    .await;
    wait_until("the hint seen", || async { world.counts().seen == 1 }).await;
    world.shutdown().await;
}

#[test]
fn the_mirror_route_cannot_be_taken_for_a_connections_route() {
    assert!(
        !hints::mirror::ROUTE.starts_with(&format!("{}/", hints::HINT_PATH_PREFIX)),
        "{}",
        hints::mirror::ROUTE
    );
    let token = HintToken::configured(TOKEN).unwrap();
    assert_eq!(
        hints::masked_mirror_hint_url("https://b.example", PARTNERS, &token),
        "https://b.example/hooks/odoo-mirror/res.partner/••••cdef"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_backs_off_while_the_others_keep_their_interval() {
    let world = World::new().await;
    world.install(&world.hint_url()).await;
    let started = world.clock.now();
    // Odoo refuses to read partners from now on; countries still read.
    world.sim.inject(
        odoo_sim::FaultRule::new(odoo_sim::Fault::OdooError {
            name: "odoo.exceptions.UserError".into(),
            message: "partners are being migrated".into(),
        })
        .on(PARTNERS, Some("search_read"))
        .always(),
    );
    // (seconds after the start, whether res.partner failed) of every run after the first.
    let attempts = async || -> Vec<(i64, bool)> {
        let mut runs = world.store.runs(1000).await.unwrap();
        runs.reverse();
        runs.iter()
            .skip(1)
            .map(|run| {
                // The store keeps microseconds, the clock nanoseconds.
                let at = run.started_at.duration_since(started).as_secs_f64().round() as i64;
                let partner_failed = run
                    .error
                    .as_deref()
                    .is_some_and(|error| error.contains(PARTNERS));
                (at, partner_failed)
            })
            .collect()
    };
    // When res.partner (failing) and res.country are tried, seconds after the start.
    let tries = [300, 600, 900, 1200];
    for step in 1..=(1300 / 25) {
        world.advance(SignedDuration::from_secs(25)).await;
        let now = step * 25;
        // A hint in a backoff does not cut it short.
        if now == 700 {
            world
                .rename(world.partner_ids().await[3], "During the backoff")
                .await;
            wait_until("the hint", || async { world.counts().received == 1 }).await;
        }
        // The cycles due by now have started before the clock moves on.
        let due = tries.iter().filter(|at| **at <= now).count();
        wait_until("the cycles due by now", || async {
            attempts().await.len() >= due
        })
        .await;
    }
    wait_until("the last try finished", || async {
        world.store.runs(1).await.unwrap()[0].status.as_str() != "running"
    })
    .await;
    assert_eq!(
        attempts().await,
        [(300, true), (600, true), (900, false), (1200, true)],
        "res.partner tried at its interval, then twice it, then four times; res.country on its interval"
    );
    assert_eq!(world.counts().received, 1);
    assert_eq!(
        world.counts().polls,
        1,
        "the hint waited for the 1 200 s try (no run in between, above)"
    );

    // Odoo reads partners again: the next try (2 400 s) mirrors, and the hint is served.
    world.sim.clear_faults();
    for _ in 0..(1300 / 25) {
        world.advance(SignedDuration::from_secs(25)).await;
    }
    let partner = world.partner_ids().await[3];
    wait_until("the partner mirrored after the backoff", || async {
        world.mirrored_name(partner).await.as_deref() == Some("During the backoff")
    })
    .await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_mirror_hints_is_rate_limited_per_model() {
    // The route alone, its schedule not running: what the hints would make due.
    let config = config("http://127.0.0.1:8069");
    let clock = Clock::manual(Timestamp::now());
    let scheduler = Scheduler::new(config, clock.clone());
    let signals = scheduler.signals();
    let limits = HintLimits {
        per_connection: governor::Quota::per_hour(std::num::NonZeroU32::new(1).unwrap())
            .allow_burst(std::num::NonZeroU32::new(3).unwrap()),
        ..HintLimits::default()
    };
    let token = HintToken::configured(TOKEN).unwrap();
    let app = engine::http::layers(hints::mirror::routes(MirrorHintReceiver::new(
        token,
        signals.clone(),
        clock,
        limits,
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let url = hints::mirror_hint_url(&base_url, PARTNERS, TOKEN);
    let body = r#"{"_model": "res.partner", "_id": 7, "write_date": "2026-12-07 03:34:01.269912"}"#;
    for _ in 0..3 {
        assert_eq!(post(&url, body).await, 202);
    }
    let refused = reqwest::Client::new()
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let counts = signals.hint_counts(PARTNERS).unwrap();
    assert_eq!(counts.received, 3, "the refused one is not taken");
    assert_eq!(counts.polls, 0);
    // A 404 for a wrong token is still a 404 during the flood: nothing about the limit leaks.
    let wrong = hints::mirror_hint_url(&base_url, PARTNERS, &"1".repeat(48));
    assert_eq!(post(&wrong, body).await, 404);
}
