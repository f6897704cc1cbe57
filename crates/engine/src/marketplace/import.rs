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
//! 3. **Exactly once.** Each order is claimed in the store (flow, hashed id) before anything
//!    is created. The holder then searches Odoo by the reference field — a create whose
//!    bookkeeping was lost (a crash, a cut answer) is found there and recorded, not
//!    repeated — and only then creates the order with its lines. Per page this costs one
//!    search of the references of all the orders claimed, one search of their retailers by
//!    `ref` (and one create of the missing ones), and one create per order not found: the
//!    claim still precedes the search, and the search the create, for every order. A page
//!    slow enough for its claims to be half gone renews each claim and searches that order
//!    again before its create. On a failure the claims of the orders not yet tried are given
//!    back. The Odoo id is recorded; the first record stands.
//! 4. **Acknowledgement.** `{"status": "synced", "hashed_id": H}` goes into the outbox, unique
//!    per order, so it is sent once and retried like any packet. An order found already
//!    imported (a re-pull) has its acknowledgement written again, which changes nothing
//!    once it is stored.
//! 5. **Status.** The order's status is put in the inbox and applied like a status webhook
//!    ([`super::apply`]); an order seen again with another status than the last one seen
//!    gets that one in the inbox too, once per (order, status).
//! 6. **Cursor.** Saved only when every page was read: a pass cut short is repeated whole,
//!    and the claims make the repetition harmless.

use super::cartona::order::{self, Issue, IssueCode, Retailer, ValidOrder};
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
use odoo_rpc::{Context, OdooClient, OdooErrorKind, SearchReadOptions, field};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};

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
    let mut importable = Vec::with_capacity(valid.len());
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
        importable.push(order);
    }
    let claimed_at = clock.now();
    let mut claimed = Vec::with_capacity(importable.len());
    for order in importable {
        if claim(&order, store, options, clock, report).await? {
            claimed.push(order);
        }
    }
    if claimed.is_empty() {
        return Ok(());
    }
    let mut pending = Claimed {
        orders: claimed.into(),
        store,
        options,
    };
    let outcome = settle_claims(&mut pending, claimed_at, odoo, clock, report).await;
    if outcome.is_err() {
        pending.release_all().await;
    }
    outcome
}

/// The orders of a page this importer holds and has not settled yet (imported, refused or
/// left with a claim that may hide a create).
struct Claimed<'a, S> {
    orders: VecDeque<ValidOrder>,
    store: &'a S,
    options: &'a ImportOptions,
}

impl<S: Store> Claimed<'_, S> {
    /// After a failure, gives back the claims on the orders nothing was tried for yet, so
    /// the next pass takes them at once instead of when the claims run out.
    async fn release_all(&mut self) {
        while let Some(order) = self.orders.pop_front() {
            let released = self
                .store
                .release_import(&self.options.flow_id, &order.hashed_id, &self.options.owner)
                .await;
            if let Err(error) = released {
                tracing::warn!(connection_id = %self.options.flow_id, hashed_id = %order.hashed_id,
                    error = %error, "could not give back an import claim; it runs out by itself");
            }
        }
    }
}

/// Claims the order in the store; `true` when this importer now holds it. An order already
/// imported, or held by another importer, is settled here.
async fn claim<S: Store>(
    order: &ValidOrder,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<bool, ImportError> {
    let now = clock.now();
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
            Ok(false)
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
            Ok(false)
        }
        ImportClaim::Granted(_) => Ok(true),
    }
}

