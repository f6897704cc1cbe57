//! "Poll now" hints (Odoo's automation-rule webhooks, see [`crate::hints`]) as a flow's task
//! schedules them.
//!
//! Odoo posts its webhook **inside the transaction that made the change, before it commits**,
//! so the poll a hint starts at once may not see the change yet. Each hinted record is polled
//! for on a short schedule ([`RETRY_AFTER`]: at once, then 0.2, 0.5, 1 and 2 s after the
//! hint) until a packet newer than the one it had when the hint was first served exists for
//! it (the change was seen), or the schedule runs out (the next regular poll is the safety
//! net). Hints coalesce: one poll serves every hint due, and a second hint for a record
//! restarts that record's schedule (from its 0.2 s step once the record was polled for)
//! instead of adding one.
//!
//! A hint only moves a poll earlier: the poll is the flow's own, writing through the outbox
//! with its cursor, so exactly-once holds whatever the hints.
//!
//! The queue itself does not know what "seen" means: a flow compares packet versions (this
//! module's [`before_poll`] / [`after_poll`]), the mirror compares the mirrored row with the
//! one it had and the hinted `write_date` ([`crate::mirror_schedule`]). Both share the
//! schedule, the coalescing and the bound on followed records.

use crate::store::{OutboxStore, StoreError};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// When, after a hint, the record it names is polled for: at once, then again while the
/// change is not seen (Odoo's transaction may commit a little after its webhook).
pub const RETRY_AFTER: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Records followed one by one at most; beyond, a hint still polls once.
pub const MAX_TRACKED: usize = 256;

/// The record an Odoo webhook names (`_model`, `_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HintedRecord {
    pub model: String,
    pub id: i64,
}

#[derive(Debug, Clone)]
struct Tracked<B> {
    received_at: Timestamp,
    /// Polls done for this hint: the index of its next [`RETRY_AFTER`] step.
    step: usize,
    /// Bumped by each new hint for the record, so a poll that was already running when it
    /// arrived does not count for it.
    generation: u64,
    /// What the record looked like when its first poll started (`Some(None)`: it was not
    /// there); `None` until read.
    baseline: Option<Option<B>>,
    /// The newest `write_date` the hints for this record carried, when their body had one.
    written_at: Option<Timestamp>,
}

/// What is known about a followed record when a poll is done, for the caller to judge
/// whether its change was seen.
#[derive(Debug, Clone, Copy)]
pub struct Followed<'a, B> {
    /// What the record looked like before its first poll: `None` when that was not read,
    /// `Some(None)` when the record was not there.
    pub baseline: Option<Option<&'a B>>,
    /// The newest `write_date` its hints carried.
    pub written_at: Option<Timestamp>,
}

impl<B> Tracked<B> {
    fn due_at(&self) -> Option<Timestamp> {
        RETRY_AFTER
            .get(self.step)
            .map(|after| crate::clock::later(self.received_at, *after))
    }
}

/// What happened to a flow's hints, for logs, `connections show` and the TUI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintCounts {
    pub received: u64,
    /// Polls hints called for (one serves every hint due).
    pub polls: u64,
    /// Hinted changes a poll saw within the schedule.
    pub seen: u64,
    /// Hints whose schedule ran out before their change was seen.
    pub given_up: u64,
    pub last_received_at: Option<Timestamp>,
}

/// The hints of one flow (or one mirrored model) waiting for their polls. `B` is what a
/// record looked like before its first poll: a flow's packet version by default.
#[derive(Debug)]
pub struct HintQueue<B = u32> {
    tracked: BTreeMap<HintedRecord, Tracked<B>>,
    /// A hint naming no record we follow (or beyond [`MAX_TRACKED`]): one poll, when.
    untargeted: Option<Timestamp>,
    generation: u64,
    counts: HintCounts,
}

/// The hints a poll serves, taken when it starts.
#[derive(Debug, Default)]
pub struct PollTicket {
    served: Vec<(HintedRecord, u64)>,
    untargeted: bool,
}

impl PollTicket {
    pub fn is_empty(&self) -> bool {
        self.served.is_empty() && !self.untargeted
    }
}

