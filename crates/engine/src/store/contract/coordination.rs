//! Heartbeats, flow leases and breaker states.

use super::{at, tenant, with_flows};
use crate::store::{
    BreakerRecord, BreakerStatus, FlowKind, Heartbeat, HintActivity, Store, StoreError,
};
use jiff::SignedDuration;

fn beat(worker: &str, kind: &str, second: i64) -> Heartbeat {
    Heartbeat {
        worker_id: worker.to_owned(),
        kind: kind.to_owned(),
        started_at: at(0),
        beat_at: at(second),
    }
}

pub async fn heartbeats_are_upserted_listed_removed_and_forgotten_after_a_day<S: Store>(store: &S) {
    assert!(store.heartbeats().await.unwrap().is_empty());
    store.record_heartbeat(&beat("w1", "run", 0)).await.unwrap();
    store.record_heartbeat(&beat("w2", "tui", 5)).await.unwrap();
    store
        .record_heartbeat(&beat("w1", "run", 10))
        .await
        .unwrap();
    let beats = store.heartbeats().await.unwrap();
    assert_eq!(beats, [beat("w1", "run", 10), beat("w2", "tui", 5)]);
    assert!(store.remove_heartbeat("w2").await.unwrap());
    assert!(!store.remove_heartbeat("w2").await.unwrap());
    // A process dead for more than a day is forgotten at the next beat of anyone.
    let a_day_later = 10 + 24 * 3_600 + 1;
    store
        .record_heartbeat(&beat("w3", "run", a_day_later))
        .await
        .unwrap();
    assert_eq!(
        store.heartbeats().await.unwrap(),
        [beat("w3", "run", a_day_later)]
    );
}

