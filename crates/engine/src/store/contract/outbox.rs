//! The outbox: packets of every flow, written once, leased, tried, recorded.

use super::{LEASE, at, checkpoint, ids, packet, tenant, with_flows};
use crate::change_feed::Checkpoint;
use crate::store::{
    Attempt, AttemptOutcome, EnqueueCounts, FeedCursor, FlowKind, FlowStats, PacketFilter,
    PacketStatus, Store, StoreError,
};
use crate::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;

fn cursor(second: Timestamp, last_id: i64) -> FeedCursor<'static> {
    FeedCursor {
        feed: "sale.order",
        checkpoint: checkpoint(second, last_id),
    }
}

async fn enqueue<S: Store>(
    store: &S,
    flow_id: &str,
    packets: &[crate::store::NewPacket],
) -> EnqueueCounts {
    store
        .enqueue(flow_id, packets, Some(cursor(at(0), 1)))
        .await
        .unwrap()
}

fn attempt(outcome: AttemptOutcome, at_second: i64) -> Attempt {
    Attempt {
        started_at: at(at_second),
        duration_ms: 12,
        status_code: match outcome {
            AttemptOutcome::Delivered => Some(200),
            _ => Some(503),
        },
        outcome,
    }
}

fn delivered(at_second: i64) -> Attempt {
    attempt(AttemptOutcome::Delivered, at_second)
}

fn failed(class: FailureClass, error: &str) -> Attempt {
    attempt(
        AttemptOutcome::Failed {
            error: error.to_owned(),
            failure_class: class,
        },
        1,
    )
}

fn retry(class: FailureClass, error: &str, next: i64) -> Attempt {
    attempt(
        AttemptOutcome::Retry {
            error: error.to_owned(),
            failure_class: class,
            next_attempt_at: at(next),
        },
        1,
    )
}

