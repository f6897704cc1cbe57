//! Mapping sqlx's errors onto the engine's [`StoreError`], classified once, the sqlx error
//! kept as the source.

use engine::store::StoreError;
use sqlx::error::ErrorKind;
use sqlx::migrate::MigrateError;

/// SQLite primary result codes that mean "the file cannot be used right now" rather than "the
/// statement is wrong": BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
const UNAVAILABLE_CODES: [i64; 6] = [5, 6, 8, 10, 13, 14];

/// IOERR and FULL: when the disk fills up, SQLite reports FULL for the database or the WAL and
/// IOERR (often `SHMSIZE`) for its shared-memory file; "disk I/O error" alone sends people
/// looking for a broken disk.
const DISK_CODES: [i64; 2] = [10, 13];

/// The error of a write the disk refused, saying what to look at.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write to the disk holding the SQLite store: it is full or failing (free some \
     space; nothing committed is lost): {cause}"
)]
struct DiskRefused {
    // Shown, not chained as a source: the chain would repeat SQLite's words.
    cause: sqlx::Error,
}

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
        | sqlx::Error::BeginFailed => StoreError::unavailable(error),
        sqlx::Error::Database(ref database) => {
            // sqlx reports SQLite's extended result code; its low byte is the primary code.
            let primary = database
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .map(|code| code & 0xff);
            match primary {
                Some(code) if DISK_CODES.contains(&code) => {
                    StoreError::unavailable(DiskRefused { cause: error })
                }
                Some(code) if UNAVAILABLE_CODES.contains(&code) => StoreError::unavailable(error),
                _ => StoreError::database(error),
            }
        }
        other => StoreError::database(other),
    }
}

pub(crate) fn map_migrate(error: MigrateError) -> StoreError {
    match error {
        // A migration that could not run because the file is unusable is not a schema problem.
        MigrateError::Execute(inner) => match map_sqlx(inner) {
            unavailable @ StoreError::Unavailable { .. } => unavailable,
            other => StoreError::migration(other),
        },
        other => StoreError::migration(other),
    }
}

/// The violated constraint's kind and SQLite's message (which names the columns, never the
/// values), when `error` is one.
pub(crate) fn violation(error: &sqlx::Error) -> Option<(ErrorKind, &str)> {
    match error {
        sqlx::Error::Database(database) => Some((database.kind(), database.message())),
        _ => None,
    }
}
