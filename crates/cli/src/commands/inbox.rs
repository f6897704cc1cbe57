//! `odoo-bridge inbox …`: the events flows took in (`POST /inbox/{flow_id}` and the flows'
//! own inbound paths). Each was stored before it was answered; a worker applies it, and one
//! that keeps failing ends FAILED and waits here for a person to retry or discard it.

use super::connections::Store;
use super::delivery_store::{
    Access, StoreLocation, StoreTask, ago, confirm, cut, table, time_json, time_text, until,
    with_store,
};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand, ValueEnum};
use engine::display::attempts_text;
use engine::store::{ApplicationRecord, Flow, InboundEvent, InboundFilter, InboundStatus};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// List inbound events, newest first (all statuses unless --status is given).
    List(ListArgs),
    /// Show one event: where it stands, its applications and the body as received.
    Show(ShowArgs),
    /// Make a PENDING or FAILED event due now, its applications reset to 0.
    Retry(EventArgs),
    /// Drop a PENDING or FAILED event: it will never be applied.
    Discard(DiscardArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Applied,
    Failed,
    Discarded,
}

impl From<StatusArg> for InboundStatus {
    fn from(status: StatusArg) -> InboundStatus {
        match status {
            StatusArg::Pending => InboundStatus::Pending,
            StatusArg::Applied => InboundStatus::Applied,
            StatusArg::Failed => InboundStatus::Failed,
            StatusArg::Discarded => InboundStatus::Discarded,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this flow's events (its id or name).
    #[arg(long, value_name = "ID|NAME")]
    flow: Option<String>,
    /// Only events with this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// At most this many events (0: all).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The event's number (the first column of `inbox list`).
    event: i64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    /// The event's number (the first column of `inbox list`).
    event: i64,
}

#[derive(Debug, Args)]
pub struct DiscardArgs {
    /// The event's number (the first column of `inbox list`).
    event: i64,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
}

pub async fn run(command: InboxCommand) -> Result<Exit, Failure> {
    with_store(Access::Existing, Task(command)).await
}

struct Task(InboxCommand);

impl StoreTask for Task {
    type Output = Exit;

    async fn run<S: engine::store::Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> Result<Exit, Failure> {
        let store = Store { store, location };
        match self.0 {
            InboxCommand::List(args) => list(&store, args).await,
            InboxCommand::Show(args) => show(&store, args).await,
            InboxCommand::Retry(args) => retry(&store, args.event).await,
            InboxCommand::Discard(args) => discard(&store, args).await,
        }
    }
}

fn status_word(status: InboundStatus) -> String {
    status.as_str().to_ascii_lowercase()
}

/// The flow with this id or name, of any kind (exact first, then ignoring case when only one
/// matches); exit 9 when there is none.
async fn find_flow<S: engine::store::Store>(
    store: &Store<'_, S>,
    id_or_name: &str,
) -> Result<Flow, Failure> {
    let wanted = id_or_name.trim();
    if let Some(flow) = store
        .store
        .flow(None, wanted)
        .await
        .map_err(|e| store.failed(e))?
    {
        return Ok(flow);
    }
    let all = store.store.flows(None).await.map_err(|e| store.failed(e))?;
    let mut matches = all
        .into_iter()
        .filter(|flow| flow.name.trim().to_lowercase() == wanted.to_lowercase());
    match (matches.next(), matches.next()) {
        (Some(flow), None) => Ok(flow),
        _ => Err(Failure::new(
            Exit::NotFound,
            anyhow::anyhow!("no flow has the id or name {wanted:?}"),
        )),
    }
}

/// Flow id → name, for every flow.
async fn flow_names<S: engine::store::Store>(
    store: &Store<'_, S>,
) -> Result<HashMap<String, String>, Failure> {
    Ok(store
        .store
        .flows(None)
        .await
        .map_err(|e| store.failed(e))?
        .into_iter()
        .map(|flow| (flow.id, flow.name))
        .collect())
}

/// The event, or exit 9 naming its number.
async fn find<S: engine::store::Store>(
    store: &Store<'_, S>,
    id: i64,
) -> Result<InboundEvent, Failure> {
    store
        .store
        .inbound_event(id)
        .await
        .map_err(|e| store.failed(e))?
        .ok_or_else(|| {
            Failure::new(
                Exit::NotFound,
                anyhow::anyhow!(
                    "no inbound event has the number {id} (see `odoo-bridge inbox list`)"
                ),
            )
        })
}

/// Where an event stands, in a few words.
fn state_text(event: &InboundEvent, now: Timestamp) -> String {
    match event.status {
        InboundStatus::Pending if event.lease_until.is_some_and(|until| until > now) => {
            "being applied".to_owned()
        }
        InboundStatus::Pending => format!("due {}", until(event.next_attempt_at, now)),
        InboundStatus::Applied => event.applied_at.map_or_else(
            || "applied".to_owned(),
            |at| format!("applied {}", ago(at, now)),
        ),
        InboundStatus::Failed => "waiting for a person".to_owned(),
        InboundStatus::Discarded => "discarded".to_owned(),
    }
}

fn event_json(event: &InboundEvent, flow_name: Option<&str>) -> Value {
    json!({
        "id": event.id,
        "flow_id": event.flow_id,
        "flow_name": flow_name,
        "event_id": event.event_id,
        "kind": event.kind,
        "subject": event.subject,
        "source": event.source,
        "status": status_word(event.status),
        "attempts": event.attempts,
        "max_attempts": event.max_attempts,
        "next_attempt_at": time_json(event.next_attempt_at),
        "last_error": event.last_error,
        "failure_class": event.failure_class.map(|class| class.as_str()),
        "result": event.result,
        "received_at": time_json(event.received_at),
        "updated_at": time_json(event.updated_at),
        "applied_at": event.applied_at.map(time_json),
    })
}

async fn list<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ListArgs,
) -> Result<Exit, Failure> {
    let flow_id = match &args.flow {
        Some(wanted) => Some(find_flow(store, wanted).await?.id),
        None => None,
    };
    let events = store
        .store
        .inbound_events(&InboundFilter {
            flow_id,
            status: args.status.map(InboundStatus::from),
            limit: args.limit,
        })
        .await
        .map_err(|e| store.failed(e))?;
    let names = flow_names(store).await?;
    let name_of = |event: &InboundEvent| names.get(&event.flow_id).cloned();
    if args.json {
        let rows: Vec<Value> = events
            .iter()
            .map(|event| event_json(event, name_of(event).as_deref()))
            .collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if events.is_empty() {
        say!("No inbound events match.");
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                event.id.to_string(),
                name_of(event).unwrap_or_else(|| event.flow_id.clone()),
                event.kind.clone(),
                event.subject.clone().unwrap_or_default(),
                status_word(event.status),
                attempts_text(event.attempts, event.max_attempts),
                state_text(event, now),
                match (event.failure_class, &event.last_error) {
                    (Some(class), Some(error)) => cut(&format!("{class}: {error}"), 70),
                    (None, Some(error)) => cut(error, 70),
                    (Some(class), None) => class.to_string(),
                    (None, None) => String::new(),
                },
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "EVENT",
                "FLOW",
                "KIND",
                "SUBJECT",
                "STATUS",
                "TRIES",
                "STATE",
                "LAST ERROR"
            ],
            &rows
        )
    );
    Ok(Exit::Success)
}

