//! The mirror runner against the simulator and the embedded SQLite store: what
//! reconciliation does to deleted, archived and filtered-out records.

use engine::config::ModelConfig;
use engine::mirror::{self, NoProgress, RunOptions};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ClientConfig, Context, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
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
