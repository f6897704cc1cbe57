//! `odoo-bridge demo` through the real binary: the mirror, order delivery, and one Cartona
//! order going Cartona → Odoo → Cartona, all against the simulators it starts itself.

use crate::ping::BINARY;
use std::process::Command;

#[test]
fn the_demo_mirrors_delivers_and_takes_a_cartona_order_to_odoo_and_its_approval_back() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["--log-level", "warn", "demo", "--orders", "40", "--dir"])
        .arg(dir.path())
        .env_remove("ODOO_API_KEY")
        .env_remove("ODOO_BRIDGE_LOG_LEVEL")
        .output()
        .expect("the binary runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // What was there before the marketplace part is still there.
    assert!(printed.contains("Full mirror into"), "{printed}");
    assert!(
        printed.contains("webhooks delivered and verified"),
        "{printed}"
    );
    let line = |start: &str| {
        printed
            .lines()
            .find(|line| line.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{printed}"))
            .trim()
            .to_owned()
    };
    assert!(
        line("Marketplace:").contains("\"Demo Cartona\""),
        "{printed}"
    );
    let imported = line("Cartona → Odoo:");
    assert!(
        imported.starts_with(
            "Cartona → Odoo: order CART-DEMO-1 (retailer RET-DEMO, 2 lines) imported as sale.order "
        ) && imported.ends_with(", acknowledged to Cartona as synced"),
        "{imported}"
    );
    let confirmed = line("in Odoo: sale.order");
    assert!(
        confirmed.contains("confirmed through the workflow (action_confirm): draft → sale"),
        "{confirmed}"
    );
    assert_eq!(
        line("Odoo → Cartona:"),
        "Odoo → Cartona: status approved pushed for order CART-DEMO-1"
    );
    // The order the import line names is the one confirmed.
    let order_id = imported
        .split("imported as sale.order ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    assert!(
        confirmed.starts_with(&format!("in Odoo: sale.order {order_id} confirmed")),
        "{confirmed}"
    );
    assert!(dir.path().join("marketplace.db").exists());
}
