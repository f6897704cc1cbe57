//! The run log.

use crate::support::{TestDb, at, checkpoint, row};
use engine::mirror_store::{MirrorStore, RunStatus};
use serde_json::json;

#[tokio::test]
async fn counters_sum_over_pages() {
    let db = TestDb::new().await;
    let store = &db.store;
    let run = store.start_run(at(1_800_000_000, 250_000)).await.unwrap();
    let page = [row(1, json!({"id": 1}), "a"), row(2, json!({"id": 2}), "b")];
    store
        .apply_page(run, "m", &page, checkpoint(1, 2), at(1_800_000_001, 0))
        .await
        .unwrap();
    let next = [
        row(2, json!({"id": 2}), "b2"),
        row(3, json!({"id": 3}), "c"),
    ];
    store
        .apply_page(run, "m", &next, checkpoint(2, 3), at(1_800_000_002, 0))
        .await
        .unwrap();
    store
        .apply_page(run, "m", &page, checkpoint(2, 3), at(1_800_000_003, 0))
        .await
        .unwrap();
    store
        .finish_run(
            run,
            RunStatus::Partial,
            Some("res.partner: access denied"),
            at(1_800_000_009, 1),
        )
        .await
        .unwrap();

    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let record = &runs[0];
    assert_eq!(record.id, run);
    assert_eq!(record.started_at, at(1_800_000_000, 250_000));
    assert_eq!(record.finished_at, Some(at(1_800_000_009, 1)));
    assert_eq!(record.status, RunStatus::Partial);
    assert_eq!(record.error.as_deref(), Some("res.partner: access denied"));
    assert_eq!(record.pages, 3);
    assert_eq!(record.fetched, 6);
    // Page 1: 2 inserted. Page 2: 1 updated (2), 1 inserted (3). Page 3: 2 had "b2", now "b"
    // again → 1 updated, 1 unchanged.
    assert_eq!(
        (record.inserted, record.updated, record.unchanged),
        (3, 2, 1)
    );
    assert_eq!((record.deleted, record.restored), (0, 0));

    assert!(
        store
            .finish_run(run + 1, RunStatus::Success, None, at(1_800_000_010, 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn newest_first_and_pruned_by_start() {
    let db = TestDb::new().await;
    let store = &db.store;
    let old = store.start_run(at(1_700_000_000, 0)).await.unwrap();
    let middle = store.start_run(at(1_750_000_000, 0)).await.unwrap();
    let new = store.start_run(at(1_800_000_000, 0)).await.unwrap();
    store
        .finish_run(old, RunStatus::Failed, Some("boom"), at(1_700_000_001, 0))
        .await
        .unwrap();

    let ids: Vec<i64> = store.runs(10).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, [new, middle, old]);
    let limited: Vec<i64> = store.runs(2).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(limited, [new, middle]);
    let running = store.runs(1).await.unwrap();
    assert_eq!(running[0].status, RunStatus::Running);
    assert_eq!(running[0].finished_at, None);

    assert_eq!(store.prune_runs(at(1_750_000_000, 0)).await.unwrap(), 1);
    let ids: Vec<i64> = store.runs(10).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, [new, middle]);
    assert_eq!(store.prune_runs(at(1_600_000_000, 0)).await.unwrap(), 0);
}
