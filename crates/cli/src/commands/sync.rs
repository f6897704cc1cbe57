//! `odoo-bridge sync`: one mirror run, for cron or a Kubernetes CronJob.

use crate::commands::target::{self, Opening, StoreTask};
use crate::exit::{Exit, Failure, exit_for};
use clap::Args;
use engine::change_feed::Checkpoint;
use engine::config::MirrorConfig;
use engine::mirror::{self, ConfigProblem, ModelReport, Progress, RunOptions};
use engine::mirror_store::{MirrorStore, RunStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
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

/// Records per second, rounded: indicatif's own `{per_sec}` prints four decimals.
fn whole_rate(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.0}/s", state.per_sec());
}

impl Progress for Bars {
    fn model_started(&self, model: &str, total: Option<u64>) {
        let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        let style = ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}",
        )
        .map(|style| style.with_key("rate", whole_rate))
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
            // The total is the model's records from the checkpoint on, counted at the start;
            // records changed during the run are read again and may pass it. The bar shows
            // progress through the model, so it stops at its total (the summary line has the
            // exact counts).
            let total = bar.length().unwrap_or(0);
            bar.set_position(if total > 0 {
                report.fetched.min(total)
            } else {
                report.fetched
            });
        }
    }

    fn model_finished(&self, report: &ModelReport) {
        if let Some(bar) = self
            .bars
            .lock()
            .ok()
            .and_then(|bars| bars.get(&report.model).cloned())
        {
            if let Some(total) = bar.length() {
                bar.set_position(total);
            }
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
        ..RunOptions::default()
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
        Some(Err(mirror::MirrorError::Configuration(problems))) => Err(configuration_failure(
            &loaded.config,
            &problems,
            "; nothing was mirrored",
        )),
        Some(outcome) => report(outcome),
        None => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!("the store could not be opened"),
        )),
    }
}

/// The configuration's problems with this Odoo, each on the line of the file to fix: the
/// same text and exit code (3) from `sync`, `sync --dry-run` and `config check`.
pub fn configuration_failure(
    config: &MirrorConfig,
    problems: &[ConfigProblem],
    consequence: &str,
) -> Failure {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| problem.located(config).to_string())
        .collect();
    Failure::new(
        Exit::Config,
        anyhow::anyhow!(
            "{} does not match this Odoo{consequence}:\n  {}",
            config.path.display(),
            lines.join("\n  ")
        ),
    )
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
pub struct Checkpoints<'a> {
    pub models: &'a [engine::config::ModelConfig],
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

