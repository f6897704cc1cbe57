//! Marketplace import end to end in one process: the simulated Odoo, the simulated Cartona,
//! the embedded SQLite store (two handles on one file for two workers).

use engine::clock::Clock;
use engine::marketplace::cartona::CartonaClient;
use engine::marketplace::import::{ImportOptions, ImportReport, import_orders};
use engine::marketplace::{
    MarketplaceFlow, MarketplaceKind, MarketplaceSecrets, MarketplaceSettings,
};
use engine::outbox::Dispatcher;
use engine::runtime::{FlowOptions, FlowSetup};
use engine::store::{
    Flow, FlowKind, ImportState, LogDirection, LogFilter, MarketplaceStore, OutboxStore,
    PacketFilter, SecretValue, Tenant, TenantStore,
};
use engine::webhook::{SenderConfig, WebhookSender};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions, TransportChoice, field};
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::{DataSpec, FaultRule, OdooSim, OdooVersion, RunningSim, SimConfig};
use serde_json::{Value, json};
use std::time::Duration;
use store_sqlite::SqliteStore;

mod inbound_http;
mod status;

const FLOW: &str = "a1b2c3d4e5f60718";

struct World {
    odoo_sim: OdooSim,
    cartona_sim: CartonaSim,
    _odoo: RunningSim,
    _cartona: RunningSim,
    odoo: OdooClient,
    cartona: CartonaClient,
    store: SqliteStore,
    path: std::path::PathBuf,
    products: Vec<i64>,
    settings: MarketplaceSettings,
    secrets: MarketplaceSecrets,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(page_cap: Option<usize>) -> World {
        World::build(page_cap, None).await
    }

    /// With `real`, orders go to that Odoo instead of the simulated one.
    async fn build(page_cap: Option<usize>, real: Option<OdooClient>) -> World {
        World::build_on(OdooVersion::V18, page_cap, real).await
    }

    async fn build_on(
        version: OdooVersion,
        page_cap: Option<usize>,
        real: Option<OdooClient>,
    ) -> World {
        let odoo_sim = OdooSim::with_data(
            SimConfig {
                version,
                ..SimConfig::default()
            },
            &DataSpec {
                orders: 0,
                partners: 5,
                products: 6,
                seed: 3,
            },
        );
        let odoo_running = odoo_sim.clone().serve_on_loopback().await.unwrap();
        let config = odoo_sim.config().clone();
        let odoo = OdooClient::new(ClientConfig::new(
            odoo_running.url(),
            config.database.clone(),
            config.admin_login.clone(),
            config.admin_api_key.clone(),
        ))
        .unwrap();
        let odoo = real.unwrap_or(odoo);
        let cartona_sim = CartonaSim::new(CartonaConfig {
            page_cap,
            ..CartonaConfig::default()
        });
        let cartona_running = cartona_sim.clone().serve_on_loopback().await.unwrap();
        let token = SecretValue::new(cartona_sim.config().token.clone());
        let cartona = CartonaClient::new(
            reqwest_client(),
            &format!("{}/", cartona_running.url()),
            token.clone(),
            Duration::from_secs(10),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marketplace.db");
        let store = SqliteStore::open(&path).await.unwrap();
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
            api_token: token,
            webhook_secret: SecretValue::new("whsec-do-not-print"),
        };
        let now = Timestamp::now();
        let tenant = Tenant {
            id: "0f0e0d0c0b0a0908".into(),
            name: "Supplier".into(),
            odoo_url: odoo_running.url(),
            odoo_db: config.database.clone(),
            odoo_username: config.admin_login.clone(),
            odoo_api_key: ApiKey::new(config.admin_api_key.clone()),
            transport: TransportChoice::Auto,
            odoo_min_delay_ms: 0,
            created_at: now,
            updated_at: now,
        };
        let flow = Flow {
            id: FLOW.into(),
            tenant_id: tenant.id.clone(),
            kind: FlowKind::Marketplace,
            name: "Cartona".into(),
            is_active: true,
            interval_seconds: 60,
            settings: settings.to_map(),
            secrets: secrets.to_flow_secrets(),
            last_sync_at: None,
            created_at: now,
            updated_at: now,
        };
        store.insert_tenant(&tenant, &[flow]).await.unwrap();
        let products = odoo
            .search(
                "product.product",
                &SearchReadOptions::new(field("id").gt(0)).order("id"),
            )
            .await
            .unwrap();
        assert!(products.len() >= 3);
        World {
            odoo_sim,
            cartona_sim,
            _odoo: odoo_running,
            _cartona: cartona_running,
            odoo,
            cartona,
            store,
            path,
            products,
            settings,
            secrets,
            _dir: dir,
        }
    }

