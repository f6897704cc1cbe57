//! `marketplace add|edit|show` with the outbound settings (`--otp-field`, `--status-map`):
//! stored, shown, kept by an edit that does not name them, and every bad value refused with
//! the flag's name.

use crate::delivery_daemon::{Place, sim_key, text};
use odoo_sim::cartona::{CartonaConfig, CartonaSim};
use odoo_sim::{OdooSim, SimConfig};
use serde_json::{Value, json};
use std::process::Output;

const TOKEN: &str = "cartona-token-outbound-NEVER-ECHOED";

async fn run(place: &Place, args: &[&str]) -> Output {
    let mut command = place.command(args);
    command
        .env("ODOO_API_KEY", sim_key())
        .env("CARTONA_API_TOKEN", TOKEN);
    place.output(command, args).await
}

async fn show(place: &Place) -> Value {
    let output = run(place, &["marketplace", "show", "Cartona", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otp_field_and_the_status_map_are_set_kept_and_checked() {
    let odoo = OdooSim::new(SimConfig::default());
    let odoo_running = odoo.serve_on_loopback().await.unwrap();
    let cartona = CartonaSim::new(CartonaConfig::default());
    let cartona_running = cartona.serve_on_loopback().await.unwrap();
    let place = Place::sqlite();
    let (api_url, odoo_url) = (cartona_running.url(), odoo_running.url());
    let add = [
        "marketplace",
        "add",
        "--name",
        "Cartona",
        "--kind",
        "cartona",
        "--api-url",
        &api_url,
        "--odoo-url",
        &odoo_url,
        "--odoo-db",
        "odoo",
        "--odoo-username",
        "admin",
        "--otp-field",
        "x_cartona_otp",
        "--status-map",
        r#"{"sale/done": "delivered"}"#,
    ];
    let output = run(&place, &add).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let shown = show(&place).await;
    assert_eq!(shown["otp_field"], json!("x_cartona_otp"));
    assert_eq!(shown["status_map"], json!({"sale/done": "delivered"}));
    // An edit of something else keeps them.
    let output = run(
        &place,
        &["marketplace", "edit", "Cartona", "--interval", "30"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let shown = show(&place).await;
    assert_eq!(shown["otp_field"], json!("x_cartona_otp"));
    assert_eq!(shown["status_map"], json!({"sale/done": "delivered"}));
    // Bad values: both named by their flags, nothing changed.
    let bad = [
        "marketplace",
        "edit",
        "Cartona",
        "--otp-field",
        "Retailer OTP",
        "--status-map",
        r#"{"sale/done": "shipped"}"#,
    ];
    let output = run(&place, &bad).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("--otp-field") && said.contains("--status-map"),
        "{said}"
    );
    assert_eq!(show(&place).await["otp_field"], json!("x_cartona_otp"));
    // "{}" goes back to the seed's table.
    let output = run(
        &place,
        &["marketplace", "edit", "Cartona", "--status-map", "{}"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(show(&place).await["status_map"], json!({}));
}
