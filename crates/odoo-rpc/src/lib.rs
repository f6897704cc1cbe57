//! An async client for Odoo's external API.
//!
//! - Two transports behind one trait: JSON-RPC (`/jsonrpc`, Odoo ≤ 18) and JSON-2
//!   (`/json/2/<model>/<method>`, Odoo ≥ 19), chosen from the server's version by default.
//! - Typed domains ([`domain`]) and typed values ([`value`]) that follow Odoo's conventions
//!   (`false` means empty, many2one is `[id, name]`, datetimes are UTC text).
//! - One [`Error`] type classified once: [`Error::is_retryable`],
//!   [`Error::is_safe_to_resend`], [`Error::is_authentication`].
//! - Retries with full-jitter backoff and `Retry-After`, a uid cache with one
//!   re-authentication, per-client pacing and a `fields_get` cache.
//!
//! ```no_run
//! # async fn run() -> Result<(), odoo_rpc::Error> {
//! use odoo_rpc::{ClientConfig, Context, OdooClient, SearchReadOptions, domain::field};
//!
//! let client = OdooClient::connect(ClientConfig::new(
//!     "https://mycompany.odoo.com", "mycompany", "bot@example.com", "api-key",
//! ))
//! .await?;
//! let orders = client
//!     .search_read(
//!         "sale.order",
//!         &SearchReadOptions::new(field("state").eq("sale"))
//!             .fields(["name", "partner_id", "write_date"])
//!             .order("write_date asc, id asc")
//!             .limit(100)
//!             .context(Context::new().active_test(false)),
//!     )
//!     .await?;
//! for order in &orders {
//!     let partner = order.many2one("partner_id").ok().flatten();
//!     println!("{:?} {:?}", order.str("name"), partner.map(|p| p.id));
//! }
//! # Ok(())
//! # }
//! ```

pub mod client;
// domain.rs's tests use `expect`; the workspace lint allows that only in test code, and the
// non-test build still checks the module's own code.
#[cfg_attr(test, allow(clippy::expect_used, clippy::unwrap_used))]
pub mod domain;
pub mod error;
pub mod retry;
pub mod secret;
pub mod transport;
pub mod value;

pub use client::{
    ClientConfig, Context, DEFAULT_TIMEOUT, FieldInfo, Fields, OdooClient, SearchReadOptions,
    TransportChoice,
};
pub use domain::{Domain, Operator, field};
pub use error::{Error, OdooError, OdooErrorKind, TransportKind, WerkzeugKind};
pub use retry::RetryPolicy;
pub use secret::ApiKey;
pub use transport::{HttpPool, Protocol, ServerVersion, Transport, check_base_url};
pub use value::{FieldError, Many2One, OdooDate, OdooDateTime, Record};
