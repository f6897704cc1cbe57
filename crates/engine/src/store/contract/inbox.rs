//! The inbox: events stored once, applied in order per subject, retried, failed.

use super::{LEASE, at, ids, with_flows};
use crate::store::{
    Application, ApplicationOutcome, InboundFilter, InboundStatus, NewInboundEvent, Received,
    Store, StoreError,
};
use crate::webhook::FailureClass;
use serde_json::{Map, Value};

fn event(flow_id: &str, event_id: &str, subject: Option<&str>, received: i64) -> NewInboundEvent {
    let mut headers = Map::new();
    headers.insert("webhook-id".into(), Value::String(event_id.to_owned()));
    NewInboundEvent {
        flow_id: flow_id.to_owned(),
        event_id: event_id.to_owned(),
        kind: "cartona.status".to_owned(),
        subject: subject.map(str::to_owned),
        source: "203.0.113.7".to_owned(),
        headers,
        body: format!(
            r#"{{"hashed_id":"{}","status":"approved"}}"#,
            subject.unwrap_or("")
        ),
        max_attempts: 5,
        received_at: at(received),
    }
}

fn applied(result: &str, second: i64) -> Application {
    Application {
        started_at: at(second),
        duration_ms: 7,
        outcome: ApplicationOutcome::Applied {
            result: result.to_owned(),
        },
    }
}

