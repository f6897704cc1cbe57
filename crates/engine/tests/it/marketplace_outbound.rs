//! Odoo → Cartona statuses end to end in one process: orders imported from the simulated
//! Cartona into the simulated Odoo (every version profile) or the real Odoo 18, moved
//! through Odoo's own workflow methods, followed by the marketplace flow's poll, and POSTed
//! through the outbox to the simulated Cartona.

use engine::clock::Clock;
use engine::marketplace::outbound::{OutboundSettings, enqueue_status_push};
use engine::marketplace::{
    MarketplaceFlow, MarketplaceKind, MarketplaceSecrets, MarketplaceSettings,
};
use engine::outbox::{DispatchReport, Dispatcher};
use engine::runtime::{FlowHandler, FlowOptions, FlowSetup, PollReport};
use engine::store::{
    Flow, FlowKind, LogDirection, LogFilter, LogOutcome, MarketplaceStore, OutboxStore,
    PacketFilter, PacketStatus, SecretValue, Tenant, TenantStore,
};
use engine::webhook::{FailureClass, SenderConfig, WebhookSender};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{
    ApiKey, ClientConfig, Context, OdooClient, SearchReadOptions, TransportChoice, field,
};
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::schema::{FieldDef, FieldType};
use odoo_sim::{DataSpec, Fault, FaultRule, OdooSim, OdooVersion, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::time::Duration;
use store_sqlite::SqliteStore;

const FLOW: &str = "b1c2d3e4f5a60718";
const TENANT: &str = "1f0e0d0c0b0a0908";
const OTP_FIELD: &str = "x_retailer_otp";

struct World {
    sim: Option<OdooSim>,
    cartona_sim: CartonaSim,
    _odoo: Option<RunningSim>,
    _cartona: RunningSim,
    odoo: OdooClient,
    /// Odoo 16: `done` state and `quantity_done`; 17+: `locked` and `quantity`/`picked`.
    legacy: bool,
    store: SqliteStore,
    products: Vec<i64>,
    tenant: Tenant,
    flow: Flow,
    clock: Clock,
    /// One handler for polls and sends, as the runtime has (the push log goes from one to
    /// the other).
    handler: std::sync::OnceLock<MarketplaceFlow<SqliteStore>>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn sim(version: OdooVersion) -> World {
        let sim = OdooSim::with_data(
            SimConfig {
                version,
                ..SimConfig::default()
            },
            &DataSpec {
                orders: 0,
                partners: 3,
                products: 4,
                seed: 5,
            },
        );
        let running = sim.clone().serve_on_loopback().await.unwrap();
        let config = sim.config().clone();
        let odoo = OdooClient::new(ClientConfig::new(
            running.url(),
            config.database.clone(),
            config.admin_login.clone(),
            config.admin_api_key.clone(),
        ))
        .unwrap();
        World::build(Some(sim), Some(running), odoo, version == OdooVersion::V16).await
    }

    async fn build(
        sim: Option<OdooSim>,
        running: Option<RunningSim>,
        odoo: OdooClient,
        legacy: bool,
    ) -> World {
        let cartona_sim = CartonaSim::new(CartonaConfig::default());
        let cartona_running = cartona_sim.clone().serve_on_loopback().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("outbound.db"))
            .await
            .unwrap();
        engine::mirror_store::MirrorStore::migrate(&store)
            .await
            .unwrap();
        let settings = MarketplaceSettings {
            kind: MarketplaceKind::Cartona,
            api_url: cartona_running.url(),
            reference_field: "client_order_ref".into(),
            allow_from: Vec::new(),
            inbound_per_minute: engine::inbox::receive::DEFAULT_PER_MINUTE,
        };
        let secrets = MarketplaceSecrets {
            api_token: SecretValue::new(cartona_sim.config().token.clone()),
            webhook_secret: SecretValue::new("whsec-do-not-print"),
        };
        let now = Timestamp::now();
        let tenant = Tenant {
            id: TENANT.into(),
            name: "Supplier".into(),
            odoo_url: String::new(),
            odoo_db: String::new(),
            odoo_username: String::new(),
            odoo_api_key: ApiKey::new("unused"),
            transport: TransportChoice::Auto,
            odoo_min_delay_ms: 0,
            created_at: now,
            updated_at: now,
        };
        let mut flow_settings = settings.to_map();
        flow_settings.insert(
            "outbound".into(),
            json!({"otp_field": OTP_FIELD, "status_map": {}}),
        );
        let flow = Flow {
            id: FLOW.into(),
            tenant_id: TENANT.into(),
            kind: FlowKind::Marketplace,
            name: "Cartona".into(),
            is_active: true,
            interval_seconds: 60,
            settings: flow_settings,
            secrets: secrets.to_flow_secrets(),
            last_sync_at: None,
            created_at: now,
            updated_at: now,
        };
        store
            .insert_tenant(&tenant, std::slice::from_ref(&flow))
            .await
            .unwrap();
        let products = odoo
            .search(
                "product.product",
                &SearchReadOptions::new(if sim.is_some() {
                    field("id").gt(0)
                } else {
                    // Goods (a delivery is made for them), sold, active.
                    field("sale_ok").eq(true) & field("type").eq("consu")
                })
                .order("id")
                .limit(3),
            )
            .await
            .unwrap();
        assert!(!products.is_empty());
        World {
            sim,
            cartona_sim,
            _odoo: running,
            _cartona: cartona_running,
            odoo,
            legacy,
            store,
            products,
            tenant,
            flow,
            clock: Clock::system(),
            handler: std::sync::OnceLock::new(),
            _dir: dir,
        }
    }

    fn marketplace_flow(&self) -> &MarketplaceFlow<SqliteStore> {
        self.handler.get_or_init(|| self.new_handler())
    }

    fn new_handler(&self) -> MarketplaceFlow<SqliteStore> {
        MarketplaceFlow::new(
            FlowSetup {
                tenant: self.tenant.clone(),
                flow: self.flow.clone(),
                odoo: self.odoo.clone(),
                webhooks: WebhookSender::new(SenderConfig::default()).unwrap(),
                clock: self.clock.clone(),
                options: FlowOptions::default(),
                worker_id: "worker-a".into(),
            },
            self.store.clone(),
        )
        .unwrap()
    }

    /// A Cartona order (`extra` merged into the sample), pulled and imported.
    async fn order(&self, hashed: &str, extra: Value) -> i64 {
        let mut order = sample_order(
            hashed,
            "RET1",
            Timestamp::now() - SignedDuration::from_secs(30),
            &[(self.products[0], 1.0, 10.0)],
        );
        if let (Some(order), Value::Object(extra)) = (order.as_object_mut(), extra) {
            order.extend(extra);
        }
        self.cartona_sim.put_order(order);
        self.poll().await;
        self.store
            .marketplace_order(FLOW, hashed)
            .await
            .unwrap()
            .and_then(|order| order.odoo_order_id)
            .unwrap()
    }

    /// One poll of the marketplace flow: import, then Odoo's statuses.
    async fn poll(&self) -> PollReport {
        FlowHandler::poll(self.marketplace_flow(), &self.store)
            .await
            .unwrap()
    }

    /// Delivers until nothing due is left: an order's packets go one version at a time
    /// (its acknowledgement before its statuses).
    async fn deliver(&self, clock: &Clock) -> DispatchReport {
        let dispatcher = Dispatcher::new("worker-a".into(), Duration::from_secs(10), clock.clone());
        let flow = self.marketplace_flow();
        let mut total = DispatchReport::default();
        loop {
            let report = dispatcher
                .deliver_due(&self.store, FLOW, flow)
                .await
                .unwrap();
            total.add(report);
            if report.delivered + report.retried + report.failed == 0 {
                return total;
            }
        }
    }

    /// Polls and delivers; the statuses Cartona then has received for `hashed`.
    async fn sync(&self, hashed: &str) -> Vec<String> {
        self.poll().await;
        self.deliver(&self.clock).await;
        self.received(hashed)
    }

    /// Statuses POSTed for `hashed` (acknowledgements left out), in arrival order.
    fn received(&self, hashed: &str) -> Vec<String> {
        self.cartona_sim
            .posted()
            .into_iter()
            .filter(|posted| posted.hashed_id == hashed && posted.status() != Some("synced"))
            .map(|posted| posted.status().unwrap_or_default().to_owned())
            .collect()
    }

    fn body(&self, hashed: &str, status: &str) -> Value {
        self.cartona_sim
            .posted()
            .into_iter()
            .find(|posted| posted.hashed_id == hashed && posted.status() == Some(status))
            .map(|posted| posted.body)
            .unwrap()
    }

    async fn call(&self, model: &str, method: &str, ids: &[i64], context: Context) -> Value {
        self.odoo
            .call_method(model, method, Some(ids), Map::new(), Some(&context))
            .await
            .unwrap()
    }

    async fn read_one(&self, model: &str, id: i64, fields: &[&str]) -> odoo_rpc::Record {
        self.odoo
            .read(model, &[id], fields, None)
            .await
            .unwrap()
            .remove(0)
    }

    async fn confirm(&self, order: i64) {
        self.call("sale.order", "action_confirm", &[order], Context::new())
            .await;
        let state = self.read_one("sale.order", order, &["state"]).await;
        assert!(matches!(state.str("state").unwrap(), Some("sale" | "done")));
    }

    async fn pickings(&self, order: i64, code: &str) -> Vec<i64> {
        self.odoo
            .search(
                "stock.picking",
                &SearchReadOptions::new(
                    field("sale_id").eq(order) & field("picking_type_code").eq(code),
                )
                .order("id"),
            )
            .await
            .unwrap()
    }

    /// Reserves, sets every move's quantity to its demand, validates without the SMS
    /// wizard, and checks the picking is done.
    async fn validate_picking(&self, picking: i64) {
        self.call("stock.picking", "action_assign", &[picking], Context::new())
            .await;
        let moves = self
            .read_one("stock.picking", picking, &["move_ids"])
            .await
            .x2many("move_ids")
            .unwrap();
        for movement in moves {
            let demand = self
                .read_one("stock.move", movement, &["product_uom_qty"])
                .await
                .f64("product_uom_qty")
                .unwrap()
                .unwrap();
            let vals = if self.legacy {
                json!({"quantity_done": demand})
            } else {
                json!({"quantity": demand, "picked": true})
            };
            self.odoo
                .write(
                    "stock.move",
                    &[movement],
                    vals.as_object().cloned().unwrap(),
                    None,
                )
                .await
                .unwrap();
        }
        self.call(
            "stock.picking",
            "button_validate",
            &[picking],
            Context::new().skip_sms(true),
        )
        .await;
        let state = self.read_one("stock.picking", picking, &["state"]).await;
        assert_eq!(
            state.str("state").unwrap(),
            Some("done"),
            "picking {picking}"
        );
    }

    async fn validate(&self, order: i64) {
        for picking in self.pickings(order, "outgoing").await {
            self.validate_picking(picking).await;
        }
    }

    async fn lock(&self, order: i64) {
        let method = if self.legacy {
            "action_done"
        } else {
            "action_lock"
        };
        self.call("sale.order", method, &[order], Context::new())
            .await;
    }

    async fn cancel(&self, order: i64) {
        self.call(
            "sale.order",
            "action_cancel",
            &[order],
            Context::new().disable_cancel_warning(true),
        )
        .await;
        let state = self.read_one("sale.order", order, &["state"]).await;
        assert_eq!(state.str("state").unwrap(), Some("cancel"));
    }

    /// The return wizard on the done delivery, its lines' quantities written, the return
    /// created and validated.
    async fn return_delivery(&self, order: i64) {
        let delivery = self.pickings(order, "outgoing").await[0];
        let mut vals = Map::new();
        vals.insert("picking_id".into(), json!(delivery));
        let wizard = self
            .odoo
            .create("stock.return.picking", vec![vals], None)
            .await
            .unwrap()[0];
        let lines = self
            .read_one("stock.return.picking", wizard, &["product_return_moves"])
            .await
            .x2many("product_return_moves")
            .unwrap();
        for line in lines {
            let quantity = self
                .read_one("stock.return.picking.line", line, &["move_quantity"])
                .await
                .f64("move_quantity")
                .unwrap()
                .unwrap_or(1.0);
            let mut vals = Map::new();
            vals.insert("quantity".into(), json!(quantity));
            self.odoo
                .write("stock.return.picking.line", &[line], vals, None)
                .await
                .unwrap();
        }
        let action = self
            .call(
                "stock.return.picking",
                "action_create_returns",
                &[wizard],
                Context::new(),
            )
            .await;
        let returned = action["res_id"].as_i64().unwrap();
        self.validate_picking(returned).await;
    }

    async fn odoo_status(&self, hashed: &str) -> Option<String> {
        self.store
            .marketplace_order(FLOW, hashed)
            .await
            .unwrap()
            .unwrap()
            .odoo_status
    }

    fn set_lock_confirmed_sales(&self, on: bool) {
        if let Some(sim) = &self.sim {
            sim.with_database(|database, _| database.lock_confirmed_sales = on);
        }
    }

    /// A char field on `sale.order` for the retailer's OTP, as Studio would add it.
    fn add_otp_field(&self) {
        if let Some(sim) = &self.sim {
            sim.with_database(|database, _| {
                let model = (*database.model("sale.order").unwrap())
                    .clone()
                    .field(FieldDef::new(OTP_FIELD, "Retailer OTP", FieldType::Char));
                database.declare_model(model);
            });
        }
    }
}

