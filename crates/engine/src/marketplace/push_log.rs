//! A sync-log row per status pushed to the marketplace (an acknowledgement belongs to its
//! order's import row): direction
//! outbound, the status pushed, the response time, the retries before it, and the error,
//! keyed `packet:{packet id}` so that a packet's retries rewrite its one row.
//!
//! The flow's sender writes each attempt's row at once; a row the store fails to take is kept
//! in memory ([`PushLog`]) and written by the flow's next poll. The outbox's attempt history
//! keeps every attempt durably all the same.

use super::log::{entry, millis};
use crate::store::{LogDirection, LogEntry, LogOutcome, Packet, Store, StoreError};
use crate::webhook::{Delivered, DeliveryError};
use jiff::Timestamp;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Rows kept at most between two polls; beyond, the oldest are dropped (with a warning): a
/// flow whose polls keep failing must not grow without bound.
pub const MAX_PENDING_ROWS: usize = 10_000;

/// The log key of a packet's pushes.
pub fn push_key(packet_id: &str) -> String {
    format!("packet:{packet_id}")
}

/// The row of one attempt to send `packet`.
pub fn push_entry(
    packet: &Packet,
    result: &Result<Delivered, DeliveryError>,
    elapsed: Duration,
    at: Timestamp,
) -> LogEntry {
    let status = packet
        .event
        .strip_prefix("status.")
        .unwrap_or(packet.event.as_str());
    let outcome = match result {
        Ok(_) => LogOutcome::Success,
        // The dispatcher gives up on a permanent failure, or once the retries are spent.
        Err(error) if error.permanent || packet.attempts >= packet.max_attempts => {
            LogOutcome::Failed
        }
        Err(_) => LogOutcome::Retrying,
    };
    let action = if status == "synced" { "ack" } else { "status" };
    let mut row = entry(
        &packet.flow_id,
        push_key(&packet.id),
        LogDirection::Outbound,
        packet.reference.as_deref().unwrap_or_default(),
        action,
        outcome,
        at,
    );
    row.odoo_order_id = Some(packet.subject.id);
    row.marketplace_status = Some(status.to_owned());
    row.response_time_ms = Some(millis(elapsed));
    row.retries = packet.attempts;
    if let Err(error) = result {
        row.error_code = Some(error.class.as_str().to_owned());
        row.error_text = Some(error.message.clone());
    }
    row
}

/// Rows waiting for the next poll.
#[derive(Debug, Default)]
pub struct PushLog {
    pending: Mutex<Vec<LogEntry>>,
}

impl PushLog {
    pub fn push(&self, row: LogEntry) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING_ROWS {
            tracing::warn!(connection_id = %row.flow_id,
                "marketplace push log: too many rows waiting for a poll; the oldest is dropped");
            pending.remove(0);
        }
        pending.push(row);
    }

    /// Writes the waiting rows; those not written (the store failed) wait for the next poll.
    pub async fn flush<S: Store>(&self, store: &S) -> Result<usize, StoreError> {
        let rows =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut written = 0;
        for (index, row) in rows.iter().enumerate() {
            if let Err(error) = store.record_log(row).await {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                let mut rest: Vec<LogEntry> = rows[index..].to_vec();
                rest.append(&mut pending);
                *pending = rest;
                return Err(error);
            }
            written += 1;
        }
        Ok(written)
    }
}
