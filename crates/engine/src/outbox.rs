//! The outbox worker, one for every flow: it leases a flow's due packets, sends each through
//! its target's circuit breaker with the flow's [`PacketSender`], and records every attempt
//! with the retry schedule. What a packet is (an order webhook, a marketplace status, an
//! enrichment request) is the sender's business; when and how often it is tried is decided
//! here, once, for all of them.

use crate::clock::Clock;
use crate::http::metrics::{self as m, DeliveryOutcome};
use crate::store::{
    Attempt, AttemptOutcome, BreakerRecord, BreakerStatus, OutboxStore, Packet, StoreError,
};
use crate::webhook::{
    BreakerConfig, BreakerState, CircuitBreaker, Delivered, DeliveryError, RetryDecision,
    RetrySchedule,
};
use futures_util::stream::{self, StreamExt};
use jiff::SignedDuration;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, for the object-safe flow traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One place a flow sends packets to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The flow's name for it, as packets carry it (`webhook`).
    pub name: String,
    /// Its circuit breaker's key: an origin (`https://hooks.example.com`), so that every flow
    /// sending to one server shares its breaker.
    pub key: String,
}

/// How a flow sends its packets.
pub trait PacketSender: Send + Sync {
    /// Every target the flow sends to.
    fn targets(&self) -> Vec<Target>;

    /// The breaker key of the packet's target.
    fn target_key(&self, packet: &Packet) -> String;

    /// One attempt to send `packet`. Signatures carry the wall clock's time, whatever clock
    /// schedules the attempts: the receiver checks them against its own.
    fn send<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, Result<Delivered, DeliveryError>>;

    /// The flow's own retry schedule (a marketplace's pattern); `None`: the dispatcher's.
    /// Each packet's `max_attempts` still bounds its retries.
    fn retry_schedule(&self) -> Option<RetrySchedule> {
        None
    }

    /// Packets sent at once. Above 1, the dispatcher also claims no more than this at a time,
    /// so that replicas sharing the flow share its packets; 1 (the default) sends a claimed
    /// batch one packet after the other.
    fn in_flight(&self) -> usize {
        1
    }
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

impl DispatchReport {
    pub fn add(&mut self, other: DispatchReport) {
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.failed += other.failed;
        self.held_back += other.held_back;
        self.lease_lost += other.lease_lost;
    }
}

/// Leases and sends packets. One per process (clones share its breakers); its `owner` name
/// must be unique among the processes sharing a store.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub breaker: CircuitBreaker,
    pub schedule: RetrySchedule,
    pub owner: String,
    /// How long a claim protects a packet; longer than a send can take, so that a live worker
    /// never loses a packet to another one.
    pub lease: SignedDuration,
    /// Packets claimed at once.
    pub batch: u32,
    /// "Now" for claims, retry times, signatures and breakers.
    pub clock: Clock,
}

impl Dispatcher {
    /// The default breaker and retry schedule, leases longer than any send can take (4 × the
    /// send timeout, at least a minute), 32 packets claimed at once.
    pub fn new(owner: String, send_timeout: Duration, clock: Clock) -> Dispatcher {
        Dispatcher {
            breaker: CircuitBreaker::with_clock(BreakerConfig::default(), clock.clone()),
            schedule: RetrySchedule::default(),
            owner,
            lease: SignedDuration::from_secs(
                i64::try_from(send_timeout.as_secs().saturating_mul(4).max(60)).unwrap_or(600),
            ),
            batch: 32,
            clock,
        }
    }

    /// The state of a flow's target, to record in the store.
    pub fn breaker_record(&self, flow_id: &str, target: &str, key: &str) -> BreakerRecord {
        let (status, open_until) = match self.breaker.state(key) {
            BreakerState::Closed => (BreakerStatus::Closed, None),
            BreakerState::Open { until } => (BreakerStatus::Open, Some(until)),
            BreakerState::HalfOpen => (BreakerStatus::HalfOpen, None),
        };
        BreakerRecord {
            flow_id: flow_id.to_owned(),
            target: target.to_owned(),
            status,
            open_until,
            updated_at: self.clock.now(),
        }
    }

