//! How order delivery's times and states are shown to people, alike in the CLI's tables and
//! in the TUI: `2026-11-23 13:00:54Z`, `12 s ago`, `in 5 min`, the breaker in words.

use crate::store::{BreakerRecord, BreakerStatus};
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
    }
}
