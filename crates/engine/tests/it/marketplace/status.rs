//! Cartona → Odoo statuses on the simulator's 16 / 17 / 18 / 19 profiles, and on the real
//! Odoo 18: every status through the inbox and the marketplace flow's applier, Odoo moved by
//! its workflow methods only, conflicts instead of forced moves.

use super::{FLOW, World};
use engine::clock::Clock;
use engine::inbox::InboxWorker;
use engine::marketplace::odoo_order::{OrderView, Workflow};
use engine::store::{
    InboundFilter, InboundStatus, InboxStore, LogFilter, LogOutcome, MarketplaceStore,
    NewInboundEvent, StoredLogEntry,
};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{Context, OdooClient, SearchReadOptions, field};
use odoo_sim::cartona::sample_order;
use odoo_sim::{Fault, FaultRule, OdooVersion};
use serde_json::{Map, json};
use std::sync::atomic::{AtomicU32, Ordering};

const VERSIONS: [OdooVersion; 4] = [
    OdooVersion::V16,
    OdooVersion::V17,
    OdooVersion::V18,
    OdooVersion::V19,
];

static NEXT_MESSAGE: AtomicU32 = AtomicU32::new(1);

impl World {
    /// Cartona has `hashed` with `status` (one line of the n-th product, 2 units).
    pub(super) fn put(&self, hashed: &str, status: &str) {
        let n = hashed.bytes().map(usize::from).sum::<usize>();
        let product = self.products[n % self.products.len()];
        let mut order = sample_order(
            hashed,
            "RETS",
            Timestamp::now() - SignedDuration::from_secs(100),
            &[(product, 2.0, 10.0)],
        );
        order["status"] = json!(status);
        self.cartona_sim.put_order(order);
    }

    /// A status webhook as the receiver stores it (verified elsewhere: `inbound_http`).
    pub(super) async fn webhook(&self, hashed: &str, status: &str) {
        let n = NEXT_MESSAGE.fetch_add(1, Ordering::SeqCst);
        self.store
            .receive(&NewInboundEvent {
                flow_id: FLOW.into(),
                event_id: format!("msg_{n}"),
                kind: "marketplace.status".into(),
                subject: Some(hashed.into()),
                source: "127.0.0.1".into(),
                headers: Map::new(),
                body: json!({"hashed_id": hashed, "status": status}).to_string(),
                max_attempts: 5,
                received_at: Timestamp::now(),
            })
            .await
            .unwrap();
    }

    /// Applies every due inbound event with the marketplace flow's applier.
    pub(super) async fn apply(&self) -> engine::inbox::ApplyReport {
        let flow = self.flow();
        InboxWorker::new("worker-a".into(), Clock::system())
            .apply_due(&self.store, FLOW, flow.applier())
            .await
            .unwrap()
    }

    pub(super) async fn odoo_id(&self, hashed: &str) -> i64 {
        self.store
            .marketplace_order(FLOW, hashed)
            .await
            .unwrap()
            .and_then(|order| order.odoo_order_id)
            .unwrap_or_else(|| panic!("{hashed} is not imported"))
    }

    pub(super) async fn view(&self, hashed: &str) -> OrderView {
        let id = self.odoo_id(hashed).await;
        Workflow::of(&self.odoo)
            .await
            .unwrap()
            .read(id)
            .await
            .unwrap()
    }

    pub(super) async fn log_of(&self, hashed: &str) -> Vec<StoredLogEntry> {
        self.store
            .marketplace_log(&LogFilter {
                flow_id: Some(FLOW.into()),
                hashed_id: Some(hashed.into()),
                limit: 0,
            })
            .await
            .unwrap()
    }

    pub(super) async fn last_status(&self, hashed: &str) -> Option<String> {
        self.store
            .marketplace_order(FLOW, hashed)
            .await
            .unwrap()
            .and_then(|order| order.marketplace_status)
    }

    /// Locks the order as a person (or "Lock Confirmed Sales") would.
    pub(super) async fn lock(&self, hashed: &str, major: u32) {
        let id = self.odoo_id(hashed).await;
        let method = if major < 17 {
            "action_done"
        } else {
            "action_lock"
        };
        self.odoo
            .call_method("sale.order", method, Some(&[id]), Map::new(), None)
            .await
            .unwrap();
    }
}

