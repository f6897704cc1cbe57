//! The data generator's CRM leads and customer invoices, seen through the simulator's
//! public API as an integration would see them.

use odoo_rpc::domain::{Domain, field};
use odoo_sim::orm::{Database, Env};
use odoo_sim::values::parse_datetime;
use odoo_sim::{ADMIN_UID, DataSpec, OdooSim, OdooVersion, SimConfig};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

fn archived_too(env: &Env) -> Env {
    let mut all = env.clone();
    all.context.insert("active_test".into(), json!(false));
    all
}

/// Every record of `model` (archived ones included), read with `fields`, in id order.
fn read_all(database: &Database, env: &Env, model: &str, fields: &[&str]) -> Vec<Value> {
    let all = archived_too(env);
    let ids = database
        .search(&all, model, &Domain::all(), 0, None, Some("id"))
        .unwrap();
    let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    database.read(&all, model, &ids, &fields).unwrap()
}

fn id_of(many2one: &Value) -> Option<i64> {
    many2one.get(0).and_then(Value::as_i64)
}

fn instant(value: &Value) -> i64 {
    parse_datetime(value.as_str().unwrap()).unwrap()
}

/// The leads as Odoo would have them: the count, the pipeline, lost and won ones.
fn check_leads(database: &Database, env: &Env, spec: &DataSpec) {
    let leads = read_all(
        database,
        env,
        "crm.lead",
        &[
            "name",
            "type",
            "active",
            "stage_id",
            "partner_id",
            "user_id",
            "probability",
            "expected_revenue",
            "date_open",
            "date_closed",
            "create_date",
            "write_date",
        ],
    );
    assert_eq!(leads.len(), spec.partners.div_ceil(2));
    let won_stages: HashSet<i64> = database
        .search(env, "crm.stage", &field("is_won").eq(true), 0, None, None)
        .unwrap()
        .into_iter()
        .collect();
    let kinds: HashSet<&str> = leads.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, HashSet::from(["lead", "opportunity"]));
    let stages: HashSet<i64> = leads.iter().filter_map(|l| id_of(&l["stage_id"])).collect();
    assert!(
        stages.len() >= 3,
        "leads spread over the stages: {stages:?}"
    );
    assert!(
        leads
            .iter()
            .all(|l| !l["name"].as_str().unwrap().is_empty())
    );
    assert!(
        leads
            .iter()
            .any(|l| l["expected_revenue"].as_f64().unwrap() > 0.0)
    );

    let partners = archived_too(env);
    let mut linked = 0;
    for lead in &leads {
        let probability = lead["probability"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&probability), "{lead}");
        assert!(
            instant(&lead["write_date"]) >= instant(&lead["create_date"]),
            "{lead}"
        );
        // Assigned leads have an assignment date, unassigned ones none (`_compute_date_open`).
        assert_eq!(
            lead["user_id"].is_array(),
            lead["date_open"].is_string(),
            "{lead}"
        );
        if let Some(partner) = id_of(&lead["partner_id"]) {
            linked += 1;
            let customer = database
                .read(
                    &partners,
                    "res.partner",
                    &[partner],
                    &["create_date".into()],
                )
                .unwrap();
            assert!(
                instant(&lead["create_date"]) >= instant(&customer[0]["create_date"]),
                "a lead follows its customer: {lead}"
            );
        }
        let won = id_of(&lead["stage_id"]).is_some_and(|s| won_stages.contains(&s));
        if won {
            assert_eq!(lead["type"], json!("opportunity"), "{lead}");
            assert_eq!(probability, 100.0, "{lead}");
            assert!(lead["date_closed"].is_string(), "{lead}");
        }
        if lead["active"] == json!(false) {
            // Odoo's action_set_lost: archived, probability 0, closed.
            assert!(!won, "{lead}");
            assert_eq!(probability, 0.0, "{lead}");
            assert!(lead["date_closed"].is_string(), "{lead}");
            assert!(
                instant(&lead["date_closed"]) <= instant(&lead["write_date"]) + 1_000_000,
                "{lead}"
            );
        }
    }
    assert!(
        linked > 0 && linked < leads.len(),
        "some leads have a customer, some not"
    );
}

