//! When a packet that failed is sent again, and when it is given up.
//!
//! The seed's schedule: a packet whose first send fails enters the retry queue with
//! `attempts = 0` and is due `30 s × 2^attempts` later, capped at 600 s; each failed retry
//! increments `attempts`; when `attempts` reaches 5 the packet is `FAILED` and stays for a
//! person to act. So the nominal waits are 30 s, 1 min, 2 min, 4 min, 8 min (the seed's
//! docstring), and a packet is sent at most six times: once, then five retries.
//!
//! On top of that:
//!
//! - **Equal jitter** by default: each wait is drawn uniformly from the upper half of its
//!   nominal value, `[d/2, d]` (15–30 s, 30–60 s, …, 240–480 s), so that packets that failed
//!   together (a receiver that was down) do not all come back in the same second, while a
//!   wait is never longer than the seed's and never shorter than half of it. [`Jitter::Full`]
//!   (`[0, d]`) and [`Jitter::None`] are there for whoever prefers them.
//! - The receiver's `Retry-After` wins when it is longer than the drawn wait (it is already
//!   clamped by the sender); a shorter one changes nothing.
//! - A permanent failure (410 Gone, most 4xx) is given up at once.
//!
//! Everything here is pure: the randomness comes from the caller's RNG, so a seeded RNG gives
//! the same schedule every time.

use super::failure::DeliveryError;
use rand::{Rng, RngExt};
use std::time::Duration;

/// How the nominal wait is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly the nominal wait.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`.
    #[default]
    Equal,
}

/// The retry queue's schedule. `Default` is the seed's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The nominal wait after the first failure; it doubles with every failed retry.
    pub base_delay: Duration,
    /// The longest nominal wait.
    pub max_delay: Duration,
    /// Retries after the first send; a packet with this many failed retries is `FAILED`.
    pub max_attempts: u32,
    pub jitter: Jitter,
    /// An explicit pattern of nominal waits instead of doubling: the `n`-th retry waits
    /// `steps[n]`, the last one repeating (a marketplace's `60 s, 180 s, 600 s`). Empty:
    /// doubling from `base_delay`.
    pub steps: &'static [Duration],
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
            max_attempts: 5,
            jitter: Jitter::Equal,
            steps: &[],
        }
    }
}

/// What to do with a packet after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send it again after this long.
    RetryIn(Duration),
    /// Mark it `FAILED`.
    GiveUp(GiveUpReason),
}

/// Why a packet is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The failure cannot be cured by sending again.
    Permanent,
    /// `max_attempts` retries failed.
    Exhausted,
}

impl RetrySchedule {
    /// The wait before the next retry of a packet with `attempts` failed retries, before
    /// jitter: the pattern's step, else `min(base_delay × 2^attempts, max_delay)`.
    pub fn nominal_delay(&self, attempts: u32) -> Duration {
        if let Some(last) = self.steps.last() {
            let index = usize::try_from(attempts).unwrap_or(usize::MAX);
            return self.steps.get(index).copied().unwrap_or(*last);
        }
        let factor = 1u32.checked_shl(attempts).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before the next retry: the nominal wait with jitter, or `retry_after` when
    /// that is longer.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        let nominal = self.nominal_delay(attempts);
        let nanos = u64::try_from(nominal.as_nanos()).unwrap_or(u64::MAX);
        let jittered = match self.jitter {
            Jitter::None => nominal,
            Jitter::Full => Duration::from_nanos(rng.random_range(0..=nanos)),
            Jitter::Equal => {
                let half = nanos / 2;
                Duration::from_nanos(nanos - half + rng.random_range(0..=half))
            }
        };
        match retry_after {
            Some(asked) if asked > jittered => asked,
            _ => jittered,
        }
    }

