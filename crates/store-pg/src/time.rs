//! jiff ↔ `timestamptz`, exact to the microsecond.
//!
//! sqlx 0.9 has no jiff support, and going through `time` or `chrono` would add a date
//! library to the workspace for two conversions. So timestamps travel as RFC 3339 text in UTC:
//! written as `'…Z'::timestamptz` (independent of the session's `TimeZone`), read back with
//! `to_char(… AT TIME ZONE 'UTC', …)`. Both directions are exact on every PostgreSQL version,
//! unlike `extract(epoch …)`, which is a `double precision` before PostgreSQL 14.

use engine::mirror_store::StoreError;
use jiff::Timestamp;

/// SQL reading timestamptz column `column` as the text [`parse`] accepts.
macro_rules! ts_text {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    };
}
pub(crate) use ts_text;

/// `timestamp` as text for a `$n::timestamptz` parameter. PostgreSQL keeps microseconds: the
/// nanoseconds beyond are truncated here (toward zero) rather than rounded by the server, so
/// what is read back is predictable.
pub(crate) fn format(timestamp: Timestamp) -> String {
    Timestamp::from_microsecond(timestamp.as_microsecond())
        .unwrap_or(timestamp)
        .to_string()
}

/// Parses the text of [`ts_text!`].
pub(crate) fn parse(text: &str) -> Result<Timestamp, StoreError> {
    text.parse::<Timestamp>().map_err(|error| {
        StoreError::invalid_data(format!("unreadable timestamp {text:?}: {error}"))
    })
}

/// Parses an optional [`ts_text!`] column.
pub(crate) fn parse_opt(text: Option<String>) -> Result<Option<Timestamp>, StoreError> {
    text.as_deref().map(parse).transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn format_truncates_to_microseconds() {
        let timestamp = Timestamp::new(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(format(timestamp), "2023-11-14T22:13:20.123456Z");
        let whole = Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(format(whole), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn parse_reads_to_char_output() {
        let parsed = parse("2023-11-14T22:13:20.123456Z").unwrap();
        assert_eq!(parsed, Timestamp::new(1_700_000_000, 123_456_000).unwrap());
        assert!(parse("garbage").is_err());
    }
}
