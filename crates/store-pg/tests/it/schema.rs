//! Migrations, connection failures, JSONB fidelity.

use crate::support::{TestDb, at, checkpoint, row};
use engine::mirror_store::{MirrorStore, StoreError};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;
use store_pg::PgStore;

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::new().await;
    // The template is migrated already; migrating again (twice) changes nothing.
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name LIKE 'odoo\\_%' ORDER BY 1",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert_eq!(
        tables,
        ["odoo_raw_records", "odoo_sync_runs", "odoo_sync_state"]
    );
    let payload_type: String = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_name = 'odoo_raw_records' AND column_name = 'payload'",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(payload_type, "jsonb");
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // Nothing listens on port 1: connections are refused until the acquire timeout.
    let options = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(1)
        .username("postgres")
        .password("not-in-messages");
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy_with(options);
    let store = PgStore::from_pool(pool);
    let error = store.migrate().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(!error.to_string().contains("not-in-messages"));
    let error = store.count("res.partner").await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn jsonb_payload_round_trips() {
    let db = TestDb::new().await;
    let run = db
        .store
        .start_run(at(1_800_000_000, 0), true)
        .await
        .unwrap();
    let payload = json!({
        "id": 7,
        "name": "Ünïcødé — 日本語 🚀 \"quoted\" \\ back",
        "partner_id": [3, "Zoë Ørsted"],
        "amount_total": 1234.5,
        "big": 9_007_199_254_740_993_i64,
        "active": false,
        "tags": [],
        "nested": {"a": [1, 2.25, null, true], "ключ": "значение"}
    });
    db.store
        .apply_page(
            run,
            "res.partner",
            &[row(7, payload.clone(), "h")],
            checkpoint(1_750_000_007, 7),
            at(1_800_000_000, 1),
        )
        .await
        .unwrap();
    let stored = db.store.record("res.partner", 7).await.unwrap().unwrap();
    assert_eq!(stored.payload, payload);
    assert_eq!(stored.model, "res.partner");
    assert_eq!(stored.content_hash, "h");
    // Other models with the same id are other rows.
    assert!(db.store.record("sale.order", 7).await.unwrap().is_none());
}
