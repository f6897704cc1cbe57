//! A database written by release 0.1 (`tests/fixtures/release-0.1.sql`: a `pg_dump --inserts`
//! made by `store-sqlite/tests/fixtures/make-release-0.1.sh` with that release's binary) is
//! upgraded in place by this version: every connection, packet (with its status, attempts and
//! schedule), cycle, breaker state, cursor and mirrored row is kept, and no packet delivered
//! before is claimable again. Every later schema change keeps this test passing.

use crate::support::TestDb;
use engine::change_feed::Checkpoint;
use engine::mirror_store::MirrorStore;
use engine::order_delivery::ConnectionStore;
use engine::store::{
    BreakerStatus, CoordinationStore, OutboxStore, PacketFilter, SyncLogStore, TenantStore,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::collections::{BTreeMap, BTreeSet};
use store_pg::PgStore;

const FIXTURE: &str = include_str!("../fixtures/release-0.1.sql");

/// A 0.1 connection: id, name, active, cursor second and id.
type OldConnection = (String, String, bool, Option<String>, Option<i64>);
/// A 0.1 packet: status, version, attempts, next attempt, body.
type OldPacket = (String, i64, i64, String, String);

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// An empty database (the template is migrated: drop everything first) holding the dump.
async fn load_fixture(db: &TestDb) -> PgConnection {
    let mut connection = PgConnection::connect_with(&db.options()).await.unwrap();
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(FIXTURE))
        .execute(&mut connection)
        .await
        .unwrap();
    // The dump empties the session's search_path; this connection is closed after reading.
    connection
        .execute("SET search_path TO public")
        .await
        .unwrap();
    connection
}

#[tokio::test]
async fn a_release_0_1_database_migrates_in_place_and_keeps_everything() {
    let db = TestDb::new().await;
    let mut old = load_fixture(&db).await;
    let text_ts = |column: &str| {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    };
    let connections: Vec<OldConnection> = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, name, is_active, {} AS second, cursor_id FROM connections ORDER BY name",
        text_ts("cursor_second")
    )))
    .fetch_all(&mut old)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("id"),
            r.get("name"),
            r.get("is_active"),
            r.get("second"),
            r.get("cursor_id"),
        )
    })
    .collect();
    let packets: BTreeMap<String, OldPacket> = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, status, version, attempts, {} AS next, body FROM outbox",
        text_ts("next_attempt_at")
    )))
    .fetch_all(&mut old)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<String, _>("id"),
            (
                r.get("status"),
                r.get("version"),
                r.get("attempts"),
                r.get("next"),
                r.get("body"),
            ),
        )
    })
    .collect();
    let cycles: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_log")
        .fetch_one(&mut old)
        .await
        .unwrap();
    let breakers: BTreeMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT connection_id, state FROM breaker_states")
            .fetch_all(&mut old)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let max_cycle: i64 = sqlx::query_scalar("SELECT max(id) FROM sync_log")
        .fetch_one(&mut old)
        .await
        .unwrap();
    let secrets: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, odoo_api_key, webhook_secret FROM connections ORDER BY id")
            .fetch_all(&mut old)
            .await
            .unwrap();
    old.close().await.unwrap();
    assert_eq!(connections.len(), 3);
    assert!(breakers.values().any(|state| state == "open"));

    let store = PgStore::connect(db.options())
        .await
        .unwrap()
        .with_keyring(db.keyring());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();

    // The keys and secrets 0.1 kept in clear are sealed in place and read back the same.
    for (id, api_key, secret) in &secrets {
        let connection = store.connection(id).await.unwrap().unwrap();
        assert_eq!(connection.odoo_api_key.expose(), api_key);
        assert_eq!(connection.webhook_secret.expose(), secret);
    }
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT odoo_api_key FROM tenants UNION ALL SELECT secrets FROM flows")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 6);
    for value in &stored {
        assert!(value.contains("enc:v1:"), "{value}");
        for (_, api_key, secret) in &secrets {
            assert!(!value.contains(api_key.as_str()) && !value.contains(secret.as_str()));
        }
    }

    let now_connections = store.connections().await.unwrap();
    assert_eq!(now_connections.len(), 3);
    for (id, name, active, second, last_id) in &connections {
        let now = now_connections.iter().find(|c| &c.id == id).unwrap();
        assert_eq!(&now.name, name);
        assert_eq!(now.is_active, *active);
        let expected = second.as_ref().map(|second| Checkpoint {
            second: ts(second),
            last_id: last_id.unwrap(),
        });
        assert_eq!(now.cursor, expected, "{name}'s cursor");
    }
    let stored = store.packets(&PacketFilter::default()).await.unwrap();
    assert_eq!(stored.len(), packets.len());
    for packet in &stored {
        let (status, version, attempts, next, body) = &packets[&packet.id];
        assert_eq!(packet.status.as_str(), status);
        assert_eq!(i64::from(packet.version), *version);
        assert_eq!(i64::from(packet.attempts), *attempts);
        assert_eq!(packet.next_attempt_at, ts(next));
        assert_eq!(&packet.payload, body);
    }
    let far = Timestamp::now() + SignedDuration::from_hours(24 * 365);
    let claimed = store
        .claim_due(
            "upgrade-test",
            None,
            far,
            SignedDuration::from_secs(60),
            10_000,
        )
        .await
        .unwrap();
    let claimed: BTreeSet<String> = claimed.into_iter().map(|p| p.id).collect();
    let pending: BTreeSet<String> = packets
        .iter()
        .filter(|(_, p)| p.0 == "PENDING")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!claimed.is_empty());
    assert!(claimed.is_subset(&pending), "{claimed:?}");
    assert_eq!(
        store.cycles(None, 0).await.unwrap().len(),
        usize::try_from(cycles).unwrap()
    );
    for breaker in store.breaker_states().await.unwrap() {
        assert_eq!(
            breaker.status,
            BreakerStatus::parse(&breakers[&breaker.flow_id]).unwrap()
        );
    }
    // New cycles get new ids after the copied ones.
    store
        .record_cycles(&[engine::store::CycleLog {
            flow_id: now_connections[0].id.clone(),
            started_at: Timestamp::now(),
            found: 0,
            sent: 0,
            failed: 0,
            held_back: 0,
            error_message: None,
            duration_ms: 1,
        }])
        .await
        .unwrap();
    assert!(store.cycles(None, 1).await.unwrap()[0].id > max_cycle);
    assert!(store.checkpoint("sale.order").await.unwrap().is_some());
    assert!(store.count("res.partner").await.unwrap().0 > 0);

    // The runs table (rebuilt on SQLite by migration 0007) keeps every run; a new run gets an
    // id after theirs, and a run left running is found once the lock proves it dead.
    let runs = store.runs(10).await.unwrap();
    assert!(!runs.is_empty());
    assert!(
        runs.iter()
            .all(|run| run.status != engine::mirror_store::RunStatus::Running),
        "{runs:?}"
    );
    let started = Timestamp::now();
    let next = store.start_run(started, true).await.unwrap();
    assert!(runs.iter().all(|run| run.id < next), "{runs:?} then {next}");
    assert_eq!(
        store
            .interrupt_abandoned_runs(true, started - SignedDuration::from_hours(1))
            .await
            .unwrap(),
        vec![next]
    );
    assert_eq!(store.tenants().await.unwrap().len(), 3);
    store.close().await;
}

