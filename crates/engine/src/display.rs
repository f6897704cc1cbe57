//! How order delivery's times and states are shown to people, alike in the CLI's tables and
//! in the TUI: `2026-11-23 13:00:54Z`, `12 s ago`, `in 5 min`, the breaker in words.

use crate::store::{BreakerRecord, BreakerStatus, CycleLog, FlowStats};
use jiff::Timestamp;

/// 00:00 UTC of `now`'s day: "today" for the figures of `connections list` and the TUI.
pub fn start_of_day_utc(now: Timestamp) -> Timestamp {
    let second = now.as_second();
    Timestamp::from_second(second - second.rem_euclid(86_400)).unwrap_or(now)
}

/// A time as shown in tables: `2026-11-23 13:00:54Z`.
pub fn time_text(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// How long ago `at` was: `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second() - at.as_second();
    match seconds {
        ..0 => "just now".to_owned(),
        0..60 => format!("{seconds} s ago"),
        60..3_600 => format!("{} min ago", seconds / 60),
        3_600..86_400 => format!("{} h ago", seconds / 3_600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

/// How far ahead `at` is: `now`, `in 30 s`, `in 5 min`, `in 2 h`.
pub fn until(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    match seconds {
        ..1 => "now".to_owned(),
        1..60 => format!("in {seconds} s"),
        60..3_600 => format!("in {} min", seconds / 60),
        _ => format!("in {} h", seconds / 3_600),
    }
}

/// A connection's webhook breaker in words (never by color alone): `closed`,
/// `OPEN until 13:05:00Z (in 42 s)`, `half-open (probing)`. No record means closed.
pub fn breaker_text(record: Option<&BreakerRecord>, now: Timestamp) -> String {
    match record {
        Some(record) if record.status == BreakerStatus::Open => match record.open_until {
            // The cool-down is over: the next packet is the probe.
            Some(until_at) if until_at <= now => "half-open (probe due)".to_owned(),
            Some(until_at) => format!(
                "OPEN until {} ({})",
                time_text(until_at),
                until(until_at, now)
            ),
            None => "OPEN".to_owned(),
        },
        Some(record) if record.status == BreakerStatus::HalfOpen => {
            "half-open (probing)".to_owned()
        }
        _ => "closed".to_owned(),
    }
}

/// The breaker in at most 9 columns, for tables: `closed`, `OPEN 42s`, `OPEN 5m`, `OPEN`,
/// `half-open`. The same reading of the record as [`breaker_text`].
pub fn breaker_short(record: Option<&BreakerRecord>, now: Timestamp) -> String {
    match record {
        Some(record) if record.status == BreakerStatus::Open => {
            match record
                .open_until
                .map(|until| until.as_second() - now.as_second())
            {
                Some(..1) => "half-open".to_owned(),
                Some(seconds @ 1..60) => format!("OPEN {seconds}s"),
                Some(seconds @ 60..3_600) => format!("OPEN {}m", seconds / 60),
                _ => "OPEN".to_owned(),
            }
        }
        Some(record) if record.status == BreakerStatus::HalfOpen => "half-open".to_owned(),
        _ => "closed".to_owned(),
    }
}

/// A packet's sends so far out of the sends it may get: its first send and `max_attempts`
/// retries (`1/6`: sent once, five retries left).
pub fn attempts_text(attempts: u32, max_attempts: u32) -> String {
    format!("{attempts}/{}", max_attempts.saturating_add(1))
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look: packets waiting, a breaker probing.
    Warning,
    /// Something is not getting through: a breaker open, packets given up, a failing cycle.
    Error,
}

/// One thing wrong with a flow, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub text: String,
}

/// What is wrong with a flow right now, worst first; empty when all is well. The one reading
/// of a flow's state that the TUI and `connections list/show` share, so they never disagree:
/// an open breaker (its packets are held back), packets given up, packets waiting, and the
/// flow's newest cycle if it failed.
pub fn problems(
    breaker: Option<&BreakerRecord>,
    stats: &FlowStats,
    newest_cycle: Option<&CycleLog>,
    now: Timestamp,
) -> Vec<Problem> {
    let mut found = Vec::new();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if let Some(record) = breaker.filter(|record| record.status != BreakerStatus::Closed) {
        let held = if stats.pending > 0 {
            format!(
                ": {} packet{} held back",
                stats.pending,
                plural(stats.pending)
            )
        } else {
            String::new()
        };
        found.push(Problem {
            severity: if record.status == BreakerStatus::Open {
                Severity::Error
            } else {
                Severity::Warning
            },
            text: format!("breaker {}{held}", breaker_text(Some(record), now)),
        });
    }
    if let Some(cycle) = newest_cycle {
        if let Some(error) = &cycle.error_message {
            found.push(Problem {
                severity: Severity::Error,
                text: format!("last cycle failed {}: {error}", ago(cycle.started_at, now)),
            });
        } else if cycle.held_back > 0 && breaker.is_none_or(|b| b.status == BreakerStatus::Closed) {
            found.push(Problem {
                severity: Severity::Warning,
                text: format!(
                    "last cycle held {} packet{} back (breaker)",
                    cycle.held_back,
                    plural(cycle.held_back)
                ),
            });
        }
    }
    if stats.failed > 0 {
        found.push(Problem {
            severity: Severity::Error,
            text: format!(
                "{} packet{} FAILED, waiting for a person (retry queue)",
                stats.failed,
                plural(stats.failed)
            ),
        });
    }
    if stats.inbound_failed > 0 {
        found.push(Problem {
            severity: Severity::Error,
            text: format!(
                "{} inbound event{} FAILED, waiting for a person (odoo-bridge inbox)",
                stats.inbound_failed,
                plural(stats.inbound_failed)
            ),
        });
    }
    let breaker_holds = breaker.is_some_and(|b| b.status != BreakerStatus::Closed);
    if stats.pending > 0 && !breaker_holds {
        found.push(Problem {
            severity: Severity::Warning,
            text: format!(
                "{} packet{} waiting to be delivered",
                stats.pending,
                plural(stats.pending)
            ),
        });
    }
    found.sort_by_key(|problem| std::cmp::Reverse(problem.severity));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_in_words() {
        let now = Timestamp::from_second(1_795_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let record = |status: BreakerStatus, open_until: Option<Timestamp>| BreakerRecord {
            flow_id: "c".into(),
            target: "webhook".into(),
            status,
            open_until,
            updated_at: now,
        };
        assert_eq!(breaker_text(None, now), "closed");
        assert_eq!(
            breaker_text(Some(&record(BreakerStatus::Closed, None)), now),
            "closed"
        );
        assert_eq!(
            breaker_text(Some(&record(BreakerStatus::HalfOpen, None)), now),
            "half-open (probing)"
        );
        let until_at = Timestamp::from_second(now.as_second() + 42).unwrap_or(now);
        assert_eq!(
            breaker_text(Some(&record(BreakerStatus::Open, Some(until_at))), now),
            format!("OPEN until {} (in 42 s)", time_text(until_at))
        );
        let passed = Timestamp::from_second(now.as_second() - 1).unwrap_or(now);
        assert_eq!(
            breaker_text(Some(&record(BreakerStatus::Open, Some(passed))), now),
            "half-open (probe due)"
        );
        // The short form reads the record the same way.
        assert_eq!(breaker_short(None, now), "closed");
        assert_eq!(
            breaker_short(Some(&record(BreakerStatus::Open, Some(until_at))), now),
            "OPEN 42s"
        );
        assert_eq!(
            breaker_short(Some(&record(BreakerStatus::Open, Some(passed))), now),
            "half-open"
        );
    }

    #[test]
    fn an_open_breaker_a_queue_and_failures_are_problems() {
        let now = Timestamp::from_second(1_795_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let stats = |pending, failed| FlowStats {
            flow_id: "c".into(),
            delivered_since: 3,
            pending,
            failed,
            ..FlowStats::default()
        };
        let open = BreakerRecord {
            flow_id: "c".into(),
            target: "webhook".into(),
            status: BreakerStatus::Open,
            open_until: Timestamp::from_second(now.as_second() + 42).ok(),
            updated_at: now,
        };
        let quiet = CycleLog {
            flow_id: "c".into(),
            started_at: now,
            found: 3,
            sent: 0,
            failed: 0,
            held_back: 1,
            error_message: None,
            duration_ms: 5,
        };
        assert!(problems(None, &stats(0, 0), None, now).is_empty());
        let found = problems(Some(&open), &stats(25, 0), Some(&quiet), now);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[0].text.contains("OPEN until"), "{found:?}");
        assert!(found[0].text.contains("25 packets held back"), "{found:?}");
        let found = problems(None, &stats(2, 1), Some(&quiet), now);
        let texts: Vec<&str> = found.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "1 packet FAILED, waiting for a person (retry queue)",
                "last cycle held 1 packet back (breaker)",
                "2 packets waiting to be delivered"
            ]
        );
        let mut failed = quiet.clone();
        failed.error_message = Some("Odoo unreachable".into());
        let found = problems(None, &stats(0, 0), Some(&failed), now);
        assert_eq!(found[0].text, "last cycle failed 0 s ago: Odoo unreachable");
        let inbound = FlowStats {
            inbound_pending: 4,
            inbound_failed: 2,
            ..stats(0, 0)
        };
        let found = problems(None, &inbound, None, now);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(
            found[0].text,
            "2 inbound events FAILED, waiting for a person (odoo-bridge inbox)"
        );
    }
}