    fn add_orders(&self, count: usize) -> Vec<String> {
        // Within the overlap, so that a re-pull sees them again.
        let base = Timestamp::now() - SignedDuration::from_secs(100);
        (0..count)
            .map(|n| {
                let hashed = format!("CART{n:04}");
                let product = self.products[n % self.products.len()];
                self.cartona_sim.put_order(sample_order(
                    &hashed,
                    &format!("RET{}", n % 3),
                    base + SignedDuration::from_secs(n as i64),
                    &[(product, 2.0, 12.5), (self.products[0], 1.0, 3.0)],
                ));
                hashed
            })
            .collect()
    }

    fn options(&self, owner: &str) -> ImportOptions {
        ImportOptions::new(FLOW, owner, "client_order_ref")
    }

    async fn import_with(&self, store: &SqliteStore, owner: &str, clock: &Clock) -> ImportReport {
        import_orders(
            &self.cartona,
            &self.odoo,
            store,
            &self.options(owner),
            clock,
        )
        .await
        .unwrap()
    }

    async fn import(&self) -> ImportReport {
        self.import_with(&self.store, "worker-a", &Clock::system())
            .await
    }

    /// Odoo's orders carrying `hashed` as their reference.
    async fn odoo_orders(&self, hashed: &str) -> Vec<i64> {
        self.odoo
            .search(
                "sale.order",
                &SearchReadOptions::new(field("client_order_ref").eq(hashed)),
            )
            .await
            .unwrap()
    }

    async fn all_odoo_orders(&self) -> usize {
        self.odoo
            .search("sale.order", &SearchReadOptions::new(field("id").gt(0)))
            .await
            .unwrap()
            .len()
    }

    fn flow(&self) -> MarketplaceFlow<SqliteStore> {
        let now = Timestamp::now();
        MarketplaceFlow::new(
            FlowSetup {
                tenant: Tenant {
                    id: "0f0e0d0c0b0a0908".into(),
                    name: "Supplier".into(),
                    odoo_url: String::new(),
                    odoo_db: String::new(),
                    odoo_username: String::new(),
                    odoo_api_key: ApiKey::new("unused"),
                    transport: TransportChoice::Auto,
                    odoo_min_delay_ms: 0,
                    created_at: now,
                    updated_at: now,
                },
                flow: Flow {
                    id: FLOW.into(),
                    tenant_id: "0f0e0d0c0b0a0908".into(),
                    kind: FlowKind::Marketplace,
                    name: "Cartona".into(),
                    is_active: true,
                    interval_seconds: 60,
                    settings: self.settings.to_map(),
                    secrets: self.secrets.to_flow_secrets(),
                    last_sync_at: None,
                    created_at: now,
                    updated_at: now,
                },
                odoo: self.odoo.clone(),
                webhooks: WebhookSender::new(SenderConfig::default()).unwrap(),
                clock: Clock::system(),
                options: FlowOptions::default(),
                worker_id: "worker-a".into(),
            },
            self.store.clone(),
        )
        .unwrap()
    }

    /// Sends the due acknowledgements through the outbox's dispatcher.
    async fn deliver_acks(&self) -> u64 {
        self.deliver_acks_on(&Clock::system()).await
    }

    async fn deliver_acks_on(&self, clock: &Clock) -> u64 {
        let dispatcher = Dispatcher::new("worker-a".into(), Duration::from_secs(10), clock.clone());
        dispatcher
            .deliver_due(&self.store, FLOW, &self.flow())
            .await
            .unwrap()
            .delivered
    }

    fn acks(&self) -> Vec<String> {
        self.cartona_sim
            .posted()
            .into_iter()
            .filter(|posted| posted.status() == Some("synced"))
            .map(|posted| {
                assert_eq!(posted.body["hashed_id"], json!(posted.hashed_id));
                posted.hashed_id
            })
            .collect()
    }
}

fn reqwest_client() -> reqwest::Client {
    WebhookSender::new(SenderConfig::default())
        .unwrap()
        .http_client()
        .clone()
}

