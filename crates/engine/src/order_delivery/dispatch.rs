//! Sending due packets of the outbox.

use crate::clock::Clock;
use crate::delivery_store::{AttemptOutcome, BreakerRecord, Connection, DeliveryStore, Packet};
use crate::http::metrics::{self as m, DeliveryOutcome};
use crate::mirror_store::StoreError;
use crate::webhook::{
    BreakerState, CircuitBreaker, RetryDecision, RetrySchedule, WebhookSender, target_key,
};
use jiff::SignedDuration;

fn count_delivery(connection: &Connection, outcome: DeliveryOutcome) {
    ::metrics::counter!(m::DELIVERIES_TOTAL, m::LABEL_CONNECTION => connection.id.clone(), m::LABEL_OUTCOME => outcome.as_str())
        .increment(1);
}

/// What one [`Dispatcher::deliver_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retried: u64,
    /// Packets given up (attempts exhausted or refused for good): now FAILED.
    pub failed: u64,
    /// Packets given back untried because the target's circuit breaker is open.
    pub held_back: u64,
    /// Attempts whose outcome could not be recorded because the lease had passed to another
    /// worker (which then owns the packet).
    pub lease_lost: u64,
}

/// Leases and sends packets. One per process; its `owner` name must be unique among the
/// processes sharing a store.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub sender: WebhookSender,
    pub breaker: CircuitBreaker,
    pub schedule: RetrySchedule,
    pub owner: String,
    /// How long a claim protects a packet; longer than a send can take (the sender's
    /// timeout), so that a live worker never loses a packet to another one.
    pub lease: SignedDuration,
    /// Packets claimed at once.
    pub batch: u32,
    /// "Now" for claims and retry times: the system clock, or a manual one in tests.
    pub clock: Clock,
}

impl Dispatcher {
    /// The dispatcher a delivery process runs with: the default breaker and retry schedule,
    /// webhook POSTs timing out after `webhook_timeout`, leases longer than any send can take
    /// (4 × the timeout, at least a minute) so that a live worker never loses its packet,
    /// 32 packets claimed at once, the system clock. `owner` must be unique among the
    /// processes sharing the store ([`super::heartbeat::worker_id`]).
    pub fn for_process(
        owner: String,
        webhook_timeout: std::time::Duration,
    ) -> Result<Dispatcher, crate::webhook::ClientBuildError> {
        let timeout = webhook_timeout.max(std::time::Duration::from_secs(1));
        let sender = WebhookSender::new(crate::webhook::SenderConfig {
            timeout,
            ..crate::webhook::SenderConfig::default()
        })?;
        Ok(Dispatcher {
            sender,
            breaker: CircuitBreaker::new(crate::webhook::BreakerConfig::default()),
            schedule: RetrySchedule::default(),
            owner,
            lease: SignedDuration::from_secs(
                i64::try_from(timeout.as_secs().saturating_mul(4).max(60)).unwrap_or(600),
            ),
            batch: 32,
            clock: Clock::system(),
        })
    }

    /// `connection`'s target breaker as it stands, to record in the store.
    pub fn breaker_record(&self, connection: &Connection) -> BreakerRecord {
        let now = self.clock.now();
        let state = self.breaker.state(&target_key(&connection.webhook_url));
        let open_until = match state {
            BreakerState::Open { until } => {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                now.checked_add(SignedDuration::try_from(left).unwrap_or(SignedDuration::ZERO))
                    .ok()
            }
            _ => None,
        };
        BreakerRecord {
            connection_id: connection.id.clone(),
            state: state.as_str().to_owned(),
            open_until,
            updated_at: now,
        }
    }

