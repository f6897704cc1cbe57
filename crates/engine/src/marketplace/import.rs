//! One import pass: Cartona's orders over a window, each valid one made exactly one Odoo
//! `sale.order` and acknowledged through the outbox.
//!
//! 1. **Window.** From the start of the last successful pass minus the overlap (the first
//!    pass: a day back) to now. Pages are followed until an **empty** one, whatever their
//!    size: Cartona may honour a smaller page than `per_page`.
//! 2. **Validation.** An order with any invalid line is refused whole, with the public
//!    module's issue codes; the variants of a page are checked in one Odoo call. A refused
//!    order is recorded (code and details), never half-created, never acknowledged; a later
//!    pass that sees it again tries again.
//! 3. **Exactly once.** The order is claimed in the store (flow, hashed id) before anything
//!    is created. The claim's holder searches Odoo by the reference field first — a create
//!    whose bookkeeping was lost (a crash, a cut answer) is found there and recorded, not
//!    repeated — and only then finds or creates the retailer and creates the order with its
//!    lines. The Odoo id is recorded; the first record stands.
//! 4. **Acknowledgement.** `{"status": "synced", "hashed_id": H}` goes into the outbox, unique
//!    per order, so it is sent once and retried like any packet. An order found already
//!    imported (a re-pull) has its acknowledgement written again, which changes nothing
//!    once it is stored.
//! 5. **Status.** The order's status is put in the inbox and applied like a status webhook
//!    ([`super::apply`]); an order seen again with another status than the last one seen
//!    gets that one in the inbox too, once per (order, status).
//! 6. **Cursor.** Saved only when every page was read: a pass cut short is repeated whole,
//!    and the claims make the repetition harmless.

use super::cartona::order::{self, Issue, IssueCode, ValidOrder};
use super::cartona::{CartonaClient, CartonaError};
use super::inbound::{self, Origin, StatusUpdate};
use super::log;
use super::settings::{MARKETPLACE_TARGET, ORDERS_FEED};
use super::status::MarketplaceStatus;
use crate::change_feed::Checkpoint;
use crate::clock::Clock;
use crate::mirror::content_hash;
use crate::runtime::{FlowError, PollReport};
use crate::store::{
    FeedCursor, ImportClaim, LogDirection, LogOutcome, NewPacket, Received, Store, StoreError,
    Subject,
};
use crate::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{Context, OdooClient, SearchReadOptions, field};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The model acknowledgements are about: the Odoo order.
pub const ORDER_MODEL: &str = "sale.order";
/// The outbox event of an acknowledgement.
pub const SYNCED_EVENT: &str = "status.synced";

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub flow_id: String,
    /// This process's name on claims: unique among the processes sharing the store.
    pub owner: String,
    pub reference_field: String,
    /// How far each window reaches back before the last pass's start: an order updated while
    /// that pass ran, or stamped by a clock behind ours, is seen again.
    pub overlap: SignedDuration,
    /// How far the first pass reaches back.
    pub first_window: SignedDuration,
    /// How long a claim protects an order being created: far beyond any Odoo call, so that
    /// a live importer never loses an order to another one mid-create.
    pub claim_for: SignedDuration,
    /// Retries an acknowledgement gets after its first send.
    pub max_attempts: u32,
    /// A safety stop for a server that ignores `page` and never answers an empty page.
    pub max_pages: u32,
}

