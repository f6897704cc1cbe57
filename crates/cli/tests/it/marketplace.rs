//! `odoo-bridge marketplace …` and `odoo-bridge run` end to end: a simulated Odoo and a
//! simulated Cartona served in this process on loopback, the real binary as child
//! processes. Orders pulled from Cartona must land in Odoo once each, be acknowledged once
//! each, and no command may print the Cartona token or the Odoo API key.

use crate::delivery_daemon::{Daemon, Place, sim_key, text, wait_until};
use crate::mirror_postgres::odoo_ids;
use jiff::{SignedDuration, Timestamp};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, field};
use odoo_sim::cartona::{CartonaConfig, CartonaSim, sample_order};
use odoo_sim::{DataSpec, OdooSim, RunningSim, SimConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

/// The Cartona token the tests use: it must never be printed.
const TOKEN: &str = "cartona-token-NEVER-ECHOED-93f1a2b7c";

struct World {
    odoo_running: RunningSim,
    cartona: CartonaSim,
    cartona_running: RunningSim,
    place: Place,
}

impl World {
    async fn start() -> World {
        let odoo = OdooSim::with_data(
            SimConfig::default(),
            &DataSpec {
                seed: 7,
                partners: 4,
                products: 6,
                orders: 0,
            },
        );
        let odoo_running = odoo.clone().serve_on_loopback().await.unwrap();
        let cartona = CartonaSim::new(CartonaConfig {
            token: TOKEN.to_owned(),
            ..CartonaConfig::default()
        });
        let cartona_running = cartona.clone().serve_on_loopback().await.unwrap();
        World {
            odoo_running,
            cartona,
            cartona_running,
            place: Place::sqlite(),
        }
    }

    fn client(&self) -> OdooClient {
        OdooClient::new(ClientConfig::new(
            self.odoo_running.url(),
            "odoo",
            "admin",
            ApiKey::from(sim_key()),
        ))
        .unwrap()
    }

    /// `odoo-bridge ARGS` with both secrets in the environment.
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.place.command(args);
        command
            .env("ODOO_API_KEY", sim_key())
            .env("CARTONA_API_TOKEN", TOKEN);
        self.place.output(command, args).await
    }

    async fn add(&self, name: &str) -> Value {
        self.add_with(name, &[]).await
    }

    /// `marketplace add` of `name` with `extra` flags.
    async fn add_with(&self, name: &str, extra: &[&str]) -> Value {
        let cartona_url = self.cartona_running.url();
        let odoo_url = self.odoo_running.url();
        let mut args = vec![
            "marketplace",
            "add",
            "--name",
            name,
            "--kind",
            "cartona",
            "--api-url",
            &cartona_url,
            "--odoo-url",
            &odoo_url,
            "--odoo-db",
            "odoo",
            "--odoo-username",
            "admin",
            "--interval",
            "1",
            "--allow-from",
            "127.0.0.1/32,10.0.0.0/8",
            "--json",
        ];
        args.extend(extra);
        let output = self.run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}:\n{}",
            text(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The `sale.order`s carrying `hashed_id` in `client_order_ref`.
    async fn odoo_orders(&self, hashed_id: &str) -> Vec<i64> {
        odoo_ids(
            &self.client(),
            "sale.order",
            field("client_order_ref").eq(hashed_id),
        )
        .await
    }

    /// How many `synced` acknowledgements each order got.
    fn acks(&self) -> BTreeMap<String, usize> {
        let mut acks = BTreeMap::new();
        for posted in self.cartona.posted() {
            assert_eq!(posted.status(), Some("synced"), "{posted:?}");
            assert_eq!(posted.body["hashed_id"], posted.hashed_id.as_str());
            *acks.entry(posted.hashed_id).or_insert(0) += 1;
        }
        acks
    }
}

fn assert_no_secret(printed: &str) {
    assert!(
        !printed.contains(TOKEN),
        "the Cartona token was printed:\n{printed}"
    );
    assert!(
        !printed.contains(&sim_key()),
        "the Odoo API key was printed:\n{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_add_then_run_imports_each_order_once_and_acknowledges_it_once() {
    let world = World::start().await;
    let products = odoo_ids(&world.client(), "product.product", field("active").eq(true)).await;
    assert!(products.len() >= 2, "{products:?}");
    let at = Timestamp::now() - SignedDuration::from_mins(5);
    let valid = ["H-VALID-1", "H-VALID-2", "H-VALID-3"];
    for (index, hashed_id) in valid.iter().enumerate() {
        world.cartona.put_order(sample_order(
            hashed_id,
            &format!("RET-{}", index % 2),
            at,
            &[(products[0], 2.0, 10.5), (products[1], 1.0, 99.0)],
        ));
    }
    // A line naming a product Odoo does not have: the whole order is refused.
    world.cartona.put_order(sample_order(
        "H-INVALID",
        "RET-9",
        at,
        &[(products[0], 1.0, 5.0), (987_654, 1.0, 5.0)],
    ));

    let added = world.add("Cartona Cairo").await;
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["status"], "active");
    assert_eq!(added["kind"], "cartona");
    assert!(
        added["webhook_secret"].as_str().unwrap().len() >= 32,
        "{added}"
    );
    let secret = added["webhook_secret"].as_str().unwrap().to_owned();

    let daemon = Daemon::start(&world.place, "market-1").await;
    wait_until("every valid order acknowledged", || async {
        world.acks().len() == valid.len()
    })
    .await;
    wait_until("the refusal recorded", || async {
        let list = world.place.json(&["marketplace", "list", "--json"]).await;
        list[0]["orders_refused"] == 1 && list[0]["orders_imported"] == 3
    })
    .await;
    // A few more passes re-read the same window: nothing new may happen.
    let passes = world.cartona.call_count("pull-orders");
    wait_until("three more passes", || async {
        world.cartona.call_count("pull-orders") >= passes + 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let daemon_lines = daemon.lines.clone();
    let status = daemon.terminate().await;
    assert!(status.success(), "{status:?}");

    for hashed_id in valid {
        assert_eq!(world.odoo_orders(hashed_id).await.len(), 1, "{hashed_id}");
    }
    assert!(world.odoo_orders("H-INVALID").await.is_empty());
    let acks = world.acks();
    assert_eq!(
        acks,
        valid
            .iter()
            .map(|id| (id.to_string(), 1))
            .collect::<BTreeMap<_, _>>(),
        "one acknowledgement per imported order, none for the refused one"
    );

    let list = world.place.json(&["marketplace", "list", "--json"]).await;
    let row = &list[0];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["name"], "Cartona Cairo");
    assert_eq!(row["status"], "active");
    assert_eq!(row["api_url"], world.cartona_running.url().as_str());
    assert_eq!(row["odoo_url"], world.odoo_running.url().as_str());
    assert_eq!(row["odoo_db"], "odoo");
    assert_eq!(row["odoo_username"], "admin");
    assert_eq!(row["interval_seconds"], 1);
    assert_eq!(row["reference_field"], "client_order_ref");
    assert_eq!(
        row["allow_from"],
        serde_json::json!(["127.0.0.1/32", "10.0.0.0/8"])
    );
    assert!(row["last_sync_at"].is_string(), "{row}");
    assert_eq!(row["orders_imported"], 3);
    assert_eq!(row["orders_refused"], 1);

    let show = world
        .place
        .json(&["marketplace", "show", "Cartona Cairo", "--json"])
        .await;
    assert_eq!(show["id"], id.as_str());
    assert_eq!(show["orders_imported"], 3);
    assert_eq!(show["inbound_per_minute"], 600, "the receiver's default");
    assert!(
        show["api_token"].as_str().unwrap().starts_with("••••"),
        "{show}"
    );
    assert!(
        !show.to_string().contains(&secret),
        "show masks the webhook secret: {show}"
    );
    let revealed = world
        .place
        .json(&["marketplace", "show", &id, "--json", "--reveal-secret"])
        .await;
    assert_eq!(revealed["webhook_secret"], secret.as_str());

    let tested = world.run(&["marketplace", "test", &id, "--json"]).await;
    assert_eq!(tested.status.code(), Some(0), "{}", text(&tested));
    let tested: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(tested["odoo"]["ok"], true, "{tested}");
    assert_eq!(tested["marketplace"]["ok"], true, "{tested}");
    assert_eq!(tested["marketplace"]["orders"], 1, "{tested}");

    let paused = world.run(&["marketplace", "pause", "cartona cairo"]).await;
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let list = world.place.json(&["marketplace", "list", "--json"]).await;
    assert_eq!(list[0]["status"], "paused");

    // Everything printed, the daemon's logs included.
    let mut printed = world.place.printed();
    printed.push_str(&daemon_lines.lock().unwrap().join("\n"));
    assert_no_secret(&printed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_add_lists_every_bad_field_at_once_and_unknown_names_exit_9() {
    let world = World::start().await;
    let args = [
        "marketplace",
        "add",
        "--name",
        "Bad",
        "--kind",
        "amazon",
        "--api-url",
        "http://cartona.example/api",
        "--odoo-url",
        "https://shop.example/web",
        "--odoo-db",
        "odoo",
        "--odoo-username",
        "admin",
        "--interval",
        "0",
        "--reference-field",
        "Client Ref",
        "--allow-from",
        "10.0.0.0/8,nowhere",
        "--inbound-per-minute",
        "0",
    ];
    let output = world.run(&args).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    for flag in [
        "--kind",
        "--api-url",
        "--odoo-url",
        "--interval",
        "--reference-field",
        "--allow-from",
        "--inbound-per-minute",
    ] {
        assert!(
            said.contains(&format!("  {flag}: ")),
            "{flag} missing in:\n{said}"
        );
    }
    assert!(said.contains("7 problems"), "{said}");

    // Without the token in the environment and no terminal: configuration, exit 3, listed
    // with the other problems.
    let cartona_url = world.cartona_running.url();
    let odoo_url = world.odoo_running.url();
    let args = [
        "marketplace",
        "add",
        "--name",
        "No token",
        "--api-url",
        &cartona_url,
        "--odoo-url",
        &odoo_url,
        "--odoo-db",
        "odoo",
        "--odoo-username",
        "admin",
    ];
    let mut command = world.place.command(&args);
    command.env("ODOO_API_KEY", sim_key());
    let output = world.place.output(command, &args).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(
        said.contains("API token ($CARTONA_API_TOKEN): is missing"),
        "{said}"
    );

    world.add("Known").await;
    for command in ["show", "edit", "remove", "pause", "resume", "test"] {
        let mut args = vec!["marketplace", command, "Unknown"];
        if command == "edit" {
            args.extend(["--interval", "5"]);
        }
        if command == "remove" {
            args.push("--yes");
        }
        let output = world.run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(9),
            "{args:?}:\n{}",
            text(&output)
        );
        assert!(
            text(&output).contains("no marketplace has the id or name"),
            "{}",
            text(&output)
        );
    }
    assert_no_secret(&world.place.printed());
}

/// A status webhook signed as Cartona would, POSTed to the daemon's listener: its status and
/// its JSON answer.
async fn post_status(daemon: &Daemon, secret: &str, id: &str, body: &Value) -> (u16, Value) {
    let response = post_signed(daemon, secret, id, body).await;
    let status = response.status().as_u16();
    let answer = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (status, answer)
}

async fn post_signed(daemon: &Daemon, secret: &str, id: &str, body: &Value) -> reqwest::Response {
    let body = body.to_string();
    let at = Timestamp::now().as_second();
    let signature =
        engine::webhook::WebhookSecret::new(secret)
            .unwrap()
            .sign(id, at, body.as_bytes());
    reqwest::Client::new()
        .post(format!(
            "http://{}/marketplace_integration/webhook/status",
            daemon.address()
        ))
        .header("webhook-id", id)
        .header("webhook-timestamp", at.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_per_minute_is_set_by_add_kept_by_other_edits_shown_and_enforced_by_run() {
    let world = World::start().await;
    let added = world
        .add_with("Cartona Rate", &["--inbound-per-minute", "3"])
        .await;
    let id = added["id"].as_str().unwrap().to_owned();
    let secret = added["webhook_secret"].as_str().unwrap().to_owned();

    // An edit of another field keeps the rate.
    let edited = world
        .run(&["marketplace", "edit", &id, "--interval", "2"])
        .await;
    assert_eq!(edited.status.code(), Some(0), "{}", text(&edited));
    assert!(
        !text(&edited).contains("inbound_per_minute"),
        "{}",
        text(&edited)
    );
    let show = world
        .place
        .json(&["marketplace", "show", &id, "--json"])
        .await;
    assert_eq!(show["inbound_per_minute"], 3, "{show}");
    assert_eq!(show["interval_seconds"], 2, "{show}");
    assert_eq!(
        show["allow_from"],
        serde_json::json!(["127.0.0.1/32", "10.0.0.0/8"])
    );
    let list = world.place.json(&["marketplace", "list", "--json"]).await;
    assert_eq!(list[0]["inbound_per_minute"], 3, "{list}");
    let shown = world.run(&["marketplace", "show", &id]).await;
    assert!(
        text(&shown).contains("inbound rate:     3 requests a minute from one address"),
        "{}",
        text(&shown)
    );
    // Out of range or not a number: exit 2 naming the flag, nothing changed.
    for bad in ["0", "100001", "many"] {
        let refused = world
            .run(&["marketplace", "edit", &id, "--inbound-per-minute", bad])
            .await;
        assert_eq!(refused.status.code(), Some(2), "{bad}: {}", text(&refused));
        assert!(
            text(&refused).contains("  --inbound-per-minute: "),
            "{}",
            text(&refused)
        );
    }
    let show = world
        .place
        .json(&["marketplace", "show", &id, "--json"])
        .await;
    assert_eq!(show["inbound_per_minute"], 3, "{show}");

    // The daemon takes 3 signed statuses a minute from this address, then answers 429.
    let daemon = Daemon::start(&world.place, "rate-1").await;
    let status = serde_json::json!({"hashed_id": "R-NONE", "status": "approved"});
    for n in 0..3 {
        let (code, answer) = post_status(&daemon, &secret, &format!("r-{n}"), &status).await;
        assert_eq!(code, 202, "request {n}: {answer}");
    }
    let refused = post_signed(&daemon, &secret, "r-3", &status).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    // A new rate applies to the running daemon at once.
    let raised = world
        .run(&["marketplace", "edit", &id, "--inbound-per-minute", "5"])
        .await;
    assert_eq!(raised.status.code(), Some(0), "{}", text(&raised));
    assert!(
        text(&raised).contains("inbound_per_minute"),
        "{}",
        text(&raised)
    );
    let (code, answer) = post_status(&daemon, &secret, "r-4", &status).await;
    assert_eq!(code, 202, "{answer}");

    let daemon_lines = daemon.lines.clone();
    assert!(daemon.terminate().await.success());
    let mut printed = world.place.printed();
    printed.push_str(&daemon_lines.lock().unwrap().join("\n"));
    assert_no_secret(&printed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_applies_signed_status_webhooks_and_conflicts_wait_for_resolve() {
    let world = World::start().await;
    let products = odoo_ids(&world.client(), "product.product", field("active").eq(true)).await;
    let at = Timestamp::now() - SignedDuration::from_mins(5);
    for hashed_id in ["S-APPROVE", "S-SHIP", "S-ODOO"] {
        world.cartona.put_order(sample_order(
            hashed_id,
            "RET-S",
            at,
            &[(products[0], 1.0, 10.0)],
        ));
    }
    let added = world.add("Cartona Status").await;
    let secret = added["webhook_secret"].as_str().unwrap().to_owned();
    let daemon = Daemon::start(&world.place, "status-1").await;
    wait_until("the orders imported", || async {
        let list = world.place.json(&["marketplace", "list", "--json"]).await;
        list[0]["orders_imported"] == 3
    })
    .await;

    // A bad signature is refused and changes nothing; good ones are stored, then applied.
    let approve = serde_json::json!({"hashed_id": "S-APPROVE", "status": "approved"});
    let (status, _) = post_status(&daemon, "not-the-secret", "w-0", &approve).await;
    assert_eq!(status, 401);
    let (status, answer) = post_status(&daemon, &secret, "w-1", &approve).await;
    assert_eq!(status, 202, "{answer}");
    let ship = serde_json::json!({"order_id": "S-SHIP", "order_status": "assigned_to_salesman"});
    assert_eq!(post_status(&daemon, &secret, "w-2", &ship).await.0, 202);
    let unknown = serde_json::json!({"hashed_id": "S-NONE", "status": "approved"});
    assert_eq!(post_status(&daemon, &secret, "w-3", &unknown).await.0, 202);
    let (status, answer) = post_status(
        &daemon,
        &secret,
        "w-4",
        &serde_json::json!({"hashed_id": "S-SHIP", "status": "shipped"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    wait_until("both statuses applied", || async {
        let log = world
            .place
            .json(&["marketplace", "log", "--order", "S-SHIP", "--json"])
            .await;
        log.as_array().unwrap().iter().any(|row| {
            row["marketplace_status"] == "assigned_to_salesman" && row["outcome"] == "success"
        })
    })
    .await;
    let log = world
        .place
        .json(&["marketplace", "log", "--order", "S-SHIP", "--json"])
        .await;
    let applied = log
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["marketplace_status"] == "assigned_to_salesman")
        .unwrap();
    assert_eq!(applied["direction"], "inbound");
    assert_eq!(applied["odoo_order_state"], "sale");
    assert_eq!(applied["odoo_delivery_state"], "done");
    let unknown_log = world
        .place
        .json(&["marketplace", "log", "--order", "S-NONE", "--json"])
        .await;
    assert_eq!(unknown_log[0]["error_code"], "unknown_order");

    // A cancellation after the delivery is a conflict: Odoo unchanged, waiting for a person.
    let cancel = serde_json::json!({"hashed_id": "S-SHIP", "status": "cancelled_by_retailer"});
    assert_eq!(post_status(&daemon, &secret, "w-5", &cancel).await.0, 202);
    // Odoo confirms S-ODOO while Cartona says pending, then the retailer edits it.
    let client = world.client();
    let odoo_order = world.odoo_orders("S-ODOO").await[0];
    client
        .call_method(
            "sale.order",
            "action_confirm",
            Some(&[odoo_order]),
            serde_json::Map::new(),
            None,
        )
        .await
        .unwrap();
    let edit = serde_json::json!({"hashed_id": "S-ODOO", "status": "editing"});
    assert_eq!(post_status(&daemon, &secret, "w-6", &edit).await.0, 202);
    wait_until("two conflicts open", || async {
        let conflicts = world
            .place
            .json(&["marketplace", "conflicts", "--json"])
            .await;
        conflicts.as_array().unwrap().len() == 2
    })
    .await;
    let conflicts = world
        .place
        .json(&["marketplace", "conflicts", "--json"])
        .await;
    let find = |kind: &str| {
        conflicts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap_or_else(|| panic!("{kind}: {conflicts}"))
            .clone()
    };
    let cancel_conflict = find("cancel_after_delivery");
    assert_eq!(cancel_conflict["hashed_id"], "S-SHIP");
    assert_eq!(cancel_conflict["severity"], "high");
    assert_eq!(
        cancel_conflict["marketplace_status"],
        "cancelled_by_retailer"
    );
    assert_eq!(cancel_conflict["odoo_delivery_state"], "done");
    assert_eq!(cancel_conflict["auto_resolvable"], false);
    let table = world.run(&["marketplace", "conflicts"]).await;
    assert_eq!(table.status.code(), Some(0));
    assert!(
        text(&table).contains("cancel_after_delivery"),
        "{}",
        text(&table)
    );

    // resolve: marketplace while the cause stands fails and keeps it open; ignore closes
    // it; twice is refused; an unknown id exits 9.
    let cancel_id = cancel_conflict["id"].as_i64().unwrap().to_string();
    let again = world
        .run(&[
            "marketplace",
            "resolve",
            &cancel_id,
            "--apply",
            "marketplace",
        ])
        .await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("stays open"), "{}", text(&again));
    let ignored = world
        .run(&["marketplace", "resolve", &cancel_id, "--apply", "ignore"])
        .await;
    assert_eq!(ignored.status.code(), Some(0), "{}", text(&ignored));
    let twice = world
        .run(&["marketplace", "resolve", &cancel_id, "--apply", "ignore"])
        .await;
    assert_eq!(twice.status.code(), Some(1), "{}", text(&twice));
    let missing = world
        .run(&["marketplace", "resolve", "987654", "--apply", "ignore"])
        .await;
    assert_eq!(missing.status.code(), Some(9), "{}", text(&missing));
    let bad_side = world
        .run(&["marketplace", "resolve", &cancel_id, "--apply", "cartona"])
        .await;
    assert_eq!(bad_side.status.code(), Some(2), "{}", text(&bad_side));
    // resolve --apply odoo: Odoo's status (approved) is pushed to Cartona by the daemon.
    let edit_id = find("reopen_confirmed")["id"].as_i64().unwrap().to_string();
    let pushed = world
        .run(&[
            "marketplace",
            "resolve",
            &edit_id,
            "--apply",
            "odoo",
            "--json",
        ])
        .await;
    assert_eq!(pushed.status.code(), Some(0), "{}", text(&pushed));
    let pushed: Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!(pushed["state"], "resolved");
    assert_eq!(pushed["resolution"], "odoo");
    wait_until("Odoo's status pushed to Cartona", || async {
        world
            .cartona
            .posted()
            .iter()
            .any(|p| p.hashed_id == "S-ODOO" && p.status() == Some("approved"))
    })
    .await;
    let open = world
        .place
        .json(&["marketplace", "conflicts", "--json"])
        .await;
    assert_eq!(open, serde_json::json!([]));
    let all = world
        .place
        .json(&["marketplace", "conflicts", "--all", "--json"])
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let stats = world.place.json(&["marketplace", "stats", "--json"]).await;
    assert_eq!(stats["orders"], 3, "{stats}");
    assert_eq!(stats["open_conflicts"], 0, "{stats}");
    assert!(stats["success"].as_u64().unwrap() >= 5, "{stats}");
    // The cancel, the edit, and the refused `resolve --apply marketplace`.
    assert_eq!(stats["conflict"], 3, "{stats}");
    assert_eq!(stats["orders_in_sync"], 3, "{stats}");
    assert!(stats["average_response_ms"].is_number(), "{stats}");
    let stats_text = world.run(&["marketplace", "stats"]).await;
    assert!(
        text(&stats_text).contains("Orders in sync:"),
        "{}",
        text(&stats_text)
    );

    let daemon_lines = daemon.lines.clone();
    assert!(daemon.terminate().await.success());
    let logged = daemon_lines.lock().unwrap().join("\n");
    assert!(
        !logged.contains(&secret),
        "the daemon logged the webhook secret"
    );
    let mut printed = world.place.printed();
    printed.push_str(&logged);
    assert_no_secret(&printed);
    // `add` printed the webhook secret once, as it should; nothing else did.
    assert_eq!(printed.matches(secret.as_str()).count(), 1);
}
