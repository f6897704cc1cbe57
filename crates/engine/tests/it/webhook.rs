//! The webhook primitives against a real HTTP receiver on loopback.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use engine::webhook::sender::{HEADER_CONNECTION_ID, HEADER_SECRET, USER_AGENT};
use engine::webhook::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use engine::webhook::{
    BreakerConfig, BreakerState, CircuitBreaker, DeliveryError, FailureClass, Packet, SenderConfig,
    Verifier, WebhookSecret, WebhookSender, target_key,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const SECRET: &str = "6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f";

/// What the receiver saw of one request, and what it made of the signature.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// Our verifier accepted it.
    ours: bool,
    /// The `standardwebhooks` crate accepted it.
    reference: bool,
}

#[derive(Clone)]
struct Receiver {
    secret: WebhookSecret,
    seen: Arc<Mutex<Vec<Received>>>,
    /// `/flaky` answers 503 while this is set.
    down: Arc<AtomicBool>,
}

struct Running {
    base: String,
    receiver: Receiver,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Received> {
        self.receiver.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.receiver.seen.lock().unwrap().len()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ours = Verifier::new(receiver.secret.clone())
        .verify(&headers, &body)
        .is_ok();
    // The reference library base64-decodes any secret it is given; a raw (UUID) secret is
    // handed over as its bytes.
    let reference = standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec())
        .unwrap()
        .verify(&body, &headers)
        .is_ok();
    let path = uri.path().to_owned();
    receiver.seen.lock().unwrap().push(Received {
        path: path.clone(),
        headers,
        body,
        ours,
        reference,
    });
    match path.as_str() {
        "/ok" => (StatusCode::OK, "thanks").into_response(),
        "/garbage" => (StatusCode::OK, "\u{0}<html>{not json").into_response(),
        "/accepted" => StatusCode::ACCEPTED.into_response(),
        "/gone" => (StatusCode::GONE, "this endpoint was removed").into_response(),
        "/bad" => (StatusCode::UNPROCESSABLE_ENTITY, "no such field").into_response(),
        "/request-timeout" => StatusCode::REQUEST_TIMEOUT.into_response(),
        "/rate-seconds" => retry_after(StatusCode::TOO_MANY_REQUESTS, "7"),
        "/rate-huge" => retry_after(StatusCode::TOO_MANY_REQUESTS, "86400"),
        "/rate-date" => {
            // Two hours ahead: past the sender's clamp, so the result does not depend on
            // how long the request took.
            let later = SystemTime::now() + Duration::from_secs(2 * 3600);
            let date = jiff::Timestamp::try_from(later)
                .unwrap()
                .strftime("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            retry_after(StatusCode::TOO_MANY_REQUESTS, &date)
        }
        "/rate-past-date" => retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ),
        "/unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "<h1>down</h1>").into_response(),
        "/unavailable-later" => retry_after(StatusCode::SERVICE_UNAVAILABLE, "30"),
        "/error" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/redirect" => (
            StatusCode::FOUND,
            [(header::LOCATION, "https://elsewhere.example/hook")],
        )
            .into_response(),
        "/echo" => {
            // A debugging receiver that quotes the request back, secret included, at length.
            let text = format!(
                "bad request; secret was {} and the body was {}",
                SECRET,
                "x".repeat(4000)
            );
            (StatusCode::BAD_REQUEST, text).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        "/flaky" if receiver.down.load(Ordering::SeqCst) => {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        "/flaky" => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn retry_after(status: StatusCode, value: &str) -> Response {
    let mut response = (status, "slow down").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    response
}

async fn start_receiver() -> Running {
    let receiver = Receiver {
        secret: WebhookSecret::new(SECRET).unwrap(),
        seen: Arc::default(),
        down: Arc::default(),
    };
    let app = Router::new().fallback(receive).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running { base, receiver }
}

fn sender() -> WebhookSender {
    WebhookSender::new(SenderConfig::default()).unwrap()
}

fn secret() -> WebhookSecret {
    WebhookSecret::new(SECRET).unwrap()
}

fn packet(id: &str) -> Packet {
    Packet {
        id: id.to_owned(),
        connection_id: "conn-42".to_owned(),
        body: Bytes::from_static(br#"{"event":"order.created","external_id":"odoo_db_7"}"#),
    }
}

async fn send(running: &Running, path: &str) -> Result<u16, DeliveryError> {
    sender()
        .send(&running.url(path), &secret(), &packet("msg_1"))
        .await
        .map(|delivered| delivered.status)
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers.get(name).unwrap().to_str().unwrap()
}

#[tokio::test]
async fn the_receiver_gets_the_seeds_headers_and_a_valid_signature() {
    let running = start_receiver().await;
    let sender = sender();
    let packet = packet("msg_2f1c9a");
    // The same packet twice: a failed send and its retry.
    let first = sender
        .send(&running.url("/unavailable"), &secret(), &packet)
        .await;
    assert_eq!(first.unwrap_err().class, FailureClass::Http5xx);
    let second = sender
        .send(&running.url("/ok"), &secret(), &packet)
        .await
        .unwrap();
    assert_eq!(second.status, 200);

    let seen = running.seen();
    assert_eq!(seen.len(), 2);
    for received in &seen {
        assert!(received.ours, "our verifier refused {:?}", received.path);
        assert!(
            received.reference,
            "the reference refused {:?}",
            received.path
        );
        assert_eq!(header(received, "content-type"), "application/json");
        assert_eq!(header(received, HEADER_SECRET), SECRET);
        assert_eq!(header(received, HEADER_CONNECTION_ID), "conn-42");
        assert_eq!(header(received, "user-agent"), USER_AGENT);
        assert!(USER_AGENT.starts_with("odoo-bridge/"));
        assert_eq!(header(received, HEADER_ID), "msg_2f1c9a");
        assert!(header(received, HEADER_TIMESTAMP).parse::<i64>().is_ok());
        assert!(header(received, HEADER_SIGNATURE).starts_with("v1,"));
        assert_eq!(received.body, packet.body);
    }
    // A tampered body fails both verifiers.
    let tampered = b"{\"event\":\"order.cancelled\"}";
    assert!(
        Verifier::new(secret())
            .verify(&seen[1].headers, tampered)
            .is_err()
    );
    assert!(
        standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec())
            .unwrap()
            .verify(tampered, &seen[1].headers)
            .is_err()
    );
    // The `whsec_` form of the same secret is what a receiver gives a Standard Webhooks
    // library that only takes `whsec_` secrets.
    let whsec = secret().expose_whsec();
    assert!(
        standardwebhooks::Webhook::new(&whsec)
            .unwrap()
            .verify(&seen[1].body, &seen[1].headers)
            .is_ok()
    );
}

#[tokio::test]
async fn signatures_made_by_the_reference_library_verify_here() {
    let whsec = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let reference = standardwebhooks::Webhook::new(whsec).unwrap();
    let now = engine::webhook::signature::unix_seconds(SystemTime::now());
    let body = br#"{"event":"ping"}"#;
    let signature = reference.sign("msg_ref", now, body).unwrap();
    let ours = Verifier::new(WebhookSecret::new(whsec).unwrap());
    let timestamp = now.to_string();
    assert_eq!(
        ours.verify_parts("msg_ref", &timestamp, &signature, body),
        Ok(())
    );
    // And ours, made with a raw secret, verifies there.
    let raw = secret();
    let signed = engine::webhook::signature::sign(&[&raw], "msg_ours", now, body);
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_ID, HeaderValue::from_str(&signed.id).unwrap());
    headers.insert(HEADER_TIMESTAMP, HeaderValue::from(signed.timestamp));
    headers.insert(
        HEADER_SIGNATURE,
        HeaderValue::from_str(&signed.signature).unwrap(),
    );
    standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec())
        .unwrap()
        .verify(body, &headers)
        .unwrap();
    assert_eq!(Verifier::new(raw).verify(&headers, body), Ok(()));
}

#[tokio::test]
async fn any_2xx_is_a_success_whatever_the_body() {
    let running = start_receiver().await;
    assert_eq!(send(&running, "/garbage").await.unwrap(), 200);
    assert_eq!(send(&running, "/accepted").await.unwrap(), 202);
    running.receiver.down.store(false, Ordering::SeqCst);
    assert_eq!(send(&running, "/flaky").await.unwrap(), 204);
}

#[tokio::test]
async fn gone_and_other_client_errors_are_permanent() {
    let running = start_receiver().await;
    for path in ["/gone", "/bad", "/redirect"] {
        let error = send(&running, path).await.unwrap_err();
        assert_eq!(error.class, FailureClass::Http4xx, "{path}");
        assert!(error.permanent, "{path}");
        assert!(!error.is_retryable(), "{path}");
        assert_eq!(error.retry_after, None, "{path}");
    }
    let gone = send(&running, "/gone").await.unwrap_err();
    assert_eq!(gone.status, Some(410));
    assert!(gone.message.contains("410"), "{}", gone.message);
    assert!(gone.message.contains("this endpoint was removed"));
    let redirect = send(&running, "/redirect").await.unwrap_err();
    assert!(
        redirect.message.contains("not followed"),
        "{}",
        redirect.message
    );
    // A request timeout is about timing, not the packet.
    let timeout = send(&running, "/request-timeout").await.unwrap_err();
    assert_eq!(timeout.class, FailureClass::Http4xx);
    assert!(timeout.is_retryable());
}

#[tokio::test]
async fn rate_limits_carry_their_retry_after() {
    let running = start_receiver().await;
    let max = SenderConfig::default().max_retry_after;

    let seconds = send(&running, "/rate-seconds").await.unwrap_err();
    assert_eq!(seconds.class, FailureClass::RateLimited);
    assert_eq!(seconds.status, Some(429));
    assert!(seconds.is_retryable());
    assert_eq!(seconds.retry_after, Some(Duration::from_secs(7)));

    let huge = send(&running, "/rate-huge").await.unwrap_err();
    assert_eq!(huge.retry_after, Some(max));

    let date = send(&running, "/rate-date").await.unwrap_err();
    assert_eq!(date.class, FailureClass::RateLimited);
    assert_eq!(date.retry_after, Some(max));

    let past = send(&running, "/rate-past-date").await.unwrap_err();
    assert_eq!(past.retry_after, Some(Duration::ZERO));

    let later = send(&running, "/unavailable-later").await.unwrap_err();
    assert_eq!(later.class, FailureClass::RateLimited);
    assert_eq!(later.status, Some(503));
    assert_eq!(later.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let running = start_receiver().await;
    for (path, status) in [("/unavailable", 503), ("/error", 500)] {
        let error = send(&running, path).await.unwrap_err();
        assert_eq!(error.class, FailureClass::Http5xx, "{path}");
        assert_eq!(error.status, Some(status));
        assert!(error.is_retryable());
        assert_eq!(error.retry_after, None);
    }
}

#[tokio::test]
async fn error_texts_never_carry_the_secret_and_stay_short() {
    let running = start_receiver().await;
    let error = send(&running, "/echo").await.unwrap_err();
    assert!(!error.message.contains(SECRET), "{}", error.message);
    assert!(
        error.message.contains("secret was ••••"),
        "{}",
        error.message
    );
    assert!(
        error.message.len() < 512 + 200,
        "{} bytes",
        error.message.len()
    );
    assert!(!format!("{error:?}").contains(SECRET));
    // Credentials and query in the URL are not shown either.
    let url = running
        .url("/echo?token=hunter2")
        .replace("http://", "http://user:pa55@");
    let error = sender()
        .send(&url, &secret(), &packet("msg_1"))
        .await
        .unwrap_err();
    assert!(!error.message.contains("hunter2"), "{}", error.message);
    assert!(!error.message.contains("pa55"), "{}", error.message);
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = sender()
        .send(
            &format!("http://127.0.0.1:{port}/hook"),
            &secret(),
            &packet("msg_1"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::NetworkError, "{}", error.message);
    assert!(error.is_retryable());
    assert_eq!(error.status, None);
    assert!(!error.message.contains(SECRET));

    let error = sender()
        .send("ftp://example.com/hook", &secret(), &packet("msg_1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::NetworkError);
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_timeout() {
    let running = start_receiver().await;
    let sender = WebhookSender::new(SenderConfig {
        timeout: Duration::from_millis(300),
        ..SenderConfig::default()
    })
    .unwrap();
    let error = sender
        .send(&running.url("/slow"), &secret(), &packet("msg_1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Timeout, "{}", error.message);
    assert!(error.is_retryable());
}

/// Sends through the breaker, as the outbox will: `None` when the breaker refused.
async fn guarded_send(
    breaker: &CircuitBreaker,
    running: &Running,
    path: &str,
) -> Option<Result<u16, DeliveryError>> {
    let url = running.url(path);
    let permit = breaker.try_acquire(&target_key(&url)).ok()?;
    let outcome = sender()
        .send(&url, &secret(), &packet("msg_1"))
        .await
        .map(|delivered| delivered.status);
    permit.record(&outcome);
    Some(outcome)
}

#[tokio::test]
async fn the_breaker_opens_on_a_failing_receiver_probes_once_and_closes() {
    let running = start_receiver().await;
    // Real HTTP does not mix with paused time (the runtime would jump to the call's
    // timeout while waiting on the socket), so this breaker reads a hand-moved clock.
    let clock = engine::clock::Clock::manual(jiff::Timestamp::now());
    let breaker = CircuitBreaker::with_clock(BreakerConfig::default(), clock.clone());
    let key = target_key(&running.url("/flaky"));
    running.receiver.down.store(true, Ordering::SeqCst);

    // A refused packet does not open it: the receiver answers.
    for _ in 0..10 {
        let outcome = guarded_send(&breaker, &running, "/gone").await.unwrap();
        assert_eq!(outcome.unwrap_err().class, FailureClass::Http4xx);
    }
    assert_eq!(breaker.state(&key), BreakerState::Closed);

    for _ in 0..5 {
        let outcome = guarded_send(&breaker, &running, "/flaky").await.unwrap();
        assert_eq!(outcome.unwrap_err().class, FailureClass::Http5xx);
    }
    assert!(matches!(breaker.state(&key), BreakerState::Open { .. }));
    let sent = running.count();
    assert!(guarded_send(&breaker, &running, "/flaky").await.is_none());
    assert!(guarded_send(&breaker, &running, "/ok").await.is_none());
    assert_eq!(running.count(), sent, "nothing reaches a target while open");

    // Cool-down over: one probe, which fails and re-opens it.
    clock.advance(jiff::SignedDuration::from_secs(60));
    assert_eq!(breaker.state(&key), BreakerState::HalfOpen);
    assert!(guarded_send(&breaker, &running, "/flaky").await.is_some());
    assert!(matches!(breaker.state(&key), BreakerState::Open { .. }));
    assert!(guarded_send(&breaker, &running, "/flaky").await.is_none());

    // Next cool-down (doubled) over, the receiver back: the probe closes it.
    clock.advance(jiff::SignedDuration::from_secs(120));
    running.receiver.down.store(false, Ordering::SeqCst);
    let probe = breaker.try_acquire(&key).unwrap();
    assert!(probe.is_probe());
    assert!(
        breaker.try_acquire(&key).is_err(),
        "only one probe at a time"
    );
    let outcome = sender()
        .send(&running.url("/flaky"), &secret(), &packet("msg_1"))
        .await
        .map(|delivered| delivered.status);
    probe.record(&outcome);
    assert_eq!(outcome.unwrap(), 204);
    assert_eq!(breaker.state(&key), BreakerState::Closed);
    assert_eq!(
        guarded_send(&breaker, &running, "/ok")
            .await
            .unwrap()
            .unwrap(),
        200
    );
}

#[tokio::test]
async fn the_breaker_refuses_an_unreachable_target_on_a_manual_clock() {
    let clock = engine::clock::Clock::manual(jiff::Timestamp::now());
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig {
            failure_threshold: 3,
            ..BreakerConfig::default()
        },
        clock.clone(),
    );
    let key = "http://127.0.0.1:9";
    for _ in 0..3 {
        breaker
            .try_acquire(key)
            .unwrap()
            .failed(FailureClass::NetworkError);
    }
    let refused = breaker.try_acquire(key).unwrap_err();
    let until = refused.retry_at.unwrap();
    assert_eq!(breaker.state(key), BreakerState::Open { until });
    assert_eq!(breaker.snapshot().len(), 1);
    assert_eq!(breaker.snapshot()[0].state.as_str(), "open");

    clock.advance(jiff::SignedDuration::from_secs(30));
    assert!(breaker.try_acquire(key).is_err());
    clock.advance(jiff::SignedDuration::from_secs(30));
    assert_eq!(breaker.state(key), BreakerState::HalfOpen);

    // Many tasks race for the probe: exactly one gets it.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let breaker = breaker.clone();
        tasks.push(tokio::spawn(async move {
            breaker.try_acquire("http://127.0.0.1:9").ok()
        }));
    }
    let mut permits = Vec::new();
    for task in tasks {
        if let Some(permit) = task.await.unwrap() {
            permits.push(permit);
        }
    }
    assert_eq!(permits.len(), 1);
    let probe = permits.pop().unwrap();
    assert!(probe.is_probe());
    probe.succeeded();
    assert_eq!(breaker.state(key), BreakerState::Closed);
    assert!(breaker.snapshot().is_empty());
}

#[tokio::test]
async fn every_request_of_the_shared_client_carries_the_environment() {
    let running = start_receiver().await;
    let tagged = WebhookSender::new(SenderConfig {
        environment: Some("prod".to_owned()),
        ..SenderConfig::default()
    })
    .unwrap();
    tagged
        .send(&running.url("/ok"), &secret(), &packet("msg_env"))
        .await
        .unwrap();
    // What other flows send through the same client (a marketplace's API) carries it too.
    tagged
        .http_client()
        .post(running.url("/marketplace"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let untagged = WebhookSender::new(SenderConfig {
        environment: None,
        ..SenderConfig::default()
    })
    .unwrap();
    untagged
        .send(&running.url("/ok"), &secret(), &packet("msg_none"))
        .await
        .unwrap();
    let seen = running.seen();
    assert_eq!(header(&seen[0], "x-odoo-bridge-environment"), "prod");
    assert_eq!(header(&seen[1], "x-odoo-bridge-environment"), "prod");
    assert!(seen[2].headers.get("x-odoo-bridge-environment").is_none());
    // The payload keeps its exact body: the tag is a header only.
    assert_eq!(seen[0].body, packet("msg_env").body);
    assert!(
        WebhookSender::new(SenderConfig {
            environment: Some("pr\nod".to_owned()),
            ..SenderConfig::default()
        })
        .is_err()
    );
}
