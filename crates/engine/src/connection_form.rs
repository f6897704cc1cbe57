//! A connection as a person edits it: a [`ConnectionDraft`] of plain strings (what a form or
//! the CLI's flags hold), checked in one go by [`ConnectionDraft::validate`] into a
//! [`ValidatedConnection`], then turned into the stored [`Connection`] by [`apply`].
//!
//! Validation reports *every* problem at once, each naming its field (the draft's field
//! name, e.g. `odoo_url`), so a form can show each message next to its input and the CLI can
//! list them all. Messages never quote a secret.
//!
//! Rules:
//! - URLs are `http://` or `https://` with a host, without a user name or password, and
//!   without spaces; trailing slashes are dropped. `odoo_url` is Odoo's base URL: a page of
//!   Odoo (`/web`, `/odoo`, `/jsonrpc`, …), a query or a fragment is refused with the base URL
//!   to use instead (another path is kept: Odoo behind a reverse-proxy prefix). `webhook_url`
//!   may have a path and a query but no fragment.
//! - `name`, `odoo_db`, `odoo_username`, `store_id`, `client_id` are required, at most
//!   [`MAX_NAME_CHARS`] / [`MAX_FIELD_CHARS`] characters, without control characters.
//! - `odoo_api_key` is required for a new connection; when editing (the draft has an `id`),
//!   empty means "keep the stored key".
//! - `webhook_secret` must be accepted by [`WebhookSecret::new`] (printable ASCII).
//! - `polling_interval_seconds` is a whole number from 1 to [`MAX_POLLING_INTERVAL_SECONDS`];
//!   `odoo_min_delay_ms` from 0 to [`MAX_MIN_DELAY_MS`] (empty means 0).
//! - `events` is [`EventSet::parse_list`]'s comma-separated list, naming at least one event.
//! - [`ConnectionDraft::validate_with`] also refuses a name another connection has, ignoring
//!   case and surrounding spaces (stricter than the store's exact unique key, so two
//!   connections never differ only by case).

use crate::order_delivery::{ApiKey, Connection, EventSet, WebhookSecret};
use jiff::Timestamp;
use reqwest::Url;
use std::fmt;

/// The seed's default webhook URL (StockMaster's Odoo endpoint).
pub const DEFAULT_WEBHOOK_URL: &str = "https://stockmaster.notorios.cl/api/webhooks/odoo";
/// The seed's environment variable replacing [`DEFAULT_WEBHOOK_URL`].
pub const DEFAULT_WEBHOOK_URL_ENV: &str = "POLLER_DEFAULT_WEBHOOK_URL";
/// The seed's default polling interval.
pub const DEFAULT_POLLING_INTERVAL_SECONDS: u32 = 60;
/// The longest polling interval accepted: one day.
pub const MAX_POLLING_INTERVAL_SECONDS: u32 = 86_400;
/// The longest minimum delay between two Odoo calls accepted: one minute.
pub const MAX_MIN_DELAY_MS: u32 = 60_000;
/// The longest connection name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The longest database, login, store id and client id, in characters.
pub const MAX_FIELD_CHARS: usize = 255;
/// The longest URL, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest API key or webhook secret, in characters.
pub const MAX_SECRET_CHARS: usize = 512;
/// Below this length a key's last four characters would give away too much of it.
const MIN_LEN_FOR_HINT: usize = 12;

/// One field's problem. `field` is the draft's field name (`odoo_url`, `events`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A connection as typed: every value a string, as a form or command-line flags hold it
/// (`is_active` is a toggle). `Debug` hides the API key and the webhook secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionDraft {
    /// The connection being edited; `None` for a new one.
    pub id: Option<String>,
    pub name: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    /// Empty when editing means "keep the stored key".
    pub odoo_api_key: String,
    pub webhook_url: String,
    pub webhook_secret: String,
    pub store_id: String,
    pub client_id: String,
    pub polling_interval_seconds: String,
    pub odoo_min_delay_ms: String,
    /// Comma-separated event names: `order.confirmed,order.updated,order.cancelled`.
    pub events: String,
    pub is_active: bool,
}

