//! odoo-bridge's engine. Every flow is a composition of three motions around Odoo: read
//! changes out (a [`change_feed`]), send packets away (an outbox), take events in (an inbox).

pub mod change_feed;
pub mod config;
pub mod mirror_store;

pub use change_feed::{ChangeFeed, Checkpoint, FeedError, FeedSpec, Page};
