//! The mirror as a daemon (`odoo-bridge run --config FILE`): each configured model is synced
//! every its `interval_seconds` (default `mirror.interval_seconds`, else 5 minutes), and a
//! model with `hint: true` also within seconds of a change Odoo posts about
//! ([`crate::hints::mirror`]).
//!
//! One cycle syncs the models that are due together, with [`mirror::run`] and its run lock: a
//! run already in progress elsewhere (`odoo-bridge sync` from cron, another daemon) makes this
//! cycle skip, logged, and the models wait for their next turn. A model that fails (or a
//! cycle that fails as a whole) is logged and backs off: its next try waits its interval,
//! then twice that, and so on up to [`MAX_BACKOFF`] (or its interval when that is longer);
//! hints do not cut a backoff short. A successful sync, hinted or not, starts the model's
//! interval again: it did what the interval's would.
//!
//! Hints are followed as a connection's are ([`crate::runtime::hints`]: the same schedule,
//! coalescing and bound), since Odoo posts before its transaction commits: the model is
//! synced at once, then again 0.2, 0.5, 1 and 2 s after the hint, until the hinted record is
//! in the mirror with a `write_date` at least the hint's ([`mirrored`]), or the schedule runs
//! out and the interval is the safety net. On stop, a sync in progress finishes (each page is
//! committed with its checkpoint, but a clean end leaves no run to mark interrupted), then
//! the schedule returns.

use crate::clock::{Clock, later};
use crate::config::{MirrorConfig, ModelConfig};
use crate::mirror::{self, MirrorError, NoProgress, RunOptions};
use crate::mirror_store::{MirrorStore, StoredRecord};
use crate::runtime::hints::{self as hint_queue, Followed, HintCounts, HintQueue, HintedRecord};
use jiff::Timestamp;
use odoo_rpc::OdooClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The longest a failing model waits between tries (unless its interval is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What a mirrored row looked like, enough to tell that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredRow {
    pub write_date: Option<Timestamp>,
    pub content_hash: String,
    pub deleted: bool,
}

impl From<StoredRecord> for MirroredRow {
    fn from(record: StoredRecord) -> MirroredRow {
        MirroredRow {
            write_date: record.write_date,
            content_hash: record.content_hash,
            deleted: record.deleted_at.is_some(),
        }
    }
}

/// Whether a hinted change reached the mirror: the row is there with a `write_date` past the
/// hint's second, or of that second and changed since the hint was first served (Odoo's
/// hint carries microseconds, the mirror whole seconds: a row of the same second may still
/// be the write before). A hint without a `write_date` is seen when the row changed. (Two
/// writes of one record within one second, the second hinted while the first is mirrored,
/// may be taken as seen: the model's interval is the safety net for that.)
pub fn mirrored(now: Option<&MirroredRow>, followed: Followed<'_, MirroredRow>) -> bool {
    let Some(now) = now else {
        return false;
    };
    let changed = matches!(followed.baseline, Some(before) if before != Some(now));
    match (followed.written_at.map(whole_second), now.write_date) {
        (Some(hinted), Some(stored)) if stored > hinted => true,
        (Some(hinted), Some(stored)) if stored == hinted => changed,
        (Some(_), Some(_)) => false,
        _ => changed,
    }
}

fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// The hinted models' hints, shared by the hint route and the schedule. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct MirrorSignals {
    queues: Arc<HashMap<String, Mutex<HintQueue<MirroredRow>>>>,
    notify: Arc<Notify>,
}

impl MirrorSignals {
    /// Signals for the models of `config` with `hint: true`.
    pub fn for_config(config: &MirrorConfig) -> MirrorSignals {
        MirrorSignals {
            queues: Arc::new(
                config
                    .schedule
                    .hinted()
                    .map(|model| (model.name.clone(), Mutex::default()))
                    .collect(),
            ),
            notify: Arc::default(),
        }
    }

    /// Whether `model` takes hints.
    pub fn takes(&self, model: &str) -> bool {
        self.queues.contains_key(model)
    }

    /// The models that take hints.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// Odoo hinted at a change of `model` (of `record` when the body named one, written at
    /// `written_at` when it said) at `now`; `false` when the model takes no hints.
    pub fn hint(
        &self,
        model: &str,
        record: Option<HintedRecord>,
        written_at: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        let Some(queue) = self.queues.get(model) else {
            return false;
        };
        hint_queue::lock(queue).add_written(record, written_at, now);
        self.notify.notify_one();
        true
    }

    /// What became of the model's hints; `None` when it takes none.
    pub fn hint_counts(&self, model: &str) -> Option<HintCounts> {
        self.queues
            .get(model)
            .map(|queue| hint_queue::lock(queue).counts())
    }

    fn next_due(&self, model: &str) -> Option<Timestamp> {
        self.queues
            .get(model)
            .and_then(|queue| hint_queue::lock(queue).next_due())
    }
}

