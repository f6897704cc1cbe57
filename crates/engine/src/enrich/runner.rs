//! One pass of a job (`enrich run`), and a replay of one record (`enrich replay`): read the
//! records from Odoo, write each emission before sending it, send it, check the answer,
//! write back the whitelisted fields, and record the outcome.

use super::answer::{self, AnswerError};
use super::config::EnrichJob;
use super::error::{EnrichError, FieldProblem};
use super::exchange::{self, Outgoing};
use super::metrics;
use super::packet::{self, Subject};
use crate::clock::Clock;
use crate::store::emissions::Failure;
use crate::store::{Emission, EmissionClaim, EmissionKey, EmissionState, EmissionStore};
use crate::webhook::{
    BreakerConfig, CircuitBreaker, DeliveryError, FailureClass, SenderConfig, WebhookSecret,
    WebhookSender, target_key,
};
use futures_util::stream::{self, StreamExt};
use odoo_rpc::{Fields, OdooClient, SearchReadOptions};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Records read from Odoo at once.
const READ_CHUNK: usize = 100;

/// What a process's job runs share: one breaker per endpoint, one HTTP client.
#[derive(Debug, Clone)]
pub struct Enricher<S> {
    pub store: S,
    pub odoo: OdooClient,
    pub environment: String,
    /// This process's name in claims: unique among the processes sharing a store; the same
    /// name after a restart takes its own claims back at once.
    pub owner: String,
    pub clock: Clock,
    pub breaker: CircuitBreaker,
    http: reqwest::Client,
}

/// What one emission attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempted {
    /// The answer passed its schema and was written back.
    Applied { answer: Value },
    Failed {
        class: FailureClass,
        error: String,
        /// The record's failures now, and whether the breaker disabled it.
        failures: u32,
        disabled: bool,
    },
    /// The endpoint's breaker is open: not sent, nothing counted.
    HeldBack,
    /// The claim ran out and another process took the record: its outcome is not ours.
    ClaimLost,
}

/// What came of one record of a pass.
enum Emitted {
    AlreadyApplied,
    Disabled,
    HeldElsewhere,
    Attempted(Attempted),
}

/// What [`Enricher::run_job`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub job: String,
    /// Records matching the job's domain.
    pub matching: u64,
    pub applied: u64,
    pub failed: u64,
    /// Records the breaker disabled during this run.
    pub disabled_now: u64,
    /// Records skipped: applied before (one emission per packet version).
    pub already_applied: u64,
    /// Records skipped: disabled by the breaker.
    pub disabled: u64,
    /// Records another process was emitting.
    pub held_elsewhere: u64,
    /// Records not sent because the endpoint's breaker is open.
    pub held_back: u64,
    pub claims_lost: u64,
    pub failures_by_class: BTreeMap<&'static str, u64>,
}

/// What [`Enricher::replay`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub key: EmissionKey,
    pub packet_id: String,
    pub payload_hash: String,
    /// The previous emission's packet and hash, when there was one (a forced replay).
    pub previous: Option<(String, String)>,
    pub outcome: Attempted,
}

impl ReplayReport {
    /// The payload changed since the previous emission.
    pub fn drift(&self) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|(_, hash)| *hash != self.payload_hash)
    }
}

impl<S: EmissionStore + Clone> Enricher<S> {
    pub fn new(
        store: S,
        odoo: OdooClient,
        environment: String,
        owner: String,
        clock: Clock,
    ) -> Result<Enricher<S>, EnrichError> {
        let sender = WebhookSender::new(SenderConfig::default())?;
        Ok(Enricher {
            store,
            odoo,
            environment,
            owner,
            breaker: CircuitBreaker::with_clock(BreakerConfig::default(), clock.clone()),
            clock,
            http: sender.http_client().clone(),
        })
    }

    /// Binds the store to this environment on first use; refuses a store of another.
    pub async fn check_environment(&self) -> Result<(), EnrichError> {
        let bound = self
            .store
            .bind_environment(&self.environment, self.clock.now())
            .await?;
        if bound == self.environment {
            Ok(())
        } else {
            Err(EnrichError::Environment {
                bound,
                configured: self.environment.clone(),
            })
        }
    }