pub async fn enqueue_is_idempotent_and_moves_the_cursor<S: Store>(store: &S) {
    with_flows(store).await;
    let page = [
        packet("f1", 1, 1, at(0)),
        packet("f1", 2, 1, at(1)),
        packet("f1", 3, 1, at(2)),
    ];
    let counts = store
        .enqueue("f1", &page, Some(cursor(at(-1), 3)))
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
        .enqueue("f1", &page, Some(cursor(at(-1), Checkpoint::SECOND_DONE)))
        .await
        .unwrap();
    assert_eq!(
        again,
        EnqueueCounts {
            inserted: 0,
            already_stored: 3
        }
    );
    let cursors = store.cursors(Some("f1")).await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(cursors[0].feed, "sale.order");
    assert_eq!(
        cursors[0].checkpoint,
        checkpoint(at(-1), Checkpoint::SECOND_DONE)
    );
    // Without a cursor, the cursor stays; a flow has a cursor per feed.
    store.enqueue("f1", &[], None).await.unwrap();
    store
        .enqueue(
            "f1",
            &[],
            Some(FeedCursor {
                feed: "stock.picking",
                checkpoint: checkpoint(at(9), 4),
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.cursors(Some("f1")).await.unwrap().len(), 2);

    let stored = store.packet("f1_2_v1").await.unwrap().unwrap();
    assert_eq!(stored.status, PacketStatus::Pending);
    assert_eq!(stored.flow_id, "f1");
    assert_eq!(stored.tenant_id, "t1");
    assert_eq!(stored.subject.model, "sale.order");
    assert_eq!(stored.subject.id, 2);
    assert_eq!(stored.reference.as_deref(), Some("odoo_odoo_2"));
    assert_eq!(stored.target, "webhook");
    assert_eq!(stored.event, "order.confirmed");
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.max_attempts, 5);
    assert_eq!(stored.next_attempt_at, at(1));
    assert_eq!(stored.created_at, at(1));
    assert_eq!(stored.payload, page[1].payload);
    assert_eq!(stored.payload_hash, page[1].payload_hash);
    assert_eq!(stored.lease_owner, None);

    // A page holding the same (subject, version) twice stores it once.
    let doubled = [packet("f1", 9, 1, at(0)), packet("f1", 9, 1, at(0))];
    assert_eq!(
        enqueue(store, "f1", &doubled).await,
        EnqueueCounts {
            inserted: 1,
            already_stored: 1
        }
    );
    // A missing flow is named.
    assert!(matches!(
        store.enqueue("nope", &page, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn a_failing_page_leaves_neither_packets_nor_cursor<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(store, "f1", &[packet("f1", 1, 1, at(0))]).await;
    // The second packet reuses the id of order 1 v1 for order 2: the whole page fails.
    let mut clash = packet("f1", 2, 1, at(0));
    clash.id = "f1_1_v1".to_owned();
    let page = [packet("f1", 3, 1, at(0)), clash];
    let refused = store.enqueue("f1", &page, Some(cursor(at(50), 9))).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(store.packet("f1_3_v1").await.unwrap(), None);
    assert_eq!(
        store.cursors(Some("f1")).await.unwrap()[0].checkpoint,
        checkpoint(at(0), 1)
    );
}

pub async fn latest_packets_gives_the_newest_version_per_subject<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[
            packet("f1", 1, 1, at(0)),
            packet("f1", 1, 2, at(0)),
            packet("f1", 1, 3, at(0)),
            packet("f1", 2, 1, at(0)),
            packet("f1", 4, 1, at(0)),
        ],
    )
    .await;
    enqueue(store, "f2", &[packet("f2", 3, 7, at(0))]).await;
    let mut latest = store
        .latest_packets("f1", "sale.order", &[1, 2, 3])
        .await
        .unwrap();
    latest.sort_by_key(|p| p.subject_id);
    let summary: Vec<(i64, u32, &str)> = latest
        .iter()
        .map(|p| (p.subject_id, p.version, p.payload_hash.as_str()))
        .collect();
    assert_eq!(summary, [(1, 3, "hash-1-3"), (2, 1, "hash-2-1")]);
    assert_eq!(latest[0].event, "order.updated");
    assert_eq!(latest[0].status, PacketStatus::Pending);
    assert!(
        store
            .latest_packets("f1", "sale.order", &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Subjects of another model are not these.
    assert!(
        store
            .latest_packets("f1", "stock.picking", &[1, 2])
            .await
            .unwrap()
            .is_empty()
    );
    let many: Vec<i64> = (0..2_000).collect();
    assert_eq!(
        store
            .latest_packets("f1", "sale.order", &many)
            .await
            .unwrap()
            .len(),
        3
    );
}

pub async fn a_flows_claim_takes_only_its_own_packets<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[packet("f1", 10, 1, at(1)), packet("f1", 11, 1, at(4))],
    )
    .await;
    enqueue(
        store,
        "f2",
        &[packet("f2", 10, 1, at(2)), packet("f2", 12, 1, at(3))],
    )
    .await;
    let claimed = store
        .claim_due("w1", Some("f2"), at(10), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["f2_10_v1", "f2_12_v1"]);
    assert!(
        store
            .claim_due("w1", Some("f2"), at(10), LEASE, 10)
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
    assert_eq!(ids(&claimed), ["f1_10_v1", "f1_11_v1"]);
}

pub async fn next_due_by_flow_gives_each_flows_earliest_pending_packet<S: Store>(store: &S) {
    with_flows(store).await;
    assert!(store.next_due_by_flow().await.unwrap().is_empty());
    enqueue(
        store,
        "f1",
        &[packet("f1", 10, 1, at(5)), packet("f1", 11, 1, at(3))],
    )
    .await;
    enqueue(store, "f2", &[packet("f2", 12, 1, at(7))]).await;
    let due = store.next_due_by_flow().await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    assert_eq!(due["f1"], at(3));
    assert_eq!(due["f2"], at(7));
    // Leased packets still count; a delivered one no longer does.
    let claimed = store
        .claim_due("w1", Some("f1"), at(4), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["f1_11_v1"]);
    assert_eq!(store.next_due_by_flow().await.unwrap()["f1"], at(3));
    assert!(
        store
            .record_attempt("f1_11_v1", "w1", &delivered(6))
            .await
            .unwrap()
    );
    assert_eq!(store.next_due_by_flow().await.unwrap()["f1"], at(5));
}

pub async fn claims_go_by_due_time_and_never_let_an_update_overtake<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[
            packet("f1", 10, 1, at(5)),
            packet("f1", 10, 2, at(1)),
            packet("f1", 11, 1, at(3)),
            packet("f1", 12, 1, at(100)),
        ],
    )
    .await;
    // Order 10's v2 is due first but waits for v1; order 12 is not due yet.
    let claimed = store
        .claim_due("w1", None, at(10), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["f1_11_v1", "f1_10_v1"]);
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
    assert!(
        store
            .record_attempt("f1_10_v1", "w1", &delivered(12))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt("f1_11_v1", "w1", &delivered(12))
            .await
            .unwrap()
    );
    let claimed = store
        .claim_due("w2", None, at(13), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["f1_10_v2"]);
    assert!(
        store
            .record_attempt("f1_10_v2", "w2", &delivered(13))
            .await
            .unwrap()
    );
    let limited = store
        .claim_due("w3", None, at(200), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(ids(&limited), ["f1_12_v1"]);
    assert!(
        store
            .claim_due("w3", None, at(200), LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_failed_or_discarded_version_lets_the_next_one_go<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[
            packet("f1", 1, 1, at(0)),
            packet("f1", 1, 2, at(0)),
            packet("f1", 2, 1, at(0)),
            packet("f1", 2, 2, at(0)),
        ],
    )
    .await;
    let claimed = store.claim_due("w", None, at(1), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["f1_1_v1", "f1_2_v1"]);
    assert!(
        store
            .record_attempt(
                "f1_1_v1",
                "w",
                &failed(FailureClass::Http4xx, "HTTP 410 Gone")
            )
            .await
            .unwrap()
    );
    // v1 of order 2 goes back to PENDING: its v2 keeps waiting.
    assert!(
        store
            .record_attempt(
                "f1_2_v1",
                "w",
                &retry(FailureClass::Http5xx, "HTTP 503", 100)
            )
            .await
            .unwrap()
    );
    let claimed = store.claim_due("w", None, at(2), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["f1_1_v2"]);
    // Discarding order 2's v1 releases its v2.
    assert!(store.discard("f1_2_v1", at(3)).await.unwrap());
    let claimed = store.claim_due("w", None, at(3), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["f1_2_v2"]);
    // A FAILED v1 that a person retries is sendable again (its v2 is leased already).
    assert!(store.retry_now("f1_1_v1", at(4)).await.unwrap());
    let claimed = store.claim_due("w", None, at(4), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["f1_1_v1"]);
}

pub async fn expired_leases_are_reclaimable_and_stale_owners_lose<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[packet("f1", 1, 1, at(0)), packet("f1", 2, 1, at(0))],
    )
    .await;
    let claimed = store.claim_due("w1", None, at(0), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Still leased at the lease's end itself.
    assert!(
        store
            .claim_due("w2", None, at(30), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = at(30) + SignedDuration::from_micros(1);
    let reclaimed = store.claim_due("w2", None, later, LEASE, 1).await.unwrap();
    assert_eq!(ids(&reclaimed), ["f1_1_v1"]);
    // w1 lost packet 1; its expired lease on packet 2 was taken by nobody and still counts.
    assert!(
        !store
            .record_attempt("f1_1_v1", "w1", &delivered(31))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt("f1_1_v1", "w2", &delivered(31))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt("f1_2_v1", "w1", &delivered(31))
            .await
            .unwrap()
    );
    // A recorded attempt releases the lease; recording twice is refused.
    assert!(
        !store
            .record_attempt("f1_2_v1", "w1", &delivered(32))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_attempt("missing", "w1", &delivered(32))
            .await
            .unwrap()
    );
    let done = store.packet("f1_1_v1").await.unwrap().unwrap();
    assert_eq!(done.status, PacketStatus::Delivered);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.delivered_at, Some(at(31)));
    assert_eq!(done.lease_owner, None);
    assert_eq!(done.lease_until, None);
    // Only the recorded attempt is in the history.
    assert_eq!(store.attempts("f1_1_v1").await.unwrap().len(), 1);
}

pub async fn attempts_retry_fail_and_are_kept_in_the_history<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(store, "f1", &[packet("f1", 1, 1, at(0))]).await;
    store.claim_due("w", None, at(0), LEASE, 1).await.unwrap();
    assert!(
        store
            .record_attempt(
                "f1_1_v1",
                "w",
                &retry(FailureClass::NetworkError, "connection refused", 60)
            )
            .await
            .unwrap()
    );
    let pending = store.packet("f1_1_v1").await.unwrap().unwrap();
    assert_eq!(pending.status, PacketStatus::Pending);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.next_attempt_at, at(60));
    assert_eq!(pending.last_error.as_deref(), Some("connection refused"));
    assert_eq!(pending.failure_class, Some(FailureClass::NetworkError));
    assert_eq!(pending.lease_owner, None);
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
            .claim_due("w2", None, at(60), LEASE, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .record_attempt("f1_1_v1", "w2", &failed(FailureClass::Http5xx, "HTTP 500"))
            .await
            .unwrap()
    );
    let given_up = store.packet("f1_1_v1").await.unwrap().unwrap();
    assert_eq!(given_up.status, PacketStatus::Failed);
    assert_eq!(given_up.attempts, 2);
    assert_eq!(given_up.failure_class, Some(FailureClass::Http5xx));
    assert!(
        store
            .claim_due("w", None, at(1_000), LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let history = store.attempts("f1_1_v1").await.unwrap();
    let summary: Vec<(&str, &str, Option<FailureClass>, Option<u16>)> = history
        .iter()
        .map(|a| {
            (
                a.worker.as_str(),
                a.outcome.as_str(),
                a.failure_class,
                a.status_code,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("w", "retry", Some(FailureClass::NetworkError), Some(503)),
            ("w2", "failed", Some(FailureClass::Http5xx), Some(503)),
        ]
    );
    assert_eq!(history[0].error.as_deref(), Some("connection refused"));
    assert_eq!(history[0].duration_ms, 12);
    assert_eq!(history[0].started_at, at(1));
}

pub async fn retry_now_and_discard<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[
            packet("f1", 1, 1, at(0)),
            packet("f1", 2, 1, at(0)),
            packet("f1", 3, 1, at(0)),
        ],
    )
    .await;
    store.claim_due("w", None, at(0), LEASE, 10).await.unwrap();
    store
        .record_attempt("f1_1_v1", "w", &failed(FailureClass::Http4xx, "gone"))
        .await
        .unwrap();
    store
        .record_attempt("f1_2_v1", "w", &delivered(1))
        .await
        .unwrap();
    assert!(store.retry_now("f1_1_v1", at(50)).await.unwrap());
    let again = store.packet("f1_1_v1").await.unwrap().unwrap();
    assert_eq!(again.status, PacketStatus::Pending);
    assert_eq!(again.attempts, 0);
    assert_eq!(again.next_attempt_at, at(50));
    assert_eq!(again.lease_owner, None);
    // A delivered packet is never sent again; unknown ids are refused.
    assert!(!store.retry_now("f1_2_v1", at(50)).await.unwrap());
    assert!(!store.retry_now("nope", at(50)).await.unwrap());
    assert!(!store.discard("f1_2_v1", at(50)).await.unwrap());
    // Discarding a leased packet takes it from its worker.
    assert!(store.discard("f1_3_v1", at(50)).await.unwrap());
    assert!(!store.discard("f1_3_v1", at(50)).await.unwrap());
    assert!(!store.retry_now("f1_3_v1", at(50)).await.unwrap());
    assert!(
        !store
            .record_attempt("f1_3_v1", "w", &delivered(2))
            .await
            .unwrap()
    );
    let dropped = store.packet("f1_3_v1").await.unwrap().unwrap();
    assert_eq!(dropped.status, PacketStatus::Discarded);
    assert_eq!(dropped.updated_at, at(50));
}

pub async fn packets_are_listed_newest_first_and_filtered<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[
            packet("f1", 1, 1, at(1)),
            packet("f1", 2, 1, at(3)),
            packet("f1", 3, 1, at(3)),
        ],
    )
    .await;
    enqueue(store, "f2", &[packet("f2", 1, 1, at(2))]).await;
    store.discard("f1_1_v1", at(4)).await.unwrap();
    let all = store.packets(&PacketFilter::default()).await.unwrap();
    assert_eq!(ids(&all), ["f1_3_v1", "f1_2_v1", "f2_1_v1", "f1_1_v1"]);
    let filter = PacketFilter {
        flow_id: Some("f1".to_owned()),
        status: Some(PacketStatus::Pending),
        limit: 0,
    };
    assert_eq!(
        ids(&store.packets(&filter).await.unwrap()),
        ["f1_3_v1", "f1_2_v1"]
    );
    let filter = PacketFilter {
        flow_id: None,
        status: None,
        limit: 2,
    };
    assert_eq!(
        ids(&store.packets(&filter).await.unwrap()),
        ["f1_3_v1", "f1_2_v1"]
    );
    let filter = PacketFilter {
        flow_id: None,
        status: Some(PacketStatus::Discarded),
        limit: 10,
    };
    assert_eq!(ids(&store.packets(&filter).await.unwrap()), ["f1_1_v1"]);
    // Packets of one moment by subject id as a number (27 before 9), then version.
    enqueue(
        store,
        "f2",
        &[
            packet("f2", 9, 1, at(5)),
            packet("f2", 27, 1, at(5)),
            packet("f2", 18, 1, at(5)),
            packet("f2", 9, 2, at(5)),
        ],
    )
    .await;
    let filter = PacketFilter {
        flow_id: Some("f2".to_owned()),
        status: None,
        limit: 3,
    };
    assert_eq!(
        ids(&store.packets(&filter).await.unwrap()),
        ["f2_27_v1", "f2_18_v1", "f2_9_v2"]
    );
}