fn state_of(view: &OrderView) -> (&str, bool, &str) {
    (view.state.as_str(), view.locked, view.delivery_state())
}

#[tokio::test]
async fn every_inbound_status_moves_odoo_through_its_workflow_on_16_17_18_19() {
    for version in VERSIONS {
        let world = World::build_on(version, None, None).await;
        let major = if version == OdooVersion::V16 { 16 } else { 17 };
        let confirmed_done = if major < 17 { "done" } else { "sale" };
        // The status an order has at import is applied like a webhook.
        for (hashed, status) in [
            ("PENDING", "pending"),
            ("APPROVED", "approved"),
            ("SHIPPED", "assigned_to_salesman"),
            ("DELIVERED", "delivered"),
            ("RET-CANCEL", "pending"),
            ("SUP-CANCEL", "approved"),
            ("LOCKED-CANCEL", "approved"),
            ("RETURNED", "delivered"),
        ] {
            world.put(hashed, status);
        }
        let import = world.import().await;
        assert_eq!(
            (import.created, import.statuses_enqueued),
            (8, 8),
            "{version}"
        );
        let first = world.apply().await;
        assert_eq!(
            (first.applied, first.retried, first.failed),
            (8, 0, 0),
            "{version}"
        );
        let pending = world.view("PENDING").await;
        assert_eq!(state_of(&pending), ("draft", false, "draft"), "{version}");
        let approved = world.view("APPROVED").await;
        assert_eq!(approved.state, "sale", "{version}");
        assert_eq!(
            approved.deliveries.len(),
            1,
            "{version}: confirming makes the delivery"
        );
        assert_ne!(approved.delivery_state(), "done", "{version}");
        let shipped = world.view("SHIPPED").await;
        assert_eq!(state_of(&shipped), ("sale", false, "done"), "{version}");
        let delivered = world.view("DELIVERED").await;
        assert_eq!(
            state_of(&delivered),
            (confirmed_done, true, "done"),
            "{version}"
        );
        // Then statuses by webhook.
        world.lock("LOCKED-CANCEL", major).await;
        assert!(world.view("LOCKED-CANCEL").await.locked);
        world.webhook("RET-CANCEL", "cancelled_by_retailer").await;
        world.webhook("SUP-CANCEL", "cancelled_by_supplier").await;
        world.webhook("LOCKED-CANCEL", "cancelled").await;
        world.webhook("RETURNED", "returned").await;
        world.webhook("APPROVED", "delivered").await;
        let second = world.apply().await;
        assert_eq!((second.applied, second.failed), (5, 0), "{version}");
        assert_eq!(world.view("RET-CANCEL").await.state, "cancel", "{version}");
        let cancelled = world.view("SUP-CANCEL").await;
        assert_eq!(
            state_of(&cancelled),
            ("cancel", false, "cancel"),
            "{version}"
        );
        // A locked order with nothing delivered is unlocked, then cancelled.
        let unlocked = world.view("LOCKED-CANCEL").await;
        assert_eq!(
            state_of(&unlocked),
            ("cancel", false, "cancel"),
            "{version}"
        );
        let returned = world.view("RETURNED").await;
        assert_eq!(returned.returns.len(), 1, "{version}");
        assert_eq!(returned.returns[0].state, "done", "{version}");
        assert_eq!(
            returned.returns[0].return_of,
            Some(returned.deliveries[0].id)
        );
        assert!(returned.locked, "{version}");
        let now_delivered = world.view("APPROVED").await;
        assert_eq!(
            state_of(&now_delivered),
            (confirmed_done, true, "done"),
            "{version}"
        );
        // Each status is the order's last one seen, and each event has its log row.
        assert_eq!(
            world.last_status("LOCKED-CANCEL").await.as_deref(),
            Some("cancelled_by_retailer")
        );
        assert_eq!(
            world.last_status("RETURNED").await.as_deref(),
            Some("returned")
        );
        let rows = world.log_of("RETURNED").await;
        assert_eq!(rows.len(), 3, "{version}: import, status at import, return");
        let newest = &rows[0].entry;
        assert_eq!(
            (
                newest.outcome,
                newest.marketplace_status.as_deref(),
                newest.odoo_delivery_state.as_deref()
            ),
            (LogOutcome::Success, Some("returned"), Some("done"))
        );
        assert!(newest.response_time_ms.is_some());
        // Nothing was written to an order or a transfer: only workflow methods moved them.
        for model in ["sale.order", "stock.picking"] {
            assert_eq!(
                world.odoo_sim.call_count(model, "write"),
                0,
                "{version} {model}"
            );
        }
        assert!(world.odoo_sim.call_count("sale.order", "action_cancel") >= 3);
    }
}

