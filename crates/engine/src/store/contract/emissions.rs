//! [`EmissionStore`](crate::store::EmissionStore): one emission per (job, record, packet
//! version), its packet kept for resends, exclusive claims, the per-record breaker, forced
//! replays with drift, and the store's one environment.

use super::at;
use crate::store::emissions::Failure;
use crate::store::{EmissionClaim, EmissionKey, EmissionState, NewEmission, Store};
use crate::webhook::FailureClass;
use std::collections::HashMap;

fn key(record: i64) -> EmissionKey {
    EmissionKey::new("buyer-match", record, "1")
}

fn new_emission(record: i64, packet_id: &str, hash: &str) -> NewEmission {
    NewEmission {
        key: key(record),
        model: "crm.lead".to_owned(),
        environment: "prod".to_owned(),
        packet_id: packet_id.to_owned(),
        payload_hash: hash.to_owned(),
        packet: format!(r#"{{"packet_id":"{packet_id}","record_id":{record}}}"#),
    }
}

fn failure(class: FailureClass) -> Failure<'static> {
    Failure {
        class,
        error: "the matcher answered HTTP 502",
        max_failures: 3,
    }
}

pub async fn an_emission_is_written_once_and_its_packet_is_kept<S: Store>(store: &S) {
    let first = new_emission(7, "pkt-a", "hash-1");
    let claim = store
        .claim_emission(&first, "worker-a", at(0), at(60))
        .await
        .unwrap();
    let EmissionClaim::Granted(emission) = &claim else {
        panic!("{claim:?}")
    };
    assert_eq!(emission.packet_id, "pkt-a");
    assert_eq!(emission.packet, first.packet);
    assert_eq!(emission.state, EmissionState::Pending);
    assert_eq!(emission.claim_owner.as_deref(), Some("worker-a"));
    assert_eq!(emission.claim_until, Some(at(60)));
    assert_eq!(emission.emitted_at, at(0));
    assert_eq!((emission.failures, emission.disabled), (0, false));
    // Another sender is refused while the claim lives.
    let other = store
        .claim_emission(
            &new_emission(7, "pkt-b", "hash-1"),
            "worker-b",
            at(30),
            at(90),
        )
        .await
        .unwrap();
    assert!(
        matches!(other, EmissionClaim::HeldElsewhere(_)),
        "{other:?}"
    );
    // A holder that died: its claim runs out and the next sender gets the packet it wrote,
    // not the one it built (the same packet id goes out again).
    let taken = store
        .claim_emission(
            &new_emission(7, "pkt-c", "hash-2"),
            "worker-b",
            at(61),
            at(121),
        )
        .await
        .unwrap();
    let EmissionClaim::Granted(taken) = taken else {
        panic!("{taken:?}")
    };
    assert_eq!(taken.packet_id, "pkt-a");
    assert_eq!(taken.payload_hash, "hash-1");
    assert_eq!(taken.packet, first.packet);
    assert_eq!(taken.claim_owner.as_deref(), Some("worker-b"));
    // Only the holder records the outcome.
    assert!(
        !store
            .record_applied(&key(7), "worker-a", at(70))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_applied(&key(7), "worker-b", at(70))
            .await
            .unwrap()
    );
    let applied = store.emission(&key(7)).await.unwrap().unwrap();
    assert_eq!(applied.state, EmissionState::Applied);
    assert_eq!(applied.applied_at, Some(at(70)));
    assert_eq!(applied.claim_owner, None);
    // Applied: a second emission is refused to everyone.
    let again = store
        .claim_emission(
            &new_emission(7, "pkt-d", "hash-3"),
            "worker-b",
            at(500),
            at(560),
        )
        .await
        .unwrap();
    let EmissionClaim::AlreadyApplied(stored) = again else {
        panic!("{again:?}")
    };
    assert_eq!(stored.packet_id, "pkt-a");
    // Another packet version of the record is another emission.
    let mut v2 = new_emission(7, "pkt-v2", "hash-1");
    v2.key.packet_version = "2".to_owned();
    assert!(matches!(
        store
            .claim_emission(&v2, "worker-a", at(0), at(60))
            .await
            .unwrap(),
        EmissionClaim::Granted(_)
    ));
    store
        .claim_emission(&new_emission(3, "pkt-3", "h"), "worker-a", at(0), at(60))
        .await
        .unwrap();
    let listed: Vec<(i64, String)> = store
        .emissions(Some("buyer-match"))
        .await
        .unwrap()
        .into_iter()
        .map(|emission| (emission.key.record_id, emission.key.packet_version))
        .collect();
    assert_eq!(
        listed,
        [
            (3, "1".to_owned()),
            (7, "1".to_owned()),
            (7, "2".to_owned())
        ]
    );
    assert!(store.emissions(Some("other")).await.unwrap().is_empty());
    assert_eq!(store.emissions(None).await.unwrap().len(), 3);
    assert_eq!(store.emission(&key(99)).await.unwrap(), None);
}

