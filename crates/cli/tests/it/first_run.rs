//! What a first-time user trips over (issue 15), through the real binary: one verdict on a
//! configuration from `config check`, `sync --dry-run` and `sync`; read-only commands that
//! create nothing; checked log levels; Odoo URLs, databases and transports refused in plain
//! words; logs on stderr only. Against the simulator, real files, the PostgreSQL on
//! 127.0.0.1 and, when `ODOO18_URL` is set, the test machine's real Odoo 18.

use crate::mirror_postgres::{
    Background, PG_PASSWORD, PgDb, bridge, custom_config, finish, pg_section, write_config,
};
use crate::ping::{BINARY, SimProcess};
use odoo_sim::real_odoo::RealOdoo;
use serde_json::Value;
use sqlx::{Connection, SqliteConnection};
use std::path::Path;
use std::process::{Command, Output};

/// `odoo-bridge --log-format json <args>`, with the Odoo key when given and nothing of the
/// caller's environment that would change the outcome.
fn odoo_bridge(args: &[&str], key: Option<&str>) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--log-format", "json"])
        .args(args)
        .env_remove("ODOO_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("ODOO_BRIDGE_LOG_LEVEL")
        .env_remove("POLLER_LOG_LEVEL")
        .env("POSTGRES_PASSWORD", PG_PASSWORD);
    if let Some(key) = key {
        command.env("ODOO_API_KEY", key);
    }
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn text(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// A configuration for the simulator (or any Odoo) into an SQLite file.
fn sqlite_config(url: &str, database: &str, sqlite: &Path, models: &str) -> String {
    custom_config(
        url,
        &format!("sqlite:\n  path: {}\n", sqlite.display()),
        models,
    )
    .replace("database: odoo\n", &format!("database: {database}\n"))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The `error:` text a command printed, from its first line on.
fn error_text(output: &Output) -> String {
    let stderr = stderr(output);
    match stderr.find("error: ") {
        Some(start) => stderr[start..].to_owned(),
        None => panic!("no error in:\n{}", text(output)),
    }
}

/// The stored payload of one record, read straight from the SQLite file.
async fn stored_payload(database: &Path, model: &str, id: i64) -> Value {
    let mut connection = SqliteConnection::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("open the mirror file");
    let payload: String =
        sqlx::query_scalar("SELECT payload FROM odoo_raw_records WHERE model = ? AND odoo_id = ?")
            .bind(model)
            .bind(id)
            .fetch_one(&mut connection)
            .await
            .expect("the row");
    connection.close().await.expect("close");
    serde_json::from_str(&payload).expect("JSON")
}

// ---------------------------------------------------------------------------------------
// Item 1: a misspelt field is refused by every command alike; a field Odoo removed is not.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_field_gets_one_verdict_and_exit_code_from_check_dry_run_and_sync() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("mirror.db");
    let good = write_config(
        dir.path(),
        &sqlite_config(
            sim.url(),
            "odoo",
            &database,
            "  - name: res.partner\n    fields: [id, name, write_date]\n",
        ),
    );
    let first = run(odoo_bridge(
        &["sync", "--config", path_arg(&good)],
        Some(sim.key()),
    ));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = stored_payload(&database, "res.partner", 1).await;
    assert!(before.get("name").is_some(), "{before}");

    let typo = write_config(
        dir.path(),
        &sqlite_config(
            sim.url(),
            "odoo",
            &database,
            "  - name: res.partner\n    fields: [id, nmae, write_date]\n",
        ),
    );
    let expected = "config.yml:13:18: res.partner: field `nmae` does not exist on this Odoo (did you mean `name`?); correct it or remove it from `fields`";
    let config = path_arg(&typo);
    for args in [
        vec!["config", "check", "--config", config],
        vec!["sync", "--dry-run", "--config", config],
        vec!["sync", "--config", config],
        vec!["sync", "--full", "--config", config],
    ] {
        let output = run(odoo_bridge(&args, Some(sim.key())));
        assert_eq!(output.status.code(), Some(3), "{args:?}: {}", text(&output));
        assert_eq!(
            error_text(&output).matches(expected).count(),
            1,
            "{args:?}: {}",
            text(&output)
        );
    }
    assert_eq!(
        stored_payload(&database, "res.partner", 1).await,
        before,
        "the stored row keeps its name"
    );
    let runs = run(odoo_bridge(&["runs", "--json", "--config", config], None));
    assert_eq!(runs.status.code(), Some(0), "{}", text(&runs));
    assert_eq!(
        stdout(&runs).lines().count(),
        1,
        "no run was started: {}",
        stdout(&runs)
    );
}

#[test]
fn the_seeds_example_runs_on_odoo_19_without_the_fields_odoo_removed_with_one_warning_each() {
    let sim = SimProcess::start(&["--odoo-version", "19"]);
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mirror.yml"),
    )
    .unwrap();
    let start = example.find("postgres:").unwrap();
    let end = example.find("sync:").unwrap();
    // The seed's partners plus `mobile`, as seed 002 reads them: gone since saas~18.2.
    let text_config = format!(
        "{}sqlite:\n  path: {}\n\n{}",
        &example[..start],
        dir.path().join("mirror.db").display(),
        &example[end..]
    )
    .replace("https://your-odoo-host", sim.url())
    .replace("\"odoo_db\"", "\"odoo\"")
    .replace("\"connector_user\"", "\"admin\"")
    .replacen("      - zip\n", "      - zip\n      - mobile\n", 1);
    assert!(text_config.contains("      - mobile\n"));
    let config = write_config(dir.path(), &text_config);
    let warning =
        "res.partner.mobile is left out: Odoo removed it in saas~18.2 and this server runs 19.0";

    let check = run(odoo_bridge(
        &["config", "check", "--config", path_arg(&config)],
        Some(sim.key()),
    ));
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert_eq!(text(&check).matches(warning).count(), 1, "{}", text(&check));
    assert!(
        stdout(&check).contains(&format!("warning: {warning}")),
        "{}",
        text(&check)
    );

    let sync = run(odoo_bridge(
        &["sync", "--config", path_arg(&config)],
        Some(sim.key()),
    ));
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    assert_eq!(text(&sync).matches(warning).count(), 1, "{}", text(&sync));
    let logged: Vec<Value> = stderr(&sync)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["level"] == "WARN" && line["field"] == "mobile")
        .collect();
    assert_eq!(logged.len(), 1, "one warning, logged: {}", stderr(&sync));
    assert!(!stdout(&sync).contains("warning"), "{}", stdout(&sync));
    for model in [
        "sale.order",
        "sale.order.line",
        "res.partner",
        "product.template",
        "product.product",
        "res.users",
        "crm.lead",
        "account.move",
    ] {
        assert!(
            stdout(&sync)
                .lines()
                .any(|line| line.split_whitespace().next() == Some(model)
                    && !line.contains("FAILED")),
            "{model}: {}",
            stdout(&sync)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Items 2 and 8: commands that read create no file, directory or table.

#[test]
fn reading_commands_on_a_missing_sqlite_file_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/deeper/mirror.db");
    let config = write_config(
        dir.path(),
        &sqlite_config(
            "http://127.0.0.1:1",
            "odoo",
            &missing,
            "  - name: res.partner\n",
        ),
    );
    for args in [
        vec!["runs", "--config", path_arg(&config)],
        vec!["runs", "--json", "--config", path_arg(&config)],
        vec!["prune", "--config", path_arg(&config)],
    ] {
        let output = run(odoo_bridge(&args, None));
        assert_eq!(output.status.code(), Some(3), "{args:?}: {}", text(&output));
        assert!(
            error_text(&output).contains(&format!(
                "the SQLite file {} does not exist: run `odoo-bridge sync` (or `migrate`)",
                missing.display()
            )),
            "{args:?}: {}",
            text(&output)
        );
        assert!(
            stdout(&output).is_empty(),
            "{args:?}: no empty table: {}",
            text(&output)
        );
        assert!(
            !dir.path().join("nowhere").exists(),
            "{args:?} created a directory"
        );
    }

    // A file that is not a mirror yet (created by hand, or by another program).
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let config = write_config(
        dir.path(),
        &sqlite_config(
            "http://127.0.0.1:1",
            "odoo",
            &empty,
            "  - name: res.partner\n",
        ),
    );
    let output = run(odoo_bridge(&["runs", "--config", path_arg(&config)], None));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        error_text(&output).contains("has no mirror tables"),
        "{}",
        text(&output)
    );
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "no table was created"
    );
}