#[tokio::test]
async fn statuses_odoo_cannot_take_become_conflicts_and_change_nothing() {
    for version in VERSIONS {
        let world = World::build_on(version, None, None).await;
        world.put("SHIPPED", "assigned_to_salesman");
        world.put("CONFIRMED", "pending");
        world.put("DELIVERED", "delivered");
        world.import().await;
        world.apply().await;
        // Confirmed in Odoo by a person while Cartona still says pending.
        let confirmed = world.odoo_id("CONFIRMED").await;
        world
            .odoo
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[confirmed]),
                Map::new(),
                None,
            )
            .await
            .unwrap();
        let before: Vec<OrderView> = vec![
            world.view("SHIPPED").await,
            world.view("CONFIRMED").await,
            world.view("DELIVERED").await,
        ];
        world.webhook("SHIPPED", "cancelled_by_retailer").await;
        world.webhook("CONFIRMED", "editing").await;
        // Older than what Odoo has applied: stale, settled by itself.
        world.webhook("DELIVERED", "approved").await;
        world.webhook("NEVER-IMPORTED", "approved").await;
        let report = world.apply().await;
        assert_eq!((report.applied, report.failed, report.retried), (4, 0, 0));
        let after = vec![
            world.view("SHIPPED").await,
            world.view("CONFIRMED").await,
            world.view("DELIVERED").await,
        ];
        assert_eq!(before, after, "{version}: a conflict is never forced");
        let open = world.store.conflicts(Some(FLOW), true).await.unwrap();
        let mut kinds: Vec<(&str, &str)> = open
            .iter()
            .map(|c| (c.conflict.hashed_id.as_str(), c.conflict.kind.as_str()))
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                ("CONFIRMED", "reopen_confirmed"),
                ("SHIPPED", "cancel_after_delivery")
            ],
            "{version}"
        );
        let shipped = open
            .iter()
            .find(|c| c.conflict.hashed_id == "SHIPPED")
            .unwrap();
        assert_eq!(
            shipped.conflict.odoo_delivery_state.as_deref(),
            Some("done")
        );
        assert_eq!(
            shipped.conflict.marketplace_status.as_deref(),
            Some("cancelled_by_retailer")
        );
        assert!(!shipped.conflict.auto_resolvable);
        // The newer status was seen (so nothing older is pushed over it); the stale one not.
        assert_eq!(
            world.last_status("SHIPPED").await.as_deref(),
            Some("cancelled_by_retailer")
        );
        assert_eq!(
            world.last_status("DELIVERED").await.as_deref(),
            Some("delivered")
        );
        let all = world.store.conflicts(Some(FLOW), false).await.unwrap();
        let stale = all
            .iter()
            .find(|c| c.conflict.kind == "stale_status")
            .unwrap();
        assert!(!stale.open && stale.conflict.auto_resolvable);
        assert_eq!(
            stale.conflict.resolution.as_deref(),
            Some("auto: kept delivered")
        );
        // The unknown order is logged, applied (not retried), and nothing else.
        let unknown = world.log_of("NEVER-IMPORTED").await;
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].entry.outcome, LogOutcome::Failed);
        assert_eq!(
            unknown[0].entry.error_code.as_deref(),
            Some("unknown_order")
        );
        let failed = world
            .store
            .inbound_events(&InboundFilter {
                flow_id: Some(FLOW.into()),
                status: Some(InboundStatus::Pending),
                limit: 0,
            })
            .await
            .unwrap();
        assert!(failed.is_empty(), "{version}: nothing left to retry");
        // Sent again, a conflict is the same open conflict.
        world.webhook("SHIPPED", "cancelled_by_retailer").await;
        world.apply().await;
        let open_again = world.store.conflicts(Some(FLOW), true).await.unwrap();
        assert_eq!(open_again.len(), 2, "{version}");
        let stats = world
            .store
            .log_stats(
                Some(FLOW),
                Timestamp::now() - SignedDuration::from_hours(24),
            )
            .await
            .unwrap();
        assert_eq!(stats.open_conflicts, 2);
        assert_eq!(
            stats.conflict, 4,
            "{version}: two cancels, an edit, a stale status"
        );
        assert_eq!(stats.orders, 3);
        assert_eq!(stats.orders_in_sync, 1, "{version}: DELIVERED only");
    }
}

