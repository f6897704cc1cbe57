//! Enrichment jobs on an interval, for the daemon (`odoo-bridge run --config FILE`): each job
//! runs every `interval_seconds`, one pass at a time; a pass that fails is logged and the job
//! tried again at its next turn.

use super::config::EnrichJob;
use super::runner::Enricher;
use crate::store::EmissionStore;
use crate::webhook::WebhookSecret;
use tokio::sync::watch;
use tokio::time::Instant;

/// Runs `jobs` until `stop` turns true (or its sender is dropped). The first pass of every
/// job starts at once.
pub async fn run_every<S: EmissionStore + Clone>(
    enricher: &Enricher<S>,
    jobs: &[(EnrichJob, Option<WebhookSecret>)],
    mut stop: watch::Receiver<bool>,
) {
    let mut due: Vec<Instant> = vec![Instant::now(); jobs.len()];
    loop {
        for ((job, secret), next) in jobs.iter().zip(due.iter_mut()) {
            if *stop.borrow() {
                return;
            }
            if *next > Instant::now() {
                continue;
            }
            if let Err(error) = enricher.run_job(job, secret.as_ref()).await {
                tracing::error!(job = %job.name, error = %error, "enrichment job failed; tried again at its next turn");
            }
            *next = Instant::now() + job.interval;
        }
        let Some(earliest) = due.iter().min().copied() else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(earliest) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
