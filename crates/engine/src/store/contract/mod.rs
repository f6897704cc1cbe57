//! The store contract: one test suite, run against every store (SQLite and PostgreSQL), so
//! that they cannot drift apart. Each store crate generates one `#[tokio::test]` per contract
//! test with [`store_contract_tests!`](crate::store_contract_tests), giving it a function that
//! opens a fresh, migrated store and one that opens a second handle (another pool: another
//! "process") on the same database:
//!
//! ```ignore
//! engine::store_contract_tests!(crate::support::fresh, crate::support::again);
//! ```
//!
//! Compiled only with the `store-contract` feature (the store crates' dev-dependency).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod coordination;
pub mod environment;
pub mod inbox;
pub mod marketplace;
pub mod marketplace_outbound;
pub mod mirror;
pub mod outbox;
pub mod sync_log;
pub mod tenants;

use super::{Flow, FlowKind, FlowSecrets, NewPacket, SecretValue, Store, Subject, Tenant};
use crate::change_feed::Checkpoint;
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, TransportChoice};
use serde_json::json;

/// Generates one `#[tokio::test]` per contract test. `$fresh` is an `async fn() -> (G, S)`
/// returning a guard (kept alive for the test) and a fresh migrated store; `$again` is an
/// `async fn(&G) -> S` opening a second store on the same database.
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:path, $again:path) => {
        $crate::store_contract_tests!(@single $fresh;
            tenants::tenants_and_flows_round_trip,
            tenants::flow_names_are_unique_per_kind_and_writes_are_all_or_nothing,
            tenants::updates_are_all_or_nothing,
            tenants::deleting_a_flow_takes_its_rows_and_its_last_tenant,
            tenants::connections_are_a_tenant_with_its_order_delivery_flow,
            tenants::secrets_are_sealed_and_a_rotation_reseals_every_one,
            tenants::the_catalog_version_moves_with_every_change_but_a_last_sync,
            outbox::enqueue_is_idempotent_and_moves_the_cursor,
            outbox::a_failing_page_leaves_neither_packets_nor_cursor,
            outbox::latest_packets_gives_the_newest_version_per_subject,
            outbox::a_flows_claim_takes_only_its_own_packets,
            outbox::next_due_by_flow_gives_each_flows_earliest_pending_packet,
            outbox::claims_go_by_due_time_and_never_let_an_update_overtake,
            outbox::a_failed_or_discarded_version_lets_the_next_one_go,
            outbox::expired_leases_are_reclaimable_and_stale_owners_lose,
            outbox::attempts_retry_fail_and_are_kept_in_the_history,
            outbox::retry_now_and_discard,
            outbox::packets_are_listed_newest_first_and_filtered,
            outbox::stats_count_delivered_since_pending_and_failed,
            outbox::a_restarted_worker_takes_its_packets_back,
            inbox::an_event_is_stored_once_per_event_id,
            inbox::events_are_claimed_in_arrival_order_one_per_subject,
            inbox::applications_are_recorded_retried_and_failed,
            inbox::events_can_be_retried_and_discarded_by_a_person,
            marketplace::a_claim_is_exclusive_until_it_runs_out_and_an_import_stands,
            marketplace::refusals_and_releases_never_touch_an_imported_order,
            marketplace_outbound::terms_and_odoo_statuses_are_kept_per_imported_order,
            marketplace_outbound::catalog_hashes_are_upserted_per_flow_and_product,
            marketplace::log_rows_are_one_per_event_listed_newest_first_and_counted,
            marketplace::conflicts_open_once_per_kind_and_resolve_once,
            marketplace::a_marketplace_status_moves_by_compare_and_set,
            inbox::a_restarted_worker_takes_its_events_back,
            coordination::heartbeats_are_upserted_listed_removed_and_forgotten_after_a_day,
            coordination::a_flow_lease_has_one_holder_until_it_runs_out,
            coordination::breaker_states_are_kept_per_flow_and_target,
            coordination::hint_activity_adds_up_per_flow,
            sync_log::cycles_are_recorded_listed_pruned_and_move_the_last_sync,
            mirror::pages_count_inserted_updated_and_unchanged_rows,
            mirror::an_id_twice_in_one_page_is_judged_occurrence_by_occurrence,
            mirror::a_row_stamped_deleted_is_rewritten_when_it_comes_back,
            mirror::checkpoints_and_timestamps_round_trip_to_the_microsecond,
            mirror::reconciliation_stamps_and_restores_and_never_deletes,
            mirror::run_counters_sum_over_pages_and_runs_are_pruned_by_start,
            mirror::runs_left_running_by_a_dead_process_are_marked_interrupted,
            environment::the_store_keeps_one_environment,
            outbox::bringing_a_flow_forward_makes_its_waiting_packets_due
        );
        $crate::store_contract_tests!(@double $fresh, $again;
            outbox::concurrent_claimers_never_share_a_packet,
            marketplace::two_importers_racing_claim_each_order_once,
            coordination::two_replicas_racing_for_a_lease_get_it_once
        );
    };
    (@single $fresh:path; $($module:ident :: $test:ident),* $(,)?) => {
        mod store_contract {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_guard, store) = $fresh().await;
                    $crate::store::contract::$module::$test(&store).await;
                }
            )*
        }
    };
    (@double $fresh:path, $again:path; $($module:ident :: $test:ident),* $(,)?) => {
        mod store_contract_two_handles {
            $(
                #[tokio::test]
                async fn $test() {
                    let (guard, store) = $fresh().await;
                    let other = $again(&guard).await;
                    $crate::store::contract::$module::$test(&store, &other).await;
                }
            )*
        }
    };
}

