use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, PageCounts};
use serde_json::json;

use crate::support::{row, store, ts};

fn checkpoint(last_id: i64) -> Checkpoint {
    Checkpoint {
        second: ts("2026-01-02T03:04:05Z"),
        last_id,
    }
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let (dir, store) = store().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // A second process opening the same file migrates again without harm.
    let again = store_sqlite::SqliteStore::open(store.path()).await.unwrap();
    again.migrate().await.unwrap();
    assert_eq!(again.count("res.partner").await.unwrap(), (0, 0));
    drop(dir);
}

#[tokio::test]
async fn apply_page_inserts_then_unchanged_then_updated() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page = vec![
        row(1, json!({"id": 1, "name": "a"})),
        row(2, json!({"id": 2, "name": "b"})),
        row(3, json!({"id": 3, "name": "c"})),
    ];
    let first = ts("2026-01-02T04:00:01Z");
    let counts = store
        .apply_page(run, "res.partner", &page, checkpoint(3), first)
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 3,
            updated: 0,
            unchanged: 0
        }
    );

    let counts = store
        .apply_page(
            run,
            "res.partner",
            &page,
            checkpoint(3),
            ts("2026-01-02T04:00:02Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 0,
            updated: 0,
            unchanged: 3
        }
    );

    let mut changed = page.clone();
    changed[1] = row(2, json!({"id": 2, "name": "B"}));
    let third = ts("2026-01-02T04:00:03Z");
    let counts = store
        .apply_page(run, "res.partner", &changed, checkpoint(3), third)
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 0,
            updated: 1,
            unchanged: 2
        }
    );

    let two = store.record("res.partner", 2).await.unwrap().unwrap();
    assert_eq!(two.payload, json!({"id": 2, "name": "B"}));
    assert_eq!(two.content_hash, changed[1].content_hash);
    assert_eq!(two.synced_at, third);
    assert_eq!(two.write_date, Some(ts("2026-01-02T03:04:05Z")));
    assert_eq!(two.deleted_at, None);
    // An unchanged row is not rewritten: its synced_at tells when it last changed.
    let one = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(one.synced_at, first);
    assert_eq!(store.count("res.partner").await.unwrap(), (3, 0));
    assert_eq!(store.count("res.users").await.unwrap(), (0, 0));
    assert!(store.record("res.users", 1).await.unwrap().is_none());
}

#[tokio::test]
async fn models_are_kept_apart() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let at = ts("2026-01-02T04:00:01Z");
    let page = vec![row(7, json!({"id": 7}))];
    let counts = store
        .apply_page(run, "res.partner", &page, checkpoint(7), at)
        .await
        .unwrap();
    assert_eq!(counts.inserted, 1);
    let counts = store
        .apply_page(run, "sale.order", &page, checkpoint(7), at)
        .await
        .unwrap();
    assert_eq!(counts.inserted, 1);
    assert_eq!(store.count("res.partner").await.unwrap(), (1, 0));
    assert_eq!(store.count("sale.order").await.unwrap(), (1, 0));
}

#[tokio::test]
async fn stamped_deleted_row_reapplied_is_rewritten_and_cleared() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page = vec![row(1, json!({"id": 1})), row(2, json!({"id": 2}))];
    store
        .apply_page(
            run,
            "res.partner",
            &page,
            checkpoint(2),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    store
        .reconcile(run, "res.partner", &[2], ts("2026-01-02T04:00:02Z"))
        .await
        .unwrap();
    let stamped = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(stamped.deleted_at, Some(ts("2026-01-02T04:00:02Z")));

    // Same payload, same hash: still rewritten because the row was stamped deleted.
    let later = ts("2026-01-02T04:00:03Z");
    let counts = store
        .apply_page(run, "res.partner", &page, checkpoint(2), later)
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 0,
            updated: 1,
            unchanged: 1
        }
    );
    let back = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(back.deleted_at, None);
    assert_eq!(back.synced_at, later);
    assert_eq!(store.count("res.partner").await.unwrap(), (2, 0));
}

#[tokio::test]
async fn checkpoint_is_saved_with_the_page_and_read_back() {
    let (_dir, store) = store().await;
    assert_eq!(store.checkpoint("res.partner").await.unwrap(), None);
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let at = ts("2026-01-02T04:00:01Z");
    for saved in [
        checkpoint(0),
        checkpoint(41),
        checkpoint(Checkpoint::SECOND_DONE),
    ] {
        store
            .apply_page(run, "res.partner", &[], saved, at)
            .await
            .unwrap();
        assert_eq!(store.checkpoint("res.partner").await.unwrap(), Some(saved));
    }
    assert!(
        store
            .checkpoint("res.partner")
            .await
            .unwrap()
            .unwrap()
            .is_second_done()
    );
    assert_eq!(store.checkpoint("sale.order").await.unwrap(), None);

    store.reset_checkpoint("res.partner").await.unwrap();
    assert_eq!(store.checkpoint("res.partner").await.unwrap(), None);
    // Resetting what is not there is fine.
    store.reset_checkpoint("res.partner").await.unwrap();
}

