//! Odoo → marketplace statuses: one pass after each import pass.
//!
//! 1. **Feeds.** Two change feeds (the mirror's complete keyset on `write_date, id`): the
//!    `sale.order`s carrying a value in the reference field, and the `stock.picking`s of such
//!    orders (a validated delivery or a return does not always rewrite its order). Each
//!    feed's cursor is one of the flow's cursors, written in the transaction that writes the
//!    page's packets: a crash repeats at most a page, never skips one.
//! 2. **Orders.** A page's orders that this marketplace imported (`marketplace_orders`) are
//!    read again as they are now (state, lock, pickings, the OTP field) and turned into a
//!    status by the [mapping](super::mapping).
//! 3. **Rules** ([`decide`]): a status equal to the marketplace's own last one is an echo (it
//!    came from the marketplace) and is not pushed; an order delivered by Cartona pushes only
//!    cancellations; a status that may not follow the newest status known from either side
//!    (`MarketplaceStatus::may_follow`) is a regression and is not pushed.
//! 4. **Packets.** One packet per (flow, order, status), its version fixed by the status, so
//!    a re-poll writes nothing new and the outbox sends each status once, in life-cycle
//!    order, after the import's acknowledgement (version 1). `odoo_status` is recorded
//!    before the packet is written, and a status equal to it is written again (a no-op once
//!    stored), so a crash between the two loses nothing.
//!
//! `cancelled_by_supplier` carries `cancellation_reason: supplier_asked_me_to_cancel`;
//! `delivered` on an installment or wallet_top_up order carries `retailer_otp`, read from a
//! configurable `sale.order` field. Without it the packet is still written, with
//! `retailer_otp: null`, and refused before sending as a validation error (FAILED at once,
//! visible in the outbox, never retried blindly); once the field is filled, the next pass
//! writes a new version carrying it.

use super::cartona::order::{DeliveredBy, PaymentMethod};
use super::catalog::CatalogSettings;
use super::mapping::{OrderFacts, StatusMap};
use super::settings::MARKETPLACE_TARGET;
use super::status::MarketplaceStatus;
use crate::change_feed::{ChangeFeed, Checkpoint, FeedError, FeedSpec};
use crate::clock::Clock;
use crate::mirror::content_hash;
use crate::runtime::{FlowError, PollReport};
use crate::store::{
    FeedCursor, Flow, LatestPacket, NewPacket, OutboundOrder, Packet, PacketStatus, Store,
    StoreError, Subject,
};
use crate::webhook::{DeliveryError, FailureClass, Jitter, RetrySchedule};
use jiff::SignedDuration;
use odoo_rpc::{OdooClient, Record, SearchReadOptions, field};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The key of the outbound settings in a marketplace flow's settings.
pub const OUTBOUND_KEY: &str = "outbound";
/// The `sale.order` field holding the retailer's OTP unless configured otherwise.
pub const DEFAULT_OTP_FIELD: &str = "x_retailer_otp";
/// The feeds' names among the flow's cursors.
pub const ORDER_STATUS_FEED: &str = "marketplace.status.sale.order";
pub const PICKING_STATUS_FEED: &str = "marketplace.status.stock.picking";
/// What status packets are about.
pub const ORDER_MODEL: &str = "sale.order";
/// `cancellation_reason` of a supplier's cancellation (Cartona's module sends this one).
pub const SUPPLIER_CANCELLATION_REASON: &str = "supplier_asked_me_to_cancel";
/// The seed's retry pattern (`retry_pattern {1: 60, 2: 180, 3: 600}`): three retries.
pub const RETRY_PATTERN: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(180),
    Duration::from_secs(600),
];
/// Versions of one status's packets are this far apart: a re-send (an OTP filled in after a
/// refusal, an operator's push) takes the status's next slot.
const VERSION_SLOTS: u32 = 16;

/// The retry schedule of every packet of a marketplace flow: the seed's pattern, exactly.
pub fn retry_schedule() -> RetrySchedule {
    RetrySchedule {
        base_delay: RETRY_PATTERN[0],
        max_delay: RETRY_PATTERN[RETRY_PATTERN.len() - 1],
        max_attempts: RETRY_PATTERN.len() as u32,
        jitter: Jitter::None,
        steps: &RETRY_PATTERN,
    }
}

