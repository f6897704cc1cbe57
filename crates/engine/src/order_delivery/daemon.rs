//! The delivery daemon: one task per active connection, each polling on its own interval and
//! delivering its due packets, supervised so that connections added, edited, paused or
//! removed while it runs take effect without a restart.

use super::dispatch::{DispatchReport, Dispatcher};
use super::poll::{PollOptions, PollReport, poll};
use crate::delivery_store::{Connection, CycleLog, DeliveryStore};
use crate::http::metrics as m;
use jiff::Timestamp;
use odoo_rpc::{ClientConfig, HttpPool, OdooClient};
use rand::RngExt as _;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub poll: PollOptions,
    /// How often the supervisor re-reads the connections.
    pub reload_every: Duration,
    /// How often a connection's due retries are looked for between polls.
    pub retry_every: Duration,
    /// Longest wait after repeated failed cycles (wrong key, Odoo down): failures back off
    /// from the polling interval, doubling, up to this.
    pub max_backoff: Duration,
    /// How long in-flight cycles get to finish on shutdown.
    pub shutdown_deadline: Duration,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            poll: PollOptions::default(),
            reload_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

/// One cycle's outcome, as the sync log and the activity feed show it.
#[derive(Debug, Clone)]
pub struct CycleOutcome {
    pub connection_id: String,
    pub polled: Option<PollReport>,
    pub dispatched: DispatchReport,
    pub error: Option<String>,
}

/// The earliest `next_attempt_at` of each connection's PENDING packets, as last read.
#[derive(Debug, Default)]
struct NextDue(HashMap<String, Timestamp>);

impl NextDue {
    fn is_due(&self, connection_id: &str, now: Timestamp) -> bool {
        self.0.get(connection_id).is_some_and(|due| *due <= now)
    }

    fn has_pending(&self, connection_id: &str) -> bool {
        self.0.contains_key(connection_id)
    }
}

