//! A circuit breaker per webhook target, so that a receiver that is down is not hammered
//! by every packet of every connection pointing at it, and its packets wait instead of
//! burning their retries.
//!
//! A target is a key: the webhook URL's origin ([`target_key`]: scheme, host and port, so
//! two paths on one server share a breaker) or any string the caller chooses.
//!
//! - **Closed** (normal): every send goes. After `failure_threshold` consecutive failures
//!   (default 5) it opens.
//! - **Open** until `until`: sends are refused ([`Refused`]); the caller leaves the packet
//!   queued without counting an attempt.
//! - **Half-open**, once the cool-down (default 60 s) is over: exactly one send, the probe,
//!   is let through; the others are refused until it reports. A probe that succeeds closes
//!   the breaker; one that fails opens it again for a cool-down twice as long as the last,
//!   up to `max_cool_down` (default 10 min; set it to `cool_down` for a fixed cool-down).
//!
//! Only failures that say something about the target count: `network_error`, `timeout`,
//! `http_5xx` and `rate_limited`. A 4xx means the receiver is up and refused *our packet*
//! (a payload it does not accept, a 410 for a removed endpoint): it counts as an answer, like
//! a success, so one bad packet cannot cut a healthy receiver off from every other packet.
//! `schema_error` and `odoo_error` are raised before anything is sent and change nothing.
//!
//! Results of sends let through while the breaker was closed that arrive after it opened
//! are stale and ignored; only the probe decides. A [`Permit`] dropped without a result
//! (its task was cancelled) frees the probe slot.
//!
//! The breaker is shared by many tasks (`Clone` shares the state) and reads time from the
//! engine's [`Clock`]: the system clock, or a manual one in tests.

use super::failure::{DeliveryError, FailureClass, TargetHealth};
use crate::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// When a [`CircuitBreaker`] opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// The first cool-down after opening.
    pub cool_down: Duration,
    /// The longest cool-down; each failed probe doubles the last one up to this.
    pub max_cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(600),
        }
    }
}

/// A target's state, as the CLI and the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Sends go.
    Closed,
    /// Sends are refused until `until`.
    Open { until: Timestamp },
    /// The cool-down is over: the next send is the probe, or the probe is out.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`, for metrics labels and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// One target's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSnapshot {
    pub key: String,
    pub state: BreakerState,
    /// Consecutive failures while closed.
    pub consecutive_failures: u32,
    /// The cool-down the breaker opened (or will open) with.
    pub cool_down: Duration,
}

/// A send refused because the target's breaker is open, or its probe is out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the circuit breaker for {key} is open")]
pub struct Refused {
    pub key: String,
    /// When a probe will be let through; `None` while a probe is out (ask again after it).
    pub retry_at: Option<Timestamp>,
}

/// Circuit breakers for every target, behind one lock held for a few instructions.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    config: BreakerConfig,
    clock: Clock,
    targets: Mutex<HashMap<String, Target>>,
}

