//! One pass of a job by hand or by cron (`enrich run`), and a replay of one record
//! (`enrich replay`): the flow's feed and the outbox's dispatcher, run once.

use super::error::EnrichError;
use super::flow::EnrichmentFlow;
use super::metrics;
use super::record::{self, EmissionState, RecordState};
use crate::outbox::{DispatchReport, Dispatcher};
use crate::store::{Packet, PacketFilter, PacketStatus, Store};
use std::collections::{BTreeMap, HashSet};

/// What [`run_pass`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub job: String,
    /// Records matching the job's domain.
    pub matching: u64,
    pub applied: u64,
    pub failed: u64,
    /// Records whose failures reached `max_failures` during this pass.
    pub disabled_now: u64,
    /// Matching records applied, not by this pass (before it, or by another process
    /// meanwhile): one emission per packet version.
    pub already_applied: u64,
    /// Matching records disabled by their breaker, not by this pass.
    pub disabled: u64,
    /// Records another process was emitting when the pass ended.
    pub held_elsewhere: u64,
    /// Packets given back untried because the endpoint's breaker is open.
    pub held_back: u64,
    pub failures_by_class: BTreeMap<&'static str, u64>,
}

/// The job's packets, every status.
pub async fn packets<S: Store>(store: &S, flow_id: &str) -> Result<Vec<Packet>, EnrichError> {
    Ok(store
        .packets(&PacketFilter {
            flow_id: Some(flow_id.to_owned()),
            status: None,
            limit: 0,
        })
        .await?)
}

/// The job's records, as its packets at the job's packet version leave them.
pub async fn records<S: Store>(
    store: &S,
    flow: &EnrichmentFlow,
) -> Result<Vec<RecordState>, EnrichError> {
    Ok(record::records(
        &packets(store, flow.flow_id()).await?,
        &flow.job().packet_version,
    ))
}

/// Delivers the flow's due packets until none is left or the endpoint's breaker refuses.
async fn deliver<S: Store>(
    store: &S,
    flow: &EnrichmentFlow,
    dispatcher: &Dispatcher,
) -> Result<DispatchReport, EnrichError> {
    let mut total = DispatchReport::default();
    loop {
        let report = dispatcher.deliver_due(store, flow.flow_id(), flow).await?;
        total.add(report);
        if report.held_back > 0 || report.delivered + report.retried + report.failed == 0 {
            return Ok(total);
        }
    }
}

/// One pass: the job's failed packets waiting for their retry are due now (this pass is
/// it), every matching record without a packet at the job's packet version gets one, and
/// everything due is sent and its answer applied.
pub async fn run_pass<S: Store>(
    store: &S,
    flow: &EnrichmentFlow,
    dispatcher: &Dispatcher,
) -> Result<JobReport, EnrichError> {
    let job = flow.job();
    store
        .bring_forward(flow.flow_id(), dispatcher.clock.now())
        .await?;
    let (polled, matching) = flow.emit_due(store).await?;
    let matching: HashSet<i64> = matching.into_iter().collect();
    flow.take_tally();
    let delivered = deliver(store, flow, dispatcher).await?;
    let tally = flow.take_tally();
    let after = records(store, flow).await?;
    let now = dispatcher.clock.now();
    let mut report = JobReport {
        job: job.name.clone(),
        matching: polled.found,
        applied: tally.applied,
        failed: tally.failed,
        held_back: delivered.held_back,
        failures_by_class: tally.failures_by_class,
        ..JobReport::default()
    };
    // What this pass's sends did is in the tally; the rest of each record's state was so
    // before the pass.
    for record in after.iter().filter(|r| matching.contains(&r.record_id)) {
        match record.state {
            EmissionState::Applied if !tally.applied_records.contains(&record.record_id) => {
                report.already_applied += 1;
            }
            EmissionState::Disabled if tally.disabled_records.contains(&record.record_id) => {
                report.disabled_now += 1;
            }
            EmissionState::Disabled => report.disabled += 1,
            EmissionState::Pending if record.held_elsewhere(&dispatcher.owner, now) => {
                report.held_elsewhere += 1;
            }
            _ => {}
        }
    }
    metrics::job(&job.name, &after);
    tracing::info!(
        job = %job.name, matching = report.matching, applied = report.applied,
        failed = report.failed, disabled_now = report.disabled_now,
        already_applied = report.already_applied, disabled = report.disabled,
        held_elsewhere = report.held_elsewhere, held_back = report.held_back,
        "enrichment job run"
    );
    Ok(report)
}

