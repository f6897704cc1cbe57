use odoo_rpc::domain::field;
use odoo_sim::dispatch::{self, ModelCall};
use odoo_sim::orm::{Database, Env};
use odoo_sim::{ADMIN_UID, OdooVersion};
use serde_json::{Map, Value, json};

fn call(
    database: &mut Database,
    context: Value,
    model: &str,
    method: &str,
    ids: &[i64],
    params: Value,
) -> Result<Value, odoo_sim::OdooException> {
    let mut params: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    params.insert("context".into(), context.clone());
    let env = Env::new(ADMIN_UID, 1_714_557_600_000_000)
        .with_context(context.as_object().cloned().unwrap_or_default());
    let call = ModelCall {
        model: model.into(),
        method: method.into(),
        ids: Some(ids.to_vec()),
        params,
    };
    dispatch::run(database, &env, &call)
}

fn field_of(database: &mut Database, model: &str, id: i64, name: &str) -> Value {
    call(
        database,
        json!({}),
        model,
        "read",
        &[id],
        json!({"fields": [name]}),
    )
    .unwrap()[0][name]
        .clone()
}

fn new_order(database: &mut Database) -> i64 {
    let partner = call(
        database,
        json!({}),
        "res.partner",
        "create",
        &[],
        json!({"vals_list": [{"name": "Cliente Ñandú", "phone": "+20 100"}]}),
    )
    .unwrap()[0]
        .as_i64()
        .unwrap();
    let product = call(
        database,
        json!({}),
        "product.template",
        "create",
        &[],
        json!({"vals_list": [{"name": "Coffee", "list_price": 29.95}]}),
    )
    .unwrap()[0]
        .as_i64()
        .unwrap();
    let variant = field_of(database, "product.template", product, "product_variant_ids")[0]
        .as_i64()
        .unwrap();
    call(
        database,
        json!({}),
        "sale.order",
        "create",
        &[],
        json!({"vals_list": [{"partner_id": partner, "order_line": [[0, 0, {"product_id": variant, "product_uom_qty": 3}], [0, 0, {"product_id": variant, "product_uom_qty": 0}]]}]}),
    )
    .unwrap()[0]
        .as_i64()
        .unwrap()
}

#[test]
fn confirm_creates_a_delivery_and_cancel_needs_the_context_key() {
    for version in [
        OdooVersion::V16,
        OdooVersion::V17,
        OdooVersion::V18,
        OdooVersion::V19,
    ] {
        let mut database = Database::new(version);
        let order = new_order(&mut database);
        assert_eq!(
            field_of(&mut database, "sale.order", order, "amount_total"),
            json!(89.85)
        );
        assert_eq!(
            call(
                &mut database,
                json!({}),
                "sale.order",
                "action_confirm",
                &[order],
                json!({})
            )
            .unwrap(),
            json!(true)
        );
        assert_eq!(
            field_of(&mut database, "sale.order", order, "state"),
            json!("sale")
        );
        let pickings = field_of(&mut database, "sale.order", order, "picking_ids");
        let picking = pickings[0].as_i64().unwrap();
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "state"),
            json!("confirmed")
        );
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "move_ids")
                .as_array()
                .unwrap()
                .len(),
            1,
            "zero-quantity line gets no move"
        );
        // A confirmed order answers the cancel wizard and stays as it was.
        let wizard = call(
            &mut database,
            json!({}),
            "sale.order",
            "action_cancel",
            &[order],
            json!({}),
        )
        .unwrap();
        assert_eq!(wizard["res_model"], json!("sale.order.cancel"));
        assert_eq!(
            field_of(&mut database, "sale.order", order, "state"),
            json!("sale")
        );
        assert_eq!(
            call(
                &mut database,
                json!({"disable_cancel_warning": true}),
                "sale.order",
                "action_cancel",
                &[order],
                json!({})
            )
            .unwrap(),
            json!(true)
        );
        assert_eq!(
            field_of(&mut database, "sale.order", order, "state"),
            json!("cancel")
        );
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "state"),
            json!("cancel")
        );
        assert_eq!(
            call(
                &mut database,
                json!({}),
                "sale.order",
                "action_draft",
                &[order],
                json!({})
            )
            .unwrap(),
            json!(true)
        );
        assert_eq!(
            field_of(&mut database, "sale.order", order, "state"),
            json!("draft")
        );
        let error = call(
            &mut database,
            json!({}),
            "sale.order",
            "action_confirm",
            &[order, 9999],
            json!({}),
        )
        .unwrap_err();
        assert_eq!(error.name, "odoo.exceptions.MissingError");
    }
}

