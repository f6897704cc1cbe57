//! The simulated Cartona, over raw HTTP: what a client of `reference/cartona-api.md` sees.

use jiff::Timestamp;
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::{Fault, FaultRule, OdooSim, SimConfig};
use serde_json::{Value, json};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + seconds).unwrap()
}

async fn pull(client: &reqwest::Client, url: &str, token: &str, query: &str) -> (u16, Value) {
    let response = client
        .get(format!("{url}/order/pull-orders?{query}"))
        .header("AuthorizationToken", token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<String> {
    let list = page.get("data").unwrap_or(page);
    list.as_array()
        .unwrap()
        .iter()
        .map(|order| order["hashed_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pull_orders_pages_by_the_capped_size_within_the_window() {
    let sim = CartonaSim::new(CartonaConfig {
        page_cap: Some(2),
        ..CartonaConfig::default()
    });
    for n in 0..5 {
        sim.put_order(sample_order(
            &format!("H{n}"),
            "R1",
            at(n * 60),
            &[(1, 2.0, 3.5)],
        ));
    }
    let token = sim.config().token.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let url = running.url();
    let client = reqwest::Client::new();
    let window = format!("from={}&to={}", at(60), at(240));
    let (status, first) = pull(
        &client,
        &url,
        &token,
        &format!("page=1&per_page=100&{window}"),
    )
    .await;
    assert_eq!(
        (status, ids(&first)),
        (200, vec!["H1".to_owned(), "H2".to_owned()])
    );
    let (_, second) = pull(
        &client,
        &url,
        &token,
        &format!("page=2&per_page=100&{window}"),
    )
    .await;
    assert_eq!(ids(&second), vec!["H3".to_owned(), "H4".to_owned()]);
    let (_, third) = pull(
        &client,
        &url,
        &token,
        &format!("page=3&per_page=100&{window}"),
    )
    .await;
    assert!(ids(&third).is_empty());
    // A civil datetime is read as UTC.
    let (_, civil) = pull(
        &client,
        &url,
        &token,
        "from=2026-05-28%2020:26:40&per_page=1",
    )
    .await;
    assert_eq!(ids(&civil), vec!["H0".to_owned()]);
    let (status, _) = pull(&client, &url, "wrong", "page=1").await;
    assert_eq!(status, 401);
    let (status, _) = client
        .get(format!("{url}/order/pull-orders"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
    assert_eq!(sim.call_count("pull-orders"), 6);
}

#[tokio::test]
async fn pull_orders_can_wrap_the_list_in_data_and_fail_on_demand() {
    let sim = CartonaSim::new(CartonaConfig {
        wrap_in_data: true,
        ..CartonaConfig::default()
    });
    sim.put_order(sample_order("H1", "R1", at(0), &[(1, 1.0, 1.0)]));
    let token = sim.config().token.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let client = reqwest::Client::new();
    sim.inject("503x1@order/pull-orders".parse::<FaultRule>().unwrap());
    let (status, _) = pull(&client, &running.url(), &token, "page=1").await;
    assert_eq!(status, 503);
    let (status, page) = pull(&client, &running.url(), &token, "page=1").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"][0]["hashed_id"], json!("H1"));
}

#[tokio::test]
async fn statuses_posted_are_recorded_and_applied() {
    let sim = CartonaSim::new(CartonaConfig::default());
    sim.put_order(sample_order("H1", "R1", at(0), &[(1, 1.0, 1.0)]));
    let token = sim.config().token.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let client = reqwest::Client::new();
    let post = |id: &str, body: Value, token: &str| {
        client
            .post(format!("{}/order/update-order-status/{id}", running.url()))
            .header("AuthorizationToken", token.to_owned())
            .json(&body)
            .send()
    };
    let synced = post("H1", json!({"status": "synced", "hashed_id": "H1"}), &token)
        .await
        .unwrap();
    assert_eq!(synced.status().as_u16(), 200);
    assert_eq!(sim.orders()[0]["status"], json!("pending"));
    let approved = post(
        "H1",
        json!({"status": "approved", "hashed_id": "H1"}),
        &token,
    )
    .await
    .unwrap();
    assert_eq!(approved.status().as_u16(), 200);
    assert_eq!(sim.orders()[0]["status"], json!("approved"));
    let unknown = post("H9", json!({"status": "synced"}), &token)
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let refused = post("H1", json!({"status": "synced"}), "bad")
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let posted: Vec<_> = sim
        .posted()
        .into_iter()
        .map(|p| (p.hashed_id.clone(), p.status().map(str::to_owned)))
        .collect();
    assert_eq!(
        posted,
        vec![
            ("H1".to_owned(), Some("synced".to_owned())),
            ("H1".to_owned(), Some("approved".to_owned()))
        ]
    );
}

#[tokio::test]
async fn a_lost_answer_leaves_the_call_done() {
    // `lost`: Odoo commits, then the connection is cut; the record exists all the same.
    let sim = OdooSim::new(SimConfig::default());
    let key = sim.config().admin_api_key.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    sim.inject("lost@res.partner/create".parse::<FaultRule>().unwrap());
    assert_eq!(
        "lost".parse::<FaultRule>().map(|rule| rule.fault),
        Ok(Fault::AnswerLost)
    );
    let client = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": "object", "method": "execute_kw",
        "args": ["odoo", 2, key, "res.partner", "create", [[{"name": "Lost answer"}]]]}});
    let outcome = client
        .post(format!("{}/jsonrpc", running.url()))
        .json(&body)
        .send()
        .await;
    match outcome {
        Ok(response) => assert!(response.bytes().await.is_err()),
        Err(error) => assert!(!error.is_status(), "{error}"),
    }
    let found = sim.with_database(|database, env| {
        database
            .search(
                env,
                "res.partner",
                &odoo_rpc::field("name").eq("Lost answer"),
                0,
                None,
                None,
            )
            .unwrap()
    });
    assert_eq!(found.len(), 1);
}
