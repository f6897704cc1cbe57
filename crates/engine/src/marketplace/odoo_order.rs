//! An Odoo `sale.order` and its deliveries moved through Odoo's own workflow, the way a
//! person's clicks move them (facts in `shared/reference/odoo18-workflows.md`). Nothing here
//! writes a `state`: it calls the methods the buttons call, with the context keys that skip
//! their wizards, and reads the records again after every call — a call that answers `true`
//! (or a wizard's window action) and changed nothing is a [`WorkflowError::NoEffect`].
//!
//! Versions: Odoo 16 has the `done` order state (`action_done` locks, `action_unlock` goes
//! back to `sale`) and `stock.move.quantity_done`; 17+ have the `locked` flag
//! (`action_lock`/`action_unlock`) and `stock.move.quantity` with `picked`. The return
//! wizard's button is `create_returns` before 18 and `action_create_returns` from 18.

use odoo_rpc::{Context, OdooClient, Record, SearchReadOptions, field};
use serde_json::{Map, Value, json};

const ORDER: &str = "sale.order";
const PICKING: &str = "stock.picking";
const MOVE: &str = "stock.move";
const RETURN_WIZARD: &str = "stock.return.picking";
const RETURN_LINE: &str = "stock.return.picking.line";

/// What went wrong moving an order.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),
    /// The call answered, but a re-read shows it did not do its work (a wizard came back,
    /// or an override swallowed it).
    #[error("{call} on {model} {id} answered {answer} but changed nothing ({seen})")]
    NoEffect {
        call: &'static str,
        model: &'static str,
        id: i64,
        answer: String,
        seen: String,
    },
    #[error("sale.order {0} does not exist in Odoo (deleted?)")]
    OrderGone(i64),
    #[error("Odoo answered {what} in an unexpected shape: {detail}")]
    Shape { what: &'static str, detail: String },
}

impl WorkflowError {
    /// Whether trying again later may succeed: Odoo down or busy, or a call that did not
    /// act (the next try re-reads and may find the work done). A refusal of Odoo's
    /// validation (a `UserError`) or a deleted order will not change by waiting.
    pub fn is_retryable(&self) -> bool {
        match self {
            WorkflowError::Odoo(error) => error.is_retryable(),
            WorkflowError::NoEffect { .. } => true,
            WorkflowError::OrderGone(_) | WorkflowError::Shape { .. } => false,
        }
    }
}

fn shape(what: &'static str, detail: impl ToString) -> WorkflowError {
    WorkflowError::Shape {
        what,
        detail: detail.to_string(),
    }
}

/// A transfer of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickingView {
    pub id: i64,
    pub state: String,
    /// The delivery it returns (`return_id`), for a return.
    pub return_of: Option<i64>,
}

/// An order as Odoo has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub id: i64,
    /// `draft`, `sent`, `sale`, `cancel` (and `done` on Odoo 16).
    pub state: String,
    /// Locked: the `locked` flag on 17+, the `done` state on 16.
    pub locked: bool,
    /// Outgoing transfers (deliveries).
    pub deliveries: Vec<PickingView>,
    /// Incoming transfers returning one of the deliveries.
    pub returns: Vec<PickingView>,
}

impl OrderView {
    pub fn is_quotation(&self) -> bool {
        matches!(self.state.as_str(), "draft" | "sent")
    }

    pub fn is_confirmed(&self) -> bool {
        matches!(self.state.as_str(), "sale" | "done")
    }

    pub fn is_cancelled(&self) -> bool {
        self.state == "cancel"
    }

    /// Seed 001's primary delivery state: of the deliveries not cancelled, the first state
    /// found in done > assigned > confirmed > waiting > draft; `draft` when there is none.
    pub fn delivery_state(&self) -> &str {
        const PRIORITY: [&str; 5] = ["done", "assigned", "confirmed", "waiting", "draft"];
        PRIORITY
            .into_iter()
            .find(|state| {
                self.deliveries
                    .iter()
                    .any(|picking| picking.state == *state)
            })
            .unwrap_or(
                if self.deliveries.iter().all(|p| p.state == "cancel")
                    && !self.deliveries.is_empty()
                {
                    "cancel"
                } else {
                    "draft"
                },
            )
    }

