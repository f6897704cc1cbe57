#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests on a real PostgreSQL at 127.0.0.1:5432 (override with the URL in
//! `ODOO_BRIDGE_TEST_PG`). Each test gets its own database cloned from a template migrated
//! once per test process (see `support`).

mod delivery;
mod lock;
mod pages;
mod reconcile;
mod runs;
mod schema;
mod support;