const VERSIONS: [OdooVersion; 4] = [
    OdooVersion::V16,
    OdooVersion::V17,
    OdooVersion::V18,
    OdooVersion::V19,
];

#[tokio::test]
async fn every_outbound_status_reaches_cartona_once_on_every_version() {
    for version in VERSIONS {
        let world = World::sim(version).await;
        let order = world.order("H-LIFE", json!({})).await;
        // Imported as pending: Odoo's quotation says the same, nothing goes back.
        assert_eq!(
            world.sync("H-LIFE").await,
            Vec::<String>::new(),
            "{version}"
        );
        assert_eq!(
            world.odoo_status("H-LIFE").await.as_deref(),
            Some("pending")
        );
        world.confirm(order).await;
        assert_eq!(world.sync("H-LIFE").await, ["approved"], "{version}");
        world.validate(order).await;
        assert_eq!(
            world.sync("H-LIFE").await,
            ["approved", "assigned_to_salesman"],
            "{version}"
        );
        world.lock(order).await;
        assert_eq!(
            world.sync("H-LIFE").await,
            ["approved", "assigned_to_salesman", "delivered"],
            "{version}"
        );
        world.return_delivery(order).await;
        assert_eq!(
            world.sync("H-LIFE").await,
            ["approved", "assigned_to_salesman", "delivered", "returned"],
            "{version}"
        );
        assert_eq!(
            world.odoo_status("H-LIFE").await.as_deref(),
            Some("returned")
        );
        assert_eq!(
            world.body("H-LIFE", "approved"),
            json!({"status": "approved", "hashed_id": "H-LIFE"})
        );

        let cancelled = world.order("H-CANCEL", json!({})).await;
        world.confirm(cancelled).await;
        world.cancel(cancelled).await;
        // Confirmed and cancelled between two polls: only the newest status goes.
        assert_eq!(
            world.sync("H-CANCEL").await,
            ["cancelled_by_supplier"],
            "{version}"
        );
        assert_eq!(
            world.body("H-CANCEL", "cancelled_by_supplier"),
            json!({"status": "cancelled_by_supplier", "hashed_id": "H-CANCEL",
                   "cancellation_reason": "supplier_asked_me_to_cancel"})
        );
        // Re-polls (the feeds rewind by the overlap and see everything again) send nothing.
        let before = world.cartona_sim.posted().len();
        let report = world.poll().await;
        assert_eq!(report.enqueued, 0, "{version}: {report:?}");
        assert_eq!(world.deliver(&world.clock).await.delivered, 0);
        assert_eq!(world.cartona_sim.posted().len(), before);
        assert!(world.cartona_sim.refused().is_empty());
    }
}

