//! `odoo-bridge sync`: one mirror run, for cron or a Kubernetes CronJob.

use crate::commands::target::{self, Opening, StoreTask};
use crate::exit::{Exit, Failure};
use clap::Args;
use engine::change_feed::Checkpoint;
use engine::mirror::{self, ModelReport, Progress, RunOptions};
use engine::mirror_store::{MirrorStore, RunStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use odoo_rpc::OdooClient;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The configuration file (seed 003's YAML format; see examples/mirror.yml).
    #[arg(long, short)]
    config: PathBuf,
    /// Mirror only this model.
    #[arg(long)]
    model: Option<String>,
    /// Ignore the saved checkpoints and read everything again (rows are upserted, not duplicated).
    #[arg(long)]
    full: bool,
    /// Check the models against Odoo and print how many records each would fetch; write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Progress bars on a terminal; on anything else the run logs one JSON line per page.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn model_started(&self, model: &str, total: Option<u64>) {
        let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        let style = ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(model.to_owned());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(model.to_owned(), bar);
        }
    }

    fn page_written(&self, report: &ModelReport) {
        if let Some(bar) = self
            .bars
            .lock()
            .ok()
            .and_then(|bars| bars.get(&report.model).cloned())
        {
            if report.fetched > bar.length().unwrap_or(0) {
                bar.set_length(report.fetched);
            }
            bar.set_position(report.fetched);
        }
    }

    fn model_finished(&self, report: &ModelReport) {
        if let Some(bar) = self
            .bars
            .lock()
            .ok()
            .and_then(|bars| bars.get(&report.model).cloned())
        {
            let message = match &report.error {
                Some(error) => format!("FAILED: {error}"),
                None => format!(
                    "done: {} new, {} changed, {} unchanged",
                    report.inserted, report.updated, report.unchanged
                ),
            };
            bar.finish_with_message(message);
        }
    }
}

struct PageLog;

impl Progress for PageLog {
    fn model_started(&self, model: &str, total: Option<u64>) {
        tracing::info!(model, total = total.unwrap_or(0), "model started");
    }

    fn page_written(&self, report: &ModelReport) {
        tracing::info!(model = %report.model, pages = report.pages, fetched = report.fetched, inserted = report.inserted, updated = report.updated, unchanged = report.unchanged, "page written");
    }
}

pub async fn run(args: SyncArgs) -> Result<Exit, Failure> {
    let (loaded, api_key) = target::load(&args.config)?;
    target::check_model(&loaded, args.model.as_deref())?;
    let client = target::client(&loaded, api_key)?;
    let options = RunOptions {
        only_model: args.model.clone(),
        full: args.full,
        use_lock: true,
        retention_days: loaded.config.sync.run_retention_days,
    };
    if args.dry_run {
        return dry_run(&loaded, &client, &options).await;
    }
    let progress = progress_reporter();
    let task = Mirror {
        client: &client,
        models: &loaded.config.models,
        options,
        progress: progress.as_ref(),
    };
    match target::with_store(&loaded, Opening::Migrated, task).await? {
        Some(outcome) => report(outcome),
        None => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!("the store could not be opened"),
        )),
    }
}

/// Progress bars when stderr is a terminal, one JSON log line per page otherwise.
pub fn progress_reporter() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(PageLog)
    }
}

struct Mirror<'a> {
    client: &'a OdooClient,
    models: &'a [engine::config::ModelConfig],
    options: RunOptions,
    progress: &'a dyn Progress,
}

impl StoreTask for Mirror<'_> {
    type Output = Result<mirror::RunReport, mirror::MirrorError>;

    async fn run<S: MirrorStore>(
        mut self,
        store: &S,
        uses_lock: bool,
    ) -> Result<Self::Output, Failure> {
        self.options.use_lock = uses_lock;
        Ok(mirror::run(
            self.client,
            store,
            self.models,
            &self.options,
            self.progress,
        )
        .await)
    }
}

/// Reads the saved checkpoints.
struct Checkpoints<'a> {
    models: &'a [engine::config::ModelConfig],
}

impl StoreTask for Checkpoints<'_> {
    type Output = HashMap<String, Checkpoint>;

    async fn run<S: MirrorStore>(self, store: &S, _: bool) -> Result<Self::Output, Failure> {
        let mut checkpoints = HashMap::new();
        for model in self.models {
            let saved = store
                .checkpoint(&model.name)
                .await
                .map_err(|error| Failure::new(Exit::Failure, error))?;
            if let Some(checkpoint) = saved {
                checkpoints.insert(model.name.clone(), checkpoint);
            }
        }
        Ok(checkpoints)
    }
}

/// `--dry-run`: what a run would fetch per model, from the saved checkpoints; writes no row.
async fn dry_run(
    loaded: &target::Loaded,
    client: &OdooClient,
    options: &RunOptions,
) -> Result<Exit, Failure> {
    let checkpoints = target::with_store(
        loaded,
        Opening::ReadOnly,
        Checkpoints {
            models: &loaded.config.models,
        },
    )
    .await?
    .unwrap_or_default();
    let plans = mirror::plan(client, &loaded.config.models, options, &checkpoints)
        .await
        .map_err(mirror_failure)?;
    say!(
        "dry run: nothing is written to {}",
        target::describe(loaded)
    );
    let failed = print_plans(&plans);
    Ok(if failed == 0 {
        Exit::Success
    } else if failed == plans.len() {
        Exit::Failure
    } else {
        Exit::PartialFailure
    })
}

/// Prints one line per model and its missing fields; returns how many models cannot run.
pub fn print_plans(plans: &[mirror::ModelPlan]) -> usize {
    let mut failed = 0;
    for plan in plans {
        print_missing(&plan.model, &plan.missing_fields);
        match &plan.error {
            Some(error) => {
                failed += 1;
                say!("{:<28} FAILED: {error}", plan.model);
            }
            None => {
                let from = match plan.from {
                    Some(from) => format!("from {}", odoo_rpc::value::format_datetime(from.second)),
                    None => "full backfill".to_owned(),
                };
                say!(
                    "{:<28} {:>8} to fetch ({from})",
                    plan.model,
                    plan.would_fetch
                );
            }
        }
    }
    failed
}

fn print_missing(model: &str, missing: &[(String, Option<String>)]) {
    for (field, suggestion) in missing {
        let hint = suggestion
            .as_ref()
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        say!("warning: {model}.{field} does not exist on this Odoo and was skipped{hint}");
    }
}

pub fn mirror_failure(error: mirror::MirrorError) -> Failure {
    match error {
        mirror::MirrorError::LockBusy => Failure::new(Exit::LockBusy, error),
        mirror::MirrorError::Authentication(error) => Failure::new(Exit::Authentication, error),
        other => Failure::new(Exit::Failure, other),
    }
}

fn report(outcome: Result<mirror::RunReport, mirror::MirrorError>) -> Result<Exit, Failure> {
    let report = outcome.map_err(mirror_failure)?;
    for model in &report.models {
        print_missing(&model.model, &model.missing_fields);
        match &model.error {
            Some(error) => say!("{:<28} FAILED: {error}", model.model),
            None => say!(
                "{:<28} {:>8} fetched {:>8} new {:>8} changed {:>8} unchanged {:>6} deleted",
                model.model,
                model.fetched,
                model.inserted,
                model.updated,
                model.unchanged,
                model.deleted
            ),
        }
    }
    Ok(match report.status {
        RunStatus::Success | RunStatus::Running => Exit::Success,
        RunStatus::Partial => Exit::PartialFailure,
        RunStatus::Failed => Exit::Failure,
    })
}
