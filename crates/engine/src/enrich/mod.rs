//! Enrichment jobs (seed 000): send chosen Odoo records as packets to a service, check its
//! answer against a JSON Schema, and write back only the whitelisted fields.
//!
//! A job is a flow of the engine ([`flow::EnrichmentFlow`]): its packets go through the one
//! outbox and dispatcher, so the emission guard is the outbox's — one packet per (job,
//! record, packet version), written before it is sent, leased by one worker, the same id and
//! bytes after a crash, `max_failures` attempts before the record is disabled.
//!
//! - [`config`]: the `enrich:` section of the YAML configuration;
//! - [`register`]: a file's jobs as a tenant and flows of the store;
//! - [`flow`]: the job's feed (records due an emission) and its exchange (POST, schema,
//!   writeback);
//! - [`pass`]: one pass by hand or by cron, and a replay of one record (drift);
//! - [`record`]: each record's emission, read from the job's packets;
//! - [`packet`]: the frozen envelope, the deterministic payload and its RFC 8785 hash;
//! - [`exchange`]: one POST and its answer, classified like the webhook sender's;
//! - [`answer`]: the response schema check and the writeback whitelist (JSON Pointers);
//! - [`health`]: the health score per record and per job;
//! - [`metrics`]: what the jobs count in `/metrics`.

pub mod answer;
pub mod config;
pub mod error;
pub mod exchange;
pub mod flow;
pub mod health;
pub mod metrics;
pub mod packet;
pub mod pass;
pub mod record;
pub mod register;

pub use config::{EnrichJob, Writeback};
pub use error::{EnrichError, FieldProblem};
pub use flow::{EnrichmentFlow, job_secret};
pub use pass::{JobReport, ReplayOutcome, ReplayReport, replay, run_pass};
pub use record::{EmissionState, RecordState};
