//! One error type for every way a call to Odoo can fail, classified once: whether to retry,
//! whether a resend is safe, whether the credentials were refused.
//!
//! Display texts are meant for an operator. They never contain the API key nor Odoo's
//! traceback (`error.data.debug`), which is only emitted through `tracing::debug!`.

use std::fmt;
use std::time::Duration;

/// The longest body excerpt an error carries.
pub const EXCERPT_LEN: usize = 200;

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// No connection could be made (DNS, refused, unreachable, connect timeout): the request
    /// never left, so resending it is always safe.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The call exceeded its timeout; Odoo may still be running it.
    Timeout,
    /// The connection broke while sending the request or reading the answer.
    ConnectionClosed,
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connect",
            TransportKind::Tls => "TLS",
            TransportKind::Timeout => "timeout",
            TransportKind::ConnectionClosed => "connection closed",
            TransportKind::Other => "transport",
        })
    }
}

/// The failure classes of the `werkzeug.exceptions` Odoo forwards (`NotFound`,
/// `TooManyRequests`, …); an unknown class keeps its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WerkzeugKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    UnprocessableEntity,
    TooManyRequests,
    InternalServerError,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
    Other(String),
}

impl WerkzeugKind {
    /// From the class name without its module (`"NotFound"`).
    pub fn from_class(class: &str) -> WerkzeugKind {
        match class {
            "BadRequest" => WerkzeugKind::BadRequest,
            "Unauthorized" => WerkzeugKind::Unauthorized,
            "Forbidden" => WerkzeugKind::Forbidden,
            "NotFound" => WerkzeugKind::NotFound,
            "MethodNotAllowed" => WerkzeugKind::MethodNotAllowed,
            "RequestTimeout" => WerkzeugKind::RequestTimeout,
            "Conflict" => WerkzeugKind::Conflict,
            "UnprocessableEntity" => WerkzeugKind::UnprocessableEntity,
            "TooManyRequests" => WerkzeugKind::TooManyRequests,
            "InternalServerError" => WerkzeugKind::InternalServerError,
            "BadGateway" => WerkzeugKind::BadGateway,
            "ServiceUnavailable" => WerkzeugKind::ServiceUnavailable,
            "GatewayTimeout" => WerkzeugKind::GatewayTimeout,
            other => WerkzeugKind::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            WerkzeugKind::BadRequest => "BadRequest",
            WerkzeugKind::Unauthorized => "Unauthorized",
            WerkzeugKind::Forbidden => "Forbidden",
            WerkzeugKind::NotFound => "NotFound",
            WerkzeugKind::MethodNotAllowed => "MethodNotAllowed",
            WerkzeugKind::RequestTimeout => "RequestTimeout",
            WerkzeugKind::Conflict => "Conflict",
            WerkzeugKind::UnprocessableEntity => "UnprocessableEntity",
            WerkzeugKind::TooManyRequests => "TooManyRequests",
            WerkzeugKind::InternalServerError => "InternalServerError",
            WerkzeugKind::BadGateway => "BadGateway",
            WerkzeugKind::ServiceUnavailable => "ServiceUnavailable",
            WerkzeugKind::GatewayTimeout => "GatewayTimeout",
            WerkzeugKind::Other(name) => name,
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(
            self,
            WerkzeugKind::TooManyRequests
                | WerkzeugKind::ServiceUnavailable
                | WerkzeugKind::BadGateway
                | WerkzeugKind::GatewayTimeout
        )
    }
}

/// What kind of exception Odoo raised, derived from `error.data.name` (JSON-RPC) or `name`
/// (JSON-2). The JSON-RPC `code` is not used: Odoo sends 0 or 200 for most server errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OdooErrorKind {
    /// `odoo.exceptions.AccessDenied`: the credentials were refused.
    AccessDenied,
    /// `odoo.exceptions.AccessError`: the user may not do this.
    AccessError,
    ValidationError,
    UserError,
    /// `odoo.exceptions.MissingError`: the record was deleted (or never existed).
    MissingError,
    RedirectWarning,
    /// `odoo.exceptions.LockError`: a row lock could not be taken; the transaction was
    /// rolled back.
    LockError,
    /// `odoo.http.SessionExpiredException`.
    SessionExpired,
    /// `AccessDenied` "Too many login failures": Odoo's per-IP login back-off (60 s by
    /// default), not a wrong key.
    LoginCooldown,
    /// A PostgreSQL serialization failure or lock timeout that outlived Odoo's own retries;
    /// the transaction was rolled back.
    Concurrency,
    /// A `werkzeug.exceptions.*` HTTP exception forwarded as an Odoo error.
    Werkzeug(WerkzeugKind),
    /// `builtins.ValueError`, e.g. "Invalid field 'foo' on model 'sale.order'".
    ValueError,
    Other,
}