fn application_json(application: &ApplicationRecord) -> Value {
    json!({
        "started_at": time_json(application.started_at),
        "duration_ms": application.duration_ms,
        "outcome": application.outcome,
        "failure_class": application.failure_class.map(|class| class.as_str()),
        "detail": application.detail,
        "worker": application.worker,
    })
}

async fn show<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ShowArgs,
) -> Result<Exit, Failure> {
    let event = find(store, args.event).await?;
    let names = flow_names(store).await?;
    let name = names.get(&event.flow_id).map(String::as_str);
    let history = store
        .store
        .applications(event.id)
        .await
        .map_err(|e| store.failed(e))?;
    let body: Option<Value> = serde_json::from_str(&event.body).ok();
    if args.json {
        let mut object = event_json(&event, name);
        object["headers"] = Value::Object(event.headers.clone());
        object["body"] = body.unwrap_or_else(|| Value::String(event.body.clone()));
        object["history"] = Value::Array(history.iter().map(application_json).collect());
        say!("{object}");
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    say!("Inbound event {} ({})", event.id, event.event_id);
    let mut rows: Vec<(&str, String)> = vec![
        (
            "flow",
            match name {
                Some(name) => format!("{name:?} (id {})", event.flow_id),
                None => event.flow_id.clone(),
            },
        ),
        ("kind", event.kind.clone()),
    ];
    if let Some(subject) = &event.subject {
        rows.push(("subject", subject.clone()));
    }
    rows.push(("from", event.source.clone()));
    rows.push((
        "status",
        format!(
            "{} ({})",
            status_word(event.status),
            state_text(&event, now)
        ),
    ));
    rows.push((
        "tries",
        format!(
            "{} (a first application and {} retries at most)",
            attempts_text(event.attempts, event.max_attempts),
            event.max_attempts
        ),
    ));
    if event.status == InboundStatus::Pending {
        rows.push(("next attempt", time_text(event.next_attempt_at)));
    }
    if let Some(class) = event.failure_class {
        rows.push(("failure class", class.to_string()));
    }
    if let Some(error) = &event.last_error {
        rows.push(("last error", error.clone()));
    }
    if let Some(result) = &event.result {
        rows.push(("result", result.clone()));
    }
    if let Some(owner) = &event.lease_owner {
        rows.push((
            "leased by",
            match event.lease_until {
                Some(until) => format!("{owner} until {}", time_text(until)),
                None => owner.clone(),
            },
        ));
    }
    rows.push(("received", time_text(event.received_at)));
    rows.push(("updated", time_text(event.updated_at)));
    if let Some(at) = event.applied_at {
        rows.push(("applied", time_text(at)));
    }
    for (label, value) in rows {
        say!("  {:<15}{value}", format!("{label}:"));
    }
    if !history.is_empty() {
        say!("Applications:");
        for application in &history {
            say!(
                "  {}  {:<8} {:<14} {:>6} ms  {}",
                time_text(application.started_at),
                application.outcome,
                application
                    .failure_class
                    .map(|class| class.to_string())
                    .unwrap_or_default(),
                application.duration_ms,
                cut(application.detail.as_deref().unwrap_or_default(), 60)
            );
        }
    }
    say!("Body ({} bytes as received):", event.body.len());
    match body {
        Some(value) => say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| event.body.clone())
        ),
        None => say!("{}", event.body),
    }
    Ok(Exit::Success)
}

