//! odoo-bridge's terminal UI for order delivery (seed 002, "TUI"): a dashboard of the
//! connections with the poller's state and the recent activity, the connection form
//! (create, edit, test), the sync log, the retry queue, the marketplaces (issue 10: their
//! 24 h figures, open conflicts and sync log; a conflict can be ignored), and the enrichment
//! jobs (issue 11: health scores, each record's state and failure class; a record the breaker
//! disabled can be re-enabled).
//!
//! Layout:
//! - [`app`]: the state machine. [`app::App::handle`] turns an [`app::Event`] into
//!   [`app::Command`]s; pure, so every keyboard flow is a unit test;
//! - [`exec`]: runs the commands off the UI task through the
//!   [`engine::delivery_store::DeliveryStore`] trait (the UI has no SQL), and owns the
//!   TUI's own poller (the engine's delivery daemon in a background task);
//! - [`data`]: what a refresh reads from the store;
//! - [`form`]: the connection form's fields and editing;
//! - [`ui`]: drawing with ratatui, one function per screen;
//! - [`terminal`]: the terminal runner, [`run`].
//!
//! The poller: when no daemon's heartbeat is fresh on the store, the TUI starts its own
//! (the engine's `daemon::run`) and shows RUNNING; beside a running `odoo-bridge run` it
//! shows ATTACHED and starts none. `s` starts or stops it from the dashboard.

pub mod app;
pub mod data;
pub mod exec;
pub mod form;
pub mod terminal;
pub mod ui;

pub use app::{App, AppOptions, Command, Event, Outcome};
pub use exec::{ExecOptions, Executor};
pub use terminal::{Options, run};