#[test]
fn validating_a_delivery_goes_through_the_wizards_a_real_server_shows() {
    for version in [OdooVersion::V16, OdooVersion::V17, OdooVersion::V18] {
        let mut database = Database::new(version);
        let order = new_order(&mut database);
        call(
            &mut database,
            json!({}),
            "sale.order",
            "action_confirm",
            &[order],
            json!({}),
        )
        .unwrap();
        let picking = field_of(&mut database, "sale.order", order, "picking_ids")[0]
            .as_i64()
            .unwrap();
        if version == OdooVersion::V16 {
            let wizard = call(
                &mut database,
                json!({}),
                "stock.picking",
                "button_validate",
                &[picking],
                json!({}),
            )
            .unwrap();
            assert_eq!(
                wizard["res_model"],
                json!("stock.immediate.transfer"),
                "{version}"
            );
        } else {
            let error = call(
                &mut database,
                json!({}),
                "stock.picking",
                "button_validate",
                &[picking],
                json!({}),
            )
            .unwrap_err();
            assert_eq!(error.name, "odoo.exceptions.UserError", "{version}");
        }
        call(
            &mut database,
            json!({}),
            "stock.picking",
            "action_assign",
            &[picking],
            json!({}),
        )
        .unwrap();
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "state"),
            json!("assigned")
        );
        let context = if version == OdooVersion::V16 {
            json!({"skip_immediate": true})
        } else {
            json!({})
        };
        let wizard = call(
            &mut database,
            context,
            "stock.picking",
            "button_validate",
            &[picking],
            json!({}),
        )
        .unwrap();
        assert_eq!(wizard["res_model"], json!("confirm.stock.sms"), "{version}");
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "state"),
            json!("assigned")
        );
        let done = call(
            &mut database,
            json!({"skip_sms": true, "skip_immediate": true}),
            "stock.picking",
            "button_validate",
            &[picking],
            json!({}),
        )
        .unwrap();
        assert_eq!(done, json!(true));
        assert_eq!(
            field_of(&mut database, "stock.picking", picking, "state"),
            json!("done")
        );
        assert_eq!(
            field_of(&mut database, "sale.order", order, "delivery_status"),
            json!("full")
        );

        // Returns: lines start at 0 and the wizard refuses until a quantity is written.
        let wizard = call(
            &mut database,
            json!({}),
            "stock.return.picking",
            "create",
            &[],
            json!({"vals_list": [{"picking_id": picking}]}),
        )
        .unwrap()[0]
            .as_i64()
            .unwrap();
        let error = call(
            &mut database,
            json!({}),
            "stock.return.picking",
            "action_create_returns",
            &[wizard],
            json!({}),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "Please specify at least one non-zero quantity."
        );
        let lines = field_of(
            &mut database,
            "stock.return.picking",
            wizard,
            "product_return_moves",
        );
        for line in lines.as_array().unwrap() {
            let line = line.as_i64().unwrap();
            let quantity = field_of(
                &mut database,
                "stock.return.picking.line",
                line,
                "move_quantity",
            );
            call(
                &mut database,
                json!({}),
                "stock.return.picking.line",
                "write",
                &[line],
                json!({"vals": {"quantity": quantity}}),
            )
            .unwrap();
        }
        let action = call(
            &mut database,
            json!({}),
            "stock.return.picking",
            "action_create_returns",
            &[wizard],
            json!({}),
        )
        .unwrap();
        let returned = action["res_id"].as_i64().unwrap();
        assert_eq!(
            field_of(
                &mut database,
                "stock.picking",
                returned,
                "picking_type_code"
            ),
            json!("incoming")
        );
        assert_eq!(
            field_of(&mut database, "stock.picking", returned, "return_id")[0],
            json!(picking)
        );
    }
}

