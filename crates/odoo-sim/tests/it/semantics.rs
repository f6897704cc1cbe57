use odoo_rpc::domain::{Domain, field};
use odoo_sim::orm::{Access, Database, Env};
use odoo_sim::values::parse_datetime;
use odoo_sim::{ADMIN_UID, OdooSim, OdooVersion, SimConfig};
use serde_json::{Map, Value, json};

fn vals(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn env_at(text: &str) -> Env {
    Env::new(ADMIN_UID, parse_datetime(text).unwrap())
}

fn partners(database: &mut Database, env: &Env, names: &[Value]) -> Vec<i64> {
    let list: Vec<Map<String, Value>> = names.iter().map(|v| vals(v.clone())).collect();
    database.create(env, "res.partner", &list).unwrap()
}

fn search(
    database: &Database,
    env: &Env,
    model: &str,
    domain: Domain,
    order: Option<&str>,
) -> Vec<i64> {
    database
        .search(env, model, &domain, 0, None, order)
        .unwrap()
}

#[test]
fn equality_with_false_and_the_null_semantics_of_negative_operators() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let ids = partners(
        &mut database,
        &env,
        &[
            json!({"name": "Ana", "email": "ana@example.com"}),
            json!({"name": "Bob"}),
            json!({"name": "Cy", "email": "cy@example.com"}),
        ],
    );
    let (ana, bob, cy) = (ids[0], ids[1], ids[2]);
    let scope = field("id").is_in(ids.clone());
    let run = |domain: Domain| {
        let mut found = search(
            &database,
            &env,
            "res.partner",
            scope.clone() & domain,
            Some("id"),
        );
        found.sort_unstable();
        found
    };
    assert_eq!(run(field("email").is_unset()), vec![bob]);
    assert_eq!(run(field("email").is_set()), vec![ana, cy]);
    // `!=` and `not in` keep rows whose column is NULL, as Odoo's SQL does.
    assert_eq!(run(field("email").ne("ana@example.com")), vec![bob, cy]);
    assert_eq!(
        run(field("email").not_in(["ana@example.com"])),
        vec![bob, cy]
    );
    assert_eq!(
        run(field("email").not_in([json!("ana@example.com"), json!(false)])),
        vec![cy]
    );
    assert_eq!(
        run(field("email").is_in([json!(false), json!("cy@example.com")])),
        vec![bob, cy]
    );
    assert_eq!(run(field("email").not_ilike("EXAMPLE")), vec![bob]);
    assert_eq!(run(field("email").ilike("ANA@")), vec![ana]);
    assert_eq!(run(field("email").like("ANA@")), Vec::<i64>::new());
    assert_eq!(run(field("name").eq_like("_y")), vec![cy]);
    assert_eq!(run(field("name").eq_ilike("a%")), vec![ana]);
    assert_eq!(run(field("email").eq_or_unset(false)), vec![ana, bob, cy]);
    assert_eq!(run(field("name").eq_or_unset("Bob")), vec![bob]);
    assert_eq!(run(!field("name").eq("Bob")), vec![ana, cy]);
    assert_eq!(
        run(field("name").eq("Bob") | field("name").eq("Cy")),
        vec![bob, cy]
    );
    assert_eq!(run(Domain::False), Vec::<i64>::new());
}

