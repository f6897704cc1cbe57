//! Seeded, realistic data: what a small trading company's Odoo holds, including the awkward
//! parts (non-ASCII names, contacts without phone or email, shipping addresses, products
//! without a reference, multi-attribute variants, zero-quantity lines, prices like 29.95,
//! orders in every state).

use crate::orm::{Database, Env};
use crate::values::format_datetime;
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
    let span: i64 = 30 * 24 * 3600 * 1_000_000;
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
    tracing::debug!(until = %format_datetime(env.now), "generated data");
}
