//! The mirror's configuration: seed 003's YAML format, validated once at start.
//!
//! Every error names the file, the line and column, what is wrong, and what to do (with the
//! closest valid key for a typo). Secrets never live in the file: they come from the
//! environment (`ODOO_API_KEY`, the variable named by `password_env`, `DATABASE_URL`).

use odoo_rpc::{ApiKey, Domain};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem, positioned in its file when it has a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A secret (from the environment, or a URL that may carry a password); never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(••••)")
    }
}

#[derive(Debug, Clone)]
pub struct OdooSection {
    /// Checked like every Odoo URL ([`odoo_rpc::check_base_url`]), without a trailing slash.
    pub base_url: String,
    pub database: String,
    pub username: String,
}

/// The `odoo` section as written, positions kept for messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOdooSection {
    base_url: Spanned<String>,
    database: Spanned<String>,
    username: Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    #[default]
    Disable,
    Require,
    VerifyFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LockStrategy {
    /// `pg_try_advisory_lock` on a fixed key (an exclusive file lock on SQLite).
    #[default]
    Advisory,
    /// No lock, for transaction-pooled connections (PgBouncer) that cannot hold one.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum PostgresConnection {
    Params {
        host: String,
        #[serde(default = "default_pg_port")]
        port: u16,
        database: String,
        user: String,
        /// The environment variable holding the password.
        password_env: Option<String>,
    },
    Url {
        /// Omitted: `DATABASE_URL` is used. May hold a password, so it is kept secret.
        url: Option<Secret>,
    },
}

fn default_pg_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub connection: PostgresConnection,
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// CA bundle for `verify-full`.
    pub ssl_root_cert: Option<PathBuf>,
    #[serde(default)]
    pub lock_strategy: LockStrategy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSection {
    #[serde(default = "default_sqlite_path")]
    pub path: PathBuf,
}

pub fn default_sqlite_path() -> PathBuf {
    PathBuf::from("./data/odoo-bridge.db")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: u64,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Run log rows older than this are deleted at the end of each run.
    #[serde(default = "default_retention_days")]
    pub run_retention_days: u32,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            request_timeout_seconds: default_timeout(),
            max_retries: default_max_retries(),
            backoff_base_ms: default_backoff_base_ms(),
            run_retention_days: default_retention_days(),
        }
    }
}

fn default_timeout() -> u64 {
    60
}
fn default_max_retries() -> u32 {
    5
}
fn default_backoff_base_ms() -> u64 {
    500
}
fn default_retention_days() -> u32 {
    90
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    name: Spanned<String>,
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    #[serde(default)]
    domain: Option<Spanned<serde_json::Value>>,
    cursor_field: Option<Spanned<String>>,
    overlap_seconds: Option<u64>,
    page_size: Option<Spanned<u64>>,
    #[serde(default)]
    reconcile_deletions: bool,
    reconcile_every_runs: Option<Spanned<u32>>,
    parallelism: Option<Spanned<u64>>,
    /// How often `odoo-bridge run --config` syncs this model (default: `mirror.interval_seconds`).
    interval_seconds: Option<Spanned<u64>>,
    /// Whether `odoo-bridge run --config` takes Odoo's push hints for this model.
    hint: Option<Spanned<bool>>,
}

/// The `mirror` section: how `odoo-bridge run --config` schedules the models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirrorSection {
    interval_seconds: Option<Spanned<u64>>,
}

/// The `hints` section: where the mirror's hint token comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHintsSection {
    token_env: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    odoo: RawOdooSection,
    /// The tag written into every packet; packets of another environment are refused.
    environment: Option<Spanned<String>>,
    postgres: Option<PostgresSection>,
    sqlite: Option<SqliteSection>,
    #[serde(default)]
    sync: SyncSection,
    /// Optional when the file has enrichment jobs.
    models: Option<Spanned<Vec<ModelSection>>>,
    enrich: Option<Spanned<Vec<crate::enrich::config::RawJob>>>,
    mirror: Option<RawMirrorSection>,
    hints: Option<RawHintsSection>,
}

