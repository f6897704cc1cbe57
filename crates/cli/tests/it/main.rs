#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `odoo-bridge` binary against a real simulator process on loopback.

mod ping;
