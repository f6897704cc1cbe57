//! One flow's task: poll on the flow's interval, deliver due packets between polls, apply due
//! inbound events, record breakers and cycles; back off after failed cycles.

use super::hints;
use super::signals::Wake;
use super::{FlowHandler, RuntimeConfig};
use crate::clock::Clock;
use crate::http::metrics as m;
use crate::inbox::InboxWorker;
use crate::outbox::{DispatchReport, Dispatcher};
use crate::store::{BreakerStatus, CycleLog, Flow, Store};
use crate::webhook::FailureClass;
use jiff::Timestamp;
use rand::RngExt as _;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// The earliest due time of each flow's PENDING packets and inbound events, as last read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct DueTimes {
    pub(super) outbox: HashMap<String, Timestamp>,
    pub(super) inbox: HashMap<String, Timestamp>,
}

impl DueTimes {
    fn outbox_due(&self, flow_id: &str, now: Timestamp) -> bool {
        self.outbox.get(flow_id).is_some_and(|due| *due <= now)
    }

    fn inbox_due(&self, flow_id: &str, now: Timestamp) -> bool {
        self.inbox.get(flow_id).is_some_and(|due| *due <= now)
    }

    fn has_pending(&self, flow_id: &str) -> bool {
        self.outbox.contains_key(flow_id) || self.inbox.contains_key(flow_id)
    }
}

/// The cycles of every flow this process ran, written in batches: a cycle that found,
/// sent or failed something is written at once (with those waiting); idle cycles wait for
/// the supervisor's next reload, so a thousand idle flows cost one transaction per reload
/// rather than two statements per poll.
#[derive(Debug, Clone, Default)]
pub(super) struct CycleBook {
    waiting: Arc<Mutex<Vec<CycleLog>>>,
}

impl CycleBook {
    async fn record<S: Store>(&self, store: &S, log: CycleLog) {
        let urgent = log.found > 0 || log.sent > 0 || log.is_problem();
        self.lock().push(log);
        if urgent {
            self.flush(store).await;
        }
    }

