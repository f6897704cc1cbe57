//! Statuses coming in from the marketplace, by every way they come: its status webhook
//! (`POST /marketplace_integration/webhook/status` on the listener of `odoo-bridge run`), the
//! status an order has when it is imported, and a pulled order whose status changed. All
//! three become one inbox event of kind [`STATUS_EVENT`] with the same body, so one applier
//! ([`super::apply`]) applies them, with the inbox's retries and failed state.
//!
//! **Which marketplace.** `POST /marketplace_integration/webhook/status/{marketplace}` names
//! it (its name, or its flow id). The bare path (the public module's, which Cartona is
//! configured with) goes to the only marketplace when there is one; with several, to the one
//! whose webhook secret verifies the signature (none: 401).
//!
//! **Answers** (the inbox's [receiver](crate::inbox::receive), in its order): 404 no such
//! marketplace, 403 outside `--allow-from`, 429 beyond the per-source rate, 413 over 64 KiB,
//! 401 a missing or bad Standard Webhooks signature, 400 a body that is not JSON, names no
//! order or carries an unknown status; then 202 once stored (200 for a `webhook-id` already
//! stored), and 503 when the store cannot take it (the sender keeps it and retries).

use super::status::MarketplaceStatus;
use crate::inbox::receive::{
    self, EventShape, INBOUND_SECRET, InboundPolicy, InboundRequest, MAX_ATTEMPTS, MAX_BODY,
    Receiver, Refusal,
};
use crate::store::{FlowKind, InboxStore, NewInboundEvent, Received, Store, StoreError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// The inbox kind of a marketplace status, whichever way it came.
pub const STATUS_EVENT: &str = "marketplace.status";
/// The public module's path, which Cartona posts statuses to.
pub const WEBHOOK_PATH: &str = "/marketplace_integration/webhook/status";

/// Where a status came from, in its inbox event id and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The order's status when it was imported.
    Import,
    /// A pulled order whose status differs from the last one seen.
    Pull,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Import => "import",
            Origin::Pull => "pull",
        }
    }
}

/// One status for one order, as the marketplace sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub hashed_id: String,
    pub status: MarketplaceStatus,
}