/// The migrations the previous release (commit 7fcb78a) shipped, with the SHA-256 of each
/// file as it shipped them: a database it wrote has exactly these applied, and sqlx refuses
/// to open one whose applied migration has since changed. A shipped migration never
/// changes; what comes later goes into a new one.
const SHIPPED: [(&str, &str); 10] = [
    (
        "0001_mirror.sql",
        "19fb46252f2ab2f32ad6920fc936224eac2a0c9c789922504f65659d93ac781c",
    ),
    (
        "0002_delivery.sql",
        "4efdc3d7f3a5adb143fb92e813432676f204693bb6a1e63d805d6673977857f2",
    ),
    (
        "0003_breaker.sql",
        "d3432c4b2c482a43ea9d0f248fbebf8afa3f29a30b024217f11c5607ce9f2437",
    ),
    (
        "0004_heartbeats.sql",
        "ba5fc8089648d31af8cca7e882c283371d89f42c188f7fb4335caf73b9ea79e3",
    ),
    (
        "0005_outbox_due_by_connection.sql",
        "54d65e8d838c1ff104bdff260047b1af25efa251e95c3625be19b3d99f977abd",
    ),
    (
        "0006_engine.sql",
        "a9bb52e52ca2a27f71582caa6273ef439b057ba8762444125677b6a56f57ece6",
    ),
    (
        "0007_interrupted_runs.sql",
        "6e4753fdff6b10f2ccd6768b58a9a11ac033e88f7b554899e0ac472b84a4c740",
    ),
    (
        "0008_marketplace.sql",
        "c3e5b05d8f5a7b8cce0036b7dcd0ec0489e24ffe8f05351779a90dccfbd323ef",
    ),
    (
        "0009_marketplace_log.sql",
        "1ccc32043db971e44325679c4bc8fe0070c86b3b649bdd2cf5e739a1aab8f792",
    ),
    (
        "0012_marketplace_outbound.sql",
        "0298e59411f67b3ee673c989a72e4942bd5004bdd0f18f34e909fb2fab0297b7",
    ),
];

#[test]
fn the_migrations_a_release_shipped_are_unchanged() {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for (name, shipped) in SHIPPED {
        let text = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&text)),
            shipped,
            "{name} changed after a release shipped it: put the change in a new migration"
        );
    }
}
