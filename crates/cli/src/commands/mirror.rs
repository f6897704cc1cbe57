//! The mirror in the daemon: `odoo-bridge run --config FILE` syncs the file's models on their
//! schedule and serves their push hints ([`start_schedule`]); `odoo-bridge mirror
//! install-hint` / `uninstall-hint` set a model's automation rule up in Odoo, or remove it.
//!
//! The hint URL carries the file's hint token (from the variable `hints.token_env` names),
//! which is all that authenticates a hint: it is printed masked unless `--reveal-secret`.

use super::hints::{check_base_url, install_exit};
use super::target::{self, Loaded, Opening, StoreTask};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand};
use engine::clock::Clock;
use engine::config::MirrorConfig;
use engine::connection_test::scrub_secrets;
use engine::hints::install::{self, InstallError, RuleSpec};
use engine::hints::mirror::MirrorHintReceiver;
use engine::hints::receive::HintLimits;
use engine::hints::{self, HintToken};
use engine::mirror_schedule::Scheduler;
use odoo_rpc::OdooClient;
use serde_json::json;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Create (or update) the Odoo automation rule that posts a mirrored model's changes to
    /// `odoo-bridge run --config FILE`, which then syncs the model within seconds.
    InstallHint(InstallHintArgs),
    /// Delete a mirrored model's automation rule from Odoo.
    UninstallHint(UninstallHintArgs),
}