/// What the outbound direction is configured with (`settings.outbound` of the flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// The `sale.order` field holding the retailer's OTP (`delivered` on installment or
    /// wallet_top_up orders).
    pub otp_field: String,
    /// (order state, delivery state) → status: the seed's table with the flow's overrides.
    pub status_map: StatusMap,
    /// The catalog push (off unless enabled).
    pub catalog: CatalogSettings,
}

impl Default for OutboundSettings {
    fn default() -> OutboundSettings {
        OutboundSettings {
            otp_field: DEFAULT_OTP_FIELD.to_owned(),
            status_map: StatusMap::default(),
            catalog: CatalogSettings::default(),
        }
    }
}

/// A plausible Odoo field name: what a domain or a read may safely carry.
pub fn check_field_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if first_ok
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not an Odoo field name (lowercase letters, digits and _, at most 63)"
        ))
    }
}

impl OutboundSettings {
    /// Reads `settings.outbound` of a marketplace flow; absent: the defaults.
    pub fn of(flow: &Flow) -> Result<OutboundSettings, StoreError> {
        let invalid = |what: String| {
            StoreError::invalid_data(format!("marketplace flow {:?}: {what}", flow.id))
        };
        let Some(value) = flow.settings.get(OUTBOUND_KEY) else {
            return Ok(OutboundSettings::default());
        };
        let Some(object) = value.as_object() else {
            return Err(invalid(format!(
                "setting {OUTBOUND_KEY:?} is not an object"
            )));
        };
        OutboundSettings::from_map(object).map_err(invalid)
    }

    pub fn from_map(object: &Map<String, Value>) -> Result<OutboundSettings, String> {
        let otp_field = match object.get("otp_field") {
            None | Some(Value::Null) => DEFAULT_OTP_FIELD.to_owned(),
            Some(Value::String(text)) => check_field_name(text)?,
            Some(other) => return Err(format!("otp_field: {other} is not a field name")),
        };
        let status_map = match object.get("status_map") {
            None | Some(Value::Null) => StatusMap::default(),
            Some(Value::Object(overrides)) => StatusMap::with_overrides(overrides)?,
            Some(other) => return Err(format!("status_map: {other} is not an object")),
        };
        let catalog = CatalogSettings::from_value(object.get("catalog"))?;
        Ok(OutboundSettings {
            otp_field,
            status_map,
            catalog,
        })
    }

    pub fn to_value(&self) -> Value {
        json!({
            "otp_field": self.otp_field,
            "status_map": Value::Object(self.status_map.overrides().clone()),
            "catalog": self.catalog.to_value(),
        })
    }
}

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct OutboundOptions {
    pub flow_id: String,
    pub reference_field: String,
    pub settings: OutboundSettings,
    /// How far each feed's cursor is rewound (late commits carry earlier write dates).
    pub overlap: SignedDuration,
    pub page_size: usize,
}