    /// The model's fields, after checking that it has every field the job reads and writes.
    pub async fn check_fields(&self, job: &EnrichJob) -> Result<Arc<Fields>, EnrichError> {
        let fields = self.odoo.fields_get(&job.model).await?;
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

    /// One pass: emits every record of the domain not emitted yet at the job's packet
    /// version (and resends those whose emission did not finish), applying the answers.
    pub async fn run_job(
        &self,
        job: &EnrichJob,
        secret: Option<&WebhookSecret>,
    ) -> Result<JobReport, EnrichError> {
        self.check_environment().await?;
        let types = self.check_fields(job).await?;
        let mut report = JobReport {
            job: job.name.clone(),
            ..JobReport::default()
        };
        let ids = self
            .odoo
            .search(
                &job.model,
                &SearchReadOptions::new(job.domain.clone()).order("id"),
            )
            .await?;
        report.matching = ids.len() as u64;
        let stored: HashMap<i64, Emission> = self
            .store
            .emissions(Some(&job.name))
            .await?
            .into_iter()
            .filter(|emission| emission.key.packet_version == job.packet_version)
            .map(|emission| (emission.key.record_id, emission))
            .collect();
        let mut due = Vec::with_capacity(ids.len());
        for id in ids {
            match stored.get(&id) {
                Some(emission) if emission.state == EmissionState::Applied => {
                    report.already_applied += 1;
                }
                Some(emission) if emission.disabled => report.disabled += 1,
                _ => due.push(id),
            }
        }
        let validator = validator(job)?;
        'chunks: for chunk in due.chunks(READ_CHUNK) {
            let records = self.odoo.read(&job.model, chunk, &job.fields, None).await?;
            // Up to `concurrency` records in flight; each is claimed on its own, so the
            // guard holds whatever the order they finish in.
            let mut emitting = stream::iter(records)
                .filter_map(|record| {
                    let record = record.into_map();
                    let id = record.get("id").and_then(Value::as_i64);
                    std::future::ready(id.map(|id| (id, record)))
                })
                .map(|(id, record)| self.emit(job, &validator, &types, id, record, secret))
                .buffer_unordered(job.concurrency.max(1));
            let mut held_back = false;
            while let Some(emitted) = emitting.next().await {
                match emitted? {
                    Emitted::AlreadyApplied => report.already_applied += 1,
                    Emitted::Disabled => report.disabled += 1,
                    Emitted::HeldElsewhere => report.held_elsewhere += 1,
                    Emitted::Attempted(Attempted::Applied { .. }) => report.applied += 1,
                    Emitted::Attempted(Attempted::Failed {
                        class, disabled, ..
                    }) => {
                        report.failed += 1;
                        *report.failures_by_class.entry(class.as_str()).or_insert(0) += 1;
                        if disabled {
                            report.disabled_now += 1;
                        }
                    }
                    Emitted::Attempted(Attempted::HeldBack) => {
                        report.held_back += 1;
                        held_back = true;
                    }
                    Emitted::Attempted(Attempted::ClaimLost) => report.claims_lost += 1,
                }
            }
            if held_back {
                // The endpoint is down: the rest waits for the next run.
                break 'chunks;
            }
        }
        let emissions = self.store.emissions(Some(&job.name)).await?;
        metrics::job(&job.name, &emissions);
        tracing::info!(
            job = %job.name, matching = report.matching, applied = report.applied,
            failed = report.failed, disabled_now = report.disabled_now,
            already_applied = report.already_applied, disabled = report.disabled,
            held_elsewhere = report.held_elsewhere, held_back = report.held_back,
            "enrichment job run"
        );
        Ok(report)
    }