#[test]
fn config_check_and_a_dry_run_create_no_store_and_read_the_checkpoints_a_sync_left() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("data/mirror.db");
    let config = write_config(
        dir.path(),
        &sqlite_config(
            sim.url(),
            "odoo",
            &database,
            "  - name: res.partner\n    fields: [name, write_date]\n",
        ),
    );
    let config = path_arg(&config);
    let check = run(odoo_bridge(
        &["config", "check", "--config", config],
        Some(sim.key()),
    ));
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(
        stdout(&check).contains("does not exist yet"),
        "{}",
        text(&check)
    );
    assert!(
        stdout(&check).contains("(full backfill)"),
        "{}",
        text(&check)
    );
    assert!(
        !dir.path().join("data").exists(),
        "config check created the store"
    );

    let sync = run(odoo_bridge(&["sync", "--config", config], Some(sim.key())));
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    let check = run(odoo_bridge(
        &["config", "check", "--config", config],
        Some(sim.key()),
    ));
    let dry = run(odoo_bridge(
        &["sync", "--dry-run", "--config", config],
        Some(sim.key()),
    ));
    let line = |output: &Output| {
        stdout(output)
            .lines()
            .find(|line| line.starts_with("res.partner "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{}", text(output)))
    };
    assert!(line(&check).contains("to fetch (from "), "{}", text(&check));
    assert_eq!(line(&check), line(&dry), "check and dry run plan alike");
    assert!(
        stdout(&check).contains("1 of 1 models have a checkpoint"),
        "{}",
        text(&check)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_reading_commands_create_no_table() {
    let sim = SimProcess::start(&[]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &custom_config(
            sim.url(),
            &pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"),
            "  - name: res.partner\n",
        ),
    );
    let config = path_arg(&config);
    for (args, code) in [
        (vec!["config", "check", "--config", config], 0),
        (vec!["sync", "--dry-run", "--config", config], 0),
        (vec!["runs", "--config", config], 3),
        (vec!["prune", "--config", config], 3),
    ] {
        let output = finish(bridge(&args, Some(sim.key()))).await;
        assert_eq!(output.code, Some(code), "{args:?}: {}", output.text());
        if code == 3 {
            assert!(
                output.stderr.contains(&format!(
                    "PostgreSQL database {} at 127.0.0.1:5432 has no mirror tables",
                    db.name
                )),
                "{args:?}: {}",
                output.text()
            );
        }
    }
    assert_eq!(
        db.number("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .await,
        0
    );
}

// ---------------------------------------------------------------------------------------
// Items 3, 16 and 17: the command line.

#[test]
fn unknown_log_levels_are_refused_with_the_valid_ones() {
    let valid = "use one of off, error, warn, info, debug, trace";
    let mut flag = odoo_bridge(
        &["--log-level", "verbose", "runs", "--config", "x.yml"],
        None,
    );
    let mut variable = odoo_bridge(&["runs", "--config", "x.yml"], None);
    variable.env("ODOO_BRIDGE_LOG_LEVEL", "verbose");
    let mut seed_variable = odoo_bridge(&["runs", "--config", "x.yml"], None);
    seed_variable.env("POLLER_LOG_LEVEL", "verbose");
    for command in [&mut flag, &mut variable, &mut seed_variable] {
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            stderr(&output).contains("unknown log level \"verbose\""),
            "{}",
            text(&output)
        );
        assert!(stderr(&output).contains(valid), "{}", text(&output));
    }
    // Python's names (the seed's) and target directives pass, and the command then runs.
    for level in ["WARNING", "info,odoo_rpc=debug"] {
        let output = run(odoo_bridge(
            &["--log-level", level, "runs", "--config", "x.yml"],
            None,
        ));
        assert_eq!(output.status.code(), Some(3), "{level}: {}", text(&output));
    }
}

#[test]
fn bad_command_line_values_of_the_mirror_commands_exit_2() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sqlite_config(
            sim.url(),
            "odoo",
            &dir.path().join("m.db"),
            "  - name: res.partner\n",
        ),
    );
    let config = path_arg(&config);
    for args in [
        vec!["runs", "--limit", "abc", "--config", config],
        vec!["prune", "--older-than-days", "0", "--config", config],
        vec!["sync", "--model", "res.partnr", "--config", config],
        vec![
            "sync",
            "--dry-run",
            "--model",
            "res.partnr",
            "--config",
            config,
        ],
        vec![
            "odoo",
            "ping",
            "--url",
            "not a url",
            "--db",
            "odoo",
            "--user",
            "admin",
        ],
        vec![
            "odoo",
            "ping",
            "--url",
            "http://x",
            "--db",
            "odoo",
            "--user",
            "admin",
            "--timeout",
            "soon",
        ],
    ] {
        let output = run(odoo_bridge(&args, Some(sim.key())));
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    }
    let output = run(odoo_bridge(
        &["sync", "--model", "res.partnr", "--config", config],
        Some(sim.key()),
    ));
    assert!(
        stderr(&output).contains("configured: res.partner"),
        "{}",
        text(&output)
    );
}

#[test]
fn help_keeps_the_global_options_apart_from_the_commands_own() {
    for command in [
        vec!["sync", "--help"],
        vec!["runs", "--help"],
        vec!["odoo", "ping", "--help"],
    ] {
        let output = run(odoo_bridge(&command, None));
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let help = stdout(&output);
        let (own, global) = help
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("{command:?}:\n{help}"));
        assert!(own.contains("--config") || own.contains("--url"), "{help}");
        assert!(
            !own.contains("--log-level") && !own.contains("--log-format"),
            "{help}"
        );
        assert!(
            global.contains("--log-level") && global.contains("--log-format"),
            "{help}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Items 5, 6 and 7: Odoo URLs, transports and databases.

#[test]
fn a_base_url_that_is_a_page_of_odoo_is_refused_everywhere_before_any_request() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for page in ["/web", "/odoo", "/web/login?redirect=%2Fodoo"] {
        let url = format!("{}{page}", sim.url());
        let config = write_config(
            dir.path(),
            &sqlite_config(
                &url,
                "odoo",
                &dir.path().join("m.db"),
                "  - name: res.partner\n",
            ),
        );
        for args in [
            vec!["config", "check", "--config", path_arg(&config)],
            vec!["sync", "--config", path_arg(&config)],
        ] {
            let output = run(odoo_bridge(&args, Some(sim.key())));
            assert_eq!(output.status.code(), Some(3), "{args:?}: {}", text(&output));
            let error = error_text(&output);
            assert!(
                error.contains("config.yml:2:13: odoo.base_url: "),
                "{error}"
            );
            assert!(
                error.contains("points to a page of Odoo")
                    && error.contains(&format!("use {}", sim.url())),
                "{error}"
            );
            assert!(
                !stdout(&output).contains("the file is valid"),
                "{}",
                text(&output)
            );
        }
        let output = run(odoo_bridge(
            &[
                "odoo", "ping", "--url", &url, "--db", "odoo", "--user", "admin",
            ],
            Some(sim.key()),
        ));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            stderr(&output).contains(&format!("use {}", sim.url())),
            "{}",
            text(&output)
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the config file"
    );
}

#[test]
fn an_html_page_is_named_by_its_title_never_printed() {
    let sim = SimProcess::start(&["--fault", "503x*"]);
    let output = run(odoo_bridge(
        &[
            "odoo",
            "ping",
            "--url",
            sim.url(),
            "--db",
            "odoo",
            "--user",
            "admin",
            "--retries",
            "0",
        ],
        Some(sim.key()),
    ));
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
    let error = error_text(&output);
    assert!(
        error.contains("an HTML page (\"503 Service Unavailable\")"),
        "{error}"
    );
    assert!(!error.contains('<'), "{error}");
}

#[test]
fn json2_on_an_odoo_before_19_says_json2_needs_19() {
    let sim = SimProcess::start(&[]);
    let output = run(odoo_bridge(
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
    ));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        error_text(&output).contains(&format!(
            "JSON-2 needs Odoo 19 or later, and {} runs Odoo 18.0: use JSON-RPC",
            sim.url()
        )),
        "{}",
        text(&output)
    );
}

#[test]
fn a_wrong_database_is_the_authentication_code_in_every_command() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("m.db");
    let config = write_config(
        dir.path(),
        &sqlite_config(sim.url(), "realodo", &database, "  - name: res.partner\n"),
    );
    for args in [
        vec![
            "odoo",
            "ping",
            "--url",
            sim.url(),
            "--db",
            "realodo",
            "--user",
            "admin",
        ],
        vec!["config", "check", "--config", path_arg(&config)],
        vec!["sync", "--dry-run", "--config", path_arg(&config)],
        vec!["sync", "--config", path_arg(&config)],
    ] {
        let output = run(odoo_bridge(&args, Some(sim.key())));
        assert_eq!(output.status.code(), Some(4), "{args:?}: {}", text(&output));
        assert!(
            error_text(&output).contains("Odoo has no database 'realodo'"),
            "{args:?}: {}",
            text(&output)
        );
        assert!(
            !text(&output).contains("psycopg2"),
            "{args:?}: {}",
            text(&output)
        );
    }
}

