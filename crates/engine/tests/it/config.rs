use engine::config::{
    ConfigError, LockStrategy, MirrorConfig, PostgresConnection, SslMode, Target,
};
use std::path::Path;

fn parse(text: &str) -> Result<MirrorConfig, ConfigError> {
    MirrorConfig::parse(Path::new("config.yml"), text)
}

const MINIMAL: &str = "odoo:\n  base_url: \"http://127.0.0.1:8069\"\n  database: odoo\n  username: admin\nmodels:\n  - name: res.partner\n";

#[test]
fn the_seeds_example_configuration_loads_unchanged() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mirror.yml");
    let config = MirrorConfig::load(&path).unwrap();
    assert_eq!(config.models.len(), 8);
    let order = &config.models[0];
    assert_eq!(order.name, "sale.order");
    assert_eq!(
        (
            order.cursor_field.as_str(),
            order.overlap_seconds,
            order.page_size
        ),
        ("write_date", 120, 500)
    );
    assert_eq!(
        order.domain.to_json(),
        serde_json::json!([["state", "in", ["sale", "done"]]])
    );
    assert_eq!(config.sync.request_timeout_seconds, 60);
    let Target::Postgres(postgres) = &config.target else {
        panic!("the seed targets PostgreSQL")
    };
    assert_eq!(postgres.ssl_mode, SslMode::Disable);
    assert_eq!(postgres.lock_strategy, LockStrategy::Advisory);
    assert!(
        matches!(&postgres.connection, PostgresConnection::Params { port: 5432, password_env: Some(var), .. } if var == "POSTGRES_PASSWORD")
    );
}

#[test]
fn without_a_postgres_section_the_target_is_the_embedded_sqlite_file() {
    let config = parse(MINIMAL).unwrap();
    assert!(
        matches!(config.target, Target::Sqlite(ref sqlite) if sqlite.path == Path::new("./data/odoo-bridge.db"))
    );
}

#[test]
fn a_typo_names_file_line_column_and_the_closest_key() {
    let error = parse(&format!("{MINIMAL}    pagesize: 10\n")).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("config.yml:7:"), "{text}");
    assert!(
        text.contains("pagesize") && text.contains("did you mean `page_size`?"),
        "{text}"
    );
}

#[test]
fn malformed_yaml_names_its_position() {
    let error = parse("odoo:\n  base_url: [unclosed\n  database: x\n").unwrap_err();
    assert_eq!(error.path, Path::new("config.yml"));
    assert!(error.line.is_some() && error.column.is_some(), "{error}");
}

#[test]
fn semantic_errors_point_at_the_value() {
    let error = parse(&format!(
        "{MINIMAL}    domain: [[\"state\", \"between\", 1]]\n"
    ))
    .unwrap_err();
    assert_eq!(error.line, Some(7), "{error}");
    assert!(
        error.message.contains("invalid domain for res.partner"),
        "{error}"
    );
    let error = parse(&format!("{MINIMAL}    page_size: 0\n")).unwrap_err();
    assert_eq!(error.line, Some(7), "{error}");
    let error = parse(&format!("{MINIMAL}  - name: res.partner\n")).unwrap_err();
    assert!(error.message.contains("listed twice"), "{error}");
    let error = parse(&MINIMAL.replace("http://127.0.0.1:8069", "127.0.0.1:8069")).unwrap_err();
    assert!(error.message.contains("http://"), "{error}");
    let error =
        parse("odoo:\n  base_url: \"http://x\"\n  database: d\n  username: u\nmodels: []\n")
            .unwrap_err();
    assert!(error.message.contains("at least one"), "{error}");
}

