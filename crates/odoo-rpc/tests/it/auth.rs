//! Credentials: one re-authentication when Odoo refuses a cached uid, refused keys reported
//! without retry storms and without the key, and the login cooldown told apart from a
//! wrong key.

use crate::support::{BOTH, KEY, Sim, client, fast_retry, no_key, partners_named, vals};
use odoo_rpc::{Domain, Error, OdooClient, OdooErrorKind, RetryPolicy, TransportChoice};
use odoo_sim::{FaultRule, OdooVersion};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

const WRONG_KEY: &str = "wrong-key-Hq2-should-never-be-shown-5c7e";

async fn count_partners(client: &OdooClient) -> Result<u64, Error> {
    client
        .search_count("res.partner", &Domain::all(), None)
        .await
}

#[tokio::test]
async fn access_denied_mid_run_reauthenticates_once_and_succeeds() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::JsonRpc);
    sim.sim.inject(FaultRule::access_denied_after(2));
    for _ in 0..3 {
        assert!(count_partners(&client).await.unwrap() >= 1);
    }
    assert_eq!(sim.sim.call_count("common", "authenticate"), 2);
    // Two answered, one refused, the same one again after logging in.
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 4);
}

#[tokio::test]
async fn a_create_refused_for_its_uid_is_sent_again_after_login() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::JsonRpc);
    client.uid().await.unwrap();
    sim.sim.inject(FaultRule::access_denied_after(0));
    crate::support::partner(&client, json!({"name": "Once"})).await;
    assert_eq!(sim.sim.call_count("common", "authenticate"), 2);
    assert_eq!(sim.sim.call_count("res.partner", "create"), 2);
    assert_eq!(partners_named(&client, "Once").await, 1);
}

#[tokio::test]
async fn repeated_access_denied_gives_up_after_one_reauthentication() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::JsonRpc);
    client.uid().await.unwrap();
    sim.sim.inject(FaultRule::access_denied_after(0).always());
    let error = no_key(count_partners(&client).await.unwrap_err());
    assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::AccessDenied);
    assert!(error.is_authentication() && !error.is_retryable());
    assert_eq!(sim.sim.call_count("common", "authenticate"), 2);
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 2);
}

#[tokio::test]
async fn json2_access_denied_is_returned_without_a_login_round() {
    let sim = Sim::start(OdooVersion::V19).await;
    let client = sim.client(TransportChoice::Json2);
    sim.sim.inject(FaultRule::access_denied_after(0));
    let error = no_key(count_partners(&client).await.unwrap_err());
    assert!(error.is_authentication(), "{error:?}");
    assert_eq!(error.http_status(), Some(403));
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 1);
    assert_eq!(sim.sim.call_count("res.users", "context_get"), 0);
}

#[tokio::test]
async fn a_revoked_key_is_an_authentication_error_without_a_retry_storm() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();
        count_partners(&client).await.unwrap();
        sim.sim.revoke_api_key(KEY);
        sim.sim.reset_calls();

        let error = no_key(count_partners(&client).await.unwrap_err());
        assert!(
            matches!(error, Error::Authentication { .. }),
            "{transport:?}: {error:?}"
        );
        assert!(error.is_authentication() && !error.is_retryable());
        match transport {
            TransportChoice::JsonRpc => {
                // The refused call, one login that fails, nothing more.
                assert_eq!(sim.sim.call_count("res.partner", "search_count"), 1);
                assert_eq!(sim.sim.call_count("common", "authenticate"), 1);
            }
            _ => {
                assert_eq!(sim.sim.call_count("res.partner", "search_count"), 1);
                assert_eq!(sim.sim.call_count("res.users", "context_get"), 0);
            }
        }
        assert!(sim.sim.total_calls() <= 2, "{:?}", sim.sim.calls());
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_a_message_that_does_not_show_it() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.api_key = WRONG_KEY.into();
        let error = OdooClient::connect(config).await.unwrap_err();
        assert!(
            matches!(error, Error::Authentication { .. }),
            "{transport:?}: {error:?}"
        );
        assert!(error.is_authentication() && !error.is_retryable());
        let text = error.to_string();
        for word in ["database", "login", "API key", "\"admin\"", "\"odoo\""] {
            assert!(text.contains(word), "{transport:?}: {text:?} lacks {word}");
        }
        for shown in [text, format!("{error:?}")] {
            assert!(!shown.contains(WRONG_KEY), "{shown}");
            assert!(!shown.contains(KEY), "{shown}");
        }
        let attempts = match transport {
            TransportChoice::JsonRpc => sim.sim.call_count("common", "authenticate"),
            _ => sim.sim.call_count("res.users", "context_get"),
        };
        assert_eq!(attempts, 1, "{transport:?}: refused keys are not retried");
    }
}

