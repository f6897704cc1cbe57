//! An enrichment job as a flow of the engine. Its feed reads the records of the job's domain
//! and writes one packet per record not yet emitted at the job's packet version, before
//! anything is sent; the outbox's dispatcher leases, sends, retries and records them like
//! every other packet, and this flow's [`PacketSender`] is the exchange: POST the frozen
//! envelope, check the answer against the response schema, write back the whitelisted fields.
//!
//! The emission guard falls out of the outbox: one packet per (job, record, packet version)
//! is the outbox's unique (flow, subject, version); exclusive per record is its lease; a
//! packet sent again after a crash keeps its id and bytes; the per-record breaker is the
//! packet's attempts (`max_failures` of them, then FAILED, i.e. disabled); the endpoint's
//! breaker is the dispatcher's.

use super::answer::{self, AnswerError};
use super::config::{EnrichJob, JobLocations, Writeback};
use super::error::{EnrichError, FieldProblem};
use super::exchange::{self, Outgoing};
use super::packet::{self, Subject as EnvelopeSubject};
use super::{metrics, record};
use crate::clock::Clock;
use crate::config::Location;
use crate::inbox::InboundApplier;
use crate::outbox::{BoxFuture, PacketSender, Target};
use crate::runtime::{FlowError, FlowHandler, FlowSetup, PollReport};
use crate::store::{Flow, LatestPacket, NewPacket, Packet, Store, Subject};
use crate::webhook::{
    Delivered, DeliveryError, FailureClass, Jitter, RetrySchedule, WebhookSecret, target_key,
};
use odoo_rpc::{Domain, Fields, OdooClient, SearchReadOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The name of the one target an enrichment flow sends to.
pub const ENDPOINT_TARGET: &str = "endpoint";
/// The name of the flow secret that signs the packets.
pub const SIGNING_SECRET: &str = "signing_secret";

/// Records whose latest packets are read at once.
const LATEST_CHUNK: usize = 500;
/// Records read from Odoo at once.
const READ_CHUNK: usize = 100;

/// A job as its flow keeps it in the store's settings: what the runtime needs to run it
/// without the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredJob {
    pub model: String,
    pub domain: Value,
    pub fields: Vec<String>,
    pub endpoint: String,
    pub packet_version: String,
    pub timeout_ms: u64,
    pub response_schema: Value,
    /// Odoo field → JSON Pointer, in the file's order.
    pub writeback: Vec<(String, String)>,
    pub max_failures: u32,
    pub concurrency: usize,
    /// The tag written into every packet.
    pub environment: String,
    /// The environment variable the signing secret came from (the secret itself is kept
    /// sealed with the flow's secrets).
    pub secret_env: Option<String>,
}

