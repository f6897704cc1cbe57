//! [`MarketplaceStore`] for [`SqliteStore`]: claims and records run under `BEGIN IMMEDIATE`,
//! so one writer at a time decides who holds an order.

use crate::SqliteStore;
use crate::columns::{Row, all};
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows;
use engine::store::{ImportClaim, ImportState, MarketplaceOrder, MarketplaceStore, StoreError};
use jiff::Timestamp;
use sqlx::error::ErrorKind;

macro_rules! order_columns {
    () => {
        "flow_id, hashed_id, state, odoo_order_id, claim_owner, claim_until, issue_code, \
         issue_detail, marketplace_status, odoo_status, created_at, updated_at, imported_at"
    };
}

/// A new row is claimed; an existing one only when it is not imported and nobody else holds
/// a live claim (the WHERE of DO UPDATE: no row returned means the claim was refused).
const CLAIM: &str = concat!(
    "INSERT INTO marketplace_orders (flow_id, hashed_id, state, claim_owner, \
     claim_until, created_at, updated_at) VALUES (?1, ?2, 'claimed', ?3, ?4, ?5, ?5) \
     ON CONFLICT (flow_id, hashed_id) DO UPDATE SET state = 'claimed', \
       claim_owner = excluded.claim_owner, claim_until = excluded.claim_until, \
       issue_code = NULL, issue_detail = NULL, updated_at = excluded.updated_at \
     WHERE marketplace_orders.odoo_order_id IS NULL \
       AND (marketplace_orders.claim_owner IS NULL \
            OR marketplace_orders.claim_owner = excluded.claim_owner \
            OR marketplace_orders.claim_until < excluded.updated_at) \
     RETURNING ",
    order_columns!()
);

fn not_found_on_fk(flow_id: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |error| match violation(&error) {
        Some((ErrorKind::ForeignKeyViolation, _)) => {
            StoreError::not_found(format!("flow {flow_id:?}"))
        }
        _ => map_sqlx(error),
    }
}

impl SqliteStore {
    async fn order_in(
        tx: &mut sqlx::SqliteConnection,
        flow_id: &str,
        hashed_id: &str,
    ) -> Result<Option<MarketplaceOrder>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM marketplace_orders WHERE flow_id = ?1 AND hashed_id = ?2"
        ))
        .bind(flow_id)
        .bind(hashed_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::marketplace_order(&Row(row)))
            .transpose()
    }
}

impl MarketplaceStore for SqliteStore {
    async fn claim_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<ImportClaim, StoreError> {
        let mut tx = self.write_tx().await?;
        let claimed = sqlx::query(CLAIM)
            .bind(flow_id)
            .bind(hashed_id)
            .bind(owner)
            .bind(format_ts(until))
            .bind(format_ts(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(not_found_on_fk(flow_id))?;
        let claim = match claimed {
            Some(row) => ImportClaim::Granted(rows::marketplace_order(&Row(&row))?),
            None => {
                let order = Self::order_in(&mut tx, flow_id, hashed_id)
                    .await?
                    .ok_or_else(|| {
                        StoreError::invalid_data(format!(
                            "marketplace order {hashed_id:?} refused a claim but is not stored"
                        ))
                    })?;
                if order.state == ImportState::Imported {
                    ImportClaim::Imported(order)
                } else {
                    ImportClaim::HeldElsewhere(order)
                }
            }
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(claim)
    }

    async fn record_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        odoo_order_id: i64,
        marketplace_status: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<MarketplaceOrder>, StoreError> {
        let mut tx = self.write_tx().await?;
        let now = format_ts(now);
        sqlx::query(
            "UPDATE marketplace_orders SET state = 'imported', odoo_order_id = ?3, \
             marketplace_status = coalesce(?4, marketplace_status), claim_owner = NULL, \
             claim_until = NULL, issue_code = NULL, issue_detail = NULL, imported_at = ?5, \
             updated_at = ?5 \
             WHERE flow_id = ?1 AND hashed_id = ?2 AND odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(odoo_order_id)
        .bind(marketplace_status)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let order = Self::order_in(&mut tx, flow_id, hashed_id).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(order)
    }

    async fn record_refusal(
        &self,
        flow_id: &str,
        hashed_id: &str,
        issue_code: &str,
        issue_detail: &str,
        marketplace_status: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO marketplace_orders (flow_id, hashed_id, state, issue_code, \
             issue_detail, marketplace_status, created_at, updated_at) \
             VALUES (?1, ?2, 'refused', ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (flow_id, hashed_id) DO UPDATE SET state = 'refused', \
               issue_code = excluded.issue_code, issue_detail = excluded.issue_detail, \
               marketplace_status = coalesce(excluded.marketplace_status, \
                                             marketplace_orders.marketplace_status), \
               claim_owner = NULL, claim_until = NULL, updated_at = excluded.updated_at \
             WHERE marketplace_orders.odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(issue_code)
        .bind(issue_detail)
        .bind(marketplace_status)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk(flow_id))?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn release_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let released = sqlx::query(
            "UPDATE marketplace_orders SET claim_owner = NULL, claim_until = NULL \
             WHERE flow_id = ?1 AND hashed_id = ?2 AND claim_owner = ?3 \
               AND odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(released > 0)
    }

    async fn marketplace_order(
        &self,
        flow_id: &str,
        hashed_id: &str,
    ) -> Result<Option<MarketplaceOrder>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(map_sqlx)?;
        Self::order_in(&mut connection, flow_id, hashed_id).await
    }

    async fn marketplace_orders(&self, flow_id: &str) -> Result<Vec<MarketplaceOrder>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM marketplace_orders WHERE flow_id = ?1 ORDER BY hashed_id"
        ))
        .bind(flow_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::marketplace_order)
    }
}
