//! Odoo push hints: an Odoo automation rule (app "Automation Rules", `base_automation`) whose
//! server action "Send Webhook Notification" POSTs to `POST /hooks/odoo/{connection_id}/{token}`
//! when an order changes, so that the connection polls within a second instead of at its next
//! interval.
//!
//! A hint is only that: Odoo cannot sign its webhooks, so the URL is the secret (a random
//! per-connection [`HintToken`], kept sealed among the flow's secrets), and the body is read
//! for `_model` and `_id` alone, to know which record to look for. What is delivered still
//! comes from the connection's own poll, through the outbox, exactly once; a lost hint costs
//! latency, never an order (the regular poll stays). How the poll is scheduled after a hint:
//! [`crate::runtime::hints`]. Setting the rule up in Odoo: [`install`].
//!
//! The mirror takes hints too, per model: `POST /hooks/odoo-mirror/{model}/{token}` ([`mirror`]),
//! with one token for the configuration file, from the environment variable it names; the
//! model is synced at once and again on the same schedule ([`crate::mirror_schedule`]).

pub mod install;
pub mod mirror;
pub mod receive;

use crate::store::{Flow, SecretValue, Store, StoreError};
use jiff::Timestamp;
use std::fmt;

/// The flow secret holding the hint token.
pub const HINT_TOKEN_SECRET: &str = "hint_token";
/// The flow setting holding the daemon's public base URL the rules post to.
pub const HINT_BASE_URL_SETTING: &str = "hint_base_url";
/// The path hints are posted to, under the daemon's base URL.
pub const HINT_PATH_PREFIX: &str = "/hooks/odoo";
/// The path the mirror's hints are posted to. A prefix of its own, not a segment under
/// [`HINT_PATH_PREFIX`]: no connection id can ever name a mirror route.
pub const MIRROR_HINT_PATH_PREFIX: &str = "/hooks/odoo-mirror";

const TOKEN_BYTES: usize = 24;
/// The shortest token accepted from the environment: as hard to guess as 24 random bytes
/// in hex.
pub const MIN_CONFIGURED_TOKEN_LEN: usize = 2 * TOKEN_BYTES;

/// The secret part of a connection's hint URL: 48 lowercase hex characters. Its `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct HintToken(String);

impl HintToken {
    /// A new random token.
    pub fn generate() -> Result<HintToken, StoreError> {
        let mut bytes = [0_u8; TOKEN_BYTES];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| StoreError::secret_key("the system's random generator failed"))?;
        Ok(HintToken(hex::encode(bytes)))
    }

    /// The flow's token, if hints are enabled for it.
    pub fn of(flow: &Flow) -> Option<HintToken> {
        flow.secrets
            .get(HINT_TOKEN_SECRET)
            .map(|secret| HintToken(secret.expose().to_owned()))
    }

    /// A token set by a person (the mirror's, from the environment): at least
    /// [`MIN_CONFIGURED_TOKEN_LEN`] characters, each one a URL path may carry as it is
    /// (letters, digits, `-`, `_`). The error says what is wrong, never the value.
    pub fn configured(value: &str) -> Result<HintToken, String> {
        let value = value.trim();
        if value.len() < MIN_CONFIGURED_TOKEN_LEN {
            return Err(format!(
                "is {} characters long; a hint token needs at least {MIN_CONFIGURED_TOKEN_LEN} \
                 (make one with `openssl rand -hex 24`)",
                value.chars().count()
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(
                "holds characters other than letters, digits, `-` and `_` (make one with \
                 `openssl rand -hex 24`)"
                    .to_owned(),
            );
        }
        Ok(HintToken(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `offered` is this token, compared in constant time.
    pub fn matches(&self, offered: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), offered.as_bytes())
            .is_ok()
    }

    /// `••••` and the last 4 characters.
    pub fn masked(&self) -> String {
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("••••{tail}")
    }
}

impl fmt::Debug for HintToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HintToken(••••)")
    }
}

/// The URL Odoo posts hints to: `{base_url}/hooks/odoo/{connection_id}/{token}`.
pub fn hint_url(base_url: &str, connection_id: &str, token: &str) -> String {
    format!(
        "{}{HINT_PATH_PREFIX}/{connection_id}/{token}",
        base_url.trim_end_matches('/')
    )
}

/// The URL Odoo posts a mirrored model's hints to:
/// `{base_url}/hooks/odoo-mirror/{model}/{token}`.
pub fn mirror_hint_url(base_url: &str, model: &str, token: &str) -> String {
    format!(
        "{}{MIRROR_HINT_PATH_PREFIX}/{model}/{token}",
        base_url.trim_end_matches('/')
    )
}

