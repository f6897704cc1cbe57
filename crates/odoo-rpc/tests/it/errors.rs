//! Every failure class over real HTTP, and the client's decision for it: retried (reads
//! always, writes only when the failure proves nothing ran) or returned at once.

use crate::support::{BOTH, Sim, fast_retry, no_key, partner, partners_named, vals};
use odoo_rpc::{
    Context, Domain, Error, OdooErrorKind, SearchReadOptions, TransportChoice, TransportKind, field,
};
use odoo_sim::{Fault, FaultRule, OdooVersion};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

fn status(status: u16) -> Fault {
    Fault::Status {
        status,
        retry_after: None,
    }
}

fn odoo_error(name: &str, message: &str) -> Fault {
    Fault::OdooError {
        name: name.into(),
        message: message.into(),
    }
}

fn admin_partner() -> SearchReadOptions {
    SearchReadOptions::new(field("id").eq(3)).fields(["name"])
}

#[tokio::test]
async fn gateway_and_server_errors_are_retried_until_success() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        for code in [500, 502, 503, 504] {
            sim.sim.reset_calls();
            sim.sim.inject(
                FaultRule::new(status(code))
                    .times(2)
                    .on("res.partner", Some("search_read")),
            );
            let rows = client
                .search_read("res.partner", &admin_partner())
                .await
                .unwrap_or_else(|e| panic!("{transport:?} {code}: {e}"));
            assert_eq!(rows[0].str("name").unwrap(), Some("Mitchell Admin"));
            assert_eq!(
                sim.sim.call_count("res.partner", "search_read"),
                3,
                "{transport:?} {code}: two failures, then the answer"
            );
        }
    }
}

#[tokio::test]
async fn retries_stop_after_max_retries_with_the_last_error() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.retry = fast_retry(2);
        let client = crate::support::client(config);
        sim.sim.inject(
            FaultRule::new(status(503))
                .always()
                .on("res.partner", Some("search_count")),
        );
        let error = no_key(
            client
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap_err(),
        );
        assert_eq!(error.http_status(), Some(503), "{error:?}");
        assert!(
            matches!(error, Error::Http { status: 503, .. }),
            "{error:?}"
        );
        assert_eq!(sim.sim.call_count("res.partner", "search_count"), 3);
    }
}

#[tokio::test]
async fn a_503_create_is_resent_but_a_500_create_is_not() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);

        sim.sim
            .inject(FaultRule::new(status(503)).on("res.partner", Some("create")));
        let ids = client
            .create("res.partner", vec![vals(json!({"name": "Resent"}))], None)
            .await
            .unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(sim.sim.call_count("res.partner", "create"), 2);
        assert_eq!(partners_named(&client, "Resent").await, 1);

        sim.sim.reset_calls();
        sim.sim
            .inject(FaultRule::new(status(500)).on("res.partner", Some("create")));
        let error = no_key(
            client
                .create(
                    "res.partner",
                    vec![vals(json!({"name": "Not resent"}))],
                    None,
                )
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(error, Error::Http { status: 500, .. }),
            "{error:?}"
        );
        assert!(error.is_retryable() && !error.is_safe_to_resend());
        assert_eq!(
            sim.sim.call_count("res.partner", "create"),
            1,
            "{transport:?}: a 500 may have committed, so create is not sent twice"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn too_many_requests_waits_for_retry_after() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim.reset_calls();
        sim.sim.inject(
            FaultRule::new(Fault::Status {
                status: 429,
                retry_after: Some("7".into()),
            })
            .on("res.partner", Some("search_count")),
        );
        let started = Instant::now();
        let count = client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(count >= 1);
        assert_eq!(sim.sim.call_count("res.partner", "search_count"), 2);
        // The policy's own backoff is at most 1 ms: only the header explains 7 s.
        assert!(
            waited >= Duration::from_secs(7),
            "{transport:?}: {waited:?}"
        );
        assert!(waited < Duration::from_secs(8), "{transport:?}: {waited:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_create_is_resent_after_retry_after() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim.inject(
            FaultRule::new(Fault::Status {
                status: 429,
                retry_after: Some("2".into()),
            })
            .on("res.partner", Some("create")),
        );
        let started = Instant::now();
        partner(&client, json!({"name": "After 429"})).await;
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(sim.sim.call_count("res.partner", "create"), 2);
        assert_eq!(partners_named(&client, "After 429").await, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_is_capped_by_the_policy() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.retry.max_retry_after = Duration::from_secs(5);
    let client = crate::support::client(config);
    client.uid().await.unwrap();
    sim.sim.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: Some("3600".into()),
        })
        .on("res.partner", Some("search_count")),
    );
    let started = Instant::now();
    client
        .search_count("res.partner", &Domain::all(), None)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 2);
}

