//! odoo-bridge's engine. Every flow is a composition of three motions around Odoo: read
//! changes out (a [`change_feed`]), send packets away (an outbox), take events in (an inbox).

pub mod change_feed;
pub mod clock;
pub mod config;
pub mod connection_form;
pub mod connection_test;
pub mod delivery_store;
pub mod display;
pub mod http;
pub mod mirror;
pub mod mirror_store;
pub mod order_delivery;
pub mod order_payload;
pub mod webhook;

pub use change_feed::{ChangeFeed, Checkpoint, FeedError, FeedSpec, Page};