#[test]
fn locking_differs_between_16_and_17_plus() {
    let mut database = Database::new(OdooVersion::V18);
    let order = new_order(&mut database);
    call(
        &mut database,
        json!({}),
        "sale.order",
        "action_confirm",
        &[order],
        json!({}),
    )
    .unwrap();
    assert_eq!(
        call(
            &mut database,
            json!({}),
            "sale.order",
            "action_lock",
            &[order],
            json!({})
        )
        .unwrap(),
        Value::Null
    );
    assert_eq!(
        field_of(&mut database, "sale.order", order, "locked"),
        json!(true)
    );
    assert_eq!(
        field_of(&mut database, "sale.order", order, "state"),
        json!("sale")
    );
    let error = call(
        &mut database,
        json!({"disable_cancel_warning": true}),
        "sale.order",
        "action_cancel",
        &[order],
        json!({}),
    )
    .unwrap_err();
    assert!(error.message.contains("locked"));

    let mut legacy = Database::new(OdooVersion::V16);
    let order = new_order(&mut legacy);
    call(
        &mut legacy,
        json!({}),
        "sale.order",
        "action_confirm",
        &[order],
        json!({}),
    )
    .unwrap();
    call(
        &mut legacy,
        json!({}),
        "sale.order",
        "action_done",
        &[order],
        json!({}),
    )
    .unwrap();
    assert_eq!(
        field_of(&mut legacy, "sale.order", order, "state"),
        json!("done")
    );
    let error = call(
        &mut legacy,
        json!({}),
        "sale.order",
        "action_lock",
        &[order],
        json!({}),
    )
    .unwrap_err();
    assert_eq!(error.name, "builtins.AttributeError");
}

#[test]
fn private_methods_and_unknown_methods_are_refused() {
    let mut database = Database::new(OdooVersion::V18);
    let error = call(
        &mut database,
        json!({}),
        "sale.order",
        "_action_cancel",
        &[1],
        json!({}),
    )
    .unwrap_err();
    assert_eq!(error.name, "odoo.exceptions.AccessError");
    let error = call(
        &mut database,
        json!({}),
        "sale.order",
        "fly",
        &[1],
        json!({}),
    )
    .unwrap_err();
    assert_eq!(
        error.message,
        "The method 'fly' does not exist on the model 'sale.order'"
    );
    let found = database
        .search(
            &Env::new(ADMIN_UID, 0),
            "sale.order",
            &field("state").eq("sale"),
            0,
            None,
            None,
        )
        .unwrap();
    assert!(found.is_empty());
}

/// `sale.order.line.state` is `related='order_id.state', store=True` in Odoo: confirming the
/// order recomputes it, which is a write stamped with the transaction's time. A mirror that
/// filters lines on `state` relies on it to see the lines of an order confirmed later.
#[test]
fn confirming_an_order_stamps_its_lines_with_the_same_write_date() {
    let mut database = Database::new(OdooVersion::V18);
    let order = new_order(&mut database);
    let lines = field_of(&mut database, "sale.order", order, "order_line");
    let lines: Vec<i64> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    let created = field_of(&mut database, "sale.order.line", lines[0], "write_date");
    let later = 1_714_557_600_000_000 + 3_600_000_000;
    let at = |database: &mut Database, method: &str, ids: &[i64], params: Value| {
        let call = ModelCall {
            model: "sale.order".into(),
            method: method.into(),
            ids: Some(ids.to_vec()),
            params: params.as_object().cloned().unwrap_or_default(),
        };
        dispatch::run(database, &Env::new(ADMIN_UID, later), &call).unwrap()
    };
    at(
        &mut database,
        "write",
        &[order],
        json!({"vals": {"note": "no dependency"}}),
    );
    assert_eq!(
        field_of(&mut database, "sale.order.line", lines[0], "write_date"),
        created,
        "a field no stored line field follows leaves the lines alone"
    );
    at(&mut database, "action_confirm", &[order], json!({}));
    let confirmed = field_of(&mut database, "sale.order", order, "write_date");
    assert_eq!(confirmed, json!("2024-05-01 11:00:00"));
    for line in lines {
        assert_eq!(
            field_of(&mut database, "sale.order.line", line, "write_date"),
            confirmed
        );
        assert_eq!(
            field_of(&mut database, "sale.order.line", line, "state"),
            json!("sale")
        );
    }
}
