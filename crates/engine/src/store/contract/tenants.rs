//! Tenants, flows and the connection view.

use super::{API_KEY, SECRET, at, checkpoint, flow, packet, tenant, with_flows};
use crate::order_delivery::{Connection, ConnectionStore, EventSet, WebhookSecret};
use crate::store::{BreakerRecord, BreakerStatus};
use crate::store::{CycleLog, FeedCursor, FlowKind, NewInboundEvent, Reseal, Store, StoreError};
use odoo_rpc::{ApiKey, TransportChoice};
use serde_json::json;

pub async fn tenants_and_flows_round_trip<S: Store>(store: &S) {
    let mut first = tenant("a1b2c3d4e5f60718");
    first.name = "Perfumería Ñuñoa 東京".to_owned();
    first.transport = TransportChoice::Json2;
    let mut delivery = flow("f100", &first.id, FlowKind::OrderDelivery, "Le Juste");
    delivery
        .settings
        .insert("nested".into(), json!({"list": [1, 2, 3], "text": "ñ"}));
    delivery.last_sync_at = Some(at(5));
    store
        .insert_tenant(&first, std::slice::from_ref(&delivery))
        .await
        .unwrap();
    assert_eq!(store.tenant(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.tenants().await.unwrap(), vec![first.clone()]);
    assert_eq!(
        store.flow(None, "f100").await.unwrap(),
        Some(delivery.clone())
    );
    assert_eq!(
        store
            .flow(Some(FlowKind::OrderDelivery), "Le Juste")
            .await
            .unwrap(),
        Some(delivery.clone())
    );
    assert_eq!(
        store
            .flow(Some(FlowKind::Marketplace), "Le Juste")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.tenant("nope").await.unwrap(), None);

    // A second flow on the same tenant (one Odoo login shared by its flows).
    let market = flow("f200", &first.id, FlowKind::Marketplace, "Cartona");
    store.insert_flow(&market).await.unwrap();
    assert_eq!(
        store.flows(Some(FlowKind::Marketplace)).await.unwrap(),
        vec![market.clone()]
    );
    assert_eq!(store.flows(None).await.unwrap(), vec![market, delivery]);
    // A flow needs its tenant.
    let orphan = flow("f300", "no-such-tenant", FlowKind::Enrichment, "x");
    assert!(matches!(
        store.insert_flow(&orphan).await,
        Err(StoreError::NotFound { .. })
    ));
    // Secrets are stored (the file is private) but never shown by Debug.
    let read = store.flow(None, "f100").await.unwrap().unwrap();
    assert_eq!(read.secrets["webhook_secret"].expose(), SECRET);
    assert!(!format!("{read:?}").contains(SECRET));
    let read = store.tenant(&first.id).await.unwrap().unwrap();
    assert_eq!(read.odoo_api_key.expose(), API_KEY);
    assert!(!format!("{read:?}").contains(API_KEY));
}

pub async fn flow_names_are_unique_per_kind_and_writes_are_all_or_nothing<S: Store>(store: &S) {
    with_flows(store).await;
    // The same name under another kind is fine.
    store
        .insert_flow(&flow("m1", "t1", FlowKind::Marketplace, "one"))
        .await
        .unwrap();
    // The same name under the same kind is a conflict, and a new tenant whose flow conflicts
    // is not written at all.
    let taken = store
        .insert_tenant(
            &tenant("t2"),
            &[flow("f9", "t2", FlowKind::OrderDelivery, "one")],
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    assert_eq!(store.tenant("t2").await.unwrap(), None);
    // A taken flow id is a conflict too.
    let taken = store
        .insert_flow(&flow("f1", "t1", FlowKind::Enrichment, "other"))
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    // A taken tenant id as well.
    let taken = store.insert_tenant(&tenant("t1"), &[]).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
}

pub async fn updates_are_all_or_nothing<S: Store>(store: &S) {
    with_flows(store).await;
    let mut edited = tenant("t1");
    edited.odoo_url = "https://new.example.com".to_owned();
    edited.odoo_api_key = ApiKey::new("rotated-key-0000000000");
    edited.updated_at = at(10);
    let mut one = flow("f1", "t1", FlowKind::OrderDelivery, "one renamed");
    one.is_active = false;
    one.interval_seconds = 30;
    one.updated_at = at(10);
    assert!(
        store
            .update_tenant(&edited, std::slice::from_ref(&one))
            .await
            .unwrap()
    );
    assert_eq!(store.tenant("t1").await.unwrap(), Some(edited.clone()));
    assert_eq!(store.flow(None, "f1").await.unwrap(), Some(one.clone()));

    // A flow that does not exist (or belongs to another tenant) undoes the whole update.
    let mut again = edited.clone();
    again.odoo_url = "https://third.example.com".to_owned();
    let ghost = flow("ghost", "t1", FlowKind::OrderDelivery, "ghost");
    assert!(!store.update_tenant(&again, &[ghost]).await.unwrap());
    assert_eq!(store.tenant("t1").await.unwrap(), Some(edited.clone()));
    assert!(!store.update_tenant(&tenant("nope"), &[]).await.unwrap());
    // A name taken by another flow of the kind is a conflict, and nothing changes.
    let clash = flow("f1", "t1", FlowKind::OrderDelivery, "two");
    let refused = store.update_tenant(&edited, &[clash]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(store.flow(None, "f1").await.unwrap(), Some(one));
}

pub async fn deleting_a_flow_takes_its_rows_and_its_last_tenant<S: Store>(store: &S) {
    with_flows(store).await;
    for flow_id in ["f1", "f2"] {
        store
            .enqueue(
                flow_id,
                &[packet(flow_id, 1, 1, at(0))],
                Some(FeedCursor {
                    feed: "sale.order",
                    checkpoint: checkpoint(at(0), 1),
                }),
            )
            .await
            .unwrap();
        store
            .receive(&NewInboundEvent {
                flow_id: flow_id.to_owned(),
                event_id: "evt-1".to_owned(),
                kind: "event".to_owned(),
                subject: None,
                source: "127.0.0.1".to_owned(),
                headers: serde_json::Map::new(),
                body: "{}".to_owned(),
                max_attempts: 5,
                received_at: at(0),
            })
            .await
            .unwrap();
        store
            .record_cycles(&[CycleLog {
                flow_id: flow_id.to_owned(),
                started_at: at(0),
                found: 1,
                sent: 0,
                failed: 0,
                held_back: 0,
                error_message: None,
                duration_ms: 5,
            }])
            .await
            .unwrap();
        store
            .set_breaker_state(&BreakerRecord {
                flow_id: flow_id.to_owned(),
                target: "webhook".to_owned(),
                status: BreakerStatus::Open,
                open_until: Some(at(60)),
                updated_at: at(0),
            })
            .await
            .unwrap();
        assert!(
            store
                .acquire_flow_lease(flow_id, "w", at(0), at(20))
                .await
                .unwrap()
        );
    }
    // An attempt in the packet's history goes with it.
    let claimed = store
        .claim_due("w", Some("f1"), at(0), super::LEASE, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let attempt = crate::store::Attempt {
        started_at: at(1),
        duration_ms: 3,
        status_code: Some(200),
        outcome: crate::store::AttemptOutcome::Delivered,
    };
    assert!(
        store
            .record_attempt("f1_1_v1", "w", &attempt)
            .await
            .unwrap()
    );

    assert!(store.delete_flow("f1").await.unwrap());
    assert!(!store.delete_flow("f1").await.unwrap());
    assert_eq!(store.flow(None, "f1").await.unwrap(), None);
    assert_eq!(store.packet("f1_1_v1").await.unwrap(), None);
    assert!(store.attempts("f1_1_v1").await.unwrap().is_empty());
    assert!(store.cycles(Some("f1"), 0).await.unwrap().is_empty());
    assert!(store.cursors(Some("f1")).await.unwrap().is_empty());
    assert_eq!(
        store
            .breaker_states()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.flow_id)
            .collect::<Vec<_>>(),
        ["f2"]
    );
    assert_eq!(
        store
            .flow_leases()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.flow_id)
            .collect::<Vec<_>>(),
        ["f2"]
    );
    assert!(
        store
            .inbound_events(&Default::default())
            .await
            .unwrap()
            .iter()
            .all(|event| event.flow_id == "f2")
    );
    // f2 keeps the tenant; deleting it too removes the tenant.
    assert!(store.tenant("t1").await.unwrap().is_some());
    assert!(store.delete_flow("f2").await.unwrap());
    assert_eq!(store.tenant("t1").await.unwrap(), None);
    assert!(store.packets(&Default::default()).await.unwrap().is_empty());
}

fn connection(id: &str, tenant_id: &str, name: &str) -> Connection {
    Connection {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        name: name.to_owned(),
        odoo_url: "https://odoo.example.com".to_owned(),
        odoo_db: "odoo".to_owned(),
        odoo_username: "api@example.com".to_owned(),
        odoo_api_key: ApiKey::new(API_KEY),
        webhook_url: "https://hooks.example.com/odoo?token=1".to_owned(),
        webhook_secret: WebhookSecret::new(SECRET).unwrap(),
        store_id: "store-1".to_owned(),
        client_id: "client-1".to_owned(),
        polling_interval_seconds: 60,
        odoo_min_delay_ms: 250,
        is_active: true,
        events: EventSet {
            confirmed: true,
            updated: false,
            cancelled: true,
        },
        last_sync_at: None,
        cursor: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

pub async fn connections_are_a_tenant_with_its_order_delivery_flow<S: Store>(store: &S) {
    let first = connection("a1b2c3d4e5f60718", "0718e5f6d4c3b2a1", "Le Juste Odoo");
    store.insert_connection(&first).await.unwrap();
    assert_eq!(
        store.connection("a1b2c3d4e5f60718").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.connection("Le Juste Odoo").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.connections().await.unwrap(), vec![first.clone()]);
    // A taken name is a conflict.
    let twin = connection("ffffffffffffffff", "eeeeeeeeeeeeeeee", "Le Juste Odoo");
    assert!(matches!(
        store.insert_connection(&twin).await,
        Err(StoreError::Conflict { .. })
    ));
    // The cursor moves with the feed; an edit keeps it.
    let moved = checkpoint(at(7), 42);
    store
        .enqueue(
            &first.id,
            &[],
            Some(FeedCursor {
                feed: "sale.order",
                checkpoint: moved,
            }),
        )
        .await
        .unwrap();
    let mut edited = first.clone();
    edited.name = "Le Juste".to_owned();
    edited.odoo_api_key = ApiKey::new("rotated-key-0000000000");
    edited.is_active = false;
    edited.updated_at = at(9);
    assert!(store.update_connection(&edited).await.unwrap());
    let read = store.connection("Le Juste").await.unwrap().unwrap();
    assert_eq!(read.cursor, Some(moved));
    assert_eq!(read.odoo_api_key.expose(), "rotated-key-0000000000");
    assert!(!read.is_active);
    assert_eq!(read.events, edited.events);
    assert_eq!(read.webhook_url, edited.webhook_url);
    assert_eq!(read.updated_at, at(9));
    let ghost = connection("0000000000000000", "1111111111111111", "ghost");
    assert!(!store.update_connection(&ghost).await.unwrap());
    assert!(store.delete_connection(&first.id).await.unwrap());
    assert!(!store.delete_connection(&first.id).await.unwrap());
    assert!(store.connections().await.unwrap().is_empty());
    assert!(store.tenants().await.unwrap().is_empty());
    // Flows of other kinds are not connections.
    store
        .insert_tenant(
            &tenant("t9"),
            &[flow("m9", "t9", FlowKind::Marketplace, "Cartona")],
        )
        .await
        .unwrap();
    assert!(store.connections().await.unwrap().is_empty());
    assert_eq!(store.connection("Cartona").await.unwrap(), None);
    assert!(!store.delete_connection("m9").await.unwrap());
}

/// Secrets go in sealed and come back as they were; a rotation reseals each of them under
/// the new key, once, and they still read the same, also from a second store.
pub async fn secrets_are_sealed_and_a_rotation_reseals_every_one<S: Store>(store: &S) {
    let first = tenant("a1b2c3d4e5f60718");
    let flows = [
        flow("f100", &first.id, FlowKind::OrderDelivery, "one"),
        flow("f200", &first.id, FlowKind::Marketplace, "two"),
    ];
    store.insert_tenant(&first, &flows).await.unwrap();
    assert_eq!(
        store.reseal_secrets(&Reseal::PlaintextOnly).await.unwrap(),
        0,
        "written sealed already"
    );
    let keyring = store.keyring();
    let before = keyring.primary().unwrap();
    let new_key = keyring.rotation_key().unwrap();
    assert_ne!(before.id(), new_key.id());
    let how = Reseal::AllUnder(new_key.clone());
    assert_eq!(
        store.reseal_secrets(&how).await.unwrap(),
        3,
        "a tenant and two flows"
    );
    assert_eq!(store.reseal_secrets(&how).await.unwrap(), 0, "once");
    keyring.finish_rotation().unwrap();
    assert_eq!(keyring.primary().unwrap().id(), new_key.id());
    assert_eq!(store.tenant(&first.id).await.unwrap(), Some(first.clone()));
    for expected in &flows {
        let read = store.flow(None, &expected.id).await.unwrap().unwrap();
        assert_eq!(&read, expected);
        assert_eq!(read.secrets["webhook_secret"].expose(), SECRET);
    }
    assert_eq!(
        store
            .tenant(&first.id)
            .await
            .unwrap()
            .unwrap()
            .odoo_api_key
            .expose(),
        API_KEY
    );
}

pub async fn the_catalog_version_moves_with_every_change_but_a_last_sync<S: Store>(store: &S) {
    let start = store.catalog_version().await.unwrap();
    with_flows(store).await;
    let mut seen = store.catalog_version().await.unwrap();
    assert_ne!(seen, start, "adding tenants and flows is a change");
    let changed = |seen: &mut i64, version: i64, what: &str| {
        assert_ne!(version, *seen, "{what} is a change");
        *seen = version;
    };

    let mut paused = flow("f1", "t1", FlowKind::OrderDelivery, "one");
    paused.is_active = false;
    paused.updated_at = at(20);
    assert!(store.update_tenant(&tenant("t1"), &[paused]).await.unwrap());
    changed(
        &mut seen,
        store.catalog_version().await.unwrap(),
        "pausing a flow",
    );

    let mut edited = tenant("t1");
    edited.odoo_url = "https://elsewhere.example.com".to_owned();
    edited.updated_at = at(30);
    assert!(store.update_tenant(&edited, &[]).await.unwrap());
    changed(
        &mut seen,
        store.catalog_version().await.unwrap(),
        "editing a tenant",
    );

    // A cycle's bookkeeping (`last_sync_at`) is not: the daemon has nothing to re-read.
    store
        .record_cycles(&[crate::store::CycleLog {
            flow_id: "f2".to_owned(),
            started_at: at(40),
            found: 0,
            sent: 0,
            failed: 0,
            held_back: 0,
            error_message: None,
            duration_ms: 5,
        }])
        .await
        .unwrap();
    assert!(
        store
            .flow(None, "f2")
            .await
            .unwrap()
            .is_some_and(|flow| flow.last_sync_at.is_some()),
        "the cycle moved the last sync"
    );
    assert_eq!(store.catalog_version().await.unwrap(), seen);

    assert!(store.delete_flow("f2").await.unwrap());
    changed(
        &mut seen,
        store.catalog_version().await.unwrap(),
        "removing a flow",
    );
}
