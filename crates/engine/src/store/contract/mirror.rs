//! The mirror's tables: pages counted alike on every store, checkpoints, reconciliation,
//! runs.

use super::at;
use crate::change_feed::Checkpoint;
use crate::mirror_store::{MirrorRow, PageCounts, ReconcileCounts, RunStatus};
use crate::store::Store;
use jiff::Timestamp;
use serde_json::{Value, json};

const MODEL: &str = "res.partner";

/// A row whose hash is derived from its payload: the store only compares hashes.
fn row(odoo_id: i64, payload: Value) -> MirrorRow {
    let hash = format!("hash:{payload}");
    MirrorRow::new(
        odoo_id,
        payload,
        Some("2026-01-02T03:04:05Z".parse().unwrap()),
        hash,
    )
}

fn checkpoint(last_id: i64) -> Checkpoint {
    Checkpoint {
        second: "2026-01-02T03:04:05Z".parse().unwrap(),
        last_id,
    }
}

fn counts(inserted: u64, updated: u64, unchanged: u64) -> PageCounts {
    PageCounts {
        inserted,
        updated,
        unchanged,
    }
}

pub async fn pages_count_inserted_updated_and_unchanged_rows<S: Store>(store: &S) {
    let run = store.start_run(at(0), true).await.unwrap();
    let page = vec![
        row(1, json!({"id": 1, "name": "a"})),
        row(2, json!({"id": 2, "name": "b"})),
        row(3, json!({"id": 3, "name": "ñ 東京 \"quoted\" \\ back"})),
    ];
    let first = at(1);
    assert_eq!(
        store
            .apply_page(run, MODEL, &page, checkpoint(3), first)
            .await
            .unwrap(),
        counts(3, 0, 0)
    );
    assert_eq!(
        store
            .apply_page(run, MODEL, &page, checkpoint(3), at(2))
            .await
            .unwrap(),
        counts(0, 0, 3)
    );
    let mut changed = page.clone();
    changed[1] = row(2, json!({"id": 2, "name": "B"}));
    let third = at(3);
    assert_eq!(
        store
            .apply_page(run, MODEL, &changed, checkpoint(3), third)
            .await
            .unwrap(),
        counts(0, 1, 2)
    );
    let two = store.record(MODEL, 2).await.unwrap().unwrap();
    assert_eq!(two.payload, json!({"id": 2, "name": "B"}));
    assert_eq!(two.content_hash, changed[1].content_hash);
    assert_eq!(two.synced_at, third);
    assert_eq!(two.deleted_at, None);
    // An unchanged row is not rewritten: its synced_at tells when it last changed.
    assert_eq!(
        store.record(MODEL, 1).await.unwrap().unwrap().synced_at,
        first
    );
    assert_eq!(
        store.record(MODEL, 3).await.unwrap().unwrap().payload,
        page[2].payload
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (3, 0));
    assert_eq!(store.count("res.users").await.unwrap(), (0, 0));
    assert!(store.record("res.users", 1).await.unwrap().is_none());
}

/// Rows of one page are judged in order, each against what the rows before it left: an id
/// twice counts its second occurrence as updated when it differs, unchanged when it does not,
/// and the last occurrence is what is stored. (Release 0.1's stores disagreed here.)
pub async fn an_id_twice_in_one_page_is_judged_occurrence_by_occurrence<S: Store>(store: &S) {
    let run = store.start_run(at(0), true).await.unwrap();
    let page = [
        row(1, json!({"id": 1, "v": 1})),
        row(1, json!({"id": 1, "v": 1})),
        row(1, json!({"id": 1, "v": 2})),
        row(2, json!({"id": 2})),
    ];
    assert_eq!(
        store
            .apply_page(run, MODEL, &page, checkpoint(2), at(1))
            .await
            .unwrap(),
        counts(2, 1, 1)
    );
    assert_eq!(
        store.record(MODEL, 1).await.unwrap().unwrap().payload,
        json!({"id": 1, "v": 2})
    );
    // Against a stored row: the first occurrence is judged against it.
    let page = [
        row(1, json!({"id": 1, "v": 2})),
        row(1, json!({"id": 1, "v": 3})),
        row(2, json!({"id": 2, "v": 9})),
        row(2, json!({"id": 2})),
    ];
    assert_eq!(
        store
            .apply_page(run, MODEL, &page, checkpoint(2), at(2))
            .await
            .unwrap(),
        counts(0, 3, 1)
    );
    assert_eq!(
        store.record(MODEL, 2).await.unwrap().unwrap().payload,
        json!({"id": 2})
    );
    let recorded = store.runs(1).await.unwrap();
    assert_eq!(
        (
            recorded[0].inserted,
            recorded[0].updated,
            recorded[0].unchanged
        ),
        (2, 4, 2)
    );
}

