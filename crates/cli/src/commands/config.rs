//! `odoo-bridge config check`: validates a mirror configuration against the live Odoo
//! (models, fields, cursor fields, domains) and its store, without syncing. It runs the
//! checks a sync runs, so it gives the same verdict, and it writes nothing anywhere.

use crate::commands::sync::{Checkpoints, plans_verdict, print_plans};
use crate::commands::target::{self, Opening};
use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, Subcommand};
use engine::mirror::{self, RunOptions};
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
        .map_err(|error| Failure::new(exit_for(&error), error))?;
    let uid = client
        .uid()
        .await
        .map_err(|error| Failure::new(exit_for(&error), error))?;
    say!(
        "odoo: {} answers as Odoo {}, logged in as uid {uid}",
        loaded.config.odoo.base_url,
        version.raw
    );
    let checkpoints = target::with_store(
        &loaded,
        Opening::IfPresent,
        Checkpoints {
            models: &loaded.config.models,
        },
    )
    .await?;
    match &checkpoints {
        Some(saved) => say!(
            "store: {} answers ({} of {} models have a checkpoint)",
            target::describe(&loaded),
            saved.len(),
            loaded.config.models.len()
        ),
        None => say!(
            "store: {} does not exist yet; the first sync creates it",
            target::describe(&loaded)
        ),
    }
    let plans = mirror::plan(
        &client,
        &loaded.config.models,
        &RunOptions::default(),
        &checkpoints.unwrap_or_default(),
    )
    .await
    .map_err(crate::commands::sync::mirror_failure)?;
    print_plans(&plans);
    let verdict = plans_verdict(&loaded.config, &plans)?;
    if verdict == Exit::Success {
        say!("ok: every model, field, cursor field and domain is accepted");
    }
    Ok(verdict)
}
