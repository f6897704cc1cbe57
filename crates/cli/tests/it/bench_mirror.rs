//! `odoo-bridge bench mirror` at a tiny size: it runs its phases as processes of its own and
//! prints the table. Figures are not checked, only that they are there.

use crate::ping::BINARY;
use std::process::Command;

#[test]
fn bench_mirror_runs_at_a_tiny_size_and_says_why_postgres_was_skipped() {
    // Nothing listens on port 1: `both` runs SQLite and says PostgreSQL was skipped.
    let output = Command::new(BINARY)
        .args([
            "--log-level",
            "warn",
            "bench",
            "mirror",
            "--records",
            "2000",
        ])
        .args([
            "--target",
            "both",
            "--page-size",
            "300",
            "--per-second",
            "40",
        ])
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/test"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for label in [
        "fetch ceiling (discard)",
        "write ceiling (1 tx)",
        "mirror at N/4 (memory)",
    ] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} row: {stdout}"));
        assert!(row.contains("sqlite"), "{row}");
    }
    let mirror = stdout
        .lines()
        .find(|line| line.starts_with("mirror ") && line.contains(" 2000 "))
        .unwrap_or_else(|| panic!("no mirror row: {stdout}"));
    assert!(mirror.contains("sqlite"), "{mirror}");
    assert!(
        stdout.contains("max(fetch ceiling, write ceiling)"),
        "{stdout}"
    );
    assert!(stdout.contains("PostgreSQL skipped"), "{stdout}");
    assert!(!stdout.contains("postgres  "), "{stdout}");
}

#[test]
fn bench_mirror_refuses_a_postgres_that_is_not_on_loopback_and_too_many_records() {
    let remote = Command::new(BINARY)
        .args(["bench", "mirror", "--target", "postgres"])
        .args([
            "--database-url",
            "postgres://postgres:s3cret@db.example.com/test",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert_eq!(remote.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let unreachable = Command::new(BINARY)
        .args(["bench", "mirror", "--target", "postgres"])
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not reachable"), "{stderr}");

    let too_many = Command::new(BINARY)
        .args(["bench", "mirror", "--records", "1000001"])
        .output()
        .unwrap();
    assert_eq!(too_many.status.code(), Some(2));
}
