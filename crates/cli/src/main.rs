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

use clap::{CommandFactory, Parser, Subcommand};
use exit::{Exit, Failure};
use std::process::ExitCode;

/// odoo-bridge connects Odoo (16–19, SaaS or self-hosted) to the systems around it over
/// Odoo's external API.
///
/// Start here: `odoo-bridge sim` runs a simulated Odoo, then `odoo-bridge odoo ping`
/// checks a connection to it (or to your real Odoo).
/// Where `--help` lists the options every command takes, apart from the command's own.
const GLOBAL_OPTIONS: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "odoo-bridge",
    version,
    about,
    long_about,
    propagate_version = true
)]
struct Cli {
    /// Log level or filter (off, error, warn, info, debug, trace, or e.g.
    /// "info,odoo_rpc=debug"). Also read from ODOO_BRIDGE_LOG_LEVEL, or from the seed's
    /// POLLER_LOG_LEVEL (DEBUG | INFO | WARNING | ERROR). Logs go to stderr.
    #[arg(
        long,
        global = true,
        env = "ODOO_BRIDGE_LOG_LEVEL",
        value_parser = logging::parse_level,
        help_heading = GLOBAL_OPTIONS
    )]
    log_level: Option<String>,
    /// Log format (`auto`: JSON lines unless stderr is a terminal).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = logging::LogFormat::Auto,
        help_heading = GLOBAL_OPTIONS
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Try odoo-bridge with nothing installed: a simulated Odoo plus the client against it.
    Demo(commands::demo::DemoArgs),
    /// Mirror the configured Odoo models into PostgreSQL or the embedded SQLite file, once.
    Sync(commands::sync::SyncArgs),
    /// Run the order-delivery daemon: poll every active connection, deliver webhooks, serve
    /// health and metrics. Stops cleanly on SIGTERM/SIGINT. With --config, also a
    /// configuration file's enrichment jobs and mirror models.
    Run(commands::run::RunArgs),
    /// Enrichment jobs from a YAML configuration: send chosen Odoo records to a service,
    /// check its answer, write back only the whitelisted fields (run, status, replay).
    #[command(subcommand)]
    Enrich(commands::enrich::EnrichCommand),
    /// Check a mirror configuration against the live Odoo.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Create or upgrade the mirror's tables (every sync also does it).
    Migrate(commands::maintenance::MigrateArgs),
    /// Delete old rows of the mirror's run log (every sync also does it).
    Prune(commands::maintenance::PruneArgs),
    /// Show the mirror's recent runs, newest first.
    Runs(commands::maintenance::RunsArgs),
    /// Odoo push hints for the mirror's models (install-hint, uninstall-hint): `run --config`
    /// then syncs a hinted model within seconds of a change.
    #[command(subcommand)]
    Mirror(commands::mirror::MirrorCommand),
    /// Manage order delivery's connections (one per Odoo tenant): add, list, show, edit,
    /// remove, pause, resume, test.
    #[command(subcommand)]
    Connections(commands::connections::ConnectionsCommand),
    /// Manage marketplaces (Cartona), whose orders `run` imports into Odoo: add, list, show,
    /// edit, remove, pause, resume, test.
    #[command(subcommand)]
    Marketplace(commands::marketplace::MarketplaceCommand),
    /// Order delivery's retry queue: list, show, retry or discard packets.
    #[command(subcommand)]
    Retries(commands::retries::RetriesCommand),
    /// The events flows took in: list, show, retry or discard them (a failed one waits here
    /// for a person).
    #[command(subcommand)]
    Inbox(commands::inbox::InboxCommand),
    /// The key that encrypts the stored secrets (Odoo API keys, webhook secrets): make one,
    /// or re-encrypt every stored secret under a new one.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCommand),
    /// Order delivery's sync log: one row per polling cycle, newest first.
    Logs(commands::logs::LogsArgs),
    /// Order delivery's terminal UI: dashboard, connections, sync log and retry queue. Runs
    /// the poller in the background unless a daemon already runs on the store.
    Tui(commands::tui::TuiArgs),
    /// Ask a running daemon's /healthz (or /readyz with --ready): exit 0 when it answers 200,
    /// 1 otherwise. For a container's HEALTHCHECK (the image has no curl).
    Healthcheck(commands::healthcheck::HealthcheckArgs),
    /// Run a simulated Odoo server (JSON-RPC and, for 19, JSON-2) with generated data.
    Sim(commands::sim::SimArgs),
    /// Talk to one Odoo directly.
    #[command(subcommand)]
    Odoo(commands::odoo::OdooCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match &cli.log_level {
        Some(level) => level.clone(),
        None => match std::env::var("POLLER_LOG_LEVEL") {
            // Checked like --log-level, and refused the same way (clap's message, exit 2).
            Ok(seed_level) => match logging::parse_level(&seed_level) {
                Ok(level) => level,
                Err(error) => Cli::command()
                    .error(
                        clap::error::ErrorKind::InvalidValue,
                        format!("POLLER_LOG_LEVEL={seed_level:?}: {error}"),
                    )
                    .exit(),
            },
            Err(_) => "info".to_owned(),
        },
    };
    // The TUI owns the screen: it logs only to a file (`tui --log-file`).
    if !matches!(cli.command, Command::Tui(_))
        && let Err(error) = logging::init(&level, cli.log_format)
    {
        eprintln!("error: {error}");
        return Exit::Failure.into();
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
            Command::Connections(command) => commands::connections::run(command).await,
            Command::Marketplace(command) => commands::marketplace::run(command).await,
            Command::Retries(command) => commands::retries::run(command).await,
            Command::Inbox(command) => commands::inbox::run(command).await,
            Command::Secrets(command) => commands::secrets::run(command).await,
            Command::Logs(args) => commands::logs::run(args).await,
            Command::Tui(args) => commands::tui::run(args, &level).await,
            Command::Sync(args) => commands::sync::run(args).await,
            Command::Run(args) => commands::run::run(args).await,
            Command::Config(command) => commands::config::run(command).await,
            Command::Enrich(command) => commands::enrich::run(command).await,
            Command::Migrate(args) => commands::maintenance::migrate(args).await,
            Command::Prune(args) => commands::maintenance::prune(args).await,
            Command::Runs(args) => commands::maintenance::runs(args).await,
            Command::Mirror(command) => commands::mirror::run(command).await,
            Command::Odoo(command) => commands::odoo::run(command).await,
            Command::Healthcheck(args) => commands::healthcheck::run(args).await,
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_global_options_apart_from_a_commands_own() {
        let mut command = Cli::command();
        // Global options reach the subcommands when the command is built, as parsing does.
        command.build();
        let help = command
            .find_subcommand_mut("runs")
            .expect("runs")
            .render_help()
            .to_string();
        let (own, global) = help
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("no global section in:\n{help}"));
        assert!(
            own.contains("--limit") && !own.contains("--log-level"),
            "{help}"
        );
        assert!(
            global.contains("--log-level") && global.contains("--log-format"),
            "{help}"
        );
    }
}
