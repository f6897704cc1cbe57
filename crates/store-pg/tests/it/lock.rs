//! The advisory run lock, seen from two stores (two pools, as two processes would have).

use crate::support::TestDb;
use engine::mirror_store::MirrorStore;
use std::time::Duration;
use store_pg::{LOCK_KEY, PgStore};

async fn other_store(db: &TestDb) -> PgStore {
    PgStore::connect(db.options()).await.unwrap()
}

#[tokio::test]
async fn second_store_waits_for_unlock() {
    // Advisory locks are scoped to the database, so tests in their own databases running at
    // the same time do not see each other's lock.
    let db = TestDb::new().await;
    let other = other_store(&db).await;

    let lock = db
        .store
        .try_lock()
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(other.try_lock().await.unwrap().is_none());
    // Not re-entrant through the pool either: a second try in the same store gets another
    // connection, which is another session.
    assert!(db.store.try_lock().await.unwrap().is_none());

    db.store.unlock(lock).await.unwrap();
    let taken = other.try_lock().await.unwrap().expect("free after unlock");
    assert!(db.store.try_lock().await.unwrap().is_none());
    other.unlock(taken).await.unwrap();
    other.close().await;
}

#[tokio::test]
async fn dropping_the_lock_closes_its_connection() {
    let db = TestDb::new().await;
    let other = other_store(&db).await;

    let lock = db
        .store
        .try_lock()
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(other.try_lock().await.unwrap().is_none());
    drop(lock);

    // The server ends the session when it sees the socket closed: poll briefly.
    let mut taken = None;
    for _ in 0..50 {
        taken = other.try_lock().await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = taken.expect("the lock is released once its connection is closed");

    // No connection of the first pool still holds it (it was not returned to the pool).
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid::bigint = ($1 >> 32) & 4294967295 AND objid::bigint = $1 & 4294967295",
    )
    .bind(LOCK_KEY)
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(holders, 1, "only the other store's session holds it");
    other.unlock(taken).await.unwrap();
    other.close().await;
}
