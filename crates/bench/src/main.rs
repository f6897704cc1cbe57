//! `odoo-bridge-bench`: odoo-bridge's benchmarks, for developers. Figures are printed against
//! ceilings measured in the same run, never asserted; the product binary carries none of it.
//!
//! ```sh
//! cargo run --release -p odoo-bridge-bench -- mirror
//! cargo build --release -p odoo-bridge && cargo run --release -p odoo-bridge-bench -- delivery
//! cargo run --release -p odoo-bridge-bench -- marketplace
//! cargo build --release -p odoo-bridge && cargo run --release -p odoo-bridge-bench -- hints
//! cargo bench -p odoo-bridge-bench --bench decode
//! ```

/// Prints a line of output on stdout. A closed stdout (`… | head`) ends the output quietly
/// instead of panicking as `println!` does.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod child;
mod delivery;
mod exit;
mod hints;
mod marketplace;
mod mirror;
mod procfs;
mod receiver;
mod records;
mod tenants;

use clap::{Parser, Subcommand};
use exit::{Exit, Failure};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// odoo-bridge's benchmarks: each runs its simulated Odoo, stores and helpers as processes of
/// their own on loopback and prints a table.
#[derive(Debug, Parser)]
#[command(name = "odoo-bridge-bench", version, about)]
struct Cli {
    /// Log level or filter of this process and of the helper processes it starts.
    #[arg(
        long,
        global = true,
        env = "ODOO_BRIDGE_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The mirror's full backfill and an incremental run after a bulk import, from a simulator
    /// process into SQLite and PostgreSQL, against a bare serial id-keyset fetch loop and a
    /// COPY-only load: records/s, records fetched ÷ records, peak RSS.
    Mirror(mirror::MirrorArgs),
    /// Order delivery end to end: confirmed orders of many tenants (a simulator process)
    /// delivered by `odoo-bridge run` (a process of its own) to a loopback receiver: orders/s,
    /// latency from the order's write, peak RSS, Odoo calls per 100 orders, CPU shares.
    Delivery(delivery::DeliveryArgs),
    /// Latency from `action_confirm` to the order's delivery, with Odoo push hints (a
    /// 5-minute poll interval) and with polling only, in one run: p50, p99, max.
    Hints(hints::HintsArgs),
    /// Many idle connections (one simulator, no new orders) polled by `odoo-bridge run` for a
    /// while: its average CPU and its memory.
    Idle(delivery::IdleArgs),
    /// The import of many Cartona orders (simulated Odoo and Cartona, SQLite store) against
    /// a bare loop creating the same orders: orders/s and Odoo calls per order, by method.
    Marketplace(marketplace::MarketplaceArgs),
    /// (Helper process) a simulated Odoo holding the mirror benchmark's model.
    #[command(hide = true)]
    SimRecords(records::RecordsArgs),
    /// (Helper process) many simulated Odoo tenants for the delivery benchmarks.
    #[command(hide = true)]
    SimTenants(tenants::TenantsArgs),
    /// (Helper process) the webhook receiver of the delivery benchmarks.
    #[command(hide = true)]
    Receiver,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log_level) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("error: invalid log level {:?}: {error}", cli.log_level);
            return Exit::Config.into();
        }
    };
    // Figures go to stdout; logs to stderr, where they do not mix with a helper's answers.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Failure.into();
        }
    };
    let outcome: Result<(), Failure> = runtime.block_on(async move {
        match cli.command {
            Command::Mirror(args) => mirror::run(args).await,
            Command::Delivery(args) => delivery::delivery(args).await,
            Command::Idle(args) => delivery::idle(args).await,
            Command::Marketplace(args) => marketplace::run(args).await,
            Command::Hints(args) => hints::hints(args).await,
            Command::SimRecords(args) => records::serve(args).await,
            Command::SimTenants(args) => tenants::serve(args).await,
            Command::Receiver => receiver::serve().await,
        }
    });
    match outcome {
        Ok(()) => Exit::Success.into(),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.exit.into()
        }
    }
}
