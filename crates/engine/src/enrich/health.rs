//! The seed's health score: 1 − failures / 5, floored at 0, per record and per job.

use super::record::{EmissionState, RecordState};

/// Failures that bring a score to 0.
pub const FAILURES_TO_ZERO: u32 = 5;

/// 1 − failures / 5, floored at 0.
pub fn score(failures: u32) -> f64 {
    (1.0 - f64::from(failures) / f64::from(FAILURES_TO_ZERO)).max(0.0)
}

/// A record's score: its emission's failed attempts.
pub fn record_score(record: &RecordState) -> f64 {
    score(record.failures)
}

/// Whether a record is failing now: disabled, or its last attempt failed and no answer has
/// been applied since.
pub fn is_failing(record: &RecordState) -> bool {
    record.disabled() || (record.state == EmissionState::Pending && record.failures > 0)
}

/// A job's score: its failures are the records failing now, so a job recovers as its
/// records do, and five failing records bring it to 0 whatever the job's size.
pub fn job_score<'a>(records: impl IntoIterator<Item = &'a RecordState>) -> f64 {
    let failing = records
        .into_iter()
        .filter(|record| is_failing(record))
        .count();
    score(u32::try_from(failing).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_falls_by_a_fifth_per_failure_and_stops_at_zero() {
        let scores: Vec<f64> = (0..=7).map(score).collect();
        assert_eq!(
            scores,
            [1.0, 0.8, 0.6, 0.4, 0.19999999999999996, 0.0, 0.0, 0.0]
        );
    }
}
