//! The mirror when Odoo misbehaves (rate limits, proxy errors, a model that keeps failing)
//! and when two runs meet on SQLite: the real binary, the simulator's `--fault` rules.

use crate::mirror_postgres::{
    Background, PgDb, SEED_MODELS, assert_mirrors, bridge, custom_config, finish, odoo,
    odoo_counts, pg_section, seed_config, sync_command, write_config,
};
use crate::ping::SimProcess;
use serde_json::Value;

/// The seed's configuration with quick retries, enough for a burst of eight failures.
fn seed_with_quick_retries(url: &str, database: &str, max_retries: u32) -> String {
    let text = seed_config(url, database);
    assert!(text.contains("max_retries: 5") && text.contains("backoff_base_ms: 500"));
    text.replace("max_retries: 5", &format!("max_retries: {max_retries}"))
        .replace("backoff_base_ms: 500", "backoff_base_ms: 10")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_429_and_5xx_are_retried_and_the_mirror_is_complete() {
    // The first eight calls fail: three 429 (Retry-After: 1), three 503, two 502.
    let sim = SimProcess::start(&["--fault", "429:1x3", "--fault", "503x3", "--fault", "502x2"]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_with_quick_retries(sim.url(), &db.name, 10);
    let config = write_config(dir.path(), &text);
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let retries: Vec<Value> = run
        .logs()
        .into_iter()
        .filter(|line| line["message"] == "retrying Odoo call")
        .collect();
    assert_eq!(retries.len(), 8, "{}", run.stderr);
    let classes: Vec<&str> = retries
        .iter()
        .filter_map(|line| line["error_class"].as_str())
        .collect();
    assert_eq!(classes.len(), 8, "{retries:?}");
    let runs = db.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "success");
    assert_mirrors(&db, &odoo_counts(&odoo(&sim), &text, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_failing_for_good_ends_partial_and_the_others_are_mirrored() {
    let sim = SimProcess::start(&["--fault", "503x*@crm.lead"]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let text = seed_with_quick_retries(sim.url(), &db.name, 2);
    let config = write_config(dir.path(), &text);
    let run = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(run.code, Some(8), "{}", run.text());
    run.assert_no_panic();
    let failed = run
        .stdout
        .lines()
        .find(|line| line.starts_with("crm.lead "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        failed.contains("FAILED") && failed.contains("503"),
        "{failed}"
    );
    // Every other model, including the ones after crm.lead, is complete.
    for model in SEED_MODELS.into_iter().filter(|model| *model != "crm.lead") {
        run.printed(model);
    }
    assert_mirrors(&db, &odoo_counts(&odoo(&sim), &text, &["crm.lead"]).await).await;
    let runs = db.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "partial", "{runs:?}");
    assert!(runs[0].finished);
    let error = runs[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("crm.lead") && error.contains("503"),
        "{error}"
    );
    assert!(
        !error.contains("sale.order"),
        "only the failed model is named: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sqlite_run_exits_with_lock_busy() {
    // The first run's first read of res.partner hangs for a minute: it holds the lock.
    let sim = SimProcess::start(&["--fault", "delay:60s@res.partner/search_read"]);
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("mirror.db");
    let text = custom_config(
        sim.url(),
        &format!("sqlite:\n  path: {}\n", database.display()),
        "  - name: res.partner\n    fields: [id, name, write_date]\n",
    );
    let config = write_config(dir.path(), &text);
    let mut first = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
    first
        .wait_for_log(|line| line["message"] == "model started" && line["model"] == "res.partner")
        .await;
    let second = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(second.code, Some(7), "{}", second.text());
    assert!(second.stderr.contains("lock"), "{}", second.text());
    second.assert_no_panic();

    let path = config.to_str().unwrap();
    let runs = finish(bridge(&["runs", "--json", "--config", path], None)).await;
    assert_eq!(runs.code, Some(0), "{}", runs.text());
    let runs: Vec<Value> = runs
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(runs.len(), 1, "only the first run has a row: {runs:?}");
    assert_eq!(runs[0]["status"], "running");

    // The lock dies with its process, even by SIGKILL.
    first.kill().await;
    let third = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(third.code, Some(0), "{}", third.text());
    assert!(third.printed("res.partner").new > 0);
}

/// `runs --json`, newest first.
async fn runs_json(config: &std::path::Path) -> Vec<Value> {
    let runs = finish(bridge(
        &["runs", "--json", "--config", config.to_str().unwrap()],
        None,
    ))
    .await;
    assert_eq!(runs.code, Some(0), "{}", runs.text());
    runs.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A sync killed with kill -9 after it committed a page stays `running`; the next run finds
/// it (it holds the lock, so the killed process does not) and marks it `interrupted`, with
/// the counters it had.
async fn a_killed_sync_is_marked_interrupted_by_the_next_run(target: &str, dir: &std::path::Path) {
    // res.users is mirrored first; the first read of res.partner then hangs for a minute.
    let sim = SimProcess::start(&["--fault", "delay:60s@res.partner/search_read"]);
    let text = custom_config(
        sim.url(),
        target,
        "  - name: res.users\n    fields: [id, login, write_date]\n  - name: res.partner\n    fields: [id, name, write_date]\n",
    );
    let config = write_config(dir, &text);
    let mut first = Background::spawn(sync_command(&config, Some(sim.key()), &[]));
    first
        .wait_for_log(|line| line["message"] == "model started" && line["model"] == "res.partner")
        .await;
    first.kill().await;

    let left = runs_json(&config).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["status"], "running", "{left:?}");
    assert!(left[0]["pages"].as_u64().unwrap() >= 1, "{left:?}");

    let second = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    second.assert_no_panic();
    assert!(
        second.stderr.contains("marked interrupted"),
        "the run says what it found: {}",
        second.text()
    );

    let runs = runs_json(&config).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let killed = runs.iter().find(|run| run["id"] == left[0]["id"]).unwrap();
    assert_eq!(killed["status"], "interrupted", "{runs:?}");
    for counter in ["pages", "fetched", "inserted", "updated", "unchanged"] {
        assert_eq!(
            killed[counter], left[0][counter],
            "{counter} kept: {runs:?}"
        );
    }
    assert!(killed["finished_at"].is_string(), "{killed}");
    assert!(
        killed["error"].as_str().unwrap().starts_with("interrupted"),
        "{killed}"
    );
    let newest = &runs[0];
    assert_ne!(newest["id"], killed["id"]);
    assert_eq!(newest["status"], "success", "{runs:?}");

    // Nothing is left to find: a third run marks nothing.
    let third = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_eq!(third.code, Some(0), "{}", third.text());
    assert!(
        !third.stderr.contains("marked interrupted"),
        "{}",
        third.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_with_kill_9_is_marked_interrupted_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!(
        "sqlite:\n  path: {}\n",
        dir.path().join("mirror.db").display()
    );
    a_killed_sync_is_marked_interrupted_by_the_next_run(&target, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_with_kill_9_is_marked_interrupted_on_postgres() {
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let target = pg_section(&db.name, "advisory", "POSTGRES_PASSWORD");
    a_killed_sync_is_marked_interrupted_by_the_next_run(&target, dir.path()).await;
}
