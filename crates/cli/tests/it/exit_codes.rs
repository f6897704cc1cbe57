//! Every exit code of the README's table, as the real binary exits with it: one test per code,
//! each trying the commands that document it. Cron jobs and Kubernetes alert on these numbers,
//! so a code that drifts is a broken contract even when the message is right.

use crate::mirror_postgres::{Finished, bridge, custom_config, finish, sync_command, write_config};
use crate::ping::SimProcess;
use std::path::Path;

/// One model, into a SQLite file in `dir`: the cheapest run that still talks to Odoo.
fn one_model(odoo_url: &str, dir: &Path) -> std::path::PathBuf {
    let text = custom_config(
        odoo_url,
        &format!("sqlite:\n  path: {}\n", dir.join("mirror.db").display()),
        "  - name: res.partner\n    fields: [id, name, write_date]\n",
    );
    write_config(dir, &text)
}

/// Two models, so that one can fail while the other is mirrored.
fn two_models(odoo_url: &str, dir: &Path) -> std::path::PathBuf {
    let text = custom_config(
        odoo_url,
        &format!("sqlite:\n  path: {}\n", dir.join("mirror.db").display()),
        "  - name: res.partner\n    fields: [id, name, write_date]\n  - name: crm.lead\n    fields: [id, name, write_date]\n",
    );
    write_config(dir, &text)
}

/// `config check`, `sync --dry-run` and `sync` on `config`.
async fn mirror_commands(config: &Path, key: &str) -> Vec<(&'static str, Finished)> {
    let path = config.to_str().unwrap();
    vec![
        (
            "config check",
            finish(bridge(&["config", "check", "--config", path], Some(key))).await,
        ),
        (
            "sync --dry-run",
            finish(sync_command(config, Some(key), &["--dry-run"])).await,
        ),
        ("sync", finish(sync_command(config, Some(key), &[])).await),
    ]
}

/// `odoo ping` against `url` with `key`.
async fn ping(url: &str, key: &str) -> Finished {
    finish(bridge(
        &[
            "odoo",
            "ping",
            "--url",
            url,
            "--db",
            "odoo",
            "--user",
            "admin",
            "--retries",
            "1",
        ],
        Some(key),
    ))
    .await
}

fn assert_code(what: &str, finished: &Finished, code: i32) {
    assert_eq!(
        finished.code,
        Some(code),
        "{what} should exit {code}:\n{}",
        finished.text()
    );
    finished.assert_no_panic();
}

