//! How the benchmark binary ends: the codes its tests and scripts rely on.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// An error no other code describes (a phase failed, PostgreSQL unreachable…).
    Failure = 1,
    /// Bad configuration: a flag value (a PostgreSQL that is not on loopback), an
    /// environment variable, a missing `odoo-bridge` binary.
    Config = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// An error at the binary's edge, with the exit code it maps to.
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

/// A failure with exit code 1 and `error`'s text.
pub fn failure(error: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Failure, anyhow::anyhow!("{error}"))
}
