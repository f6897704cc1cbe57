//! `odoo-bridge retries …`: the outbox of order delivery, which is also its retry queue.
//! Packets wait there (PENDING) until delivered, FAILED packets stay until a person retries
//! or discards them.

use super::connections::Store;
use super::delivery_store::{
    DeliveryTask, StoreLocation, ago, confirm, cut, table, time_json, time_text, until,
    with_delivery_store,
};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand, ValueEnum};
use engine::delivery_store::{DeliveryStore, Packet, PacketFilter, PacketStatus};
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
    with_delivery_store(Task(command)).await
}

struct Task(RetriesCommand);

impl DeliveryTask for Task {
    type Output = Exit;

    async fn run<S: DeliveryStore>(
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

/// The packet, or exit 3 naming the id.
async fn find<S: DeliveryStore>(store: &Store<'_, S>, id: &str) -> Result<Packet, Failure> {
    store
        .store
        .packet(id.trim())
        .await
        .map_err(|e| store.failed(e))?
        .ok_or_else(|| {
            Failure::new(
                Exit::Config,
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

fn packet_json(packet: &Packet, connection_name: Option<&str>) -> Value {
    json!({
        "id": packet.id,
        "connection_id": packet.connection_id,
        "connection_name": connection_name,
        "odoo_order_id": packet.odoo_order_id,
        "external_id": packet.external_id,
        "event": packet.event.as_str(),
        "version": packet.version,
        "status": status_word(packet.status),
        "attempts": packet.attempts,
        "max_attempts": packet.max_attempts,
        "next_attempt_at": time_json(packet.next_attempt_at),
        "last_error": packet.last_error,
        "failure_class": packet.failure_class,
        "content_hash": packet.content_hash,
        "created_at": time_json(packet.created_at),
        "updated_at": time_json(packet.updated_at),
        "delivered_at": packet.delivered_at.map(time_json),
    })
}

async fn list<S: DeliveryStore>(store: &Store<'_, S>, args: ListArgs) -> Result<Exit, Failure> {
    let connection_id = match &args.connection {
        Some(wanted) => Some(store.find(wanted).await?.id),
        None => None,
    };
    let packets = store
        .store
        .packets(&PacketFilter {
            connection_id,
            status: args.status.map(PacketStatus::from),
            limit: args.limit,
        })
        .await
        .map_err(|e| store.failed(e))?;
    let names: HashMap<String, String> = store.names().await?;
    let name_of = |packet: &Packet| names.get(&packet.connection_id).cloned();
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
                name_of(p).unwrap_or_else(|| p.connection_id.clone()),
                p.odoo_order_id.to_string(),
                format!("{} v{}", p.event.as_str(), p.version),
                status_word(p.status),
                format!("{}/{}", p.attempts, p.max_attempts),
                state_text(p, now),
                match (&p.failure_class, &p.last_error) {
                    (Some(class), Some(error)) => cut(&format!("{class}: {error}"), 70),
                    (None, Some(error)) => cut(error, 70),
                    (Some(class), None) => class.clone(),
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
                "ATTEMPTS",
                "STATE",
                "LAST ERROR"
            ],
            &rows
        )
    );
    Ok(Exit::Success)
}

async fn show<S: DeliveryStore>(store: &Store<'_, S>, args: ShowArgs) -> Result<Exit, Failure> {
    let packet = find(store, &args.packet_id).await?;
    let names = store.names().await?;
    let name = names.get(&packet.connection_id).map(String::as_str);
    let payload: Option<Value> = serde_json::from_str(&packet.body).ok();
    if args.json {
        let mut object = packet_json(&packet, name);
        object["payload"] = payload.unwrap_or_else(|| Value::String(packet.body.clone()));
        say!("{object}");
        return Ok(Exit::Success);
    }
    let now = Timestamp::now();
    say!("Packet {}", packet.id);
    let mut rows: Vec<(&str, String)> = vec![
        (
            "connection",
            match name {
                Some(name) => format!("{name:?} (id {})", packet.connection_id),
                None => packet.connection_id.clone(),
            },
        ),
        (
            "order",
            format!("{} ({})", packet.odoo_order_id, packet.external_id),
        ),
        (
            "event",
            format!("{} (version {})", packet.event.as_str(), packet.version),
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
            "attempts",
            format!("{} of {}", packet.attempts, packet.max_attempts),
        ),
    ];
    if packet.status == PacketStatus::Pending {
        rows.push(("next attempt", time_text(packet.next_attempt_at)));
    }
    if let Some(class) = &packet.failure_class {
        rows.push(("failure class", class.clone()));
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
    rows.push(("content hash", packet.content_hash.clone()));
    rows.push(("created", time_text(packet.created_at)));
    rows.push(("updated", time_text(packet.updated_at)));
    if let Some(at) = packet.delivered_at {
        rows.push(("delivered", time_text(at)));
    }
    for (label, value) in rows {
        say!("  {:<15}{value}", format!("{label}:"));
    }
    say!("Payload ({} bytes as sent):", packet.body.len());
    match payload {
        Some(value) => say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| packet.body.clone())
        ),
        None => say!("{}", packet.body),
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

async fn retry<S: DeliveryStore>(store: &Store<'_, S>, args: PacketArgs) -> Result<Exit, Failure> {
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
    tracing::info!(connection_id = %packet.connection_id, packet_id = %packet.id, "packet re-queued");
    say!(
        "Packet {} ({} v{} of order {}) is due now, its attempts reset to 0 (it was {}); `odoo-bridge run` sends it on its next pass.",
        packet.id,
        packet.event.as_str(),
        packet.version,
        packet.odoo_order_id,
        status_word(packet.status)
    );
    Ok(Exit::Success)
}

async fn discard<S: DeliveryStore>(
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
        packet.event.as_str(),
        packet.version,
        packet.odoo_order_id,
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
        .discard(&packet.id)
        .await
        .map_err(|e| store.failed(e))?;
    if !done {
        let now = find(store, &packet.id).await?;
        return Err(wrong_status(&now, "discarded"));
    }
    tracing::info!(connection_id = %packet.connection_id, packet_id = %packet.id, "packet discarded");
    say!("Discarded packet {}: it will never be sent.", packet.id);
    Ok(Exit::Success)
}
