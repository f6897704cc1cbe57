//! `odoo-bridge-bench hints`: how long an order confirmed in Odoo takes to reach the webhook
//! receiver, with Odoo push hints and with polling only, in one run. Printed, never asserted.
//!
//! For each mode, on loopback: a simulated Odoo in this process (its automation rule posts
//! the hint before its transaction commits, as Odoo does) or, with `--real-odoo`, a fresh
//! copy of the test machine's real Odoo 18 database, `odoo-bridge run` as a child
//! process on a scratch SQLite store, and a receiver in this process noting when each order's
//! first delivery arrives. Orders are confirmed one at a time with `action_confirm` over
//! JSON-RPC; an order's latency runs from the start of that call to its delivery.
//!
//! Polling only at a 5-minute interval would take minutes per order, so that mode polls at
//! `--polling-interval` (15 s by default) and the table adds what 5 minutes means: a change
//! waits for the next poll, uniformly over the interval.

use crate::child::ChildProcess;
use crate::delivery::{ProductBinary, quantile};
use crate::exit::{Failure, failure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use clap::Args;
use engine::connection_form::{new_connection_id, new_webhook_secret};
use engine::hints::{self, install};
use engine::mirror_store::MirrorStore as _;
use engine::order_delivery::{ApiKey, Connection, ConnectionStore as _, EventSet, WebhookSecret};
use jiff::Timestamp;
use odoo_rpc::{ClientConfig, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct HintsArgs {
    /// Orders confirmed in each mode, one at a time.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=500))]
    orders: u64,
    /// Poll interval of the connection with hints, seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    interval: u32,
    /// Poll interval of the connection without hints, seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=600))]
    polling_interval: u32,
    /// Pause between two confirmations, milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    spacing_ms: u64,
    /// Against the test machine's real Odoo 18 (`ODOO18_URL` and its companions; a fresh copy
    /// of its database per mode, dropped afterwards) instead of the simulator, with new
    /// quotations made for the run.
    #[arg(long)]
    real_odoo: bool,
    /// The most one mode may take once its orders are confirmed, seconds: orders not
    /// delivered by then are counted as missing.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    deadline: u64,
    #[command(flatten)]
    product: ProductBinary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hints,
    Polling,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Hints => "push hints",
            Mode::Polling => "polling only",
        }
    }
}

/// First arrival of each order's delivery.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<i64, Instant>>>);

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn arrived(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let order = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| {
            body["order"]["platform_order_id"]
                .as_str()
                .and_then(|id| id.parse::<i64>().ok())
        });
    if let Some(order) = order {
        arrivals.lock().entry(order).or_insert(now);
    }
    StatusCode::OK
}

struct Figures {
    mode: Mode,
    interval: u32,
    confirmed: usize,
    latencies: Vec<f64>,
    /// Webhooks the simulator posted (a real Odoo's are not counted here).
    hints_posted: Option<usize>,
}

pub async fn hints(args: HintsArgs) -> Result<(), Failure> {
    let product = args.product.resolve()?;
    let mut rows = Vec::new();
    for mode in [Mode::Hints, Mode::Polling] {
        rows.push(run_mode(&product, &args, mode).await?);
    }
    say!(
        "{:<14}{:>10}{:>8}{:>11}{:>10}{:>10}{:>10}{:>8}",
        "mode",
        "interval",
        "orders",
        "delivered",
        "p50",
        "p99",
        "max",
        "hints"
    );
    for row in &rows {
        let sorted = {
            let mut values = row.latencies.clone();
            values.sort_by(f64::total_cmp);
            values
        };
        let seconds =
            |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} s"));
        say!(
            "{:<14}{:>10}{:>8}{:>11}{:>10}{:>10}{:>10}{:>8}",
            row.mode.name(),
            format!("{} s", row.interval),
            row.confirmed,
            sorted.len(),
            seconds(quantile(&sorted, 0.5)),
            seconds(quantile(&sorted, 0.99)),
            seconds(sorted.last().copied()),
            row.hints_posted
                .map_or_else(|| "n/a".to_owned(), |count| count.to_string())
        );
    }
    say!(
        "polling only at {} s waits for the next poll, uniformly over the interval: p50 ≈ {:.0} s, p99 ≈ {:.0} s",
        args.interval,
        f64::from(args.interval) * 0.5,
        f64::from(args.interval) * 0.99
    );
    say!(
        "latency: from the start of action_confirm (JSON-RPC) to the order's delivery at the receiver; {}, `odoo-bridge run` on SQLite, all on loopback",
        if args.real_odoo {
            "the real Odoo 18"
        } else {
            "simulated Odoo"
        }
    );
    Ok(())
}

