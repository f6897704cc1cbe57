//! Taking an event in over HTTP, for any flow: `POST /inbox/{flow_id}` on the listener of
//! `odoo-bridge run` (flows with their own public path, such as a marketplace's, mount
//! [`Receiver::receive`] there).
//!
//! In order, each a refusal with its own status, nothing stored for any of them:
//! 1. the flow exists and takes events in (it has an `inbound_secret`), else **404**;
//! 2. the sender's address is in the flow's `allow_from` list (when it has one), else **403**;
//! 3. the sender is within its rate (`inbound_per_minute` per source address), else **429**
//!    with `Retry-After`;
//! 4. the body is at most [`MAX_BODY`] bytes, else **413** (the route's body limit);
//! 5. the Standard Webhooks signature (`webhook-id`, `webhook-timestamp` within 5 minutes,
//!    `webhook-signature` over the raw bytes) is the flow's secret's, else **401**;
//! 6. the body is JSON, else **400**.
//!
//! Then the event is stored, deduplicated by `webhook-id`, **before** the answer: **202** for a
//! new event, **200** for one already stored. A store that cannot be written answers **503**,
//! so the sender keeps the event and sends it again.

use crate::clock::Clock;
use crate::runtime::FlowSignals;
use crate::store::{Flow, FlowKind, NewInboundEvent, Received, Store, StoreError};
use crate::webhook::{Verifier, VerifyError, WebhookSecret};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The largest inbound body accepted: 64 KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// How far a signature's timestamp may be from our clock.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);
/// Requests per minute from one source address to one flow, unless the flow says otherwise.
pub const DEFAULT_PER_MINUTE: u32 = 600;
/// The name of the flow secret that signs its inbound events.
pub const INBOUND_SECRET: &str = "inbound_secret";
/// Applications an inbound event gets before it is FAILED: the first and 5 retries.
pub const MAX_ATTEMPTS: u32 = 5;
/// Request headers kept with a stored event (never one that carries a secret).
const KEPT_HEADERS: [&str; 4] = [
    "webhook-id",
    "webhook-timestamp",
    "content-type",
    "user-agent",
];

/// How one flow takes events in, read from its secrets and settings.
#[derive(Debug)]
pub struct InboundPolicy {
    verifier: Verifier,
    allow_from: Vec<IpNet>,
    per_minute: NonZeroU32,
}

/// Why a flow's inbound settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the inbound secret is unusable: {0}")]
    Secret(#[from] crate::webhook::SecretError),
    #[error("allow_from must be a list of addresses or CIDR ranges: {0}")]
    AllowFrom(String),
    #[error("inbound_per_minute must be a positive whole number")]
    Rate,
}

impl InboundPolicy {
    /// The flow's policy: `None` when the flow takes nothing in (it has no `inbound_secret`;
    /// a marketplace's is its `webhook_secret`, the one `marketplace add` prints).
    pub fn of(flow: &Flow, clock: &Clock) -> Result<Option<InboundPolicy>, PolicyError> {
        let secret = flow.secrets.get(INBOUND_SECRET).or_else(|| {
            (flow.kind == FlowKind::Marketplace)
                .then(|| {
                    flow.secrets
                        .get(crate::marketplace::settings::WEBHOOK_SECRET)
                })
                .flatten()
        });
        let Some(secret) = secret else {
            return Ok(None);
        };
        let clock = clock.clone();
        let verifier = Verifier::new(WebhookSecret::new(secret.expose())?)
            .tolerance(SIGNATURE_TOLERANCE)
            .clock(move || SystemTime::from(clock.now()));
        let allow_from = match flow.settings.get("allow_from") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .ok_or_else(|| PolicyError::AllowFrom(item.to_string()))
                        .and_then(parse_range)
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(PolicyError::AllowFrom(other.to_string())),
        };
        let per_minute = match flow.settings.get("inbound_per_minute") {
            None | Some(Value::Null) => NonZeroU32::new(DEFAULT_PER_MINUTE),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new),
        }
        .ok_or(PolicyError::Rate)?;
        Ok(Some(InboundPolicy {
            verifier,
            allow_from,
            per_minute,
        }))
    }

    /// Checks the request's signature alone (a route that finds its flow by the signature).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        self.verifier.verify(headers, body)
    }

    fn allows(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.allow_from.is_empty() || self.allow_from.iter().any(|range| range.contains(&peer))
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`203.0.113.7`).
pub fn parse_range(text: &str) -> Result<IpNet, PolicyError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| PolicyError::AllowFrom(text.to_owned()))
}