#[test]
fn the_default_spec_has_about_one_lead_per_two_partners_across_the_pipeline() {
    let spec = DataSpec::default();
    let sim = OdooSim::with_data(SimConfig::default(), &spec);
    sim.with_database(|database, env| check_leads(database, env, &spec));
}

#[test]
fn lost_leads_are_archived_and_hidden_unless_active_test_is_false() {
    let sim = OdooSim::with_data(SimConfig::default(), &DataSpec::default());
    sim.with_database(|database, env| {
        let all = archived_too(env);
        let visible = database
            .search(env, "crm.lead", &Domain::all(), 0, None, None)
            .unwrap();
        let every = database
            .search(&all, "crm.lead", &Domain::all(), 0, None, None)
            .unwrap();
        let lost = database
            .search(env, "crm.lead", &field("active").eq(false), 0, None, None)
            .unwrap();
        assert!(!lost.is_empty(), "some leads are lost");
        assert!(!visible.is_empty());
        assert_eq!(visible.len() + lost.len(), every.len());
        assert!(visible.iter().all(|id| !lost.contains(id)));
        assert_eq!(
            database
                .search_count(env, "crm.lead", &Domain::all(), None)
                .unwrap(),
            visible.len()
        );
        let read = database
            .read(env, "crm.lead", &visible, &["active".into()])
            .unwrap();
        assert!(read.iter().all(|lead| lead["active"] == json!(true)));
    });
}

