//! Order delivery (seed 002): confirmed `sale.order`s of many Odoo tenants, delivered as
//! webhooks exactly once, as a flow of the [runtime](crate::runtime).
//!
//! - [`connection`]: a connection (a tenant with its order-delivery flow), as the CLI, the
//!   TUI and the seed know it, and [`ConnectionStore`] to read and write it;
//! - [`poll::poll`] follows one connection's order feed, turns each changed order into a
//!   packet (`order.confirmed`, then `order.updated` / `order.cancelled` with the next
//!   version) and writes the page's packets together with the feed's cursor;
//! - [`OrderDeliveryFlow`] plugs both into the runtime, whose dispatcher sends the packets to
//!   the connection's webhook.

pub mod connection;
pub mod flow;
pub mod poll;

pub use connection::{
    ApiKey, Connection, ConnectionStats, ConnectionStore, DeliverySettings, Event, EventSet,
    WebhookSecret,
};
pub use flow::OrderDeliveryFlow;
pub use poll::{PollError, PollTarget, packet_id, poll};