pub async fn stats_count_delivered_since_pending_and_failed<S: Store>(store: &S) {
    with_flows(store).await;
    store
        .insert_flow(&super::flow("f3", "t1", FlowKind::OrderDelivery, "three"))
        .await
        .unwrap();
    enqueue(
        store,
        "f1",
        &(1..=5)
            .map(|n| packet("f1", n, 1, at(0)))
            .collect::<Vec<_>>(),
    )
    .await;
    enqueue(store, "f2", &[packet("f2", 1, 1, at(0))]).await;
    store.claim_due("w", None, at(0), LEASE, 10).await.unwrap();
    store
        .record_attempt("f1_1_v1", "w", &delivered(10))
        .await
        .unwrap();
    store
        .record_attempt("f1_2_v1", "w", &delivered(20))
        .await
        .unwrap();
    store
        .record_attempt("f1_3_v1", "w", &failed(FailureClass::Http4xx, "gone"))
        .await
        .unwrap();
    store.discard("f1_4_v1", at(0)).await.unwrap();
    let stats = store.flow_stats(at(20)).await.unwrap();
    let stat = |flow_id: &str, delivered_since, pending, failed| FlowStats {
        flow_id: flow_id.to_owned(),
        delivered_since,
        pending,
        failed,
        ..FlowStats::default()
    };
    // Every flow, by name: one, three, two.
    assert_eq!(
        stats,
        [
            stat("f1", 1, 1, 1),
            stat("f3", 0, 0, 0),
            stat("f2", 0, 1, 0)
        ]
    );
    assert_eq!(store.flow_stats(at(0)).await.unwrap()[0].delivered_since, 2);
}

