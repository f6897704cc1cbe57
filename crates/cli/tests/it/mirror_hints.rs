//! The mirror's push hints through the real binary: `mirror install-hint` / `uninstall-hint`
//! against the simulator, and `odoo-bridge run --config FILE` mirroring a partner edited in
//! Odoo within seconds although the model's interval is five minutes.
//!
//! Waits are on conditions, bounded by [`TIMEOUT`]; the one bound on elapsed time (mirrored
//! well before the 300 s interval) only gets looser on a slow machine.

use crate::delivery_daemon::{Place, TIMEOUT, sim_key, text, wait_until};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, SearchReadOptions};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

const TOKEN_ENV: &str = "ODOO_BRIDGE_MIRROR_HINT_TOKEN";
const TOKEN: &str = "5f2b9c0d1e8a47b3a6c4d2e1f0a9b8c75f2b9c0d1e8a47b3";

fn write_config(dir: &Path, odoo_url: &str) -> PathBuf {
    let path = dir.join("mirror.yml");
    let db = dir.join("mirror.db");
    std::fs::write(
        &path,
        format!(
            "odoo:\n  base_url: \"{odoo_url}\"\n  database: odoo\n  username: admin\n\
             sqlite:\n  path: \"{}\"\n\
             mirror:\n  interval_seconds: 300\n\
             hints:\n  token_env: {TOKEN_ENV}\n\
             models:\n  - name: res.partner\n    fields: [name, write_date]\n    hint: true\n\
             \x20 - name: res.country\n    fields: [name]\n",
            db.display()
        ),
    )
    .unwrap();
    path
}

/// `odoo-bridge ARGS` with the Odoo key and the hint token in the environment.
async fn bridge(place: &Place, args: &[&str], token: Option<&str>) -> (Option<i32>, String) {
    let mut command = place.command(args);
    command.env("ODOO_API_KEY", sim_key()).env_remove(TOKEN_ENV);
    if let Some(token) = token {
        command.env(TOKEN_ENV, token);
    }
    let output = place.output(command, args).await;
    (output.status.code(), text(&output))
}

