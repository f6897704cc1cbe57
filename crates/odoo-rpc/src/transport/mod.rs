//! How a call reaches Odoo: JSON-RPC (`/jsonrpc`, Odoo ≤ 18, deprecated in 19) or JSON-2
//! (`/json/2/<model>/<method>`, Odoo ≥ 19), behind one object-safe [`Transport`] trait.
//!
//! Transports make exactly one HTTP request per method call; retries, pacing and
//! re-authentication belong to [`crate::OdooClient`].

pub mod json2;
pub mod jsonrpc;

use crate::error::{Error, excerpt};
use crate::retry::parse_retry_after;
use crate::secret::ApiKey;
use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use json2::Json2Transport;
pub use jsonrpc::JsonRpcTransport;

/// A boxed, `Send` future: what keeps [`Transport`] object-safe without `async_trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The wire protocol a transport speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `POST /jsonrpc` with `common`/`object` services.
    JsonRpc,
    /// `POST /json/2/<model>/<method>` with a bearer API key.
    Json2,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::JsonRpc => "JSON-RPC",
            Protocol::Json2 => "JSON-2",
        })
    }
}

/// One ORM method call. `ids` makes it a record method (`read`, `write`, `action_confirm`);
/// without it the method is called on the model (`search_read`, `create`).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub model: &'a str,
    pub method: &'a str,
    pub ids: Option<&'a [i64]>,
    /// The method's keyword arguments, without `context`.
    pub kwargs: &'a Map<String, Value>,
    /// Sent as the `context` keyword when not empty.
    pub context: &'a Map<String, Value>,
    /// The keyword argument JSON-RPC must send first among the positional ones instead:
    /// Odoo's `call_kw` reads `create`'s values as `args[0]` (a keyword `vals_list` fails
    /// there with `IndexError: tuple index out of range`). JSON-2 sends every one by name.
    pub positional: Option<&'a str>,
}

/// An Odoo connection's transport. Implementations send one request per call and report
/// failures as classified [`Error`]s.
pub trait Transport: Send + Sync + fmt::Debug {
    fn protocol(&self) -> Protocol;

    /// Whether [`Transport::execute`] needs the uid from [`Transport::authenticate`].
    fn uses_uid(&self) -> bool;

    fn server_version(&self) -> BoxFuture<'_, Result<ServerVersion, Error>>;

    /// Checks the credentials and returns the user's id. Refused credentials are
    /// [`Error::Authentication`].
    fn authenticate(&self) -> BoxFuture<'_, Result<i64, Error>>;

    /// Runs an ORM method and returns its JSON result untouched (`null` for a method
    /// returning `None`), for the caller to decode into the type it expects.
    fn execute<'a>(
        &'a self,
        uid: Option<i64>,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Box<RawValue>, Error>>;
}

/// The server's version, e.g. `18.0`, `saas~18.2+e`, `19.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerVersion {
    /// As the server spelled it.
    pub raw: String,
    pub major: u32,
    pub minor: u32,
    /// An Odoo Online (SaaS) intermediate release (`saas~18.2`).
    pub is_saas: bool,
}

impl ServerVersion {
    /// Parses a version string: `18.0`, `17.0+e`, `saas~18.2+e`, `19.0`.
    pub fn parse(raw: &str) -> Option<ServerVersion> {
        let start = raw.find(|c: char| c.is_ascii_digit())?;
        let (major, rest) = leading_number(&raw[start..])?;
        let minor = rest
            .strip_prefix('.')
            .and_then(leading_number)
            .map_or(0, |(minor, _)| minor);
        Some(ServerVersion {
            raw: raw.to_owned(),
            major,
            minor,
            is_saas: raw.contains("saas"),
        })
    }

