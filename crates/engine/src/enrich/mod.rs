//! Enrichment jobs (seed 000): send chosen Odoo records as packets to a service, check its
//! answer against a JSON Schema, and write back only the whitelisted fields.
//!
//! - [`config`]: the `enrich:` section of the YAML configuration;
//! - [`packet`]: the frozen envelope, the deterministic payload and its RFC 8785 hash;
//! - [`exchange`]: one POST and its answer, classified like the webhook sender's;
//! - [`answer`]: the response schema check and the writeback whitelist (JSON Pointers);
//! - [`health`]: the health score per record and per job;
//! - [`runner`]: a pass of a job and a replay of a record, through the emission guard
//!   ([`crate::store::EmissionStore`]: one emission per job, record and packet version,
//!   exclusive claims, the per-record breaker, forced replays with drift);
//! - [`schedule`]: the jobs on an interval, for the daemon;
//! - [`metrics`]: what the jobs count in `/metrics`.

pub mod answer;
pub mod config;
pub mod error;
pub mod exchange;
pub mod health;
pub mod metrics;
pub mod packet;
pub mod runner;
pub mod schedule;

pub use config::{EnrichJob, Writeback};
pub use error::{EnrichError, FieldProblem};
pub use runner::{Attempted, Enricher, JobReport, ReplayReport, job_secret};