/// `Retry-After` as an HTTP date is read against the real clock; the wait is then slept on
/// the paused one. A date an hour ahead leaves a wide margin for the real time the test
/// itself takes.
#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.retry.max_retry_after = Duration::from_secs(7200);
    let client = crate::support::client(config);
    client.uid().await.unwrap();
    for (offset, at_least, at_most) in [
        (
            3600_i64,
            Duration::from_secs(3500),
            Duration::from_secs(3600),
        ),
        (-3600, Duration::ZERO, Duration::from_secs(1)),
    ] {
        let when = if offset > 0 {
            std::time::SystemTime::now() + Duration::from_secs(offset.unsigned_abs())
        } else {
            std::time::SystemTime::now() - Duration::from_secs(offset.unsigned_abs())
        };
        sim.sim.reset_calls();
        sim.sim.inject(
            FaultRule::new(Fault::Status {
                status: 503,
                retry_after: Some(httpdate::fmt_http_date(when)),
            })
            .on("res.partner", Some("search_count")),
        );
        let started = Instant::now();
        client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= at_least && waited <= at_most,
            "Retry-After {offset:+} s: waited {waited:?}"
        );
        assert_eq!(sim.sim.call_count("res.partner", "search_count"), 2);
    }
}

#[tokio::test]
async fn write_is_retried_after_ambiguous_failures_because_it_is_idempotent() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim
            .inject(FaultRule::new(status(500)).on("res.partner", Some("write")));
        sim.sim.inject(
            FaultRule::new(Fault::Drop)
                .after(1)
                .on("res.partner", Some("write")),
        );
        assert!(
            client
                .write("res.partner", &[3], vals(json!({"ref": "R-3"})), None)
                .await
                .unwrap()
        );
        assert_eq!(sim.sim.call_count("res.partner", "write"), 3);
        let row = &client
            .read("res.partner", &[3], &["ref"], None)
            .await
            .unwrap()[0];
        assert_eq!(row.str("ref").unwrap(), Some("R-3"));
    }
}

#[tokio::test]
async fn client_side_http_errors_are_not_retried() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        for code in [400, 403, 404, 405, 422] {
            sim.sim.reset_calls();
            sim.sim
                .inject(FaultRule::new(status(code)).on("res.partner", Some("search_read")));
            let error = no_key(
                client
                    .search_read("res.partner", &admin_partner())
                    .await
                    .unwrap_err(),
            );
            assert_eq!(error.http_status(), Some(code), "{error:?}");
            assert!(matches!(error, Error::Http { .. }), "{error:?}");
            assert!(!error.is_retryable(), "{error:?}");
            assert_eq!(
                sim.sim.call_count("res.partner", "search_read"),
                1,
                "{transport:?} {code}"
            );
        }
    }
}

#[tokio::test]
async fn a_401_page_is_an_http_error_on_jsonrpc_and_refused_credentials_on_json2() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim
            .inject(FaultRule::new(status(401)).on("res.partner", Some("search_read")));
        let error = no_key(
            client
                .search_read("res.partner", &admin_partner())
                .await
                .unwrap_err(),
        );
        match transport {
            TransportChoice::Json2 => {
                assert!(matches!(error, Error::Authentication { .. }), "{error:?}")
            }
            _ => assert!(
                matches!(error, Error::Http { status: 401, .. }),
                "{error:?}"
            ),
        }
        assert!(!error.is_retryable());
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 1);
    }
}

