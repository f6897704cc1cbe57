//! [`MarketplaceStore`] for [`SqliteStore`]: claims and records run under `BEGIN IMMEDIATE`,
//! so one writer at a time decides who holds an order.

use crate::SqliteStore;
use crate::columns::{Row, all, limit};
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows;
use engine::store::{
    Conflict, ImportClaim, ImportState, LogEntry, LogFilter, LogStats, MarketplaceOrder,
    MarketplaceStore, NewConflict, Resolve, StoreError, StoredLogEntry,
};
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

macro_rules! log_columns {
    () => {
        "id, flow_id, event_key, direction, hashed_id, odoo_order_id, action, \
     outcome, marketplace_status, odoo_order_state, odoo_delivery_state, response_time_ms, \
     retries, error_code, error_text, at"
    };
}

macro_rules! conflict_columns {
    () => {
        "id, flow_id, hashed_id, event_key, odoo_order_id, kind, severity, marketplace_status, \
         odoo_status, odoo_order_state, odoo_delivery_state, recommended_action, \
         auto_resolvable, detail, state, resolution, created_at, updated_at, resolved_at"
    };
}

macro_rules! conflict_values {
    () => {
        "(flow_id, hashed_id, event_key, odoo_order_id, kind, severity, \
     marketplace_status, odoo_status, odoo_order_state, odoo_delivery_state, \
     recommended_action, auto_resolvable, detail, state, resolution, created_at, updated_at, \
     resolved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
     ?16, ?16, ?17)"
    };
}