#[test]
fn verify_full_needs_a_ca_bundle() {
    let text =
        format!("{MINIMAL}postgres:\n  connection:\n    type: url\n  ssl_mode: verify-full\n");
    assert!(parse(&text).unwrap_err().message.contains("ssl_root_cert"));
    let text = format!(
        "{MINIMAL}postgres:\n  connection:\n    type: url\n  ssl_mode: verify-full\n  ssl_root_cert: /etc/ssl/ca.pem\n"
    );
    assert!(parse(&text).is_ok());
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let text = format!(
        "{MINIMAL}postgres:\n  connection:\n    type: url\n    url: \"postgresql://u:hunter2-db-password@db:5432/x\"\n"
    );
    let config = parse(&text).unwrap();
    assert!(
        !format!("{config:?}").contains("hunter2"),
        "a URL password leaked into Debug"
    );
    let error = config.secrets(|_| None).unwrap_err();
    assert!(error.message.contains("ODOO_API_KEY"));
    let secrets = config
        .secrets(|name| (name == "ODOO_API_KEY").then(|| "key-0123456789abcdef".to_owned()))
        .unwrap();
    assert!(!format!("{secrets:?}").contains("key-0123456789abcdef"));

    let from_env = parse(&format!(
        "{MINIMAL}postgres:\n  connection:\n    type: url\n"
    ))
    .unwrap();
    let error = from_env
        .secrets(|name| (name == "ODOO_API_KEY").then(|| "k".to_owned()))
        .unwrap_err();
    assert!(error.message.contains("DATABASE_URL"));
    let params = parse(&format!("{MINIMAL}postgres:\n  connection:\n    type: params\n    host: localhost\n    database: x\n    user: u\n    password_env: PGPASS_TEST\n")).unwrap();
    let error = params
        .secrets(|name| (name == "ODOO_API_KEY").then(|| "k".to_owned()))
        .unwrap_err();
    assert!(error.message.contains("PGPASS_TEST"));
}

#[test]
fn a_base_url_that_is_a_page_of_odoo_is_refused_at_its_line_with_the_url_to_use() {
    for page in [
        "http://127.0.0.1:8069/web",
        "http://127.0.0.1:8069/odoo/action-7",
    ] {
        let error = parse(&MINIMAL.replace("http://127.0.0.1:8069", page)).unwrap_err();
        assert_eq!((error.line, error.column), (Some(2), Some(13)), "{error}");
        assert!(
            error.message.contains("points to a page of Odoo")
                && error.message.ends_with("use http://127.0.0.1:8069"),
            "{error}"
        );
    }
    let error =
        parse(&MINIMAL.replace("http://127.0.0.1:8069", "http://u:pw-77@x/web")).unwrap_err();
    assert!(!error.to_string().contains("pw-77"), "{error}");
    let trailing =
        parse(&MINIMAL.replace("http://127.0.0.1:8069", "http://127.0.0.1:8069/")).unwrap();
    assert_eq!(trailing.odoo.base_url, "http://127.0.0.1:8069");
}

#[test]
fn an_empty_password_is_a_password_and_an_unset_variable_is_not() {
    let params = parse(&format!("{MINIMAL}postgres:\n  connection:\n    type: params\n    host: localhost\n    database: x\n    user: u\n    password_env: PGPASS_TEST\n")).unwrap();
    let secrets = params
        .store_secrets(|name| (name == "PGPASS_TEST").then(String::new))
        .unwrap();
    assert_eq!(
        secrets
            .postgres_password
            .as_ref()
            .map(|password| password.expose()),
        Some("")
    );
    let error = params.store_secrets(|_| None).unwrap_err();
    assert!(error.message.contains("PGPASS_TEST is not set"), "{error}");
}

#[test]
fn where_each_setting_of_a_model_is_written_is_kept() {
    let config = parse(&format!(
        "{MINIMAL}    fields: [name, email]\n    cursor_field: write_date\n"
    ))
    .unwrap();
    let at = config.locations("res.partner").unwrap();
    assert_eq!((at.name.line, at.name.column), (6, 11));
    let email = at.fields["email"];
    assert_eq!((email.line, email.column), (7, 20));
    assert_eq!(at.cursor_field.map(|at| at.line), Some(8));
    assert!(config.locations("sale.order").is_none());
}

