//! A marketplace as a person configures it: a [`MarketplaceDraft`] of plain strings (the
//! CLI's flags), checked in one go into a [`Marketplace`] — a tenant (the Odoo) with one
//! marketplace flow — which [`MarketplaceRegistry`] stores and reads back over any
//! [`Store`].
//!
//! Validation reports every problem at once, each naming its field, with the rules of
//! [`connection_form`](crate::connection_form) for what both have (name, Odoo URL, database,
//! login, API key, interval, webhook secret), and:
//! - `kind`: one of [`MarketplaceKind::ALL`] (`cartona`);
//! - `api_url`: an http(s) URL with a host and no credentials or fragment, **https** unless
//!   the host is loopback: the API token travels in a header of every call;
//! - `api_token`: required for a new marketplace (empty when editing: keep the stored one);
//! - `reference_field`: a plausible Odoo field name (`client_order_ref`, `x_cartona_id`):
//!   lowercase letters, digits and `_`, starting with a letter or `_`, at most 63 characters;
//! - `allow_from`: comma-separated CIDR ranges or single addresses (empty: any);
//! - `inbound_per_minute`: status webhooks a minute from one address, a whole number from 1
//!   to [`MAX_INBOUND_PER_MINUTE`] (empty: keep the stored one; a new marketplace: 600);
//! - `otp_field`: the `sale.order` field holding the retailer's OTP, an Odoo field name
//!   (empty: keep the stored one, or the default);
//! - `status_map`: overrides of the (order state, delivery state) → status table, a JSON
//!   object `{"sale/done": "delivered", "sale/assigned": null}` (empty: keep the stored ones);
//! - `catalog`: the catalog push, `off`, `all` (free quantity over every warehouse) or a
//!   `stock.warehouse` id (empty: keep the stored choice; a new marketplace: off);
//! - the name is unique among marketplaces, ignoring case.

use super::cartona::{CartonaClient, CartonaError};
use super::catalog::CatalogSettings;
use super::mapping::StatusMap;
use super::outbound::{OUTBOUND_KEY, OutboundSettings, check_field_name};
use super::settings::{
    DEFAULT_REFERENCE_FIELD, MarketplaceKind, MarketplaceSecrets, MarketplaceSettings,
};
use crate::connection_form::{
    self, FieldError, MAX_FIELD_CHARS, MAX_NAME_CHARS, UrlKind, check_interval,
    check_optional_secret, check_secret, check_text, check_url, status,
};
use crate::inbox::receive::DEFAULT_PER_MINUTE;
use crate::store::{Flow, FlowKind, SecretValue, Store, StoreError, Tenant};
use crate::webhook::{DeliveryError, FailureClass};
use jiff::Timestamp;
use odoo_rpc::{ApiKey, TransportChoice};
use reqwest::Url;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// The longest reference field name (PostgreSQL's identifier limit, which Odoo's columns
/// obey).
pub const MAX_FIELD_NAME_CHARS: usize = 63;
/// The highest per-source rate of status webhooks the form takes: far above what a
/// marketplace sends, low enough that the limit still means something.
pub const MAX_INBOUND_PER_MINUTE: u32 = 100_000;

/// The fields of the form, in order: errors are listed in it.
pub const FIELDS: [&str; 16] = [
    "name",
    "kind",
    "api_url",
    "api_token",
    "odoo_url",
    "odoo_db",
    "odoo_username",
    "odoo_api_key",
    "interval_seconds",
    "webhook_secret",
    "reference_field",
    "allow_from",
    "inbound_per_minute",
    "otp_field",
    "status_map",
    "catalog",
];

/// A marketplace as typed. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct MarketplaceDraft {
    /// The marketplace (its flow) being edited; `None` for a new one.
    pub id: Option<String>,
    pub name: String,
    pub kind: String,
    pub api_url: String,
    /// Empty when editing means "keep the stored token".
    pub api_token: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    /// Empty when editing means "keep the stored key".
    pub odoo_api_key: String,
    pub interval_seconds: String,
    pub webhook_secret: String,
    pub reference_field: String,
    /// Comma-separated CIDR ranges.
    pub allow_from: String,
    /// Status webhooks a minute from one address; empty: keep the stored rate (new: 600).
    pub inbound_per_minute: String,
    /// Empty: keep the stored one (a new marketplace: the default).
    pub otp_field: String,
    /// A JSON object of table overrides; empty: keep the stored ones (new: none).
    pub status_map: String,
    /// `off`, `all` or a warehouse id; empty: keep the stored choice (new: off).
    pub catalog: String,
    pub is_active: bool,
}

