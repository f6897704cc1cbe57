//! `apply_page`: counting, rewriting, checkpoints, atomicity.

use crate::support::{TestDb, at, checkpoint, row};
use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, PageCounts};
use serde_json::json;

const MODEL: &str = "sale.order";

fn counts(inserted: u64, updated: u64, unchanged: u64) -> PageCounts {
    PageCounts {
        inserted,
        updated,
        unchanged,
    }
}

#[tokio::test]
async fn insert_unchanged_updated_are_counted() {
    let db = TestDb::new().await;
    let store = &db.store;
    let run = store.start_run(at(1_800_000_000, 0)).await.unwrap();
    let page = [
        row(1, json!({"id": 1, "name": "a"}), "h1"),
        row(2, json!({"id": 2, "name": "b"}), "h2"),
        row(3, json!({"id": 3, "name": "c"}), "h3"),
    ];
    let first = store
        .apply_page(run, MODEL, &page, checkpoint(100, 3), at(1_800_000_001, 0))
        .await
        .unwrap();
    assert_eq!(first, counts(3, 0, 0));

    // The same page again (an overlap re-read) writes nothing and keeps synced_at.
    let again = store
        .apply_page(run, MODEL, &page, checkpoint(100, 3), at(1_800_000_002, 0))
        .await
        .unwrap();
    assert_eq!(again, counts(0, 0, 3));
    let kept = store.record(MODEL, 1).await.unwrap().unwrap();
    assert_eq!(kept.synced_at, at(1_800_000_001, 0));

    // One record changed, one is new.
    let changed = [
        row(2, json!({"id": 2, "name": "b2"}), "h2'"),
        row(3, json!({"id": 3, "name": "c"}), "h3"),
        row(4, json!({"id": 4, "name": "d"}), "h4"),
    ];
    let third = store
        .apply_page(
            run,
            MODEL,
            &changed,
            checkpoint(101, 4),
            at(1_800_000_003, 0),
        )
        .await
        .unwrap();
    assert_eq!(third, counts(1, 1, 1));
    let rewritten = store.record(MODEL, 2).await.unwrap().unwrap();
    assert_eq!(rewritten.payload, json!({"id": 2, "name": "b2"}));
    assert_eq!(rewritten.content_hash, "h2'");
    assert_eq!(rewritten.synced_at, at(1_800_000_003, 0));
    assert_eq!(store.count(MODEL).await.unwrap(), (4, 0));

    // An empty page still saves its checkpoint.
    let empty = store
        .apply_page(run, MODEL, &[], checkpoint(102, 0), at(1_800_000_004, 0))
        .await
        .unwrap();
    assert_eq!(empty, PageCounts::default());
    assert_eq!(
        store.checkpoint(MODEL).await.unwrap(),
        Some(checkpoint(102, 0))
    );
}

#[tokio::test]
async fn duplicate_ids_in_a_page_keep_the_last() {
    let db = TestDb::new().await;
    let run = db.store.start_run(at(1_800_000_000, 0)).await.unwrap();
    let page = [row(1, json!({"v": 1}), "a"), row(1, json!({"v": 2}), "b")];
    let page_counts = db
        .store
        .apply_page(run, MODEL, &page, checkpoint(1, 1), at(1_800_000_000, 0))
        .await
        .unwrap();
    assert_eq!(page_counts, counts(1, 0, 1));
    let stored = db.store.record(MODEL, 1).await.unwrap().unwrap();
    assert_eq!(stored.payload, json!({"v": 2}));
}

#[tokio::test]
async fn reapplying_a_deleted_row_clears_deleted_at() {
    let db = TestDb::new().await;
    let store = &db.store;
    let run = store.start_run(at(1_800_000_000, 0)).await.unwrap();
    let page = [row(5, json!({"id": 5}), "h5")];
    store
        .apply_page(run, MODEL, &page, checkpoint(1, 5), at(1_800_000_000, 0))
        .await
        .unwrap();
    let reconciled = store
        .reconcile(run, MODEL, &[], at(1_800_000_010, 0))
        .await
        .unwrap();
    assert_eq!(reconciled.deleted, 1);
    let stamped = store.record(MODEL, 5).await.unwrap().unwrap();
    assert_eq!(stamped.deleted_at, Some(at(1_800_000_010, 0)));

    // Odoo returns it again, unchanged: the row is rewritten, which clears the stamp.
    let again = store
        .apply_page(run, MODEL, &page, checkpoint(1, 5), at(1_800_000_020, 0))
        .await
        .unwrap();
    assert_eq!(again, counts(0, 1, 0));
    let back = store.record(MODEL, 5).await.unwrap().unwrap();
    assert_eq!(back.deleted_at, None);
    assert_eq!(back.synced_at, at(1_800_000_020, 0));
    assert_eq!(store.count(MODEL).await.unwrap(), (1, 0));
}

