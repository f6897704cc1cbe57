//! One flow runtime for every flow, used by `odoo-bridge run`, the TUI's poller and `demo`.
//!
//! A [`Runtime`] supervises the (tenant, flow) pairs of a store:
//! - every `reload_every` it re-reads tenants and flows, so flows added, edited, paused or
//!   removed take effect without a restart;
//! - it spreads tenants over the live replicas sharing the store ([`assign`]) and runs only
//!   the flows whose lease it holds, renewing them as it goes; a replica that dies (kill -9)
//!   stops renewing, and its flows are taken over once their leases run out;
//! - each flow it runs gets a task: poll the flow's feeds on its interval (backing off after
//!   failures), deliver its due packets through the one [`Dispatcher`], apply its due inbound
//!   events through the one [`InboxWorker`], record its breakers and its cycles;
//! - it writes this process's heartbeat and the outbox gauges, and on shutdown lets in-flight
//!   cycles finish within a deadline and gives its leases back.
//!
//! What a flow *does* comes from its kind, through a [`FlowFactory`]: a [`FlowHandler`] with
//! its feeds ([`FlowHandler::poll`]), its [`PacketSender`] and its [`InboundApplier`]. All time
//! comes from one [`Clock`], so tests drive schedules, leases and takeovers with a manual one.

pub mod assign;
mod gauges;
mod guard;
pub mod heartbeat;
pub mod hints;
pub mod retention;
mod signals;
mod supervisor;
mod task;

pub use signals::FlowSignals;

use crate::clock::Clock;
use crate::inbox::{InboundApplier, InboxWorker};
use crate::outbox::{BoxFuture, Dispatcher, PacketSender};
use crate::store::{Flow, Store, Tenant};
use crate::webhook::{ClientBuildError, FailureClass, SenderConfig, WebhookSender};
use jiff::SignedDuration;
use odoo_rpc::{HttpPool, OdooClient};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What one poll of a flow's feeds did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub pages: u64,
    /// Changes the feeds returned (the overlap re-reads some every pass).
    pub found: u64,
    /// New packets written to the outbox.
    pub enqueued: u64,
    /// Changes that called for no packet.
    pub unchanged: u64,
}

/// Why a poll failed, classified once by the flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FlowError {
    pub class: FailureClass,
    pub message: String,
    /// Odoo refused the credentials: retrying soon cannot help.
    pub authentication: bool,
}

impl FlowError {
    pub fn new(class: FailureClass, message: impl Into<String>) -> FlowError {
        FlowError {
            class,
            message: message.into(),
            authentication: false,
        }
    }
}

/// One running flow: what a flow kind plugs into the runtime.
pub trait FlowHandler<S>: Send + Sync {
    /// Follows the flow's feeds from their cursors and writes the packets they call for,
    /// each page's packets with its cursor in one transaction.
    fn poll<'a>(&'a self, store: &'a S) -> BoxFuture<'a, Result<PollReport, FlowError>>;

    /// How the flow's packets are sent; `None` for a flow that sends none.
    fn sender(&self) -> Option<&dyn PacketSender>;

    /// How the flow's inbound events are applied; `None` for a flow that takes none in.
    fn applier(&self) -> Option<&dyn InboundApplier>;
}

/// What a flow is built from.
#[derive(Debug, Clone)]
pub struct FlowSetup {
    pub tenant: Tenant,
    pub flow: Flow,
    /// The tenant's client, shared by its flows in this process.
    pub odoo: OdooClient,
    pub webhooks: WebhookSender,
    pub clock: Clock,
    pub options: FlowOptions,
    /// This process's name among those sharing the store (claims carry it).
    pub worker_id: String,
}

/// Settings of the runtime that flows read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOptions {
    /// How far each poll rewinds a feed's cursor: a transaction that commits late carries an
    /// earlier `write_date` than rows already read.
    pub overlap: SignedDuration,
    /// Retries a new packet gets after its first send before it is FAILED.
    pub max_attempts: u32,
}

impl Default for FlowOptions {
    fn default() -> FlowOptions {
        FlowOptions {
            overlap: SignedDuration::from_secs(120),
            max_attempts: 5,
        }
    }
}

/// Builds the handler of a flow from its kind. `store` is the runtime's (a flow whose
/// inbound applications keep state, such as a marketplace's, holds a clone).
pub trait FlowFactory<S>: Send + Sync {
    fn build(&self, setup: FlowSetup, store: &S) -> Result<Box<dyn FlowHandler<S>>, String>;
}

/// The flow kinds this version knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardFlows;

impl<S: Store> FlowFactory<S> for StandardFlows {
    fn build(&self, setup: FlowSetup, store: &S) -> Result<Box<dyn FlowHandler<S>>, String> {
        crate::flows::build(setup, store)
    }
}

/// How long the daemon's logs keep their rows unless told otherwise: 90 days, as the
/// mirror's runs.
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// How a [`Runtime`] works.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This process's name in leases and heartbeats; unique among the processes sharing a
    /// store ([`heartbeat::worker_id`]).
    pub worker_id: String,
    /// What runs it, in its heartbeat: `run`, `tui` or `demo`.
    pub kind: &'static str,
    /// How often tenants, flows, leases and due times are re-read.
    pub reload_every: Duration,
    /// How often a flow with packets pending looks for due ones between polls.
    pub retry_every: Duration,
    /// Longest wait after repeated failed cycles (wrong key, Odoo down): failures back off
    /// from the flow's interval, doubling, up to this.
    pub max_backoff: Duration,
    /// How long in-flight cycles get to finish on shutdown.
    pub shutdown_deadline: Duration,
    /// How long a flow lease lasts unless renewed (at every reload): a dead replica's flows
    /// are taken over within this plus one reload.
    pub lease_ttl: Duration,
    pub heartbeat_every: Duration,
    /// A replica whose heartbeat is older than this is gone: its tenants are spread again.
    pub stale_after: Duration,
    /// Timeout of one packet send.
    pub send_timeout: Duration,
    /// How often the outbox gauges are refreshed.
    pub gauges_every: Duration,
    pub flows: FlowOptions,
    /// How long the cycle log and the marketplace sync log keep their rows (`None`: for
    /// ever).
    pub log_retention: Option<Duration>,
}