impl fmt::Debug for MarketplaceDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |text: &str| if text.is_empty() { "" } else { "••••" };
        f.debug_struct("MarketplaceDraft")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("api_url", &self.api_url)
            .field("api_token", &hidden(&self.api_token))
            .field("odoo_url", &self.odoo_url)
            .field("odoo_db", &self.odoo_db)
            .field("odoo_username", &self.odoo_username)
            .field("odoo_api_key", &hidden(&self.odoo_api_key))
            .field("interval_seconds", &self.interval_seconds)
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field("reference_field", &self.reference_field)
            .field("allow_from", &self.allow_from)
            .field("inbound_per_minute", &self.inbound_per_minute)
            .field("is_active", &self.is_active)
            .finish()
    }
}

/// A tenant with its marketplace flow, as the commands show and edit it.
#[derive(Debug, Clone, PartialEq)]
pub struct Marketplace {
    /// The marketplace flow's id.
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub settings: MarketplaceSettings,
    /// What the Odoo → marketplace direction is configured with.
    pub outbound: OutboundSettings,
    pub secrets: MarketplaceSecrets,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    pub odoo_api_key: ApiKey,
    pub transport: TransportChoice,
    pub odoo_min_delay_ms: u32,
    pub interval_seconds: u32,
    pub is_active: bool,
    pub last_sync_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl MarketplaceDraft {
    /// A new marketplace's form: kind `cartona`, a fresh random webhook secret, 60 s, the
    /// default reference field, any sender, active.
    pub fn with_defaults() -> MarketplaceDraft {
        MarketplaceDraft {
            id: None,
            name: String::new(),
            kind: MarketplaceKind::Cartona.as_str().to_owned(),
            api_url: String::new(),
            api_token: String::new(),
            odoo_url: String::new(),
            odoo_db: String::new(),
            odoo_username: String::new(),
            odoo_api_key: String::new(),
            interval_seconds: connection_form::DEFAULT_POLLING_INTERVAL_SECONDS.to_string(),
            webhook_secret: connection_form::new_webhook_secret(),
            reference_field: DEFAULT_REFERENCE_FIELD.to_owned(),
            allow_from: String::new(),
            inbound_per_minute: DEFAULT_PER_MINUTE.to_string(),
            otp_field: String::new(),
            status_map: String::new(),
            catalog: String::new(),
            is_active: true,
        }
    }

    /// The form for editing `marketplace`, with the API key and the token left empty to mean
    /// "keep" (they are never shown back).
    pub fn from_marketplace(marketplace: &Marketplace) -> MarketplaceDraft {
        MarketplaceDraft {
            id: Some(marketplace.id.clone()),
            name: marketplace.name.clone(),
            kind: marketplace.settings.kind.as_str().to_owned(),
            api_url: marketplace.settings.api_url.clone(),
            api_token: String::new(),
            odoo_url: marketplace.odoo_url.clone(),
            odoo_db: marketplace.odoo_db.clone(),
            odoo_username: marketplace.odoo_username.clone(),
            odoo_api_key: String::new(),
            interval_seconds: marketplace.interval_seconds.to_string(),
            webhook_secret: marketplace.secrets.webhook_secret.expose().to_owned(),
            reference_field: marketplace.settings.reference_field.clone(),
            allow_from: marketplace.settings.allow_from.join(","),
            inbound_per_minute: marketplace.settings.inbound_per_minute.to_string(),
            catalog: catalog_text(marketplace.outbound.catalog),
            otp_field: marketplace.outbound.otp_field.clone(),
            status_map: if marketplace.outbound.status_map.overrides().is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(marketplace.outbound.status_map.overrides().clone())
                    .to_string()
            },
            is_active: marketplace.is_active,
        }
    }

