//! One POST of one packet to one webhook URL, and what came of it.
//!
//! The request carries:
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `X-Webhook-Secret` | the connection's secret, as the seed sends it (marked sensitive) |
//! | `X-Odoo-Connection-Id` | the connection's id |
//! | `webhook-id`, `webhook-timestamp`, `webhook-signature` | [Standard Webhooks](super::signature) |
//! | `User-Agent` | `odoo-bridge/<version>` |
//! | `X-Odoo-Bridge-Environment` | [`SenderConfig::environment`] (`ODOO_BRIDGE_ENVIRONMENT`), when set |
//!
//! Any 2xx is a success, whatever the body says (it is read, up to 64 KiB, and ignored).
//! Everything else is a [`DeliveryError`] of one [`FailureClass`]:
//!
//! | answer | class | retried? |
//! |---|---|---|
//! | no connection, reset, TLS failure, cut mid-answer | `network_error` | yes |
//! | no answer within the timeout (30 s by default) | `timeout` | yes |
//! | 429; 503 with `Retry-After` | `rate_limited` | yes, not before `Retry-After` |
//! | 408 Request Timeout, 425 Too Early | `http_4xx` | yes: they are about timing, not the packet |
//! | 410 Gone and every other 4xx | `http_4xx` | no: the same packet would be refused again |
//! | 3xx (redirects are not followed: a POST must not silently become a GET elsewhere) | `http_4xx` | no: the URL needs fixing |
//! | 5xx, and statuses above 599 | `http_5xx` | yes |
//!
//! A person can still send a permanently failed packet again from the retry queue once the
//! receiver is fixed. `Retry-After` (delta-seconds or an HTTP date) is read on 429 and 503
//! only, and clamped to [`SenderConfig::max_retry_after`].
//!
//! Error texts name the URL without its credentials, query or fragment, never carry the
//! secret (a receiver echoing it back has it replaced by `••••`), and keep at most
//! [`SenderConfig::max_error_body`] bytes of the answer, cut on a character boundary.

use super::failure::{DeliveryError, FailureClass};
use super::signature::{self, WebhookSecret};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use std::time::{Duration, SystemTime};

/// `odoo-bridge/<version>`.
pub const USER_AGENT: &str = concat!("odoo-bridge/", env!("CARGO_PKG_VERSION"));
/// The seed's header carrying the connection's secret.
pub const HEADER_SECRET: &str = "x-webhook-secret";
/// The seed's header carrying the connection's id.
pub const HEADER_CONNECTION_ID: &str = "x-odoo-connection-id";
/// The environment (`prod`, `staging`) of every packet the engine emits, where the body is
/// fixed by the receiver (the seed's order payload, a marketplace's API).
pub const HEADER_ENVIRONMENT: &str = "x-odoo-bridge-environment";
/// Where the daemon's environment tag comes from.
pub const ENVIRONMENT_ENV: &str = "ODOO_BRIDGE_ENVIRONMENT";

/// The most of a successful answer's body read (to keep the connection reusable) and ignored.
const MAX_SUCCESS_BODY: usize = 64 * 1024;
/// The longest connection set-up allowed, within the call's timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`WebhookSender`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// The whole call: connecting, sending and reading the answer.
    pub timeout: Duration,
    /// The most bytes of an error answer's body kept in the error text.
    pub max_error_body: usize,
    /// The longest `Retry-After` honoured; a receiver asking for more gets this.
    pub max_retry_after: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Sent as `X-Odoo-Bridge-Environment` on every request of the client (webhooks, and
    /// marketplace pushes through [`WebhookSender::http_client`]). By default
    /// `ODOO_BRIDGE_ENVIRONMENT`, when set.
    pub environment: Option<String>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout: Duration::from_secs(30),
            max_error_body: 512,
            max_retry_after: Duration::from_secs(600),
            user_agent: USER_AGENT.to_owned(),
            environment: process_environment(),
        }
    }
}

/// This process's environment tag: `ODOO_BRIDGE_ENVIRONMENT`, when set and not blank.
pub fn process_environment() -> Option<String> {
    std::env::var(ENVIRONMENT_ENV)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// One packet, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet's id, sent as `webhook-id`: chosen once by the caller and the same on
    /// every retry, so a receiver can drop a packet it has already processed.
    pub id: String,
    /// The connection's id, sent as `X-Odoo-Connection-Id`.
    pub connection_id: String,
    /// The JSON body, sent and signed byte for byte.
    pub body: Bytes,
}

/// A successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The 2xx status the receiver answered.
    pub status: u16,
}

/// The HTTP client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct ClientBuildError(String);

/// Sends packets. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    config: SenderConfig,
}

