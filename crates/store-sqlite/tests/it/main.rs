#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SQLite store against real files, each test in its own temporary directory.

mod delivery;
mod file;
mod mirror;
mod reconcile;
mod runs;
mod support;
