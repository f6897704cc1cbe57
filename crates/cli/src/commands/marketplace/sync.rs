//! `odoo-bridge marketplace conflicts | resolve | log | stats`: what the status sync did and
//! what waits for a person (seed 001's conflicts, sync log and dashboard).

use super::Store;
use crate::commands::delivery_store::{ago, cut, table, time_json};
use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, ValueEnum};
use engine::clock::Clock;
use engine::connection_test::scrub_secrets;
use engine::marketplace::Marketplace;
use engine::marketplace::apply::{Applied, ApplyError, StatusApplier};
use engine::marketplace::inbound::StatusUpdate;
use engine::marketplace::odoo_order::WorkflowError;
use engine::marketplace::outbound::{PushError, enqueue_status_push};
use engine::marketplace::status::MarketplaceStatus;
use engine::store::{Conflict, LogFilter, Resolve, StoredLogEntry};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::OdooClient;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ConflictsArgs {
    /// Only this marketplace's (id or name).
    #[arg(long, value_name = "ID|NAME")]
    marketplace: Option<String>,
    /// Resolved conflicts too (and the ones rules resolved by themselves).
    #[arg(long)]
    all: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    /// Push Odoo's status to the marketplace (sent by `odoo-bridge run`).
    Odoo,
    /// Apply the marketplace's status to Odoo again, now (through Odoo's workflow).
    Marketplace,
    /// Close the conflict, changing nothing.
    Ignore,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Odoo => "odoo",
            Side::Marketplace => "marketplace",
            Side::Ignore => "ignore",
        }
    }
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The conflict's id (see `odoo-bridge marketplace conflicts`).
    #[arg(value_name = "ID")]
    id: i64,
    /// Which side wins: odoo, marketplace or ignore.
    #[arg(long, value_enum, value_name = "SIDE")]
    apply: Side,
    /// Seconds to wait for each Odoo call.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this order's events (the marketplace's order id).
    #[arg(long, value_name = "HASHED_ID")]
    order: Option<String>,
    /// Only this marketplace's (id or name).
    #[arg(long, value_name = "ID|NAME")]
    marketplace: Option<String>,
    /// At most this many rows, newest first (0: all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this marketplace's (id or name).
    #[arg(long, value_name = "ID|NAME")]
    marketplace: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl<S: engine::store::Store> Store<'_, S> {
    /// The flow id of `--marketplace`, when given.
    async fn flow_filter(&self, marketplace: Option<&str>) -> Result<Option<String>, Failure> {
        match marketplace {
            Some(wanted) => Ok(Some(self.find(wanted).await?.id)),
            None => Ok(None),
        }
    }

    /// Marketplace names by flow id, for the tables.
    async fn names(&self) -> Result<HashMap<String, String>, Failure> {
        Ok(self
            .all()
            .await?
            .into_iter()
            .map(|m| (m.id, m.name))
            .collect())
    }
}

fn name_of(names: &HashMap<String, String>, flow_id: &str) -> String {
    names
        .get(flow_id)
        .cloned()
        .unwrap_or_else(|| flow_id.to_owned())
}

