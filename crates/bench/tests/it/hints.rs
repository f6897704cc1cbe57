//! `odoo-bridge-bench hints` at a tiny size: both modes run and print their rows. Figures are
//! not checked, only that every order was delivered and the rows are there.

use crate::{BENCH, product_binary};
use std::process::Command;

#[test]
fn bench_hints_delivers_every_order_in_both_modes() {
    let output = Command::new(BENCH)
        .args(["--log-level", "warn", "hints"])
        .args([
            "--orders",
            "3",
            "--polling-interval",
            "2",
            "--spacing-ms",
            "100",
        ])
        .args(["--deadline", "60"])
        .env_remove("DATABASE_URL")
        .env("ODOO_BRIDGE_BIN", product_binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for mode in ["push hints", "polling only"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(mode))
            .unwrap_or_else(|| panic!("no {mode:?} row: {stdout}"));
        let columns: Vec<&str> = row[mode.len()..].split_whitespace().collect();
        // interval, orders, delivered, p50, p99, max, hints
        assert_eq!(columns[2], "3", "{mode}: every order delivered: {row}");
        assert_eq!(columns[3], "3", "{mode}: every order delivered: {row}");
    }
    assert!(stdout.contains("p50 ≈ 150 s"), "{stdout}");
}
