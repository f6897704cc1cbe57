//! Timestamps as stored: RFC 3339 UTC text with exactly six fractional digits, e.g.
//! `2026-11-23T11:12:17.000000Z`. One fixed width means text order is time order, so SQL can
//! compare and sort the column without parsing it.

use engine::mirror_store::StoreError;
use jiff::Timestamp;

pub(crate) fn format_ts(timestamp: Timestamp) -> String {
    // Microseconds are what SQLite's and Postgres' timestamps keep; nothing finer is stored.
    format!("{timestamp:.6}")
}

pub(crate) fn parse_ts(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::invalid_data(format!("stored timestamp {text:?} is invalid: {e}")))
}

pub(crate) fn parse_opt_ts(text: Option<&str>) -> Result<Option<Timestamp>, StoreError> {
    text.map(parse_ts).transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_and_round_trip() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-11-23T11:12:17.123456Z",
            "2026-11-23T11:12:17.5Z",
            "9999-12-30T21:59:59.999999Z",
        ] {
            let timestamp: Timestamp = text.parse().unwrap();
            let stored = format_ts(timestamp);
            assert_eq!(
                stored.len(),
                "2026-11-23T11:12:17.123456Z".len(),
                "{stored}"
            );
            assert_eq!(parse_ts(&stored).unwrap(), timestamp);
        }
    }

    #[test]
    fn sub_microseconds_are_dropped_not_rounded_up_across_seconds() {
        let timestamp: Timestamp = "2026-11-23T11:12:17.999999999Z".parse().unwrap();
        assert_eq!(format_ts(timestamp), "2026-11-23T11:12:17.999999Z");
    }
}
