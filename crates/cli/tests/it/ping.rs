use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

pub const BINARY: &str = env!("CARGO_BIN_EXE_odoo-bridge");

/// A `odoo-bridge sim` process, killed when dropped.
pub struct SimProcess {
    child: Child,
    details: Value,
}

impl SimProcess {
    pub fn start(extra: &[&str]) -> SimProcess {
        SimProcess::start_with_data(
            &["--partners", "10", "--orders", "10", "--products", "5"],
            extra,
        )
    }

    /// Like [`SimProcess::start`], with the data size flags (`--partners`, `--orders`,
    /// `--products`, `--seed`) given by the caller: clap refuses a flag given twice.
    pub fn start_with_data(data: &[&str], extra: &[&str]) -> SimProcess {
        let mut child = Command::new(BINARY)
            .args(["sim", "--port", "0", "--json"])
            .args(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("a first line");
        let details: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("sim printed {line:?}: {e}"));
        SimProcess { child, details }
    }

    pub fn url(&self) -> &str {
        self.details["url"].as_str().unwrap()
    }

    pub fn key(&self) -> &str {
        self.details["api_key"].as_str().unwrap()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ping(url: &str, key: Option<&str>, extra: &[&str]) -> Output {
    ping_db(url, "odoo", key, extra)
}

fn ping_db(url: &str, database: &str, key: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args([
            "--log-format",
            "json",
            "odoo",
            "ping",
            "--url",
            url,
            "--db",
            database,
            "--user",
            "admin",
        ])
        .args(extra);
    command.env_remove("ODOO_API_KEY");
    if let Some(key) = key {
        command.env("ODOO_API_KEY", key);
    }
    command.output().expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn ping_reports_version_uid_and_transport() {
    let sim = SimProcess::start(&[]);
    let output = ping(sim.url(), Some(sim.key()), &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["server_version"], "18.0");
    assert_eq!(answer["uid"], 2);
    assert_eq!(answer["transport"], "jsonrpc");
    assert!(
        !text(&output).contains(sim.key()),
        "the key must not be echoed"
    );
}

#[test]
fn ping_picks_json2_on_odoo_19() {
    let sim = SimProcess::start(&["--odoo-version", "19"]);
    let output = ping(sim.url(), Some(sim.key()), &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["transport"], "json2");
    assert_eq!(answer["uid"], 2);
    let forced = ping(
        sim.url(),
        Some(sim.key()),
        &["--json", "--transport", "jsonrpc"],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&forced.stdout).unwrap()["transport"],
        "jsonrpc"
    );
}

#[test]
fn each_failure_class_has_its_own_exit_code_and_message() {
    let sim = SimProcess::start(&[]);
    let wrong_key = "wrong-key-which-must-stay-SECRET-4242";
    let output = ping(sim.url(), Some(wrong_key), &[]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(
        text(&output).contains("wrong database, login or API key"),
        "{}",
        text(&output)
    );
    assert!(
        !text(&output).contains(wrong_key),
        "the key leaked: {}",
        text(&output)
    );

    let output = ping(sim.url(), None, &[]);
    assert_eq!(output.status.code(), Some(3));
    assert!(text(&output).contains("ODOO_API_KEY"));

    let output = ping("http://127.0.0.1:1", Some(sim.key()), &["--retries", "0"]);
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));

    // A flag value that is not a URL is a bad command line, refused by clap.
    let output = ping("not a url", Some(sim.key()), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));

    // A wrong database is a refused login (4), said in so many words.
    let output = ping_db(sim.url(), "nope", Some(sim.key()), &[]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(
        text(&output).contains("Odoo has no database 'nope'"),
        "{}",
        text(&output)
    );
    assert!(
        !text(&output).contains("Traceback") && !text(&output).contains("psycopg2"),
        "Odoo's traceback must stay out of user output: {}",
        text(&output)
    );
}

#[test]
fn temporary_failures_are_retried_and_lasting_ones_end_with_unreachable() {
    let sim = SimProcess::start(&["--fault", "503x2"]);
    let output = ping(sim.url(), Some(sim.key()), &["--retries", "3"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Retries are logged as structured JSON lines on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|line| serde_json::from_str::<Value>(line).is_ok_and(|v| v["level"] == "WARN")),
        "{stderr}"
    );

    let down = SimProcess::start(&["--fault", "503x*"]);
    let output = ping(down.url(), Some(down.key()), &["--retries", "1"]);
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
}

#[test]
fn bad_fault_specs_are_usage_errors() {
    let output = Command::new(BINARY)
        .args(["sim", "--fault", "teapot"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid fault"));
}
