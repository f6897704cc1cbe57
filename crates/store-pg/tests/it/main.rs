#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests on a real PostgreSQL at 127.0.0.1:5432 (override with the URL in
//! `ODOO_BRIDGE_TEST_PG`). Each test gets its own database cloned from a template migrated
//! once per test process (see `support`). The store contract (shared with SQLite) runs from
//! `contract`; what is particular to PostgreSQL — the advisory lock, JSONB, large id lists,
//! the upgrade from release 0.1 — is here.

mod contract;
mod lock;
mod reconcile;
mod schema;
mod support;
mod upgrade;
