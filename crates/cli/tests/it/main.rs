#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `odoo-bridge` binary against a real simulator process on loopback.

mod connections;
mod delivery_daemon;
mod demo;
mod enrich;
mod exit_codes;
mod fault_matrix;
mod first_run;
mod full_disk;
mod marketplace;
mod marketplace_outbound;
mod mirror_faults;
mod mirror_hints;
mod mirror_postgres;
mod ping;
mod push_hints;
mod sync;
mod tui_tmux;
