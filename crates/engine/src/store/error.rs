//! The one error type of every store, classified once by the store that raised it.

use std::error::Error as StdError;

/// The underlying failure, kept for `source()` chains and logs.
pub type ErrorSource = Box<dyn StdError + Send + Sync + 'static>;

/// A store failure. Messages never carry connection strings, passwords or stored secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, refused the connection, or cannot be used right now
    /// (a locked or full file, a server shutting down): trying again later can succeed.
    #[error("database unavailable: {source}")]
    Unavailable {
        #[source]
        source: ErrorSource,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {source}")]
    Migration {
        #[source]
        source: ErrorSource,
    },
    /// A unique key is taken: `what` names it (a connection name, a packet id).
    #[error("already exists: {what}")]
    Conflict {
        what: String,
        #[source]
        source: Option<ErrorSource>,
    },
    /// A row the operation needs does not exist (a packet's flow, a lease's flow).
    #[error("not found: {what}")]
    NotFound { what: String },
    /// A value read back from the store is not one this version understands (an unknown
    /// status, an unparsable timestamp): the store was written by something else, or damaged.
    #[error("invalid stored data: {what}")]
    InvalidData { what: String },
    /// A value given to the store cannot be stored (a payload that is not JSON, a count
    /// out of range): the caller's mistake, not the database's.
    #[error("cannot store {what}")]
    InvalidInput { what: String },
    /// The key that encrypts the stored secrets is missing, malformed or not the one they
    /// were encrypted with: `what` says which and what to set. Never retried.
    #[error("{what}")]
    SecretKey { what: String },
    /// Any other database error.
    #[error("database error: {source}")]
    Database {
        #[source]
        source: ErrorSource,
    },
}

impl StoreError {
    pub fn unavailable(source: impl Into<ErrorSource>) -> StoreError {
        StoreError::Unavailable {
            source: source.into(),
        }
    }

    pub fn migration(source: impl Into<ErrorSource>) -> StoreError {
        StoreError::Migration {
            source: source.into(),
        }
    }

    pub fn conflict(what: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            what: what.into(),
            source: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> StoreError {
        StoreError::NotFound { what: what.into() }
    }

    pub fn invalid_data(what: impl Into<String>) -> StoreError {
        StoreError::InvalidData { what: what.into() }
    }

    pub fn invalid_input(what: impl Into<String>) -> StoreError {
        StoreError::InvalidInput { what: what.into() }
    }

    pub fn secret_key(what: impl Into<String>) -> StoreError {
        StoreError::SecretKey { what: what.into() }
    }

    pub fn database(source: impl Into<ErrorSource>) -> StoreError {
        StoreError::Database {
            source: source.into(),
        }
    }

    /// Whether the same operation may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_kept_and_shown() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::unavailable(io);
        assert_eq!(error.to_string(), "database unavailable: refused");
        assert!(error.source().is_some());
        assert!(error.is_transient());
        let conflict = StoreError::conflict("connection name \"X\"");
        assert_eq!(
            conflict.to_string(),
            "already exists: connection name \"X\""
        );
        assert!(conflict.is_conflict() && !conflict.is_transient());
        assert_eq!(
            StoreError::database("boom".to_owned()).to_string(),
            "database error: boom"
        );
    }
}
