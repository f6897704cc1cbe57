//! Custom fields over the API (as Studio makes them) and custom models declared by a test.

use odoo_rpc::{ClientConfig, Domain, OdooClient, SearchReadOptions};
use odoo_sim::schema::{FieldDef, FieldType, ModelDef};
use odoo_sim::{OdooSim, OdooVersion, SimConfig};
use serde_json::{Map, Value, json};

fn vals(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

async fn client(sim: &OdooSim, url: String) -> OdooClient {
    let config = sim.config().clone();
    OdooClient::new(ClientConfig::new(
        url,
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap()
}

#[tokio::test]
async fn x_fields_created_over_the_api_are_read_and_written_like_any_other() {
    for version in [OdooVersion::V18, OdooVersion::V19] {
        let sim = OdooSim::new(SimConfig {
            version,
            ..SimConfig::default()
        });
        let running = sim.clone().serve_on_loopback().await.unwrap();
        let odoo = client(&sim, running.url()).await;
        let lead = odoo
            .create("crm.lead", vec![vals(json!({"name": "Before"}))], None)
            .await
            .unwrap()[0];
        let models = odoo
            .search_read(
                "ir.model",
                &SearchReadOptions::new(
                    Domain::from_json(&json!([["model", "=", "crm.lead"]])).unwrap(),
                )
                .fields(["id", "model"]),
            )
            .await
            .unwrap();
        assert_eq!(models.len(), 1, "{version:?}");
        let model_id = models[0].id().unwrap();
        let created = odoo
            .create(
                "ir.model.fields",
                vec![
                    vals(json!({"name": "x_match_status", "model_id": model_id, "ttype": "char", "field_description": "Match status"})),
                    vals(json!({"name": "x_match_response", "model_id": model_id, "ttype": "text", "field_description": "Match response"})),
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(created.len(), 2);
        odoo.invalidate_fields(None);
        let fields = odoo.fields_get("crm.lead").await.unwrap();
        assert_eq!(fields["x_match_status"].field_type, "char");
        assert_eq!(fields["x_match_response"].string, "Match response");
        // The record made before the field has it empty.
        let before = odoo
            .read("crm.lead", &[lead], &["x_match_status"], None)
            .await
            .unwrap();
        assert_eq!(before[0].raw("x_match_status"), Some(&json!(false)));
        odoo.write(
            "crm.lead",
            &[lead],
            vals(json!({"x_match_status": "matched"})),
            None,
        )
        .await
        .unwrap();
        let after = odoo
            .read("crm.lead", &[lead], &["x_match_status"], None)
            .await
            .unwrap();
        assert_eq!(after[0].raw("x_match_status"), Some(&json!("matched")));
        // As on Odoo: only x_ names, and only once.
        let refused = odoo
            .create(
                "ir.model.fields",
                vec![vals(
                    json!({"name": "match_status", "model_id": model_id, "ttype": "char"}),
                )],
                None,
            )
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("x_"), "{refused}");
        let twice = odoo
            .create(
                "ir.model.fields",
                vec![vals(
                    json!({"name": "x_match_status", "model_id": model_id, "ttype": "char"}),
                )],
                None,
            )
            .await
            .unwrap_err();
        assert!(twice.to_string().contains("unique"), "{twice}");
    }
}

#[tokio::test]
async fn a_test_declares_the_seeds_intake_model() {
    let sim = OdooSim::new(SimConfig::default());
    sim.with_database(|database, _| {
        database.declare_model(
            ModelDef::new("plasticos.intake", "Intake")
                .field(FieldDef::new("name", "Name", FieldType::Char).required())
                .field(FieldDef::new("polymer", "Polymer", FieldType::Char))
                .field(FieldDef::new("quantity", "Quantity", FieldType::Float))
                .field(FieldDef::new(
                    "last_packet_id",
                    "Last packet",
                    FieldType::Char,
                ))
                .field(FieldDef::new(
                    "match_status",
                    "Match status",
                    FieldType::Char,
                ))
                .field(FieldDef::new(
                    "match_response",
                    "Match response",
                    FieldType::Text,
                )),
        );
    });
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let odoo = client(&sim, running.url()).await;
    let id = odoo
        .create(
            "plasticos.intake",
            vec![vals(
                json!({"name": "IN-1", "polymer": "HDPE", "quantity": 12.5}),
            )],
            None,
        )
        .await
        .unwrap()[0];
    let read = odoo
        .read(
            "plasticos.intake",
            &[id],
            &["polymer", "quantity", "match_status"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(read[0].raw("polymer"), Some(&json!("HDPE")));
    assert_eq!(read[0].raw("match_status"), Some(&json!(false)));
}
