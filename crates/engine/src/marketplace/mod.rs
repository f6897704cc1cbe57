//! Marketplace sync (seed 001) as a flow of the [runtime](crate::runtime): Cartona → Odoo
//! orders (exactly one `sale.order` per marketplace order, acknowledged through the outbox)
//! and statuses (applied through Odoo's workflow, conflicts kept for people).
//!
//! - [`settings`]: what a marketplace flow keeps (kind, API URL, reference field; the token
//!   and the inbound webhook secret as sealed secrets);
//! - [`form`]: a marketplace as a person configures it (a tenant with a marketplace flow),
//!   validated field by field, and read and written over any store;
//! - [`cartona`]: the Cartona API (pulls of `order/pull-orders`, status POSTs) and the
//!   validation of a pulled order with the public module's issue codes;
//! - [`import`]: one pull over the window, each valid order claimed in the store, found or
//!   created in Odoo, recorded and acknowledged;
//! - [`status`]: the marketplace's statuses, their order and which may follow which;
//! - [`mapping`]: Odoo's order and delivery states read as one marketplace status;
//! - [`outbound`]: Odoo's changes followed and pushed to the marketplace as statuses, with
//!   no echo and no regression;
//! - [`catalog`]: price and free quantity of each product pushed when they change;
//! - [`push_log`]: a sync-log row per push (acknowledgement or status);
//! - [`log`]: the sync log's rows (one per event: imports, inbound statuses);
//! - [`inbound`]: statuses coming in (the status webhook's route, and the statuses the
//!   import finds), each an inbox event;
//! - [`apply`]: a status applied to its Odoo order through [`odoo_order`] (Odoo's workflow
//!   methods, never a `state` write), or a conflict; the log row of each;
//! - [`MarketplaceFlow`]: all plugged into the runtime, whose dispatcher sends the
//!   acknowledgements to Cartona and whose inbox worker applies the statuses.

pub mod apply;
pub mod cartona;
pub mod catalog;
pub mod flow;
pub mod form;
pub mod import;
pub mod inbound;
pub mod log;
pub mod mapping;
pub mod odoo_order;
pub mod outbound;
pub mod push_log;
pub mod settings;
pub mod status;

pub use flow::MarketplaceFlow;
pub use form::{Marketplace, MarketplaceDraft, MarketplaceRegistry};
pub use import::{ImportOptions, ImportReport, import_orders};
pub use outbound::{OutboundSettings, enqueue_status_push, push_statuses};
pub use settings::{MarketplaceKind, MarketplaceSecrets, MarketplaceSettings};
pub use status::MarketplaceStatus;
