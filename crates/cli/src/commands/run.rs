//! `odoo-bridge run`: the order-delivery daemon. Polls every active connection on its own
//! interval, delivers through the durable outbox, serves `/healthz`, `/readyz` and
//! `/metrics`, and on SIGTERM/SIGINT stops polling, lets in-flight cycles finish within a
//! deadline and exits 0.

use crate::commands::delivery_store::StoreLocation;
use crate::exit::{Exit, Failure};
use clap::Args;
use engine::delivery_store::DeliveryStore;
use engine::http::{self, Health, Metrics};
use engine::order_delivery::daemon::{self, DaemonConfig};
use engine::order_delivery::heartbeat;
use engine::order_delivery::{Dispatcher, PollOptions};
use jiff::SignedDuration;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where `/healthz`, `/readyz` and `/metrics` are served. Loopback by default: metrics
    /// name the tenants and nothing authenticates a reader.
    #[arg(long, env = "ODOO_BRIDGE_LISTEN", default_value_t = http::DEFAULT_LISTEN_ADDR)]
    listen: SocketAddr,
    /// This process's name in the outbox leases; unique among processes sharing a store
    /// (default: host name, process id and a random suffix).
    #[arg(long)]
    worker_id: Option<String>,
    /// Seconds in-flight cycles get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30)]
    shutdown_deadline: u64,
    /// How often connection changes (added, edited, paused, removed) are picked up, seconds.
    #[arg(long, default_value_t = 5)]
    reload_every: u64,
    /// Timeout of one webhook POST, seconds.
    #[arg(long, default_value_t = 30)]
    webhook_timeout: u64,
    /// How far each poll rewinds the connection's cursor, seconds.
    #[arg(long, default_value_t = 120)]
    overlap_seconds: u64,
}

pub async fn run(args: RunArgs) -> Result<Exit, Failure> {
    let location = StoreLocation::from_env()?;
    match &location {
        StoreLocation::Sqlite(path) => {
            let store = store_sqlite::SqliteStore::open(path)
                .await
                .map_err(|error| location.failure(error))?;
            serve_with(store, &location, args).await
        }
        StoreLocation::Postgres { options, .. } => {
            let store = store_pg::PgStore::connect(options.as_ref().clone())
                .await
                .map_err(|error| location.failure(error))?;
            serve_with(store, &location, args).await
        }
    }
}

async fn serve_with<S>(store: S, location: &StoreLocation, args: RunArgs) -> Result<Exit, Failure>
where
    S: DeliveryStore + Clone + 'static,
{
    store
        .migrate_delivery()
        .await
        .map_err(|error| location.failure(error))?;
    let metrics = Metrics::install().map_err(|error| Failure::new(Exit::Failure, error))?;
    let probe_store = store.clone();
    let health = Health::new(move || {
        let store = probe_store.clone();
        async move {
            store
                .connections()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    });
    let (stop, stopped) = watch::channel(false);
    let server_stop = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let (address, server) = http::serve(
        args.listen,
        http::router(health.clone(), metrics),
        server_stop,
    )
    .await
    .map_err(|error| Failure::new(Exit::Config, error))?;
    let owner = args.worker_id.clone().unwrap_or_else(heartbeat::worker_id);
    let dispatcher =
        Dispatcher::for_process(owner.clone(), Duration::from_secs(args.webhook_timeout))
            .map_err(|error| Failure::new(Exit::Failure, error))?;
    let config = DaemonConfig {
        poll: PollOptions {
            overlap: SignedDuration::from_secs(i64::try_from(args.overlap_seconds).unwrap_or(120)),
            ..PollOptions::default()
        },
        reload_every: Duration::from_secs(args.reload_every.max(1)),
        shutdown_deadline: Duration::from_secs(args.shutdown_deadline),
        ..DaemonConfig::default()
    };
    tokio::spawn(forward_signals(stop.clone()));
    let gauges = tokio::spawn(outbox_gauges(store.clone(), stopped.clone()));
    // Tells a TUI on the same store that a poller runs here (it then starts none).
    let beats = tokio::spawn(heartbeat::beat(
        store.clone(),
        owner.clone(),
        "run",
        stopped.clone(),
    ));
    tracing::info!(%address, worker_id = %owner, store = %location.describe(), "odoo-bridge run: started");
    health.set_started();
    daemon::run(store, dispatcher, config, stopped).await;
    health.set_shutting_down();
    let _ = stop.send(true);
    let _ = gauges.await;
    let _ = beats.await;
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

/// Keeps the outbox and connection gauges current.
async fn outbox_gauges<S: DeliveryStore>(store: S, mut stopped: watch::Receiver<bool>) {
    use engine::http::metrics as m;
    loop {
        let since = jiff::Timestamp::now()
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        if let Ok(stats) = store.connection_stats(since).await {
            for stat in stats {
                ::metrics::gauge!(m::OUTBOX_PENDING, m::LABEL_CONNECTION => stat.connection_id.clone())
                    .set(stat.pending as f64);
                ::metrics::gauge!(m::OUTBOX_FAILED, m::LABEL_CONNECTION => stat.connection_id)
                    .set(stat.failed as f64);
            }
        }
        if let Ok(connections) = store.connections().await {
            let active = connections.iter().filter(|c| c.is_active).count();
            ::metrics::gauge!(m::CONNECTIONS, m::LABEL_STATE => m::ConnectionState::Active.as_str())
                .set(active as f64);
            ::metrics::gauge!(m::CONNECTIONS, m::LABEL_STATE => m::ConnectionState::Paused.as_str())
                .set((connections.len() - active) as f64);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}