#[test]
fn the_enrichment_example_loads_with_the_issues_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/enrich.yml");
    let config = MirrorConfig::load(&path).unwrap();
    assert!(config.models.is_empty());
    assert_eq!(config.environment.as_deref(), Some("prod"));
    let names: Vec<&str> = config.enrich.iter().map(|job| job.name.as_str()).collect();
    assert_eq!(names, ["buyer-match", "intake-match"]);
    let job = &config.enrich[0];
    assert_eq!(job.model, "crm.lead");
    assert_eq!(
        job.domain.to_json(),
        serde_json::json!([["type", "=", "opportunity"]])
    );
    assert_eq!(job.fields, ["name", "partner_name", "expected_revenue"]);
    assert_eq!(job.endpoint, "https://matcher.example/match");
    assert_eq!(job.packet_version, "1");
    assert_eq!(job.timeout, std::time::Duration::from_secs(30));
    assert_eq!(job.max_failures, 3);
    assert_eq!(job.secret_env.as_deref(), Some("MATCHER_WEBHOOK_SECRET"));
    assert_eq!(
        job.response_schema["required"],
        serde_json::json!(["ranked_buyers", "status"])
    );
    let writeback: Vec<(&str, &str)> = job
        .writeback
        .iter()
        .map(|entry| (entry.field.as_str(), entry.pointer.as_str()))
        .collect();
    assert_eq!(
        writeback,
        [("x_match_response", ""), ("x_match_status", "/status")]
    );
    // The second job's schema is a file beside the configuration.
    let intake = &config.enrich[1];
    assert_eq!(
        intake.response_schema["properties"]["status"]["enum"],
        serde_json::json!(["matched", "no_match"])
    );
    assert_eq!((intake.max_failures, intake.timeout.as_secs()), (3, 30));
    assert_eq!(intake.interval.as_secs(), 300);
    assert_eq!((job.concurrency, intake.concurrency), (4, 4));
}

#[test]
fn enrichment_mistakes_name_the_line_and_the_key() {
    let job = |extra: &str| {
        format!(
            "odoo:\n  base_url: \"http://127.0.0.1:8069\"\n  database: odoo\n  username: admin\nenvironment: prod\nenrich:\n  - name: m\n    model: crm.lead\n    fields: [name]\n    endpoint: \"http://127.0.0.1:9/m\"\n    packet_version: \"1\"\n    response_schema: {{type: object}}\n{extra}"
        )
    };
    parse(&job("")).unwrap();
    let cases = [
        ("    max_failure: 3\n", 13, "did you mean `max_failures`?"),
        (
            "    max_failures: 0\n",
            13,
            "max_failures must be at least 1",
        ),
        (
            "    writeback:\n      x_a: status\n",
            14,
            "write \"/status\"",
        ),
        ("    writeback:\n      id: /x\n", 14, "that can be written"),
        ("    timeout_seconds: 0\n", 13, "between 1 and 600"),
        ("    concurrency: 0\n", 13, "between 1 and 32"),
        (
            "    secret_env: \"not a name\"\n",
            13,
            "not an environment variable name",
        ),
    ];
    for (extra, line, expected) in cases {
        let error = parse(&job(extra)).unwrap_err();
        assert_eq!(error.line, Some(line), "{extra}: {error}");
        assert!(error.message.contains(expected), "{extra}: {error}");
    }
    let error = parse(&job("").replace(
        "endpoint: \"http://127.0.0.1:9/m\"",
        "endpoint: \"ftp://x\"",
    ))
    .unwrap_err();
    assert_eq!(error.line, Some(10), "{error}");
    let error = parse(&job("").replace("{type: object}", "{type: objekt}")).unwrap_err();
    assert!(error.message.contains("not a valid JSON Schema"), "{error}");
    let error = parse(&job("").replace("environment: prod\n", "")).unwrap_err();
    assert!(error.message.contains("need `environment`"), "{error}");
    let error = parse(&job("").replace("fields: [name]", "fields: []")).unwrap_err();
    assert!(error.message.contains("fields is empty"), "{error}");
    // Two jobs of one name.
    let twice = format!(
        "{}  - name: m\n    model: crm.lead\n    fields: [name]\n    endpoint: \"http://x/m\"\n    packet_version: 1\n    response_schema: {{type: object}}\n",
        job("")
    );
    let error = parse(&twice).unwrap_err();
    assert!(error.message.contains("listed twice"), "{error}");
    // Neither models nor jobs.
    let error = parse(
        "odoo:\n  base_url: \"http://127.0.0.1:8069\"\n  database: odoo\n  username: admin\n",
    )
    .unwrap_err();
    assert!(
        error.message.contains("`models`") && error.message.contains("`enrich`"),
        "{error}"
    );
}

