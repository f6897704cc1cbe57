use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, RunStatus};
use serde_json::json;

use crate::support::{row, store, ts};

const CHECKPOINT: Checkpoint = Checkpoint {
    second: jiff::Timestamp::UNIX_EPOCH,
    last_id: 0,
};

#[tokio::test]
async fn run_counters_sum_over_pages_and_reconciliation() {
    let (_dir, store) = store().await;
    let started = ts("2026-01-02T04:00:00Z");
    let run = store.start_run(started).await.unwrap();
    let fresh = store.runs(10).await.unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].status, RunStatus::Running);
    assert_eq!(fresh[0].started_at, started);
    assert_eq!(fresh[0].finished_at, None);
    assert_eq!(fresh[0].pages, 0);

    let at = ts("2026-01-02T04:00:01Z");
    let first: Vec<_> = (1..=4).map(|id| row(id, json!({"id": id}))).collect();
    store
        .apply_page(run, "res.partner", &first, CHECKPOINT, at)
        .await
        .unwrap();
    let mut second: Vec<_> = (3..=6).map(|id| row(id, json!({"id": id}))).collect();
    second[0] = row(3, json!({"id": 3, "changed": true}));
    store
        .apply_page(run, "res.partner", &second, CHECKPOINT, at)
        .await
        .unwrap();
    store
        .apply_page(run, "res.partner", &[], CHECKPOINT, at)
        .await
        .unwrap();
    store
        .reconcile(run, "res.partner", &[2, 3, 4, 5, 6], at)
        .await
        .unwrap();
    let finished = ts("2026-01-02T04:01:00Z");
    store
        .finish_run(
            run,
            RunStatus::Partial,
            Some("sale.order: access denied"),
            finished,
        )
        .await
        .unwrap();

    let record = &store.runs(10).await.unwrap()[0];
    assert_eq!(record.id, run);
    assert_eq!(record.status, RunStatus::Partial);
    assert_eq!(record.error.as_deref(), Some("sale.order: access denied"));
    assert_eq!(record.finished_at, Some(finished));
    assert_eq!(record.pages, 3);
    assert_eq!(record.fetched, 8);
    assert_eq!(record.inserted, 6);
    assert_eq!(record.updated, 1);
    assert_eq!(record.unchanged, 1);
    assert_eq!(record.deleted, 1);
    assert_eq!(record.restored, 0);

    assert!(
        store
            .finish_run(999, RunStatus::Success, None, finished)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn runs_newest_first_with_limit() {
    let (_dir, store) = store().await;
    let a = store.start_run(ts("2026-01-01T00:00:00Z")).await.unwrap();
    let c = store.start_run(ts("2026-01-03T00:00:00Z")).await.unwrap();
    let b = store.start_run(ts("2026-01-02T00:00:00Z")).await.unwrap();
    store
        .finish_run(a, RunStatus::Success, None, ts("2026-01-01T00:01:00Z"))
        .await
        .unwrap();
    store
        .finish_run(
            b,
            RunStatus::Failed,
            Some("boom"),
            ts("2026-01-02T00:01:00Z"),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = store.runs(10).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![c, b, a]);
    let ids: Vec<i64> = store.runs(2).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![c, b]);
    assert!(store.runs(0).await.unwrap().is_empty());
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[1].error.as_deref(), Some("boom"));
    assert_eq!(runs[2].status, RunStatus::Success);
    assert_eq!(runs[2].error, None);
}

#[tokio::test]
async fn prune_runs_deletes_only_older_runs() {
    let (_dir, store) = store().await;
    // Sub-second differences matter: stored text compares like the times it encodes.
    let old = store.start_run(ts("2026-01-01T00:00:00.5Z")).await.unwrap();
    let older = store.start_run(ts("2025-12-31T23:59:59Z")).await.unwrap();
    let kept = store.start_run(ts("2026-01-01T00:00:01Z")).await.unwrap();
    let newer = store.start_run(ts("2026-03-01T00:00:00Z")).await.unwrap();
    assert_eq!(
        store.prune_runs(ts("2026-01-01T00:00:01Z")).await.unwrap(),
        2
    );
    let ids: Vec<i64> = store.runs(10).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![newer, kept]);
    assert!(!ids.contains(&old) && !ids.contains(&older));
    assert_eq!(
        store.prune_runs(ts("2026-01-01T00:00:01Z")).await.unwrap(),
        0
    );
}
