//! A **connection**, as `odoo-bridge connections …`, the TUI and seed 002 know it: one tenant
//! with its order-delivery flow, seen as one record. The store keeps the two apart (the
//! tenant's Odoo login may serve other flows too); [`ConnectionStore`] reads and writes them
//! together, in one transaction.
//!
//! The connection's id is its flow's id: it prefixes every packet id (`{id}_{order}_v{n}`),
//! so it never changes, whatever is edited.

use crate::change_feed::Checkpoint;
use crate::store::{
    Flow, FlowKind, FlowSecrets, FlowStats, SecretValue, Store, StoreError, Tenant,
};
pub use crate::webhook::WebhookSecret;
use jiff::Timestamp;
pub use odoo_rpc::ApiKey;
use odoo_rpc::TransportChoice;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;

/// The order feed's name among the flow's cursors.
pub const ORDER_FEED: &str = "sale.order";
/// The flow's one target, as packets name it.
pub const WEBHOOK_TARGET: &str = "webhook";
const WEBHOOK_SECRET: &str = "webhook_secret";

/// Which events a connection sends (default: all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet {
    pub confirmed: bool,
    pub updated: bool,
    pub cancelled: bool,
}

impl Default for EventSet {
    fn default() -> EventSet {
        EventSet {
            confirmed: true,
            updated: true,
            cancelled: true,
        }
    }
}

impl EventSet {
    pub fn contains(&self, event: Event) -> bool {
        match event {
            Event::OrderConfirmed => self.confirmed,
            Event::OrderUpdated => self.updated,
            Event::OrderCancelled => self.cancelled,
        }
    }

    /// Comma-separated event names, as stored and shown: `order.confirmed,order.updated`.
    pub fn to_list(&self) -> String {
        Event::ALL
            .into_iter()
            .filter(|event| self.contains(*event))
            .map(Event::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`EventSet::to_list`]'s form; unknown names are an error naming them.
    pub fn parse_list(text: &str) -> Result<EventSet, String> {
        let mut set = EventSet {
            confirmed: false,
            updated: false,
            cancelled: false,
        };
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match Event::parse(name) {
                Some(Event::OrderConfirmed) => set.confirmed = true,
                Some(Event::OrderUpdated) => set.updated = true,
                Some(Event::OrderCancelled) => set.cancelled = true,
                None => {
                    return Err(format!(
                        "unknown event {name:?}; events are order.confirmed, order.updated, order.cancelled"
                    ));
                }
            }
        }
        Ok(set)
    }
}

/// A webhook event about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    OrderConfirmed,
    OrderUpdated,
    OrderCancelled,
}

impl Event {
    pub const ALL: [Event; 3] = [
        Event::OrderConfirmed,
        Event::OrderUpdated,
        Event::OrderCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::OrderConfirmed => "order.confirmed",
            Event::OrderUpdated => "order.updated",
            Event::OrderCancelled => "order.cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// One Odoo tenant with its order delivery: where to poll, where to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The order-delivery flow's id: 16 lowercase hex characters (the seed's
    /// `lower(hex(randomblob(8)))`).
    pub id: String,
    /// The tenant's id (the same as `id` for connections made before tenants existed).
    pub tenant_id: String,
    /// Unique among connections, chosen by a person.
    pub name: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    pub odoo_api_key: ApiKey,
    pub webhook_url: String,
    pub webhook_secret: WebhookSecret,
    pub store_id: String,
    pub client_id: String,
    pub polling_interval_seconds: u32,
    /// Minimum delay between two Odoo calls of this connection, in milliseconds (0: none).
    pub odoo_min_delay_ms: u32,
    pub is_active: bool,
    pub events: EventSet,
    /// End of the last successful cycle.
    pub last_sync_at: Option<Timestamp>,
    /// Where the order feed resumes.
    pub cursor: Option<Checkpoint>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Per-connection figures for the dashboard and `connections list`.
pub type ConnectionStats = FlowStats;

/// The order-delivery settings kept in a flow's `settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    pub webhook_url: String,
    pub store_id: String,
    pub client_id: String,
    pub events: EventSet,
}

impl DeliverySettings {
    /// Reads an order-delivery flow's settings and secret.
    pub fn of(flow: &Flow) -> Result<(DeliverySettings, WebhookSecret), StoreError> {
        let invalid = |what: &str| {
            StoreError::invalid_data(format!("order-delivery flow {:?}: {what}", flow.id))
        };
        let text = |key: &str| {
            flow.settings
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("setting {key:?} is missing")))
        };
        let events = EventSet::parse_list(&text("events")?).map_err(|error| invalid(&error))?;
        let secret = flow
            .secrets
            .get(WEBHOOK_SECRET)
            .ok_or_else(|| invalid("the webhook secret is missing"))?;
        let secret = WebhookSecret::new(secret.expose())
            .map_err(|error| invalid(&format!("the stored webhook secret is unusable: {error}")))?;
        Ok((
            DeliverySettings {
                webhook_url: text("webhook_url")?,
                store_id: text("store_id")?,
                client_id: text("client_id")?,
                events,
            },
            secret,
        ))
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            "webhook_url".into(),
            Value::String(self.webhook_url.clone()),
        );
        map.insert("store_id".into(), Value::String(self.store_id.clone()));
        map.insert("client_id".into(), Value::String(self.client_id.clone()));
        map.insert("events".into(), Value::String(self.events.to_list()));
        map
    }
}

