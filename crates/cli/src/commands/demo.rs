//! `odoo-bridge demo`: everything on one machine with nothing installed — a simulated Odoo
//! on a free loopback port, and the client talking to it over real HTTP.

use crate::exit::{Exit, Failure, exit_for};
use clap::Args;
use odoo_rpc::{ClientConfig, Context, OdooClient, Protocol, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, OdooVersion, SimConfig};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Odoo release the simulator impersonates: 16, 17, 18, saas-18.2 or 19.
    #[arg(long = "odoo-version", default_value = "18", value_parser = parse_version)]
    odoo_version: OdooVersion,
    /// Number of generated sale orders.
    #[arg(long, default_value_t = 200)]
    orders: usize,
}

fn parse_version(text: &str) -> Result<OdooVersion, String> {
    text.parse()
}

pub async fn run(args: DemoArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    let config = SimConfig {
        version: args.odoo_version,
        ..SimConfig::default()
    };
    let spec = DataSpec {
        orders: args.orders,
        partners: (args.orders / 2).max(10),
        products: 30,
        seed: 42,
    };
    let sim = OdooSim::with_data(config.clone(), &spec);
    let running = sim
        .clone()
        .serve_on_loopback()
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    say!(
        "Simulated Odoo {} on {} (database {:?})",
        config.version.server_version(),
        running.url(),
        config.database
    );

    let failed =
        |error: odoo_rpc::Error| Failure::new(exit_for(&error), anyhow::anyhow!("{error}"));
    let client = OdooClient::connect(ClientConfig::new(
        running.url(),
        config.database.clone(),
        config.admin_login.clone(),
        config.admin_api_key.clone(),
    ))
    .await
    .map_err(failed)?;
    let version = client.server_version().await.map_err(failed)?;
    let uid = client.uid().await.map_err(failed)?;
    let transport = match client.transport_kind() {
        Some(Protocol::Json2) => "JSON-2",
        _ => "JSON-RPC",
    };
    say!(
        "Connected: Odoo {} as uid {uid} over {transport}",
        version.raw
    );

    let everything = Context::new().active_test(false);
    let confirmed = field("state").is_in(["sale", "done"]);
    let partners = client
        .search_count("res.partner", &odoo_rpc::Domain::all(), Some(&everything))
        .await
        .map_err(failed)?;
    let orders = client
        .search_count("sale.order", &odoo_rpc::Domain::all(), None)
        .await
        .map_err(failed)?;
    let confirmed_count = client
        .search_count("sale.order", &confirmed, None)
        .await
        .map_err(failed)?;
    say!(
        "Records: {partners} partners (archived included), {orders} sale orders, {confirmed_count} confirmed"
    );

    let latest = client
        .search_read(
            "sale.order",
            &SearchReadOptions::new(confirmed)
                .fields(["name", "partner_id", "amount_total", "write_date"])
                .order("write_date desc, id desc")
                .limit(5),
        )
        .await
        .map_err(failed)?;
    say!("Latest confirmed orders:");
    for order in &latest {
        let name = order.str("name").ok().flatten().unwrap_or("?");
        let customer = order
            .many2one("partner_id")
            .ok()
            .flatten()
            .and_then(|m| m.name)
            .unwrap_or_default();
        let total = order.f64("amount_total").ok().flatten().unwrap_or_default();
        let written = order
            .datetime("write_date")
            .ok()
            .flatten()
            .map(|t| t.to_string())
            .unwrap_or_default();
        say!("  {name:<8} {total:>10.2}  {written}  {customer}");
    }
    say!(
        "Done in {:.2} s, {} calls to Odoo.",
        started.elapsed().as_secs_f64(),
        sim.total_calls()
    );
    running.shutdown().await;
    Ok(Exit::Success)
}