/// Where each model stands.
#[derive(Debug, Clone, Copy)]
struct Turn {
    due_at: Timestamp,
    /// Failures in a row.
    failures: u32,
}

/// How long a model that failed `failures` times in a row waits: its interval, doubled for
/// each failure after the first, up to [`MAX_BACKOFF`] or the interval when that is longer.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    interval
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF.max(interval))
}

/// Runs the mirror of one configuration file on its schedule.
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: MirrorConfig,
    /// Each model's interval, in the order of `config.models`.
    intervals: Vec<Duration>,
    signals: MirrorSignals,
    clock: Clock,
}

impl Scheduler {
    pub fn new(config: MirrorConfig, clock: Clock) -> Scheduler {
        let intervals = config
            .models
            .iter()
            .map(|model| {
                config
                    .schedule
                    .models
                    .iter()
                    .find(|scheduled| scheduled.name == model.name)
                    .map_or(crate::config::DEFAULT_MIRROR_INTERVAL, |scheduled| {
                        scheduled.interval
                    })
            })
            .collect();
        Scheduler {
            signals: MirrorSignals::for_config(&config),
            intervals,
            config,
            clock,
        }
    }

    /// What the hint route hands hints to.
    pub fn signals(&self) -> MirrorSignals {
        self.signals.clone()
    }