pub async fn a_flow_lease_has_one_holder_until_it_runs_out<S: Store>(store: &S) {
    with_flows(store).await;
    assert!(
        store
            .acquire_flow_lease("f1", "w1", at(0), at(20))
            .await
            .unwrap()
    );
    // Held: another process cannot take it, its holder can (and keeps acquired_at).
    assert!(
        !store
            .acquire_flow_lease("f1", "w2", at(10), at(30))
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_flow_lease("f1", "w1", at(10), at(30))
            .await
            .unwrap()
    );
    let leases = store.flow_leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].owner, "w1");
    assert_eq!(leases[0].lease_until, at(30));
    assert_eq!(leases[0].acquired_at, at(0));
    // Renewing extends every lease of the holder in one go.
    assert!(
        store
            .acquire_flow_lease("f2", "w1", at(10), at(30))
            .await
            .unwrap()
    );
    assert_eq!(
        store.renew_flow_leases("w1", at(50)).await.unwrap(),
        ["f1", "f2"]
    );
    assert!(
        store
            .renew_flow_leases("w2", at(50))
            .await
            .unwrap()
            .is_empty()
    );
    // Still held at its end; taken over just after it (the holder died).
    assert!(
        !store
            .acquire_flow_lease("f1", "w2", at(50), at(70))
            .await
            .unwrap()
    );
    let after = at(50) + SignedDuration::from_micros(1);
    assert!(
        store
            .acquire_flow_lease("f1", "w2", after, at(70))
            .await
            .unwrap()
    );
    let f1 = store
        .flow_leases()
        .await
        .unwrap()
        .into_iter()
        .find(|lease| lease.flow_id == "f1")
        .unwrap();
    assert_eq!((f1.owner.as_str(), f1.acquired_at), ("w2", after));
    // The old holder, back, renews only what it still holds.
    assert_eq!(store.renew_flow_leases("w1", at(60)).await.unwrap(), ["f2"]);
    // Releasing: only the holder can; then anyone may take it.
    assert!(!store.release_flow_lease("f1", "w1").await.unwrap());
    assert!(store.release_flow_lease("f1", "w2").await.unwrap());
    assert!(
        store
            .acquire_flow_lease("f1", "w3", at(61), at(80))
            .await
            .unwrap()
    );
    assert_eq!(store.release_flow_leases("w1").await.unwrap(), 1);
    assert_eq!(store.flow_leases().await.unwrap().len(), 1);
    assert!(matches!(
        store.acquire_flow_lease("nope", "w1", at(0), at(20)).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Two handles (two replicas) race for the same leases: each flow gets exactly one holder.
pub async fn two_replicas_racing_for_a_lease_get_it_once<S: Store>(store: &S, other: &S) {
    let flows: Vec<_> = (0..40)
        .map(|n| {
            super::flow(
                &format!("f{n:02}"),
                "t1",
                FlowKind::OrderDelivery,
                &format!("flow {n}"),
            )
        })
        .collect();
    store.insert_tenant(&tenant("t1"), &flows).await.unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let race = |handle: S, worker: &'static str| {
        let start = start.clone();
        let flows: Vec<String> = flows.iter().map(|flow| flow.id.clone()).collect();
        tokio::spawn(async move {
            start.wait().await;
            let mut won = Vec::new();
            for flow in flows {
                if handle
                    .acquire_flow_lease(&flow, worker, at(0), at(20))
                    .await
                    .unwrap()
                {
                    won.push(flow);
                }
            }
            won
        })
    };
    let first = race(store.clone(), "replica-a");
    let second = race(other.clone(), "replica-b");
    let first = first.await.unwrap();
    let second = second.await.unwrap();
    assert_eq!(first.len() + second.len(), 40, "{first:?} {second:?}");
    assert!(first.iter().all(|flow| !second.contains(flow)));
}

pub async fn breaker_states_are_kept_per_flow_and_target<S: Store>(store: &S) {
    with_flows(store).await;
    let record =
        |flow: &str, target: &str, status, until: Option<i64>, updated: i64| BreakerRecord {
            flow_id: flow.to_owned(),
            target: target.to_owned(),
            status,
            open_until: until.map(at),
            updated_at: at(updated),
        };
    store
        .set_breaker_state(&record("f1", "webhook", BreakerStatus::Open, Some(60), 0))
        .await
        .unwrap();
    store
        .set_breaker_state(&record("f1", "catalog", BreakerStatus::HalfOpen, None, 1))
        .await
        .unwrap();
    store
        .set_breaker_state(&record("f1", "webhook", BreakerStatus::Closed, None, 2))
        .await
        .unwrap();
    // A flow removed meanwhile has no breaker to record.
    store
        .set_breaker_state(&record("gone", "webhook", BreakerStatus::Open, Some(9), 2))
        .await
        .unwrap();
    assert_eq!(
        store.breaker_states().await.unwrap(),
        [
            record("f1", "catalog", BreakerStatus::HalfOpen, None, 1),
            record("f1", "webhook", BreakerStatus::Closed, None, 2),
        ]
    );
}

pub async fn hint_activity_adds_up_per_flow<S: Store>(store: &S) {
    with_flows(store).await;
    assert_eq!(store.hint_activity().await.unwrap(), []);
    store.record_hints("f1", 3, at(10)).await.unwrap();
    store.record_hints("f1", 2, at(20)).await.unwrap();
    // Recorded late by a slower replica: the count adds up, the last time stays.
    store.record_hints("f1", 1, at(15)).await.unwrap();
    store.record_hints("f2", 1, at(5)).await.unwrap();
    store.record_hints("gone", 7, at(5)).await.unwrap();
    let activity = |flow: &str, received, last| HintActivity {
        flow_id: flow.to_owned(),
        received,
        last_received_at: at(last),
    };
    assert_eq!(
        store.hint_activity().await.unwrap(),
        [activity("f1", 6, 20), activity("f2", 1, 5)]
    );
    assert!(store.delete_flow("f2").await.unwrap());
    assert_eq!(
        store.hint_activity().await.unwrap(),
        [activity("f1", 6, 20)]
    );
}
