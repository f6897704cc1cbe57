//! Workflow methods through `call_method`, per version profile, with the transport `Auto`
//! picks (JSON-2 on 19, JSON-RPC before): wizards instead of work, `None` answers, and the
//! fields that differ between releases.

use crate::support::{Sim, no_key, quotation};
use odoo_rpc::{Context, Error, OdooClient, OdooErrorKind, Record, TransportChoice};
use odoo_sim::OdooVersion;
use serde_json::{Map, Value, json};

async fn call(
    client: &OdooClient,
    model: &str,
    method: &str,
    id: i64,
    context: Option<&Context>,
) -> Result<Value, Error> {
    client
        .call_method(model, method, Some(&[id]), Map::new(), context)
        .await
}

async fn read_one(client: &OdooClient, model: &str, id: i64, fields: &[&str]) -> Record {
    let mut rows = client.read(model, &[id], fields, None).await.unwrap();
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

async fn state(client: &OdooClient, model: &str, id: i64) -> String {
    read_one(client, model, id, &["state"])
        .await
        .str("state")
        .unwrap()
        .unwrap()
        .to_owned()
}

/// A confirmed order and its delivery.
async fn confirmed_order(client: &OdooClient) -> (i64, i64) {
    let order = quotation(client).await;
    assert_eq!(
        call(client, "sale.order", "action_confirm", order, None)
            .await
            .unwrap(),
        Value::Bool(true)
    );
    let pickings = read_one(client, "sale.order", order, &["picking_ids"])
        .await
        .x2many("picking_ids")
        .unwrap();
    assert_eq!(pickings.len(), 1);
    (order, pickings[0])
}

#[tokio::test]
async fn action_confirm_creates_a_delivery_on_every_version() {
    for version in OdooVersion::ALL {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (order, picking) = confirmed_order(&client).await;
        assert_eq!(
            state(&client, "sale.order", order).await,
            "sale",
            "{version}"
        );
        assert_eq!(state(&client, "stock.picking", picking).await, "confirmed");
        let moves = read_one(&client, "stock.picking", picking, &["move_ids"])
            .await
            .x2many("move_ids")
            .unwrap();
        assert_eq!(moves.len(), 1, "{version}");
        let order_row = read_one(&client, "sale.order", order, &["amount_total"]).await;
        assert_eq!(order_row.f64("amount_total").unwrap(), Some(89.85));
    }
}

#[tokio::test]
async fn action_cancel_answers_a_wizard_until_the_warning_is_disabled() {
    for version in OdooVersion::ALL {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (order, picking) = confirmed_order(&client).await;

        let wizard = call(&client, "sale.order", "action_cancel", order, None)
            .await
            .unwrap();
        assert_eq!(wizard["res_model"], json!("sale.order.cancel"), "{version}");
        assert_eq!(wizard["type"], json!("ir.actions.act_window"));
        assert_eq!(
            state(&client, "sale.order", order).await,
            "sale",
            "{version}: the wizard did nothing"
        );

        let done = call(
            &client,
            "sale.order",
            "action_cancel",
            order,
            Some(&Context::new().disable_cancel_warning(true)),
        )
        .await
        .unwrap();
        assert_eq!(done, Value::Bool(true));
        assert_eq!(
            state(&client, "sale.order", order).await,
            "cancel",
            "{version}"
        );
        assert_eq!(state(&client, "stock.picking", picking).await, "cancel");
    }
}

#[tokio::test]
async fn action_lock_answers_nothing_on_17_and_later_and_that_is_success() {
    for version in [
        OdooVersion::V17,
        OdooVersion::V18,
        OdooVersion::Saas18_2,
        OdooVersion::V19,
    ] {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (order, _) = confirmed_order(&client).await;
        let answer = call(&client, "sale.order", "action_lock", order, None)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e:?}"));
        assert_eq!(answer, Value::Null, "{version}");
        let row = read_one(&client, "sale.order", order, &["state", "locked"]).await;
        assert_eq!(row.bool("locked").unwrap(), Some(true), "{version}");
        assert_eq!(row.str("state").unwrap(), Some("sale"));
        // A locked order refuses to be cancelled: a UserError, not a wizard.
        let error = no_key(
            call(
                &client,
                "sale.order",
                "action_cancel",
                order,
                Some(&Context::new().disable_cancel_warning(true)),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::UserError);
        assert_eq!(
            call(&client, "sale.order", "action_unlock", order, None)
                .await
                .unwrap(),
            Value::Null
        );
        let row = read_one(&client, "sale.order", order, &["locked"]).await;
        assert_eq!(row.bool("locked").unwrap(), Some(false));
    }
}

#[tokio::test]
async fn odoo_16_locks_with_the_done_state_instead() {
    let sim = Sim::start(OdooVersion::V16).await;
    let client = sim.client(TransportChoice::Auto);
    let (order, _) = confirmed_order(&client).await;
    let error = no_key(
        call(&client, "sale.order", "action_lock", order, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(error.odoo().unwrap().name, "builtins.AttributeError");
    assert!(!error.is_retryable());
    assert_eq!(
        call(&client, "sale.order", "action_done", order, None)
            .await
            .unwrap(),
        Value::Bool(true)
    );
    assert_eq!(state(&client, "sale.order", order).await, "done");
    let (present, missing) = client
        .existing_fields("sale.order", &["state", "locked"])
        .await
        .unwrap();
    assert_eq!(present, vec!["state"]);
    assert_eq!(missing, vec!["locked"]);
}

#[tokio::test]
async fn button_validate_answers_the_sms_wizard_until_skip_sms() {
    for version in OdooVersion::ALL {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (order, picking) = confirmed_order(&client).await;
        let legacy = version == OdooVersion::V16;

        // Nothing reserved yet: 16 offers the immediate transfer, 17+ refuses.
        match call(&client, "stock.picking", "button_validate", picking, None).await {
            Ok(wizard) if legacy => {
                assert_eq!(wizard["res_model"], json!("stock.immediate.transfer"))
            }
            Err(error) if !legacy => {
                assert_eq!(
                    no_key(error).odoo().unwrap().kind,
                    OdooErrorKind::UserError,
                    "{version}"
                )
            }
            other => panic!("{version}: unexpected {other:?}"),
        }
        assert_eq!(state(&client, "stock.picking", picking).await, "confirmed");

        assert_eq!(
            call(&client, "stock.picking", "action_assign", picking, None)
                .await
                .unwrap(),
            Value::Bool(true)
        );
        assert_eq!(state(&client, "stock.picking", picking).await, "assigned");

        let base = if legacy {
            Context::new().set("skip_immediate", true)
        } else {
            Context::new()
        };
        let wizard = call(
            &client,
            "stock.picking",
            "button_validate",
            picking,
            Some(&base),
        )
        .await
        .unwrap();
        assert_eq!(wizard["res_model"], json!("confirm.stock.sms"), "{version}");
        assert_eq!(
            state(&client, "stock.picking", picking).await,
            "assigned",
            "{version}: the wizard validated nothing"
        );

        let done = call(
            &client,
            "stock.picking",
            "button_validate",
            picking,
            Some(&base.clone().skip_sms(true)),
        )
        .await
        .unwrap();
        assert_eq!(done, Value::Bool(true), "{version}");
        assert_eq!(state(&client, "stock.picking", picking).await, "done");
        let order_row = read_one(&client, "sale.order", order, &["delivery_status"]).await;
        assert_eq!(order_row.str("delivery_status").unwrap(), Some("full"));

        // The move quantity lives in different fields: quantity_done on 16, quantity and
        // picked from 17 on.
        let moves = read_one(&client, "stock.picking", picking, &["move_ids"])
            .await
            .x2many("move_ids")
            .unwrap();
        let (present, missing) = client
            .existing_fields("stock.move", &["quantity_done", "quantity", "picked"])
            .await
            .unwrap();
        if legacy {
            assert_eq!(present, vec!["quantity_done"]);
            assert_eq!(missing, vec!["quantity", "picked"]);
            let row = read_one(&client, "stock.move", moves[0], &["quantity_done"]).await;
            assert_eq!(row.f64("quantity_done").unwrap(), Some(3.0));
        } else {
            assert_eq!(present, vec!["quantity", "picked"], "{version}");
            assert_eq!(missing, vec!["quantity_done"]);
            let row = read_one(&client, "stock.move", moves[0], &["quantity", "picked"]).await;
            assert_eq!(row.f64("quantity").unwrap(), Some(3.0));
            assert_eq!(row.bool("picked").unwrap(), Some(true));
        }

        // Validating again is a business error, not something to retry.
        let error = no_key(
            call(
                &client,
                "stock.picking",
                "button_validate",
                picking,
                Some(&base.skip_sms(true)),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::UserError);
        assert_eq!(sim.sim.call_count("stock.picking", "button_validate"), 4);
    }
}

#[tokio::test]
async fn partner_mobile_is_gone_from_saas_18_2_on() {
    for version in OdooVersion::ALL {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (present, missing) = client
            .existing_fields("res.partner", &["phone", "mobile"])
            .await
            .unwrap();
        let gone = matches!(version, OdooVersion::Saas18_2 | OdooVersion::V19);
        if gone {
            assert_eq!(present, vec!["phone"], "{version}");
            assert_eq!(missing, vec!["mobile"], "{version}");
            let error = no_key(
                client
                    .read("res.partner", &[3], &["mobile"], None)
                    .await
                    .unwrap_err(),
            );
            assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::ValueError);
            assert!(
                error.to_string().contains("Invalid field 'mobile'"),
                "{error}"
            );
        } else {
            assert_eq!(present, vec!["phone", "mobile"], "{version}");
            assert!(missing.is_empty());
            client
                .read("res.partner", &[3], &["mobile"], None)
                .await
                .unwrap();
        }
        // fields_get was asked once; the answer is cached per model.
        assert_eq!(sim.sim.call_count("res.partner", "fields_get"), 1);
    }
}

#[tokio::test]
async fn a_context_keyword_is_merged_over_the_context_argument() {
    for version in [OdooVersion::V18, OdooVersion::V19] {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let (_, picking) = confirmed_order(&client).await;
        call(&client, "stock.picking", "action_assign", picking, None)
            .await
            .unwrap();
        let mut kwargs = Map::new();
        kwargs.insert("context".into(), json!({"skip_sms": true}));
        let answer = client
            .call_method(
                "stock.picking",
                "button_validate",
                Some(&[picking]),
                kwargs,
                Some(&Context::new().skip_sms(false).lang("en_US")),
            )
            .await
            .unwrap();
        assert_eq!(answer, Value::Bool(true), "{version}");
        assert_eq!(state(&client, "stock.picking", picking).await, "done");
    }
}