#[tokio::test]
async fn orders_past_a_capped_page_size_are_imported_once_and_acknowledged_once() {
    let world = World::new(Some(3)).await;
    let hashed = world.add_orders(8);
    let first = world.import().await;
    // 8 orders in pages of 3: three full or partial pages, then the empty one ends the pass.
    assert_eq!((first.pages, first.found, first.created), (3, 8, 8));
    assert_eq!(world.cartona_sim.call_count("pull-orders"), 4);
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    // The lines are Cartona's: product, amount, selling price.
    let order = world.odoo_orders(&hashed[1]).await[0];
    let lines = world
        .odoo
        .search_read(
            "sale.order.line",
            &SearchReadOptions::new(field("order_id").eq(order))
                .fields(["product_id", "product_uom_qty", "price_unit"])
                .order("id"),
        )
        .await
        .unwrap();
    let lines: Vec<(i64, f64, f64)> = lines
        .iter()
        .map(|line| {
            (
                line.many2one("product_id").unwrap().unwrap().id,
                line.f64("product_uom_qty").unwrap().unwrap(),
                line.f64("price_unit").unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (world.products[1], 2.0, 12.5),
            (world.products[0], 1.0, 3.0)
        ]
    );
    // Three retailers, each found by `ref` after its first order.
    let retailers = world
        .odoo
        .search(
            "res.partner",
            &SearchReadOptions::new(field("ref").like("RET")),
        )
        .await
        .unwrap();
    assert_eq!(retailers.len(), 3);
    assert_eq!(world.deliver_acks().await, 8);
    let mut acks = world.acks();
    acks.sort();
    assert_eq!(acks, hashed);
    // A re-pull creates nothing and sends nothing again.
    let orders_before = world.all_odoo_orders().await;
    let again = world.import().await;
    assert_eq!(
        (again.created, again.already_imported, again.acks_enqueued),
        (0, 8, 0)
    );
    assert_eq!(world.all_odoo_orders().await, orders_before);
    assert_eq!(world.deliver_acks().await, 0);
    assert_eq!(world.acks().len(), 8);
    let stored = world.store.marketplace_orders(FLOW).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|order| order.state == ImportState::Imported
                && order.marketplace_status.as_deref() == Some("pending"))
    );
}