/// One model to mirror, with the seed's defaults applied.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    /// Empty: every field.
    pub fields: Vec<String>,
    pub domain: Domain,
    pub cursor_field: String,
    pub overlap_seconds: u64,
    pub page_size: usize,
    pub reconcile_deletions: bool,
    pub reconcile_every_runs: u32,
    /// Readers fetching a backfill's id ranges at once (default 2).
    pub parallelism: usize,
}

/// Readers a backfill uses when the model does not say: Odoo serves two at once well even
/// with few workers, and one more page in flight barely adds memory.
pub const DEFAULT_PARALLELISM: usize = 2;
/// Most readers a backfill may use: more mostly queues requests on Odoo's workers.
pub const MAX_PARALLELISM: u64 = 16;

/// Where mirrored rows go: PostgreSQL when the file has a `postgres` section, the embedded
/// SQLite file otherwise.
#[derive(Debug, Clone)]
pub enum Target {
    Postgres(PostgresSection),
    Sqlite(SqliteSection),
}

#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub path: PathBuf,
    pub odoo: OdooSection,
    pub target: Target,
    pub sync: SyncSection,
    /// The models to mirror; empty in a file of enrichment jobs only.
    pub models: Vec<ModelConfig>,
    /// The environment tag (`prod`, `staging`): required with enrichment jobs.
    pub environment: Option<String>,
    /// Enrichment jobs (seed 000).
    pub enrich: Vec<crate::enrich::EnrichJob>,
    /// Where each model's settings are written, by model name.
    locations: HashMap<String, ModelLocations>,
    /// How `odoo-bridge run --config` runs the models.
    pub schedule: MirrorSchedule,
}

/// How often `odoo-bridge run --config` syncs a model when `interval_seconds` says nothing.
pub const DEFAULT_MIRROR_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// How `odoo-bridge run --config` runs the mirror: each model on its interval, and the hinted
/// ones also within seconds of a change Odoo posts about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSchedule {
    /// Per model, in the file's order.
    pub models: Vec<ScheduledModel>,
    /// The environment variable holding the hint token (`hints.token_env`), and where it is
    /// written.
    pub hint_token_env: Option<(String, Location)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledModel {
    pub name: String,
    pub interval: std::time::Duration,
    /// `hint: true`.
    pub hint: bool,
}

impl MirrorSchedule {
    pub fn hinted(&self) -> impl Iterator<Item = &ScheduledModel> {
        self.models.iter().filter(|model| model.hint)
    }
}

/// A position in the configuration file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub(crate) fn of<T>(spanned: &Spanned<T>) -> Location {
        Location {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        }
    }
}

/// Where one model's settings are written, so that a problem found later against the live
/// Odoo (a field it does not have) can name the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLocations {
    pub name: Location,
    /// Each entry of `fields`, at its first occurrence.
    pub fields: HashMap<String, Location>,
    pub cursor_field: Option<Location>,
    pub domain: Option<Location>,
}

/// The secrets a run needs, from the environment.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub odoo_api_key: ApiKey,
    pub store: StoreSecrets,
}

/// The secrets the store needs (none for SQLite), from the environment.
#[derive(Debug, Clone, Default)]
pub struct StoreSecrets {
    pub postgres_password: Option<Secret>,
    pub database_url: Option<Secret>,
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Adds "did you mean" to "unknown field `x`, expected one of a, b" messages.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_owned();
    };
    let Some((unknown, after)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let Some((_, expected)) = after.split_once("expected one of ") else {
        return message.to_owned();
    };
    let candidates = expected
        .split(',')
        .map(|candidate| candidate.trim().trim_matches('`'));
    match closest(unknown, candidates) {
        Some(suggestion) => format!("{message} (did you mean `{suggestion}`?)"),
        None => message.to_owned(),
    }
}

/// serde-saphyr's text repeats the position ("error: line 7 column 5: …"); ours is in front.
fn strip_position(message: &str) -> &str {
    let message = message.trim().trim_start_matches("error:").trim_start();
    match message
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) if position.contains("column") => rest,
        _ => message,
    }
}