/// A target that is not closed with zero failures. Healthy targets have no entry.
#[derive(Debug, Clone, Copy)]
struct Target {
    state: State,
    cool_down: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Timestamp },
    HalfOpen { probing: bool },
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("config", &self.inner.config)
            .field("targets", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Breakers on the system clock.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker::with_clock(config, Clock::system())
    }

    /// Breakers on the given clock.
    pub fn with_clock(config: BreakerConfig, clock: Clock) -> Self {
        CircuitBreaker {
            inner: Arc::new(Inner {
                config,
                clock,
                targets: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Asks to send to `key`. The permit must be told the outcome
    /// ([`Permit::record`]); dropping it says nothing.
    pub fn try_acquire(&self, key: &str) -> Result<Permit, Refused> {
        let now = self.now();
        let mut targets = self.lock();
        let Some(target) = targets.get_mut(key) else {
            return Ok(self.permit(key, false));
        };
        match target.state {
            State::Closed { .. } => Ok(self.permit(key, false)),
            State::Open { until } if now < until => Err(Refused {
                key: key.to_owned(),
                retry_at: Some(until),
            }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                target.state = State::HalfOpen { probing: true };
                tracing::info!(
                    target_key = key,
                    "circuit breaker half-open: sending a probe"
                );
                Ok(self.permit(key, true))
            }
            State::HalfOpen { probing: true } => Err(Refused {
                key: key.to_owned(),
                retry_at: None,
            }),
        }
    }

    /// The state of `key`'s breaker.
    pub fn state(&self, key: &str) -> BreakerState {
        let now = self.now();
        self.lock()
            .get(key)
            .map_or(BreakerState::Closed, |target| observe(target.state, now))
    }

    /// Every target whose breaker is open, half-open, or closed with failures counted,
    /// sorted by key. Targets not listed are closed with no failures.
    pub fn snapshot(&self) -> Vec<TargetSnapshot> {
        let now = self.now();
        let mut list: Vec<TargetSnapshot> = self
            .lock()
            .iter()
            .map(|(key, target)| TargetSnapshot {
                key: key.clone(),
                state: observe(target.state, now),
                consecutive_failures: match target.state {
                    State::Closed { failures } => failures,
                    _ => 0,
                },
                cool_down: target.cool_down,
            })
            .collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// Forgets `key` (its connection was removed or its URL changed): closed again.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn permit(&self, key: &str, probe: bool) -> Permit {
        Permit {
            breaker: self.clone(),
            key: key.to_owned(),
            probe,
            settled: false,
        }
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Target>> {
        // The map is consistent between statements: a panic elsewhere cannot corrupt it.
        self.inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, key: &str, probe: bool, health: TargetHealth) {
        let config = self.inner.config;
        let now = self.now();
        let mut targets = self.lock();
        let current = targets.get(key).copied().unwrap_or(Target {
            state: State::Closed { failures: 0 },
            cool_down: config.cool_down,
        });
        let next = match (current.state, probe, health) {
            (_, _, TargetHealth::NotInvolved) => {
                if probe && current.state == (State::HalfOpen { probing: true }) {
                    Some(State::HalfOpen { probing: false })
                } else {
                    None
                }
            }
            (State::Closed { .. }, false, TargetHealth::Answering) => {
                Some(State::Closed { failures: 0 })
            }
            (State::Closed { failures }, false, TargetHealth::Failing) => {
                let failures = failures.saturating_add(1);
                if failures >= config.failure_threshold {
                    tracing::warn!(
                        target_key = key,
                        failures,
                        cool_down_s = current.cool_down.as_secs(),
                        "circuit breaker open"
                    );
                    Some(State::Open {
                        until: later(now, current.cool_down),
                    })
                } else {
                    Some(State::Closed { failures })
                }
            }
            (State::HalfOpen { probing: true }, true, TargetHealth::Answering) => {
                tracing::info!(
                    target_key = key,
                    "circuit breaker closed: the probe got through"
                );
                targets.remove(key);
                return;
            }
            (State::HalfOpen { probing: true }, true, TargetHealth::Failing) => {
                let cool_down = current
                    .cool_down
                    .saturating_mul(2)
                    .min(config.max_cool_down)
                    .max(config.cool_down);
                tracing::warn!(
                    target_key = key,
                    cool_down_s = cool_down.as_secs(),
                    "circuit breaker open again: the probe failed"
                );
                targets.insert(
                    key.to_owned(),
                    Target {
                        state: State::Open {
                            until: later(now, cool_down),
                        },
                        cool_down,
                    },
                );
                return;
            }
            // A send let through before the breaker opened, reporting late: stale.
            _ => None,
        };
        match next {
            Some(State::Closed { failures: 0 }) => {
                targets.remove(key);
            }
            Some(state) => {
                targets.insert(
                    key.to_owned(),
                    Target {
                        state,
                        cool_down: current.cool_down,
                    },
                );
            }
            None => {}
        }
    }
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by)
        .ok()
        .and_then(|by| now.checked_add(by).ok())
        .unwrap_or(Timestamp::MAX)
}

fn observe(state: State, now: Timestamp) -> BreakerState {
    match state {
        State::Closed { .. } => BreakerState::Closed,
        State::Open { until } if now < until => BreakerState::Open { until },
        State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
    }
}

/// Leave to send once to a target. Tell it the outcome.
#[must_use = "a permit must be told the outcome of the send"]
#[derive(Debug)]
pub struct Permit {
    breaker: CircuitBreaker,
    key: String,
    probe: bool,
    settled: bool,
}

impl Permit {
    /// Whether this send is the half-open breaker's one probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The send succeeded (any 2xx).
    pub fn succeeded(self) {
        self.settle(TargetHealth::Answering);
    }

    /// The send failed with `class`; only the classes that say the target is failing
    /// count (see the module's documentation).
    pub fn failed(self, class: FailureClass) {
        self.settle(class.target_health());
    }

    /// Reports a send's result.
    pub fn record<T>(self, outcome: &Result<T, DeliveryError>) {
        match outcome {
            Ok(_) => self.succeeded(),
            Err(error) => self.failed(error.class),
        }
    }

    fn settle(mut self, health: TargetHealth) {
        self.settled = true;
        self.breaker.report(&self.key, self.probe, health);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker
                .report(&self.key, true, TargetHealth::NotInvolved);
        }
    }
}

/// The breaker key of a webhook URL: its origin (`https://hooks.example.com`, the port
/// only when it is not the scheme's default). Something that is not an http(s) URL gets a
/// key of its own derived from a hash, never the text itself.
pub fn target_key(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.origin().is_tuple() => parsed.origin().ascii_serialization(),
        // Not an http(s) URL with a host (the forms refuse those, but a store edited by hand
        // may hold one): the key must still tell targets apart without showing the URL, which
        // may carry a token, on /metrics.
        _ => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(url.as_bytes());
            format!("unparsed-url-{}", &hex::encode(digest)[..16])
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A clock moved by hand from a fixed start.
    fn manual_clock() -> (Clock, Clock) {
        let clock = Clock::manual("2026-01-01T00:00:00Z".parse().unwrap());
        (clock.clone(), clock)
    }

    fn advance(clock: &Clock, by: Duration) {
        clock.advance(SignedDuration::try_from(by).unwrap());
    }

    const KEY: &str = "https://hooks.example.com";

    fn open(breaker: &CircuitBreaker) {
        for _ in 0..breaker.config().failure_threshold {
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::Timeout);
        }
    }

    #[test]
    fn opens_after_n_failures_probes_once_and_closes() {
        let (offset, clock) = manual_clock();
        let breaker = CircuitBreaker::with_clock(BreakerConfig::default(), clock);
        for _ in 0..4 {
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::NetworkError);
        }
        assert_eq!(breaker.state(KEY), BreakerState::Closed);
        assert_eq!(breaker.snapshot()[0].consecutive_failures, 4);
        breaker
            .try_acquire(KEY)
            .unwrap()
            .failed(FailureClass::Http5xx);
        assert!(matches!(breaker.state(KEY), BreakerState::Open { .. }));
        let refused = breaker.try_acquire(KEY).unwrap_err();
        assert!(refused.retry_at.is_some());

        advance(&offset, Duration::from_secs(60));
        assert_eq!(breaker.state(KEY), BreakerState::HalfOpen);
        let probe = breaker.try_acquire(KEY).unwrap();
        assert!(probe.is_probe());
        assert_eq!(breaker.try_acquire(KEY).unwrap_err().retry_at, None);
        probe.succeeded();
        assert_eq!(breaker.state(KEY), BreakerState::Closed);
        assert!(breaker.snapshot().is_empty());
        assert!(!breaker.try_acquire(KEY).unwrap().is_probe());
    }

    #[test]
    fn a_failed_probe_reopens_with_a_growing_capped_cool_down() {
        let (offset, clock) = manual_clock();
        let breaker = CircuitBreaker::with_clock(BreakerConfig::default(), clock);
        open(&breaker);
        let mut expected = [120, 240, 480, 600, 600]
            .map(Duration::from_secs)
            .into_iter();
        let mut cool_down = Duration::from_secs(60);
        for _ in 0..5 {
            advance(&offset, cool_down);
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::RateLimited);
            cool_down = expected.next().unwrap();
            assert_eq!(breaker.snapshot()[0].cool_down, cool_down);
            advance(&offset, cool_down - Duration::from_millis(1));
            assert!(breaker.try_acquire(KEY).is_err());
            advance(&offset, Duration::from_millis(1));
            cool_down = Duration::ZERO;
        }
        breaker.try_acquire(KEY).unwrap().succeeded();
        // Closed again, with the cool-down back to its start.
        open(&breaker);
        assert_eq!(breaker.snapshot()[0].cool_down, Duration::from_secs(60));
    }

    #[test]
    fn client_errors_do_not_count_and_prove_the_target_answers() {
        let breaker = CircuitBreaker::new(BreakerConfig::default());
        for _ in 0..20 {
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::Http4xx);
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::SchemaError);
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::OdooError);
        }
        assert_eq!(breaker.state(KEY), BreakerState::Closed);
        // A 4xx between failures resets the count: they are no longer consecutive.
        for _ in 0..4 {
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::Timeout);
        }
        breaker
            .try_acquire(KEY)
            .unwrap()
            .failed(FailureClass::Http4xx);
        for _ in 0..4 {
            breaker
                .try_acquire(KEY)
                .unwrap()
                .failed(FailureClass::Timeout);
        }
        assert_eq!(breaker.state(KEY), BreakerState::Closed);
    }

    #[test]
    fn a_dropped_probe_frees_the_slot_and_stale_results_are_ignored() {
        let (offset, clock) = manual_clock();
        let breaker = CircuitBreaker::with_clock(BreakerConfig::default(), clock);
        let late = breaker.try_acquire(KEY).unwrap();
        open(&breaker);
        late.succeeded();
        assert!(matches!(breaker.state(KEY), BreakerState::Open { .. }));
        advance(&offset, Duration::from_secs(60));
        drop(breaker.try_acquire(KEY).unwrap());
        let probe = breaker.try_acquire(KEY).unwrap();
        assert!(probe.is_probe());
        probe.failed(FailureClass::SchemaError);
        assert_eq!(breaker.state(KEY), BreakerState::HalfOpen);
        breaker.forget(KEY);
        assert_eq!(breaker.state(KEY), BreakerState::Closed);
    }

    #[test]
    fn targets_are_origins() {
        assert_eq!(
            target_key("https://user:pw@Hooks.Example.com:443/a/b?token=1"),
            "https://hooks.example.com"
        );
        assert_eq!(
            target_key("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        // Not a URL (a store edited by hand): a key of its own, which shows nothing of it.
        let odd = target_key("hooks.example.com/odoo?token=abc-SECRET");
        assert!(
            odd.starts_with("unparsed-url-") && !odd.contains("SECRET"),
            "{odd}"
        );
        assert_ne!(odd, target_key("hooks.example.com/odoo?token=other"));
        assert_eq!(odd, target_key("hooks.example.com/odoo?token=abc-SECRET"));
    }
}