    /// Some delivery is done: goods left the warehouse.
    pub fn delivered_any(&self) -> bool {
        self.deliveries
            .iter()
            .any(|picking| picking.state == "done")
    }

    /// Deliveries still to validate (neither done nor cancelled).
    pub fn open_deliveries(&self) -> Vec<i64> {
        self.deliveries
            .iter()
            .filter(|picking| !matches!(picking.state.as_str(), "done" | "cancel"))
            .map(|picking| picking.id)
            .collect()
    }

    /// Every delivery that is not cancelled is done (and there is one).
    pub fn fully_delivered(&self) -> bool {
        self.deliveries.iter().any(|p| p.state == "done") && self.open_deliveries().is_empty()
    }

    /// Done deliveries and the returns (not cancelled) made of each.
    fn returns_of(&self, delivery: i64) -> Vec<&PickingView> {
        self.returns
            .iter()
            .filter(|picking| picking.return_of == Some(delivery) && picking.state != "cancel")
            .collect()
    }

    /// Every done delivery has a done return.
    pub fn fully_returned(&self) -> bool {
        let done: Vec<i64> = self
            .deliveries
            .iter()
            .filter(|picking| picking.state == "done")
            .map(|picking| picking.id)
            .collect();
        !done.is_empty()
            && done.iter().all(|delivery| {
                self.returns_of(*delivery)
                    .iter()
                    .any(|picking| picking.state == "done")
            })
    }

    /// For logs and conflicts: `sale/locked`, `cancel`, …
    pub fn order_state_text(&self) -> String {
        if self.locked && self.state != "done" {
            format!("{}/locked", self.state)
        } else {
            self.state.clone()
        }
    }
}

/// Moves one Odoo's orders. Cheap to build per application.
#[derive(Debug, Clone, Copy)]
pub struct Workflow<'a> {
    odoo: &'a OdooClient,
    /// Odoo's major version (16 has the `done` state and `quantity_done`).
    major: u32,
}

