#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The simulator's own tests: Odoo's semantics through the ORM, and the wire facts a client
//! must survive through raw HTTP.

mod cartona;
mod custom_fields;
mod generated_leads_and_invoices;
mod http;
mod ordered_pages;
mod semantics;
mod workflows;
