//! Liveness and readiness, shared between the daemon (which flips the flags) and the router
//! (which answers `/healthz` and `/readyz`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

/// How long `/readyz` waits for the store probe before counting it as failed.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The future a [`StoreProbe`] returns.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Asks the store whether it answers (`SELECT 1`, or the cheapest query it has).
///
/// Any `Fn() -> impl Future<Output = Result<(), String>>` is one:
///
/// ```
/// use engine::http::Health;
/// let health = Health::new(|| async { Ok::<(), String>(()) });
/// ```
///
/// The error text is logged, never sent in a response.
pub trait StoreProbe: Send + Sync + 'static {
    fn probe(&self) -> ProbeFuture;
}

impl<F, Fut> StoreProbe for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn probe(&self) -> ProbeFuture {
        Box::pin(self())
    }
}

/// The daemon's health. Clones share one state.
///
/// - **Liveness** (`/healthz`): the process runs and its event loop answers. Nothing else is
///   checked, so a slow store never gets a live process restarted.
/// - **Readiness** (`/readyz`): the store answered a probe just now (run on each request, within
///   the probe timeout), the daemon called [`Health::set_started`], and it has not called
///   [`Health::set_shutting_down`].
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    started: AtomicBool,
    shutting_down: AtomicBool,
    probe: Box<dyn StoreProbe>,
    probe_timeout: Duration,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("started", &self.inner.started.load(Ordering::Relaxed))
            .field(
                "shutting_down",
                &self.inner.shutting_down.load(Ordering::Relaxed),
            )
            .field("probe_timeout", &self.inner.probe_timeout)
            .finish_non_exhaustive()
    }
}

/// The outcome of the store probe in a [`Readiness`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// The store answered within the timeout.
    Ok,
    /// The store answered with an error.
    Error,
    /// The store did not answer within the timeout.
    Timeout,
}

/// What `/readyz` found, as its JSON body shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// The checks that failed, among `store`, `started` and `shutting_down`.
    pub failing: Vec<&'static str>,
    pub store: ProbeStatus,
    pub started: bool,
    pub shutting_down: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.failing.is_empty()
    }
}

impl Health {
    /// A fresh state: not started, not shutting down, probing the store with `probe` within
    /// [`STORE_PROBE_TIMEOUT`].
    pub fn new(probe: impl StoreProbe) -> Health {
        Health::with_probe_timeout(probe, STORE_PROBE_TIMEOUT)
    }

    /// The same, waiting `timeout` for the probe.
    pub fn with_probe_timeout(probe: impl StoreProbe, timeout: Duration) -> Health {
        Health {
            inner: Arc::new(Inner {
                started: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                probe: Box::new(probe),
                probe_timeout: timeout,
            }),
        }
    }

    /// The daemon is up: its store is open, its workers run.
    pub fn set_started(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
    }

    /// The daemon is draining: load balancers should stop sending it work.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Probes the store (within the timeout) and reports every readiness check.
    pub async fn readiness(&self) -> Readiness {
        let store =
            match tokio::time::timeout(self.inner.probe_timeout, self.inner.probe.probe()).await {
                Ok(Ok(())) => ProbeStatus::Ok,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "readiness: the store probe failed");
                    ProbeStatus::Error
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = self.inner.probe_timeout.as_millis() as u64,
                        "readiness: the store probe did not answer in time"
                    );
                    ProbeStatus::Timeout
                }
            };
        let started = self.is_started();
        let shutting_down = self.is_shutting_down();
        let mut failing = Vec::new();
        if store != ProbeStatus::Ok {
            failing.push("store");
        }
        if !started {
            failing.push("started");
        }
        if shutting_down {
            failing.push("shutting_down");
        }
        Readiness {
            status: if failing.is_empty() {
                "ready"
            } else {
                "unavailable"
            },
            failing,
            store,
            started,
            shutting_down,
        }
    }
}
