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
async fn models_are_kept_apart() {
    let (_dir, store) = store().await;
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
async fn non_ascii_and_awkward_payloads_round_trip() {
    let (_dir, store) = store().await;
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
async fn pages_larger_than_one_statement_are_counted_right() {
    let (_dir, store) = store().await;
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
async fn two_stores_on_one_file_write_in_turn() {
    let (_dir, store) = store().await;
    let other = store_sqlite::SqliteStore::open(store.path()).await.unwrap();
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
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