async fn run_mode(product: &Path, args: &HintsArgs, mode: Mode) -> Result<Figures, Failure> {
    let wanted = usize::try_from(args.orders).map_err(failure)?;
    let odoo = OdooUnderTest::start(args.real_odoo, wanted, mode).await?;
    let client = odoo.client()?;
    let drafts = odoo.quotations(&client, wanted).await?;
    let backfill = client
        .search_count("sale.order", &field("state").eq("sale"), None)
        .await
        .map_err(failure)?;
    let backfill = usize::try_from(backfill).map_err(failure)?;

    let arrivals = Arrivals::default();
    let app = axum::Router::new()
        .route("/orders", axum::routing::post(arrived))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(failure)?;
    let receiver_url = format!("http://{}/orders", listener.local_addr().map_err(failure)?);
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!(
        "odoo-bridge-bench-hints-{}-{}",
        std::process::id(),
        mode.name().replace(' ', "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(failure)?;
    let store_path = dir.join("bridge.db");
    let store = store_sqlite::SqliteStore::open(&store_path)
        .await
        .map_err(failure)?;
    store.migrate().await.map_err(failure)?;
    let interval = match mode {
        Mode::Hints => args.interval,
        Mode::Polling => args.polling_interval,
    };
    let now = Timestamp::now();
    let connection = Connection {
        id: new_connection_id(),
        tenant_id: new_connection_id(),
        name: format!("bench-{}", mode.name().replace(' ', "-")),
        odoo_url: odoo.url.clone(),
        odoo_db: odoo.database.clone(),
        odoo_username: odoo.login.clone(),
        odoo_api_key: ApiKey::new(odoo.api_key.clone()),
        webhook_url: receiver_url,
        webhook_secret: WebhookSecret::new(new_webhook_secret()).map_err(failure)?,
        store_id: "store_bench".into(),
        client_id: "client_bench".into(),
        polling_interval_seconds: interval,
        odoo_min_delay_ms: 0,
        is_active: true,
        events: EventSet::default(),
        last_sync_at: None,
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    store
        .insert_connection(&connection)
        .await
        .map_err(failure)?;
    // A free port for the daemon's listener, which the hint URL names.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(failure)?;
        probe.local_addr().map_err(failure)?.port()
    };
    let base_url = format!("http://127.0.0.1:{port}");
    if mode == Mode::Hints {
        let (_, token) = hints::enable(&store, &connection.id, &base_url, now)
            .await
            .map_err(failure)?;
        let url = hints::hint_url(&base_url, &connection.id, token.expose());
        install::install(&client, &connection.id, &url, EventSet::default())
            .await
            .map_err(failure)?;
    }
    store.close().await;

    let daemon = start_daemon(product, &store_path, &dir, port)?;
    let waited = wait_for(Duration::from_secs(120), || {
        arrivals.lock().len() >= backfill
    })
    .await;
    if !waited {
        daemon.stop().await;
        return Err(failure(format!(
            "the backfill of {backfill} orders was not delivered within 120 s; see {}",
            dir.join("daemon.log").display()
        )));
    }
    tracing::info!(
        mode = mode.name(),
        backfill,
        "backfill delivered; confirming orders"
    );
    let webhooks_before = odoo.sent_webhooks();
    let mut started: Vec<(i64, Instant)> = Vec::with_capacity(wanted);
    for order in drafts.iter().take(wanted) {
        let at = Instant::now();
        client
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[*order]),
                Map::new(),
                None,
            )
            .await
            .map_err(failure)?;
        started.push((*order, at));
        tokio::time::sleep(Duration::from_millis(args.spacing_ms)).await;
    }
    let all = |arrivals: &Arrivals| {
        let arrived = arrivals.lock();
        started.iter().all(|(order, _)| arrived.contains_key(order))
    };
    wait_for(Duration::from_secs(args.deadline), || all(&arrivals)).await;
    daemon.stop().await;
    receiver.abort();
    let arrived = arrivals.lock().clone();
    let latencies = started
        .iter()
        .filter_map(|(order, at)| {
            arrived
                .get(order)
                .map(|done| done.duration_since(*at).as_secs_f64())
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figures {
        mode,
        interval,
        confirmed: started.len(),
        latencies,
        hints_posted: odoo
            .sent_webhooks()
            .zip(webhooks_before)
            .map(|(after, before)| after - before),
    })
}

fn start_daemon(
    product: &Path,
    store: &PathBuf,
    dir: &Path,
    port: u16,
) -> Result<ChildProcess, Failure> {
    let log = std::fs::File::create(dir.join("daemon.log"))
        .map_err(|e| failure(format!("cannot create the daemon's log file: {e}")))?;
    let errors = log
        .try_clone()
        .map_err(|e| failure(format!("cannot share the daemon's log file: {e}")))?;
    let mut command = Command::new(product);
    command
        .args(["--log-level", "info", "--log-format", "json"])
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reload-every",
            "1",
        ])
        .env_remove("ODOO_BRIDGE_LOG_LEVEL")
        .env_remove("POLLER_LOG_LEVEL")
        .env_remove("ODOO_BRIDGE_LISTEN")
        .env_remove("DATABASE_URL")
        .env("POLLER_DB_PATH", store)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(errors));
    Ok(ChildProcess::spawn("daemon", command, false)?.stopped_by_sigterm())
}

