//! `odoo-bridge run`: the daemon. Runs every active flow of the store (order delivery to each
//! connection's webhook, and later the other kinds) through the engine's runtime, sharing the
//! work with the other `run` processes on the same store; serves `/healthz`, `/readyz`,
//! `/metrics`, the inbox (`POST /inbox/{flow_id}`) and Odoo's push hints
//! (`POST /hooks/odoo/{connection_id}/{token}`, and with `--config` the mirror's
//! `POST /hooks/odoo-mirror/{model}/{token}`); on SIGTERM/SIGINT stops polling, lets
//! in-flight cycles finish within a deadline and exits 0.

use crate::commands::delivery_store::{Access, StoreLocation, StoreTask, with_store_at};
use crate::exit::{Exit, Failure};
use clap::Args;
use engine::clock::Clock;
use engine::hints::receive::{HintLimits, HintReceiver};
use engine::http::{self, Health, Metrics};
use engine::inbox::receive::{self, Receiver};
use engine::runtime::{FlowOptions, Runtime, RuntimeConfig, heartbeat};
use engine::store::Store;
use jiff::SignedDuration;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where `/healthz`, `/readyz`, `/metrics` and the inbox are served. Loopback by default:
    /// metrics name the tenants and nothing authenticates a reader of them.
    #[arg(long, env = "ODOO_BRIDGE_LISTEN", default_value_t = http::DEFAULT_LISTEN_ADDR)]
    listen: SocketAddr,
    /// This process's name in leases and heartbeats; unique among processes sharing a store
    /// (default: host name, process id and a random suffix). A process restarted with the
    /// same id takes the packets and inbound events it had in flight back at once; with
    /// another id they wait for their leases to run out.
    #[arg(long, env = "ODOO_BRIDGE_WORKER_ID")]
    worker_id: Option<String>,
    /// Seconds in-flight cycles get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30)]
    shutdown_deadline: u64,
    /// How often flow changes (added, edited, paused, removed), replicas and leases are looked
    /// at, seconds. A replica that dies has its flows taken over within five of these.
    #[arg(long, default_value_t = 5)]
    reload_every: u64,
    /// Timeout of one webhook POST, seconds.
    #[arg(long, default_value_t = 30)]
    webhook_timeout: u64,
    /// How far each poll rewinds a flow's cursor, seconds.
    #[arg(long, default_value_t = 120)]
    overlap_seconds: u64,
    /// Days the cycle log and the marketplace sync log keep their rows (pruned hourly);
    /// 0 keeps them for ever.
    #[arg(long, default_value_t = 90)]
    log_retention_days: u64,
    /// Also run the enrichment jobs of this configuration file, each every its
    /// `interval_seconds`, with the file's own store (registered there as flows; when it is
    /// this daemon's store, the daemon's runtime runs them with its other flows). Its mirror
    /// models too, each every its `interval_seconds` (hinted ones also on Odoo's push hints).
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
}

pub async fn run(args: RunArgs) -> Result<Exit, Failure> {
    let location = StoreLocation::from_env()?;
    with_store_at(&location, Access::Create, Serve(args)).await
}

struct Serve(RunArgs);

impl StoreTask for Serve {
    type Output = Exit;

    async fn run<S: Store>(self, store: &S, location: &StoreLocation) -> Result<Exit, Failure> {
        serve(store.clone(), location, self.0).await
    }
}

/// The runtime's settings from the command line.
pub fn runtime_config(args: &RunArgs, worker_id: String) -> RuntimeConfig {
    RuntimeConfig {
        shutdown_deadline: Duration::from_secs(args.shutdown_deadline),
        send_timeout: Duration::from_secs(args.webhook_timeout.max(1)),
        flows: FlowOptions {
            overlap: SignedDuration::from_secs(i64::try_from(args.overlap_seconds).unwrap_or(120)),
            ..FlowOptions::default()
        },
        log_retention: (args.log_retention_days > 0)
            .then(|| Duration::from_secs(args.log_retention_days.saturating_mul(24 * 3600))),
        ..RuntimeConfig::new(worker_id, "run")
    }
    .reloading_every(Duration::from_secs(args.reload_every.max(1)))
}

