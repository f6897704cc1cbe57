//! `bench marketplace`: the import of many Cartona orders into Odoo, in one process with the
//! simulated Odoo and the simulated Cartona on loopback and the embedded SQLite store.
//!
//! Reported against a ceiling measured in the same run: the same orders created in a second,
//! identical simulated Odoo by a bare loop (one `sale.order` `create` with its lines per
//! order, the retailers made once), which is the least Odoo work any importer can do. The
//! import's extra work — validating the products, finding or creating the retailer,
//! searching the reference before each create (the exactly-once recovery), the claims and
//! acknowledgements in the store — shows as the ratio between the two and as Odoo calls per
//! order, by method.

use crate::exit::{Failure, failure};
use clap::Args;
use engine::clock::Clock;
use engine::marketplace::cartona::CartonaClient;
use engine::marketplace::import::{ImportOptions, import_orders};
use engine::mirror_store::MirrorStore;
use engine::store::{
    Flow, FlowKind, FlowSecrets, OutboxStore, PacketFilter, SecretValue, Tenant, TenantStore,
};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, TransportChoice, field};
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::{DataSpec, OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use store_sqlite::SqliteStore;

const FLOW: &str = "b3e1c0a7d5f24e68";
const TENANT: &str = "9d8c7b6a5f4e3d2c";

#[derive(Debug, Args)]
pub struct MarketplaceArgs {
    /// Cartona orders to import.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    orders: u32,
    /// Lines per order.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    lines: u32,
    /// Distinct retailers the orders come from.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    retailers: u32,
    /// The page size the simulated Cartona honours (it ignores a larger `per_page`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    page_cap: u32,
}

/// One simulated Odoo with products, served on loopback, and a client of it.
struct Odoo {
    sim: OdooSim,
    running: RunningSim,
    client: OdooClient,
    products: Vec<i64>,
}

impl Odoo {
    async fn start() -> Result<Odoo, Failure> {
        let sim = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                orders: 0,
                partners: 5,
                products: 20,
                seed: 11,
            },
        );
        let running = sim
            .clone()
            .serve_on_loopback()
            .await
            .map_err(|error| failure(format!("cannot serve the simulated Odoo: {error}")))?;
        let config = sim.config().clone();
        let client = OdooClient::new(ClientConfig::new(
            running.url(),
            config.database.clone(),
            config.admin_login.clone(),
            config.admin_api_key.clone(),
        ))
        .map_err(failure)?;
        let products = client
            .search(
                "product.product",
                &SearchReadOptions::new(field("id").gt(0)).order("id"),
            )
            .await
            .map_err(failure)?;
        if products.is_empty() {
            return Err(failure("the simulated Odoo has no products"));
        }
        sim.reset_calls();
        Ok(Odoo {
            sim,
            running,
            client,
            products,
        })
    }

    fn calls_by_method(&self) -> BTreeMap<String, u64> {
        self.sim
            .calls()
            .into_iter()
            .map(|((model, method), count)| (format!("{model}.{method}"), count))
            .collect()
    }
}

/// The orders of the run, the same for the import and the ceiling.
fn cartona_orders(args: &MarketplaceArgs, products: &[i64]) -> Vec<Value> {
    // Inside the first pass's window (a day back), one second apart.
    let base = Timestamp::now() - SignedDuration::from_secs(i64::from(args.orders) + 60);
    (0..args.orders)
        .map(|n| {
            let lines: Vec<(i64, f64, f64)> = (0..args.lines)
                .map(|line| {
                    let product = products[(n + line) as usize % products.len()];
                    (product, f64::from(1 + line), 10.0 + f64::from(line))
                })
                .collect();
            sample_order(
                &format!("BENCH{n:06}"),
                &format!("RET{:05}", n % args.retailers),
                base + SignedDuration::from_secs(i64::from(n)),
                &lines,
            )
        })
        .collect()
}

/// Timing and calls of one phase.
struct Phase {
    seconds: f64,
    calls: BTreeMap<String, u64>,
}

