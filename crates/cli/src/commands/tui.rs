//! `odoo-bridge tui`: the terminal UI of order delivery on the configured store (see
//! [`super::delivery_store`]): dashboard, connection form, sync log, retry queue. Alone, it
//! runs the poller in the background; beside a running `odoo-bridge run` on the same store
//! it shows ATTACHED and starts no second poller.
//!
//! The screen is the TUI's: log lines would tear it, so nothing is logged unless
//! `--log-file` names a file to append JSON lines to.

use crate::commands::delivery_store::{Access, StoreLocation, StoreTask, with_store_at};
use crate::exit::{Exit, Failure};
use clap::Args;
use engine::store::Store;
use std::io::IsTerminal as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Do not start the poller when no daemon runs on the store (`s` starts it later).
    #[arg(long)]
    no_poller: bool,
    /// Seconds each half of a connection test (Odoo login, webhook ping) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    test_timeout: u64,
    /// Timeout of one webhook POST of the TUI's poller, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    webhook_timeout: u64,
    /// Append the poller's logs (JSON lines) to this file; without it nothing is logged.
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

pub async fn run(args: TuiArgs, log_level: &str) -> Result<Exit, Failure> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "odoo-bridge tui needs a terminal (stdin and stdout); for scripts use `connections`, `retries` and `logs`"
            ),
        ));
    }
    if let Some(path) = &args.log_file {
        log_to_file(path, log_level)?;
    }
    let location = StoreLocation::from_env()?;
    // The TUI can add the first connection: it may create the store.
    with_store_at(&location, Access::Create, Screen(args)).await
}

struct Screen(TuiArgs);

impl StoreTask for Screen {
    type Output = Exit;

    async fn run<S: Store>(self, store: &S, location: &StoreLocation) -> Result<Exit, Failure> {
        run_with(store.clone(), location, &self.0).await
    }
}

async fn run_with<S: Store>(
    store: S,
    location: &StoreLocation,
    args: &TuiArgs,
) -> Result<Exit, Failure> {
    let mut options = tui::Options {
        autostart_poller: !args.no_poller,
        ..tui::Options::default()
    };
    options.exec.test_timeout = Duration::from_secs(args.test_timeout.max(1));
    options.exec.runtime.send_timeout = Duration::from_secs(args.webhook_timeout.max(1));
    tracing::info!(store = %location.describe(), worker_id = %options.exec.worker_id, "odoo-bridge tui: started");
    tui::run(store, options).await.map_err(|error| {
        Failure::new(
            Exit::Failure,
            anyhow::anyhow!("the terminal failed: {error}"),
        )
    })?;
    Ok(Exit::Success)
}

fn log_to_file(path: &PathBuf, level: &str) -> Result<(), Failure> {
    // Private like the stores: the log names tenants and URLs.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| {
            Failure::new(
                Exit::Config,
                anyhow::anyhow!("cannot open the log file {}: {error}", path.display()),
            )
        })?;
    let level = crate::logging::normalise(level);
    let filter = tracing_subscriber::EnvFilter::try_new(&level).map_err(|error| {
        Failure::new(
            Exit::Config,
            anyhow::anyhow!("invalid log level {level:?}: {error}"),
        )
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .json()
        .flatten_event(true)
        .try_init()
        .map_err(|error| {
            Failure::new(
                Exit::Failure,
                anyhow::anyhow!("could not start logging: {error}"),
            )
        })
}