/// Business errors raised by the simulator's own logic, as Odoo raises them.
#[tokio::test]
async fn odoo_business_errors_are_classified_and_not_retried() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        let json2 = transport == TransportChoice::Json2;
        let order = crate::support::quotation(&client).await;
        client
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[order]),
                Default::default(),
                None,
            )
            .await
            .unwrap();
        sim.sim.reset_calls();

        // UserError: a confirmed order cannot be deleted.
        let error = no_key(
            client
                .unlink("sale.order", &[order], None)
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::UserError, "{error:?}");
        assert_eq!(odoo.http_status, json2.then_some(422));
        assert!(odoo.message.contains("cancel it"), "{}", odoo.message);
        assert_eq!(sim.sim.call_count("sale.order", "unlink"), 1);

        // ValidationError: a mandatory field is missing.
        let error = no_key(
            client
                .create(
                    "sale.order",
                    vec![vals(json!({"client_order_ref": "x"}))],
                    None,
                )
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::ValidationError, "{error:?}");
        assert_eq!(odoo.http_status, json2.then_some(422));
        assert!(odoo.message.contains("mandatory field"), "{}", odoo.message);
        assert_eq!(sim.sim.call_count("sale.order", "create"), 1);

        // AccessError: private methods cannot be called remotely.
        let error = no_key(
            client
                .call_method(
                    "sale.order",
                    "_action_cancel",
                    Some(&[order]),
                    Default::default(),
                    None,
                )
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::AccessError, "{error:?}");
        assert_eq!(odoo.http_status, json2.then_some(403));
        assert_eq!(sim.sim.call_count("sale.order", "_action_cancel"), 1);

        // MissingError: the record does not exist.
        let error = no_key(
            client
                .read("res.partner", &[987_654], &["name"], None)
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::MissingError, "{error:?}");
        assert_eq!(odoo.http_status, json2.then_some(404));
        assert_eq!(sim.sim.call_count("res.partner", "read"), 1);

        // ValueError: an unknown field.
        let error = no_key(
            client
                .search_read(
                    "res.partner",
                    &SearchReadOptions::new(field("nmae").eq("x")).fields(["name"]),
                )
                .await
                .unwrap_err(),
        );
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::ValueError, "{error:?}");
        assert!(odoo.message.contains("Invalid field"), "{}", odoo.message);
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 1);

        assert!(!error.is_retryable() && !error.is_authentication());
    }
}

/// The same classes injected by name: the client classifies on the exception's class path.
#[tokio::test]
async fn injected_odoo_exceptions_are_classified_by_name_and_not_retried() {
    let cases = [
        ("odoo.exceptions.UserError", OdooErrorKind::UserError),
        (
            "odoo.exceptions.ValidationError",
            OdooErrorKind::ValidationError,
        ),
        ("odoo.exceptions.AccessError", OdooErrorKind::AccessError),
        ("odoo.exceptions.MissingError", OdooErrorKind::MissingError),
        ("builtins.ValueError", OdooErrorKind::ValueError),
    ];
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        for (name, kind) in &cases {
            sim.sim.reset_calls();
            sim.sim.inject(
                FaultRule::new(odoo_error(name, "Simulated failure"))
                    .on("res.partner", Some("write")),
            );
            let error = no_key(
                client
                    .write("res.partner", &[3], vals(json!({"ref": "x"})), None)
                    .await
                    .unwrap_err(),
            );
            let odoo = error.odoo().unwrap_or_else(|| panic!("{error:?}"));
            assert_eq!(&odoo.kind, kind, "{transport:?}");
            assert_eq!(odoo.name, *name);
            assert_eq!(odoo.message, "Simulated failure");
            assert!(!error.is_retryable());
            assert_eq!(
                sim.sim.call_count("res.partner", "write"),
                1,
                "{transport:?} {name}"
            );
        }
    }
}

#[tokio::test]
async fn serialization_failures_and_lock_errors_are_retried_even_for_create() {
    for transport in BOTH {
        for name in [
            "psycopg2.errors.SerializationFailure",
            "odoo.exceptions.LockError",
        ] {
            let sim = Sim::start(OdooVersion::V19).await;
            let client = sim.client(transport);
            sim.sim.inject(
                FaultRule::new(odoo_error(
                    name,
                    "could not serialize access due to concurrent update",
                ))
                .on("res.partner", Some("create")),
            );
            partner(&client, json!({"name": "Concurrent"})).await;
            assert_eq!(
                sim.sim.call_count("res.partner", "create"),
                2,
                "{transport:?} {name}"
            );
            assert_eq!(partners_named(&client, "Concurrent").await, 1);

            sim.sim.inject(
                FaultRule::new(odoo_error(name, "rolled back"))
                    .times(2)
                    .on("res.partner", Some("search_read")),
            );
            client
                .search_read("res.partner", &admin_partner())
                .await
                .unwrap();
            assert_eq!(sim.sim.call_count("res.partner", "search_read"), 3);
        }
    }
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_reads() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim
            .inject(FaultRule::new(Fault::Drop).on("res.partner", Some("search_read")));
        let rows = client
            .search_read("res.partner", &admin_partner())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 2);
    }
}

