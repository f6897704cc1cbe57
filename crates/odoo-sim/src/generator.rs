//! Seeded, realistic data: what a small trading company's Odoo holds, including the awkward
//! parts (non-ASCII names, contacts without phone or email, shipping addresses, products
//! without a reference, multi-attribute variants, zero-quantity lines, prices like 29.95,
//! orders in every state, lost leads archived, invoices in draft, posted, paid and cancelled).

use crate::orm::{Database, Env, round_cents};
use crate::values::{Val, format_datetime};
use crate::workflow;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// How much data to generate, and from which seed (same seed, same data).
#[derive(Debug, Clone)]
pub struct DataSpec {
    pub seed: u64,
    pub partners: usize,
    pub products: usize,
    pub orders: usize,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            seed: 42,
            partners: 50,
            products: 20,
            orders: 100,
        }
    }
}

fn vals(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn create(database: &mut Database, env: &Env, model: &str, value: Value) -> i64 {
    match database.create(env, model, &[vals(value)]) {
        Ok(ids) => ids.first().copied().unwrap_or_default(),
        Err(error) => {
            // The generator only writes what the schema accepts; reaching this is a bug in it.
            tracing::error!(%error, model, "generator could not create a record");
            0
        }
    }
}

/// `(name, ISO code, calling code, [(state name, state code)])`
type CountrySeed = (
    &'static str,
    &'static str,
    i64,
    &'static [(&'static str, &'static str)],
);

const COUNTRIES: &[CountrySeed] = &[
    (
        "United States",
        "US",
        1,
        &[("California", "CA"), ("New York", "NY"), ("Texas", "TX")],
    ),
    (
        "Egypt",
        "EG",
        20,
        &[("Cairo", "C"), ("Giza", "GZ"), ("Alexandria", "ALX")],
    ),
    ("Spain", "ES", 34, &[("Madrid", "M"), ("Barcelona", "B")]),
    (
        "Mexico",
        "MX",
        52,
        &[("Ciudad de México", "CMX"), ("Jalisco", "JAL")],
    ),
    ("Germany", "DE", 49, &[("Bayern", "BY"), ("Berlin", "BE")]),
    ("France", "FR", 33, &[]),
    ("Japan", "JP", 81, &[("東京都", "13")]),
    ("Brazil", "BR", 55, &[("São Paulo", "SP")]),
];

/// What every fresh database has: the company, OdooBot (uid 1), the administrator (uid 2)
/// and a few countries with states.
pub fn bootstrap(database: &mut Database, env: &Env) {
    let usd = create(
        database,
        env,
        "res.currency",
        json!({"name": "USD", "symbol": "$", "active": true}),
    );
    create(
        database,
        env,
        "res.currency",
        json!({"name": "EUR", "symbol": "€", "active": true}),
    );
    create(
        database,
        env,
        "res.currency",
        json!({"name": "EGP", "symbol": "E£", "active": true}),
    );
    create(
        database,
        env,
        "product.pricelist",
        json!({"name": "Default", "currency_id": usd, "active": true}),
    );
    let all = create(database, env, "product.category", json!({"name": "All"}));
    create(
        database,
        env,
        "product.category",
        json!({"name": "Saleable", "parent_id": all}),
    );
    create(
        database,
        env,
        "uom.uom",
        json!({"name": "Units", "factor": 1.0, "active": true}),
    );
    create(
        database,
        env,
        "uom.uom",
        json!({"name": "Dozens", "factor": 1.0 / 12.0, "active": true}),
    );
    for (sequence, stage) in ["New", "Qualified", "Proposition", "Won"]
        .iter()
        .enumerate()
    {
        create(
            database,
            env,
            "crm.stage",
            json!({"name": stage, "sequence": sequence, "is_won": *stage == "Won"}),
        );
    }
    let company = create(
        database,
        env,
        "res.partner",
        json!({"name": "My Company", "is_company": true}),
    );
    let bot_partner = create(
        database,
        env,
        "res.partner",
        json!({"name": "OdooBot", "parent_id": company, "active": false}),
    );
    let admin_partner = create(
        database,
        env,
        "res.partner",
        json!({"name": "Mitchell Admin", "parent_id": company, "email": "admin@example.com"}),
    );
    create(
        database,
        env,
        "res.users",
        json!({"name": "OdooBot", "login": "__system__", "partner_id": bot_partner, "active": false}),
    );
    create(
        database,
        env,
        "res.users",
        json!({"name": "Mitchell Admin", "login": "admin", "partner_id": admin_partner}),
    );
    let company_id = create(
        database,
        env,
        "res.company",
        json!({"name": "My Company", "partner_id": company, "currency_id": usd, "sequence": 10}),
    );
    if let Err(error) = database.write(
        env,
        "res.users",
        &[1, 2],
        &vals(json!({"company_id": company_id})),
    ) {
        tracing::error!(%error, "could not attach the users to the company");
    }
    for (name, code, phone_code, states) in COUNTRIES {
        let country = create(
            database,
            env,
            "res.country",
            json!({"name": name, "code": code, "phone_code": phone_code}),
        );
        for (state_name, state_code) in *states {
            create(
                database,
                env,
                "res.country.state",
                json!({"name": state_name, "code": state_code, "country_id": country}),
            );
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "José", "Zoë", "Łukasz", "محمد", "佐藤", "Ana", "Björn", "Chloé", "Dmitri", "Fatma", "Grace",
    "Hiroshi", "Inès", "Jürgen", "Kwame", "Léa", "Mehmet", "Nuria",
];
const LAST_NAMES: &[&str] = &[
    "Álvarez",
    "Ørsted",
    "Żółkiewski",
    "علي",
    "花子",
    "García",
    "Müller",
    "Nguyễn",
    "O'Brien",
    "Petrović",
    "Søndergaard",
    "Takahashi",
    "Smith",
    "Dubois",
];
const COMPANY_WORDS: &[&str] = &[
    "Müller",
    "Al-Nour",
    "Pâtisserie",
    "Soluciones",
    "北斗",
    "Nordic",
    "Delta",
    "Oasis",
    "Bodega",
];
const COMPANY_SUFFIXES: &[&str] = &[
    "GmbH",
    "S.A.",
    "Trading",
    "& Sons",
    "LLC",
    "株式会社",
    "Market",
];
const STREETS: &[&str] = &[
    "Calle Mayor",
    "Tahrir Square",
    "Hauptstraße",
    "Rua Augusta",
    "Main Street",
    "Rue de Rivoli",
    "銀座",
];
const PRODUCTS: &[&str] = &[
    "T-Shirt",
    "Coffee Beans",
    "Olive Oil",
    "Notebook",
    "Ceramic Mug",
    "Desk Lamp",
    "Sneakers",
    "Tea",
    "Backpack",
    "Honey",
];
const PRICES: &[f64] = &[
    29.95, 9.99, 0.5, 120.0, 4.35, 19.99, 1.15, 75.5, 2.675, 1000.0,
];

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Fills the database. Records are written in chronological order over the last 30 days,
/// in transactions of 1 to 20 records that share one timestamp with microseconds.
pub fn generate(database: &mut Database, base: &Env, spec: &DataSpec) {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let total = (spec.partners + spec.products + spec.orders).max(1) as i64;
    let span = PERIOD;
    let step = (span / total).max(1);
    let mut now = base.now - span;
    let mut in_transaction = 0;
    let mut env = base.clone();
    let mut tick = |rng: &mut ChaCha8Rng, env: &mut Env| {
        if in_transaction == 0 {
            in_transaction = rng.random_range(1..=20);
            now += rng.random_range(1..=step * 2 * in_transaction);
            env.now = now.min(base.now);
        }
        in_transaction -= 1;
    };

    let countries: Vec<i64> = database
        .table("res.country")
        .map(|t| t.rows.keys().copied().collect())
        .unwrap_or_default();
    let mut customers = Vec::new();
    for index in 0..spec.partners {
        tick(&mut rng, &mut env);
        let is_company = rng.random_bool(0.25);
        let name = if is_company {
            format!(
                "{} {}",
                pick(&mut rng, COMPANY_WORDS),
                pick(&mut rng, COMPANY_SUFFIXES)
            )
        } else {
            format!(
                "{} {}",
                pick(&mut rng, FIRST_NAMES),
                pick(&mut rng, LAST_NAMES)
            )
        };
        let country = countries[rng.random_range(0..countries.len())];
        let states: Vec<i64> = database
            .table("res.country.state")
            .map(|t| {
                t.rows
                    .keys()
                    .copied()
                    .filter(|s| {
                        database
                            .value_by_name("res.country.state", *s, "country_id")
                            .as_ref_id()
                            == Some(country)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut partner = json!({
            "name": name,
            "is_company": is_company,
            "customer_rank": 1,
            "street": format!("{} {}", pick(&mut rng, STREETS), rng.random_range(1..300)),
            "city": pick(&mut rng, &["Cairo", "Madrid", "München", "São Paulo", "Austin", "京都"]),
            "zip": format!("{:05}", rng.random_range(1000..99999)),
            "country_id": country,
            "state_id": if states.is_empty() { Value::Bool(false) } else { json!(states[rng.random_range(0..states.len())]) },
            "active": !rng.random_bool(0.03),
            "ref": format!("C{index:05}"),
        });
        if rng.random_bool(0.8) {
            partner["email"] = json!(format!("customer{index}@example.com"));
        }
        if rng.random_bool(0.7) {
            partner["phone"] = json!(format!(
                "+{} {}",
                rng.random_range(1..99),
                rng.random_range(1_000_000..9_999_999)
            ));
        }
        if database.version.has_partner_mobile() && rng.random_bool(0.5) {
            partner["mobile"] = json!(format!(
                "+20 10{}",
                rng.random_range(10_000_000..99_999_999)
            ));
        }
        let id = create(database, &env, "res.partner", partner);
        let mut shipping = id;
        if rng.random_bool(0.3) {
            shipping = create(
                database,
                &env,
                "res.partner",
                json!({
                    "name": format!("{} Warehouse", pick(&mut rng, &["North", "South", "Central", "Port"])),
                    "type": "delivery",
                    "parent_id": id,
                    "street": format!("{} {}", pick(&mut rng, STREETS), rng.random_range(1..300)),
                    "city": "Giza",
                    "country_id": country,
                    "state_id": if states.is_empty() { Value::Bool(false) } else { json!(states[0]) },
                }),
            );
        }
        customers.push((id, shipping));
    }

    let color = create(
        database,
        &env,
        "product.attribute",
        json!({"name": "Color", "sequence": 1}),
    );
    let size = create(
        database,
        &env,
        "product.attribute",
        json!({"name": "Size", "sequence": 2}),
    );
    let colors: Vec<(i64, &str)> = ["Red", "Blue", "Black"]
        .iter()
        .map(|n| {
            (
                create(
                    database,
                    &env,
                    "product.attribute.value",
                    json!({"name": n, "attribute_id": color}),
                ),
                *n,
            )
        })
        .collect();
    let sizes: Vec<(i64, &str)> = ["S", "M", "L"]
        .iter()
        .map(|n| {
            (
                create(
                    database,
                    &env,
                    "product.attribute.value",
                    json!({"name": n, "attribute_id": size}),
                ),
                *n,
            )
        })
        .collect();

    let mut products = Vec::new();
    for index in 0..spec.products {
        tick(&mut rng, &mut env);
        let price = PRICES[rng.random_range(0..PRICES.len())];
        let has_code = rng.random_bool(0.7);
        let mut template = json!({"name": format!("{} {}", pick(&mut rng, PRODUCTS), index + 1), "list_price": price});
        if has_code {
            template["default_code"] = json!(format!("SKU-{:04}", index + 1));
        }
        let with_variants = index % 4 == 1;
        if !with_variants {
            let template_id = create(database, &env, "product.template", template);
            products.extend(
                database
                    .value_by_name("product.template", template_id, "product_variant_ids")
                    .as_refs()
                    .iter()
                    .copied(),
            );
            continue;
        }
        let mut quiet = env.clone();
        quiet
            .context
            .insert("create_product_product".into(), json!(false));
        let template_id = create(database, &quiet, "product.template", template);
        let ptav = |database: &mut Database, value: i64, attribute: i64, name: &str, extra: f64| {
            create(
                database,
                &env,
                "product.template.attribute.value",
                json!({"name": name, "product_attribute_value_id": value, "attribute_id": attribute, "product_tmpl_id": template_id, "price_extra": extra}),
            )
        };
        let color_values: Vec<i64> = colors
            .iter()
            .map(|(value, name)| ptav(database, *value, color, name, 0.0))
            .collect();
        let size_values: Vec<i64> = sizes
            .iter()
            .enumerate()
            .map(|(i, (value, name))| ptav(database, *value, size, name, i as f64 * 2.5))
            .collect();
        for (ci, color_value) in color_values.iter().enumerate() {
            for (si, size_value) in size_values.iter().enumerate() {
                let mut variant = json!({
                    "product_tmpl_id": template_id,
                    "lst_price": price + si as f64 * 2.5,
                    "product_template_attribute_value_ids": [[6, 0, [color_value, size_value]]],
                });
                variant["default_code"] = if has_code {
                    json!(format!("SKU-{:04}-{ci}{si}", index + 1))
                } else {
                    Value::Bool(false)
                };
                products.push(create(database, &env, "product.product", variant));
            }
        }
    }

    let mut orders = Vec::new();
    for index in 0..spec.orders {
        if customers.is_empty() || products.is_empty() {
            break;
        }
        tick(&mut rng, &mut env);
        let (customer, shipping) = customers[rng.random_range(0..customers.len())];
        let lines: Vec<Value> = (0..rng.random_range(1..=5))
            .map(|_| {
                let product = products[rng.random_range(0..products.len())];
                let quantity = if rng.random_bool(0.05) {
                    0.0
                } else {
                    f64::from(rng.random_range(1..=5))
                };
                let mut line = json!({"product_id": product, "product_uom_qty": quantity});
                if rng.random_bool(0.3) {
                    line["price_unit"] = json!(PRICES[rng.random_range(0..PRICES.len())]);
                }
                json!([0, 0, line])
            })
            .collect();
        let order = create(
            database,
            &env,
            "sale.order",
            json!({
                "partner_id": customer,
                "partner_shipping_id": shipping,
                "client_order_ref": if index % 3 == 0 { json!(format!("PO-{index}")) } else { Value::Bool(false) },
                "order_line": lines,
            }),
        );
        orders.push(order);
        let roll = rng.random_range(0..100);
        let mut flow = env.clone();
        flow.context
            .insert("disable_cancel_warning".into(), json!(true));
        flow.context.insert("skip_sms".into(), json!(true));
        let run = |database: &mut Database, method: &str, model: &str, ids: &[i64]| {
            if let Some(Err(error)) = workflow::call(database, &flow, model, method, ids) {
                tracing::error!(%error, model, method, "generator workflow step failed");
            }
        };
        match roll {
            0..20 => {}
            20..30 => {
                let _ = database.write(
                    &flow,
                    "sale.order",
                    &[order],
                    &vals(json!({"state": "sent"})),
                );
            }
            30..90 => {
                run(database, "action_confirm", "sale.order", &[order]);
                let pickings = database
                    .value_by_name("sale.order", order, "picking_ids")
                    .as_refs()
                    .to_vec();
                if roll >= 70 && !pickings.is_empty() {
                    run(database, "action_assign", "stock.picking", &pickings);
                    run(database, "button_validate", "stock.picking", &pickings);
                    if roll >= 80 {
                        let lock = if database.version.has_sale_done_state() {
                            "action_done"
                        } else {
                            "action_lock"
                        };
                        run(database, lock, "sale.order", &[order]);
                    }
                }
            }
            _ => {
                run(database, "action_confirm", "sale.order", &[order]);
                run(database, "action_cancel", "sale.order", &[order]);
            }
        }
    }
    // Leads and invoices come last and draw from the stream only after everything above, so
    // the records above keep their ids and values; invoicing only marks the invoiced orders
    // (and their lines) as Odoo does. They carry their own times (a lead after its customer,
    // an invoice after its order's confirmation), spread over the period.
    generate_leads(database, base, &mut rng, spec, &customers);
    generate_invoices(database, base, &mut rng, &orders);
    tracing::debug!(until = %format_datetime(env.now), "generated data");
}

const MINUTE: i64 = 60 * 1_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// How far back the generated history goes.
const PERIOD: i64 = 30 * DAY;

fn write(database: &mut Database, env: &Env, model: &str, ids: &[i64], value: Value) {
    if let Err(error) = database.write(env, model, ids, &vals(value)) {
        tracing::error!(%error, model, "generator could not write a record");
    }
}

/// `env` as a transaction at `now`.
fn at(base: &Env, now: i64) -> Env {
    let mut env = base.clone();
    env.now = now;
    env
}

fn stamp(database: &Database, model: &str, id: i64, field: &str) -> Option<i64> {
    match database.value_by_name(model, id, field) {
        Val::DateTime(micros) => Some(micros),
        _ => None,
    }
}

fn text(database: &Database, model: &str, id: i64, field: &str) -> Option<String> {
    database
        .value_by_name(model, id, field)
        .as_str()
        .map(str::to_owned)
}

/// The UTC date of an instant, as Odoo writes a `Date`.
fn day(micros: i64) -> String {
    let mut text = format_datetime(micros);
    text.truncate(10);
    text
}

/// Subjects as people type them into a website contact form or a salesperson into the
/// pipeline: several languages, quotes, a percent sign, a dash.
const LEAD_SUBJECTS: &[&str] = &[
    "Need a quote",
    "Wholesale prices?",
    "Distributor in Egypt",
    "Anfrage: Großhandel",
    "Solicitud de cotización",
    "お見積りのお願い",
    "Catalogue request",
    "Re: your \"spring\" offer",
    "Partnership proposal",
    "Samples for our café",
    "Urgent: 50% deposit?",
    "Event catering – 200 guests",
];
const LEAD_NOTES: &[&str] = &[
    "<p>Met at the trade fair, wants a quote before the end of the month.</p>",
    "<p>Called twice.</p><p>Prefers e-mail; asks for <b>net 30</b>.</p>",
    "<p>Website form: «Could you send prices for 500+ units?»</p>",
    "<p>Referred by an existing customer.</p>",
];
const EMAIL_DOMAINS: &[&str] = &["example.com", "example.org", "example.de", "example.es"];

/// About one lead per two customers, created over the period: leads (some unassigned) and
/// opportunities spread over the pipeline's stages, some linked to a customer that existed
/// at the time, some won, some lost — archived with a probability of 0, as Odoo's
/// `action_set_lost` leaves them.
fn generate_leads(
    database: &mut Database,
    base: &Env,
    rng: &mut ChaCha8Rng,
    spec: &DataSpec,
    customers: &[(i64, i64)],
) {
    let count = spec.partners.div_ceil(2);
    let mut stages: Vec<(i64, i64, bool)> = database
        .table("crm.stage")
        .map(|t| {
            t.rows
                .keys()
                .map(|id| {
                    let sequence = match database.value_by_name("crm.stage", *id, "sequence") {
                        Val::Int(sequence) => sequence,
                        _ => 0,
                    };
                    let won = database.value_by_name("crm.stage", *id, "is_won") == Val::Bool(true);
                    (sequence, *id, won)
                })
                .collect()
        })
        .unwrap_or_default();
    stages.sort_unstable();
    let open: Vec<i64> = stages.iter().filter(|s| !s.2).map(|s| s.1).collect();
    let won_stage = stages.iter().find(|s| s.2).map(|s| s.1);
    let users: Vec<i64> = database
        .table("res.users")
        .map(|t| {
            t.rows
                .keys()
                .copied()
                .filter(|id| database.value_by_name("res.users", *id, "active") == Val::Bool(true))
                .collect()
        })
        .unwrap_or_default();
    if count == 0 || open.is_empty() {
        return;
    }
    let start = base.now - PERIOD;
    // Customers were created in id order, so the ones existing at an instant are a prefix.
    let customer_since: Vec<i64> = customers
        .iter()
        .map(|(id, _)| stamp(database, "res.partner", *id, "create_date").unwrap_or(start))
        .collect();
    let mut times: Vec<i64> = (0..count)
        .map(|_| rng.random_range(start..base.now))
        .collect();
    times.sort_unstable();
    // Some arrive together (an import, a mass mailing's replies): one transaction.
    for index in 1..times.len() {
        if rng.random_bool(0.15) {
            times[index] = times[index - 1];
        }
    }
    for (index, created) in times.into_iter().enumerate() {
        let opportunity = rng.random_bool(0.65);
        let known = customer_since.partition_point(|since| *since <= created);
        let partner = (known > 0 && rng.random_bool(if opportunity { 0.75 } else { 0.3 }))
            .then(|| customers[rng.random_range(0..known)].0);
        let partner_name = partner.and_then(|p| text(database, "res.partner", p, "name"));
        let product = pick(rng, PRODUCTS);
        let name = match (rng.random_range(0..4), &partner_name) {
            (0, _) => format!("{} × {product}", rng.random_range(2..=60) * 5),
            (1, Some(customer)) => format!("{product} for {customer}"),
            // What Odoo names an opportunity created from a contact without a title.
            (2, Some(customer)) => format!("{customer}'s opportunity"),
            _ => pick(rng, LEAD_SUBJECTS).to_owned(),
        };
        let roll = rng.random_range(0..100);
        let (won, lost) = match won_stage {
            Some(_) if opportunity => (roll < 20, (20..40).contains(&roll)),
            _ => (false, roll < 20),
        };
        let stage = match won_stage {
            Some(stage) if won => stage,
            _ if !opportunity => open[0],
            _ => open[rng.random_range(0..open.len())],
        };
        let position = open.iter().position(|s| *s == stage).unwrap_or(0);
        // Odoo's automated probability: two decimals, rising along the pipeline.
        let probability = if won {
            100.0
        } else if lost {
            0.0
        } else {
            let low = 500 + 2_000 * position as u32;
            f64::from(rng.random_range(low..low + 3_000)) / 100.0
        };
        let expected_revenue = if opportunity && rng.random_bool(0.9) {
            let amount = rng.random_range(50..=5_000) * 10;
            if rng.random_bool(0.2) {
                f64::from(amount) + 0.5
            } else {
                f64::from(amount)
            }
        } else {
            0.0
        };
        let priority = match rng.random_range(0..12) {
            0..6 => "0",
            6..9 => "1",
            9..11 => "2",
            _ => "3",
        };
        let assigned = (opportunity || rng.random_bool(0.5)) && !users.is_empty();
        let user = assigned.then(|| users[rng.random_range(0..users.len())]);
        let mut lead = json!({
            "name": name,
            "type": if opportunity { "opportunity" } else { "lead" },
            "priority": priority,
            "stage_id": open[0],
            "probability": if lost || won { 10.0 } else { probability },
            "expected_revenue": expected_revenue,
            "partner_id": partner.map_or(Value::Bool(false), |p| json!(p)),
            "user_id": user.map_or(Value::Bool(false), |u| json!(u)),
        });
        if user.is_none() {
            lead["date_open"] = Value::Bool(false);
        }
        // `_compute_email_from` / `_compute_phone`: the customer's, when linked.
        if let Some(partner) = partner {
            for (from, to) in [("email", "email_from"), ("phone", "phone")] {
                if let Some(value) = text(database, "res.partner", partner, from) {
                    lead[to] = json!(value);
                }
            }
        } else {
            if rng.random_bool(0.85) {
                let domain = pick(rng, EMAIL_DOMAINS);
                lead["email_from"] = json!(if rng.random_bool(0.2) {
                    format!(
                        "\"{} {}\" <lead{index}@{domain}>",
                        pick(rng, FIRST_NAMES),
                        pick(rng, LAST_NAMES)
                    )
                } else {
                    format!("lead{index}@{domain}")
                });
            }
            if rng.random_bool(0.5) {
                lead["phone"] = json!(format!(
                    "+{} {}",
                    rng.random_range(1..99),
                    rng.random_range(1_000_000..9_999_999)
                ));
            }
        }
        if rng.random_bool(0.4) {
            lead["description"] = json!(pick(rng, LEAD_NOTES));
        }
        if opportunity && rng.random_bool(0.6) {
            lead["date_deadline"] = json!(day(created + rng.random_range(7..=90) * DAY));
        }
        let id = create(database, &at(base, created), "crm.lead", lead);
        // Later work on it: moved along the pipeline, won or lost (Odoo's `write` stamps
        // `date_closed` then), or just edited.
        let moved = stage != open[0] || won || lost;
        if id == 0 || !(moved || rng.random_bool(0.3)) || created >= base.now {
            continue;
        }
        let updated =
            rng.random_range(created + 1..=base.now.min(created + 12 * DAY).max(created + 1));
        let mut change = json!({"stage_id": stage, "probability": probability});
        if won || lost {
            change["date_closed"] = json!(format_datetime(updated));
        }
        if lost {
            change["active"] = json!(false);
        }
        write(database, &at(base, updated), "crm.lead", &[id], change);
    }
}

/// One customer invoice as it will have happened: when it was created from its order and,
/// if it came that far before now, when it was posted, paid or cancelled.
#[derive(Debug)]
struct InvoicePlan {
    order: i64,
    /// Not before this instant (the order's last change, or the previous invoice's cancel).
    after: i64,
    created: i64,
    posted: Option<i64>,
    cancelled: Option<i64>,
    paid: Option<(i64, f64)>,
    /// Payment terms: immediate, 15, 30 or 45 days.
    term: i64,
    name: String,
}

/// Customer invoices for part of the confirmed orders (more of the delivered and locked
/// ones), as `sale.order._create_invoices` makes them: the invoice address, the order's
/// amounts (no taxes are configured), `invoice_origin` = the order's name, `ref` = the
/// customer's reference. Drafts are numbered `/`; posting numbers them `INV/<year>/<n>` in
/// posting order. Some are paid or partly paid, some cancelled (and then invoiced again).
/// Invoicing an order marks it `invoiced` and its lines' `qty_invoiced`; cancelling the
/// invoice undoes that, as Odoo's recomputation does.
fn generate_invoices(database: &mut Database, base: &Env, rng: &mut ChaCha8Rng, orders: &[i64]) {
    let mut plans: Vec<InvoicePlan> = Vec::new();
    for &order in orders {
        let state = text(database, "sale.order", order, "state").unwrap_or_default();
        let total = database
            .value_by_name("sale.order", order, "amount_total")
            .as_f64();
        let Some(ready) = stamp(database, "sale.order", order, "write_date") else {
            continue;
        };
        if !matches!(state.as_str(), "sale" | "done") || total <= 0.0 {
            continue;
        }
        let locked = state == "done"
            || database.value_by_name("sale.order", order, "locked") == Val::Bool(true);
        let delivered =
            text(database, "sale.order", order, "delivery_status").as_deref() == Some("full");
        let share = if locked {
            0.9
        } else if delivered {
            0.7
        } else {
            0.35
        };
        if !rng.random_bool(share) {
            continue;
        }
        let mut after = ready;
        for attempt in 0..2 {
            // Usually some time after the order; for the newest orders, whatever time is left,
            // down to the confirmation's own transaction (automatic invoicing does that).
            let window = (base.now - after).clamp(0, 4 * DAY);
            let created = after + rng.random_range(window.min(10 * MINUTE)..=window);
            let term = [0, 0, 15, 30, 30, 45][rng.random_range(0..6)];
            let fate = rng.random_range(0..100);
            let cancel = attempt == 0 && (10..18).contains(&fate);
            let post = fate >= 14;
            // Posted a little later; an invoice made just now is half the time posted at once.
            let posted = if post {
                let posted = created + rng.random_range(MINUTE..=2 * DAY);
                if posted <= base.now {
                    Some(posted)
                } else {
                    rng.random_bool(0.5)
                        .then(|| created + rng.random_range(0..=base.now - created))
                }
            } else {
                None
            };
            let cancelled = cancel
                .then(|| posted.unwrap_or(created) + rng.random_range(HOUR..=5 * DAY))
                .filter(|t| *t <= base.now);
            let paid = match (posted, cancelled, rng.random_range(0..100)) {
                (Some(posted), None, roll) if roll < 60 => {
                    let when = posted + rng.random_range(HOUR..=10 * DAY);
                    let amount = if roll < 50 {
                        total
                    } else {
                        round_cents(total * f64::from(rng.random_range(20..80)) / 100.0)
                    };
                    (when <= base.now).then_some((when, amount))
                }
                _ => None,
            };
            plans.push(InvoicePlan {
                order,
                after,
                created,
                posted,
                cancelled,
                paid,
                term,
                name: "/".to_owned(),
            });
            match cancelled {
                Some(cancelled) if rng.random_bool(0.6) => after = cancelled,
                _ => break,
            }
        }
    }
    plans.sort_by_key(|plan| plan.created);
    // "Create invoices" on several orders at once: one transaction.
    for index in 1..plans.len() {
        let previous = plans[index - 1].created;
        if previous > plans[index].after && rng.random_bool(0.25) {
            plans[index].created = previous;
        }
    }
    // The journal's sequence, per year of the invoice date, in posting order.
    let mut posting: Vec<(i64, usize)> = plans
        .iter()
        .enumerate()
        .filter_map(|(index, plan)| plan.posted.map(|posted| (posted, index)))
        .collect();
    posting.sort_unstable();
    let mut numbers: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (posted, index) in posting {
        let mut year = day(posted);
        year.truncate(4);
        let number = numbers.entry(year.clone()).or_insert(0);
        *number += 1;
        plans[index].name = format!("INV/{year}/{number:05}");
    }

    for plan in &plans {
        let order = plan.order;
        let untaxed = database
            .value_by_name("sale.order", order, "amount_untaxed")
            .as_f64();
        let total = database
            .value_by_name("sale.order", order, "amount_total")
            .as_f64();
        let partner = database
            .value_by_name("sale.order", order, "partner_invoice_id")
            .as_ref_id()
            .or_else(|| {
                database
                    .value_by_name("sale.order", order, "partner_id")
                    .as_ref_id()
            });
        let mut invoice = json!({
            "move_type": "out_invoice",
            "name": "/",
            "partner_id": partner,
            "invoice_origin": text(database, "sale.order", order, "name"),
            "invoice_date_due": day(plan.created + plan.term * DAY),
            "amount_untaxed": untaxed,
            "amount_tax": 0.0,
            "amount_total": total,
            "amount_residual": total,
        });
        for field in ["company_id", "currency_id"] {
            if let Some(id) = database
                .value_by_name("sale.order", order, field)
                .as_ref_id()
            {
                invoice[field] = json!(id);
            }
        }
        if let Some(reference) = text(database, "sale.order", order, "client_order_ref") {
            invoice["ref"] = json!(reference);
        }
        let creating = at(base, plan.created);
        let id = create(database, &creating, "account.move", invoice);
        if id == 0 {
            continue;
        }
        mark_invoiced(database, &creating, order, true);

        let mut change = json!({});
        if let Some(posted) = plan.posted {
            change["name"] = json!(plan.name);
            change["state"] = json!("posted");
            change["invoice_date"] = json!(day(posted));
            change["date"] = json!(day(posted));
            change["invoice_date_due"] = json!(day(posted + plan.term * DAY));
        }
        if let Some((_, amount)) = plan.paid {
            let residual = round_cents(total - amount).max(0.0);
            change["amount_residual"] = json!(residual);
            change["payment_state"] = json!(if residual <= 0.0 { "paid" } else { "partial" });
        }
        if plan.cancelled.is_some() {
            change["state"] = json!("cancel");
        }
        let last = [plan.posted, plan.cancelled, plan.paid.map(|(when, _)| when)]
            .into_iter()
            .flatten()
            .max();
        if let Some(last) = last {
            write(database, &at(base, last), "account.move", &[id], change);
        }
        if let Some(cancelled) = plan.cancelled {
            mark_invoiced(database, &at(base, cancelled), order, false);
        }
    }
}

/// What Odoo recomputes on an order when an invoice for all of it appears or is cancelled:
/// the lines' `qty_invoiced` and the order's `invoice_status`.
fn mark_invoiced(database: &mut Database, env: &Env, order: i64, invoiced: bool) {
    let lines = database
        .value_by_name("sale.order", order, "order_line")
        .as_refs()
        .to_vec();
    for line in lines {
        let quantity = database
            .value_by_name("sale.order.line", line, "product_uom_qty")
            .as_f64();
        if quantity > 0.0 {
            let invoiced_quantity = if invoiced { quantity } else { 0.0 };
            write(
                database,
                env,
                "sale.order.line",
                &[line],
                json!({"qty_invoiced": invoiced_quantity}),
            );
        }
    }
    let status = if invoiced { "invoiced" } else { "to invoice" };
    write(
        database,
        env,
        "sale.order",
        &[order],
        json!({"invoice_status": status}),
    );
}