struct Running {
    /// The connection as the task was started with it: any edit restarts the task.
    connection: Connection,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Runs until `shutdown` becomes true, then stops polling, lets in-flight cycles finish
/// within the deadline, and returns.
pub async fn run<S>(
    store: S,
    dispatcher: Dispatcher,
    config: DaemonConfig,
    mut shutdown: watch::Receiver<bool>,
) where
    S: DeliveryStore + Clone + 'static,
{
    let mut running: HashMap<String, Running> = HashMap::new();
    // One pool for every tenant's Odoo: a client's own pool and TLS roots cost a few
    // hundred KiB, times a thousand connections.
    let http_pool = match HttpPool::new(Duration::from_secs(10)) {
        Ok(pool) => Some(pool),
        Err(error) => {
            tracing::warn!(error = %error, "cannot build a shared HTTP pool; each connection gets its own");
            None
        }
    };
    // Which connections have packets pending, and from when: read once per reload for all
    // of them, so that a connection with nothing to retry never queries the outbox.
    let (next_due_sender, next_due) = watch::channel(NextDue::default());
    loop {
        match store.next_due_by_connection().await {
            Ok(due) => {
                next_due_sender.send_if_modified(|known| {
                    let changed = known.0 != due;
                    known.0 = due;
                    changed
                });
            }
            Err(error) => tracing::error!(error = %error, "cannot read the outbox's due times"),
        }
        match store.connections().await {
            Ok(connections) => reconcile(
                &store,
                &dispatcher,
                &config,
                &next_due,
                http_pool.as_ref(),
                &mut running,
                connections,
            ),
            Err(error) => tracing::error!(error = %error, "cannot read the connections"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.reload_every) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    tracing::info!(
        tasks = running.len(),
        "shutting down: finishing in-flight cycles"
    );
    let handles: Vec<JoinHandle<()>> = running
        .into_values()
        .map(|task| {
            let _ = task.stop.send(true);
            task.handle
        })
        .collect();
    let all = futures_join_all(handles);
    if tokio::time::timeout(config.shutdown_deadline, all)
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown deadline passed with cycles still running; they are abandoned (their packets stay in the outbox)"
        );
    }
}

async fn futures_join_all(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

fn reconcile<S>(
    store: &S,
    dispatcher: &Dispatcher,
    config: &DaemonConfig,
    next_due: &watch::Receiver<NextDue>,
    http_pool: Option<&HttpPool>,
    running: &mut HashMap<String, Running>,
    connections: Vec<Connection>,
) where
    S: DeliveryStore + Clone + 'static,
{
    let wanted: HashMap<String, Connection> = connections
        .into_iter()
        .filter(|connection| connection.is_active)
        .map(|connection| (connection.id.clone(), connection))
        .collect();
    running.retain(|id, task| {
        let keep = wanted
            .get(id)
            .is_some_and(|connection| same_settings(connection, &task.connection))
            && !task.handle.is_finished();
        if !keep {
            tracing::info!(connection_id = %id, "connection removed, paused or edited: stopping its task");
            let _ = task.stop.send(true);
        }
        keep
    });
    for (id, connection) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        tracing::info!(connection_id = %id, name = %connection.name, "starting the connection's task");
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(connection_task(
            store.clone(),
            dispatcher.clone(),
            config.clone(),
            next_due.clone(),
            http_pool.cloned(),
            connection.clone(),
            stopped,
        ));
        running.insert(
            id,
            Running {
                connection,
                stop,
                handle,
            },
        );
    }
}

/// Whether two versions of a connection poll and deliver alike (the cursor and the last
/// sync time move on their own and do not restart the task).
fn same_settings(a: &Connection, b: &Connection) -> bool {
    a.updated_at == b.updated_at
}

fn client_for(
    connection: &Connection,
    http_pool: Option<HttpPool>,
) -> Result<OdooClient, odoo_rpc::Error> {
    let mut config = ClientConfig::new(
        connection.odoo_url.clone(),
        connection.odoo_db.clone(),
        connection.odoo_username.clone(),
        connection.odoo_api_key.clone(),
    );
    config.http_pool = http_pool;
    if connection.odoo_min_delay_ms > 0 {
        config.min_call_interval = Some(Duration::from_millis(u64::from(
            connection.odoo_min_delay_ms,
        )));
    }
    OdooClient::new(config)
}

async fn connection_task<S: DeliveryStore>(
    store: S,
    dispatcher: Dispatcher,
    config: DaemonConfig,
    mut next_due: watch::Receiver<NextDue>,
    http_pool: Option<HttpPool>,
    mut connection: Connection,
    mut stop: watch::Receiver<bool>,
) {
    let client = match client_for(&connection, http_pool) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(connection_id = %connection.id, error = %error, "cannot build the Odoo client");
            return;
        }
    };
    let interval = Duration::from_secs(u64::from(connection.polling_interval_seconds.max(1)));
    // Spread the first polls so that many connections do not all start at once.
    let first = rand::rng().random_range(Duration::ZERO..=interval.min(Duration::from_secs(5)));
    let mut next_poll = tokio::time::Instant::now() + first;
    let mut failures: u32 = 0;
    let mut recorded_breaker: Option<String> = None;
    let mut watching_due = true;
    loop {
        let now = tokio::time::Instant::now();
        if now >= next_poll {
            // The task keeps the settings it started with, but the cursor moves with every
            // cycle (and with other processes' cycles): read it afresh, or every poll would
            // start again from where the task started and re-read every order since.
            match store.connection(&connection.id).await {
                Ok(Some(stored)) => connection.cursor = stored.cursor,
                // Removed: the supervisor stops this task at its next reload.
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(connection_id = %connection.id, error = %error, "cannot read the connection's cursor; polling from the last one known");
                }
            }
            let retries_due = next_due
                .borrow_and_update()
                .is_due(&connection.id, dispatcher.clock.now());
            let outcome = run_cycle(
                &client,
                &store,
                &dispatcher,
                &config,
                &connection,
                retries_due,
            )
            .await;
            failures = if outcome.error.is_some() {
                failures.saturating_add(1)
            } else {
                0
            };
            let wait = backoff(interval, failures, config.max_backoff);
            let jitter = rand::rng().random_range(Duration::ZERO..=wait / 10);
            next_poll = tokio::time::Instant::now() + wait + jitter;
        } else if failures == 0
            && next_due
                .borrow_and_update()
                .is_due(&connection.id, dispatcher.clock.now())
        {
            // Between polls, deliver retries as they fall due.
            if let Err(error) = dispatcher.deliver_due(&store, &connection).await {
                tracing::error!(connection_id = %connection.id, error = %error, "cannot deliver due packets");
            }
        }
        record_breaker(&store, &dispatcher, &connection, &mut recorded_breaker).await;
        // With packets pending, look again every `retry_every`; with none, sleep until the
        // next poll or until the outbox's due times change (idle, a connection costs no
        // wake-ups between polls).
        let pending = next_due.borrow_and_update().has_pending(&connection.id);
        let sleep_until = if pending {
            next_poll.min(tokio::time::Instant::now() + config.retry_every)
        } else {
            next_poll
        };
        tokio::select! {
            _ = tokio::time::sleep_until(sleep_until) => {}
            changed = next_due.changed(), if watching_due => {
                // The supervisor is gone (shutting down): fall back to the timer alone.
                watching_due = changed.is_ok();
            }
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Writes the connection's breaker state when it changed, for `connections show` and the
/// TUI (the breaker itself lives in this process's memory).
async fn record_breaker<S: DeliveryStore>(
    store: &S,
    dispatcher: &Dispatcher,
    connection: &Connection,
    recorded: &mut Option<String>,
) {
    let record = dispatcher.breaker_record(connection);
    // Written once when the task starts (a previous process may have left "open"), then
    // on each change.
    if recorded.as_deref() == Some(record.state.as_str()) {
        return;
    }
    match store.set_breaker_state(&record).await {
        Ok(()) => *recorded = Some(record.state),
        Err(error) => {
            tracing::warn!(connection_id = %connection.id, error = %error, "cannot record the breaker state");
        }
    }
}

/// The wait before the next poll: the interval, doubled for each consecutive failed cycle,
/// capped (so a wrong API key costs one login attempt per capped wait, not a storm).
fn backoff(interval: Duration, failures: u32, cap: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let factor = 1u32 << failures.min(10);
    interval.saturating_mul(factor).min(cap.max(interval))
}

/// One cycle: poll, deliver, log.
pub async fn cycle<S: DeliveryStore>(
    client: &OdooClient,
    store: &S,
    dispatcher: &Dispatcher,
    config: &DaemonConfig,
    connection: &Connection,
) -> CycleOutcome {
    run_cycle(client, store, dispatcher, config, connection, true).await
}

/// A cycle that asks the outbox for due packets only when the poll wrote some or
/// `retries_due` says older ones are due: an idle poll then costs no claim.
async fn run_cycle<S: DeliveryStore>(
    client: &OdooClient,
    store: &S,
    dispatcher: &Dispatcher,
    config: &DaemonConfig,
    connection: &Connection,
    retries_due: bool,
) -> CycleOutcome {
    let started_at = Timestamp::now();
    let timer = std::time::Instant::now();
    let (polled, mut error) = match poll(client, store, connection, &config.poll).await {
        Ok(report) => (Some(report), None),
        Err(error) => {
            tracing::error!(connection_id = %connection.id, class = error.failure_class(), error = %error, "poll failed");
            (None, Some(error.to_string()))
        }
    };
    let wrote_packets = polled.as_ref().is_some_and(|report| report.enqueued > 0);
    let dispatched = if !(retries_due || wrote_packets) {
        DispatchReport::default()
    } else {
        match dispatcher.deliver_due(store, connection).await {
            Ok(report) => report,
            Err(store_error) => {
                tracing::error!(connection_id = %connection.id, error = %store_error, "cannot deliver due packets");
                error.get_or_insert_with(|| store_error.to_string());
                DispatchReport::default()
            }
        }
    };
    let log = CycleLog {
        connection_id: connection.id.clone(),
        started_at,
        orders_found: polled.map_or(0, |report| report.orders_found),
        orders_sent: dispatched.delivered,
        orders_failed: dispatched.retried + dispatched.failed,
        error_message: error.clone(),
        duration_ms: u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let id = connection.id.clone();
    let outcome = if error.is_some() {
        m::PollOutcome::Error
    } else {
        m::PollOutcome::Ok
    };
    ::metrics::counter!(m::POLL_CYCLES_TOTAL, m::LABEL_CONNECTION => id.clone(), m::LABEL_OUTCOME => outcome.as_str())
        .increment(1);
    if let Some(report) = polled {
        ::metrics::counter!(m::ORDERS_FOUND_TOTAL, m::LABEL_CONNECTION => id.clone())
            .increment(report.orders_found);
        ::metrics::counter!(m::PACKETS_ENQUEUED_TOTAL, m::LABEL_CONNECTION => id.clone())
            .increment(report.enqueued);
        ::metrics::gauge!(m::LAST_SYNC_TIMESTAMP_SECONDS, m::LABEL_CONNECTION => id)
            .set(Timestamp::now().as_millisecond() as f64 / 1000.0);
    }
    if let Err(store_error) = store.log_cycle(&log).await {
        tracing::error!(connection_id = %connection.id, error = %store_error, "cannot write the sync log");
    }
    tracing::info!(
        connection_id = %connection.id, found = log.orders_found, enqueued = polled.map_or(0, |r| r.enqueued),
        sent = log.orders_sent, failed = log.orders_failed, held_back = dispatched.held_back,
        millis = log.duration_ms, error = error.as_deref().unwrap_or(""), "cycle done"
    );
    CycleOutcome {
        connection_id: connection.id.clone(),
        polled,
        dispatched,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn failures_back_off_from_the_interval_to_the_cap() {
        let minute = Duration::from_secs(60);
        let cap = Duration::from_secs(600);
        assert_eq!(backoff(minute, 0, cap), minute);
        assert_eq!(backoff(minute, 1, cap), Duration::from_secs(120));
        assert_eq!(backoff(minute, 3, cap), Duration::from_secs(480));
        assert_eq!(backoff(minute, 4, cap), cap);
        assert_eq!(backoff(minute, 60, cap), cap);
        let hour = Duration::from_secs(3600);
        assert_eq!(
            backoff(hour, 2, cap),
            hour,
            "never shorter than the interval"
        );
    }
}
