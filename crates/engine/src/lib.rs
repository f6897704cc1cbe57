//! odoo-bridge's engine. Every flow is a composition of three motions around Odoo: read
//! changes out (a [`change_feed`]), send packets away (the [`outbox`]), take events in (the
//! [`inbox`]). The [`runtime`] runs the flows of every tenant of a [`store`], shared between
//! replicas.
//!
//! ```text
//! tenant (an Odoo: URL, database, login, key, pacing)
//!   └─ flows (order delivery, marketplace, enrichment), each with
//!        ├─ change feeds over Odoo models  ── change_feed
//!        ├─ packets out, exactly once      ── outbox (Dispatcher, breakers, retries)
//!        └─ events in, verified, deduped   ── inbox  (Receiver, InboxWorker)
//!   run by the runtime (leases, replicas, schedules, heartbeats) over a store
//!   (store::Store: SQLite or PostgreSQL)
//! ```

pub mod change_feed;
pub mod clock;
pub mod config;
pub mod connection_form;
pub mod connection_test;
pub mod display;
pub mod enrich;
pub mod flows;
pub mod hints;
pub mod http;
pub mod inbox;
pub mod marketplace;
pub mod mirror;
pub mod mirror_schedule;
pub mod mirror_store;
pub mod order_delivery;
pub mod order_payload;
pub mod outbox;
pub mod runtime;
pub mod store;
pub mod webhook;

pub use change_feed::{ChangeFeed, Checkpoint, FeedError, FeedSpec, Page};