#[tokio::test]
async fn invalid_orders_are_refused_whole_with_their_codes_and_never_acknowledged() {
    let world = World::new(None).await;
    let at = Timestamp::now() - SignedDuration::from_mins(5);
    let good = world.products[0];
    let with = |hashed: &str, change: &dyn Fn(&mut Value)| {
        let mut order = sample_order(hashed, "RETX", at, &[(good, 1.0, 2.0), (good, 3.0, 4.0)]);
        change(&mut order);
        world.cartona_sim.put_order(order);
    };
    with("NO-LINES-LIST", &|o| {
        o.as_object_mut().unwrap().remove("order_details");
    });
    with("BAD-AMOUNT", &|o| {
        o["order_details"][1]["amount"] = json!(0)
    });
    with("NO-PRODUCT", &|o| {
        o["order_details"][1]
            .as_object_mut()
            .unwrap()
            .remove("internal_product_id");
    });
    with("UNKNOWN-VARIANT", &|o| {
        o["order_details"][1]["internal_product_id"] = json!("987654")
    });
    with("EMPTY-LINES", &|o| o["order_details"] = json!([]));
    with("NO-RETAILER-CODE", &|o| {
        o["retailer"]
            .as_object_mut()
            .unwrap()
            .remove("retailer_code");
    });
    with("GOOD", &|_| {});
    let lines_before = world
        .odoo
        .search_count("sale.order.line", &odoo_rpc::Domain::all(), None)
        .await
        .unwrap();
    let report = world.import().await;
    assert_eq!((report.found, report.refused, report.created), (7, 6, 1));
    let codes: Vec<(String, String)> = world
        .store
        .marketplace_orders(FLOW)
        .await
        .unwrap()
        .into_iter()
        .filter(|order| order.state == ImportState::Refused)
        .map(|order| (order.hashed_id, order.issue_code.unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("BAD-AMOUNT", "invalid_order_details"),
            ("EMPTY-LINES", "no_valid_order_lines"),
            ("NO-LINES-LIST", "missing_order_fields"),
            ("NO-PRODUCT", "missing_internal_product_id"),
            ("NO-RETAILER-CODE", "customer_error"),
            ("UNKNOWN-VARIANT", "variant_not_found"),
        ]
        .map(|(id, code)| (id.to_owned(), code.to_owned()))
    );
    // Nothing half-created: only the good order's two lines exist.
    let lines_after = world
        .odoo
        .search_count("sale.order.line", &odoo_rpc::Domain::all(), None)
        .await
        .unwrap();
    assert_eq!(lines_after, lines_before + 2);
    for (id, _) in &codes {
        assert!(world.odoo_orders(id).await.is_empty(), "{id}");
    }
    world.deliver_acks().await;
    assert_eq!(world.acks(), vec!["GOOD".to_owned()]);
    // The sync log has one row per order: the refusals with their codes, the import.
    let mut logged: Vec<(String, String, Option<String>)> = world
        .store
        .marketplace_log(&LogFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            assert_eq!(row.entry.action, "import");
            assert_eq!(row.entry.direction, LogDirection::Inbound);
            (
                row.entry.hashed_id,
                row.entry.outcome.as_str().to_owned(),
                row.entry.error_code,
            )
        })
        .collect();
    logged.sort();
    let mut expected: Vec<(String, String, Option<String>)> = codes
        .iter()
        .map(|(id, code)| (id.clone(), "failed".to_owned(), Some(code.clone())))
        .collect();
    expected.push(("GOOD".to_owned(), "success".to_owned(), None));
    expected.sort();
    assert_eq!(logged, expected);
    // A second pass rewrites the rows of the orders it sees again, adding none.
    world.import().await;
    assert_eq!(
        world
            .store
            .marketplace_log(&LogFilter::default())
            .await
            .unwrap()
            .len(),
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_importing_the_same_orders_at_once_create_each_order_once() {
    let world = World::new(Some(5)).await;
    let hashed = world.add_orders(30);
    // Another handle on the same file: another process, with its own pool.
    let other = SqliteStore::open(&world.path).await.unwrap();
    let clock = Clock::system();
    let (a, b) = tokio::join!(
        world.import_with(&world.store, "worker-a", &clock),
        world.import_with(&other, "worker-b", &clock)
    );
    assert_eq!(
        a.created + a.recovered + b.created + b.recovered,
        30,
        "{a:?} {b:?}"
    );
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    let packets = world
        .store
        .packets(&PacketFilter {
            flow_id: Some(FLOW.into()),
            ..PacketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(packets.len(), 30);
    // Whatever a worker skipped because the other held it, the next pass settles.
    let settle = world.import().await;
    assert_eq!(settle.created + settle.recovered, 0);
    assert_eq!(settle.already_imported, 30);
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_by_its_reference_not_created_again() {
    let world = World::new(None).await;
    let hashed = world.add_orders(3);
    // Odoo creates the second order, then the connection is cut: our bookkeeping never sees
    // the id, as after a kill -9 between the create and the record.
    world
        .odoo_sim
        .inject("lost@sale.order/create+1".parse::<FaultRule>().unwrap());
    let clock = Clock::manual(Timestamp::now());
    let failed = import_orders(
        &world.cartona,
        &world.odoo,
        &world.store,
        &world.options("worker-a"),
        &clock,
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(world.odoo_orders(&hashed[1]).await.len(), 1);
    let stuck = world
        .store
        .marketplace_order(FLOW, &hashed[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stuck.state, ImportState::Claimed);
    assert_eq!(stuck.claim_owner.as_deref(), Some("worker-a"));
    // Another worker leaves it while the claim lives…
    let early = world.import_with(&world.store, "worker-b", &clock).await;
    assert_eq!((early.held_elsewhere, early.created), (1, 1));
    // …and once it has run out, finds the order in Odoo instead of creating it again.
    clock.advance(SignedDuration::from_mins(11));
    let late = world.import_with(&world.store, "worker-b", &clock).await;
    assert_eq!((late.recovered, late.created), (1, 0));
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    let recovered = world
        .store
        .marketplace_order(FLOW, &hashed[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recovered.odoo_order_id,
        Some(world.odoo_orders(&hashed[1]).await[0])
    );
    assert_eq!(world.deliver_acks_on(&clock).await, 3);
    assert_eq!(world.acks().len(), 3);
}

/// The Odoo calls made since `before`, by (model, method), without the login calls.
fn odoo_calls_since(
    sim: &OdooSim,
    before: &std::collections::HashMap<(String, String), u64>,
) -> std::collections::BTreeMap<String, u64> {
    sim.calls()
        .into_iter()
        .filter(|((model, _), _)| model != "common")
        .filter_map(|(key, count)| {
            let new = count - before.get(&key).copied().unwrap_or(0);
            (new > 0).then(|| (format!("{}/{}", key.0, key.1), new))
        })
        .collect()
}

#[tokio::test]
async fn a_page_costs_one_reference_search_one_retailer_search_and_one_create_per_new_order() {
    let world = World::new(Some(5)).await;
    let hashed = world.add_orders(10);
    // One order of the second page is in Odoo already (a create whose bookkeeping was lost).
    let partner = world
        .odoo
        .search(
            "res.partner",
            &SearchReadOptions::new(field("id").gt(0)).limit(1),
        )
        .await
        .unwrap()[0];
    world
        .odoo
        .create(
            "sale.order",
            vec![
                json!({"partner_id": partner, "client_order_ref": hashed[7]})
                    .as_object()
                    .unwrap()
                    .clone(),
            ],
            None,
        )
        .await
        .unwrap();
    let before = world.odoo_sim.calls();
    let first = world.import().await;
    assert_eq!(
        (first.pages, first.created, first.recovered),
        (2, 9, 1),
        "{first:?}"
    );
    // Per page: the variants, the references and the retailers each in one call; the three
    // retailers are created together on the first page and found on the second.
    let expected: std::collections::BTreeMap<String, u64> = [
        ("product.product/search", 2),
        ("sale.order/search_read", 2),
        ("res.partner/search_read", 2),
        ("res.partner/create", 1),
        ("sale.order/create", 9),
    ]
    .into_iter()
    .map(|(call, count)| (call.to_owned(), count))
    .collect();
    assert_eq!(odoo_calls_since(&world.odoo_sim, &before), expected);
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    // A re-pull finds everything in the store: only the variants are asked of Odoo.
    let before = world.odoo_sim.calls();
    let again = world.import().await;
    assert_eq!((again.created, again.already_imported), (0, 10));
    let expected: std::collections::BTreeMap<String, u64> =
        [("product.product/search".to_owned(), 2)]
            .into_iter()
            .collect();
    assert_eq!(odoo_calls_since(&world.odoo_sim, &before), expected);
}

#[tokio::test]
async fn a_failed_retailer_create_gives_back_the_pages_claims_for_the_next_pass() {
    let world = World::new(None).await;
    let hashed = world.add_orders(3);
    world.odoo_sim.inject(
        "error:odoo.exceptions.AccessErrorx1@res.partner/create"
            .parse::<FaultRule>()
            .unwrap(),
    );
    let clock = Clock::manual(Timestamp::now());
    let failed = import_orders(
        &world.cartona,
        &world.odoo,
        &world.store,
        &world.options("worker-a"),
        &clock,
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(world.all_odoo_orders().await, 0);
    // Nothing was created, so no claim is kept: another worker takes every order at once,
    // without waiting for the claims to run out.
    for id in &hashed {
        let stored = world.store.marketplace_order(FLOW, id).await.unwrap();
        assert!(
            stored
                .as_ref()
                .is_none_or(|order| order.claim_owner.is_none()),
            "{stored:?}"
        );
    }
    let next = world.import_with(&world.store, "worker-b", &clock).await;
    assert_eq!((next.created, next.held_elsewhere), (3, 0), "{next:?}");
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
}

/// What Odoo refuses for one order (a validation error on its create) or for one retailer
/// refuses those orders alone, with the module's issue codes; the rest of the page is imported.
#[tokio::test]
async fn orders_or_retailers_odoo_refuses_are_refused_alone_with_their_issue_codes() {
    let world = World::new(None).await;
    let hashed = world.add_orders(3);
    world.odoo_sim.inject(
        "error:odoo.exceptions.ValidationErrorx1@sale.order/create"
            .parse::<FaultRule>()
            .unwrap(),
    );
    let report = world.import().await;
    assert_eq!((report.created, report.refused), (2, 1), "{report:?}");
    let mut codes = Vec::new();
    for id in &hashed {
        let stored = world
            .store
            .marketplace_order(FLOW, id)
            .await
            .unwrap()
            .unwrap();
        if stored.state == ImportState::Refused {
            assert_eq!(world.odoo_orders(id).await.len(), 0, "{id}");
            codes.push(stored.issue_code.clone());
        } else {
            assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
        }
    }
    assert_eq!(codes, vec![Some("invalid_order_details".to_owned())]);

    // A retailer Odoo refuses: its orders only (the batch create is refused whole, then the
    // retailers are created one by one to know which).
    let more: Vec<String> = (0..3)
        .map(|n| {
            let id = format!("RETAILER{n}");
            world.cartona_sim.put_order(sample_order(
                &id,
                &format!("NEWRET{n}"),
                Timestamp::now() - SignedDuration::from_secs(50),
                &[(world.products[0], 1.0, 2.0)],
            ));
            id
        })
        .collect();
    world.odoo_sim.inject(
        "error:odoo.exceptions.ValidationErrorx2@res.partner/create"
            .parse::<FaultRule>()
            .unwrap(),
    );
    let report = world.import().await;
    // The order refused before is tried again and imported now: three created.
    assert_eq!((report.created, report.refused), (3, 1), "{report:?}");
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    let refused: Vec<Option<String>> = {
        let mut refused = Vec::new();
        for id in &more {
            let stored = world
                .store
                .marketplace_order(FLOW, id)
                .await
                .unwrap()
                .unwrap();
            if stored.state == ImportState::Refused {
                refused.push(stored.issue_code.clone());
            }
        }
        refused
    };
    assert_eq!(refused, vec![Some("customer_error".to_owned())]);
}

#[tokio::test]
async fn a_page_slower_than_half_a_claim_renews_each_claim_and_searches_each_order_again() {
    let world = World::new(None).await;
    let hashed = world.add_orders(4);
    // Claims that are already half gone when taken: every order goes the one-by-one way.
    let mut options = world.options("worker-a");
    options.claim_for = SignedDuration::ZERO;
    let before = world.odoo_sim.calls();
    let report = import_orders(
        &world.cartona,
        &world.odoo,
        &world.store,
        &options,
        &Clock::manual(Timestamp::now()),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.created, report.held_elsewhere),
        (4, 0),
        "{report:?}"
    );
    let calls = odoo_calls_since(&world.odoo_sim, &before);
    assert_eq!(calls.get("sale.order/search_read"), Some(&5), "{calls:?}");
    assert_eq!(calls.get("sale.order/create"), Some(&4), "{calls:?}");
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
}

#[tokio::test]
async fn against_the_real_odoo_18_orders_are_created_once_and_found_by_client_order_ref() {
    let Some(real) = odoo_sim::real_odoo::RealOdoo::from_env("importing Cartona orders") else {
        return;
    };
    let db = real.fresh_db("marketplace").unwrap();
    let client = OdooClient::new(ClientConfig::new(
        real.url.clone(),
        db.name().to_owned(),
        real.login.clone(),
        real.api_key.clone(),
    ))
    .unwrap();
    let world = World::build(Some(2), Some(client)).await;
    let hashed = world.add_orders(5);
    let first = world.import().await;
    assert_eq!((first.pages, first.created), (3, 5), "{first:?}");
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
    let order = world.odoo_orders(&hashed[0]).await[0];
    let read = world
        .odoo
        .read(
            "sale.order",
            &[order],
            &["state", "amount_untaxed", "partner_id"],
            None,
        )
        .await
        .unwrap();
    // Created as a quotation: we never write `state`.
    assert_eq!(read[0].str("state").unwrap(), Some("draft"));
    assert!((read[0].f64("amount_untaxed").unwrap().unwrap() - 28.0).abs() < 0.01);
    // A lost bookkeeping: forget the store's record, the reference still finds the order.
    let again = world.import().await;
    assert_eq!((again.created, again.already_imported), (0, 5));
    let other_store = tempfile::tempdir().unwrap();
    let fresh = SqliteStore::open(&other_store.path().join("m.db"))
        .await
        .unwrap();
    engine::mirror_store::MirrorStore::migrate(&fresh)
        .await
        .unwrap();
    let flow = world.store.flow(None, FLOW).await.unwrap().unwrap();
    let tenant = world.store.tenant(&flow.tenant_id).await.unwrap().unwrap();
    fresh.insert_tenant(&tenant, &[flow]).await.unwrap();
    let recovered = world
        .import_with(&fresh, "worker-c", &Clock::system())
        .await;
    assert_eq!((recovered.created, recovered.recovered), (0, 5));
    for id in &hashed {
        assert_eq!(world.odoo_orders(id).await.len(), 1, "{id}");
    }
}