#[tokio::test]
async fn a_pulled_order_whose_status_changed_is_applied_once() {
    let world = World::build_on(OdooVersion::V18, None, None).await;
    world.put("PULLED", "approved");
    world.import().await;
    world.apply().await;
    assert_eq!(world.view("PULLED").await.state, "sale");
    // No webhook: the next pull sees the new status.
    world.put("PULLED", "delivered");
    let again = world.import().await;
    assert_eq!((again.created, again.statuses_enqueued), (0, 1));
    assert_eq!(world.apply().await.applied, 1);
    let view = world.view("PULLED").await;
    assert_eq!(state_of(&view), ("sale", true, "done"));
    // Seen again unchanged: nothing more in the inbox.
    let third = world.import().await;
    assert_eq!(third.statuses_enqueued, 0);
    assert_eq!(world.apply().await.applied, 0);
}

#[tokio::test]
async fn a_call_that_answers_true_and_changes_nothing_is_retried_then_failed() {
    let world = World::build_on(OdooVersion::V18, None, None).await;
    world.put("SWALLOWED", "pending");
    world.import().await;
    world.apply().await;
    world.odoo_sim.inject(
        FaultRule::new(Fault::Swallowed)
            .on("sale.order", Some("action_confirm"))
            .always(),
    );
    world.webhook("SWALLOWED", "approved").await;
    let report = world.apply().await;
    assert_eq!((report.applied, report.retried), (0, 1));
    let rows = world.log_of("SWALLOWED").await;
    let newest = &rows[0].entry;
    assert_eq!(newest.outcome, LogOutcome::Retrying);
    assert_eq!(newest.error_code.as_deref(), Some("no_effect"));
    assert!(
        newest
            .error_text
            .as_deref()
            .unwrap()
            .contains("action_confirm on sale.order"),
        "{newest:?}"
    );
    // Not recorded as seen: the status was not applied.
    assert_eq!(
        world.last_status("SWALLOWED").await.as_deref(),
        Some("pending")
    );
    assert_eq!(world.view("SWALLOWED").await.state, "draft");
    // Once Odoo acts again, the retry applies it.
    world.odoo_sim.clear_faults();
    let events = world
        .store
        .inbound_events(&InboundFilter {
            flow_id: Some(FLOW.into()),
            status: Some(InboundStatus::Pending),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let later = Clock::manual(Timestamp::now() + SignedDuration::from_hours(1));
    let flow = world.flow();
    let retried = InboxWorker::new("worker-a".into(), later)
        .apply_due(&world.store, FLOW, flow.applier())
        .await
        .unwrap();
    assert_eq!(retried.applied, 1);
    assert_eq!(world.view("SWALLOWED").await.state, "sale");
    let rows = world.log_of("SWALLOWED").await;
    assert_eq!(rows[0].entry.outcome, LogOutcome::Success);
    assert_eq!(rows[0].entry.retries, 1);
}

/// Storable products with stock in the real Odoo's demo data.
async fn stocked_products(odoo: &OdooClient) -> Vec<i64> {
    let found = odoo
        .search_read(
            "product.product",
            &SearchReadOptions::new(
                field("is_storable")
                    .eq(true)
                    .and(field("qty_available").gt(20)),
            )
            .fields(["id"])
            .order("id")
            .limit(3),
        )
        .await
        .unwrap();
    found.iter().map(|record| record.id().unwrap()).collect()
}

#[tokio::test]
async fn against_the_real_odoo_18_every_status_moves_the_order_through_its_workflow() {
    let Some(real) = odoo_sim::real_odoo::RealOdoo::from_env("applying Cartona statuses") else {
        return;
    };
    let db = real.fresh_db("mkt_status").unwrap();
    let client = OdooClient::new(odoo_rpc::ClientConfig::new(
        real.url.clone(),
        db.name().to_owned(),
        real.login.clone(),
        real.api_key.clone(),
    ))
    .unwrap();
    let mut world = World::build(None, Some(client)).await;
    world.products = stocked_products(&world.odoo).await;
    assert!(
        !world.products.is_empty(),
        "the demo data has stocked products"
    );
    for (hashed, status) in [
        ("R-APPROVED", "approved"),
        ("R-SHIPPED", "assigned_to_salesman"),
        ("R-DELIVERED", "delivered"),
        ("R-CANCEL", "approved"),
        ("R-LOCKED", "approved"),
        ("R-RETURNED", "delivered"),
        ("R-CONFLICT", "assigned_to_salesman"),
    ] {
        world.put(hashed, status);
    }
    let import = world.import().await;
    assert_eq!(import.created, 7, "{import:?}");
    let first = world.apply().await;
    assert_eq!((first.applied, first.failed, first.retried), (7, 0, 0));
    let approved = world.view("R-APPROVED").await;
    assert_eq!(approved.state, "sale");
    assert_eq!(approved.deliveries.len(), 1);
    assert_eq!(approved.delivery_state(), "assigned");
    let shipped = world.view("R-SHIPPED").await;
    assert_eq!(state_of(&shipped), ("sale", false, "done"));
    let delivered_id = world.odoo_id("R-DELIVERED").await;
    let delivered = world.view("R-DELIVERED").await;
    assert_eq!(state_of(&delivered), ("sale", true, "done"));
    let read = world
        .odoo
        .read("sale.order", &[delivered_id], &["delivery_status"], None)
        .await
        .unwrap();
    assert_eq!(read[0].str("delivery_status").unwrap(), Some("full"));
    // A locked order (as "Lock Confirmed Sales" leaves every one) is unlocked, then cancelled.
    world.lock("R-LOCKED", 18).await;
    world.webhook("R-CANCEL", "cancelled_by_retailer").await;
    world.webhook("R-LOCKED", "cancelled_by_supplier").await;
    world.webhook("R-RETURNED", "returned").await;
    world.webhook("R-CONFLICT", "cancelled_by_retailer").await;
    let second = world.apply().await;
    assert_eq!((second.applied, second.failed, second.retried), (4, 0, 0));
    assert_eq!(
        state_of(&world.view("R-CANCEL").await),
        ("cancel", false, "cancel")
    );
    assert_eq!(
        state_of(&world.view("R-LOCKED").await),
        ("cancel", false, "cancel")
    );
    let returned = world.view("R-RETURNED").await;
    assert_eq!(returned.returns.len(), 1);
    assert_eq!(returned.returns[0].state, "done");
    assert_eq!(
        returned.returns[0].return_of,
        Some(returned.deliveries[0].id)
    );
    let conflict = world.view("R-CONFLICT").await;
    assert_eq!(state_of(&conflict), ("sale", false, "done"));
    let open = world.store.conflicts(Some(FLOW), true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].conflict.kind, "cancel_after_delivery");
    // What the workflow left behind, read back: the return's moves brought the goods in.
    let moves = world
        .odoo
        .search_read(
            "stock.move",
            &SearchReadOptions::new(field("picking_id").eq(returned.returns[0].id))
                .fields(["state", "quantity"])
                .context(Context::new()),
        )
        .await
        .unwrap();
    assert!(!moves.is_empty());
    for movement in &moves {
        assert_eq!(movement.str("state").unwrap(), Some("done"));
        assert!(movement.f64("quantity").unwrap().unwrap() > 0.0);
    }

    // "Lock Confirmed Sales" on, as Settings → Sales sets it: every confirmation locks, and a
    // retailer's cancellation of an order with nothing delivered still goes through.
    let mut vals = Map::new();
    vals.insert("group_auto_done_setting".into(), json!(true));
    let settings = world
        .odoo
        .create("res.config.settings", vec![vals], None)
        .await
        .unwrap()[0];
    world
        .odoo
        .call_method(
            "res.config.settings",
            "execute",
            Some(&[settings]),
            Map::new(),
            None,
        )
        .await
        .unwrap();
    world.put("R-AUTOLOCK", "approved");
    world.put("R-AUTOLOCK-DELIVERED", "delivered");
    world.import().await;
    let third = world.apply().await;
    // The two new orders, and four the pull saw with the status they had at import in the
    // simulated Cartona (older than the webhooks since): stale, settled by themselves.
    assert_eq!((third.applied, third.failed, third.retried), (6, 0, 0));
    assert_eq!(
        world.store.conflicts(Some(FLOW), true).await.unwrap().len(),
        1,
        "stale statuses open nothing"
    );
    assert_eq!(
        state_of(&world.view("R-CANCEL").await),
        ("cancel", false, "cancel")
    );
    let auto = world.view("R-AUTOLOCK").await;
    assert_eq!((auto.state.as_str(), auto.locked), ("sale", true));
    // Delivered on a locked order: validated, the lock already there.
    assert_eq!(
        state_of(&world.view("R-AUTOLOCK-DELIVERED").await),
        ("sale", true, "done")
    );
    world.webhook("R-AUTOLOCK", "cancelled_by_retailer").await;
    assert_eq!(world.apply().await.applied, 1);
    assert_eq!(
        state_of(&world.view("R-AUTOLOCK").await),
        ("cancel", false, "cancel")
    );
}

#[tokio::test]
async fn statuses_applied_from_cartona_are_not_pushed_back() {
    use engine::runtime::FlowHandler;
    let world = World::build_on(OdooVersion::V18, None, None).await;
    for (hashed, status) in [
        ("ECHO-APPROVED", "approved"),
        ("ECHO-SHIPPED", "assigned_to_salesman"),
        ("ECHO-DELIVERED", "delivered"),
        ("ECHO-CANCEL", "approved"),
    ] {
        world.put(hashed, status);
    }
    let flow = world.flow();
    flow.poll(&world.store).await.unwrap();
    world.apply().await;
    world.webhook("ECHO-CANCEL", "cancelled_by_retailer").await;
    world.apply().await;
    assert_eq!(world.view("ECHO-CANCEL").await.state, "cancel");
    // The next poll's outbound pass sees Odoo where Cartona put it: nothing to push.
    world.flow().poll(&world.store).await.unwrap();
    world.deliver_acks().await;
    let pushed: Vec<(String, Option<String>)> = world
        .cartona_sim
        .posted()
        .into_iter()
        .filter(|posted| posted.status() != Some("synced"))
        .map(|posted| (posted.hashed_id.clone(), posted.status().map(str::to_owned)))
        .collect();
    assert_eq!(pushed, Vec::new());
    assert_eq!(world.acks().len(), 4);
}

/// Measures inbound statuses applied per second on the simulator (run by hand:
/// `cargo test -p odoo-bridge-engine --test it measure_inbound -- --ignored --nocapture`).
/// Bounded: 200 orders, each confirmed then delivered.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn measure_inbound_statuses_applied_per_second() {
    let world = World::build_on(OdooVersion::V18, None, None).await;
    let orders: Vec<String> = (0..200).map(|n| format!("BENCH-{n:04}")).collect();
    for hashed in &orders {
        world.put(hashed, "pending");
    }
    world.import().await;
    world.apply().await;
    for (status, calls_label) in [("approved", "confirm"), ("delivered", "deliver + lock")] {
        for hashed in &orders {
            world.webhook(hashed, status).await;
        }
        world.odoo_sim.reset_calls();
        let started = std::time::Instant::now();
        let mut applied = 0;
        while applied < orders.len() as u64 {
            let report = world.apply().await;
            assert_eq!(report.failed + report.retried, 0);
            applied += report.applied;
        }
        let elapsed = started.elapsed();
        println!(
            "{status} ({calls_label}): {} statuses in {:.2} s = {:.0}/s, {:.1} Odoo calls each",
            orders.len(),
            elapsed.as_secs_f64(),
            orders.len() as f64 / elapsed.as_secs_f64(),
            world.odoo_sim.total_calls() as f64 / orders.len() as f64
        );
    }
}