    /// What to do after a failed send of a packet that had `attempts` failed retries before
    /// it (0 after its first send). The caller stores `attempts + 1` when it retries.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempts: u32,
        error: &DeliveryError,
        rng: &mut R,
    ) -> RetryDecision {
        if error.permanent {
            RetryDecision::GiveUp(GiveUpReason::Permanent)
        } else if attempts >= self.max_attempts {
            RetryDecision::GiveUp(GiveUpReason::Exhausted)
        } else {
            RetryDecision::RetryIn(self.delay(attempts, error.retry_after, rng))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::webhook::failure::FailureClass;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn failure(retry_after: Option<Duration>, permanent: bool) -> DeliveryError {
        DeliveryError {
            class: FailureClass::Http5xx,
            status: Some(503),
            retry_after,
            permanent,
            message: "down".to_owned(),
        }
    }

    /// Follows one packet through the queue: the waits it gets, and how it ends.
    fn run(
        schedule: &RetrySchedule,
        error: &DeliveryError,
        seed: u64,
    ) -> (Vec<Duration>, GiveUpReason) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut waits = Vec::new();
        let mut attempts = 0;
        loop {
            match schedule.decide(attempts, error, &mut rng) {
                RetryDecision::RetryIn(wait) => {
                    waits.push(wait);
                    attempts += 1;
                }
                RetryDecision::GiveUp(reason) => return (waits, reason),
            }
        }
    }

    #[test]
    fn without_jitter_it_is_the_seeds_schedule() {
        let schedule = RetrySchedule {
            jitter: Jitter::None,
            ..RetrySchedule::default()
        };
        let (waits, end) = run(&schedule, &failure(None, false), 1);
        assert_eq!(waits, [secs(30), secs(60), secs(120), secs(240), secs(480)]);
        assert_eq!(end, GiveUpReason::Exhausted);
        let nominal: Vec<Duration> = (0..8).map(|a| schedule.nominal_delay(a)).collect();
        assert_eq!(nominal, [30, 60, 120, 240, 480, 600, 600, 600].map(secs));
        assert_eq!(schedule.nominal_delay(u32::MAX), secs(600));
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half_and_is_deterministic() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.jitter, Jitter::Equal);
        for seed in 0..200 {
            let (waits, end) = run(&schedule, &failure(None, false), seed);
            assert_eq!(end, GiveUpReason::Exhausted);
            assert_eq!(waits.len(), 5);
            for (attempts, wait) in waits.iter().enumerate() {
                let nominal = schedule.nominal_delay(u32::try_from(attempts).unwrap());
                assert!(
                    *wait <= nominal && *wait >= nominal / 2,
                    "{wait:?} vs {nominal:?}"
                );
            }
            assert_eq!(run(&schedule, &failure(None, false), seed).0, waits);
        }
        // Different seeds spread the waits.
        let first: Vec<Duration> = (0..20)
            .map(|seed| run(&schedule, &failure(None, false), seed).0[0])
            .collect();
        assert!(first.iter().any(|w| *w != first[0]));
    }

    #[test]
    fn full_jitter_stays_under_the_nominal_wait() {
        let schedule = RetrySchedule {
            jitter: Jitter::Full,
            ..RetrySchedule::default()
        };
        let mut rng = StdRng::seed_from_u64(9);
        for attempts in 0..10 {
            for _ in 0..50 {
                assert!(
                    schedule.delay(attempts, None, &mut rng) <= schedule.nominal_delay(attempts)
                );
            }
        }
    }

    #[test]
    fn a_longer_retry_after_wins_a_shorter_one_does_not() {
        let schedule = RetrySchedule::default();
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            schedule.decide(0, &failure(Some(secs(90)), false), &mut rng),
            RetryDecision::RetryIn(secs(90))
        );
        match schedule.decide(3, &failure(Some(secs(90)), false), &mut rng) {
            RetryDecision::RetryIn(wait) => assert!(wait >= secs(120) && wait <= secs(240)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pattern_replaces_doubling_and_its_last_step_repeats() {
        const PATTERN: [Duration; 3] = [secs(60), secs(180), secs(600)];
        let schedule = RetrySchedule {
            max_attempts: 3,
            jitter: Jitter::None,
            steps: &PATTERN,
            ..RetrySchedule::default()
        };
        let (waits, end) = run(&schedule, &failure(None, false), 1);
        assert_eq!(waits, PATTERN);
        assert_eq!(end, GiveUpReason::Exhausted);
        assert_eq!(schedule.nominal_delay(7), secs(600));
    }

    #[test]
    fn permanent_failures_are_given_up_at_once() {
        let (waits, end) = run(&RetrySchedule::default(), &failure(None, true), 1);
        assert!(waits.is_empty());
        assert_eq!(end, GiveUpReason::Permanent);
    }
}