impl WebhookSender {
    pub fn new(config: SenderConfig) -> Result<Self, ClientBuildError> {
        let mut defaults = HeaderMap::new();
        if let Some(environment) = &config.environment {
            let value = HeaderValue::from_str(environment).map_err(|_| {
                ClientBuildError(format!(
                    "{ENVIRONMENT_ENV} {environment:?} cannot be sent in an HTTP header"
                ))
            })?;
            defaults.insert(HeaderName::from_static(HEADER_ENVIRONMENT), value);
        }
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(defaults)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(MAX_CONNECT_TIMEOUT))
            .tcp_keepalive(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientBuildError(e.without_url().to_string()))?;
        Ok(WebhookSender { http, config })
    }

    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// The shared HTTP client (no redirects followed, connect timeout, keep-alive), for other
    /// senders of the outbox that speak their own protocol (a marketplace's API).
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `packet` to `url`, signed with `secret` at the present time.
    pub async fn send(
        &self,
        url: &str,
        secret: &WebhookSecret,
        packet: &Packet,
    ) -> Result<Delivered, DeliveryError> {
        self.send_at(url, secret, packet, SystemTime::now()).await
    }

    /// [`WebhookSender::send`], signed as of `now`.
    pub async fn send_at(
        &self,
        url: &str,
        secret: &WebhookSecret,
        packet: &Packet,
        now: SystemTime,
    ) -> Result<Delivered, DeliveryError> {
        let url = match Url::parse(url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            // A validated connection cannot have one; kept retryable so that fixing the
            // connection's URL lets the packet through without a person re-queueing it.
            _ => {
                return Err(DeliveryError {
                    class: FailureClass::NetworkError,
                    status: None,
                    retry_after: None,
                    permanent: false,
                    message: "the webhook URL is not an http(s) URL".to_owned(),
                });
            }
        };
        let shown = display_url(&url);
        let headers = request_headers(secret, packet, signature::unix_seconds(now))?;
        tracing::debug!(
            connection_id = %packet.connection_id,
            webhook_id = %packet.id,
            url = %shown,
            bytes = packet.body.len(),
            "sending webhook"
        );
        let result = self
            .http
            .post(url)
            .headers(headers)
            .body(packet.body.clone())
            .timeout(self.config.timeout)
            .send()
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(error, &shown, secret)),
        };
        let status = response.status();
        if status.is_success() {
            // Read what comes (so the connection can be reused) and ignore it, whatever it
            // is: the receiver has said yes, a broken body does not take that back.
            let _ = read_prefix(&mut response, MAX_SUCCESS_BODY).await;
            tracing::debug!(
                connection_id = %packet.connection_id,
                webhook_id = %packet.id,
                status = status.as_u16(),
                "webhook delivered"
            );
            return Ok(Delivered {
                status: status.as_u16(),
            });
        }
        let retry_after = if matches!(status.as_u16(), 429 | 503) {
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| odoo_rpc::retry::parse_retry_after(value, SystemTime::now()))
                .map(|wait| wait.min(self.config.max_retry_after))
        } else {
            None
        };
        let location = status
            .is_redirection()
            .then(|| response.headers().get(header::LOCATION).cloned())
            .flatten();
        // Read a little past the limit, so that a secret echoed across it is still
        // recognised and replaced before the cut.
        let want = self
            .config
            .max_error_body
            .saturating_add(secret.expose().len());
        let body = read_prefix(&mut response, want).await;
        let (class, permanent) = classify_status(status.as_u16(), retry_after.is_some());
        let mut message = format!("webhook at {shown} answered HTTP {}", status_text(status));
        if let Some(location) = location.as_ref().and_then(|l| l.to_str().ok()) {
            let location = scrub(location.to_owned(), secret.expose());
            message.push_str(&format!(" (a redirect to {location}, not followed)"));
        }
        if let Some(wait) = retry_after {
            message.push_str(&format!(" (retry after {} s)", wait.as_secs()));
        }
        let excerpt = excerpt(&body, secret.expose(), self.config.max_error_body);
        if !excerpt.is_empty() {
            message.push_str(": ");
            message.push_str(&excerpt);
        }
        tracing::debug!(
            connection_id = %packet.connection_id,
            webhook_id = %packet.id,
            status = status.as_u16(),
            class = class.as_str(),
            "webhook refused"
        );
        Err(DeliveryError {
            class,
            status: Some(status.as_u16()),
            retry_after,
            permanent,
            message,
        })
    }

    fn transport_error(
        &self,
        error: reqwest::Error,
        shown: &str,
        secret: &WebhookSecret,
    ) -> DeliveryError {
        let mut failure = unanswered(error, &format!("webhook at {shown}"), self.config.timeout);
        failure.message = scrub(failure.message, secret.expose());
        failure
    }
}

/// A request that got no answer (a timeout, or no connection), for every sender of the engine:
/// never permanent, no status. `target` names what was called ("webhook at https://…").
pub(crate) fn unanswered(error: reqwest::Error, target: &str, timeout: Duration) -> DeliveryError {
    let error = error.without_url();
    let (class, message) = if error.is_timeout() {
        (
            FailureClass::Timeout,
            format!("{target} did not answer within {} ms", timeout.as_millis()),
        )
    } else {
        (
            FailureClass::NetworkError,
            format!("{target} could not be reached: {}", describe_chain(&error)),
        )
    };
    DeliveryError {
        class,
        status: None,
        retry_after: None,
        permanent: false,
        message,
    }
}

