//! The `enrich:` section: one job per entry, validated once at load with the file, line and
//! key of every problem (the mirror's rules, [`crate::config`]).

use super::answer::Pointer;
use crate::config::{ConfigError, Location};
use odoo_rpc::Domain;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// A job as written, positions kept for messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    name: Spanned<String>,
    model: Spanned<String>,
    #[serde(default)]
    domain: Option<Spanned<Value>>,
    fields: Spanned<Vec<Spanned<String>>>,
    endpoint: Spanned<String>,
    /// `"1"`, or `1` written without quotes.
    packet_version: Spanned<Value>,
    timeout_seconds: Option<Spanned<u64>>,
    /// A JSON Schema, inline or as the path of a file (relative to the configuration file).
    response_schema: Spanned<Value>,
    /// Odoo field ← JSON Pointer into the response (`""`: the whole response as JSON text).
    #[serde(default)]
    writeback: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    max_failures: Option<Spanned<u32>>,
    /// The environment variable holding the Standard Webhooks signing secret.
    secret_env: Option<Spanned<String>>,
    /// How often `odoo-bridge run --config` runs the job.
    interval_seconds: Option<Spanned<u64>>,
    /// Packets in flight at once.
    concurrency: Option<Spanned<u64>>,
}

/// One field written back from the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writeback {
    /// The Odoo field; nothing outside these is ever written.
    pub field: String,
    pub pointer: Pointer,
}

/// Where a job's settings are written, so that a problem found against the live Odoo (a
/// field it does not have) names the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLocations {
    pub name: Location,
    pub model: Location,
    pub fields: HashMap<String, Location>,
    pub writeback: HashMap<String, Location>,
    pub secret_env: Option<Location>,
}

/// One enrichment job, validated.
#[derive(Debug, Clone)]
pub struct EnrichJob {
    pub name: String,
    pub model: String,
    pub domain: Domain,
    /// The record's fields the payload carries, in the order written.
    pub fields: Vec<String>,
    pub endpoint: String,
    pub packet_version: String,
    pub timeout: Duration,
    /// The JSON Schema every answer must pass before anything is written back.
    pub response_schema: Value,
    pub writeback: Vec<Writeback>,
    pub max_failures: u32,
    pub secret_env: Option<String>,
    pub interval: Duration,
    /// Packets in flight at once (1: one after another).
    pub concurrency: usize,
    pub locations: JobLocations,
}

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
pub const MAX_TIMEOUT_SECONDS: u64 = 600;
pub const DEFAULT_MAX_FAILURES: u32 = 3;
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;
pub const DEFAULT_CONCURRENCY: u64 = 4;
pub const MAX_CONCURRENCY: u64 = 32;

/// Checks the `environment` value: a short tag, as it travels in a header.
pub(crate) fn environment(spanned: &Spanned<String>) -> Result<String, String> {
    let value = spanned.value.trim();
    if is_tag(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "environment {value:?} must be 1 to 64 letters, digits, `-`, `_` or `.` (like `prod`)"
        ))
    }
}

