//! The catalog push (what Cartona's public module also does): the price and free quantity
//! of each sellable `product.product` — free quantity in the configured warehouse — POSTed
//! to `supplier-product/bulk-update` in batches, only what changed since the last push.
//!
//! Each pass reads the products by id keyset (one call per 500), builds each one's item
//! `{"internal_product_id": "<id>", "selling_price": "12.5", "is_unlimited_stock": false,
//! "available_stock_quantity": 7}` and compares its hash with the one last pushed
//! (`marketplace_catalog`). Changed items go into outbox packets of at most
//! [`BATCH`] items (one subject, `supplier-product`, versions in order: batches are sent
//! one after the other, retried like every packet), then their hashes are recorded. A crash
//! between the two pushes those items again next pass, which sets the same values.
//!
//! Free quantity is Odoo's `free_qty` (on hand minus reserved) read with the warehouse in the
//! context (`warehouse_id`, and `warehouse` for 16); a product Odoo does not track in stock
//! (17+: not `is_storable`; 16: `type` other than `product`) is `is_unlimited_stock`.

use super::outbound::OutboundError;
use super::settings::MARKETPLACE_TARGET;
use crate::clock::Clock;
use crate::mirror::content_hash;
use crate::store::{NewPacket, Store, Subject};
use odoo_rpc::{Context, OdooClient, Record, SearchReadOptions, field};
use serde_json::{Value, json};

/// The outbox event of a catalog batch.
pub const CATALOG_EVENT: &str = "catalog.bulk_update";
/// The subject of every catalog packet (one subject: batches go in order).
pub const CATALOG_SUBJECT: &str = "supplier-product";
/// Items per POST.
pub const BATCH: usize = 100;
/// Products read per Odoo call.
const PAGE: u64 = 500;

/// Whether and for which warehouse the catalog is pushed (`settings.outbound.catalog`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogSettings {
    pub enabled: bool,
    /// The `stock.warehouse` whose free quantity is pushed; `None`: every warehouse.
    pub warehouse_id: Option<i64>,
}

