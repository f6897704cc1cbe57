//! The fault matrix's mirror cases (the README's "Faults" table names each test): the real
//! `odoo-bridge sync` against a simulator process whose `--fault` rules misbehave, killed at
//! random moments, facing an Odoo that restarts, a revoked key, or a full disk. Every case ends
//! with the mirror holding exactly Odoo's records, once.
//!
//! Waits are on log lines and process exits, bounded by the mirror tests' `TIMEOUT`; the only
//! sleeps are the random moments of the kills and the length of Odoo's outage, which the
//! assertions do not depend on.

use crate::full_disk::SmallDisk;
use crate::mirror_postgres::{
    Background, PgDb, assert_mirrors, custom_config, finish, odoo, odoo_counts, page_written,
    pg_section, sync_command, write_config,
};
use crate::ping::{BINARY, SimProcess};
use serde_json::Value;
use sqlx::{Connection, SqliteConnection};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Enough records for several pages of 50 per model.
const DATA: [&str; 6] = ["--partners", "400", "--orders", "300", "--products", "10"];

const MODELS: &str = "  - name: res.partner\n    fields: [id, name, email, active, write_date]\n    page_size: 50\n  - name: sale.order\n    fields: [id, name, state, amount_total, write_date]\n    page_size: 50\n";

/// A configuration into the PostgreSQL database `db` with `max_retries` quick retries.
fn pg_config(odoo_url: &str, db: &PgDb, max_retries: u32, backoff_ms: u32) -> String {
    custom_config(
        odoo_url,
        &pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"),
        MODELS,
    )
    .replace("max_retries: 3", &format!("max_retries: {max_retries}"))
    .replace(
        "backoff_base_ms: 10",
        &format!("backoff_base_ms: {backoff_ms}"),
    )
}

