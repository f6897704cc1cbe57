//! One polling pass over a connection's orders: the change feed from the cursor (rewound by
//! the overlap), each page's orders turned into packets, written with the cursor in one
//! transaction.

use super::connection::{Event, EventSet, ORDER_FEED, WEBHOOK_TARGET};
use crate::change_feed::{ChangeFeed, Checkpoint, FeedError};
use crate::clock::Clock;
use crate::mirror::content_hash;
use crate::order_payload::{self, OrderEvent, PayloadError, Source};
use crate::runtime::{FlowError, PollReport};
use crate::store::{FeedCursor, LatestPacket, NewPacket, OutboxStore, StoreError, Subject};
use crate::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{OdooClient, Record, field};
use std::collections::HashMap;

/// What order packets are about.
pub const ORDER_MODEL: &str = "sale.order";

/// Everything a pass needs to know about its connection.
#[derive(Debug, Clone)]
pub struct PollTarget<'a> {
    pub flow_id: &'a str,
    pub odoo_db: &'a str,
    pub source: &'a Source,
    pub events: EventSet,
    /// How far the cursor is rewound on each pass.
    pub overlap: SignedDuration,
    /// Retries a new packet gets after its first send.
    pub max_attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),
    #[error(transparent)]
    Feed(FeedError),
    /// An order could not be turned into a payload. The cursor stays before its page, so
    /// nothing after it is skipped; the next pass tries again.
    #[error("order {order}: {source}")]
    Payload { order: i64, source: PayloadError },
    /// The payload could not be encoded as canonical JSON (a non-finite number).
    #[error("order {order}: cannot encode the payload: {detail}")]
    Encoding { order: i64, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FeedError> for PollError {
    fn from(error: FeedError) -> PollError {
        match error {
            FeedError::Odoo(error) => PollError::Odoo(error),
            other => PollError::Feed(other),
        }
    }
}

impl PollError {
    /// The failure class shown in logs and metrics.
    pub fn failure_class(&self) -> FailureClass {
        match self {
            PollError::Odoo(_) => FailureClass::OdooError,
            PollError::Feed(_) | PollError::Payload { .. } | PollError::Encoding { .. } => {
                FailureClass::SchemaError
            }
            PollError::Store(_) => FailureClass::StoreError,
        }
    }

    pub fn is_authentication(&self) -> bool {
        matches!(self, PollError::Odoo(error) if error.is_authentication())
    }
}

impl From<PollError> for FlowError {
    fn from(error: PollError) -> FlowError {
        FlowError {
            class: error.failure_class(),
            authentication: error.is_authentication(),
            message: error.to_string(),
        }
    }
}

impl From<OrderEvent> for Event {
    fn from(event: OrderEvent) -> Event {
        match event {
            OrderEvent::Confirmed => Event::OrderConfirmed,
            OrderEvent::Updated => Event::OrderUpdated,
            OrderEvent::Cancelled => Event::OrderCancelled,
        }
    }
}

/// The packet id, sent as `webhook-id`: fixed by (connection, order, version), so a resend
/// after a crash carries the id the receiver already saw.
pub fn packet_id(connection_id: &str, order_id: i64, version: u32) -> String {
    format!("{connection_id}_{order_id}_v{version}")
}

/// Which event an order's current state calls for, given its newest packet; `None`: nothing
/// to send.
fn next_event(
    state: &str,
    latest: Option<&LatestPacket>,
    hash: &str,
    events: EventSet,
) -> Option<(OrderEvent, u32)> {
    let cancelled = state == "cancel";
    let (event, version) = match latest {
        // An order cancelled before anything was sent for it is no news to the receiver.
        None if cancelled => return None,
        None => (OrderEvent::Confirmed, 1),
        Some(latest) if cancelled => {
            if latest.event == Event::OrderCancelled.as_str() {
                return None;
            }
            (OrderEvent::Cancelled, latest.version + 1)
        }
        Some(latest) if latest.payload_hash == hash => return None,
        Some(latest) => (OrderEvent::Updated, latest.version + 1),
    };
    events.contains(event.into()).then_some((event, version))
}

/// The orders a pass reads: confirmed ones, and cancelled ones so that a delivered order's
/// cancellation is seen (a cancelled order never delivered is skipped).
fn feed_spec() -> crate::change_feed::FeedSpec {
    let mut spec = order_payload::order_feed_spec();
    spec.domain = field("state").is_in(["sale", "done", "cancel"]);
    spec
}

/// Orders gathered from the feed's pages before their related records are read: the
/// batched reads (lines, partners, products, attribute values, countries, states) cost the
/// same six calls for a few orders as for this many, so short pages (the rest of a second,
/// the last page) are filled up first.
pub const ORDERS_PER_BATCH: usize = 500;

/// Follows the orders from `cursor` (rewound by the overlap) to the end, writing each batch's
/// new packets together with the cursor, which moves on in `cursor` as batches are written.
pub async fn poll<S: OutboxStore>(
    client: &OdooClient,
    store: &S,
    target: &PollTarget<'_>,
    cursor: &mut Option<Checkpoint>,
    clock: &Clock,
) -> Result<PollReport, PollError> {
    let from = cursor.map(|checkpoint| checkpoint.rewound(target.overlap));
    let mut feed = ChangeFeed::new(client, feed_spec(), from);
    let mut report = PollReport::default();
    let mut batch: Vec<Record> = Vec::new();
    let mut batch_end = None;
    loop {
        let page = feed.next_page().await?;
        let finished = page.is_none();
        if let Some(page) = page {
            report.pages += 1;
            report.found += page.records.len() as u64;
            batch.extend(page.records);
            batch_end = Some(page.checkpoint);
        }
        if let Some(checkpoint) = batch_end
            && (finished || batch.len() >= ORDERS_PER_BATCH)
        {
            write_batch(
                client,
                store,
                target,
                std::mem::take(&mut batch),
                checkpoint,
                clock,
                &mut report,
            )
            .await?;
            *cursor = Some(checkpoint);
            batch_end = None;
        }
        if finished {
            return Ok(report);
        }
    }
}

/// Reads the related records of `orders` in one set of batched calls, turns each order into
/// its packet (if it needs one), and writes the packets with the cursor at `checkpoint`.
async fn write_batch<S: OutboxStore>(
    client: &OdooClient,
    store: &S,
    target: &PollTarget<'_>,
    orders: Vec<Record>,
    checkpoint: Checkpoint,
    clock: &Clock,
    report: &mut PollReport,
) -> Result<(), PollError> {
    // An order changed while the feed ran comes again on a later page: its newest reading
    // alone makes the packet (two readings of one order would make two first versions).
    let orders = newest_of_each(orders);
    let fetched = order_payload::fetch(client, target.odoo_db, &orders)
        .await
        .map_err(|error| match error {
            PayloadError::Odoo(error) => PollError::Odoo(error),
            other => PollError::Payload {
                order: 0,
                source: other,
            },
        })?;
    let ids: Vec<i64> = fetched
        .orders()
        .iter()
        .filter_map(|order| order.id().ok())
        .collect();
    let latest: HashMap<i64, LatestPacket> = store
        .latest_packets(target.flow_id, ORDER_MODEL, &ids)
        .await?
        .into_iter()
        .map(|packet| (packet.subject_id, packet))
        .collect();
    let now = clock.now();
    let mut packets = Vec::new();
    for order in fetched.orders() {
        match packet_for(&fetched, order, target, &latest, now)? {
            Some(packet) => packets.push(packet),
            None => report.unchanged += 1,
        }
    }
    let counts = store
        .enqueue(
            target.flow_id,
            &packets,
            Some(FeedCursor {
                feed: ORDER_FEED,
                checkpoint,
            }),
        )
        .await?;
    report.enqueued += counts.inserted;
    tracing::debug!(
        connection_id = %target.flow_id, orders = orders.len(), enqueued = counts.inserted,
        already_stored = counts.already_stored, "order batch written"
    );
    Ok(())
}

/// `orders` with only the last reading of each order id, in the order of those readings.
fn newest_of_each(orders: Vec<Record>) -> Vec<Record> {
    let last: HashMap<i64, usize> = orders
        .iter()
        .enumerate()
        .filter_map(|(index, order)| Some((order.id().ok()?, index)))
        .collect();
    orders
        .into_iter()
        .enumerate()
        .filter(|(index, order)| order.id().map_or(true, |id| last.get(&id) == Some(index)))
        .map(|(_, order)| order)
        .collect()
}

fn packet_for(
    fetched: &order_payload::FetchedPage,
    order: &Record,
    target: &PollTarget<'_>,
    latest: &HashMap<i64, LatestPacket>,
    now: Timestamp,
) -> Result<Option<NewPacket>, PollError> {
    let order_id = order.id().map_err(|error| PollError::Payload {
        order: 0,
        source: PayloadError::BadAnswer {
            model: "sale.order",
            source: error,
        },
    })?;
    let failed = |source| PollError::Payload {
        order: order_id,
        source,
    };
    let mut payload = order_payload::build(fetched, order, OrderEvent::Confirmed, target.source)
        .map_err(failed)?;
    // The hash leaves the event out: the same order content hashes alike whatever packet
    // carried it, so only a real change makes an update.
    let encoding = |error: serde_json::Error| PollError::Encoding {
        order: order_id,
        detail: error.to_string(),
    };
    let mut content = serde_json::to_value(&payload).map_err(encoding)?;
    if let Some(object) = content.as_object_mut() {
        object.remove("event");
    }
    let hash = content_hash(&content);
    let state = order.str("state").ok().flatten().unwrap_or_default();
    let Some((event, version)) = next_event(state, latest.get(&order_id), &hash, target.events)
    else {
        return Ok(None);
    };
    payload.event = event;
    let body = serde_json_canonicalizer::to_string(&payload).map_err(encoding)?;
    Ok(Some(NewPacket {
        id: packet_id(target.flow_id, order_id, version),
        subject: Subject::new(ORDER_MODEL, order_id),
        reference: Some(payload.external_id.clone()),
        target: WEBHOOK_TARGET.to_owned(),
        event: Event::from(event).as_str().to_owned(),
        version,
        payload: body,
        payload_hash: hash,
        max_attempts: target.max_attempts,
        created_at: now,
    }))
}
