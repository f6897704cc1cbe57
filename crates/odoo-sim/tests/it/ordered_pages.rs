//! Pages ordered by `id` or by `write_date, id` are walked through the table's indexes instead
//! of sorting every match: they must be exactly the pages the full sort gives, whatever the
//! domain, the order's direction, the offset and the limit.

use odoo_rpc::domain::{Domain, field};
use odoo_sim::orm::{Database, Env};
use odoo_sim::query::{OrderSpec, sort_page};
use odoo_sim::values::parse_datetime;
use odoo_sim::{ADMIN_UID, OdooVersion};
use serde_json::{Map, Value, json};

fn env_at(micros: i64) -> Env {
    Env::new(ADMIN_UID, micros)
}

fn create(database: &mut Database, at: i64, names: impl IntoIterator<Item = String>) -> Vec<i64> {
    let list: Vec<Map<String, Value>> = names
        .into_iter()
        .map(|name| json!({"name": name}).as_object().cloned().unwrap())
        .collect();
    database.create(&env_at(at), "res.partner", &list).unwrap()
}

/// Bulk imports sharing a microsecond, single records at microseconds unlike their ids,
/// archived records, and records written again later.
fn database() -> (Database, Vec<i64>) {
    let mut database = Database::new(OdooVersion::V18);
    let base = parse_datetime("2024-03-01 12:00:00").unwrap();
    let mut ids = create(
        &mut database,
        base + 424_242,
        (0..120).map(|i| format!("bulk {i}")),
    );
    for i in 0..60_i64 {
        // Later ids get earlier microseconds of the next second.
        let at = base + 1_000_000 + (59 - i) * 7_919;
        ids.extend(create(&mut database, at, [format!("single {i}")]));
    }
    ids.extend(create(
        &mut database,
        base + 2_000_000,
        (0..40).map(|i| format!("late {i}")),
    ));
    let archive = json!({"active": false}).as_object().cloned().unwrap();
    let archived: Vec<i64> = ids.iter().copied().step_by(7).collect();
    database
        .write(
            &env_at(base + 3_500_000),
            "res.partner",
            &archived,
            &archive,
        )
        .unwrap();
    let rename = json!({"name": "renamed"}).as_object().cloned().unwrap();
    let renamed: Vec<i64> = ids.iter().copied().skip(3).step_by(11).collect();
    database
        .write(&env_at(base + 1_000_001), "res.partner", &renamed, &rename)
        .unwrap();
    (database, ids)
}

fn reference(
    database: &Database,
    env: &Env,
    domain: &Domain,
    order: &str,
    offset: usize,
    limit: Option<usize>,
) -> Vec<i64> {
    let model = database.model("res.partner").unwrap();
    let matched = database.matching_ids(env, &model, domain).unwrap();
    let order = OrderSpec::parse(&model, order).unwrap();
    sort_page(database, &model, matched, &order, offset, limit)
}

#[test]
fn walked_pages_are_the_pages_of_a_full_sort() {
    let (database, ids) = database();
    let at = |text: &str| text.to_owned();
    let middle = ids[ids.len() / 2];
    let domains = [
        Domain::all(),
        field("write_date").is_set(),
        field("write_date").gte(at("2024-03-01 12:00:01")),
        field("write_date").gte(at("2024-03-01 12:00:01"))
            & field("write_date").lt(at("2024-03-01 12:00:02")),
        field("write_date").gte(at("2024-03-01 12:00:01"))
            & field("write_date").lt(at("2024-03-01 12:00:02"))
            & field("id").gt(middle),
        field("write_date").gt(at("2024-03-01 12:00:00.424242"))
            & field("write_date").lte(at("2024-03-01 12:00:03.500000")),
        field("write_date").gte(at("2024-03-01 12:00:00"))
            & field("write_date").lt(at("2024-03-01 12:00:01"))
            & field("id").not_in(ids.iter().copied().take(50)),
        field("write_date").eq(at("2024-03-01 12:00:00.424242")),
        field("write_date").eq(at("2024-03-01 12:00:00")),
        field("id").gt(middle) & field("id").lte(middle + 30),
        field("id").gte(middle) & field("name").ilike("single"),
        field("id").lt(ids[0]),
        field("id").gt(i64::MAX - 1),
        field("name").ilike("late") | field("id").eq(ids[1]),
        !field("name").ilike("bulk") & field("write_date").is_set(),
        field("active").eq(false) & field("write_date").gte(at("2024-03-01 12:00:00")),
        field("write_date").lt(at("2024-03-01 12:00:00")) & field("write_date").is_set(),
        field("write_date").gte(at("2024-03-01 12:00:02"))
            & field("write_date").lt(at("2024-03-01 12:00:01")),
    ];
    let orders = [
        "id",
        "id asc",
        "id desc",
        "id desc, name",
        "write_date asc, id asc",
        "write_date, id",
        "write_date desc, id desc",
        "write_date asc, id desc",
        "write_date asc",
        "name, id",
    ];
    let everything =
        env_at(0).with_context(json!({"active_test": false}).as_object().cloned().unwrap());
    for env in [env_at(0), everything] {
        for domain in &domains {
            for order in orders {
                for (offset, limit) in [
                    (0, None),
                    (0, Some(1)),
                    (0, Some(7)),
                    (5, Some(20)),
                    (0, Some(500)),
                    (230, Some(10)),
                    (400, None),
                ] {
                    let walked = database
                        .search(&env, "res.partner", domain, offset, limit, Some(order))
                        .unwrap();
                    let expected = reference(&database, &env, domain, order, offset, limit);
                    if order == "write_date asc" {
                        // Ties among equal write_dates have no defined order: same set only.
                        let mut walked = walked.clone();
                        walked.sort_unstable();
                        let mut full = reference(&database, &env, domain, order, 0, None);
                        full.sort_unstable();
                        assert!(walked.iter().all(|id| full.binary_search(id).is_ok()));
                        continue;
                    }
                    assert_eq!(
                        walked,
                        expected,
                        "domain {} order {order:?} offset {offset} limit {limit:?} active_test {}",
                        domain.to_json(),
                        env.active_test()
                    );
                }
            }
        }
    }
}

#[test]
fn the_write_date_index_follows_writes_unlinks_and_model_redeclarations() {
    let (mut database, ids) = database();
    let env = env_at(0);
    fn database_newest(database: &Database, env: &Env) -> Vec<i64> {
        database
            .search(
                env,
                "res.partner",
                &field("write_date").is_set(),
                0,
                Some(3),
                Some("write_date desc, id desc"),
            )
            .unwrap()
    }
    let before = database_newest(&database, &env);
    let touched = ids[10];
    let later = parse_datetime("2030-01-01 00:00:00.000001").unwrap();
    let rename = json!({"name": "moved"}).as_object().cloned().unwrap();
    database
        .write(&env_at(later), "res.partner", &[touched], &rename)
        .unwrap();
    assert_eq!(database_newest(&database, &env)[0], touched);
    database.unlink(&env, "res.partner", &[touched]).unwrap();
    assert_eq!(database_newest(&database, &env), before);
    let model = (*database.model("res.partner").unwrap()).clone();
    database.declare_model(model);
    assert_eq!(database_newest(&database, &env), before);
    assert_eq!(
        database_newest(&database, &env),
        reference(
            &database,
            &env,
            &field("write_date").is_set(),
            "write_date desc, id desc",
            0,
            Some(3)
        )
    );
}
