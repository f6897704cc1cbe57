//! Applying a marketplace status to its Odoo order (Cartona → Odoo), for every inbox event
//! of a marketplace flow, whichever way it came ([`super::inbound`]).
//!
//! 1. **Which order.** The store's record of the import. An order never imported (a status
//!    for an order the pull has not seen yet, or one it refused) is logged and left: the
//!    import applies the order's status itself once it imports it, so retrying is pointless.
//! 2. **No regression.** The status must be the last one seen (applied again: harmless, each
//!    step checks first) or [`MarketplaceStatus::may_follow`] it; an older one is a
//!    `stale_status` conflict that resolves itself (the newer status stands).
//! 3. **Plan.** From the status and Odoo's order as it is now ([`plan`]): the workflow steps
//!    still needed, or a conflict, never forced:
//!    - a cancellation once a delivery is done → `cancel_after_delivery`;
//!    - pending/editing on an order confirmed in Odoo → `reopen_confirmed`;
//!    - any status but a cancellation on an order cancelled in Odoo → `cancelled_in_odoo`.
//! 4. **Steps** ([`super::odoo_order`]), each skipped when Odoo is already there, each
//!    checked by reading the order again. A locked order is unlocked before a cancellation
//!    when no delivery is done: Odoo 18's "Lock Confirmed Sales" locks every order at
//!    confirmation, so the lock alone says nothing about the goods.
//! 5. **Bookkeeping.** The status becomes the order's last status seen from the marketplace
//!    (compare-and-set), and the event's log row is written: success, conflict, or — when
//!    Odoo failed — retrying / failed with the error, as the inbox retries it.

use super::inbound::StatusUpdate;
use super::log;
use super::odoo_order::{OrderView, Workflow, WorkflowError};
use super::status::MarketplaceStatus;
use crate::clock::Clock;
use crate::inbox::InboundApplier;
use crate::outbox::BoxFuture;
use crate::store::{
    Conflict, ConflictSeverity, InboundEvent, LogDirection, LogOutcome, MarketplaceOrder,
    NewConflict, Store, StoreError,
};
use crate::webhook::{DeliveryError, FailureClass};
use odoo_rpc::OdooClient;
use serde_json::Value;

/// One step of Odoo's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Confirm,
    Unlock,
    Cancel,
    Deliver,
    Lock,
    Return,
}

/// Why a status is not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    CancelAfterDelivery,
    ReopenConfirmed,
    CancelledInOdoo,
    StaleStatus,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::CancelAfterDelivery => "cancel_after_delivery",
            ConflictKind::ReopenConfirmed => "reopen_confirmed",
            ConflictKind::CancelledInOdoo => "cancelled_in_odoo",
            ConflictKind::StaleStatus => "stale_status",
        }
    }

    pub fn severity(self) -> ConflictSeverity {
        match self {
            ConflictKind::CancelAfterDelivery => ConflictSeverity::High,
            ConflictKind::ReopenConfirmed | ConflictKind::CancelledInOdoo => {
                ConflictSeverity::Medium
            }
            ConflictKind::StaleStatus => ConflictSeverity::Low,
        }
    }

    /// What a person should do (`resolve --apply odoo` pushes Odoo's status to the
    /// marketplace, `--apply marketplace` applies the marketplace's again, `ignore` closes).
    pub fn recommended_action(self) -> &'static str {
        match self {
            ConflictKind::CancelAfterDelivery => {
                "the goods have left: return the delivery in Odoo and close this with \
                 `resolve --apply ignore`, or have the marketplace order restored and push \
                 Odoo's status with `resolve --apply odoo`"
            }
            ConflictKind::ReopenConfirmed => {
                "the retailer is editing an order Odoo has confirmed: push Odoo's status with \
                 `resolve --apply odoo`, or cancel it in Odoo, set it back to quotation and \
                 `resolve --apply marketplace`"
            }
            ConflictKind::CancelledInOdoo => {
                "Odoo cancelled the order: push the cancellation with `resolve --apply odoo`, \
                 or set it back to quotation in Odoo and `resolve --apply marketplace`"
            }
            ConflictKind::StaleStatus => "none: the newer status stands",
        }
    }
}

