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

// ----- the listener's limits, over real loopback TCP ------------------------------------

use axum::extract::ConnectInfo;
use axum::routing::get;
use engine::http::{Limits, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Tight limits, so that the tests see them act within a moment.
fn tight() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        max_header_bytes: 8 * 1024,
        max_in_flight: 2,
        max_connections: 64,
    }
}

/// `/echo` (POST: the body's length), `/peer` (the client's address), `/wait` (answers once
/// `open` turns true, counting the requests waiting), `/healthz`.
struct Gated {
    open: tokio::sync::watch::Sender<bool>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

fn gated_app() -> (Router, Gated) {
    let (open, opened) = tokio::sync::watch::channel(false);
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = waiting.clone();
    let app = Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/wait",
            get(move || {
                let mut opened = opened.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = opened.wait_for(|open| *open).await;
                    "done"
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    (layers(app), Gated { open, waiting })
}

async fn start_with(
    app: Router,
    limits: Limits,
) -> (SocketAddr, oneshot::Sender<()>, ServerHandle) {
    let (tx, rx) = oneshot::channel::<()>();
    let (bound, task) = serve_with("127.0.0.1:0".parse().unwrap(), app, limits, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    (bound, tx, task)
}

/// Sends `request` raw and reads until the server closes the connection (bounded).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything (a body over the
    // limit): what it answered says more than a failed write.
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers or closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> Option<u16> {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn a_client_sending_its_head_slowly_or_nothing_at_all_is_cut_off() {
    let (app, _gate) = gated_app();
    let (addr, stop, task) = start_with(app, tight()).await;
    // Half a request line, then nothing: the connection is closed, nothing is answered.
    let answer = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    assert!(!answer.contains("200"), "{answer:?}");
    // A connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(!answer.contains("200"), "{answer:?}");
    // A kept-alive connection waiting for its next request likewise.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut kept).await;
    assert_eq!(status_of(&answer), Some(200), "{answer:?}");
    // Meanwhile a normal client is served.
    let answer = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), Some(200), "{answer:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed() {
    let (app, _gate) = gated_app();
    let (addr, stop, task) = start_with(app, tight()).await;
    let answer = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten..",
    )
    .await;
    assert_eq!(status_of(&answer), Some(408), "{answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer:?}"
    );
    // The same body sent whole is served.
    let body = "x".repeat(100);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{body}"
    );
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(200), "{answer:?}");
    assert!(answer.ends_with("100"), "{answer:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_announced_or_chunked() {
    let (app, _gate) = gated_app();
    let (addr, stop, task) = start_with(app, Limits::default()).await;
    let announced = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
        BODY_LIMIT + 1,
        "y".repeat(BODY_LIMIT + 1)
    );
    let answer = exchange(addr, announced.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(413), "{answer:?}");
    let chunk = "y".repeat(BODY_LIMIT + 1);
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = exchange(addr, chunked.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(413), "{answer:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_head_over_the_limit_is_431() {
    let (app, _gate) = gated_app();
    let (addr, stop, task) = start_with(app, tight()).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(9 * 1024)
    );
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(431), "{answer:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_beyond_the_limit_are_refused_at_once_and_healthz_still_answers() {
    let (app, gate) = gated_app();
    let (addr, stop, task) = start_with(app, tight()).await;
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let request = client.get(format!("{base}/wait"));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::timeout(PATIENCE, async {
        while gate.waiting.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("both requests reach the handler");
    let refused = client.get(format!("{base}/peer")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    gate.open.send_replace(true);
    for request in held {
        assert_eq!(request.await.unwrap(), 200);
    }
    // The client's address reaches the handlers.
    let peer = client.get(format!("{base}/peer")).send().await.unwrap();
    assert_eq!(peer.text().await.unwrap(), "127.0.0.1");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let (app, _gate) = gated_app();
    let limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(60),
        ..tight()
    };
    let (addr, stop, task) = start_with(app, limits).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    // The first connection holds the only place: it has sent nothing yet.
    first.write_all(b"GET /heal").await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0_u8; 1];
    // Served at once, it would have answered within milliseconds.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte))
            .await
            .is_err(),
        "the second connection was served while the first held the only place"
    );
    drop(first);
    let answer = read_to_close(&mut second).await;
    assert_eq!(
        status_of(&format!("{}{answer}", byte[0] as char)),
        Some(200),
        "{answer:?}"
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn healthz_readyz_and_metrics_show_no_secret() {
    // A store probe failing with a message that names a secret: /readyz says the store
    // failed, never what the probe said.
    let health = Health::with_probe_timeout(
        || async { Err("cannot reach postgres://bridge:hunter2-SECRET@db/bridge".to_owned()) },
        PROBE_TIMEOUT,
    );
    health.set_started();
    let server = Running::with_health(health).await;
    let (status, readiness) = server.readyz().await;
    assert_eq!(
        (status, &readiness["store"]),
        (503, &serde_json::json!("error"))
    );
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (_, body) = server.get(path).await;
        assert!(!body.contains("hunter2"), "{path}: {body}");
    }
    server.stop().await;
}