pub async fn a_row_stamped_deleted_is_rewritten_when_it_comes_back<S: Store>(store: &S) {
    let run = store.start_run(at(0), true).await.unwrap();
    let page = vec![row(1, json!({"id": 1})), row(2, json!({"id": 2}))];
    store
        .apply_page(run, MODEL, &page, checkpoint(2), at(1))
        .await
        .unwrap();
    store.reconcile(run, MODEL, &[2], at(2)).await.unwrap();
    assert_eq!(
        store.record(MODEL, 1).await.unwrap().unwrap().deleted_at,
        Some(at(2))
    );
    // Same payload, same hash: still rewritten because the row was stamped deleted.
    assert_eq!(
        store
            .apply_page(run, MODEL, &page, checkpoint(2), at(3))
            .await
            .unwrap(),
        counts(0, 1, 1)
    );
    let back = store.record(MODEL, 1).await.unwrap().unwrap();
    assert_eq!(back.deleted_at, None);
    assert_eq!(back.synced_at, at(3));
    assert_eq!(store.count(MODEL).await.unwrap(), (2, 0));
}

pub async fn checkpoints_and_timestamps_round_trip_to_the_microsecond<S: Store>(store: &S) {
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);
    let run = store.start_run(at(0), true).await.unwrap();
    let fine: Timestamp = "2026-01-02T03:04:05.123456Z".parse().unwrap();
    for saved in [
        Checkpoint {
            second: fine,
            last_id: 0,
        },
        checkpoint(41),
        checkpoint(Checkpoint::SECOND_DONE),
    ] {
        store
            .apply_page(run, MODEL, &[], saved, at(1))
            .await
            .unwrap();
        assert_eq!(store.checkpoint(MODEL).await.unwrap(), Some(saved));
    }
    assert_eq!(store.checkpoint("sale.order").await.unwrap(), None);
    store.reset_checkpoint(MODEL).await.unwrap();
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);
    store.reset_checkpoint(MODEL).await.unwrap();
    let mut dated = row(7, json!({"id": 7}));
    dated.write_date = Some(fine);
    let mut undated = row(8, json!({"id": 8}));
    undated.write_date = None;
    store
        .apply_page(run, MODEL, &[dated, undated], checkpoint(8), fine)
        .await
        .unwrap();
    let seven = store.record(MODEL, 7).await.unwrap().unwrap();
    assert_eq!(seven.write_date, Some(fine));
    assert_eq!(seven.synced_at, fine);
    assert_eq!(
        store.record(MODEL, 8).await.unwrap().unwrap().write_date,
        None
    );
}

pub async fn reconciliation_stamps_and_restores_and_never_deletes<S: Store>(store: &S) {
    let run = store.start_run(at(0), true).await.unwrap();
    let page: Vec<MirrorRow> = (1..=5).map(|id| row(id, json!({"id": id}))).collect();
    store
        .apply_page(run, MODEL, &page, checkpoint(5), at(1))
        .await
        .unwrap();
    // Another model's rows are not touched by this model's reconciliation.
    store
        .apply_page(run, "sale.order", &page, checkpoint(5), at(1))
        .await
        .unwrap();
    // A reconciliation of a run that does not exist fails whole and stamps nothing.
    assert!(store.reconcile(9_999, MODEL, &[1], at(2)).await.is_err());
    assert_eq!(store.count(MODEL).await.unwrap(), (5, 0));
    assert_eq!(
        store
            .reconcile(run, MODEL, &[1, 2, 4], at(2))
            .await
            .unwrap(),
        ReconcileCounts {
            deleted: 2,
            restored: 0
        }
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (5, 2));
    assert_eq!(store.live_ids(MODEL).await.unwrap(), [1, 2, 4]);
    // Stamping twice changes nothing; an id back restores its row; duplicates count once.
    assert_eq!(
        store
            .reconcile(run, MODEL, &[1, 2, 3, 3, 4], at(3))
            .await
            .unwrap(),
        ReconcileCounts {
            deleted: 0,
            restored: 1
        }
    );
    assert_eq!(
        store.record(MODEL, 5).await.unwrap().unwrap().deleted_at,
        Some(at(2))
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (5, 1));
    let recorded = store.runs(1).await.unwrap();
    assert_eq!((recorded[0].deleted, recorded[0].restored), (2, 1));
    assert_eq!(store.count("sale.order").await.unwrap(), (5, 0));
}