const CONCURRENCY_NAMES: [&str; 7] = [
    "psycopg2.errors.SerializationFailure",
    "psycopg2.extensions.TransactionRollbackError",
    "psycopg2.errors.LockNotAvailable",
    "psycopg2.errors.DeadlockDetected",
    "psycopg.errors.SerializationFailure",
    "psycopg.errors.LockNotAvailable",
    "odoo.exceptions.ConcurrencyError",
];

const SERIALIZATION_FAILURE_TEXT: &str = "could not serialize access due to concurrent update";
const LOGIN_COOLDOWN_TEXT: &str = "Too many login failures";

/// Odoo's login cooldown is per source IP and lasts 60 s unless configured otherwise.
const LOGIN_COOLDOWN: Duration = Duration::from_secs(60);

impl OdooErrorKind {
    /// Classifies an Odoo exception by its Python class path; the message is only looked at
    /// to tell a login cooldown from a refused key and to catch serialization failures that
    /// Odoo re-raised under another class.
    pub fn classify(name: &str, message: &str) -> OdooErrorKind {
        if CONCURRENCY_NAMES.contains(&name) || message.contains(SERIALIZATION_FAILURE_TEXT) {
            return OdooErrorKind::Concurrency;
        }
        if let Some(class) = name.strip_prefix("werkzeug.exceptions.") {
            return OdooErrorKind::Werkzeug(WerkzeugKind::from_class(class));
        }
        match name {
            "odoo.exceptions.AccessDenied" if message.contains(LOGIN_COOLDOWN_TEXT) => {
                OdooErrorKind::LoginCooldown
            }
            "odoo.exceptions.AccessDenied" => OdooErrorKind::AccessDenied,
            "odoo.exceptions.AccessError" => OdooErrorKind::AccessError,
            "odoo.exceptions.ValidationError" => OdooErrorKind::ValidationError,
            // `Warning` and `except_orm` are the pre-14 names of UserError.
            "odoo.exceptions.UserError"
            | "odoo.exceptions.Warning"
            | "odoo.exceptions.except_orm" => OdooErrorKind::UserError,
            "odoo.exceptions.MissingError" => OdooErrorKind::MissingError,
            "odoo.exceptions.RedirectWarning" => OdooErrorKind::RedirectWarning,
            "odoo.exceptions.LockError" => OdooErrorKind::LockError,
            "odoo.http.SessionExpiredException" => OdooErrorKind::SessionExpired,
            "builtins.ValueError" | "ValueError" => OdooErrorKind::ValueError,
            _ => OdooErrorKind::Other,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            OdooErrorKind::Concurrency
            | OdooErrorKind::LockError
            | OdooErrorKind::LoginCooldown => true,
            OdooErrorKind::Werkzeug(kind) => kind.is_retryable(),
            _ => false,
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            OdooErrorKind::AccessDenied => "access_denied",
            OdooErrorKind::AccessError => "access_error",
            OdooErrorKind::ValidationError => "validation_error",
            OdooErrorKind::UserError => "user_error",
            OdooErrorKind::MissingError => "missing_error",
            OdooErrorKind::RedirectWarning => "redirect_warning",
            OdooErrorKind::LockError => "lock_error",
            OdooErrorKind::SessionExpired => "session_expired",
            OdooErrorKind::LoginCooldown => "login_cooldown",
            OdooErrorKind::Concurrency => "concurrency",
            OdooErrorKind::Werkzeug(_) => "werkzeug",
            OdooErrorKind::ValueError => "value_error",
            OdooErrorKind::Other => "odoo_other",
        }
    }
}