    /// Sends `connection`'s due packets until none is due, or its target's breaker opens.
    pub async fn deliver_due<S: DeliveryStore>(
        &self,
        store: &S,
        connection: &Connection,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let target = target_key(&connection.webhook_url);
        loop {
            // While the target's breaker is not closed, one packet at a time: it is either
            // the probe that decides whether the target is back, or given back untried.
            let limit = match self.breaker.state(&target) {
                BreakerState::Closed => self.batch.max(1),
                _ => 1,
            };
            let claimed = store
                .claim_due(
                    &self.owner,
                    Some(&connection.id),
                    self.clock.now(),
                    self.lease,
                    limit,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let full = claimed.len() as u32 >= limit;
            let held_back = report.held_back;
            for packet in claimed {
                self.deliver_one(store, connection, &target, packet, &mut report)
                    .await?;
            }
            if !full || report.held_back > held_back {
                return Ok(report);
            }
        }
    }

    async fn deliver_one<S: DeliveryStore>(
        &self,
        store: &S,
        connection: &Connection,
        target: &str,
        packet: Packet,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let permit = match self.breaker.try_acquire(target) {
            Ok(permit) => permit,
            Err(refused) => {
                // Open: due again when the cool-down ends at the latest; a probe in flight
                // elsewhere: shortly, to see how it went.
                let wait = if refused.retry_at.is_some() {
                    self.breaker.config().cool_down
                } else {
                    std::time::Duration::from_secs(1)
                };
                let due = self
                    .clock
                    .now()
                    .checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::ZERO))
                    .unwrap_or_else(|_| self.clock.now());
                store.release(&packet.id, &self.owner, due).await?;
                report.held_back += 1;
                return Ok(());
            }
        };
        let outgoing = crate::webhook::Packet {
            id: packet.id.clone(),
            connection_id: packet.connection_id.clone(),
            body: bytes::Bytes::from(packet.body.clone()),
        };
        let started = std::time::Instant::now();
        let result = self
            .sender
            .send(
                &connection.webhook_url,
                &connection.webhook_secret,
                &outgoing,
            )
            .await;
        permit.record(&result);
        ::metrics::histogram!(m::DELIVERY_SECONDS).record(started.elapsed().as_secs_f64());
        ::metrics::gauge!(m::BREAKER_OPEN, m::LABEL_TARGET => target.to_owned())
            .set(m::breaker_value(&self.breaker.state(target)));
        let outcome = match &result {
            Ok(delivered) => {
                tracing::info!(
                    connection_id = %connection.id, packet_id = %packet.id, event = packet.event.as_str(),
                    version = packet.version, status = delivered.status,
                    millis = started.elapsed().as_millis() as u64, "packet delivered"
                );
                report.delivered += 1;
                count_delivery(connection, DeliveryOutcome::Delivered);
                AttemptOutcome::Delivered {
                    at: self.clock.now(),
                }
            }
            Err(error) => {
                let schedule = RetrySchedule {
                    max_attempts: packet.max_attempts,
                    ..self.schedule
                };
                let decision = schedule.decide(packet.attempts, error, &mut rand::rng());
                tracing::warn!(
                    connection_id = %connection.id, packet_id = %packet.id, class = error.class.as_str(),
                    attempts = packet.attempts + 1, error = %error, "packet not delivered"
                );
                ::metrics::counter!(m::DELIVERY_FAILURES_TOTAL, m::LABEL_CONNECTION => connection.id.clone(), m::LABEL_CLASS => error.class.as_str())
                    .increment(1);
                match decision {
                    RetryDecision::RetryIn(delay) => {
                        report.retried += 1;
                        count_delivery(connection, DeliveryOutcome::Retry);
                        let next = self
                            .clock
                            .now()
                            .checked_add(
                                SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX),
                            )
                            .unwrap_or_else(|_| self.clock.now());
                        AttemptOutcome::Retry {
                            error: error.to_string(),
                            failure_class: error.class.as_str().to_owned(),
                            next_attempt_at: next,
                        }
                    }
                    RetryDecision::GiveUp(_) => {
                        report.failed += 1;
                        count_delivery(connection, DeliveryOutcome::Failed);
                        AttemptOutcome::Failed {
                            error: error.to_string(),
                            failure_class: error.class.as_str().to_owned(),
                        }
                    }
                }
            }
        };
        if !store
            .record_attempt(&packet.id, &self.owner, &outcome)
            .await?
        {
            report.lease_lost += 1;
        }
        Ok(())
    }
}