#[test]
fn relational_paths_child_of_and_any() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let egypt = search(&database, &env, "res.country", field("code").eq("EG"), None)[0];
    let parent = partners(
        &mut database,
        &env,
        &[json!({"name": "Nile Trading", "is_company": true, "country_id": egypt})],
    )[0];
    let children = partners(
        &mut database,
        &env,
        &[
            json!({"name": "Depot", "parent_id": parent, "type": "delivery"}),
            json!({"name": "Elsewhere"}),
        ],
    );
    let grandchild = partners(
        &mut database,
        &env,
        &[json!({"name": "Dock 4", "parent_id": children[0]})],
    )[0];
    assert_eq!(
        search(
            &database,
            &env,
            "res.partner",
            field("country_id.code").eq("EG"),
            None
        ),
        vec![parent]
    );
    assert_eq!(
        search(
            &database,
            &env,
            "res.partner",
            field("country_id").eq("Egypt"),
            None
        ),
        vec![parent]
    );
    let mut family = search(
        &database,
        &env,
        "res.partner",
        field("id").child_of(parent),
        None,
    );
    family.sort_unstable();
    assert_eq!(family, vec![parent, children[0], grandchild]);
    let mut line = search(
        &database,
        &env,
        "res.partner",
        field("id").parent_of(grandchild),
        None,
    );
    line.sort_unstable();
    assert_eq!(line, vec![parent, children[0], grandchild]);
    assert_eq!(
        search(
            &database,
            &env,
            "res.partner",
            field("child_ids").any(field("type").eq("delivery")),
            None
        ),
        vec![parent]
    );
    assert!(
        !search(
            &database,
            &env,
            "res.partner",
            field("child_ids").not_any(Domain::all()),
            None
        )
        .contains(&parent)
    );
    assert_eq!(
        database.display_name("res.partner", grandchild),
        "Nile Trading, Depot, Dock 4"
    );
    // `in` / `not in` on a many2one and a one2many compare ids.
    let mut in_parents = search(
        &database,
        &env,
        "res.partner",
        field("parent_id").is_in([parent, children[0]]),
        None,
    );
    in_parents.sort_unstable();
    assert_eq!(in_parents, vec![children[0], grandchild]);
    assert_eq!(
        search(
            &database,
            &env,
            "res.partner",
            field("child_ids").is_in([grandchild]),
            None
        ),
        vec![children[0]]
    );
    assert!(
        !search(
            &database,
            &env,
            "res.partner",
            field("parent_id").not_in([parent]),
            None
        )
        .contains(&children[0])
    );
}

#[test]
fn unknown_fields_and_bad_orders_raise_value_errors() {
    let database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let error = database
        .search(&env, "res.partner", &field("nmae").eq("x"), 0, None, None)
        .unwrap_err();
    assert_eq!(error.name, "builtins.ValueError");
    assert!(
        error.message.contains("Invalid field res.partner.nmae"),
        "{}",
        error.message
    );
    let error = database
        .read(&env, "res.partner", &[1], &["nmae".into()])
        .unwrap_err();
    assert_eq!(error.message, "Invalid field 'nmae' on model 'res.partner'");
    let error = database
        .search(
            &env,
            "res.partner",
            &Domain::all(),
            0,
            None,
            Some("name sideways"),
        )
        .unwrap_err();
    assert!(
        error.message.contains("Invalid \"order\""),
        "{}",
        error.message
    );
    let error = database
        .search(&env, "no.such.model", &Domain::all(), 0, None, None)
        .unwrap_err();
    assert_eq!(error.message, "Object no.such.model doesn't exist");
    let error = database
        .read(&env, "res.partner", &[99_999], &[])
        .unwrap_err();
    assert_eq!(error.name, "odoo.exceptions.MissingError");
}

#[test]
fn order_limit_offset_and_nulls() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let ids = partners(
        &mut database,
        &env,
        &[
            json!({"name": "b", "ref": "2"}),
            json!({"name": "a", "ref": "2"}),
            json!({"name": "c"}),
            json!({"name": "a", "ref": "1"}),
        ],
    );
    let scope = field("id").is_in(ids.clone());
    let page = |order: &str, offset: usize, limit: Option<usize>| {
        database
            .search(&env, "res.partner", &scope, offset, limit, Some(order))
            .unwrap()
    };
    assert_eq!(
        page("name asc, ref asc", 0, None),
        vec![ids[3], ids[1], ids[0], ids[2]]
    );
    assert_eq!(
        page("name desc, id desc", 0, None),
        vec![ids[2], ids[0], ids[3], ids[1]]
    );
    // PostgreSQL puts NULLs last ascending and first descending.
    assert_eq!(
        page("ref asc, id asc", 0, None),
        vec![ids[3], ids[0], ids[1], ids[2]]
    );
    assert_eq!(
        page("ref desc, id asc", 0, None),
        vec![ids[2], ids[0], ids[1], ids[3]]
    );
    assert_eq!(
        page("ref asc nulls first, id asc", 0, None),
        vec![ids[2], ids[3], ids[0], ids[1]]
    );
    assert_eq!(page("name asc, ref asc", 1, Some(2)), vec![ids[1], ids[0]]);
    assert_eq!(page("name asc, ref asc", 3, Some(10)), vec![ids[2]]);
    assert_eq!(page("name asc, ref asc", 9, Some(10)), Vec::<i64>::new());
    assert_eq!(
        database
            .search_count(&env, "res.partner", &scope, Some(2))
            .unwrap(),
        2
    );
}

