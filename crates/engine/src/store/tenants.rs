//! Tenants and the flows attached to them.
//!
//! A **tenant** is an Odoo to talk to: URL, database, login, API key, pacing and transport.
//! A **flow** is one job done for a tenant (order delivery to a webhook, marketplace sync,
//! enrichment), with its own schedule, settings, secrets and change-feed cursors. A tenant's
//! flows share one Odoo client and one login in the process that runs them.

use super::StoreError;
use super::secrets_at_rest::{Keyring, Reseal};
use crate::change_feed::Checkpoint;
use jiff::Timestamp;
use odoo_rpc::{ApiKey, ClientConfig, TransportChoice};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// An Odoo database to talk to.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// 16 lowercase hex characters.
    pub id: String,
    /// For people; not unique (a connection and a marketplace may both name theirs "Shop").
    pub name: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    pub odoo_api_key: ApiKey,
    pub transport: TransportChoice,
    /// Minimum delay between two Odoo calls of this tenant, in milliseconds (0: none).
    pub odoo_min_delay_ms: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Tenant {
    /// How to reach this tenant's Odoo: its URL, database, login, key, transport and the
    /// pause it asks for between calls. Callers add their own timeout, retries or pool.
    pub fn odoo_client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(
            self.odoo_url.clone(),
            self.odoo_db.clone(),
            self.odoo_username.clone(),
            self.odoo_api_key.clone(),
        );
        config.transport = self.transport;
        if self.odoo_min_delay_ms > 0 {
            config.min_call_interval = Some(std::time::Duration::from_millis(u64::from(
                self.odoo_min_delay_ms,
            )));
        }
        config
    }
}

/// How a transport choice is stored: `auto`, `jsonrpc`, `json2`.
pub fn transport_name(transport: TransportChoice) -> &'static str {
    match transport {
        TransportChoice::Auto => "auto",
        TransportChoice::JsonRpc => "jsonrpc",
        TransportChoice::Json2 => "json2",
    }
}

pub fn parse_transport(text: &str) -> Option<TransportChoice> {
    [
        TransportChoice::Auto,
        TransportChoice::JsonRpc,
        TransportChoice::Json2,
    ]
    .into_iter()
    .find(|transport| transport_name(*transport) == text)
}

/// What a flow does. Stored by [`FlowKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    /// Seed 002: confirmed orders as signed webhooks, exactly once.
    OrderDelivery,
    /// Seed 001: a marketplace (Cartona) and Odoo kept in sync both ways.
    Marketplace,
    /// Seed 000: records sent to a service, its answers checked and written back.
    Enrichment,
}

impl FlowKind {
    pub const ALL: [FlowKind; 3] = [
        FlowKind::OrderDelivery,
        FlowKind::Marketplace,
        FlowKind::Enrichment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::OrderDelivery => "order_delivery",
            FlowKind::Marketplace => "marketplace",
            FlowKind::Enrichment => "enrichment",
        }
    }

    pub fn parse(text: &str) -> Option<FlowKind> {
        FlowKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret a flow keeps in the store (a webhook secret, a marketplace token). Its `Debug`
/// never shows it; only [`SecretValue::expose`] does, where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(••••)")
    }
}

/// A flow's named secrets.
pub type FlowSecrets = BTreeMap<String, SecretValue>;

/// One job done for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// 16 lowercase hex characters; for order delivery, the connection id that prefixes every
    /// packet id.
    pub id: String,
    pub tenant_id: String,
    pub kind: FlowKind,
    /// Unique among the flows of its kind.
    pub name: String,
    pub is_active: bool,
    /// Seconds between two polls of the flow's change feeds.
    pub interval_seconds: u32,
    /// The kind's own settings (a webhook URL, a store id…), nothing secret.
    pub settings: Map<String, Value>,
    pub secrets: FlowSecrets,
    /// End of the last successful cycle.
    pub last_sync_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Any edit moves it; the runtime restarts a flow whose `updated_at` changed.
    pub updated_at: Timestamp,
}

/// Where one of a flow's change feeds resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedCursor<'a> {
    /// The feed's name within the flow (`sale.order`, `stock.picking`).
    pub feed: &'a str,
    pub checkpoint: Checkpoint,
}

/// A stored cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCursor {
    pub flow_id: String,
    pub feed: String,
    pub checkpoint: Checkpoint,
    pub updated_at: Timestamp,
}

/// Tenants and their flows. Writes that touch several rows are one transaction.
pub trait TenantStore: Send + Sync {
    /// Adds a tenant with its first flows, all or nothing. A flow name taken within its kind
    /// (or an id taken) is [`StoreError::Conflict`].
    fn insert_tenant(
        &self,
        tenant: &Tenant,
        flows: &[Flow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds a flow to an existing tenant ([`StoreError::NotFound`] when it is not).
    fn insert_flow(&self, flow: &Flow) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rewrites a tenant's editable fields and those of the listed flows (everything but ids,
    /// kind, cursors, `last_sync_at` and `created_at`), all or nothing; `false` when the tenant
    /// or one of the flows does not exist (nothing is written then).
    fn update_tenant(
        &self,
        tenant: &Tenant,
        flows: &[Flow],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a flow with its packets, inbound events, cursors, log and lease, and its tenant
    /// too when no other flow is left on it; `false` when the flow did not exist.
    fn delete_flow(&self, flow_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn tenant(&self, id: &str) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    /// Every tenant, by name then id.
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;

    /// A flow by id, or else by name among the flows of `kind` (any kind when `None`).
    fn flow(
        &self,
        kind: Option<FlowKind>,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<Flow>, StoreError>> + Send;

    /// A number that changes whenever a tenant or a flow is added, edited, paused, resumed or
    /// removed (by any process; a flow's `last_sync_at` does not count): equal numbers mean
    /// [`TenantStore::tenants`] and [`TenantStore::flows`] would answer the same.
    fn catalog_version(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Every flow (of one kind, or of all), by name then id.
    fn flows(
        &self,
        kind: Option<FlowKind>,
    ) -> impl Future<Output = Result<Vec<Flow>, StoreError>> + Send;

    /// Where each feed of the flow (or of every flow) resumes.
    fn cursors(
        &self,
        flow_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<StoredCursor>, StoreError>> + Send;

    /// What seals and opens the stored secrets (API keys, the flows' secrets).
    fn keyring(&self) -> &Keyring;

    /// Rewrites the stored secrets as `how` says, in one transaction; the number rewritten.
    /// Every store runs it with [`Reseal::PlaintextOnly`] when it migrates, and then leaves no
    /// trace of the values in clear in its files.
    fn reseal_secrets(&self, how: &Reseal) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
