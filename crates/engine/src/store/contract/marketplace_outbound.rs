//! [`MarketplaceOutboundStore`](crate::store::MarketplaceOutboundStore): an order's terms
//! and the last status derived from Odoo, for imported orders only.

use super::{at, with_flows};
use crate::store::{OutboundOrder, Store};

pub async fn terms_and_odoo_statuses_are_kept_per_imported_order<S: Store>(store: &S) {
    with_flows(store).await;
    // Unknown orders: nothing to record.
    assert!(
        !store
            .record_order_terms("f1", "H1", Some("delivered_by_cartona"), None, at(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_odoo_status("f1", "H1", "approved", at(0))
            .await
            .unwrap()
    );
    store
        .claim_import("f1", "H1", "w", at(0), at(60))
        .await
        .unwrap();
    store
        .claim_import("f1", "H2", "w", at(0), at(60))
        .await
        .unwrap();
    store
        .claim_import("f2", "H1", "w", at(0), at(60))
        .await
        .unwrap();
    // Terms can be recorded as soon as the order is claimed; a status only once imported.
    assert!(
        store
            .record_order_terms(
                "f1",
                "H1",
                Some("delivered_by_cartona"),
                Some("installment"),
                at(1)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_odoo_status("f1", "H1", "approved", at(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .outbound_orders("f1", &[41, 42])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .record_import("f1", "H1", 42, Some("pending"), at(2))
        .await
        .unwrap();
    store
        .record_import("f1", "H2", 43, None, at(2))
        .await
        .unwrap();
    store
        .record_import("f2", "H1", 42, None, at(2))
        .await
        .unwrap();
    // A None keeps what is stored.
    store
        .record_order_terms("f1", "H1", None, None, at(3))
        .await
        .unwrap();
    assert!(
        store
            .record_odoo_status("f1", "H1", "approved", at(4))
            .await
            .unwrap()
    );
    let found = store.outbound_orders("f1", &[42, 43, 44]).await.unwrap();
    assert_eq!(
        found,
        vec![
            OutboundOrder {
                hashed_id: "H1".into(),
                odoo_order_id: 42,
                delivered_by: Some("delivered_by_cartona".into()),
                payment_method: Some("installment".into()),
                marketplace_status: Some("pending".into()),
                odoo_status: Some("approved".into()),
            },
            OutboundOrder {
                hashed_id: "H2".into(),
                odoo_order_id: 43,
                delivered_by: None,
                payment_method: None,
                marketplace_status: None,
                odoo_status: None,
            },
        ]
    );
    // The other flow's order with the same Odoo id is its own.
    let other = store.outbound_orders("f2", &[42]).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].odoo_status, None);
    assert!(store.outbound_orders("f1", &[]).await.unwrap().is_empty());
    let order = store.marketplace_order("f1", "H1").await.unwrap().unwrap();
    assert_eq!(order.odoo_status.as_deref(), Some("approved"));
    assert_eq!(order.updated_at, at(4));
}

pub async fn catalog_hashes_are_upserted_per_flow_and_product<S: Store>(store: &S) {
    with_flows(store).await;
    assert!(
        store
            .catalog_hashes("f1", &[1, 2])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .record_catalog_pushed("f1", &[(1, "a".into()), (2, "b".into())], at(0))
        .await
        .unwrap();
    store
        .record_catalog_pushed("f1", &[(2, "c".into())], at(1))
        .await
        .unwrap();
    store
        .record_catalog_pushed("f2", &[(1, "z".into())], at(1))
        .await
        .unwrap();
    store.record_catalog_pushed("f1", &[], at(2)).await.unwrap();
    let hashes = store.catalog_hashes("f1", &[1, 2, 3]).await.unwrap();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[&1], "a");
    assert_eq!(hashes[&2], "c");
    assert_eq!(store.catalog_hashes("f2", &[1]).await.unwrap()[&1], "z");
    assert!(store.catalog_hashes("f1", &[]).await.unwrap().is_empty());
}
