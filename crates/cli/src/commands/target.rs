//! What the mirror commands (`sync`, `config check`, `migrate`, `prune`, `runs`) share:
//! loading the configuration, building the Odoo client from it and opening its store.

use crate::exit::{Exit, Failure, exit_for};
use engine::config::{LockStrategy, MirrorConfig, PostgresConnection, StoreSecrets, Target};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, RetryPolicy};
use std::path::Path;
use std::time::Duration;

/// A configuration with the store's secrets read from the environment.
pub struct Loaded {
    pub config: MirrorConfig,
    pub store_secrets: StoreSecrets,
}

/// Loads the configuration and the store's secrets: enough for store maintenance.
pub fn load_for_store(path: &Path) -> Result<Loaded, Failure> {
    let config = MirrorConfig::load(path).map_err(|error| Failure::new(Exit::Config, error))?;
    let store_secrets = config
        .store_secrets(|name| std::env::var(name).ok())
        .map_err(|error| Failure::new(Exit::Config, error))?;
    Ok(Loaded {
        config,
        store_secrets,
    })
}

/// Loads the configuration and every secret it needs; the Odoo key goes to the client.
pub fn load(path: &Path) -> Result<(Loaded, ApiKey), Failure> {
    let config = MirrorConfig::load(path).map_err(|error| Failure::new(Exit::Config, error))?;
    let secrets = config
        .secrets(|name| std::env::var(name).ok())
        .map_err(|error| Failure::new(Exit::Config, error))?;
    Ok((
        Loaded {
            config,
            store_secrets: secrets.store,
        },
        secrets.odoo_api_key,
    ))
}

