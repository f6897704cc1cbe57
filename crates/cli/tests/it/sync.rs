use crate::ping::{BINARY, SimProcess};
use std::path::Path;
use std::process::{Command, Output};

/// The seed's example configuration, pointed at the simulator and at a SQLite file.
fn seed_config(url: &str, database_path: &Path) -> String {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mirror.yml"),
    )
    .unwrap();
    let start = example.find("postgres:").unwrap();
    let end = example.find("sync:").unwrap();
    let text = format!(
        "{}sqlite:\n  path: {}\n\n{}",
        &example[..start],
        database_path.display(),
        &example[end..]
    );
    text.replace("https://your-odoo-host", url)
        .replace("\"odoo_db\"", "\"odoo\"")
        .replace("\"connector_user\"", "\"admin\"")
}

fn sync(config: &Path, key: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(["--log-format", "json", "sync", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("ODOO_API_KEY");
    if let Some(key) = key {
        command.env("ODOO_API_KEY", key);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `(fetched, new)` printed for a model.
fn counts(output: &Output, model: &str) -> (u64, u64) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(model))
        .unwrap_or_else(|| panic!("no line for {model}: {stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_seeds_example_mirrors_into_sqlite_and_a_second_run_reads_only_the_overlap() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let database = dir.path().join("data/mirror.db");
    std::fs::write(&config, seed_config(sim.url(), &database)).unwrap();
    let first = sync(&config, Some(sim.key()), &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (fetched, new) = counts(&first, "sale.order");
    assert!(fetched > 0 && new > 0, "{}", text(&first));
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
        counts(&first, model);
    }
    assert!(
        !text(&first).contains("does not exist"),
        "every field of the seed exists: {}",
        text(&first)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&database).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let second = sync(&config, Some(sim.key()), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(
        counts(&second, "sale.order").1,
        0,
        "nothing new on the second run: {}",
        text(&second)
    );
    assert!(!text(&second).contains(sim.key()));
}

#[test]
fn configuration_problems_exit_3_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "odoo:\n  base_url: \"http://127.0.0.1:1\"\n  database: odoo\n  username: admin\nmodels:\n  - name: res.partner\n    pagesize: 3\n").unwrap();
    let output = sync(&config, Some("k"), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("config.yml:7:"), "{}", text(&output));
    assert!(text(&output).contains("page_size"), "{}", text(&output));

    std::fs::write(&config, "odoo:\n  base_url: \"http://127.0.0.1:1\"\n  database: odoo\n  username: admin\nmodels:\n  - name: res.partner\n").unwrap();
    let output = sync(&config, None, &[]);
    assert_eq!(output.status.code(), Some(3));
    assert!(text(&output).contains("ODOO_API_KEY"));
    let output = sync(&dir.path().join("missing.yml"), Some("k"), &[]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn a_wrong_key_fails_the_run_with_the_authentication_code() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, seed_config(sim.url(), &dir.path().join("m.db"))).unwrap();
    let output = sync(&config, Some("not-the-key-SECRET-77"), &[]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(!text(&output).contains("not-the-key-SECRET-77"));
}

#[test]
fn a_misspelt_field_or_model_is_refused_before_anything_is_written() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let database = dir.path().join("m.db");
    let text_config = format!(
        "odoo:\n  base_url: \"{}\"\n  database: odoo\n  username: admin\nsqlite:\n  path: {}\nmodels:\n  - name: res.partner\n    page_size: 7\n    fields: [name, emial, write_date]\n  - name: no.such.model\n    fields: [name]\n",
        sim.url(),
        database.display()
    );
    std::fs::write(&config, text_config).unwrap();
    let output = sync(&config, Some(sim.key()), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("field `emial` does not exist").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("config.yml:10:20: res.partner: field `emial` does not exist on this Odoo (did you mean `email`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("config.yml:11:11: no.such.model: Odoo refuses this model"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).trim().is_empty(),
        "nothing was mirrored, so nothing is summed up: {}",
        text(&output)
    );
}
