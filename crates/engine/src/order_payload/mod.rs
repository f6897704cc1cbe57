//! Confirmed `sale.order`s as webhook payloads (seed 002, issue 4).
//!
//! Two steps, so that the network part is small and the mapping testable on its own:
//! - [`fetch`] reads everything a page of orders refers to — lines, customers and delivery
//!   addresses, products, attribute values, countries, states — in a **constant number of
//!   batched calls per page**, whatever the page holds (never one call per order or line);
//! - [`build`] turns one order of the fetched page into an [`OrderWebhook`]: a pure function.
//!
//! The orders themselves come from the caller's [`ChangeFeed`](crate::ChangeFeed) over
//! `sale.order` reading [`ORDER_FIELDS`]; [`order_feed_spec`] is such a feed.
//!
//! ```no_run
//! # async fn run(client: &odoo_rpc::OdooClient) -> Result<(), Box<dyn std::error::Error>> {
//! use engine::ChangeFeed;
//! use engine::order_payload::{self, OrderEvent, Source};
//!
//! let source = Source::odoo("connection-1", "store_xyz", "client_xyz");
//! let mut feed = ChangeFeed::new(client, order_payload::order_feed_spec(), None);
//! while let Some(page) = feed.next_page().await? {
//!     let fetched = order_payload::fetch(client, "odoo_db", &page.records).await?;
//!     for order in fetched.orders() {
//!         let payload = order_payload::build(&fetched, order, OrderEvent::Confirmed, &source)?;
//!         println!("{}", serde_json::to_string(&payload)?);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Decisions
//! - **Money** is rounded to the nearest cent, halves away from zero, on the decimal value
//!   Odoo sent ([`to_cents`]): 4.35 → 435 and 0.29 → 29 (the seed's `int(x * 100)` gives 434
//!   and 28), 1.005 → 101 and 0.285 → 29 (`(x * 100.0).round()` gives 100 and 28), as Odoo's
//!   own rounding shows them.
//! - **Quantities** are integers when whole (2.0 → `2`) and JSON numbers otherwise (1.5 stays
//!   `1.5`, never truncated to 1): see [`Quantity`].
//! - **Empty values**: Odoo's `false` (and blank text) is always JSON `null`, and every key is
//!   always present (see [`payload`]).
//! - **Notes**: `sale.order.note` is HTML on Odoo 16+; it is sent as plain text (tags removed,
//!   paragraphs as newlines, entities decoded, [`html_to_text`]); an empty note (`<p><br></p>`)
//!   is `null`. Where the server declares it `text`, it is sent as it is.
//! - **Phones** prefer `mobile`, then `phone`. `res.partner.mobile` does not exist on
//!   saas~18.2+ and 19; `fields_get` (cached per client) decides whether it is read at all.

mod build;
mod convert;
mod error;
mod fetch;
pub mod payload;

pub use build::{build, build_all};
pub use convert::{MAX_SAFE_CENTS, html_to_text, iso_utc, to_cents};
pub use error::PayloadError;
pub use fetch::{FetchedPage, NoteFormat, ORDER_FIELDS, PageRecords, fetch};
pub use payload::{
    Customer, FinancialStatus, Item, Order, OrderEvent, OrderWebhook, Platform, PlatformAttributes,
    Quantity, ShippingAddress, Source,
};

use crate::change_feed::FeedSpec;
use odoo_rpc::field;

/// The JSON Schema (draft 2020-12) of [`OrderWebhook`], as kept in the repository at
/// `schemas/order-webhook.schema.json`.
pub const SCHEMA: &str = include_str!("../../../../schemas/order-webhook.schema.json");

/// Pages of orders as delivery reads them: confirmed orders (`state` `sale`, or `done`, which
/// only Odoo 16 has; a value a version lacks simply matches nothing) that changed, 100 per
/// page, with [`ORDER_FIELDS`]. Archived records are included (`active_test: false`, the
/// feed's default).
pub fn order_feed_spec() -> FeedSpec {
    let mut spec = FeedSpec::new("sale.order");
    spec.fields = ORDER_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    spec.domain = field("state").is_in(["sale", "done"]);
    spec.page_size = 100;
    spec
}