pub async fn run_counters_sum_over_pages_and_runs_are_pruned_by_start<S: Store>(store: &S) {
    let old = store.start_run(at(0), true).await.unwrap();
    store
        .finish_run(old, RunStatus::Success, None, at(1))
        .await
        .unwrap();
    let run = store.start_run(at(100), true).await.unwrap();
    for n in 0..3 {
        let page = vec![row(n, json!({"id": n})), row(n + 10, json!({"id": n + 10}))];
        store
            .apply_page(run, MODEL, &page, checkpoint(n), at(101))
            .await
            .unwrap();
    }
    store
        .finish_run(
            run,
            RunStatus::Partial,
            Some("sale.order: timeout"),
            at(102),
        )
        .await
        .unwrap();
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    let newest = &runs[0];
    assert_eq!(newest.id, run);
    assert_eq!(newest.status, RunStatus::Partial);
    assert_eq!(newest.error.as_deref(), Some("sale.order: timeout"));
    assert_eq!((newest.pages, newest.fetched, newest.inserted), (3, 6, 6));
    assert_eq!(newest.finished_at, Some(at(102)));
    assert_eq!(store.prune_runs(at(50)).await.unwrap(), 1);
    assert_eq!(store.runs(10).await.unwrap().len(), 1);
    // A page of a run that does not exist fails whole: no rows, no checkpoint.
    let before = store.checkpoint(MODEL).await.unwrap();
    assert!(
        store
            .apply_page(
                9_999,
                MODEL,
                &[row(99, json!({"id": 99}))],
                checkpoint(99),
                at(103)
            )
            .await
            .is_err()
    );
    assert!(store.record(MODEL, 99).await.unwrap().is_none());
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), before);
}

/// Runs a dead process left `running` are found and marked interrupted, their counters kept:
/// those that held the run lock as soon as someone else holds it, the others once their
/// heartbeat is stale. Live runs and finished runs are left alone.
pub async fn runs_left_running_by_a_dead_process_are_marked_interrupted<S: Store>(store: &S) {
    // A locked run that committed a page, then its process was killed.
    let killed = store.start_run(at(0), true).await.unwrap();
    store
        .apply_page(
            killed,
            MODEL,
            &[row(1, json!({"id": 1})), row(2, json!({"id": 2}))],
            checkpoint(2),
            at(1),
        )
        .await
        .unwrap();
    store.beat_run(killed, at(30)).await.unwrap();
    // A run without the lock (`lock_strategy: none`) whose heartbeat goes on, and one whose
    // heartbeat stopped at 60.
    let unlocked_alive = store.start_run(at(0), false).await.unwrap();
    let unlocked_dead = store.start_run(at(0), false).await.unwrap();
    store.beat_run(unlocked_dead, at(60)).await.unwrap();
    store.beat_run(unlocked_alive, at(600)).await.unwrap();
    // A finished run is never touched.
    let finished = store.start_run(at(0), true).await.unwrap();
    store
        .finish_run(finished, RunStatus::Success, None, at(5))
        .await
        .unwrap();

    // Without the lock, the locked run cannot be judged by it; its heartbeat (30) is not
    // older than 20 either: nothing happens.
    assert!(
        store
            .interrupt_abandoned_runs(false, at(20))
            .await
            .unwrap()
            .is_empty()
    );
    // Holding the lock proves the locked run's process gone; the stale unlocked one is too.
    let mut marked = store.interrupt_abandoned_runs(true, at(300)).await.unwrap();
    marked.sort_unstable();
    assert_eq!(marked, vec![killed, unlocked_dead]);
    let runs: std::collections::HashMap<i64, _> = store
        .runs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|run| (run.id, run))
        .collect();
    let interrupted = &runs[&killed];
    assert_eq!(interrupted.status, RunStatus::Interrupted);
    assert_eq!(
        (interrupted.pages, interrupted.fetched, interrupted.inserted),
        (1, 2, 2)
    );
    // Its end is its last sign of life.
    assert_eq!(interrupted.finished_at, Some(at(30)));
    assert_eq!(interrupted.heartbeat_at, Some(at(30)));
    assert!(
        interrupted
            .error
            .as_deref()
            .unwrap()
            .starts_with("interrupted"),
        "{interrupted:?}"
    );
    assert_eq!(runs[&unlocked_dead].status, RunStatus::Interrupted);
    assert_eq!(runs[&unlocked_dead].finished_at, Some(at(60)));
    assert_eq!(runs[&unlocked_alive].status, RunStatus::Running);
    assert_eq!(runs[&unlocked_alive].heartbeat_at, Some(at(600)));
    assert_eq!(runs[&finished].status, RunStatus::Success);
    assert_eq!(runs[&finished].finished_at, Some(at(5)));
    // Marked once: a second look finds nothing more, and a late beat does not revive it.
    assert!(
        store
            .interrupt_abandoned_runs(true, at(300))
            .await
            .unwrap()
            .is_empty()
    );
    store.beat_run(killed, at(700)).await.unwrap();
    let again = store.runs(10).await.unwrap();
    let killed_again = again.iter().find(|run| run.id == killed).unwrap();
    assert_eq!(killed_again.status, RunStatus::Interrupted);
    assert_eq!(killed_again.finished_at, Some(at(30)));
    // A run wrongly taken for dead that finishes after all records its own outcome.
    store
        .finish_run(unlocked_dead, RunStatus::Success, None, at(800))
        .await
        .unwrap();
    let runs = store.runs(10).await.unwrap();
    let revived = runs.iter().find(|run| run.id == unlocked_dead).unwrap();
    assert_eq!(revived.status, RunStatus::Success);
}