impl StoredJob {
    pub fn of(job: &EnrichJob, environment: &str) -> StoredJob {
        StoredJob {
            model: job.model.clone(),
            domain: job.domain.to_json(),
            fields: job.fields.clone(),
            endpoint: job.endpoint.clone(),
            packet_version: job.packet_version.clone(),
            timeout_ms: u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX),
            response_schema: job.response_schema.clone(),
            writeback: job
                .writeback
                .iter()
                .map(|entry| (entry.field.clone(), entry.pointer.as_str().to_owned()))
                .collect(),
            max_failures: job.max_failures,
            concurrency: job.concurrency,
            environment: environment.to_owned(),
            secret_env: job.secret_env.clone(),
        }
    }

    /// As flow settings.
    pub fn to_settings(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    pub fn from_settings(settings: &Map<String, Value>) -> Result<StoredJob, String> {
        serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|error| format!("the enrichment flow's settings are not readable: {error}"))
    }

    /// The job again, for a flow `name` run every `interval_seconds` (no file positions:
    /// problems found against Odoo then name the job).
    pub fn job(&self, name: &str, interval_seconds: u32) -> Result<EnrichJob, String> {
        let domain = Domain::from_json(&self.domain)
            .map_err(|error| format!("the enrichment flow's domain: {error}"))?;
        let writeback = self
            .writeback
            .iter()
            .map(|(field, pointer)| {
                answer::Pointer::parse(pointer).map(|pointer| Writeback {
                    field: field.clone(),
                    pointer,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let nowhere = Location { line: 0, column: 0 };
        Ok(EnrichJob {
            name: name.to_owned(),
            model: self.model.clone(),
            domain,
            fields: self.fields.clone(),
            endpoint: self.endpoint.clone(),
            packet_version: self.packet_version.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            response_schema: self.response_schema.clone(),
            writeback,
            max_failures: self.max_failures.max(1),
            secret_env: self.secret_env.clone(),
            interval: Duration::from_secs(u64::from(interval_seconds.max(1))),
            concurrency: self.concurrency.max(1),
            locations: JobLocations {
                name: nowhere,
                model: nowhere,
                fields: HashMap::new(),
                writeback: HashMap::new(),
                secret_env: None,
            },
        })
    }
}

/// What the sends of one pass came to (the CLI's summary line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendTally {
    pub applied: u64,
    pub failed: u64,
    pub failures_by_class: BTreeMap<&'static str, u64>,
    /// The records whose answer these sends applied.
    pub applied_records: BTreeSet<i64>,
    /// The records these sends disabled (their last allowed attempt failed).
    pub disabled_records: BTreeSet<i64>,
}

/// One enrichment job, as the runtime (or one `enrich run` pass) runs it.
pub struct EnrichmentFlow {
    flow_id: String,
    job: EnrichJob,
    environment: String,
    secret: Option<WebhookSecret>,
    odoo: OdooClient,
    http: reqwest::Client,
    clock: Clock,
    validator: jsonschema::Validator,
    /// The model's fields, checked against the job once per process.
    types: OnceCell<Arc<Fields>>,
    tally: Mutex<SendTally>,
}

impl std::fmt::Debug for EnrichmentFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichmentFlow")
            .field("flow_id", &self.flow_id)
            .field("job", &self.job.name)
            .finish_non_exhaustive()
    }
}

impl EnrichmentFlow {
    /// The runtime's way in: the job from the flow's stored settings.
    pub fn new(setup: FlowSetup) -> Result<EnrichmentFlow, String> {
        let stored = StoredJob::from_settings(&setup.flow.settings)?;
        let job = stored.job(&setup.flow.name, setup.flow.interval_seconds)?;
        let secret = signing_secret(&setup.flow)?;
        EnrichmentFlow::for_job(
            &setup.flow,
            job,
            stored.environment,
            secret,
            setup.odoo,
            setup.webhooks.http_client().clone(),
            setup.clock,
        )
        .map_err(|error| error.to_string())
    }

    /// A flow for `job` as the configuration file has it (problems found against Odoo then
    /// name the file's lines).
    pub fn for_job(
        flow: &Flow,
        job: EnrichJob,
        environment: String,
        secret: Option<WebhookSecret>,
        odoo: OdooClient,
        http: reqwest::Client,
        clock: Clock,
    ) -> Result<EnrichmentFlow, EnrichError> {
        let validator = validator(&job)?;
        Ok(EnrichmentFlow {
            flow_id: flow.id.clone(),
            job,
            environment,
            secret,
            odoo,
            http,
            clock,
            validator,
            types: OnceCell::new(),
            tally: Mutex::new(SendTally::default()),
        })
    }

    pub fn flow_id(&self) -> &str {
        &self.flow_id
    }

