//! A running process's heartbeat in the store: every process that runs flows (`odoo-bridge
//! run`, the TUI's own poller, `demo`) writes one every few seconds. The other processes on
//! the same store read them to know which replicas are alive (the runtime spreads tenants
//! over them) and whether a daemon runs at all (the TUI shows ATTACHED and starts no poller).
//! A clean shutdown removes the row; a crashed process's row goes stale.

use crate::clock::{self, Clock};
use crate::store::{CoordinationStore, Heartbeat};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;
use tokio::sync::watch;

/// How often a running process writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A heartbeat older than this belongs to a process that is gone (three missed beats).
pub const HEARTBEAT_STALE_AFTER: SignedDuration = SignedDuration::from_secs(15);

/// A worker id unique among the processes sharing a store: host name, process id and a
/// random suffix (`host-4242-9f1c0e2a`).
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "odoo-bridge".to_owned());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

/// Whether `heartbeat` is recent enough at `now` for its process to be running.
pub fn is_fresh(heartbeat: &Heartbeat, now: Timestamp) -> bool {
    now.duration_since(heartbeat.beat_at) <= HEARTBEAT_STALE_AFTER
}

/// Writes `worker_id`'s heartbeat now and every `every` on `clock` until `shutdown` becomes
/// true, then removes it. A failed write is logged and tried again at the next beat.
pub async fn beat<S: CoordinationStore>(
    store: S,
    worker_id: String,
    kind: &'static str,
    clock: Clock,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_at = clock.now();
    loop {
        let beat_at = clock.now();
        let heartbeat = Heartbeat {
            worker_id: worker_id.clone(),
            kind: kind.to_owned(),
            started_at,
            beat_at,
        };
        if let Err(error) = store.record_heartbeat(&heartbeat).await {
            tracing::warn!(error = %error, "cannot write the heartbeat");
        }
        tokio::select! {
            // From the beat's time, not the write's end: a slow write does not skip a beat.
            _ = clock.sleep_until(clock::later(beat_at, every)) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    if let Err(error) = store.remove_heartbeat(&worker_id).await {
        tracing::warn!(error = %error, "cannot remove the heartbeat");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_goes_stale_after_three_missed_beats() {
        let now = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let at = |ago: i64| Heartbeat {
            worker_id: "w".into(),
            kind: "run".into(),
            started_at: now,
            beat_at: now - SignedDuration::from_secs(ago),
        };
        assert!(is_fresh(&at(0), now));
        assert!(is_fresh(&at(15), now));
        assert!(!is_fresh(&at(16), now));
        assert!(worker_id().contains(&std::process::id().to_string()));
    }
}
