#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SQLite store against real files, each test in its own temporary directory. The store
//! contract (shared with PostgreSQL) runs from `contract`; what is particular to SQLite — the
//! file, its permissions and lock, large statements, the upgrade from release 0.1 — is here.

mod contract;
mod file;
mod mirror;
mod reconcile;
mod support;
mod upgrade;
