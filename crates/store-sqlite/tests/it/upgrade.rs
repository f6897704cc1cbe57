//! A store written by release 0.1 (`tests/fixtures/release-0.1.db`, made by
//! `tests/fixtures/make-release-0.1.sh` with that release's binary) opens with this version
//! and migrates in place: every connection, packet (with its status, attempts and schedule),
//! cycle, breaker state, cursor and mirrored row is kept, and no packet delivered before is
//! claimable again. Every later schema change keeps this test passing.

use engine::change_feed::Checkpoint;
use engine::mirror_store::MirrorStore;
use engine::order_delivery::ConnectionStore;
use engine::store::{
    BreakerStatus, CoordinationStore, OutboxStore, PacketFilter, PacketStatus, SyncLogStore,
    TenantStore,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::{Connection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use store_sqlite::SqliteStore;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-0.1.db");

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A 0.1 connection: id, name, active, interval, webhook URL, cursor second and id.
type OldConnection = (
    String,
    String,
    bool,
    i64,
    String,
    Option<String>,
    Option<i64>,
);
/// A 0.1 packet: status, event, version, attempts, next attempt, body.
type OldPacket = (String, String, i64, i64, String, String);

/// What release 0.1 stored, read straight from its tables.
struct Old {
    connections: Vec<OldConnection>,
    packets: BTreeMap<String, OldPacket>,
    cycles: usize,
    breakers: BTreeMap<String, (String, Option<String>)>,
    mirrored: i64,
}

async fn read_old(path: &std::path::Path) -> Old {
    let mut db = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let connections = sqlx::query(
        "SELECT id, name, is_active, polling_interval_seconds, webhook_url, cursor_second, \
         cursor_id FROM connections ORDER BY name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("id"),
            r.get("name"),
            r.get("is_active"),
            r.get("polling_interval_seconds"),
            r.get("webhook_url"),
            r.get("cursor_second"),
            r.get("cursor_id"),
        )
    })
    .collect();
    let packets = sqlx::query(
        "SELECT id, status, event, version, attempts, next_attempt_at, body FROM outbox",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<String, _>("id"),
            (
                r.get("status"),
                r.get("event"),
                r.get("version"),
                r.get("attempts"),
                r.get("next_attempt_at"),
                r.get("body"),
            ),
        )
    })
    .collect();
    let cycles: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_log")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let breakers = sqlx::query("SELECT connection_id, state, open_until FROM breaker_states")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("connection_id"),
                (r.get("state"), r.get("open_until")),
            )
        })
        .collect();
    let mirrored: i64 = sqlx::query_scalar("SELECT count(*) FROM odoo_raw_records")
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    Old {
        connections,
        packets,
        cycles: usize::try_from(cycles).unwrap(),
        breakers,
        mirrored,
    }
}