#[tokio::test]
async fn with_lock_confirmed_sales_on_a_lock_says_nothing_until_the_delivery_is_done() {
    for version in VERSIONS {
        let world = World::sim(version).await;
        world.set_lock_confirmed_sales(true);
        let order = world.order("H-AUTOLOCK", json!({})).await;
        world.confirm(order).await;
        let read = world
            .read_one(
                "sale.order",
                order,
                if version == OdooVersion::V16 {
                    &["state"]
                } else {
                    &["state", "locked"]
                },
            )
            .await;
        if version == OdooVersion::V16 {
            assert_eq!(read.str("state").unwrap(), Some("done"));
        } else {
            assert_eq!(read.bool("locked").unwrap(), Some(true));
        }
        // Locked at confirmation, yet only approved.
        assert_eq!(world.sync("H-AUTOLOCK").await, ["approved"], "{version}");
        // The validated delivery of a locked order is its completion.
        world.validate(order).await;
        assert_eq!(
            world.sync("H-AUTOLOCK").await,
            ["approved", "delivered"],
            "{version}"
        );
    }
}

#[tokio::test]
async fn statuses_from_cartona_are_not_echoed_and_never_go_back() {
    let world = World::sim(OdooVersion::V18).await;
    // Cartona said approved (as applied from Cartona): Odoo's confirmation is its echo.
    let echoed = world.order("H-ECHO", json!({"status": "approved"})).await;
    world.confirm(echoed).await;
    assert_eq!(world.sync("H-ECHO").await, Vec::<String>::new());
    assert_eq!(
        world.odoo_status("H-ECHO").await.as_deref(),
        Some("approved")
    );
    // What Odoo does next is news.
    world.validate(echoed).await;
    assert_eq!(world.sync("H-ECHO").await, ["assigned_to_salesman"]);

    // Cartona already says delivered: Odoo's older states never overwrite it.
    let newer = world.order("H-NEWER", json!({"status": "delivered"})).await;
    world.confirm(newer).await;
    assert_eq!(world.sync("H-NEWER").await, Vec::<String>::new());
    world.validate(newer).await;
    assert_eq!(world.sync("H-NEWER").await, Vec::<String>::new());
    assert_eq!(world.odoo_status("H-NEWER").await, None);
    // A terminal status from Cartona: the retailer cancelled; Odoo's cancellation is not
    // pushed as the supplier's.
    let terminal = world
        .order("H-TERMINAL", json!({"status": "cancelled_by_retailer"}))
        .await;
    world.cancel(terminal).await;
    assert_eq!(world.sync("H-TERMINAL").await, Vec::<String>::new());
    // Nothing was refused by Cartona either: nothing was sent.
    assert!(world.cartona_sim.refused().is_empty());
}

