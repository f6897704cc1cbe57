//! `odoo-bridge odoo …`: talk to one Odoo directly, to check a connection before using it.

use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, Subcommand, ValueEnum};
use odoo_rpc::{ApiKey, ClientConfig, OdooClient, Protocol, TransportChoice};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum OdooCommand {
    /// Connect and authenticate: prints the server version, the uid and the transport used.
    Ping(PingArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// JSON-2 on Odoo 19 and later, JSON-RPC before.
    Auto,
    Jsonrpc,
    Json2,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Odoo's base URL, e.g. https://mycompany.odoo.com (not a page of it such as /web or
    /// /odoo).
    #[arg(long, value_parser = base_url)]
    url: String,
    /// Database name.
    #[arg(long)]
    db: String,
    /// Login of the API user.
    #[arg(long)]
    user: String,
    /// Transport to use.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    transport: TransportArg,
    /// Seconds to wait for each call.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Retries on temporary failures (0 to fail at once).
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `--url`, checked as every Odoo URL is ([`odoo_rpc::check_base_url`]) so that a URL copied
/// from the browser is refused with the base URL to use, before any request.
fn base_url(value: &str) -> Result<String, String> {
    odoo_rpc::check_base_url(value).map_err(|error| match error {
        odoo_rpc::Error::InvalidRequest { message } => message,
        other => other.to_string(),
    })
}

pub async fn run(command: OdooCommand) -> Result<Exit, Failure> {
    match command {
        OdooCommand::Ping(args) => ping(args).await,
    }
}

fn api_key_from_env() -> Result<ApiKey, Failure> {
    match std::env::var("ODOO_API_KEY") {
        Ok(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim().to_owned())),
        _ => Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "ODOO_API_KEY is not set: export the API key of the Odoo user (Preferences → Account Security → New API Key)"
            ),
        )),
    }
}

async fn ping(args: PingArgs) -> Result<Exit, Failure> {
    let api_key = api_key_from_env()?;
    let mut config = ClientConfig::new(
        args.url.clone(),
        args.db.clone(),
        args.user.clone(),
        api_key,
    );
    config.transport = match args.transport {
        TransportArg::Auto => TransportChoice::Auto,
        TransportArg::Jsonrpc => TransportChoice::JsonRpc,
        TransportArg::Json2 => TransportChoice::Json2,
    };
    config.timeout = Duration::from_secs(args.timeout.max(1));
    config.retry.max_retries = args.retries;
    let transport = args.transport;
    let failed = |error: odoo_rpc::Error| {
        let exit = exit_for(&error);
        // Authentication errors already say what to check (the database name, or the login
        // and key); the others get the flag to look at.
        let hint = match (&error, exit) {
            (_, Exit::Authentication) => None,
            (_, Exit::Unreachable) => Some("check --url and that Odoo is up"),
            (_, Exit::Config) if transport == TransportArg::Json2 => {
                Some("--transport auto picks the transport the server has")
            }
            (odoo_rpc::Error::Http { .. } | odoo_rpc::Error::MalformedResponse { .. }, _) => {
                Some("is --url Odoo's base URL, and not a proxy's page?")
            }
            _ => None,
        };
        match hint {
            Some(hint) => Failure::new(exit, anyhow::anyhow!("{error} ({hint})")),
            None => Failure::new(exit, error),
        }
    };
    let client = OdooClient::connect(config).await.map_err(failed)?;
    let version = client.server_version().await.map_err(failed)?;
    let uid = client.uid().await.map_err(failed)?;
    let transport = match client.transport_kind() {
        Some(Protocol::Json2) => "json2",
        Some(Protocol::JsonRpc) => "jsonrpc",
        None => "unknown",
    };
    if args.json {
        say!(
            "{}",
            serde_json::json!({"url": args.url, "database": args.db, "login": args.user, "server_version": version.raw, "major": version.major, "uid": uid, "transport": transport})
        );
    } else {
        say!("Odoo {} at {}", version.raw, args.url);
        say!("  database:  {}", args.db);
        say!("  login:     {} (uid {uid})", args.user);
        say!("  transport: {transport}");
    }
    Ok(Exit::Success)
}