/// Exit 3 for an event whose status does not allow `action`.
fn wrong_status(event: &InboundEvent, action: &str) -> Failure {
    Failure::new(
        Exit::Config,
        anyhow::anyhow!(
            "inbound event {} is {}: only pending or failed events can be {action}",
            event.id,
            status_word(event.status)
        ),
    )
}

async fn retry<S: engine::store::Store>(store: &Store<'_, S>, id: i64) -> Result<Exit, Failure> {
    let event = find(store, id).await?;
    let done = store
        .store
        .retry_inbound(event.id, Timestamp::now())
        .await
        .map_err(|e| store.failed(e))?;
    if !done {
        let now = find(store, event.id).await?;
        return Err(wrong_status(&now, "retried"));
    }
    tracing::info!(connection_id = %event.flow_id, event = event.id, "inbound event re-queued");
    say!(
        "Inbound event {} ({} {}) is due now, its applications reset to 0 (it was {}); `odoo-bridge run` applies it on its next pass.",
        event.id,
        event.kind,
        event.event_id,
        status_word(event.status)
    );
    Ok(Exit::Success)
}

async fn discard<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: DiscardArgs,
) -> Result<Exit, Failure> {
    let event = find(store, args.event).await?;
    if !matches!(event.status, InboundStatus::Pending | InboundStatus::Failed) {
        return Err(wrong_status(&event, "discarded"));
    }
    let question = format!(
        "Discard inbound event {} ({} {}, {} after {} application{})? It will never be applied.",
        event.id,
        event.kind,
        event.event_id,
        status_word(event.status),
        event.attempts,
        if event.attempts == 1 { "" } else { "s" }
    );
    let action = format!("discard inbound event {}", event.id);
    if !confirm(&action, &question, args.yes)? {
        say!("Cancelled: the event was left as it was.");
        return Ok(Exit::Failure);
    }
    let done = store
        .store
        .discard_inbound(event.id, Timestamp::now())
        .await
        .map_err(|e| store.failed(e))?;
    if !done {
        let now = find(store, event.id).await?;
        return Err(wrong_status(&now, "discarded"));
    }
    tracing::info!(connection_id = %event.flow_id, event = event.id, "inbound event discarded");
    say!(
        "Discarded inbound event {}: it will never be applied.",
        event.id
    );
    Ok(Exit::Success)
}
