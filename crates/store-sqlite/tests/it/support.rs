use engine::mirror_store::{MirrorRow, MirrorStore};
use jiff::Timestamp;
use serde_json::Value;
use store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A migrated store in a fresh directory; keep the `TempDir` alive as long as the store.
pub async fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data").join("mirror.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A row whose hash is derived from its payload: the store only compares hashes, it does not
/// compute them, so any stable function will do here.
pub fn row(odoo_id: i64, payload: Value) -> MirrorRow {
    let hash = format!("hash:{payload}");
    MirrorRow::new(odoo_id, payload, Some(ts("2026-01-02T03:04:05Z")), hash)
}

/// A fresh migrated store for a contract test, with the directory that holds its file.
pub async fn fresh() -> (TempDir, SqliteStore) {
    store().await
}

/// A second store on the same file, as another process would open it.
pub async fn again(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("data").join("mirror.db"))
        .await
        .unwrap()
}