impl<B> Default for HintQueue<B> {
    fn default() -> Self {
        HintQueue {
            tracked: BTreeMap::new(),
            untargeted: None,
            generation: 0,
            counts: HintCounts::default(),
        }
    }
}

impl<B: Clone> HintQueue<B> {
    /// A hint arrived at `now`, about `record` when the body named one.
    pub fn add(&mut self, record: Option<HintedRecord>, now: Timestamp) {
        self.add_written(record, None, now);
    }

    /// A hint arrived at `now`, about `record` when the body named one, written at
    /// `written_at` when the body said.
    pub fn add_written(
        &mut self,
        record: Option<HintedRecord>,
        written_at: Option<Timestamp>,
        now: Timestamp,
    ) {
        self.counts.received += 1;
        self.counts.last_received_at = Some(now);
        self.generation += 1;
        let generation = self.generation;
        match record {
            Some(record)
                if self.tracked.contains_key(&record) || self.tracked.len() < MAX_TRACKED =>
            {
                let entry = self.tracked.entry(record).or_insert(Tracked {
                    received_at: now,
                    step: 0,
                    generation,
                    baseline: None,
                    written_at: None,
                });
                entry.received_at = now;
                entry.written_at = entry.written_at.max(written_at);
                // A record already polled for is hinted again: its transaction is still
                // writing (Odoo fires once per write; `action_confirm` writes an order about
                // six times), so the next poll waits for the schedule's second step instead
                // of reading again at once.
                entry.step = usize::from(entry.baseline.is_some());
                entry.generation = generation;
            }
            _ => self.untargeted = Some(self.untargeted.map_or(now, |at| at.min(now))),
        }
    }

    /// When the next hinted poll is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.tracked
            .values()
            .filter_map(Tracked::due_at)
            .chain(self.untargeted)
            .min()
    }

    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_due().is_some_and(|due| due <= now)
    }

    pub fn counts(&self) -> HintCounts {
        self.counts
    }

    /// The hints a poll starting at `now` serves.
    pub fn start_poll(&mut self, now: Timestamp) -> PollTicket {
        let served = self
            .tracked
            .iter()
            .filter(|(_, tracked)| tracked.due_at().is_some_and(|due| due <= now))
            .map(|(record, tracked)| (record.clone(), tracked.generation))
            .collect();
        let untargeted = self.untargeted.is_some_and(|at| at <= now);
        if untargeted {
            self.untargeted = None;
        }
        PollTicket { served, untargeted }
    }

    /// Records served by `ticket` whose baseline is still to be read.
    pub(crate) fn without_baseline(&self, ticket: &PollTicket) -> Vec<HintedRecord> {
        ticket
            .served
            .iter()
            .filter(|(record, _)| {
                self.tracked
                    .get(record)
                    .is_some_and(|tracked| tracked.baseline.is_none())
            })
            .map(|(record, _)| record.clone())
            .collect()
    }

    pub(crate) fn set_baselines(
        &mut self,
        found: &HashMap<HintedRecord, B>,
        records: &[HintedRecord],
    ) {
        for record in records {
            if let Some(tracked) = self.tracked.get_mut(record) {
                tracked.baseline = Some(found.get(record).cloned());
            }
        }
    }

    /// The poll of `ticket` is done: its hints move to their next step, those whose change
    /// `seen` says was seen are done, those out of steps are given up.
    pub(crate) fn finish_poll(
        &mut self,
        ticket: &PollTicket,
        seen: impl Fn(&HintedRecord, Followed<'_, B>) -> bool,
    ) {
        self.counts.polls += 1;
        for (record, generation) in &ticket.served {
            if let Some(tracked) = self.tracked.get_mut(record)
                && tracked.generation == *generation
            {
                tracked.step += 1;
            }
        }
        let mut seen_count = 0;
        let mut given_up = 0;
        self.tracked.retain(|record, tracked| {
            let followed = Followed {
                baseline: tracked.baseline.as_ref().map(Option::as_ref),
                written_at: tracked.written_at,
            };
            if seen(record, followed) {
                seen_count += 1;
                return false;
            }
            if tracked.due_at().is_none() {
                given_up += 1;
                return false;
            }
            true
        });
        self.counts.seen += seen_count;
        self.counts.given_up += given_up;
    }

    /// Followed records whose baseline was read.
    fn tracked_records(&self) -> Vec<HintedRecord> {
        self.tracked
            .iter()
            .filter(|(_, tracked)| tracked.baseline.is_some())
            .map(|(record, _)| record.clone())
            .collect()
    }

    /// Every followed record.
    pub(crate) fn followed_records(&self) -> Vec<HintedRecord> {
        self.tracked.keys().cloned().collect()
    }
}