/// What [`replay`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub job: String,
    pub record_id: i64,
    pub packet_version: String,
    pub packet_id: String,
    pub payload_hash: String,
    /// The previous emission's packet id and hash, when there was one (a forced replay).
    pub previous: Option<(String, String)>,
    /// The packet after the attempt.
    pub outcome: ReplayOutcome,
}

impl ReplayReport {
    /// The payload changed since the previous emission.
    pub fn drift(&self) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|(_, hash)| *hash != self.payload_hash)
    }
}

/// How the replayed packet stands once the attempt is over.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayOutcome {
    Applied,
    Failed {
        class: String,
        error: String,
        failures: u32,
        disabled: bool,
    },
    /// The endpoint's breaker is open: not sent, nothing counted.
    HeldBack,
    /// Another worker holds it.
    HeldElsewhere,
}

/// Emits one record now: its first emission, or with `force` a new packet after the
/// previous one (re-enabling a disabled record, replacing one still waiting), logged as a
/// replay with its drift. Without `force`, a record emitted before is
/// [`EnrichError::AlreadyEmitted`]. The job's other due packets go out with it, as in a pass.
pub async fn replay<S: Store>(
    store: &S,
    flow: &EnrichmentFlow,
    dispatcher: &Dispatcher,
    record_id: i64,
    force: bool,
) -> Result<ReplayReport, EnrichError> {
    let job = flow.job();
    let types = flow.check_fields().await?;
    let read = flow.read_record(record_id).await?;
    let subject_packets: Vec<Packet> = packets(store, flow.flow_id())
        .await?
        .into_iter()
        .filter(|packet| packet.subject.model == job.model && packet.subject.id == record_id)
        .collect();
    let newest_version = subject_packets
        .iter()
        .map(|packet| packet.version)
        .max()
        .unwrap_or(0);
    let previous = record::records(&subject_packets, &job.packet_version)
        .into_iter()
        .next();
    let fresh = flow.new_packet(
        record_id,
        &read,
        &types,
        newest_version + 1,
        previous.is_some(),
    );
    if let Some(previous) = &previous {
        if !force {
            return Err(EnrichError::AlreadyEmitted {
                job: job.name.clone(),
                record: Box::new(previous.clone()),
                current_hash: fresh.payload_hash,
            });
        }
        let now = dispatcher.clock.now();
        if previous.held_elsewhere(&dispatcher.owner, now) {
            return Err(EnrichError::HeldElsewhere {
                job: job.name.clone(),
                record_id,
                owner: previous.leased_by.clone().unwrap_or_default(),
            });
        }
        if previous.state == EmissionState::Pending {
            // The replay replaces it: the outbox sends a subject's lowest pending version
            // first, and this one is not to be sent any more.
            store.discard(&previous.packet_id, now).await?;
        }
        tracing::warn!(
            job = %job.name, record_id, previous_packet_id = %previous.packet_id,
            packet_id = %fresh.id, previous_hash = %previous.payload_hash,
            payload_hash = %fresh.payload_hash,
            drift = previous.payload_hash != fresh.payload_hash,
            "forced replay"
        );
    }
    let counts = store
        .enqueue(flow.flow_id(), std::slice::from_ref(&fresh), None)
        .await?;
    if counts.inserted == 0 {
        return Err(EnrichError::HeldElsewhere {
            job: job.name.clone(),
            record_id,
            owner: "another process".to_owned(),
        });
    }
    let delivered = deliver(store, flow, dispatcher).await?;
    let sent = store.packet(&fresh.id).await?;
    let outcome = match sent {
        Some(packet) if packet.status == PacketStatus::Delivered => ReplayOutcome::Applied,
        Some(packet) if packet.attempts > 0 => ReplayOutcome::Failed {
            class: packet
                .failure_class
                .map_or_else(String::new, |class| class.as_str().to_owned()),
            error: packet.last_error.clone().unwrap_or_default(),
            failures: packet.attempts,
            disabled: packet.status == PacketStatus::Failed,
        },
        Some(_) if delivered.held_back > 0 => ReplayOutcome::HeldBack,
        _ => ReplayOutcome::HeldElsewhere,
    };
    metrics::job(&job.name, &records(store, flow).await?);
    Ok(ReplayReport {
        job: job.name.clone(),
        record_id,
        packet_version: job.packet_version.clone(),
        packet_id: fresh.id,
        payload_hash: fresh.payload_hash,
        previous: previous.map(|previous| (previous.packet_id, previous.payload_hash)),
        outcome,
    })
}