#[tokio::test]
async fn orders_delivered_by_cartona_push_only_their_cancellation() {
    let world = World::sim(OdooVersion::V17).await;
    let order = world
        .order(
            "H-BYCARTONA",
            json!({"delivered_by": "delivered_by_cartona"}),
        )
        .await;
    world.confirm(order).await;
    assert_eq!(world.sync("H-BYCARTONA").await, Vec::<String>::new());
    assert_eq!(
        world.odoo_status("H-BYCARTONA").await.as_deref(),
        Some("approved")
    );
    world.cancel(order).await;
    assert_eq!(world.sync("H-BYCARTONA").await, ["cancelled_by_supplier"]);
}

#[tokio::test]
async fn delivered_on_an_installment_order_carries_the_otp_or_fails_visibly() {
    let world = World::sim(OdooVersion::V18).await;
    world.add_otp_field();
    let order = world
        .order("H-OTP", json!({"installment_cost": 25.0}))
        .await;
    world.confirm(order).await;
    world.validate(order).await;
    world.lock(order).await;
    world.poll().await;
    let report = world.deliver(&world.clock).await;
    // approved is not pushed separately: only the newest status (assigned_to_salesman came
    // and went between polls too). The delivered packet is refused before sending.
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(world.received("H-OTP"), Vec::<String>::new());
    let failed = world
        .store
        .packets(&PacketFilter {
            flow_id: Some(FLOW.into()),
            status: Some(PacketStatus::Failed),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event, "status.delivered");
    assert_eq!(failed[0].failure_class, Some(FailureClass::SchemaError));
    assert!(
        failed[0].last_error.as_deref().unwrap().contains("OTP"),
        "{:?}",
        failed[0].last_error
    );
    assert_eq!(failed[0].attempts, 1, "not retried blindly");
    world.poll().await;
    let log = world
        .store
        .marketplace_log(&LogFilter {
            flow_id: Some(FLOW.into()),
            hashed_id: Some("H-OTP".into()),
            limit: 0,
        })
        .await
        .unwrap();
    let refused = log
        .iter()
        .find(|row| row.entry.marketplace_status.as_deref() == Some("delivered"))
        .unwrap();
    assert_eq!(refused.entry.outcome, LogOutcome::Failed);
    assert_eq!(refused.entry.error_code.as_deref(), Some("schema_error"));
    assert!(refused.entry.error_text.as_deref().unwrap().contains("OTP"));
    // Polling again without the OTP writes nothing new.
    assert_eq!(world.poll().await.enqueued, 0);
    // Once the OTP is in Odoo, the next pass sends delivered with it.
    let mut vals = Map::new();
    vals.insert(OTP_FIELD.into(), json!("4821"));
    world
        .odoo
        .write("sale.order", &[order], vals, None)
        .await
        .unwrap();
    assert_eq!(world.sync("H-OTP").await, ["delivered"]);
    assert_eq!(
        world.body("H-OTP", "delivered"),
        json!({"status": "delivered", "hashed_id": "H-OTP", "retailer_otp": "4821"})
    );
    assert!(world.cartona_sim.refused().is_empty());
}

#[tokio::test]
async fn cartona_down_retries_with_the_seeds_pattern_then_the_breaker_holds_back() {
    let world = World::sim(OdooVersion::V18).await;
    let orders: Vec<(String, i64)> = {
        let mut orders = Vec::new();
        for n in 0..3 {
            let hashed = format!("H-DOWN{n}");
            let id = world.order(&hashed, json!({})).await;
            orders.push((hashed, id));
        }
        orders
    };
    // Whole seconds: the store keeps microseconds. The poll below enqueues on the system
    // clock, so the manual one starts well ahead of it however slow the machine is (one
    // second ahead failed in CI when confirming and polling took longer than that).
    let start = Timestamp::from_second(Timestamp::now().as_second() + 600).unwrap();
    let clock = Clock::manual(start);
    // The acknowledgements go first.
    assert_eq!(world.deliver(&clock).await.delivered, 3);
    for (_, id) in &orders {
        world.confirm(*id).await;
    }
    world.poll().await;
    // Down for five calls: the breaker opens at the fifth failure in a row.
    world.cartona_sim.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .on("order", Some("update-order-status"))
        .times(5),
    );
    let dispatcher = Dispatcher::new("worker-a".into(), Duration::from_secs(10), clock.clone());
    let flow = world.marketplace_flow();
    let first = dispatcher
        .deliver_due(&world.store, FLOW, flow)
        .await
        .unwrap();
    assert_eq!(first.retried, 3, "{first:?}");
    let pending = || async {
        world
            .store
            .packets(&PacketFilter {
                flow_id: Some(FLOW.into()),
                status: Some(PacketStatus::Pending),
                limit: 0,
            })
            .await
            .unwrap()
    };
    // Each waits the seed's first step, exactly.
    let waiting = pending().await;
    assert_eq!(waiting.len(), 3);
    for packet in &waiting {
        assert_eq!(
            packet.next_attempt_at,
            start + SignedDuration::from_secs(60)
        );
        assert_eq!(packet.max_attempts, 3);
    }
    // Nothing is due before then.
    clock.advance(SignedDuration::from_secs(59));
    let early = dispatcher
        .deliver_due(&world.store, FLOW, flow)
        .await
        .unwrap();
    assert_eq!(early, DispatchReport::default());
    clock.advance(SignedDuration::from_secs(1));
    let second = dispatcher
        .deliver_due(&world.store, FLOW, flow)
        .await
        .unwrap();
    // The fifth failure opens the breaker: the third packet is held back untried.
    assert_eq!((second.retried, second.held_back), (2, 1), "{second:?}");
    assert_eq!(world.cartona_sim.call_count("update-order-status"), 3 + 5);
    let retried: Vec<_> = pending()
        .await
        .into_iter()
        .filter(|packet| packet.attempts == 2)
        .collect();
    assert_eq!(retried.len(), 2);
    for packet in &retried {
        // The second step: 180 s after the second failure.
        assert_eq!(
            packet.next_attempt_at,
            start + SignedDuration::from_secs(60 + 180)
        );
    }
    // While the breaker is open nothing is sent.
    clock.advance(SignedDuration::from_secs(30));
    let held = dispatcher
        .deliver_due(&world.store, FLOW, flow)
        .await
        .unwrap();
    assert_eq!(held.delivered + held.retried, 0, "{held:?}");
    assert_eq!(world.cartona_sim.call_count("update-order-status"), 3 + 5);
    // Cartona is back: past the cool-down and the retry times, every status arrives once.
    clock.advance(SignedDuration::from_secs(180));
    let back = dispatcher
        .deliver_due(&world.store, FLOW, flow)
        .await
        .unwrap();
    assert_eq!(back.delivered, 3, "{back:?}");
    for (hashed, _) in &orders {
        assert_eq!(world.received(hashed), ["approved"], "{hashed}");
    }
    assert!(pending().await.is_empty());
    // One log row per pushed packet, rewritten by each retry: the last outcome, the retries
    // before it, the response time; the next poll writes them.
    world.poll().await;
    let log = world
        .store
        .marketplace_log(&LogFilter {
            flow_id: Some(FLOW.into()),
            hashed_id: Some("H-DOWN0".into()),
            limit: 0,
        })
        .await
        .unwrap();
    let approved: Vec<_> = log
        .iter()
        .filter(|row| row.entry.event_key.starts_with("packet:") && row.entry.action == "status")
        .collect();
    assert_eq!(approved.len(), 1, "{log:#?}");
    let row = &approved[0].entry;
    assert_eq!(row.direction, LogDirection::Outbound);
    assert_eq!(row.outcome, LogOutcome::Success);
    assert_eq!(row.marketplace_status.as_deref(), Some("approved"));
    assert!(row.retries >= 1, "{row:?}");
    assert!(row.response_time_ms.is_some());
    // The acknowledgement is the import's row, not a push row of its own.
    assert!(!log.iter().any(|row| row.entry.action == "ack"));
}