pub async fn an_event_is_stored_once_per_event_id<S: Store>(store: &S) {
    with_flows(store).await;
    let first = event("f1", "evt-1", Some("H1"), 0);
    let Received::Stored(id) = store.receive(&first).await.unwrap() else {
        panic!("the first delivery is stored");
    };
    // A resend (same webhook-id) is recognised and stores nothing.
    let mut resent = first.clone();
    resent.body = "{}".to_owned();
    assert_eq!(
        store.receive(&resent).await.unwrap(),
        Received::Duplicate(id)
    );
    // The same event id for another flow is another event.
    let other = store
        .receive(&event("f2", "evt-1", Some("H1"), 0))
        .await
        .unwrap();
    assert!(matches!(other, Received::Stored(other) if other != id));
    let stored = store.inbound_event(id).await.unwrap().unwrap();
    assert_eq!(stored.flow_id, "f1");
    assert_eq!(stored.event_id, "evt-1");
    assert_eq!(stored.kind, "cartona.status");
    assert_eq!(stored.subject.as_deref(), Some("H1"));
    assert_eq!(stored.source, "203.0.113.7");
    assert_eq!(stored.headers, first.headers);
    assert_eq!(stored.body, first.body);
    assert_eq!(stored.status, InboundStatus::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.next_attempt_at, at(0));
    assert_eq!(stored.received_at, at(0));
    assert!(matches!(
        store.receive(&event("nope", "evt-1", None, 0)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.inbound_event(id + 1_000).await.unwrap(), None);
}

pub async fn events_are_claimed_in_arrival_order_one_per_subject<S: Store>(store: &S) {
    with_flows(store).await;
    for (event_id, subject) in [
        ("e1", Some("A")),
        ("e2", Some("B")),
        ("e3", Some("A")),
        ("e4", None),
        ("e5", None),
    ] {
        store
            .receive(&event("f1", event_id, subject, 0))
            .await
            .unwrap();
    }
    store
        .receive(&event("f2", "x1", Some("A"), 0))
        .await
        .unwrap();
    // e3 waits for e1 (same subject); events without a subject are not ordered together.
    let claimed = store
        .claim_inbound("w1", "f1", at(1), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["e1", "e2", "e4", "e5"]);
    assert!(
        claimed
            .iter()
            .all(|e| e.lease_owner.as_deref() == Some("w1"))
    );
    // Leased events are not claimed again; e3 still waits for e1.
    assert!(
        store
            .claim_inbound("w2", "f1", at(2), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .record_application(claimed[0].id, "w1", &applied("confirmed S00001", 3))
            .await
            .unwrap()
    );
    let claimed = store
        .claim_inbound("w2", "f1", at(3), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["e3"]);
    // Limits hold; the other flow's events are its own.
    let other = store
        .claim_inbound("w2", "f2", at(3), LEASE, 0)
        .await
        .unwrap();
    assert!(other.is_empty());
    let due = store.next_inbound_due_by_flow().await.unwrap();
    assert_eq!(due["f2"], at(0));
    // A lease that ran out makes an event claimable again.
    let later = at(1) + LEASE + jiff::SignedDuration::from_micros(1);
    let reclaimed = store
        .claim_inbound("w3", "f1", later, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&reclaimed), ["e2", "e4", "e5"]);
}

pub async fn applications_are_recorded_retried_and_failed<S: Store>(store: &S) {
    with_flows(store).await;
    let Received::Stored(id) = store
        .receive(&event("f1", "e1", Some("A"), 0))
        .await
        .unwrap()
    else {
        panic!("stored");
    };
    store
        .claim_inbound("w", "f1", at(0), LEASE, 1)
        .await
        .unwrap();
    let retry = Application {
        started_at: at(1),
        duration_ms: 40,
        outcome: ApplicationOutcome::Retry {
            error: "Odoo unreachable".to_owned(),
            failure_class: FailureClass::NetworkError,
            next_attempt_at: at(60),
        },
    };
    assert!(store.record_application(id, "w", &retry).await.unwrap());
    // Recording again without the lease is refused.
    assert!(!store.record_application(id, "w", &retry).await.unwrap());
    let waiting = store.inbound_event(id).await.unwrap().unwrap();
    assert_eq!(waiting.status, InboundStatus::Pending);
    assert_eq!(waiting.attempts, 1);
    assert_eq!(waiting.next_attempt_at, at(60));
    assert_eq!(waiting.failure_class, Some(FailureClass::NetworkError));
    assert_eq!(waiting.last_error.as_deref(), Some("Odoo unreachable"));
    assert!(
        store
            .claim_inbound("w", "f1", at(59), LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .claim_inbound("w", "f1", at(60), LEASE, 1)
        .await
        .unwrap();
    let refused = Application {
        started_at: at(61),
        duration_ms: 3,
        outcome: ApplicationOutcome::Failed {
            error: "unknown order".to_owned(),
            failure_class: FailureClass::OdooError,
        },
    };
    assert!(store.record_application(id, "w", &refused).await.unwrap());
    let given_up = store.inbound_event(id).await.unwrap().unwrap();
    assert_eq!(given_up.status, InboundStatus::Failed);
    assert_eq!(given_up.attempts, 2);
    assert!(
        store
            .claim_inbound("w", "f1", at(1_000), LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .next_inbound_due_by_flow()
            .await
            .unwrap()
            .contains_key("f1")
    );
    let history = store.applications(id).await.unwrap();
    let summary: Vec<(&str, Option<&str>)> = history
        .iter()
        .map(|a| (a.outcome.as_str(), a.detail.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("retry", Some("Odoo unreachable")),
            ("failed", Some("unknown order"))
        ]
    );
    assert_eq!(history[0].duration_ms, 40);
    // Listing, newest first, filtered.
    let Received::Stored(second) = store.receive(&event("f1", "e2", None, 5)).await.unwrap() else {
        panic!("stored");
    };
    store
        .claim_inbound("w", "f1", at(5), LEASE, 1)
        .await
        .unwrap();
    assert!(
        store
            .record_application(second, "w", &applied("done", 6))
            .await
            .unwrap()
    );
    let done = store.inbound_event(second).await.unwrap().unwrap();
    assert_eq!(done.status, InboundStatus::Applied);
    assert_eq!(done.result.as_deref(), Some("done"));
    assert_eq!(done.applied_at, Some(at(6)));
    let failed = store
        .inbound_events(&InboundFilter {
            flow_id: Some("f1".to_owned()),
            status: Some(InboundStatus::Failed),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(ids(&failed), ["e1"]);
    let all = store
        .inbound_events(&InboundFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(&all), ["e2", "e1"]);
    // The flow's figures count the inbound events waiting and given up on.
    store.receive(&event("f1", "e3", None, 7)).await.unwrap();
    let stats = store.flow_stats(at(0)).await.unwrap();
    let f1 = stats.iter().find(|stat| stat.flow_id == "f1").unwrap();
    assert_eq!((f1.inbound_pending, f1.inbound_failed), (1, 1), "{f1:?}");
    let f2 = stats.iter().find(|stat| stat.flow_id == "f2").unwrap();
    assert_eq!((f2.inbound_pending, f2.inbound_failed), (0, 0), "{f2:?}");
}

pub async fn events_can_be_retried_and_discarded_by_a_person<S: Store>(store: &S) {
    with_flows(store).await;
    let mut made = Vec::new();
    for event_id in ["e1", "e2"] {
        match store
            .receive(&event("f1", event_id, None, 0))
            .await
            .unwrap()
        {
            Received::Stored(id) => made.push(id),
            Received::Duplicate(_) => panic!("new"),
        }
    }
    store
        .claim_inbound("w", "f1", at(0), LEASE, 10)
        .await
        .unwrap();
    let refused = Application {
        started_at: at(1),
        duration_ms: 1,
        outcome: ApplicationOutcome::Failed {
            error: "conflict".to_owned(),
            failure_class: FailureClass::OdooError,
        },
    };
    assert!(
        store
            .record_application(made[0], "w", &refused)
            .await
            .unwrap()
    );
    assert!(store.retry_inbound(made[0], at(10)).await.unwrap());
    let again = store.inbound_event(made[0]).await.unwrap().unwrap();
    assert_eq!(again.status, InboundStatus::Pending);
    assert_eq!(again.attempts, 0);
    assert_eq!(again.next_attempt_at, at(10));
    // Discarding a leased event takes it from its worker.
    assert!(store.discard_inbound(made[1], at(10)).await.unwrap());
    assert!(!store.discard_inbound(made[1], at(10)).await.unwrap());
    assert!(!store.retry_inbound(made[1], at(10)).await.unwrap());
    assert!(
        !store
            .record_application(made[1], "w", &applied("late", 11))
            .await
            .unwrap()
    );
    assert_eq!(
        store.inbound_event(made[1]).await.unwrap().unwrap().status,
        InboundStatus::Discarded
    );
    assert!(!store.retry_inbound(9_999, at(10)).await.unwrap());
}

/// A worker restarted under its id after a crash takes back the events it had leased, due at
/// once, without waiting for the leases; another worker's leases stay.
pub async fn a_restarted_worker_takes_its_events_back<S: Store>(store: &S) {
    with_flows(store).await;
    for (flow, event_id, subject) in [("f1", "e1", "A"), ("f1", "e2", "B"), ("f2", "x1", "A")] {
        store
            .receive(&event(flow, event_id, Some(subject), 0))
            .await
            .unwrap();
    }
    let long = jiff::SignedDuration::from_secs(3600);
    let mine = store
        .claim_inbound("w1", "f1", at(1), long, 10)
        .await
        .unwrap();
    assert_eq!(ids(&mine), ["e1", "e2"]);
    let theirs = store
        .claim_inbound("w2", "f2", at(1), long, 10)
        .await
        .unwrap();
    assert_eq!(ids(&theirs), ["x1"]);
    assert_eq!(
        store.release_inbound_leases_of("w1", at(5)).await.unwrap(),
        2
    );
    let again = store
        .claim_inbound("w1", "f1", at(5), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(ids(&again), ["e1", "e2"]);
    assert!(again.iter().all(|event| event.next_attempt_at == at(5)));
    // w2's lease is untouched; nobody else's release frees anything.
    assert!(
        store
            .claim_inbound("w1", "f2", at(5), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .release_inbound_leases_of("nobody", at(5))
            .await
            .unwrap(),
        0
    );
}
