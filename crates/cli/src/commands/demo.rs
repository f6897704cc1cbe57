//! `odoo-bridge demo`: odoo-bridge end to end with nothing installed — a simulated Odoo on a
//! free loopback port, then
//! 1. the mirror: seed 003's example configuration pointed at it, a full mirror into the
//!    embedded SQLite file, a few changes in Odoo and an incremental run;
//! 2. order delivery: one connection, a webhook receiver on loopback that checks every
//!    signature, confirmed orders delivered as webhooks, then an update and a cancellation;
//! 3. the marketplace: a simulated Cartona on loopback, one of its orders imported into Odoo,
//!    confirmed there through Odoo's workflow, and `approved` pushed back to Cartona;
//! 4. enrichment: custom fields on crm.lead, a matching service on loopback, one job.

use crate::commands::sync::{mirror_failure, progress_reporter};
use crate::exit::{Exit, Failure, exit_for};
use clap::Args;
use engine::clock::Clock;
use engine::config::MirrorConfig;
use engine::connection_form;
use engine::marketplace::odoo_order::{Workflow, WorkflowError};
use engine::marketplace::{MarketplaceDraft, MarketplaceRegistry};
use engine::mirror::{self, RunOptions, RunReport};
use engine::mirror_store::MirrorStore;
use engine::order_delivery::{Connection, ConnectionStore, EventSet};
use engine::runtime::{FlowSignals, Runtime, RuntimeConfig};
use engine::store::{MarketplaceStore, StoreError, SyncLogStore};
use engine::webhook::{Verifier, WebhookSecret};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, field};
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::{DataSpec, OdooSim, OdooVersion, SimConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Seed 003's example configuration, verbatim; the demo points it at the simulator.
const SEED_EXAMPLE: &str = include_str!("../../../../examples/mirror.yml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Odoo release the simulator impersonates: 16, 17, 18, saas-18.2 or 19.
    #[arg(long = "odoo-version", default_value = "18", value_parser = parse_version)]
    odoo_version: OdooVersion,
    /// Number of generated sale orders.
    #[arg(long, default_value_t = 500)]
    orders: usize,
    /// Where the demo writes its configuration and its SQLite mirror.
    #[arg(long, default_value = "./data/demo")]
    dir: PathBuf,
}

fn parse_version(text: &str) -> Result<OdooVersion, String> {
    text.parse()
}

/// The example with its `postgres` section replaced by the embedded SQLite file.
fn demo_config(url: &str, database: &str, login: &str, sqlite: &Path) -> Result<String, Failure> {
    let section = |name: &str| {
        SEED_EXAMPLE.find(name).ok_or_else(|| {
            Failure::new(
                Exit::Failure,
                anyhow::anyhow!("examples/mirror.yml has no `{name}` section"),
            )
        })
    };
    let (postgres, sync) = (section("\npostgres:")?, section("\nsync:")?);
    let text = format!(
        "{}\n# The demo mirrors into the embedded SQLite file instead of PostgreSQL.\nsqlite:\n  path: {:?}\n{}",
        &SEED_EXAMPLE[..postgres],
        sqlite.display().to_string(),
        &SEED_EXAMPLE[sync..]
    );
    Ok(text
        .replace("\"https://your-odoo-host\"", &format!("{url:?}"))
        .replace("\"odoo_db\"", &format!("{database:?}"))
        .replace("\"connector_user\"", &format!("{login:?}")))
}

pub async fn run(args: DemoArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    let sim_config = SimConfig {
        version: args.odoo_version,
        ..SimConfig::default()
    };
    let spec = DataSpec {
        orders: args.orders,
        partners: (args.orders / 2).max(10),
        products: 30,
        seed: 42,
    };
    let sim = OdooSim::with_data(sim_config.clone(), &spec);
    let running = sim
        .clone()
        .serve_on_loopback()
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    say!(
        "Simulated Odoo {} on {} (database {:?}, {} sale orders)",
        sim_config.version.server_version(),
        running.url(),
        sim_config.database,
        args.orders
    );
    let outcome = mirror_demo(&args, &sim_config, &running.url()).await;
    let delivered = match &outcome {
        Ok(_) => delivery_demo(&args, &sim_config, &running.url()).await,
        Err(_) => Ok(0),
    };
    let round_trip = match (&outcome, &delivered) {
        (Ok(_), Ok(_)) => marketplace_demo(&args, &sim_config, &running.url()).await,
        _ => Ok(false),
    };
    let enriched = match (&outcome, &delivered) {
        (Ok(_), Ok(_)) => {
            crate::commands::enrich::demo(&args.dir, &running.url(), &sim_config).await
        }
        _ => Ok(0),
    };
    running.shutdown().await;
    let (first, second, database) = outcome?;
    let delivered = delivered?;
    let round_trip = round_trip?;
    let enriched = enriched?;
    say!(
        "\nDone in {:.1} s: {} rows mirrored into {}, {delivered} webhooks delivered and verified, {enriched} records enriched ({} calls to Odoo).",
        started.elapsed().as_secs_f64(),
        first
            .models
            .iter()
            .map(|model| model.inserted + model.updated + model.unchanged)
            .sum::<u64>(),
        database.display(),
        sim.total_calls()
    );
    say!(
        "Look inside: sqlite3 {} \"select model, count(*) from odoo_raw_records group by model\"",
        database.display()
    );
    say!(
        "             POLLER_DB_PATH={} odoo-bridge logs   (also: retries list --status delivered)",
        args.dir.join("delivery.db").display()
    );
    let failed = first
        .models
        .iter()
        .chain(&second.models)
        .any(|model| model.error.is_some());
    Ok(if failed || !round_trip {
        Exit::PartialFailure
    } else {
        Exit::Success
    })
}

async fn mirror_demo(
    args: &DemoArgs,
    sim_config: &SimConfig,
    url: &str,
) -> Result<(RunReport, RunReport, PathBuf), Failure> {
    std::fs::create_dir_all(&args.dir).map_err(|error| {
        Failure::new(
            Exit::Failure,
            anyhow::anyhow!("cannot create {}: {error}", args.dir.display()),
        )
    })?;
    let database = args.dir.join("mirror.db");
    let config_path = args.dir.join("mirror.yml");
    let text = demo_config(
        url,
        &sim_config.database,
        &sim_config.admin_login,
        &database,
    )?;
    std::fs::write(&config_path, text).map_err(|error| {
        Failure::new(
            Exit::Failure,
            anyhow::anyhow!("cannot write {}: {error}", config_path.display()),
        )
    })?;
    let config =
        MirrorConfig::load(&config_path).map_err(|error| Failure::new(Exit::Config, error))?;
    say!(
        "Configuration: {} (seed 003's example, pointed at the simulator)",
        config_path.display()
    );
    let key = ApiKey::new(sim_config.admin_api_key.clone());
    let client = OdooClient::new(ClientConfig::new(
        url,
        sim_config.database.clone(),
        sim_config.admin_login.clone(),
        key,
    ))
    .map_err(|error| Failure::new(exit_for(&error), error))?;
    let store = store_sqlite::SqliteStore::open(&database)
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    store
        .migrate()
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let progress = progress_reporter();
    // The simulator's data is new on every demo: read it all, whatever an earlier demo left.
    let full = RunOptions {
        full: true,
        use_lock: true,
        retention_days: config.sync.run_retention_days,
        ..RunOptions::default()
    };
    let timer = Instant::now();
    let first = mirror::run(&client, &store, &config.models, &full, progress.as_ref())
        .await
        .map_err(mirror_failure)?;
    say!(
        "\nFull mirror into {} in {:.2} s:",
        database.display(),
        timer.elapsed().as_secs_f64()
    );
    print_report(&first);

    let changed = change_some_orders(&client).await?;
    say!("\nIn Odoo: confirmed {changed} quotations. Incremental run:");
    let incremental = RunOptions {
        full: false,
        ..full
    };
    let timer = Instant::now();
    let second = mirror::run(
        &client,
        &store,
        &config.models,
        &incremental,
        progress.as_ref(),
    )
    .await
    .map_err(mirror_failure)?;
    say!("Incremental run in {:.2} s:", timer.elapsed().as_secs_f64());
    print_report(&second);
    store.close().await;
    Ok((first, second, database))
}

/// What the demo's receiver accepted: `(webhook-id, body)`.
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook receiver on a free loopback port that checks each Standard Webhooks signature
/// and keeps what it accepted.
async fn start_receiver(
    secret: WebhookSecret,
) -> Result<(String, Received, tokio::task::JoinHandle<()>), Failure> {
    let verifier = Arc::new(Verifier::new(secret));
    let received: Received = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/webhooks/odoo",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let verifier = verifier.clone();
                let kept = kept.clone();
                async move {
                    if verifier.verify(&headers, &body).is_err() {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let id = headers
                        .get("webhook-id")
                        .and_then(|id| id.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    match serde_json::from_slice(&body) {
                        Ok(payload) => {
                            if let Ok(mut kept) = kept.lock() {
                                kept.push((id, payload));
                            }
                            axum::http::StatusCode::OK
                        }
                        Err(_) => axum::http::StatusCode::BAD_REQUEST,
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let address = listener
        .local_addr()
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{address}/webhooks/odoo"), received, server))
}

/// How many webhooks the receiver holds.
fn received_count(received: &Received) -> usize {
    received.lock().map(|kept| kept.len()).unwrap_or_default()
}

/// Waits (at most `limit`) until the receiver holds `count` webhooks; false when it does not.
async fn wait_for_webhooks(received: &Received, count: usize, limit: std::time::Duration) -> bool {
    let deadline = Instant::now() + limit;
    while received_count(received) < count {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    true
}

/// Asks the runtime to poll the flow now (it may still be starting its task).
async fn poll_now(signals: &FlowSignals, flow_id: &str) -> bool {
    for _ in 0..100 {
        if signals.poll_now(flow_id) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// One connection to the simulator, run by the engine's runtime (as `odoo-bridge run` would)
/// and delivered to a loopback receiver; returns how many webhooks the receiver accepted.
async fn delivery_demo(
    args: &DemoArgs,
    sim_config: &SimConfig,
    url: &str,
) -> Result<usize, Failure> {
    let failed = |error: StoreError| Failure::new(Exit::Failure, error);
    let path = args.dir.join("delivery.db");
    // A fresh store each time: the simulator's orders are new on every demo.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = store_sqlite::SqliteStore::open(&path)
        .await
        .map_err(failed)?;
    store.migrate().await.map_err(failed)?;
    let secret = WebhookSecret::new(connection_form::new_webhook_secret())
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let (webhook_url, received, server) = start_receiver(secret.clone()).await?;
    let now = jiff::Timestamp::now();
    let connection = Connection {
        id: connection_form::new_connection_id(),
        tenant_id: connection_form::new_connection_id(),
        name: "Demo shop".into(),
        odoo_url: url.to_owned(),
        odoo_db: sim_config.database.clone(),
        odoo_username: sim_config.admin_login.clone(),
        odoo_api_key: ApiKey::new(sim_config.admin_api_key.clone()),
        webhook_url,
        webhook_secret: secret,
        store_id: "demo-store".into(),
        client_id: "demo-client".into(),
        polling_interval_seconds: 60,
        odoo_min_delay_ms: 0,
        is_active: true,
        events: EventSet::default(),
        last_sync_at: None,
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_connection(&connection).await.map_err(failed)?;
    say!(
        "\nOrder delivery: connection {:?} ({}) → {}",
        connection.name,
        connection.id,
        connection.webhook_url
    );
    let client = OdooClient::new(ClientConfig::new(
        url,
        sim_config.database.clone(),
        sim_config.admin_login.clone(),
        ApiKey::new(sim_config.admin_api_key.clone()),
    ))
    .map_err(|error| Failure::new(exit_for(&error), error))?;
    let confirmed = client
        .search_count("sale.order", &field("state").is_in(["sale", "done"]), None)
        .await
        .map_err(|error| Failure::new(exit_for(&error), error))?;
    let config = RuntimeConfig {
        shutdown_deadline: std::time::Duration::from_secs(10),
        ..RuntimeConfig::new(format!("demo-{}", std::process::id()), "demo")
    }
    .reloading_every(std::time::Duration::from_secs(1));
    let runtime = Runtime::new(store.clone(), config, Clock::system())
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let signals = runtime.signals();
    let running = runtime.start();
    let patience = std::time::Duration::from_secs(60);
    poll_now(&signals, &connection.id).await;
    let first_complete = wait_for_webhooks(&received, confirmed as usize, patience).await;
    say!(
        "  the runtime polled once: {} confirmed orders in Odoo, {} webhooks delivered{}",
        confirmed,
        received_count(&received),
        if first_complete {
            ""
        } else {
            " (not all in time)"
        }
    );
    // An update and a cancellation of orders already delivered.
    let delivered_orders: Vec<i64> = received
        .lock()
        .map(|kept| {
            kept.iter()
                .filter_map(|(_, body)| body["order"]["platform_order_id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if let [updated, cancelled, ..] = delivered_orders[..] {
        let mut reference = serde_json::Map::new();
        reference.insert("client_order_ref".into(), serde_json::json!("PO-DEMO-1"));
        let odoo = |error: odoo_rpc::Error| Failure::new(exit_for(&error), error);
        client
            .write("sale.order", &[updated], reference, None)
            .await
            .map_err(odoo)?;
        let mut kwargs = serde_json::Map::new();
        kwargs.insert(
            "context".into(),
            serde_json::json!({"disable_cancel_warning": true}),
        );
        client
            .call_method(
                "sale.order",
                "action_cancel",
                Some(&[cancelled]),
                kwargs,
                None,
            )
            .await
            .map_err(odoo)?;
        say!(
            "  in Odoo: order {updated} got a customer reference, order {cancelled} was cancelled"
        );
        let before = received_count(&received);
        poll_now(&signals, &connection.id).await;
        wait_for_webhooks(&received, before + 2, patience).await;
        say!(
            "  the runtime polled again: {} more webhooks delivered",
            received_count(&received) - before
        );
    }
    running.shutdown().await;
    let cycles = store
        .cycles(Some(&connection.id), 0)
        .await
        .map_err(failed)?;
    say!(
        "  sync log: {} cycles, {} orders read, {} webhooks sent",
        cycles.len(),
        cycles.iter().map(|entry| entry.log.found).sum::<u64>(),
        cycles.iter().map(|entry| entry.log.sent).sum::<u64>()
    );
    let kept = received.lock().map(|kept| kept.clone()).unwrap_or_default();
    say!(
        "  {:<34} {:<16} {:>8} {:>6} {:>12}",
        "webhook-id",
        "event",
        "order",
        "items",
        "total"
    );
    for (id, body) in kept.iter().rev().take(8).rev() {
        say!(
            "  {:<34} {:<16} {:>8} {:>6} {:>12.2}",
            id,
            body["event"].as_str().unwrap_or("?"),
            body["order"]["platform_order_number"]
                .as_str()
                .unwrap_or("?"),
            body["items"].as_array().map_or(0, Vec::len),
            body["order"]["amount_total"].as_f64().unwrap_or_default() / 100.0
        );
    }
    if kept.len() > 8 {
        say!("  … and {} more", kept.len() - 8);
    }
    server.abort();
    store.close().await;
    Ok(kept.len())
}

/// Waits (at most `limit`) until `done` holds; false when it does not.
async fn wait_until<F, Fut>(limit: std::time::Duration, mut done: F) -> Result<bool, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Failure>>,
{
    let deadline = Instant::now() + limit;
    while !done().await? {
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(true)
}

/// One Cartona order through a marketplace flow run by the engine's runtime (as `odoo-bridge
/// run` would): imported into Odoo and acknowledged, confirmed in Odoo through its workflow,
/// and `approved` pushed back to the simulated Cartona. True when the status arrived.
async fn marketplace_demo(
    args: &DemoArgs,
    sim_config: &SimConfig,
    url: &str,
) -> Result<bool, Failure> {
    let failed = |error: StoreError| Failure::new(Exit::Failure, error);
    let odoo_failed = |error: odoo_rpc::Error| Failure::new(exit_for(&error), error);
    let path = args.dir.join("marketplace.db");
    // A fresh store each time: the simulator's orders are new on every demo.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = store_sqlite::SqliteStore::open(&path)
        .await
        .map_err(failed)?;
    store.migrate().await.map_err(failed)?;
    let cartona = CartonaSim::new(CartonaConfig::default());
    let cartona_running = cartona
        .clone()
        .serve_on_loopback()
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let client = OdooClient::new(ClientConfig::new(
        url,
        sim_config.database.clone(),
        sim_config.admin_login.clone(),
        ApiKey::new(sim_config.admin_api_key.clone()),
    ))
    .map_err(odoo_failed)?;
    let products = client
        .search(
            "product.product",
            &SearchReadOptions::new(field("id").gt(0))
                .order("id")
                .limit(2),
        )
        .await
        .map_err(odoo_failed)?;
    if products.is_empty() {
        return Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!("the simulated Odoo has no product.product for a Cartona order"),
        ));
    }
    let lines: Vec<(i64, f64, f64)> = products
        .iter()
        .zip([(3.0, 12.5), (1.0, 40.0)])
        .map(|(product, (amount, price))| (*product, amount, price))
        .collect();
    let hashed_id = "CART-DEMO-1";
    cartona.put_order(sample_order(
        hashed_id,
        "RET-DEMO",
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10),
        &lines,
    ));
    let mut draft = MarketplaceDraft::with_defaults();
    draft.name = "Demo Cartona".into();
    draft.api_url = format!("{}/", cartona_running.url());
    draft.api_token = cartona.config().token.clone();
    draft.odoo_url = url.to_owned();
    draft.odoo_db = sim_config.database.clone();
    draft.odoo_username = sim_config.admin_login.clone();
    draft.odoo_api_key = sim_config.admin_api_key.clone();
    let marketplace = draft
        .validate(&[], None, jiff::Timestamp::now())
        .map_err(|errors| {
            let errors: Vec<String> = errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect();
            Failure::new(
                Exit::Failure,
                anyhow::anyhow!("the demo's marketplace is invalid: {}", errors.join("; ")),
            )
        })?;
    store
        .insert_marketplace(&marketplace)
        .await
        .map_err(failed)?;
    say!(
        "\nMarketplace: {:?} ({}) ↔ simulated Cartona on {}",
        marketplace.name,
        marketplace.id,
        cartona_running.url()
    );
    let config = RuntimeConfig {
        shutdown_deadline: std::time::Duration::from_secs(10),
        ..RuntimeConfig::new(format!("demo-{}", std::process::id()), "demo")
    }
    .reloading_every(std::time::Duration::from_secs(1));
    let runtime = Runtime::new(store.clone(), config, Clock::system())
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let signals = runtime.signals();
    let running = runtime.start();
    let patience = std::time::Duration::from_secs(30);
    let posted = |status: &'static str| {
        let cartona = cartona.clone();
        move || {
            let arrived = cartona
                .posted()
                .iter()
                .any(|posted| posted.hashed_id == hashed_id && posted.status() == Some(status));
            async move { Ok(arrived) }
        }
    };
    poll_now(&signals, &marketplace.id).await;
    let acknowledged = wait_until(patience, posted("synced")).await?;
    let imported = store
        .marketplace_order(&marketplace.id, hashed_id)
        .await
        .map_err(failed)?
        .and_then(|order| order.odoo_order_id);
    let Some(order_id) = imported else {
        say!("  Cartona → Odoo: order {hashed_id} was not imported in time");
        running.shutdown().await;
        cartona_running.shutdown().await;
        store.close().await;
        return Ok(false);
    };
    say!(
        "  Cartona → Odoo: order {hashed_id} (retailer RET-DEMO, {} lines) imported as sale.order {order_id}, {}",
        lines.len(),
        if acknowledged {
            "acknowledged to Cartona as synced"
        } else {
            "not acknowledged in time"
        }
    );
    let workflow_failed = |error: WorkflowError| Failure::new(Exit::Failure, error);
    let workflow = Workflow::of(&client).await.map_err(workflow_failed)?;
    let quotation = workflow.read(order_id).await.map_err(workflow_failed)?;
    let confirmed = workflow
        .confirm(&quotation)
        .await
        .map_err(workflow_failed)?;
    say!(
        "  in Odoo: sale.order {order_id} confirmed through the workflow (action_confirm): {} → {}",
        quotation.order_state_text(),
        confirmed.order_state_text()
    );
    poll_now(&signals, &marketplace.id).await;
    let approved = wait_until(patience, posted("approved")).await?;
    say!(
        "  Odoo → Cartona: {}",
        if approved {
            format!("status approved pushed for order {hashed_id}")
        } else {
            format!("status approved did not reach Cartona in time for order {hashed_id}")
        }
    );
    running.shutdown().await;
    cartona_running.shutdown().await;
    store.close().await;
    Ok(acknowledged && approved)
}

/// Confirms a few quotations so the incremental run has something to pick up.
async fn change_some_orders(client: &OdooClient) -> Result<usize, Failure> {
    let failed = |error: odoo_rpc::Error| Failure::new(exit_for(&error), error);
    let drafts = client
        .search(
            "sale.order",
            &SearchReadOptions::new(field("state").eq("draft"))
                .order("id asc")
                .limit(5),
        )
        .await
        .map_err(failed)?;
    if !drafts.is_empty() {
        client
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&drafts),
                Default::default(),
                None,
            )
            .await
            .map_err(failed)?;
    }
    Ok(drafts.len())
}

fn print_report(report: &RunReport) {
    say!(
        "  {:<20} {:>8} {:>8} {:>8} {:>9}",
        "model",
        "fetched",
        "new",
        "changed",
        "unchanged"
    );
    for model in &report.models {
        match &model.error {
            Some(error) => say!("  {:<20} FAILED: {error}", model.model),
            None => say!(
                "  {:<20} {:>8} {:>8} {:>8} {:>9}",
                model.model,
                model.fetched,
                model.inserted,
                model.updated,
                model.unchanged
            ),
        }
    }
}