#[tokio::test]
async fn a_status_push_for_one_order_is_sent_even_when_sent_before() {
    let world = World::sim(OdooVersion::V18).await;
    let order = world.order("H-RESOLVE", json!({})).await;
    world.confirm(order).await;
    assert_eq!(world.sync("H-RESOLVE").await, ["approved"]);
    let settings = OutboundSettings::of(&world.flow).unwrap();
    let pushed = enqueue_status_push(
        &world.odoo,
        &world.store,
        FLOW,
        "H-RESOLVE",
        &settings,
        &world.clock,
    )
    .await
    .unwrap();
    assert!(pushed.inserted);
    assert_eq!(pushed.status.as_str(), "approved");
    assert_eq!(pushed.version, 20);
    world.deliver(&world.clock).await;
    assert_eq!(world.received("H-RESOLVE"), ["approved", "approved"]);
    let unknown = enqueue_status_push(
        &world.odoo,
        &world.store,
        FLOW,
        "H-NOPE",
        &settings,
        &world.clock,
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("H-NOPE"), "{unknown}");
}

#[tokio::test]
async fn against_the_real_odoo_18_every_workflow_step_reaches_cartona_as_its_status() {
    let Some(real) = odoo_sim::real_odoo::RealOdoo::from_env("pushing marketplace statuses") else {
        return;
    };
    let db = real.fresh_db("marketplace_out").unwrap();
    let client = OdooClient::new(ClientConfig::new(
        real.url.clone(),
        db.name().to_owned(),
        real.login.clone(),
        real.api_key.clone(),
    ))
    .unwrap();
    let world = World::build(None, None, client, false).await;

    // "Lock Confirmed Sales" off (the demo database's default).
    let order = world.order("H-REAL", json!({})).await;
    assert_eq!(world.sync("H-REAL").await, Vec::<String>::new());
    world.confirm(order).await;
    let confirmed = world.read_one("sale.order", order, &["locked"]).await;
    assert_eq!(confirmed.bool("locked").unwrap(), Some(false));
    assert_eq!(world.sync("H-REAL").await, ["approved"]);
    world.validate(order).await;
    assert_eq!(
        world.sync("H-REAL").await,
        ["approved", "assigned_to_salesman"]
    );
    world.lock(order).await;
    let locked = world.read_one("sale.order", order, &["locked"]).await;
    assert_eq!(locked.bool("locked").unwrap(), Some(true));
    assert_eq!(
        world.sync("H-REAL").await,
        ["approved", "assigned_to_salesman", "delivered"]
    );
    world.return_delivery(order).await;
    assert_eq!(
        world.sync("H-REAL").await,
        ["approved", "assigned_to_salesman", "delivered", "returned"]
    );

    let cancelled = world.order("H-REAL-CANCEL", json!({})).await;
    world.confirm(cancelled).await;
    assert_eq!(world.sync("H-REAL-CANCEL").await, ["approved"]);
    world.cancel(cancelled).await;
    assert_eq!(
        world.sync("H-REAL-CANCEL").await,
        ["approved", "cancelled_by_supplier"]
    );
    assert_eq!(
        world.body("H-REAL-CANCEL", "cancelled_by_supplier")["cancellation_reason"],
        json!("supplier_asked_me_to_cancel")
    );

    // "Lock Confirmed Sales" on, as Settings → Sales sets it.
    let mut vals = Map::new();
    vals.insert("group_auto_done_setting".into(), json!(true));
    let settings = world
        .odoo
        .create("res.config.settings", vec![vals], None)
        .await
        .unwrap()[0];
    world
        .call(
            "res.config.settings",
            "execute",
            &[settings],
            Context::new(),
        )
        .await;
    let auto = world.order("H-REAL-AUTOLOCK", json!({})).await;
    world.confirm(auto).await;
    let read = world.read_one("sale.order", auto, &["locked"]).await;
    assert_eq!(
        read.bool("locked").unwrap(),
        Some(true),
        "the setting locks at confirmation"
    );
    assert_eq!(world.sync("H-REAL-AUTOLOCK").await, ["approved"]);
    world.validate(auto).await;
    assert_eq!(
        world.sync("H-REAL-AUTOLOCK").await,
        ["approved", "delivered"]
    );
    // Nothing more on a re-poll, and Cartona refused nothing.
    assert_eq!(world.poll().await.enqueued, 0);
    assert!(world.cartona_sim.refused().is_empty());
}