/// The mirror's hint URL with its token masked.
pub fn masked_mirror_hint_url(base_url: &str, model: &str, token: &HintToken) -> String {
    mirror_hint_url(base_url, model, &token.masked())
}

/// The hint URL with its token masked, for output that may be shared.
pub fn masked_hint_url(base_url: &str, connection_id: &str, token: &HintToken) -> String {
    hint_url(base_url, connection_id, &token.masked())
}

/// Gives the flow a hint token if it has none (kept otherwise, so running this again changes
/// nothing) and records `base_url`; returns the flow as stored. Editing the flow restarts its
/// task in a running daemon, which then takes hints.
pub async fn enable<S: Store>(
    store: &S,
    flow_id: &str,
    base_url: &str,
    now: Timestamp,
) -> Result<(Flow, HintToken), StoreError> {
    let mut flow = store
        .flow(None, flow_id)
        .await?
        .filter(|flow| flow.id == flow_id)
        .ok_or_else(|| StoreError::NotFound {
            what: format!("flow {flow_id}"),
        })?;
    let tenant = store
        .tenant(&flow.tenant_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("tenant {}", flow.tenant_id),
        })?;
    let (token, new_token) = match HintToken::of(&flow) {
        Some(token) => (token, false),
        None => (HintToken::generate()?, true),
    };
    let base_url = base_url.trim_end_matches('/');
    let same_base = flow
        .settings
        .get(HINT_BASE_URL_SETTING)
        .and_then(serde_json::Value::as_str)
        == Some(base_url);
    if new_token || !same_base {
        flow.secrets.insert(
            HINT_TOKEN_SECRET.to_owned(),
            SecretValue::new(token.expose()),
        );
        flow.settings.insert(
            HINT_BASE_URL_SETTING.to_owned(),
            serde_json::Value::String(base_url.to_owned()),
        );
        flow.updated_at = now;
        if !store
            .update_tenant(&tenant, std::slice::from_ref(&flow))
            .await?
        {
            return Err(StoreError::NotFound {
                what: format!("flow {flow_id}"),
            });
        }
    }
    Ok((flow, token))
}

/// Takes the flow's hint token and base URL away: hints to its old URL are refused (404).
pub async fn disable<S: Store>(
    store: &S,
    flow_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some(mut flow) = store
        .flow(None, flow_id)
        .await?
        .filter(|flow| flow.id == flow_id)
    else {
        return Ok(false);
    };
    let Some(tenant) = store.tenant(&flow.tenant_id).await? else {
        return Ok(false);
    };
    let had_token = flow.secrets.remove(HINT_TOKEN_SECRET).is_some();
    let had_base = flow.settings.remove(HINT_BASE_URL_SETTING).is_some();
    if !had_token && !had_base {
        return Ok(false);
    }
    flow.updated_at = now;
    store
        .update_tenant(&tenant, std::slice::from_ref(&flow))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_compared_whole_and_never_shown() {
        let Ok(token) = HintToken::generate() else {
            panic!("no random generator");
        };
        let Ok(other) = HintToken::generate() else {
            panic!("no random generator");
        };
        assert_ne!(token, other);
        assert_eq!(token.expose().len(), 2 * TOKEN_BYTES);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(token.matches(token.expose()));
        assert!(!token.matches(other.expose()));
        assert!(!token.matches(&token.expose()[1..]));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "HintToken(••••)");
        assert!(token.masked().ends_with(&token.expose()[44..]));
        assert_eq!(
            hint_url("https://bridge.example.com/", "0123456789abcdef", "t0k"),
            "https://bridge.example.com/hooks/odoo/0123456789abcdef/t0k"
        );
        assert_eq!(
            mirror_hint_url("https://bridge.example.com/", "res.partner", "t0k"),
            "https://bridge.example.com/hooks/odoo-mirror/res.partner/t0k"
        );
    }

    #[test]
    fn a_configured_token_is_long_and_url_safe_and_its_errors_never_show_it() {
        let good = "a".repeat(MIN_CONFIGURED_TOKEN_LEN);
        assert!(HintToken::configured(&format!(" {good}\n")).is_ok_and(|t| t.expose() == good));
        let short = "s3cr3t-but-short";
        let error = HintToken::configured(short).err().unwrap_or_default();
        assert!(
            error.contains("at least 48") && !error.contains(short),
            "{error}"
        );
        let slashed = format!("{good}/x");
        let error = HintToken::configured(&slashed).err().unwrap_or_default();
        assert!(
            error.contains("letters, digits") && !error.contains(&good),
            "{error}"
        );
    }
}
