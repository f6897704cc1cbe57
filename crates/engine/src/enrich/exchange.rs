//! One POST of one packet to a job's endpoint, and the answer read back.
//!
//! The request carries `Content-Type: application/json`, `X-Odoo-Bridge-Environment`, and,
//! when the job has a `secret_env`, the [Standard Webhooks](crate::webhook::signature)
//! headers (`webhook-id` is the packet id). Failures take the webhook sender's classes
//! (`network_error`, `timeout`, `http_4xx`, `http_5xx`, `rate_limited`,
//! [`classify_status`]); a 2xx whose body is not JSON is an `upstream_error`.

use crate::webhook::sender::{
    classify_status, display_url, excerpt, read_prefix, scrub, unanswered,
};
use crate::webhook::signature::{self, WebhookSecret};
use crate::webhook::{DeliveryError, FailureClass};
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::time::{Duration, SystemTime};

pub use crate::webhook::sender::HEADER_ENVIRONMENT;

/// The largest answer read: a service answering more is broken.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The most of a refusal's body kept in its error text.
const MAX_ERROR_BODY: usize = 512;

/// A packet ready to go.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub endpoint: &'a str,
    pub packet_id: &'a str,
    pub environment: &'a str,
    pub body: &'a str,
    pub secret: Option<&'a WebhookSecret>,
    pub timeout: Duration,
}

/// The service's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// POSTs the packet with `client` (the webhook sender's: no redirects followed) and reads
/// the answer.
pub async fn exchange(
    client: &reqwest::Client,
    outgoing: Outgoing<'_>,
) -> Result<Answer, DeliveryError> {
    let url = match Url::parse(outgoing.endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return Err(DeliveryError::before_sending(
                FailureClass::NetworkError,
                false,
                "the endpoint is not an http(s) URL",
            ));
        }
    };
    let shown = display_url(&url);
    let headers = headers(outgoing, signature::unix_seconds(SystemTime::now()))?;
    let sent = client
        .post(url)
        .headers(headers)
        .body(outgoing.body.to_owned())
        .timeout(outgoing.timeout)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            let mut failure = unanswered(error, &format!("endpoint {shown}"), outgoing.timeout);
            failure.message = scrub(failure.message, secret_text(outgoing.secret));
            return Err(failure);
        }
    };
    let status = response.status().as_u16();
    // One byte past the limit tells a body at the limit from a longer one.
    let body = read_prefix(&mut response, MAX_ANSWER_BYTES + 1).await;
    if !(200..300).contains(&status) {
        let retry_after = response.headers().contains_key(header::RETRY_AFTER);
        let (class, permanent) = classify_status(status, retry_after);
        let excerpt = excerpt(&body, secret_text(outgoing.secret), MAX_ERROR_BODY);
        let mut message = format!("endpoint {shown} answered HTTP {status}");
        if !excerpt.is_empty() {
            message.push_str(": ");
            message.push_str(&excerpt);
        }
        return Err(DeliveryError {
            class,
            status: Some(status),
            retry_after: None,
            permanent,
            message,
        });
    }
    let upstream = |message: String| DeliveryError {
        class: FailureClass::UpstreamError,
        status: Some(status),
        retry_after: None,
        permanent: false,
        message,
    };
    if body.len() > MAX_ANSWER_BYTES {
        return Err(upstream(format!(
            "endpoint {shown} answered HTTP {status} with more than {MAX_ANSWER_BYTES} bytes"
        )));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(answer) => Ok(Answer {
            status,
            body: answer,
        }),
        Err(problem) => Err(upstream(format!(
            "endpoint {shown} answered HTTP {status} with a body that is not JSON ({problem}): {}",
            excerpt(&body, secret_text(outgoing.secret), MAX_ERROR_BODY)
        ))),
    }
}

fn headers(outgoing: Outgoing<'_>, timestamp: i64) -> Result<HeaderMap, DeliveryError> {
    let invalid = |what: &str| {
        DeliveryError::before_sending(
            FailureClass::SchemaError,
            true,
            format!("{what} cannot be sent in an HTTP header"),
        )
    };
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        HeaderName::from_static(HEADER_ENVIRONMENT),
        HeaderValue::from_str(outgoing.environment).map_err(|_| invalid("the environment"))?,
    );
    if let Some(secret) = outgoing.secret {
        let signed = signature::sign(
            &[secret],
            outgoing.packet_id,
            timestamp,
            outgoing.body.as_bytes(),
        );
        headers.insert(
            HeaderName::from_static(signature::HEADER_ID),
            HeaderValue::from_str(&signed.id).map_err(|_| invalid("the packet id"))?,
        );
        headers.insert(
            HeaderName::from_static(signature::HEADER_TIMESTAMP),
            HeaderValue::from(signed.timestamp),
        );
        headers.insert(
            HeaderName::from_static(signature::HEADER_SIGNATURE),
            HeaderValue::from_str(&signed.signature).map_err(|_| invalid("the signature"))?,
        );
    }
    Ok(headers)
}

fn secret_text(secret: Option<&WebhookSecret>) -> &str {
    secret.map_or("", WebhookSecret::expose)
}