impl fmt::Display for OdooErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OdooErrorKind::AccessDenied => f.write_str("access denied"),
            OdooErrorKind::AccessError => f.write_str("access error"),
            OdooErrorKind::ValidationError => f.write_str("validation error"),
            OdooErrorKind::UserError => f.write_str("user error"),
            OdooErrorKind::MissingError => f.write_str("missing record"),
            OdooErrorKind::RedirectWarning => f.write_str("redirect warning"),
            OdooErrorKind::LockError => f.write_str("lock error"),
            OdooErrorKind::SessionExpired => f.write_str("session expired"),
            OdooErrorKind::LoginCooldown => f.write_str("login cooldown"),
            OdooErrorKind::Concurrency => f.write_str("concurrent update"),
            OdooErrorKind::Werkzeug(kind) => write!(f, "HTTP {}", kind.as_str()),
            OdooErrorKind::ValueError => f.write_str("invalid value"),
            OdooErrorKind::Other => f.write_str("server error"),
        }
    }
}

/// An exception raised inside Odoo, with Odoo's own message (which is meant for users and
/// safe to show). The traceback is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdooError {
    pub kind: OdooErrorKind,
    /// The Python class path, e.g. `odoo.exceptions.ValidationError`.
    pub name: String,
    pub message: String,
    /// The HTTP status (JSON-2 uses real statuses; JSON-RPC answers errors with 200).
    pub http_status: Option<u16>,
    /// The JSON-RPC `error.code`; informative only.
    pub code: Option<i64>,
}

impl OdooError {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> OdooError {
        let name = name.into();
        let message = message.into();
        OdooError {
            kind: OdooErrorKind::classify(&name, &message),
            name,
            message,
            http_status: None,
            code: None,
        }
    }
}

impl OdooError {
    /// Whether this is Odoo saying it has no database named `database`. JSON-RPC passes on
    /// PostgreSQL's own refusal (`psycopg2.OperationalError: … database "x" does not
    /// exist`); over JSON-2 the simulator answers `NotFound: Database "x" not found` (not yet
    /// checked against a real Odoo 19). The name must be ours, so that no other database
    /// trouble of the server is taken for a typo in the configuration.
    fn names_missing_database(&self, database: &str) -> bool {
        let postgres = self.name.ends_with(".OperationalError")
            && self
                .message
                .contains(&format!("database \"{database}\" does not exist"));
        let json2 = self.kind == OdooErrorKind::Werkzeug(WerkzeugKind::NotFound)
            && self
                .message
                .contains(&format!("Database \"{database}\" not found"));
        postgres || json2
    }
}

impl fmt::Display for OdooError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Odoo {}", self.kind)?;
        if !self.name.is_empty() {
            write!(f, " ({})", self.name)?;
        }
        let message = self.message.trim();
        if message.is_empty() {
            f.write_str(": (no message)")
        } else {
            write!(f, ": {message}")
        }
    }
}

impl std::error::Error for OdooError {}

/// Every failure of the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP exchange itself failed.
    #[error("cannot talk to Odoo ({kind}): {message}")]
    Transport {
        kind: TransportKind,
        message: String,
    },

    /// A non-2xx answer without an Odoo error body (a proxy page, a gateway error, a 429).
    #[error("Odoo answered HTTP {status}{}{}", retry_after_note(.retry_after), excerpt_note(.body_excerpt))]
    Http {
        status: u16,
        retry_after: Option<Duration>,
        /// At most [`EXCERPT_LEN`] characters, HTML tags stripped, the key scrubbed.
        body_excerpt: String,
    },

    /// Odoo raised an exception.
    #[error(transparent)]
    Odoo(#[from] OdooError),

    /// The database, login or API key was refused. Never retried.
    #[error("authentication failed: {message}")]
    Authentication { message: String },

    /// The answer was not what Odoo sends: invalid JSON, a missing field, an unexpected
    /// shape. Not retried, even on HTTP 200: a proxy that corrupts answers deterministically
    /// would otherwise be hammered `max_retries` times per call.
    #[error("malformed response from Odoo: {message}{}", answer_note(.excerpt))]
    MalformedResponse { message: String, excerpt: String },

    /// The request could not be built: a bad base URL, model name or argument.
    #[error("invalid request: {message}")]
    InvalidRequest { message: String },

    /// A well-formed answer did not fit the caller's type.
    #[error("cannot decode {what}: {message}")]
    Decode { what: String, message: String },
}

