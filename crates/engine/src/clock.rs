//! Where "now" comes from. Production reads the system clock; tests drive a manual one so
//! that a retry schedule of minutes runs in milliseconds without touching the network's
//! timeouts (tokio's paused time would also fast-forward those).

use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<Timestamp>>>,
}

impl Clock {
    /// The system's wall clock: what leases shared between processes must use.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still at `at` until [`Clock::set`] or [`Clock::advance`].
    pub fn manual(at: Timestamp) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(at) => at
                .lock()
                .map(|at| *at)
                .unwrap_or_else(|poisoned| *poisoned.into_inner()),
            None => Timestamp::now(),
        }
    }

    /// Moves a manual clock to `at` (no effect on the system clock).
    pub fn set(&self, at: Timestamp) {
        if let Some(current) = &self.manual
            && let Ok(mut current) = current.lock()
        {
            *current = at;
        }
    }

    /// Moves a manual clock forward.
    pub fn advance(&self, by: SignedDuration) {
        let now = self.now();
        self.set(now.checked_add(by).unwrap_or(now));
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({})", self.now()),
            None => f.write_str("Clock::system"),
        }
    }
}
