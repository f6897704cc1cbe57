use odoo_sim::{Fault, FaultRule, OdooSim, OdooVersion, SimConfig};
use serde_json::{Value, json};

async fn rpc(
    client: &reqwest::Client,
    url: &str,
    service: &str,
    method: &str,
    args: Value,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}/jsonrpc"))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}, "id": 7}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn jsonrpc_answers_like_odoo_18() {
    let sim = OdooSim::new(SimConfig::default());
    let key = sim.config().admin_api_key.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let url = running.url();
    let client = reqwest::Client::new();
    let (_, version) = rpc(&client, &url, "common", "version", json!([])).await;
    assert_eq!(version["result"]["server_version_info"][0], json!(18));
    let (_, wrong) = rpc(
        &client,
        &url,
        "common",
        "authenticate",
        json!(["odoo", "admin", "nope", {}]),
    )
    .await;
    assert_eq!(wrong["result"], json!(false));
    let (_, uid) = rpc(
        &client,
        &url,
        "common",
        "authenticate",
        json!(["odoo", "admin", key, {}]),
    )
    .await;
    assert_eq!(uid["result"], json!(2));

    // Errors come as HTTP 200 with error.data.name; the traceback is in error.data.debug.
    let (status, error) = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!([
            "odoo",
            2,
            key,
            "res.partner",
            "search_read",
            [[["nmae", "=", 1]]],
            {}
        ]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(error["error"]["data"]["name"], json!("builtins.ValueError"));
    assert!(
        error["error"]["data"]["debug"]
            .as_str()
            .unwrap()
            .starts_with("Traceback")
    );
    let (_, denied) = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(["odoo", 2, "bad-key", "res.partner", "search", [[]], {}]),
    )
    .await;
    assert_eq!(
        denied["error"]["data"]["name"],
        json!("odoo.exceptions.AccessDenied")
    );

    // `create`'s values by keyword alone fail in Odoo's `call_kw` (it reads `args[0]`), and
    // nothing is created.
    let partners_before = sim.with_database(|database, _| database.count("res.partner"));
    let (_, keyword_only) = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(["odoo", 2, key, "res.partner", "create", [], {"vals_list": [{"name": "K"}]}]),
    )
    .await;
    assert_eq!(
        keyword_only["error"]["data"]["name"],
        json!("builtins.IndexError")
    );
    assert_eq!(
        keyword_only["error"]["data"]["message"],
        json!("tuple index out of range")
    );
    assert_eq!(
        sim.with_database(|database, _| database.count("res.partner")),
        partners_before
    );

    // A method returning None: neither `result` nor `error`.
    let partner = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(["odoo", 2, key, "res.partner", "create", [{"name": "C"}], {}]),
    )
    .await
    .1["result"]
        .clone();
    let order = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(["odoo", 2, key, "sale.order", "create", [{"partner_id": partner}], {}]),
    )
    .await
    .1["result"]
        .clone();
    rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(
            ["odoo", 2, key, "sale.order", "action_confirm", [[order]], {
            }]
        ),
    )
    .await;
    let (_, locked) = rpc(
        &client,
        &url,
        "object",
        "execute_kw",
        json!(["odoo", 2, key, "sale.order", "action_lock", [[order]], {}]),
    )
    .await;
    assert_eq!(locked, json!({"jsonrpc": "2.0", "id": 7}));

    // JSON-2 does not exist before 19.
    let status = client
        .post(format!("{url}/json/2/res.partner/search"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    assert_eq!(sim.call_count("common", "authenticate"), 2);
    assert_eq!(sim.call_count("sale.order", "action_lock"), 1);
}

#[tokio::test]
async fn login_cooldown_after_repeated_failures() {
    let sim = OdooSim::new(SimConfig::default());
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let (_, answer) = rpc(
            &client,
            &running.url(),
            "common",
            "authenticate",
            json!(["odoo", "admin", "wrong", {}]),
        )
        .await;
        assert_eq!(answer["result"], json!(false));
    }
    let (_, answer) = rpc(
        &client,
        &running.url(),
        "common",
        "authenticate",
        json!(["odoo", "admin", sim.config().admin_api_key, {}]),
    )
    .await;
    assert_eq!(
        answer["error"]["data"]["name"],
        json!("odoo.exceptions.AccessDenied")
    );
    assert!(
        answer["error"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many login failures")
    );
}

#[tokio::test]
async fn json2_uses_http_statuses_and_bearer_keys() {
    let sim = OdooSim::new(SimConfig {
        version: OdooVersion::V19,
        ..SimConfig::default()
    });
    let key = sim.config().admin_api_key.clone();
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let url = running.url();
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{url}/json/2/{path}"))
            .bearer_auth(key)
            .header("X-Odoo-Database", "odoo")
            .json(&body)
            .send()
    };
    let response = post(
        "res.partner/search_read",
        &key,
        json!({"domain": [["id", "=", 3]], "fields": ["name"]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!([{"id": 3, "name": "Mitchell Admin"}])
    );
    let response = post("res.partner/search", "bad", json!({"domain": []}))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["message"],
        json!("Invalid apikey")
    );
    let response = post(
        "res.partner/read",
        &key,
        json!({"ids": [424242], "fields": ["name"]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["name"],
        json!("odoo.exceptions.MissingError")
    );
    let response = post(
        "sale.order/create",
        &key,
        json!({"vals_list": [{"name": "no partner"}]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 422);
    let response = post("res.users/context_get", &key, json!({}))
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["uid"], json!(2));
    let version: Value = client
        .get(format!("{url}/web/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version_info"][0], json!(19));
}

#[tokio::test]
async fn injected_faults_hit_the_wire() {
    let sim = OdooSim::new(SimConfig::default());
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let client = reqwest::Client::new();
    sim.inject(FaultRule::new(Fault::Status {
        status: 429,
        retry_after: Some("3".into()),
    }));
    let response = client
        .post(format!("{}/jsonrpc", running.url()))
        .json(&json!({"params": {"service": "common", "method": "version", "args": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    sim.inject(FaultRule::new(Fault::MalformedJson));
    let text = client
        .post(format!("{}/jsonrpc", running.url()))
        .json(&json!({"params": {"service": "common", "method": "version", "args": []}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    sim.inject(FaultRule::new(Fault::Drop));
    // The connection is cut mid-answer: the client sees an error either at send or at body read.
    let outcome = client
        .post(format!("{}/jsonrpc", running.url()))
        .json(&json!({"params": {"service": "common", "method": "version", "args": []}}))
        .send()
        .await;
    match outcome {
        Ok(response) => assert!(response.bytes().await.is_err()),
        Err(error) => assert!(!error.is_status(), "{error}"),
    }
    let (status, ok) = rpc(&client, &running.url(), "common", "version", json!([])).await;
    assert_eq!(
        (status, ok["result"]["server_version"].clone()),
        (200, json!("18.0"))
    );
    assert_eq!(sim.call_count("common", "version"), 4);
}

#[tokio::test]
async fn answers_are_not_compressed_even_for_a_client_that_accepts_gzip() {
    // A real Odoo 18 (Werkzeug) answers `Accept-Encoding: gzip` with plain JSON and a
    // Content-Length; compressing on loopback only cost CPU on both sides.
    let sim = OdooSim::new(SimConfig::default());
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let body = json!({"jsonrpc": "2.0", "method": "call", "params": {"service": "common", "method": "version", "args": []}, "id": 1});
    // A client that asks for gzip itself, so that it would see the encoding, not undo it.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = client
        .post(format!("{}/jsonrpc", running.url()))
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["server_version_info"][0], json!(18));
}