impl CatalogSettings {
    pub fn from_value(value: Option<&Value>) -> Result<CatalogSettings, String> {
        let object = match value {
            None | Some(Value::Null) => return Ok(CatalogSettings::default()),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(format!("catalog: {other} is not an object")),
        };
        let enabled = match object.get("enabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(enabled)) => *enabled,
            Some(other) => return Err(format!("catalog.enabled: {other} is not true or false")),
        };
        let warehouse_id = match object.get("warehouse_id") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_i64()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| format!("catalog.warehouse_id: {value} is not a record id"))?,
            ),
        };
        Ok(CatalogSettings {
            enabled,
            warehouse_id,
        })
    }

    pub fn to_value(self) -> Value {
        json!({"enabled": self.enabled, "warehouse_id": self.warehouse_id})
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogReport {
    pub products: u64,
    pub changed: u64,
    pub packets: u64,
}

/// A price as Cartona's module sends it: a decimal string without trailing zeros.
fn price_text(price: f64) -> String {
    let text = format!("{:.4}", (price * 10_000.0).round() / 10_000.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A product's item, from its record.
pub fn item(record: &Record, id: i64) -> Value {
    let price = record.f64("lst_price").ok().flatten().unwrap_or(0.0);
    let storable = match record.raw("is_storable") {
        Some(Value::Bool(storable)) => *storable,
        // 16/17: `product` is tracked, `consu` and `service` are not; no type read: tracked.
        _ => record
            .str("type")
            .ok()
            .flatten()
            .is_none_or(|kind| kind == "product"),
    };
    let free = record.f64("free_qty").ok().flatten().unwrap_or(0.0);
    // Whole units: a fraction cannot be ordered on Cartona.
    let available = if free.is_finite() && free > 0.0 {
        free.floor() as i64
    } else {
        0
    };
    json!({
        "internal_product_id": id.to_string(),
        "selling_price": price_text(price),
        "is_unlimited_stock": !storable,
        "available_stock_quantity": if storable { available } else { 0 },
    })
}

/// Runs one pass. See the [module documentation](self).
pub async fn push_catalog<S: Store>(
    odoo: &OdooClient,
    store: &S,
    flow_id: &str,
    settings: &CatalogSettings,
    max_attempts: u32,
    clock: &Clock,
) -> Result<CatalogReport, OutboundError> {
    let mut report = CatalogReport::default();
    if !settings.enabled {
        return Ok(report);
    }
    let (fields, _) = odoo
        .existing_fields(
            "product.product",
            &["lst_price", "free_qty", "is_storable", "type", "sale_ok"],
        )
        .await?;
    let mut context = Context::new();
    if let Some(warehouse) = settings.warehouse_id {
        context = context
            .set("warehouse_id", warehouse)
            .set("warehouse", warehouse);
    }
    let sellable = fields.iter().any(|name| name == "sale_ok");
    let mut version = store
        .latest_packets(flow_id, CATALOG_SUBJECT, &[0])
        .await?
        .first()
        .map_or(0, |latest| latest.version);
    let mut after = 0;
    loop {
        let mut domain = field("id").gt(after);
        if sellable {
            domain = domain & field("sale_ok").eq(true);
        }
        let records = odoo
            .search_read(
                "product.product",
                &SearchReadOptions::new(domain)
                    .fields(fields.iter().map(String::as_str))
                    .order("id")
                    .limit(PAGE)
                    .context(context.clone()),
            )
            .await?;
        let Some(last) = records.last().and_then(|record| record.id().ok()) else {
            break;
        };
        after = last;
        report.products += records.len() as u64;
        let items: Vec<(i64, Value, String)> = records
            .iter()
            .filter_map(|record| {
                let id = record.id().ok()?;
                let item = item(record, id);
                let hash = content_hash(&item);
                Some((id, item, hash))
            })
            .collect();
        let ids: Vec<i64> = items.iter().map(|(id, ..)| *id).collect();
        let pushed = store.catalog_hashes(flow_id, &ids).await?;
        let changed: Vec<&(i64, Value, String)> = items
            .iter()
            .filter(|(id, _, hash)| pushed.get(id) != Some(hash))
            .collect();
        if changed.is_empty() {
            continue;
        }
        report.changed += changed.len() as u64;
        let now = clock.now();
        let mut packets = Vec::new();
        for batch in changed.chunks(BATCH) {
            version += 1;
            let body = Value::Array(batch.iter().map(|(_, item, _)| item.clone()).collect());
            packets.push(NewPacket {
                id: format!("{flow_id}_catalog_v{version}"),
                subject: Subject::new(CATALOG_SUBJECT, 0),
                reference: None,
                target: MARKETPLACE_TARGET.to_owned(),
                event: CATALOG_EVENT.to_owned(),
                version,
                payload: body.to_string(),
                payload_hash: content_hash(&body),
                max_attempts,
                created_at: now,
            });
        }
        let counts = store.enqueue(flow_id, &packets, None).await?;
        report.packets += counts.inserted;
        let recorded: Vec<(i64, String)> = changed
            .iter()
            .map(|(id, _, hash)| (*id, hash.clone()))
            .collect();
        store.record_catalog_pushed(flow_id, &recorded, now).await?;
        if (records.len() as u64) < PAGE {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(value: Value) -> Record {
        Record::new(value.as_object().cloned().unwrap())
    }

    #[test]
    fn items_say_price_stock_and_whether_it_is_tracked() {
        let tracked =
            record(json!({"id": 7, "lst_price": 12.5, "free_qty": 7.9, "is_storable": true}));
        assert_eq!(
            item(&tracked, 7),
            json!({"internal_product_id": "7", "selling_price": "12.5", "is_unlimited_stock": false, "available_stock_quantity": 7})
        );
        let untracked =
            record(json!({"id": 8, "lst_price": 3.0, "free_qty": 0.0, "is_storable": false}));
        assert_eq!(item(&untracked, 8)["is_unlimited_stock"], json!(true));
        assert_eq!(item(&untracked, 8)["selling_price"], json!("3"));
        let legacy =
            record(json!({"id": 9, "lst_price": 0.1, "free_qty": -2.0, "type": "product"}));
        assert_eq!(item(&legacy, 9)["is_unlimited_stock"], json!(false));
        assert_eq!(item(&legacy, 9)["available_stock_quantity"], json!(0));
        assert_eq!(item(&legacy, 9)["selling_price"], json!("0.1"));
        let service = record(json!({"id": 10, "lst_price": 1.0, "type": "service"}));
        assert_eq!(item(&service, 10)["is_unlimited_stock"], json!(true));
    }

    #[test]
    fn settings_read_back_and_bad_ones_are_refused() {
        assert_eq!(
            CatalogSettings::from_value(None).unwrap(),
            CatalogSettings::default()
        );
        let on = CatalogSettings {
            enabled: true,
            warehouse_id: Some(2),
        };
        assert_eq!(
            CatalogSettings::from_value(Some(&on.to_value())).unwrap(),
            on
        );
        assert!(CatalogSettings::from_value(Some(&json!({"enabled": "yes"}))).is_err());
        assert!(CatalogSettings::from_value(Some(&json!({"warehouse_id": -1}))).is_err());
        assert!(CatalogSettings::from_value(Some(&json!([]))).is_err());
    }
}