#[tokio::test]
async fn the_catalog_is_pushed_in_batches_and_then_only_what_changed() {
    let mut world = World::sim(OdooVersion::V18).await;
    let Some(sim) = world.sim.clone() else {
        unreachable!()
    };
    // 230 products: three batches of at most 100.
    let products: Vec<i64> = sim.with_database(|database, env| {
        let template = database.model("product.template").unwrap();
        let product = database.model("product.product").unwrap();
        let mut ids = Vec::new();
        for n in 0..230 {
            let vals = json!({"name": format!("Bulk {n}"), "list_price": 1.0})
                .as_object()
                .cloned()
                .unwrap();
            let template_id = database.create(env, &template.name, &[vals]).unwrap()[0];
            let vals = json!({"product_tmpl_id": template_id, "name": format!("Bulk {n}"),
                "lst_price": 2.5 + n as f64, "active": true})
            .as_object()
            .cloned()
            .unwrap();
            ids.push(database.create(env, &product.name, &[vals]).unwrap()[0]);
        }
        ids
    });
    let set_free_qty = |id: i64, quantity: f64| {
        sim.with_database(|database, _| {
            let model = database.model("product.product").unwrap();
            let free = model
                .fields()
                .iter()
                .find(|field| field.name == "free_qty")
                .cloned()
                .unwrap();
            database.set(&model, id, &free, odoo_sim::values::Val::Float(quantity));
        });
    };
    set_free_qty(products[0], 7.6);
    world.flow.settings.insert(
        "outbound".into(),
        json!({"otp_field": OTP_FIELD, "catalog": {"enabled": true, "warehouse_id": 1}}),
    );
    world.poll().await;
    world.deliver(&world.clock).await;
    let batches = world.cartona_sim.catalog();
    let total: usize = batches.iter().map(Vec::len).sum();
    let all = world
        .odoo
        .search(
            "product.product",
            &SearchReadOptions::new(field("id").gt(0)),
        )
        .await
        .unwrap()
        .len();
    assert_eq!(total, all);
    assert!(batches.iter().all(|batch| batch.len() <= 100));
    assert_eq!(batches.len(), all.div_ceil(100));
    let first = batches
        .iter()
        .flatten()
        .find(|item| item["internal_product_id"] == json!(products[0].to_string()))
        .unwrap();
    assert_eq!(
        first,
        &json!({"internal_product_id": products[0].to_string(), "selling_price": "2.5",
                "is_unlimited_stock": false, "available_stock_quantity": 7})
    );
    // Nothing changed: nothing is pushed again.
    world.poll().await;
    world.deliver(&world.clock).await;
    assert_eq!(world.cartona_sim.catalog().len(), batches.len());
    // One price and one quantity change: one batch of two.
    set_free_qty(products[5], 3.0);
    let mut vals = Map::new();
    vals.insert("lst_price".into(), json!(99.9));
    world
        .odoo
        .write("product.product", &[products[9]], vals, None)
        .await
        .unwrap();
    world.poll().await;
    world.deliver(&world.clock).await;
    let after = world.cartona_sim.catalog();
    assert_eq!(after.len(), batches.len() + 1);
    let last = after.last().unwrap();
    let mut changed: Vec<&str> = last
        .iter()
        .map(|item| item["internal_product_id"].as_str().unwrap())
        .collect();
    changed.sort_unstable();
    let mut expected = vec![products[5].to_string(), products[9].to_string()];
    expected.sort();
    assert_eq!(changed, expected);
    assert!(
        last.iter()
            .any(|item| item["selling_price"] == json!("99.9"))
    );
}

