//! The router, its layers and the listener.

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{
    DefaultMakeSpan, DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer,
};
use tracing::Level;

use super::HttpError;
use super::health::Health;
use super::listener::{Limits, accept_loop};
use super::metrics::Metrics;

/// Where the daemon listens unless told otherwise: loopback only, because `/metrics` names
/// tenants (see the [module documentation](super)). 9464 is the port Prometheus exporters of
/// OpenTelemetry use.
pub const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// The largest request body a route accepts unless it sets its own
/// [`DefaultBodyLimit`]: 64 KiB. Larger bodies are answered 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long one request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The running server: it ends with `Ok(())` once the shutdown future has completed and the
/// requests in flight are answered.
pub type ServerHandle = JoinHandle<io::Result<()>>;

/// `/healthz`, `/readyz` and `/metrics` with [`layers`] applied: the daemon's whole router
/// until inbound webhooks exist.
pub fn router(health: Health, metrics: Metrics) -> Router {
    layers(routes(health, metrics))
}

/// `/healthz`, `/readyz` and `/metrics` without layers, to merge other routes into before
/// calling [`layers`] once.
pub fn routes(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(health))
        .route("/metrics", get(render_metrics).with_state(metrics))
}

/// The layers every route gets, innermost first: the body limit ([`BODY_LIMIT`], which a route
/// may raise with its own [`DefaultBodyLimit`]), the timeout ([`REQUEST_TIMEOUT`], answered
/// 503), a panic turned into a plain 500, and request tracing at debug level.
///
/// The body limit is axum's [`DefaultBodyLimit`] rather than tower-http's
/// `RequestBodyLimitLayer`: the latter caps every route below it for good, and inbound webhooks
/// need a larger limit of their own. It applies to bodies read through axum's extractors
/// (`Bytes`, `String`, `Json`, …), which is how every handler here reads one.
pub fn layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                // A 503 from /readyz is an answer, not a fault; handlers log what matters.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
}

/// Binds `addr` (port 0 picks a free one), then serves `router` on a spawned task until
/// `shutdown` completes; requests in flight are then answered before the task ends. The
/// listener's [`Limits`] are the defaults: see [`serve_with`].
///
/// Returns the address actually bound and the server's task. A non-loopback address is served
/// but logged as a warning: `/metrics` names tenants.
pub async fn serve<F>(
    addr: SocketAddr,
    router: Router,
    shutdown: F,
) -> Result<(SocketAddr, ServerHandle), HttpError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with(addr, router, Limits::default(), shutdown).await
}

/// [`serve`] with the listener's limits against slow and greedy clients: the head and body
/// read timeouts, the header size, the requests and connections at once (see
/// [`super::listener`]).
pub async fn serve_with<F>(
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    shutdown: F,
) -> Result<(SocketAddr, ServerHandle), HttpError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let bind_error = |source| HttpError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    if bound.ip().is_loopback() {
        tracing::info!(address = %bound, "serving /healthz, /readyz and /metrics");
    } else {
        tracing::warn!(
            address = %bound,
            "serving /healthz, /readyz and /metrics on a non-loopback address: metrics name \
             tenants and are not authenticated; keep this address off public networks"
        );
    }
    let task = tokio::spawn(async move {
        let outcome = accept_loop(listener, router, limits, shutdown).await;
        tracing::debug!(address = %bound, "HTTP server stopped");
        outcome
    });
    Ok((bound, task))
}

/// Liveness: answering at all is the proof.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: 200 when every check passes, 503 with the failing ones otherwise.
async fn readyz(State(health): State<Health>) -> Response {
    let readiness = health.readiness().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// The Prometheus text exposition format.
async fn render_metrics(State(metrics): State<Metrics>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// A handler panicked: log it, answer a plain 500 that leaks nothing.
fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned());
    tracing::error!(panic = %message, "an HTTP handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "error": "internal error" })),
    )
        .into_response()
}
