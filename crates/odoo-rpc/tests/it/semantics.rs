//! Odoo's query and value semantics, seen through the client over both transports:
//! domains, ordering, paging, `active_test`, many2one and `false` decoding, unknown fields
//! and access rights.

use crate::support::{BOTH, Sim, client, no_key, partner, vals};
use odoo_rpc::value::{odoo_option, x2many};
use odoo_rpc::{
    Context, Domain, Many2One, OdooClient, OdooDateTime, OdooErrorKind, SearchReadOptions,
    TransportChoice, field,
};
use odoo_sim::{Access, OdooVersion};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;

async fn ids(client: &OdooClient, domain: Domain, order: &str) -> Vec<i64> {
    client
        .search("res.partner", &SearchReadOptions::new(domain).order(order))
        .await
        .unwrap()
}

#[tokio::test]
async fn domain_operators_select_what_odoo_would() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let ana = partner(
            &client,
            json!({"name": "Ana", "email": "ana@example.com", "customer_rank": 3}),
        )
        .await;
        let bob = partner(&client, json!({"name": "Bob", "customer_rank": 1})).await;
        let cy = partner(
            &client,
            json!({"name": "Cy", "email": "cy@example.com", "parent_id": ana, "customer_rank": 0}),
        )
        .await;
        let scope = field("id").is_in([ana, bob, cy]);
        let run = |domain: Domain| {
            let client = client.clone();
            let domain = scope.clone() & domain;
            async move { ids(&client, domain, "id asc").await }
        };
        assert_eq!(run(field("name").eq("Bob")).await, vec![bob]);
        assert_eq!(run(field("email").is_unset()).await, vec![bob]);
        assert_eq!(run(field("email").is_set()).await, vec![ana, cy]);
        // `!=` and `not in` keep the rows whose column is empty, as SQL NULL handling in
        // Odoo does.
        assert_eq!(
            run(field("email").ne("ana@example.com")).await,
            vec![bob, cy]
        );
        assert_eq!(
            run(field("email").not_in(["ana@example.com"])).await,
            vec![bob, cy]
        );
        assert_eq!(
            run(field("email").is_in([json!(false), json!("cy@example.com")])).await,
            vec![bob, cy]
        );
        assert_eq!(run(field("email").ilike("ANA@")).await, vec![ana]);
        assert_eq!(run(field("email").like("ANA@")).await, Vec::<i64>::new());
        assert_eq!(run(field("email").not_ilike("example")).await, vec![bob]);
        assert_eq!(run(field("name").eq_ilike("a%")).await, vec![ana]);
        assert_eq!(run(field("customer_rank").gt(1)).await, vec![ana]);
        assert_eq!(run(field("customer_rank").gte(1)).await, vec![ana, bob]);
        assert_eq!(run(field("customer_rank").lt(1)).await, vec![cy]);
        assert_eq!(
            run(field("name").eq("Bob") | field("name").eq("Cy")).await,
            vec![bob, cy]
        );
        assert_eq!(run(!field("name").eq("Bob")).await, vec![ana, cy]);
        assert_eq!(run(field("parent_id.name").eq("Ana")).await, vec![cy]);
        assert_eq!(run(field("id").child_of(ana)).await, vec![ana, cy]);
        assert_eq!(
            run(field("child_ids").any(field("email").ilike("cy@"))).await,
            vec![ana]
        );
        assert_eq!(run(Domain::False).await, Vec::<i64>::new());
        assert_eq!(
            client
                .search_count(
                    "res.partner",
                    &(scope.clone() & field("email").is_set()),
                    None
                )
                .await
                .unwrap(),
            2
        );
    }
}

#[tokio::test]
async fn order_applies_every_key_in_turn() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let mut made = Vec::new();
        for (name, reference) in [
            ("b", json!("2")),
            ("a", json!("2")),
            ("c", json!(false)),
            ("a", json!("1")),
        ] {
            made.push(partner(&client, json!({"name": name, "ref": reference})).await);
        }
        let scope = field("id").is_in(made.clone());
        assert_eq!(
            ids(&client, scope.clone(), "name asc, ref asc").await,
            vec![made[3], made[1], made[0], made[2]]
        );
        assert_eq!(
            ids(&client, scope.clone(), "name asc, ref desc").await,
            vec![made[1], made[3], made[0], made[2]]
        );
        assert_eq!(
            ids(&client, scope.clone(), "name desc, id desc").await,
            vec![made[2], made[0], made[3], made[1]]
        );
        // Empty values sort last ascending and first descending, as in PostgreSQL.
        assert_eq!(
            ids(&client, scope.clone(), "ref asc, id asc").await,
            vec![made[3], made[0], made[1], made[2]]
        );
        assert_eq!(
            ids(&client, scope, "ref desc, id asc").await,
            vec![made[2], made[0], made[1], made[3]]
        );
    }
}

