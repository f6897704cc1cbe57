//! Cartona's supplier API (`reference/cartona-api.md`): the [`client`] and the shape of a
//! pulled [`order`].

pub mod client;
pub mod order;

pub use client::{CartonaClient, CartonaError, PulledPage};
pub use order::{Issue, IssueCode, OrderLine, Retailer, ValidOrder, validate};