    /// Checks every field and that no other of `existing` has the name; builds the
    /// marketplace to store (keeping `editing`'s ids, stored secrets left empty, sync state
    /// and creation time).
    pub fn validate(
        &self,
        existing: &[Marketplace],
        editing: Option<&Marketplace>,
        now: Timestamp,
    ) -> Result<Marketplace, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError::new(field, message));
            }
        };
        let name = self.name.trim();
        let name_check = check_text(name, MAX_NAME_CHARS).and_then(|()| {
            match existing.iter().find(|other| {
                Some(other.id.as_str()) != self.id.as_deref()
                    && other.name.trim().to_lowercase() == name.to_lowercase()
            }) {
                Some(other) => Err(format!(
                    "is already used by marketplace {} ({:?}); names must be unique",
                    other.id, other.name
                )),
                None => Ok(()),
            }
        });
        check("name", name_check);
        let kind = check_kind(&self.kind);
        check("kind", status(&kind));
        let api_url = check_api_url(&self.api_url);
        check("api_url", status(&api_url));
        let editing_id = self.id.is_some();
        let api_token = check_optional_secret(
            &self.api_token,
            editing_id,
            "is required (the supplier's AuthorizationToken from Cartona)",
        );
        check("api_token", status(&api_token));
        let odoo_url = check_url(&self.odoo_url, UrlKind::Odoo);
        check("odoo_url", status(&odoo_url));
        let odoo_db = self.odoo_db.trim();
        check("odoo_db", check_text(odoo_db, MAX_FIELD_CHARS));
        let odoo_username = self.odoo_username.trim();
        check("odoo_username", check_text(odoo_username, MAX_FIELD_CHARS));
        let odoo_api_key = check_optional_secret(
            &self.odoo_api_key,
            editing_id,
            "is required (Odoo: Preferences → Account Security → New API Key)",
        );
        check("odoo_api_key", status(&odoo_api_key));
        let interval = check_interval(&self.interval_seconds);
        check("interval_seconds", status(&interval));
        let webhook_secret = check_secret(&self.webhook_secret);
        check("webhook_secret", status(&webhook_secret));
        let reference_field = check_reference_field(&self.reference_field);
        check("reference_field", status(&reference_field));
        let allow_from = check_allow_from(&self.allow_from);
        check("allow_from", status(&allow_from));
        let inbound_per_minute = check_inbound_per_minute(
            &self.inbound_per_minute,
            editing.map(|editing| editing.settings.inbound_per_minute),
        );
        check("inbound_per_minute", status(&inbound_per_minute));
        let stored = editing.map(|editing| &editing.outbound);
        let otp_field = match self.otp_field.trim() {
            "" => Ok(stored.map_or_else(
                || OutboundSettings::default().otp_field,
                |stored| stored.otp_field.clone(),
            )),
            text => check_field_name(text),
        };
        check("otp_field", status(&otp_field));
        let status_map = check_status_map(&self.status_map, stored);
        check("status_map", status(&status_map));
        let catalog = check_catalog(&self.catalog, stored);
        check("catalog", status(&catalog));

        let (
            Ok(kind),
            Ok(api_url),
            Ok(api_token),
            Ok(odoo_url),
            Ok(odoo_api_key),
            Ok(interval_seconds),
            Ok(webhook_secret),
            Ok(reference_field),
            Ok(allow_from),
            Ok(inbound_per_minute),
            Ok(otp_field),
            Ok(status_map),
            Ok(catalog),
        ) = (
            kind,
            api_url,
            api_token,
            odoo_url,
            odoo_api_key,
            interval,
            webhook_secret,
            reference_field,
            allow_from,
            inbound_per_minute,
            otp_field,
            status_map,
            catalog,
        )
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let api_token = match (api_token, editing) {
            (Some(token), _) => SecretValue::new(token),
            (None, Some(editing)) => editing.secrets.api_token.clone(),
            (None, None) => SecretValue::new(String::new()),
        };
        let odoo_api_key = match (odoo_api_key, editing) {
            (Some(key), _) => ApiKey::new(key),
            (None, Some(editing)) => editing.odoo_api_key.clone(),
            (None, None) => ApiKey::new(String::new()),
        };
        Ok(Marketplace {
            id: editing.map_or_else(
                || {
                    self.id
                        .clone()
                        .unwrap_or_else(connection_form::new_connection_id)
                },
                |editing| editing.id.clone(),
            ),
            tenant_id: editing.map_or_else(connection_form::new_connection_id, |editing| {
                editing.tenant_id.clone()
            }),
            name: name.to_owned(),
            settings: MarketplaceSettings {
                kind,
                api_url,
                reference_field,
                allow_from,
                inbound_per_minute,
            },
            outbound: OutboundSettings {
                otp_field,
                status_map,
                catalog,
            },
            secrets: MarketplaceSecrets {
                api_token,
                webhook_secret: SecretValue::new(webhook_secret.expose()),
            },
            odoo_url,
            odoo_db: odoo_db.to_owned(),
            odoo_username: odoo_username.to_owned(),
            odoo_api_key,
            transport: editing.map_or(TransportChoice::Auto, |editing| editing.transport),
            odoo_min_delay_ms: editing.map_or(0, |editing| editing.odoo_min_delay_ms),
            interval_seconds,
            is_active: self.is_active,
            last_sync_at: editing.and_then(|editing| editing.last_sync_at),
            created_at: editing.map_or(now, |editing| editing.created_at),
            updated_at: now,
        })
    }
}