    /// From a version string and Odoo's `version_info` array (`[18, 0, 0, "final", 0, ""]`
    /// or `["saas~18", 2, 0, "final", 0, "e"]`), preferring the array.
    pub(crate) fn from_parts(raw: Option<&str>, info: Option<&Value>) -> Option<ServerVersion> {
        let from_info = info.and_then(Value::as_array).and_then(|items| {
            let (major, saas) = match items.first()? {
                Value::Number(n) => (u32::try_from(n.as_u64()?).ok()?, false),
                Value::String(s) => {
                    let start = s.find(|c: char| c.is_ascii_digit())?;
                    (leading_number(&s[start..])?.0, s.contains("saas"))
                }
                _ => return None,
            };
            let minor = items
                .get(1)
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0);
            Some((major, minor, saas))
        });
        match (from_info, raw) {
            (Some((major, minor, saas)), raw) => Some(ServerVersion {
                raw: raw.map_or_else(|| format!("{major}.{minor}"), str::to_owned),
                major,
                minor,
                is_saas: saas || raw.is_some_and(|r| r.contains("saas")),
            }),
            (None, Some(raw)) => ServerVersion::parse(raw),
            (None, None) => None,
        }
    }

    /// The protocol to prefer: JSON-2 from Odoo 19 on.
    pub fn preferred_protocol(&self) -> Protocol {
        if self.major >= 19 {
            Protocol::Json2
        } else {
            Protocol::JsonRpc
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn leading_number(text: &str) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// Where Odoo is and as whom to call it, plus the HTTP client (one connection pool) that
/// both transports share. Cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    http: reqwest::Client,
    user_agent: HeaderValue,
    /// Without a trailing slash; may carry a path prefix (`https://host/odoo`).
    base_url: String,
    /// The base URL without user info, for error texts.
    display_url: String,
    database: String,
    login: String,
    api_key: ApiKey,
    timeout: Duration,
    max_response_bytes: usize,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.inner.display_url)
            .field("database", &self.inner.database)
            .field("login", &self.inner.login)
            .field("api_key", &self.inner.api_key)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// What [`Endpoint::new`] needs.
#[derive(Debug, Clone)]
pub struct EndpointConfig<'a> {
    pub base_url: &'a str,
    pub database: &'a str,
    pub login: &'a str,
    pub api_key: &'a ApiKey,
    /// The whole-request timeout of each call.
    pub timeout: Duration,
    pub user_agent: &'a str,
    /// Answers larger than this are refused (read no further) with a clear error.
    pub max_response_bytes: usize,
    /// Connections, TLS settings and root certificates shared with other endpoints; `None`
    /// builds a pool of this endpoint's own.
    pub http: Option<&'a HttpPool>,
}

/// An HTTP connection pool (rustls, gzip, keep-alive, no redirects) that many clients can
/// share. Each client built alone holds a pool and a TLS configuration of its own, a few
/// hundred KiB; a process talking to a thousand Odoo databases shares one.
#[derive(Clone)]
pub struct HttpPool {
    http: reqwest::Client,
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool").finish_non_exhaustive()
    }
}