#[tokio::test]
async fn against_the_real_odoo_18_the_catalog_carries_each_products_price_and_free_quantity() {
    let Some(real) = odoo_sim::real_odoo::RealOdoo::from_env("pushing the catalog") else {
        return;
    };
    let db = real.fresh_db("marketplace_catalog").unwrap();
    let client = OdooClient::new(ClientConfig::new(
        real.url.clone(),
        db.name().to_owned(),
        real.login.clone(),
        real.api_key.clone(),
    ))
    .unwrap();
    let mut world = World::build(None, None, client, false).await;
    let warehouse = world
        .odoo
        .search(
            "stock.warehouse",
            &SearchReadOptions::new(field("id").gt(0))
                .order("id")
                .limit(1),
        )
        .await
        .unwrap()[0];
    world.flow.settings.insert(
        "outbound".into(),
        json!({"catalog": {"enabled": true, "warehouse_id": warehouse}}),
    );
    world.poll().await;
    world.deliver(&world.clock).await;
    let items: Vec<Value> = world.cartona_sim.catalog().into_iter().flatten().collect();
    let sellable = world
        .odoo
        .search(
            "product.product",
            &SearchReadOptions::new(field("sale_ok").eq(true)),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), sellable.len());
    // Each item says what Odoo says for that warehouse.
    let context = Context::new().set("warehouse_id", warehouse);
    let read = world
        .odoo
        .read(
            "product.product",
            &sellable,
            &["lst_price", "free_qty", "is_storable"],
            Some(&context),
        )
        .await
        .unwrap();
    let mut storable_with_stock = 0;
    for record in &read {
        let id = record.id().unwrap();
        let item = items
            .iter()
            .find(|item| item["internal_product_id"] == json!(id.to_string()))
            .unwrap();
        let storable = record.bool("is_storable").unwrap().unwrap_or(false);
        assert_eq!(item["is_unlimited_stock"], json!(!storable), "{id}");
        let price: f64 = item["selling_price"].as_str().unwrap().parse().unwrap();
        assert!((price - record.f64("lst_price").unwrap().unwrap_or(0.0)).abs() < 0.0001);
        if storable {
            let free = record
                .f64("free_qty")
                .unwrap()
                .unwrap_or(0.0)
                .max(0.0)
                .floor();
            assert_eq!(item["available_stock_quantity"], json!(free as i64), "{id}");
            if free > 0.0 {
                storable_with_stock += 1;
            }
        }
    }
    assert!(storable_with_stock > 0, "the demo data has stock");
    // A second pass pushes nothing: nothing changed.
    let batches = world.cartona_sim.catalog().len();
    world.poll().await;
    world.deliver(&world.clock).await;
    assert_eq!(world.cartona_sim.catalog().len(), batches);
}

