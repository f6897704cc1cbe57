//! JSON-RPC and JSON-2 are interchangeable for the caller: same calls, same answers; and
//! `Auto` picks the one the server's version prefers.

use crate::support::{Sim, no_key, quotation, vals};
use odoo_rpc::{
    Context, Domain, Error, OdooClient, Protocol, Record, SearchReadOptions, TransportChoice, field,
};
use odoo_sim::{DataSpec, Fault, FaultRule, OdooVersion};
use serde_json::{Map, Value, json};

#[tokio::test]
async fn auto_picks_json2_on_19_and_jsonrpc_before() {
    let cases = [
        (OdooVersion::V16, (16, 0, false), Protocol::JsonRpc),
        (OdooVersion::V17, (17, 0, false), Protocol::JsonRpc),
        (OdooVersion::V18, (18, 0, false), Protocol::JsonRpc),
        (OdooVersion::Saas18_2, (18, 2, true), Protocol::JsonRpc),
        (OdooVersion::V19, (19, 0, false), Protocol::Json2),
    ];
    for (version, (major, minor, saas), protocol) in cases {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        assert_eq!(client.transport_kind(), None, "nothing asked yet");
        let found = client.server_version().await.unwrap();
        assert_eq!(
            (found.major, found.minor, found.is_saas),
            (major, minor, saas),
            "{version}: {found:?}"
        );
        assert_eq!(client.transport_kind(), Some(protocol), "{version}");
        assert!(
            client
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap()
                >= 1
        );
        assert_eq!(sim.sim.call_count("common", "version"), 1, "asked once");
        assert_eq!(sim.sim.call_count("res.partner", "search_count"), 1);
        assert_eq!(
            sim.sim.call_count("common", "authenticate"),
            u64::from(protocol == Protocol::JsonRpc),
            "{version}: JSON-2 has no login step"
        );
    }
}

#[tokio::test]
async fn concurrent_first_calls_ask_the_version_once() {
    for version in [OdooVersion::V18, OdooVersion::V19] {
        let sim = Sim::start(version).await;
        let client = sim.client(TransportChoice::Auto);
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .search_count("res.partner", &Domain::all(), None)
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap() >= 1);
        }
        assert_eq!(sim.sim.call_count("common", "version"), 1, "{version}");
        assert_eq!(sim.sim.call_count("res.partner", "search_count"), 6);
    }
}

#[tokio::test]
async fn auto_falls_back_to_web_version_when_jsonrpc_answers_404() {
    let sim = Sim::start(OdooVersion::V19).await;
    sim.sim.inject(
        FaultRule::new(Fault::Status {
            status: 404,
            retry_after: None,
        })
        .on("common", Some("version")),
    );
    let client = sim.client(TransportChoice::Auto);
    assert_eq!(client.server_version().await.unwrap().major, 19);
    assert_eq!(client.transport_kind(), Some(Protocol::Json2));
    assert_eq!(sim.sim.call_count("common", "version"), 1);
    assert_eq!(sim.sim.call_count("web", "version"), 1);
}

#[tokio::test]
async fn version_discovery_is_retried_when_the_server_is_busy() {
    let sim = Sim::start(OdooVersion::V18).await;
    sim.sim.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .times(2)
        .on("common", Some("version")),
    );
    let client = sim.client(TransportChoice::Auto);
    assert_eq!(client.server_version().await.unwrap().major, 18);
    assert_eq!(client.transport_kind(), Some(Protocol::JsonRpc));
    assert_eq!(sim.sim.call_count("common", "version"), 3);
}

#[tokio::test]
async fn forcing_json2_on_an_18_server_says_json2_needs_19() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::Json2);
    let error = no_key(
        client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap_err(),
    );
    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid request: JSON-2 needs Odoo 19 or later, and {} runs Odoo 18.0: use JSON-RPC",
            sim.url()
        )
    );
    assert!(!error.is_retryable());
}

