//! Outbound delivery: how a packet leaves for a webhook, pure library code with no store.
//! The outbox (which packet, when, exactly once) is built on these:
//!
//! - [`signature`]: Standard Webhooks signing and verification, and the [`WebhookSecret`];
//! - [`sender`]: one signed POST of one [`Packet`], its outcome classified;
//! - [`failure`]: the [`FailureClass`]es and the [`DeliveryError`];
//! - [`retry_schedule`]: when a failed packet is sent again, and when it is given up;
//! - [`breaker`]: a circuit breaker per webhook target.
//!
//! A delivery, put together:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use engine::webhook::{
//!     BreakerConfig, CircuitBreaker, Packet, RetryDecision, RetrySchedule, SenderConfig,
//!     WebhookSecret, WebhookSender, target_key,
//! };
//! let sender = WebhookSender::new(SenderConfig::default())?;
//! let breakers = CircuitBreaker::new(BreakerConfig::default());
//! let secret = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f")?;
//! let url = "https://hooks.example.com/odoo";
//! let packet = Packet {
//!     id: "msg_2f1c".into(),
//!     connection_id: "7".into(),
//!     body: r#"{"event":"order.created"}"#.into(),
//! };
//! match breakers.try_acquire(&target_key(url)) {
//!     Err(refused) => { /* leave the packet queued until refused.retry_at */ }
//!     Ok(permit) => {
//!         let outcome = sender.send(url, &secret, &packet).await;
//!         permit.record(&outcome);
//!         if let Err(error) = outcome {
//!             let attempts = 0; // the packet's failed retries so far
//!             match RetrySchedule::default().decide(attempts, &error, &mut rand::rng()) {
//!                 RetryDecision::RetryIn(wait) => { /* due again after `wait` */ }
//!                 RetryDecision::GiveUp(reason) => { /* FAILED, for a person */ }
//!             }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod breaker;
pub mod failure;
pub mod retry_schedule;
pub mod sender;
pub mod signature;

pub use breaker::{
    BreakerConfig, BreakerState, CircuitBreaker, Permit, Refused, TargetSnapshot, target_key,
};
pub use failure::{DeliveryError, FailureClass, TargetHealth, UnknownFailureClass};
pub use retry_schedule::{GiveUpReason, Jitter, RetryDecision, RetrySchedule};
pub use sender::{ClientBuildError, Delivered, Packet, SenderConfig, WebhookSender};
pub use signature::{SecretError, SignedHeaders, Verifier, VerifyError, WebhookSecret};
