//! The daemon's HTTP surface: `GET /healthz`, `GET /readyz` and `GET /metrics` (Prometheus),
//! on one axum router that inbound webhooks will join.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use engine::http::{DEFAULT_LISTEN_ADDR, Health, Metrics, router, serve};
//! let metrics = Metrics::install()?;
//! let health = Health::new(|| async { Ok::<(), String>(()) /* the store's ping */ });
//! let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
//! let (bound, server) = serve(DEFAULT_LISTEN_ADDR, router(health.clone(), metrics), async {
//!     let _ = shutdown_rx.await;
//! })
//! .await?;
//! health.set_started();
//! // … on SIGTERM:
//! health.set_shutting_down();
//! let _ = shutdown_tx.send(());
//! server.await??;
//! # Ok(()) }
//! ```
//!
//! **Loopback by default.** [`DEFAULT_LISTEN_ADDR`] is `127.0.0.1:9464`: `/metrics` labels carry
//! connection ids and webhook origins, which name tenants, and nothing here authenticates a
//! reader. Listening on another address is allowed (a Kubernetes pod needs it for its probes and
//! scraper) and logs a warning; put it on a network only the scraper reaches.
//!
//! Every route goes through [`layers`]: a 64 KiB request body limit ([`BODY_LIMIT`]), a 10 s
//! timeout ([`REQUEST_TIMEOUT`]), panics turned into a plain 500, and request tracing at debug
//! level. The listener ([`serve`], [`serve_with`]) adds what protects the port itself from
//! slow and greedy clients: head and body read timeouts, a header size limit, and bounds on the
//! requests and connections at once ([`Limits`], [`listener`]). Routes added later (inbound webhooks) are merged into [`routes`] before [`layers`] is
//! applied, and raise the body limit for themselves with their own
//! [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit).

pub mod health;
pub mod listener;
pub mod metrics;
mod server;

use std::io;
use std::net::SocketAddr;

pub use health::{Health, ProbeFuture, ProbeStatus, Readiness, STORE_PROBE_TIMEOUT, StoreProbe};
pub use listener::Limits;
pub use metrics::Metrics;
pub use server::{
    BODY_LIMIT, DEFAULT_LISTEN_ADDR, REQUEST_TIMEOUT, ServerHandle, layers, router, routes, serve,
    serve_with,
};

/// What can go wrong while setting up the HTTP surface.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listening socket could not be opened (address in use, not ours, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// Another global `metrics` recorder was installed before ours.
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
}