    /// Emits one record: a first emission, or with `force` a new packet replacing the
    /// previous one (re-enabling a disabled record). Without `force`, a record emitted
    /// before is [`EnrichError::AlreadyEmitted`].
    pub async fn replay(
        &self,
        job: &EnrichJob,
        record_id: i64,
        force: bool,
        secret: Option<&WebhookSecret>,
    ) -> Result<ReplayReport, EnrichError> {
        self.check_environment().await?;
        let types = self.check_fields(job).await?;
        let validator = validator(job)?;
        let record = self
            .odoo
            .read(&job.model, &[record_id], &job.fields, None)
            .await
            .map_err(|error| match error.odoo().map(|odoo| &odoo.kind) {
                Some(odoo_rpc::OdooErrorKind::MissingError) => EnrichError::NoSuchRecord {
                    model: job.model.clone(),
                    id: record_id,
                },
                _ => EnrichError::Odoo(error),
            })?
            .into_iter()
            .next()
            .ok_or_else(|| EnrichError::NoSuchRecord {
                model: job.model.clone(),
                id: record_id,
            })?
            .into_map();
        let emission = self.new_emission(job, record_id, &record, &types);
        let previous = self.store.emission(&emission.key).await?;
        let claim = match (&previous, force) {
            (Some(previous), false) => {
                return Err(EnrichError::AlreadyEmitted {
                    key: emission.key.clone(),
                    emission: Box::new(previous.clone()),
                    current_hash: emission.payload_hash,
                });
            }
            (Some(_), true) => {
                self.store
                    .replay_emission(
                        &emission,
                        &self.owner,
                        self.clock.now(),
                        self.claim_until(job),
                    )
                    .await?
            }
            (None, _) => {
                self.store
                    .claim_emission(
                        &emission,
                        &self.owner,
                        self.clock.now(),
                        self.claim_until(job),
                    )
                    .await?
            }
        };
        let granted = match claim {
            EmissionClaim::Granted(granted) => granted,
            EmissionClaim::HeldElsewhere(held) => {
                return Err(EnrichError::HeldElsewhere {
                    key: held.key.clone(),
                    owner: held.claim_owner.unwrap_or_default(),
                });
            }
            // Written by another process between our read and our claim.
            EmissionClaim::AlreadyApplied(stored) | EmissionClaim::Disabled(stored) => {
                return Err(EnrichError::AlreadyEmitted {
                    key: stored.key.clone(),
                    current_hash: emission.payload_hash,
                    emission: Box::new(stored),
                });
            }
        };
        if let Some(previous) = &previous {
            tracing::warn!(
                job = %job.name, record_id, previous_packet_id = %previous.packet_id,
                packet_id = %granted.packet_id, previous_hash = %previous.payload_hash,
                payload_hash = %granted.payload_hash,
                drift = previous.payload_hash != granted.payload_hash,
                "forced replay"
            );
        }
        let outcome = self.deliver(job, &validator, &granted, secret).await?;
        Ok(ReplayReport {
            key: granted.key.clone(),
            packet_id: granted.packet_id.clone(),
            payload_hash: granted.payload_hash.clone(),
            previous: previous.map(|previous| (previous.packet_id, previous.payload_hash)),
            outcome,
        })
    }

    /// Claims one record and, when granted, sends its packet.
    async fn emit(
        &self,
        job: &EnrichJob,
        validator: &jsonschema::Validator,
        types: &Fields,
        id: i64,
        record: Map<String, Value>,
        secret: Option<&WebhookSecret>,
    ) -> Result<Emitted, EnrichError> {
        let emission = self.new_emission(job, id, &record, types);
        let claim = self
            .store
            .claim_emission(
                &emission,
                &self.owner,
                self.clock.now(),
                self.claim_until(job),
            )
            .await?;
        Ok(match claim {
            EmissionClaim::Granted(emission) => {
                Emitted::Attempted(self.deliver(job, validator, &emission, secret).await?)
            }
            EmissionClaim::AlreadyApplied(_) => Emitted::AlreadyApplied,
            EmissionClaim::Disabled(_) => Emitted::Disabled,
            EmissionClaim::HeldElsewhere(_) => Emitted::HeldElsewhere,
        })
    }

    fn claim_until(&self, job: &EnrichJob) -> jiff::Timestamp {
        // Longer than a send and a writeback can take, so a live sender keeps its record.
        self.clock
            .after(job.timeout.saturating_mul(2) + Duration::from_secs(60))
    }

