//! From a fetched page to payloads: a pure function, no call to Odoo.

use super::convert::{html_to_text, to_cents};
use super::error::PayloadError;
use super::fetch::{FetchedPage, NoteFormat};
use super::payload::{
    Customer, FinancialStatus, Item, Order, OrderEvent, OrderWebhook, PlatformAttributes, Quantity,
    ShippingAddress, Source,
};
use odoo_rpc::{FieldError, Record};
use std::collections::HashMap;

/// Reads the fields of one record, turning every failure into a [`PayloadError`] that names
/// the order, the model and the record.
struct Row<'a> {
    order: i64,
    model: &'static str,
    id: i64,
    record: &'a Record,
}

impl<'a> Row<'a> {
    fn find(
        order: i64,
        model: &'static str,
        id: i64,
        table: &'a HashMap<i64, Record>,
    ) -> Result<Row<'a>, PayloadError> {
        table
            .get(&id)
            .map(|record| Row {
                order,
                model,
                id,
                record,
            })
            .ok_or(PayloadError::MissingRecord { order, model, id })
    }

    fn bad(&self, source: FieldError) -> PayloadError {
        PayloadError::BadField {
            order: self.order,
            model: self.model,
            id: self.id,
            source,
        }
    }

    fn empty(&self, field: &'static str) -> PayloadError {
        PayloadError::EmptyField {
            order: self.order,
            model: self.model,
            id: self.id,
            field,
        }
    }

    /// Text, trimmed; `false`, `""` and blanks are `None`.
    fn text(&self, field: &str) -> Result<Option<String>, PayloadError> {
        Ok(self
            .record
            .str(field)
            .map_err(|e| self.bad(e))?
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned))
    }

    /// Like [`Row::text`], but a field the server does not have (not in the row) is `None`.
    fn optional_text(&self, field: &str) -> Result<Option<String>, PayloadError> {
        if self.record.raw(field).is_none() {
            return Ok(None);
        }
        self.text(field)
    }

    fn required_text(&self, field: &'static str) -> Result<String, PayloadError> {
        self.text(field)?.ok_or_else(|| self.empty(field))
    }

    fn float(&self, field: &str) -> Result<Option<f64>, PayloadError> {
        self.record.f64(field).map_err(|e| self.bad(e))
    }

    fn cents(&self, field: &'static str) -> Result<i64, PayloadError> {
        // Odoo sends 0.0 for an empty float; `false` is read as zero too.
        let value = self.float(field)?.unwrap_or(0.0);
        to_cents(value).ok_or(PayloadError::BadAmount {
            order: self.order,
            model: self.model,
            id: self.id,
            field,
            value,
        })
    }

    fn many2one(&self, field: &str) -> Result<Option<odoo_rpc::Many2One>, PayloadError> {
        self.record.many2one(field).map_err(|e| self.bad(e))
    }

    fn x2many(&self, field: &str) -> Result<Vec<i64>, PayloadError> {
        self.record.x2many(field).map_err(|e| self.bad(e))
    }

    /// `mobile` when the row has it (the server has the field) and it is set, else `phone`.
    fn phone(&self) -> Result<Option<String>, PayloadError> {
        match self.optional_text("mobile")? {
            Some(mobile) => Ok(Some(mobile)),
            None => self.text("phone"),
        }
    }

    /// `name`; for an address without a name of its own (a delivery address is often just
    /// "the company's"), the name of the contact it belongs to (`parent_id`, whose display
    /// name comes with the row), else `display_name`.
    fn partner_name(&self) -> Result<Option<String>, PayloadError> {
        if let Some(name) = self.text("name")? {
            return Ok(Some(name));
        }
        if self.record.raw("parent_id").is_some() {
            let parent = self.many2one("parent_id")?.and_then(|parent| parent.name);
            if let Some(parent) = parent
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
            {
                return Ok(Some(parent));
            }
        }
        self.optional_text("display_name")
    }
}