/// `odoo-bridge run --config FILE`, its log lines collected.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    async fn start(place: &Place, config: &Path) -> (Running, String) {
        let args = [
            "--log-level",
            "info",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--worker-id",
            "mirror-daemon",
            "--config",
            config.to_str().unwrap(),
        ];
        let mut command = place.command(&args);
        command
            .env("ODOO_API_KEY", sim_key())
            .env(TOKEN_ENV, TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("odoo-bridge run starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let running = Running { child, lines };
        let started = running
            .wait_for_log("the daemon's start", |line| {
                line["message"] == "odoo-bridge run: started"
            })
            .await;
        let address = started["address"].as_str().unwrap().to_owned();
        (running, address)
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    async fn wait_for_log(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| matches(line));
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("still running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("ignored SIGTERM:\n{}", self.output()))
            .unwrap();
        (status, self.output())
    }
}

/// POST `body` to `path` of the listener at `address`: the status code.
async fn post(address: &str, path: &str, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

async fn mirrored_name(db: &Path, id: i64) -> Option<String> {
    let store = store_sqlite::SqliteStore::open_existing(db).await.ok()?;
    let record = store.record("res.partner", id).await.ok().flatten();
    store.close().await;
    record.and_then(|record| record.payload["name"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_hint_makes_run_config_mirror_a_change_in_seconds() {
    let sim = OdooSim::with_data(
        SimConfig::default(),
        &DataSpec {
            seed: 33,
            partners: 10,
            products: 4,
            orders: 5,
        },
    );
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let odoo = OdooClient::new(ClientConfig::new(
        running.url(),
        "odoo",
        "admin",
        ApiKey::from(sim_key()),
    ))
    .unwrap();
    let place = Place::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &running.url());
    let config_arg = config.to_str().unwrap();
    let (daemon, address) = Running::start(&place, &config).await;
    daemon
        .wait_for_log("the first sync", |line| {
            line["message"] == "model mirrored" && line["model"] == "res.partner"
        })
        .await;
    let base_url = format!("http://{address}");

    // Bad input: a model the file does not list (2), one without `hint: true` (3), the
    // token's variable unset (3, naming the file's line).
    let install = |model: &'static str| {
        vec![
            "mirror",
            "install-hint",
            "--config",
            config_arg,
            "--model",
            model,
            "--base-url",
            &base_url,
        ]
    };
    let (code, printed) = bridge(&place, &install("sale.order"), Some(TOKEN)).await;
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("--model sale.order"), "{printed}");
    let (code, printed) = bridge(&place, &install("res.country"), Some(TOKEN)).await;
    assert_eq!(code, Some(3), "{printed}");
    assert!(printed.contains("hint: true"), "{printed}");
    let (code, printed) = bridge(&place, &install("res.partner"), None).await;
    assert_eq!(code, Some(3), "{printed}");
    assert!(
        printed.contains("mirror.yml:10:") && printed.contains(TOKEN_ENV),
        "{printed}"
    );

    let mut json_install = install("res.partner");
    json_install.push("--json");
    let (code, printed) = bridge(&place, &json_install, Some(TOKEN)).await;
    assert_eq!(code, Some(0), "{printed}");
    let installed: Value = serde_json::from_str(printed.lines().next().unwrap()).unwrap();
    assert_eq!(installed["rule"], "created", "{installed}");
    assert_eq!(
        installed["rule_name"],
        "odoo-bridge mirror hint (res.partner)"
    );
    assert_eq!(
        installed["hint_url"],
        json!(format!(
            "{base_url}/hooks/odoo-mirror/res.partner/••••{}",
            &TOKEN[44..]
        ))
    );
    let (code, printed) = bridge(&place, &json_install, Some(TOKEN)).await;
    assert_eq!(code, Some(0), "{printed}");
    let again: Value = serde_json::from_str(printed.lines().next().unwrap()).unwrap();
    assert_eq!(again["rule"], "updated", "run twice, one rule: {again}");
    assert_eq!(again["rule_id"], installed["rule_id"]);
    assert_eq!(sim.call_count("base.automation", "create"), 1);

    // A partner edited in Odoo: mirrored long before the model's 300 s interval.
    let partner = odoo
        .search("res.partner", &SearchReadOptions::default().order("id asc"))
        .await
        .unwrap()[0];
    let started = Instant::now();
    let mut vals = Map::new();
    vals.insert("name".into(), json!("Hinted Ltd"));
    odoo.write("res.partner", &[partner], vals, None)
        .await
        .unwrap();
    let db = dir.path().join("mirror.db");
    wait_until("the hinted sync", || async {
        mirrored_name(&db, partner).await.as_deref() == Some("Hinted Ltd")
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "mirrored by the hint, not the 300 s interval: {:?}",
        started.elapsed()
    );
    let sent = sim.sent_webhooks();
    assert_eq!(sent.last().unwrap().outcome, "202", "{sent:?}");
    // A wrong token is refused.
    let wrong = format!("/hooks/odoo-mirror/res.partner/{}", "0".repeat(48));
    assert_eq!(
        post(&address, &wrong, r#"{"_model": "res.partner", "_id": 1}"#).await,
        404
    );

    // Uninstalled: the rule is gone from Odoo; a second time there is nothing to remove.
    let uninstall = [
        "mirror",
        "uninstall-hint",
        "--config",
        config_arg,
        "--model",
        "res.partner",
        "--json",
    ];
    let (code, printed) = bridge(&place, &uninstall, None).await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains(r#""rule_removed":true"#), "{printed}");
    assert_eq!(sim.call_count("base.automation", "unlink"), 1);
    let (_, printed) = bridge(&place, &uninstall, None).await;
    assert!(printed.contains(r#""rule_removed":false"#), "{printed}");

    sim.uninstall_base_automation();
    let (code, printed) = bridge(&place, &install("res.partner"), Some(TOKEN)).await;
    assert_eq!(code, Some(3), "{printed}");
    assert!(
        printed.contains("Automation Rules") && printed.contains("base_automation"),
        "{printed}"
    );

    let (status, logged) = daemon.terminate().await;
    assert!(status.success(), "{logged}");
    assert!(
        logged.contains("the mirror's schedule stopped"),
        "stopped cleanly: {logged}"
    );
    for printed in [place.printed(), logged] {
        assert!(!printed.contains(TOKEN), "the hint token never printed");
        assert!(!printed.contains(&sim_key()), "the API key never printed");
    }
}
