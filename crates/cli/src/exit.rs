//! Process exit codes: documented in the README, stable for scripts and cron.

use std::process::ExitCode;

/// Why the process ended. The numbers are part of the CLI's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// An error no other code describes.
    Failure = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// Bad or missing configuration: a file, a flag value or an environment variable.
    Config = 3,
    /// Odoo refused the credentials: wrong database, login or API key.
    Authentication = 4,
    /// Odoo could not be reached or kept failing (network, timeout, HTTP 5xx/429).
    Unreachable = 5,
    /// Odoo answered with an error, or with something that is not a valid answer.
    OdooError = 6,
    /// Another mirror run holds the lock: this one exited at once without doing anything.
    LockBusy = 7,
    /// Some models failed; the others were mirrored.
    PartialFailure = 8,
    /// A thing named on the command line does not exist (a connection, a packet).
    NotFound = 9,
    /// The emission guard refused: the record was emitted before (`enrich replay` without
    /// `--force`).
    Refused = 10,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// An error at the binary's edge, carrying the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure {
            exit: Exit::Failure,
            error,
        }
    }
}

/// Maps a client error to its exit code.
pub fn exit_for(error: &odoo_rpc::Error) -> Exit {
    use odoo_rpc::Error;
    match error {
        Error::Authentication { .. } => Exit::Authentication,
        Error::Odoo(odoo)
            if matches!(
                odoo.kind,
                odoo_rpc::OdooErrorKind::AccessDenied | odoo_rpc::OdooErrorKind::LoginCooldown
            ) =>
        {
            Exit::Authentication
        }
        Error::InvalidRequest { .. } => Exit::Config,
        Error::Transport { .. } => Exit::Unreachable,
        Error::Http { status, .. } if *status == 429 || *status >= 500 => Exit::Unreachable,
        _ => Exit::OdooError,
    }
}
