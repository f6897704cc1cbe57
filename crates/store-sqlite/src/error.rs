//! Mapping sqlx's errors onto the engine's [`StoreError`].

use engine::mirror_store::StoreError;
use sqlx::migrate::MigrateError;

/// SQLite primary result codes that mean "the file cannot be used right now" rather than "the
/// statement is wrong": BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
const UNAVAILABLE_CODES: [i64; 6] = [5, 6, 8, 10, 13, 14];

pub(crate) fn map_sqlx(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Migrate(error) => map_migrate(*error),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Configuration(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(ref database) => {
            // sqlx reports SQLite's extended result code; its low byte is the primary code.
            let primary = database
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .map(|code| code & 0xff);
            match primary {
                Some(code) if UNAVAILABLE_CODES.contains(&code) => {
                    StoreError::Unavailable(error.to_string())
                }
                _ => StoreError::Database(error.to_string()),
            }
        }
        other => StoreError::Database(other.to_string()),
    }
}

pub(crate) fn map_migrate(error: MigrateError) -> StoreError {
    match error {
        // A migration that could not run because the file is unusable is not a schema problem.
        MigrateError::Execute(inner) => match map_sqlx(inner) {
            StoreError::Unavailable(message) => StoreError::Unavailable(message),
            other => StoreError::Migration(other.to_string()),
        },
        other => StoreError::Migration(other.to_string()),
    }
}