/// What a status needs, given Odoo's order as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// These steps in order (each skipped when Odoo is already past it).
    Steps(Vec<Step>),
    Conflict(ConflictKind),
}

/// The plan for `status` on `order`. See the module documentation.
pub fn plan(status: MarketplaceStatus, order: &OrderView) -> Plan {
    use MarketplaceStatus as M;
    if status.is_cancellation() {
        return if order.is_cancelled() {
            Plan::Steps(Vec::new())
        } else if order.delivered_any() {
            Plan::Conflict(ConflictKind::CancelAfterDelivery)
        } else {
            Plan::Steps(vec![Step::Unlock, Step::Cancel])
        };
    }
    if order.is_cancelled() {
        return Plan::Conflict(ConflictKind::CancelledInOdoo);
    }
    match status {
        M::Pending | M::Editing if order.is_confirmed() => {
            Plan::Conflict(ConflictKind::ReopenConfirmed)
        }
        M::Pending | M::Editing => Plan::Steps(Vec::new()),
        M::Approved => Plan::Steps(vec![Step::Confirm]),
        M::AssignedToSalesman => Plan::Steps(vec![Step::Confirm, Step::Deliver]),
        M::Delivered => Plan::Steps(vec![Step::Confirm, Step::Deliver, Step::Lock]),
        M::Returned => Plan::Steps(vec![Step::Confirm, Step::Deliver, Step::Return, Step::Lock]),
        M::CancelledByRetailer | M::CancelledBySupplier => Plan::Steps(Vec::new()),
    }
}

/// Whether `step` still has work on `order`.
fn needed(step: Step, order: &OrderView) -> bool {
    match step {
        Step::Confirm => order.is_quotation(),
        Step::Unlock => order.locked,
        Step::Cancel => !order.is_cancelled(),
        Step::Deliver => !order.open_deliveries().is_empty(),
        Step::Lock => !order.locked,
        Step::Return => !order.fully_returned(),
    }
}

/// How one status application ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Odoo is where the status says (`steps`: what it took; none when it was there).
    Done { steps: Vec<Step>, order: OrderView },
    /// Not applied: this conflict was recorded.
    Conflict(Box<Conflict>),
    /// The order was never imported: logged, nothing else.
    UnknownOrder,
}

impl Applied {
    /// For the inbox's record and people.
    pub fn describe(&self, update: &StatusUpdate) -> String {
        match self {
            Applied::Done { steps, order } if steps.is_empty() => format!(
                "{} {}: Odoo order {} already there ({}, delivery {})",
                update.hashed_id,
                update.status,
                order.id,
                order.order_state_text(),
                order.delivery_state()
            ),
            Applied::Done { steps, order } => format!(
                "{} {}: Odoo order {} {:?} → {}, delivery {}",
                update.hashed_id,
                update.status,
                order.id,
                steps,
                order.order_state_text(),
                order.delivery_state()
            ),
            Applied::Conflict(conflict) => format!(
                "{} {}: not applied, conflict {} ({})",
                update.hashed_id, update.status, conflict.id, conflict.conflict.kind
            ),
            Applied::UnknownOrder => format!(
                "{} {}: no imported order has this id; recorded, not applied",
                update.hashed_id, update.status
            ),
        }
    }
}

/// Why an application failed (the inbox retries it or marks it failed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event is not a marketplace status: {0}")]
    Malformed(String),
}

impl ApplyError {
    fn to_delivery(&self) -> DeliveryError {
        let (class, permanent) = match self {
            ApplyError::Workflow(error) => (FailureClass::OdooError, !error.is_retryable()),
            ApplyError::Store(_) => (FailureClass::StoreError, false),
            ApplyError::Malformed(_) => (FailureClass::SchemaError, true),
        };
        DeliveryError::before_sending(class, permanent, self.to_string())
    }