impl HttpPool {
    /// A pool whose connection attempts give up after `connect_timeout` (at most 10 s);
    /// each call's whole-request timeout stays its client's.
    pub fn new(connect_timeout: Duration) -> Result<HttpPool, Error> {
        let http = reqwest::Client::builder()
            .gzip(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout.min(MAX_CONNECT_TIMEOUT))
            .tcp_keepalive(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::invalid_request(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpPool { http })
    }
}

/// The default cap on one answer's size: far above any sane page, low enough that a runaway
/// answer cannot exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("odoo-bridge/", env!("CARGO_PKG_VERSION"));

/// Connection attempts give up sooner than whole calls: an unreachable host should not
/// hold a call for its full timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first path segments of Odoo's own pages and endpoints. A base URL that starts with one
/// (copied from the browser's address bar: `/web`, `/odoo/action-…`) reaches the web client or
/// an endpoint, never the API, and Odoo answers it with a login page or a CSRF error.
const ODOO_PAGES: [&str; 6] = ["web", "odoo", "jsonrpc", "json", "xmlrpc", "website"];

/// Checks an Odoo base URL: `http(s)://host[:port][/prefix]`, without a query, a fragment or
/// one of Odoo's own pages as its path. Returns it without a trailing slash.
///
/// Every place that takes an Odoo URL (the client, configuration files, command lines) calls
/// this, so a URL is refused the same way everywhere, before any request. Messages show the
/// URL without the user name and password it may carry.
pub fn check_base_url(raw: &str) -> Result<String, Error> {
    parse_base_url(raw).map(|url| url.as_str().trim_end_matches('/').to_owned())
}

fn parse_base_url(raw: &str) -> Result<reqwest::Url, Error> {
    const EXAMPLE: &str = "e.g. https://mycompany.odoo.com";
    let text = raw.trim();
    if !text.contains("://") {
        // Without a scheme the URL cannot be parsed to drop its user info: it is shown only
        // when it cannot carry a password.
        let what = if text.contains('@') {
            "the base URL".to_owned()
        } else {
            format!("base URL {text:?}")
        };
        return Err(Error::invalid_request(format!(
            "{what} must start with https:// or http:// ({EXAMPLE})"
        )));
    }
    let url = reqwest::Url::parse(text).map_err(|e| {
        // The parse error never repeats the URL; the URL itself may hold a password.
        Error::invalid_request(format!("the base URL is not a valid URL: {e} ({EXAMPLE})"))
    })?;
    let mut shown = url.clone();
    // Clearing the user info cannot fail on an http(s) URL with a host; should it fail, the
    // message would show the URL as typed, which only shows the user what they typed.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let shown_text = shown.as_str().trim_end_matches('/').to_owned();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid_request(format!(
            "base URL {shown_text:?} must start with http:// or https:// ({EXAMPLE})"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid_request(format!(
            "base URL {shown_text:?} has no host ({EXAMPLE})"
        )));
    }
    let origin = shown.origin().ascii_serialization();
    let first_segment = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ODOO_PAGES.contains(&first_segment.as_str()) {
        return Err(Error::invalid_request(format!(
            "base URL {shown_text:?} points to a page of Odoo (/{first_segment}), not to its base URL: use {origin}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        let path = shown.path().trim_end_matches('/');
        return Err(Error::invalid_request(format!(
            "base URL {shown_text:?} must not have a ?query or #fragment: use {origin}{path}"
        )));
    }
    Ok(url)
}

impl Endpoint {
    /// Validates the base URL and builds the HTTP client (rustls, gzip, connection reuse,
    /// no redirects: a redirected POST would silently become a GET).
    pub fn new(config: &EndpointConfig<'_>) -> Result<Endpoint, Error> {
        let mut url = parse_base_url(config.base_url)?;
        if config.timeout.is_zero() {
            return Err(Error::invalid_request("the call timeout must not be zero"));
        }
        let base_url = url.as_str().trim_end_matches('/').to_owned();
        // Setting an empty username/password cannot fail on an http(s) URL; if it did, the
        // URL would be shown as given, which only risks showing what the user typed.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let display_url = url.as_str().trim_end_matches('/').to_owned();

        let user_agent = HeaderValue::from_str(config.user_agent).map_err(|_| {
            Error::invalid_request(format!(
                "user agent {:?} is not a valid header value",
                config.user_agent
            ))
        })?;
        let http = match config.http {
            Some(pool) => pool.http.clone(),
            None => HttpPool::new(config.timeout)?.http,
        };

        Ok(Endpoint {
            inner: Arc::new(EndpointInner {
                http,
                user_agent,
                base_url,
                display_url,
                database: config.database.to_owned(),
                login: config.login.to_owned(),
                api_key: config.api_key.clone(),
                timeout: config.timeout,
                max_response_bytes: config.max_response_bytes,
            }),
        })
    }

    pub fn database(&self) -> &str {
        &self.inner.database
    }

    pub fn login(&self) -> &str {
        &self.inner.login
    }

    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.inner.api_key
    }

    /// A malformed-response error whose excerpt cannot show the key.
    pub(crate) fn malformed(&self, message: impl Into<String>, body: &[u8]) -> Error {
        Error::malformed_scrubbed(message, body, self.inner.api_key.expose())
    }

    /// The base URL without credentials.
    pub fn display_url(&self) -> &str {
        &self.inner.display_url
    }

    pub(crate) fn post_json(&self, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(format!("{}{path}", self.inner.base_url))
            .header(header::USER_AGENT, self.inner.user_agent.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .body(body)
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.inner
            .http
            .get(format!("{}{path}", self.inner.base_url))
            .header(header::USER_AGENT, self.inner.user_agent.clone())
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
    }

    /// Sends a request and reads the whole body. `label` names the request in errors
    /// (`POST /jsonrpc`).
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        label: &str,
    ) -> Result<HttpReply, Error> {
        let target = format!("{label} at {}", self.inner.display_url);
        let response = request
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(|e| Error::from_reqwest(e, &target))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let retry_after = header_str(headers, header::RETRY_AFTER)
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let location = header_str(headers, header::LOCATION).map(str::to_owned);
        let limit = self.inner.max_response_bytes;
        let too_large = || Error::MalformedResponse {
            message: format!(
                "{target} answered more than {limit} bytes (the client's max_response_bytes); ask for fewer records per page or fewer fields"
            ),
            excerpt: String::new(),
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                // The answer was on its way: whatever reqwest calls it, the connection broke
                // (or the timeout struck) mid-body.
                match Error::from_reqwest(e, &target) {
                    Error::Transport { kind, message }
                        if kind != crate::error::TransportKind::Timeout =>
                    {
                        Error::Transport {
                            kind: crate::error::TransportKind::ConnectionClosed,
                            message,
                        }
                    }
                    other => other,
                }
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let body = bytes::Bytes::from(body);
        Ok(HttpReply {
            status,
            retry_after,
            location,
            body,
        })
    }
}

fn header_str(headers: &header::HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A whole HTTP answer.
#[derive(Debug)]
pub(crate) struct HttpReply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub location: Option<String>,
    pub body: Bytes,
}

impl HttpReply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error for a non-2xx answer that carries no Odoo error.
    pub fn into_http_error(self, secret: &ApiKey) -> Error {
        let body_excerpt = match (&self.location, self.status) {
            (Some(location), 300..=399) => {
                format!("redirected to {location}: use the final address as the base URL")
            }
            _ => excerpt(&self.body, secret.expose()),
        };
        Error::Http {
            status: self.status,
            retry_after: self.retry_after,
            body_excerpt,
        }
    }
}

/// Odoo's serialized exception: JSON-RPC's `error.data`, JSON-2's error body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OdooErrorBody {
    pub name: Option<String>,
    pub message: Option<String>,
    pub debug: Option<String>,
}

