//! Where "now" comes from, and how long to wait. Production reads the system clock and sleeps
//! on tokio's timer; tests drive a manual clock, so that a retry schedule of minutes, a lease
//! that runs out or a replica taking over runs in milliseconds, deterministically, without
//! touching the network's timeouts (tokio's paused time would fast-forward those too).
//!
//! Everything in the engine that reads the time or waits for it goes through one [`Clock`]:
//! the runtime's schedules, leases and heartbeats, the dispatcher's retry times, the circuit
//! breakers, the sync log.

use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The time every schedule reads. The default is the system clock.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<watch::Sender<Timestamp>>>,
}

impl Clock {
    /// The system's wall clock: what leases shared between processes must use.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still at `at` until [`Clock::set`] or [`Clock::advance`] moves it;
    /// its sleepers wake when it passes their deadline.
    pub fn manual(at: Timestamp) -> Clock {
        let (sender, _) = watch::channel(at);
        Clock {
            manual: Some(Arc::new(sender)),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(now) => *now.borrow(),
            None => Timestamp::now(),
        }
    }

    /// Moves a manual clock to `at` (no effect on the system clock), waking every sleeper
    /// whose deadline it reaches.
    pub fn set(&self, at: Timestamp) {
        if let Some(now) = &self.manual {
            now.send_replace(at);
        }
    }

    /// Moves a manual clock forward.
    pub fn advance(&self, by: SignedDuration) {
        let now = self.now();
        self.set(now.checked_add(by).unwrap_or(now));
    }

    /// `now + by`, saturating at the end of time.
    pub fn after(&self, by: Duration) -> Timestamp {
        later(self.now(), by)
    }

    /// Waits until `deadline` on this clock.
    pub async fn sleep_until(&self, deadline: Timestamp) {
        match &self.manual {
            Some(now) => {
                let mut receiver = now.subscribe();
                // `wait_for` checks the current value first, then every change.
                let _ = receiver.wait_for(|now| *now >= deadline).await;
            }
            None => {
                let left = deadline.duration_since(Timestamp::now());
                if let Ok(left) = Duration::try_from(left) {
                    tokio::time::sleep(left).await;
                }
            }
        }
    }

    /// Waits for `duration` on this clock.
    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.after(duration)).await;
    }
}

/// `at + by`, saturating at the end of time.
pub fn later(at: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by)
        .ok()
        .and_then(|by| at.checked_add(by).ok())
        .unwrap_or(Timestamp::MAX)
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({})", self.now()),
            None => f.write_str("Clock::system"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_its_sleepers_when_moved_past_their_deadline() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let deadline = start + SignedDuration::from_secs(60);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(deadline).await })
        };
        clock.advance(SignedDuration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(SignedDuration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + SignedDuration::from_secs(60));
        // A deadline already passed returns at once.
        clock.sleep_until(start).await;
    }

    #[tokio::test]
    async fn the_system_clock_sleeps_on_tokios_timer() {
        let clock = Clock::system();
        let before = std::time::Instant::now();
        clock.sleep(Duration::from_millis(5)).await;
        assert!(before.elapsed() >= Duration::from_millis(5));
        assert!(!clock.is_manual());
    }
}