/// The same mistakes against the real Odoo 18: what it answers, not what the simulator says
/// it answers.
#[test]
fn against_the_real_odoo_18_the_mistakes_are_said_plainly() {
    let Some(real) = RealOdoo::from_env("the first-run mistakes") else {
        return;
    };
    let ping = |url: &str, database: &str, extra: &[&str]| {
        let mut args = vec![
            "odoo",
            "ping",
            "--url",
            url,
            "--db",
            database,
            "--user",
            &real.login,
        ];
        args.extend_from_slice(extra);
        run(odoo_bridge(&args, Some(&real.api_key)))
    };
    let wrong_db = ping(&real.url, "realodo", &[]);
    assert_eq!(wrong_db.status.code(), Some(4), "{}", text(&wrong_db));
    assert!(
        error_text(&wrong_db).contains("Odoo has no database 'realodo'"),
        "{}",
        text(&wrong_db)
    );

    let json2 = ping(&real.url, &real.database, &["--transport", "json2"]);
    assert_eq!(json2.status.code(), Some(3), "{}", text(&json2));
    assert!(
        error_text(&json2).contains("JSON-2 needs Odoo 19 or later"),
        "{}",
        text(&json2)
    );

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("m.db");
    let config = |url: &str, fields: &str| {
        write_config(
            dir.path(),
            &sqlite_config(
                url,
                &real.database,
                &database,
                &format!("  - name: res.partner\n    fields: [{fields}]\n"),
            )
            .replace("username: admin", &format!("username: {}", real.login)),
        )
    };
    let web = config(&format!("{}/web", real.url), "name");
    let output = run(odoo_bridge(
        &["config", "check", "--config", path_arg(&web)],
        Some(&real.api_key),
    ));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        error_text(&output).contains("points to a page of Odoo (/web)"),
        "{}",
        text(&output)
    );

    let typo = config(&real.url, "id, nmae, mobile, write_date");
    for args in [vec!["config", "check"], vec!["sync"]] {
        let mut args = args;
        args.extend(["--config", path_arg(&typo)]);
        let output = run(odoo_bridge(&args, Some(&real.api_key)));
        assert_eq!(output.status.code(), Some(3), "{args:?}: {}", text(&output));
        assert!(
            error_text(&output).contains(
                "res.partner: field `nmae` does not exist on this Odoo (did you mean `name`?)"
            ),
            "{args:?}: {}",
            text(&output)
        );
        // Odoo 18 has `mobile`: it is read, not excused.
        assert!(
            !text(&output).contains("mobile"),
            "{args:?}: {}",
            text(&output)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Items 9, 10 and 11: PostgreSQL.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_problems_are_said_fast_and_plainly_and_an_empty_password_works() {
    let sim = SimProcess::start(&[]);
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let with_section = |section: String| {
        write_config(
            dir.path(),
            &custom_config(sim.url(), &section, "  - name: res.partner\n"),
        )
    };
    // Set but empty: the server trusts loopback, and an empty password is a password.
    let config = with_section(pg_section(&db.name, "advisory", "POSTGRES_PASSWORD"));
    let mut sync = bridge(&["sync", "--config", path_arg(&config)], Some(sim.key()));
    sync.env("POSTGRES_PASSWORD", "");
    let output = finish(sync).await;
    assert_eq!(output.code, Some(0), "{}", output.text());

    // Every migration of a second run finds its tables there: PostgreSQL notices are not
    // logged, even at debug level.
    let mut migrate = bridge(&["migrate", "--config", path_arg(&config)], None);
    migrate.env("ODOO_BRIDGE_LOG_LEVEL", "debug");
    let output = finish(migrate).await;
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert!(
        !output.stderr.contains("already exists"),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("sqlx::postgres::notice"),
        "{}",
        output.stderr
    );

    // Nothing listens on port 1.
    let down = with_section(
        pg_section(&db.name, "advisory", "POSTGRES_PASSWORD").replace("port: 5432", "port: 1"),
    );
    let output = finish(bridge(&["runs", "--config", path_arg(&down)], None)).await;
    assert_eq!(output.code, Some(1), "{}", output.text());
    assert!(
        output.stderr.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:1 (database \"{}\", user \"postgres\")",
            db.name
        )),
        "{}",
        output.text()
    );
    assert!(
        !output.stderr.contains("pool timed out"),
        "{}",
        output.text()
    );

    let missing = format!("{}_missing", db.name);
    let gone = with_section(pg_section(&missing, "advisory", "POSTGRES_PASSWORD"));
    let output = finish(bridge(&["runs", "--config", path_arg(&gone)], None)).await;
    assert_eq!(output.code, Some(1), "{}", output.text());
    assert!(
        output.stderr.contains(&format!(
            "database \"{missing}\" does not exist: create the database"
        )),
        "{}",
        output.text()
    );
    assert!(!output.stderr.contains(" at line "), "{}", output.text());
    assert!(!output.text().contains(PG_PASSWORD), "{}", output.text());
}

// ---------------------------------------------------------------------------------------
// Item 12: logs on stderr, output on stdout, for every command.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_to_stderr_and_stdout_holds_only_the_commands_output() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sqlite_config(
            sim.url(),
            "odoo",
            &dir.path().join("m.db"),
            "  - name: res.partner\n",
        ),
    );
    let sync = finish(bridge(
        &["sync", "--config", path_arg(&config)],
        Some(sim.key()),
    ))
    .await;
    assert_eq!(sync.code, Some(0), "{}", sync.text());
    assert!(
        sync.stdout
            .lines()
            .all(|line| serde_json::from_str::<Value>(line).is_err()),
        "{}",
        sync.stdout
    );
    assert!(
        sync.logs()
            .iter()
            .any(|line| line["message"] == "model mirrored"),
        "{}",
        sync.stderr
    );

    // The daemon too: it has no output of its own, so its stdout stays empty.
    let mut daemon = bridge(&["run", "--listen", "127.0.0.1:0"], None);
    daemon.env("POLLER_DB_PATH", dir.path().join("delivery.db"));
    let mut daemon = Background::spawn(daemon);
    daemon
        .wait_for_log(|line| line["message"] == "odoo-bridge run: started")
        .await;
    daemon.kill().await;
    let finished = daemon.finish().await;
    assert_eq!(finished.stdout, "", "{}", finished.text());
}