    fn code(&self) -> &'static str {
        match self {
            ApplyError::Workflow(WorkflowError::NoEffect { .. }) => "no_effect",
            ApplyError::Workflow(WorkflowError::OrderGone(_)) => "order_gone",
            ApplyError::Workflow(_) => "odoo_error",
            ApplyError::Store(_) => "store_error",
            ApplyError::Malformed(_) => "malformed",
        }
    }
}

/// The marketplace flow's inbound applier: holds the store, the tenant's Odoo client and the
/// flow it applies for.
#[derive(Debug, Clone)]
pub struct StatusApplier<S> {
    store: S,
    odoo: OdooClient,
    flow_id: String,
    clock: Clock,
}

impl<S: Store> StatusApplier<S> {
    pub fn new(store: S, odoo: OdooClient, flow_id: &str, clock: Clock) -> StatusApplier<S> {
        StatusApplier {
            store,
            odoo,
            flow_id: flow_id.to_owned(),
            clock,
        }
    }

    /// Applies `update` (see the module documentation) and records it: its log row under
    /// `event_key` (`retries`: tries before this one; `last_try`: a failure now is final).
    pub async fn apply_status(
        &self,
        event_key: &str,
        update: &StatusUpdate,
        retries: u32,
        last_try: bool,
    ) -> Result<Applied, ApplyError> {
        let timer = std::time::Instant::now();
        let stored = self
            .store
            .marketplace_order(&self.flow_id, &update.hashed_id)
            .await?;
        let mut row = log::entry(
            &self.flow_id,
            event_key.to_owned(),
            LogDirection::Inbound,
            &update.hashed_id,
            "status",
            LogOutcome::Success,
            self.clock.now(),
        );
        row.marketplace_status = Some(update.status.as_str().to_owned());
        row.retries = retries;
        let Some((order, odoo_id)) =
            stored.and_then(|order| order.odoo_order_id.map(|odoo_id| (order, odoo_id)))
        else {
            row.outcome = LogOutcome::Failed;
            row.error_code = Some("unknown_order".to_owned());
            row.error_text = Some("no imported order has this id".to_owned());
            self.store.record_log(&row).await?;
            return Ok(Applied::UnknownOrder);
        };
        row.odoo_order_id = Some(odoo_id);
        let result = self.apply_to(&order, odoo_id, update, event_key).await;
        row.response_time_ms = Some(log::millis(timer.elapsed()));
        row.at = self.clock.now();
        match &result {
            Ok(Applied::Done { order: view, .. }) => {
                row.odoo_order_state = Some(view.order_state_text());
                row.odoo_delivery_state = Some(view.delivery_state().to_owned());
            }
            Ok(Applied::Conflict(conflict)) => {
                row.outcome = LogOutcome::Conflict;
                row.odoo_order_state = conflict.conflict.odoo_order_state.clone();
                row.odoo_delivery_state = conflict.conflict.odoo_delivery_state.clone();
                row.error_code = Some(conflict.conflict.kind.clone());
                row.error_text = Some(conflict.conflict.detail.clone());
            }
            Ok(Applied::UnknownOrder) => {}
            Err(error) => {
                let permanent = error.to_delivery().permanent;
                row.outcome = if permanent || last_try {
                    LogOutcome::Failed
                } else {
                    LogOutcome::Retrying
                };
                row.error_code = Some(error.code().to_owned());
                row.error_text = Some(error.to_string());
            }
        }
        self.store.record_log(&row).await?;
        result
    }

