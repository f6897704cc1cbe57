//! The API key never shows in a configuration, a client, or any error the client returns.

use crate::support::{BOTH, KEY, Sim, client, no_key, vals};
use odoo_rpc::{ApiKey, ClientConfig, Domain, Error, RetryPolicy, SearchReadOptions, field};
use odoo_sim::{Fault, FaultRule, OdooVersion};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

#[test]
fn configurations_keys_and_clients_do_not_show_the_key() {
    let key = ApiKey::new(KEY);
    for text in [format!("{key}"), format!("{key:?}")] {
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("••••"), "{text}");
    }
    assert_eq!(key.expose(), KEY);

    let config = ClientConfig::new(
        "https://bot:pw@odoo.example.com",
        "prod",
        "bot@example.com",
        KEY,
    );
    let text = format!("{config:?}");
    assert!(!text.contains(KEY), "{text}");
    let text = format!("{:#?}", config);
    assert!(!text.contains(KEY), "{text}");
    let client = client(config);
    let text = format!("{client:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(!text.contains("pw@"), "{text}");
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Wrong {
    id: i64,
    name: i64,
}

fn status(status: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        retry_after: retry_after.map(str::to_owned),
    }
}

/// One error of every class the client can produce against a server holding the key,
/// each checked in `Display` and `Debug` by [`no_key`].
#[tokio::test(start_paused = true)]
async fn no_error_shows_the_key() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.retry = RetryPolicy::none();
        config.timeout = Duration::from_millis(200);
        let client = client(config.clone());
        client.uid().await.unwrap();
        let mut errors: Vec<Error> = Vec::new();
        let partner = || SearchReadOptions::new(field("id").eq(3)).fields(["name"]);

        for fault in [
            status(503, Some("5")),
            status(429, None),
            status(404, None),
            status(401, None),
            Fault::Drop,
            Fault::MalformedJson,
            Fault::Delay(Duration::from_secs(2)),
            Fault::OdooError {
                name: "odoo.exceptions.AccessDenied".into(),
                message: "Access Denied".into(),
            },
            Fault::OdooError {
                name: "psycopg2.errors.SerializationFailure".into(),
                message: "could not serialize access due to concurrent update".into(),
            },
        ] {
            // Twice: JSON-RPC answers a refused uid by logging in and trying once more.
            sim.sim.inject(
                FaultRule::new(fault)
                    .times(2)
                    .on("res.partner", Some("search_read")),
            );
            let error = client
                .search_read("res.partner", &partner())
                .await
                .unwrap_err();
            errors.push(error);
            sim.sim.clear_faults();
        }
        errors.push(
            client
                .read("res.partner", &[424_242], &["name"], None)
                .await
                .unwrap_err(),
        );
        errors.push(
            client
                .read("res.partner", &[3], &["nmae"], None)
                .await
                .unwrap_err(),
        );
        errors.push(
            client
                .create("sale.order", vec![vals(json!({"note": "x"}))], None)
                .await
                .unwrap_err(),
        );
        errors.push(
            client
                .search_read_as::<Wrong>("res.partner", &partner())
                .await
                .unwrap_err(),
        );
        errors.push(
            client
                .search_count("res/partner", &Domain::all(), None)
                .await
                .unwrap_err(),
        );

        let mut wrong_db = config.clone();
        wrong_db.database = "elsewhere".into();
        errors.push(crate::support::client(wrong_db).uid().await.unwrap_err());

        sim.sim.revoke_api_key(KEY);
        errors.push(
            client
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap_err(),
        );
        let mut classes: Vec<&str> = errors.iter().map(Error::class).collect();
        for error in errors {
            no_key(error);
        }
        classes.sort_unstable();
        classes.dedup();
        assert!(classes.len() >= 10, "{transport:?}: {classes:?}");
    }

    // The login cooldown (JSON-RPC only), after failures with the real key.
    let sim = Sim::start(OdooVersion::V18).await;
    sim.sim.revoke_api_key(KEY);
    let mut config = sim.config(odoo_rpc::TransportChoice::JsonRpc);
    config.retry = RetryPolicy::none();
    for _ in 0..5 {
        let error = no_key(client(config.clone()).uid().await.unwrap_err());
        assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    }
    let error = no_key(client(config).uid().await.unwrap_err());
    assert_eq!(error.class(), "login_cooldown");
}

/// An Odoo message that quotes the key (a server or proxy echoing its input) must not
/// carry it into the error texts, as excerpts of HTTP bodies already do not.
#[tokio::test]
async fn an_odoo_message_echoing_the_key_is_scrubbed() {
    let mut errors: Vec<Error> = Vec::new();
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let mut config = sim.config(transport);
        config.retry = RetryPolicy::none();
        let client = client(config);
        client.uid().await.unwrap();
        sim.sim.inject(
            FaultRule::new(Fault::OdooError {
                name: "builtins.TypeError".into(),
                message: format!("execute_kw() got unexpected arguments ('odoo', 2, '{KEY}')"),
            })
            .on("res.partner", Some("search_count")),
        );
        errors.push(
            client
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap_err(),
        );
    }

    // JSON-2's 401 puts the body's message into the Authentication error.
    let sim = Sim::start(OdooVersion::V19).await;
    let mut config = sim.config(odoo_rpc::TransportChoice::Json2);
    config.retry = RetryPolicy::none();
    let client = client(config);
    sim.sim.inject(
        FaultRule::new(Fault::OdooError {
            name: "werkzeug.exceptions.Unauthorized".into(),
            message: format!("Invalid apikey {KEY}"),
        })
        .on("res.partner", Some("search_count")),
    );
    let error = client
        .search_count("res.partner", &Domain::all(), None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    errors.push(error);

    let leaks: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|text| text.contains(KEY))
        .collect();
    assert!(
        leaks.is_empty(),
        "{} error texts show the key: {leaks:#?}",
        leaks.len()
    );
    errors.iter().for_each(crate::support::assert_no_key);
}