fn conflict_json(conflict: &Conflict, names: &HashMap<String, String>) -> Value {
    let c = &conflict.conflict;
    json!({
        "id": conflict.id,
        "marketplace_id": c.flow_id,
        "marketplace": name_of(names, &c.flow_id),
        "hashed_id": c.hashed_id,
        "odoo_order_id": c.odoo_order_id,
        "type": c.kind,
        "severity": c.severity.as_str(),
        "marketplace_status": c.marketplace_status,
        "odoo_status": c.odoo_status,
        "odoo_order_state": c.odoo_order_state,
        "odoo_delivery_state": c.odoo_delivery_state,
        "recommended_action": c.recommended_action,
        "auto_resolvable": c.auto_resolvable,
        "detail": c.detail,
        "state": if conflict.open { "open" } else { "resolved" },
        "resolution": c.resolution,
        "created_at": time_json(conflict.created_at),
        "updated_at": time_json(conflict.updated_at),
        "resolved_at": conflict.resolved_at.map(time_json),
    })
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

pub async fn conflicts<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ConflictsArgs,
) -> Result<Exit, Failure> {
    let flow = store.flow_filter(args.marketplace.as_deref()).await?;
    let found = store
        .store
        .conflicts(flow.as_deref(), !args.all)
        .await
        .map_err(|e| store.failed(e))?;
    let names = store.names().await?;
    if args.json {
        let rows: Vec<Value> = found.iter().map(|c| conflict_json(c, &names)).collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if found.is_empty() {
        say!("No {}conflicts.", if args.all { "" } else { "open " });
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|conflict| {
            let c = &conflict.conflict;
            vec![
                conflict.id.to_string(),
                name_of(&names, &c.flow_id),
                c.hashed_id.clone(),
                c.kind.clone(),
                c.severity.to_string(),
                dash(c.marketplace_status.as_deref()),
                format!(
                    "{} / {}",
                    dash(c.odoo_order_state.as_deref()),
                    dash(c.odoo_delivery_state.as_deref())
                ),
                if conflict.open {
                    "open".to_owned()
                } else {
                    format!("resolved: {}", dash(c.resolution.as_deref()))
                },
                ago(conflict.updated_at, now),
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "ID",
                "MARKETPLACE",
                "ORDER",
                "TYPE",
                "SEVERITY",
                "MARKETPLACE SAYS",
                "ODOO (ORDER / DELIVERY)",
                "STATE",
                "SEEN",
            ],
            &rows
        )
    );
    for conflict in found.iter().filter(|c| c.open) {
        say!(
            "  {}: {}. Recommended: {}.",
            conflict.id,
            conflict.conflict.detail,
            conflict.conflict.recommended_action
        );
    }
    Ok(Exit::Success)
}

/// Hides the marketplace's secrets in a text (an error may echo a request).
fn scrub_for(m: &Marketplace) -> impl Fn(String) -> String {
    let secrets = [
        m.odoo_api_key.expose().to_owned(),
        m.secrets.api_token.expose().to_owned(),
        m.secrets.webhook_secret.expose().to_owned(),
    ];
    move |text: String| {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        scrub_secrets(text, &secrets)
    }
}

/// The tenant's Odoo client, as `run` builds it.
fn odoo_client(m: &Marketplace, timeout: Duration) -> Result<OdooClient, Failure> {
    let mut config = m.tenant().odoo_client_config();
    config.timeout = timeout;
    OdooClient::new(config).map_err(|error| Failure::new(Exit::Config, error))
}

pub async fn resolve<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ResolveArgs,
) -> Result<Exit, Failure> {
    let Some(conflict) = store
        .store
        .conflict(args.id)
        .await
        .map_err(|e| store.failed(e))?
    else {
        return Err(Failure::new(
            Exit::NotFound,
            anyhow::anyhow!(
                "no conflict has the id {} (see `odoo-bridge marketplace conflicts`)",
                args.id
            ),
        ));
    };
    if !conflict.open {
        return Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!(
                "conflict {} is already resolved ({}); nothing done",
                args.id,
                dash(conflict.conflict.resolution.as_deref())
            ),
        ));
    }
    let c = &conflict.conflict;
    let m = store.find(&c.flow_id).await?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let scrub = scrub_for(&m);
    let clock = Clock::system();
    let done = match args.apply {
        Side::Ignore => "closed; nothing changed".to_owned(),
        Side::Odoo => {
            let odoo = odoo_client(&m, timeout)?;
            let pushed =
                enqueue_status_push(&odoo, store.store, &m.id, &c.hashed_id, &m.outbound, &clock)
                    .await
                    .map_err(|error| push_failure(error, &scrub))?;
            format!(
                "Odoo's status {} queued for the marketplace (packet {}; `odoo-bridge run` sends it)",
                pushed.status, pushed.packet_id
            )
        }
        Side::Marketplace => {
            let Some(status) = c
                .marketplace_status
                .as_deref()
                .and_then(MarketplaceStatus::parse)
            else {
                return Err(Failure::new(
                    Exit::Failure,
                    anyhow::anyhow!("conflict {} names no marketplace status to apply", args.id),
                ));
            };
            let odoo = odoo_client(&m, timeout)?;
            let applier = StatusApplier::new(store.store.clone(), odoo, &m.id, clock.clone());
            let update = StatusUpdate {
                hashed_id: c.hashed_id.clone(),
                status,
            };
            let applied = applier
                .apply_status(&format!("resolve:{}", args.id), &update, 0, true)
                .await
                .map_err(|error| apply_failure(error, &scrub))?;
            match applied {
                Applied::Done { .. } => applied.describe(&update),
                Applied::Conflict(still) => {
                    return Err(Failure::new(
                        Exit::Failure,
                        anyhow::anyhow!(
                            "Odoo still cannot take {} for {}: {} (conflict {} stays open). Recommended: {}",
                            status,
                            c.hashed_id,
                            still.conflict.detail,
                            still.id,
                            still.conflict.recommended_action
                        ),
                    ));
                }
                Applied::UnknownOrder => {
                    return Err(Failure::new(
                        Exit::NotFound,
                        anyhow::anyhow!("{} is no imported order of {:?}", c.hashed_id, m.name),
                    ));
                }
            }
        }
    };
    let resolution = args.apply.as_str();
    let resolved = store
        .store
        .resolve_conflict(args.id, resolution, Timestamp::now())
        .await
        .map_err(|e| store.failed(e))?;
    let conflict = match resolved {
        Resolve::Resolved(conflict) => conflict,
        Resolve::AlreadyResolved(conflict) => {
            return Err(Failure::new(
                Exit::Failure,
                anyhow::anyhow!(
                    "conflict {} was resolved meanwhile by someone else ({})",
                    args.id,
                    dash(conflict.conflict.resolution.as_deref())
                ),
            ));
        }
        Resolve::NotFound => {
            return Err(Failure::new(
                Exit::NotFound,
                anyhow::anyhow!("conflict {} was deleted meanwhile", args.id),
            ));
        }
    };
    if args.json {
        let names = store.names().await?;
        let mut object = conflict_json(&conflict, &names);
        object["done"] = json!(done);
        say!("{object}");
    } else {
        say!("Conflict {} resolved ({resolution}): {done}.", args.id);
    }
    Ok(Exit::Success)
}