    /// Syncs the models on their schedule until `stop` turns true (or its sender is
    /// dropped). Every model's first sync starts at once. `use_lock` is false with
    /// `lock_strategy: none`.
    pub async fn run<S: MirrorStore>(
        &self,
        client: &OdooClient,
        store: &S,
        use_lock: bool,
        mut stop: watch::Receiver<bool>,
    ) {
        let models = &self.config.models;
        let options = RunOptions {
            only_model: None,
            full: false,
            use_lock,
            retention_days: self.config.sync.run_retention_days,
            clock: self.clock.clone(),
        };
        let start = self.clock.now();
        let mut turns = vec![
            Turn {
                due_at: start,
                failures: 0,
            };
            models.len()
        ];
        tracing::info!(
            models = models.len(),
            hinted = self.signals.queues.len(),
            "the mirror's schedule started"
        );
        loop {
            if *stop.borrow() {
                break;
            }
            let now = self.clock.now();
            let due: Vec<usize> = (0..models.len())
                .filter(|&index| {
                    let turn = turns[index];
                    turn.due_at <= now
                        || (turn.failures == 0
                            && self
                                .signals
                                .next_due(&models[index].name)
                                .is_some_and(|due| due <= now))
                })
                .collect();
            if !due.is_empty() {
                self.cycle(client, store, &options, now, &due, &mut turns)
                    .await;
                continue;
            }
            let next = (0..models.len())
                .map(|index| {
                    let turn = turns[index];
                    let hinted = (turn.failures == 0)
                        .then(|| self.signals.next_due(&models[index].name))
                        .flatten();
                    hinted.map_or(turn.due_at, |hinted| hinted.min(turn.due_at))
                })
                .min()
                .unwrap_or(Timestamp::MAX);
            tokio::select! {
                () = self.clock.sleep_until(next) => {}
                () = self.signals.notify.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        tracing::info!("the mirror's schedule stopped");
    }

    /// One sync of the models at `due`, started at `started`, then their next turns (counted
    /// from `started`: a model syncs every interval, however long a sync takes) and their
    /// hints' progress.
    async fn cycle<S: MirrorStore>(
        &self,
        client: &OdooClient,
        store: &S,
        options: &RunOptions,
        started: Timestamp,
        due: &[usize],
        turns: &mut [Turn],
    ) {
        let models = &self.config.models;
        let mut tickets = Vec::new();
        for &index in due {
            let name = &models[index].name;
            if let Some(queue) = self.signals.queues.get(name) {
                let ticket = hint_queue::lock(queue).start_poll(started);
                // A sync on the interval with no hint due serves none: not a hinted sync.
                if ticket.is_empty() {
                    continue;
                }
                let unread = hint_queue::lock(queue).without_baseline(&ticket);
                let found = rows(store, name, &unread).await;
                hint_queue::lock(queue).set_baselines(&found, &unread);
                tickets.push((name, ticket));
            }
        }
        let selected: Vec<ModelConfig> = due.iter().map(|&index| models[index].clone()).collect();
        let outcome = mirror::run(client, store, &selected, options, &NoProgress).await;
        let failed: Vec<bool> = match &outcome {
            Ok(report) => due
                .iter()
                .map(|&index| {
                    report
                        .models
                        .iter()
                        .find(|model| model.model == models[index].name)
                        .is_none_or(|model| model.error.is_some())
                })
                .collect(),
            Err(MirrorError::LockBusy) => {
                tracing::info!(
                    models = %names(&selected),
                    "another mirror run holds the lock (a `sync` from cron, another daemon): this cycle is skipped"
                );
                for &index in due {
                    turns[index].due_at = later(started, self.intervals[index]);
                }
                Vec::new()
            }
            Err(MirrorError::Configuration(problems)) => {
                for problem in problems {
                    tracing::error!(problem = %problem.located(&self.config), "the mirror's configuration does not match this Odoo; nothing was mirrored");
                }
                vec![true; due.len()]
            }
            Err(error) => {
                tracing::error!(models = %names(&selected), error = %error, "the mirror's cycle failed");
                vec![true; due.len()]
            }
        };
        for (&index, failed) in due.iter().zip(failed) {
            let turn = &mut turns[index];
            if failed {
                turn.failures = turn.failures.saturating_add(1);
                let wait = backoff(self.intervals[index], turn.failures);
                tracing::warn!(
                    model = %models[index].name,
                    failures = turn.failures,
                    next_try_in_seconds = wait.as_secs(),
                    "the model's sync failed; it backs off"
                );
                turn.due_at = later(started, wait);
            } else {
                turn.failures = 0;
                turn.due_at = later(started, self.intervals[index]);
            }
        }
        for (name, ticket) in tickets {
            let Some(queue) = self.signals.queues.get(name) else {
                continue;
            };
            let followed = hint_queue::lock(queue).followed_records();
            let found = rows(store, name, &followed).await;
            let mut queue = hint_queue::lock(queue);
            let before = queue.counts();
            queue.finish_poll(&ticket, |record, followed| {
                mirrored(found.get(record), followed)
            });
            let after = queue.counts();
            if after.given_up > before.given_up {
                tracing::debug!(
                    model = %name,
                    given_up = after.given_up - before.given_up,
                    "hinted changes not mirrored within the schedule; the interval's sync will bring them"
                );
            }
        }
    }
}

fn names(models: &[ModelConfig]) -> String {
    models
        .iter()
        .map(|model| model.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mirrored rows of `records` (all of `model`); a store that cannot be read leaves them
/// out, so their hints are followed on the whole schedule.
async fn rows<S: MirrorStore>(
    store: &S,
    model: &str,
    records: &[HintedRecord],
) -> HashMap<HintedRecord, MirroredRow> {
    let mut found = HashMap::new();
    for record in records.iter().filter(|record| record.model == model) {
        match store.record(model, record.id).await {
            Ok(Some(row)) => {
                found.insert(record.clone(), MirroredRow::from(row));
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(model, error = %error, "cannot read the hinted records' mirrored rows");
                break;
            }
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(write_date: &str, hash: &str) -> MirroredRow {
        MirroredRow {
            write_date: Some(write_date.parse().unwrap()),
            content_hash: hash.to_owned(),
            deleted: false,
        }
    }

    fn followed<'a>(
        baseline: Option<Option<&'a MirroredRow>>,
        written_at: Option<&str>,
    ) -> Followed<'a, MirroredRow> {
        Followed {
            baseline,
            written_at: written_at.map(|at| at.parse().unwrap()),
        }
    }

    #[test]
    fn a_hinted_change_is_mirrored_once_its_row_is_at_least_as_new_as_the_hint() {
        let hinted = Some("2026-12-07T03:34:01.269912Z");
        let before = row("2026-12-07T03:34:01Z", "a");
        let same_second_changed = row("2026-12-07T03:34:01Z", "b");
        let later_second = row("2026-12-07T03:34:02Z", "a");
        let older = row("2026-12-07T03:34:00Z", "c");
        assert!(!mirrored(None, followed(Some(None), hinted)));
        assert!(!mirrored(Some(&older), followed(Some(None), hinted)));
        assert!(mirrored(Some(&later_second), followed(None, hinted)));
        // The same second: only once the row changed since the hint was first served.
        assert!(!mirrored(
            Some(&before),
            followed(Some(Some(&before)), hinted)
        ));
        assert!(mirrored(
            Some(&same_second_changed),
            followed(Some(Some(&before)), hinted)
        ));
        assert!(mirrored(Some(&before), followed(Some(None), hinted)));
        assert!(!mirrored(Some(&before), followed(None, hinted)));
        // No write_date in the hint: a change is what counts.
        assert!(mirrored(Some(&older), followed(Some(Some(&before)), None)));
        assert!(!mirrored(
            Some(&before),
            followed(Some(Some(&before)), None)
        ));
    }

    #[test]
    fn a_failing_model_backs_off_from_its_interval_up_to_an_hour() {
        let minute = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(minute, n).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let day = Duration::from_secs(86_400);
        assert_eq!(backoff(day, 5), day, "never shorter than the interval");
        assert_eq!(backoff(minute, u32::MAX).as_secs(), 3600);
    }
}
