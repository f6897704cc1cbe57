//! The emission guard's view of a record, read from the outbox: a job's packets are its
//! emissions (one per job, record and packet version; a forced replay adds the next version
//! of the same subject), so a record's state is its newest packet at the job's packet version.

use crate::store::{Packet, PacketStatus};
use crate::webhook::FailureClass;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fmt;

/// The event of a job's first emission of a record at `packet_version`.
pub fn event(packet_version: &str) -> String {
    format!("enrich.v{packet_version}")
}

/// The event of a forced replay.
pub fn replay_event(packet_version: &str) -> String {
    format!("enrich.v{packet_version}.replay")
}

/// The packet version an event was emitted at; `None` for another flow's event.
pub fn packet_version_of(event: &str) -> Option<&str> {
    let version = event.strip_prefix("enrich.v")?;
    Some(version.strip_suffix(".replay").unwrap_or(version))
}

/// Where a record's emission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmissionState {
    /// Written, not answered yet (or failed and waiting for its retry).
    Pending,
    /// The answer passed its schema and was written back.
    Applied,
    /// The record's breaker stopped it after `max_failures` failed emissions: no longer sent
    /// until a forced replay.
    Disabled,
    /// Discarded by a person (`packets discard`).
    Discarded,
}

impl EmissionState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmissionState::Pending => "pending",
            EmissionState::Applied => "applied",
            EmissionState::Disabled => "disabled",
            EmissionState::Discarded => "discarded",
        }
    }

    fn of(status: PacketStatus) -> EmissionState {
        match status {
            PacketStatus::Pending => EmissionState::Pending,
            PacketStatus::Delivered => EmissionState::Applied,
            PacketStatus::Failed => EmissionState::Disabled,
            PacketStatus::Discarded => EmissionState::Discarded,
        }
    }
}

impl fmt::Display for EmissionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of a job, as its newest emission at the packet version leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordState {
    pub record_id: i64,
    pub model: String,
    pub packet_version: String,
    pub packet_id: String,
    pub payload_hash: String,
    pub state: EmissionState,
    pub failure_class: Option<FailureClass>,
    pub last_error: Option<String>,
    /// Failed attempts of the current emission (0 once its answer is applied).
    pub failures: u32,
    /// Forced replays at this packet version.
    pub replays: u32,
    pub emitted_at: Timestamp,
    pub applied_at: Option<Timestamp>,
    /// The worker sending it right now, while its lease lasts.
    pub leased_by: Option<String>,
    pub lease_until: Option<Timestamp>,
}

impl RecordState {
    pub fn disabled(&self) -> bool {
        self.state == EmissionState::Disabled
    }

    /// Held by a live lease of another worker than `owner` at `now`.
    pub fn held_elsewhere(&self, owner: &str, now: Timestamp) -> bool {
        self.state == EmissionState::Pending
            && self
                .leased_by
                .as_deref()
                .is_some_and(|holder| holder != owner)
            && self.lease_until.is_some_and(|until| until > now)
    }

    fn of(packet: &Packet, packet_version: &str, replays: u32) -> RecordState {
        let state = EmissionState::of(packet.status);
        RecordState {
            record_id: packet.subject.id,
            model: packet.subject.model.clone(),
            packet_version: packet_version.to_owned(),
            packet_id: packet.id.clone(),
            payload_hash: packet.payload_hash.clone(),
            state,
            failure_class: packet.failure_class,
            last_error: packet.last_error.clone(),
            failures: if state == EmissionState::Applied {
                0
            } else {
                packet.attempts
            },
            replays,
            emitted_at: packet.created_at,
            applied_at: packet.delivered_at,
            leased_by: packet.lease_owner.clone(),
            lease_until: packet.lease_until,
        }
    }
}

/// Each record's state at `packet_version`, by record id, from a job's packets (any order).
/// Packets of other packet versions are left out: a new version emits every record anew.
pub fn records(packets: &[Packet], packet_version: &str) -> Vec<RecordState> {
    let mut by_record: BTreeMap<i64, (u32, &Packet)> = BTreeMap::new();
    for packet in packets {
        if packet_version_of(&packet.event) != Some(packet_version) {
            continue;
        }
        by_record
            .entry(packet.subject.id)
            .and_modify(|(count, newest)| {
                *count += 1;
                if packet.version > newest.version {
                    *newest = packet;
                }
            })
            .or_insert((1, packet));
    }
    by_record
        .into_values()
        .map(|(count, newest)| RecordState::of(newest, packet_version, count - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_packet_version_whatever_its_text() {
        assert_eq!(packet_version_of(&event("1")), Some("1"));
        assert_eq!(packet_version_of(&replay_event("2.1")), Some("2.1"));
        assert_eq!(packet_version_of("order.confirmed"), None);
    }
}
