//! The daemon's HTTP surface (`/healthz`, `/readyz`, `/metrics`) over loopback.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use engine::http::metrics::{self as m, DeliveryOutcome};
use engine::http::{BODY_LIMIT, Health, Metrics, ServerHandle, layers, router, serve};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// A short probe timeout, so a hanging probe fails fast.
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// A bound on waits that should end at once, so a bug fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1:0 and the means to stop it.
struct Running {
    base: String,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: ServerHandle,
}

impl Running {
    async fn start(app: Router) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (bound, task) = serve(addr, app, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        assert_ne!(bound.port(), 0, "the bound port is reported");
        Running {
            base: format!("http://{bound}"),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            shutdown: Some(tx),
            task,
        }
    }

    async fn with_health(health: Health) -> Running {
        Running::start(router(health, Metrics::install().unwrap())).await
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn readyz(&self) -> (u16, serde_json::Value) {
        let (status, body) = self.get("/readyz").await;
        (status, serde_json::from_str(&body).unwrap())
    }

    /// Ends the server and waits for its task.
    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("serve ends after the shutdown signal")
            .unwrap()
            .unwrap();
    }
}

fn passing() -> Health {
    Health::with_probe_timeout(|| async { Ok(()) }, PROBE_TIMEOUT)
}

fn failing(names: &serde_json::Value) -> Vec<&str> {
    names["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = Running::with_health(passing()).await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({ "status": "ok" })
    );
    server.stop().await;
}

#[tokio::test]
async fn readyz_follows_start_probe_and_shutdown() {
    let health = passing();
    let server = Running::with_health(health.clone()).await;

    let (status, body) = server.readyz().await;
    assert_eq!(status, 503, "not started yet: {body}");
    assert_eq!(failing(&body), ["started"]);
    assert_eq!(body["store"], "ok");

    health.set_started();
    let (status, body) = server.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert!(failing(&body).is_empty());

    health.set_shutting_down();
    let (status, body) = server.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing(&body), ["shutting_down"]);
    assert_eq!(body["status"], "unavailable");

    server.stop().await;
}

#[tokio::test]
async fn readyz_fails_while_the_store_probe_fails() {
    let store_up = Arc::new(AtomicBool::new(false));
    let probe_state = store_up.clone();
    let health = Health::with_probe_timeout(
        move || {
            let up = probe_state.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("connection refused (postgres://db:5432)".to_owned())
                }
            }
        },
        PROBE_TIMEOUT,
    );
    health.set_started();
    let server = Running::with_health(health).await;

    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(failing(&json), ["store"]);
    assert_eq!(json["store"], "error");
    assert!(
        !body.contains("postgres") && !body.contains("refused"),
        "the probe's error text stays in the logs: {body}"
    );

    store_up.store(true, Ordering::SeqCst);
    let (status, _) = server.readyz().await;
    assert_eq!(status, 200, "ready again once the store answers");

    server.stop().await;
}

#[tokio::test]
async fn readyz_fails_when_the_store_probe_hangs_and_healthz_still_answers() {
    let health = Health::with_probe_timeout(std::future::pending, PROBE_TIMEOUT);
    health.set_started();
    let server = Running::with_health(health).await;

    let (status, body) = server.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing(&body), ["store"]);
    assert_eq!(body["store"], "timeout");

    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn healthz_does_not_wait_for_a_slow_readiness_probe() {
    // A probe that hangs much longer than this test waits: /healthz must answer meanwhile.
    let health = Health::with_probe_timeout(std::future::pending, Duration::from_secs(3600));
    let server = Running::with_health(health).await;
    let slow = {
        let client = server.client.clone();
        let url = format!("{}/readyz", server.base);
        tokio::spawn(async move { client.get(url).send().await })
    };
    let (status, _) = tokio::time::timeout(PATIENCE, server.get("/healthz"))
        .await
        .expect("/healthz answers while /readyz waits");
    assert_eq!(status, 200);
    assert!(!slow.is_finished());
    slow.abort();
    // The /readyz request stays in flight (until the 10 s request timeout): don't wait for a
    // graceful shutdown here; the runtime ends the server with the test.
}

#[tokio::test]
async fn metrics_render_counters_with_labels_and_help() {
    let server = Running::with_health(passing()).await;
    ::metrics::counter!(
        m::DELIVERIES_TOTAL,
        m::LABEL_CONNECTION => "http-test-connection",
        m::LABEL_OUTCOME => DeliveryOutcome::Delivered.as_str(),
    )
    .increment(3);
    ::metrics::gauge!(m::CONNECTIONS, m::LABEL_STATE => "active").set(2.0);

    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();

    assert!(
        text.contains("# HELP odoo_bridge_deliveries_total Webhook delivery attempts"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE odoo_bridge_deliveries_total counter"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("odoo_bridge_deliveries_total{")
                && line.contains(r#"connection="http-test-connection""#)
        })
        .unwrap_or_else(|| panic!("no sample for the test connection:\n{text}"));
    assert!(line.contains(r#"outcome="delivered""#), "{line}");
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("# HELP odoo_bridge_connections Connections known to the daemon"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_install_twice_shares_one_recorder() {
    let first = Metrics::install().unwrap();
    let second = Metrics::install().unwrap();
    ::metrics::counter!(m::ODOO_CALLS_TOTAL, m::LABEL_CONNECTION => "http-test-twice").increment(1);
    for metrics in [first, second] {
        assert!(
            metrics
                .render()
                .contains(r#"odoo_bridge_odoo_calls_total{connection="http-test-twice"}"#)
        );
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = Running::with_health(passing()).await;
    let (status, _) = server.get("/nope").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = layers(Router::new().route(
        "/echo",
        post(|body: Bytes| async move { body.len().to_string() }),
    ));
    let server = Running::start(app).await;
    let url = format!("{}/echo", server.base);

    let small = server
        .client
        .post(&url)
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status().as_u16(), 200);
    assert_eq!(small.text().await.unwrap(), "1024");

    let big = server
        .client
        .post(&url)
        .body(vec![b'x'; BODY_LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_serve_and_closes_the_port() {
    let server = Running::with_health(passing()).await;
    let base = server.base.clone();
    let client = server.client.clone();
    assert_eq!(server.get("/healthz").await.0, 200);
    server.stop().await;
    let after = client.get(format!("{base}/healthz")).send().await;
    assert!(after.is_err(), "nothing listens after shutdown: {after:?}");
}
