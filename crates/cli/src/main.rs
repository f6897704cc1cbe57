//! `odoo-bridge`: connects Odoo to the systems around it.

/// Prints a line of command output on stdout. A closed stdout (`odoo-bridge … | head`) ends
/// the output quietly instead of panicking as `println!` does.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod commands;
mod exit;
mod logging;

use clap::{Parser, Subcommand};
use exit::{Exit, Failure};
use std::process::ExitCode;

/// odoo-bridge connects Odoo (16–19, SaaS or self-hosted) to the systems around it over
/// Odoo's external API.
///
/// Start here: `odoo-bridge sim` runs a simulated Odoo, then `odoo-bridge odoo ping`
/// checks a connection to it (or to your real Odoo).
#[derive(Debug, Parser)]
#[command(
    name = "odoo-bridge",
    version,
    about,
    long_about,
    propagate_version = true
)]
struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or e.g. "odoo_rpc=debug").
    #[arg(
        long,
        global = true,
        env = "ODOO_BRIDGE_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Auto)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Try odoo-bridge with nothing installed: a simulated Odoo plus the client against it.
    Demo(commands::demo::DemoArgs),
    /// Run a simulated Odoo server (JSON-RPC and, for 19, JSON-2) with generated data.
    Sim(commands::sim::SimArgs),
    /// Talk to one Odoo directly.
    #[command(subcommand)]
    Odoo(commands::odoo::OdooCommand),
    /// Measure performance; prints figures (not a test).
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = logging::init(&cli.log_level, cli.log_format) {
        eprintln!("error: {error}");
        return Exit::Config.into();
    }
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
    let outcome: Result<Exit, Failure> = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Sim(args) => commands::sim::run(args).await,
            Command::Odoo(command) => commands::odoo::run(command).await,
            Command::Bench(command) => commands::bench::run(command).await,
        }
    });
    match outcome {
        Ok(exit) => exit.into(),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.exit.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