#[tokio::test]
async fn checkpoint_and_timestamps_round_trip_to_the_microsecond() {
    let db = TestDb::new().await;
    let store = &db.store;
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);
    let run = store.start_run(at(1_800_000_000, 0)).await.unwrap();

    let done = Checkpoint {
        second: at(1_763_000_000, 0),
        last_id: Checkpoint::SECOND_DONE,
    };
    let mut exact = row(9, json!({"id": 9}), "h9");
    exact.write_date = Some(at(1_763_000_000, 999_999));
    let synced_at = at(1_800_000_000, 123_456);
    store
        .apply_page(run, MODEL, &[exact], done, synced_at)
        .await
        .unwrap();
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), Some(done));
    let stored = store.record(MODEL, 9).await.unwrap().unwrap();
    assert_eq!(stored.write_date, Some(at(1_763_000_000, 999_999)));
    assert_eq!(stored.synced_at, synced_at);

    // The checkpoint's second is stored as given, microseconds included.
    let odd = Checkpoint {
        second: at(1_763_000_001, 654_321),
        last_id: 0,
    };
    store
        .apply_page(run, MODEL, &[], odd, synced_at)
        .await
        .unwrap();
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), Some(odd));

    // Nanoseconds beyond the microsecond are truncated, not rounded up.
    let mut nanos = row(10, json!({"id": 10}), "h10");
    nanos.write_date = Some(jiff::Timestamp::new(1_763_000_000, 999_999_999).unwrap());
    nanos.payload = json!({"id": 10});
    store
        .apply_page(run, MODEL, &[nanos], done, synced_at)
        .await
        .unwrap();
    let stored = store.record(MODEL, 10).await.unwrap().unwrap();
    assert_eq!(stored.write_date, Some(at(1_763_000_000, 999_999)));

    // A record without a cursor value.
    let mut no_date = row(11, json!({"id": 11}), "h11");
    no_date.write_date = None;
    store
        .apply_page(run, MODEL, &[no_date], done, synced_at)
        .await
        .unwrap();
    assert_eq!(
        store.record(MODEL, 11).await.unwrap().unwrap().write_date,
        None
    );

    // Checkpoints are per model, and a reset forgets only the model's (rows stay).
    store
        .apply_page(run, "res.partner", &[], checkpoint(5, 1), synced_at)
        .await
        .unwrap();
    store.reset_checkpoint(MODEL).await.unwrap();
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);
    assert_eq!(
        store.checkpoint("res.partner").await.unwrap(),
        Some(checkpoint(5, 1))
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (3, 0));
}

#[tokio::test]
async fn a_failed_page_leaves_nothing() {
    let db = TestDb::new().await;
    let store = &db.store;
    let page = [
        row(1, json!({"id": 1}), "h1"),
        row(2, json!({"id": 2}), "h2"),
    ];
    // No such run: the counters' UPDATE finds no row, after the upsert and the checkpoint
    // were written in the same transaction, which must roll back.
    let error = store
        .apply_page(
            424_242,
            MODEL,
            &page,
            checkpoint(7, 2),
            at(1_800_000_000, 0),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("424242"), "{error}");
    assert_eq!(store.count(MODEL).await.unwrap(), (0, 0));
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);

    // A statement failing midway (JSONB cannot hold U+0000) rolls back too.
    let run = store.start_run(at(1_800_000_000, 0)).await.unwrap();
    let bad = [
        row(1, json!({"id": 1}), "h1"),
        row(2, json!({"name": "a\u{0}b"}), "h2"),
    ];
    assert!(
        store
            .apply_page(run, MODEL, &bad, checkpoint(7, 2), at(1_800_000_000, 0))
            .await
            .is_err()
    );
    assert_eq!(store.count(MODEL).await.unwrap(), (0, 0));
    assert_eq!(store.checkpoint(MODEL).await.unwrap(), None);
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs[0].pages, 0);
}