#[tokio::test]
async fn a_wrong_database_is_a_clear_permanent_error() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.database = "no_such_db".into();
        let error = no_key(OdooClient::connect(config).await.unwrap_err());
        assert!(!error.is_retryable(), "{transport:?}: {error:?}");
        assert!(error.is_authentication(), "{transport:?}: {error:?}");
        assert_eq!(
            error.to_string(),
            "authentication failed: Odoo has no database 'no_such_db': check the database name",
            "{transport:?}"
        );
        assert!(sim.sim.total_calls() <= 1, "{:?}", sim.sim.calls());
    }
}

async fn fail_logins(sim: &Sim, times: usize) {
    for _ in 0..times {
        let mut config = sim.config(TransportChoice::JsonRpc);
        config.api_key = WRONG_KEY.into();
        let error = OdooClient::connect(config).await.unwrap_err();
        assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    }
}

#[tokio::test]
async fn a_login_cooldown_is_classified_apart_from_a_wrong_key() {
    let sim = Sim::start(OdooVersion::V18).await;
    fail_logins(&sim, 5).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.retry = RetryPolicy::none();
    let error = no_key(OdooClient::connect(config).await.unwrap_err());
    let odoo = error.odoo().unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(odoo.kind, OdooErrorKind::LoginCooldown);
    assert_eq!(odoo.name, "odoo.exceptions.AccessDenied");
    assert!(!error.is_authentication(), "a back-off, not a wrong key");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(sim.sim.call_count("common", "authenticate"), 6);
}

/// Under paused time: the client waits Odoo's 60 s between logins instead of hammering.
#[tokio::test(start_paused = true)]
async fn a_login_cooldown_is_waited_out_between_attempts() {
    let sim = Sim::start(OdooVersion::V18).await;
    fail_logins(&sim, 5).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.retry = fast_retry(2);
    let client = client(config);
    let started = Instant::now();
    let error = no_key(client.uid().await.unwrap_err());
    // The simulator's cooldown runs on the real clock, so it still refuses after the
    // (virtual) minutes the client waited.
    assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::LoginCooldown);
    assert!(started.elapsed() >= Duration::from_secs(120));
    assert_eq!(sim.sim.call_count("common", "authenticate"), 5 + 3);
}

#[tokio::test]
async fn a_rotated_key_works_for_a_new_client_once_the_old_one_is_revoked() {
    let sim = Sim::start(OdooVersion::V18).await;
    let new_key = "it-rotated-key-0c1d2e3f4a5b6c7d";
    sim.sim.add_api_key("admin", new_key);
    sim.sim.revoke_api_key(KEY);
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.api_key = new_key.into();
    let client = OdooClient::connect(config).await.unwrap();
    assert_eq!(client.uid().await.unwrap(), odoo_sim::ADMIN_UID);
    let ids = client
        .create("res.partner", vec![vals(json!({"name": "Rotated"}))], None)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn an_expired_session_is_treated_like_a_refused_uid() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::JsonRpc);
    client.uid().await.unwrap();
    sim.sim.inject(
        FaultRule::new(odoo_sim::Fault::OdooError {
            name: "odoo.http.SessionExpiredException".into(),
            message: "Session expired".into(),
        })
        .on("res.partner", Some("search_count")),
    );
    assert!(count_partners(&client).await.unwrap() >= 1);
    assert_eq!(sim.sim.call_count("common", "authenticate"), 2);
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 2);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_login() {
    let sim = Sim::start(OdooVersion::V18).await;
    let client = sim.client(TransportChoice::JsonRpc);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { count_partners(&client).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap() >= 1);
    }
    assert_eq!(sim.sim.call_count("common", "authenticate"), 1);
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 8);
}

/// The client does not remember refused credentials between calls: each later call tries
/// one login, and after Odoo's five failures the refusals turn into the login cooldown,
/// which is retryable. A caller must stop on `is_authentication()` itself.
#[tokio::test(start_paused = true)]
async fn calls_after_a_revoked_key_each_try_one_login_until_the_cooldown() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.retry = fast_retry(1);
    let client = client(config);
    client.uid().await.unwrap();
    sim.sim.revoke_api_key(KEY);
    sim.sim.reset_calls();
    for attempt in 1..=5 {
        let error = no_key(count_partners(&client).await.unwrap_err());
        assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
        assert_eq!(sim.sim.call_count("common", "authenticate"), attempt);
    }
    let started = Instant::now();
    let error = no_key(count_partners(&client).await.unwrap_err());
    assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::LoginCooldown);
    assert!(!error.is_authentication());
    // One wait of Odoo's 60 s, then the one retry the policy allows.
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert_eq!(sim.sim.call_count("common", "authenticate"), 5 + 2);
    // Only the first call reached the model: later ones stopped at the login.
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 1);
}