/// `off`, `all` or a warehouse id, as a person types it.
fn check_catalog(raw: &str, stored: Option<&OutboundSettings>) -> Result<CatalogSettings, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(stored.map(|stored| stored.catalog).unwrap_or_default()),
        "off" => Ok(CatalogSettings::default()),
        "all" => Ok(CatalogSettings {
            enabled: true,
            warehouse_id: None,
        }),
        text => match text.parse::<i64>() {
            Ok(id) if id > 0 => Ok(CatalogSettings {
                enabled: true,
                warehouse_id: Some(id),
            }),
            _ => Err(format!(
                "{text:?} is not off, all or a stock.warehouse id (a whole number above 0)"
            )),
        },
    }
}

/// The catalog choice as [`check_catalog`] reads it back.
pub fn catalog_text(catalog: CatalogSettings) -> String {
    match (catalog.enabled, catalog.warehouse_id) {
        (false, _) => "off".to_owned(),
        (true, None) => "all".to_owned(),
        (true, Some(id)) => id.to_string(),
    }
}

fn check_status_map(raw: &str, stored: Option<&OutboundSettings>) -> Result<StatusMap, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(stored.map_or_else(StatusMap::default, |stored| stored.status_map.clone()));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(overrides)) => StatusMap::with_overrides(&overrides),
        _ => Err(
            "must be a JSON object such as {\"sale/done\": \"delivered\", \"sale/assigned\": null}"
                .to_owned(),
        ),
    }
}

fn check_kind(raw: &str) -> Result<MarketplaceKind, String> {
    let text = raw.trim().to_lowercase();
    MarketplaceKind::parse(&text).ok_or_else(|| {
        let known: Vec<&str> = MarketplaceKind::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        format!(
            "must be one of: {} (not {:?})",
            known.join(", "),
            raw.trim()
        )
    })
}

fn check_api_url(raw: &str) -> Result<String, String> {
    let url = check_url(raw, UrlKind::Webhook)?;
    let parsed = Url::parse(&url).map_err(|error| format!("is not a valid URL: {error}"))?;
    if parsed.scheme() != "https" && !is_loopback(&parsed) {
        return Err(
            "must be https:// (the API token is sent with every call); http:// only on loopback"
                .into(),
        );
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_reference_field(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(format!("is required (e.g. {DEFAULT_REFERENCE_FIELD})"));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.chars().count() > MAX_FIELD_NAME_CHARS {
        return Err(format!(
            "must be an Odoo field name (lowercase letters, digits and _, at most \
             {MAX_FIELD_NAME_CHARS} characters, e.g. {DEFAULT_REFERENCE_FIELD} or x_cartona_id), not {name:?}"
        ));
    }
    Ok(name.to_owned())
}

fn check_allow_from(raw: &str) -> Result<Vec<String>, String> {
    let mut ranges = Vec::new();
    let mut bad = Vec::new();
    for item in raw
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        match crate::inbox::receive::parse_range(item) {
            Ok(range) => ranges.push(range.to_string()),
            Err(_) => bad.push(format!("{item:?}")),
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "must be CIDR ranges or addresses separated by commas (e.g. 203.0.113.0/24,2001:db8::/32); not valid: {}",
            bad.join(", ")
        ));
    }
    Ok(ranges)
}