impl MirrorConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<MirrorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read the configuration file: {error}"),
        })?;
        MirrorConfig::parse(path, &text)
    }

    /// Validates configuration text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<MirrorConfig, ConfigError> {
        let at = |line: Option<u64>, column: Option<u64>, message: String| ConfigError {
            path: path.to_owned(),
            line,
            column,
            message,
        };
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|error| {
            let location = error.location();
            let rendered = error.to_string();
            // The library's text starts with its own position; keep the message part.
            let message = strip_position(rendered.lines().next().unwrap_or_default()).to_owned();
            at(
                location.map(|l| l.line()),
                location.map(|l| l.column()),
                with_suggestion(&message),
            )
        })?;
        let located = |spanned: &Spanned<String>, message: String| {
            let location = Location::of(spanned);
            at(Some(location.line), Some(location.column), message)
        };
        for (what, value) in [
            ("odoo.base_url", &raw.odoo.base_url),
            ("odoo.database", &raw.odoo.database),
            ("odoo.username", &raw.odoo.username),
        ] {
            if value.value.trim().is_empty() {
                return Err(located(
                    value,
                    format!("{what} is empty: set it to your Odoo's value"),
                ));
            }
        }
        let base_url = odoo_rpc::check_base_url(&raw.odoo.base_url.value).map_err(|error| {
            let message = match error {
                odoo_rpc::Error::InvalidRequest { message } => message,
                other => other.to_string(),
            };
            located(&raw.odoo.base_url, format!("odoo.base_url: {message}"))
        })?;
        let odoo = OdooSection {
            base_url,
            database: raw.odoo.database.value.trim().to_owned(),
            username: raw.odoo.username.value.trim().to_owned(),
        };
        let target = match (raw.postgres, raw.sqlite) {
            (Some(_), Some(_)) => {
                return Err(at(
                    None,
                    None,
                    "both `postgres` and `sqlite` are set: keep the one the mirror should write to"
                        .into(),
                ));
            }
            (Some(postgres), None) => {
                if postgres.ssl_mode == SslMode::VerifyFull && postgres.ssl_root_cert.is_none() {
                    return Err(at(None, None, "postgres.ssl_mode verify-full needs postgres.ssl_root_cert (the CA bundle that signed the server's certificate)".into()));
                }
                Target::Postgres(postgres)
            }
            (None, Some(sqlite)) => Target::Sqlite(sqlite),
            (None, None) => Target::Sqlite(SqliteSection {
                path: default_sqlite_path(),
            }),
        };
        if raw.sync.request_timeout_seconds == 0 {
            return Err(at(
                None,
                None,
                "sync.request_timeout_seconds must be at least 1".into(),
            ));
        }
        let environment = match &raw.environment {
            None => None,
            Some(spanned) => Some(
                crate::enrich::config::environment(spanned)
                    .map_err(|message| located(spanned, message))?,
            ),
        };
        let enrich = match raw.enrich {
            None => Vec::new(),
            Some(jobs) => crate::enrich::config::jobs(path, jobs, environment.as_deref())?,
        };
        let raw_models = match raw.models {
            Some(models) => {
                if models.value.is_empty() && enrich.is_empty() {
                    let models_at = models.referenced;
                    return Err(at(
                        Some(models_at.line()),
                        Some(models_at.column()),
                        "`models` is empty: list at least one Odoo model to mirror".into(),
                    ));
                }
                models.value
            }
            None if enrich.is_empty() => {
                return Err(at(
                    None,
                    None,
                    "missing `models` (the Odoo models to mirror) or `enrich` (enrichment jobs): list at least one".into(),
                ));
            }
            None => Vec::new(),
        };
        let default_interval = match raw.mirror.and_then(|mirror| mirror.interval_seconds) {
            None => DEFAULT_MIRROR_INTERVAL,
            Some(spanned) => interval(&spanned, "mirror.interval_seconds").map_err(|message| {
                at(
                    Some(spanned.referenced.line()),
                    Some(spanned.referenced.column()),
                    message,
                )
            })?,
        };
        let hint_token_env = match raw.hints {
            None => None,
            Some(hints) => {
                let variable = hints.token_env.value.trim().to_owned();
                let valid = !variable.is_empty()
                    && !variable.starts_with(|c: char| c.is_ascii_digit())
                    && variable
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(located(
                        &hints.token_env,
                        format!(
                            "hints.token_env {variable:?} is not an environment variable name: \
                             name the variable holding the hint token, e.g. \
                             ODOO_BRIDGE_MIRROR_HINT_TOKEN (never the token itself)"
                        ),
                    ));
                }
                Some((variable, Location::of(&hints.token_env)))
            }
        };
        let mut scheduled = Vec::with_capacity(raw_models.len());
        let mut models = Vec::with_capacity(raw_models.len());
        let mut locations = HashMap::with_capacity(raw_models.len());
        let mut seen = std::collections::HashSet::new();
        for model in raw_models {
            let name_at = model.name.referenced;
            let name = model.name.value.trim().to_owned();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return Err(at(
                    Some(name_at.line()),
                    Some(name_at.column()),
                    format!("{name:?} is not an Odoo model name (like `sale.order`)"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(at(
                    Some(name_at.line()),
                    Some(name_at.column()),
                    format!("model {name} is listed twice: merge the two entries"),
                ));
            }
            let domain = match &model.domain {
                None => Domain::all(),
                Some(spanned) => Domain::from_json(&spanned.value).map_err(|error| {
                    at(Some(spanned.referenced.line()), Some(spanned.referenced.column()), format!("invalid domain for {name}: {error} (write it in Odoo's prefix notation, e.g. [[\"state\", \"in\", [\"sale\", \"done\"]]])"))
                })?,
            };
            let page_size = match model.page_size {
                None => 500,
                Some(spanned) if (1..=10_000).contains(&spanned.value) => spanned.value as usize,
                Some(spanned) => {
                    return Err(at(
                        Some(spanned.referenced.line()),
                        Some(spanned.referenced.column()),
                        format!(
                            "page_size {} for {name} must be between 1 and 10000",
                            spanned.value
                        ),
                    ));
                }
            };
            let reconcile_every_runs = match model.reconcile_every_runs {
                None => 1,
                Some(spanned) if spanned.value >= 1 => spanned.value,
                Some(spanned) => {
                    return Err(at(
                        Some(spanned.referenced.line()),
                        Some(spanned.referenced.column()),
                        format!("reconcile_every_runs for {name} must be at least 1"),
                    ));
                }
            };
            let mut field_locations = HashMap::with_capacity(model.fields.len());
            for field in &model.fields {
                field_locations
                    .entry(field.value.clone())
                    .or_insert_with(|| Location::of(field));
            }
            locations.insert(
                name.clone(),
                ModelLocations {
                    name: Location::of(&model.name),
                    fields: field_locations,
                    cursor_field: model.cursor_field.as_ref().map(Location::of),
                    domain: model.domain.as_ref().map(Location::of),
                },
            );
            let parallelism = match model.parallelism {
                None => DEFAULT_PARALLELISM,
                Some(spanned) if (1..=MAX_PARALLELISM).contains(&spanned.value) => {
                    spanned.value as usize
                }
                Some(spanned) => {
                    return Err(at(
                        Some(spanned.referenced.line()),
                        Some(spanned.referenced.column()),
                        format!(
                            "parallelism {} for {name} must be between 1 and {MAX_PARALLELISM}",
                            spanned.value
                        ),
                    ));
                }
            };
            let model_interval = match &model.interval_seconds {
                None => default_interval,
                Some(spanned) => interval(spanned, &format!("interval_seconds for {name}"))
                    .map_err(|message| {
                        at(
                            Some(spanned.referenced.line()),
                            Some(spanned.referenced.column()),
                            message,
                        )
                    })?,
            };
            let hint = match &model.hint {
                Some(spanned) if spanned.value && hint_token_env.is_none() => {
                    return Err(at(
                        Some(spanned.referenced.line()),
                        Some(spanned.referenced.column()),
                        format!(
                            "{name} has `hint: true` but the file has no `hints.token_env`: add \
                             `hints: {{token_env: ODOO_BRIDGE_MIRROR_HINT_TOKEN}}` at the top \
                             level and export that variable with a random token \
                             (`openssl rand -hex 24`)"
                        ),
                    ));
                }
                Some(spanned) => spanned.value,
                None => false,
            };
            scheduled.push(ScheduledModel {
                name: name.clone(),
                interval: model_interval,
                hint,
            });
            models.push(ModelConfig {
                name,
                fields: model.fields.into_iter().map(|field| field.value).collect(),
                domain,
                cursor_field: model
                    .cursor_field
                    .map_or_else(|| "write_date".into(), |cursor| cursor.value),
                overlap_seconds: model.overlap_seconds.unwrap_or(120),
                page_size,
                reconcile_deletions: model.reconcile_deletions,
                reconcile_every_runs,
                parallelism,
            });
        }
        Ok(MirrorConfig {
            path: path.to_owned(),
            odoo,
            target,
            sync: raw.sync,
            models,
            environment,
            enrich,
            locations,
            schedule: MirrorSchedule {
                models: scheduled,
                hint_token_env,
            },
        })
    }

    /// The mirror's hint token, from the variable `hints.token_env` names: `None` when no
    /// model takes hints. An unset, short or malformed token is an error on that line (its
    /// value is never shown).
    pub fn hint_token(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<crate::hints::HintToken>, ConfigError> {
        if self.schedule.hinted().next().is_none() {
            return Ok(None);
        }
        let Some((variable, location)) = &self.schedule.hint_token_env else {
            return Ok(None);
        };
        let Some(value) = environment(variable) else {
            return Err(self.error_at(
                Some(*location),
                format!(
                    "{variable} is not set: hints.token_env names it as the mirror's hint token \
                     (export a random one, e.g. `export {variable}=$(openssl rand -hex 24)`)"
                ),
            ));
        };
        crate::hints::HintToken::configured(&value)
            .map(Some)
            .map_err(|problem| self.error_at(Some(*location), format!("{variable} {problem}")))
    }

    /// Reads the secrets from `environment` (the process environment in production).
    pub fn secrets(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets, ConfigError> {
        let odoo_api_key = read_secret(&environment, "ODOO_API_KEY")
            .map(ApiKey::new)
            .ok_or_else(|| self.missing("ODOO_API_KEY is not set: export the API key of the Odoo user (Preferences → Account Security → New API Key)".into()))?;
        Ok(Secrets {
            odoo_api_key,
            store: self.store_secrets(environment)?,
        })
    }

    /// Reads only the store's secrets: what `migrate`, `prune` and `runs` need.
    pub fn store_secrets(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<StoreSecrets, ConfigError> {
        match &self.target {
            Target::Postgres(PostgresSection {
                connection:
                    PostgresConnection::Params {
                        password_env: Some(variable),
                        ..
                    },
                ..
            }) => {
                // Set but empty is a password too (a server trusting local connections asks
                // for none); only an unset variable is a mistake.
                let password = environment(variable)
                    .map(|value| value.trim().to_owned())
                    .ok_or_else(|| self.missing(format!("{variable} is not set: postgres.connection.password_env names it as the database password (export {variable}= for an empty one)")))?;
                Ok(StoreSecrets {
                    postgres_password: Some(Secret(password)),
                    database_url: None,
                })
            }
            Target::Postgres(PostgresSection {
                connection: PostgresConnection::Url { url: None },
                ..
            }) => {
                let url = read_secret(&environment, "DATABASE_URL").ok_or_else(|| self.missing("DATABASE_URL is not set: postgres.connection has type url and no url, so the URL comes from DATABASE_URL".into()))?;
                Ok(StoreSecrets {
                    postgres_password: None,
                    database_url: Some(Secret(url)),
                })
            }
            _ => Ok(StoreSecrets::default()),
        }
    }

    /// Where `model`'s settings are written in the file.
    pub fn locations(&self, model: &str) -> Option<&ModelLocations> {
        self.locations.get(model)
    }

    /// An error about this file at `location` (or about the whole file).
    pub fn error_at(&self, location: Option<Location>, message: String) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line: location.map(|location| location.line),
            column: location.map(|location| location.column),
            message,
        }
    }

    fn missing(&self, message: String) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line: None,
            column: None,
            message,
        }
    }
}

/// A schedule's interval: from 1 s to a week.
fn interval(spanned: &Spanned<u64>, what: &str) -> Result<std::time::Duration, String> {
    const WEEK: u64 = 7 * 24 * 3600;
    if (1..=WEEK).contains(&spanned.value) {
        Ok(std::time::Duration::from_secs(spanned.value))
    } else {
        Err(format!(
            "{what} is {}: give seconds between 1 and {WEEK} (a week)",
            spanned.value
        ))
    }
}

fn read_secret(environment: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    environment(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}