impl<'a> Workflow<'a> {
    /// Asks the server's version (once per client: it is cached).
    pub async fn of(odoo: &'a OdooClient) -> Result<Workflow<'a>, WorkflowError> {
        let version = odoo.server_version().await?;
        Ok(Workflow {
            odoo,
            major: version.major,
        })
    }

    fn legacy(&self) -> bool {
        self.major < 17
    }

    /// The order and its transfers as they are now.
    pub async fn read(&self, order_id: i64) -> Result<OrderView, WorkflowError> {
        let mut fields = vec!["state", "picking_ids"];
        if !self.legacy() {
            fields.push("locked");
        }
        let records = self.odoo.read(ORDER, &[order_id], &fields, None).await?;
        let Some(order) = records.first() else {
            return Err(WorkflowError::OrderGone(order_id));
        };
        let state = text(order, "state")?;
        let locked = if self.legacy() {
            state == "done"
        } else {
            order.bool("locked").map_err(|e| shape("sale.order", e))? == Some(true)
        };
        let picking_ids = order
            .x2many("picking_ids")
            .map_err(|e| shape("sale.order", e))?;
        let pickings = self
            .odoo
            .read(
                PICKING,
                &picking_ids,
                &["state", "picking_type_code", "return_id"],
                None,
            )
            .await?;
        let mut deliveries = Vec::new();
        let mut returns = Vec::new();
        for picking in &pickings {
            let view = PickingView {
                id: picking.id().map_err(|e| shape("stock.picking", e))?,
                state: text(picking, "state")?,
                return_of: picking
                    .many2one("return_id")
                    .map_err(|e| shape("stock.picking", e))?
                    .map(|m| m.id),
            };
            match picking
                .str("picking_type_code")
                .map_err(|e| shape("stock.picking", e))?
            {
                Some("outgoing") if view.return_of.is_none() => deliveries.push(view),
                Some("incoming") if view.return_of.is_some() => returns.push(view),
                _ => {}
            }
        }
        deliveries.sort_by_key(|p| p.id);
        returns.sort_by_key(|p| p.id);
        Ok(OrderView {
            id: order_id,
            state,
            locked,
            deliveries,
            returns,
        })
    }

    /// `action_confirm` on a quotation; re-read: the order is confirmed.
    pub async fn confirm(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        let answer = self.call(ORDER, "action_confirm", view.id, None).await?;
        let after = self.read(view.id).await?;
        if !after.is_confirmed() {
            return Err(no_effect("action_confirm", ORDER, view.id, &answer, &after));
        }
        Ok(after)
    }

    /// Unlocks a locked order (`action_unlock`); re-read: not locked.
    pub async fn unlock(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        let answer = self.call(ORDER, "action_unlock", view.id, None).await?;
        let after = self.read(view.id).await?;
        if after.locked {
            return Err(no_effect("action_unlock", ORDER, view.id, &answer, &after));
        }
        Ok(after)
    }

    /// Locks a confirmed order: `action_lock` (17+) or `action_done` (16); re-read: locked.
    pub async fn lock(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        let method = if self.legacy() {
            "action_done"
        } else {
            "action_lock"
        };
        let answer = self.call(ORDER, method, view.id, None).await?;
        let after = self.read(view.id).await?;
        if !after.locked {
            return Err(no_effect(method, ORDER, view.id, &answer, &after));
        }
        Ok(after)
    }

    /// `action_cancel` with `disable_cancel_warning` (else Odoo answers the cancel wizard
    /// and cancels nothing); re-read: cancelled. Odoo cancels the open transfers itself.
    pub async fn cancel(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        let context = Context::new().disable_cancel_warning(true);
        let answer = self
            .call(ORDER, "action_cancel", view.id, Some(&context))
            .await?;
        let after = self.read(view.id).await?;
        if !after.is_cancelled() {
            return Err(no_effect("action_cancel", ORDER, view.id, &answer, &after));
        }
        Ok(after)
    }

    /// Validates every open delivery: reserve (`action_assign`), each move's quantity set
    /// to its demand (and `picked` on 17+), `button_validate` with `skip_sms`; re-read: all
    /// done.
    pub async fn deliver(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        for picking in view.open_deliveries() {
            self.validate_transfer(picking).await?;
        }
        let after = self.read(view.id).await?;
        if let Some(open) = after.open_deliveries().first() {
            return Err(WorkflowError::NoEffect {
                call: "button_validate",
                model: PICKING,
                id: *open,
                answer: "true".to_owned(),
                seen: format!("delivery {open} still open"),
            });
        }
        Ok(after)
    }

    /// Returns every done delivery that has no return yet through the return wizard (its
    /// lines' quantities written to what was delivered), and validates every return not
    /// done; re-read: each done delivery has a done return.
    pub async fn return_deliveries(&self, view: &OrderView) -> Result<OrderView, WorkflowError> {
        for delivery in view.deliveries.iter().filter(|p| p.state == "done") {
            let existing = view.returns_of(delivery.id);
            let to_validate: Vec<i64> = if existing.is_empty() {
                vec![self.create_return(delivery.id).await?]
            } else {
                existing
                    .iter()
                    .filter(|picking| picking.state != "done")
                    .map(|picking| picking.id)
                    .collect()
            };
            for picking in to_validate {
                self.validate_transfer(picking).await?;
            }
        }
        let after = self.read(view.id).await?;
        if !after.fully_returned() {
            return Err(WorkflowError::NoEffect {
                call: "button_validate",
                model: PICKING,
                id: view.id,
                answer: "true".to_owned(),
                seen: format!("order {} has a delivery without a done return", view.id),
            });
        }
        Ok(after)
    }

    /// The return wizard on `delivery`: created with the delivery (and, for 16/17's
    /// `default_get`, the active record in the context), each line's quantity written to
    /// its move's done quantity (Odoo 18 starts them at 0), then its button. Returns the
    /// new incoming transfer.
    async fn create_return(&self, delivery: i64) -> Result<i64, WorkflowError> {
        let context = Context::new()
            .set("active_id", delivery)
            .set("active_ids", json!([delivery]))
            .set("active_model", PICKING);
        let mut vals = Map::new();
        vals.insert("picking_id".into(), json!(delivery));
        let wizard = self
            .odoo
            .create(RETURN_WIZARD, vec![vals], Some(&context))
            .await?
            .first()
            .copied()
            .ok_or_else(|| shape("stock.return.picking create", "no id"))?;
        let lines = self
            .odoo
            .search_read(
                RETURN_LINE,
                &SearchReadOptions::new(field("wizard_id").eq(wizard))
                    .fields(["move_id", "quantity"]),
            )
            .await?;
        let done_field = if self.legacy() {
            "quantity_done"
        } else {
            "quantity"
        };
        for line in &lines {
            let line_id = line.id().map_err(|e| shape("return line", e))?;
            let Some(movement) = line
                .many2one("move_id")
                .map_err(|e| shape("return line", e))?
            else {
                continue;
            };
            let moved = self
                .odoo
                .read(MOVE, &[movement.id], &[done_field], None)
                .await?
                .first()
                .map(|record| record.f64(done_field))
                .transpose()
                .map_err(|e| shape("stock.move", e))?
                .flatten()
                .unwrap_or(0.0);
            let mut vals = Map::new();
            vals.insert("quantity".into(), json!(moved));
            self.odoo.write(RETURN_LINE, &[line_id], vals, None).await?;
        }
        let method = if self.major >= 18 {
            "action_create_returns"
        } else {
            "create_returns"
        };
        let answer = self
            .odoo
            .call_method(
                RETURN_WIZARD,
                method,
                Some(&[wizard]),
                Map::new(),
                Some(&context),
            )
            .await?;
        answer
            .get("res_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| shape("the return wizard's action", answer.to_string()))
    }

    /// Reserves a transfer, sets each open move's quantity to its demand, validates it
    /// without the SMS wizard; re-read: done.
    async fn validate_transfer(&self, picking: i64) -> Result<(), WorkflowError> {
        self.call(PICKING, "action_assign", picking, None).await?;
        let moves = self
            .odoo
            .search_read(
                MOVE,
                &SearchReadOptions::new(
                    field("picking_id")
                        .eq(picking)
                        .and(field("state").not_in(["done", "cancel"])),
                )
                .fields(["product_uom_qty"]),
            )
            .await?;
        for movement in &moves {
            let id = movement.id().map_err(|e| shape("stock.move", e))?;
            let demand = movement
                .f64("product_uom_qty")
                .map_err(|e| shape("stock.move", e))?
                .unwrap_or(0.0);
            let mut vals = Map::new();
            if self.legacy() {
                vals.insert("quantity_done".into(), json!(demand));
            } else {
                vals.insert("quantity".into(), json!(demand));
                vals.insert("picked".into(), json!(true));
            }
            self.odoo.write(MOVE, &[id], vals, None).await?;
        }
        let context = Context::new().skip_sms(true);
        let answer = self
            .call(PICKING, "button_validate", picking, Some(&context))
            .await?;
        let state = self
            .odoo
            .read(PICKING, &[picking], &["state"], None)
            .await?
            .first()
            .map(|record| text(record, "state"))
            .transpose()?
            .unwrap_or_default();
        if state != "done" {
            return Err(WorkflowError::NoEffect {
                call: "button_validate",
                model: PICKING,
                id: picking,
                answer: summary(&answer),
                seen: format!("state {state}"),
            });
        }
        Ok(())
    }

    async fn call(
        &self,
        model: &str,
        method: &str,
        id: i64,
        context: Option<&Context>,
    ) -> Result<Value, WorkflowError> {
        Ok(self
            .odoo
            .call_method(model, method, Some(&[id]), Map::new(), context)
            .await?)
    }
}

fn text(record: &Record, name: &'static str) -> Result<String, WorkflowError> {
    Ok(record
        .str(name)
        .map_err(|e| shape(name, e))?
        .unwrap_or_default()
        .to_owned())
}

/// An answer as short text: `true`, `null`, or the wizard it opened.
fn summary(answer: &Value) -> String {
    match answer.get("res_model").and_then(Value::as_str) {
        Some(model) => format!("the {model} wizard"),
        None => answer.to_string(),
    }
}

fn no_effect(
    call: &'static str,
    model: &'static str,
    id: i64,
    answer: &Value,
    after: &OrderView,
) -> WorkflowError {
    WorkflowError::NoEffect {
        call,
        model,
        id,
        answer: summary(answer),
        seen: format!(
            "order {}, delivery {}",
            after.order_state_text(),
            after.delivery_state()
        ),
    }
}