impl RuntimeConfig {
    /// Defaults for `worker_id`: reload every 5 s, and the timings that follow from it
    /// ([`RuntimeConfig::reloading_every`]): a dead replica's flows move within 25 s.
    pub fn new(worker_id: String, kind: &'static str) -> RuntimeConfig {
        RuntimeConfig {
            worker_id,
            kind,
            reload_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            shutdown_deadline: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(20),
            heartbeat_every: heartbeat::HEARTBEAT_EVERY,
            stale_after: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            gauges_every: Duration::from_secs(15),
            flows: FlowOptions::default(),
            log_retention: Some(DEFAULT_LOG_RETENTION),
        }
        .reloading_every(Duration::from_secs(5))
    }

    /// Reloads every `every`, and the timings that follow from it: heartbeats as often (at
    /// most every 5 s, which is what other processes' freshness checks expect), a replica
    /// stale after three missed beats, leases of four reloads (renewed at each). So a replica
    /// that dies has its flows taken over within five reloads.
    pub fn reloading_every(mut self, every: Duration) -> RuntimeConfig {
        let every = every.max(Duration::from_millis(100));
        self.reload_every = every;
        self.heartbeat_every = every.min(heartbeat::HEARTBEAT_EVERY);
        self.stale_after = self.heartbeat_every * 3;
        self.lease_ttl = every * 4;
        self
    }
}

/// The runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Webhooks(#[from] ClientBuildError),
    #[error("cannot build the shared Odoo HTTP pool: {0}")]
    OdooPool(String),
}

/// Runs a store's flows. See the [module documentation](self).
pub struct Runtime<S> {
    store: S,
    config: RuntimeConfig,
    clock: Clock,
    factory: Arc<dyn FlowFactory<S>>,
    signals: FlowSignals,
    webhooks: WebhookSender,
    odoo_pool: HttpPool,
}

impl<S> std::fmt::Debug for Runtime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Runtime<S> {
    /// A runtime of the standard flow kinds. One HTTP pool serves every tenant's Odoo and one
    /// every webhook target: a pool and its TLS roots cost a few hundred KiB, times a thousand
    /// tenants.
    pub fn new(store: S, config: RuntimeConfig, clock: Clock) -> Result<Runtime<S>, RuntimeError> {
        let webhooks = WebhookSender::new(SenderConfig {
            timeout: config.send_timeout.max(Duration::from_secs(1)),
            ..SenderConfig::default()
        })?;
        let odoo_pool = HttpPool::new(Duration::from_secs(10))
            .map_err(|error| RuntimeError::OdooPool(error.to_string()))?;
        Ok(Runtime {
            store,
            config,
            clock,
            factory: Arc::new(StandardFlows),
            signals: FlowSignals::default(),
            webhooks,
            odoo_pool,
        })
    }

    /// Replaces the flow kinds (tests plug their own flows in).
    pub fn with_factory(mut self, factory: Arc<dyn FlowFactory<S>>) -> Runtime<S> {
        self.factory = factory;
        self
    }

    /// Wakes this runtime's flows (the HTTP listener's inbox routes use it).
    pub fn signals(&self) -> FlowSignals {
        self.signals.clone()
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Runs until `shutdown` becomes true, then stops polling, lets in-flight cycles finish
    /// within the deadline, writes what is left of the sync log, gives the leases back and
    /// returns.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let dispatcher = Dispatcher::new(
            self.config.worker_id.clone(),
            self.config.send_timeout,
            self.clock.clone(),
        );
        let inbox = InboxWorker::new(self.config.worker_id.clone(), self.clock.clone());
        let beats = guard::TaskGuard::spawn(heartbeat::beat(
            self.store.clone(),
            self.config.worker_id.clone(),
            self.config.kind,
            self.clock.clone(),
            self.config.heartbeat_every,
            shutdown.clone(),
        ));
        let gauges = guard::TaskGuard::spawn(gauges::refresh(
            self.store.clone(),
            self.clock.clone(),
            self.config.gauges_every,
            shutdown.clone(),
        ));
        let retention = self.config.log_retention.map(|keep| {
            guard::TaskGuard::spawn(retention::prune(
                self.store.clone(),
                self.clock.clone(),
                keep,
                shutdown.clone(),
            ))
        });
        supervisor::Supervisor::new(self, dispatcher, inbox)
            .run(shutdown)
            .await;
        if let Some(retention) = retention {
            retention.join().await;
        }
        gauges.join().await;
        beats.join().await;
    }

    /// Runs in a task of its own; the handle stops it.
    pub fn start(self) -> RuntimeHandle {
        let (stop, stopped) = watch::channel(false);
        let signals = self.signals();
        let task = tokio::spawn(self.run(stopped));
        RuntimeHandle {
            stop,
            task,
            signals,
        }
    }
}

/// A runtime started with [`Runtime::start`].
#[derive(Debug)]
pub struct RuntimeHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    signals: FlowSignals,
}

impl RuntimeHandle {
    pub fn signals(&self) -> FlowSignals {
        self.signals.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the runtime at once, without finishing anything or giving anything back, as a
    /// `kill -9` would stop the process: its leases and heartbeat are left to run out.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops the runtime and waits for it (within its shutdown deadline).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(error = %error, "the runtime's task failed");
        }
    }
}