fn odoo_failure(error: &odoo_rpc::Error, scrub: &dyn Fn(String) -> String) -> Failure {
    Failure::new(exit_for(error), anyhow::anyhow!(scrub(error.to_string())))
}

fn apply_failure(error: ApplyError, scrub: &dyn Fn(String) -> String) -> Failure {
    match &error {
        ApplyError::Workflow(WorkflowError::Odoo(odoo)) => odoo_failure(odoo, scrub),
        ApplyError::Workflow(_) => {
            Failure::new(Exit::OdooError, anyhow::anyhow!(scrub(error.to_string())))
        }
        _ => Failure::new(Exit::Failure, anyhow::anyhow!(scrub(error.to_string()))),
    }
}

fn push_failure(error: PushError, scrub: &dyn Fn(String) -> String) -> Failure {
    let exit = match &error {
        PushError::UnknownOrder(_) => Exit::NotFound,
        PushError::MissingInOdoo(_) => Exit::OdooError,
        _ => Exit::Failure,
    };
    Failure::new(exit, anyhow::anyhow!(scrub(error.to_string())))
}

fn log_json(row: &StoredLogEntry, names: &HashMap<String, String>) -> Value {
    let e = &row.entry;
    json!({
        "id": row.id,
        "marketplace_id": e.flow_id,
        "marketplace": name_of(names, &e.flow_id),
        "event": e.event_key,
        "direction": e.direction.as_str(),
        "hashed_id": e.hashed_id,
        "odoo_order_id": e.odoo_order_id,
        "action": e.action,
        "outcome": e.outcome.as_str(),
        "marketplace_status": e.marketplace_status,
        "odoo_order_state": e.odoo_order_state,
        "odoo_delivery_state": e.odoo_delivery_state,
        "response_time_ms": e.response_time_ms,
        "retries": e.retries,
        "error_code": e.error_code,
        "error": e.error_text,
        "at": time_json(e.at),
    })
}