/// A loopback port nothing listens on: connections to it are refused at once.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_0_success() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = one_model(sim.url(), dir.path());
    for (what, finished) in mirror_commands(&config, sim.key()).await {
        assert_code(what, &finished, 0);
    }
    assert_code("odoo ping", &ping(sim.url(), sim.key()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_1_an_error_no_other_code_describes() {
    // The SQLite path is a directory: the store cannot be opened, which is neither Odoo's
    // fault nor the configuration's syntax.
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mirror.db")).unwrap();
    let config = one_model(sim.url(), dir.path());
    let sync = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_code("sync onto a directory", &sync, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_bad_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_model(&refused_url(), dir.path());
    let path = config.to_str().unwrap();
    for (what, args) in [
        (
            "unknown option",
            vec!["sync", "--config", path, "--no-such-flag"],
        ),
        (
            "runs --limit abc",
            vec!["runs", "--config", path, "--limit", "abc"],
        ),
        (
            "--log-level verbose",
            vec!["--log-level", "verbose", "runs", "--config", path],
        ),
        (
            "sync --model not configured",
            vec!["sync", "--config", path, "--model", "res.users"],
        ),
    ] {
        assert_code(what, &finish(bridge(&args, Some("k"))).await, 2);
    }
    let page = finish(bridge(
        &[
            "odoo",
            "ping",
            "--url",
            "http://odoo.example/web",
            "--db",
            "odoo",
            "--user",
            "admin",
        ],
        Some("k"),
    ))
    .await;
    assert_code("odoo ping --url of a page", &page, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_bad_or_missing_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_model(&refused_url(), dir.path());
    let path = config.to_str().unwrap();
    // ODOO_API_KEY unset.
    assert_code(
        "sync without ODOO_API_KEY",
        &finish(sync_command(&config, None, &[])).await,
        3,
    );
    // A store the file names that does not exist yet.
    for command in ["runs", "prune"] {
        assert_code(
            command,
            &finish(bridge(&[command, "--config", path], Some("k"))).await,
            3,
        );
    }
    // A file that is not a valid configuration.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "odoo:\n  base_url: [\n").unwrap();
    assert_code(
        "sync with a broken file",
        &finish(sync_command(&bad, Some("k"), &[])).await,
        3,
    );
    // A configured field this Odoo does not have.
    let sim = SimProcess::start(&[]);
    let text = custom_config(
        sim.url(),
        &format!("sqlite:\n  path: {}\n", dir.path().join("m.db").display()),
        "  - name: res.partner\n    fields: [id, nmae, write_date]\n",
    );
    let typo = write_config(dir.path(), &text);
    for (what, finished) in mirror_commands(&typo, sim.key()).await {
        assert_code(what, &finished, 3);
    }
    // JSON-2 on an Odoo before 19.
    let json2 = finish(bridge(
        &[
            "odoo",
            "ping",
            "--url",
            sim.url(),
            "--db",
            "odoo",
            "--user",
            "admin",
            "--transport",
            "json2",
        ],
        Some(sim.key()),
    ))
    .await;
    assert_code("odoo ping --transport json2 on 18", &json2, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_4_authentication() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = one_model(sim.url(), dir.path());
    for (what, finished) in mirror_commands(&config, "not-the-key").await {
        assert_code(what, &finished, 4);
    }
    assert_code("odoo ping", &ping(sim.url(), "not-the-key").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_5_odoo_unreachable_after_the_retries() {
    // Nothing listens: every connection is refused, after the configured retries.
    let dir = tempfile::tempdir().unwrap();
    let url = refused_url();
    let config = two_models(&url, dir.path());
    for (what, finished) in mirror_commands(&config, "k").await {
        assert_code(&format!("{what} (connection refused)"), &finished, 5);
    }
    assert_code("odoo ping (connection refused)", &ping(&url, "k").await, 5);
    // The run that failed is recorded as such.
    let runs = finish(bridge(
        &["runs", "--json", "--config", config.to_str().unwrap()],
        None,
    ))
    .await;
    assert_code("runs", &runs, 0);
    assert!(
        runs.stdout.contains("\"status\":\"failed\""),
        "{}",
        runs.text()
    );

    // An Odoo that answers 502 to every call is failing temporarily: the same code.
    let sim = SimProcess::start(&["--fault", "502x*"]);
    let dir = tempfile::tempdir().unwrap();
    let config = two_models(sim.url(), dir.path());
    for (what, finished) in mirror_commands(&config, sim.key()).await {
        assert_code(&format!("{what} (HTTP 502)"), &finished, 5);
    }
    assert_code("odoo ping (HTTP 502)", &ping(sim.url(), sim.key()).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_6_odoo_answered_with_something_that_is_not_an_answer() {
    let sim = SimProcess::start(&["--fault", "malformedx*"]);
    let dir = tempfile::tempdir().unwrap();
    let config = two_models(sim.url(), dir.path());
    for (what, finished) in mirror_commands(&config, sim.key()).await {
        assert_code(&format!("{what} (malformed answers)"), &finished, 6);
    }
    assert_code(
        "odoo ping (malformed answers)",
        &ping(sim.url(), sim.key()).await,
        6,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_7_another_run_holds_the_lock() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = one_model(sim.url(), dir.path());
    assert_code(
        "first sync",
        &finish(sync_command(&config, Some(sim.key()), &[])).await,
        0,
    );
    // Another run holds the SQLite store's lock: an exclusive flock on `<file>.lock`.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("mirror.db.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let busy = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_code("sync while the lock is held", &busy, 7);
    assert!(busy.stderr.contains("lock"), "{}", busy.text());
    lock.unlock().unwrap();
    assert_code(
        "sync once the lock is free",
        &finish(sync_command(&config, Some(sim.key()), &[])).await,
        0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_8_some_models_failed() {
    let sim = SimProcess::start(&["--fault", "503x*@crm.lead"]);
    let dir = tempfile::tempdir().unwrap();
    let config = two_models(sim.url(), dir.path());
    let sync = finish(sync_command(&config, Some(sim.key()), &[])).await;
    assert_code("sync with crm.lead failing", &sync, 8);
    assert!(sync.printed("res.partner").fetched > 0, "{}", sync.text());
    assert_code(
        "sync --dry-run with crm.lead failing",
        &finish(sync_command(&config, Some(sim.key()), &["--dry-run"])).await,
        8,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_9_the_thing_named_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bridge.db");
    let run = |args: &[&str]| {
        let mut command = bridge(args, Some("sim-key"));
        command.env("POLLER_DB_PATH", &store);
        finish(command)
    };
    let added = run(&[
        "connections",
        "add",
        "--name",
        "Known",
        "--odoo-url",
        "https://known.odoo.com",
        "--odoo-db",
        "known",
        "--odoo-username",
        "api@known.example",
        "--webhook-url",
        "https://hooks.example.com/odoo",
        "--store-id",
        "s",
        "--client-id",
        "c",
    ])
    .await;
    assert_code("connections add", &added, 0);
    for args in [
        vec!["connections", "show", "nope"],
        vec!["connections", "pause", "nope"],
        vec!["retries", "show", "no-such-packet"],
        vec!["inbox", "show", "42"],
        vec!["logs", "--connection", "nope"],
    ] {
        assert_code(&args.join(" "), &run(&args).await, 9);
    }
}
