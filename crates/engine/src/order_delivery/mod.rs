//! Order delivery (seed 002): confirmed `sale.order`s of many Odoo tenants, delivered as
//! webhooks exactly once.
//!
//! - [`poll::poll`] follows one connection's order feed, turns each changed order into a packet
//!   (`order.confirmed`, then `order.updated` / `order.cancelled` with the next version) and
//!   writes the page's packets together with the connection's cursor;
//! - [`Dispatcher`] leases due packets from the outbox and sends them, through the target's
//!   circuit breaker, recording each attempt with its retry schedule.

pub mod daemon;
pub mod dispatch;
pub mod heartbeat;
pub mod poll;

pub use daemon::{CycleOutcome, DaemonConfig};
pub use dispatch::{DispatchReport, Dispatcher};
pub use poll::{PollError, PollOptions, PollReport, poll};
