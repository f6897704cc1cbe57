//! The marketplace sync log's rows as the flow writes them: one per event, keyed so that a
//! retried event rewrites its row (see [`LogEntry::event_key`]).

use crate::store::{LogDirection, LogEntry, LogOutcome};
use jiff::Timestamp;
use std::time::Duration;

/// The key of an order's import: one row per order, whatever the number of passes that
/// tried it (a refused order tried again and imported ends as one success).
pub fn import_key(hashed_id: &str) -> String {
    format!("import:{hashed_id}")
}

/// The key of an inbound event (its number in the inbox).
pub fn inbox_key(inbound_event_id: i64) -> String {
    format!("inbox:{inbound_event_id}")
}

/// A row with nothing but who, what and how it ended; the caller fills in the rest.
pub fn entry(
    flow_id: &str,
    event_key: String,
    direction: LogDirection,
    hashed_id: &str,
    action: &str,
    outcome: LogOutcome,
    at: Timestamp,
) -> LogEntry {
    LogEntry {
        flow_id: flow_id.to_owned(),
        event_key,
        direction,
        hashed_id: hashed_id.to_owned(),
        odoo_order_id: None,
        action: action.to_owned(),
        outcome,
        marketplace_status: None,
        odoo_order_state: None,
        odoo_delivery_state: None,
        response_time_ms: None,
        retries: 0,
        error_code: None,
        error_text: None,
        at,
    }
}

/// Milliseconds, saturating.
pub fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