impl fmt::Debug for ConnectionDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |text: &str| if text.is_empty() { "" } else { "••••" };
        f.debug_struct("ConnectionDraft")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("odoo_url", &self.odoo_url)
            .field("odoo_db", &self.odoo_db)
            .field("odoo_username", &self.odoo_username)
            .field("odoo_api_key", &hidden(&self.odoo_api_key))
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field("store_id", &self.store_id)
            .field("client_id", &self.client_id)
            .field("polling_interval_seconds", &self.polling_interval_seconds)
            .field("odoo_min_delay_ms", &self.odoo_min_delay_ms)
            .field("events", &self.events)
            .field("is_active", &self.is_active)
            .finish()
    }
}

/// A draft that passed validation: typed values, ready for [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedConnection {
    /// The connection being edited; `None` for a new one.
    pub id: Option<String>,
    pub name: String,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_username: String,
    /// `None`: keep the stored key (only when editing; a new connection always has one).
    pub odoo_api_key: Option<ApiKey>,
    pub webhook_url: String,
    pub webhook_secret: WebhookSecret,
    pub store_id: String,
    pub client_id: String,
    pub polling_interval_seconds: u32,
    pub odoo_min_delay_ms: u32,
    pub events: EventSet,
    pub is_active: bool,
}

impl ConnectionDraft {
    /// A new connection's form, filled with the defaults: the webhook URL from
    /// [`default_webhook_url`], a fresh UUID4 webhook secret, a 60 s interval, no minimum
    /// delay, every event, active.
    pub fn with_defaults() -> ConnectionDraft {
        ConnectionDraft {
            id: None,
            name: String::new(),
            odoo_url: String::new(),
            odoo_db: String::new(),
            odoo_username: String::new(),
            odoo_api_key: String::new(),
            webhook_url: default_webhook_url(),
            webhook_secret: new_webhook_secret(),
            store_id: String::new(),
            client_id: String::new(),
            polling_interval_seconds: DEFAULT_POLLING_INTERVAL_SECONDS.to_string(),
            odoo_min_delay_ms: "0".to_owned(),
            events: EventSet::default().to_list(),
            is_active: true,
        }
    }

    /// The form for editing `connection`: every field filled in, except the API key, left
    /// empty to mean "keep" (it is never shown back). The webhook secret is filled in, as it
    /// is editable; a form should mask it.
    pub fn from_connection(connection: &Connection) -> ConnectionDraft {
        ConnectionDraft {
            id: Some(connection.id.clone()),
            name: connection.name.clone(),
            odoo_url: connection.odoo_url.clone(),
            odoo_db: connection.odoo_db.clone(),
            odoo_username: connection.odoo_username.clone(),
            odoo_api_key: String::new(),
            webhook_url: connection.webhook_url.clone(),
            webhook_secret: connection.webhook_secret.expose().to_owned(),
            store_id: connection.store_id.clone(),
            client_id: connection.client_id.clone(),
            polling_interval_seconds: connection.polling_interval_seconds.to_string(),
            odoo_min_delay_ms: connection.odoo_min_delay_ms.to_string(),
            events: connection.events.to_list(),
            is_active: connection.is_active,
        }
    }