impl StatusUpdate {
    /// Reads `{"hashed_id": H, "status": S}`, also the public module's `order_id` / `id` for
    /// the order (a string or a whole number) and `order_status` for the status. The error
    /// names what is wrong (it is the 400's text).
    pub fn parse(body: &Value) -> Result<StatusUpdate, String> {
        let Some(object) = body.as_object() else {
            return Err("the body must be a JSON object".to_owned());
        };
        let hashed_id = ["hashed_id", "order_id", "id"]
            .iter()
            .find_map(|key| match object.get(*key) {
                Some(Value::String(text)) if !text.trim().is_empty() => {
                    Some(text.trim().to_owned())
                }
                Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
                    Some(number.to_string())
                }
                _ => None,
            })
            .ok_or("the order is missing: give \"hashed_id\" (or \"order_id\" / \"id\")")?;
        let text = ["status", "order_status"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_str))
            .ok_or("the status is missing: give \"status\" (or \"order_status\")")?;
        let status = MarketplaceStatus::parse(text).ok_or_else(|| {
            let known: Vec<&str> = MarketplaceStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!(
                "unknown status {:?}: one of {}",
                truncate(text, 40),
                known.join(", ")
            )
        })?;
        Ok(StatusUpdate { hashed_id, status })
    }

    /// The body an event of [`Origin::Import`] or [`Origin::Pull`] carries.
    pub fn body(&self) -> String {
        json!({"hashed_id": self.hashed_id, "status": self.status.as_str()}).to_string()
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The receiver's event shape for a status body.
pub fn status_shape(body: &Value) -> Result<EventShape, String> {
    let update = StatusUpdate::parse(body)?;
    Ok(EventShape {
        kind: STATUS_EVENT.to_owned(),
        subject: Some(update.hashed_id),
    })
}

/// Puts a status the pull found (at import, or changed since) in the flow's inbox, once per
/// (origin, order, status): pulls that see it again add nothing.
pub async fn enqueue<S: InboxStore>(
    store: &S,
    flow_id: &str,
    update: &StatusUpdate,
    origin: Origin,
    now: Timestamp,
) -> Result<Received, StoreError> {
    store
        .receive(&NewInboundEvent {
            flow_id: flow_id.to_owned(),
            event_id: format!("{}:{}:{}", origin.as_str(), update.hashed_id, update.status),
            kind: STATUS_EVENT.to_owned(),
            subject: Some(update.hashed_id.clone()),
            source: origin.as_str().to_owned(),
            headers: Map::new(),
            body: update.body(),
            max_attempts: MAX_ATTEMPTS,
            received_at: now,
        })
        .await
}

/// The status webhook's routes, with [`MAX_BODY`] as their body limit. Merge them into the
/// daemon's router before [`crate::http::layers`].
pub fn routes<S: Store>(receiver: Receiver<S>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive_any::<S>))
        .route(
            &format!("{WEBHOOK_PATH}/{{marketplace}}"),
            post(receive_named::<S>),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

async fn receive_named<S: Store>(
    State(receiver): State<Receiver<S>>,
    Path(marketplace): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flow_id = match named_flow(&receiver, &marketplace).await {
        Ok(flow_id) => flow_id,
        Err(refusal) => return receive::answer(Err(refusal)),
    };
    let request = InboundRequest {
        peer: peer.ip(),
        headers: &headers,
        body: &body,
    };
    receive::answer(
        receiver
            .receive(&flow_id, request, |_, body| status_shape(body))
            .await,
    )
}

async fn receive_any<S: Store>(
    State(receiver): State<Receiver<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flow_id = match signed_flow(&receiver, &headers, &body).await {
        Ok(flow_id) => flow_id,
        Err(refusal) => return receive::answer(Err(refusal)),
    };
    let request = InboundRequest {
        peer: peer.ip(),
        headers: &headers,
        body: &body,
    };
    receive::answer(
        receiver
            .receive(&flow_id, request, |_, body| status_shape(body))
            .await,
    )
}

/// The marketplace flows that take statuses in (they have a webhook secret).
async fn marketplaces<S: Store>(
    receiver: &Receiver<S>,
) -> Result<Vec<crate::store::Flow>, Refusal> {
    let flows = receiver.store().flows(None).await.map_err(|error| {
        tracing::error!(error = %error, "cannot read the marketplaces for an inbound status");
        Refusal::Unavailable
    })?;
    Ok(flows
        .into_iter()
        .filter(|flow| flow.kind == FlowKind::Marketplace)
        .collect())
}

/// The flow named by the path: a marketplace's flow id, or its name.
async fn named_flow<S: Store>(receiver: &Receiver<S>, name: &str) -> Result<String, Refusal> {
    let flows = marketplaces(receiver).await?;
    flows
        .iter()
        .find(|flow| flow.id == name)
        .or_else(|| flows.iter().find(|flow| flow.name == name))
        .map(|flow| flow.id.clone())
        .ok_or(Refusal::NotFound)
}

/// The only marketplace, or the one whose secret signed the request.
async fn signed_flow<S: Store>(
    receiver: &Receiver<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Refusal> {
    let flows = marketplaces(receiver).await?;
    if let [only] = flows.as_slice() {
        return Ok(only.id.clone());
    }
    let mut last_error = None;
    for flow in &flows {
        if !flow.secrets.contains_key(INBOUND_SECRET)
            && !flow.secrets.contains_key(super::settings::WEBHOOK_SECRET)
        {
            continue;
        }
        let Ok(Some(policy)) = InboundPolicy::of(flow, receiver.clock()) else {
            continue;
        };
        match policy.verify(headers, body) {
            Ok(()) => return Ok(flow.id.clone()),
            Err(error) => last_error = Some(error),
        }
    }
    match last_error {
        Some(error) => Err(Refusal::Unauthorized(error)),
        None => Err(Refusal::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<StatusUpdate, String> {
        StatusUpdate::parse(&body)
    }

    #[test]
    fn the_public_modules_field_names_are_read_too() {
        let expected = StatusUpdate {
            hashed_id: "H1".to_owned(),
            status: MarketplaceStatus::Approved,
        };
        assert_eq!(
            parse(json!({"hashed_id": "H1", "status": "approved"})),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(json!({"order_id": "H1", "order_status": "approved"})),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(json!({"id": " H1 ", "status": "Approved"})),
            Ok(expected)
        );
        assert_eq!(
            parse(json!({"id": 42, "status": "return"})).map(|u| (u.hashed_id, u.status)),
            Ok(("42".to_owned(), MarketplaceStatus::Returned))
        );
    }

    #[test]
    fn a_body_without_an_order_or_a_known_status_is_refused_with_the_reason() {
        assert!(
            parse(json!(["H1", "approved"]))
                .unwrap_err()
                .contains("object")
        );
        assert!(
            parse(json!({"status": "approved"}))
                .unwrap_err()
                .contains("hashed_id")
        );
        assert!(
            parse(json!({"hashed_id": "", "status": "approved"}))
                .unwrap_err()
                .contains("hashed_id")
        );
        assert!(
            parse(json!({"hashed_id": "H1"}))
                .unwrap_err()
                .contains("status")
        );
        let unknown = parse(json!({"hashed_id": "H1", "status": "done"})).unwrap_err();
        assert!(unknown.contains("unknown status \"done\""), "{unknown}");
        assert!(parse(json!({"hashed_id": "H1", "status": "synced"})).is_err());
    }

    #[test]
    fn the_body_of_a_pulled_status_reads_back() {
        let update = StatusUpdate {
            hashed_id: "H9".to_owned(),
            status: MarketplaceStatus::CancelledBySupplier,
        };
        let body: Value = serde_json::from_str(&update.body()).unwrap();
        assert_eq!(StatusUpdate::parse(&body), Ok(update));
    }
}
