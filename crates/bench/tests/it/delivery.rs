//! `odoo-bridge-bench delivery` and `idle` at a tiny size: they run their simulator, receiver
//! and daemon (`odoo-bridge run`) processes and print their tables. Figures are not checked,
//! only that they are there.

use crate::{BENCH, product_binary};
use std::process::Command;

#[test]
fn bench_delivery_delivers_every_order_at_a_tiny_size() {
    let output = Command::new(BENCH)
        .args(["--log-level", "warn", "delivery"])
        .args(["--orders", "60", "--tenants", "2", "--lines", "2"])
        .args(["--interval", "1", "--overlap", "2", "--timeout", "60"])
        .env_remove("DATABASE_URL")
        .env("ODOO_BRIDGE_BIN", product_binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let delivered = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("orders delivered"))
        .unwrap_or_else(|| panic!("no delivered row: {stdout}"));
    assert!(delivered.contains("60 / 60"), "{delivered}");
    assert!(delivered.contains("0 duplicates"), "{delivered}");
    for label in [
        "orders/s end to end",
        "latency from the write instant",
        "Odoo calls per 100 orders delivered",
        "our CPU share",
        "sale.order/search_read",
    ] {
        assert!(stdout.contains(label), "no {label:?}: {stdout}");
    }
}

#[test]
fn bench_idle_runs_for_a_few_seconds() {
    let output = Command::new(BENCH)
        .args(["--log-level", "warn", "idle"])
        .args(["--connections", "5", "--seconds", "5", "--interval", "2"])
        .env_remove("DATABASE_URL")
        .env("ODOO_BRIDGE_BIN", product_binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for label in [
        "daemon CPU, whole run",
        "daemon RSS: peak (VmHWM) / final (VmRSS)",
        "webhooks received (none expected)",
    ] {
        assert!(stdout.contains(label), "no {label:?}: {stdout}");
    }
}

#[test]
fn bench_delivery_refuses_a_postgres_that_is_not_on_loopback() {
    let output = Command::new(BENCH)
        .args(["delivery", "--store", "postgres"])
        .args([
            "--database-url",
            "postgres://postgres:s3cret@db.example.com/test",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn bench_delivery_compares_replicas_on_postgres_and_refuses_them_on_sqlite() {
    let output = Command::new(BENCH)
        .args(["--log-level", "warn", "delivery", "--store", "postgres"])
        .args(["--replicas", "1,2"])
        .args(["--orders", "40", "--tenants", "3", "--lines", "1"])
        .args(["--interval", "1", "--overlap", "2", "--timeout", "60"])
        .args(["--run-arg=--reload-every=1"])
        .env("ODOO_BRIDGE_BIN", product_binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("replicas compared"))
        .collect();
    assert!(table.len() >= 4, "no comparison table: {stdout}");
    for (row, replicas) in table[2..4].iter().zip(["1", "2"]) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], replicas, "{row}");
        assert_eq!(cells[1], "40", "every order once: {row}");
    }

    let refused = Command::new(BENCH)
        .args(["delivery", "--replicas", "2"])
        .env("ODOO_BRIDGE_BIN", product_binary())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--store postgres"), "{stderr}");
}
