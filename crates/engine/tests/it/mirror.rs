//! The mirror runner against the simulator and the embedded SQLite store: what
//! reconciliation does to deleted, archived and filtered-out records.

use engine::config::ModelConfig;
use engine::mirror::{self, NoProgress, RunOptions};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ClientConfig, Context, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, OdooVersion, SimConfig};
use serde_json::{Map, json};
use store_sqlite::SqliteStore;

fn orders_model() -> ModelConfig {
    ModelConfig {
        name: "sale.order".into(),
        fields: vec!["name".into(), "state".into(), "write_date".into()],
        domain: field("state").is_in(["sale", "done"]),
        cursor_field: "write_date".into(),
        overlap_seconds: 120,
        page_size: 7,
        reconcile_deletions: true,
        reconcile_every_runs: 1,
    }
}

fn partners_model() -> ModelConfig {
    ModelConfig {
        name: "res.partner".into(),
        fields: vec!["name".into(), "active".into(), "write_date".into()],
        domain: odoo_rpc::Domain::all(),
        cursor_field: "write_date".into(),
        overlap_seconds: 120,
        page_size: 50,
        reconcile_deletions: true,
        reconcile_every_runs: 1,
    }
}

fn options() -> RunOptions {
    RunOptions {
        use_lock: true,
        retention_days: 90,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn reconciliation_stamps_deletions_spares_archived_records_and_refreshes_filtered_out_ones() {
    let sim = OdooSim::with_data(
        SimConfig::default(),
        &DataSpec {
            orders: 60,
            partners: 40,
            products: 10,
            seed: 7,
        },
    );
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let config = sim.config().clone();
    let client = OdooClient::new(ClientConfig::new(
        running.url(),
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let models = [orders_model(), partners_model()];

    let first = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        first.models.iter().all(|model| model.error.is_none()),
        "{first:?}"
    );
    let confirmed = client
        .search(
            "sale.order",
            &SearchReadOptions::new(field("state").is_in(["sale", "done"])).order("id asc"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.count("sale.order").await.unwrap(),
        (confirmed.len() as u64, 0)
    );

    // A partner nobody references is deleted, another is archived; a confirmed order is
    // cancelled, which takes it out of the model's domain.
    let everything = Context::new().active_test(false);
    let (deleted_partner, archived_partner) = {
        let fresh = client
            .create(
                "res.partner",
                vec![
                    json!({"name": "Gone Ltd"}).as_object().cloned().unwrap(),
                    json!({"name": "Asleep Ltd"}).as_object().cloned().unwrap(),
                ],
                None,
            )
            .await
            .unwrap();
        (fresh[0], fresh[1])
    };
    mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    client
        .unlink("res.partner", &[deleted_partner], None)
        .await
        .unwrap();
    let mut archive = Map::new();
    archive.insert("active".into(), json!(false));
    client
        .write("res.partner", &[archived_partner], archive, None)
        .await
        .unwrap();
    let cancelled = confirmed[0];
    let mut kwargs = Map::new();
    kwargs.insert("context".into(), json!({"disable_cancel_warning": true}));
    client
        .call_method(
            "sale.order",
            "action_cancel",
            Some(&[cancelled]),
            kwargs,
            Some(&everything),
        )
        .await
        .unwrap();

    let third = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    let partners = third
        .models
        .iter()
        .find(|m| m.model == "res.partner")
        .unwrap();
    assert_eq!(
        (partners.deleted, partners.restored),
        (1, 0),
        "{partners:?}"
    );
    let gone = store
        .record("res.partner", deleted_partner)
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted_at.is_some(), "the row stays, stamped");
    let asleep = store
        .record("res.partner", archived_partner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asleep.deleted_at, None, "archived is not deleted");
    assert_eq!(asleep.payload["active"], json!(false));

    let orders = third
        .models
        .iter()
        .find(|m| m.model == "sale.order")
        .unwrap();
    assert_eq!(orders.deleted, 0, "a cancelled order is not a deleted one");
    assert_eq!(orders.left_filter, 1, "{orders:?}");
    let row = store
        .record("sale.order", cancelled)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.payload["state"],
        json!("cancel"),
        "the mirror no longer shows it confirmed"
    );
    assert_eq!(row.deleted_at, None);

    // Nothing changed since: a fourth run stamps, restores and rewrites nothing (the
    // cancelled order is read again and found unchanged).
    let fourth = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    for model in &fourth.models {
        assert_eq!(
            (model.deleted, model.restored, model.updated),
            (0, 0, 0),
            "{model:?}"
        );
    }
    running.shutdown().await;
}

/// A simulator of `version` with the administrator's client; the server stops when the
/// returned value is dropped.
async fn serve(sim: &OdooSim) -> (odoo_sim::RunningSim, OdooClient) {
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let config = sim.config().clone();
    let client = OdooClient::new(ClientConfig::new(
        running.url(),
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap();
    (running, client)
}

fn partners_with(fields: &[&str]) -> ModelConfig {
    ModelConfig {
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        reconcile_deletions: false,
        ..partners_model()
    }
}

#[tokio::test]
async fn a_misspelt_field_stops_the_run_before_the_store_is_touched() {
    let sim = OdooSim::new(SimConfig::default());
    let (_running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let good = partners_with(&["name", "write_date"]);
    mirror::run(
        &client,
        &store,
        std::slice::from_ref(&good),
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    let before = store.record("res.partner", 1).await.unwrap().unwrap();
    assert!(before.payload.get("name").is_some(), "{before:?}");

    let typo = partners_with(&["nmae", "write_date"]);
    let error = mirror::run(&client, &store, &[typo], &options(), &NoProgress)
        .await
        .unwrap_err();
    let mirror::MirrorError::Configuration(problems) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        problems,
        &[mirror::ConfigProblem::UnknownField {
            model: "res.partner".into(),
            field: "nmae".into(),
            suggestion: Some("name".into()),
        }]
    );
    assert_eq!(
        store.record("res.partner", 1).await.unwrap().unwrap(),
        before,
        "the stored row keeps its name"
    );
    assert_eq!(store.runs(10).await.unwrap().len(), 1, "no run was started");
}

#[tokio::test]
async fn a_field_odoo_removed_is_left_out_on_the_releases_without_it_and_read_on_the_others() {
    for version in OdooVersion::ALL {
        let sim = OdooSim::with_data(
            SimConfig {
                version,
                ..SimConfig::default()
            },
            &DataSpec {
                orders: 0,
                partners: 5,
                products: 0,
                seed: 3,
            },
        );
        let (_running, client) = serve(&sim).await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mirror.db"))
            .await
            .unwrap();
        let model = partners_with(&["name", "mobile", "write_date"]);
        let plans = mirror::plan(
            &client,
            std::slice::from_ref(&model),
            &options(),
            &Default::default(),
        )
        .await
        .unwrap();
        let report = mirror::run(&client, &store, &[model], &options(), &NoProgress)
            .await
            .unwrap();
        let partners = &report.models[0];
        assert_eq!(partners.error, None, "{version}");
        assert_eq!(
            partners.left_out, plans[0].left_out,
            "{version}: same verdict"
        );
        assert!(plans[0].problems.is_empty(), "{version}");
        let row = store.record("res.partner", 1).await.unwrap().unwrap();
        if version.has_partner_mobile() {
            assert!(partners.left_out.is_empty(), "{version}");
            assert!(row.payload.get("mobile").is_some(), "{version}: {row:?}");
        } else {
            let [left_out] = partners.left_out.as_slice() else {
                panic!("{version}: {partners:?}")
            };
            assert_eq!(
                left_out.to_string(),
                format!(
                    "res.partner.mobile is left out: Odoo removed it in saas~18.2 and this server runs {} (its data is in `phone` there)",
                    version.server_version()
                )
            );
            assert!(row.payload.get("mobile").is_none(), "{version}: {row:?}");
        }
    }
}

#[tokio::test]
async fn a_first_run_over_records_stamped_alike_counts_each_record_once() {
    let sim = OdooSim::new(SimConfig::default());
    // 45 partners written in one second, read in pages of 10: every full page ends inside
    // that second, which the feed then reads again by id.
    sim.clock()
        .freeze_at(odoo_sim::values::parse_datetime("2024-03-01 10:00:00").unwrap());
    let list: Vec<Map<String, serde_json::Value>> = (0..45)
        .map(|n| {
            json!({"name": format!("Bulk {n}")})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    let created =
        sim.with_database(|database, env| database.create(env, "res.partner", &list).unwrap());
    let (_running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let model = ModelConfig {
        domain: field("create_date").lt("2025-01-01 00:00:00"),
        page_size: 10,
        ..partners_with(&["name", "write_date"])
    };
    let first = mirror::run(
        &client,
        &store,
        std::slice::from_ref(&model),
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    let partners = &first.models[0];
    assert_eq!(
        (
            partners.fetched,
            partners.inserted,
            partners.updated,
            partners.unchanged
        ),
        (created.len() as u64, created.len() as u64, 0, 0),
        "{partners:?}"
    );
    let stored = store.runs(1).await.unwrap();
    assert_eq!(stored[0].fetched, created.len() as u64, "{stored:?}");
    assert_eq!(stored[0].unchanged, 0, "{stored:?}");
}

#[tokio::test]
async fn a_shared_error_is_recorded_once_with_the_models_it_hit() {
    let sim = OdooSim::new(SimConfig::default());
    let (running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let models = [
        partners_with(&["name", "write_date"]),
        ModelConfig {
            reconcile_deletions: false,
            ..orders_model()
        },
    ];
    // Both models are checked, then Odoo goes away before their pages are read.
    let mut client_config = ClientConfig::new(
        running.url(),
        sim.config().database.clone(),
        sim.config().admin_login.clone(),
        sim.config().admin_api_key.clone(),
    );
    client_config.retry.max_retries = 0;
    let quick = OdooClient::new(client_config).unwrap();
    for model in &models {
        mirror::check_model(&quick, model).await.unwrap();
    }
    drop(client);
    running.shutdown().await;
    let report = mirror::run(&quick, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        report.models.iter().all(|model| model.error.is_some()),
        "{report:?}"
    );
    let error = store.runs(1).await.unwrap()[0].error.clone().unwrap();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 1, "{error}");
    assert!(lines[0].starts_with("res.partner, sale.order: "), "{error}");
}