/// The invoices as `sale.order._create_invoices` and posting would have left them, and
/// their orders marked accordingly.
fn check_invoices(database: &Database, env: &Env) {
    let invoices = read_all(
        database,
        env,
        "account.move",
        &[
            "name",
            "move_type",
            "state",
            "payment_state",
            "partner_id",
            "invoice_origin",
            "ref",
            "date",
            "invoice_date",
            "invoice_date_due",
            "amount_untaxed",
            "amount_tax",
            "amount_total",
            "amount_residual",
            "currency_id",
            "create_date",
            "write_date",
        ],
    );
    assert!(!invoices.is_empty(), "the generator makes invoices");
    let orders: HashMap<String, Value> = read_all(
        database,
        env,
        "sale.order",
        &[
            "name",
            "state",
            "partner_invoice_id",
            "client_order_ref",
            "amount_untaxed",
            "amount_total",
            "invoice_status",
            "date_order",
            "currency_id",
            "order_line",
        ],
    )
    .into_iter()
    .map(|order| (order["name"].as_str().unwrap().to_owned(), order))
    .collect();
    let partners: HashSet<i64> = read_all(database, env, "res.partner", &["id"])
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();

    let states: HashSet<&str> = invoices
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains("posted") && states.contains("draft"),
        "{states:?}"
    );
    let mut numbers: Vec<(String, String)> = Vec::new();
    let mut live_invoices: HashMap<String, usize> = HashMap::new();
    for invoice in &invoices {
        assert_eq!(invoice["move_type"], json!("out_invoice"));
        let partner = id_of(&invoice["partner_id"]).expect("an invoice has a partner");
        assert!(partners.contains(&partner), "{invoice}");
        let origin = invoice["invoice_origin"].as_str().unwrap();
        let order = orders
            .get(origin)
            .unwrap_or_else(|| panic!("no order {origin}"));
        assert!(
            matches!(order["state"].as_str(), Some("sale" | "done")),
            "only confirmed orders are invoiced: {order}"
        );
        assert_eq!(
            id_of(&invoice["partner_id"]),
            id_of(&order["partner_invoice_id"])
        );
        assert_eq!(invoice["currency_id"], order["currency_id"]);
        assert_eq!(invoice["ref"], order["client_order_ref"]);
        assert_eq!(invoice["amount_untaxed"], order["amount_untaxed"]);
        assert_eq!(invoice["amount_total"], order["amount_total"]);
        assert_eq!(invoice["amount_tax"], json!(0.0));
        assert!(invoice["amount_total"].as_f64().unwrap() > 0.0);
        assert!(
            instant(&invoice["create_date"]) >= instant(&order["date_order"]),
            "invoiced after the confirmation: {invoice}"
        );
        assert!(instant(&invoice["write_date"]) >= instant(&invoice["create_date"]));

        let total = invoice["amount_total"].as_f64().unwrap();
        let residual = invoice["amount_residual"].as_f64().unwrap();
        let name = invoice["name"].as_str().unwrap();
        match invoice["state"].as_str().unwrap() {
            "draft" => {
                assert_eq!(name, "/", "{invoice}");
                assert_eq!(invoice["invoice_date"], json!(false), "{invoice}");
                assert_eq!(invoice["payment_state"], json!("not_paid"));
                assert_eq!(residual, total);
            }
            "posted" => {
                numbers.push((
                    name.to_owned(),
                    invoice["invoice_date"].as_str().unwrap().to_owned(),
                ));
                assert_eq!(invoice["date"], invoice["invoice_date"], "{invoice}");
                assert!(
                    invoice["invoice_date_due"].as_str() >= invoice["invoice_date"].as_str(),
                    "{invoice}"
                );
                match invoice["payment_state"].as_str().unwrap() {
                    "paid" => assert_eq!(residual, 0.0, "{invoice}"),
                    "partial" => assert!(residual > 0.0 && residual < total, "{invoice}"),
                    _ => assert_eq!(residual, total, "{invoice}"),
                }
            }
            _ => {
                assert_eq!(invoice["payment_state"], json!("not_paid"));
                if name != "/" {
                    numbers.push((
                        name.to_owned(),
                        invoice["invoice_date"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        if invoice["state"] != json!("cancel") {
            *live_invoices.entry(origin.to_owned()).or_default() += 1;
        }
    }

    // INV/<year>/<5 digits>, no number twice, numbered in invoice-date order, no gaps.
    numbers.sort();
    let mut by_year: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
    for (name, date) in &numbers {
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert_eq!(parts[0], "INV");
        assert_eq!(parts[1], &date[..4], "{name} dated {date}");
        assert_eq!(parts[2].len(), 5, "{name}");
        by_year
            .entry(parts[1])
            .or_default()
            .push((parts[2].parse().unwrap(), date));
    }
    for numbers in by_year.values() {
        for (position, (number, _)) in numbers.iter().enumerate() {
            assert_eq!(*number as usize, position + 1, "{numbers:?}");
        }
        assert!(
            numbers.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{numbers:?}"
        );
    }

    // The orders know: one live invoice marks an order (and its lines) invoiced.
    for (name, order) in &orders {
        let invoiced = live_invoices.get(name).copied().unwrap_or(0);
        assert!(invoiced <= 1, "{name} invoiced twice");
        if invoiced == 1 {
            assert_eq!(order["invoice_status"], json!("invoiced"), "{order}");
            let lines: Vec<i64> = order["order_line"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_i64().unwrap())
                .collect();
            for line in database
                .read(
                    env,
                    "sale.order.line",
                    &lines,
                    &["product_uom_qty".into(), "qty_invoiced".into()],
                )
                .unwrap()
            {
                assert_eq!(line["qty_invoiced"], line["product_uom_qty"], "{line}");
            }
        } else {
            assert_ne!(order["invoice_status"], json!("invoiced"), "{order}");
        }
    }
}

#[test]
fn invoices_belong_to_confirmed_orders_and_existing_partners_with_the_orders_amounts() {
    let sim = OdooSim::with_data(SimConfig::default(), &DataSpec::default());
    sim.with_database(|database, env| check_invoices(database, env));
}

#[test]
fn leads_and_invoices_hold_for_other_seeds_versions_and_a_period_across_new_year() {
    let now = "2026-01-04 08:00:00";
    for (version, seed) in [
        (OdooVersion::V16, 1),
        (OdooVersion::V17, 2),
        (OdooVersion::V18, 3),
        (OdooVersion::V18, 4),
        (OdooVersion::V19, 5),
    ] {
        let spec = DataSpec {
            seed,
            partners: 80,
            products: 15,
            orders: 300,
        };
        let database = generate_at(version, now, &spec);
        let env = Env::new(ADMIN_UID, parse_datetime(now).unwrap());
        check_leads(&database, &env, &spec);
        check_invoices(&database, &env);
        let names: Vec<String> = read_all(&database, &env, "account.move", &["name"])
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("INV/2025/"))
                && names.iter().any(|n| n == "INV/2026/00001"),
            "{version} seed {seed}: a new sequence each year: {names:?}"
        );
    }
}

fn generate_at(version: OdooVersion, now: &str, spec: &DataSpec) -> Database {
    let mut database = Database::new(version);
    let env = Env::new(ADMIN_UID, parse_datetime(now).unwrap());
    odoo_sim::generator::generate(&mut database, &env, spec);
    database
}

fn snapshot(database: &Database, model: &str) -> Vec<Value> {
    let env = Env::new(ADMIN_UID, 0);
    read_all(database, &env, model, &[])
}

#[test]
fn one_seed_gives_the_same_leads_and_invoices_and_another_seed_others() {
    let spec = DataSpec {
        seed: 5,
        partners: 40,
        products: 10,
        orders: 120,
    };
    let one = generate_at(OdooVersion::V18, "2026-03-01 09:30:00", &spec);
    let two = generate_at(OdooVersion::V18, "2026-03-01 09:30:00", &spec);
    // Everything `generate` writes, timestamps included (the bootstrap records `Database::new`
    // makes carry the wall clock's time, so they are left out).
    for model in [
        "crm.lead",
        "account.move",
        "sale.order",
        "sale.order.line",
        "stock.picking",
        "product.product",
    ] {
        let first = snapshot(&one, model);
        assert!(!first.is_empty(), "{model}");
        assert!(
            first == snapshot(&two, model),
            "{model} differs for one seed"
        );
    }
    let other = generate_at(
        OdooVersion::V18,
        "2026-03-01 09:30:00",
        &DataSpec { seed: 6, ..spec },
    );
    assert_ne!(snapshot(&one, "crm.lead"), snapshot(&other, "crm.lead"));
    assert_ne!(
        snapshot(&one, "account.move"),
        snapshot(&other, "account.move")
    );
}

#[test]
fn every_version_gets_leads_and_invoices_dated_within_the_generated_period() {
    let now = "2026-01-10 12:00:00";
    let end = parse_datetime(now).unwrap();
    let start = end - 30 * 24 * 3600 * 1_000_000;
    for version in OdooVersion::ALL {
        let database = generate_at(version, now, &DataSpec::default());
        let env = Env::new(ADMIN_UID, end);
        for model in ["crm.lead", "account.move"] {
            let records = read_all(&database, &env, model, &["create_date", "write_date"]);
            assert!(!records.is_empty(), "{version}: no {model}");
            for record in records {
                let created = instant(&record["create_date"]);
                let written = instant(&record["write_date"]);
                assert!(
                    start <= created && created <= written && written <= end,
                    "{version} {model}: {record}"
                );
            }
        }
        // Ids follow creation time, as a database sequence does.
        let invoices = read_all(&database, &env, "account.move", &["create_date"]);
        assert!(
            invoices
                .windows(2)
                .all(|pair| instant(&pair[0]["create_date"]) <= instant(&pair[1]["create_date"]))
        );
    }
}