#[test]
fn archived_records_need_active_test_false() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let ids = partners(
        &mut database,
        &env,
        &[
            json!({"name": "live"}),
            json!({"name": "archived", "active": false}),
        ],
    );
    let scope = field("id").is_in(ids.clone());
    assert_eq!(
        search(&database, &env, "res.partner", scope.clone(), None),
        vec![ids[0]]
    );
    let mut all_env = env.clone();
    all_env.context.insert("active_test".into(), json!(false));
    let mut found = search(&database, &all_env, "res.partner", scope.clone(), None);
    found.sort_unstable();
    assert_eq!(found, ids);
    // A leaf on `active` disables the implicit filter, as in Odoo.
    assert_eq!(
        search(
            &database,
            &env,
            "res.partner",
            scope & field("active").eq(false),
            None
        ),
        vec![ids[1]]
    );
    // `read` does not filter.
    assert_eq!(
        database
            .read(&env, "res.partner", &[ids[1]], &["active".into()])
            .unwrap()[0]["active"],
        json!(false)
    );
}

#[test]
fn timestamps_are_stored_with_microseconds_and_read_truncated() {
    let sim = OdooSim::new(SimConfig::default());
    sim.clock()
        .freeze_at(parse_datetime("2024-05-01 10:00:00.250000").unwrap());
    let first: Vec<i64> = sim.with_database(|database, env| {
        partners(
            database,
            env,
            &[json!({"name": "one"}), json!({"name": "two"})],
        )
    });
    sim.clock()
        .freeze_at(parse_datetime("2024-05-01 10:00:00.750000").unwrap());
    let second =
        sim.with_database(|database, env| partners(database, env, &[json!({"name": "three"})]));
    sim.with_database(|database, env| {
        let rows = database
            .read(
                env,
                "res.partner",
                &[first[0], first[1], second[0]],
                &["write_date".into()],
            )
            .unwrap();
        for row in &rows {
            assert_eq!(row["write_date"], json!("2024-05-01 10:00:00"));
        }
        let scope = field("id").is_in([first[0], first[1], second[0]]);
        let count = |domain: Domain| {
            database
                .search_count(env, "res.partner", &(scope.clone() & domain), None)
                .unwrap()
        };
        // The value read back matches nothing with `=`, and `>` still matches its own second.
        assert_eq!(count(field("write_date").eq("2024-05-01 10:00:00")), 0);
        assert_eq!(count(field("write_date").gt("2024-05-01 10:00:00")), 3);
        assert_eq!(
            count(field("write_date").gt("2024-05-01 10:00:00.500000")),
            1
        );
        assert_eq!(
            count(field("write_date").eq("2024-05-01 10:00:00.250000")),
            2
        );
        // Ordering uses the stored precision: .25 before .75 whatever the ids.
        let ordered = database
            .search(
                env,
                "res.partner",
                &scope,
                0,
                None,
                Some("write_date desc, id asc"),
            )
            .unwrap();
        assert_eq!(ordered, vec![second[0], first[0], first[1]]);
    });
}

#[test]
fn one_call_stamps_every_record_it_touches_alike() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00.123456");
    let list: Vec<Map<String, Value>> = (0..1000)
        .map(|i| vals(json!({"name": format!("bulk {i}")})))
        .collect();
    let ids = database.create(&env, "res.partner", &list).unwrap();
    let stamp = parse_datetime("2024-05-01 10:00:00.123456").unwrap();
    let domain = field("write_date").eq("2024-05-01 10:00:00.123456");
    assert_eq!(
        database
            .search_count(&env, "res.partner", &domain, None)
            .unwrap(),
        1000
    );
    assert_eq!(
        database.value_by_name("res.partner", ids[999], "write_date"),
        odoo_sim::values::Val::DateTime(stamp)
    );
}