#[tokio::test]
async fn limit_and_offset_pages_rebuild_the_full_ordered_list() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let names = [
            "Zoë", "Ávila", "Mark", "mark", "Ñandú", "Ōta", "Ben", "Ana", "Cy", "Dee",
        ];
        let list = (0..23)
            .map(|i| vals(json!({"name": names[i % names.len()], "ref": format!("P{i:02}"), "customer_rank": 7})))
            .collect();
        let created = client.create("res.partner", list, None).await.unwrap();
        assert_eq!(created.len(), 23);

        let query = |offset: u64, limit: Option<u64>| {
            let mut options = SearchReadOptions::new(field("customer_rank").eq(7))
                .fields(["name", "ref"])
                .order("name desc, id asc")
                .offset(offset);
            if let Some(limit) = limit {
                options = options.limit(limit);
            }
            options
        };
        let full = client
            .search_read("res.partner", &query(0, None))
            .await
            .unwrap();
        assert_eq!(full.len(), 23);
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let page = client
                .search_read("res.partner", &query(offset, Some(5)))
                .await
                .unwrap();
            assert!(page.len() <= 5);
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            paged.extend(page);
        }
        assert_eq!(paged, full, "{transport:?}");
        let mut seen = HashSet::new();
        assert!(paged.iter().all(|r| seen.insert(r.id().unwrap())));
        assert_eq!(
            client
                .search_count("res.partner", &field("customer_rank").eq(7), None)
                .await
                .unwrap(),
            23
        );
    }
}

#[tokio::test]
async fn archived_records_are_only_found_with_active_test_false() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let live = partner(&client, json!({"name": "Live"})).await;
        let archived = partner(&client, json!({"name": "Archived", "active": false})).await;
        let scope = field("id").is_in([live, archived]);
        let everything = Context::new().active_test(false);

        assert_eq!(ids(&client, scope.clone(), "id").await, vec![live]);
        let all = client
            .search(
                "res.partner",
                &SearchReadOptions::new(scope.clone())
                    .order("id")
                    .context(everything.clone()),
            )
            .await
            .unwrap();
        assert_eq!(all, vec![live, archived]);
        assert_eq!(
            client
                .search_count("res.partner", &scope, Some(&everything))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            client
                .search_count("res.partner", &scope, None)
                .await
                .unwrap(),
            1
        );
        // `read` by id does not filter.
        let rows = client
            .read("res.partner", &[archived], &["active"], None)
            .await
            .unwrap();
        assert_eq!(rows[0].bool("active").unwrap(), Some(false));
    }
}

#[tokio::test]
async fn many2one_fields_read_as_id_and_display_name() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let egypt = client
            .search(
                "res.country",
                &SearchReadOptions::new(field("code").eq("EG")),
            )
            .await
            .unwrap()[0];
        let company = partner(
            &client,
            json!({"name": "Nile Trading", "is_company": true, "country_id": egypt}),
        )
        .await;
        let contact = partner(&client, json!({"name": "Depot", "parent_id": company})).await;
        let rows = client
            .read(
                "res.partner",
                &[company, contact],
                &["country_id", "parent_id"],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            rows[0].many2one("country_id").unwrap(),
            Some(Many2One {
                id: egypt,
                name: Some("Egypt".into())
            })
        );
        assert_eq!(rows[0].many2one("parent_id").unwrap(), None);
        assert_eq!(rows[1].many2one("country_id").unwrap(), None);
        assert_eq!(
            rows[1].many2one("parent_id").unwrap(),
            Some(Many2One {
                id: company,
                name: Some("Nile Trading".into())
            })
        );
    }
}

#[derive(Debug, Deserialize)]
struct Contact {
    id: i64,
    name: String,
    #[serde(default, with = "odoo_option")]
    email: Option<String>,
    #[serde(default, with = "odoo_option")]
    phone: Option<String>,
    #[serde(default, with = "odoo_option")]
    parent_id: Option<Many2One>,
    #[serde(default, with = "odoo_option")]
    customer_rank: Option<i64>,
    #[serde(default, with = "x2many")]
    child_ids: Vec<i64>,
    active: bool,
    write_date: OdooDateTime,
}

