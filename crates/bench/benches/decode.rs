//! Decoding of `search_read` answers into typed records, against serde_json's own raw parse
//! of the same bytes (the ceiling): `cargo bench -p odoo-bridge-bench --bench decode`.
//! Criterion prints each decoder's time per page and records per second.

// A benchmark's setup has nothing to recover from: a failure is a bug to see at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use odoo_rpc::value::{odoo_option, x2many};
use odoo_rpc::{Many2One, OdooDateTime, Record};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::hint::black_box;

/// Records per page, as the mirror's default `page_size`.
const RECORDS: usize = 500;

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

/// A real `/jsonrpc` answer body: the simulator's generated orders, read as Odoo returns them.
fn answer_body(records: usize) -> Vec<u8> {
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
    let rows = rows.unwrap_or_else(|error| panic!("could not build the page: {error}"));
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": rows});
    serde_json::to_vec(&body).unwrap_or_else(|error| panic!("could not encode the page: {error}"))
}

fn decoders(c: &mut Criterion) {
    let body = answer_body(RECORDS);
    let mut group = c.benchmark_group(format!(
        "search_read page of {RECORDS} sale.order × 20 fields ({} bytes)",
        body.len()
    ));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("typed rows (OrderRow)", |b| {
        b.iter(|| {
            odoo_rpc::transport::jsonrpc::decode_result::<Vec<OrderRow>>(black_box(&body)).unwrap()
        })
    });
    group.bench_function("dynamic rows (Record)", |b| {
        b.iter(|| {
            odoo_rpc::transport::jsonrpc::decode_result::<Vec<Record>>(black_box(&body)).unwrap()
        })
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
    });
    group.bench_function("ceiling: serde_json raw parse (IgnoredAny)", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