impl OdooErrorBody {
    /// Builds the error, logging the traceback at debug level only: it can reveal paths,
    /// module versions and data.
    pub fn into_error(
        self,
        fallback_message: Option<String>,
        http_status: Option<u16>,
        code: Option<i64>,
        secret: &ApiKey,
    ) -> crate::error::OdooError {
        let scrub = |text: String| crate::error::scrub(text, secret.expose());
        let name = scrub(self.name.unwrap_or_default());
        if let Some(traceback) = self.debug.as_deref().filter(|d| !d.is_empty()) {
            tracing::debug!(target: "odoo_rpc", error_name = %name, %traceback, "Odoo traceback");
        }
        let message = self
            .message
            .filter(|m| !m.is_empty())
            .or(fallback_message)
            .map(scrub)
            .unwrap_or_default();
        crate::error::OdooError {
            http_status,
            code,
            ..crate::error::OdooError::new(name, message)
        }
    }
}

/// Model and method names go into URL paths (JSON-2) and logs: only Odoo's identifier
/// characters are let through.
pub fn validate_name(what: &str, name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_request(format!(
            "{what} {name:?} is not a valid Odoo name (letters, digits, '_' and '.')"
        )))
    }
}

/// Keyword arguments plus the context, serialized as one JSON object without copying either.
pub(crate) struct Kwargs<'a> {
    pub ids: Option<&'a [i64]>,
    pub kwargs: &'a Map<String, Value>,
    pub context: &'a Map<String, Value>,
    /// A keyword sent positionally instead ([`Call::positional`]), left out here.
    pub skip: Option<&'a str>,
}