/// A flow's rule: the record has a packet newer than the one it had before its first poll.
fn newer_packet(
    versions: &HashMap<HintedRecord, u32>,
) -> impl Fn(&HintedRecord, Followed<'_, u32>) -> bool {
    |record, followed| match followed.baseline {
        Some(baseline) => versions.get(record).copied() > baseline.copied(),
        None => false,
    }
}

/// The newest packet version of each record, read from the flow's outbox.
async fn versions<S: OutboxStore>(
    store: &S,
    flow_id: &str,
    records: &[HintedRecord],
) -> Result<HashMap<HintedRecord, u32>, StoreError> {
    let mut by_model: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for record in records {
        by_model
            .entry(record.model.as_str())
            .or_default()
            .push(record.id);
    }
    let mut found = HashMap::new();
    for (model, ids) in by_model {
        for packet in store.latest_packets(flow_id, model, &ids).await? {
            found.insert(
                HintedRecord {
                    model: model.to_owned(),
                    id: packet.subject_id,
                },
                packet.version,
            );
        }
    }
    Ok(found)
}

/// Before a hinted poll: reads the baselines of the records it serves for the first time.
pub(crate) async fn before_poll<S: OutboxStore>(
    store: &S,
    flow_id: &str,
    queue: &std::sync::Mutex<HintQueue>,
    ticket: &PollTicket,
) {
    let records = lock(queue).without_baseline(ticket);
    if records.is_empty() {
        return;
    }
    match versions(store, flow_id, &records).await {
        Ok(found) => lock(queue).set_baselines(&found, &records),
        // Without a baseline the record is polled for on the whole schedule: the cost of a
        // store that could not be read, not a loss.
        Err(error) => {
            tracing::warn!(connection_id = flow_id, error = %error, "cannot read the hinted records' packets")
        }
    }
}

/// After a hinted poll: moves the hints on, and drops those whose change was seen.
pub(crate) async fn after_poll<S: OutboxStore>(
    store: &S,
    flow_id: &str,
    queue: &std::sync::Mutex<HintQueue>,
    ticket: &PollTicket,
) {
    let records = lock(queue).tracked_records();
    let found = if records.is_empty() {
        HashMap::new()
    } else {
        match versions(store, flow_id, &records).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(connection_id = flow_id, error = %error, "cannot read the hinted records' packets");
                HashMap::new()
            }
        }
    };
    let mut queue = lock(queue);
    let before = queue.counts();
    queue.finish_poll(ticket, newer_packet(&found));
    let after = queue.counts();
    if after.given_up > before.given_up {
        tracing::debug!(
            connection_id = flow_id,
            given_up = after.given_up - before.given_up,
            "hinted changes not seen within the schedule; the regular poll will find them"
        );
    }
}

