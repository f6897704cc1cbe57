#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine against the simulated Odoo over loopback HTTP.

mod change_feed;
mod config;
mod hints;
mod http;
mod marketplace;
mod marketplace_outbound;
mod mirror;
mod mirror_hints;
mod order_delivery;
mod order_payload;
mod runtime;
mod webhook;
