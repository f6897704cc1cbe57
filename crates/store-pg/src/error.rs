//! sqlx errors classified once into the engine's [`StoreError`], the sqlx error kept as the
//! source.

use engine::store::StoreError;
use sqlx::error::ErrorKind;
use sqlx::migrate::MigrateError;

/// Classifies a sqlx error. sqlx's messages never carry the password (it is not part of any
/// error it builds), and PostgreSQL's do not either.
pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        // A configuration error (an unreadable CA file, an impossible option) means the
        // database cannot be reached with what we were given.
        | sqlx::Error::Configuration(_) => StoreError::unavailable(error),
        sqlx::Error::Database(ref database) => {
            if database.code().is_some_and(|code| is_unavailable_code(&code)) {
                StoreError::unavailable(error)
            } else {
                StoreError::database(error)
            }
        }
        sqlx::Error::Migrate(migrate) => from_migrate(*migrate),
        other => StoreError::database(other),
    }
}

/// Classifies a migration failure: losing the connection halfway is still `Unavailable`
/// (retrying later can succeed), everything else is a `Migration` error.
pub(crate) fn from_migrate(error: MigrateError) -> StoreError {
    match error {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            match from_sqlx(inner) {
                unavailable @ StoreError::Unavailable { .. } => unavailable,
                other => StoreError::migration(other),
            }
        }
        other => StoreError::migration(other),
    }
}

/// The violated constraint's kind and name, when `error` is one.
pub(crate) fn violation(error: &sqlx::Error) -> Option<(ErrorKind, Option<&str>)> {
    match error {
        sqlx::Error::Database(database) => Some((database.kind(), database.constraint())),
        _ => None,
    }
}

/// SQLSTATEs that mean "the server would not talk to us", not "the statement was wrong":
/// class 08 (connection exception), 28 (invalid authorization), 3D000 (no such database),
/// 53300 (too many connections), 57P01-57P03 (shutting down, cannot connect now).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("28")
        || matches!(code, "3D000" | "53300" | "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable() {
        let error = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(from_sqlx(error), StoreError::Unavailable { .. }));
        assert!(matches!(
            from_sqlx(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable { .. }
        ));
    }

    #[test]
    fn migrate_errors_are_migration_and_keep_their_source() {
        use std::error::Error as _;
        let error = MigrateError::VersionMissing(1);
        let mapped = from_migrate(error);
        assert!(matches!(mapped, StoreError::Migration { .. }));
        assert!(mapped.source().is_some());
        let error = sqlx::Error::Migrate(Box::new(MigrateError::VersionMismatch(1)));
        assert!(matches!(from_sqlx(error), StoreError::Migration { .. }));
    }

    #[test]
    fn other_errors_are_database() {
        assert!(matches!(
            from_sqlx(sqlx::Error::RowNotFound),
            StoreError::Database { .. }
        ));
    }

    #[test]
    fn sqlstates() {
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("28P01"));
        assert!(is_unavailable_code("3D000"));
        assert!(!is_unavailable_code("23505"));
        assert!(!is_unavailable_code("42P01"));
    }
}