pub async fn a_restarted_worker_takes_its_packets_back<S: Store>(store: &S) {
    with_flows(store).await;
    enqueue(
        store,
        "f1",
        &[packet("f1", 1, 1, at(0)), packet("f1", 2, 1, at(0))],
    )
    .await;
    enqueue(store, "f2", &[packet("f2", 1, 1, at(0))]).await;
    store
        .claim_due("w1", Some("f1"), at(0), LEASE, 10)
        .await
        .unwrap();
    store
        .claim_due("w2", Some("f2"), at(0), LEASE, 10)
        .await
        .unwrap();
    // w1 comes back after a crash: its packets are due at once, w2's stay leased.
    assert_eq!(store.release_leases_of("w1", at(5)).await.unwrap(), 2);
    let claimed = store.claim_due("w1", None, at(5), LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["f1_1_v1", "f1_2_v1"]);
    assert_eq!(store.release_leases_of("nobody", at(5)).await.unwrap(), 0);
}

/// Two handles on one database (two processes), several tasks each: every packet is leased
/// exactly once.
pub async fn concurrent_claimers_never_share_a_packet<S: Store>(store: &S, other: &S) {
    store
        .insert_tenant(
            &tenant("t1"),
            &[super::flow("f1", "t1", FlowKind::OrderDelivery, "one")],
        )
        .await
        .unwrap();
    let packets: Vec<_> = (1..=300)
        .map(|order| packet("f1", order, 1, at(order % 17)))
        .collect();
    assert_eq!(enqueue(store, "f1", &packets).await.inserted, 300);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let handle = if worker % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            loop {
                let claimed = handle
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
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} was leased twice");
        }
    }
    assert_eq!(seen.len(), 300);
}

