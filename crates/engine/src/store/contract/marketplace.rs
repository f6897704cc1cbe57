//! [`MarketplaceStore`](crate::store::MarketplaceStore): claims that make an import exactly
//! once, and what stands once an order is imported or refused.

use super::{at, tenant, with_flows};
use crate::store::{
    ConflictSeverity, FlowKind, ImportClaim, ImportState, LogDirection, LogEntry, LogFilter,
    LogOutcome, NewConflict, Resolve, Store, StoreError,
};

fn granted(claim: &ImportClaim) -> bool {
    matches!(claim, ImportClaim::Granted(_))
}

pub async fn a_claim_is_exclusive_until_it_runs_out_and_an_import_stands<S: Store>(store: &S) {
    with_flows(store).await;
    let claim = store
        .claim_import("f1", "H1", "worker-a", at(0), at(60))
        .await
        .unwrap();
    let ImportClaim::Granted(order) = &claim else {
        panic!("{claim:?}")
    };
    assert_eq!(order.state, ImportState::Claimed);
    assert_eq!(order.claim_owner.as_deref(), Some("worker-a"));
    assert_eq!(order.claim_until, Some(at(60)));
    // Another worker is refused while the claim lives; its holder renews it.
    let other = store
        .claim_import("f1", "H1", "worker-b", at(30), at(90))
        .await
        .unwrap();
    assert!(matches!(other, ImportClaim::HeldElsewhere(_)), "{other:?}");
    assert!(granted(
        &store
            .claim_import("f1", "H1", "worker-a", at(30), at(90))
            .await
            .unwrap()
    ));
    // The same hashed id in another flow is another order.
    assert!(granted(
        &store
            .claim_import("f2", "H1", "worker-b", at(30), at(90))
            .await
            .unwrap()
    ));
    // A dead holder's claim runs out.
    let taken = store
        .claim_import("f1", "H1", "worker-b", at(91), at(151))
        .await
        .unwrap();
    assert!(granted(&taken), "{taken:?}");
    let recorded = store
        .record_import("f1", "H1", 42, Some("pending"), at(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.state, ImportState::Imported);
    assert_eq!(recorded.odoo_order_id, Some(42));
    assert_eq!(recorded.claim_owner, None);
    assert_eq!(recorded.marketplace_status.as_deref(), Some("pending"));
    assert_eq!(recorded.imported_at, Some(at(100)));
    // The first record stands: a late importer that found the order by its reference changes
    // nothing, and nobody can claim it again.
    let late = store
        .record_import("f1", "H1", 43, Some("approved"), at(110))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.odoo_order_id, Some(42));
    let again = store
        .claim_import("f1", "H1", "worker-a", at(500), at(560))
        .await
        .unwrap();
    let ImportClaim::Imported(order) = again else {
        panic!("{again:?}")
    };
    assert_eq!(order.odoo_order_id, Some(42));
    assert_eq!(
        store
            .record_import("f1", "never-claimed", 1, None, at(0))
            .await
            .unwrap(),
        None
    );
    let missing = store
        .claim_import("nope", "H1", "worker-a", at(0), at(60))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn refusals_and_releases_never_touch_an_imported_order<S: Store>(store: &S) {
    with_flows(store).await;
    store
        .record_refusal(
            "f1",
            "H2",
            "variant_not_found",
            "line 1: product 999",
            Some("pending"),
            at(0),
        )
        .await
        .unwrap();
    let refused = store.marketplace_order("f1", "H2").await.unwrap().unwrap();
    assert_eq!(refused.state, ImportState::Refused);
    assert_eq!(refused.issue_code.as_deref(), Some("variant_not_found"));
    // A refused order may be tried again once fixed: its claim clears the issue.
    let retried = store
        .claim_import("f1", "H2", "worker-a", at(10), at(70))
        .await
        .unwrap();
    let ImportClaim::Granted(order) = retried else {
        panic!("{retried:?}")
    };
    assert_eq!(
        (order.state, order.issue_code),
        (ImportState::Claimed, None)
    );
    // Released by its holder only, and then claimable at once.
    assert!(!store.release_import("f1", "H2", "worker-b").await.unwrap());
    assert!(store.release_import("f1", "H2", "worker-a").await.unwrap());
    assert!(granted(
        &store
            .claim_import("f1", "H2", "worker-b", at(11), at(71))
            .await
            .unwrap()
    ));
    store
        .record_import("f1", "H2", 7, None, at(20))
        .await
        .unwrap();
    store
        .record_refusal("f1", "H2", "customer_error", "late", None, at(30))
        .await
        .unwrap();
    assert!(!store.release_import("f1", "H2", "worker-b").await.unwrap());
    let kept = store.marketplace_order("f1", "H2").await.unwrap().unwrap();
    assert_eq!(kept.state, ImportState::Imported);
    assert_eq!(kept.odoo_order_id, Some(7));
    assert_eq!(kept.issue_code, None);
    assert_eq!(kept.marketplace_status.as_deref(), Some("pending"));
    let listed: Vec<String> = store
        .marketplace_orders("f1")
        .await
        .unwrap()
        .into_iter()
        .map(|order| order.hashed_id)
        .collect();
    assert_eq!(listed, vec!["H2".to_owned()]);
    // Deleting the flow takes its orders.
    assert!(store.delete_flow("f1").await.unwrap());
    assert!(store.marketplace_orders("f1").await.unwrap().is_empty());
}

pub async fn two_importers_racing_claim_each_order_once<S: Store>(store: &S, other: &S) {
    let flow = super::flow("m1", "t1", FlowKind::Marketplace, "cartona");
    store.insert_tenant(&tenant("t1"), &[flow]).await.unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let race = |handle: S, worker: &'static str| {
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            let mut won = Vec::new();
            for n in 0..40 {
                let hashed = format!("H{n:02}");
                if granted(
                    &handle
                        .claim_import("m1", &hashed, worker, at(0), at(60))
                        .await
                        .unwrap(),
                ) {
                    won.push(hashed);
                }
            }
            won
        })
    };
    let first = race(store.clone(), "worker-a");
    let second = race(other.clone(), "worker-b");
    let first = first.await.unwrap();
    let second = second.await.unwrap();
    assert_eq!(first.len() + second.len(), 40, "{first:?} {second:?}");
    assert!(first.iter().all(|hashed| !second.contains(hashed)));
}

