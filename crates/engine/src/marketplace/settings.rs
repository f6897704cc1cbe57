//! A marketplace flow's settings (in the flow's `settings`, nothing secret) and secrets (the
//! API token and the inbound webhook secret, sealed at rest by the store).

use crate::inbox::receive::DEFAULT_PER_MINUTE;
use crate::store::{Flow, FlowSecrets, SecretValue, StoreError};
use serde_json::{Map, Value};
use std::fmt;

/// The secret names in a marketplace flow's secrets.
pub const API_TOKEN: &str = "api_token";
pub const WEBHOOK_SECRET: &str = "webhook_secret";
/// Where Odoo keeps the marketplace's order id unless configured otherwise.
pub const DEFAULT_REFERENCE_FIELD: &str = "client_order_ref";
/// The pull window's cursor among the flow's cursors.
pub const ORDERS_FEED: &str = "marketplace.orders";
/// The outbox target of every packet to the marketplace.
pub const MARKETPLACE_TARGET: &str = "marketplace";
/// The setting the inbox's receiver reads a flow's per-source rate from.
pub const INBOUND_PER_MINUTE: &str = "inbound_per_minute";

/// Which marketplace a flow talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarketplaceKind {
    Cartona,
}

impl MarketplaceKind {
    pub const ALL: [MarketplaceKind; 1] = [MarketplaceKind::Cartona];

    pub fn as_str(self) -> &'static str {
        match self {
            MarketplaceKind::Cartona => "cartona",
        }
    }

    pub fn parse(text: &str) -> Option<MarketplaceKind> {
        MarketplaceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for MarketplaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a marketplace flow is configured with, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceSettings {
    pub kind: MarketplaceKind,
    /// The marketplace API's base URL; endpoints are joined to it with one `/`.
    pub api_url: String,
    /// The `sale.order` field holding the marketplace's order id.
    pub reference_field: String,
    /// Addresses allowed to send inbound webhooks (CIDRs); empty: any.
    pub allow_from: Vec<String>,
    /// Inbound webhooks a minute from one source address; more are refused (429).
    pub inbound_per_minute: u32,
}

/// A marketplace flow's secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct MarketplaceSecrets {
    pub api_token: SecretValue,
    pub webhook_secret: SecretValue,
}

impl fmt::Debug for MarketplaceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarketplaceSecrets(••••)")
    }
}

impl MarketplaceSettings {
    /// Reads a marketplace flow's settings and secrets.
    pub fn of(flow: &Flow) -> Result<(MarketplaceSettings, MarketplaceSecrets), StoreError> {
        let invalid = |what: &str| {
            StoreError::invalid_data(format!("marketplace flow {:?}: {what}", flow.id))
        };
        let text = |key: &str| {
            flow.settings
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("setting {key:?} is missing")))
        };
        let kind_text = text("kind")?;
        let kind = MarketplaceKind::parse(&kind_text)
            .ok_or_else(|| invalid(&format!("unknown marketplace kind {kind_text:?}")))?;
        let secret = |name: &str| {
            flow.secrets
                .get(name)
                .cloned()
                .ok_or_else(|| invalid(&format!("the secret {name:?} is missing")))
        };
        let allow_from = flow
            .settings
            .get("allow_from")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // The receiver refuses every event of a flow with an unusable rate; saying so here
        // beats an edit quietly replacing it with the default.
        let inbound_per_minute = match flow.settings.get(INBOUND_PER_MINUTE) {
            None | Some(Value::Null) => DEFAULT_PER_MINUTE,
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(&format!(
                        "setting {INBOUND_PER_MINUTE:?} must be a whole number above 0, not {value}"
                    ))
                })?,
        };
        Ok((
            MarketplaceSettings {
                kind,
                api_url: text("api_url")?,
                reference_field: flow
                    .settings
                    .get("reference_field")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_REFERENCE_FIELD)
                    .to_owned(),
                allow_from,
                inbound_per_minute,
            },
            MarketplaceSecrets {
                api_token: secret(API_TOKEN)?,
                webhook_secret: secret(WEBHOOK_SECRET)?,
            },
        ))
    }

    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("kind".into(), Value::String(self.kind.as_str().to_owned()));
        map.insert("api_url".into(), Value::String(self.api_url.clone()));
        map.insert(
            "reference_field".into(),
            Value::String(self.reference_field.clone()),
        );
        map.insert(
            "allow_from".into(),
            Value::Array(
                self.allow_from
                    .iter()
                    .map(|cidr| Value::String(cidr.clone()))
                    .collect(),
            ),
        );
        map.insert(
            INBOUND_PER_MINUTE.into(),
            Value::from(self.inbound_per_minute),
        );
        map
    }
}

impl MarketplaceSecrets {
    pub fn to_flow_secrets(&self) -> FlowSecrets {
        let mut secrets = FlowSecrets::new();
        secrets.insert(API_TOKEN.to_owned(), self.api_token.clone());
        secrets.insert(WEBHOOK_SECRET.to_owned(), self.webhook_secret.clone());
        secrets
    }
}
