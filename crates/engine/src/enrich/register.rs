//! A configuration file's enrichment jobs as a tenant and flows of the store, so that the
//! engine runs them like any other flow (`enrich run` passes, `run`'s runtime, replicas).
//!
//! Ids are derived from what they stand for — the tenant from the Odoo (URL, database,
//! login), each flow from its tenant and job name — so every process registering the same
//! file lands on the same rows, and two registering at once settle on one (the loser of an
//! insert finds the winner's row and updates it if needed).

use super::EnrichJob;
use super::error::EnrichError;
use super::flow::{SIGNING_SECRET, StoredJob};
use crate::store::environment;
use crate::store::{Flow, FlowKind, FlowSecrets, SecretValue, Store, StoreError, Tenant};
use crate::webhook::WebhookSecret;
use jiff::Timestamp;
use odoo_rpc::{ApiKey, TransportChoice};
use sha2::{Digest, Sha256};

/// The Odoo the file's jobs read and write.
#[derive(Debug, Clone)]
pub struct OdooAccess {
    pub base_url: String,
    pub database: String,
    pub username: String,
    pub api_key: ApiKey,
}

/// One job of the file with its signing secret.
#[derive(Debug, Clone)]
pub struct JobEntry {
    pub job: EnrichJob,
    pub secret: Option<WebhookSecret>,
}

/// The tenant standing for the Odoo at `base_url`, its `database` and `username`.
pub fn tenant_id(base_url: &str, database: &str, username: &str) -> String {
    short_hash(&[
        "enrich-tenant",
        base_url.trim_end_matches('/'),
        database,
        username,
    ])
}

/// The flow of job `name` of tenant `tenant_id`.
pub fn flow_id(tenant_id: &str, name: &str) -> String {
    short_hash(&["enrich-flow", tenant_id, name])
}

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Binds the store to `environment` (refusing a store of another one), then writes or
/// updates the tenant and one active flow per job; flows of this tenant whose job left the
/// file are paused. Returns the tenant and the jobs' flows, in the jobs' order.
pub async fn register<S: Store>(
    store: &S,
    odoo: &OdooAccess,
    environment_tag: &str,
    jobs: &[JobEntry],
    now: Timestamp,
) -> Result<(Tenant, Vec<Flow>), EnrichError> {
    environment::bind(store, environment_tag, now).await??;
    let tenant = Tenant {
        id: tenant_id(&odoo.base_url, &odoo.database, &odoo.username),
        name: format!("{} at {}", odoo.database, odoo.base_url),
        odoo_url: odoo.base_url.clone(),
        odoo_db: odoo.database.clone(),
        odoo_username: odoo.username.clone(),
        odoo_api_key: odoo.api_key.clone(),
        transport: TransportChoice::Auto,
        odoo_min_delay_ms: 0,
        created_at: now,
        updated_at: now,
    };
    let wanted: Vec<Flow> = jobs
        .iter()
        .map(|entry| flow_of(&tenant.id, entry, environment_tag, now))
        .collect();
    if store.tenant(&tenant.id).await?.is_none() {
        match store.insert_tenant(&tenant, &wanted).await {
            Ok(()) => return Ok((tenant, wanted)),
            // Another process registered the same file a moment ago: update theirs.
            Err(error) if error.is_conflict() => {}
            Err(error) => return Err(refused(error, jobs)),
        }
    }
    let stored_tenant = store.tenant(&tenant.id).await?.ok_or_else(|| {
        EnrichError::Store(StoreError::not_found(format!("tenant {}", tenant.id)))
    })?;
    let mut flows = Vec::with_capacity(wanted.len());
    let mut changed = Vec::new();
    for flow in wanted {
        match store.flow(None, &flow.id).await? {
            None => match store.insert_flow(&flow).await {
                Ok(()) => flows.push(flow),
                Err(error) if error.is_conflict() => match store.flow(None, &flow.id).await? {
                    Some(stored) => flows.push(stored),
                    None => return Err(refused(error, jobs)),
                },
                Err(error) => return Err(refused(error, jobs)),
            },
            Some(stored) => {
                let kept = Flow {
                    created_at: stored.created_at,
                    last_sync_at: stored.last_sync_at,
                    is_active: true,
                    updated_at: if same_flow(&stored, &flow) {
                        stored.updated_at
                    } else {
                        now
                    },
                    ..flow
                };
                if kept != stored {
                    changed.push(kept.clone());
                }
                flows.push(kept);
            }
        }
    }
    let names: Vec<&str> = jobs.iter().map(|entry| entry.job.name.as_str()).collect();
    for stale in store.flows(Some(FlowKind::Enrichment)).await? {
        if stale.tenant_id == tenant.id && stale.is_active && !names.contains(&stale.name.as_str())
        {
            changed.push(Flow {
                is_active: false,
                updated_at: now,
                ..stale
            });
        }
    }
    let tenant_changed = stored_tenant.odoo_url != tenant.odoo_url
        || stored_tenant.odoo_api_key != tenant.odoo_api_key
        || stored_tenant.name != tenant.name;
    if tenant_changed || !changed.is_empty() {
        let tenant = Tenant {
            created_at: stored_tenant.created_at,
            updated_at: if tenant_changed {
                now
            } else {
                stored_tenant.updated_at
            },
            transport: stored_tenant.transport,
            odoo_min_delay_ms: stored_tenant.odoo_min_delay_ms,
            ..tenant.clone()
        };
        store.update_tenant(&tenant, &changed).await?;
    }
    Ok((stored_tenant, flows))
}

fn flow_of(tenant_id: &str, entry: &JobEntry, environment: &str, now: Timestamp) -> Flow {
    let mut secrets = FlowSecrets::new();
    if let Some(secret) = &entry.secret {
        secrets.insert(
            SIGNING_SECRET.to_owned(),
            SecretValue::new(secret.expose().to_owned()),
        );
    }
    Flow {
        id: flow_id(tenant_id, &entry.job.name),
        tenant_id: tenant_id.to_owned(),
        kind: FlowKind::Enrichment,
        name: entry.job.name.clone(),
        is_active: true,
        interval_seconds: u32::try_from(entry.job.interval.as_secs()).unwrap_or(u32::MAX),
        settings: StoredJob::of(&entry.job, environment).to_settings(),
        secrets,
        last_sync_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// Whether `stored` already says what `wanted` says.
fn same_flow(stored: &Flow, wanted: &Flow) -> bool {
    stored.settings == wanted.settings
        && stored.secrets == wanted.secrets
        && stored.interval_seconds == wanted.interval_seconds
        && stored.name == wanted.name
        && stored.is_active
}

/// A conflict that is not the same job registered twice: a job of another Odoo has the name.
fn refused(error: StoreError, jobs: &[JobEntry]) -> EnrichError {
    if error.is_conflict() {
        EnrichError::Registration {
            message: format!(
                "this store already runs an enrichment job named {} for another Odoo: give the job another name, or use another store ({error})",
                jobs.iter()
                    .map(|entry| entry.job.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    } else {
        EnrichError::Store(error)
    }
}
