//! Reading everything a page of orders refers to, in a constant number of batched calls.

use super::error::PayloadError;
use odoo_rpc::{Context, OdooClient, Record, SearchReadOptions, field};
use std::collections::{BTreeSet, HashMap};

/// The `sale.order` fields the caller must read (with its change feed) for [`build`]:
/// they exist on every supported version, 16 to 19.
///
/// [`build`]: super::build
pub const ORDER_FIELDS: &[&str] = &[
    "name",
    "state",
    "date_order",
    "write_date",
    "partner_id",
    "partner_shipping_id",
    "order_line",
    "note",
    "amount_total",
    "client_order_ref",
];

pub(crate) const LINE_FIELDS: &[&str] = &[
    "order_id",
    "display_type",
    "product_id",
    "name",
    "product_uom_qty",
    "price_unit",
];

/// Partner fields read on every version.
pub(crate) const PARTNER_FIELDS: &[&str] = &[
    "name",
    "parent_id",
    "display_name",
    "phone",
    "email",
    "street",
    "street2",
    "city",
    "state_id",
    "zip",
    "country_id",
    "sale_order_count",
];

/// Partner fields read only where the server has them: `mobile` was removed in saas~18.2
/// (asking for it there is an error); `country_code` (related `country_id.code`) saves the
/// countries call where it exists.
pub(crate) const PARTNER_OPTIONAL_FIELDS: &[&str] = &["mobile", "country_code"];

pub(crate) const PRODUCT_FIELDS: &[&str] = &[
    "default_code",
    "name",
    "display_name",
    "product_template_attribute_value_ids",
];

pub(crate) const ATTRIBUTE_VALUE_FIELDS: &[&str] = &["name", "attribute_id"];

/// How `sale.order.note` is stored on the server: `Html` from Odoo 16 on, `Text` before (and
/// in the simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoteFormat {
    /// Tags are removed and entities decoded ([`super::html_to_text`]).
    #[default]
    Html,
    /// Sent as it is (trimmed).
    PlainText,
}

/// The rows of one page as Odoo answered them, model by model. [`fetch`] fills it; a caller
/// holding the same rows elsewhere (the mirror's tables) can build payloads from them with
/// [`FetchedPage::from_records`] without asking Odoo.
#[derive(Debug, Clone, Default)]
pub struct PageRecords {
    /// `sale.order` rows with [`ORDER_FIELDS`].
    pub orders: Vec<Record>,
    /// `sale.order.line`
    pub lines: Vec<Record>,
    /// `res.partner`: customers and delivery addresses.
    pub partners: Vec<Record>,
    /// `product.product`
    pub products: Vec<Record>,
    /// `product.template.attribute.value`
    pub attribute_values: Vec<Record>,
    /// `product.attribute` (only those whose name the attribute values' many2one lacked).
    pub attributes: Vec<Record>,
    /// `res.country` (`code`)
    pub countries: Vec<Record>,
    /// `res.country.state` (`name`)
    pub states: Vec<Record>,
}

/// A page of orders with everything they refer to, indexed by id: all
/// [`build`](super::build) needs, with no further call to Odoo.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    pub(crate) database: String,
    pub(crate) note_format: NoteFormat,
    pub(crate) orders: Vec<Record>,
    pub(crate) lines: HashMap<i64, Record>,
    pub(crate) partners: HashMap<i64, Record>,
    pub(crate) products: HashMap<i64, Record>,
    pub(crate) attribute_values: HashMap<i64, Record>,
    pub(crate) attributes: HashMap<i64, Record>,
    pub(crate) countries: HashMap<i64, Record>,
    pub(crate) states: HashMap<i64, Record>,
}

fn index(model: &'static str, rows: Vec<Record>) -> Result<HashMap<i64, Record>, PayloadError> {
    rows.into_iter()
        .map(|row| {
            row.id()
                .map(|id| (id, row))
                .map_err(|source| PayloadError::BadAnswer { model, source })
        })
        .collect()
}

