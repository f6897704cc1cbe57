use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, ReconcileCounts};
use serde_json::json;

use crate::support::{row, store, ts};

const CHECKPOINT: Checkpoint = Checkpoint {
    second: jiff::Timestamp::UNIX_EPOCH,
    last_id: Checkpoint::SECOND_DONE,
};

#[tokio::test]
async fn reconcile_two_hundred_thousand_ids() {
    let (_dir, store) = store().await;
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
