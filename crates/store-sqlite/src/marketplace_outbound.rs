//! [`MarketplaceOutboundStore`] for [`SqliteStore`].

use crate::SqliteStore;
use crate::columns::all;
use crate::error::map_sqlx;
use crate::time::format_ts;
use engine::store::rows;
use engine::store::{MarketplaceOutboundStore, OutboundOrder, StoreError};
use jiff::Timestamp;
use std::collections::HashMap;

impl MarketplaceOutboundStore for SqliteStore {
    async fn record_order_terms(
        &self,
        flow_id: &str,
        hashed_id: &str,
        delivered_by: Option<&str>,
        payment_method: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE marketplace_orders SET delivered_by = coalesce(?3, delivered_by), \
             payment_method = coalesce(?4, payment_method), updated_at = ?5 \
             WHERE flow_id = ?1 AND hashed_id = ?2",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(delivered_by)
        .bind(payment_method)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(changed > 0)
    }

    async fn outbound_orders(
        &self,
        flow_id: &str,
        odoo_order_ids: &[i64],
    ) -> Result<Vec<OutboundOrder>, StoreError> {
        if odoo_order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(odoo_order_ids)
            .map_err(|error| StoreError::invalid_data(error.to_string()))?;
        let found = sqlx::query(
            "SELECT hashed_id, odoo_order_id, delivered_by, payment_method, \
             marketplace_status, odoo_status FROM marketplace_orders \
             WHERE flow_id = ?1 AND state = 'imported' \
               AND odoo_order_id IN (SELECT value FROM json_each(?2)) \
             ORDER BY odoo_order_id, hashed_id",
        )
        .bind(flow_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::outbound_order)
    }

    async fn record_odoo_status(
        &self,
        flow_id: &str,
        hashed_id: &str,
        odoo_status: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE marketplace_orders SET odoo_status = ?3, updated_at = ?4 \
             WHERE flow_id = ?1 AND hashed_id = ?2 AND state = 'imported'",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(odoo_status)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(changed > 0)
    }

    async fn catalog_hashes(
        &self,
        flow_id: &str,
        product_ids: &[i64],
    ) -> Result<HashMap<i64, String>, StoreError> {
        if product_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = serde_json::to_string(product_ids)
            .map_err(|error| StoreError::invalid_data(error.to_string()))?;
        let found: Vec<(i64, String)> = sqlx::query_as(
            "SELECT product_id, content_hash FROM marketplace_catalog \
             WHERE flow_id = ?1 AND product_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(flow_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(found.into_iter().collect())
    }

    async fn record_catalog_pushed(
        &self,
        flow_id: &str,
        pushed: &[(i64, String)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if pushed.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        let now = format_ts(now);
        for (product_id, hash) in pushed {
            sqlx::query(
                "INSERT INTO marketplace_catalog (flow_id, product_id, content_hash, pushed_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (flow_id, product_id) DO UPDATE SET \
                 content_hash = excluded.content_hash, pushed_at = excluded.pushed_at",
            )
            .bind(flow_id)
            .bind(product_id)
            .bind(hash)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)
    }
}
