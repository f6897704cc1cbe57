use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, ReconcileCounts};
use serde_json::json;

use crate::support::{row, store, ts};

const CHECKPOINT: Checkpoint = Checkpoint {
    second: jiff::Timestamp::UNIX_EPOCH,
    last_id: Checkpoint::SECOND_DONE,
};

#[tokio::test]
async fn reconcile_stamps_and_restores_and_never_deletes() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page: Vec<_> = (1..=5).map(|id| row(id, json!({"id": id}))).collect();
    store
        .apply_page(
            run,
            "res.partner",
            &page,
            CHECKPOINT,
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    // Another model's rows are not this reconciliation's business.
    store
        .apply_page(
            run,
            "sale.order",
            &page,
            CHECKPOINT,
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();

    // 2 and 4 are gone from Odoo; 99 exists there but not in the mirror yet.
    let first = ts("2026-01-02T05:00:00Z");
    let counts = store
        .reconcile(run, "res.partner", &[1, 3, 5, 99], first)
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 2,
            restored: 0
        }
    );
    assert_eq!(store.count("res.partner").await.unwrap(), (5, 2));
    assert_eq!(store.count("sale.order").await.unwrap(), (5, 0));
    let two = store.record("res.partner", 2).await.unwrap().unwrap();
    assert_eq!(two.deleted_at, Some(first));
    assert_eq!(two.payload, json!({"id": 2}));
    assert!(store.record("res.partner", 99).await.unwrap().is_none());

    // Already stamped rows keep their first stamp; 4 is back.
    let second = ts("2026-01-02T06:00:00Z");
    let counts = store
        .reconcile(run, "res.partner", &[1, 3, 4, 5], second)
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 0,
            restored: 1
        }
    );
    assert_eq!(
        store
            .record("res.partner", 2)
            .await
            .unwrap()
            .unwrap()
            .deleted_at,
        Some(first)
    );
    assert_eq!(
        store
            .record("res.partner", 4)
            .await
            .unwrap()
            .unwrap()
            .deleted_at,
        None
    );

    // Nothing left in Odoo: every row stamped, none removed.
    let counts = store
        .reconcile(run, "res.partner", &[], ts("2026-01-02T07:00:00Z"))
        .await
        .unwrap();
    assert_eq!(counts.deleted, 4);
    assert_eq!(store.count("res.partner").await.unwrap(), (5, 5));

    let runs = store.runs(1).await.unwrap();
    assert_eq!(runs[0].deleted, 6);
    assert_eq!(runs[0].restored, 1);
}

#[tokio::test]
async fn reconcile_with_duplicate_ids_counts_each_row_once() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page: Vec<_> = (1..=3).map(|id| row(id, json!({"id": id}))).collect();
    store
        .apply_page(
            run,
            "res.partner",
            &page,
            CHECKPOINT,
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    let counts = store
        .reconcile(run, "res.partner", &[1, 1, 1], ts("2026-01-02T05:00:00Z"))
        .await
        .unwrap();
    assert_eq!(counts.deleted, 2);
    // The temporary table is dropped: reconciling again on the same connection works.
    let counts = store
        .reconcile(run, "res.partner", &[1, 2, 3], ts("2026-01-02T06:00:00Z"))
        .await
        .unwrap();
    assert_eq!(counts.restored, 2);
}

#[tokio::test]
async fn reconcile_of_a_missing_run_changes_nothing() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    store
        .apply_page(
            run,
            "res.partner",
            &[row(1, json!({"id": 1}))],
            CHECKPOINT,
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    assert!(
        store
            .reconcile(999, "res.partner", &[], ts("2026-01-02T05:00:00Z"))
            .await
            .is_err()
    );
    assert_eq!(store.count("res.partner").await.unwrap(), (1, 0));
}

#[tokio::test]
async fn reconcile_two_hundred_thousand_ids() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    // 20 000 mirrored rows, of which every tenth is gone from Odoo; Odoo also holds 180 000
    // records the mirror has not reached yet.
    let rows: Vec<_> = (1..=20_000).map(|id| row(id, json!({"id": id}))).collect();
    for page in rows.chunks(5_000) {
        store
            .apply_page(
                run,
                "res.partner",
                page,
                CHECKPOINT,
                ts("2026-01-02T04:00:01Z"),
            )
            .await
            .unwrap();
    }
    let odoo_ids: Vec<i64> = (1..=200_000).filter(|id| id % 10 != 0).collect::<Vec<_>>();
    let mut odoo_ids = odoo_ids;
    odoo_ids.extend(200_001..=220_000);
    assert_eq!(odoo_ids.len(), 200_000);
    let counts = store
        .reconcile(run, "res.partner", &odoo_ids, ts("2026-01-02T05:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 2_000,
            restored: 0
        }
    );
    let all: Vec<i64> = (1..=220_000).collect();
    let counts = store
        .reconcile(run, "res.partner", &all, ts("2026-01-02T06:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReconcileCounts {
            deleted: 0,
            restored: 2_000
        }
    );
    assert_eq!(store.count("res.partner").await.unwrap(), (20_000, 0));
}

#[tokio::test]
#[ignore = "a million ids takes a few seconds in a debug build; run with --ignored"]
async fn reconcile_a_million_ids() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let rows: Vec<_> = (1..=100_000).map(|id| row(id, json!({"id": id}))).collect();
    for page in rows.chunks(10_000) {
        store
            .apply_page(
                run,
                "res.partner",
                page,
                CHECKPOINT,
                ts("2026-01-02T04:00:01Z"),
            )
            .await
            .unwrap();
    }
    let odoo_ids: Vec<i64> = (2..=1_000_001).collect();
    let counts = store
        .reconcile(run, "res.partner", &odoo_ids, ts("2026-01-02T05:00:00Z"))
        .await
        .unwrap();
    assert_eq!(counts.deleted, 1);
    assert_eq!(store.count("res.partner").await.unwrap(), (100_000, 1));
}
