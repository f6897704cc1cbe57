//! One polling pass over a connection's orders.

use crate::change_feed::{ChangeFeed, FeedError};
use crate::delivery_store::{Connection, DeliveryStore, Event, LatestPacket, NewPacket};
use crate::mirror::content_hash;
use crate::mirror_store::StoreError;
use crate::order_payload::{self, OrderEvent, PayloadError, Source};
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{OdooClient, Record, field};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    /// How far the cursor is rewound on each pass: a transaction that commits late carries
    /// an earlier `write_date` than rows already read.
    pub overlap: SignedDuration,
    /// Attempts a new packet gets before it is FAILED (the seed's `max_attempts`).
    pub max_attempts: u32,
}

impl Default for PollOptions {
    fn default() -> PollOptions {
        PollOptions {
            overlap: SignedDuration::from_secs(120),
            max_attempts: 5,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub pages: u64,
    /// Orders the feed returned (the overlap re-reads some every pass).
    pub orders_found: u64,
    /// New packets written to the outbox.
    pub enqueued: u64,
    /// Orders whose payload did not change since their last packet.
    pub unchanged: u64,
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
    pub fn failure_class(&self) -> &'static str {
        match self {
            PollError::Odoo(_) => "odoo_error",
            PollError::Feed(_) | PollError::Payload { .. } | PollError::Encoding { .. } => {
                "schema_error"
            }
            PollError::Store(_) => "store_error",
        }
    }

    pub fn is_authentication(&self) -> bool {
        matches!(self, PollError::Odoo(error) if error.is_authentication())
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
    connection: &Connection,
) -> Option<(OrderEvent, u32)> {
    let cancelled = state == "cancel";
    let (event, version) = match latest {
        // An order cancelled before anything was sent for it is no news to the receiver.
        None if cancelled => return None,
        None => (OrderEvent::Confirmed, 1),
        Some(latest) if cancelled => {
            if latest.event == Event::OrderCancelled {
                return None;
            }
            (OrderEvent::Cancelled, latest.version + 1)
        }
        Some(latest) if latest.content_hash == hash => return None,
        Some(latest) => (OrderEvent::Updated, latest.version + 1),
    };
    connection
        .events
        .contains(event.into())
        .then_some((event, version))
}

/// The orders a pass reads: confirmed ones, and cancelled ones so that a delivered order's
/// cancellation is seen (a cancelled order never delivered is skipped).
fn feed_spec() -> crate::change_feed::FeedSpec {
    let mut spec = order_payload::order_feed_spec();
    spec.domain = field("state").is_in(["sale", "done", "cancel"]);
    spec
}

/// Follows `connection`'s orders from its cursor (rewound by the overlap) to the end, writing
/// each page's new packets together with the cursor.
pub async fn poll<S: DeliveryStore>(
    client: &OdooClient,
    store: &S,
    connection: &Connection,
    options: &PollOptions,
) -> Result<PollReport, PollError> {
    let source = Source::odoo(
        connection.id.clone(),
        connection.store_id.clone(),
        connection.client_id.clone(),
    );
    let from = connection
        .cursor
        .map(|checkpoint| checkpoint.rewound(options.overlap));
    let mut feed = ChangeFeed::new(client, feed_spec(), from);
    let mut report = PollReport::default();
    while let Some(page) = feed.next_page().await? {
        report.pages += 1;
        report.orders_found += page.records.len() as u64;
        let fetched = order_payload::fetch(client, &connection.odoo_db, &page.records)
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
            .latest_packets(&connection.id, &ids)
            .await?
            .into_iter()
            .map(|packet| (packet.odoo_order_id, packet))
            .collect();
        let now = Timestamp::now();
        let mut packets = Vec::new();
        for order in fetched.orders() {
            match packet_for(&fetched, order, &source, connection, &latest, options, now)? {
                Some(packet) => packets.push(packet),
                None => report.unchanged += 1,
            }
        }
        let counts = store
            .enqueue_page(&connection.id, &packets, page.checkpoint, None)
            .await?;
        report.enqueued += counts.inserted;
        tracing::debug!(
            connection_id = %connection.id, orders = page.records.len(), enqueued = counts.inserted,
            already_stored = counts.already_stored, "order page written"
        );
    }
    store.mark_synced(&connection.id, Timestamp::now()).await?;
    Ok(report)
}

fn packet_for(
    fetched: &order_payload::FetchedPage,
    order: &Record,
    source: &Source,
    connection: &Connection,
    latest: &HashMap<i64, LatestPacket>,
    options: &PollOptions,
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
    let mut payload =
        order_payload::build(fetched, order, OrderEvent::Confirmed, source).map_err(failed)?;
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
    let Some((event, version)) = next_event(state, latest.get(&order_id), &hash, connection) else {
        return Ok(None);
    };
    payload.event = event;
    let body = serde_json_canonicalizer::to_string(&payload).map_err(encoding)?;
    Ok(Some(NewPacket {
        id: packet_id(&connection.id, order_id, version),
        connection_id: connection.id.clone(),
        odoo_order_id: order_id,
        external_id: payload.external_id.clone(),
        event: event.into(),
        version,
        body,
        content_hash: hash,
        max_attempts: options.max_attempts,
        created_at: now,
    }))
}