    pub fn job(&self) -> &EnrichJob {
        &self.job
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// What the sends since the last call came to.
    pub fn take_tally(&self) -> SendTally {
        std::mem::take(&mut *self.tally.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The model's fields, after checking (once) that it has every field the job reads and
    /// writes.
    pub async fn check_fields(&self) -> Result<Arc<Fields>, EnrichError> {
        self.types
            .get_or_try_init(|| check_fields(&self.odoo, &self.job))
            .await
            .cloned()
    }

    /// The ids of the records the job's domain matches now, ascending.
    pub async fn matching(&self) -> Result<Vec<i64>, EnrichError> {
        Ok(self
            .odoo
            .search(
                &self.job.model,
                &SearchReadOptions::new(self.job.domain.clone()).order("id"),
            )
            .await?)
    }

    /// The record as the job reads it, or [`EnrichError::NoSuchRecord`].
    pub async fn read_record(&self, record_id: i64) -> Result<Map<String, Value>, EnrichError> {
        let missing = || EnrichError::NoSuchRecord {
            model: self.job.model.clone(),
            id: record_id,
        };
        let read = self
            .odoo
            .read(&self.job.model, &[record_id], &self.job.fields, None)
            .await
            .map_err(|error| match error.odoo().map(|odoo| &odoo.kind) {
                Some(odoo_rpc::OdooErrorKind::MissingError) => missing(),
                _ => EnrichError::Odoo(error),
            })?;
        read.into_iter()
            .next()
            .map(|record| record.into_map())
            .ok_or_else(missing)
    }

    /// A new packet for `record`: the envelope frozen now, `version` of its subject.
    pub fn new_packet(
        &self,
        record_id: i64,
        record: &Map<String, Value>,
        types: &Fields,
        version: u32,
        replay: bool,
    ) -> NewPacket {
        let payload = packet::payload(record, &self.job.fields, types);
        let now = self.clock.now();
        let envelope = packet::envelope(
            EnvelopeSubject {
                job: &self.job.name,
                packet_version: &self.job.packet_version,
                environment: &self.environment,
                model: &self.job.model,
                record_id,
            },
            packet::new_packet_id(),
            now,
            payload,
        );
        NewPacket {
            payload: envelope.body(),
            id: envelope.packet_id,
            subject: Subject::new(self.job.model.clone(), record_id),
            reference: None,
            target: ENDPOINT_TARGET.to_owned(),
            event: if replay {
                record::replay_event(&self.job.packet_version)
            } else {
                record::event(&self.job.packet_version)
            },
            version,
            payload_hash: envelope.payload_hash,
            // The per-record breaker: `max_failures` failed emissions in all.
            max_attempts: self.job.max_failures.saturating_sub(1),
            created_at: now,
        }
    }

    /// Writes a packet for every matching record without one at the job's packet version;
    /// the matching records' ids with what was written.
    pub async fn emit_due<S: Store>(
        &self,
        store: &S,
    ) -> Result<(PollReport, Vec<i64>), EnrichError> {
        let types = self.check_fields().await?;
        let ids = self.matching().await?;
        let mut report = PollReport {
            found: ids.len() as u64,
            ..PollReport::default()
        };
        for chunk in ids.chunks(LATEST_CHUNK) {
            let latest: HashMap<i64, LatestPacket> = store
                .latest_packets(&self.flow_id, &self.job.model, chunk)
                .await?
                .into_iter()
                .map(|latest| (latest.subject_id, latest))
                .collect();
            let mut due = Vec::new();
            for id in chunk {
                match latest.get(id) {
                    Some(latest)
                        if record::packet_version_of(&latest.event)
                            == Some(self.job.packet_version.as_str()) =>
                    {
                        report.unchanged += 1;
                    }
                    Some(latest) => due.push((*id, latest.version + 1)),
                    None => due.push((*id, 1)),
                }
            }
            for batch in due.chunks(READ_CHUNK) {
                let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
                let versions: HashMap<i64, u32> = batch.iter().copied().collect();
                let records = self
                    .odoo
                    .read(&self.job.model, &ids, &self.job.fields, None)
                    .await?;
                report.pages += 1;
                let packets: Vec<NewPacket> = records
                    .into_iter()
                    .filter_map(|record| {
                        let record = record.into_map();
                        let id = record.get("id").and_then(Value::as_i64)?;
                        let version = versions.get(&id).copied()?;
                        Some(self.new_packet(id, &record, &types, version, false))
                    })
                    .collect();
                // Two processes emitting at once write one packet per record: the other's is
                // "already stored" under the same (flow, subject, version).
                let counts = store.enqueue(&self.flow_id, &packets, None).await?;
                report.enqueued += counts.inserted;
            }
        }
        Ok((report, ids))
    }

    /// The exchange of one packet: POST, schema, writeback.
    async fn exchange(&self, packet: &Packet) -> Result<Delivered, DeliveryError> {
        let answer = exchange::exchange(
            &self.http,
            Outgoing {
                endpoint: &self.job.endpoint,
                packet_id: &packet.id,
                environment: &self.environment,
                body: &packet.payload,
                secret: self.secret.as_ref(),
                timeout: self.job.timeout,
            },
        )
        .await?;
        let values = answer::check(&self.validator, &answer.body)
            .and_then(|()| answer::writeback_values(&self.job.writeback, &answer.body))
            .map_err(|AnswerError::Schema(problem)| {
                DeliveryError::before_sending(
                    FailureClass::SchemaError,
                    false,
                    format!(
                        "the response does not match the job's response_schema: {problem}; nothing was written"
                    ),
                )
            })?;
        if !values.is_empty() {
            self.odoo
                .write(&self.job.model, &[packet.subject.id], values, None)
                .await
                .map_err(|error| {
                    DeliveryError::before_sending(
                        FailureClass::WritebackError,
                        false,
                        format!(
                            "writing the answer back into {} {} failed: {error}",
                            self.job.model, packet.subject.id
                        ),
                    )
                })?;
        }
        Ok(Delivered {
            status: answer.status,
        })
    }

    fn count(&self, outcome: &Result<Delivered, DeliveryError>, packet: &Packet) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(_) => {
                tally.applied += 1;
                tally.applied_records.insert(packet.subject.id);
                metrics::packet(&self.job.name, "applied");
                tracing::info!(
                    job = %self.job.name, record_id = packet.subject.id, packet_id = %packet.id,
                    "answer applied"
                );
            }
            Err(error) => {
                tally.failed += 1;
                *tally
                    .failures_by_class
                    .entry(error.class.as_str())
                    .or_insert(0) += 1;
                metrics::packet(&self.job.name, "failed");
                metrics::failure(&self.job.name, error.class.as_str());
                if packet.attempts + 1 >= self.job.max_failures {
                    tally.disabled_records.insert(packet.subject.id);
                    tracing::warn!(
                        job = %self.job.name, record_id = packet.subject.id,
                        failures = packet.attempts + 1,
                        "record disabled after max_failures: `enrich replay --force` re-enables it"
                    );
                }
            }
        }
    }
}

impl<S: Store> FlowHandler<S> for EnrichmentFlow {
    fn poll<'a>(&'a self, store: &'a S) -> BoxFuture<'a, Result<PollReport, FlowError>> {
        Box::pin(async move {
            let (report, _) = self.emit_due(store).await.map_err(flow_error)?;
            let packets = store
                .packets(&crate::store::PacketFilter {
                    flow_id: Some(self.flow_id.clone()),
                    status: None,
                    limit: 0,
                })
                .await
                .map_err(|error| FlowError::new(FailureClass::StoreError, error.to_string()))?;
            metrics::job(
                &self.job.name,
                &record::records(&packets, &self.job.packet_version),
            );
            Ok(report)
        })
    }

