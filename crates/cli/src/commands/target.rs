//! What the mirror commands (`sync`, `config check`, `migrate`, `prune`, `runs`) share:
//! loading the configuration, building the Odoo client from it and opening its store.

use crate::exit::{Exit, Failure, exit_for};
use engine::config::{LockStrategy, MirrorConfig, StoreSecrets, Target};
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

/// Checks that `--model` names a configured model.
pub fn check_model(loaded: &Loaded, only: Option<&str>) -> Result<(), Failure> {
    match only {
        Some(only) if !loaded.config.models.iter().any(|model| model.name == only) => {
            let names: Vec<&str> = loaded
                .config
                .models
                .iter()
                .map(|model| model.name.as_str())
                .collect();
            Err(Failure::new(
                Exit::Config,
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
    fn run<S: MirrorStore>(
        self,
        store: &S,
        uses_lock: bool,
    ) -> impl Future<Output = Result<Self::Output, Failure>>;
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Open (creating an SQLite file if needed) and bring the schema up to date.
    Migrated,
    /// Open without writing rows (the tables are created if missing); `None` when the
    /// SQLite file does not exist yet, which is not created.
    ReadOnly,
}

/// Opens the configured store and runs `task` on it; `Ok(None)` only for
/// [`Opening::ReadOnly`] when there is no SQLite file yet.
pub async fn with_store<T: StoreTask>(
    loaded: &Loaded,
    opening: Opening,
    task: T,
) -> Result<Option<T::Output>, Failure> {
    let unavailable = |error: engine::mirror_store::StoreError| Failure::new(Exit::Failure, error);
    match &loaded.config.target {
        Target::Sqlite(sqlite) => {
            if opening == Opening::ReadOnly && !sqlite.path.exists() {
                return Ok(None);
            }
            let store = store_sqlite::SqliteStore::open(&sqlite.path)
                .await
                .map_err(unavailable)?;
            store.migrate().await.map_err(unavailable)?;
            let output = task.run(&store, true).await;
            store.close().await;
            output.map(Some)
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
            // Creating the tables writes no rows; reading the checkpoints needs them.
            store.migrate().await.map_err(unavailable)?;
            let output = task
                .run(&store, postgres.lock_strategy == LockStrategy::Advisory)
                .await;
            store.close().await;
            output.map(Some)
        }
    }
}

/// Where the configuration's store is, for messages (no credentials).
pub fn describe(loaded: &Loaded) -> String {
    match &loaded.config.target {
        Target::Sqlite(sqlite) => format!("SQLite file {}", sqlite.path.display()),
        Target::Postgres(_) => "PostgreSQL".to_owned(),
    }
}
