//! The inbox, one for every flow: events taken in over HTTP ([`receive`]) are verified,
//! stored and deduplicated before they are answered; the flow's [`InboxWorker`] then applies
//! them with its [`InboundApplier`], under the same leases, retry schedule and failed state as
//! outgoing packets.

pub mod receive;

use crate::clock::Clock;
use crate::outbox::BoxFuture;
use crate::store::{Application, ApplicationOutcome, InboundEvent, InboxStore, StoreError};
use crate::webhook::{DeliveryError, RetryDecision, RetrySchedule};
use jiff::SignedDuration;

/// How a flow applies its inbound events (to Odoo, through its workflow).
pub trait InboundApplier: Send + Sync {
    /// Applies one event. `Ok` says what was done (for the log and people); an error's class
    /// and `permanent` flag decide between a retry and the FAILED state, as for packets.
    fn apply<'a>(&'a self, event: &'a InboundEvent)
    -> BoxFuture<'a, Result<String, DeliveryError>>;
}

/// What one [`InboxWorker::apply_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: u64,
    pub retried: u64,
    pub failed: u64,
    pub lease_lost: u64,
}

/// Applies inbound events. One per process; `owner` unique among the processes sharing a
/// store.
#[derive(Debug, Clone)]
pub struct InboxWorker {
    pub owner: String,
    pub schedule: RetrySchedule,
    pub lease: SignedDuration,
    pub batch: u32,
    pub clock: Clock,
}

impl InboxWorker {
    /// The outbox's retry schedule (first try, then 5 retries from 30 s to 8 min), leases of a
    /// few minutes (an application makes several Odoo calls), 16 events at a time.
    pub fn new(owner: String, clock: Clock) -> InboxWorker {
        InboxWorker {
            owner,
            schedule: RetrySchedule::default(),
            lease: SignedDuration::from_secs(300),
            batch: 16,
            clock,
        }
    }

    /// Applies the flow's due events until none is due.
    pub async fn apply_due<S: InboxStore>(
        &self,
        store: &S,
        flow_id: &str,
        applier: &dyn InboundApplier,
    ) -> Result<ApplyReport, StoreError> {
        let mut report = ApplyReport::default();
        loop {
            let claimed = store
                .claim_inbound(
                    &self.owner,
                    flow_id,
                    self.clock.now(),
                    self.lease,
                    self.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let full = claimed.len() as u32 >= self.batch;
            for event in claimed {
                self.apply_one(store, applier, &event, &mut report).await?;
            }
            if !full {
                return Ok(report);
            }
        }
    }

    async fn apply_one<S: InboxStore>(
        &self,
        store: &S,
        applier: &dyn InboundApplier,
        event: &InboundEvent,
        report: &mut ApplyReport,
    ) -> Result<(), StoreError> {
        let started_at = self.clock.now();
        let timer = std::time::Instant::now();
        let result = applier.apply(event).await;
        let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        let outcome = match result {
            Ok(result) => {
                tracing::info!(
                    connection_id = %event.flow_id, event_id = %event.event_id, kind = %event.kind,
                    result = %result, "inbound event applied"
                );
                report.applied += 1;
                ApplicationOutcome::Applied { result }
            }
            Err(error) => {
                let schedule = RetrySchedule {
                    max_attempts: event.max_attempts,
                    ..self.schedule
                };
                tracing::warn!(
                    connection_id = %event.flow_id, event_id = %event.event_id, kind = %event.kind,
                    class = error.class.as_str(), attempts = event.attempts + 1, error = %error,
                    "inbound event not applied"
                );
                match schedule.decide(event.attempts, &error, &mut rand::rng()) {
                    RetryDecision::RetryIn(delay) => {
                        report.retried += 1;
                        ApplicationOutcome::Retry {
                            error: error.message,
                            failure_class: error.class,
                            next_attempt_at: self.clock.after(delay),
                        }
                    }
                    RetryDecision::GiveUp(_) => {
                        report.failed += 1;
                        ApplicationOutcome::Failed {
                            error: error.message,
                            failure_class: error.class,
                        }
                    }
                }
            }
        };
        let application = Application {
            started_at,
            duration_ms,
            outcome,
        };
        if !store
            .record_application(event.id, &self.owner, &application)
            .await?
        {
            report.lease_lost += 1;
        }
        Ok(())
    }
}
