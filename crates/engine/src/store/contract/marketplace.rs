//! [`MarketplaceStore`](crate::store::MarketplaceStore): claims that make an import exactly
//! once, and what stands once an order is imported or refused.

use super::{at, tenant, with_flows};
use crate::store::{FlowKind, ImportClaim, ImportState, Store, StoreError};

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