/// Imports the claimed orders of a page: one search of the reference field for all of
/// them, one search of their retailers (and one create of the missing ones), then one
/// create per order not found. Each order is taken off `pending` just before its own
/// Odoo work, so that on a failure `pending` holds exactly the claims nothing was tried for.
async fn settle_claims<S: Store>(
    pending: &mut Claimed<'_, S>,
    claimed_at: Timestamp,
    odoo: &OdooClient,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let (store, options) = (pending.store, pending.options);
    let lookups = std::time::Instant::now();
    let hashed_ids: Vec<&str> = pending
        .orders
        .iter()
        .map(|order| order.hashed_id.as_str())
        .collect();
    let mut found = find_by_references(odoo, options, &hashed_ids).await?;
    let mut recovered = Vec::new();
    pending
        .orders
        .retain(|order| match found.remove(&order.hashed_id) {
            Some(odoo_id) => {
                recovered.push((order.clone(), odoo_id));
                false
            }
            None => true,
        });
    for (order, odoo_id) in recovered {
        tracing::info!(connection_id = %options.flow_id, hashed_id = %order.hashed_id,
            odoo_order_id = odoo_id, "marketplace order found in Odoo by its reference");
        report.recovered += 1;
        record(
            &order,
            odoo_id,
            lookups.elapsed(),
            store,
            options,
            clock,
            report,
        )
        .await?;
    }
    if pending.orders.is_empty() {
        return Ok(());
    }
    let partners = retailer_partners(odoo, pending.orders.iter()).await?;
    let lookups = lookups.elapsed();
    // Past half its life a claim is renewed and the order searched again on its own before
    // its create: however slow the page, no create runs on a claim that may have run out.
    let renew_after = claimed_at + options.claim_for / 2;
    while let Some(order) = pending.orders.pop_front() {
        let timer = std::time::Instant::now();
        let partner = match partners.get(&order.retailer.code) {
            Some(Ok(partner)) => *partner,
            Some(Err(issue)) => {
                refuse(
                    store,
                    options,
                    &as_raw(&order),
                    std::slice::from_ref(issue),
                    clock,
                    report,
                )
                .await?;
                continue;
            }
            None => {
                let issue = Issue::new(
                    IssueCode::CustomerError,
                    format!(
                        "retailer {:?} was neither found nor created",
                        order.retailer.code
                    ),
                );
                refuse(store, options, &as_raw(&order), &[issue], clock, report).await?;
                continue;
            }
        };
        if clock.now() >= renew_after {
            match renewed_and_not_found(&order, odoo, store, options, clock, report).await {
                Ok(Renewal::Create) => {}
                Ok(Renewal::Settled) => continue,
                Ok(Renewal::Found(odoo_id)) => {
                    report.recovered += 1;
                    record(
                        &order,
                        odoo_id,
                        timer.elapsed(),
                        store,
                        options,
                        clock,
                        report,
                    )
                    .await?;
                    continue;
                }
                Err(error) => {
                    pending.orders.push_front(order);
                    return Err(error);
                }
            }
        }
        match create_order(odoo, options, &order, partner).await {
            Ok(created) => {
                report.created += 1;
                let took = lookups + timer.elapsed();
                record(&order, created, took, store, options, clock, report).await?;
            }
            Err(Failure::Refused(issue)) => {
                refuse(store, options, &as_raw(&order), &[issue], clock, report).await?;
            }
            Err(Failure::Odoo { error, maybe_done }) => {
                // A create that may have happened keeps its claim until it runs out: whoever
                // takes the order next searches by reference first and finds it.
                if !maybe_done {
                    pending.orders.push_front(order);
                }
                return Err(error.into());
            }
        }
    }
    Ok(())
}

