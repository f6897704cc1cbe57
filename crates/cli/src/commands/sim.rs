//! `odoo-bridge sim`: runs the simulated Odoo so anyone can try odoo-bridge without an Odoo.

use crate::exit::{Exit, Failure};
use clap::Args;
use odoo_sim::{DataSpec, FaultRule, OdooSim, OdooVersion, SimConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8069)]
    port: u16,
    /// Address to listen on. Loopback by default: the simulator has no real security.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Odoo release to impersonate: 16, 17, 18, saas-18.2 or 19.
    #[arg(long = "odoo-version", default_value = "18", value_parser = parse_version)]
    odoo_version: OdooVersion,
    /// Database name clients must use.
    #[arg(long, default_value = "odoo")]
    database: String,
    /// Number of customers to generate.
    #[arg(long, default_value_t = 50)]
    partners: usize,
    /// Number of product templates to generate (some with variants).
    #[arg(long, default_value_t = 20)]
    products: usize,
    /// Number of sale orders to generate, in every state.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Seed of the data generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The administrator's API key (default: a fixed development key).
    #[arg(long, env = "ODOO_SIM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Inject a fault: KIND[:ARG][xTIMES|x*][@MODEL[/METHOD]][+AFTER]. KIND is an HTTP
    /// status (503, 429:5 for Retry-After 5), delay:2s, drop, malformed or
    /// error:<exception name>. Repeatable. Example: --fault 503x3 --fault 'error:odoo.exceptions.AccessDenied+100'
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<FaultRule>,
    /// Print the connection details as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_version(text: &str) -> Result<OdooVersion, String> {
    text.parse()
}

fn parse_fault(text: &str) -> Result<FaultRule, String> {
    text.parse()
}

pub async fn run(args: SimArgs) -> Result<Exit, Failure> {
    let mut config = SimConfig {
        version: args.odoo_version,
        database: args.database.clone(),
        ..SimConfig::default()
    };
    if let Some(key) = args.api_key {
        config.admin_api_key = key;
    }
    let spec = DataSpec {
        seed: args.seed,
        partners: args.partners,
        products: args.products,
        orders: args.orders,
    };
    let sim = OdooSim::with_data(config.clone(), &spec);
    for fault in args.faults {
        sim.inject(fault);
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|error| {
            Failure::new(
                Exit::Config,
                anyhow::anyhow!("cannot listen on {}:{}: {error}", args.host, args.port),
            )
        })?;
    let address = listener
        .local_addr()
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let url = format!("http://{address}");
    if args.json {
        let details = serde_json::json!({
            "url": url,
            "database": config.database,
            "login": config.admin_login,
            "api_key": config.admin_api_key,
            "odoo_version": config.version.to_string(),
            "transports": if config.version.has_json2() { vec!["jsonrpc", "json2"] } else { vec!["jsonrpc"] },
        });
        say!("{details}");
    } else {
        // The simulator's key is a development credential the user asked to see.
        say!(
            "Simulated Odoo {} listening on {url}",
            config.version.server_version()
        );
        say!("  database: {}", config.database);
        say!("  login:    {}", config.admin_login);
        say!("  API key:  {}", config.admin_api_key);
        say!(
            "  data:     {} partners, {} products, {} orders (seed {})",
            spec.partners,
            spec.products,
            spec.orders,
            spec.seed
        );
        say!(
            "Try: ODOO_API_KEY={} odoo-bridge odoo ping --url {url} --db {} --user {}",
            config.admin_api_key,
            config.database,
            config.admin_login
        );
        say!("Press Ctrl-C to stop.");
    }
    sim.serve(listener, shutdown_signal())
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    Ok(Exit::Success)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
