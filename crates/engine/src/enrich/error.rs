//! The one error type of enrichment jobs, classified for the CLI's exit codes.

use crate::config::Location;
use crate::store::{Emission, EmissionKey, StoreError};
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
    #[error(
        "this store belongs to environment {bound:?}, and the configuration says {configured:?}: packets of another environment are refused (use the store of {configured:?}, or correct `environment`)"
    )]
    Environment { bound: String, configured: String },
    /// Fields the job names that the model does not have.
    #[error("{} problem(s) with the job's fields on this Odoo", problems.len())]
    Fields {
        job: String,
        problems: Vec<FieldProblem>,
    },
    /// `secret_env` names a variable that is not set, or not a usable secret.
    #[error("{message}")]
    Secret { message: String },
    #[error("{model} record {id} does not exist (or is archived, or outside the job's domain)")]
    NoSuchRecord { model: String, id: i64 },
    /// A second emission without `--force`.
    #[error("{key} was already emitted")]
    AlreadyEmitted {
        key: EmissionKey,
        emission: Box<Emission>,
        /// The hash of the record's payload now.
        current_hash: String,
    },
    /// Another process holds the record right now.
    #[error("{key} is being emitted by {owner} right now: try again once it is done")]
    HeldElsewhere { key: EmissionKey, owner: String },
    #[error("Odoo: {0}")]
    Odoo(#[from] odoo_rpc::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] ClientBuildError),
}