pub async fn failures_are_counted_and_the_breaker_disables_the_record<S: Store>(store: &S) {
    let emission = new_emission(5, "pkt-5", "hash-5");
    for (attempt, class) in [
        FailureClass::NetworkError,
        FailureClass::SchemaError,
        FailureClass::WritebackError,
    ]
    .into_iter()
    .enumerate()
    {
        let now = at(attempt as i64 * 100);
        let claim = store
            .claim_emission(&emission, "worker-a", now, at(attempt as i64 * 100 + 60))
            .await
            .unwrap();
        assert!(matches!(claim, EmissionClaim::Granted(_)), "{claim:?}");
        // Not the holder: nothing changes.
        assert_eq!(
            store
                .record_failure(&key(5), "worker-z", &failure(class), now)
                .await
                .unwrap(),
            None
        );
        let failed = store
            .record_failure(&key(5), "worker-a", &failure(class), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.failures, attempt as u32 + 1);
        assert_eq!(failed.failure_class, Some(class));
        assert_eq!(
            failed.last_error.as_deref(),
            Some("the matcher answered HTTP 502")
        );
        assert_eq!(failed.claim_owner, None);
        assert_eq!(failed.state, EmissionState::Pending);
        assert_eq!(failed.disabled, attempt == 2, "{failed:?}");
    }
    let refused = store
        .claim_emission(&emission, "worker-a", at(1000), at(1060))
        .await
        .unwrap();
    let EmissionClaim::Disabled(disabled) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(disabled.failures, 3);
    // A claim given back untried counts nothing.
    let other = new_emission(6, "pkt-6", "hash-6");
    store
        .claim_emission(&other, "worker-a", at(0), at(60))
        .await
        .unwrap();
    assert!(!store.release_emission(&key(6), "worker-b").await.unwrap());
    assert!(store.release_emission(&key(6), "worker-a").await.unwrap());
    let released = store.emission(&key(6)).await.unwrap().unwrap();
    assert_eq!((released.failures, released.claim_owner), (0, None));
    assert!(matches!(
        store
            .claim_emission(&other, "worker-b", at(1), at(61))
            .await
            .unwrap(),
        EmissionClaim::Granted(_)
    ));
}

