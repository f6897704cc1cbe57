//! Workflow methods of `sale.order`, `stock.picking` and the return wizard, answering as a
//! real Odoo does over the external API (see `shared/reference/odoo18-workflows.md`):
//! wizards come back as window actions instead of the work being done, unless the context
//! carries the key that skips them.

use crate::error::{OdooException, OdooResult};
use crate::orm::{Database, Env, Mode};
use crate::values::Val;
use serde_json::{Map, Value, json};

/// Runs `model.method(ids)` if it is a workflow method the simulator knows.
/// `None` means "no such method here" (the caller then answers Odoo's AttributeError).
pub fn call(
    database: &mut Database,
    env: &Env,
    model: &str,
    method: &str,
    ids: &[i64],
) -> Option<OdooResult<Value>> {
    let result = match (model, method) {
        ("sale.order", "action_confirm") => order_confirm(database, env, ids),
        ("sale.order", "action_cancel") => order_cancel(database, env, ids),
        ("sale.order", "action_draft") => order_draft(database, env, ids),
        ("sale.order", "action_lock") if !database.version.has_sale_done_state() => {
            order_set_locked(database, env, ids, true)
        }
        ("sale.order", "action_unlock") if !database.version.has_sale_done_state() => {
            order_set_locked(database, env, ids, false)
        }
        ("sale.order", "action_done") if database.version.has_sale_done_state() => {
            order_set_state(database, env, ids, &["sale"], "done").map(|_| json!(true))
        }
        ("sale.order", "action_unlock") => {
            order_set_state(database, env, ids, &["done"], "sale").map(|_| json!(true))
        }
        ("stock.picking", "action_confirm") => {
            picking_confirm(database, env, ids).map(|_| json!(true))
        }
        ("stock.picking", "action_assign") => {
            picking_assign(database, env, ids).map(|_| json!(true))
        }
        ("stock.picking", "button_validate") => picking_validate(database, env, ids),
        ("stock.picking", "action_cancel") => {
            picking_cancel(database, env, ids).map(|_| json!(true))
        }
        ("stock.return.picking", "action_create_returns") => create_returns(database, env, ids),
        ("stock.return.picking", "create_returns") if database.version.major() < 18 => {
            create_returns(database, env, ids)
        }
        _ => return None,
    };
    Some(result)
}

fn existing(database: &Database, env: &Env, model: &str, ids: &[i64]) -> OdooResult<()> {
    let definition = database.model(model)?;
    database.check_access(env, &definition, Mode::Write)?;
    database.ensure_exist(env, model, ids)
}

