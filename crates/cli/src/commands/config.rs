//! `odoo-bridge config check`: validates a mirror configuration against the live Odoo
//! (models, fields, cursor fields, domains) and its store, without syncing.

use crate::commands::sync::print_plans;
use crate::commands::target::{self, Opening, StoreTask};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand};
use engine::mirror::{self, RunOptions};
use engine::mirror_store::MirrorStore;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file against the live Odoo and the store; sync nothing.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(long, short)]
    config: PathBuf,
}

pub async fn run(command: ConfigCommand) -> Result<Exit, Failure> {
    match command {
        ConfigCommand::Check(args) => check(args).await,
    }
}

/// Proves the store answers.
struct Reachable;

impl StoreTask for Reachable {
    type Output = ();

    async fn run<S: MirrorStore>(self, store: &S, _: bool) -> Result<(), Failure> {
        store
            .runs(1)
            .await
            .map(|_| ())
            .map_err(|error| Failure::new(Exit::Failure, error))
    }
}

async fn check(args: CheckArgs) -> Result<Exit, Failure> {
    let (loaded, api_key) = target::load(&args.config)?;
    say!(
        "{}: the file is valid ({} models)",
        args.config.display(),
        loaded.config.models.len()
    );
    let client = target::client(&loaded, api_key)?;
    let version = client
        .server_version()
        .await
        .map_err(|error| Failure::new(crate::exit::exit_for(&error), error))?;
    let uid = client
        .uid()
        .await
        .map_err(|error| Failure::new(crate::exit::exit_for(&error), error))?;
    say!(
        "odoo: {} answers as Odoo {}, logged in as uid {uid}",
        loaded.config.odoo.base_url,
        version.raw
    );
    let options = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let plans = mirror::plan(&client, &loaded.config.models, &options, &HashMap::new())
        .await
        .map_err(|error| match error {
            mirror::MirrorError::Authentication(error) => Failure::new(Exit::Authentication, error),
            other => Failure::new(Exit::Failure, other),
        })?;
    let failed = print_plans(&plans);
    match target::with_store(&loaded, Opening::ReadOnly, Reachable).await? {
        Some(()) => say!("store: {} answers", target::describe(&loaded)),
        None => say!(
            "store: {} does not exist yet; the first sync creates it",
            target::describe(&loaded)
        ),
    }
    let missing: usize = plans.iter().map(|plan| plan.missing_fields.len()).sum();
    if failed > 0 || missing > 0 {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "{failed} model(s) cannot be mirrored and {missing} configured field(s) do not exist on this Odoo"
            ),
        ));
    }
    say!("ok: every model and field exists");
    Ok(Exit::Success)
}