pub async fn a_forced_replay_rewrites_the_packet_and_logs_drift<S: Store>(store: &S) {
    // Never emitted: the replay is a first emission, not logged.
    let claim = store
        .replay_emission(
            &new_emission(9, "pkt-1", "hash-a"),
            "worker-a",
            at(0),
            at(60),
        )
        .await
        .unwrap();
    let EmissionClaim::Granted(first) = claim else {
        panic!("{claim:?}")
    };
    assert_eq!((first.packet_id.as_str(), first.replays), ("pkt-1", 0));
    assert!(store.replays("buyer-match", 9).await.unwrap().is_empty());
    assert!(
        store
            .record_applied(&key(9), "worker-a", at(10))
            .await
            .unwrap()
    );
    // Unchanged payload: a new packet, no drift.
    let claim = store
        .replay_emission(
            &new_emission(9, "pkt-2", "hash-a"),
            "worker-a",
            at(20),
            at(80),
        )
        .await
        .unwrap();
    let EmissionClaim::Granted(second) = claim else {
        panic!("{claim:?}")
    };
    assert_eq!(second.packet_id, "pkt-2");
    assert_eq!(second.state, EmissionState::Pending);
    assert_eq!(second.replays, 1);
    assert_eq!(second.emitted_at, at(20));
    assert_eq!(second.applied_at, None);
    // Held by a live claim of another sender: refused, nothing logged.
    let held = store
        .replay_emission(
            &new_emission(9, "pkt-x", "hash-x"),
            "worker-b",
            at(30),
            at(90),
        )
        .await
        .unwrap();
    assert!(matches!(held, EmissionClaim::HeldElsewhere(_)), "{held:?}");
    // Failures until disabled, then a replay of a changed record: re-enabled, drift logged.
    for now in [40, 41, 42] {
        store
            .claim_emission(
                &new_emission(9, "unused", "unused"),
                "worker-a",
                at(now),
                at(now + 5),
            )
            .await
            .unwrap();
        store
            .record_failure(
                &key(9),
                "worker-a",
                &failure(FailureClass::Http5xx),
                at(now),
            )
            .await
            .unwrap();
    }
    assert!(store.emission(&key(9)).await.unwrap().unwrap().disabled);
    let claim = store
        .replay_emission(
            &new_emission(9, "pkt-3", "hash-b"),
            "worker-b",
            at(100),
            at(160),
        )
        .await
        .unwrap();
    let EmissionClaim::Granted(third) = claim else {
        panic!("{claim:?}")
    };
    assert_eq!((third.failures, third.disabled), (0, false));
    assert_eq!((third.failure_class, third.last_error), (None, None));
    assert_eq!(third.payload_hash, "hash-b");
    assert_eq!(third.replays, 2);
    let log = store.replays("buyer-match", 9).await.unwrap();
    let summary: Vec<(&str, &str, &str, &str, bool)> = log
        .iter()
        .map(|replay| {
            (
                replay.previous_packet_id.as_str(),
                replay.previous_hash.as_str(),
                replay.packet_id.as_str(),
                replay.payload_hash.as_str(),
                replay.drift,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pkt-1", "hash-a", "pkt-2", "hash-a", false),
            ("pkt-2", "hash-a", "pkt-3", "hash-b", true)
        ]
    );
    assert_eq!(log[1].replayed_at, at(100));
    assert!(store.replays("buyer-match", 10).await.unwrap().is_empty());
}

pub async fn the_store_keeps_one_environment<S: Store>(store: &S) {
    assert_eq!(store.bind_environment("prod", at(0)).await.unwrap(), "prod");
    assert_eq!(store.bind_environment("prod", at(1)).await.unwrap(), "prod");
    assert_eq!(
        store.bind_environment("staging", at(2)).await.unwrap(),
        "prod"
    );
}

pub async fn two_senders_racing_emit_each_record_once<S: Store>(store: &S, other: &S) {
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
            let mut emitted = Vec::new();
            for record in 1..=120 {
                let packet_id = format!("pkt-{worker}-{record}");
                let claim = handle
                    .claim_emission(
                        &new_emission(record, &packet_id, "h"),
                        &owner,
                        at(0),
                        at(600),
                    )
                    .await
                    .unwrap();
                if let EmissionClaim::Granted(emission) = claim {
                    assert_eq!(emission.claim_owner.as_deref(), Some(owner.as_str()));
                    assert!(
                        handle
                            .record_applied(&key(record), &owner, at(1))
                            .await
                            .unwrap()
                    );
                    emitted.push((record, emission.packet_id));
                }
                tokio::task::yield_now().await;
            }
            emitted
        }));
    }
    let mut emitted: HashMap<i64, String> = HashMap::new();
    for task in tasks {
        for (record, packet_id) in task.await.unwrap() {
            assert!(
                emitted.insert(record, packet_id).is_none(),
                "record {record} was emitted twice"
            );
        }
    }
    assert_eq!(emitted.len(), 120);
    for (record, packet_id) in emitted {
        let stored = store.emission(&key(record)).await.unwrap().unwrap();
        assert_eq!(stored.packet_id, packet_id);
        assert_eq!(stored.state, EmissionState::Applied);
    }
}
