//! Calls to Cartona's supplier API: pages of `order/pull-orders`, and POSTs to
//! `order/update-order-status/{hashed_id}`, each with the `AuthorizationToken` header.
//! Failures are classified as the webhook sender classifies them (network, timeout, 4xx,
//! 5xx, rate limited), so the outbox retries a status POST like any packet. The token is
//! never in an error text: an answer echoing it has it replaced.

use crate::store::SecretValue;
use crate::webhook::sender::{classify_status, display_url, excerpt, read_prefix, unanswered};
use crate::webhook::{Delivered, DeliveryError, FailureClass};
use jiff::Timestamp;
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::Value;
use std::time::Duration;

pub const TOKEN_HEADER: &str = "AuthorizationToken";
/// Orders asked for per page (the public module's value); Cartona may send fewer.
pub const PER_PAGE: u32 = 100;
/// The most of an answer read: a page of 100 orders is far below.
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_ERROR_BODY: usize = 512;

/// A call that did not succeed; its text names the endpoint, never the token.
pub type CartonaError = DeliveryError;

/// One page of `pull-orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledPage {
    pub orders: Vec<Value>,
}

/// Cartona for one supplier: base URL and token, over a shared HTTP client.
#[derive(Clone)]
pub struct CartonaClient {
    http: reqwest::Client,
    base: String,
    token: SecretValue,
    timeout: Duration,
}

impl std::fmt::Debug for CartonaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CartonaClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CartonaClient {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        token: SecretValue,
        timeout: Duration,
    ) -> CartonaClient {
        CartonaClient {
            http,
            base: api_url.trim_end_matches('/').to_owned(),
            token,
            timeout,
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, CartonaError> {
        let mut url = Url::parse(&self.base)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                DeliveryError::before_sending(
                    FailureClass::NetworkError,
                    false,
                    "the marketplace API URL is not an http(s) URL",
                )
            })?;
        url.path_segments_mut()
            .map_err(|()| {
                DeliveryError::before_sending(
                    FailureClass::NetworkError,
                    false,
                    "the marketplace API URL cannot take a path",
                )
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn headers(&self) -> Result<HeaderMap, CartonaError> {
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut token = HeaderValue::from_str(self.token.expose()).map_err(|_| {
            DeliveryError::before_sending(
                FailureClass::SchemaError,
                true,
                "the marketplace API token cannot be sent in an HTTP header",
            )
        })?;
        token.set_sensitive(true);
        headers.insert(TOKEN_HEADER, token);
        Ok(headers)
    }

    /// Page `page` (from 1) of the orders updated within `[from, to]`.
    pub async fn pull_orders(
        &self,
        page: u32,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<PulledPage, CartonaError> {
        self.pull_page(page, PER_PAGE, from, to).await
    }

    /// One call that proves the URL and the token (`marketplace test`): page 1 of the last
    /// day's orders, one order at most.
    pub async fn probe(&self, now: Timestamp) -> Result<PulledPage, CartonaError> {
        let from = now - jiff::SignedDuration::from_hours(24);
        self.pull_page(1, 1, from, now).await
    }

    async fn pull_page(
        &self,
        page: u32,
        per_page: u32,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<PulledPage, CartonaError> {
        let mut url = self.url(&["order", "pull-orders"])?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string())
            .append_pair("from", &format!("{:.0}", from))
            .append_pair("to", &format!("{:.0}", to));
        let request = self.http.get(url.clone()).headers(self.headers()?);
        let body = self.call(request, &url).await?;
        let value: Value = serde_json::from_slice(&body.1).map_err(|error| {
            DeliveryError::before_sending(
                FailureClass::SchemaError,
                false,
                format!(
                    "{} answered something that is not JSON: {error}",
                    display_url(&url)
                ),
            )
        })?;
        let orders = match value {
            Value::Array(orders) => orders,
            Value::Object(mut object) => match object.remove("data") {
                Some(Value::Array(orders)) => orders,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => return Err(not_a_list(&url)),
            },
            _ => return Err(not_a_list(&url)),
        };
        Ok(PulledPage { orders })
    }

    /// POSTs `body` (the exact bytes) as the status of order `hashed_id`.
    pub async fn post_status(
        &self,
        hashed_id: &str,
        body: &str,
    ) -> Result<Delivered, CartonaError> {
        self.post(&["order", "update-order-status", hashed_id], body)
            .await
    }

    /// POSTs `body` (a JSON list of products, the exact bytes) to
    /// `supplier-product/bulk-update`.
    pub async fn post_catalog(&self, body: &str) -> Result<Delivered, CartonaError> {
        self.post(&["supplier-product", "bulk-update"], body).await
    }

    /// POSTs `body` (the exact bytes) to the endpoint `segments` name.
    async fn post(&self, segments: &[&str], body: &str) -> Result<Delivered, CartonaError> {
        let url = self.url(segments)?;
        let request = self
            .http
            .post(url.clone())
            .headers(self.headers()?)
            .body(body.to_owned());
        let (status, _) = self.call(request, &url).await?;
        Ok(Delivered { status })
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<(u16, Vec<u8>), CartonaError> {
        let shown = display_url(url);
        let mut response = match request.timeout(self.timeout).send().await {
            Ok(response) => response,
            Err(error) => return Err(unanswered(error, &shown, self.timeout)),
        };
        let status = response.status();
        if status.is_success() {
            let body = read_prefix(&mut response, MAX_BODY).await;
            return Ok((status.as_u16(), body));
        }
        let retry_after = if matches!(status.as_u16(), 429 | 503) {
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    odoo_rpc::retry::parse_retry_after(value, std::time::SystemTime::now())
                })
                .map(|wait| wait.min(Duration::from_secs(600)))
        } else {
            None
        };
        let body = read_prefix(&mut response, MAX_ERROR_BODY + self.token.expose().len()).await;
        let (class, permanent) = classify_status(status.as_u16(), retry_after.is_some());
        let text = excerpt(&body, self.token.expose(), MAX_ERROR_BODY);
        let mut message = format!("{shown} answered HTTP {status}");
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(&text);
        }
        Err(DeliveryError {
            class,
            status: Some(status.as_u16()),
            retry_after,
            permanent,
            message,
        })
    }
}

fn not_a_list(url: &Url) -> CartonaError {
    DeliveryError::before_sending(
        FailureClass::SchemaError,
        false,
        format!(
            "{} answered neither a list of orders nor an object holding one in \"data\"",
            display_url(url)
        ),
    )
}