pub async fn log<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: LogArgs,
) -> Result<Exit, Failure> {
    let flow_id = store.flow_filter(args.marketplace.as_deref()).await?;
    let rows = store
        .store
        .marketplace_log(&LogFilter {
            flow_id,
            hashed_id: args.order.clone(),
            limit: args.limit,
        })
        .await
        .map_err(|e| store.failed(e))?;
    let names = store.names().await?;
    if args.json {
        let rows: Vec<Value> = rows.iter().map(|row| log_json(row, &names)).collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        match &args.order {
            Some(order) => say!("No sync events for order {order:?}."),
            None => say!("No sync events yet."),
        }
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let e = &row.entry;
            vec![
                ago(e.at, now),
                name_of(&names, &e.flow_id),
                e.direction.as_str().to_owned(),
                e.hashed_id.clone(),
                e.action.clone(),
                e.outcome.to_string(),
                dash(e.marketplace_status.as_deref()),
                format!(
                    "{} / {}",
                    dash(e.odoo_order_state.as_deref()),
                    dash(e.odoo_delivery_state.as_deref())
                ),
                e.response_time_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
                e.retries.to_string(),
                match (&e.error_code, &e.error_text) {
                    (Some(code), Some(text)) => cut(&format!("{code}: {text}"), 80),
                    (Some(code), None) => code.clone(),
                    (None, Some(text)) => cut(text, 80),
                    (None, None) => String::new(),
                },
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "WHEN",
                "MARKETPLACE",
                "DIRECTION",
                "ORDER",
                "ACTION",
                "OUTCOME",
                "STATUS",
                "ODOO (ORDER / DELIVERY)",
                "TIME",
                "RETRIES",
                "ERROR",
            ],
            &table_rows
        )
    );
    Ok(Exit::Success)
}

pub async fn stats<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: StatsArgs,
) -> Result<Exit, Failure> {
    let flow_id = store.flow_filter(args.marketplace.as_deref()).await?;
    let since = Timestamp::now() - SignedDuration::from_hours(24);
    let stats = store
        .store
        .log_stats(flow_id.as_deref(), since)
        .await
        .map_err(|e| store.failed(e))?;
    let average = stats.average_response_ms();
    if args.json {
        say!(
            "{}",
            json!({
                "marketplace_id": flow_id,
                "since": time_json(since),
                "total": stats.total,
                "success": stats.success,
                "failed": stats.failed,
                "conflict": stats.conflict,
                "retrying": stats.retrying,
                "average_response_ms": average.map(|ms| (ms * 10.0).round() / 10.0),
                "orders": stats.orders,
                "orders_in_sync": stats.orders_in_sync,
                "open_conflicts": stats.open_conflicts,
            })
        );
        return Ok(Exit::Success);
    }
    say!("Last 24 hours:");
    say!(
        "  events            {} (success {}, failed {}, conflict {}, retrying {})",
        stats.total,
        stats.success,
        stats.failed,
        stats.conflict,
        stats.retrying
    );
    say!(
        "  response time     {}",
        average.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0} ms on average"))
    );
    say!(
        "Orders in sync:     {} of {} imported",
        stats.orders_in_sync,
        stats.orders
    );
    say!("Open conflicts:     {}", stats.open_conflicts);
    Ok(Exit::Success)
}