pub async fn bringing_a_flow_forward_makes_its_waiting_packets_due<S: Store>(store: &S) {
    with_flows(store).await;
    let page = [
        packet("f1", 1, 1, at(0)),
        packet("f1", 2, 1, at(0)),
        packet("f1", 3, 1, at(0)),
    ];
    enqueue(store, "f1", &page).await;
    enqueue(store, "f2", &[packet("f2", 9, 1, at(0))]).await;
    let claimed = store.claim_due("w1", None, at(1), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    for id in ["f1_1_v1", "f1_2_v1", "f2_9_v1"] {
        assert!(
            store
                .record_attempt(id, "w1", &retry(FailureClass::Http5xx, "down", 100))
                .await
                .unwrap()
        );
    }
    // f1_3_v1 is still in w1's hands (its lease runs to 31).
    assert_eq!(store.bring_forward("f1", at(5)).await.unwrap(), 2);
    assert_eq!(
        store.bring_forward("f1", at(5)).await.unwrap(),
        0,
        "already due"
    );
    let due = store.claim_due("w2", None, at(5), LEASE, 10).await.unwrap();
    assert_eq!(ids(&due), ["f1_1_v1", "f1_2_v1"]);
    assert!(
        due.iter().all(|packet| packet.attempts == 1),
        "attempts kept"
    );
    let other = store.packet("f2_9_v1").await.unwrap().unwrap();
    assert_eq!(
        other.next_attempt_at,
        at(100),
        "another flow's packets keep their time"
    );
}