pub(crate) fn lock<B>(
    queue: &std::sync::Mutex<HintQueue<B>>,
) -> std::sync::MutexGuard<'_, HintQueue<B>> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn order(id: i64) -> Option<HintedRecord> {
        Some(HintedRecord {
            model: "sale.order".into(),
            id,
        })
    }

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap() + SignedDuration::from_millis(millis)
    }

    fn key(id: i64) -> HintedRecord {
        order(id).unwrap()
    }

    #[test]
    fn a_hint_is_polled_for_on_the_schedule_until_given_up() {
        let mut queue: HintQueue = HintQueue::default();
        queue.add(order(7), at(0));
        let mut polled_at = Vec::new();
        let mut now = at(0);
        while let Some(due) = queue.next_due() {
            now = now.max(due);
            let ticket = queue.start_poll(now);
            assert!(!ticket.is_empty());
            polled_at.push(now);
            queue.set_baselines(&HashMap::new(), &[key(7)]);
            queue.finish_poll(&ticket, newer_packet(&HashMap::new()));
        }
        assert_eq!(
            polled_at,
            [at(0), at(200), at(500), at(1000), at(2000)],
            "at once, then 0.2, 0.5, 1 and 2 s after the hint"
        );
        assert_eq!(queue.counts().given_up, 1);
        assert_eq!(queue.counts().seen, 0);
    }

    #[test]
    fn a_newer_packet_ends_the_schedule() {
        let mut queue: HintQueue = HintQueue::default();
        queue.add(order(7), at(0));
        let ticket = queue.start_poll(at(0));
        queue.set_baselines(&HashMap::from([(key(7), 1)]), &[key(7)]);
        // Not committed yet: still version 1.
        queue.finish_poll(&ticket, newer_packet(&HashMap::from([(key(7), 1)])));
        assert_eq!(queue.next_due(), Some(at(200)));
        let ticket = queue.start_poll(at(200));
        queue.finish_poll(&ticket, newer_packet(&HashMap::from([(key(7), 2)])));
        assert_eq!(queue.next_due(), None);
        assert_eq!(queue.counts().seen, 1);
    }

    #[test]
    fn hints_coalesce_into_one_poll_and_a_repeat_restarts_the_schedule() {
        let mut queue: HintQueue = HintQueue::default();
        for id in 1..=50 {
            queue.add(order(id), at(0));
        }
        queue.add(order(1), at(0));
        let ticket = queue.start_poll(at(0));
        assert_eq!(ticket.served.len(), 50, "one poll serves every hint due");
        assert!(!queue.is_due(at(0)) || queue.next_due() == Some(at(0)));
        queue.set_baselines(&HashMap::new(), &queue.without_baseline(&ticket));
        queue.finish_poll(&ticket, newer_packet(&HashMap::new()));
        assert!(!queue.is_due(at(199)));
        // Record 3 hinted again at 150 ms (its transaction writes again): its schedule
        // restarts from the 0.2 s step, without a poll at once.
        queue.add(order(3), at(150));
        assert!(!queue.is_due(at(150)));
        assert_eq!(
            queue.next_due(),
            Some(at(200)),
            "record 1..50's own next step"
        );
        assert_eq!(queue.tracked[&key(3)].due_at(), Some(at(350)));
        let ticket = queue.start_poll(at(350));
        assert!(ticket.served.contains(&(key(3), queue.generation)));
        assert_eq!(queue.counts().received, 52);
    }

    #[test]
    fn a_hint_arriving_during_a_poll_is_not_served_by_it() {
        let mut queue: HintQueue = HintQueue::default();
        queue.add(order(1), at(0));
        let ticket = queue.start_poll(at(0));
        queue.set_baselines(&HashMap::new(), &[key(1)]);
        queue.add(order(1), at(100));
        queue.finish_poll(&ticket, newer_packet(&HashMap::new()));
        assert_eq!(
            queue.next_due(),
            Some(at(300)),
            "the schedule restarts from the new hint; the running poll may have read too early"
        );
    }

    #[test]
    fn hints_beyond_the_tracked_bound_still_poll_once() {
        let mut queue: HintQueue = HintQueue::default();
        for id in 0..MAX_TRACKED as i64 {
            queue.add(order(id), at(0));
        }
        let ticket = queue.start_poll(at(0));
        queue.set_baselines(&HashMap::new(), &queue.without_baseline(&ticket));
        queue.finish_poll(&ticket, newer_packet(&HashMap::new()));
        queue.add(order(100_000), at(10));
        queue.add(None, at(10));
        assert_eq!(queue.tracked.len(), MAX_TRACKED);
        let ticket = queue.start_poll(at(10));
        assert!(ticket.untargeted);
        assert!(queue.untargeted.is_none());
    }
}