#[tokio::test]
async fn failed_page_leaves_nothing_behind() {
    let (_dir, store) = store().await;
    // No run 999: the run update fails after the rows were upserted inside the transaction,
    // so the whole page (rows and checkpoint) must roll back.
    let page = vec![row(1, json!({"id": 1})), row(2, json!({"id": 2}))];
    let error = store
        .apply_page(
            999,
            "res.partner",
            &page,
            checkpoint(2),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("run 999"), "{error}");
    assert_eq!(store.count("res.partner").await.unwrap(), (0, 0));
    assert_eq!(store.checkpoint("res.partner").await.unwrap(), None);

    // And the connection that failed is usable again.
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let counts = store
        .apply_page(
            run,
            "res.partner",
            &page,
            checkpoint(2),
            ts("2026-01-02T04:00:02Z"),
        )
        .await
        .unwrap();
    assert_eq!(counts.inserted, 2);
}

#[tokio::test]
async fn non_ascii_and_awkward_payloads_round_trip() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let payload = json!({
        "id": 1,
        "name": "Ærøskøbing Køkken — 東京支店 🦀",
        "street": "Straße 1\n\"quoted\" \\ back\u{0}slash",
        "partner_id": [5, "Émile Zola"],
        "amount_total": 1234.5,
        "big": 9_007_199_254_740_993_i64,
        "active": false,
        "tags": [],
    });
    store
        .apply_page(
            run,
            "res.partner",
            &[row(1, payload.clone())],
            checkpoint(1),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    let stored = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(stored.payload, payload);
    assert_eq!(stored.model, "res.partner");
}

#[tokio::test]
async fn row_without_write_date() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let mut bare = row(1, json!({"id": 1}));
    bare.write_date = None;
    store
        .apply_page(
            run,
            "res.partner",
            &[bare],
            checkpoint(1),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    let stored = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(stored.write_date, None);
}

#[tokio::test]
async fn pages_larger_than_one_statement_are_counted_right() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page: Vec<_> = (1..=1_234)
        .map(|id| row(id, json!({"id": id, "v": 1})))
        .collect();
    let counts = store
        .apply_page(
            run,
            "res.partner",
            &page,
            checkpoint(1_234),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    assert_eq!(counts.inserted, 1_234);
    let mut changed = page.clone();
    for row_ in changed.iter_mut().step_by(3) {
        *row_ = row(row_.odoo_id, json!({"id": row_.odoo_id, "v": 2}));
    }
    let counts = store
        .apply_page(
            run,
            "res.partner",
            &changed,
            checkpoint(1_234),
            ts("2026-01-02T04:00:02Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 0,
            updated: 412,
            unchanged: 822
        }
    );
    assert_eq!(store.count("res.partner").await.unwrap(), (1_234, 0));
    let stored = store.record("res.partner", 1_234).await.unwrap().unwrap();
    assert_eq!(stored.payload, json!({"id": 1_234, "v": 2}));
}

#[tokio::test]
async fn an_id_twice_in_one_page_is_judged_against_itself() {
    let (_dir, store) = store().await;
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let page = vec![
        row(1, json!({"id": 1, "v": 1})),
        row(1, json!({"id": 1, "v": 1})),
        row(1, json!({"id": 1, "v": 2})),
    ];
    let counts = store
        .apply_page(
            run,
            "res.partner",
            &page,
            checkpoint(1),
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        PageCounts {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );
    let stored = store.record("res.partner", 1).await.unwrap().unwrap();
    assert_eq!(stored.payload, json!({"id": 1, "v": 2}));
}

#[tokio::test]
async fn two_stores_on_one_file_write_in_turn() {
    let (_dir, store) = store().await;
    let other = store_sqlite::SqliteStore::open(store.path()).await.unwrap();
    let run = store.start_run(ts("2026-01-02T04:00:00Z")).await.unwrap();
    let at = ts("2026-01-02T04:00:01Z");
    let pages: Vec<Vec<_>> = (0..8)
        .map(|n| {
            (n * 300 + 1..=(n + 1) * 300)
                .map(|id| row(id, json!({"id": id})))
                .collect()
        })
        .collect();
    let mut tasks = Vec::new();
    for (n, page) in pages.into_iter().enumerate() {
        let target = if n % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            target
                .apply_page(run, "res.partner", &page, checkpoint(1), at)
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().inserted, 300);
    }
    assert_eq!(store.count("res.partner").await.unwrap(), (2_400, 0));
    let runs = store.runs(1).await.unwrap();
    assert_eq!(runs[0].pages, 8);
    assert_eq!(runs[0].inserted, 2_400);
}