/// `--dry-run`: what a run would fetch per model, from the saved checkpoints; creates and
/// writes nothing (a store that does not exist yet means a full backfill).
async fn dry_run(
    loaded: &target::Loaded,
    client: &OdooClient,
    options: &RunOptions,
) -> Result<Exit, Failure> {
    let checkpoints = target::with_store(
        loaded,
        Opening::IfPresent,
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
    print_plans(&plans);
    plans_verdict(&loaded.config, &plans)
}

/// Prints one line per model, after the fields it reads without (one warning each).
pub fn print_plans(plans: &[mirror::ModelPlan]) {
    for plan in plans {
        for left_out in &plan.left_out {
            say!("warning: {left_out}");
        }
        if !plan.problems.is_empty() {
            say!(
                "{:<28} REFUSED: {} problem(s) in the configuration",
                plan.model,
                plan.problems.len()
            );
        } else if let Some(error) = &plan.error {
            say!("{:<28} FAILED: {error}", plan.model);
        } else {
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

/// The exit code of a check: the configuration's problems first (3, as `sync` would refuse
/// to run), then models Odoo failed to answer for (1 when all failed, 8 when some did).
pub fn plans_verdict(config: &MirrorConfig, plans: &[mirror::ModelPlan]) -> Result<Exit, Failure> {
    let problems: Vec<ConfigProblem> = plans
        .iter()
        .flat_map(|plan| plan.problems.iter().cloned())
        .collect();
    if !problems.is_empty() {
        return Err(configuration_failure(config, &problems, ""));
    }
    let failed = plans.iter().filter(|plan| plan.error.is_some()).count();
    Ok(if failed == 0 {
        Exit::Success
    } else if failed == plans.len() {
        every_model_failed(plans.iter().map(|plan| plan.odoo_error.as_ref()))
    } else {
        Exit::PartialFailure
    })
}

/// The exit code when every model failed: the code of their Odoo error when they all had one
/// of the same code (5 when Odoo could not be reached after the retries, 6 when it answered
/// with an error), else 1. Cron and Kubernetes users alert on 5 apart from the others, so an
/// unreachable Odoo must not end as the catch-all 1.
fn every_model_failed<'a>(errors: impl Iterator<Item = Option<&'a odoo_rpc::Error>>) -> Exit {
    let mut exits = errors.map(|error| error.map(exit_for));
    match exits.next().flatten() {
        Some(first) if exits.all(|exit| exit == Some(first)) => first,
        _ => Exit::Failure,
    }
}

pub fn mirror_failure(error: mirror::MirrorError) -> Failure {
    match error {
        mirror::MirrorError::LockBusy => Failure::new(Exit::LockBusy, error),
        mirror::MirrorError::Authentication(error) => Failure::new(Exit::Authentication, error),
        mirror::MirrorError::Configuration(_) => Failure::new(Exit::Config, error),
        other => Failure::new(Exit::Failure, other),
    }
}

fn report(outcome: Result<mirror::RunReport, mirror::MirrorError>) -> Result<Exit, Failure> {
    let report = outcome.map_err(mirror_failure)?;
    // Fields left out were logged (one warning each) by the run: this is the run's output.
    for model in &report.models {
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
        // A run never ends interrupted itself: only a later run marks it so.
        RunStatus::Failed | RunStatus::Interrupted => {
            every_model_failed(report.models.iter().map(|model| model.odoo_error.as_ref()))
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use indicatif::ProgressDrawTarget;

    fn bars() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(bars: &Bars, model: &str) -> ProgressBar {
        bars.bars.lock().unwrap().get(model).cloned().unwrap()
    }

    #[test]
    fn the_bar_counts_the_models_records_and_never_passes_its_total() {
        let bars = bars();
        bars.model_started("res.partner", Some(100));
        let mut report = ModelReport {
            model: "res.partner".into(),
            fetched: 60,
            ..ModelReport::default()
        };
        bars.page_written(&report);
        assert_eq!(
            (
                bar(&bars, "res.partner").position(),
                bar(&bars, "res.partner").length()
            ),
            (60, Some(100))
        );
        // Records changed during the run are read again: the total stays the model's.
        report.fetched = 130;
        bars.page_written(&report);
        assert_eq!(
            (
                bar(&bars, "res.partner").position(),
                bar(&bars, "res.partner").length()
            ),
            (100, Some(100))
        );
        bars.model_finished(&report);
        assert!(bar(&bars, "res.partner").is_finished());
    }

    /// A terminal that keeps what indicatif writes.
    #[derive(Debug, Clone, Default)]
    struct Screen(std::sync::Arc<Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write_str(line)
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(text);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn when_every_model_failed_alike_the_exit_code_is_that_failures() {
        let refused = odoo_rpc::Error::Transport {
            kind: odoo_rpc::TransportKind::Connect,
            message: "connection refused".into(),
        };
        let bad_gateway = odoo_rpc::Error::Http {
            status: 502,
            retry_after: None,
            body_excerpt: String::new(),
        };
        let malformed = odoo_rpc::Error::MalformedResponse {
            message: "truncated".into(),
            excerpt: String::new(),
        };
        let exit = |errors: &[Option<&odoo_rpc::Error>]| every_model_failed(errors.iter().copied());
        assert_eq!(exit(&[Some(&refused), Some(&refused)]), Exit::Unreachable);
        // A 502 on one model and a refused connection on another: both "unreachable".
        assert_eq!(
            exit(&[Some(&refused), Some(&bad_gateway)]),
            Exit::Unreachable
        );
        assert_eq!(exit(&[Some(&malformed)]), Exit::OdooError);
        assert_eq!(exit(&[Some(&refused), Some(&malformed)]), Exit::Failure);
        // A failure that was not Odoo's (the feed, a reader task) has no code of its own.
        assert_eq!(exit(&[Some(&refused), None]), Exit::Failure);
        assert_eq!(exit(&[None]), Exit::Failure);
    }

    #[test]
    fn the_rate_is_a_whole_number_of_records_per_second() {
        let screen = Screen::default();
        let bars = Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(
                screen.clone(),
            ))),
            bars: Mutex::new(HashMap::new()),
        };
        bars.model_started("res.partner", Some(1000));
        let report = ModelReport {
            model: "res.partner".into(),
            fetched: 999,
            ..ModelReport::default()
        };
        bars.page_written(&report);
        bars.model_finished(&report);
        let shown = screen.0.lock().unwrap().clone();
        let rate = shown
            .split_whitespace()
            .find(|word| word.ends_with("/s"))
            .unwrap_or_else(|| panic!("no rate in {shown:?}"));
        assert!(
            rate.trim_end_matches("/s")
                .chars()
                .all(|c| c.is_ascii_digit()),
            "{shown:?}"
        );
    }
}
