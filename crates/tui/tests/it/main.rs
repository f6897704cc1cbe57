//! The TUI's tests: every screen drawn on ratatui's `TestBackend` and snapshot-tested
//! (`screens`), and the keyboard flows on the state machine with a real SQLite store
//! (`flows`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod enrichment;
mod flows;
mod marketplace;
mod screens;
mod support;