/// An open conflict seen again takes the new states; the first event's key and its creation
/// stay.
macro_rules! open_conflict_upsert {
    () => {
        " ON CONFLICT (flow_id, hashed_id, kind) WHERE state = 'open' \
     DO UPDATE SET odoo_order_id = coalesce(excluded.odoo_order_id, \
       marketplace_conflicts.odoo_order_id), severity = excluded.severity, \
       marketplace_status = excluded.marketplace_status, odoo_status = excluded.odoo_status, \
       odoo_order_state = excluded.odoo_order_state, \
       odoo_delivery_state = excluded.odoo_delivery_state, \
       recommended_action = excluded.recommended_action, \
       auto_resolvable = excluded.auto_resolvable, detail = excluded.detail, \
       updated_at = excluded.updated_at"
    };
}

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

    async fn set_marketplace_status(
        &self,
        flow_id: &str,
        hashed_id: &str,
        from: Option<&str>,
        to: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE marketplace_orders SET marketplace_status = ?4, updated_at = ?5 \
             WHERE flow_id = ?1 AND hashed_id = ?2 AND state = 'imported' \
               AND marketplace_status IS ?3",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(from)
        .bind(to)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(changed > 0)
    }

    async fn record_log(&self, entry: &LogEntry) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO marketplace_log (flow_id, event_key, direction, hashed_id, \
             odoo_order_id, action, outcome, marketplace_status, odoo_order_state, \
             odoo_delivery_state, response_time_ms, retries, error_code, error_text, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT (flow_id, event_key) DO UPDATE SET direction = excluded.direction, \
               hashed_id = excluded.hashed_id, odoo_order_id = excluded.odoo_order_id, \
               action = excluded.action, outcome = excluded.outcome, \
               marketplace_status = excluded.marketplace_status, \
               odoo_order_state = excluded.odoo_order_state, \
               odoo_delivery_state = excluded.odoo_delivery_state, \
               response_time_ms = excluded.response_time_ms, retries = excluded.retries, \
               error_code = excluded.error_code, error_text = excluded.error_text, \
               at = excluded.at \
             WHERE excluded.at >= marketplace_log.at",
        )
        .bind(&entry.flow_id)
        .bind(&entry.event_key)
        .bind(entry.direction.as_str())
        .bind(&entry.hashed_id)
        .bind(entry.odoo_order_id)
        .bind(&entry.action)
        .bind(entry.outcome.as_str())
        .bind(&entry.marketplace_status)
        .bind(&entry.odoo_order_state)
        .bind(&entry.odoo_delivery_state)
        .bind(
            entry
                .response_time_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        )
        .bind(i64::from(entry.retries))
        .bind(&entry.error_code)
        .bind(&entry.error_text)
        .bind(format_ts(entry.at))
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk(&entry.flow_id))?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn marketplace_log(&self, filter: &LogFilter) -> Result<Vec<StoredLogEntry>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            log_columns!(),
            " FROM marketplace_log \
             WHERE (?1 IS NULL OR flow_id = ?1) AND (?2 IS NULL OR hashed_id = ?2) \
             ORDER BY at DESC, id DESC LIMIT ?3"
        ))
        .bind(&filter.flow_id)
        .bind(&filter.hashed_id)
        .bind(limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::marketplace_log_entry)
    }

    async fn prune_log(&self, before: Timestamp) -> Result<u64, StoreError> {
        let pruned = sqlx::query("DELETE FROM marketplace_log WHERE at < ?")
            .bind(format_ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(pruned.rows_affected())
    }

    async fn log_stats(
        &self,
        flow_id: Option<&str>,
        since: Timestamp,
    ) -> Result<LogStats, StoreError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT count(*) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1)) AS total, \
               (SELECT count(*) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1) AND l.outcome = 'success') AS success, \
               (SELECT count(*) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1) AND l.outcome = 'failed') AS failed, \
               (SELECT count(*) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1) AND l.outcome = 'conflict') AS conflict, \
               (SELECT count(*) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1) AND l.outcome = 'retrying') AS retrying, \
               (SELECT coalesce(sum(l.response_time_ms), 0) FROM marketplace_log l \
                  WHERE l.at >= ?2 AND (?1 IS NULL OR l.flow_id = ?1)) AS response_time_ms_sum, \
               (SELECT count(l.response_time_ms) FROM marketplace_log l WHERE l.at >= ?2 \
                  AND (?1 IS NULL OR l.flow_id = ?1)) AS response_times, \
               (SELECT count(*) FROM marketplace_orders o WHERE o.state = 'imported' \
                  AND (?1 IS NULL OR o.flow_id = ?1)) AS orders, \
               (SELECT count(*) FROM marketplace_orders o WHERE o.state = 'imported' \
                  AND (?1 IS NULL OR o.flow_id = ?1) \
                  AND NOT EXISTS (SELECT 1 FROM marketplace_conflicts c \
                    WHERE c.flow_id = o.flow_id AND c.hashed_id = o.hashed_id \
                      AND c.state = 'open') \
                  AND coalesce((SELECT l.outcome FROM marketplace_log l \
                    WHERE l.flow_id = o.flow_id AND l.hashed_id = o.hashed_id \
                      AND l.outcome <> 'conflict' \
                    ORDER BY l.at DESC, l.id DESC LIMIT 1), 'success') = 'success') \
                 AS orders_in_sync, \
               (SELECT count(*) FROM marketplace_conflicts c WHERE c.state = 'open' \
                  AND (?1 IS NULL OR c.flow_id = ?1)) AS open_conflicts",
        )
        .bind(flow_id)
        .bind(format_ts(since))
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows::marketplace_log_stats(&Row(&row))
    }

    async fn record_conflict(&self, conflict: &NewConflict) -> Result<Conflict, StoreError> {
        let sql = if conflict.resolution.is_some() {
            concat!(
                "INSERT INTO marketplace_conflicts ",
                conflict_values!(),
                " ON CONFLICT (flow_id, event_key) DO UPDATE SET updated_at = updated_at RETURNING ",
                conflict_columns!()
            )
        } else {
            concat!(
                "INSERT INTO marketplace_conflicts ",
                conflict_values!(),
                open_conflict_upsert!(),
                " RETURNING ",
                conflict_columns!()
            )
        };
        let mut tx = self.write_tx().await?;
        let now = format_ts(conflict.at);
        let row = sqlx::query(sql)
            .bind(&conflict.flow_id)
            .bind(&conflict.hashed_id)
            .bind(&conflict.event_key)
            .bind(conflict.odoo_order_id)
            .bind(&conflict.kind)
            .bind(conflict.severity.as_str())
            .bind(&conflict.marketplace_status)
            .bind(&conflict.odoo_status)
            .bind(&conflict.odoo_order_state)
            .bind(&conflict.odoo_delivery_state)
            .bind(&conflict.recommended_action)
            .bind(conflict.auto_resolvable)
            .bind(&conflict.detail)
            .bind(if conflict.resolution.is_some() {
                "resolved"
            } else {
                "open"
            })
            .bind(&conflict.resolution)
            .bind(&now)
            .bind(conflict.resolution.as_ref().map(|_| now.clone()))
            .fetch_one(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            // This event's conflict was stored before and resolved since: it stands.
            Err(error) if matches!(violation(&error), Some((ErrorKind::UniqueViolation, _))) => {
                sqlx::query(concat!(
                    "SELECT ",
                    conflict_columns!(),
                    " FROM marketplace_conflicts WHERE flow_id = ?1 AND event_key = ?2"
                ))
                .bind(&conflict.flow_id)
                .bind(&conflict.event_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?
            }
            Err(error) => return Err(not_found_on_fk(&conflict.flow_id)(error)),
        };
        let stored = rows::marketplace_conflict(&Row(&row))?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(stored)
    }

    async fn conflicts(
        &self,
        flow_id: Option<&str>,
        open_only: bool,
    ) -> Result<Vec<Conflict>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM marketplace_conflicts WHERE (?1 IS NULL OR flow_id = ?1) \
              AND (?2 = 0 OR state = 'open') ORDER BY created_at DESC, id DESC"
        ))
        .bind(flow_id)
        .bind(open_only)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::marketplace_conflict)
    }

    async fn conflict(&self, id: i64) -> Result<Option<Conflict>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM marketplace_conflicts WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::marketplace_conflict(&Row(row)))
            .transpose()
    }

    async fn resolve_conflict(
        &self,
        id: i64,
        resolution: &str,
        now: Timestamp,
    ) -> Result<Resolve, StoreError> {
        let mut tx = self.write_tx().await?;
        let resolved = sqlx::query(concat!(
            "UPDATE marketplace_conflicts SET state = 'resolved', resolution = ?2, \
             resolved_at = ?3, updated_at = ?3 WHERE id = ?1 AND state = 'open' RETURNING ",
            conflict_columns!()
        ))
        .bind(id)
        .bind(resolution)
        .bind(format_ts(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let outcome = match resolved {
            Some(row) => Resolve::Resolved(rows::marketplace_conflict(&Row(&row))?),
            None => {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    conflict_columns!(),
                    " FROM marketplace_conflicts WHERE id = ?1"
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                match row {
                    Some(row) => Resolve::AlreadyResolved(rows::marketplace_conflict(&Row(&row))?),
                    None => Resolve::NotFound,
                }
            }
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(outcome)
    }
}