const SCHEDULED: &str = "odoo:\n  base_url: \"http://127.0.0.1:8069\"\n  database: odoo\n  username: admin\nmirror:\n  interval_seconds: 120\nhints:\n  token_env: MIRROR_HINT_TOKEN\nmodels:\n  - name: res.partner\n    hint: true\n  - name: sale.order\n    interval_seconds: 30\n";

#[test]
fn the_mirrors_schedule_and_hints_are_optional_keys() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.schedule.models.len(), 1);
    assert_eq!(
        config.schedule.models[0].interval,
        engine::config::DEFAULT_MIRROR_INTERVAL
    );
    assert!(!config.schedule.models[0].hint);
    assert_eq!(config.hint_token(|_| None).unwrap(), None);

    let config = parse(SCHEDULED).unwrap();
    let intervals: Vec<(&str, u64, bool)> = config
        .schedule
        .models
        .iter()
        .map(|model| (model.name.as_str(), model.interval.as_secs(), model.hint))
        .collect();
    assert_eq!(
        intervals,
        [("res.partner", 120, true), ("sale.order", 30, false)]
    );
    let token = "9".repeat(48);
    let read = config
        .hint_token(|name| (name == "MIRROR_HINT_TOKEN").then(|| token.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(read.expose(), token);
}

#[test]
fn the_mirrors_new_keys_are_checked_with_file_and_line() {
    let error =
        parse(&SCHEDULED.replace("interval_seconds: 120", "interval_seconds: 0")).unwrap_err();
    assert_eq!(error.line, Some(6), "{error}");
    assert!(
        error.message.contains("mirror.interval_seconds is 0"),
        "{error}"
    );

    let error =
        parse(&SCHEDULED.replace("interval_seconds: 30", "interval_seconds: 9999999")).unwrap_err();
    assert_eq!(error.line, Some(13), "{error}");
    assert!(
        error.message.contains("interval_seconds for sale.order"),
        "{error}"
    );

    let error = parse(&SCHEDULED.replace("    hint: true\n", "    hints: true\n")).unwrap_err();
    assert!(error.to_string().starts_with("config.yml:11:"), "{error}");
    assert!(error.message.contains("did you mean `hint`?"), "{error}");

    let error =
        parse(&SCHEDULED.replace("mirror:\n  interval", "mirror:\n  intervall")).unwrap_err();
    assert_eq!(error.line, Some(6), "{error}");
    assert!(
        error.message.contains("did you mean `interval_seconds`?"),
        "{error}"
    );

    // `hint: true` needs the token's variable.
    let without_hints = SCHEDULED.replace("hints:\n  token_env: MIRROR_HINT_TOKEN\n", "");
    let error = parse(&without_hints).unwrap_err();
    assert_eq!(error.line, Some(9), "the `hint: true` line: {error}");
    assert!(error.message.contains("hints.token_env"), "{error}");

    let error = parse(&SCHEDULED.replace("MIRROR_HINT_TOKEN", "\"my secret token\"")).unwrap_err();
    assert_eq!(error.line, Some(8), "{error}");
    assert!(
        error.message.contains("not an environment variable name"),
        "{error}"
    );

    // The variable unset or too short: an error on the token_env line, the value never shown.
    let config = parse(SCHEDULED).unwrap();
    let error = config.hint_token(|_| None).unwrap_err();
    assert_eq!(error.line, Some(8), "{error}");
    assert!(
        error.message.contains("MIRROR_HINT_TOKEN is not set"),
        "{error}"
    );
    let error = config
        .hint_token(|_| Some("hunter2-hunter2".to_owned()))
        .unwrap_err();
    assert_eq!(error.line, Some(8), "{error}");
    assert!(
        error.message.contains("at least 48") && !error.to_string().contains("hunter2"),
        "{error}"
    );
}