#[tokio::test]
async fn a_release_0_1_store_migrates_in_place_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odoo-bridge.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    let old = read_old(&path).await;
    assert_eq!(
        old.connections.len(),
        3,
        "the fixture holds three connections"
    );
    assert!(old.packets.values().any(|p| p.0 == "DELIVERED"));
    assert!(old.packets.values().any(|p| p.0 == "PENDING"));
    assert!(old.packets.values().any(|p| p.0 == "FAILED"));
    assert!(old.breakers.values().any(|b| b.0 == "open"));

    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    // Migrating again changes nothing.
    store.migrate().await.unwrap();

    // Connections: names, ids, settings and cursors.
    let connections = store.connections().await.unwrap();
    assert_eq!(connections.len(), 3);
    for (id, name, active, interval, webhook_url, second, last_id) in &old.connections {
        let now = connections.iter().find(|c| &c.id == id).unwrap();
        assert_eq!(&now.name, name);
        assert_eq!(
            now.tenant_id, *id,
            "a migrated connection's tenant keeps its id"
        );
        assert_eq!(now.is_active, *active);
        assert_eq!(i64::from(now.polling_interval_seconds), *interval);
        assert_eq!(&now.webhook_url, webhook_url);
        let expected = second.as_ref().map(|second| Checkpoint {
            second: ts(second),
            last_id: last_id.unwrap(),
        });
        assert_eq!(now.cursor, expected, "{name}'s cursor");
        assert!(!now.webhook_secret.expose().is_empty());
    }

    // Packets: every one, with its status, attempts, schedule and exact body.
    let packets = store.packets(&PacketFilter::default()).await.unwrap();
    assert_eq!(packets.len(), old.packets.len());
    for packet in &packets {
        let (status, event, version, attempts, next, body) = &old.packets[&packet.id];
        assert_eq!(packet.status.as_str(), status);
        assert_eq!(&packet.event, event);
        assert_eq!(i64::from(packet.version), *version);
        assert_eq!(i64::from(packet.attempts), *attempts);
        assert_eq!(packet.next_attempt_at, ts(next));
        assert_eq!(&packet.payload, body);
        assert_eq!(packet.subject.model, "sale.order");
        assert_eq!(packet.target, "webhook");
        assert!(
            packet
                .id
                .starts_with(&format!("{}_{}_v", packet.flow_id, packet.subject.id))
        );
    }

    // Not one delivered (or failed) packet is claimable, however late: only pending ones, and
    // of an order with two pending versions only the first.
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
    let claimed: BTreeSet<&str> = claimed.iter().map(|p| p.id.as_str()).collect();
    let pending: BTreeSet<&str> = old
        .packets
        .iter()
        .filter(|(_, p)| p.0 == "PENDING")
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(claimed.is_subset(&pending), "{claimed:?}");
    for (id, packet) in &old.packets {
        if packet.0 == "PENDING" && !claimed.contains(id.as_str()) {
            // Held back only by its own earlier pending version.
            let order = id.rsplit_once("_v").unwrap().0;
            assert!(
                old.packets
                    .iter()
                    .any(|(other, p)| other.starts_with(&format!("{order}_v"))
                        && p.0 == "PENDING"
                        && p.2 < packet.2),
                "{id} should be claimable"
            );
        }
    }

    // The sync log, the breaker states and the mirror.
    assert_eq!(store.cycles(None, 0).await.unwrap().len(), old.cycles);
    let breakers = store.breaker_states().await.unwrap();
    assert_eq!(breakers.len(), old.breakers.len());
    for breaker in &breakers {
        let (state, open_until) = &old.breakers[&breaker.flow_id];
        assert_eq!(breaker.status, BreakerStatus::parse(state).unwrap());
        assert_eq!(breaker.open_until, open_until.as_deref().map(ts));
        assert_eq!(breaker.target, "webhook");
    }
    let (partners, _) = store.count("res.partner").await.unwrap();
    let (orders, _) = store.count("sale.order").await.unwrap();
    assert_eq!(i64::try_from(partners + orders).unwrap(), old.mirrored);
    assert!(store.checkpoint("sale.order").await.unwrap().is_some());
    assert_eq!(store.runs(10).await.unwrap().len(), 2);

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

    // The migrated store is fully usable: a new connection, a lease, a delivered packet.
    let first = &connections[0];
    assert!(
        store
            .acquire_flow_lease(&first.id, "w", Timestamp::now(), far)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .flow(None, &first.id)
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        first.tenant_id
    );
    let any_pending = packets
        .iter()
        .find(|p| p.status == PacketStatus::Pending)
        .unwrap();
    assert!(any_pending.max_attempts > 0);
}

/// Every occurrence of `needle` in the files of the store at `path` (the file and its WAL).
fn files_holding(path: &std::path::Path, needle: &str) -> Vec<String> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), std::path::PathBuf::from(wal)]
        .iter()
        .filter_map(|file| Some((file, std::fs::read(file).ok()?)))
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(file, _)| file.display().to_string())
        .collect()
}

/// Release 0.1 kept the Odoo API keys and webhook secrets in clear. On first open they are
/// sealed in place: the same values come back through the store, and neither the file nor
/// its WAL holds any of them any more (nor in free pages); the key is generated beside the
/// file, mode 0600, and another key is refused with a message naming what to set.
#[tokio::test]
async fn a_release_0_1_stores_secrets_are_sealed_in_place_and_no_file_keeps_them() {
    use engine::store::{EncryptionKey, KeySource, Keyring};
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odoo-bridge.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    let mut db = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let old: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, odoo_api_key, webhook_secret FROM connections ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    db.close().await.unwrap();
    assert_eq!(old.len(), 3);
    for (_, api_key, secret) in &old {
        assert!(
            !files_holding(&path, api_key).is_empty(),
            "0.1 kept it in clear"
        );
        assert!(
            !files_holding(&path, secret).is_empty(),
            "0.1 kept it in clear"
        );
    }

    let key_file = SqliteStore::key_file_beside(&path);
    let store = SqliteStore::open(&path)
        .await
        .unwrap()
        .with_keyring(Keyring::new(KeySource::file(key_file.clone())));
    store.migrate().await.unwrap();
    for (id, api_key, secret) in &old {
        let connection = store.connection(id).await.unwrap().unwrap();
        assert_eq!(connection.odoo_api_key.expose(), api_key);
        assert_eq!(connection.webhook_secret.expose(), secret);
    }
    // Opening again reseals nothing.
    assert_eq!(
        store
            .reseal_secrets(&engine::store::Reseal::PlaintextOnly)
            .await
            .unwrap(),
        0
    );
    store.close().await;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for (_, api_key, secret) in &old {
        assert_eq!(files_holding(&path, api_key), Vec::<String>::new());
        assert_eq!(files_holding(&path, secret), Vec::<String>::new());
    }

    // Another key: a clear refusal naming the variable, never garbage.
    let other = SqliteStore::open(&path)
        .await
        .unwrap()
        .with_keyring(Keyring::new(KeySource::key(
            EncryptionKey::generate().unwrap(),
        )));
    let refused = other.connections().await.unwrap_err().to_string();
    assert!(
        refused.contains("ODOO_BRIDGE_ENCRYPTION_KEY")
            && refused.contains("was encrypted with key"),
        "{refused}"
    );
    for (_, api_key, secret) in &old {
        assert!(!refused.contains(api_key.as_str()) && !refused.contains(secret.as_str()));
    }
    other.close().await;
}