fn text(database: &Database, model: &str, id: i64, field: &str) -> String {
    database
        .value_by_name(model, id, field)
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn write(database: &mut Database, env: &Env, model: &str, id: i64, vals: Value) -> OdooResult<()> {
    let Value::Object(vals) = vals else {
        return Ok(());
    };
    let definition = database.model(model)?;
    database.apply_vals(env, &definition, id, &vals)
}

fn order_confirm(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<Value> {
    existing(database, env, "sale.order", ids)?;
    for id in ids {
        let state = text(database, "sale.order", *id, "state");
        if state != "draft" && state != "sent" {
            return Err(OdooException::user_error(
                "The following orders are not in a state requiring confirmation: ".to_owned()
                    + &text(database, "sale.order", *id, "name"),
            ));
        }
    }
    for id in ids {
        write(
            database,
            env,
            "sale.order",
            *id,
            json!({"state": "sale", "invoice_status": "to invoice", "date_order": crate::values::format_datetime(env.now)}),
        )?;
        create_delivery(database, env, *id)?;
        // `action_confirm` ends with `action_lock()` (16: `action_done()`) when the user has
        // the group of "Lock Confirmed Sales".
        if database.lock_confirmed_sales {
            let locked = if database.version.has_sale_done_state() {
                json!({"state": "done"})
            } else {
                json!({"locked": true})
            };
            write(database, env, "sale.order", *id, locked)?;
        }
    }
    Ok(json!(true))
}

/// `sale_stock`'s `_action_launch_stock_rule`: one outgoing picking with a move per
/// storable line, confirmed (the simulator has no stock levels, so it waits for `action_assign`).
fn create_delivery(database: &mut Database, env: &Env, order: i64) -> OdooResult<()> {
    let lines: Vec<i64> = database
        .value_by_name("sale.order", order, "order_line")
        .as_refs()
        .to_vec();
    let mut moves = Vec::new();
    for line in lines {
        let quantity = database
            .value_by_name("sale.order.line", line, "product_uom_qty")
            .as_f64();
        let Some(product) = database
            .value_by_name("sale.order.line", line, "product_id")
            .as_ref_id()
        else {
            continue;
        };
        if quantity <= 0.0 {
            continue;
        }
        moves.push(json!([0, 0, {
            "name": database.display_name("product.product", product),
            "product_id": product,
            "product_uom_qty": quantity,
            "sale_line_id": line,
            "state": "confirmed",
        }]));
    }
    if moves.is_empty() {
        return Ok(());
    }
    let partner = database
        .value_by_name("sale.order", order, "partner_shipping_id")
        .as_ref_id();
    let vals = json!({
        "partner_id": partner,
        "origin": text(database, "sale.order", order, "name"),
        "sale_id": order,
        "picking_type_code": "outgoing",
        "state": "confirmed",
        "move_ids": moves,
    });
    let Value::Object(vals) = vals else {
        return Ok(());
    };
    database.create(env, "stock.picking", &[vals])?;
    Ok(())
}

fn order_cancel(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<Value> {
    existing(database, env, "sale.order", ids)?;
    // 17+: the `locked` flag; 16: the `done` state (what a lock was then).
    if ids.iter().any(|id| {
        database.value_by_name("sale.order", *id, "locked") == Val::Bool(true)
            || (database.version.has_sale_done_state()
                && text(database, "sale.order", *id, "state") == "done")
    }) {
        return Err(OdooException::user_error(
            "You cannot cancel a locked order. Please unlock it first if you want to cancel it.",
        ));
    }
    // `_show_cancel_wizard`: any non-draft order gets the wizard unless the context opts out.
    let show_wizard = !env.flag("disable_cancel_warning")
        && ids
            .iter()
            .any(|id| text(database, "sale.order", *id, "state") != "draft");
    if show_wizard {
        let first = ids.first().copied().unwrap_or_default();
        return Ok(json!({
            "name": "Cancel Sales Order",
            "view_mode": "form",
            "res_model": "sale.order.cancel",
            "view_id": [1207, "sale.order.cancel.form"],
            "type": "ir.actions.act_window",
            "context": {"default_order_id": first},
            "target": "new",
        }));
    }
    for id in ids {
        let pickings: Vec<i64> = database
            .value_by_name("sale.order", *id, "picking_ids")
            .as_refs()
            .to_vec();
        let open: Vec<i64> = pickings
            .into_iter()
            .filter(|picking| {
                !matches!(
                    text(database, "stock.picking", *picking, "state").as_str(),
                    "done" | "cancel"
                )
            })
            .collect();
        picking_cancel(database, env, &open)?;
        write(database, env, "sale.order", *id, json!({"state": "cancel"}))?;
    }
    Ok(json!(true))
}

fn order_draft(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<Value> {
    existing(database, env, "sale.order", ids)?;
    // Odoo filters silently: only cancelled or sent quotations go back to draft.
    for id in ids {
        if matches!(
            text(database, "sale.order", *id, "state").as_str(),
            "cancel" | "sent"
        ) {
            write(database, env, "sale.order", *id, json!({"state": "draft"}))?;
        }
    }
    Ok(json!(true))
}

/// `action_lock` returns None in 17+: the JSON-RPC answer then has no `result` key.
fn order_set_locked(
    database: &mut Database,
    env: &Env,
    ids: &[i64],
    locked: bool,
) -> OdooResult<Value> {
    existing(database, env, "sale.order", ids)?;
    for id in ids {
        write(database, env, "sale.order", *id, json!({"locked": locked}))?;
    }
    Ok(Value::Null)
}

fn order_set_state(
    database: &mut Database,
    env: &Env,
    ids: &[i64],
    from: &[&str],
    to: &str,
) -> OdooResult<()> {
    existing(database, env, "sale.order", ids)?;
    for id in ids {
        if from.contains(&text(database, "sale.order", *id, "state").as_str()) {
            write(database, env, "sale.order", *id, json!({"state": to}))?;
        }
    }
    Ok(())
}

fn moves_of(database: &Database, picking: i64) -> Vec<i64> {
    database
        .value_by_name("stock.picking", picking, "move_ids")
        .as_refs()
        .to_vec()
}

fn set_moves(database: &mut Database, env: &Env, picking: i64, vals: Value) -> OdooResult<()> {
    for movement in moves_of(database, picking) {
        write(database, env, "stock.move", movement, vals.clone())?;
    }
    Ok(())
}

fn picking_confirm(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<()> {
    existing(database, env, "stock.picking", ids)?;
    for id in ids {
        if text(database, "stock.picking", *id, "state") == "draft" {
            set_moves(database, env, *id, json!({"state": "confirmed"}))?;
            write(
                database,
                env,
                "stock.picking",
                *id,
                json!({"state": "confirmed"}),
            )?;
        }
    }
    Ok(())
}

/// Reserves everything: the simulator has unlimited stock.
fn picking_assign(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<()> {
    picking_confirm(database, env, ids)?;
    for id in ids {
        let state = text(database, "stock.picking", *id, "state");
        if !matches!(state.as_str(), "confirmed" | "waiting" | "assigned") {
            continue;
        }
        for movement in moves_of(database, *id) {
            let demand = database
                .value_by_name("stock.move", movement, "product_uom_qty")
                .as_f64();
            let reserved = if database.version.has_quantity_done() {
                json!({"state": "assigned", "reserved_availability": demand})
            } else {
                json!({"state": "assigned", "quantity": demand})
            };
            write(database, env, "stock.move", movement, reserved)?;
        }
        write(
            database,
            env,
            "stock.picking",
            *id,
            json!({"state": "assigned"}),
        )?;
    }
    Ok(())
}

fn wizard(name: &str, res_model: &str, ids: &[i64]) -> Value {
    json!({
        "name": name,
        "type": "ir.actions.act_window",
        "res_model": res_model,
        "view_mode": "form",
        "views": [[false, "form"]],
        "target": "new",
        "context": {"button_validate_picking_ids": ids, "default_pick_ids": ids.iter().map(|id| [4, *id]).collect::<Vec<_>>()},
    })
}

fn picking_validate(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<Value> {
    existing(database, env, "stock.picking", ids)?;
    let legacy = database.version.has_quantity_done();
    for id in ids {
        let state = text(database, "stock.picking", *id, "state");
        if matches!(state.as_str(), "done" | "cancel") {
            return Err(OdooException::user_error(format!(
                "You cannot validate a transfer that is {}: {}",
                if state == "done" {
                    "already done"
                } else {
                    "cancelled"
                },
                text(database, "stock.picking", *id, "name")
            )));
        }
        if state == "draft" {
            picking_confirm(database, env, &[*id])?;
        }
    }
    let done_field = if legacy { "quantity_done" } else { "quantity" };
    let quantities = |database: &Database, id: i64| -> (f64, f64) {
        moves_of(database, id)
            .iter()
            .fold((0.0, 0.0), |(done, demand), movement| {
                (
                    done + database
                        .value_by_name("stock.move", *movement, done_field)
                        .as_f64(),
                    demand
                        + database
                            .value_by_name("stock.move", *movement, "product_uom_qty")
                            .as_f64(),
                )
            })
    };
    if legacy
        && !env.flag("skip_immediate")
        && ids.iter().any(|id| quantities(database, *id).0 <= 0.0)
    {
        // Odoo 16: nothing done yet → the immediate transfer wizard.
        return Ok(wizard(
            "Immediate Transfer?",
            "stock.immediate.transfer",
            ids,
        ));
    }
    if !legacy && ids.iter().any(|id| quantities(database, *id).0 <= 0.0) {
        return Err(OdooException::user_error(
            "You cannot validate a transfer if no quantities are reserved nor done. You can use the info button on the top right corner of your screen to know why the picking is not reserved.",
        ));
    }
    // stock_sms: outgoing deliveries ask for SMS confirmation first.
    let outgoing = ids
        .iter()
        .any(|id| text(database, "stock.picking", *id, "picking_type_code") == "outgoing");
    if outgoing && !env.flag("skip_sms") {
        return Ok(wizard("SMS", "confirm.stock.sms", ids));
    }
    let short = ids.iter().any(|id| {
        let (done, demand) = quantities(database, *id);
        done > 0.0 && done < demand
    });
    if short && !env.flag("skip_backorder") && !env.flag("cancel_backorder") {
        return Ok(wizard(
            "Create Backorder?",
            "stock.backorder.confirmation",
            ids,
        ));
    }
    for id in ids {
        for movement in moves_of(database, *id) {
            let mut vals = json!({"state": "done"});
            if legacy
                && database
                    .value_by_name("stock.move", movement, "quantity_done")
                    .as_f64()
                    <= 0.0
            {
                let demand = database
                    .value_by_name("stock.move", movement, "product_uom_qty")
                    .as_f64();
                vals["quantity_done"] = json!(demand);
            }
            if !legacy {
                vals["picked"] = json!(true);
            }
            write(database, env, "stock.move", movement, vals)?;
            deliver_line(database, env, movement)?;
        }
        write(
            database,
            env,
            "stock.picking",
            *id,
            json!({"state": "done", "date_done": crate::values::format_datetime(env.now)}),
        )?;
        touch_order(database, env, *id)?;
    }
    Ok(json!(true))
}

/// A delivered move raises `qty_delivered` on its sale line (and so the order's write_date).
fn deliver_line(database: &mut Database, env: &Env, movement: i64) -> OdooResult<()> {
    let Some(line) = database
        .value_by_name("stock.move", movement, "sale_line_id")
        .as_ref_id()
    else {
        return Ok(());
    };
    let field = if database.version.has_quantity_done() {
        "quantity_done"
    } else {
        "quantity"
    };
    let quantity = database
        .value_by_name("stock.move", movement, field)
        .as_f64();
    let delivered = database
        .value_by_name("sale.order.line", line, "qty_delivered")
        .as_f64();
    let incoming = database
        .value_by_name("stock.move", movement, "picking_id")
        .as_ref_id()
        .is_some_and(|picking| {
            text(database, "stock.picking", picking, "picking_type_code") == "incoming"
        });
    let new_quantity = if incoming {
        delivered - quantity
    } else {
        delivered + quantity
    };
    write(
        database,
        env,
        "sale.order.line",
        line,
        json!({"qty_delivered": new_quantity}),
    )
}

/// `delivery_status` is stored on a real sale.order, so a picking change rewrites the order.
fn touch_order(database: &mut Database, env: &Env, picking: i64) -> OdooResult<()> {
    if let Some(order) = database
        .value_by_name("stock.picking", picking, "sale_id")
        .as_ref_id()
    {
        let model = database.model("sale.order")?;
        database.touch(env, &model, order);
    }
    Ok(())
}

fn picking_cancel(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<()> {
    existing(database, env, "stock.picking", ids)?;
    for id in ids {
        if text(database, "stock.picking", *id, "state") == "done" {
            return Err(OdooException::user_error(
                "You cannot cancel a stock move that has been set to 'Done'. Create a return in order to reverse the moves which took place.",
            ));
        }
    }
    for id in ids {
        set_moves(database, env, *id, json!({"state": "cancel"}))?;
        write(
            database,
            env,
            "stock.picking",
            *id,
            json!({"state": "cancel"}),
        )?;
        touch_order(database, env, *id)?;
    }
    Ok(())
}

/// `stock.return.picking` create: one line per done move, at quantity 0 (Odoo 18).
pub fn fill_return_wizard(database: &mut Database, env: &Env, wizard_id: i64) -> OdooResult<()> {
    let Some(picking) = database
        .value_by_name("stock.return.picking", wizard_id, "picking_id")
        .as_ref_id()
    else {
        return Ok(());
    };
    if text(database, "stock.picking", picking, "state") != "done" {
        return Err(OdooException::user_error(
            "You may only return Done pickings.",
        ));
    }
    let field = if database.version.has_quantity_done() {
        "quantity_done"
    } else {
        "quantity"
    };
    let mut lines = Vec::new();
    for movement in moves_of(database, picking) {
        let Some(product) = database
            .value_by_name("stock.move", movement, "product_id")
            .as_ref_id()
        else {
            continue;
        };
        let quantity = database
            .value_by_name("stock.move", movement, field)
            .as_f64();
        let mut line = Map::new();
        line.insert("wizard_id".into(), json!(wizard_id));
        line.insert("product_id".into(), json!(product));
        line.insert("move_id".into(), json!(movement));
        line.insert("quantity".into(), json!(0.0));
        line.insert("move_quantity".into(), json!(quantity));
        lines.push(line);
    }
    database.create(env, "stock.return.picking.line", &lines)?;
    Ok(())
}

fn create_returns(database: &mut Database, env: &Env, ids: &[i64]) -> OdooResult<Value> {
    existing(database, env, "stock.return.picking", ids)?;
    let wizard_id = ids.first().copied().unwrap_or_default();
    let Some(original) = database
        .value_by_name("stock.return.picking", wizard_id, "picking_id")
        .as_ref_id()
    else {
        return Err(OdooException::user_error("No picking to return."));
    };
    let lines: Vec<i64> = database
        .value_by_name("stock.return.picking", wizard_id, "product_return_moves")
        .as_refs()
        .to_vec();
    let mut moves = Vec::new();
    for line in &lines {
        let quantity = database
            .value_by_name("stock.return.picking.line", *line, "quantity")
            .as_f64();
        if quantity <= 0.0 {
            continue;
        }
        let product = database
            .value_by_name("stock.return.picking.line", *line, "product_id")
            .as_ref_id();
        let sale_line = database
            .value_by_name("stock.return.picking.line", *line, "move_id")
            .as_ref_id()
            .and_then(|movement| {
                database
                    .value_by_name("stock.move", movement, "sale_line_id")
                    .as_ref_id()
            });
        moves.push(json!([0, 0, {
            "name": product.map(|p| database.display_name("product.product", p)).unwrap_or_default(),
            "product_id": product,
            "product_uom_qty": quantity,
            "sale_line_id": sale_line,
            "state": "confirmed",
        }]));
    }
    if moves.is_empty() {
        return Err(OdooException::user_error(
            "Please specify at least one non-zero quantity.",
        ));
    }
    let vals = json!({
        "partner_id": database.value_by_name("stock.picking", original, "partner_id").as_ref_id(),
        "origin": format!("Return of {}", text(database, "stock.picking", original, "name")),
        "sale_id": database.value_by_name("stock.picking", original, "sale_id").as_ref_id(),
        "picking_type_code": "incoming",
        "return_id": original,
        "state": "confirmed",
        "move_ids": moves,
    });
    let Value::Object(vals) = vals else {
        return Ok(Value::Null);
    };
    let created = database.create(env, "stock.picking", &[vals])?;
    let new_id = created.first().copied().unwrap_or_default();
    picking_assign(database, env, &[new_id])?;
    Ok(json!({
        "name": text(database, "stock.picking", new_id, "name"),
        "view_mode": "form,list",
        "res_model": "stock.picking",
        "res_id": new_id,
        "type": "ir.actions.act_window",
        "context": {},
    }))
}