/// Checks that the file has models to mirror, and that `--model` names one of them.
pub fn check_model(loaded: &Loaded, only: Option<&str>) -> Result<(), Failure> {
    if loaded.config.models.is_empty() {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "{} has no `models` to mirror (its enrichment jobs run with `odoo-bridge enrich run`)",
                loaded.config.path.display()
            ),
        ));
    }
    match only {
        Some(only) if !loaded.config.models.iter().any(|model| model.name == only) => {
            let names: Vec<&str> = loaded
                .config
                .models
                .iter()
                .map(|model| model.name.as_str())
                .collect();
            // A value the command line got wrong, like clap's own refusals: exit 2.
            Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "--model {only}: no such model in {} (configured: {})",
                    loaded.config.path.display(),
                    names.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The Odoo client with the `sync` section's timeout and retry settings.
pub fn client(loaded: &Loaded, api_key: ApiKey) -> Result<OdooClient, Failure> {
    let config = &loaded.config;
    let mut client_config = ClientConfig::new(
        config.odoo.base_url.clone(),
        config.odoo.database.clone(),
        config.odoo.username.clone(),
        api_key,
    );
    client_config.timeout = Duration::from_secs(config.sync.request_timeout_seconds);
    client_config.retry = RetryPolicy {
        max_retries: config.sync.max_retries,
        base_delay: Duration::from_millis(config.sync.backoff_base_ms),
        ..RetryPolicy::default()
    };
    OdooClient::new(client_config).map_err(|error| Failure::new(exit_for(&error), error))
}

/// Work to do with whichever store the configuration names.
pub trait StoreTask {
    type Output;
    /// `uses_lock` is false when the configuration says `lock_strategy: none`.
    fn run<S: engine::store::Store>(
        self,
        store: &S,
        uses_lock: bool,
    ) -> impl Future<Output = Result<Self::Output, Failure>>;
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Open, creating the SQLite file and its directory if needed, and bring the schema up to
    /// date: `sync` and `migrate`.
    Migrated,
    /// Open a store that exists, writing nothing: no file, directory or table is created. A
    /// store that is not there, or has no mirror tables, is an error (exit 3) saying so:
    /// `runs`, `prune`.
    Existing,
    /// Like [`Opening::Existing`], but no store (or no tables) yet is `Ok(None)`, not an
    /// error: `config check` and `sync --dry-run`, before the first sync.
    IfPresent,
}

/// Opens the configured store and runs `task` on it; `Ok(None)` only for
/// [`Opening::IfPresent`] when there is no store or no mirror tables yet.
pub async fn with_store<T: StoreTask>(
    loaded: &Loaded,
    opening: Opening,
    task: T,
) -> Result<Option<T::Output>, Failure> {
    let unavailable = |error: engine::mirror_store::StoreError| Failure::new(Exit::Failure, error);
    let setting = match &loaded.config.target {
        Target::Sqlite(_) => "sqlite.path",
        Target::Postgres(_) => "postgres.connection",
    };
    let absent = |what: String| -> Result<Option<T::Output>, Failure> {
        match opening {
            Opening::IfPresent => Ok(None),
            Opening::Migrated | Opening::Existing => Err(Failure::new(
                Exit::Config,
                anyhow::anyhow!(
                    "{what}: run `odoo-bridge sync` (or `migrate`) with {} first, or correct its {setting}",
                    loaded.config.path.display()
                ),
            )),
        }
    };
    match &loaded.config.target {
        Target::Sqlite(sqlite) => {
            let store = if opening == Opening::Migrated {
                store_sqlite::SqliteStore::open(&sqlite.path).await
            } else if sqlite.path.exists() {
                store_sqlite::SqliteStore::open_existing(&sqlite.path).await
            } else {
                return absent(format!(
                    "the SQLite file {} does not exist",
                    sqlite.path.display()
                ));
            }
            .map_err(unavailable)?;
            let output = ready(&store, opening).await;
            let output = match output {
                Ok(true) => task.run(&store, true).await.map(Some),
                Ok(false) => absent(format!(
                    "the SQLite file {} has no mirror tables",
                    sqlite.path.display()
                )),
                Err(error) => Err(unavailable(error)),
            };
            store.close().await;
            output
        }
        Target::Postgres(postgres) => {
            let connect = store_pg::connect_options(
                &postgres.connection,
                postgres.ssl_mode,
                postgres.ssl_root_cert.as_deref(),
                loaded.store_secrets.postgres_password.as_ref(),
                loaded.store_secrets.database_url.as_ref(),
            )
            .map_err(|error| Failure::new(Exit::Config, error))?;
            let store = store_pg::PgStore::connect(connect)
                .await
                .map_err(unavailable)?;
            let output = match ready(&store, opening).await {
                Ok(true) => task
                    .run(&store, postgres.lock_strategy == LockStrategy::Advisory)
                    .await
                    .map(Some),
                Ok(false) => absent(format!("{} has no mirror tables", describe(loaded))),
                Err(error) => Err(unavailable(error)),
            };
            store.close().await;
            output
        }
    }
}

/// What opening a store needs before its tables can be used, on both stores.
trait Schema {
    async fn migrate_schema(&self) -> Result<(), engine::mirror_store::StoreError>;
    async fn has_mirror_tables(&self) -> Result<bool, engine::mirror_store::StoreError>;
}

impl Schema for store_sqlite::SqliteStore {
    async fn migrate_schema(&self) -> Result<(), engine::mirror_store::StoreError> {
        self.migrate().await
    }
    async fn has_mirror_tables(&self) -> Result<bool, engine::mirror_store::StoreError> {
        store_sqlite::SqliteStore::has_mirror_tables(self).await
    }
}

impl Schema for store_pg::PgStore {
    async fn migrate_schema(&self) -> Result<(), engine::mirror_store::StoreError> {
        self.migrate().await
    }
    async fn has_mirror_tables(&self) -> Result<bool, engine::mirror_store::StoreError> {
        store_pg::PgStore::has_mirror_tables(self).await
    }
}

/// Brings the schema up to date ([`Opening::Migrated`]) or looks whether the mirror's tables
/// are there, creating nothing; `Ok(true)` when the task can run.
async fn ready<S: Schema>(
    store: &S,
    opening: Opening,
) -> Result<bool, engine::mirror_store::StoreError> {
    if opening == Opening::Migrated {
        store.migrate_schema().await?;
        return Ok(true);
    }
    store.has_mirror_tables().await
}

/// Where the configuration's store is, for messages (no credentials).
pub fn describe(loaded: &Loaded) -> String {
    match &loaded.config.target {
        Target::Sqlite(sqlite) => format!("SQLite file {}", sqlite.path.display()),
        Target::Postgres(postgres) => match &postgres.connection {
            PostgresConnection::Params {
                host,
                port,
                database,
                ..
            } => format!("PostgreSQL database {database} at {host}:{port}"),
            // A URL may carry the password: it is not shown.
            PostgresConnection::Url { url: Some(_) } => {
                "PostgreSQL (postgres.connection.url)".to_owned()
            }
            PostgresConnection::Url { url: None } => "PostgreSQL (DATABASE_URL)".to_owned(),
        },
    }
}