impl Serialize for Kwargs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(ids) = self.ids {
            map.serialize_entry("ids", ids)?;
        }
        for (key, value) in self.kwargs {
            if key != "context"
                && !(self.ids.is_some() && key == "ids")
                && self.skip != Some(key.as_str())
            {
                map.serialize_entry(key, value)?;
            }
        }
        if !self.context.is_empty() {
            map.serialize_entry("context", self.context)?;
        }
        map.end()
    }
}

/// JSON-RPC's positional `args`: `[ids]` for a record method, `[]` for a model method, then
/// the value of [`Call::positional`] when there is one.
pub(crate) struct PositionalArgs<'a> {
    pub ids: Option<&'a [i64]>,
    pub value: Option<&'a Value>,
}

impl<'a> PositionalArgs<'a> {
    pub fn of(call: &Call<'a>) -> Self {
        PositionalArgs {
            ids: call.ids,
            value: call.positional.and_then(|name| call.kwargs.get(name)),
        }
    }
}

impl Serialize for PositionalArgs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = usize::from(self.ids.is_some()) + usize::from(self.value.is_some());
        let mut seq = serializer.serialize_seq(Some(len))?;
        if let Some(ids) = self.ids {
            seq.serialize_element(ids)?;
        }
        if let Some(value) = self.value {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

pub(crate) fn to_body(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::invalid_request(format!("cannot serialize the request: {e}")))
}

/// Asks `/web/version` (no authentication; Odoo 17+), as used when `/jsonrpc` is gone.
pub async fn web_version(endpoint: &Endpoint) -> Result<ServerVersion, Error> {
    let reply = endpoint
        .send(endpoint.get("/web/version"), "GET /web/version")
        .await?;
    if !reply.is_success() {
        return Err(reply.into_http_error(endpoint.api_key()));
    }
    let value: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| Error::malformed(format!("/web/version: {e}"), &reply.body))?;
    ServerVersion::from_parts(
        value.get("version").and_then(Value::as_str),
        value.get("version_info"),
    )
    .ok_or_else(|| Error::malformed("/web/version: no version in the answer", &reply.body))
}

