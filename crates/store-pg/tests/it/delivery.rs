//! The delivery tables (connections, outbox, sync log) in a real PostgreSQL, a fresh
//! database per test.

use std::collections::HashSet;

use engine::change_feed::Checkpoint;
use engine::delivery_store::{
    ApiKey, AttemptOutcome, Connection, ConnectionStats, CycleLog, DeliveryStore, EnqueueCounts,
    Event, EventSet, NewPacket, PacketFilter, PacketStatus, WebhookSecret,
};
use engine::mirror_store::{MirrorStore, StoreError};
use jiff::{SignedDuration, Timestamp};
use sqlx::postgres::PgPoolOptions;
use store_pg::PgStore;

use crate::support::TestDb;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const API_KEY: &str = "odoo-api-key-do-not-print-0001";
const SECRET: &str = "webhook-secret-do-not-print-0001";

fn connection(id: &str, name: &str) -> Connection {
    Connection {
        id: id.to_owned(),
        name: name.to_owned(),
        odoo_url: "https://odoo.example.com".to_owned(),
        odoo_db: "odoo".to_owned(),
        odoo_username: "api@example.com".to_owned(),
        odoo_api_key: ApiKey::new(API_KEY),
        webhook_url: "https://hooks.example.com/odoo".to_owned(),
        webhook_secret: WebhookSecret::new(SECRET).unwrap(),
        store_id: "store-1".to_owned(),
        client_id: "client-1".to_owned(),
        polling_interval_seconds: 60,
        odoo_min_delay_ms: 250,
        is_active: true,
        events: EventSet::default(),
        last_sync_at: None,
        cursor: None,
        created_at: ts("2026-01-02T03:04:05.123456Z"),
        updated_at: ts("2026-01-02T03:04:05.123456Z"),
    }
}