/// The migrations the previous release (commit 7fcb78a) shipped, with the SHA-256 of each
/// file as it shipped them: a store it wrote has exactly these applied, and sqlx refuses to
/// open a store whose applied migration has since changed. A shipped migration never changes;
/// what comes later goes into a new one.
const SHIPPED: [(&str, &str); 10] = [
    (
        "0001_mirror.sql",
        "78e38ec4b27dae3e52d6aae35c2f9298c135bdc4b16770353d9e02fd9ba15f5a",
    ),
    (
        "0002_delivery.sql",
        "23f90b8e382bcb54131eafb677dcd743f52ce48d952875d8bd4935bdd2dab527",
    ),
    (
        "0003_breaker.sql",
        "3e127072869c8cfd39019f736b8e4009d9a9a29e27dc9cc2fc4111e8ec8d1f1f",
    ),
    (
        "0004_heartbeats.sql",
        "07edfd2eb54ac03623b30359fef277c9e48b3c9d49c67190d3f6630756f987ef",
    ),
    (
        "0005_outbox_due_by_connection.sql",
        "54d65e8d838c1ff104bdff260047b1af25efa251e95c3625be19b3d99f977abd",
    ),
    (
        "0006_engine.sql",
        "16904e79fec175f89cd62d82ba245621f7c4d984222536d2e9365a41ec49ebc9",
    ),
    (
        "0007_interrupted_runs.sql",
        "b314b2bd9006130ad2e0a962a27b2c999c6061ec9c2a675493dcdfc0a2f48a9d",
    ),
    (
        "0008_marketplace.sql",
        "10f4d227262774a1205d431219719d66cfff1b8b1ca9a43df60f5311b45db052",
    ),
    (
        "0009_marketplace_log.sql",
        "10212ada6010abeec66444c2c9c2859f6d071bf779df8607063d58a25d9deaf5",
    ),
    (
        "0012_marketplace_outbound.sql",
        "6749db956160b09612655cd2fabfe1a6af4a16964bc6f5a06df2514b64dec3e1",
    ),
];

fn migrations_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

#[test]
fn the_migrations_a_release_shipped_are_unchanged() {
    use sha2::{Digest, Sha256};
    for (name, shipped) in SHIPPED {
        let text = std::fs::read(migrations_dir().join(name)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&text)),
            shipped,
            "{name} changed after a release shipped it: put the change in a new migration"
        );
    }
}

#[tokio::test]
async fn a_store_of_the_previous_release_opens_and_takes_the_migrations_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    // The previous release's store: release 0.1's, migrated by that release (its shipped
    // migrations only, 0010 and 0011 among those it lacks).
    let shipped = dir.path().join("shipped");
    std::fs::create_dir(&shipped).unwrap();
    for (name, _) in SHIPPED {
        std::fs::copy(migrations_dir().join(name), shipped.join(name)).unwrap();
    }
    let path = dir.path().join("odoo-bridge.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    let packets_before = {
        let mut connection = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(shipped.as_path())
            .await
            .unwrap()
            .run(&mut connection)
            .await
            .unwrap();
        let statuses: Vec<(String, String)> =
            sqlx::query_as("SELECT id, status FROM packets ORDER BY id")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        connection.close().await.unwrap();
        statuses
    };
    assert!(!packets_before.is_empty());

    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let mut connection = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN \
         ('marketplace_catalog', 'store_environment', 'flow_hints') ORDER BY name",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        tables,
        ["flow_hints", "marketplace_catalog", "store_environment"]
    );
    // Every packet is kept as it was: nothing delivered is due again.
    let after: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM packets ORDER BY id")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    assert_eq!(after, packets_before);
}