impl FetchedPage {
    /// Indexes rows read elsewhere. `database` is the Odoo database name (it goes into
    /// `external_id` and generated SKUs). Fails only on a related row without an id.
    pub fn from_records(
        database: impl Into<String>,
        note_format: NoteFormat,
        records: PageRecords,
    ) -> Result<FetchedPage, PayloadError> {
        Ok(FetchedPage {
            database: database.into(),
            note_format,
            orders: records.orders,
            lines: index("sale.order.line", records.lines)?,
            partners: index("res.partner", records.partners)?,
            products: index("product.product", records.products)?,
            attribute_values: index("product.template.attribute.value", records.attribute_values)?,
            attributes: index("product.attribute", records.attributes)?,
            countries: index("res.country", records.countries)?,
            states: index("res.country.state", records.states)?,
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn note_format(&self) -> NoteFormat {
        self.note_format
    }

    /// The page's orders, in the order they were given.
    pub fn orders(&self) -> &[Record] {
        &self.orders
    }
}

/// Collects the distinct ids of a many2one or x2many field over rows; rows where the field
/// is absent or malformed are skipped here and reported by `build` for their own order.
fn ids_of<'a>(rows: impl IntoIterator<Item = &'a Record>, fields: &[&str], many: bool) -> Vec<i64> {
    let mut ids = BTreeSet::new();
    for row in rows {
        for name in fields {
            if many {
                ids.extend(row.x2many(name).unwrap_or_default());
            } else if let Ok(Some(target)) = row.many2one(name) {
                ids.insert(target.id);
            }
        }
    }
    ids.into_iter().collect()
}

/// One `search_read` of the given ids, archived records included. `search_read` on
/// `id in ids` rather than `read`: a record deleted since the order was read is then simply
/// absent (and reported by `build` as [`PayloadError::MissingRecord`] for its order only),
/// where `read` fails the whole call with a `MissingError` on some versions. No ids, no call.
async fn read_ids(
    client: &OdooClient,
    model: &str,
    ids: &[i64],
    fields: &[&str],
) -> Result<Vec<Record>, odoo_rpc::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let options = SearchReadOptions::new(field("id").is_in(ids.iter().copied()))
        .fields(fields.iter().copied())
        .context(Context::new().active_test(false));
    client.search_read(model, &options).await
}

/// Reads everything `orders` (rows of `sale.order` with [`ORDER_FIELDS`], as the change
/// feed returned them) refer to, in a number of calls that does not depend on how many
/// orders, lines or products the page holds:
///
/// 1. `sale.order.line` and `res.partner` (customers and delivery addresses together),
///    concurrently;
/// 2. then `product.product`, `res.country` and `res.country.state`, concurrently;
/// 3. then `product.template.attribute.value`;
/// 4. and `product.attribute` only if some attribute value's `attribute_id` came without its
///    name (a user who may not read attributes): at most one more call.
///
/// A step with no ids makes no call. `res.country` is skipped where `res.partner` has
/// `country_code`. Each call is one `search_read` with `active_test: false`, so archived
/// partners and products are found. The fields of `sale.order` and `res.partner` are checked
/// once per client with `fields_get` (cached by the client): whether `mobile` exists
/// (saas~18.2 and 19 have none) and whether `note` is HTML.
pub async fn fetch(
    client: &OdooClient,
    database: &str,
    orders: &[Record],
) -> Result<FetchedPage, PayloadError> {
    let order_fields = client.fields_get("sale.order").await?;
    let note_format = match order_fields.get("note") {
        Some(info) if info.field_type == "html" => NoteFormat::Html,
        _ => NoteFormat::PlainText,
    };
    let (optional, _) = client
        .existing_fields("res.partner", PARTNER_OPTIONAL_FIELDS)
        .await?;
    let has_country_code = optional.iter().any(|name| name == "country_code");
    let partner_fields: Vec<&str> = PARTNER_FIELDS
        .iter()
        .copied()
        .chain(optional.iter().map(String::as_str))
        .collect();

    let line_ids = ids_of(orders, &["order_line"], true);
    let partner_ids = ids_of(orders, &["partner_id", "partner_shipping_id"], false);
    let (lines, partners) = tokio::try_join!(
        read_ids(client, "sale.order.line", &line_ids, LINE_FIELDS),
        read_ids(client, "res.partner", &partner_ids, &partner_fields),
    )?;

    let product_ids = ids_of(&lines, &["product_id"], false);
    // Only delivery addresses are shown with their country and state.
    let shipping_ids: BTreeSet<i64> = orders
        .iter()
        .filter_map(|order| {
            let shipping = order.many2one("partner_shipping_id").ok().flatten();
            let customer = order.many2one("partner_id").ok().flatten();
            shipping.or(customer).map(|partner| partner.id)
        })
        .collect();
    let shipping_rows: Vec<&Record> = partners
        .iter()
        .filter(|row| row.id().is_ok_and(|id| shipping_ids.contains(&id)))
        .collect();
    let country_ids = if has_country_code {
        // Only addresses whose `country_code` did not come with the row need the call.
        let without_code = shipping_rows.iter().copied().filter(|row| {
            row.str("country_code")
                .ok()
                .flatten()
                .is_none_or(|code| code.trim().is_empty())
        });
        ids_of(without_code, &["country_id"], false)
    } else {
        ids_of(shipping_rows.iter().copied(), &["country_id"], false)
    };
    let state_ids = ids_of(shipping_rows.iter().copied(), &["state_id"], false);
    let (products, countries, states) = tokio::try_join!(
        read_ids(client, "product.product", &product_ids, PRODUCT_FIELDS),
        read_ids(client, "res.country", &country_ids, &["code"]),
        read_ids(client, "res.country.state", &state_ids, &["name"]),
    )?;

    let value_ids = ids_of(&products, &["product_template_attribute_value_ids"], true);
    let attribute_values = read_ids(
        client,
        "product.template.attribute.value",
        &value_ids,
        ATTRIBUTE_VALUE_FIELDS,
    )
    .await?;
    let unnamed_attributes: Vec<i64> = attribute_values
        .iter()
        .filter_map(|row| match row.many2one("attribute_id") {
            Ok(Some(attribute)) if attribute.name.is_none() => Some(attribute.id),
            _ => None,
        })
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    let attributes = read_ids(client, "product.attribute", &unnamed_attributes, &["name"]).await?;

    FetchedPage::from_records(
        database,
        note_format,
        PageRecords {
            orders: orders.to_vec(),
            lines,
            partners,
            products,
            attribute_values,
            attributes,
            countries,
            states,
        },
    )
}
