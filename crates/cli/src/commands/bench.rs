//! `odoo-bridge bench …`: performance figures, printed, never asserted.

use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand};
use odoo_rpc::value::{odoo_option, x2many};
use odoo_rpc::{Many2One, OdooDateTime, Record};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Decoding of search_read answers into typed records, against serde_json's raw parse.
    Decode(DecodeArgs),
    /// Mirroring a wide model from a simulator process into SQLite and PostgreSQL: records/s
    /// and peak memory, against fetching alone and bulk-loading alone.
    Mirror(super::bench_mirror::MirrorArgs),
    /// Order delivery end to end: confirmed orders of many tenants (a simulator process)
    /// delivered by the daemon (a process of its own) to a loopback receiver: orders/s,
    /// latency from the order's write, peak RSS, Odoo calls per 100 orders, CPU shares.
    Delivery(super::bench_delivery::DeliveryArgs),
    /// Many idle connections (one simulator, no new orders) polled by the daemon for a
    /// while: its average CPU and its memory.
    Idle(super::bench_delivery::IdleArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Records per page.
    #[arg(long, default_value_t = 500)]
    records: usize,
    /// Seconds to spend on each measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

/// A `sale.order` row as an integration reads it: 20 fields of every wire shape.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // fields are decoded to be measured, not read
struct OrderRow {
    id: i64,
    name: String,
    display_name: String,
    state: String,
    partner_id: Many2One,
    #[serde(default, with = "odoo_option")]
    partner_invoice_id: Option<Many2One>,
    #[serde(default, with = "odoo_option")]
    partner_shipping_id: Option<Many2One>,
    #[serde(default, with = "odoo_option")]
    user_id: Option<Many2One>,
    date_order: OdooDateTime,
    create_date: OdooDateTime,
    write_date: OdooDateTime,
    amount_untaxed: f64,
    amount_total: f64,
    #[serde(default, with = "odoo_option")]
    client_order_ref: Option<String>,
    #[serde(default, with = "odoo_option")]
    origin: Option<String>,
    #[serde(default, with = "odoo_option")]
    note: Option<String>,
    #[serde(default, with = "odoo_option")]
    currency_code: Option<String>,
    #[serde(default, with = "x2many")]
    order_line: Vec<i64>,
    #[serde(default, with = "x2many")]
    picking_ids: Vec<i64>,
    #[serde(default, with = "odoo_option")]
    delivery_status: Option<String>,
}

const FIELDS: [&str; 19] = [
    "name",
    "display_name",
    "state",
    "partner_id",
    "partner_invoice_id",
    "partner_shipping_id",
    "user_id",
    "date_order",
    "create_date",
    "write_date",
    "amount_untaxed",
    "amount_total",
    "client_order_ref",
    "origin",
    "note",
    "currency_code",
    "order_line",
    "picking_ids",
    "delivery_status",
];

pub async fn run(command: BenchCommand) -> Result<Exit, Failure> {
    match command {
        BenchCommand::Decode(args) => decode(args),
        BenchCommand::Mirror(args) => super::bench_mirror::run(args).await,
        BenchCommand::Delivery(args) => super::bench_delivery::delivery(args).await,
        BenchCommand::Idle(args) => super::bench_delivery::idle(args).await,
    }
}

/// A real `/jsonrpc` answer body: the simulator's generated orders, read as Odoo returns them.
fn answer_body(records: usize) -> Result<Vec<u8>, Failure> {
    let sim = OdooSim::with_data(
        SimConfig::default(),
        &DataSpec {
            seed: 42,
            partners: 200,
            products: 40,
            orders: records,
        },
    );
    let fields: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let rows = sim.with_database(|database, env| {
        let ids = database.search(
            env,
            "sale.order",
            &odoo_rpc::Domain::all(),
            0,
            Some(records),
            Some("id"),
        )?;
        database.read(env, "sale.order", &ids, &fields)
    });
    let rows = rows.map_err(|error| {
        Failure::new(
            Exit::Failure,
            anyhow::anyhow!("could not build the page: {error}"),
        )
    })?;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": rows});
    serde_json::to_vec(&body).map_err(|error| Failure::new(Exit::Failure, error))
}

struct Measurement {
    label: &'static str,
    pages_per_second: f64,
}

fn measure(
    label: &'static str,
    budget: Duration,
    mut decode: impl FnMut() -> Result<usize, String>,
) -> Result<Measurement, Failure> {
    // Warm up caches and the allocator before timing.
    for _ in 0..3 {
        decode()
            .map_err(|error| Failure::new(Exit::Failure, anyhow::anyhow!("{label}: {error}")))?;
    }
    let started = Instant::now();
    let mut pages = 0u64;
    while started.elapsed() < budget {
        black_box(
            decode().map_err(|error| {
                Failure::new(Exit::Failure, anyhow::anyhow!("{label}: {error}"))
            })?,
        );
        pages += 1;
    }
    Ok(Measurement {
        label,
        pages_per_second: pages as f64 / started.elapsed().as_secs_f64(),
    })
}

fn decode(args: DecodeArgs) -> Result<Exit, Failure> {
    let records = args.records.max(1);
    let body = answer_body(records)?;
    let budget = Duration::from_secs_f64(args.seconds.clamp(0.1, 60.0));
    let typed = measure("typed rows (OrderRow)", budget, || {
        odoo_rpc::transport::jsonrpc::decode_result::<Vec<OrderRow>>(&body)
            .map(|rows| rows.len())
            .map_err(|e| e.to_string())
    })?;
    let dynamic = measure("dynamic rows (Record)", budget, || {
        odoo_rpc::transport::jsonrpc::decode_result::<Vec<Record>>(&body)
            .map(|rows| rows.len())
            .map_err(|e| e.to_string())
    })?;
    let value = measure("serde_json::Value", budget, || {
        serde_json::from_slice::<serde_json::Value>(&body)
            .map(|_| records)
            .map_err(|e| e.to_string())
    })?;
    let ceiling = measure("serde_json raw parse (IgnoredAny)", budget, || {
        serde_json::from_slice::<IgnoredAny>(&body)
            .map(|_| records)
            .map_err(|e| e.to_string())
    })?;
    let megabytes = body.len() as f64 / 1_000_000.0;
    say!(
        "search_read page: {records} records × 20 fields, {} bytes",
        body.len()
    );
    say!(
        "{:<36} {:>14} {:>10} {:>12}",
        "decoder",
        "records/s",
        "MB/s",
        "vs ceiling"
    );
    for measurement in [&typed, &dynamic, &value, &ceiling] {
        say!(
            "{:<36} {:>14.0} {:>10.1} {:>11.2}×",
            measurement.label,
            measurement.pages_per_second * records as f64,
            measurement.pages_per_second * megabytes,
            measurement.pages_per_second / ceiling.pages_per_second
        );
    }
    if cfg!(debug_assertions) {
        say!(
            "note: this is a debug build; run with `cargo run --release -p odoo-bridge -- bench decode` for real figures"
        );
    }
    Ok(Exit::Success)
}