    fn sender(&self) -> Option<&dyn PacketSender> {
        Some(self)
    }

    fn applier(&self) -> Option<&dyn InboundApplier> {
        None
    }
}

impl PacketSender for EnrichmentFlow {
    fn targets(&self) -> Vec<Target> {
        vec![Target {
            name: ENDPOINT_TARGET.to_owned(),
            key: target_key(&self.job.endpoint),
        }]
    }

    fn target_key(&self, _packet: &Packet) -> String {
        target_key(&self.job.endpoint)
    }

    fn send<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, Result<Delivered, DeliveryError>> {
        Box::pin(async move {
            let mut outcome = self.exchange(packet).await;
            if let Err(error) = &mut outcome {
                // Whatever the class, the record's own breaker (max_failures) decides when it
                // stops: seed 000 counts every failed emission the same way.
                error.permanent = false;
            }
            self.count(&outcome, packet);
            outcome
        })
    }

    /// A failed emission is retried at the job's next pass (`interval_seconds`); `enrich
    /// run` brings its job's waiting packets forward, being that pass.
    fn retry_schedule(&self) -> Option<RetrySchedule> {
        Some(RetrySchedule {
            base_delay: self.job.interval,
            max_delay: self.job.interval,
            max_attempts: self.job.max_failures.saturating_sub(1),
            jitter: Jitter::None,
            steps: &[],
        })
    }