    fn new_emission(
        &self,
        job: &EnrichJob,
        record_id: i64,
        record: &Map<String, Value>,
        types: &Fields,
    ) -> crate::store::NewEmission {
        let payload = packet::payload(record, &job.fields, types);
        let envelope = packet::envelope(
            Subject {
                job: &job.name,
                packet_version: &job.packet_version,
                environment: &self.environment,
                model: &job.model,
                record_id,
            },
            packet::new_packet_id(),
            self.clock.now(),
            payload,
        );
        crate::store::NewEmission {
            key: EmissionKey::new(&job.name, record_id, &job.packet_version),
            model: job.model.clone(),
            environment: self.environment.clone(),
            packet: envelope.body(),
            packet_id: envelope.packet_id,
            payload_hash: envelope.payload_hash,
        }
    }

    /// Sends a claimed emission's stored packet, checks the answer, writes back, records
    /// the outcome.
    async fn deliver(
        &self,
        job: &EnrichJob,
        validator: &jsonschema::Validator,
        emission: &Emission,
        secret: Option<&WebhookSecret>,
    ) -> Result<Attempted, EnrichError> {
        let key = &emission.key;
        let target = target_key(&job.endpoint);
        let permit = match self.breaker.try_acquire(&target) {
            Ok(permit) => permit,
            Err(_) => {
                self.store.release_emission(key, &self.owner).await?;
                return Ok(Attempted::HeldBack);
            }
        };
        let exchanged = exchange::exchange(
            &self.http,
            Outgoing {
                endpoint: &job.endpoint,
                packet_id: &emission.packet_id,
                environment: &emission.environment,
                body: &emission.packet,
                secret,
                timeout: job.timeout,
            },
        )
        .await;
        permit.record(&exchanged);
        let outcome = match exchanged {
            Err(DeliveryError { class, message, .. }) => Err((class, message)),
            Ok(answer) => match answer::check(validator, &answer.body)
                .and_then(|()| answer::writeback_values(&job.writeback, &answer.body))
            {
                Err(AnswerError::Schema(problem)) => Err((
                    FailureClass::SchemaError,
                    format!(
                        "the response does not match the job's response_schema: {problem}; nothing was written"
                    ),
                )),
                Ok(values) => match self.write_back(job, key.record_id, values).await {
                    Ok(()) => Ok(answer.body),
                    Err(error) => Err((
                        FailureClass::WritebackError,
                        format!(
                            "writing the answer back into {} {} failed: {error}",
                            job.model, key.record_id
                        ),
                    )),
                },
            },
        };
        match outcome {
            Ok(answer) => {
                if !self
                    .store
                    .record_applied(key, &self.owner, self.clock.now())
                    .await?
                {
                    return Ok(Attempted::ClaimLost);
                }
                metrics::packet(&job.name, "applied");
                if emission.failures > 0 {
                    let mut healed = emission.clone();
                    healed.failures = 0;
                    metrics::record(&healed);
                }
                tracing::info!(
                    job = %job.name, record_id = key.record_id, packet_id = %emission.packet_id,
                    "answer applied"
                );
                Ok(Attempted::Applied { answer })
            }
            Err((class, error)) => {
                let failure = Failure {
                    class,
                    error: &error,
                    max_failures: job.max_failures,
                };
                let Some(stored) = self
                    .store
                    .record_failure(key, &self.owner, &failure, self.clock.now())
                    .await?
                else {
                    return Ok(Attempted::ClaimLost);
                };
                metrics::packet(&job.name, "failed");
                metrics::failure(&job.name, class.as_str());
                metrics::record(&stored);
                tracing::warn!(
                    job = %job.name, record_id = key.record_id, packet_id = %emission.packet_id,
                    class = class.as_str(), failures = stored.failures, disabled = stored.disabled,
                    error = %error, "emission failed"
                );
                if stored.disabled && !emission.disabled {
                    tracing::warn!(
                        job = %job.name, record_id = key.record_id, failures = stored.failures,
                        "record disabled after max_failures: `enrich replay --force` re-enables it"
                    );
                }
                Ok(Attempted::Failed {
                    class,
                    error,
                    failures: stored.failures,
                    disabled: stored.disabled,
                })
            }
        }
    }

    async fn write_back(
        &self,
        job: &EnrichJob,
        record_id: i64,
        values: Map<String, Value>,
    ) -> Result<(), odoo_rpc::Error> {
        if values.is_empty() {
            return Ok(());
        }
        self.odoo
            .write(&job.model, &[record_id], values, None)
            .await
            .map(|_| ())
    }
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
