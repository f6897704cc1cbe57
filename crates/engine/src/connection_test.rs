//! Testing a connection before trusting it: (a) log in to its Odoo and read the server
//! version, (b) POST a signed `ping` event to its webhook. Both are reported, each on its
//! own, by `odoo-bridge connections test` and the TUI's "Test".
//!
//! The two checks run at once; each has its own timeout. No result quotes a secret:
//! error texts go through [`scrub`].

use crate::connection_form::new_connection_id;
use crate::order_delivery::Connection;
use crate::store::Tenant;
use crate::webhook::{
    ClientBuildError, Delivered, DeliveryError, Packet, SenderConfig, WebhookSender,
};
use jiff::Timestamp;
use odoo_rpc::{OdooClient, Protocol};
use std::time::{Duration, Instant};

/// What the Odoo half found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdooCheck {
    /// The server's version as it reports it (`18.0`, `saas~18.2`, …).
    pub version: String,
    pub uid: i64,
    /// `json2` or `jsonrpc`.
    pub transport: &'static str,
}

/// What the webhook half did: the `ping` packet's id and the receiver's answer.
#[derive(Debug)]
pub struct PingReport {
    /// The `webhook-id` the ping was sent with.
    pub webhook_id: String,
    pub outcome: Result<Delivered, DeliveryError>,
    pub elapsed: Duration,
}

/// Both halves of a connection test.
#[derive(Debug)]
pub struct TestReport {
    pub odoo: Result<OdooCheck, odoo_rpc::Error>,
    pub webhook: PingReport,
}

impl TestReport {
    pub fn ok(&self) -> bool {
        self.odoo.is_ok() && self.webhook.outcome.is_ok()
    }
}

/// Why an Odoo check failed, in one word: `authentication` (database, login or API key
/// refused, or a login cooldown), `unreachable` (network, timeout, HTTP 429/5xx),
/// `configuration` (the request could not be built: a bad URL) or `odoo_error`.
pub fn odoo_failure_class(error: &odoo_rpc::Error) -> &'static str {
    use odoo_rpc::Error;
    match error {
        Error::Authentication { .. } => "authentication",
        Error::Odoo(odoo)
            if matches!(
                odoo.kind,
                odoo_rpc::OdooErrorKind::AccessDenied | odoo_rpc::OdooErrorKind::LoginCooldown
            ) =>
        {
            "authentication"
        }
        Error::InvalidRequest { .. } => "configuration",
        Error::Transport { .. } => "unreachable",
        Error::Http { status, .. } if *status == 429 || *status >= 500 => "unreachable",
        _ => "odoo_error",
    }
}

/// Logs in to `connection`'s Odoo (one retry at most, `timeout` per call) and reads the
/// server's version and the user's id.
pub async fn check_odoo(
    connection: &Connection,
    timeout: Duration,
) -> Result<OdooCheck, odoo_rpc::Error> {
    check_tenant_odoo(&connection.tenant(), timeout).await
}

/// [`check_odoo`] for any tenant (a connection's, a marketplace's).
pub async fn check_tenant_odoo(
    tenant: &Tenant,
    timeout: Duration,
) -> Result<OdooCheck, odoo_rpc::Error> {
    let mut config = tenant.odoo_client_config();
    config.timeout = timeout;
    config.retry.max_retries = 1;
    let client = OdooClient::connect(config).await?;
    let version = client.server_version().await?;
    let uid = client.uid().await?;
    let transport = match client.transport_kind() {
        Some(Protocol::Json2) => "json2",
        Some(Protocol::JsonRpc) => "jsonrpc",
        None => "unknown",
    };
    Ok(OdooCheck {
        version: version.raw.clone(),
        uid,
        transport,
    })
}

/// POSTs a signed `{"event": "ping", "connection_id", "sent_at"}` to `connection`'s webhook,
/// with a fresh `webhook-id` (`ping_{connection}_{random}`).
pub async fn ping_webhook(
    connection: &Connection,
    timeout: Duration,
) -> Result<PingReport, ClientBuildError> {
    let sent_at =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    let body = serde_json::json!({
        "event": "ping",
        "connection_id": connection.id,
        "sent_at": sent_at.to_string(),
    })
    .to_string();
    let packet = Packet {
        id: format!("ping_{}_{}", connection.id, new_connection_id()),
        connection_id: connection.id.clone(),
        body: body.into(),
    };
    let sender = WebhookSender::new(SenderConfig {
        timeout,
        ..SenderConfig::default()
    })?;
    let started = Instant::now();
    let outcome = sender
        .send(&connection.webhook_url, &connection.webhook_secret, &packet)
        .await;
    Ok(PingReport {
        webhook_id: packet.id,
        outcome,
        elapsed: started.elapsed(),
    })
}

/// Both checks, at once.
pub async fn test_connection(
    connection: &Connection,
    timeout: Duration,
) -> Result<TestReport, ClientBuildError> {
    let (odoo, webhook) = tokio::join!(
        check_odoo(connection, timeout),
        ping_webhook(connection, timeout)
    );
    Ok(TestReport {
        odoo,
        webhook: webhook?,
    })
}

/// `text` with the connection's API key and webhook secret replaced by `••••`, should a
/// server have echoed one.
pub fn scrub(connection: &Connection, text: String) -> String {
    scrub_secrets(
        text,
        &[
            connection.odoo_api_key.expose(),
            connection.webhook_secret.expose(),
        ],
    )
}

/// `text` with each of `secrets` (four characters or more) replaced by `••••`.
pub fn scrub_secrets(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets {
        if secret.len() >= 4 {
            text = text.replace(secret, "••••");
        }
    }
    text
}
