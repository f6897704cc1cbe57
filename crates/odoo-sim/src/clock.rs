//! The simulator's clock: real time by default, frozen or shifted by tests so that many
//! calls can land in one second, or at chosen microseconds.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ClockState {
    frozen_at: Option<i64>,
    offset_micros: i64,
}

fn system_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

impl Clock {
    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Now, in microseconds since the epoch (UTC).
    pub fn now_micros(&self) -> i64 {
        let state = *self.state();
        state
            .frozen_at
            .unwrap_or_else(|| system_micros() + state.offset_micros)
    }

    /// Stops time at `micros`; every call until `advance` or `resume` sees that instant.
    pub fn freeze_at(&self, micros: i64) {
        self.state().frozen_at = Some(micros);
    }

    /// Stops time where it is now.
    pub fn freeze(&self) -> i64 {
        let now = self.now_micros();
        self.freeze_at(now);
        now
    }

    /// Moves time forward (frozen or not).
    pub fn advance(&self, by: Duration) {
        let step = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let mut state = self.state();
        match state.frozen_at.as_mut() {
            Some(frozen) => *frozen += step,
            None => state.offset_micros += step,
        }
    }

    /// Lets time run again from the frozen instant.
    pub fn resume(&self) {
        let mut state = self.state();
        if let Some(frozen) = state.frozen_at.take() {
            state.offset_micros = frozen - system_micros();
        }
    }
}