impl OutboundOptions {
    pub fn new(flow_id: &str, reference_field: &str, settings: OutboundSettings) -> Self {
        OutboundOptions {
            flow_id: flow_id.to_owned(),
            reference_field: reference_field.to_owned(),
            settings,
            overlap: SignedDuration::from_secs(120),
            page_size: 200,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundReport {
    pub pages: u64,
    /// Imported orders looked at (an order changed on both feeds counts twice).
    pub orders: u64,
    /// Status packets newly written.
    pub enqueued: u64,
    pub echoes: u64,
    pub regressions: u64,
    /// Statuses of orders delivered by Cartona, which push only cancellations.
    pub held: u64,
    /// Orders whose states the table maps to nothing.
    pub unmapped: u64,
}

impl OutboundReport {
    pub fn add_to(&self, report: &mut PollReport) {
        report.pages += self.pages;
        report.found += self.orders;
        report.enqueued += self.enqueued;
        report.unchanged += self.orders.saturating_sub(self.enqueued);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),
    #[error(transparent)]
    Feed(FeedError),
    #[error("{model} {id}: {detail}")]
    BadRecord {
        model: &'static str,
        id: i64,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FeedError> for OutboundError {
    fn from(error: FeedError) -> OutboundError {
        match error {
            FeedError::Odoo(error) => OutboundError::Odoo(error),
            other => OutboundError::Feed(other),
        }
    }
}

impl From<OutboundError> for FlowError {
    fn from(error: OutboundError) -> FlowError {
        let (class, authentication) = match &error {
            OutboundError::Odoo(error) => (FailureClass::OdooError, error.is_authentication()),
            OutboundError::Feed(_) | OutboundError::BadRecord { .. } => {
                (FailureClass::SchemaError, false)
            }
            OutboundError::Store(_) => (FailureClass::StoreError, false),
        };
        FlowError {
            class,
            message: error.to_string(),
            authentication,
        }
    }
}

/// What to do with the status Odoo's states call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Push(MarketplaceStatus),
    /// The marketplace's own last status: it came from there.
    Echo(MarketplaceStatus),
    /// An order delivered by Cartona, and not a cancellation.
    Held(MarketplaceStatus),
    /// It may not follow `newest`, the newest status known from either side.
    Regression {
        status: MarketplaceStatus,
        newest: MarketplaceStatus,
    },
    /// The table maps Odoo's states to nothing.
    Unmapped,
}

impl Decision {
    /// The status to record as `odoo_status`: every derived status but a regression (which
    /// would overwrite a newer one).
    pub fn derived(self) -> Option<MarketplaceStatus> {
        match self {
            Decision::Push(status) | Decision::Echo(status) | Decision::Held(status) => {
                Some(status)
            }
            Decision::Regression { .. } | Decision::Unmapped => None,
        }
    }
}

fn known(text: Option<&str>) -> Option<MarketplaceStatus> {
    text.and_then(MarketplaceStatus::parse)
}

/// The newer of two known statuses: the later step of the life cycle (the marketplace's on
/// a tie).
pub fn newest(
    marketplace: Option<MarketplaceStatus>,
    odoo: Option<MarketplaceStatus>,
) -> Option<MarketplaceStatus> {
    match (marketplace, odoo) {
        (Some(m), Some(o)) => Some(if o.rank() > m.rank() { o } else { m }),
        (m, o) => m.or(o),
    }
}

/// The rules of the module documentation, for one order.
pub fn decide(derived: Option<MarketplaceStatus>, order: &OutboundOrder) -> Decision {
    let Some(status) = derived else {
        return Decision::Unmapped;
    };
    let marketplace = known(order.marketplace_status.as_deref());
    let odoo = known(order.odoo_status.as_deref());
    if marketplace == Some(status) {
        return Decision::Echo(status);
    }
    if DeliveredBy::parse(order.delivered_by.as_deref()) == DeliveredBy::Cartona
        && !status.is_cancellation()
    {
        return Decision::Held(status);
    }
    // Already decided and recorded: written again (a no-op once the packet is stored), so a
    // crash between the record and the packet loses nothing; unless Cartona moved past it
    // since.
    if odoo == Some(status) {
        return match marketplace {
            Some(newest) if !status.may_follow(newest) => Decision::Regression { status, newest },
            _ => Decision::Push(status),
        };
    }
    match newest(marketplace, odoo) {
        Some(newest) if !status.may_follow(newest) => Decision::Regression { status, newest },
        _ => Decision::Push(status),
    }
}

/// The version of a status's first packet: after the acknowledgement (1), in life-cycle
/// order.
pub fn status_version(status: MarketplaceStatus) -> u32 {
    let index = MarketplaceStatus::ALL
        .iter()
        .position(|candidate| *candidate == status)
        .unwrap_or(0);
    2 + index as u32
}

/// The status's first slot above `after`: how a re-send gets a version of its own.
fn next_slot(status: MarketplaceStatus, after: u32) -> u32 {
    let base = status_version(status);
    if after < base {
        return base;
    }
    base + ((after - base) / VERSION_SLOTS + 1) * VERSION_SLOTS
}

/// The event of a status packet.
pub fn status_event(status: MarketplaceStatus) -> String {
    format!("status.{}", status.as_str())
}

/// The body POSTed for `status`; `otp` is `Some(None)` when the order needs the retailer's
/// OTP and Odoo has none (the packet is then refused before sending).
pub fn status_body(hashed_id: &str, status: MarketplaceStatus, otp: Option<Option<&str>>) -> Value {
    let mut body = json!({"status": status.as_str(), "hashed_id": hashed_id});
    if status == MarketplaceStatus::CancelledBySupplier {
        body["cancellation_reason"] = json!(SUPPLIER_CANCELLATION_REASON);
    }
    if status == MarketplaceStatus::Delivered
        && let Some(otp) = otp
    {
        body["retailer_otp"] = otp.map_or(Value::Null, |otp| json!(otp));
    }
    body
}

/// A status packet at `version` (its id names the status, and the version past the first).
pub fn status_packet(
    flow_id: &str,
    order: &OutboundOrder,
    status: MarketplaceStatus,
    body: &Value,
    version: u32,
    now: jiff::Timestamp,
) -> NewPacket {
    let base = format!("{flow_id}_{}_{}", order.odoo_order_id, status.as_str());
    NewPacket {
        id: if version == status_version(status) {
            base
        } else {
            format!("{base}_v{version}")
        },
        subject: Subject::new(ORDER_MODEL, order.odoo_order_id),
        reference: Some(order.hashed_id.clone()),
        target: MARKETPLACE_TARGET.to_owned(),
        event: status_event(status),
        version,
        payload: body.to_string(),
        payload_hash: content_hash(body),
        max_attempts: RETRY_PATTERN.len() as u32,
        created_at: now,
    }
}

/// The version a pushed status gets: its first slot, unless the subject's newest packet is
/// this status refused (FAILED) with another body — an OTP filled in since — which takes
/// the next slot.
fn version_for(status: MarketplaceStatus, hash: &str, latest: Option<&LatestPacket>) -> u32 {
    match latest {
        Some(latest)
            if latest.event == status_event(status)
                && latest.status == PacketStatus::Failed
                && latest.payload_hash != hash =>
        {
            next_slot(status, latest.version)
        }
        _ => status_version(status),
    }
}

/// Refuses, before sending, a status packet that Cartona would refuse: `delivered` without
/// the retailer's OTP on an order that needs one. Permanent: a person fills the field in
/// Odoo and the next pass writes a new version.
pub fn check_before_sending(packet: &Packet) -> Result<(), DeliveryError> {
    if packet.event != status_event(MarketplaceStatus::Delivered) {
        return Ok(());
    }
    let body: Value = serde_json::from_str(&packet.payload).map_err(|error| {
        DeliveryError::before_sending(
            FailureClass::SchemaError,
            true,
            format!("the status body is not JSON: {error}"),
        )
    })?;
    if body.get("retailer_otp") == Some(&Value::Null) {
        return Err(DeliveryError::before_sending(
            FailureClass::SchemaError,
            true,
            "validation error: `delivered` on an installment or wallet_top_up order needs the \
             retailer's OTP, and the order's OTP field is empty in Odoo; fill it in and the \
             next pass sends a new packet",
        ));
    }
    Ok(())
}

/// One order's facts and OTP as read from Odoo.
#[derive(Debug, Clone, Default)]
struct OdooOrder {
    facts: OrderFacts,
    otp: Option<String>,
}

/// Reads the orders' states, lock, OTP and pickings: two calls for any number of orders.
async fn read_orders(
    odoo: &OdooClient,
    ids: &[i64],
    otp_field: &str,
) -> Result<HashMap<i64, OdooOrder>, OutboundError> {
    // `locked` exists from 17 on, the OTP field only where someone created it.
    let (fields, _) = odoo
        .existing_fields(ORDER_MODEL, &["state", "locked", otp_field])
        .await?;
    let records = odoo.read(ORDER_MODEL, ids, &fields, None).await?;
    let bad = |id: i64, detail: String| OutboundError::BadRecord {
        model: ORDER_MODEL,
        id,
        detail,
    };
    let mut orders = HashMap::with_capacity(records.len());
    for record in &records {
        let id = record.id().map_err(|error| bad(0, error.to_string()))?;
        let state = record
            .str("state")
            .map_err(|error| bad(id, error.to_string()))?
            .unwrap_or_default()
            .to_owned();
        let locked = fields.iter().any(|f| f == "locked")
            && record.bool("locked").ok().flatten().unwrap_or(false);
        let otp = otp_text(record, otp_field);
        orders.insert(
            id,
            OdooOrder {
                facts: OrderFacts {
                    state,
                    locked,
                    ..OrderFacts::default()
                },
                otp,
            },
        );
    }
    let pickings = odoo
        .search_read(
            "stock.picking",
            &SearchReadOptions::new(field("sale_id").is_in(ids.iter().copied()))
                .fields(["sale_id", "state", "picking_type_code"])
                .order("id"),
        )
        .await?;
    for picking in &pickings {
        let id = picking.id().unwrap_or_default();
        let bad_picking = |detail: String| OutboundError::BadRecord {
            model: "stock.picking",
            id,
            detail,
        };
        let Some(order) = picking
            .many2one("sale_id")
            .map_err(|error| bad_picking(error.to_string()))?
        else {
            continue;
        };
        let state = picking
            .str("state")
            .map_err(|error| bad_picking(error.to_string()))?
            .unwrap_or_default()
            .to_owned();
        let Some(entry) = orders.get_mut(&order.id) else {
            continue;
        };
        match picking.str("picking_type_code").ok().flatten() {
            Some("outgoing") => entry.facts.outgoing.push(state),
            Some("incoming") => entry.facts.incoming.push(state),
            _ => {}
        }
    }
    Ok(orders)
}

/// The OTP as text: a char field, or a number someone stored in an integer field.
fn otp_text(record: &Record, otp_field: &str) -> Option<String> {
    match record.raw(otp_field)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The packet an order's current states call for, with the decision; `None` packet when
/// nothing is pushed.
fn plan(
    flow_id: &str,
    order: &OutboundOrder,
    odoo_order: &OdooOrder,
    settings: &OutboundSettings,
    latest: Option<&LatestPacket>,
    now: jiff::Timestamp,
) -> (Decision, Option<NewPacket>) {
    let derived = odoo_order.facts.status(&settings.status_map);
    let decision = decide(derived, order);
    let Decision::Push(status) = decision else {
        return (decision, None);
    };
    let needs_otp = order
        .payment_method
        .as_deref()
        .and_then(PaymentMethod::parse)
        .is_some_and(PaymentMethod::needs_otp);
    let otp = needs_otp.then_some(odoo_order.otp.as_deref());
    let body = status_body(&order.hashed_id, status, otp);
    let version = version_for(status, &content_hash(&body), latest);
    let packet = status_packet(flow_id, order, status, &body, version, now);
    (decision, Some(packet))
}

/// Decides and writes the statuses of the Odoo orders `order_ids` (those this marketplace
/// imported), with `cursor` moved in the same transaction as the packets.
async fn push_orders<S: Store>(
    odoo: &OdooClient,
    store: &S,
    options: &OutboundOptions,
    order_ids: &[i64],
    cursor: Option<FeedCursor<'_>>,
    clock: &Clock,
    report: &mut OutboundReport,
) -> Result<(), OutboundError> {
    let known = store.outbound_orders(&options.flow_id, order_ids).await?;
    let mut packets = Vec::new();
    if !known.is_empty() {
        let ids: Vec<i64> = known
            .iter()
            .map(|order| order.odoo_order_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let odoo_orders = read_orders(odoo, &ids, &options.settings.otp_field).await?;
        let latest: HashMap<i64, LatestPacket> = store
            .latest_packets(&options.flow_id, ORDER_MODEL, &ids)
            .await?
            .into_iter()
            .map(|packet| (packet.subject_id, packet))
            .collect();
        let now = clock.now();
        for order in &known {
            // Deleted in Odoo: nothing to say about it.
            let Some(odoo_order) = odoo_orders.get(&order.odoo_order_id) else {
                continue;
            };
            report.orders += 1;
            let (decision, packet) = plan(
                &options.flow_id,
                order,
                odoo_order,
                &options.settings,
                latest.get(&order.odoo_order_id),
                now,
            );
            match decision {
                Decision::Push(_) => {}
                Decision::Echo(_) => report.echoes += 1,
                Decision::Held(_) => report.held += 1,
                Decision::Regression { status, newest } => {
                    report.regressions += 1;
                    tracing::info!(connection_id = %options.flow_id, hashed_id = %order.hashed_id,
                        status = %status, newest = %newest,
                        "marketplace status not pushed: it may not follow the newest known one");
                }
                Decision::Unmapped => report.unmapped += 1,
            }
            if let Some(status) = decision.derived()
                && order.odoo_status.as_deref() != Some(status.as_str())
            {
                store
                    .record_odoo_status(&options.flow_id, &order.hashed_id, status.as_str(), now)
                    .await?;
            }
            packets.extend(packet);
        }
    }
    if packets.is_empty() && cursor.is_none() {
        return Ok(());
    }
    let counts = store.enqueue(&options.flow_id, &packets, cursor).await?;
    report.enqueued += counts.inserted;
    Ok(())
}

fn order_feed(options: &OutboundOptions) -> FeedSpec {
    let mut spec = FeedSpec::new(ORDER_MODEL);
    spec.fields = vec!["id".to_owned()];
    spec.domain = field(options.reference_field.as_str()).is_set();
    spec.page_size = options.page_size;
    spec
}

fn picking_feed(options: &OutboundOptions) -> FeedSpec {
    let mut spec = FeedSpec::new("stock.picking");
    spec.fields = vec!["sale_id".to_owned()];
    spec.domain = field("sale_id").is_set()
        & field(format!("sale_id.{}", options.reference_field).as_str()).is_set();
    spec.page_size = options.page_size;
    spec
}

/// The Odoo order a feed's record is about.
fn order_of(feed: &str, record: &Record) -> Option<i64> {
    if feed == ORDER_STATUS_FEED {
        record.id().ok()
    } else {
        record.many2one("sale_id").ok().flatten().map(|m2o| m2o.id)
    }
}

/// Runs one pass. See the [module documentation](self).
pub async fn push_statuses<S: Store>(
    odoo: &OdooClient,
    store: &S,
    options: &OutboundOptions,
    clock: &Clock,
) -> Result<OutboundReport, OutboundError> {
    let cursors: HashMap<String, Checkpoint> = store
        .cursors(Some(&options.flow_id))
        .await?
        .into_iter()
        .map(|cursor| (cursor.feed, cursor.checkpoint))
        .collect();
    let mut report = OutboundReport::default();
    for (feed_name, spec) in [
        (ORDER_STATUS_FEED, order_feed(options)),
        (PICKING_STATUS_FEED, picking_feed(options)),
    ] {
        let from = cursors
            .get(feed_name)
            .map(|checkpoint| checkpoint.rewound(options.overlap));
        let mut feed = ChangeFeed::new(odoo, spec, from);
        while let Some(page) = feed.next_page().await? {
            report.pages += 1;
            let ids: Vec<i64> = page
                .records
                .iter()
                .filter_map(|record| order_of(feed_name, record))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let cursor = FeedCursor {
                feed: feed_name,
                checkpoint: page.checkpoint,
            };
            push_orders(odoo, store, options, &ids, Some(cursor), clock, &mut report).await?;
        }
    }
    Ok(report)
}

/// What [`enqueue_status_push`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct EnqueuedPush {
    pub packet_id: String,
    pub status: MarketplaceStatus,
    pub version: u32,
    /// False when the very same packet was already stored.
    pub inserted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("marketplace order {0:?} is not an imported order of this marketplace")]
    UnknownOrder(String),
    #[error("Odoo has no sale.order {0} any more")]
    MissingInOdoo(i64),
    #[error("Odoo's states of order {hashed_id:?} map to no marketplace status")]
    Unmapped { hashed_id: String },
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pushes the status Odoo's states call for now, for one order, whatever the marketplace
/// last said (`marketplace resolve ID --apply odoo`): a person decided Odoo is right, so the
/// echo and regression rules do not apply, and the packet takes a version of its own (sent
/// even if the same status was sent before). Records `odoo_status`. Orders delivered by
/// Cartona still push only cancellations: anything else is refused by Cartona anyway.
pub async fn enqueue_status_push<S: Store>(
    odoo: &OdooClient,
    store: &S,
    flow_id: &str,
    hashed_id: &str,
    settings: &OutboundSettings,
    clock: &Clock,
) -> Result<EnqueuedPush, PushError> {
    let order = store
        .marketplace_order(flow_id, hashed_id)
        .await?
        .and_then(|order| order.odoo_order_id)
        .ok_or_else(|| PushError::UnknownOrder(hashed_id.to_owned()))?;
    let order = store
        .outbound_orders(flow_id, &[order])
        .await?
        .into_iter()
        .find(|candidate| candidate.hashed_id == hashed_id)
        .ok_or_else(|| PushError::UnknownOrder(hashed_id.to_owned()))?;
    let odoo_orders = read_orders(odoo, &[order.odoo_order_id], &settings.otp_field).await?;
    let odoo_order = odoo_orders
        .get(&order.odoo_order_id)
        .ok_or(PushError::MissingInOdoo(order.odoo_order_id))?;
    let status = odoo_order
        .facts
        .status(&settings.status_map)
        .ok_or_else(|| PushError::Unmapped {
            hashed_id: hashed_id.to_owned(),
        })?;
    let latest = store
        .latest_packets(flow_id, ORDER_MODEL, &[order.odoo_order_id])
        .await?
        .into_iter()
        .next();
    let needs_otp = order
        .payment_method
        .as_deref()
        .and_then(PaymentMethod::parse)
        .is_some_and(PaymentMethod::needs_otp);
    let body = status_body(
        hashed_id,
        status,
        needs_otp.then_some(odoo_order.otp.as_deref()),
    );
    let version = latest.map_or(status_version(status), |latest| {
        next_slot(status, latest.version)
    });
    let now = clock.now();
    store
        .record_odoo_status(flow_id, hashed_id, status.as_str(), now)
        .await?;
    let packet = status_packet(flow_id, &order, status, &body, version, now);
    let packet_id = packet.id.clone();
    let counts = store.enqueue(flow_id, &[packet], None).await?;
    Ok(EnqueuedPush {
        packet_id,
        status,
        version,
        inserted: counts.inserted > 0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use MarketplaceStatus::*;

    fn order(marketplace: Option<&str>, odoo: Option<&str>, by: &str) -> OutboundOrder {
        OutboundOrder {
            hashed_id: "H".into(),
            odoo_order_id: 7,
            delivered_by: Some(by.into()),
            payment_method: None,
            marketplace_status: marketplace.map(str::to_owned),
            odoo_status: odoo.map(str::to_owned),
        }
    }

    const SUPPLIER: &str = "delivered_by_supplier";
    const CARTONA: &str = "delivered_by_cartona";

    #[test]
    fn echoes_regressions_and_cartona_deliveries_are_not_pushed() {
        let pending = order(Some("pending"), None, SUPPLIER);
        assert_eq!(decide(Some(Pending), &pending), Decision::Echo(Pending));
        assert_eq!(decide(Some(Approved), &pending), Decision::Push(Approved));
        assert_eq!(decide(None, &pending), Decision::Unmapped);
        // Cartona applied `approved`; Odoo's confirmation is its echo.
        let approved = order(Some("approved"), Some("approved"), SUPPLIER);
        assert_eq!(decide(Some(Approved), &approved), Decision::Echo(Approved));
        // A newer or terminal status is never overwritten by an older one.
        let delivered = order(Some("approved"), Some("delivered"), SUPPLIER);
        assert_eq!(
            decide(Some(AssignedToSalesman), &delivered),
            Decision::Regression {
                status: AssignedToSalesman,
                newest: Delivered
            }
        );
        let cancelled = order(Some("cancelled_by_retailer"), None, SUPPLIER);
        assert_eq!(
            decide(Some(CancelledBySupplier), &cancelled),
            Decision::Regression {
                status: CancelledBySupplier,
                newest: CancelledByRetailer
            }
        );
        assert_eq!(
            decide(
                Some(Returned),
                &order(Some("approved"), Some("delivered"), SUPPLIER)
            ),
            Decision::Push(Returned)
        );
        // Delivered by Cartona: cancellations only.
        let by_cartona = order(Some("pending"), None, CARTONA);
        assert_eq!(
            decide(Some(Approved), &by_cartona),
            Decision::Held(Approved)
        );
        assert_eq!(
            decide(Some(CancelledBySupplier), &by_cartona),
            Decision::Push(CancelledBySupplier)
        );
        // Unknown delivered_by reads as the supplier's.
        let mut unknown = order(Some("pending"), None, SUPPLIER);
        unknown.delivered_by = None;
        assert_eq!(decide(Some(Approved), &unknown), Decision::Push(Approved));
        // A status already decided is written again (a no-op once stored): nothing is lost
        // when a crash came between recording it and writing its packet.
        let recorded = order(Some("pending"), Some("approved"), SUPPLIER);
        assert_eq!(decide(Some(Approved), &recorded), Decision::Push(Approved));
        // … unless Cartona has moved past it since.
        let overtaken = order(Some("delivered"), Some("approved"), SUPPLIER);
        assert_eq!(
            decide(Some(Approved), &overtaken),
            Decision::Regression {
                status: Approved,
                newest: Delivered
            }
        );
    }

    #[test]
    fn versions_follow_the_life_cycle_and_resends_take_a_slot_of_their_own() {
        let versions: Vec<u32> = MarketplaceStatus::ALL
            .iter()
            .map(|s| status_version(*s))
            .collect();
        assert_eq!(versions, (2..10).collect::<Vec<u32>>());
        assert_eq!(next_slot(Delivered, 1), 6);
        assert_eq!(next_slot(Delivered, 6), 22);
        assert_eq!(next_slot(Delivered, 9), 22);
        assert_eq!(next_slot(Delivered, 22), 38);
        assert_eq!(next_slot(Approved, 22), 36);
    }

    #[test]
    fn bodies_carry_the_reason_and_the_otp() {
        assert_eq!(
            status_body("H", CancelledBySupplier, None),
            json!({"status": "cancelled_by_supplier", "hashed_id": "H", "cancellation_reason": "supplier_asked_me_to_cancel"})
        );
        assert_eq!(
            status_body("H", Delivered, Some(Some("4321"))),
            json!({"status": "delivered", "hashed_id": "H", "retailer_otp": "4321"})
        );
        assert_eq!(
            status_body("H", Delivered, None),
            json!({"status": "delivered", "hashed_id": "H"})
        );
        assert_eq!(
            status_body("H", Approved, Some(None)),
            json!({"status": "approved", "hashed_id": "H"})
        );
    }

    #[test]
    fn settings_round_trip_and_bad_ones_are_refused() {
        let defaults = OutboundSettings::from_map(&Map::new()).unwrap();
        assert_eq!(defaults, OutboundSettings::default());
        let custom = OutboundSettings::from_map(
            json!({"otp_field": "x_otp", "status_map": {"sale/done": "delivered"},
                   "catalog": {"enabled": true, "warehouse_id": 1}})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(custom.otp_field, "x_otp");
        assert_eq!(custom.status_map.status("sale", "done"), Some(Delivered));
        let back = OutboundSettings::from_map(custom.to_value().as_object().unwrap()).unwrap();
        assert_eq!(back, custom);
        assert!(
            OutboundSettings::from_map(json!({"otp_field": "X-OTP"}).as_object().unwrap()).is_err()
        );
        assert!(
            OutboundSettings::from_map(json!({"status_map": []}).as_object().unwrap()).is_err()
        );
    }

    #[test]
    fn the_retry_schedule_is_the_seeds_pattern() {
        let schedule = retry_schedule();
        let waits: Vec<Duration> = (0..5).map(|a| schedule.nominal_delay(a)).collect();
        assert_eq!(waits, [60, 180, 600, 600, 600].map(Duration::from_secs));
        assert_eq!(schedule.max_attempts, 3);
    }
}
