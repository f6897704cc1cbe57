//! The listener: our own accept loop over hyper, for the limits `axum::serve` cannot set.
//!
//! The daemon's port takes inbound webhooks from the Internet (behind a proxy or not), so a
//! client must not be able to hold it: not by sending its headers or its body a byte at a
//! time (slowloris), not by opening connections and sending nothing, not by sending more
//! requests than the handlers can take at once. `axum::serve` gives hyper no timer, so hyper's
//! header read timeout never fires there, and it bounds neither connections nor requests.
//! What [`Limits`] sets, each answered as HTTP says:
//!
//! - the request head (request line and headers) must arrive within
//!   [`Limits::header_read_timeout`], also on a kept-alive connection waiting for its next
//!   request: otherwise the connection is closed (there is no request to answer);
//! - a head larger than [`Limits::max_header_bytes`] is answered **431**;
//! - the body must arrive within [`Limits::body_read_timeout`] of the head: otherwise **408**
//!   and the connection is closed (the body limit itself, 413, is the router's:
//!   [`super::BODY_LIMIT`]);
//! - at most [`Limits::max_in_flight`] requests are handled at once; more are answered **503**
//!   with `Retry-After: 1` at once, rather than queued behind slow ones (`/healthz` is never
//!   refused: it costs nothing, and a liveness probe failing under load would restart a
//!   daemon that is merely busy);
//! - at most [`Limits::max_connections`] connections are open at once; further ones wait in
//!   the kernel's backlog until one closes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How much a client may ask of the listener; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's head, counted from when the server starts
    /// waiting for it (a new connection, or a kept-alive one after its last answer).
    pub header_read_timeout: Duration,
    /// Time a request's body may take to arrive, counted from its head.
    pub body_read_timeout: Duration,
    /// The largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// Connections open at once.
    pub max_connections: usize,
}

/// The defaults: 10 s for a head, 5 s for a body of at most 64 KiB (under the router's 10 s
/// request timeout, so that a slow body is a 408 and not a 503), 16 KiB of headers, 64
/// requests and 256 connections at once — far above what probes, a scraper and webhook
/// senders need, far below what would exhaust the daemon's memory or file descriptors.
impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            max_header_bytes: MAX_HEADER_BYTES,
            max_in_flight: MAX_IN_FLIGHT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// [`Limits::header_read_timeout`] by default.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// [`Limits::body_read_timeout`] by default.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// [`Limits::max_header_bytes`] by default.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// [`Limits::max_in_flight`] by default.
pub const MAX_IN_FLIGHT: usize = 64;
/// [`Limits::max_connections`] by default.
pub const MAX_CONNECTIONS: usize = 256;

/// hyper refuses a read buffer below this; a smaller header limit is enforced anyway.
const MIN_BUFFER: usize = 8192;

/// Adds the per-request limits (body deadline, requests in flight) to `router`.
pub(super) fn guarded(router: Router, limits: Limits) -> Router {
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    router
        .layer(axum::middleware::from_fn_with_state(
            limits.body_read_timeout,
            body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(in_flight, admit))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (the timeouts bound them) and returns.
pub(super) async fn accept_loop<F>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let router = guarded(router, limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Finished connections are reaped as we go, so that the set does not grow with the
        // daemon's uptime.
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone().layer(Extension(ConnectInfo(peer))));
        let mut closed = closed.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(MIN_BUFFER))
                .max_header_size(limits.max_header_bytes);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                // The guard `wait_for` returns must not live across the await below.
                () = async { drop(closed.wait_for(|closed| *closed).await) } => {
                    // Answer what is in flight, then close; idle connections close at once.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                // A client that went away or was cut off (timeout, oversized head): its
                // business, said at debug level only.
                tracing::debug!(peer = %peer, error = %error, "HTTP connection ended");
            }
        });
    }
    // Stop listening at once (the port closes), then let the connections finish.
    drop(listener);
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// An accept that failed: a connection the client abandoned before we took it is nothing; a
/// lack of resources (file descriptors) is waited out briefly instead of spinning.
async fn accept_failed(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %error, "cannot accept an HTTP connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Refuses a request at once when [`Limits::max_in_flight`] are being handled, except the
/// liveness probe.
async fn admit(State(in_flight): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    if request.method() == Method::GET && request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": "too many requests at once; try again" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// Gives the request's body a deadline; a handler whose body did not arrive in time gets
/// its answer replaced by 408, and the connection is closed (its remaining bytes would be
/// read as the next request).
async fn body_deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let flag = expired.clone();
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired: flag,
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        Json(serde_json::json!({ "error": "the request body did not arrive in time" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed while it still waits for data.
/// Data that has arrived is always handed over: only a slow client trips it, not a handler
/// that reads late.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// Why [`DeadlineBody`] failed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.expired.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