fn log_entry(flow: &str, key: &str, hashed: &str, outcome: LogOutcome, at_s: i64) -> LogEntry {
    LogEntry {
        flow_id: flow.to_owned(),
        event_key: key.to_owned(),
        direction: LogDirection::Inbound,
        hashed_id: hashed.to_owned(),
        odoo_order_id: Some(7),
        action: "status".to_owned(),
        outcome,
        marketplace_status: Some("approved".to_owned()),
        odoo_order_state: Some("sale".to_owned()),
        odoo_delivery_state: Some("assigned".to_owned()),
        response_time_ms: Some(100),
        retries: 0,
        error_code: None,
        error_text: None,
        at: at(at_s),
    }
}

pub async fn log_rows_are_one_per_event_listed_newest_first_and_counted<S: Store>(store: &S) {
    with_flows(store).await;
    store
        .record_log(&log_entry("f1", "inbox:1", "H1", LogOutcome::Retrying, 10))
        .await
        .unwrap();
    // The same event tried again replaces its row; an older try changes nothing.
    let mut again = log_entry("f1", "inbox:1", "H1", LogOutcome::Success, 20);
    again.retries = 1;
    again.response_time_ms = Some(300);
    store.record_log(&again).await.unwrap();
    store
        .record_log(&log_entry("f1", "inbox:1", "H1", LogOutcome::Failed, 15))
        .await
        .unwrap();
    let mut refused = log_entry("f1", "import:H2", "H2", LogOutcome::Failed, 30);
    refused.error_code = Some("variant_not_found".to_owned());
    refused.response_time_ms = None;
    refused.odoo_order_id = None;
    store.record_log(&refused).await.unwrap();
    store
        .record_log(&log_entry("f2", "inbox:9", "H1", LogOutcome::Conflict, 40))
        .await
        .unwrap();
    let all = store.marketplace_log(&LogFilter::default()).await.unwrap();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|row| (row.entry.flow_id.as_str(), row.entry.event_key.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![("f2", "inbox:9"), ("f1", "import:H2"), ("f1", "inbox:1")]
    );
    assert_eq!(all[2].entry, again);
    assert_eq!(all[1].entry, refused);
    let of_order = store
        .marketplace_log(&LogFilter {
            flow_id: Some("f1".to_owned()),
            hashed_id: Some("H1".to_owned()),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(of_order.len(), 1);
    let limited = store
        .marketplace_log(&LogFilter {
            limit: 1,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    // Stats: rows in the window, and orders in sync.
    store
        .claim_import("f1", "H1", "w", at(0), at(60))
        .await
        .unwrap();
    store
        .record_import("f1", "H1", 7, Some("pending"), at(1))
        .await
        .unwrap();
    store
        .claim_import("f1", "H3", "w", at(0), at(60))
        .await
        .unwrap();
    store
        .record_import("f1", "H3", 8, None, at(1))
        .await
        .unwrap();
    let stats = store.log_stats(Some("f1"), at(0)).await.unwrap();
    assert_eq!(
        (stats.total, stats.success, stats.failed, stats.conflict),
        (2, 1, 1, 0)
    );
    assert_eq!(stats.average_response_ms(), Some(300.0));
    // H1's newest row is a success, H3 has none yet: both in sync.
    assert_eq!((stats.orders, stats.orders_in_sync), (2, 2));
    let later = store.log_stats(None, at(25)).await.unwrap();
    assert_eq!((later.total, later.failed, later.conflict), (2, 1, 1));
    let mut failing = log_entry("f1", "inbox:2", "H3", LogOutcome::Failed, 50);
    failing.response_time_ms = None;
    store.record_log(&failing).await.unwrap();
    let stats = store.log_stats(Some("f1"), at(0)).await.unwrap();
    assert_eq!(stats.orders_in_sync, 1);
    // Retention: rows written before the cut go, of every flow; the others stay.
    assert_eq!(store.prune_log(at(35)).await.unwrap(), 2);
    assert_eq!(store.prune_log(at(35)).await.unwrap(), 0);
    let kept: Vec<String> = store
        .marketplace_log(&LogFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.entry.event_key)
        .collect();
    assert_eq!(kept, ["inbox:2", "inbox:9"]);
    assert!(matches!(
        store
            .record_log(&log_entry("nope", "inbox:1", "H1", LogOutcome::Success, 0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.delete_flow("f1").await.unwrap());
    assert!(
        store
            .marketplace_log(&LogFilter {
                flow_id: Some("f1".to_owned()),
                ..LogFilter::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
}

fn conflict(key: &str, kind: &str, resolution: Option<&str>, at_s: i64) -> NewConflict {
    NewConflict {
        flow_id: "f1".to_owned(),
        hashed_id: "H1".to_owned(),
        event_key: key.to_owned(),
        odoo_order_id: Some(7),
        kind: kind.to_owned(),
        severity: ConflictSeverity::High,
        marketplace_status: Some("cancelled_by_retailer".to_owned()),
        odoo_status: Some("assigned_to_salesman".to_owned()),
        odoo_order_state: Some("sale".to_owned()),
        odoo_delivery_state: Some("done".to_owned()),
        recommended_action: "return the goods by hand".to_owned(),
        auto_resolvable: resolution.is_some(),
        detail: "the delivery is done".to_owned(),
        resolution: resolution.map(str::to_owned),
        at: at(at_s),
    }
}

pub async fn conflicts_open_once_per_kind_and_resolve_once<S: Store>(store: &S) {
    with_flows(store).await;
    let first = store
        .record_conflict(&conflict("inbox:1", "cancel_after_delivery", None, 10))
        .await
        .unwrap();
    assert!(first.open);
    assert_eq!(first.conflict.resolution, None);
    assert_eq!(first.created_at, at(10));
    // Seen again (another event, newer states): the same open conflict, updated.
    let mut seen_again = conflict("inbox:2", "cancel_after_delivery", None, 20);
    seen_again.marketplace_status = Some("cancelled_by_supplier".to_owned());
    let second = store.record_conflict(&seen_again).await.unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.conflict.event_key, "inbox:1");
    assert_eq!(
        second.conflict.marketplace_status.as_deref(),
        Some("cancelled_by_supplier")
    );
    assert_eq!((second.created_at, second.updated_at), (at(10), at(20)));
    // A rule's conflict is stored resolved, once per event.
    let auto = store
        .record_conflict(&conflict("inbox:3", "stale_status", Some("auto"), 30))
        .await
        .unwrap();
    assert!(!auto.open);
    assert_eq!(auto.resolved_at, Some(at(30)));
    let auto_again = store
        .record_conflict(&conflict("inbox:3", "stale_status", Some("auto"), 31))
        .await
        .unwrap();
    assert_eq!(auto_again.id, auto.id);
    let open = store.conflicts(Some("f1"), true).await.unwrap();
    assert_eq!(
        open.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first.id]
    );
    let every = store.conflicts(None, false).await.unwrap();
    assert_eq!(
        every.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![auto.id, first.id]
    );
    assert_eq!(
        store.conflict(first.id).await.unwrap(),
        Some(second.clone())
    );
    // Resolved once: a second resolution keeps the first.
    let Resolve::Resolved(resolved) = store
        .resolve_conflict(first.id, "marketplace", at(40))
        .await
        .unwrap()
    else {
        panic!("not resolved")
    };
    assert!(!resolved.open);
    assert_eq!(resolved.conflict.resolution.as_deref(), Some("marketplace"));
    assert_eq!(resolved.resolved_at, Some(at(40)));
    let Resolve::AlreadyResolved(kept) = store
        .resolve_conflict(first.id, "ignore", at(50))
        .await
        .unwrap()
    else {
        panic!("resolved twice")
    };
    assert_eq!(kept.conflict.resolution.as_deref(), Some("marketplace"));
    assert_eq!(
        store
            .resolve_conflict(9_999, "ignore", at(50))
            .await
            .unwrap(),
        Resolve::NotFound
    );
    // The first event retried after the resolution: its conflict stands, nothing reopens.
    let retried = store
        .record_conflict(&conflict("inbox:1", "cancel_after_delivery", None, 60))
        .await
        .unwrap();
    assert_eq!(retried.id, first.id);
    assert!(!retried.open);
    // Once resolved, a new event of that kind opens a new conflict.
    let reopened = store
        .record_conflict(&conflict("inbox:4", "cancel_after_delivery", None, 70))
        .await
        .unwrap();
    assert_ne!(reopened.id, first.id);
    assert!(reopened.open);
    let stats = store.log_stats(Some("f1"), at(0)).await.unwrap();
    assert_eq!(stats.open_conflicts, 1);
    let missing = store
        .record_conflict(&NewConflict {
            flow_id: "nope".to_owned(),
            ..conflict("inbox:5", "x", None, 0)
        })
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn a_marketplace_status_moves_by_compare_and_set<S: Store>(store: &S) {
    with_flows(store).await;
    // Not imported: nothing to set.
    assert!(
        !store
            .set_marketplace_status("f1", "H1", None, "approved", at(0))
            .await
            .unwrap()
    );
    store
        .claim_import("f1", "H1", "w", at(0), at(60))
        .await
        .unwrap();
    assert!(
        !store
            .set_marketplace_status("f1", "H1", None, "approved", at(0))
            .await
            .unwrap()
    );
    store
        .record_import("f1", "H1", 7, None, at(1))
        .await
        .unwrap();
    assert!(
        store
            .set_marketplace_status("f1", "H1", None, "approved", at(2))
            .await
            .unwrap()
    );
    // A writer that read an older status loses.
    assert!(
        !store
            .set_marketplace_status("f1", "H1", None, "delivered", at(3))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_marketplace_status("f1", "H1", Some("approved"), "delivered", at(3))
            .await
            .unwrap()
    );
    let order = store.marketplace_order("f1", "H1").await.unwrap().unwrap();
    assert_eq!(order.marketplace_status.as_deref(), Some("delivered"));
    assert_eq!(order.updated_at, at(3));
}