/// A whole number of requests a minute, 1 to [`MAX_INBOUND_PER_MINUTE`]; empty keeps `stored`
/// (or the default). A stored rate outside the range (set by hand in the flow's settings) is
/// kept as it is when typed back unchanged, so an edit of another field does not trip on it.
fn check_inbound_per_minute(raw: &str, stored: Option<u32>) -> Result<u32, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(stored.unwrap_or(DEFAULT_PER_MINUTE));
    }
    match text.parse::<u32>() {
        Ok(rate) if (1..=MAX_INBOUND_PER_MINUTE).contains(&rate) || Some(rate) == stored => {
            Ok(rate)
        }
        _ => Err(format!(
            "must be a whole number of requests a minute from one address, 1 to \
             {MAX_INBOUND_PER_MINUTE} (default {DEFAULT_PER_MINUTE}), not {text:?}"
        )),
    }
}

impl Marketplace {
    /// The marketplace of a tenant and its marketplace flow.
    pub fn from_parts(tenant: &Tenant, flow: &Flow) -> Result<Marketplace, StoreError> {
        let (settings, secrets) = MarketplaceSettings::of(flow)?;
        let outbound = OutboundSettings::of(flow)?;
        Ok(Marketplace {
            id: flow.id.clone(),
            tenant_id: tenant.id.clone(),
            name: flow.name.clone(),
            settings,
            outbound,
            secrets,
            odoo_url: tenant.odoo_url.clone(),
            odoo_db: tenant.odoo_db.clone(),
            odoo_username: tenant.odoo_username.clone(),
            odoo_api_key: tenant.odoo_api_key.clone(),
            transport: tenant.transport,
            odoo_min_delay_ms: tenant.odoo_min_delay_ms,
            interval_seconds: flow.interval_seconds,
            is_active: flow.is_active,
            last_sync_at: flow.last_sync_at,
            created_at: flow.created_at,
            updated_at: flow.updated_at.max(tenant.updated_at),
        })
    }