impl ImportOptions {
    pub fn new(flow_id: &str, owner: &str, reference_field: &str) -> ImportOptions {
        ImportOptions {
            flow_id: flow_id.to_owned(),
            owner: owner.to_owned(),
            reference_field: reference_field.to_owned(),
            overlap: SignedDuration::from_secs(120),
            first_window: SignedDuration::from_hours(24),
            claim_for: SignedDuration::from_mins(10),
            max_attempts: 5,
            max_pages: 10_000,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub pages: u64,
    /// Orders the pages held (the overlap re-reads some every pass).
    pub found: u64,
    /// Odoo orders created.
    pub created: u64,
    /// Orders found in Odoo by their reference (a create whose bookkeeping was lost).
    pub recovered: u64,
    /// Orders already imported.
    pub already_imported: u64,
    pub refused: u64,
    /// Orders another importer holds right now.
    pub held_elsewhere: u64,
    /// Acknowledgements newly written to the outbox.
    pub acks_enqueued: u64,
    /// Statuses newly put in the inbox (at import, or changed since).
    pub statuses_enqueued: u64,
}

impl From<ImportReport> for PollReport {
    fn from(report: ImportReport) -> PollReport {
        PollReport {
            pages: report.pages,
            found: report.found,
            enqueued: report.acks_enqueued,
            unchanged: report.already_imported + report.refused + report.held_elsewhere,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("Cartona: {0}")]
    Cartona(CartonaError),
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Cartona answered page {page} with the orders of page {previous}: it ignores `page`")]
    PageRepeated { page: u32, previous: u32 },
    #[error("Cartona still had orders after {0} pages; the pass stopped there")]
    TooManyPages(u32),
}

impl From<ImportError> for FlowError {
    fn from(error: ImportError) -> FlowError {
        let (class, authentication) = match &error {
            ImportError::Cartona(error) => (error.class, error.status == Some(401)),
            ImportError::Odoo(error) => (FailureClass::OdooError, error.is_authentication()),
            ImportError::Store(_) => (FailureClass::StoreError, false),
            ImportError::PageRepeated { .. } | ImportError::TooManyPages(_) => {
                (FailureClass::SchemaError, false)
            }
        };
        FlowError {
            class,
            message: error.to_string(),
            authentication,
        }
    }
}

/// Runs one pass. See the [module documentation](self).
pub async fn import_orders<S: Store>(
    cartona: &CartonaClient,
    odoo: &OdooClient,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
) -> Result<ImportReport, ImportError> {
    let started = clock.now();
    let from = store
        .cursors(Some(&options.flow_id))
        .await?
        .into_iter()
        .find(|cursor| cursor.feed == ORDERS_FEED)
        .map_or(started - options.first_window, |cursor| {
            cursor.checkpoint.second - options.overlap
        });
    let mut report = ImportReport::default();
    let mut previous: Option<(u32, Vec<Value>)> = None;
    let mut page = 1;
    loop {
        if page > options.max_pages {
            return Err(ImportError::TooManyPages(options.max_pages));
        }
        let pulled = cartona
            .pull_orders(page, from, started)
            .await
            .map_err(ImportError::Cartona)?;
        if pulled.orders.is_empty() {
            break;
        }
        let ids: Vec<Value> = pulled
            .orders
            .iter()
            .map(|order| order.get("hashed_id").cloned().unwrap_or(Value::Null))
            .collect();
        if let Some((previous_page, previous_ids)) = &previous
            && *previous_ids == ids
        {
            return Err(ImportError::PageRepeated {
                page,
                previous: *previous_page,
            });
        }
        report.pages += 1;
        report.found += pulled.orders.len() as u64;
        import_page(&pulled.orders, odoo, store, options, clock, &mut report).await?;
        previous = Some((page, ids));
        page += 1;
    }
    let second = Timestamp::from_second(started.as_second()).unwrap_or(started);
    store
        .enqueue(
            &options.flow_id,
            &[],
            Some(FeedCursor {
                feed: ORDERS_FEED,
                checkpoint: Checkpoint {
                    second,
                    last_id: Checkpoint::SECOND_DONE,
                },
            }),
        )
        .await?;
    Ok(report)
}

async fn import_page<S: Store>(
    orders: &[Value],
    odoo: &OdooClient,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let mut valid = Vec::with_capacity(orders.len());
    for raw in orders {
        match order::validate(raw) {
            Ok(order) => valid.push(order),
            Err(issues) => refuse(store, options, raw, &issues, clock, report).await?,
        }
    }
    let known = existing_variants(odoo, &valid).await?;
    for order in valid {
        let missing: Vec<String> = order
            .lines
            .iter()
            .enumerate()
            .filter(|(_, line)| !known.contains(&line.product_id))
            .map(|(index, line)| format!("line {}: product {}", index + 1, line.product_id))
            .collect();
        if !missing.is_empty() {
            let issue = Issue::new(
                IssueCode::VariantNotFound,
                format!("no such active product.product: {}", missing.join(", ")),
            );
            let raw = json!({"hashed_id": order.hashed_id, "status": order.status});
            refuse(store, options, &raw, &[issue], clock, report).await?;
            continue;
        }
        import_one(&order, odoo, store, options, clock, report).await?;
    }
    Ok(())
}

/// The ids among the page's variants that are active `product.product`s: one call a page.
async fn existing_variants(
    odoo: &OdooClient,
    orders: &[ValidOrder],
) -> Result<HashSet<i64>, odoo_rpc::Error> {
    let wanted: HashSet<i64> = orders
        .iter()
        .flat_map(|order| order.lines.iter().map(|line| line.product_id))
        .collect();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let found = odoo
        .search(
            "product.product",
            &SearchReadOptions::new(field("id").is_in(wanted.iter().copied())),
        )
        .await?;
    Ok(found.into_iter().collect())
}

async fn refuse<S: Store>(
    store: &S,
    options: &ImportOptions,
    raw: &Value,
    issues: &[Issue],
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    report.refused += 1;
    let code = issues
        .first()
        .map_or(IssueCode::MissingOrderFields, |issue| issue.code);
    let detail = issues
        .iter()
        .map(|issue| format!("{}: {}", issue.code, issue.detail))
        .collect::<Vec<_>>()
        .join("; ");
    let Some(hashed_id) = order::hashed_id(raw) else {
        tracing::warn!(connection_id = %options.flow_id, code = %code, detail = %detail,
            "marketplace order refused (it has no hashed_id, so nothing is recorded)");
        return Ok(());
    };
    tracing::warn!(connection_id = %options.flow_id, hashed_id, code = %code, detail = %detail,
        "marketplace order refused");
    let status = raw.get("status").and_then(Value::as_str);
    let now = clock.now();
    store
        .record_refusal(
            &options.flow_id,
            hashed_id,
            code.as_str(),
            &detail,
            status,
            now,
        )
        .await?;
    let mut row = log::entry(
        &options.flow_id,
        log::import_key(hashed_id),
        LogDirection::Inbound,
        hashed_id,
        "import",
        LogOutcome::Failed,
        now,
    );
    row.marketplace_status = status.map(str::to_owned);
    row.error_code = Some(code.as_str().to_owned());
    row.error_text = Some(detail);
    store.record_log(&row).await?;
    Ok(())
}

async fn import_one<S: Store>(
    order: &ValidOrder,
    odoo: &OdooClient,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let now = clock.now();
    let timer = std::time::Instant::now();
    let claim = store
        .claim_import(
            &options.flow_id,
            &order.hashed_id,
            &options.owner,
            now,
            now + options.claim_for,
        )
        .await?;
    match claim {
        ImportClaim::HeldElsewhere(_) => {
            report.held_elsewhere += 1;
            return Ok(());
        }
        ImportClaim::Imported(stored) => {
            report.already_imported += 1;
            // Orders imported before their terms were kept get them from a re-pull.
            record_terms(store, options, order, clock).await?;
            if let Some(odoo_id) = stored.odoo_order_id {
                acknowledge(store, options, &order.hashed_id, odoo_id, clock, report).await?;
            }
            if order.status.as_deref() != stored.marketplace_status.as_deref() {
                enqueue_status(store, options, order, Origin::Pull, clock, report).await?;
            }
            return Ok(());
        }
        ImportClaim::Granted(_) => {}
    }
    let odoo_id = match find_by_reference(odoo, options, &order.hashed_id).await {
        Ok(Some(found)) => {
            tracing::info!(connection_id = %options.flow_id, hashed_id = %order.hashed_id,
                odoo_order_id = found, "marketplace order found in Odoo by its reference");
            report.recovered += 1;
            found
        }
        Ok(None) => match create_order(odoo, options, order).await {
            Ok(created) => {
                report.created += 1;
                created
            }
            Err(Failure::Refused(issue)) => {
                return refuse(store, options, &as_raw(order), &[issue], clock, report).await;
            }
            Err(Failure::Odoo { error, maybe_done }) => {
                // A create that may have happened keeps its claim until it runs out: whoever
                // takes the order next searches by reference first and finds it.
                if !maybe_done {
                    store
                        .release_import(&options.flow_id, &order.hashed_id, &options.owner)
                        .await?;
                }
                return Err(error.into());
            }
        },
        Err(error) => {
            store
                .release_import(&options.flow_id, &order.hashed_id, &options.owner)
                .await?;
            return Err(error.into());
        }
    };
    let recorded = store
        .record_import(
            &options.flow_id,
            &order.hashed_id,
            odoo_id,
            order.status.as_deref(),
            clock.now(),
        )
        .await?;
    record_terms(store, options, order, clock).await?;
    // The first record stands (a racing importer may have recorded the same order).
    let odoo_id = recorded
        .and_then(|stored| stored.odoo_order_id)
        .unwrap_or(odoo_id);
    tracing::info!(connection_id = %options.flow_id, hashed_id = %order.hashed_id,
        odoo_order_id = odoo_id, "marketplace order imported");
    let mut row = log::entry(
        &options.flow_id,
        log::import_key(&order.hashed_id),
        LogDirection::Inbound,
        &order.hashed_id,
        "import",
        LogOutcome::Success,
        clock.now(),
    );
    row.odoo_order_id = Some(odoo_id);
    row.marketplace_status = order.status.clone();
    row.response_time_ms = Some(log::millis(timer.elapsed()));
    store.record_log(&row).await?;
    acknowledge(store, options, &order.hashed_id, odoo_id, clock, report).await?;
    enqueue_status(store, options, order, Origin::Import, clock, report).await
}

/// Puts the order's status in the inbox, to be applied like a status webhook: at import,
/// and when a pull finds it changed (for marketplaces that send no webhooks).
async fn enqueue_status<S: Store>(
    store: &S,
    options: &ImportOptions,
    order: &ValidOrder,
    origin: Origin,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let Some(status) = order.status.as_deref().and_then(MarketplaceStatus::parse) else {
        tracing::debug!(connection_id = %options.flow_id, hashed_id = %order.hashed_id,
            status = ?order.status, "the pulled order has no status to apply");
        return Ok(());
    };
    let update = StatusUpdate {
        hashed_id: order.hashed_id.clone(),
        status,
    };
    if let Received::Stored(_) =
        inbound::enqueue(store, &options.flow_id, &update, origin, clock.now()).await?
    {
        report.statuses_enqueued += 1;
    }
    Ok(())
}

/// Who delivers the order and how it is paid: what decides the statuses pushed back.
async fn record_terms<S: Store>(
    store: &S,
    options: &ImportOptions,
    order: &ValidOrder,
    clock: &Clock,
) -> Result<(), ImportError> {
    store
        .record_order_terms(
            &options.flow_id,
            &order.hashed_id,
            Some(order.delivered_by.as_str()),
            order.payment_method.map(|method| method.as_str()),
            clock.now(),
        )
        .await?;
    Ok(())
}

fn as_raw(order: &ValidOrder) -> Value {
    json!({"hashed_id": order.hashed_id, "status": order.status})
}

/// The lowest-id `sale.order` carrying `hashed_id` in the reference field.
async fn find_by_reference(
    odoo: &OdooClient,
    options: &ImportOptions,
    hashed_id: &str,
) -> Result<Option<i64>, odoo_rpc::Error> {
    let found = odoo
        .search(
            ORDER_MODEL,
            &SearchReadOptions::new(field(options.reference_field.as_str()).eq(hashed_id))
                .order("id")
                .limit(1),
        )
        .await?;
    Ok(found.first().copied())
}

enum Failure {
    /// Odoo refused the order or its retailer for good (a validation error): the order is
    /// refused, with the step's issue code.
    Refused(Issue),
    /// Odoo failed; `maybe_done` when the order may have been created all the same.
    Odoo {
        error: odoo_rpc::Error,
        maybe_done: bool,
    },
}

/// Refusals that say something about the order (Odoo's validation), as opposed to Odoo
/// being unreachable, overloaded or refusing our credentials.
fn refuses_the_order(error: &odoo_rpc::Error) -> bool {
    !error.is_retryable() && !error.is_authentication() && error.is_safe_to_resend()
}

async fn create_order(
    odoo: &OdooClient,
    options: &ImportOptions,
    order: &ValidOrder,
) -> Result<i64, Failure> {
    let partner = match retailer_partner(odoo, order).await {
        Ok(partner) => partner,
        Err(error) if refuses_the_order(&error) => {
            return Err(Failure::Refused(Issue::new(
                IssueCode::CustomerError,
                format!("retailer {:?}: {}", order.retailer.code, error),
            )));
        }
        Err(error) => {
            return Err(Failure::Odoo {
                error,
                maybe_done: false,
            });
        }
    };
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|line| {
            json!([0, 0, {
                "product_id": line.product_id,
                "product_uom_qty": line.amount,
                "price_unit": line.selling_price,
            }])
        })
        .collect();
    let mut vals = Map::new();
    vals.insert("partner_id".into(), json!(partner));
    vals.insert(options.reference_field.clone(), json!(order.hashed_id));
    if let Some(receipt) = &order.receipt_id {
        vals.insert("origin".into(), json!(format!("Cartona {receipt}")));
    }
    vals.insert("order_line".into(), Value::Array(lines));
    match odoo.create(ORDER_MODEL, vec![vals], None).await {
        Ok(ids) => ids.first().copied().ok_or_else(|| Failure::Odoo {
            error: no_id(),
            maybe_done: true,
        }),
        Err(error) if refuses_the_order(&error) => Err(Failure::Refused(Issue::new(
            IssueCode::InvalidOrderDetails,
            format!("Odoo refused the order: {error}"),
        ))),
        Err(error) => {
            let maybe_done = !error.is_safe_to_resend();
            Err(Failure::Odoo { error, maybe_done })
        }
    }
}

/// The retailer's partner: the lowest id with `ref` = its code (archived ones included, so
/// an archived retailer is not created twice), else a new one.
async fn retailer_partner(odoo: &OdooClient, order: &ValidOrder) -> Result<i64, odoo_rpc::Error> {
    let retailer = &order.retailer;
    let found = odoo
        .search(
            "res.partner",
            &SearchReadOptions::new(field("ref").eq(retailer.code.as_str()))
                .order("id")
                .limit(1)
                .context(Context::new().active_test(false)),
        )
        .await?;
    if let Some(id) = found.first() {
        return Ok(*id);
    }
    let mut vals = Map::new();
    vals.insert("name".into(), json!(retailer.name));
    vals.insert("ref".into(), json!(retailer.code));
    for (key, value) in [
        ("phone", &retailer.phone),
        ("email", &retailer.email),
        ("street", &retailer.address),
    ] {
        if let Some(value) = value {
            vals.insert(key.into(), json!(value));
        }
    }
    let ids = odoo.create("res.partner", vec![vals], None).await?;
    ids.first().copied().ok_or_else(no_id)
}

/// The acknowledgement's packet: one per order, whatever writes it.
pub fn ack_packet(
    flow_id: &str,
    hashed_id: &str,
    odoo_order_id: i64,
    max_attempts: u32,
    now: Timestamp,
) -> NewPacket {
    let body = json!({"status": "synced", "hashed_id": hashed_id});
    NewPacket {
        id: format!("{flow_id}_{odoo_order_id}_synced"),
        subject: Subject::new(ORDER_MODEL, odoo_order_id),
        reference: Some(hashed_id.to_owned()),
        target: MARKETPLACE_TARGET.to_owned(),
        event: SYNCED_EVENT.to_owned(),
        version: 1,
        payload: body.to_string(),
        payload_hash: content_hash(&body),
        max_attempts,
        created_at: now,
    }
}

async fn acknowledge<S: Store>(
    store: &S,
    options: &ImportOptions,
    hashed_id: &str,
    odoo_order_id: i64,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let packet = ack_packet(
        &options.flow_id,
        hashed_id,
        odoo_order_id,
        options.max_attempts,
        clock.now(),
    );
    let counts = store.enqueue(&options.flow_id, &[packet], None).await?;
    report.acks_enqueued += counts.inserted;
    Ok(())
}

fn no_id() -> odoo_rpc::Error {
    odoo_rpc::Error::MalformedResponse {
        message: "create answered no id".to_owned(),
        excerpt: String::new(),
    }
}