impl Connection {
    /// The connection of a tenant and its order-delivery flow.
    pub fn from_parts(
        tenant: &Tenant,
        flow: &Flow,
        cursor: Option<Checkpoint>,
    ) -> Result<Connection, StoreError> {
        let (settings, webhook_secret) = DeliverySettings::of(flow)?;
        Ok(Connection {
            id: flow.id.clone(),
            tenant_id: tenant.id.clone(),
            name: flow.name.clone(),
            odoo_url: tenant.odoo_url.clone(),
            odoo_db: tenant.odoo_db.clone(),
            odoo_username: tenant.odoo_username.clone(),
            odoo_api_key: tenant.odoo_api_key.clone(),
            webhook_url: settings.webhook_url,
            webhook_secret,
            store_id: settings.store_id,
            client_id: settings.client_id,
            polling_interval_seconds: flow.interval_seconds,
            odoo_min_delay_ms: tenant.odoo_min_delay_ms,
            is_active: flow.is_active,
            events: settings.events,
            last_sync_at: flow.last_sync_at,
            cursor,
            created_at: flow.created_at,
            updated_at: flow.updated_at.max(tenant.updated_at),
        })
    }

    /// The tenant part. Its name follows the connection's.
    pub fn tenant(&self) -> Tenant {
        Tenant {
            id: self.tenant_id.clone(),
            name: self.name.clone(),
            odoo_url: self.odoo_url.clone(),
            odoo_db: self.odoo_db.clone(),
            odoo_username: self.odoo_username.clone(),
            odoo_api_key: self.odoo_api_key.clone(),
            transport: TransportChoice::Auto,
            odoo_min_delay_ms: self.odoo_min_delay_ms,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The order-delivery flow part.
    pub fn flow(&self) -> Flow {
        let settings = DeliverySettings {
            webhook_url: self.webhook_url.clone(),
            store_id: self.store_id.clone(),
            client_id: self.client_id.clone(),
            events: self.events,
        };
        let mut secrets = FlowSecrets::new();
        secrets.insert(
            WEBHOOK_SECRET.to_owned(),
            SecretValue::new(self.webhook_secret.expose()),
        );
        Flow {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            kind: FlowKind::OrderDelivery,
            name: self.name.clone(),
            is_active: self.is_active,
            interval_seconds: self.polling_interval_seconds,
            settings: settings.to_map(),
            secrets,
            last_sync_at: self.last_sync_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Connections over any [`Store`]: each call reads or writes the tenant and its flow together.
pub trait ConnectionStore {
    /// Adds a connection (its tenant and flow, in one transaction); a taken name or id is
    /// [`StoreError::Conflict`].
    fn insert_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rewrites a connection's editable fields (everything but ids, cursor, `last_sync_at` and
    /// `created_at`); a taken name is [`StoreError::Conflict`]; `false` when it does not exist.
    fn update_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a connection with its outbox, cursor and sync log (and its tenant when no
    /// other flow uses it); `false` when it did not exist.
    fn delete_connection(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// By id, or else by name.
    fn connection(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;

    /// Every connection, by name.
    fn connections(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;
}

impl<S: Store> ConnectionStore for S {
    async fn insert_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.insert_tenant(&connection.tenant(), &[connection.flow()])
            .await
    }

    async fn update_connection(&self, connection: &Connection) -> Result<bool, StoreError> {
        let mut flow = connection.flow();
        // Settings and secrets a connection does not carry (its push hints') stay as stored.
        if let Some(stored) = self
            .flow(Some(FlowKind::OrderDelivery), &connection.id)
            .await?
            .filter(|stored| stored.id == connection.id)
        {
            for (key, value) in stored.settings {
                flow.settings.entry(key).or_insert(value);
            }
            for (key, value) in stored.secrets {
                flow.secrets.entry(key).or_insert(value);
            }
        }
        self.update_tenant(&connection.tenant(), &[flow]).await
    }

    async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        match self.flow(Some(FlowKind::OrderDelivery), id).await? {
            Some(flow) if flow.id == id => self.delete_flow(id).await,
            _ => Ok(false),
        }
    }

    async fn connection(&self, id_or_name: &str) -> Result<Option<Connection>, StoreError> {
        let Some(flow) = self.flow(Some(FlowKind::OrderDelivery), id_or_name).await? else {
            return Ok(None);
        };
        let Some(tenant) = self.tenant(&flow.tenant_id).await? else {
            return Ok(None);
        };
        let cursor = self
            .cursors(Some(&flow.id))
            .await?
            .into_iter()
            .find(|cursor| cursor.feed == ORDER_FEED)
            .map(|cursor| cursor.checkpoint);
        Connection::from_parts(&tenant, &flow, cursor).map(Some)
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let flows = self.flows(Some(FlowKind::OrderDelivery)).await?;
        let tenants = self.tenants().await?;
        let tenants: HashMap<&str, &Tenant> = tenants.iter().map(|t| (t.id.as_str(), t)).collect();
        let cursors = self.cursors(None).await?;
        let cursors: HashMap<&str, Checkpoint> = cursors
            .iter()
            .filter(|cursor| cursor.feed == ORDER_FEED)
            .map(|cursor| (cursor.flow_id.as_str(), cursor.checkpoint))
            .collect();
        flows
            .iter()
            .filter_map(|flow| {
                let tenant = tenants.get(flow.tenant_id.as_str())?;
                let cursor = cursors.get(flow.id.as_str()).copied();
                Some(Connection::from_parts(tenant, flow, cursor))
            })
            .collect()
    }
}
