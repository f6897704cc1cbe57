//! Where a PostgreSQL store is: from the mirror's configuration, or from a URL
//! (`DATABASE_URL`). Callers hold a [`PgTarget`] and never see sqlx's types.

use engine::config::{PostgresConnection, Secret, SslMode};
use engine::mirror_store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// How to reach a PostgreSQL database. `Debug` and [`PgTarget::describe`] name the host,
/// port and database, never the password.
#[derive(Clone)]
pub struct PgTarget {
    options: PgConnectOptions,
}

impl PgTarget {
    /// From a `postgres://user:password@host:port/database` URL. The error never quotes it
    /// (it carries the password).
    pub fn from_url(url: &str) -> Result<PgTarget, StoreError> {
        let options = PgConnectOptions::from_str(url.trim()).map_err(|_| {
            StoreError::invalid_input(
                "the PostgreSQL URL (expected postgres://user:password@host:port/database)",
            )
        })?;
        Ok(PgTarget::from(options))
    }

    /// `host:port/database`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{}",
            self.options.get_host(),
            self.options.get_port(),
            self.options.get_database().unwrap_or("")
        )
    }

    pub(crate) fn options(&self) -> &PgConnectOptions {
        &self.options
    }
}

impl From<PgConnectOptions> for PgTarget {
    /// PostgreSQL's NOTICEs ("relation _sqlx_migrations already exists, skipping" on every
    /// migrate) would be logged as info lines by sqlx; warnings and errors still come through.
    fn from(options: PgConnectOptions) -> PgTarget {
        PgTarget {
            options: options.options([("client_min_messages", "warning")]),
        }
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({})", self.describe())
    }
}

/// Builds the options to reach the configured PostgreSQL.
///
/// - `Params`: host, port, database and user from the file, `password` from the variable
///   named by `password_env` (already read into [`Secret`]s by the config loader).
/// - `Url`: the URL itself, or `database_url` (`DATABASE_URL`) when the file gives none.
///
/// `ssl_mode` and `ssl_root_cert` (the CA bundle for `verify-full`) from the file override
/// whatever the URL says, so the file stays the one place that decides about TLS. Error
/// messages never contain the URL or the password.
pub fn connect_options(
    connection: &PostgresConnection,
    ssl_mode: SslMode,
    ssl_root_cert: Option<&Path>,
    password: Option<&Secret>,
    database_url: Option<&Secret>,
) -> Result<PgTarget, StoreError> {
    let options = match connection {
        PostgresConnection::Params {
            host,
            port,
            database,
            user,
            password_env: _,
        } => {
            let options = PgConnectOptions::new_without_pgpass()
                .host(host)
                .port(*port)
                .database(database)
                .username(user);
            match password {
                Some(password) => options.password(password.expose()),
                None => options,
            }
        }
        PostgresConnection::Url { url } => {
            let url = url.as_ref().or(database_url).ok_or_else(|| {
                StoreError::unavailable(
                    "postgres.connection has type url but no url was given and DATABASE_URL is not set",
                )
            })?;
            // sqlx's parse error could echo part of the URL (and so the password): report
            // only that it did not parse.
            PgConnectOptions::from_str(url.expose()).map_err(|_| {
                StoreError::unavailable(
                    "the PostgreSQL URL is not valid (expected postgres://user:password@host:port/database)"

                )
            })?
        }
    };
    let options = options.ssl_mode(match ssl_mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    });
    Ok(PgTarget::from(match ssl_root_cert {
        Some(path) => options.ssl_root_cert(path),
        None => options,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        serde_json::from_value(serde_json::Value::String(text.into())).unwrap()
    }

    #[test]
    fn params_become_options() {
        let connection = PostgresConnection::Params {
            host: "db.internal".into(),
            port: 6543,
            database: "mirror".into(),
            user: "ingest".into(),
            password_env: Some("POSTGRES_PASSWORD".into()),
        };
        let password = secret("hunter2");
        let target =
            connect_options(&connection, SslMode::Require, None, Some(&password), None).unwrap();
        let options = target.options();
        assert_eq!(options.get_host(), "db.internal");
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("mirror"));
        assert_eq!(options.get_username(), "ingest");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Require));
    }

    #[test]
    fn url_falls_back_to_database_url() {
        let connection = PostgresConnection::Url { url: None };
        let url = secret("postgres://u:pw@127.0.0.1:5433/d?sslmode=require");
        let target =
            connect_options(&connection, SslMode::Disable, None, None, Some(&url)).unwrap();
        let options = target.options();
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("d"));
        // The file's ssl_mode wins over the URL's.
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable));
    }

    #[test]
    fn bad_url_error_hides_the_url() {
        let connection = PostgresConnection::Url {
            url: Some(secret("postgres://u:s3cr3t-pw@host:notaport/d")),
        };
        let error = connect_options(&connection, SslMode::Disable, None, None, None).unwrap_err();
        assert!(!error.to_string().contains("s3cr3t-pw"), "{error}");

        let missing = connect_options(
            &PostgresConnection::Url { url: None },
            SslMode::Disable,
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(matches!(missing, StoreError::Unavailable { .. }));
        let error = PgTarget::from_url("postgres://u:s3cr3t-pw@h:notaport/d").unwrap_err();
        assert!(!error.to_string().contains("s3cr3t-pw"), "{error}");
        let target = PgTarget::from_url("postgres://u:s3cr3t-pw@db.internal:6543/poller").unwrap();
        assert_eq!(target.describe(), "db.internal:6543/poller");
        assert!(!format!("{target:?}").contains("s3cr3t-pw"));
    }
}
