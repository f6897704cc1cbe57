//! Store maintenance for the mirror: `migrate`, `prune` and `runs`.

use crate::commands::target::{self, Opening, StoreTask};
use crate::exit::{Exit, Failure};
use clap::Args;
use engine::mirror_store::{MirrorStore, RunRecord};
use jiff::{SignedDuration, Timestamp};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The configuration file naming the store.
    #[arg(long, short)]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The configuration file naming the store.
    #[arg(long, short)]
    config: PathBuf,
    /// Delete runs started more than this many days ago (default: the configuration's
    /// `sync.run_retention_days`, 90 unless set).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    older_than_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The configuration file naming the store.
    #[arg(long, short)]
    config: PathBuf,
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

struct Nothing;

impl StoreTask for Nothing {
    type Output = ();

    async fn run<S: MirrorStore>(self, _: &S, _: bool) -> Result<(), Failure> {
        Ok(())
    }
}

pub async fn migrate(args: MigrateArgs) -> Result<Exit, Failure> {
    let loaded = target::load_for_store(&args.config)?;
    target::with_store(&loaded, Opening::Migrated, Nothing).await?;
    say!("{}: schema up to date", target::describe(&loaded));
    Ok(Exit::Success)
}

struct Prune {
    before: Timestamp,
}

impl StoreTask for Prune {
    type Output = u64;

    async fn run<S: MirrorStore>(self, store: &S, _: bool) -> Result<u64, Failure> {
        store
            .prune_runs(self.before)
            .await
            .map_err(|error| Failure::new(Exit::Failure, error))
    }
}

pub async fn prune(args: PruneArgs) -> Result<Exit, Failure> {
    let loaded = target::load_for_store(&args.config)?;
    let days = args
        .older_than_days
        .unwrap_or(loaded.config.sync.run_retention_days);
    let before = Timestamp::now()
        .checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
        .map_err(|error| Failure::new(Exit::Usage, error))?;
    let pruned = target::with_store(&loaded, Opening::Existing, Prune { before })
        .await?
        .unwrap_or(0);
    say!("deleted {pruned} run(s) started more than {days} days ago");
    Ok(Exit::Success)
}

struct Runs {
    limit: u32,
}

impl StoreTask for Runs {
    type Output = Vec<RunRecord>;

    async fn run<S: MirrorStore>(self, store: &S, _: bool) -> Result<Vec<RunRecord>, Failure> {
        store
            .runs(self.limit)
            .await
            .map_err(|error| Failure::new(Exit::Failure, error))
    }
}

pub async fn runs(args: RunsArgs) -> Result<Exit, Failure> {
    let loaded = target::load_for_store(&args.config)?;
    let runs = target::with_store(&loaded, Opening::Existing, Runs { limit: args.limit })
        .await?
        .unwrap_or_default();
    if args.json {
        for run in &runs {
            say!("{}", run_json(run));
        }
        return Ok(Exit::Success);
    }
    say!(
        "{:>6}  {:<20}  {:>7}  {:<8}  {:>8} {:>8} {:>8} {:>9} {:>7}  error",
        "run",
        "started (UTC)",
        "seconds",
        "status",
        "fetched",
        "new",
        "changed",
        "unchanged",
        "deleted"
    );
    for run in &runs {
        let seconds = run
            .finished_at
            .map(|end| format!("{:.1}", end.duration_since(run.started_at).as_secs_f64()))
            .unwrap_or_else(|| "-".to_owned());
        let row = format!(
            "{:>6}  {:<20}  {:>7}  {:<8}  {:>8} {:>8} {:>8} {:>9} {:>7}  ",
            run.id,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            seconds,
            run.status.as_str(),
            run.fetched,
            run.inserted,
            run.updated,
            run.unchanged,
            run.deleted,
        );
        let errors = error_lines(run.error.as_deref());
        say!(
            "{row}{}",
            errors.first().map(String::as_str).unwrap_or_default()
        );
        for line in errors.iter().skip(1) {
            say!("{:width$}{line}", "", width = row.chars().count());
        }
    }
    Ok(Exit::Success)
}

/// A run's error text as table lines: one per distinct error, naming the models it hit. Runs
/// record it that way; runs of earlier versions joined `model: error` parts with "; ",
/// repeating an error every model shared, and are regrouped the same way when they parse.
fn error_lines(error: Option<&str>) -> Vec<String> {
    let Some(error) = error.map(str::trim).filter(|error| !error.is_empty()) else {
        return Vec::new();
    };
    if error.contains('\n') {
        return error
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let is_model = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    };
    let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
    for part in error.split("; ") {
        match part.split_once(": ") {
            Some((model, text)) if is_model(model) => {
                match grouped.iter_mut().find(|(_, seen)| *seen == text) {
                    Some((models, _)) => models.push(model),
                    None => grouped.push((vec![model], text)),
                }
            }
            // Not the `model: error` shape: shown as it was written.
            _ => return vec![error.to_owned()],
        }
    }
    grouped
        .into_iter()
        .map(|(models, text)| format!("{}: {text}", models.join(", ")))
        .collect()
}

fn run_json(run: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "id": run.id,
        "started_at": run.started_at.to_string(),
        "finished_at": run.finished_at.map(|at| at.to_string()),
        "status": run.status.as_str(),
        "error": run.error,
        "pages": run.pages,
        "fetched": run.fetched,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "deleted": run.deleted,
        "restored": run.restored,
        "heartbeat_at": run.heartbeat_at.map(|at| at.to_string()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::error_lines;

    #[test]
    fn one_line_per_distinct_error() {
        assert!(error_lines(None).is_empty());
        assert_eq!(
            error_lines(Some(
                "sale.order, res.partner: cannot talk to Odoo\ncrm.lead: Odoo access error"
            )),
            [
                "sale.order, res.partner: cannot talk to Odoo",
                "crm.lead: Odoo access error"
            ]
        );
        // As runs of earlier versions wrote it.
        assert_eq!(
            error_lines(Some(
                "sale.order: down; res.partner: down; crm.lead: denied; x.y: down"
            )),
            ["sale.order, res.partner, x.y: down", "crm.lead: denied"]
        );
        assert_eq!(
            error_lines(Some("database unavailable: gone; retry later")),
            ["database unavailable: gone; retry later"]
        );
    }
}
