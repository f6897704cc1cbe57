//! `odoo-bridge tui` end to end: the real binary in a detached tmux session (120×40, on a
//! tmux socket of its own), driven with `send-keys` and read with `capture-pane`. A simulated
//! Odoo and a Standard Webhooks receiver run in this process on loopback.
//!
//! The flow: the dashboard comes up with its poller running; `n` opens the form, every field
//! is typed in (the API key hidden), Ctrl-S saves; the "added" message shows the webhook
//! secret once; then an order reaches the receiver, signed with that secret, and the
//! connection's cycle appears in the dashboard's activity feed; a marketplace added by the CLI
//! meanwhile shows on the Marketplace screen (`m`, then `q` back); `q` quits and the process
//! exits 0. No capture ever shows the API key or the Cartona token.
//!
//! tmux is required: without it the test fails and says so (`.ci/run` installs it). Every
//! wait is on a condition, polled every 200 ms, under one overall bound ([`DEADLINE`]).

use crate::ping::BINARY;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use engine::webhook::{Verifier, WebhookSecret};
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The whole test, from the simulator's start to the TUI's exit.
const DEADLINE: Duration = Duration::from_secs(120);
/// How often the pane is captured while waiting.
const POLL: Duration = Duration::from_millis(200);
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

/// The simulator's API key, typed into the form: no capture may show it (the form shows a
/// `•` per character, the dashboard at most `••••` and its last four characters).
const API_KEY: &str = "tmux-e2e-odoo-key-Q7w9Zr4Kx2Lm8Np3Vb6H";
const NAME: &str = "Tmux shop E2E";
const STORE_ID: &str = "store-tmux-7";
const CLIENT_ID: &str = "client-tmux-9";
/// A marketplace added by the CLI while the TUI runs, paused (nothing to pull from), and its
/// Cartona token: no capture may show it either.
const MARKET: &str = "Cartona tmux";
const CARTONA_TOKEN: &str = "tmux-e2e-cartona-token-R5t8Yp2Wq9";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// tmux, on a socket of this test's own.

/// A tmux server on its own socket (`tmux -L`), with one detached session running the
/// binary. Dropping it kills that server, and only that one.
struct Tmux {
    socket: String,
    session: String,
    config: PathBuf,
    /// The server's socket file, removed with the server.
    socket_path: Option<PathBuf>,
    /// Where the pane's shell writes the program's exit code once it has exited.
    status_file: PathBuf,
    /// Every capture taken, to check that none shows the API key.
    captures: Mutex<Vec<String>>,
}

