//! Deletion reconciliation.

use crate::support::{TestDb, at};
use engine::mirror_store::{MirrorStore, ReconcileCounts};

const MODEL: &str = "res.partner";

#[tokio::test]
async fn two_hundred_thousand_ids() {
    let db = TestDb::new().await;
    let store = &db.store;
    let run = store.start_run(at(1_800_000_000, 0), true).await.unwrap();
    // Seed the rows in SQL: the point here is the reconciliation, not 400 pages.
    sqlx::query(
        "INSERT INTO odoo_raw_records (model, odoo_id, payload, synced_at, content_hash) \
         SELECT $1, g, jsonb_build_object('id', g), now(), 'h' FROM generate_series(1, 200000) g",
    )
    .bind(MODEL)
    .execute(store.pool())
    .await
    .unwrap();

    // Every tenth record is gone from Odoo; the list also names ids never mirrored.
    let present: Vec<i64> = (1..=200_000_i64)
        .filter(|id| id % 10 != 0)
        .chain(300_000..300_100)
        .collect();
    let counts = store
        .reconcile(run, MODEL, &present, at(1_800_000_100, 0))
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 20_000,
            restored: 0
        }
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (200_000, 20_000));

    let all: Vec<i64> = (1..=200_000).collect();
    let counts = store
        .reconcile(run, MODEL, &all, at(1_800_000_200, 0))
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 0,
            restored: 20_000
        }
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (200_000, 0));
}

/// The size the trait promises to handle. Slow in a debug build on a small machine, so run it
/// by hand: `cargo test -p odoo-bridge-store-pg --test it one_million -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "1e6 rows: a manual performance check, not a correctness test"]
async fn one_million_ids() {
    let db = TestDb::new().await;
    let store = &db.store;
    let run = store.start_run(at(1_800_000_000, 0), true).await.unwrap();
    sqlx::query(
        "INSERT INTO odoo_raw_records (model, odoo_id, payload, synced_at, content_hash) \
         SELECT $1, g, jsonb_build_object('id', g), now(), 'h' FROM generate_series(1, 1000000) g",
    )
    .bind(MODEL)
    .execute(store.pool())
    .await
    .unwrap();
    let present: Vec<i64> = (1..=1_000_000_i64).filter(|id| id % 100 != 0).collect();
    let started = std::time::Instant::now();
    let counts = store
        .reconcile(run, MODEL, &present, at(1_800_000_100, 0))
        .await
        .unwrap();
    eprintln!("reconcile of 1e6 ids: {:?}", started.elapsed());
    assert_eq!(counts.deleted, 10_000);
}