#[tokio::test]
async fn false_decodes_as_none_in_typed_rows() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let full = partner(
            &client,
            json!({"name": "Full", "email": "f@example.com", "phone": "+34 1", "customer_rank": 2}),
        )
        .await;
        let bare = partner(&client, json!({"name": "Bare", "parent_id": full})).await;
        let rows: Vec<Contact> = client
            .search_read_as(
                "res.partner",
                &SearchReadOptions::new(field("id").is_in([full, bare]))
                    .fields([
                        "name",
                        "email",
                        "phone",
                        "parent_id",
                        "customer_rank",
                        "child_ids",
                        "active",
                        "write_date",
                    ])
                    .order("id"),
            )
            .await
            .unwrap();
        let (full_row, bare_row) = (&rows[0], &rows[1]);
        assert_eq!((full_row.id, full_row.name.as_str()), (full, "Full"));
        assert_eq!(full_row.email.as_deref(), Some("f@example.com"));
        assert_eq!(full_row.phone.as_deref(), Some("+34 1"));
        assert_eq!(full_row.customer_rank, Some(2));
        assert_eq!(full_row.parent_id, None);
        assert_eq!(full_row.child_ids, vec![bare]);
        assert_eq!(bare_row.email, None);
        assert_eq!(bare_row.phone, None);
        assert_eq!(bare_row.parent_id.as_ref().map(|p| p.id), Some(full));
        assert!(bare_row.child_ids.is_empty());
        assert!(full_row.active && bare_row.active);
        assert_eq!(full_row.write_date, bare_row.write_date);

        let typed: Vec<Contact> = client
            .read_as(
                "res.partner",
                &[bare],
                &[
                    "name",
                    "email",
                    "phone",
                    "parent_id",
                    "customer_rank",
                    "child_ids",
                    "active",
                    "write_date",
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(typed[0].name, "Bare");
    }
}

#[tokio::test]
async fn unknown_fields_are_reported_as_invalid_field() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let read = no_key(
            client
                .read("res.partner", &[3], &["name", "nmae"], None)
                .await
                .unwrap_err(),
        );
        let search = no_key(
            client
                .search_read(
                    "res.partner",
                    &SearchReadOptions::new(field("nmae").eq("x")).fields(["name"]),
                )
                .await
                .unwrap_err(),
        );
        let create = no_key(
            client
                .create("res.partner", vec![vals(json!({"nmae": "x"}))], None)
                .await
                .unwrap_err(),
        );
        for error in [&read, &search, &create] {
            let odoo = error.odoo().unwrap();
            assert_eq!(odoo.kind, OdooErrorKind::ValueError, "{transport:?}");
            assert!(odoo.message.contains("Invalid field"), "{}", odoo.message);
            assert!(odoo.message.contains("nmae"), "{}", odoo.message);
            assert!(error.to_string().contains("Invalid field"), "{error}");
            assert!(!error.to_string().contains("Traceback"), "{error}");
        }
    }
}

#[tokio::test]
async fn a_restricted_user_gets_access_errors() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let key = "it-reader-key-7a5e02b4c9d1";
        let access = Access {
            readable: HashSet::from(["res.partner".to_owned()]),
            writable: HashSet::new(),
        };
        sim.sim.add_user("reader", key, Some(access)).unwrap();
        let mut config = sim.config(transport);
        config.login = "reader".into();
        config.api_key = key.into();
        let reader = client(config);

        assert!(
            reader
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap()
                >= 1
        );
        sim.sim.reset_calls();
        let error = no_key(
            reader
                .search_read("sale.order", &SearchReadOptions::default().fields(["name"]))
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::AccessError, "{error:?}");
        assert!(odoo.message.contains("sale.order"), "{}", odoo.message);
        assert!(!error.is_retryable() && !error.is_authentication());
        assert_eq!(sim.sim.call_count("sale.order", "search_read"), 1);

        let error = no_key(
            reader
                .create("res.partner", vec![vals(json!({"name": "Nope"}))], None)
                .await
                .unwrap_err(),
        );
        assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::AccessError);
        assert_eq!(sim.sim.call_count("res.partner", "create"), 1);
        // The access error did not make the client log in again.
        if transport == TransportChoice::JsonRpc {
            assert_eq!(sim.sim.call_count("common", "authenticate"), 0);
        }
    }
}

#[tokio::test]
async fn the_default_context_applies_under_each_calls_context() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let admin = sim.client(transport);
        let live = partner(&admin, json!({"name": "Shown"})).await;
        let archived = partner(&admin, json!({"name": "Hidden", "active": false})).await;
        let scope = field("id").is_in([live, archived]);

        let mut config = sim.config(transport);
        config.default_context = Context::new().active_test(false);
        let mirror = client(config);
        assert_eq!(
            ids(&mirror, scope.clone(), "id").await,
            vec![live, archived],
            "{transport:?}: the default context reaches the server"
        );
        let only_live = mirror
            .search(
                "res.partner",
                &SearchReadOptions::new(scope.clone())
                    .order("id")
                    .context(Context::new().active_test(true)),
            )
            .await
            .unwrap();
        assert_eq!(only_live, vec![live], "the call's context wins");
        assert_eq!(
            mirror
                .search_count("res.partner", &scope, Some(&Context::new().lang("en_US")))
                .await
                .unwrap(),
            2,
            "other keys leave the default in place"
        );
    }
}
