//! The webhook payload, field for field as seed 002 specifies it and as
//! `schemas/order-webhook.schema.json` describes it.
//!
//! # Empty values
//! Odoo sends `false` for every empty field (and `""` is possible for text set through the
//! API). In the payload, **an empty value is always JSON `null`, and the key is always
//! present**: every `Option` here serializes as `null`, never omitted, never `false`, never
//! `""`. Text is trimmed; text that is empty once trimmed is `null` too. Only `tags` (always
//! `[]`) and `items` (possibly `[]`) are lists.

use jiff::Timestamp;
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a packet is sent. The caller decides: the first delivery of a confirmed order is
/// `order.confirmed`, a later change of its payload `order.updated`, its cancellation
/// `order.cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderEvent {
    #[serde(rename = "order.confirmed")]
    Confirmed,
    #[serde(rename = "order.updated")]
    Updated,
    #[serde(rename = "order.cancelled")]
    Cancelled,
}

impl OrderEvent {
    pub const ALL: [OrderEvent; 3] = [
        OrderEvent::Confirmed,
        OrderEvent::Updated,
        OrderEvent::Cancelled,
    ];

    /// The wire name (`order.confirmed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEvent::Confirmed => "order.confirmed",
            OrderEvent::Updated => "order.updated",
            OrderEvent::Cancelled => "order.cancelled",
        }
    }
}

impl fmt::Display for OrderEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One webhook packet: one order of one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderWebhook {
    pub event: OrderEvent,
    /// `odoo_{db}_{order id}`: the receiver's idempotency key for the order.
    pub external_id: String,
    pub source: Source,
    pub order: Order,
    pub customer: Customer,
    pub shipping_address: ShippingAddress,
    pub items: Vec<Item>,
}

/// Always `"ODOO"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "ODOO")]
    Odoo,
}

/// Which connection (Odoo tenant) the packet comes from, and where it goes in StockMaster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub platform: Platform,
    pub connection_id: String,
    pub store_id: String,
    pub client_id: String,
}

impl Source {
    pub fn odoo(
        connection_id: impl Into<String>,
        store_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Source {
        Source {
            platform: Platform::Odoo,
            connection_id: connection_id.into(),
            store_id: store_id.into(),
            client_id: client_id.into(),
        }
    }
}

/// Always `"paid"`: only confirmed orders are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FinancialStatus {
    #[serde(rename = "paid")]
    Paid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// `sale.order.id`, as text.
    pub platform_order_id: String,
    /// `sale.order.name` (`S00042`).
    pub platform_order_number: String,
    /// `sale.order.date_order`, ISO 8601 UTC with `Z`, whole seconds.
    #[serde(with = "iso_seconds")]
    pub date_order: Timestamp,
    pub financial_status: FinancialStatus,
    /// `sale.order.note` as plain text: Odoo 16+ stores it as HTML, whose tags are removed
    /// (see [`crate::order_payload::html_to_text`]).
    pub note: Option<String>,
    pub client_order_ref: Option<String>,
    /// `sale.order.amount_total` in cents, rounded (see [`crate::order_payload::to_cents`]).
    pub amount_total: i64,
    /// Always empty: Odoo's order tags are not sent.
    pub tags: Vec<String>,
    pub platform_attributes: PlatformAttributes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformAttributes {
    /// `sale.order.state` as Odoo has it (`sale`, `done` on 16, `cancel` for a cancellation).
    pub odoo_state: String,
    pub client_order_ref: Option<String>,
}

/// The order's customer (`partner_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: Option<String>,
    /// `mobile` when the server has that field and it is set, else `phone`.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// `res.partner.sale_order_count` (for a company, its contacts' orders included).
    pub orders_count: i64,
}

/// The delivery address (`partner_shipping_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: Option<String>,
    /// `street`
    pub address1: Option<String>,
    /// `street2`
    pub address2: Option<String>,
    pub city: Option<String>,
    /// The name of the address's state (`state_id.name`).
    pub province: Option<String>,
    pub zip: Option<String>,
    /// The ISO 3166-1 alpha-2 code of the address's country (`country_id.code`).
    pub country: Option<String>,
    /// `mobile` when the server has that field and it is set, else `phone`.
    pub phone: Option<String>,
}

/// One order line with a product and a non-zero quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `default_code`, or `ODOO-{db}-{product id}` when the product has none.
    pub sku: String,
    pub name: String,
    /// `Attribute: Value, Attribute: Value`; `null` for a product without variants.
    pub variant_name: Option<String>,
    pub quantity: Quantity,
    /// `sale.order.line.price_unit` in cents, rounded (the unit price before discount).
    pub price_cents: i64,
}

/// A line's quantity (`product_uom_qty`, a float in Odoo).
///
/// Serialized as a JSON **integer when it is whole** (`2.0` → `2`, what picking apps expect)
/// and as a JSON number otherwise (`1.5` stays `1.5`: a fractional quantity, kilograms or
/// metres, is never truncated to an integer).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Quantity(pub f64);

impl Quantity {
    /// Whole quantities up to 2^53 are written as integers.
    const MAX_EXACT: f64 = 9_007_199_254_740_991.0;

    pub fn value(self) -> f64 {
        self.0
    }

    /// The quantity as an integer, when it is whole.
    pub fn as_integer(self) -> Option<i64> {
        (self.0.fract() == 0.0 && self.0.abs() <= Quantity::MAX_EXACT).then_some(self.0 as i64)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_integer() {
            Some(whole) => serializer.serialize_i64(whole),
            None => serializer.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if value.is_finite() {
            Ok(Quantity(value))
        } else {
            Err(de::Error::custom("a quantity must be a finite number"))
        }
    }
}

/// `2025-01-15T10:30:00Z`: RFC 3339 / ISO 8601 in UTC, whole seconds.
mod iso_seconds {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        timestamp: &Timestamp,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::super::convert::iso_utc(*timestamp))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