#[tokio::test]
async fn a_dropped_connection_is_not_resent_for_create() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        sim.sim
            .inject(FaultRule::new(Fault::Drop).on("res.partner", Some("create")));
        let error = no_key(
            client
                .create("res.partner", vec![vals(json!({"name": "Dropped"}))], None)
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(
                error,
                Error::Transport {
                    kind: TransportKind::ConnectionClosed,
                    ..
                }
            ),
            "{transport:?}: {error:?}"
        );
        assert!(error.is_retryable() && !error.is_safe_to_resend());
        assert_eq!(sim.sim.call_count("res.partner", "create"), 1);
    }
}

#[tokio::test]
async fn malformed_json_is_reported_and_not_retried() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        for method in ["search_read", "create"] {
            sim.sim
                .inject(FaultRule::new(Fault::MalformedJson).on("res.partner", Some(method)));
        }
        let error = no_key(
            client
                .search_read("res.partner", &admin_partner())
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(error, Error::MalformedResponse { .. }),
            "{transport:?}: {error:?}"
        );
        assert!(!error.is_retryable());
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 1);

        let error = no_key(
            client
                .create("res.partner", vec![vals(json!({"name": "Garbled"}))], None)
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(error, Error::MalformedResponse { .. }),
            "{error:?}"
        );
        assert_eq!(sim.sim.call_count("res.partner", "create"), 1);
    }
}

/// Under paused time the 200 ms timeout strikes long before the 2 s delay ends, whatever
/// the machine's speed.
#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_for_reads() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.timeout = Duration::from_millis(200);
        let client = crate::support::client(config);
        client.uid().await.unwrap();
        sim.sim.inject(
            FaultRule::new(Fault::Delay(Duration::from_secs(2)))
                .on("res.partner", Some("search_read")),
        );
        let rows = client
            .search_read("res.partner", &admin_partner())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_on_create_is_not_resent() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.timeout = Duration::from_millis(200);
        let client = crate::support::client(config);
        client.uid().await.unwrap();
        sim.sim.inject(
            FaultRule::new(Fault::Delay(Duration::from_secs(2))).on("res.partner", Some("create")),
        );
        let error = no_key(
            client
                .create("res.partner", vec![vals(json!({"name": "Slow"}))], None)
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(
                error,
                Error::Transport {
                    kind: TransportKind::Timeout,
                    ..
                }
            ),
            "{transport:?}: {error:?}"
        );
        assert!(error.is_retryable() && !error.is_safe_to_resend());
        assert_eq!(sim.sim.call_count("res.partner", "create"), 1);
    }
}

/// A workflow method is not idempotent either: a timeout is returned, not resent.
#[tokio::test(start_paused = true)]
async fn a_timeout_on_a_workflow_method_is_not_resent() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.timeout = Duration::from_millis(200);
    let client = crate::support::client(config);
    let order = crate::support::quotation(&client).await;
    sim.sim.inject(
        FaultRule::new(Fault::Delay(Duration::from_secs(2)))
            .on("sale.order", Some("action_confirm")),
    );
    let error = no_key(
        client
            .call_method(
                "sale.order",
                "action_confirm",
                Some(&[order]),
                Default::default(),
                Some(&Context::new()),
            )
            .await
            .unwrap_err(),
    );
    assert!(matches!(
        error,
        Error::Transport {
            kind: TransportKind::Timeout,
            ..
        }
    ));
    assert_eq!(sim.sim.call_count("sale.order", "action_confirm"), 1);
}

#[tokio::test]
async fn an_answer_larger_than_the_cap_is_refused_and_not_retried() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.max_response_bytes = 4 * 1024;
        let client = super::support::client(config);
        client.uid().await.unwrap();
        // Enough partners that one page of them is far larger than 4 KiB.
        let many: Vec<_> = (0..200)
            .map(|n| vals(json!({"name": format!("Partner {n} with a long enough name")})))
            .collect();
        client.create("res.partner", many, None).await.unwrap();
        let error = no_key(
            client
                .search_read(
                    "res.partner",
                    &SearchReadOptions::new(Domain::all()).fields(["name", "email"]),
                )
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(&error, Error::MalformedResponse { message, .. } if message.contains("max_response_bytes")),
            "{transport:?}: {error:?}"
        );
        assert!(!error.is_retryable());
        assert_eq!(sim.sim.call_count("res.partner", "search_read"), 1);
        // Small answers still pass.
        client.uid().await.unwrap();
        client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap();
    }
}