    /// Checks every field; on failure, every problem found, in the fields' order.
    pub fn validate(&self) -> Result<ValidatedConnection, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError::new(field, message));
            }
        };

        let name = self.name.trim();
        check("name", check_text(name, MAX_NAME_CHARS));
        let odoo_url = check_url(&self.odoo_url, UrlKind::Odoo);
        check("odoo_url", status(&odoo_url));
        let odoo_db = self.odoo_db.trim();
        check("odoo_db", check_text(odoo_db, MAX_FIELD_CHARS));
        let odoo_username = self.odoo_username.trim();
        check("odoo_username", check_text(odoo_username, MAX_FIELD_CHARS));
        let api_key = self.check_api_key();
        check("odoo_api_key", status(&api_key));
        let webhook_url = check_url(&self.webhook_url, UrlKind::Webhook);
        check("webhook_url", status(&webhook_url));
        let secret = check_secret(&self.webhook_secret);
        check("webhook_secret", status(&secret));
        let store_id = self.store_id.trim();
        check("store_id", check_text(store_id, MAX_FIELD_CHARS));
        let client_id = self.client_id.trim();
        check("client_id", check_text(client_id, MAX_FIELD_CHARS));
        let interval = check_interval(&self.polling_interval_seconds);
        check("polling_interval_seconds", status(&interval));
        let min_delay = check_min_delay(&self.odoo_min_delay_ms);
        check("odoo_min_delay_ms", status(&min_delay));
        let events = check_events(&self.events);
        check("events", status(&events));

        match (
            odoo_url,
            api_key,
            webhook_url,
            secret,
            interval,
            min_delay,
            events,
        ) {
            (
                Ok(odoo_url),
                Ok(odoo_api_key),
                Ok(webhook_url),
                Ok(webhook_secret),
                Ok(polling_interval_seconds),
                Ok(odoo_min_delay_ms),
                Ok(events),
            ) if errors.is_empty() => Ok(ValidatedConnection {
                id: self.id.clone(),
                name: name.to_owned(),
                odoo_url,
                odoo_db: odoo_db.to_owned(),
                odoo_username: odoo_username.to_owned(),
                odoo_api_key,
                webhook_url,
                webhook_secret,
                store_id: store_id.to_owned(),
                client_id: client_id.to_owned(),
                polling_interval_seconds,
                odoo_min_delay_ms,
                events,
                is_active: self.is_active,
            }),
            _ => Err(errors),
        }
    }

    /// [`ConnectionDraft::validate`], and the name must not be taken by another of
    /// `existing` (ignoring case and surrounding spaces; the draft's own connection, by id,
    /// does not count).
    pub fn validate_with(
        &self,
        existing: &[Connection],
    ) -> Result<ValidatedConnection, Vec<FieldError>> {
        let taken = self.name_taken_by(existing).map(|other| {
            FieldError::new(
                "name",
                format!(
                    "is already used by connection {} ({:?}); names must be unique",
                    other.id, other.name
                ),
            )
        });
        match (self.validate(), taken) {
            (Ok(validated), None) => Ok(validated),
            (Ok(_), Some(taken)) => Err(vec![taken]),
            (Err(mut errors), Some(taken)) => {
                // Keep the fields' order: the name comes first.
                if !errors.iter().any(|error| error.field == "name") {
                    errors.insert(0, taken);
                }
                Err(errors)
            }
            (Err(errors), None) => Err(errors),
        }
    }

    fn name_taken_by<'a>(&self, existing: &'a [Connection]) -> Option<&'a Connection> {
        let name = self.name.trim();
        if name.is_empty() {
            return None;
        }
        existing.iter().find(|other| {
            Some(other.id.as_str()) != self.id.as_deref()
                && other.name.trim().to_lowercase() == name.to_lowercase()
        })
    }

    fn check_api_key(&self) -> Result<Option<ApiKey>, String> {
        check_optional_secret(
            &self.odoo_api_key,
            self.id.is_some(),
            "is required (Odoo: Preferences → Account Security → New API Key)",
        )
        .map(|key| key.map(ApiKey::new))
    }
}