    /// Sends the flow's due packets until none is due, or a target's breaker refuses one.
    pub async fn deliver_due<S: OutboxStore>(
        &self,
        store: &S,
        flow_id: &str,
        sender: &dyn PacketSender,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let targets = sender.targets();
        loop {
            // While a target's breaker is not closed, one packet at a time: it is either the
            // probe that decides whether the target is back, or given back untried.
            let all_closed = targets
                .iter()
                .all(|target| self.breaker.state(&target.key) == BreakerState::Closed);
            let in_flight = sender.in_flight().max(1);
            let limit = if !all_closed {
                1
            } else if in_flight > 1 {
                self.batch
                    .clamp(1, u32::try_from(in_flight).unwrap_or(u32::MAX))
            } else {
                self.batch.max(1)
            };
            let claimed = store
                .claim_due(
                    &self.owner,
                    Some(flow_id),
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
            if in_flight > 1 {
                let mut sending = stream::iter(claimed)
                    .map(|packet| async move {
                        let mut one = DispatchReport::default();
                        self.deliver_one(store, sender, packet, &mut one)
                            .await
                            .map(|()| one)
                    })
                    .buffer_unordered(in_flight);
                while let Some(one) = sending.next().await {
                    report.add(one?);
                }
            } else {
                for packet in claimed {
                    self.deliver_one(store, sender, packet, &mut report).await?;
                }
            }
            if !full || report.held_back > held_back {
                return Ok(report);
            }
        }
    }

    async fn deliver_one<S: OutboxStore>(
        &self,
        store: &S,
        sender: &dyn PacketSender,
        packet: Packet,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let target = sender.target_key(&packet);
        let permit = match self.breaker.try_acquire(&target) {
            Ok(permit) => permit,
            Err(refused) => {
                // Open: due again when the cool-down ends; a probe in flight elsewhere:
                // shortly, to see how it went.
                let due = refused
                    .retry_at
                    .unwrap_or_else(|| self.clock.after(Duration::from_secs(1)));
                store.release(&packet.id, &self.owner, due).await?;
                report.held_back += 1;
                return Ok(());
            }
        };
        let started_at = self.clock.now();
        let timer = std::time::Instant::now();
        let result = sender.send(&packet).await;
        permit.record(&result);
        let elapsed = timer.elapsed();
        ::metrics::histogram!(m::DELIVERY_SECONDS).record(elapsed.as_secs_f64());
        ::metrics::gauge!(m::BREAKER_OPEN, m::LABEL_TARGET => target.clone())
            .set(m::breaker_value(&self.breaker.state(&target)));
        let (outcome, status_code) = match &result {
            Ok(delivered) => {
                tracing::info!(
                    connection_id = %packet.flow_id, packet_id = %packet.id, event = %packet.event,
                    version = packet.version, status = delivered.status,
                    millis = elapsed.as_millis() as u64, "packet delivered"
                );
                report.delivered += 1;
                count_delivery(&packet, DeliveryOutcome::Delivered);
                (AttemptOutcome::Delivered, Some(delivered.status))
            }
            Err(error) => (
                self.after_failure(sender, &packet, error, report),
                error.status,
            ),
        };
        let attempt = Attempt {
            started_at,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            status_code,
            outcome,
        };
        if !store
            .record_attempt(&packet.id, &self.owner, &attempt)
            .await?
        {
            report.lease_lost += 1;
        }
        Ok(())
    }

    fn after_failure(
        &self,
        sender: &dyn PacketSender,
        packet: &Packet,
        error: &DeliveryError,
        report: &mut DispatchReport,
    ) -> AttemptOutcome {
        let schedule = RetrySchedule {
            max_attempts: packet.max_attempts,
            ..sender.retry_schedule().unwrap_or(self.schedule)
        };
        let decision = schedule.decide(packet.attempts, error, &mut rand::rng());
        tracing::warn!(
            connection_id = %packet.flow_id, packet_id = %packet.id, class = error.class.as_str(),
            attempts = packet.attempts + 1, error = %error, "packet not delivered"
        );
        ::metrics::counter!(m::DELIVERY_FAILURES_TOTAL, m::LABEL_CONNECTION => packet.flow_id.clone(), m::LABEL_CLASS => error.class.as_str())
            .increment(1);
        match decision {
            RetryDecision::RetryIn(delay) => {
                report.retried += 1;
                count_delivery(packet, DeliveryOutcome::Retry);
                AttemptOutcome::Retry {
                    error: error.to_string(),
                    failure_class: error.class,
                    next_attempt_at: self.clock.after(delay),
                }
            }
            RetryDecision::GiveUp(_) => {
                report.failed += 1;
                count_delivery(packet, DeliveryOutcome::Failed);
                AttemptOutcome::Failed {
                    error: error.to_string(),
                    failure_class: error.class,
                }
            }
        }
    }
}

fn count_delivery(packet: &Packet, outcome: DeliveryOutcome) {
    ::metrics::counter!(m::DELIVERIES_TOTAL, m::LABEL_CONNECTION => packet.flow_id.clone(), m::LABEL_OUTCOME => outcome.as_str())
        .increment(1);
}