/// Polls `done` every 20 ms until it holds or `within` has passed; whether it held.
async fn wait_for(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The Odoo a mode runs against: a simulator served from this process, or a fresh copy of
/// the real Odoo 18's database.
struct OdooUnderTest {
    url: String,
    database: String,
    login: String,
    api_key: String,
    sim: Option<(OdooSim, odoo_sim::RunningSim)>,
    _fresh: Option<odoo_sim::real_odoo::FreshDb>,
}

impl OdooUnderTest {
    async fn start(real: bool, wanted: usize, mode: Mode) -> Result<OdooUnderTest, Failure> {
        if real {
            let odoo = odoo_sim::real_odoo::RealOdoo::from_env("the hints benchmark")
                .ok_or_else(|| failure("--real-odoo needs ODOO18_URL (and ODOO18_DB, ODOO18_LOGIN, ODOO18_API_KEY)"))?;
            let fresh = odoo
                .fresh_db(&format!("bench_{}", mode.name().replace(' ', "_")))
                .map_err(failure)?;
            return Ok(OdooUnderTest {
                url: odoo.url.clone(),
                database: fresh.name().to_owned(),
                login: odoo.login.clone(),
                api_key: odoo.api_key.clone(),
                sim: None,
                _fresh: Some(fresh),
            });
        }
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                seed: 14,
                partners: 20,
                products: 10,
                orders: (wanted * 6).max(60),
            },
        );
        let running = sim
            .clone()
            .serve_on_loopback()
            .await
            .map_err(|e| failure(format!("cannot serve the simulator: {e}")))?;
        let config = sim.config().clone();
        Ok(OdooUnderTest {
            url: running.url(),
            database: config.database,
            login: config.admin_login,
            api_key: config.admin_api_key,
            sim: Some((sim, running)),
            _fresh: None,
        })
    }

    fn client(&self) -> Result<OdooClient, Failure> {
        OdooClient::new(ClientConfig::new(
            self.url.clone(),
            self.database.clone(),
            self.login.clone(),
            ApiKey::new(self.api_key.clone()),
        ))
        .map_err(failure)
    }

    /// `wanted` quotations to confirm: the simulator's generated ones, or new ones (a
    /// customer and a product of the demo data, one line) on the real Odoo.
    async fn quotations(&self, client: &OdooClient, wanted: usize) -> Result<Vec<i64>, Failure> {
        if self.sim.is_some() {
            let drafts: Vec<i64> = client
                .search(
                    "sale.order",
                    &SearchReadOptions::new(field("state").is_in(["draft", "sent"]))
                        .order("id asc"),
                )
                .await
                .map_err(failure)?;
            if drafts.len() < wanted {
                return Err(failure(format!(
                    "the simulator has {} quotations, fewer than --orders {wanted}",
                    drafts.len()
                )));
            }
            return Ok(drafts.into_iter().take(wanted).collect());
        }
        let first = |model: &'static str, domain: odoo_rpc::Domain| async move {
            client
                .search(
                    model,
                    &SearchReadOptions::new(domain).order("id asc").limit(1),
                )
                .await
                .map_err(failure)?
                .first()
                .copied()
                .ok_or_else(|| {
                    failure(format!(
                        "the real Odoo has no {model} to make quotations with"
                    ))
                })
        };
        let partner = first("res.partner", field("customer_rank").gt(0)).await?;
        let product = first("product.product", field("sale_ok").eq(true)).await?;
        let vals: Vec<Map<String, Value>> = (0..wanted)
            .map(|_| {
                let mut vals = Map::new();
                vals.insert("partner_id".into(), serde_json::json!(partner));
                vals.insert(
                    "order_line".into(),
                    serde_json::json!([[0, 0, {"product_id": product, "product_uom_qty": 1}]]),
                );
                vals
            })
            .collect();
        client
            .create("sale.order", vals, None)
            .await
            .map_err(failure)
    }

    fn sent_webhooks(&self) -> Option<usize> {
        self.sim.as_ref().map(|(sim, _)| sim.sent_webhooks().len())
    }
}