fn excerpt_note(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

fn answer_note(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(" (answer: {excerpt})")
    }
}

fn retry_after_note(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(delay) => format!(" (retry after {} s)", delay.as_secs()),
        None => String::new(),
    }
}

impl Error {
    /// Whether trying the same call again later may succeed. Transport failures other than
    /// TLS, HTTP 408/429/5xx, concurrency and lock conflicts, the login cooldown and the
    /// gateway-type werkzeug errors are; business errors, refused credentials and malformed
    /// answers are not. TLS failures (certificate, protocol version) do not heal by waiting.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { kind, .. } => *kind != TransportKind::Tls,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::Odoo(error) => error.kind.is_retryable(),
            Error::Authentication { .. }
            | Error::MalformedResponse { .. }
            | Error::InvalidRequest { .. }
            | Error::Decode { .. } => false,
        }
    }

    /// Whether the failed request provably had no effect, so that even a non-idempotent call
    /// (`create`, a workflow method) can be sent again: the connection was never made, the
    /// request was rejected before it ran (429, 503), or Odoo rolled the transaction back
    /// (serialization failure, lock error, login cooldown). A timeout, a closed connection, a
    /// 500/502/504 are not: Odoo may have committed before the answer was lost.
    pub fn is_safe_to_resend(&self) -> bool {
        match self {
            Error::Transport { kind, .. } => *kind == TransportKind::Connect,
            Error::Http { status, .. } => matches!(status, 429 | 503),
            Error::Odoo(error) => matches!(
                error.kind,
                OdooErrorKind::Concurrency
                    | OdooErrorKind::LockError
                    | OdooErrorKind::LoginCooldown
                    | OdooErrorKind::Werkzeug(WerkzeugKind::TooManyRequests)
                    | OdooErrorKind::Werkzeug(WerkzeugKind::ServiceUnavailable)
            ),
            _ => false,
        }
    }

    /// How long the server asked us to wait: the `Retry-After` header, or Odoo's 60 s login
    /// cooldown.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            Error::Odoo(error) if error.kind == OdooErrorKind::LoginCooldown => {
                Some(LOGIN_COOLDOWN)
            }
            _ => None,
        }
    }

    /// Whether the credentials were refused: [`Error::Authentication`] or an Odoo
    /// `AccessDenied` (not the login cooldown).
    pub fn is_authentication(&self) -> bool {
        match self {
            Error::Authentication { .. } => true,
            Error::Odoo(error) => error.kind == OdooErrorKind::AccessDenied,
            _ => false,
        }
    }

    /// Whether a cached uid may be stale: Odoo refused the call's credentials or the session.
    pub(crate) fn needs_reauthentication(&self) -> bool {
        matches!(
            self,
            Error::Odoo(OdooError {
                kind: OdooErrorKind::AccessDenied | OdooErrorKind::SessionExpired,
                ..
            })
        )
    }

    pub fn odoo(&self) -> Option<&OdooError> {
        match self {
            Error::Odoo(error) => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, when the failure came with one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::Odoo(error) => error.http_status,
            _ => None,
        }
    }

    /// A short, stable label for logs and metrics (`timeout`, `http_503`-style classes
    /// collapse to `http_5xx`, `validation_error`, …).
    pub fn class(&self) -> &'static str {
        match self {
            Error::Transport { kind, .. } => match kind {
                TransportKind::Connect => "connect",
                TransportKind::Tls => "tls",
                TransportKind::Timeout => "timeout",
                TransportKind::ConnectionClosed => "connection_closed",
                TransportKind::Other => "transport",
            },
            Error::Http { status, .. } => match status {
                408 => "http_408",
                429 => "http_429",
                400..=499 => "http_4xx",
                500..=599 => "http_5xx",
                _ => "http_other",
            },
            Error::Odoo(error) => error.kind.label(),
            Error::Authentication { .. } => "authentication",
            Error::MalformedResponse { .. } => "malformed_response",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::Decode { .. } => "decode",
        }
    }

    /// Turns Odoo's refusal of an unknown database into [`Error::Authentication`]: like a
    /// wrong login, it is the configuration's mistake, never heals by retrying, and its raw
    /// form (a PostgreSQL connection error) reads like a server failure.
    pub(crate) fn naming_database(self, database: &str) -> Error {
        match self {
            Error::Odoo(odoo) if odoo.names_missing_database(database) => Error::Authentication {
                message: format!("Odoo has no database '{database}': check the database name"),
            },
            other => other,
        }
    }

    /// For answers to requests that carried no credentials.
    pub(crate) fn malformed(message: impl Into<String>, body: &[u8]) -> Error {
        Error::malformed_scrubbed(message, body, "")
    }

    /// For answers to requests that carried `secret`, should a server echo it.
    pub(crate) fn malformed_scrubbed(
        message: impl Into<String>,
        body: &[u8],
        secret: &str,
    ) -> Error {
        Error::MalformedResponse {
            message: message.into(),
            excerpt: excerpt(body, secret),
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Error {
        Error::InvalidRequest {
            message: message.into(),
        }
    }

    /// Classifies a reqwest failure. `target` names the endpoint for the operator; it must
    /// not carry credentials.
    pub(crate) fn from_reqwest(error: reqwest::Error, target: &str) -> Error {
        let error = error.without_url();
        let message = format!("{target}: {}", describe_chain(&error));
        if error.is_builder() {
            return Error::InvalidRequest { message };
        }
        // A TLS failure surfaces as a connect error, so it is looked for first.
        let kind = if chain_has_tls_error(&error) {
            TransportKind::Tls
        } else if error.is_connect() {
            TransportKind::Connect
        } else if error.is_timeout() {
            TransportKind::Timeout
        } else if error.is_body() || error.is_decode() || error.is_request() {
            TransportKind::ConnectionClosed
        } else {
            TransportKind::Other
        };
        Error::Transport { kind, message }
    }
}

/// Joins an error and its sources ("error sending request: client error (Connect): tcp
/// connect error: Connection refused"): reqwest's own text alone says too little.
fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// tokio-rustls hands rustls errors over inside an `io::Error`, whose `source()` skips the
/// wrapped error, so each `io::Error` is opened by hand.
fn chain_has_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// Replaces the secret wherever a server echoed it back (an error message that quotes its
/// input, a proxy page), so no error text can carry it.
pub(crate) fn scrub(text: String, secret: &str) -> String {
    if !secret.is_empty() && text.contains(secret) {
        text.replace(secret, "••••")
    } else {
        text
    }
}

/// A readable excerpt of a response body, the secret (if any) replaced, at most
/// [`EXCERPT_LEN`] characters. An HTML page is named by its title only: its text is the
/// page's menus, styles and scripts (a login page's CSRF token included), never an
/// explanation worth showing. Other text has its whitespace collapsed.
pub(crate) fn excerpt(body: &[u8], secret: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let text = if text.trim_start().starts_with('<') {
        match html_title(&text) {
            Some(title) => format!("an HTML page (\"{title}\")"),
            None => "an HTML page".to_owned(),
        }
    } else {
        text.into_owned()
    };
    let collapsed = scrub(
        text.split_whitespace().collect::<Vec<_>>().join(" "),
        secret,
    );
    if collapsed.chars().count() <= EXCERPT_LEN {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_LEN - 1).collect();
    cut.push('…');
    cut
}

/// The text of the page's `<title>`, or else of its first `<h1>` (a proxy's bare error page),
/// whitespace collapsed; `None` when it has neither.
fn html_title(html: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `html`.
    let lower = html.to_ascii_lowercase();
    ["title", "h1"].into_iter().find_map(|tag| {
        let open = lower.find(&format!("<{tag}"))?;
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find(&format!("</{tag}"))?;
        let text = html[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        (!text.is_empty()).then_some(text)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn odoo(name: &str, message: &str) -> Error {
        Error::Odoo(OdooError::new(name, message))
    }

    fn http(status: u16) -> Error {
        Error::Http {
            status,
            retry_after: None,
            body_excerpt: String::new(),
        }
    }

    fn transport(kind: TransportKind) -> Error {
        Error::Transport {
            kind,
            message: "x".into(),
        }
    }

    #[test]
    fn classification_uses_the_exception_name() {
        let cases = [
            (
                "odoo.exceptions.AccessDenied",
                "Access Denied",
                OdooErrorKind::AccessDenied,
            ),
            (
                "odoo.exceptions.AccessError",
                "no",
                OdooErrorKind::AccessError,
            ),
            (
                "odoo.exceptions.ValidationError",
                "no",
                OdooErrorKind::ValidationError,
            ),
            ("odoo.exceptions.UserError", "no", OdooErrorKind::UserError),
            (
                "odoo.exceptions.MissingError",
                "gone",
                OdooErrorKind::MissingError,
            ),
            (
                "odoo.exceptions.RedirectWarning",
                "go",
                OdooErrorKind::RedirectWarning,
            ),
            (
                "odoo.exceptions.LockError",
                "locked",
                OdooErrorKind::LockError,
            ),
            (
                "odoo.http.SessionExpiredException",
                "Session expired",
                OdooErrorKind::SessionExpired,
            ),
            (
                "builtins.ValueError",
                "Invalid field 'foo' on model 'sale.order'",
                OdooErrorKind::ValueError,
            ),
            ("builtins.KeyError", "'foo'", OdooErrorKind::Other),
            (
                "psycopg2.errors.SerializationFailure",
                "x",
                OdooErrorKind::Concurrency,
            ),
            (
                "psycopg2.extensions.TransactionRollbackError",
                "x",
                OdooErrorKind::Concurrency,
            ),
            (
                "psycopg.errors.SerializationFailure",
                "x",
                OdooErrorKind::Concurrency,
            ),
            (
                "psycopg2.errors.LockNotAvailable",
                "x",
                OdooErrorKind::Concurrency,
            ),
            (
                "psycopg2.OperationalError",
                "could not serialize access due to concurrent update",
                OdooErrorKind::Concurrency,
            ),
            (
                "werkzeug.exceptions.NotFound",
                "404",
                OdooErrorKind::Werkzeug(WerkzeugKind::NotFound),
            ),
            (
                "werkzeug.exceptions.ImATeapot",
                "418",
                OdooErrorKind::Werkzeug(WerkzeugKind::Other("ImATeapot".into())),
            ),
        ];
        for (name, message, expected) in cases {
            assert_eq!(OdooErrorKind::classify(name, message), expected, "{name}");
        }
    }

    #[test]
    fn login_cooldown_is_told_apart_from_a_wrong_key() {
        let cooldown = odoo(
            "odoo.exceptions.AccessDenied",
            "Too many login failures, please wait a bit before trying again.",
        );
        assert_eq!(cooldown.odoo().unwrap().kind, OdooErrorKind::LoginCooldown);
        assert!(cooldown.is_retryable());
        assert!(!cooldown.is_authentication());
        assert_eq!(cooldown.retry_after(), Some(Duration::from_secs(60)));

        let wrong_key = odoo("odoo.exceptions.AccessDenied", "Access Denied");
        assert!(!wrong_key.is_retryable());
        assert!(wrong_key.is_authentication());
        assert!(wrong_key.needs_reauthentication());
    }

    #[test]
    fn an_unknown_database_is_an_authentication_error_naming_it() {
        let postgres = odoo(
            "psycopg2.OperationalError",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"realodo\" does not exist",
        );
        let error = postgres.clone().naming_database("realodo");
        assert!(error.is_authentication(), "{error:?}");
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            "authentication failed: Odoo has no database 'realodo': check the database name"
        );
        // Another database's trouble is the server's, not a typo of ours.
        assert_eq!(postgres.clone().naming_database("odoo"), postgres);
        let json2 = odoo("werkzeug.exceptions.NotFound", "Database \"x\" not found");
        assert!(json2.naming_database("x").is_authentication());
        let unrelated = odoo("werkzeug.exceptions.NotFound", "Model \"x\" not found");
        assert_eq!(unrelated.clone().naming_database("x"), unrelated);
    }

    #[test]
    fn retryable_errors() {
        for error in [
            transport(TransportKind::Connect),
            transport(TransportKind::Timeout),
            transport(TransportKind::ConnectionClosed),
            transport(TransportKind::Other),
            http(408),
            http(429),
            http(500),
            http(502),
            http(503),
            http(504),
            odoo("psycopg2.errors.SerializationFailure", "x"),
            odoo("odoo.exceptions.LockError", "x"),
            odoo("werkzeug.exceptions.TooManyRequests", "x"),
            odoo("werkzeug.exceptions.ServiceUnavailable", "x"),
            odoo("werkzeug.exceptions.BadGateway", "x"),
            odoo("werkzeug.exceptions.GatewayTimeout", "x"),
        ] {
            assert!(error.is_retryable(), "{error:?}");
        }
    }

    #[test]
    fn permanent_errors() {
        for error in [
            transport(TransportKind::Tls),
            http(400),
            http(401),
            http(403),
            http(404),
            http(422),
            odoo("odoo.exceptions.AccessDenied", "Access Denied"),
            odoo("odoo.exceptions.AccessError", "x"),
            odoo("odoo.exceptions.ValidationError", "x"),
            odoo("odoo.exceptions.UserError", "x"),
            odoo("odoo.exceptions.MissingError", "x"),
            odoo("odoo.http.SessionExpiredException", "x"),
            odoo("builtins.ValueError", "x"),
            odoo("werkzeug.exceptions.NotFound", "x"),
            odoo("builtins.Exception", "x"),
            Error::Authentication {
                message: "x".into(),
            },
            Error::malformed("x", b"<html>"),
            Error::invalid_request("x"),
        ] {
            assert!(!error.is_retryable(), "{error:?}");
        }
    }

    #[test]
    fn only_provably_unapplied_failures_are_safe_to_resend() {
        for safe in [
            transport(TransportKind::Connect),
            http(429),
            http(503),
            odoo("psycopg2.errors.SerializationFailure", "x"),
            odoo("odoo.exceptions.LockError", "x"),
        ] {
            assert!(safe.is_safe_to_resend(), "{safe:?}");
        }
        for unsafe_ in [
            transport(TransportKind::Timeout),
            transport(TransportKind::ConnectionClosed),
            http(500),
            http(502),
            http(504),
            odoo("odoo.exceptions.UserError", "x"),
        ] {
            assert!(!unsafe_.is_safe_to_resend(), "{unsafe_:?}");
        }
    }

    #[test]
    fn display_is_operator_friendly() {
        let error = Error::Odoo(OdooError {
            http_status: Some(422),
            ..OdooError::new("odoo.exceptions.ValidationError", "The email is invalid.")
        });
        assert_eq!(
            error.to_string(),
            "Odoo validation error (odoo.exceptions.ValidationError): The email is invalid."
        );
        let error = Error::Http {
            status: 503,
            retry_after: Some(Duration::from_secs(30)),
            body_excerpt: "Service Unavailable".into(),
        };
        assert_eq!(
            error.to_string(),
            "Odoo answered HTTP 503 (retry after 30 s): Service Unavailable"
        );
        assert_eq!(http(404).to_string(), "Odoo answered HTTP 404");
    }

    #[test]
    fn excerpts_are_short_stripped_and_scrubbed() {
        let html = b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>";
        assert_eq!(excerpt(html, ""), "an HTML page (\"502 Bad Gateway\")");
        // Odoo's login page: its scripts carry a CSRF token that must not become an error.
        let login = b"\n  <!DOCTYPE html>\n<html><head><TITLE>\n Odoo </TITLE><script>var odoo = { csrf_token: \"abc123\" };</script></head><body>Log in</body></html>";
        assert_eq!(excerpt(login, ""), "an HTML page (\"Odoo\")");
        assert_eq!(
            excerpt(b"<html><body>no title</body></html>", ""),
            "an HTML page"
        );

        let long = "é".repeat(500);
        let cut = excerpt(long.as_bytes(), "");
        assert_eq!(cut.chars().count(), EXCERPT_LEN);
        assert!(cut.ends_with('…'));

        assert_eq!(
            excerpt(
                b"{\"error\": \"key sk-secret-123 refused\"}",
                "sk-secret-123"
            ),
            "{\"error\": \"key •••• refused\"}"
        );
    }
}