impl Tmux {
    /// Fails the test with a clear message when tmux is not installed.
    fn require() {
        match Command::new("tmux").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "tmux -V failed ({}): {}; the TUI end-to-end test needs tmux (.ci/run installs it)",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => panic!(
                "tmux is not installed ({error}): the TUI end-to-end test runs `odoo-bridge tui` \
                 in tmux; install it (apt-get install -y tmux) or run .ci/run, which does"
            ),
        }
    }

    /// Starts `program args` in a detached session of [`WIDTH`]×[`HEIGHT`] in `dir`.
    fn start(dir: &Path, program: &[String]) -> Tmux {
        Tmux::require();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let unique = format!("odoo-bridge-it-{}-{nanos}", std::process::id());
        // No status line (the pane gets all 40 rows); the pane stays after the process
        // exits, so its exit status can be read.
        let config = dir.join("tmux.conf");
        std::fs::write(
            &config,
            "set -g status off\nset -g remain-on-exit on\nset -g history-limit 200\n",
        )
        .unwrap();
        let status_file = dir.join("exit-status");
        let mut tmux = Tmux {
            socket: unique.clone(),
            session: unique,
            config,
            socket_path: None,
            status_file: status_file.clone(),
            captures: Mutex::default(),
        };
        let (width, height) = (WIDTH.to_string(), HEIGHT.to_string());
        let mut args = vec![
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width,
            "-y",
            &height,
            "-c",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            r#"status_file="$1"; shift; "$@"; echo $? > "$status_file""#,
            "sh",
            status_file.to_str().unwrap(),
        ];
        args.extend(program.iter().map(String::as_str));
        tmux.run(&args);
        let socket_path = tmux.run(&["display-message", "-p", "#{socket_path}"]);
        tmux.socket_path = Some(PathBuf::from(socket_path.trim()));
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .env_remove("TMUX")
            .env("TERM", "xterm-256color");
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("tmux runs")
    }

    /// Runs a tmux command; fails the test if tmux refuses it.
    fn run(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "tmux {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` as it is (no key names).
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.session, "-l", text]);
    }

    /// Presses keys named as tmux names them (`Tab`, `Enter`, `C-u`, `q`).
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The pane as shown now.
    fn capture(&self) -> String {
        let text = self.run(&["capture-pane", "-p", "-t", &self.session]);
        lock(&self.captures).push(text.clone());
        text
    }

    /// `Some(exit code)` once the program in the pane has exited. The pane runs it under
    /// `sh`, which writes its exit code to a file: tmux's own `#{pane_dead_status}` was
    /// seen to stay empty, the program a zombie tmux had not reaped.
    fn exit_status(&self) -> Option<i32> {
        let written = std::fs::read_to_string(&self.status_file).ok()?;
        Some(written.trim().parse().unwrap_or(-1))
    }

    /// Waits until `check` finds what it looks for in a capture, or fails at `deadline`
    /// showing the last capture.
    async fn wait_for<T>(
        &self,
        what: &str,
        deadline: Instant,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> T {
        loop {
            let screen = self.capture();
            if let Some(found) = check(&screen) {
                return found;
            }
            assert!(
                self.exit_status().is_none(),
                "the TUI exited while waiting for {what}; last screen:\n{screen}"
            );
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; last screen:\n{screen}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.output(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The webhook receiver, in this process: records every request as received; signatures are
// verified once the secret is known (it is read from the screen after saving).

#[derive(Debug, Clone)]
struct Request {
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn verified_with(&self, secret: &str) -> bool {
        let secret = WebhookSecret::new(secret).expect("a valid secret");
        self.header("x-webhook-secret") == secret.expose()
            && Verifier::new(secret)
                .verify(&self.headers, &self.body)
                .is_ok()
    }
}

type Requests = Arc<Mutex<Vec<Request>>>;

async fn record(
    State(requests): State<Requests>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    lock(&requests).push(Request { headers, body });
    (StatusCode::OK, "{\"ok\":true}")
}

/// Serves the receiver on 127.0.0.1; returns its URL and what it got.
async fn start_receiver() -> (String, Requests) {
    let requests = Requests::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/hooks/orders", post(record))
        .with_state(requests.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, requests)
}

// ---------------------------------------------------------------------------------------
// Reading the screen.

/// The words of a line of the screen, without the boxes' borders.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || c == '│')
        .filter(|word| !word.is_empty())
}

/// The first word after `label` on a line of the screen (`Id: …`, `Webhook secret: …`).
fn value_after(screen: &str, label: &str) -> Option<String> {
    screen.lines().find_map(|line| {
        let at = line.find(label)?;
        words(&line[at + label.len()..]).next().map(str::to_owned)
    })
}

/// The secret on the line after "Webhook secret (shown this once…" in the saved message.
fn secret_in_message(screen: &str) -> Option<String> {
    let mut lines = screen.lines();
    lines.find(|line| line.contains("Webhook secret (shown this once"))?;
    let found: Vec<&str> = words(lines.next()?).collect();
    match found.as_slice() {
        [secret] => Some((*secret).to_owned()),
        _ => None,
    }
}

/// The activity feed's line of a cycle of [`NAME`] that sent orders.
fn sent_cycle(screen: &str) -> Option<String> {
    let feed = screen.split_once("Recent activity")?.1;
    feed.lines()
        .find(|line| line.contains(NAME) && line.contains('✓') && line.contains(" sent ("))
        .map(|line| line.trim().trim_matches('│').trim().to_owned())
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tui_in_tmux_creates_a_connection_and_delivers_an_order() {
    Tmux::require();
    tokio::time::timeout(DEADLINE + Duration::from_secs(10), scenario())
        .await
        .unwrap_or_else(|_| panic!("the TUI end-to-end test took longer than {DEADLINE:?}"));
}

async fn scenario() {
    let deadline = Instant::now() + DEADLINE;

    // Odoo with a few dozen orders, and the receiver.
    let config = SimConfig {
        admin_api_key: API_KEY.to_owned(),
        ..SimConfig::default()
    };
    let sim = OdooSim::with_data(
        config,
        &DataSpec {
            seed: 20,
            partners: 10,
            products: 6,
            orders: 30,
        },
    );
    let running = sim.serve_on_loopback().await.expect("the sim serves");
    let odoo_url = running.url();
    let (webhook_url, requests) = start_receiver().await;

    // The TUI, on a store of its own, with no key nor store in its environment.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store").join("odoo-bridge.db");
    let program: Vec<String> = [
        "env",
        "-u",
        "ODOO_API_KEY",
        "-u",
        "DATABASE_URL",
        "-u",
        "POLLER_DEFAULT_WEBHOOK_URL",
        "TERM=xterm-256color",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("POLLER_DB_PATH={}", db.display()),
        BINARY.to_owned(),
        "tui".to_owned(),
        "--log-file".to_owned(),
        dir.path().join("tui.log").display().to_string(),
    ])
    .collect();
    let tmux = Tmux::start(dir.path(), &program);

    // The dashboard, with no connection yet and this TUI's poller running.
    tmux.wait_for(
        "the empty dashboard with its poller running",
        deadline,
        |s| (s.contains("Poller: RUNNING") && s.contains("Connections (0)")).then_some(()),
    )
    .await;

    // The form: every field typed in.
    tmux.press(&["n"]);
    tmux.wait_for("the new connection form", deadline, |s| {
        s.contains("New connection").then_some(())
    })
    .await;
    tmux.type_text(NAME);
    tmux.press(&["Tab"]);
    tmux.type_text(&odoo_url);
    tmux.press(&["Tab"]);
    tmux.type_text("odoo");
    tmux.press(&["Tab"]);
    tmux.type_text("admin");
    tmux.press(&["Tab"]);
    tmux.type_text(API_KEY);
    tmux.press(&["Tab", "C-u"]);
    tmux.type_text(&webhook_url);
    // The webhook secret keeps its pre-generated UUID4.
    tmux.press(&["Tab", "Tab"]);
    tmux.type_text(STORE_ID);
    tmux.press(&["Tab"]);
    tmux.type_text(CLIENT_ID);
    tmux.press(&["Tab", "C-u"]);
    tmux.type_text("1");
    let dots = "•".repeat(API_KEY.chars().count());
    let form = tmux
        .wait_for("the form filled in", deadline, |s| {
            let filled = s.contains(&webhook_url)
                && s.contains(CLIENT_ID)
                && s.contains(&dots)
                && value_after(s, "Interval (s):").as_deref() == Some("1");
            filled.then(|| s.to_owned())
        })
        .await;
    assert!(
        form.contains(NAME) && form.contains(&odoo_url) && form.contains(STORE_ID),
        "{form}"
    );
    assert!(
        !form.contains(API_KEY),
        "the form shows the API key:\n{form}"
    );
    let form_secret = value_after(&form, "Webhook secret:").expect("the form shows a secret");

    // Saved: the secret is shown this once, with the connection's id.
    tmux.press(&["C-s"]);
    let saved = tmux
        .wait_for("the \"added\" message", deadline, |s| {
            s.contains(&format!("Connection \"{NAME}\" added"))
                .then(|| s.to_owned())
        })
        .await;
    let secret = secret_in_message(&saved).expect("the message shows the secret");
    assert_eq!(secret, form_secret, "{saved}");
    let id = value_after(&saved, "Id:").expect("the message shows the id");
    tmux.press(&["Enter"]);

    // An order reaches the receiver, signed with that secret, and the cycle that sent it
    // shows in the activity feed.
    let line = tmux
        .wait_for(
            "an order at the receiver and a cycle with sent orders in the activity feed",
            deadline,
            |s| {
                let delivered = lock(&requests).iter().any(|r| r.verified_with(&secret));
                let line = sent_cycle(s)?;
                delivered.then_some(line)
            },
        )
        .await;
    assert!(line.contains("order"), "{line}");
    eprintln!("activity feed: {line}");
    let got = lock(&requests).clone();
    for request in &got {
        assert!(
            request.verified_with(&secret),
            "a delivery not signed with the connection's secret: {request:?}"
        );
        assert_eq!(request.header("x-odoo-connection-id"), id);
        assert!(
            request.header("webhook-id").starts_with(&format!("{id}_")),
            "{request:?}"
        );
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        assert!(body.is_object(), "{body}");
    }

    // The dashboard lists the connection with its key nowhere on the screen.
    let dashboard = tmux.capture();
    assert!(dashboard.contains(NAME), "{dashboard}");

    // A marketplace added meanwhile by the CLI on the same store shows on the Marketplace
    // screen; q goes back to the dashboard.
    let added = Command::new(BINARY)
        .args([
            "marketplace",
            "add",
            "--name",
            MARKET,
            "--api-url",
            "http://127.0.0.1:9/api/v1",
            "--odoo-url",
            &odoo_url,
            "--odoo-db",
            "odoo",
            "--odoo-username",
            "admin",
            "--paused",
            "--json",
        ])
        .env_remove("DATABASE_URL")
        .env("POLLER_DB_PATH", &db)
        .env("ODOO_API_KEY", API_KEY)
        .env("CARTONA_API_TOKEN", CARTONA_TOKEN)
        .output()
        .expect("odoo-bridge marketplace add runs");
    assert!(
        added.status.success(),
        "marketplace add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).expect("a JSON object");
    let market_secret = added["webhook_secret"]
        .as_str()
        .expect("the webhook secret")
        .to_owned();
    tmux.press(&["m"]);
    tmux.wait_for(
        "the Marketplace screen with the new marketplace",
        deadline,
        |s| {
            (s.contains("Marketplaces (1)")
                && s.contains(MARKET)
                && s.contains("○ paused")
                && s.contains("No open conflicts.")
                && s.contains("No sync events yet."))
            .then_some(())
        },
    )
    .await;
    tmux.press(&["q"]);
    tmux.wait_for("the dashboard again", deadline, |s| {
        s.contains("Connections (1)").then_some(())
    })
    .await;

    // q quits: the process exits 0.
    tmux.press(&["q"]);
    let status = loop {
        if let Some(status) = tmux.exit_status() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the TUI did not exit after q; screen:\n{}",
            tmux.capture()
        );
        tokio::time::sleep(POLL).await;
    };
    let log = std::fs::read_to_string(dir.path().join("tui.log")).unwrap_or_default();
    assert_eq!(
        status,
        0,
        "the TUI exited with {status}; screen:\n{}\nits log:\n{log}",
        tmux.capture()
    );

    // No capture ever showed the API key (the last four characters may show: ••••Vb6H).
    let hidden = &API_KEY[..API_KEY.len() - 4];
    let captures = lock(&tmux.captures).clone();
    assert!(captures.len() > 5, "only {} captures", captures.len());
    for capture in &captures {
        assert!(
            !capture.contains(hidden),
            "a capture shows the API key:\n{capture}"
        );
        assert!(
            !capture.contains(CARTONA_TOKEN) && !capture.contains(&market_secret),
            "a capture shows a marketplace secret:\n{capture}"
        );
    }
    drop(tmux);
    drop(running);
}