    async fn apply_to(
        &self,
        order: &MarketplaceOrder,
        odoo_id: i64,
        update: &StatusUpdate,
        event_key: &str,
    ) -> Result<Applied, ApplyError> {
        let previous_text = order.marketplace_status.as_deref();
        let previous = previous_text.and_then(MarketplaceStatus::parse);
        let workflow = Workflow::of(&self.odoo).await?;
        if let Some(previous) = previous
            && previous != update.status
            && !update.status.may_follow(previous)
        {
            let view = workflow.read(odoo_id).await?;
            let conflict = self
                .conflict(
                    order,
                    &view,
                    update,
                    event_key,
                    ConflictKind::StaleStatus,
                    Some(format!("auto: kept {previous}")),
                    format!("{} arrived after {previous}", update.status),
                )
                .await?;
            return Ok(Applied::Conflict(Box::new(conflict)));
        }
        let mut view = workflow.read(odoo_id).await?;
        let applied = match plan(update.status, &view) {
            Plan::Conflict(kind) => {
                let detail = match kind {
                    ConflictKind::CancelAfterDelivery => format!(
                        "{} but a delivery of Odoo order {} is done",
                        update.status, odoo_id
                    ),
                    _ => format!(
                        "{} but Odoo order {} is {}",
                        update.status,
                        odoo_id,
                        view.order_state_text()
                    ),
                };
                let conflict = self
                    .conflict(order, &view, update, event_key, kind, None, detail)
                    .await?;
                Applied::Conflict(Box::new(conflict))
            }
            Plan::Steps(steps) => {
                let mut done = Vec::new();
                for step in steps {
                    if !needed(step, &view) {
                        continue;
                    }
                    view = match step {
                        Step::Confirm => workflow.confirm(&view).await?,
                        Step::Unlock => workflow.unlock(&view).await?,
                        Step::Cancel => workflow.cancel(&view).await?,
                        Step::Deliver => workflow.deliver(&view).await?,
                        Step::Lock => workflow.lock(&view).await?,
                        Step::Return => workflow.return_deliveries(&view).await?,
                    };
                    done.push(step);
                }
                Applied::Done {
                    steps: done,
                    order: view,
                }
            }
        };
        if previous_text != Some(update.status.as_str()) {
            let moved = self
                .store
                .set_marketplace_status(
                    &self.flow_id,
                    &update.hashed_id,
                    previous_text,
                    update.status.as_str(),
                    self.clock.now(),
                )
                .await?;
            if !moved {
                tracing::warn!(connection_id = %self.flow_id, hashed_id = %update.hashed_id,
                    status = %update.status,
                    "the order's marketplace status moved while this one was applied");
            }
        }
        Ok(applied)
    }

    #[allow(clippy::too_many_arguments)]
    async fn conflict(
        &self,
        order: &MarketplaceOrder,
        view: &OrderView,
        update: &StatusUpdate,
        event_key: &str,
        kind: ConflictKind,
        resolution: Option<String>,
        detail: String,
    ) -> Result<Conflict, StoreError> {
        let conflict = self
            .store
            .record_conflict(&NewConflict {
                flow_id: self.flow_id.clone(),
                hashed_id: update.hashed_id.clone(),
                event_key: event_key.to_owned(),
                odoo_order_id: order.odoo_order_id,
                kind: kind.as_str().to_owned(),
                severity: kind.severity(),
                marketplace_status: Some(update.status.as_str().to_owned()),
                odoo_status: order.odoo_status.clone(),
                odoo_order_state: Some(view.order_state_text()),
                odoo_delivery_state: Some(view.delivery_state().to_owned()),
                recommended_action: kind.recommended_action().to_owned(),
                auto_resolvable: resolution.is_some(),
                detail,
                resolution,
                at: self.clock.now(),
            })
            .await?;
        tracing::warn!(connection_id = %self.flow_id, hashed_id = %update.hashed_id,
            conflict_id = conflict.id, kind = kind.as_str(), open = conflict.open,
            "marketplace status not applied: conflict");
        Ok(conflict)
    }

    async fn apply_event(&self, event: &InboundEvent) -> Result<String, DeliveryError> {
        let key = log::inbox_key(event.id);
        let update = serde_json::from_str::<Value>(&event.body)
            .map_err(|error| error.to_string())
            .and_then(|body| StatusUpdate::parse(&body));
        let update = match update {
            Ok(update) => update,
            Err(reason) => return Err(ApplyError::Malformed(reason).to_delivery()),
        };
        let last_try = event.attempts >= event.max_attempts;
        match self
            .apply_status(&key, &update, event.attempts, last_try)
            .await
        {
            Ok(applied) => Ok(applied.describe(&update)),
            Err(error) => Err(error.to_delivery()),
        }
    }
}

