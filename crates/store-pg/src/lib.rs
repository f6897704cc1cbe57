//! odoo-bridge's PostgreSQL store: [`engine::mirror_store::MirrorStore`] over seed 003's
//! tables, with Odoo payloads as JSONB.
//!
//! - `odoo_raw_records`: one row per `(model, odoo_id)`, written by a bulk
//!   `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT DO UPDATE` per page, rewritten only when the
//!   content hash changes; rows are stamped `deleted_at`, never deleted.
//! - `odoo_sync_state`: the change feed's checkpoint per model, saved in the page's
//!   transaction.
//! - `odoo_sync_runs`: one row per run with counters summed over its pages.
//!
//! The run lock is `pg_try_advisory_lock` on [`LOCK_KEY`], held by one connection for the
//! whole run ([`PgLock`]); PostgreSQL releases it if the process dies.
//!
//! Every query is checked at run time (no `query!` macros), so building needs no database.
//! Needs PostgreSQL 9.5 or newer (`ON CONFLICT`); tested on 15.

mod columns;
mod coordination;
mod environment;
mod error;
mod inbox;
mod lock;
mod marketplace;
mod marketplace_outbound;
mod options;
mod outbox;
mod store;
mod sync_log;
mod tenants;
mod time;

pub use lock::{LOCK_KEY, PgLock};
pub use options::{PgTarget, connect_options};
pub use store::PgStore;
