//! Shared set-up: a simulator served on loopback, clients configured against it, and the
//! records most tests need.

use odoo_rpc::{ClientConfig, Context, Error, OdooClient, RetryPolicy, TransportChoice, field};
use odoo_sim::{DataSpec, OdooSim, OdooVersion, RunningSim, SimConfig};
use serde_json::{Map, Value};
use std::time::Duration;

/// The administrator's API key in every simulator here: distinctive, so that a leak in any
/// text is easy to find.
pub const KEY: &str = "it-admin-key-Zq8vX1-not-for-display-7f3a9c1e";

/// Both protocols, for tests run against a 19.0 simulator (which serves both).
pub const BOTH: [TransportChoice; 2] = [TransportChoice::JsonRpc, TransportChoice::Json2];

/// A simulator and the server that exposes it on `127.0.0.1:<port>` until dropped.
pub struct Sim {
    pub sim: OdooSim,
    running: RunningSim,
}

pub fn sim_config(version: OdooVersion) -> SimConfig {
    SimConfig {
        version,
        admin_api_key: KEY.into(),
        ..SimConfig::default()
    }
}

/// Retries without noticeable waits: tests assert how many attempts were made, not how long
/// they took.
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        max_retry_after: Duration::from_secs(300),
    }
}

impl Sim {
    pub async fn start(version: OdooVersion) -> Sim {
        Sim::serve(OdooSim::new(sim_config(version))).await
    }

    pub async fn with_data(version: OdooVersion, spec: &DataSpec) -> Sim {
        Sim::serve(OdooSim::with_data(sim_config(version), spec)).await
    }

    async fn serve(sim: OdooSim) -> Sim {
        let running = sim
            .clone()
            .serve_on_loopback()
            .await
            .expect("bind 127.0.0.1:0");
        Sim { sim, running }
    }

    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The administrator's configuration with `transport` and fast retries.
    pub fn config(&self, transport: TransportChoice) -> ClientConfig {
        let mut config = ClientConfig::new(
            self.url(),
            self.sim.config().database.clone(),
            self.sim.config().admin_login.clone(),
            KEY,
        );
        config.transport = transport;
        config.retry = fast_retry(5);
        config
    }

    pub fn client(&self, transport: TransportChoice) -> OdooClient {
        client(self.config(transport))
    }
}

pub fn client(config: ClientConfig) -> OdooClient {
    OdooClient::new(config).expect("valid client configuration")
}

/// A JSON object literal as a map of values.
pub fn vals(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Fails if the error's texts show the API key; returns the error for further checks.
pub fn no_key(error: Error) -> Error {
    assert_no_key(&error);
    error
}

pub fn assert_no_key(error: &Error) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(!display.contains(KEY), "Display leaks the key: {display}");
    assert!(!debug.contains(KEY), "Debug leaks the key: {debug}");
}

/// Creates one partner and returns its id.
pub async fn partner(client: &OdooClient, values: Value) -> i64 {
    let ids = client
        .create("res.partner", vec![vals(values)], None)
        .await
        .expect("create res.partner");
    assert_eq!(ids.len(), 1);
    ids[0]
}

/// How many partners (archived included) carry this exact name.
pub async fn partners_named(client: &OdooClient, name: &str) -> u64 {
    client
        .search_count(
            "res.partner",
            &field("name").eq(name),
            Some(&Context::new().active_test(false)),
        )
        .await
        .expect("search_count res.partner")
}

/// A quotation for a new customer with one line of 3 units of a new product at 29.95.
pub async fn quotation(client: &OdooClient) -> i64 {
    let customer = partner(client, serde_json::json!({"name": "Cliente Ñandú"})).await;
    let template = client
        .create(
            "product.template",
            vec![vals(
                serde_json::json!({"name": "Coffee beans", "list_price": 29.95}),
            )],
            None,
        )
        .await
        .expect("create product.template")[0];
    let variants = client
        .read(
            "product.template",
            &[template],
            &["product_variant_ids"],
            None,
        )
        .await
        .expect("read product.template")[0]
        .x2many("product_variant_ids")
        .expect("variant ids");
    client
        .create(
            "sale.order",
            vec![vals(serde_json::json!({
                "partner_id": customer,
                "order_line": [[0, 0, {"product_id": variants[0], "product_uom_qty": 3}]],
            }))],
            None,
        )
        .await
        .expect("create sale.order")[0]
}