/// An IPv4 peer seen through an IPv6 socket (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn canonical(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        IpAddr::V4(_) => peer,
    }
}

/// Why an inbound request was refused: its status and a message for the sender that names
/// what was wrong and never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such flow, or it takes no events in")]
    NotFound,
    #[error("this address may not send events to this flow")]
    Forbidden,
    #[error("too many requests; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("signature refused: {0}")]
    Unauthorized(VerifyError),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error(
        "this receiver belongs to environment {ours:?}; the event was sent from {theirs:?} (X-Odoo-Bridge-Environment): refused"
    )]
    OtherEnvironment { ours: String, theirs: String },
    #[error("the event cannot be stored right now; send it again later")]
    Unavailable,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::OtherEnvironment { .. } => StatusCode::CONFLICT,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response =
            (status, axum::Json(json!({ "error": self.to_string() }))).into_response();
        if let Refusal::RateLimited {
            retry_after_seconds,
        } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// What an event is, as the route that took it in reads it from the parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventShape {
    pub kind: String,
    pub subject: Option<String>,
}

/// One inbound request as received.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub peer: IpAddr,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

type Limiter = DefaultKeyedRateLimiter<IpAddr>;
/// One limiter per (flow, rate): a flow whose rate is edited gets a fresh one.
type Limiters = Arc<Mutex<HashMap<(String, u32), Arc<Limiter>>>>;

/// Verifies and stores inbound events for every flow of a store. Cheap to clone.
#[derive(Clone)]
pub struct Receiver<S> {
    store: S,
    clock: Clock,
    signals: FlowSignals,
    limiters: Limiters,
    /// This process's environment: a signed event tagged with another one is refused.
    environment: Option<String>,
}

impl<S> std::fmt::Debug for Receiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<S: Store> Receiver<S> {
    /// `signals` wakes the flow's task in this process when an event is stored.
    pub fn new(store: S, clock: Clock, signals: FlowSignals) -> Receiver<S> {
        Receiver {
            store,
            clock,
            signals,
            limiters: Arc::new(Mutex::new(HashMap::new())),
            environment: None,
        }
    }

