//! `connections install-hint` / `uninstall-hint`, and the hint line of `connections show`:
//! Odoo push hints (see `engine::hints`) set up in the tenant's Odoo through its API.
//!
//! The hint URL carries the connection's hint token, which is all that authenticates a hint:
//! it is printed masked unless `--reveal-secret` asks for it.

use super::connections::Store;
use super::delivery_store::{ago, time_json};
use crate::exit::{Exit, Failure, exit_for};
use clap::Args;
use engine::connection_test::scrub;
use engine::hints::install::{self, InstallError, InstalledRule};
use engine::hints::{self, HINT_BASE_URL_SETTING, HintToken};
use engine::order_delivery::Connection;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

/// How long each Odoo call of these commands may take.
const ODOO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `connections show` waits for Odoo to say whether the rule is there.
const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct InstallHintArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// Where Odoo reaches this daemon's listener (`odoo-bridge run --listen`), e.g.
    /// https://bridge.example.com behind a reverse proxy. Hints are posted to
    /// URL/hooks/odoo/<connection id>/<token>.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// Print the hint URL with its token.
    #[arg(long)]
    reveal_secret: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UninstallHintArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A base URL Odoo can post to: `http(s)://host[:port][/path]`, nothing else.
pub(crate) fn check_base_url(text: &str) -> Result<String, Failure> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains(['?', '#', ' ', '@'])
            && rest.chars().all(|c| c.is_ascii_graphic())
    });
    if !valid {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "--base-url {text:?} is not a URL Odoo can post to: give http(s)://host[:port][/path] \
                 of this daemon's listener as Odoo reaches it, without a query"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The exit code of a rule that could not be set up: 3 without the app, 4 without the rights.
pub(crate) fn install_exit(error: &InstallError) -> Exit {
    match error {
        InstallError::ModuleMissing | InstallError::NoModel(_) => Exit::Config,
        InstallError::Rights { .. } => Exit::Authentication,
        InstallError::Odoo(inner) => exit_for(inner),
        InstallError::Unexpected(_) => Exit::OdooError,
    }
}

fn odoo_failure(connection: &Connection, error: InstallError) -> Failure {
    Failure::new(
        install_exit(&error),
        anyhow::anyhow!(scrub(connection, error.to_string())),
    )
}

fn client(connection: &Connection, timeout: Duration) -> Result<odoo_rpc::OdooClient, Failure> {
    install::client_for(&connection.tenant(), timeout).map_err(|error| {
        Failure::new(
            exit_for(&error),
            anyhow::anyhow!(scrub(connection, error.to_string())),
        )
    })
}

pub(crate) async fn install_hint<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: InstallHintArgs,
) -> Result<Exit, Failure> {
    let base_url = check_base_url(&args.base_url)?;
    let c = store.find(&args.connection).await?;
    if !base_url.starts_with("https://") {
        tracing::warn!(
            connection_id = %c.id,
            "the hint URL is plain http: its token travels in clear; use https unless Odoo reaches the daemon on a private network"
        );
    }
    let (_, token) = hints::enable(store.store, &c.id, &base_url, Timestamp::now())
        .await
        .map_err(|error| store.failed(error))?;
    let url = hints::hint_url(&base_url, &c.id, token.expose());
    let odoo = client(&c, ODOO_TIMEOUT)?;
    let installed = install::install(&odoo, &c.id, &url, c.events)
        .await
        .map_err(|error| odoo_failure(&c, error))?;
    tracing::info!(connection_id = %c.id, ?installed, "push hint installed in Odoo");
    let shown = if args.reveal_secret {
        url.clone()
    } else {
        hints::masked_hint_url(&base_url, &c.id, &token)
    };
    let (rule_id, action_id, verb) = installed.parts();
    if args.json {
        say!(
            "{}",
            json!({
                "connection_id": c.id,
                "name": c.name,
                "hint_url": shown,
                "rule": verb,
                "rule_id": rule_id,
                "action_id": action_id,
                "rule_name": install::rule_name(&c.id),
            })
        );
        return Ok(Exit::Success);
    }
    say!(
        "Push hint {verb} for connection {:?} (id {}) in Odoo {} (database {}):",
        c.name,
        c.id,
        c.odoo_url,
        c.odoo_db
    );
    say!(
        "  automation rule #{rule_id} {:?} on sale.order (on create and edit: {}),",
        install::rule_name(&c.id),
        install::domains(c.events).1
    );
    say!("  its action #{action_id} \"Send Webhook Notification\" posts to {shown}");
    say!(
        "Odoo must reach that URL: `odoo-bridge run` serves it on its --listen address (behind your proxy). Orders still arrive by polling if a hint is lost."
    );
    Ok(Exit::Success)
}