    /// The tenant part. Its name follows the marketplace's.
    pub fn tenant(&self) -> Tenant {
        Tenant {
            id: self.tenant_id.clone(),
            name: self.name.clone(),
            odoo_url: self.odoo_url.clone(),
            odoo_db: self.odoo_db.clone(),
            odoo_username: self.odoo_username.clone(),
            odoo_api_key: self.odoo_api_key.clone(),
            transport: self.transport,
            odoo_min_delay_ms: self.odoo_min_delay_ms,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The marketplace flow part.
    pub fn flow(&self) -> Flow {
        Flow {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            kind: FlowKind::Marketplace,
            name: self.name.clone(),
            is_active: self.is_active,
            interval_seconds: self.interval_seconds,
            settings: {
                let mut settings = self.settings.to_map();
                settings.insert(OUTBOUND_KEY.into(), self.outbound.to_value());
                settings
            },
            secrets: self.secrets.to_flow_secrets(),
            last_sync_at: self.last_sync_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Marketplaces over any [`Store`]: each call reads or writes the tenant and its flow
/// together.
pub trait MarketplaceRegistry {
    /// Adds a marketplace (its tenant and flow, in one transaction); a taken name or id is
    /// [`StoreError::Conflict`].
    fn insert_marketplace(
        &self,
        marketplace: &Marketplace,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rewrites a marketplace's editable fields; `false` when it does not exist.
    fn update_marketplace(
        &self,
        marketplace: &Marketplace,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a marketplace's flow with its packets, cursors and log (and its tenant when no
    /// other flow uses it); `false` when it did not exist.
    fn delete_marketplace(&self, id: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// By id, or else by exact name.
    fn marketplace(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<Marketplace>, StoreError>> + Send;

    /// Every marketplace, by name.
    fn marketplaces(&self) -> impl Future<Output = Result<Vec<Marketplace>, StoreError>> + Send;
}

impl<S: Store> MarketplaceRegistry for S {
    async fn insert_marketplace(&self, marketplace: &Marketplace) -> Result<(), StoreError> {
        self.insert_tenant(&marketplace.tenant(), &[marketplace.flow()])
            .await
    }

    async fn update_marketplace(&self, marketplace: &Marketplace) -> Result<bool, StoreError> {
        self.update_tenant(&marketplace.tenant(), &[marketplace.flow()])
            .await
    }

    async fn delete_marketplace(&self, id: &str) -> Result<bool, StoreError> {
        match self.flow(Some(FlowKind::Marketplace), id).await? {
            Some(flow) if flow.id == id => self.delete_flow(id).await,
            _ => Ok(false),
        }
    }

    async fn marketplace(&self, id_or_name: &str) -> Result<Option<Marketplace>, StoreError> {
        let Some(flow) = self.flow(Some(FlowKind::Marketplace), id_or_name).await? else {
            return Ok(None);
        };
        let Some(tenant) = self.tenant(&flow.tenant_id).await? else {
            return Ok(None);
        };
        Marketplace::from_parts(&tenant, &flow).map(Some)
    }

    async fn marketplaces(&self) -> Result<Vec<Marketplace>, StoreError> {
        let flows = self.flows(Some(FlowKind::Marketplace)).await?;
        let tenants = self.tenants().await?;
        flows
            .iter()
            .filter_map(|flow| {
                let tenant = tenants.iter().find(|tenant| tenant.id == flow.tenant_id)?;
                Some(Marketplace::from_parts(tenant, flow))
            })
            .collect()
    }
}

/// One call to the marketplace's API with its token, for `marketplace test`: page 1 of the
/// last day's orders, one order at most. The number of orders it held (0 or 1).
pub async fn probe_api(
    marketplace: &Marketplace,
    timeout: Duration,
    now: Timestamp,
) -> Result<usize, CartonaError> {
    let http = reqwest::Client::builder().build().map_err(|error| {
        DeliveryError::before_sending(
            FailureClass::NetworkError,
            false,
            format!("cannot build an HTTP client: {error}"),
        )
    })?;
    let client = CartonaClient::new(
        http,
        &marketplace.settings.api_url,
        marketplace.secrets.api_token.clone(),
        timeout,
    );
    Ok(client.probe(now).await?.orders.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn draft() -> MarketplaceDraft {
        MarketplaceDraft {
            name: "Cartona Cairo".into(),
            api_url: "https://cartona.example/api/v1/".into(),
            api_token: "cartona-token-0123456789".into(),
            odoo_url: "https://shop.odoo.com".into(),
            odoo_db: "shop".into(),
            odoo_username: "api@shop.example".into(),
            odoo_api_key: "0123456789abcdef0123456789abcdef".into(),
            allow_from: "203.0.113.0/24, 198.51.100.7".into(),
            ..MarketplaceDraft::with_defaults()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&'static str> {
        errors.iter().map(|error| error.field).collect()
    }

    #[test]
    fn a_good_draft_becomes_a_tenant_and_a_marketplace_flow() {
        let now = Timestamp::now();
        let marketplace = draft().validate(&[], None, now).unwrap();
        assert_eq!(
            marketplace.settings.api_url,
            "https://cartona.example/api/v1"
        );
        assert_eq!(marketplace.settings.reference_field, "client_order_ref");
        assert_eq!(
            marketplace.settings.allow_from,
            ["203.0.113.0/24", "198.51.100.7/32"]
        );
        assert_eq!(marketplace.interval_seconds, 60);
        let flow = marketplace.flow();
        assert_eq!(flow.kind, FlowKind::Marketplace);
        let back = Marketplace::from_parts(&marketplace.tenant(), &flow).unwrap();
        assert_eq!(back, marketplace);
    }

    #[test]
    fn every_bad_field_is_reported_at_once_in_order() {
        let bad = MarketplaceDraft {
            name: " ".into(),
            kind: "amazon".into(),
            api_url: "http://cartona.example/api".into(),
            api_token: String::new(),
            odoo_url: "shop.odoo.com".into(),
            odoo_db: String::new(),
            odoo_username: String::new(),
            odoo_api_key: String::new(),
            interval_seconds: "0".into(),
            webhook_secret: "with space".into(),
            reference_field: "Client Ref".into(),
            allow_from: "10.0.0.0/8,not-a-range".into(),
            inbound_per_minute: "0".into(),
            otp_field: "OTP".into(),
            status_map: "[]".into(),
            catalog: "sometimes".into(),
            ..MarketplaceDraft::with_defaults()
        };
        let errors = bad.validate(&[], None, Timestamp::now()).unwrap_err();
        assert_eq!(fields(&errors), FIELDS);
        let text = format!("{errors:?}");
        assert!(
            text.contains("cartona") && text.contains("https://"),
            "{text}"
        );
        assert!(text.contains("not-a-range"), "{text}");
    }

    #[test]
    fn the_inbound_rate_is_a_whole_number_from_1_to_100000_600_unless_given() {
        let now = Timestamp::now();
        let rate_of = |typed: &str| {
            MarketplaceDraft {
                inbound_per_minute: typed.into(),
                ..draft()
            }
            .validate(&[], None, now)
        };
        assert_eq!(
            draft()
                .validate(&[], None, now)
                .unwrap()
                .settings
                .inbound_per_minute,
            600
        );
        for (typed, rate) in [("1", 1), (" 120 ", 120), ("100000", 100_000), ("", 600)] {
            assert_eq!(
                rate_of(typed).unwrap().settings.inbound_per_minute,
                rate,
                "{typed:?}"
            );
        }
        for typed in ["0", "100001", "-5", "1.5", "ten", "4294967296"] {
            let errors = rate_of(typed).unwrap_err();
            assert_eq!(fields(&errors), ["inbound_per_minute"], "{typed:?}");
            let text = errors[0].to_string();
            assert!(text.contains("1 to 100000"), "{text}");
        }
        // Stored in the flow's settings, where the inbox's receiver reads it.
        let marketplace = rate_of("42").unwrap();
        let flow = marketplace.flow();
        assert_eq!(flow.settings["inbound_per_minute"], 42);
        let back = Marketplace::from_parts(&marketplace.tenant(), &flow).unwrap();
        assert_eq!(back.settings.inbound_per_minute, 42);
    }

    #[test]
    fn an_edit_of_another_field_keeps_the_inbound_rate_even_one_set_by_hand() {
        let now = Timestamp::now();
        let stored = draft().validate(&[], None, now).unwrap();
        for hand_set in [42, 250_000] {
            // Set by hand in the flow's settings, as before the form had the field.
            let mut flow = stored.flow();
            flow.settings
                .insert("inbound_per_minute".into(), hand_set.into());
            let read = Marketplace::from_parts(&stored.tenant(), &flow).unwrap();
            assert_eq!(read.settings.inbound_per_minute, hand_set);
            let mut edit = MarketplaceDraft::from_marketplace(&read);
            edit.interval_seconds = "30".into();
            let edited = edit
                .validate(std::slice::from_ref(&read), Some(&read), now)
                .unwrap();
            assert_eq!(edited.flow().settings["inbound_per_minute"], hand_set);
            // Left empty: kept too.
            edit.inbound_per_minute.clear();
            let edited = edit
                .validate(std::slice::from_ref(&read), Some(&read), now)
                .unwrap();
            assert_eq!(edited.settings.inbound_per_minute, hand_set);
        }
        // A rate outside the range is refused when it is a change.
        let mut edit = MarketplaceDraft::from_marketplace(&stored);
        edit.inbound_per_minute = "250000".into();
        let errors = edit
            .validate(std::slice::from_ref(&stored), Some(&stored), now)
            .unwrap_err();
        assert_eq!(fields(&errors), ["inbound_per_minute"]);
        // A flow without the setting reads the receiver's default.
        let mut flow = stored.flow();
        flow.settings.remove("inbound_per_minute");
        let read = Marketplace::from_parts(&stored.tenant(), &flow).unwrap();
        assert_eq!(read.settings.inbound_per_minute, 600);
        // One the receiver could not use is reported, not replaced by the default.
        for unusable in [
            serde_json::json!(0),
            serde_json::json!("600"),
            serde_json::json!(-1),
        ] {
            flow.settings
                .insert("inbound_per_minute".into(), unusable.clone());
            let error = Marketplace::from_parts(&stored.tenant(), &flow).unwrap_err();
            assert!(
                error.to_string().contains("inbound_per_minute"),
                "{unusable}: {error}"
            );
        }
    }

    #[test]
    fn http_is_accepted_on_loopback_only_and_names_are_unique() {
        for url in [
            "http://127.0.0.1:9000",
            "http://localhost/api",
            "http://[::1]:80",
        ] {
            let ok = MarketplaceDraft {
                api_url: url.into(),
                ..draft()
            };
            assert!(ok.validate(&[], None, Timestamp::now()).is_ok(), "{url}");
        }
        let first = draft().validate(&[], None, Timestamp::now()).unwrap();
        let again = MarketplaceDraft {
            name: "cartona CAIRO ".into(),
            ..draft()
        };
        let errors = again
            .validate(std::slice::from_ref(&first), None, Timestamp::now())
            .unwrap_err();
        assert_eq!(fields(&errors), ["name"]);
    }

    #[test]
    fn editing_keeps_the_stored_secrets_ids_and_sync_state() {
        let now = Timestamp::now();
        let mut stored = draft().validate(&[], None, now).unwrap();
        stored.last_sync_at = Some(now);
        let mut edit = MarketplaceDraft::from_marketplace(&stored);
        edit.interval_seconds = "30".into();
        assert!(edit.api_token.is_empty() && edit.odoo_api_key.is_empty());
        let edited = edit
            .validate(std::slice::from_ref(&stored), Some(&stored), now)
            .unwrap();
        assert_eq!(edited.id, stored.id);
        assert_eq!(edited.tenant_id, stored.tenant_id);
        assert_eq!(edited.secrets, stored.secrets);
        assert_eq!(edited.odoo_api_key, stored.odoo_api_key);
        assert_eq!(edited.last_sync_at, Some(now));
        assert_eq!(edited.interval_seconds, 30);
        assert_eq!(edited.outbound, stored.outbound);
    }

    #[test]
    fn outbound_settings_are_checked_kept_on_edit_and_stored_in_the_flow() {
        let now = Timestamp::now();
        let stored = MarketplaceDraft {
            otp_field: "x_cartona_otp".into(),
            status_map: r#"{"sale/done": "delivered"}"#.into(),
            catalog: "2".into(),
            ..draft()
        }
        .validate(&[], None, now)
        .unwrap();
        assert_eq!(stored.outbound.otp_field, "x_cartona_otp");
        assert_eq!(
            stored.outbound.catalog,
            CatalogSettings {
                enabled: true,
                warehouse_id: Some(2)
            }
        );
        let flow = stored.flow();
        let tenant = stored.tenant();
        let back = Marketplace::from_parts(&tenant, &flow).unwrap();
        assert_eq!(back.outbound, stored.outbound);
        // An edit that leaves them empty keeps them.
        let mut edit = MarketplaceDraft::from_marketplace(&back);
        edit.otp_field.clear();
        edit.status_map.clear();
        edit.catalog.clear();
        let edited = edit
            .validate(std::slice::from_ref(&back), Some(&back), now)
            .unwrap();
        assert_eq!(edited.outbound, stored.outbound);
        // A new marketplace gets the defaults.
        assert_eq!(
            draft().validate(&[], None, now).unwrap().outbound,
            OutboundSettings::default()
        );
        let bad = MarketplaceDraft {
            otp_field: "Retailer OTP".into(),
            status_map: r#"{"sale/done": "shipped"}"#.into(),
            catalog: "0".into(),
            ..draft()
        };
        let errors = bad.validate(&[], None, now).unwrap_err();
        assert_eq!(fields(&errors), ["otp_field", "status_map", "catalog"]);
        // The catalog's words, read back as they are shown.
        for (typed, shown) in [("off", "off"), ("ALL", "all"), (" 7 ", "7")] {
            let marketplace = MarketplaceDraft {
                catalog: typed.into(),
                ..draft()
            }
            .validate(&[], None, now)
            .unwrap();
            assert_eq!(catalog_text(marketplace.outbound.catalog), shown);
        }
        let not_json = MarketplaceDraft {
            status_map: "sale/done=delivered".into(),
            ..draft()
        };
        assert_eq!(
            fields(&not_json.validate(&[], None, now).unwrap_err()),
            ["status_map"]
        );
    }
}