    fn in_flight(&self) -> usize {
        self.job.concurrency.max(1)
    }
}

fn flow_error(error: EnrichError) -> FlowError {
    let class = match &error {
        EnrichError::Odoo(_) | EnrichError::NoSuchRecord { .. } => FailureClass::OdooError,
        EnrichError::Store(_) => FailureClass::StoreError,
        _ => FailureClass::SchemaError,
    };
    let authentication = matches!(&error, EnrichError::Odoo(odoo) if odoo.is_authentication());
    FlowError {
        class,
        message: error.to_string(),
        authentication,
    }
}

/// The flow's signing secret, when its job has a `secret_env`.
fn signing_secret(flow: &Flow) -> Result<Option<WebhookSecret>, String> {
    flow.secrets
        .get(SIGNING_SECRET)
        .map(|secret| {
            WebhookSecret::new(secret.expose().to_owned())
                .map_err(|error| format!("the enrichment flow's signing secret: {error}"))
        })
        .transpose()
}

/// The job's response schema, compiled (it compiled when the configuration was loaded).
fn validator(job: &EnrichJob) -> Result<jsonschema::Validator, EnrichError> {
    answer::compile(&job.response_schema).map_err(|message| EnrichError::Fields {
        job: job.name.clone(),
        problems: vec![FieldProblem {
            location: job.locations.name,
            message: format!("response_schema: {message}"),
        }],
    })
}

/// The model's fields, after checking that it has every field the job reads and writes.
async fn check_fields(odoo: &OdooClient, job: &EnrichJob) -> Result<Arc<Fields>, EnrichError> {
    let fields = odoo.fields_get(&job.model).await?;
    let mut problems = Vec::new();
    let known = || fields.keys().map(String::as_str);
    for field in &job.fields {
        if !fields.contains_key(field) {
            problems.push(FieldProblem {
                location: job
                    .locations
                    .fields
                    .get(field)
                    .copied()
                    .unwrap_or(job.locations.name),
                message: missing(&job.model, field, crate::config::closest(field, known())),
            });
        }
    }
    for writeback in &job.writeback {
        let location = job
            .locations
            .writeback
            .get(&writeback.field)
            .copied()
            .unwrap_or(job.locations.name);
        match fields.get(&writeback.field) {
            None => problems.push(FieldProblem {
                location,
                message: missing(
                    &job.model,
                    &writeback.field,
                    crate::config::closest(&writeback.field, known()),
                ),
            }),
            Some(info) if info.readonly => problems.push(FieldProblem {
                location,
                message: format!(
                    "{}: field `{}` is read-only: the answer cannot be written into it",
                    job.model, writeback.field
                ),
            }),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(EnrichError::Fields {
            job: job.name.clone(),
            problems,
        })
    }
}

fn missing(model: &str, field: &str, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(suggestion) => format!(
            "{model}: field `{field}` does not exist on this Odoo (did you mean `{suggestion}`?)"
        ),
        None => format!("{model}: field `{field}` does not exist on this Odoo"),
    }
}

/// The signing secret of a job with a `secret_env`, from `environment`.
pub fn job_secret(
    job: &EnrichJob,
    environment: impl Fn(&str) -> Option<String>,
) -> Result<Option<WebhookSecret>, EnrichError> {
    let Some(variable) = &job.secret_env else {
        return Ok(None);
    };
    let value = environment(variable)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| EnrichError::Secret {
            message: format!(
                "{variable} is not set: enrich[{}].secret_env names it as the job's signing secret",
                job.name
            ),
        })?;
    WebhookSecret::new(value)
        .map(Some)
        .map_err(|error| EnrichError::Secret {
            message: format!("{variable}: {error}"),
        })
}
