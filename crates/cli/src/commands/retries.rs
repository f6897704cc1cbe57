//! `odoo-bridge retries …`: the outbox of order delivery, which is also its retry queue.
//! Packets wait there (PENDING) until delivered, FAILED packets stay until a person retries
//! or discards them.

use super::connections::Store;
use super::delivery_store::{
    Access, StoreLocation, StoreTask, ago, confirm, cut, table, time_json, time_text, until,
    with_store,
};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand, ValueEnum};
use engine::display::attempts_text;
use engine::store::{AttemptRecord, Packet, PacketFilter, PacketStatus};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Subcommand)]
pub enum RetriesCommand {
    /// List packets, newest first (all statuses unless --status is given).
    List(ListArgs),
    /// Show one packet: where it stands, and the payload it carries.
    Show(ShowArgs),
    /// Make a PENDING or FAILED packet due now, its attempts reset to 0.
    Retry(PacketArgs),
    /// Drop a PENDING or FAILED packet: it will never be sent.
    Discard(DiscardArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Failed,
    Delivered,
    Discarded,
}

impl From<StatusArg> for PacketStatus {
    fn from(status: StatusArg) -> PacketStatus {
        match status {
            StatusArg::Pending => PacketStatus::Pending,
            StatusArg::Failed => PacketStatus::Failed,
            StatusArg::Delivered => PacketStatus::Delivered,
            StatusArg::Discarded => PacketStatus::Discarded,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this connection's packets (its id or name).
    #[arg(long, value_name = "ID|NAME")]
    connection: Option<String>,
    /// Only packets with this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// At most this many packets (0: all).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The packet's id (its `webhook-id`).
    packet_id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PacketArgs {
    /// The packet's id (its `webhook-id`).
    packet_id: String,
}

#[derive(Debug, Args)]
pub struct DiscardArgs {
    /// The packet's id (its `webhook-id`).
    packet_id: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
}

pub async fn run(command: RetriesCommand) -> Result<Exit, Failure> {
    with_store(Access::Existing, Task(command)).await
}

struct Task(RetriesCommand);

impl StoreTask for Task {
    type Output = Exit;

    async fn run<S: engine::store::Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> Result<Exit, Failure> {
        let store = Store { store, location };
        match self.0 {
            RetriesCommand::List(args) => list(&store, args).await,
            RetriesCommand::Show(args) => show(&store, args).await,
            RetriesCommand::Retry(args) => retry(&store, args).await,
            RetriesCommand::Discard(args) => discard(&store, args).await,
        }
    }
}

fn status_word(status: PacketStatus) -> String {
    status.as_str().to_ascii_lowercase()
}

/// The packet, or exit 9 naming the id.
async fn find<S: engine::store::Store>(store: &Store<'_, S>, id: &str) -> Result<Packet, Failure> {
    store
        .store
        .packet(id.trim())
        .await
        .map_err(|e| store.failed(e))?
        .ok_or_else(|| {
            Failure::new(
                Exit::NotFound,
                anyhow::anyhow!(
                    "no packet has the id {:?} (see `odoo-bridge retries list`)",
                    id.trim()
                ),
            )
        })
}

/// Where a packet stands, in a few words.
fn state_text(packet: &Packet, now: Timestamp) -> String {
    match packet.status {
        PacketStatus::Pending if packet.lease_until.is_some_and(|until| until > now) => {
            "being sent".to_owned()
        }
        PacketStatus::Pending => format!("due {}", until(packet.next_attempt_at, now)),
        PacketStatus::Delivered => packet.delivered_at.map_or_else(
            || "delivered".to_owned(),
            |at| format!("delivered {}", ago(at, now)),
        ),
        PacketStatus::Failed => "waiting for a person".to_owned(),
        PacketStatus::Discarded => "discarded".to_owned(),
    }
}

/// A packet as JSON. The names release 0.1 printed stay (`connection_id` is the flow's id,
/// `odoo_order_id` its subject's id, `content_hash` its payload hash); the generic ones are
/// added beside them.
fn packet_json(packet: &Packet, connection_name: Option<&str>) -> Value {
    json!({
        "id": packet.id,
        "connection_id": packet.flow_id,
        "connection_name": connection_name,
        "flow_id": packet.flow_id,
        "subject_model": packet.subject.model,
        "odoo_order_id": packet.subject.id,
        "external_id": packet.reference,
        "target": packet.target,
        "event": packet.event,
        "version": packet.version,
        "status": status_word(packet.status),
        "attempts": packet.attempts,
        "max_attempts": packet.max_attempts,
        "next_attempt_at": time_json(packet.next_attempt_at),
        "last_error": packet.last_error,
        "failure_class": packet.failure_class.map(|class| class.as_str()),
        "content_hash": packet.payload_hash,
        "payload_hash": packet.payload_hash,
        "created_at": time_json(packet.created_at),
        "updated_at": time_json(packet.updated_at),
        "delivered_at": packet.delivered_at.map(time_json),
    })
}

async fn list<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ListArgs,
) -> Result<Exit, Failure> {
    let connection_id = match &args.connection {
        Some(wanted) => Some(store.find(wanted).await?.id),
        None => None,
    };
    let packets = store
        .store
        .packets(&PacketFilter {
            flow_id: connection_id,
            status: args.status.map(PacketStatus::from),
            limit: args.limit,
        })
        .await
        .map_err(|e| store.failed(e))?;
    let names: HashMap<String, String> = store.names().await?;
    let name_of = |packet: &Packet| names.get(&packet.flow_id).cloned();
    if args.json {
        let rows: Vec<Value> = packets
            .iter()
            .map(|p| packet_json(p, name_of(p).as_deref()))
            .collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if packets.is_empty() {
        say!("No packets match.");
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = packets
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                name_of(p).unwrap_or_else(|| p.flow_id.clone()),
                p.subject.id.to_string(),
                format!("{} v{}", p.event, p.version),
                status_word(p.status),
                attempts_text(p.attempts, p.max_attempts),
                state_text(p, now),
                match (p.failure_class, &p.last_error) {
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
                "PACKET",
                "CONNECTION",
                "ORDER",
                "EVENT",
                "STATUS",
                "SENDS",
                "STATE",
                "LAST ERROR"
            ],
            &rows
        )
    );
    Ok(Exit::Success)
}

fn attempt_json(attempt: &AttemptRecord) -> Value {
    json!({
        "started_at": time_json(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "failure_class": attempt.failure_class.map(|class| class.as_str()),
        "error": attempt.error,
        "worker": attempt.worker,
    })
}

async fn show<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ShowArgs,
) -> Result<Exit, Failure> {
    let packet = find(store, &args.packet_id).await?;
    let names = store.names().await?;
    let name = names.get(&packet.flow_id).map(String::as_str);
    let history = store
        .store
        .attempts(&packet.id)
        .await
        .map_err(|e| store.failed(e))?;
    let payload: Option<Value> = serde_json::from_str(&packet.payload).ok();
    if args.json {
        let mut object = packet_json(&packet, name);
        object["payload"] = payload.unwrap_or_else(|| Value::String(packet.payload.clone()));
        object["history"] = Value::Array(history.iter().map(attempt_json).collect());
        say!("{object}");
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    say!("Packet {}", packet.id);
    let mut rows: Vec<(&str, String)> = vec![
        (
            "connection",
            match name {
                Some(name) => format!("{name:?} (id {})", packet.flow_id),
                None => packet.flow_id.clone(),
            },
        ),
        (
            "order",
            match &packet.reference {
                Some(reference) => format!("{} ({reference})", packet.subject.id),
                None => packet.subject.id.to_string(),
            },
        ),
        (
            "event",
            format!("{} (version {})", packet.event, packet.version),
        ),
        (
            "status",
            format!(
                "{} ({})",
                status_word(packet.status),
                state_text(&packet, now)
            ),
        ),
        (
            "sends",
            format!(
                "{} (a first send and {} retries at most)",
                attempts_text(packet.attempts, packet.max_attempts),
                packet.max_attempts
            ),
        ),
    ];
    if packet.status == PacketStatus::Pending {
        rows.push(("next attempt", time_text(packet.next_attempt_at)));
    }
    if let Some(class) = packet.failure_class {
        rows.push(("failure class", class.to_string()));
    }
    if let Some(error) = &packet.last_error {
        rows.push(("last error", error.clone()));
    }
    if let Some(owner) = &packet.lease_owner {
        rows.push((
            "leased by",
            match packet.lease_until {
                Some(until) => format!("{owner} until {}", time_text(until)),
                None => owner.clone(),
            },
        ));
    }
    rows.push(("payload hash", packet.payload_hash.clone()));
    rows.push(("created", time_text(packet.created_at)));
    rows.push(("updated", time_text(packet.updated_at)));
    if let Some(at) = packet.delivered_at {
        rows.push(("delivered", time_text(at)));
    }
    for (label, value) in rows {
        say!("  {:<15}{value}", format!("{label}:"));
    }
    if !history.is_empty() {
        say!("Attempts:");
        for attempt in &history {
            let answer = match (attempt.status_code, attempt.failure_class) {
                (Some(code), _) => format!("HTTP {code}"),
                (None, Some(class)) => class.to_string(),
                (None, None) => String::new(),
            };
            say!(
                "  {}  {:<9} {:<10} {:>6} ms  {}",
                time_text(attempt.started_at),
                attempt.outcome,
                answer,
                attempt.duration_ms,
                cut(attempt.error.as_deref().unwrap_or_default(), 60)
            );
        }
    }
    say!("Payload ({} bytes as sent):", packet.payload.len());
    match payload {
        Some(value) => say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| packet.payload.clone())
        ),
        None => say!("{}", packet.payload),
    }
    Ok(Exit::Success)
}

/// Exit 3 for a packet whose status does not allow `action`.
fn wrong_status(packet: &Packet, action: &str) -> Failure {
    Failure::new(
        Exit::Config,
        anyhow::anyhow!(
            "packet {} is {}: only pending or failed packets can be {action}",
            packet.id,
            status_word(packet.status)
        ),
    )
}

async fn retry<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: PacketArgs,
) -> Result<Exit, Failure> {
    let packet = find(store, &args.packet_id).await?;
    let done = store
        .store
        .retry_now(&packet.id, Timestamp::now())
        .await
        .map_err(|e| store.failed(e))?;
    if !done {
        let now = find(store, &packet.id).await?;
        return Err(wrong_status(&now, "retried"));
    }
    tracing::info!(connection_id = %packet.flow_id, packet_id = %packet.id, "packet re-queued");
    say!(
        "Packet {} ({} v{} of order {}) is due now, its attempts reset to 0 (it was {}); `odoo-bridge run` sends it on its next pass.",
        packet.id,
        packet.event,
        packet.version,
        packet.subject.id,
        status_word(packet.status)
    );
    Ok(Exit::Success)
}

async fn discard<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: DiscardArgs,
) -> Result<Exit, Failure> {
    let packet = find(store, &args.packet_id).await?;
    if !matches!(packet.status, PacketStatus::Pending | PacketStatus::Failed) {
        return Err(wrong_status(&packet, "discarded"));
    }
    let question = format!(
        "Discard packet {} ({} v{} of order {}, {} after {} attempt{})? It will never be sent.",
        packet.id,
        packet.event,
        packet.version,
        packet.subject.id,
        status_word(packet.status),
        packet.attempts,
        if packet.attempts == 1 { "" } else { "s" }
    );
    let action = format!("discard packet {}", packet.id);
    if !confirm(&action, &question, args.yes)? {
        say!("Cancelled: the packet was left as it was.");
        return Ok(Exit::Failure);
    }
    let done = store
        .store
        .discard(&packet.id, Timestamp::now())
        .await
        .map_err(|e| store.failed(e))?;
    if !done {
        let now = find(store, &packet.id).await?;
        return Err(wrong_status(&now, "discarded"));
    }
    tracing::info!(connection_id = %packet.flow_id, packet_id = %packet.id, "packet discarded");
    say!("Discarded packet {}: it will never be sent.", packet.id);
    Ok(Exit::Success)
}
