//! `POST /marketplace_integration/webhook/status` on loopback: each bad request gets its
//! answer and changes nothing; a good one is stored once, then applied.

use super::{FLOW, World};
use engine::clock::Clock;
use engine::inbox::receive::Receiver;
use engine::marketplace::inbound::{WEBHOOK_PATH, routes};
use engine::runtime::FlowSignals;
use engine::store::{
    Flow, FlowKind, InboundFilter, InboxStore, LogFilter, MarketplaceStore, SecretValue,
    TenantStore,
};
use engine::webhook::WebhookSecret;
use jiff::Timestamp;
use odoo_sim::OdooVersion;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;

const GUARDED: &str = "b1b2b3b4b5b6b7b8";
const LIMITED: &str = "c1c2c3c4c5c6c7c8";

fn signed(secret: &str, id: &str, at: Timestamp, body: &[u8]) -> Vec<(&'static str, String)> {
    let secret = WebhookSecret::new(secret).unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.as_second().to_string()),
        ("webhook-signature", secret.sign(id, at.as_second(), body)),
        ("content-type", "application/json".to_owned()),
    ]
}

async fn post(url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Another marketplace flow of the world's tenant, with its own secret and settings.
async fn add_marketplace(world: &World, id: &str, name: &str, secret: &str, extra: Value) {
    let mut settings = world.settings.to_map();
    if let Value::Object(extra) = extra {
        settings.extend(extra);
    }
    let mut secrets = world.secrets.to_flow_secrets();
    secrets.insert("webhook_secret".into(), SecretValue::new(secret));
    let tenant_id = world.store.flows(None).await.unwrap()[0].tenant_id.clone();
    let now = Timestamp::now();
    world
        .store
        .insert_flow(&Flow {
            id: id.into(),
            tenant_id,
            kind: FlowKind::Marketplace,
            name: name.into(),
            is_active: true,
            interval_seconds: 60,
            settings,
            secrets,
            last_sync_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
}

async fn serve(world: &World) -> String {
    let receiver = Receiver::new(world.store.clone(), Clock::system(), FlowSignals::default());
    let app = engine::http::layers(routes(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    url
}

async fn stored_events(world: &World) -> usize {
    world
        .store
        .inbound_events(&InboundFilter::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn each_bad_status_request_gets_its_answer_and_changes_nothing() {
    let world = World::build_on(OdooVersion::V18, None, None).await;
    world.put("HTTP-1", "pending");
    world.import().await;
    world.apply().await;
    let secret = world.secrets.webhook_secret.expose().to_owned();
    let url = serve(&world).await;
    let now = Timestamp::now();
    let body = |value: Value| value.to_string().into_bytes();
    let good = body(json!({"hashed_id": "HTTP-1", "status": "approved"}));
    let before = stored_events(&world).await;
    let order_before = world.store.marketplace_order(FLOW, "HTTP-1").await.unwrap();
    let log_before = world
        .store
        .marketplace_log(&LogFilter::default())
        .await
        .unwrap();

    // 401: no signature, a wrong one, another secret's, a stale timestamp.
    let (status, answer) = post(&url, &[], good.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let mut forged = signed(&secret, "m-1", now, &good);
    forged[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    assert_eq!(
        post(&url, &forged, good.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let other = signed("another-secret-entirely", "m-2", now, &good);
    assert_eq!(
        post(&url, &other, good.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let stale = signed(
        &secret,
        "m-3",
        now - jiff::SignedDuration::from_mins(6),
        &good,
    );
    assert_eq!(
        post(&url, &stale, good.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The body signed is not the body sent.
    let tampered = body(json!({"hashed_id": "HTTP-1", "status": "cancelled_by_retailer"}));
    let (status, answer) = post(&url, &signed(&secret, "m-4", now, &good), tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(!answer.to_string().contains(&secret));
    // 413: over 64 KiB.
    let huge =
        body(json!({"hashed_id": "HTTP-1", "status": "approved", "pad": "x".repeat(70_000)}));
    let (status, _) = post(&url, &signed(&secret, "m-5", now, &huge), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // 400: not JSON, no order, an unknown status.
    for (n, bad) in [
        b"{not json".to_vec(),
        body(json!({"status": "approved"})),
        body(json!({"hashed_id": "HTTP-1", "status": "done"})),
        body(json!({"hashed_id": "HTTP-1", "status": "synced"})),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("m-bad-{n}");
        let (status, answer) = post(&url, &signed(&secret, &id, now, &bad), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed request")
        );
    }
    // 404: a marketplace that does not exist.
    let (status, _) = post(
        &format!("{url}/nope"),
        &signed(&secret, "m-6", now, &good),
        good.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // 403 and 429 on marketplaces configured for them (found by path: name or flow id).
    add_marketplace(
        &world,
        GUARDED,
        "Guarded",
        "guarded-secret",
        json!({"allow_from": ["10.0.0.0/8"]}),
    )
    .await;
    add_marketplace(
        &world,
        LIMITED,
        "Limited",
        "limited-secret",
        json!({"inbound_per_minute": 2}),
    )
    .await;
    let (status, _) = post(
        &format!("{url}/Guarded"),
        &signed("guarded-secret", "m-7", now, &good),
        good.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown_order = body(json!({"hashed_id": "NOT-OURS", "status": "approved"}));
    let limited = format!("{url}/{LIMITED}");
    for n in 0..2 {
        let id = format!("m-rate-{n}");
        let (status, _) = post(
            &limited,
            &signed("limited-secret", &id, now, &unknown_order),
            unknown_order.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, _) = post(
        &limited,
        &signed("limited-secret", "m-rate-2", now, &unknown_order),
        unknown_order.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Nothing changed for the world's marketplace: no event, no log row, no status.
    assert_eq!(
        stored_events(&world).await,
        before + 2,
        "only the two accepted by Limited"
    );
    assert_eq!(
        world.store.marketplace_order(FLOW, "HTTP-1").await.unwrap(),
        order_before
    );
    assert_eq!(
        world
            .store
            .marketplace_log(&LogFilter::default())
            .await
            .unwrap(),
        log_before
    );
    assert_eq!(world.view("HTTP-1").await.state, "draft");

    // With several marketplaces, the bare path goes to the one whose secret signed; stored
    // once (202, then 200), then applied.
    let headers = signed(&secret, "m-good", now, &good);
    let (status, answer) = post(&url, &headers, good.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = post(&url, &headers, good.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    // The public module's field names, on the named path.
    let legacy = body(json!({"order_id": "HTTP-1", "order_status": "assigned_to_salesman"}));
    let (status, _) = post(
        &format!("{url}/Cartona"),
        &signed(&secret, "m-legacy", now, &legacy),
        legacy,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // One event of an order at a time, in arrival order.
    assert_eq!(world.apply().await.applied, 1);
    assert_eq!(world.apply().await.applied, 1);
    let view = world.view("HTTP-1").await;
    assert_eq!(
        (view.state.as_str(), view.delivery_state()),
        ("sale", "done")
    );
    assert_eq!(
        world
            .store
            .marketplace_order(FLOW, "HTTP-1")
            .await
            .unwrap()
            .unwrap()
            .marketplace_status
            .as_deref(),
        Some("assigned_to_salesman")
    );
}

#[tokio::test]
async fn the_generic_inbox_route_reads_a_marketplaces_events_as_statuses() {
    let world = World::build_on(OdooVersion::V18, None, None).await;
    let secret = world.secrets.webhook_secret.expose().to_owned();
    let receiver = Receiver::new(world.store.clone(), Clock::system(), FlowSignals::default());
    let app = engine::http::layers(engine::inbox::receive::routes(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let url = format!("{base}/inbox/{FLOW}");
    let now = Timestamp::now();
    let before = stored_events(&world).await;
    // What the status route refuses, the generic route refuses too: nothing stored.
    for (n, bad) in [
        json!({"status": "approved"}),
        json!({"hashed_id": "H-GEN", "status": "done"}),
        json!({"type": "status", "subject": "H-GEN"}),
    ]
    .into_iter()
    .enumerate()
    {
        let bad = bad.to_string().into_bytes();
        let id = format!("g-bad-{n}");
        let (status, answer) = post(&url, &signed(&secret, &id, now, &bad), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {answer}");
    }
    assert_eq!(stored_events(&world).await, before);
    // A good status is stored as the status route would store it.
    let good = json!({"hashed_id": "H-GEN", "status": "approved"})
        .to_string()
        .into_bytes();
    let (status, answer) = post(&url, &signed(&secret, "g-good", now, &good), good).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let events = world
        .store
        .inbound_events(&InboundFilter::default())
        .await
        .unwrap();
    let stored = events
        .iter()
        .find(|event| event.event_id == "g-good")
        .unwrap();
    assert_eq!(stored.subject.as_deref(), Some("H-GEN"));
}