/// Finds the server's version: `common.version` over `/jsonrpc`, or `/web/version` when
/// `/jsonrpc` answers 404 (Odoo versions that dropped it).
///
/// `before_each_request` runs before each of the (one or two) requests, so a caller's
/// pacing covers the fallback too.
pub async fn discover_version<F, Fut>(
    endpoint: &Endpoint,
    before_each_request: F,
) -> Result<ServerVersion, Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    before_each_request().await;
    match jsonrpc::common_version(endpoint).await {
        Err(Error::Http { status: 404, .. }) => {
            before_each_request().await;
            web_version(endpoint).await
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_from_strings_and_info() {
        let v = ServerVersion::parse("saas~18.2+e").unwrap();
        assert_eq!((v.major, v.minor, v.is_saas), (18, 2, true));
        let v = ServerVersion::parse("17.0+e").unwrap();
        assert_eq!((v.major, v.minor, v.is_saas), (17, 0, false));
        assert!(ServerVersion::parse("unknown").is_none());

        let v = ServerVersion::from_parts(
            Some("saas~18.2+e"),
            Some(&json!(["saas~18", 2, 0, "final", 0, "e"])),
        )
        .unwrap();
        assert_eq!((v.major, v.minor, v.is_saas), (18, 2, true));
        assert_eq!(v.raw, "saas~18.2+e");
        let v = ServerVersion::from_parts(None, Some(&json!([19, 0, 0, "final", 0, ""]))).unwrap();
        assert_eq!((v.major, v.minor, v.raw.as_str()), (19, 0, "19.0"));
        assert_eq!(v.preferred_protocol(), Protocol::Json2);
        let v = ServerVersion::from_parts(Some("16.0"), Some(&json!("garbage"))).unwrap();
        assert_eq!(v.major, 16);
        assert_eq!(v.preferred_protocol(), Protocol::JsonRpc);
    }

    #[test]
    fn kwargs_carry_ids_and_context_without_duplicates() {
        let kwargs = json!({"fields": ["name"], "context": {"lost": true}, "ids": [9]});
        let context = json!({"lang": "fr_FR"});
        let body = Kwargs {
            ids: Some(&[1, 2]),
            kwargs: kwargs.as_object().unwrap(),
            context: context.as_object().unwrap(),
            skip: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"ids": [1, 2], "fields": ["name"], "context": {"lang": "fr_FR"}})
        );
        let ids = |ids: Option<&[i64]>| {
            serde_json::to_value(PositionalArgs { ids, value: None }).unwrap()
        };
        assert_eq!(ids(Some(&[3])), json!([[3]]));
        assert_eq!(ids(None), json!([]));
    }

    #[test]
    fn a_positional_keyword_moves_from_the_kwargs_to_the_args() {
        let kwargs = json!({"vals_list": [{"name": "A"}]});
        let kwargs = kwargs.as_object().unwrap();
        let context = Map::new();
        let call = Call {
            model: "res.partner",
            method: "create",
            ids: None,
            kwargs,
            context: &context,
            positional: Some("vals_list"),
        };
        assert_eq!(
            serde_json::to_value(PositionalArgs::of(&call)).unwrap(),
            json!([[{"name": "A"}]])
        );
        let rest = Kwargs {
            ids: None,
            kwargs,
            context: &context,
            skip: call.positional,
        };
        assert_eq!(serde_json::to_value(&rest).unwrap(), json!({}));
    }

    #[test]
    fn names_are_checked_before_they_reach_a_path() {
        assert!(validate_name("model", "sale.order").is_ok());
        assert!(validate_name("method", "action_confirm").is_ok());
        for bad in ["", "sale/order", "../x", "a b", "x?y"] {
            assert!(validate_name("model", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls_are_validated_and_credentials_kept_out_of_texts() {
        let key = ApiKey::new("k");
        let config = |base_url| EndpointConfig {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            base_url,
            database: "db",
            login: "admin",
            api_key: &key,
            timeout: Duration::from_secs(5),
            user_agent: DEFAULT_USER_AGENT,
            http: None,
        };
        let endpoint = Endpoint::new(&config("https://user:pw@odoo.example.com/erp/")).unwrap();
        assert_eq!(endpoint.display_url(), "https://odoo.example.com/erp");
        assert_eq!(
            endpoint.inner.base_url,
            "https://user:pw@odoo.example.com/erp"
        );
        for bad in [
            "odoo.example.com",
            "ftp://x",
            "https://x/?a=1",
            "not a url",
            "https://user:pw@x/web",
            "user:pw@x",
        ] {
            match Endpoint::new(&config(bad)) {
                Err(error @ Error::InvalidRequest { .. }) => {
                    assert!(!error.to_string().contains("pw"), "{bad}: {error}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn pages_of_odoo_are_refused_with_the_base_url_to_use() {
        for page in [
            "https://lejuste.odoo.com/web",
            "https://lejuste.odoo.com/web/login?redirect=%2Fodoo",
            "https://lejuste.odoo.com/odoo",
            "https://lejuste.odoo.com/odoo/action-123",
            "https://lejuste.odoo.com/jsonrpc",
            "https://lejuste.odoo.com/json/2/res.partner/search_read",
            "https://lejuste.odoo.com/web#action=12&model=sale.order",
        ] {
            let message = check_base_url(page).unwrap_err().to_string();
            assert!(
                message.contains("points to a page of Odoo")
                    && message.ends_with("use https://lejuste.odoo.com"),
                "{page}: {message}"
            );
        }
        let message = check_base_url("https://erp.example.com:8443/erp?db=x")
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with("use https://erp.example.com:8443/erp"),
            "{message}"
        );
        // A reverse-proxy prefix that is not one of Odoo's pages is a base URL.
        assert_eq!(
            check_base_url(" http://10.0.0.5:8069/erp/ ").unwrap(),
            "http://10.0.0.5:8069/erp"
        );
        assert_eq!(
            check_base_url("https://lejuste.odoo.com/").unwrap(),
            "https://lejuste.odoo.com"
        );
    }
}
