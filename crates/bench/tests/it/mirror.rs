//! `odoo-bridge-bench mirror` at a tiny size: it runs its phases as processes of its own and
//! prints the table and the goals. Figures are not checked, only that they are there.

use crate::BENCH;
use std::process::Command;

#[test]
fn bench_mirror_runs_at_a_tiny_size_and_says_why_postgres_was_skipped() {
    // Nothing listens on port 1: `both` runs SQLite and says PostgreSQL was skipped.
    let output = Command::new(BENCH)
        .args(["--log-level", "warn", "mirror", "--records", "2000"])
        .args([
            "--target",
            "both",
            "--page-size",
            "300",
            "--per-second",
            "40",
            "--import",
            "450",
        ])
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/test"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for label in [
        "ceiling: id loop",
        "ceiling: load (1 tx)",
        "mirror: backfill N/4",
    ] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} row: {stdout}"));
        assert!(row.contains("sqlite"), "{row}");
    }
    let row = |label: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(label) && line.contains("sqlite"))
            .unwrap_or_else(|| panic!("no {label:?} row: {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // Records in the store and records fetched: the model, each record once; then the model
    // and the import, each imported record once.
    let backfill = row("mirror: backfill ");
    assert_eq!(backfill[3..5], ["2000", "2000"], "{backfill:?}");
    let import = row("mirror: after an import");
    assert_eq!(import[5..7], ["2450", "450"], "{import:?}");
    for goal in [
        "full backfill",
        "bare serial id loop",
        "fetched ÷ records in the model",
        "after a 450-record bulk import",
        "peak RSS",
    ] {
        assert!(stdout.contains(goal), "no {goal:?}: {stdout}");
    }
    assert!(stdout.contains("PostgreSQL skipped"), "{stdout}");
    assert!(!stdout.contains("postgres  "), "{stdout}");
}

#[test]
fn bench_mirror_refuses_a_postgres_that_is_not_on_loopback_and_too_many_records() {
    let remote = Command::new(BENCH)
        .args(["mirror", "--target", "postgres"])
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

    let unreachable = Command::new(BENCH)
        .args(["mirror", "--target", "postgres"])
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not reachable"), "{stderr}");

    let too_many = Command::new(BENCH)
        .args(["mirror", "--records", "1000001"])
        .output()
        .unwrap();
    assert_eq!(too_many.status.code(), Some(2));
}