fn packet(connection_id: &str, order: i64, version: u32, created_at: Timestamp) -> NewPacket {
    NewPacket {
        id: format!("{connection_id}_{order}_v{version}"),
        connection_id: connection_id.to_owned(),
        odoo_order_id: order,
        external_id: format!("odoo_odoo_{order}"),
        event: if version == 1 {
            Event::OrderConfirmed
        } else {
            Event::OrderUpdated
        },
        version,
        body: format!(r#"{{"event":"x","order":{order},"version":{version}}}"#),
        content_hash: format!("hash-{order}-{version}"),
        max_attempts: 5,
        created_at,
    }
}

fn cursor(second: &str, last_id: i64) -> Checkpoint {
    Checkpoint {
        second: ts(second),
        last_id,
    }
}

const T0: &str = "2026-03-01T10:00:00.000001Z";

fn at(offset_seconds: i64) -> Timestamp {
    ts(T0) + SignedDuration::from_secs(offset_seconds)
}

/// A fresh database holding connection `c1`.
async fn with_connection() -> TestDb {
    let db = TestDb::new().await;
    db.store.migrate_delivery().await.unwrap();
    db.store
        .insert_connection(&connection("c1", "one"))
        .await
        .unwrap();
    db
}

async fn enqueue(store: &PgStore, packets: &[NewPacket]) -> EnqueueCounts {
    let connection_id = packets[0].connection_id.clone();
    store
        .enqueue_page(&connection_id, packets, cursor(T0, 1), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_run_in_any_order_any_number_of_times() {
    let db = TestDb::new().await;
    let store = &db.store;
    store.migrate_delivery().await.unwrap();
    store.migrate().await.unwrap();
    store.migrate_delivery().await.unwrap();
    store.migrate_delivery().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.connections().await.unwrap().is_empty());

    // Delivery first on an empty database, then the mirror.
    sqlx::query(
        "DROP TABLE breaker_states, outbox, sync_log, connections, odoo_raw_records, odoo_sync_state, \
         odoo_sync_runs, _sqlx_migrations",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.migrate_delivery().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.count("res.partner").await.unwrap(), (0, 0));
    assert!(store.connections().await.unwrap().is_empty());
}

#[tokio::test]
async fn connections_round_trip_update_and_conflict() {
    let db = TestDb::new().await;
    let store = &db.store;
    let mut first = connection("a1b2c3d4e5f60718", "Le Juste Odoo");
    first.cursor = Some(cursor(
        "2026-01-02T03:04:05.654321Z",
        Checkpoint::SECOND_DONE,
    ));
    first.last_sync_at = Some(ts("2026-01-02T03:04:06.000007Z"));
    first.events = EventSet::parse_list("order.confirmed,order.cancelled").unwrap();
    first.is_active = false;
    store.insert_connection(&first).await.unwrap();
    let second = connection("0000000000000002", "Empresa X");
    store.insert_connection(&second).await.unwrap();

    assert_eq!(
        store.connection("a1b2c3d4e5f60718").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.connection("Le Juste Odoo").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.connection("nobody").await.unwrap(), None);
    let names: Vec<String> = store
        .connections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Empresa X", "Le Juste Odoo"]);

    // A taken name or id is a conflict naming the key, never the secrets.
    for duplicate in [
        connection("0000000000000003", "Empresa X"),
        connection("0000000000000002", "Another"),
    ] {
        let error = store.insert_connection(&duplicate).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
        let text = error.to_string();
        assert!(!text.contains(API_KEY) && !text.contains(SECRET), "{text}");
    }
    let error = store
        .insert_connection(&connection("0000000000000003", "Empresa X"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"already exists: connection name "Empresa X""#
    );
    let error = store
        .insert_connection(&connection("0000000000000002", "Another"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"already exists: connection id "0000000000000002""#
    );

    // Editing rotates the key and renames, but keeps cursor, last sync and creation time.
    let mut edited = first.clone();
    edited.name = "Le Juste".to_owned();
    edited.odoo_api_key = ApiKey::new("rotated-key");
    edited.webhook_secret = WebhookSecret::new("rotated-secret").unwrap();
    edited.polling_interval_seconds = 120;
    edited.is_active = true;
    edited.cursor = None;
    edited.last_sync_at = None;
    edited.created_at = ts("2030-01-01T00:00:00Z");
    edited.updated_at = ts("2026-01-03T00:00:00.5Z");
    assert!(store.update_connection(&edited).await.unwrap());
    let stored = store.connection("Le Juste").await.unwrap().unwrap();
    assert_eq!(stored.odoo_api_key.expose(), "rotated-key");
    assert_eq!(stored.webhook_secret.expose(), "rotated-secret");
    assert_eq!(stored.polling_interval_seconds, 120);
    assert!(stored.is_active);
    assert_eq!(stored.cursor, first.cursor);
    assert_eq!(stored.last_sync_at, first.last_sync_at);
    assert_eq!(stored.created_at, first.created_at);
    assert_eq!(stored.updated_at, ts("2026-01-03T00:00:00.5Z"));

    let mut taken = edited.clone();
    taken.name = "Empresa X".to_owned();
    let error = store.update_connection(&taken).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert!(
        !store
            .update_connection(&connection("ffffffffffffffff", "ghost"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn deleting_a_connection_deletes_its_outbox_and_log() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    enqueue(
        store,
        &[packet("c1", 1, 1, at(0)), packet("c1", 2, 1, at(0))],
    )
    .await;
    enqueue(store, &[packet("c2", 1, 1, at(0))]).await;
    for id in ["c1", "c2"] {
        store.log_cycle(&cycle(id, at(0))).await.unwrap();
    }

    assert!(store.delete_connection("c1").await.unwrap());
    assert!(!store.delete_connection("c1").await.unwrap());
    assert_eq!(store.connection("c1").await.unwrap(), None);
    let left = store.packets(&PacketFilter::default()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].connection_id, "c2");
    let cycles = store.cycles(None, 0).await.unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].log.connection_id, "c2");
    assert_eq!(store.packet("c1_1_v1").await.unwrap(), None);
}

#[tokio::test]
async fn enqueue_is_idempotent_and_moves_the_cursor() {
    let db = with_connection().await;
    let store = &db.store;
    let page = [
        packet("c1", 1, 1, at(0)),
        packet("c1", 2, 1, at(1)),
        packet("c1", 3, 1, at(2)),
    ];
    let counts = store
        .enqueue_page("c1", &page, cursor("2026-03-01T09:59:59Z", 3), Some(at(5)))
        .await
        .unwrap();
    assert_eq!(
        counts,
        EnqueueCounts {
            inserted: 3,
            already_stored: 0
        }
    );
    let again = store
        .enqueue_page(
            "c1",
            &page,
            cursor("2026-03-01T09:59:59Z", Checkpoint::SECOND_DONE),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        EnqueueCounts {
            inserted: 0,
            already_stored: 3
        }
    );
    let stored = store.connection("c1").await.unwrap().unwrap();
    assert_eq!(
        stored.cursor,
        Some(cursor("2026-03-01T09:59:59Z", Checkpoint::SECOND_DONE))
    );
    // `None` leaves the last sync time alone.
    assert_eq!(stored.last_sync_at, Some(at(5)));

    let packet = store.packet("c1_2_v1").await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Pending);
    assert_eq!(packet.attempts, 0);
    assert_eq!(packet.max_attempts, 5);
    assert_eq!(packet.next_attempt_at, at(1));
    assert_eq!(packet.created_at, at(1));
    assert_eq!(packet.body, page[1].body);
    assert_eq!(packet.event, Event::OrderConfirmed);
    assert_eq!(packet.lease_owner, None);

    // A page holding the same (order, version) twice stores it once.
    let doubled = [packet_new("c1", 9, 1), packet_new("c1", 9, 1)];
    let counts = enqueue(store, &doubled).await;
    assert_eq!(
        counts,
        EnqueueCounts {
            inserted: 1,
            already_stored: 1
        }
    );

    store.mark_synced("c1", at(60)).await.unwrap();
    assert_eq!(
        store.connection("c1").await.unwrap().unwrap().last_sync_at,
        Some(at(60))
    );
    assert!(store.mark_synced("nope", at(60)).await.is_err());
}

fn packet_new(connection_id: &str, order: i64, version: u32) -> NewPacket {
    packet(connection_id, order, version, at(0))
}

#[tokio::test]
async fn a_failing_page_leaves_neither_packets_nor_cursor() {
    let db = with_connection().await;
    let store = &db.store;
    let before = cursor("2026-03-01T09:00:00Z", 7);
    store
        .enqueue_page("c1", &[packet_new("c1", 1, 1)], before, Some(at(0)))
        .await
        .unwrap();

    // The page's second packet reuses order 1's packet id for another version.
    let mut clash = packet_new("c1", 1, 2);
    clash.id = "c1_1_v1".to_owned();
    let error = store
        .enqueue_page(
            "c1",
            &[packet_new("c1", 2, 1), clash, packet_new("c1", 3, 1)],
            cursor("2026-03-01T09:30:00Z", 1),
            Some(at(30)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(store.packet("c1_2_v1").await.unwrap(), None);
    let stored = store.connection("c1").await.unwrap().unwrap();
    assert_eq!(stored.cursor, Some(before));
    assert_eq!(stored.last_sync_at, Some(at(0)));
    assert_eq!(
        store.packets(&PacketFilter::default()).await.unwrap().len(),
        1
    );

    // An unknown connection stores nothing either.
    let error = store
        .enqueue_page("ghost", &[packet_new("ghost", 1, 1)], before, None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
    // And a packet of another connection is refused before anything is written.
    assert!(
        store
            .enqueue_page("c1", &[packet_new("c2", 5, 1)], before, None)
            .await
            .is_err()
    );
    assert_eq!(
        store.packets(&PacketFilter::default()).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn latest_packets_gives_the_newest_version_per_order() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    enqueue(
        store,
        &[
            packet_new("c1", 1, 1),
            packet_new("c1", 1, 2),
            packet_new("c1", 1, 3),
            packet_new("c1", 2, 1),
            packet_new("c1", 4, 1),
        ],
    )
    .await;
    enqueue(store, &[packet_new("c2", 3, 7)]).await;
    let mut latest = store.latest_packets("c1", &[1, 2, 3]).await.unwrap();
    latest.sort_by_key(|p| p.odoo_order_id);
    let summary: Vec<(i64, u32, &str)> = latest
        .iter()
        .map(|p| (p.odoo_order_id, p.version, p.content_hash.as_str()))
        .collect();
    assert_eq!(summary, [(1, 3, "hash-1-3"), (2, 1, "hash-2-1")]);
    assert_eq!(latest[0].event, Event::OrderUpdated);
    assert!(store.latest_packets("c1", &[]).await.unwrap().is_empty());
    let many: Vec<i64> = (0..2_000).collect();
    assert_eq!(store.latest_packets("c1", &many).await.unwrap().len(), 3);
}

fn ids(packets: &[engine::delivery_store::Packet]) -> Vec<&str> {
    packets.iter().map(|p| p.id.as_str()).collect()
}

const LEASE: SignedDuration = SignedDuration::from_secs(30);

#[tokio::test]
async fn a_connections_claim_takes_only_its_own_packets() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    enqueue(
        store,
        &[packet("c1", 10, 1, at(1)), packet("c1", 11, 1, at(4))],
    )
    .await;
    enqueue(
        store,
        &[packet("c2", 10, 1, at(2)), packet("c2", 12, 1, at(3))],
    )
    .await;

    let claimed = store
        .claim_due("w1", Some("c2"), at(10), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["c2_10_v1", "c2_12_v1"]);
    assert!(
        store
            .claim_due("w1", Some("c2"), at(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_due("w1", Some("nobody"), at(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due("w2", None, at(10), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["c1_10_v1", "c1_11_v1"]);
}

#[tokio::test]
async fn next_due_by_connection_gives_each_connections_earliest_pending_packet() {
    let db = with_connection().await;
    let store = &db.store;
    assert!(store.next_due_by_connection().await.unwrap().is_empty());
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    enqueue(
        store,
        &[packet("c1", 10, 1, at(5)), packet("c1", 11, 1, at(3))],
    )
    .await;
    enqueue(store, &[packet("c2", 12, 1, at(7))]).await;

    let due = store.next_due_by_connection().await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    assert_eq!(due["c1"], at(3));
    assert_eq!(due["c2"], at(7));

    // Leased packets still count; a delivered one no longer does.
    let claimed = store
        .claim_due("w1", Some("c1"), at(4), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["c1_11_v1"]);
    assert_eq!(store.next_due_by_connection().await.unwrap()["c1"], at(3));
    let delivered = AttemptOutcome::Delivered { at: at(6) };
    assert!(
        store
            .record_attempt("c1_11_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    assert_eq!(store.next_due_by_connection().await.unwrap()["c1"], at(5));
}

#[tokio::test]
async fn claims_go_by_due_time_and_never_let_an_update_overtake() {
    let db = with_connection().await;
    let store = &db.store;
    enqueue(
        store,
        &[
            packet("c1", 10, 1, at(5)),
            packet("c1", 10, 2, at(1)),
            packet("c1", 11, 1, at(3)),
            packet("c1", 12, 1, at(100)),
        ],
    )
    .await;

    // Order 10's v2 is due first but waits for v1; order 12 is not due yet.
    let claimed = store
        .claim_due("w1", None, at(10), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["c1_11_v1", "c1_10_v1"]);
    assert!(
        claimed
            .iter()
            .all(|p| p.lease_owner.as_deref() == Some("w1"))
    );
    assert_eq!(claimed[0].lease_until, Some(at(40)));
    // Leased packets are not claimed again, and v2 still waits.
    assert!(
        store
            .claim_due("w2", None, at(11), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let delivered = AttemptOutcome::Delivered { at: at(12) };
    assert!(
        store
            .record_attempt("c1_10_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt("c1_11_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    let claimed = store
        .claim_due("w2", None, at(13), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["c1_10_v2"]);
    assert!(
        store
            .record_attempt("c1_10_v2", "w2", &delivered)
            .await
            .unwrap()
    );

    let limited = store
        .claim_due("w3", None, at(200), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(ids(&limited), ["c1_12_v1"]);
    assert!(
        store
            .claim_due("w3", None, at(200), LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_or_discarded_version_lets_the_next_one_go() {
    let db = with_connection().await;
    let store = &db.store;
    enqueue(
        store,
        &[
            packet_new("c1", 1, 1),
            packet_new("c1", 1, 2),
            packet_new("c1", 2, 1),
            packet_new("c1", 2, 2),
        ],
    )
    .await;
    let claimed = store.claim_due("w", None, at(1), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["c1_1_v1", "c1_2_v1"]);
    let failed = AttemptOutcome::Failed {
        error: "HTTP 410 Gone".to_owned(),
        failure_class: "http_4xx".to_owned(),
    };
    assert!(store.record_attempt("c1_1_v1", "w", &failed).await.unwrap());
    // v1 of order 2 goes back to PENDING: its v2 keeps waiting.
    let retry = AttemptOutcome::Retry {
        error: "HTTP 503".to_owned(),
        failure_class: "http_5xx".to_owned(),
        next_attempt_at: at(100),
    };
    assert!(store.record_attempt("c1_2_v1", "w", &retry).await.unwrap());
    let claimed = store.claim_due("w", None, at(2), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["c1_1_v2"]);

    // Discarding order 2's v1 releases its v2.
    assert!(store.discard("c1_2_v1").await.unwrap());
    let claimed = store.claim_due("w", None, at(3), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["c1_2_v2"]);

    // A FAILED v1 that a person retries is sendable again (its v2 is leased already).
    assert!(store.retry_now("c1_1_v1", at(4)).await.unwrap());
    let claimed = store.claim_due("w", None, at(4), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["c1_1_v1"]);
}

#[tokio::test]
async fn expired_leases_are_reclaimable_and_stale_owners_lose() {
    let db = with_connection().await;
    let store = &db.store;
    enqueue(store, &[packet_new("c1", 1, 1), packet_new("c1", 2, 1)]).await;
    let claimed = store.claim_due("w1", None, at(0), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Still leased one microsecond before the end, and at the end itself.
    assert!(
        store
            .claim_due("w2", None, at(30), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = at(30) + SignedDuration::from_micros(1);
    let reclaimed = store.claim_due("w2", None, later, LEASE, 1).await.unwrap();
    assert_eq!(ids(&reclaimed), ["c1_1_v1"]);

    // w1 crashed and came back: its lease on order 1 is gone.
    let delivered = AttemptOutcome::Delivered { at: at(31) };
    assert!(
        !store
            .record_attempt("c1_1_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt("c1_1_v1", "w2", &delivered)
            .await
            .unwrap()
    );
    // Its expired lease on order 2 was not taken by anyone: the delivery is still recorded.
    assert!(
        store
            .record_attempt("c1_2_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    // A recorded attempt releases the lease; recording twice is refused.
    assert!(
        !store
            .record_attempt("c1_2_v1", "w1", &delivered)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_attempt("missing", "w1", &delivered)
            .await
            .unwrap()
    );
    let packet = store.packet("c1_1_v1").await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Delivered);
    assert_eq!(packet.attempts, 1);
    assert_eq!(packet.delivered_at, Some(at(31)));
    assert_eq!(packet.lease_owner, None);
    assert_eq!(packet.lease_until, None);
}

#[tokio::test]
async fn attempts_retry_and_fail() {
    let db = with_connection().await;
    let store = &db.store;
    enqueue(store, &[packet_new("c1", 1, 1)]).await;
    store.claim_due("w", None, at(0), LEASE, 1).await.unwrap();
    let retry = AttemptOutcome::Retry {
        error: "connection refused".to_owned(),
        failure_class: "network_error".to_owned(),
        next_attempt_at: at(60),
    };
    assert!(store.record_attempt("c1_1_v1", "w", &retry).await.unwrap());
    let packet = store.packet("c1_1_v1").await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Pending);
    assert_eq!(packet.attempts, 1);
    assert_eq!(packet.next_attempt_at, at(60));
    assert_eq!(packet.last_error.as_deref(), Some("connection refused"));
    assert_eq!(packet.failure_class.as_deref(), Some("network_error"));
    assert_eq!(packet.lease_owner, None);
    // Not due before its retry time.
    assert!(
        store
            .claim_due("w", None, at(59), LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_due("w", None, at(60), LEASE, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let failed = AttemptOutcome::Failed {
        error: "HTTP 500".to_owned(),
        failure_class: "http_5xx".to_owned(),
    };
    assert!(store.record_attempt("c1_1_v1", "w", &failed).await.unwrap());
    let packet = store.packet("c1_1_v1").await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Failed);
    assert_eq!(packet.attempts, 2);
    assert_eq!(packet.failure_class.as_deref(), Some("http_5xx"));
    assert!(
        store
            .claim_due("w", None, at(1_000), LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn retry_now_and_discard() {
    let db = with_connection().await;
    let store = &db.store;
    enqueue(
        store,
        &[
            packet_new("c1", 1, 1),
            packet_new("c1", 2, 1),
            packet_new("c1", 3, 1),
        ],
    )
    .await;
    store.claim_due("w", None, at(0), LEASE, 10).await.unwrap();
    let failed = AttemptOutcome::Failed {
        error: "gone".to_owned(),
        failure_class: "http_4xx".to_owned(),
    };
    store.record_attempt("c1_1_v1", "w", &failed).await.unwrap();
    store
        .record_attempt("c1_2_v1", "w", &AttemptOutcome::Delivered { at: at(1) })
        .await
        .unwrap();

    assert!(store.retry_now("c1_1_v1", at(50)).await.unwrap());
    let packet = store.packet("c1_1_v1").await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Pending);
    assert_eq!(packet.attempts, 0);
    assert_eq!(packet.next_attempt_at, at(50));
    assert_eq!(packet.lease_owner, None);
    // A delivered packet is never sent again; unknown ids are refused.
    assert!(!store.retry_now("c1_2_v1", at(50)).await.unwrap());
    assert!(!store.retry_now("nope", at(50)).await.unwrap());
    assert!(!store.discard("c1_2_v1").await.unwrap());

    // Discarding a leased packet takes it from its worker.
    assert!(store.discard("c1_3_v1").await.unwrap());
    assert!(!store.discard("c1_3_v1").await.unwrap());
    assert!(!store.retry_now("c1_3_v1", at(50)).await.unwrap());
    assert!(
        !store
            .record_attempt("c1_3_v1", "w", &AttemptOutcome::Delivered { at: at(2) })
            .await
            .unwrap()
    );
    assert_eq!(
        store.packet("c1_3_v1").await.unwrap().unwrap().status,
        PacketStatus::Discarded
    );
}

#[tokio::test]
async fn packets_are_listed_newest_first_and_filtered() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    enqueue(
        store,
        &[
            packet("c1", 1, 1, at(1)),
            packet("c1", 2, 1, at(3)),
            packet("c1", 3, 1, at(3)),
        ],
    )
    .await;
    enqueue(store, &[packet("c2", 1, 1, at(2))]).await;
    store.discard("c1_1_v1").await.unwrap();

    let all = store.packets(&PacketFilter::default()).await.unwrap();
    assert_eq!(ids(&all), ["c1_3_v1", "c1_2_v1", "c2_1_v1", "c1_1_v1"]);
    let filter = PacketFilter {
        connection_id: Some("c1".to_owned()),
        status: Some(PacketStatus::Pending),
        limit: 0,
    };
    assert_eq!(
        ids(&store.packets(&filter).await.unwrap()),
        ["c1_3_v1", "c1_2_v1"]
    );
    let filter = PacketFilter {
        connection_id: None,
        status: None,
        limit: 2,
    };
    assert_eq!(
        ids(&store.packets(&filter).await.unwrap()),
        ["c1_3_v1", "c1_2_v1"]
    );
    let filter = PacketFilter {
        connection_id: None,
        status: Some(PacketStatus::Discarded),
        limit: 10,
    };
    assert_eq!(ids(&store.packets(&filter).await.unwrap()), ["c1_1_v1"]);
}

fn cycle(connection_id: &str, started_at: Timestamp) -> CycleLog {
    CycleLog {
        connection_id: connection_id.to_owned(),
        started_at,
        orders_found: 3,
        orders_sent: 2,
        orders_failed: 1,
        error_message: None,
        duration_ms: 1_234,
    }
}

#[tokio::test]
async fn cycles_are_logged_listed_and_pruned() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    let first = store.log_cycle(&cycle("c1", at(0))).await.unwrap();
    let mut failed = cycle("c2", at(1));
    failed.error_message = Some("Odoo unreachable".to_owned());
    failed.orders_sent = 0;
    let second = store.log_cycle(&failed).await.unwrap();
    let third = store.log_cycle(&cycle("c1", at(2))).await.unwrap();
    assert!(first < second && second < third);

    let all = store.cycles(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [third, second, first]
    );
    assert_eq!(all[1].log, failed);
    let ones = store.cycles(Some("c1"), 1).await.unwrap();
    assert_eq!(ones.len(), 1);
    assert_eq!(ones[0].id, third);
    assert_eq!(ones[0].log, cycle("c1", at(2)));
    assert_eq!(store.cycles(Some("c1"), 0).await.unwrap().len(), 2);

    assert!(store.log_cycle(&cycle("ghost", at(0))).await.is_err());
    assert_eq!(store.prune_cycles(at(2)).await.unwrap(), 2);
    assert_eq!(store.cycles(None, 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn stats_count_delivered_since_pending_and_failed() {
    let db = with_connection().await;
    let store = &db.store;
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    store
        .insert_connection(&connection("c3", "three"))
        .await
        .unwrap();
    enqueue(
        store,
        &[
            packet_new("c1", 1, 1),
            packet_new("c1", 2, 1),
            packet_new("c1", 3, 1),
            packet_new("c1", 4, 1),
            packet_new("c1", 5, 1),
        ],
    )
    .await;
    enqueue(store, &[packet_new("c2", 1, 1)]).await;
    store.claim_due("w", None, at(0), LEASE, 10).await.unwrap();
    let delivered = |second| AttemptOutcome::Delivered { at: at(second) };
    store
        .record_attempt("c1_1_v1", "w", &delivered(10))
        .await
        .unwrap();
    store
        .record_attempt("c1_2_v1", "w", &delivered(20))
        .await
        .unwrap();
    let failed = AttemptOutcome::Failed {
        error: "gone".to_owned(),
        failure_class: "http_4xx".to_owned(),
    };
    store.record_attempt("c1_3_v1", "w", &failed).await.unwrap();
    store.discard("c1_4_v1").await.unwrap();

    let stats = store.connection_stats(at(20)).await.unwrap();
    assert_eq!(
        stats,
        [
            ConnectionStats {
                connection_id: "c1".to_owned(),
                delivered_since: 1,
                pending: 1,
                failed: 1,
            },
            ConnectionStats {
                connection_id: "c3".to_owned(),
                delivered_since: 0,
                pending: 0,
                failed: 0,
            },
            ConnectionStats {
                connection_id: "c2".to_owned(),
                delivered_since: 0,
                pending: 1,
                failed: 0,
            },
        ]
    );
    assert_eq!(
        store.connection_stats(at(0)).await.unwrap()[0].delivered_since,
        2
    );
}

/// A store of its own with one connection, as another process would have.
async fn single_connection_store(db: &TestDb) -> PgStore {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.options())
        .await
        .unwrap();
    PgStore::from_pool(pool)
}

/// 8 claimers, each on its own connection, race for 500 packets: every packet is leased
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_packet() {
    let db = with_connection().await;
    let packets: Vec<NewPacket> = (1..=500)
        .map(|order| packet("c1", order, 1, at(order % 17)))
        .collect();
    assert_eq!(enqueue(&db.store, &packets).await.inserted, 500);

    // Every claimer is connected before any starts, so that they really race.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let other = single_connection_store(&db).await;
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            loop {
                let claimed = other
                    .claim_due(&owner, None, at(100), SignedDuration::from_secs(600), 7)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    break;
                }
                for packet in claimed {
                    assert_eq!(packet.lease_owner.as_deref(), Some(owner.as_str()));
                    mine.push(packet.id);
                }
            }
            other.close().await;
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut workers_with_packets = 0;
    for task in tasks {
        let mine = task.await.unwrap();
        workers_with_packets += usize::from(!mine.is_empty());
        for id in mine {
            assert!(seen.insert(id.clone()), "{id} was leased twice");
        }
    }
    assert_eq!(seen.len(), 500);
    assert!(workers_with_packets > 1, "the claims did not race");
    let leased = store_leased(&db.store).await;
    assert_eq!(leased, 500);
}

async fn store_leased(store: &PgStore) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Four processes write the same page at once: each packet is stored once, and the counts
/// add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_of_one_page_store_each_packet_once() {
    let db = with_connection().await;
    let page: Vec<NewPacket> = (1..=200).map(|order| packet_new("c1", order, 1)).collect();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let other = single_connection_store(&db).await;
        let page = page.clone();
        tasks.push(tokio::spawn(async move {
            let counts = other
                .enqueue_page("c1", &page, cursor(T0, 200), None)
                .await
                .unwrap();
            other.close().await;
            counts
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        let counts = task.await.unwrap();
        assert_eq!(counts.inserted + counts.already_stored, 200);
        inserted += counts.inserted;
    }
    assert_eq!(inserted, 200);
    assert_eq!(
        db.store
            .packets(&PacketFilter::default())
            .await
            .unwrap()
            .len(),
        200
    );
}

#[tokio::test]
async fn heartbeats_are_upserted_listed_removed_and_forgotten_after_a_day() {
    use engine::delivery_store::DaemonHeartbeat;
    let db = with_connection().await;
    let store = &db.store;
    let beat = |worker: &str, beat_at: Timestamp| DaemonHeartbeat {
        worker_id: worker.into(),
        kind: "run".into(),
        started_at: at(0),
        beat_at,
    };
    store
        .record_heartbeat(&beat("gone", at(-90_000)))
        .await
        .unwrap();
    store.record_heartbeat(&beat("a", at(0))).await.unwrap();
    store.record_heartbeat(&beat("b", at(5))).await.unwrap();
    store.record_heartbeat(&beat("a", at(10))).await.unwrap();
    let beats = store.heartbeats().await.unwrap();
    assert_eq!(
        beats,
        [beat("a", at(10)), beat("b", at(5))],
        "newest first; a day-old row forgotten"
    );
    assert!(store.remove_heartbeat("a").await.unwrap());
    assert!(!store.remove_heartbeat("a").await.unwrap());
    assert_eq!(store.heartbeats().await.unwrap(), [beat("b", at(5))]);
}