/// Odoo calls of one outbound pass over 300 changed orders: per page of the feeds, not per
/// order (printed for the README: `cargo test … outbound_pass_cost -- --nocapture`).
#[tokio::test]
async fn outbound_pass_cost_is_per_page_not_per_order() {
    let world = World::sim(OdooVersion::V18).await;
    let Some(sim) = world.sim.clone() else {
        unreachable!()
    };
    let count = 300;
    let base = Timestamp::now() - SignedDuration::from_secs(30);
    for n in 0..count {
        world.cartona_sim.put_order(sample_order(
            &format!("H-COST{n:04}"),
            "RET1",
            base,
            &[(world.products[0], 1.0, 10.0)],
        ));
    }
    world.poll().await;
    let orders = world
        .odoo
        .search(
            "sale.order",
            &SearchReadOptions::new(field("client_order_ref").like("H-COST")),
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), count);
    world
        .odoo
        .call_method(
            "sale.order",
            "action_confirm",
            Some(&orders),
            Map::new(),
            None,
        )
        .await
        .unwrap();
    sim.reset_calls();
    let started = std::time::Instant::now();
    let report = world.poll().await;
    let elapsed = started.elapsed();
    let calls = sim.total_calls();
    let reads = sim.call_count("sale.order", "read");
    let picking_reads = sim.call_count("stock.picking", "search_read");
    println!(
        "outbound pass: {count} confirmed orders, {calls} Odoo calls ({reads} sale.order reads, \
         {picking_reads} picking reads), {} packets, {elapsed:?}",
        report.enqueued
    );
    assert_eq!(report.enqueued, count as u64, "{report:?}");
    // Two feeds of pages of 200: a few pages each (the picking feed's own pages are picking
    // search_reads too), two reads per page, whatever the number of orders.
    assert!(reads <= 6 && picking_reads <= 10, "{:?}", sim.calls());
    assert!(calls <= 40, "{calls}: {:?}", sim.calls());
}

#[tokio::test]
async fn a_pass_cut_short_by_odoo_loses_no_status() {
    let world = World::sim(OdooVersion::V17).await;
    let Some(sim) = world.sim.clone() else {
        unreachable!()
    };
    let mut orders = Vec::new();
    for n in 0..4 {
        let hashed = format!("H-CUT{n}");
        let id = world.order(&hashed, json!({})).await;
        orders.push((hashed, id));
    }
    for (_, id) in &orders {
        world.confirm(*id).await;
    }
    // Odoo fails the pass's read of the orders: the poll fails, its feed cursor stays put.
    sim.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .on("sale.order", Some("read"))
        .always(),
    );
    let cut = FlowHandler::poll(world.marketplace_flow(), &world.store).await;
    assert!(cut.is_err(), "{cut:?}");
    sim.clear_faults();
    // The next pass pushes every status, once.
    for (hashed, _) in &orders {
        assert_eq!(world.sync(hashed).await, ["approved"], "{hashed}");
    }
    assert_eq!(world.poll().await.enqueued, 0);
}
