//! The one error type of enrichment jobs, classified for the CLI's exit codes.

use super::record::RecordState;
use crate::config::Location;
use crate::store::{EnvironmentMismatch, StoreError};
use crate::webhook::ClientBuildError;

/// A problem of the configuration found against the live Odoo, at its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub location: Location,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The store keeps the packets of another environment.
    #[error(transparent)]
    Environment(#[from] EnvironmentMismatch),
    /// Fields the job names that the model does not have.
    #[error("{} problem(s) with the job's fields on this Odoo", problems.len())]
    Fields {
        job: String,
        problems: Vec<FieldProblem>,
    },
    /// `secret_env` names a variable that is not set, or not a usable secret.
    #[error("{message}")]
    Secret { message: String },
    /// The job cannot be kept as a flow of this store (another Odoo's job has its name).
    #[error("{message}")]
    Registration { message: String },
    #[error("{model} record {id} does not exist (or is archived, or outside the job's domain)")]
    NoSuchRecord { model: String, id: i64 },
    /// A second emission without `--force`.
    #[error("record {} of job {job} was already emitted at packet version {}", record.record_id, record.packet_version)]
    AlreadyEmitted {
        job: String,
        record: Box<RecordState>,
        /// The hash of the record's payload now.
        current_hash: String,
    },
    /// Another process holds the record right now.
    #[error(
        "record {record_id} of job {job} is being emitted by {owner} right now: try again once it is done"
    )]
    HeldElsewhere {
        job: String,
        record_id: i64,
        owner: String,
    },
    #[error("Odoo: {0}")]
    Odoo(#[from] odoo_rpc::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] ClientBuildError),
}
