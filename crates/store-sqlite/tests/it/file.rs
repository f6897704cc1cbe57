use std::os::unix::fs::PermissionsExt;

use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorStore, StoreError};
use serde_json::json;
use store_sqlite::SqliteStore;

use crate::support::{row, store, ts};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn file_and_parents_are_created_private() {
    let (dir, store) = store().await;
    let path = dir.path().join("data").join("mirror.db");
    assert_eq!(store.path(), path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("data")), 0o700);

    // Write something so the WAL exists, then check SQLite gave it the same permissions.
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
    store
        .apply_page(
            run,
            "res.partner",
            &[row(1, json!({"id": 1}))],
            Checkpoint {
                second: ts("2026-01-02T03:00:00Z"),
                last_id: 1,
            },
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join("data").join(format!("mirror.db{suffix}"));
        // The WAL and its index exist while a connection has the file open.
        assert!(side.exists(), "{}", side.display());
        assert_eq!(mode(&side), 0o600, "{}", side.display());
    }
    let lock = store.try_lock().await.unwrap().unwrap();
    assert_eq!(mode(&store.lock_path()), 0o600);
    store.unlock(lock).await.unwrap();
}

#[tokio::test]
async fn journal_mode_is_wal() {
    let (dir, store) = store().await;
    drop(store);
    // SQLite records WAL mode in the file header (bytes 18 and 19 are 2 in WAL mode).
    let header = std::fs::read(dir.path().join("data").join("mirror.db")).unwrap();
    assert_eq!(&header[18..20], &[2, 2]);
}

#[tokio::test]
async fn data_survives_reopening() {
    let (_dir, store) = store().await;
    let run = store
        .start_run(ts("2026-01-02T04:00:00Z"), true)
        .await
        .unwrap();
    store
        .apply_page(
            run,
            "res.partner",
            &[row(1, json!({"id": 1}))],
            Checkpoint {
                second: ts("2026-01-02T03:00:00Z"),
                last_id: Checkpoint::SECOND_DONE,
            },
            ts("2026-01-02T04:00:01Z"),
        )
        .await
        .unwrap();
    store.close().await;
    let reopened = SqliteStore::open(store.path()).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.count("res.partner").await.unwrap(), (1, 0));
    assert_eq!(
        reopened.checkpoint("res.partner").await.unwrap(),
        Some(Checkpoint {
            second: ts("2026-01-02T03:00:00Z"),
            last_id: Checkpoint::SECOND_DONE,
        })
    );
}

#[tokio::test]
async fn lock_excludes_a_second_store_until_released() {
    let (_dir, store) = store().await;
    let other = SqliteStore::open(store.path()).await.unwrap();

    let held = store.try_lock().await.unwrap().expect("first lock");
    assert!(other.try_lock().await.unwrap().is_none());
    // Not reentrant either: the same store asking again is another run.
    assert!(store.try_lock().await.unwrap().is_none());
    store.unlock(held).await.unwrap();

    let held = other.try_lock().await.unwrap().expect("lock after unlock");
    assert!(store.try_lock().await.unwrap().is_none());
    // Dropping the guard (as a dying process would) releases it as well.
    drop(held);
    assert!(store.try_lock().await.unwrap().is_some());
}

#[tokio::test]
async fn opening_a_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let error = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let result = async {
        let store = SqliteStore::open(&path).await?;
        store.migrate().await
    }
    .await;
    assert!(result.is_err());
}