async fn serve<S: Store>(
    store: S,
    location: &StoreLocation,
    args: RunArgs,
) -> Result<Exit, Failure> {
    let metrics = Metrics::install().map_err(|error| Failure::new(Exit::Failure, error))?;
    // A process tagged with an environment binds the store to it, and refuses a store of
    // another one before it reads a flow or sends a packet.
    if let Some(environment) = engine::webhook::sender::process_environment() {
        match engine::store::environment::bind(&store, &environment, Clock::system().now()).await {
            Ok(Ok(())) => {}
            Ok(Err(mismatch)) => return Err(Failure::new(Exit::Config, mismatch)),
            Err(error) => return Err(Failure::new(Exit::Failure, error)),
        }
    }
    let worker_id = args.worker_id.clone().unwrap_or_else(heartbeat::worker_id);
    let clock = Clock::system();
    let runtime = Runtime::new(
        store.clone(),
        runtime_config(&args, worker_id.clone()),
        clock.clone(),
    )
    .map_err(|error| Failure::new(Exit::Failure, error))?;
    let probe_store = store.clone();
    let health = Health::new(move || {
        let store = probe_store.clone();
        async move {
            store
                .tenants()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    });
    let (stop, stopped) = watch::channel(false);
    let mirror = match &args.config {
        Some(path) => Some(
            crate::commands::mirror::start_schedule(path, clock.clone(), stopped.clone()).await?,
        ),
        None => None,
    };
    let enrichment = match (&args.config, &mirror) {
        (Some(path), Some(mirror)) if mirror.has_enrichment => {
            Some(crate::commands::enrich::start_schedule(
                path,
                worker_id.clone(),
                |loaded| same_store(location, loaded),
                stopped.clone(),
            )?)
        }
        _ => None,
    };
    let server_stop = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let receiver = Receiver::new(store.clone(), clock.clone(), runtime.signals())
        .with_environment(engine::webhook::sender::process_environment());
    let hints = HintReceiver::new(
        store.clone(),
        clock,
        runtime.signals(),
        HintLimits::default(),
    );
    let routes = http::routes(health.clone(), metrics)
        .merge(receive::routes(receiver.clone()))
        .merge(engine::marketplace::inbound::routes(receiver))
        .merge(engine::hints::receive::routes(hints))
        .merge(
            mirror
                .as_ref()
                .map_or_else(axum::Router::new, |mirror| mirror.routes.clone()),
        );
    let (address, server) = http::serve(args.listen, http::layers(routes), server_stop)
        .await
        .map_err(|error| Failure::new(Exit::Config, error))?;
    tokio::spawn(forward_signals(stop.clone()));
    tracing::info!(%address, worker_id = %worker_id, store = %location.describe(), "odoo-bridge run: started");
    health.set_started();
    runtime.run(stopped).await;
    health.set_shutting_down();
    let _ = stop.send(true);
    if let Some(enrichment) = enrichment
        && let Err(error) = enrichment.await
    {
        tracing::warn!(error = %error, "the enrichment jobs' task failed");
    }
    if let Some(task) = mirror.and_then(|mirror| mirror.task)
        && let Err(error) = task.await
    {
        tracing::warn!(error = %error, "the mirror's task failed");
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(error = %error, "the HTTP server ended with an error"),
        Err(error) => tracing::warn!(error = %error, "the HTTP server task failed"),
    }
    tracing::info!("odoo-bridge run: stopped");
    Ok(Exit::Success)
}

/// Turns SIGTERM and SIGINT into the shutdown signal.
async fn forward_signals(stop: watch::Sender<bool>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested");
    let _ = stop.send(true);
}

/// Whether the configuration's store is the daemon's SQLite file (PostgreSQL stores are told
/// apart by nothing cheaper than their URLs: a file's jobs on the daemon's PostgreSQL are
/// then polled by both, which the outbox's unique keys and leases keep exactly-once).
fn same_store(location: &StoreLocation, loaded: &crate::commands::target::Loaded) -> bool {
    match (location, &loaded.config.target) {
        (StoreLocation::Sqlite(daemon), engine::config::Target::Sqlite(file)) => {
            match (daemon.canonicalize(), file.path.canonicalize()) {
                (Ok(daemon), Ok(file)) => daemon == file,
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::RunArgs;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn the_listener_is_on_loopback_unless_told_otherwise() {
        // ODOO_BRIDGE_LISTEN, read by clap, would replace the default being tested.
        if std::env::var_os("ODOO_BRIDGE_LISTEN").is_some() {
            eprintln!("skipped: ODOO_BRIDGE_LISTEN is set");
            return;
        }
        let parsed = Wrapper::try_parse_from(["run"]).unwrap();
        assert!(
            parsed.run.listen.ip().is_loopback(),
            "{:?}",
            parsed.run.listen
        );
        assert_eq!(parsed.run.listen.port(), 9464);
    }

    #[test]
    fn the_logs_are_kept_90_days_unless_told_otherwise_and_0_keeps_them() {
        let retention = |args: &[&str]| {
            let parsed = Wrapper::try_parse_from(args).unwrap();
            super::runtime_config(&parsed.run, "w".into()).log_retention
        };
        let day = std::time::Duration::from_secs(24 * 3600);
        assert_eq!(retention(&["run"]), Some(day * 90));
        assert_eq!(
            retention(&["run", "--log-retention-days", "7"]),
            Some(day * 7)
        );
        assert_eq!(retention(&["run", "--log-retention-days", "0"]), None);
    }
}