fn is_tag(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_field_name(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_model_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// Validates the jobs of `path`. `environment` is the file's `environment` tag: required
/// once there is a job.
pub(crate) fn jobs(
    path: &Path,
    raw: Spanned<Vec<RawJob>>,
    environment: Option<&str>,
) -> Result<Vec<EnrichJob>, ConfigError> {
    let error = |location: Location, message: String| ConfigError {
        path: path.to_owned(),
        line: Some(location.line),
        column: Some(location.column),
        message,
    };
    let section = Location::of(&raw);
    if raw.value.is_empty() {
        return Err(error(
            section,
            "`enrich` is empty: list at least one job, or remove the key".into(),
        ));
    }
    if environment.is_none() {
        return Err(error(
            section,
            "enrichment jobs need `environment` (e.g. `environment: prod`): it is written into every packet, and a store of another environment refuses them".into(),
        ));
    }
    let mut names = HashSet::new();
    let mut jobs = Vec::with_capacity(raw.value.len());
    for job in raw.value {
        let name = job.name.value.trim().to_owned();
        let name_at = Location::of(&job.name);
        if !is_tag(&name) {
            return Err(error(
                name_at,
                format!(
                    "enrich: job name {name:?} must be 1 to 64 letters, digits, `-`, `_` or `.`"
                ),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(error(
                name_at,
                format!("enrich: job {name} is listed twice: give each job its own name"),
            ));
        }
        let key = |what: &str| format!("enrich[{name}].{what}");
        let model = job.model.value.trim().to_owned();
        if !is_model_name(&model) {
            return Err(error(
                Location::of(&job.model),
                format!(
                    "{}: {model:?} is not an Odoo model name (like `crm.lead`)",
                    key("model")
                ),
            ));
        }
        let domain = match &job.domain {
            None => Domain::all(),
            Some(spanned) => Domain::from_json(&spanned.value).map_err(|problem| {
                error(
                    Location::of(spanned),
                    format!("{}: {problem} (write it in Odoo's prefix notation, e.g. [[\"type\", \"=\", \"opportunity\"]])", key("domain")),
                )
            })?,
        };
        if job.fields.value.is_empty() {
            return Err(error(
                Location::of(&job.fields),
                format!(
                    "{} is empty: list the fields the packet carries",
                    key("fields")
                ),
            ));
        }
        let mut fields = Vec::with_capacity(job.fields.value.len());
        let mut field_locations = HashMap::new();
        for field in &job.fields.value {
            let value = field.value.trim();
            if !is_field_name(value) {
                return Err(error(
                    Location::of(field),
                    format!("{}: {value:?} is not an Odoo field name", key("fields")),
                ));
            }
            if field_locations
                .insert(value.to_owned(), Location::of(field))
                .is_some()
            {
                return Err(error(
                    Location::of(field),
                    format!("{}: {value} is listed twice", key("fields")),
                ));
            }
            fields.push(value.to_owned());
        }
        let endpoint = job.endpoint.value.trim().to_owned();
        match reqwest::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(error(
                    Location::of(&job.endpoint),
                    format!("{}: {endpoint:?} is not an http(s) URL", key("endpoint")),
                ));
            }
        }
        let packet_version = match &job.packet_version.value {
            Value::String(text) if is_tag(text.trim()) => text.trim().to_owned(),
            Value::Number(number) if number.is_u64() => number.to_string(),
            other => {
                return Err(error(
                    Location::of(&job.packet_version),
                    format!(
                        "{}: {other} must be a short version tag such as \"1\"",
                        key("packet_version")
                    ),
                ));
            }
        };
        let timeout_seconds = match job.timeout_seconds {
            None => DEFAULT_TIMEOUT_SECONDS,
            Some(spanned) if (1..=MAX_TIMEOUT_SECONDS).contains(&spanned.value) => spanned.value,
            Some(spanned) => {
                return Err(error(
                    Location::of(&spanned),
                    format!(
                        "{} must be between 1 and {MAX_TIMEOUT_SECONDS}",
                        key("timeout_seconds")
                    ),
                ));
            }
        };
        let response_schema = response_schema(path, &job.response_schema).map_err(|message| {
            error(
                Location::of(&job.response_schema),
                format!("{}: {message}", key("response_schema")),
            )
        })?;
        let mut writeback = Vec::new();
        let mut writeback_locations = HashMap::new();
        if let Some(spanned) = &job.writeback {
            for (field, pointer) in &spanned.value {
                let at = Location::of(pointer);
                if !is_field_name(field) || field == "id" {
                    return Err(error(
                        at,
                        format!(
                            "{}: {field:?} is not an Odoo field that can be written",
                            key("writeback")
                        ),
                    ));
                }
                let parsed = Pointer::parse(&pointer.value).map_err(|message| {
                    error(at, format!("{}.{field}: {message}", key("writeback")))
                })?;
                writeback_locations.insert(field.clone(), at);
                writeback.push(Writeback {
                    field: field.clone(),
                    pointer: parsed,
                });
            }
        }
        let max_failures = match job.max_failures {
            None => DEFAULT_MAX_FAILURES,
            Some(spanned) if spanned.value >= 1 => spanned.value,
            Some(spanned) => {
                return Err(error(
                    Location::of(&spanned),
                    format!("{} must be at least 1", key("max_failures")),
                ));
            }
        };
        let secret_env = match &job.secret_env {
            None => None,
            Some(spanned) => {
                let variable = spanned.value.trim();
                if variable.is_empty()
                    || !variable
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(error(
                        Location::of(spanned),
                        format!(
                            "{}: {variable:?} is not an environment variable name",
                            key("secret_env")
                        ),
                    ));
                }
                Some(variable.to_owned())
            }
        };
        let interval_seconds = match job.interval_seconds {
            None => DEFAULT_INTERVAL_SECONDS,
            Some(spanned) if spanned.value >= 1 => spanned.value,
            Some(spanned) => {
                return Err(error(
                    Location::of(&spanned),
                    format!("{} must be at least 1", key("interval_seconds")),
                ));
            }
        };
        let concurrency = match job.concurrency {
            None => DEFAULT_CONCURRENCY,
            Some(spanned) if (1..=MAX_CONCURRENCY).contains(&spanned.value) => spanned.value,
            Some(spanned) => {
                return Err(error(
                    Location::of(&spanned),
                    format!(
                        "{} must be between 1 and {MAX_CONCURRENCY}",
                        key("concurrency")
                    ),
                ));
            }
        };
        jobs.push(EnrichJob {
            locations: JobLocations {
                name: name_at,
                model: Location::of(&job.model),
                fields: field_locations,
                writeback: writeback_locations,
                secret_env: job.secret_env.as_ref().map(Location::of),
            },
            name,
            model,
            domain,
            fields,
            endpoint,
            packet_version,
            timeout: Duration::from_secs(timeout_seconds),
            response_schema,
            writeback,
            max_failures,
            secret_env,
            interval: Duration::from_secs(interval_seconds),
            concurrency: usize::try_from(concurrency).unwrap_or(1),
        });
    }
    Ok(jobs)
}

/// The schema written inline, or read from the file a string names; checked to be a JSON
/// Schema that compiles.
fn response_schema(config_path: &Path, written: &Spanned<Value>) -> Result<Value, String> {
    let schema = match &written.value {
        Value::String(file) => {
            let file = Path::new(file.trim());
            let resolved = match config_path.parent() {
                Some(directory) if file.is_relative() => directory.join(file),
                _ => file.to_owned(),
            };
            let text = std::fs::read_to_string(&resolved).map_err(|problem| {
                format!(
                    "cannot read the schema file {}: {problem}",
                    resolved.display()
                )
            })?;
            serde_json::from_str::<Value>(&text).map_err(|problem| {
                format!(
                    "the schema file {} is not JSON: {problem}",
                    resolved.display()
                )
            })?
        }
        Value::Object(_) => written.value.clone(),
        other => {
            return Err(format!(
                "expected a JSON Schema (an object) or the path of a schema file, found {other}"
            ));
        }
    };
    super::answer::compile(&schema)
        .map_err(|problem| format!("not a valid JSON Schema: {problem}"))?;
    Ok(schema)
}