/// The payload of one order of `page`.
///
/// `order` is one of [`FetchedPage::orders`]; `event` is what the caller decided to send;
/// `source` identifies the connection. Pure: the same inputs always give the same payload.
///
/// Mapping (seed 002, with its traps fixed):
/// - `external_id` = `odoo_{db}_{id}`; `order.platform_order_id` = the id as text;
///   `order.date_order` = ISO 8601 UTC with `Z`; `amount_total` and `price_cents` in cents
///   rounded to the nearest cent ([`super::to_cents`]); `order.note` as plain text when the
///   server stores it as HTML; `financial_status` always `paid`; `tags` always `[]`.
/// - `customer` from `partner_id`, `shipping_address` from `partner_shipping_id` (the customer
///   when it is empty); phones prefer `mobile` where the server has it; `province` is the
///   state's name and `country` its ISO code.
/// - `items` follow the order's lines in Odoo's order: section and note lines
///   (`display_type` set) and lines without a product are skipped, lines with quantity 0 are
///   dropped; `sku` is `default_code` or `ODOO-{db}-{product id}`; `name` the product's name
///   (the line's description's first line if the product has none); `variant_name`
///   `Attribute: Value, …` or `null`; `quantity` an integer when whole ([`Quantity`]).
/// - Every empty value is `null` (see [`super::payload`]).
///
/// Errors name the order and the record: a related record missing from the page, a field of
/// an unexpected type, an empty required field (`name`, `date_order`, `partner_id`), an amount
/// that cannot be expressed in cents.
pub fn build(
    page: &FetchedPage,
    order: &Record,
    event: OrderEvent,
    source: &Source,
) -> Result<OrderWebhook, PayloadError> {
    let order_id = order.id().map_err(|source| PayloadError::BadField {
        order: 0,
        model: "sale.order",
        id: 0,
        source,
    })?;
    let row = Row {
        order: order_id,
        model: "sale.order",
        id: order_id,
        record: order,
    };
    let name = row.required_text("name")?;
    let state = row.required_text("state")?;
    let date_order = row
        .record
        .datetime("date_order")
        .map_err(|e| row.bad(e))?
        .ok_or_else(|| row.empty("date_order"))?;
    let date_order = crate::change_feed::truncate(date_order);
    let note = match (page.note_format, row.text("note")?) {
        (NoteFormat::Html, Some(html)) => Some(html_to_text(&html)).filter(|t| !t.is_empty()),
        (_, note) => note,
    };
    let client_order_ref = row.text("client_order_ref")?;
    let amount_total = row.cents("amount_total")?;
    let customer_ref = row
        .many2one("partner_id")?
        .ok_or_else(|| row.empty("partner_id"))?;
    let shipping_ref = row
        .many2one("partner_shipping_id")?
        .unwrap_or(customer_ref.clone());

    let customer = Row::find(order_id, "res.partner", customer_ref.id, &page.partners)?;
    let customer = Customer {
        name: customer.partner_name()?,
        phone: customer.phone()?,
        email: customer.text("email")?,
        orders_count: customer
            .record
            .i64("sale_order_count")
            .map_err(|e| customer.bad(e))?
            .unwrap_or(0),
    };
    let shipping_address = shipping_address(page, order_id, shipping_ref.id)?;

    let mut items = Vec::new();
    for line_id in row.x2many("order_line")? {
        if let Some(item) = item(page, order_id, line_id)? {
            items.push(item);
        }
    }

    Ok(OrderWebhook {
        event,
        external_id: format!("odoo_{}_{order_id}", page.database),
        source: source.clone(),
        order: Order {
            platform_order_id: order_id.to_string(),
            platform_order_number: name,
            date_order,
            financial_status: FinancialStatus::Paid,
            note,
            client_order_ref: client_order_ref.clone(),
            amount_total,
            tags: Vec::new(),
            platform_attributes: PlatformAttributes {
                odoo_state: state,
                client_order_ref,
            },
        },
        customer,
        shipping_address,
        items,
    })
}

/// Every order of the page, each with the event `event_for` chooses, in the page's order.
/// One order's error does not stop the others.
pub fn build_all(
    page: &FetchedPage,
    source: &Source,
    mut event_for: impl FnMut(&Record) -> OrderEvent,
) -> Vec<Result<OrderWebhook, PayloadError>> {
    page.orders()
        .iter()
        .map(|order| build(page, order, event_for(order), source))
        .collect()
}

fn shipping_address(
    page: &FetchedPage,
    order: i64,
    partner: i64,
) -> Result<ShippingAddress, PayloadError> {
    let row = Row::find(order, "res.partner", partner, &page.partners)?;
    let province = match row.many2one("state_id")? {
        Some(state) => {
            Row::find(order, "res.country.state", state.id, &page.states)?.text("name")?
        }
        None => None,
    };
    let country = match row.optional_text("country_code")? {
        Some(code) => Some(code),
        None => match row.many2one("country_id")? {
            Some(country) => {
                Row::find(order, "res.country", country.id, &page.countries)?.text("code")?
            }
            None => None,
        },
    };
    Ok(ShippingAddress {
        name: row.partner_name()?,
        address1: row.text("street")?,
        address2: row.text("street2")?,
        city: row.text("city")?,
        province,
        zip: row.text("zip")?,
        country,
        phone: row.phone()?,
    })
}

/// The item of one line, or `None` for a line that is not one (section, note, no product,
/// quantity 0).
fn item(page: &FetchedPage, order: i64, line_id: i64) -> Result<Option<Item>, PayloadError> {
    let line = Row::find(order, "sale.order.line", line_id, &page.lines)?;
    if line.text("display_type")?.is_some() {
        return Ok(None);
    }
    let Some(product_ref) = line.many2one("product_id")? else {
        return Ok(None);
    };
    let quantity = line.float("product_uom_qty")?.unwrap_or(0.0);
    if quantity == 0.0 {
        return Ok(None);
    }
    let price_cents = line.cents("price_unit")?;
    let product = Row::find(order, "product.product", product_ref.id, &page.products)?;
    let sku = match product.text("default_code")? {
        Some(code) => code,
        None => format!("ODOO-{}-{}", page.database, product_ref.id),
    };
    let description = line
        .text("name")?
        .and_then(|text| text.lines().next().map(str::trim).map(str::to_owned))
        .filter(|text| !text.is_empty());
    let name = product
        .text("name")?
        .or(description)
        .or(product.optional_text("display_name")?)
        .or(product_ref.name.clone())
        .unwrap_or_else(|| sku.clone());

    let mut variant = Vec::new();
    for value_id in product.x2many("product_template_attribute_value_ids")? {
        let value = Row::find(
            order,
            "product.template.attribute.value",
            value_id,
            &page.attribute_values,
        )?;
        let Some(value_name) = value.text("name")? else {
            continue;
        };
        let attribute = match value.many2one("attribute_id")? {
            Some(attribute) => match attribute.name {
                Some(name) => Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
                None => Row::find(order, "product.attribute", attribute.id, &page.attributes)?
                    .text("name")?,
            },
            None => None,
        };
        variant.push(match attribute {
            Some(attribute) => format!("{attribute}: {value_name}"),
            None => value_name,
        });
    }
    let variant_name = (!variant.is_empty()).then(|| variant.join(", "));

    Ok(Some(Item {
        sku,
        name,
        variant_name,
        quantity: Quantity(quantity),
        price_cents,
    }))
}