#[test]
fn restricted_users_get_access_errors() {
    let mut database = Database::new(OdooVersion::V18);
    let env = env_at("2024-05-01 10:00:00");
    let mut readable = std::collections::HashSet::new();
    readable.insert("res.partner".to_owned());
    database.restrict_user(
        77,
        Access {
            readable,
            writable: Default::default(),
        },
    );
    let restricted = Env::new(77, env.now);
    assert!(
        database
            .search(&restricted, "res.partner", &Domain::all(), 0, None, None)
            .is_ok()
    );
    let error = database
        .search(&restricted, "sale.order", &Domain::all(), 0, None, None)
        .unwrap_err();
    assert_eq!(error.name, "odoo.exceptions.AccessError");
    assert!(error.message.contains("(sale.order)"));
    let error = database
        .create(&restricted, "res.partner", &[vals(json!({"name": "x"}))])
        .unwrap_err();
    assert_eq!(error.name, "odoo.exceptions.AccessError");
}

#[test]
fn version_profiles_differ_where_odoo_does() {
    let v16 = Database::new(OdooVersion::V16);
    let v17 = Database::new(OdooVersion::V17);
    let saas = Database::new(OdooVersion::Saas18_2);
    let v18 = Database::new(OdooVersion::V18);
    assert!(
        v16.model("stock.move")
            .unwrap()
            .get("quantity_done")
            .is_some()
    );
    assert!(
        v17.model("stock.move")
            .unwrap()
            .get("quantity_done")
            .is_none()
    );
    assert!(v17.model("stock.move").unwrap().get("picked").is_some());
    assert!(v18.model("res.partner").unwrap().get("mobile").is_some());
    assert!(saas.model("res.partner").unwrap().get("mobile").is_none());
    assert!(v17.model("sale.order").unwrap().get("locked").is_some());
    let env = env_at("2024-05-01 10:00:00");
    let error = saas
        .read(&env, "res.partner", &[1], &["mobile".into()])
        .unwrap_err();
    assert_eq!(
        error.message,
        "Invalid field 'mobile' on model 'res.partner'"
    );
}

#[test]
fn the_generator_is_deterministic_and_covers_the_awkward_cases() {
    let spec = odoo_sim::DataSpec {
        seed: 7,
        partners: 60,
        products: 12,
        orders: 80,
    };
    let one = OdooSim::with_data(SimConfig::default(), &spec);
    let two = OdooSim::with_data(SimConfig::default(), &spec);
    let snapshot = |sim: &OdooSim| {
        sim.with_database(|database, env| {
            let mut all = env.clone();
            all.context.insert("active_test".into(), json!(false));
            let ids = database
                .search(&all, "sale.order", &Domain::all(), 0, None, Some("id"))
                .unwrap();
            database
                .read(
                    &all,
                    "sale.order",
                    &ids,
                    &[
                        "name".into(),
                        "state".into(),
                        "amount_total".into(),
                        "partner_id".into(),
                    ],
                )
                .unwrap()
        })
    };
    assert_eq!(snapshot(&one), snapshot(&two));
    one.with_database(|database, env| {
        let count = |model: &str, domain: Domain| {
            let mut all = env.clone();
            all.context.insert("active_test".into(), json!(false));
            database.search_count(&all, model, &domain, None).unwrap()
        };
        for state in ["draft", "sent", "sale", "cancel"] {
            assert!(
                count("sale.order", field("state").eq(state)) > 0,
                "no order in state {state}"
            );
        }
        assert!(count("sale.order", field("locked").eq(true)) > 0);
        assert!(count("sale.order.line", field("product_uom_qty").eq(0)) > 0);
        assert!(count("sale.order.line", field("price_unit").eq(29.95)) > 0);
        assert!(
            count(
                "res.partner",
                field("phone").is_unset() & field("customer_rank").gt(0)
            ) > 0
        );
        assert!(
            count(
                "res.partner",
                field("email").is_unset() & field("customer_rank").gt(0)
            ) > 0
        );
        assert!(count("res.partner", field("type").eq("delivery")) > 0);
        assert!(count("res.partner", field("active").eq(false)) > 0);
        assert!(count("product.product", field("default_code").is_unset()) > 0);
        assert!(
            count(
                "product.product",
                field("product_template_attribute_value_ids").is_set()
            ) > 0
        );
        assert!(count("stock.picking", field("state").eq("done")) > 0);
        assert!(
            count(
                "res.partner",
                field("name").ilike("ü") | field("name").ilike("ø") | field("name").ilike("é")
            ) > 0
        );
    });
}