pub(crate) async fn uninstall_hint<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: UninstallHintArgs,
) -> Result<Exit, Failure> {
    let c = store.find(&args.connection).await?;
    let odoo = client(&c, ODOO_TIMEOUT)?;
    let removed = install::uninstall(&odoo, &c.id)
        .await
        .map_err(|error| odoo_failure(&c, error))?;
    // The token goes once Odoo no longer posts with it: hints to the old URL are then 404.
    let disabled = hints::disable(store.store, &c.id, Timestamp::now())
        .await
        .map_err(|error| store.failed(error))?;
    tracing::info!(connection_id = %c.id, removed, disabled, "push hint uninstalled");
    if args.json {
        say!(
            "{}",
            json!({"connection_id": c.id, "name": c.name, "rule_removed": removed, "hints_disabled": disabled})
        );
        return Ok(Exit::Success);
    }
    match (removed, disabled) {
        (false, false) => say!(
            "Connection {:?} (id {}) has no push hint: nothing to remove.",
            c.name,
            c.id
        ),
        (true, _) => say!(
            "Removed the push hint of connection {:?} (id {}): its automation rule and webhook action are deleted from Odoo, and its hint URL is refused. Orders arrive by polling.",
            c.name,
            c.id
        ),
        (false, true) => say!(
            "Connection {:?} (id {}): Odoo had no push-hint rule; its hint URL is now refused.",
            c.name,
            c.id
        ),
    }
    Ok(Exit::Success)
}

/// The hint as `connections show` reports it: the URL (masked unless `reveal`) and whether
/// Odoo has the rule, asked live (a few seconds at most).
pub(crate) struct HintStatus {
    pub text: String,
    pub json: Value,
}

pub(crate) async fn hint_status<S: engine::store::Store>(
    store: &Store<'_, S>,
    connection: &Connection,
    reveal: bool,
) -> Result<HintStatus, Failure> {
    let flow = store
        .store
        .flow(None, &connection.id)
        .await
        .map_err(|error| store.failed(error))?;
    let token = flow.as_ref().and_then(HintToken::of);
    let base_url = flow.as_ref().and_then(|flow| {
        flow.settings
            .get(HINT_BASE_URL_SETTING)
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let (Some(token), Some(base_url)) = (token, base_url) else {
        return Ok(HintStatus {
            text: "off (`connections install-hint` sets it up)".to_owned(),
            json: json!({"enabled": false}),
        });
    };
    let url = hints::hint_url(&base_url, &connection.id, token.expose());
    let shown = if reveal {
        url.clone()
    } else {
        hints::masked_hint_url(&base_url, &connection.id, &token)
    };
    let found = match install::client_for(&connection.tenant(), SHOW_TIMEOUT) {
        Ok(odoo) => tokio::time::timeout(SHOW_TIMEOUT, install::find(&odoo, &connection.id))
            .await
            .unwrap_or_else(|_| {
                Err(InstallError::Unexpected(
                    "Odoo did not answer in time".to_owned(),
                ))
            })
            .map_err(|error| scrub(connection, error.to_string())),
        Err(error) => Err(scrub(connection, error.to_string())),
    };
    let (rule, rule_text, rule_id, error) = match found {
        Ok(Some(InstalledRule {
            rule_id,
            active,
            webhook_url,
            ..
        })) => {
            let (word, text) = if webhook_url.as_deref() != Some(url.as_str()) {
                (
                    "elsewhere",
                    format!(
                        "rule #{rule_id} posts elsewhere; run `connections install-hint` again"
                    ),
                )
            } else if !active {
                ("archived", format!("rule #{rule_id} is archived in Odoo"))
            } else {
                ("installed", format!("rule #{rule_id} installed in Odoo"))
            };
            (word, text, Some(rule_id), None)
        }
        Ok(None) => (
            "missing",
            "no rule in Odoo; run `connections install-hint`".to_owned(),
            None,
            None,
        ),
        Err(error) => (
            "unknown",
            format!("cannot ask Odoo: {error}"),
            None,
            Some(error),
        ),
    };
    let activity = store
        .store
        .hint_activity()
        .await
        .map_err(|error| store.failed(error))?
        .into_iter()
        .find(|activity| activity.flow_id == connection.id);
    let last = match &activity {
        Some(activity) => format!(
            "; {} received, the last {}",
            activity.received,
            ago(activity.last_received_at, Timestamp::now())
        ),
        None => "; none received yet".to_owned(),
    };
    Ok(HintStatus {
        text: format!("{shown} ({rule_text}{last})"),
        json: json!({
            "enabled": true,
            "url": shown,
            "rule": rule,
            "rule_id": rule_id,
            "error": error,
            "received": activity.as_ref().map_or(0, |a| a.received),
            "last_received_at": activity.map(|a| time_json(a.last_received_at)),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::check_base_url;

    #[test]
    fn base_urls_are_plain_http_or_https_without_a_query() {
        assert_eq!(
            check_base_url("https://bridge.example.com/").ok(),
            Some("https://bridge.example.com".to_owned())
        );
        assert_eq!(
            check_base_url("http://127.0.0.1:9464").ok(),
            Some("http://127.0.0.1:9464".to_owned())
        );
        for bad in [
            "bridge.example.com",
            "ftp://x",
            "https://",
            "https://x?a=1",
            "https://user@x",
            "https://x y",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
