//! What enrichment jobs count in `/metrics` (the process's Prometheus recorder).

use super::health;
use super::record::RecordState;

/// Packets sent and what came of them, by job and outcome (`applied`, `failed`).
pub const PACKETS_TOTAL: &str = "odoo_bridge_enrich_packets_total";
/// Failed attempts, by job and failure class.
pub const FAILURES_TOTAL: &str = "odoo_bridge_enrich_failures_total";
/// The job's health score (1 − failing records / 5, floored at 0).
pub const JOB_HEALTH: &str = "odoo_bridge_enrich_job_health";
/// A record's health score (1 − failures / 5), for records that have failed.
pub const RECORD_HEALTH: &str = "odoo_bridge_enrich_record_health";
/// Records the breaker disabled.
pub const DISABLED_RECORDS: &str = "odoo_bridge_enrich_disabled_records";

pub const LABEL_JOB: &str = "job";
pub const LABEL_OUTCOME: &str = "outcome";
pub const LABEL_CLASS: &str = "class";
pub const LABEL_RECORD: &str = "record_id";

pub(crate) fn packet(job: &str, outcome: &'static str) {
    ::metrics::counter!(PACKETS_TOTAL, LABEL_JOB => job.to_owned(), LABEL_OUTCOME => outcome)
        .increment(1);
}

pub(crate) fn failure(job: &str, class: &'static str) {
    ::metrics::counter!(FAILURES_TOTAL, LABEL_JOB => job.to_owned(), LABEL_CLASS => class)
        .increment(1);
}

/// A record's score, once it has failed (records that never failed add no series).
pub(crate) fn record(job: &str, record: &RecordState) {
    ::metrics::gauge!(
        RECORD_HEALTH,
        LABEL_JOB => job.to_owned(),
        LABEL_RECORD => record.record_id.to_string()
    )
    .set(health::record_score(record));
}

/// The job's score and disabled records, from all its records.
pub(crate) fn job(job: &str, records: &[RecordState]) {
    ::metrics::gauge!(JOB_HEALTH, LABEL_JOB => job.to_owned()).set(health::job_score(records));
    let disabled = records.iter().filter(|record| record.disabled()).count();
    ::metrics::gauge!(DISABLED_RECORDS, LABEL_JOB => job.to_owned()).set(disabled as f64);
    for failed in records
        .iter()
        .filter(|record| record.failures > 0 || record.disabled())
    {
        self::record(job, failed);
    }
}