/// The class of a non-2xx status, and whether sending the packet again is pointless.
/// `has_retry_after` tells a 503 that asked us to come back later (rate limiting) from one
/// that did not.
pub fn classify_status(status: u16, has_retry_after: bool) -> (FailureClass, bool) {
    match status {
        429 => (FailureClass::RateLimited, false),
        503 if has_retry_after => (FailureClass::RateLimited, false),
        // Request Timeout and Too Early are about when, not what.
        408 | 425 => (FailureClass::Http4xx, false),
        300..=499 => (FailureClass::Http4xx, true),
        // 5xx, and anything outside the registered ranges: the server's trouble.
        _ => (FailureClass::Http5xx, false),
    }
}

fn request_headers(
    secret: &WebhookSecret,
    packet: &Packet,
    timestamp: i64,
) -> Result<HeaderMap, DeliveryError> {
    let signed = signature::sign(&[secret], &packet.id, timestamp, &packet.body);
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut secret_value = header_value(secret.expose(), "the webhook secret")?;
    secret_value.set_sensitive(true);
    headers.insert(HeaderName::from_static(HEADER_SECRET), secret_value);
    headers.insert(
        HeaderName::from_static(HEADER_CONNECTION_ID),
        header_value(&packet.connection_id, "the connection id")?,
    );
    headers.insert(
        HeaderName::from_static(signature::HEADER_ID),
        header_value(&signed.id, "the packet id")?,
    );
    headers.insert(
        HeaderName::from_static(signature::HEADER_TIMESTAMP),
        HeaderValue::from(signed.timestamp),
    );
    headers.insert(
        HeaderName::from_static(signature::HEADER_SIGNATURE),
        header_value(&signed.signature, "the signature")?,
    );
    Ok(headers)
}

/// A value that cannot go in a header makes the packet unsendable: a `schema_error`, raised
/// before the target is contacted, so its circuit breaker is not involved. The value itself
/// is not quoted (it may be the secret).
fn header_value(value: &str, what: &str) -> Result<HeaderValue, DeliveryError> {
    HeaderValue::from_str(value).map_err(|_| {
        DeliveryError::before_sending(
            FailureClass::SchemaError,
            true,
            format!("{what} cannot be sent in an HTTP header"),
        )
    })
}

/// Reads at most `limit` bytes of the body; a body that breaks off gives what came.
pub(crate) async fn read_prefix(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The first `limit` bytes of `body` as text, the secret replaced, whitespace collapsed,
/// cut on a character boundary: how every sender of the engine quotes an error answer.
pub(crate) fn excerpt(body: &[u8], secret: &str, limit: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = scrub(
        text.split_whitespace().collect::<Vec<_>>().join(" "),
        secret,
    );
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `text` with the secret (when there is one) replaced by dots.
pub(crate) fn scrub(text: String, secret: &str) -> String {
    if !secret.is_empty() && text.contains(secret) {
        text.replace(secret, "••••")
    } else {
        text
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The URL without credentials, query or fragment (they may hold tokens).
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// An error and its sources ("error sending request: client error (Connect): tcp connect
/// error: Connection refused"): reqwest's own text alone says too little.
pub(crate) fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        use FailureClass::*;
        assert_eq!(classify_status(429, false), (RateLimited, false));
        assert_eq!(classify_status(429, true), (RateLimited, false));
        assert_eq!(classify_status(503, true), (RateLimited, false));
        assert_eq!(classify_status(503, false), (Http5xx, false));
        assert_eq!(classify_status(500, false), (Http5xx, false));
        assert_eq!(classify_status(502, false), (Http5xx, false));
        assert_eq!(classify_status(410, false), (Http4xx, true));
        assert_eq!(classify_status(400, false), (Http4xx, true));
        assert_eq!(classify_status(404, false), (Http4xx, true));
        assert_eq!(classify_status(408, false), (Http4xx, false));
        assert_eq!(classify_status(425, false), (Http4xx, false));
        assert_eq!(classify_status(301, false), (Http4xx, true));
        assert_eq!(classify_status(600, false), (Http5xx, false));
    }

    #[test]
    fn excerpts_are_cut_on_characters_and_scrubbed() {
        let secret = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap();
        let body = "é".repeat(600);
        let cut = excerpt(body.as_bytes(), secret.expose(), 511);
        assert!(cut.ends_with('…'));
        assert_eq!(cut.trim_end_matches('…').len(), 510);
        let echoed = format!("bad secret {}  given", secret.expose());
        assert_eq!(
            excerpt(echoed.as_bytes(), secret.expose(), 512),
            "bad secret •••• given"
        );
        assert_eq!(
            excerpt(b"\xff\xfeok", secret.expose(), 512),
            "\u{fffd}\u{fffd}ok"
        );
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = Url::parse("https://user:pw@example.com:8443/hook?token=abc#x").unwrap();
        assert_eq!(display_url(&url), "https://example.com:8443/hook");
    }
}
