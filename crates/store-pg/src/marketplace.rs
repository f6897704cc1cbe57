//! [`MarketplaceStore`] for [`PgStore`]: a claim is one `INSERT … ON CONFLICT DO UPDATE …
//! WHERE`, which PostgreSQL evaluates on the row's latest version under its lock, so two
//! replicas racing for one order cannot both get it.

use crate::columns::{Row, all};
use crate::error::{from_sqlx, violation};
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows;
use engine::store::{ImportClaim, ImportState, MarketplaceOrder, MarketplaceStore, StoreError};
use jiff::Timestamp;
use sqlx::error::ErrorKind;

macro_rules! order_columns {
    () => {
        concat!(
            "flow_id, hashed_id, state, odoo_order_id, claim_owner, ",
            ts_text!("claim_until"),
            " AS claim_until, issue_code, issue_detail, marketplace_status, odoo_status, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at, ",
            ts_text!("imported_at"),
            " AS imported_at"
        )
    };
}

const CLAIM: &str = concat!(
    "
INSERT INTO marketplace_orders AS o (flow_id, hashed_id, state, claim_owner, claim_until,
    created_at, updated_at)
VALUES ($1, $2, 'claimed', $3, $4::timestamptz, $5::timestamptz, $5::timestamptz)
ON CONFLICT (flow_id, hashed_id) DO UPDATE SET state = 'claimed',
    claim_owner = excluded.claim_owner, claim_until = excluded.claim_until,
    issue_code = NULL, issue_detail = NULL, updated_at = excluded.updated_at
WHERE o.odoo_order_id IS NULL
  AND (o.claim_owner IS NULL OR o.claim_owner = excluded.claim_owner
       OR o.claim_until < excluded.updated_at)
RETURNING ",
    order_columns!()
);

const SELECT_ONE: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM marketplace_orders WHERE flow_id = $1 AND hashed_id = $2"
);

fn not_found_on_fk(flow_id: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |error| match violation(&error) {
        Some((ErrorKind::ForeignKeyViolation, _)) => {
            StoreError::not_found(format!("flow {flow_id:?}"))
        }
        _ => from_sqlx(error),
    }
}

impl MarketplaceStore for PgStore {
    async fn claim_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<ImportClaim, StoreError> {
        let claimed = sqlx::query(CLAIM)
            .bind(flow_id)
            .bind(hashed_id)
            .bind(owner)
            .bind(time::format(until))
            .bind(time::format(now))
            .fetch_optional(self.pool())
            .await
            .map_err(not_found_on_fk(flow_id))?;
        if let Some(row) = claimed {
            return Ok(ImportClaim::Granted(rows::marketplace_order(&Row(&row))?));
        }
        let order = self
            .marketplace_order(flow_id, hashed_id)
            .await?
            .ok_or_else(|| {
                StoreError::invalid_data(format!(
                    "marketplace order {hashed_id:?} refused a claim but is not stored"
                ))
            })?;
        Ok(if order.state == ImportState::Imported {
            ImportClaim::Imported(order)
        } else {
            ImportClaim::HeldElsewhere(order)
        })
    }

    async fn record_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        odoo_order_id: i64,
        marketplace_status: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<MarketplaceOrder>, StoreError> {
        sqlx::query(
            "UPDATE marketplace_orders SET state = 'imported', odoo_order_id = $3, \
             marketplace_status = coalesce($4, marketplace_status), claim_owner = NULL, \
             claim_until = NULL, issue_code = NULL, issue_detail = NULL, \
             imported_at = $5::timestamptz, updated_at = $5::timestamptz \
             WHERE flow_id = $1 AND hashed_id = $2 AND odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(odoo_order_id)
        .bind(marketplace_status)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        self.marketplace_order(flow_id, hashed_id).await
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
        sqlx::query(
            "INSERT INTO marketplace_orders AS o (flow_id, hashed_id, state, issue_code, \
             issue_detail, marketplace_status, created_at, updated_at) \
             VALUES ($1, $2, 'refused', $3, $4, $5, $6::timestamptz, $6::timestamptz) \
             ON CONFLICT (flow_id, hashed_id) DO UPDATE SET state = 'refused', \
               issue_code = excluded.issue_code, issue_detail = excluded.issue_detail, \
               marketplace_status = coalesce(excluded.marketplace_status, o.marketplace_status), \
               claim_owner = NULL, claim_until = NULL, updated_at = excluded.updated_at \
             WHERE o.odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(issue_code)
        .bind(issue_detail)
        .bind(marketplace_status)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk(flow_id))?;
        Ok(())
    }

    async fn release_import(
        &self,
        flow_id: &str,
        hashed_id: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let released = sqlx::query(
            "UPDATE marketplace_orders SET claim_owner = NULL, claim_until = NULL \
             WHERE flow_id = $1 AND hashed_id = $2 AND claim_owner = $3 \
               AND odoo_order_id IS NULL",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(owner)
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(released > 0)
    }

    async fn marketplace_order(
        &self,
        flow_id: &str,
        hashed_id: &str,
    ) -> Result<Option<MarketplaceOrder>, StoreError> {
        let row = sqlx::query(SELECT_ONE)
            .bind(flow_id)
            .bind(hashed_id)
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)?;
        row.as_ref()
            .map(|row| rows::marketplace_order(&Row(row)))
            .transpose()
    }

    async fn marketplace_orders(&self, flow_id: &str) -> Result<Vec<MarketplaceOrder>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM marketplace_orders WHERE flow_id = $1 ORDER BY hashed_id"
        ))
        .bind(flow_id)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::marketplace_order)
    }
}