/// Seed 003's example configuration must run unchanged against the simulator: every model
/// and field it names exists, and its domains are valid.
#[test]
fn the_mirror_seeds_example_models_and_fields_all_exist() {
    let models: &[(&str, &[&str], Value)] = &[
        (
            "sale.order",
            &[
                "id",
                "name",
                "state",
                "date_order",
                "partner_id",
                "partner_invoice_id",
                "user_id",
                "company_id",
                "currency_id",
                "pricelist_id",
                "amount_untaxed",
                "amount_tax",
                "amount_total",
                "invoice_status",
                "client_order_ref",
                "write_date",
                "create_date",
            ],
            json!([["state", "in", ["sale", "done"]]]),
        ),
        (
            "sale.order.line",
            &[
                "id",
                "order_id",
                "product_id",
                "product_template_id",
                "name",
                "product_uom_qty",
                "qty_delivered",
                "qty_invoiced",
                "price_unit",
                "discount",
                "price_subtotal",
                "price_total",
                "product_uom",
                "currency_id",
                "state",
                "write_date",
                "create_date",
            ],
            json!([["state", "in", ["sale", "done"]]]),
        ),
        (
            "res.partner",
            &[
                "id",
                "name",
                "zip",
                "country_id",
                "active",
                "lang",
                "write_date",
                "create_date",
            ],
            json!([]),
        ),
        (
            "product.template",
            &[
                "id",
                "name",
                "default_code",
                "type",
                "categ_id",
                "list_price",
                "standard_price",
                "uom_id",
                "active",
                "sale_ok",
                "write_date",
                "create_date",
            ],
            json!([]),
        ),
        (
            "product.product",
            &[
                "id",
                "product_tmpl_id",
                "default_code",
                "active",
                "write_date",
                "create_date",
            ],
            json!([]),
        ),
        (
            "res.users",
            &[
                "id",
                "name",
                "login",
                "email",
                "active",
                "partner_id",
                "write_date",
                "create_date",
            ],
            json!([]),
        ),
        (
            "crm.lead",
            &[
                "id",
                "name",
                "type",
                "stage_id",
                "partner_id",
                "expected_revenue",
                "probability",
                "date_deadline",
                "date_open",
                "date_closed",
                "priority",
                "active",
                "write_date",
                "create_date",
            ],
            json!([]),
        ),
        (
            "account.move",
            &[
                "id",
                "name",
                "move_type",
                "state",
                "date",
                "invoice_date",
                "invoice_date_due",
                "partner_id",
                "currency_id",
                "company_id",
                "amount_untaxed",
                "amount_tax",
                "amount_residual",
                "amount_total",
                "payment_state",
                "invoice_origin",
                "ref",
                "write_date",
                "create_date",
            ],
            json!([["move_type", "in", ["out_invoice", "out_refund"]]]),
        ),
    ];
    for version in OdooVersion::ALL {
        let sim = OdooSim::with_data(
            SimConfig {
                version,
                ..SimConfig::default()
            },
            &odoo_sim::DataSpec {
                seed: 1,
                partners: 10,
                products: 5,
                orders: 20,
            },
        );
        sim.with_database(|database, env| {
            for (model, fields, domain) in models {
                let domain = Domain::from_json(domain).unwrap();
                let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
                let ids = database
                    .search(
                        env,
                        model,
                        &domain,
                        0,
                        Some(5),
                        Some("write_date asc, id asc"),
                    )
                    .unwrap_or_else(|e| panic!("{version} {model}: {e}"));
                database
                    .read(env, model, &ids, &fields)
                    .unwrap_or_else(|e| panic!("{version} {model}: {e}"));
            }
            let lines = database
                .search(
                    env,
                    "sale.order.line",
                    &field("state").is_in(["sale", "done"]),
                    0,
                    Some(1),
                    None,
                )
                .unwrap();
            assert!(
                !lines.is_empty(),
                "{version}: confirmed order lines are found through the related state"
            );
            let line = database
                .read(
                    env,
                    "sale.order.line",
                    &lines,
                    &["product_template_id".into(), "currency_id".into()],
                )
                .unwrap();
            assert!(
                line[0]["product_template_id"].is_array()
                    && line[0]["currency_id"][1] == json!("USD"),
                "{version}: {line:?}"
            );
        });
    }
}