/// A fixed instant the tests count from.
pub fn t0() -> Timestamp {
    "2026-03-01T10:00:00.000001Z".parse().unwrap()
}

/// `t0` plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(seconds)
}

pub const LEASE: SignedDuration = SignedDuration::from_secs(30);
pub const API_KEY: &str = "odoo-api-key-do-not-print-0001";
pub const SECRET: &str = "webhook-secret-do-not-print-0001";

pub fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.to_owned(),
        name: format!("Tenant {id}"),
        odoo_url: "https://odoo.example.com".to_owned(),
        odoo_db: "odoo".to_owned(),
        odoo_username: "api@example.com".to_owned(),
        odoo_api_key: ApiKey::new(API_KEY),
        transport: TransportChoice::Auto,
        odoo_min_delay_ms: 250,
        created_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
        updated_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
    }
}

pub fn flow(id: &str, tenant_id: &str, kind: FlowKind, name: &str) -> Flow {
    let mut secrets = FlowSecrets::new();
    secrets.insert("webhook_secret".to_owned(), SecretValue::new(SECRET));
    let settings = json!({
        "webhook_url": "https://hooks.example.com/odoo",
        "store_id": "store-1",
        "client_id": "client-1",
        "events": "order.confirmed,order.updated,order.cancelled",
    });
    Flow {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        kind,
        name: name.to_owned(),
        is_active: true,
        interval_seconds: 60,
        settings: settings.as_object().cloned().unwrap_or_default(),
        secrets,
        last_sync_at: None,
        created_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
        updated_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
    }
}

/// A store holding tenant `t1` with the order-delivery flows `f1` and `f2`.
pub async fn with_flows<S: Store>(store: &S) {
    store
        .insert_tenant(
            &tenant("t1"),
            &[
                flow("f1", "t1", FlowKind::OrderDelivery, "one"),
                flow("f2", "t1", FlowKind::OrderDelivery, "two"),
            ],
        )
        .await
        .unwrap();
}

/// Packet `{flow}_{record}_v{version}` about `sale.order` `record`, created at `created_at`.
pub fn packet(flow_id: &str, record: i64, version: u32, created_at: Timestamp) -> NewPacket {
    NewPacket {
        id: format!("{flow_id}_{record}_v{version}"),
        subject: Subject::new("sale.order", record),
        reference: Some(format!("odoo_odoo_{record}")),
        target: "webhook".to_owned(),
        event: if version == 1 {
            "order.confirmed".to_owned()
        } else {
            "order.updated".to_owned()
        },
        version,
        payload: format!(r#"{{"order":{record},"version":{version}}}"#),
        payload_hash: format!("hash-{record}-{version}"),
        max_attempts: 5,
        created_at,
    }
}

pub fn checkpoint(second: Timestamp, last_id: i64) -> Checkpoint {
    Checkpoint { second, last_id }
}

/// The ids of `packets`, in order.
pub fn ids<T: HasId>(items: &[T]) -> Vec<String> {
    items.iter().map(|item| item.id_text()).collect()
}

pub trait HasId {
    fn id_text(&self) -> String;
}

impl HasId for super::Packet {
    fn id_text(&self) -> String {
        self.id.clone()
    }
}

impl HasId for super::InboundEvent {
    fn id_text(&self) -> String {
        self.event_id.clone()
    }
}
