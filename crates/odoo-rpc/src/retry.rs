//! When to try a failed call again, and how long to wait first.

use rand::{Rng, RngExt};
use std::time::{Duration, SystemTime};

/// Exponential backoff with full jitter, overridden by the server's `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// The ceiling of the first retry's delay; it doubles per retry.
    pub base_delay: Duration,
    /// The highest ceiling the doubling reaches.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a server asking for more waits this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The pause before retry number `attempt` (0 for the first retry). Without a server hint
    /// it is uniform in `[0, min(max_delay, base_delay · 2^attempt)]` ("full jitter", so that
    /// clients failing together do not come back together). With a `Retry-After` it is that
    /// value capped at `max_retry_after`, never shortened by jitter: the server said when.
    pub fn delay_for<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        if let Some(requested) = retry_after {
            return requested.min(self.max_retry_after);
        }
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=ceiling_nanos))
    }
}

/// Parses a `Retry-After` header: delta-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`). A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of seconds still means "a long time", not "malformed".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..12 {
            let ceiling = policy
                .base_delay
                .saturating_mul(1 << attempt)
                .min(policy.max_delay);
            let mut largest = Duration::ZERO;
            for _ in 0..200 {
                let delay = policy.delay_for(attempt, None, &mut rng);
                assert!(
                    delay <= ceiling,
                    "attempt {attempt}: {delay:?} > {ceiling:?}"
                );
                largest = largest.max(delay);
            }
            // Jitter spreads over the whole range, not just its bottom.
            assert!(largest > ceiling / 2, "attempt {attempt}: {largest:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert!(policy.delay_for(u32::MAX, None, &mut rng) <= policy.max_delay);
    }

    #[test]
    fn retry_after_is_honoured_and_capped_not_jittered() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            assert_eq!(
                policy.delay_for(0, Some(Duration::from_secs(7)), &mut rng),
                Duration::from_secs(7)
            );
        }
        assert_eq!(
            policy.delay_for(0, Some(Duration::from_secs(3600)), &mut rng),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Wed, 32 Oct 2015 07:00:00 GMT", now),
            None
        );
    }
}