/// The next of a fixed pseudo-random sequence (an LCG: the kills land at the same moments on
/// every run, so a failure can be replayed).
fn next_random(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_at_random_moments_then_rerun_mirrors_exactly() {
    // Every page read takes 100 ms, so a run lasts long enough to be cut anywhere.
    let sim = SimProcess::start_with_data(&DATA, &["--fault", "delay:100msx*@object/search_read"]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = pg_config(sim.url(), &db, 3, 10);
    let config = write_config(dir.path(), &text);
    let mut state = 0x5eed_u64;
    for _ in 0..5 {
        let moment = Duration::from_millis(50 + next_random(&mut state) % 1_500);
        let mut run = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
        tokio::time::sleep(moment).await;
        if !run.has_exited() {
            run.kill().await;
        }
    }
    let last = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(last.code, Some(0), "{}", last.text());
    assert_mirrors(&db, &odoo_counts(&odoo(&sim), &text, &[]).await).await;
}

/// `odoo-bridge sim` on a given port, for an Odoo that restarts where it was.
struct SimAt {
    child: Child,
    url: String,
    key: String,
}

impl SimAt {
    fn start(port: u16) -> SimAt {
        let mut child = Command::new(BINARY)
            .args(["sim", "--json", "--port", &port.to_string()])
            .args(DATA)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("its first line");
        let details: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        SimAt {
            child,
            url: details["url"].as_str().unwrap().to_owned(),
            key: details["api_key"].as_str().unwrap().to_owned(),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SimAt {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_restarting_mid_sync_is_retried_and_the_mirror_completes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut sim = SimAt::start(port);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    // Retries back off 200 ms, 400 ms, 800 ms, …: far longer in all than the outage.
    let text = pg_config(&sim.url, &db, 8, 200);
    let config = write_config(dir.path(), &text);
    let mut run = Background::spawn(sync_command(&config, Some(&sim.key), &[]));
    run.wait_for_log(page_written("res.partner", 1)).await;
    sim.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sim = SimAt::start(port);
    let finished = run.finish().await;
    assert_eq!(finished.code, Some(0), "{}", finished.text());
    let retried = finished
        .logs()
        .iter()
        .any(|line| line["message"] == "retrying Odoo call");
    assert!(retried, "{}", finished.stderr);
    let client = odoo_rpc::OdooClient::new(odoo_rpc::ClientConfig::new(
        sim.url.as_str(),
        "odoo",
        "admin",
        sim.key.as_str(),
    ))
    .unwrap();
    assert_mirrors(&db, &odoo_counts(&client, &text, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_beyond_the_timeout_are_retried_and_the_mirror_completes() {
    // Two reads of res.partner answer after 3 s; the configuration waits 1 s.
    let sim =
        SimProcess::start_with_data(&DATA, &["--fault", "delay:3sx2@res.partner/search_read"]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = pg_config(sim.url(), &db, 3, 10)
        .replace("request_timeout_seconds: 30", "request_timeout_seconds: 1");
    let config = write_config(dir.path(), &text);
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let timeouts = run
        .logs()
        .into_iter()
        .filter(|line| line["message"] == "retrying Odoo call")
        .count();
    assert_eq!(timeouts, 2, "{}", run.stderr);
    assert_mirrors(&db, &odoo_counts(&odoo(&sim), &text, &[]).await).await;
}

/// A truncated answer is not retried (it is not a transport failure: Odoo or a proxy answered
/// 200 with broken JSON): the model fails, the others are mirrored, the run is partial (8),
/// and the next run completes from the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_from_odoo_fails_the_model_and_the_next_run_completes() {
    let sim = SimProcess::start_with_data(&DATA, &["--fault", "malformed@res.partner/search_read"]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = pg_config(sim.url(), &db, 3, 10);
    let config = write_config(dir.path(), &text);
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    run.assert_no_panic();
    assert_eq!(run.code, Some(8), "{}", run.text());
    assert!(
        run.text().contains("malformed response from Odoo"),
        "{}",
        run.text()
    );
    assert_mirrors(
        &db,
        &odoo_counts(&odoo(&sim), &text, &["res.partner"]).await,
    )
    .await;
    let rerun = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    assert_mirrors(&db, &odoo_counts(&odoo(&sim), &text, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_run_exits_4_and_a_rerun_with_a_valid_key_completes() {
    // After 6 calls, every call is refused as a revoked key would be.
    let sim = SimProcess::start_with_data(
        &DATA,
        &["--fault", "error:odoo.exceptions.AccessDeniedx*+6"],
    );
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = pg_config(sim.url(), &db, 3, 10);
    let config = write_config(dir.path(), &text);
    let revoked = finish(sync_command(&config, Some(sim.key()), &[])).await;
    revoked.assert_no_panic();
    assert_eq!(revoked.code, Some(4), "{}", revoked.text());
    assert!(
        !revoked.text().contains(sim.key()),
        "the key is never shown"
    );

    // The same Odoo (same data), the key valid again.
    let healthy = SimProcess::start_with_data(&DATA, &[]);
    let text = pg_config(healthy.url(), &db, 3, 10);
    let config = write_config(dir.path(), &text);
    let rerun = finish(sync_command(&config, Some(healthy.key()), &[])).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    assert_mirrors(&db, &odoo_counts(&odoo(&healthy), &text, &[]).await).await;
}

/// `(rows, distinct ids)` per model in an SQLite mirror.
async fn sqlite_mirrored(path: &Path) -> BTreeMap<String, (i64, i64)> {
    let mut connection = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT model, count(*), count(DISTINCT odoo_id) FROM odoo_raw_records GROUP BY model",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    rows.into_iter()
        .map(|(model, rows, ids)| (model, (rows, ids)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_sqlite_mirror_fails_clearly_and_a_rerun_completes() {
    let Some(disk) = SmallDisk::mount(64) else {
        return;
    };
    let sim = SimProcess::start_with_data(&DATA, &[]);
    let database = disk.path("mirror.db");
    let text = custom_config(
        sim.url(),
        &format!("sqlite:\n  path: {}\n", database.display()),
        MODELS,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &text);
    let path = config.to_str().unwrap();
    let migrated = finish(crate::mirror_postgres::bridge(
        &["migrate", "--config", path],
        None,
    ))
    .await;
    assert_eq!(migrated.code, Some(0), "{}", migrated.text());

    disk.fill();
    let full = finish(sync_command(&config, Some(sim.key()), &[])).await;
    full.assert_no_panic();
    assert_ne!(full.code, Some(0), "{}", full.text());
    assert!(
        full.text()
            .contains("the disk holding the SQLite store: it is full or failing"),
        "{}",
        full.text()
    );

    disk.free();
    let rerun = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    let expected = odoo_counts(&odoo(&sim), &text, &[]).await;
    let mirrored = sqlite_mirrored(&database).await;
    for (model, count) in &expected {
        assert_eq!(mirrored.get(model), Some(&(*count, *count)), "{model}");
    }
    assert!(disk.root().exists());
}