/// Records the order as Odoo's `odoo_id`, logs it, acknowledges it and puts its status in
/// the inbox.
async fn record<S: Store>(
    order: &ValidOrder,
    odoo_id: i64,
    took: std::time::Duration,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
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
    row.response_time_ms = Some(log::millis(took));
    store.record_log(&row).await?;
    acknowledge(store, options, &order.hashed_id, odoo_id, clock, report).await?;
    enqueue_status(store, options, order, Origin::Import, clock, report).await
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

enum Renewal {
    /// Still held, and not in Odoo: create it.
    Create,
    /// Found in Odoo by its reference.
    Found(i64),
    /// Imported or held by another importer meanwhile (counted by [`claim`]).
    Settled,
}

/// The one-order path of a page too slow for its claims: renews the claim, then searches the
/// order's reference again.
async fn renewed_and_not_found<S: Store>(
    order: &ValidOrder,
    odoo: &OdooClient,
    store: &S,
    options: &ImportOptions,
    clock: &Clock,
    report: &mut ImportReport,
) -> Result<Renewal, ImportError> {
    if !claim(order, store, options, clock, report).await? {
        return Ok(Renewal::Settled);
    }
    let found = find_by_references(odoo, options, &[order.hashed_id.as_str()]).await?;
    Ok(found
        .get(&order.hashed_id)
        .map_or(Renewal::Create, |odoo_id| Renewal::Found(*odoo_id)))
}

/// For each of `hashed_ids` carried by some `sale.order` in the reference field, the lowest
/// such id: one call for a whole page.
async fn find_by_references(
    odoo: &OdooClient,
    options: &ImportOptions,
    hashed_ids: &[&str],
) -> Result<HashMap<String, i64>, odoo_rpc::Error> {
    let reference = options.reference_field.as_str();
    let rows = odoo
        .search_read(
            ORDER_MODEL,
            &SearchReadOptions::new(field(reference).is_in(hashed_ids.iter().copied()))
                .fields([reference])
                .order("id"),
        )
        .await?;
    lowest_id_by(&rows, reference)
}

/// The lowest id per value of `key` among `rows`, read in id order.
fn lowest_id_by(
    rows: &[odoo_rpc::Record],
    key: &str,
) -> Result<HashMap<String, i64>, odoo_rpc::Error> {
    let mut lowest = HashMap::new();
    for row in rows {
        let shape = |error: odoo_rpc::FieldError| odoo_rpc::Error::MalformedResponse {
            message: format!("{key} of a searched record: {error}"),
            excerpt: String::new(),
        };
        let id = row.id().map_err(shape)?;
        if let Some(value) = row.str(key).map_err(shape)? {
            lowest
                .entry(value.to_owned())
                .and_modify(|seen: &mut i64| *seen = (*seen).min(id))
                .or_insert(id);
        }
    }
    Ok(lowest)
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
/// Whether Odoo refused this order's (or retailer's) data: a business exception, answered
/// after Odoo rolled its transaction back, so nothing was created and the rest of the page
/// goes on. Rights, a wrong field name, a server fault or a lost answer are the pass's error
/// instead: they are not about one order.
fn refuses_the_order(error: &odoo_rpc::Error) -> bool {
    matches!(
        error,
        odoo_rpc::Error::Odoo(odoo) if matches!(
            odoo.kind,
            OdooErrorKind::ValidationError
                | OdooErrorKind::UserError
                | OdooErrorKind::MissingError
                | OdooErrorKind::RedirectWarning
        )
    )
}

async fn create_order(
    odoo: &OdooClient,
    options: &ImportOptions,
    order: &ValidOrder,
    partner: i64,
) -> Result<i64, Failure> {
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

/// The partner of each retailer of `orders`, by code: the lowest id with `ref` = its code
/// (archived ones included, so an archived retailer is not created twice), else a new one.
/// One search for all of them and one create for the missing ones. What Odoo refuses for a
/// retailer (a validation error) is that retailer's orders' [`IssueCode::CustomerError`];
/// Odoo failing otherwise is the pass's error.
async fn retailer_partners<'o>(
    odoo: &OdooClient,
    orders: impl Iterator<Item = &'o ValidOrder>,
) -> Result<HashMap<String, Result<i64, Issue>>, odoo_rpc::Error> {
    let mut retailers: Vec<&Retailer> = Vec::new();
    for order in orders {
        if !retailers
            .iter()
            .any(|seen| seen.code == order.retailer.code)
        {
            retailers.push(&order.retailer);
        }
    }
    let searched = odoo
        .search_read(
            "res.partner",
            &SearchReadOptions::new(
                field("ref").is_in(retailers.iter().map(|retailer| retailer.code.as_str())),
            )
            .fields(["ref"])
            .order("id")
            .context(Context::new().active_test(false)),
        )
        .await;
    let rows = match searched {
        Ok(rows) => rows,
        Err(error) if refuses_the_order(&error) => {
            return Ok(retailers
                .into_iter()
                .map(|retailer| (retailer.code.clone(), Err(retailer_issue(retailer, &error))))
                .collect());
        }
        Err(error) => return Err(error),
    };
    let mut partners: HashMap<String, Result<i64, Issue>> = lowest_id_by(&rows, "ref")?
        .into_iter()
        .map(|(code, id)| (code, Ok(id)))
        .collect();
    let missing: Vec<&Retailer> = retailers
        .into_iter()
        .filter(|retailer| !partners.contains_key(&retailer.code))
        .collect();
    if missing.is_empty() {
        return Ok(partners);
    }
    let vals = missing
        .iter()
        .map(|retailer| partner_vals(retailer))
        .collect();
    match odoo.create("res.partner", vals, None).await {
        Ok(ids) if ids.len() == missing.len() => {
            for (retailer, id) in missing.into_iter().zip(ids) {
                partners.insert(retailer.code.clone(), Ok(id));
            }
        }
        Ok(_) => return Err(no_id()),
        // A create of several is refused whole for one bad retailer: one by one, to know which.
        Err(error) if refuses_the_order(&error) => {
            for retailer in missing {
                let made = odoo
                    .create("res.partner", vec![partner_vals(retailer)], None)
                    .await;
                let partner = match made {
                    Ok(ids) => Ok(ids.first().copied().ok_or_else(no_id)?),
                    Err(error) if refuses_the_order(&error) => {
                        Err(retailer_issue(retailer, &error))
                    }
                    Err(error) => return Err(error),
                };
                partners.insert(retailer.code.clone(), partner);
            }
        }
        Err(error) => return Err(error),
    }
    Ok(partners)
}

fn partner_vals(retailer: &Retailer) -> Map<String, Value> {
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
    vals
}

fn retailer_issue(retailer: &Retailer, error: &odoo_rpc::Error) -> Issue {
    Issue::new(
        IssueCode::CustomerError,
        format!("retailer {:?}: {}", retailer.code, error),
    )
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