/// One labelled output per call, built only from what both runs must agree on.
type Outputs = Vec<(&'static str, Value)>;

fn rows(records: &[Record]) -> Value {
    serde_json::to_value(records).unwrap()
}

fn error_summary(error: &Error) -> Value {
    let odoo = error.odoo().unwrap_or_else(|| panic!("{error:?}"));
    json!({"kind": odoo.kind.label(), "name": odoo.name, "message": odoo.message})
}

async fn read_only_calls(client: &OdooClient) -> Outputs {
    let mut out: Outputs = Vec::new();
    let customers = SearchReadOptions::new(field("customer_rank").gt(0))
        .fields([
            "name",
            "email",
            "phone",
            "country_id",
            "state_id",
            "active",
            "write_date",
            "child_ids",
        ])
        .order("name asc, id asc")
        .offset(2)
        .limit(12)
        .context(Context::new().active_test(false));
    out.push((
        "search_read",
        rows(&client.search_read("res.partner", &customers).await.unwrap()),
    ));

    let orders = client
        .search(
            "sale.order",
            &SearchReadOptions::new(field("state").is_in(["sale", "draft"]))
                .order("id desc")
                .limit(5),
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), 5);
    out.push(("search", json!(orders)));
    let read = client
        .read(
            "sale.order",
            &orders,
            &[
                "name",
                "partner_id",
                "state",
                "amount_total",
                "order_line",
                "date_order",
                "locked",
            ],
            None,
        )
        .await
        .unwrap();
    out.push(("read", rows(&read)));

    out.push((
        "search_count",
        json!(
            client
                .search_count("sale.order", &field("state").eq("sale"), None)
                .await
                .unwrap()
        ),
    ));
    out.push((
        "search_count archived",
        json!(
            client
                .search_count(
                    "res.partner",
                    &field("active").eq(false),
                    Some(&Context::new().active_test(false))
                )
                .await
                .unwrap()
        ),
    ));
    let fields = client.fields_get("sale.order").await.unwrap();
    out.push(("fields_get", serde_json::to_value(&*fields).unwrap()));

    let mut kwargs = Map::new();
    kwargs.insert("name".into(), json!("a"));
    kwargs.insert("limit".into(), json!(5));
    out.push((
        "name_search",
        client
            .call_method("res.partner", "name_search", None, kwargs, None)
            .await
            .unwrap(),
    ));
    out.push((
        "context_get",
        client
            .call_method("res.users", "context_get", None, Map::new(), None)
            .await
            .unwrap(),
    ));
    let error = client
        .read("res.partner", &[3], &["nmae"], None)
        .await
        .unwrap_err();
    out.push(("invalid field", error_summary(&error)));
    out
}

/// Creates and changes records of its own; ids and sequence-made names differ between
/// runs, so only the values are kept.
async fn write_calls(client: &OdooClient) -> Outputs {
    let mut out: Outputs = Vec::new();
    let ids = client
        .create(
            "res.partner",
            vec![
                vals(json!({"name": "Transport A", "email": "a@example.com", "country_id": 1})),
                vals(json!({"name": "Transport B", "active": false})),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let wrote = client
        .write(
            "res.partner",
            &ids,
            vals(json!({"phone": "+20 100 000"})),
            None,
        )
        .await
        .unwrap();
    out.push(("write", json!(wrote)));
    let mut read = client
        .read(
            "res.partner",
            &ids,
            &[
                "name",
                "email",
                "phone",
                "country_id",
                "active",
                "write_date",
            ],
            None,
        )
        .await
        .unwrap();
    for record in &mut read {
        let mut map = record.clone().into_map();
        map.remove("id");
        *record = Record::new(map);
    }
    out.push(("read created", rows(&read)));

    let order = quotation(client).await;
    out.push((
        "action_confirm",
        client
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[order]),
                Map::new(),
                None,
            )
            .await
            .unwrap(),
    ));
    let mut wizard = client
        .call_method(
            "sale.order",
            "action_cancel",
            Some(&[order]),
            Map::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(wizard["context"]["default_order_id"], json!(order));
    wizard.as_object_mut().unwrap().remove("context");
    out.push(("action_cancel", wizard));
    out.push((
        "action_lock",
        client
            .call_method(
                "sale.order",
                "action_lock",
                Some(&[order]),
                Map::new(),
                None,
            )
            .await
            .unwrap(),
    ));
    let state = client
        .read(
            "sale.order",
            &[order],
            &["state", "locked", "amount_total", "write_date"],
            None,
        )
        .await
        .unwrap();
    let mut state = state[0].clone().into_map();
    state.remove("id");
    out.push(("order after", Value::Object(state)));
    let error = client
        .unlink("sale.order", &[order], None)
        .await
        .unwrap_err();
    out.push(("unlink confirmed", error_summary(&error)));
    out.push((
        "unlink",
        json!(client.unlink("res.partner", &ids, None).await.unwrap()),
    ));
    out
}

#[tokio::test]
async fn both_transports_return_the_same_results_for_the_same_calls() {
    let spec = DataSpec {
        seed: 11,
        partners: 25,
        products: 8,
        orders: 20,
    };
    let sim = Sim::with_data(OdooVersion::V19, &spec).await;
    // Both runs write at the same instant, so their timestamps can be compared too.
    sim.sim.clock().freeze();
    let rpc = sim.client(TransportChoice::JsonRpc);
    let json2 = sim.client(TransportChoice::Json2);

    let (a, b) = (read_only_calls(&rpc).await, read_only_calls(&json2).await);
    assert_eq!(a.len(), b.len());
    for ((label, left), (_, right)) in a.iter().zip(&b) {
        assert_eq!(left, right, "{label} differs between JSON-RPC and JSON-2");
    }

    let (a, b) = (write_calls(&rpc).await, write_calls(&json2).await);
    for ((label, left), (_, right)) in a.iter().zip(&b) {
        assert_eq!(left, right, "{label} differs between JSON-RPC and JSON-2");
    }
    assert_eq!(a.len(), b.len());
    // The lock answered nothing on both: JSON-RPC's missing `result`, JSON-2's `null`.
    assert_eq!(
        a.iter().find(|(l, _)| *l == "action_lock").unwrap().1,
        Value::Null
    );
}