impl Phase {
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

pub async fn run(args: MarketplaceArgs) -> Result<(), Failure> {
    say!(
        "marketplace import: {} Cartona orders × {} lines from {} retailers, Cartona pages of {}",
        args.orders,
        args.lines,
        args.retailers,
        args.page_cap
    );
    let ceiling = ceiling(&args).await?;
    let (import, passes, acks) = import(&args).await?;
    let orders = f64::from(args.orders);
    say!("");
    say!(
        "| phase | seconds | orders/s | Odoo calls | calls per order | vs ceiling |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, phase) in [
        ("bare create loop (ceiling)", &ceiling),
        ("odoo-bridge import", &import),
    ] {
        say!(
            "| {name} | {:.2} | {:.0} | {} | {:.2} | {:.2}× |",
            phase.seconds,
            orders / phase.seconds,
            phase.total_calls(),
            phase.total_calls() as f64 / orders,
            phase.seconds / ceiling.seconds
        );
    }
    say!("");
    say!("import: {passes} pass(es), {acks} acknowledgements in the outbox");
    say!("import's Odoo calls by method:");
    for (method, count) in &import.calls {
        say!(
            "  {method:<36} {count:>7}  ({:.2} per order)",
            *count as f64 / orders
        );
    }
    Ok(())
}

/// The bare loop: each order one `create` with its lines, the retailers created first.
async fn ceiling(args: &MarketplaceArgs) -> Result<Phase, Failure> {
    let odoo = Odoo::start().await?;
    let orders = cartona_orders(args, &odoo.products);
    let started = Instant::now();
    let mut partners: BTreeMap<String, i64> = BTreeMap::new();
    for order in &orders {
        let code = order["retailer"]["retailer_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let partner = match partners.get(&code) {
            Some(partner) => *partner,
            None => {
                let vals = object(json!({"name": order["retailer"]["retailer_name"], "ref": code}));
                let partner = first_id(
                    odoo.client
                        .create("res.partner", vec![vals], None)
                        .await
                        .map_err(failure)?,
                )?;
                partners.insert(code, partner);
                partner
            }
        };
        let lines: Vec<Value> = order["order_details"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|line| {
                let product: i64 = line["internal_product_id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .unwrap_or_default();
                json!([0, 0, {
                    "product_id": product,
                    "product_uom_qty": line["amount"],
                    "price_unit": line["selling_price"],
                }])
            })
            .collect();
        let vals = object(json!({
            "partner_id": partner,
            "client_order_ref": order["hashed_id"],
            "order_line": lines,
        }));
        first_id(
            odoo.client
                .create("sale.order", vec![vals], None)
                .await
                .map_err(failure)?,
        )?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = odoo.calls_by_method();
    odoo.running.shutdown().await;
    Ok(Phase { seconds, calls })
}

/// The import as the marketplace flow runs it, passes repeated until every order is in.
async fn import(args: &MarketplaceArgs) -> Result<(Phase, u32, u64), Failure> {
    let odoo = Odoo::start().await?;
    let cartona_sim = CartonaSim::new(CartonaConfig {
        page_cap: Some(args.page_cap as usize),
        ..CartonaConfig::default()
    });
    for order in cartona_orders(args, &odoo.products) {
        cartona_sim.put_order(order);
    }
    let cartona_running = cartona_sim
        .clone()
        .serve_on_loopback()
        .await
        .map_err(|error| failure(format!("cannot serve the simulated Cartona: {error}")))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(failure)?;
    let cartona = CartonaClient::new(
        http,
        &format!("{}/", cartona_running.url()),
        SecretValue::new(cartona_sim.config().token.clone()),
        Duration::from_secs(30),
    );
    let dir = tempfile::tempdir().map_err(failure)?;
    let store = SqliteStore::open(&dir.path().join("bench.db"))
        .await
        .map_err(failure)?;
    store.migrate().await.map_err(failure)?;
    store
        .insert_tenant(&tenant(&odoo), &[flow(&cartona_running)])
        .await
        .map_err(failure)?;
    let options = ImportOptions::new(FLOW, "bench", "client_order_ref");
    let clock = Clock::system();
    let started = Instant::now();
    let mut passes = 0;
    let mut imported = 0;
    // A pass imports every valid order it sees; a second one only if the first was cut.
    while imported < u64::from(args.orders) && passes < 5 {
        let report = import_orders(&cartona, &odoo.client, &store, &options, &clock)
            .await
            .map_err(failure)?;
        passes += 1;
        imported += report.created + report.recovered;
    }
    let seconds = started.elapsed().as_secs_f64();
    if imported != u64::from(args.orders) {
        return Err(failure(format!(
            "the import created {imported} of {} orders in {passes} passes",
            args.orders
        )));
    }
    let calls = odoo.calls_by_method();
    let acks = store
        .packets(&PacketFilter {
            flow_id: Some(FLOW.into()),
            status: None,
            limit: 0,
        })
        .await
        .map_err(failure)?
        .len() as u64;
    cartona_running.shutdown().await;
    odoo.running.shutdown().await;
    Ok((Phase { seconds, calls }, passes, acks))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn first_id(ids: Vec<i64>) -> Result<i64, Failure> {
    ids.first()
        .copied()
        .ok_or_else(|| failure("Odoo's create answered no id"))
}

fn tenant(odoo: &Odoo) -> Tenant {
    let config = odoo.sim.config();
    let now = Timestamp::now();
    Tenant {
        id: TENANT.into(),
        name: "Bench supplier".into(),
        odoo_url: odoo.running.url(),
        odoo_db: config.database.clone(),
        odoo_username: config.admin_login.clone(),
        odoo_api_key: ApiKey::new(config.admin_api_key.clone()),
        transport: TransportChoice::Auto,
        odoo_min_delay_ms: 0,
        created_at: now,
        updated_at: now,
    }
}

/// The marketplace flow's row: the import reads nothing of it but its id, which the store's
/// claims and packets refer to.
fn flow(cartona: &RunningSim) -> Flow {
    let now = Timestamp::now();
    let mut settings = Map::new();
    settings.insert("kind".into(), json!("cartona"));
    settings.insert("api_url".into(), json!(cartona.url()));
    settings.insert("reference_field".into(), json!("client_order_ref"));
    Flow {
        id: FLOW.into(),
        tenant_id: TENANT.into(),
        kind: FlowKind::Marketplace,
        name: "Cartona".into(),
        is_active: true,
        interval_seconds: 60,
        settings,
        secrets: FlowSecrets::default(),
        last_sync_at: None,
        created_at: now,
        updated_at: now,
    }
}
