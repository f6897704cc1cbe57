//! What went wrong with a packet, classified once.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The class of every failure a packet can meet, as stored with the packet, shown by the
/// CLI and counted in metrics. `as_str` gives the stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FailureClass {
    /// No answer: DNS, connection refused or reset, TLS, the connection cut mid-answer.
    #[serde(rename = "network_error")]
    NetworkError,
    /// No complete answer within the call's timeout.
    #[serde(rename = "timeout")]
    Timeout,
    /// The receiver refused the packet (4xx other than 429, and an unfollowed 3xx).
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// The receiver failed (5xx other than a 503 with `Retry-After`).
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// The receiver asked us to slow down: 429, or 503 with `Retry-After`.
    #[serde(rename = "rate_limited")]
    RateLimited,
    /// The payload did not match its JSON Schema (raised before sending).
    #[serde(rename = "schema_error")]
    SchemaError,
    /// Odoo failed while the packet was being built (raised before sending).
    #[serde(rename = "odoo_error")]
    OdooError,
    /// Our own store failed (raised before sending, or while recording).
    #[serde(rename = "store_error")]
    StoreError,
    /// Writing an answer back into Odoo failed (enrichment; raised after the answer).
    #[serde(rename = "writeback_error")]
    WritebackError,
    /// The receiver said yes (2xx) but its answer is not what a service answers: not JSON,
    /// or not readable (enrichment).
    #[serde(rename = "upstream_error")]
    UpstreamError,
}

impl FailureClass {
    /// Every class, in the order above.
    pub const ALL: [FailureClass; 10] = [
        FailureClass::NetworkError,
        FailureClass::Timeout,
        FailureClass::Http4xx,
        FailureClass::Http5xx,
        FailureClass::RateLimited,
        FailureClass::SchemaError,
        FailureClass::OdooError,
        FailureClass::StoreError,
        FailureClass::WritebackError,
        FailureClass::UpstreamError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::NetworkError => "network_error",
            FailureClass::Timeout => "timeout",
            FailureClass::Http4xx => "http_4xx",
            FailureClass::Http5xx => "http_5xx",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::SchemaError => "schema_error",
            FailureClass::OdooError => "odoo_error",
            FailureClass::StoreError => "store_error",
            FailureClass::WritebackError => "writeback_error",
            FailureClass::UpstreamError => "upstream_error",
        }
    }

    /// What the failure says about the webhook target, for its circuit breaker.
    pub fn target_health(self) -> TargetHealth {
        match self {
            FailureClass::NetworkError
            | FailureClass::Timeout
            | FailureClass::Http5xx
            | FailureClass::RateLimited => TargetHealth::Failing,
            // The receiver answered, deliberately: it is up, our packet was the problem.
            FailureClass::Http4xx => TargetHealth::Answering,
            // It answered 2xx, however badly: it is up. A failing answer repeats per record,
            // where the record's own breaker stops it.
            FailureClass::UpstreamError => TargetHealth::Answering,
            // Raised before anything was sent, or after the answer, on our side or Odoo's:
            // the target's health is not in question.
            FailureClass::SchemaError
            | FailureClass::OdooError
            | FailureClass::StoreError
            | FailureClass::WritebackError => TargetHealth::NotInvolved,
        }
    }
}

/// What an outcome says about the webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// The target answered (a 2xx, or a 4xx refusing our packet).
    Answering,
    /// The target is unreachable, slow, failing or overloaded.
    Failing,
    /// The target was not contacted.
    NotInvolved,
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the class names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure class {0:?}")]
pub struct UnknownFailureClass(pub String);

impl FromStr for FailureClass {
    type Err = UnknownFailureClass;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FailureClass::ALL
            .into_iter()
            .find(|class| class.as_str() == text)
            .ok_or_else(|| UnknownFailureClass(text.to_owned()))
    }
}

/// A delivery that did not succeed. Its text never carries the secret, nor the URL's
/// credentials or query, and at most [`super::sender::SenderConfig::max_error_body`] bytes of
/// the receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// The failure's class.
    pub class: FailureClass,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// The receiver's `Retry-After` (429 and 503 only), already clamped.
    pub retry_after: Option<Duration>,
    /// Sending the same packet again cannot succeed (410 Gone, most 4xx).
    pub permanent: bool,
    /// What happened, for the operator.
    pub message: String,
}

impl DeliveryError {
    /// Raised before sending: a payload that failed its schema, or an Odoo failure while
    /// building it. Permanent unless `permanent` says otherwise.
    pub fn before_sending(
        class: FailureClass,
        permanent: bool,
        message: impl Into<String>,
    ) -> Self {
        DeliveryError {
            class,
            status: None,
            retry_after: None,
            permanent,
            message: message.into(),
        }
    }

    /// Whether the packet may be sent again later.
    pub fn is_retryable(&self) -> bool {
        !self.permanent
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_round_trip() {
        let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "network_error",
                "timeout",
                "http_4xx",
                "http_5xx",
                "rate_limited",
                "schema_error",
                "odoo_error",
                "store_error",
                "writeback_error",
                "upstream_error"
            ]
        );
        for class in FailureClass::ALL {
            assert_eq!(class.as_str().parse::<FailureClass>(), Ok(class));
            assert_eq!(class.to_string(), class.as_str());
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            assert_eq!(serde_json::from_str::<FailureClass>(&json).unwrap(), class);
        }
        assert!("http4xx".parse::<FailureClass>().is_err());
    }

    #[test]
    fn only_target_failures_count_against_the_target() {
        let failing: Vec<FailureClass> = FailureClass::ALL
            .into_iter()
            .filter(|c| c.target_health() == TargetHealth::Failing)
            .collect();
        assert_eq!(
            failing,
            [
                FailureClass::NetworkError,
                FailureClass::Timeout,
                FailureClass::Http5xx,
                FailureClass::RateLimited
            ]
        );
    }
}