/// A secret typed into a form (an API key, a token): required (`required` is the message)
/// unless `editing`, where empty means "keep the stored one"; no spaces or control
/// characters, at most [`MAX_SECRET_CHARS`]. The message never quotes it.
pub(crate) fn check_optional_secret(
    raw: &str,
    editing: bool,
    required: &str,
) -> Result<Option<String>, String> {
    let key = raw.trim();
    if key.is_empty() {
        return if editing {
            Ok(None)
        } else {
            Err(required.to_owned())
        };
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    if key.chars().count() > MAX_SECRET_CHARS {
        return Err(format!(
            "is too long (at most {MAX_SECRET_CHARS} characters)"
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Builds the connection to store from `validated`. When editing (`existing` given), the
/// id, the cursor, `last_sync_at` and `created_at` are kept, and so is the API key when the
/// draft left it empty: rotating a key or changing a URL neither loses the feed's position
/// nor touches the outbox (packets are keyed by the connection's id). A new connection gets
/// a fresh id from [`new_connection_id`] (or the draft's id, if it had one), no cursor, and
/// `created_at = now`.
///
/// A draft for a new connection always carries a key (validation requires it); a
/// "keep the key" result applied without `existing` gets an empty key.
pub fn apply(
    validated: ValidatedConnection,
    existing: Option<&Connection>,
    now: Timestamp,
) -> Connection {
    let odoo_api_key = match (validated.odoo_api_key, existing) {
        (Some(key), _) => key,
        (None, Some(existing)) => existing.odoo_api_key.clone(),
        (None, None) => ApiKey::new(String::new()),
    };
    let id = existing
        .map(|existing| existing.id.clone())
        .or(validated.id)
        .unwrap_or_else(new_connection_id);
    // A new connection gets a tenant of its own; an edited one keeps its tenant.
    let tenant_id = existing.map_or_else(new_connection_id, |existing| existing.tenant_id.clone());
    Connection {
        id,
        tenant_id,
        name: validated.name,
        odoo_url: validated.odoo_url,
        odoo_db: validated.odoo_db,
        odoo_username: validated.odoo_username,
        odoo_api_key,
        webhook_url: validated.webhook_url,
        webhook_secret: validated.webhook_secret,
        store_id: validated.store_id,
        client_id: validated.client_id,
        polling_interval_seconds: validated.polling_interval_seconds,
        odoo_min_delay_ms: validated.odoo_min_delay_ms,
        is_active: validated.is_active,
        events: validated.events,
        last_sync_at: existing.and_then(|existing| existing.last_sync_at),
        cursor: existing.and_then(|existing| existing.cursor),
        created_at: existing.map_or(now, |existing| existing.created_at),
        updated_at: now,
    }
}

/// A new connection id: 16 lowercase hex characters from 8 random bytes, as the seed's
/// `lower(hex(randomblob(8)))`.
pub fn new_connection_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// A new webhook secret: a random UUID4 string, as the seed generates it.
pub fn new_webhook_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The webhook URL a new connection starts with: `POLLER_DEFAULT_WEBHOOK_URL` when set and
/// not blank, else the seed's [`DEFAULT_WEBHOOK_URL`].
pub fn default_webhook_url() -> String {
    default_webhook_url_from(std::env::var(DEFAULT_WEBHOOK_URL_ENV).ok())
}

/// [`default_webhook_url`] with the variable's value given.
pub fn default_webhook_url_from(value: Option<String>) -> String {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_WEBHOOK_URL.to_owned())
}

/// A key as shown to people: `••••` and its last four characters (`••••1234`), or only
/// `••••` when the key is shorter than 12 characters; an empty key shows as nothing.
pub fn masked_key(key: &ApiKey) -> String {
    mask(key.expose())
}

/// [`masked_key`] for a webhook secret.
pub fn masked_secret(secret: &WebhookSecret) -> String {
    mask(secret.expose())
}

pub(crate) fn mask(text: &str) -> String {
    let count = text.chars().count();
    if count == 0 {
        return String::new();
    }
    let mut shown = "••••".to_owned();
    if count >= MIN_LEN_FOR_HINT {
        shown.extend(text.chars().skip(count - 4));
    }
    shown
}

/// A URL as shown in lists and messages, without what may hold a secret: `user:password@`
/// and the fragment dropped, a query (which may carry a token) shown as `?…`.
pub fn display_url(url: &str) -> String {
    let without_fragment = url.split('#').next().unwrap_or(url);
    let without_credentials = match without_fragment.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => without_fragment.to_owned(),
    };
    match without_credentials.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => without_credentials,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlKind {
    Odoo,
    Webhook,
}

/// The error of `result`, if any, without its value.
pub(crate) fn status<T>(result: &Result<T, String>) -> Result<(), String> {
    result.as_ref().map(|_| ()).map_err(Clone::clone)
}

pub(crate) fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() {
        return Err("is required".into());
    }
    let count = text.chars().count();
    if count > max {
        return Err(format!("is too long ({count} characters; at most {max})"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters (tabs, line breaks)".into());
    }
    Ok(())
}

pub(crate) fn check_url(raw: &str, kind: UrlKind) -> Result<String, String> {
    let example = match kind {
        UrlKind::Odoo => "https://mycompany.odoo.com",
        UrlKind::Webhook => DEFAULT_WEBHOOK_URL,
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("is required (e.g. {example})"));
    }
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("is too long (at most {MAX_URL_CHARS} characters)"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    if !text.contains("://") {
        return Err(format!(
            "must start with https:// or http:// (e.g. {example})"
        ));
    }
    let url = Url::parse(text).map_err(|error| format!("is not a valid URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, not {}:// (e.g. {example})",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("has no host (e.g. {example})"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(match kind {
            UrlKind::Odoo => "must not contain a user name or password: give the login and API key separately".into(),
            UrlKind::Webhook => "must not contain a user name or password (they would be shown and logged): the receiver authenticates deliveries with the webhook secret".into(),
        });
    }
    match kind {
        UrlKind::Odoo => {
            // The client's own check, so that an Odoo URL is refused the same way everywhere
            // (a page of Odoo, a query): its message without the URL it starts with, which
            // the form shows beside the field anyway.
            if let Err(error) = odoo_rpc::check_base_url(text) {
                let message = match error {
                    odoo_rpc::Error::InvalidRequest { message } => message,
                    other => other.to_string(),
                };
                let after_url = message
                    .strip_prefix("base URL ")
                    .and_then(|rest| rest.split_once("\" ").map(|(_, tail)| tail.to_owned()));
                return Err(after_url.unwrap_or(message));
            }
        }
        UrlKind::Webhook => {
            if url.fragment().is_some() {
                return Err("must not have a #fragment (it is never sent to the receiver)".into());
            }
        }
    }
    Ok(if url.query().is_none() {
        text.trim_end_matches('/').to_owned()
    } else {
        text.to_owned()
    })
}

/// Whether `path`'s first segment is one of Odoo's pages or endpoints (`/web`, `/odoo/…`).
pub(crate) fn check_secret(raw: &str) -> Result<WebhookSecret, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("is required (a new connection gets a random UUID4)".into());
    }
    if text.chars().count() > MAX_SECRET_CHARS {
        return Err(format!(
            "is too long (at most {MAX_SECRET_CHARS} characters)"
        ));
    }
    WebhookSecret::new(text).map_err(|error| {
        // SecretError's texts start with "the webhook secret …"; a field message follows
        // the field's name.
        let text = error.to_string();
        text.strip_prefix("the webhook secret ")
            .map(str::to_owned)
            .unwrap_or(text)
    })
}

pub(crate) fn check_interval(raw: &str) -> Result<u32, String> {
    let range = format!("1 to {MAX_POLLING_INTERVAL_SECONDS}");
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("is required (seconds, {range})"));
    }
    let value: u64 = text
        .parse()
        .map_err(|_| format!("must be a whole number of seconds ({range}), not {text:?}"))?;
    if value == 0 {
        return Err(format!("must be positive ({range} seconds)"));
    }
    if value > u64::from(MAX_POLLING_INTERVAL_SECONDS) {
        return Err(format!(
            "must be at most {MAX_POLLING_INTERVAL_SECONDS} seconds (one day)"
        ));
    }
    u32::try_from(value).map_err(|_| format!("must be at most {MAX_POLLING_INTERVAL_SECONDS}"))
}

fn check_min_delay(raw: &str) -> Result<u32, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let value: u64 = text.parse().map_err(|_| {
        format!("must be a whole number of milliseconds (0 to {MAX_MIN_DELAY_MS}), not {text:?}")
    })?;
    if value > u64::from(MAX_MIN_DELAY_MS) {
        return Err(format!(
            "must be at most {MAX_MIN_DELAY_MS} ms (one minute)"
        ));
    }
    u32::try_from(value).map_err(|_| format!("must be at most {MAX_MIN_DELAY_MS}"))
}

fn check_events(raw: &str) -> Result<EventSet, String> {
    let events = EventSet::parse_list(raw)?;
    if events.to_list().is_empty() {
        return Err(
            "must name at least one of order.confirmed, order.updated, order.cancelled (pause the connection to stop it)"
                .into(),
        );
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::change_feed::Checkpoint;

    const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn a_url_is_shown_without_what_may_hold_a_secret() {
        assert_eq!(
            display_url("https://matcher.example/match"),
            "https://matcher.example/match"
        );
        assert_eq!(
            display_url("https://svc:p4ss@matcher.example:8443/match?token=abc#frag"),
            "https://matcher.example:8443/match?…"
        );
        assert_eq!(
            display_url("http://user@matcher.example?key=1"),
            "http://matcher.example?…"
        );
        assert_eq!(display_url("not a url"), "not a url");
    }

    fn draft() -> ConnectionDraft {
        ConnectionDraft {
            name: "Le Juste Odoo".into(),
            odoo_url: "https://lejuste.odoo.com/".into(),
            odoo_db: "lejuste".into(),
            odoo_username: "api@lejuste.cl".into(),
            odoo_api_key: KEY.into(),
            store_id: "store_xyz".into(),
            client_id: "client_xyz".into(),
            ..ConnectionDraft::with_defaults()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&'static str> {
        errors.iter().map(|error| error.field).collect()
    }

    fn error_of(draft: &ConnectionDraft, field: &str) -> String {
        let errors = draft.validate().unwrap_err();
        errors
            .iter()
            .find(|error| error.field == field)
            .unwrap_or_else(|| panic!("no error for {field}: {errors:?}"))
            .message
            .clone()
    }

    #[test]
    fn a_good_draft_validates_with_the_defaults() {
        let validated = draft().validate().unwrap();
        assert_eq!(validated.odoo_url, "https://lejuste.odoo.com");
        assert_eq!(validated.polling_interval_seconds, 60);
        assert_eq!(validated.odoo_min_delay_ms, 0);
        assert_eq!(validated.events, EventSet::default());
        assert!(validated.is_active);
        assert_eq!(validated.odoo_api_key.unwrap().expose(), KEY);
        assert_eq!(validated.webhook_secret.expose().len(), 36);
        assert_eq!(validated.id, None);
    }

    #[test]
    fn every_error_is_reported_at_once_in_the_fields_order() {
        let bad = ConnectionDraft {
            id: None,
            name: "  ".into(),
            odoo_url: "lejuste.odoo.com".into(),
            odoo_db: String::new(),
            odoo_username: "\t".into(),
            odoo_api_key: String::new(),
            webhook_url: "ftp://example.com/hook".into(),
            webhook_secret: "with space".into(),
            store_id: String::new(),
            client_id: String::new(),
            polling_interval_seconds: "0".into(),
            odoo_min_delay_ms: "soon".into(),
            events: "order.created".into(),
            is_active: true,
        };
        let errors = bad.validate().unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "name",
                "odoo_url",
                "odoo_db",
                "odoo_username",
                "odoo_api_key",
                "webhook_url",
                "webhook_secret",
                "store_id",
                "client_id",
                "polling_interval_seconds",
                "odoo_min_delay_ms",
                "events"
            ]
        );
        assert!(errors[1].message.contains("https://"), "{errors:?}");
        assert!(errors[5].message.contains("not ftp://"), "{errors:?}");
        assert!(errors[6].message.contains("printable ASCII"), "{errors:?}");
        assert!(!errors[6].message.contains("with space"));
        assert!(errors[11].message.contains("order.created"), "{errors:?}");
        assert_eq!(errors[0].to_string(), "name: is required");
    }

    #[test]
    fn odoo_pages_are_refused_with_the_base_url_to_use() {
        for page in [
            "https://lejuste.odoo.com/web",
            "https://lejuste.odoo.com/web/login",
            "https://lejuste.odoo.com/odoo",
            "https://lejuste.odoo.com/odoo/action-123",
            "https://lejuste.odoo.com/jsonrpc",
            "https://lejuste.odoo.com/web#action=12&model=sale.order",
        ] {
            let message = error_of(
                &ConnectionDraft {
                    odoo_url: page.into(),
                    ..draft()
                },
                "odoo_url",
            );
            assert!(
                message.ends_with("use https://lejuste.odoo.com"),
                "{page}: {message}"
            );
        }
        let message = error_of(
            &ConnectionDraft {
                odoo_url: "https://erp.example.com:8443/odoo?db=x".into(),
                ..draft()
            },
            "odoo_url",
        );
        assert!(
            message.ends_with("use https://erp.example.com:8443"),
            "{message}"
        );
        // A reverse-proxy prefix is a base URL.
        let prefixed = ConnectionDraft {
            odoo_url: "http://10.0.0.5:8069/erp/".into(),
            ..draft()
        };
        assert_eq!(
            prefixed.validate().unwrap().odoo_url,
            "http://10.0.0.5:8069/erp"
        );
    }

    #[test]
    fn urls_need_a_scheme_a_host_and_no_credentials() {
        for (url, expected) in [
            ("https://", "not a valid URL"),
            ("mailto:x@y.z", "https://"),
            ("https://user:pw@lejuste.odoo.com", "user name or password"),
            ("https://lejuste odoo.com", "spaces"),
            ("", "is required"),
        ] {
            let message = error_of(
                &ConnectionDraft {
                    odoo_url: url.into(),
                    ..draft()
                },
                "odoo_url",
            );
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("pw@"), "{message}");
        }
        let webhook = ConnectionDraft {
            webhook_url: "https://hooks.example.com/odoo/?token=abc".into(),
            ..draft()
        };
        assert_eq!(
            webhook.validate().unwrap().webhook_url,
            "https://hooks.example.com/odoo/?token=abc"
        );
        let trailing = ConnectionDraft {
            webhook_url: " https://hooks.example.com/odoo/ ".into(),
            ..draft()
        };
        assert_eq!(
            trailing.validate().unwrap().webhook_url,
            "https://hooks.example.com/odoo"
        );
        let fragment = ConnectionDraft {
            webhook_url: "https://hooks.example.com/odoo#x".into(),
            ..draft()
        };
        assert!(error_of(&fragment, "webhook_url").contains("fragment"));
        assert_eq!(
            display_url("https://hooks.example.com/odoo?token=abc"),
            "https://hooks.example.com/odoo?…"
        );
    }

    #[test]
    fn interval_is_positive_and_bounded() {
        for (value, expected) in [
            ("0", "positive"),
            ("-5", "whole number"),
            ("1.5", "whole number"),
            ("86401", "at most 86400"),
            ("99999999999", "at most 86400"),
            ("", "required"),
        ] {
            let message = error_of(
                &ConnectionDraft {
                    polling_interval_seconds: value.into(),
                    ..draft()
                },
                "polling_interval_seconds",
            );
            assert!(message.contains(expected), "{value}: {message}");
        }
        for (value, expected) in [("1", 1), (" 86400 ", 86_400)] {
            let ok = ConnectionDraft {
                polling_interval_seconds: value.into(),
                ..draft()
            };
            assert_eq!(ok.validate().unwrap().polling_interval_seconds, expected);
        }
        let delay = ConnectionDraft {
            odoo_min_delay_ms: "60001".into(),
            ..draft()
        };
        assert!(error_of(&delay, "odoo_min_delay_ms").contains("at most 60000"));
        let empty = ConnectionDraft {
            odoo_min_delay_ms: String::new(),
            ..draft()
        };
        assert_eq!(empty.validate().unwrap().odoo_min_delay_ms, 0);
    }

    #[test]
    fn events_and_names() {
        let some = ConnectionDraft {
            events: " order.confirmed , order.cancelled ".into(),
            ..draft()
        };
        let events = some.validate().unwrap().events;
        assert!(events.confirmed && events.cancelled && !events.updated);
        let none = ConnectionDraft {
            events: ",".into(),
            ..draft()
        };
        assert!(error_of(&none, "events").contains("at least one"));

        let long = ConnectionDraft {
            name: "x".repeat(MAX_NAME_CHARS + 1),
            ..draft()
        };
        assert!(error_of(&long, "name").contains("too long"));
        let exact = ConnectionDraft {
            name: "é".repeat(MAX_NAME_CHARS),
            ..draft()
        };
        assert!(exact.validate().is_ok());
        let tab = ConnectionDraft {
            store_id: "a\tb".into(),
            ..draft()
        };
        assert!(error_of(&tab, "store_id").contains("control"));
    }

    #[test]
    fn api_key_is_required_when_new_and_kept_when_editing() {
        let new = ConnectionDraft {
            odoo_api_key: "  ".into(),
            ..draft()
        };
        assert!(error_of(&new, "odoo_api_key").contains("required"));
        let spaced = ConnectionDraft {
            odoo_api_key: "abc def-secret-value".into(),
            ..draft()
        };
        let message = error_of(&spaced, "odoo_api_key");
        assert!(!message.contains("secret-value"), "{message}");

        let stored = apply(draft().validate().unwrap(), None, Timestamp::UNIX_EPOCH);
        let editing = ConnectionDraft::from_connection(&stored);
        assert_eq!(editing.odoo_api_key, "");
        assert_eq!(editing.id.as_deref(), Some(stored.id.as_str()));
        assert_eq!(editing.validate().unwrap().odoo_api_key, None);
        assert!(!format!("{editing:?}").contains(stored.webhook_secret.expose()));
        assert!(!format!("{:?}", draft()).contains(KEY));
    }

    #[test]
    fn editing_keeps_id_cursor_sync_time_creation_and_key() {
        let created = Timestamp::from_second(1_700_000_000).unwrap();
        let mut stored = apply(draft().validate().unwrap(), None, created);
        assert_eq!(stored.created_at, created);
        assert_eq!(stored.updated_at, created);
        assert_eq!(stored.cursor, None);
        let cursor = Checkpoint {
            second: Timestamp::from_second(1_700_000_100).unwrap(),
            last_id: 42,
        };
        stored.cursor = Some(cursor);
        stored.last_sync_at = Some(Timestamp::from_second(1_700_000_200).unwrap());

        let later = Timestamp::from_second(1_700_000_300).unwrap();
        let mut edit = ConnectionDraft::from_connection(&stored);
        edit.odoo_url = "https://new.odoo.com".into();
        edit.polling_interval_seconds = "300".into();
        edit.is_active = false;
        let edited = apply(edit.validate().unwrap(), Some(&stored), later);
        assert_eq!(edited.id, stored.id);
        assert_eq!(edited.cursor, Some(cursor));
        assert_eq!(edited.last_sync_at, stored.last_sync_at);
        assert_eq!(edited.created_at, created);
        assert_eq!(edited.updated_at, later);
        assert_eq!(edited.odoo_api_key, stored.odoo_api_key);
        assert_eq!(edited.webhook_secret, stored.webhook_secret);
        assert_eq!(edited.odoo_url, "https://new.odoo.com");
        assert_eq!(edited.polling_interval_seconds, 300);
        assert!(!edited.is_active);

        // Rotating the key changes only the key.
        let mut rotate = ConnectionDraft::from_connection(&edited);
        rotate.odoo_api_key = "fresh-key-000000000000000000000000000000".into();
        let rotated = apply(rotate.validate().unwrap(), Some(&edited), later);
        assert_eq!(
            rotated.odoo_api_key.expose(),
            "fresh-key-000000000000000000000000000000"
        );
        assert_eq!(rotated.cursor, Some(cursor));
        assert_eq!(
            Connection {
                odoo_api_key: edited.odoo_api_key.clone(),
                ..rotated
            },
            edited
        );
    }

    #[test]
    fn unique_names_ignore_case_and_the_connection_itself() {
        let stored = apply(draft().validate().unwrap(), None, Timestamp::UNIX_EPOCH);
        let others = [stored.clone()];
        let twin = ConnectionDraft {
            name: " le juste ODOO ".into(),
            ..draft()
        };
        let errors = twin.validate_with(&others).unwrap_err();
        assert_eq!(fields(&errors), ["name"]);
        assert!(errors[0].message.contains(&stored.id), "{errors:?}");
        // Listed first, with the other errors.
        let worse = ConnectionDraft {
            odoo_db: String::new(),
            ..twin
        };
        assert_eq!(
            fields(&worse.validate_with(&others).unwrap_err()),
            ["name", "odoo_db"]
        );
        // The connection itself does not count.
        assert!(
            ConnectionDraft::from_connection(&stored)
                .validate_with(&others)
                .is_ok()
        );
    }

    #[test]
    fn helpers() {
        let id = new_connection_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        assert_ne!(id, new_connection_id());

        let secret = new_webhook_secret();
        let parsed = uuid::Uuid::parse_str(&secret).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(secret, secret.to_lowercase());
        assert!(WebhookSecret::new(secret).is_ok());

        assert_eq!(default_webhook_url_from(None), DEFAULT_WEBHOOK_URL);
        assert_eq!(
            default_webhook_url_from(Some("  ".into())),
            DEFAULT_WEBHOOK_URL
        );
        assert_eq!(
            default_webhook_url_from(Some(" https://hooks.example.com/x ".into())),
            "https://hooks.example.com/x"
        );

        assert_eq!(masked_key(&ApiKey::new(KEY)), "••••4567");
        assert_eq!(masked_key(&ApiKey::new("short-key01")), "••••");
        assert_eq!(masked_key(&ApiKey::new("")), "");
        assert_eq!(
            masked_secret(&WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap()),
            "••••5e6f"
        );
    }
}
