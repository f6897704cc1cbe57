#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The client against the simulated Odoo over real HTTP on loopback: error classes and
//! retry decisions, re-authentication, both transports, Odoo's semantics, the timestamp
//! trap, workflows per version, secrets and pacing.
//!
//! Every server listens on `127.0.0.1:0`. Nothing here decides pass or fail on the wall
//! clock: waits are measured on tokio's paused clock, and retries use millisecond delays
//! with the number of attempts asserted through the simulator's call counters.

mod auth;
mod errors;
mod pacing;
mod secrets;
mod semantics;
mod support;
mod timestamps;
mod transports;
mod workflows;