    pub(super) async fn flush<S: Store>(&self, store: &S) {
        let logs = std::mem::take(&mut *self.lock());
        if logs.is_empty() {
            return;
        }
        if let Err(error) = store.record_cycles(&logs).await {
            tracing::error!(error = %error, cycles = logs.len(), "cannot write the sync log");
            // Kept for the next flush, up to a bound: the log must not eat the memory of a
            // process whose store is gone for long.
            let mut waiting = self.lock();
            if waiting.len() < 10_000 {
                let mut kept = logs;
                kept.append(&mut waiting);
                *waiting = kept;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CycleLog>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a task shares with the supervisor.
pub(super) struct TaskContext<S> {
    pub(super) store: S,
    pub(super) clock: Clock,
    pub(super) dispatcher: Dispatcher,
    pub(super) inbox: InboxWorker,
    pub(super) config: RuntimeConfig,
    pub(super) due: watch::Receiver<DueTimes>,
    pub(super) book: CycleBook,
}

/// The wait before the next poll: the interval, doubled for each consecutive failed cycle,
/// capped (so a wrong API key costs one login attempt per capped wait, not a storm).
pub(super) fn backoff(interval: Duration, failures: u32, cap: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let factor = 1u32 << failures.min(10);
    interval.saturating_mul(factor).min(cap.max(interval))
}

pub(super) async fn run<S: Store>(
    mut context: TaskContext<S>,
    handler: Arc<dyn FlowHandler<S>>,
    flow: Flow,
    wake: Arc<Wake>,
    mut stop: watch::Receiver<bool>,
) {
    let clock = context.clock.clone();
    let interval = Duration::from_secs(u64::from(flow.interval_seconds.max(1)));
    // Spread the first polls so that many flows do not all start at once.
    let first = rand::rng().random_range(Duration::ZERO..=interval.min(Duration::from_secs(5)));
    let mut next_poll = clock.after(first);
    let mut failures: u32 = 0;
    let mut recorded: HashMap<String, BreakerStatus> = HashMap::new();
    let mut watching_due = true;
    let mut woken = false;
    loop {
        let now = clock.now();
        let poll_now = wake.poll_now.swap(false, Ordering::SeqCst);
        let outbox_due = context.due.borrow_and_update().outbox_due(&flow.id, now);
        // A flow backing off after failures (a wrong key, Odoo down) keeps to its backoff
        // whatever hints say: a flood of them must not become a storm of logins.
        let hinted = failures == 0 && hints::lock(&wake.hints).is_due(now);
        if now >= next_poll || poll_now || hinted {
            let ticket = hints::lock(&wake.hints).start_poll(now);
            if !ticket.is_empty() {
                hints::before_poll(&context.store, &flow.id, &wake.hints, &ticket).await;
            }
            let failed = cycle(&context, handler.as_ref(), &flow, outbox_due || woken).await;
            if !ticket.is_empty() {
                hints::after_poll(&context.store, &flow.id, &wake.hints, &ticket).await;
            }
            failures = if failed {
                failures.saturating_add(1)
            } else {
                0
            };
            let wait = backoff(interval, failures, context.config.max_backoff);
            let jitter = rand::rng().random_range(Duration::ZERO..=wait / 10);
            next_poll = clock.after(wait + jitter);
        } else if failures == 0 && (outbox_due || woken) {
            // Between polls, deliver retries as they fall due.
            if let Some(sender) = handler.sender()
                && let Err(error) = context
                    .dispatcher
                    .deliver_due(&context.store, &flow.id, sender)
                    .await
            {
                tracing::error!(connection_id = %flow.id, error = %error, "cannot deliver due packets");
            }
        }
        let inbox_due = context
            .due
            .borrow_and_update()
            .inbox_due(&flow.id, clock.now());
        if let Some(applier) = handler.applier()
            && (woken || inbox_due)
        {
            match context
                .inbox
                .apply_due(&context.store, &flow.id, applier)
                .await
            {
                Ok(report) => {
                    for (outcome, count) in [
                        ("applied", report.applied),
                        ("retry", report.retried),
                        ("failed", report.failed),
                    ] {
                        if count > 0 {
                            ::metrics::counter!(m::INBOUND_APPLICATIONS_TOTAL, m::LABEL_FLOW => flow.id.clone(), m::LABEL_OUTCOME => outcome)
                                .increment(count);
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(connection_id = %flow.id, error = %error, "cannot apply due inbound events");
                }
            }
        }
        woken = false;
        record_breakers(&context, handler.as_ref(), &flow, &mut recorded).await;
        // With work pending, look again every `retry_every`; with none, sleep until the next
        // poll, a change of the due times or a wake-up (idle, a flow costs nothing between
        // polls).
        let pending = context.due.borrow_and_update().has_pending(&flow.id);
        let mut sleep_until = if pending {
            next_poll.min(clock.after(context.config.retry_every))
        } else {
            next_poll
        };
        if failures == 0
            && let Some(due) = hints::lock(&wake.hints).next_due()
        {
            sleep_until = sleep_until.min(due);
        }
        tokio::select! {
            _ = clock.sleep_until(sleep_until) => {}
            changed = context.due.changed(), if watching_due => {
                // The supervisor is gone (shutting down): fall back to the timer alone.
                watching_due = changed.is_ok();
            }
            _ = wake.notify.notified() => woken = true,
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Writes the state of the flow's targets' breakers when it changed, for `connections show`
/// and the TUI (the breakers live in this process's memory). Written once when the task
/// starts, since a previous process may have left "open".
async fn record_breakers<S: Store>(
    context: &TaskContext<S>,
    handler: &dyn FlowHandler<S>,
    flow: &Flow,
    recorded: &mut HashMap<String, BreakerStatus>,
) {
    let Some(sender) = handler.sender() else {
        return;
    };
    for target in sender.targets() {
        let record = context
            .dispatcher
            .breaker_record(&flow.id, &target.name, &target.key);
        if recorded.get(&target.name) == Some(&record.status) {
            continue;
        }
        match context.store.set_breaker_state(&record).await {
            Ok(()) => {
                recorded.insert(target.name, record.status);
            }
            Err(error) => {
                tracing::warn!(connection_id = %flow.id, error = %error, "cannot record the breaker state");
            }
        }
    }
}

/// One cycle: poll, deliver (when the poll wrote packets or older ones are due), log.
/// Returns whether it failed.
async fn cycle<S: Store>(
    context: &TaskContext<S>,
    handler: &dyn FlowHandler<S>,
    flow: &Flow,
    retries_due: bool,
) -> bool {
    let started_at = context.clock.now();
    let timer = std::time::Instant::now();
    let (polled, mut error) = match handler.poll(&context.store).await {
        Ok(report) => (Some(report), None),
        Err(error) => {
            tracing::error!(connection_id = %flow.id, class = error.class.as_str(), error = %error, "poll failed");
            (None, Some((error.class, error.message)))
        }
    };
    let wrote_packets = polled.is_some_and(|report| report.enqueued > 0);
    let mut dispatched = DispatchReport::default();
    if let Some(sender) = handler.sender()
        && (retries_due || wrote_packets)
    {
        match context
            .dispatcher
            .deliver_due(&context.store, &flow.id, sender)
            .await
        {
            Ok(report) => dispatched = report,
            Err(store_error) => {
                tracing::error!(connection_id = %flow.id, error = %store_error, "cannot deliver due packets");
                error.get_or_insert((FailureClass::StoreError, store_error.to_string()));
            }
        }
    }
    let log = CycleLog {
        flow_id: flow.id.clone(),
        started_at,
        found: polled.map_or(0, |report| report.found),
        sent: dispatched.delivered,
        failed: dispatched.retried + dispatched.failed,
        held_back: dispatched.held_back,
        error_message: error.as_ref().map(|(_, message)| message.clone()),
        duration_ms: u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let outcome = if error.is_some() {
        m::PollOutcome::Error
    } else {
        m::PollOutcome::Ok
    };
    ::metrics::counter!(m::POLL_CYCLES_TOTAL, m::LABEL_CONNECTION => flow.id.clone(), m::LABEL_OUTCOME => outcome.as_str())
        .increment(1);
    if let Some(report) = polled {
        ::metrics::counter!(m::ORDERS_FOUND_TOTAL, m::LABEL_CONNECTION => flow.id.clone())
            .increment(report.found);
        ::metrics::counter!(m::PACKETS_ENQUEUED_TOTAL, m::LABEL_CONNECTION => flow.id.clone())
            .increment(report.enqueued);
        ::metrics::gauge!(m::LAST_SYNC_TIMESTAMP_SECONDS, m::LABEL_CONNECTION => flow.id.clone())
            .set(context.clock.now().as_millisecond() as f64 / 1000.0);
    }
    tracing::info!(
        connection_id = %flow.id, kind = %flow.kind, found = log.found, enqueued = polled.map_or(0, |r| r.enqueued),
        sent = log.sent, failed = log.failed, held_back = log.held_back,
        millis = log.duration_ms, error = log.error_message.as_deref().unwrap_or(""), "cycle done"
    );
    let failed = log.error_message.is_some();
    context.book.record(&context.store, log).await;
    failed
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