#[derive(Debug, Args)]
pub struct InstallHintArgs {
    /// The mirror's configuration file; the model needs `hint: true` and the file
    /// `hints.token_env`.
    #[arg(long, short)]
    config: PathBuf,
    /// The model, as the file lists it (e.g. res.partner).
    #[arg(long)]
    model: String,
    /// Where Odoo reaches `odoo-bridge run --config FILE`'s listener, e.g.
    /// https://bridge.example.com behind a reverse proxy. Hints are posted to
    /// URL/hooks/odoo-mirror/<model>/<token>.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// Print the hint URL with its token.
    #[arg(long)]
    reveal_secret: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UninstallHintArgs {
    /// The mirror's configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// The model, as the file lists it.
    #[arg(long)]
    model: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: MirrorCommand) -> Result<Exit, Failure> {
    match command {
        MirrorCommand::InstallHint(args) => install_hint(args).await,
        MirrorCommand::UninstallHint(args) => uninstall_hint(args).await,
    }
}

fn config_failure(error: engine::config::ConfigError) -> Failure {
    Failure::new(Exit::Config, error)
}

/// The file's hint token, checked to be set for `model`.
fn token_for(loaded: &Loaded, model: &str) -> Result<HintToken, Failure> {
    let config = &loaded.config;
    if !config.schedule.hinted().any(|hinted| hinted.name == model) {
        return Err(config_failure(config.error_at(
            config.locations(model).map(|locations| locations.name),
            format!(
                "{model} takes no hints: add `hint: true` to it (and a top-level `hints: \
                 {{token_env: ODOO_BRIDGE_MIRROR_HINT_TOKEN}}`), so that `odoo-bridge run \
                 --config` serves its hint route"
            ),
        )));
    }
    config
        .hint_token(|name| std::env::var(name).ok())
        .map_err(config_failure)?
        .ok_or_else(|| {
            config_failure(
                config.error_at(
                    None,
                    "the file has no `hints.token_env`: add `hints: {token_env: \
                 ODOO_BRIDGE_MIRROR_HINT_TOKEN}`"
                        .to_owned(),
                ),
            )
        })
}

/// An Odoo refusal, without any secret it might echo.
fn odoo_failure(error: InstallError, secrets: &[&str]) -> Failure {
    Failure::new(
        install_exit(&error),
        anyhow::anyhow!(scrub_secrets(error.to_string(), secrets)),
    )
}

async fn install_hint(args: InstallHintArgs) -> Result<Exit, Failure> {
    let base_url = check_base_url(&args.base_url)?;
    let (loaded, api_key) = target::load(&args.config)?;
    target::check_model(&loaded, Some(&args.model))?;
    let token = token_for(&loaded, &args.model)?;
    if !base_url.starts_with("https://") {
        tracing::warn!(
            model = %args.model,
            "the hint URL is plain http: its token travels in clear; use https unless Odoo reaches the daemon on a private network"
        );
    }
    let secrets = [api_key.expose().to_owned(), token.expose().to_owned()];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let odoo = target::client(&loaded, api_key)?;
    let url = hints::mirror_hint_url(&base_url, &args.model, token.expose());
    let spec = RuleSpec::for_mirror(&args.model);
    let installed = install::install_rule(&odoo, &spec, &url)
        .await
        .map_err(|error| odoo_failure(error, &secrets))?;
    tracing::info!(model = %args.model, ?installed, "mirror push hint installed in Odoo");
    let shown = if args.reveal_secret {
        url.clone()
    } else {
        hints::masked_mirror_hint_url(&base_url, &args.model, &token)
    };
    let (rule_id, action_id, verb) = installed.parts();
    if args.json {
        say!(
            "{}",
            json!({
                "model": args.model,
                "hint_url": shown,
                "rule": verb,
                "rule_id": rule_id,
                "action_id": action_id,
                "rule_name": spec.name,
            })
        );
        return Ok(Exit::Success);
    }
    say!(
        "Mirror push hint {verb} for {} in Odoo {} (database {}):",
        args.model,
        loaded.config.odoo.base_url,
        loaded.config.odoo.database
    );
    say!(
        "  automation rule #{rule_id} {:?} on {} (on create and edit, every record),",
        spec.name,
        args.model
    );
    say!("  its action #{action_id} \"Send Webhook Notification\" posts to {shown}");
    say!(
        "Odoo must reach that URL: `odoo-bridge run --config {}` serves it on its --listen address (behind your proxy). The model is still synced every interval if a hint is lost.",
        args.config.display()
    );
    Ok(Exit::Success)
}

async fn uninstall_hint(args: UninstallHintArgs) -> Result<Exit, Failure> {
    let (loaded, api_key) = target::load(&args.config)?;
    target::check_model(&loaded, Some(&args.model))?;
    let secret = api_key.expose().to_owned();
    let odoo = target::client(&loaded, api_key)?;
    let name = install::mirror_rule_name(&args.model);
    let removed = install::uninstall_rule(&odoo, &name)
        .await
        .map_err(|error| odoo_failure(error, &[&secret]))?;
    tracing::info!(model = %args.model, removed, "mirror push hint uninstalled");
    if args.json {
        say!(
            "{}",
            json!({"model": args.model, "rule_name": name, "rule_removed": removed})
        );
    } else if removed {
        say!(
            "Removed the mirror push hint of {}: its automation rule and webhook action are deleted from Odoo. The model is synced every interval.",
            args.model
        );
    } else {
        say!(
            "{} has no mirror push hint in Odoo: nothing to remove.",
            args.model
        );
    }
    Ok(Exit::Success)
}

/// What `odoo-bridge run --config FILE` runs for the file.
#[derive(Debug)]
pub struct Scheduled {
    /// The mirror's schedule, when the file has models.
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// The hint route of its hinted models (none without).
    pub routes: axum::Router,
    /// Whether the file has enrichment jobs too.
    pub has_enrichment: bool,
}

/// Loads the file and starts its mirror models' schedule (nothing when it has none), with
/// the file's store; the configuration's errors, and a store that cannot be opened, come
/// back at once, the cycles' are logged.
pub async fn start_schedule(
    path: &Path,
    clock: Clock,
    stop: watch::Receiver<bool>,
) -> Result<Scheduled, Failure> {
    let config = MirrorConfig::load(path).map_err(config_failure)?;
    let has_enrichment = !config.enrich.is_empty();
    if config.models.is_empty() {
        return Ok(Scheduled {
            task: None,
            routes: axum::Router::new(),
            has_enrichment,
        });
    }
    let (loaded, api_key) = target::load(path)?;
    let token = loaded
        .config
        .hint_token(|name| std::env::var(name).ok())
        .map_err(config_failure)?;
    let client = target::client(&loaded, api_key)?;
    // The schema is brought up to date here, before the file's enrichment jobs open the same
    // store: two first migrations of one SQLite file at once would collide.
    target::with_store(&loaded, Opening::Migrated, Migrated).await?;
    let scheduler = Scheduler::new(loaded.config.clone(), clock.clone());
    let routes = match token {
        Some(token) => engine::hints::mirror::routes(MirrorHintReceiver::new(
            token,
            scheduler.signals(),
            clock,
            HintLimits::default(),
        )),
        None => axum::Router::new(),
    };
    let task = tokio::spawn(async move {
        let task = Schedule {
            scheduler,
            client,
            stop,
        };
        if let Err(failure) = target::with_store(&loaded, Opening::Migrated, task).await {
            tracing::error!(error = %format!("{:#}", failure.error), "the mirror's schedule stopped");
        }
    });
    Ok(Scheduled {
        task: Some(task),
        routes,
        has_enrichment,
    })
}

/// Opening the store with [`Opening::Migrated`] is the whole task.
struct Migrated;

impl StoreTask for Migrated {
    type Output = ();

    async fn run<S: engine::store::Store>(self, _: &S, _: bool) -> Result<(), Failure> {
        Ok(())
    }
}

struct Schedule {
    scheduler: Scheduler,
    client: OdooClient,
    stop: watch::Receiver<bool>,
}

impl StoreTask for Schedule {
    type Output = ();

    async fn run<S: engine::store::Store>(self, store: &S, uses_lock: bool) -> Result<(), Failure> {
        self.scheduler
            .run(&self.client, store, uses_lock, self.stop)
            .await;
        Ok(())
    }
}