impl<S: Store> InboundApplier for StatusApplier<S> {
    fn apply<'a>(
        &'a self,
        event: &'a InboundEvent,
    ) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(self.apply_event(event))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::marketplace::odoo_order::PickingView;
    use MarketplaceStatus as M;

    fn order(state: &str, locked: bool, deliveries: &[&str]) -> OrderView {
        OrderView {
            id: 1,
            state: state.to_owned(),
            locked,
            deliveries: deliveries
                .iter()
                .enumerate()
                .map(|(n, state)| PickingView {
                    id: n as i64 + 10,
                    state: (*state).to_owned(),
                    return_of: None,
                })
                .collect(),
            returns: Vec::new(),
        }
    }

    #[test]
    fn quotations_are_confirmed_and_delivered_through_the_workflow() {
        let draft = order("draft", false, &[]);
        assert_eq!(plan(M::Pending, &draft), Plan::Steps(vec![]));
        assert_eq!(plan(M::Editing, &draft), Plan::Steps(vec![]));
        assert_eq!(plan(M::Approved, &draft), Plan::Steps(vec![Step::Confirm]));
        assert_eq!(
            plan(M::AssignedToSalesman, &draft),
            Plan::Steps(vec![Step::Confirm, Step::Deliver])
        );
        assert_eq!(
            plan(M::Delivered, &draft),
            Plan::Steps(vec![Step::Confirm, Step::Deliver, Step::Lock])
        );
        assert_eq!(
            plan(M::Returned, &draft),
            Plan::Steps(vec![Step::Confirm, Step::Deliver, Step::Return, Step::Lock])
        );
    }

    #[test]
    fn a_cancellation_unlocks_first_unless_goods_left() {
        let locked = order("sale", true, &["assigned"]);
        assert_eq!(
            plan(M::CancelledByRetailer, &locked),
            Plan::Steps(vec![Step::Unlock, Step::Cancel])
        );
        assert!(needed(Step::Unlock, &locked));
        assert!(!needed(Step::Unlock, &order("sale", false, &[])));
        let shipped = order("sale", true, &["done"]);
        assert_eq!(
            plan(M::CancelledBySupplier, &shipped),
            Plan::Conflict(ConflictKind::CancelAfterDelivery)
        );
        // A backorder still open does not hide the goods that left.
        let partly = order("sale", false, &["done", "assigned"]);
        assert_eq!(
            plan(M::CancelledByRetailer, &partly),
            Plan::Conflict(ConflictKind::CancelAfterDelivery)
        );
        assert_eq!(
            plan(M::CancelledByRetailer, &order("cancel", false, &["cancel"])),
            Plan::Steps(vec![])
        );
    }

    #[test]
    fn statuses_odoo_cannot_take_are_conflicts() {
        let confirmed = order("sale", false, &["assigned"]);
        assert_eq!(
            plan(M::Editing, &confirmed),
            Plan::Conflict(ConflictKind::ReopenConfirmed)
        );
        assert_eq!(
            plan(M::Pending, &order("done", true, &["done"])),
            Plan::Conflict(ConflictKind::ReopenConfirmed)
        );
        let cancelled = order("cancel", false, &["cancel"]);
        for status in [
            M::Pending,
            M::Approved,
            M::AssignedToSalesman,
            M::Delivered,
            M::Returned,
        ] {
            assert_eq!(
                plan(status, &cancelled),
                Plan::Conflict(ConflictKind::CancelledInOdoo),
                "{status}"
            );
        }
    }

    #[test]
    fn steps_already_done_are_skipped() {
        let delivered = order("sale", true, &["done", "cancel"]);
        assert!(!needed(Step::Confirm, &delivered));
        assert!(!needed(Step::Deliver, &delivered));
        assert!(!needed(Step::Lock, &delivered));
        assert!(needed(Step::Return, &delivered));
        assert_eq!(delivered.delivery_state(), "done");
        let mut returned = delivered.clone();
        returned.returns.push(PickingView {
            id: 99,
            state: "done".to_owned(),
            return_of: Some(10),
        });
        assert!(!needed(Step::Return, &returned));
    }
}