    /// Refuses (409) signed events whose `X-Odoo-Bridge-Environment` names another
    /// environment than `environment` (an event without the header is taken).
    pub fn with_environment(mut self, environment: Option<String>) -> Receiver<S> {
        self.environment = environment;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs the checks of the module's documentation on a request for `flow_id`, then stores
    /// the event with the kind and subject `shape` reads from its parsed body (a body `shape`
    /// refuses is a 400, nothing stored).
    pub async fn receive(
        &self,
        flow_id: &str,
        request: InboundRequest<'_>,
        shape: impl FnOnce(&Flow, &Value) -> Result<EventShape, String>,
    ) -> Result<Received, Refusal> {
        let flow = match self.store.flow(None, flow_id).await {
            Ok(Some(flow)) if flow.id == flow_id => flow,
            Ok(_) => return Err(Refusal::NotFound),
            Err(error) => {
                tracing::error!(connection_id = flow_id, error = %error, "cannot read the flow of an inbound event");
                return Err(Refusal::Unavailable);
            }
        };
        let policy = match InboundPolicy::of(&flow, &self.clock) {
            Ok(Some(policy)) => policy,
            Ok(None) => return Err(Refusal::NotFound),
            Err(error) => {
                tracing::error!(connection_id = flow_id, error = %error, "the flow's inbound settings are unusable");
                return Err(Refusal::NotFound);
            }
        };
        if !policy.allows(request.peer) {
            tracing::warn!(connection_id = flow_id, peer = %request.peer, "inbound event refused: address not allowed");
            return Err(Refusal::Forbidden);
        }
        self.check_rate(flow_id, policy.per_minute, request.peer)?;
        policy
            .verifier
            .verify(request.headers, request.body)
            .map_err(|error| {
                tracing::warn!(connection_id = flow_id, peer = %request.peer, error = %error, "inbound event refused: signature");
                Refusal::Unauthorized(error)
            })?;
        // After the signature: an unsigned request learns nothing about our environment.
        if let (Some(ours), Some(theirs)) = (
            &self.environment,
            header_text(request.headers, crate::webhook::sender::HEADER_ENVIRONMENT),
        ) && theirs.trim() != ours
        {
            tracing::warn!(connection_id = flow_id, peer = %request.peer, environment = %theirs, "inbound event refused: another environment");
            return Err(Refusal::OtherEnvironment {
                ours: ours.clone(),
                theirs,
            });
        }
        let text = std::str::from_utf8(request.body)
            .map_err(|_| Refusal::Malformed("the body is not UTF-8".to_owned()))?;
        let parsed: Value = serde_json::from_str(text)
            .map_err(|error| Refusal::Malformed(format!("the body is not JSON: {error}")))?;
        let shape = shape(&flow, &parsed).map_err(Refusal::Malformed)?;
        // The verifier proved the header exists.
        let event_id = header_text(request.headers, "webhook-id").unwrap_or_default();
        let event = NewInboundEvent {
            flow_id: flow.id.clone(),
            event_id,
            kind: shape.kind,
            subject: shape.subject,
            source: request.peer.to_string(),
            headers: kept_headers(request.headers),
            body: text.to_owned(),
            max_attempts: MAX_ATTEMPTS,
            received_at: self.clock.now(),
        };
        match self.store.receive(&event).await {
            Ok(received) => {
                if matches!(received, Received::Stored(_)) {
                    self.signals.wake(&flow.id);
                }
                Ok(received)
            }
            Err(StoreError::NotFound { .. }) => Err(Refusal::NotFound),
            Err(error) => {
                tracing::error!(connection_id = flow_id, error = %error, "cannot store an inbound event");
                Err(Refusal::Unavailable)
            }
        }
    }

    fn check_rate(
        &self,
        flow_id: &str,
        per_minute: NonZeroU32,
        peer: IpAddr,
    ) -> Result<(), Refusal> {
        let limiter = {
            let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
            limiters
                .entry((flow_id.to_owned(), per_minute.get()))
                .or_insert_with(|| Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
                .clone()
        };
        limiter.check_key(&canonical(peer)).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            Refusal::RateLimited {
                retry_after_seconds: wait.as_secs().max(1),
            }
        })
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn kept_headers(headers: &HeaderMap) -> Map<String, Value> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            header_text(headers, name).map(|value| ((*name).to_owned(), Value::String(value)))
        })
        .collect()
}

/// The generic shape: `type` and `subject` from the body's top level when they are strings.
pub fn generic_shape(body: &Value) -> Result<EventShape, String> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(EventShape {
        kind: text("type").unwrap_or_else(|| "event".to_owned()),
        subject: text("subject"),
    })
}

/// `POST /inbox/{flow_id}`, with [`MAX_BODY`] as its body limit. Merge it into the daemon's
/// router before [`crate::http::layers`].
pub fn routes<S: Store>(receiver: Receiver<S>) -> Router {
    Router::new()
        .route("/inbox/{flow_id}", post(receive_generic::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

async fn receive_generic<S: Store>(
    State(receiver): State<Receiver<S>>,
    Path(flow_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = InboundRequest {
        peer: peer.ip(),
        headers: &headers,
        body: &body,
    };
    // Each flow's events are read as its kind reads them, whichever route they came by.
    answer(
        receiver
            .receive(&flow_id, request, |flow, body| {
                crate::flows::event_shape(flow.kind, body)
            })
            .await,
    )
}

/// The HTTP answer to a receipt: 202 for a new event, 200 for one already stored, the
/// refusal's status otherwise.
pub fn answer(result: Result<Received, Refusal>) -> Response {
    match result {
        Ok(Received::Stored(id)) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "accepted", "id": id})),
        )
            .into_response(),
        Ok(Received::Duplicate(id)) => (
            StatusCode::OK,
            axum::Json(json!({"status": "duplicate", "id": id})),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
