//! [`MarketplaceStore`] for [`PgStore`]: a claim is one `INSERT … ON CONFLICT DO UPDATE …
//! WHERE`, which PostgreSQL evaluates on the row's latest version under its lock, so two
//! replicas racing for one order cannot both get it.

use crate::columns::{Row, all, limit};
use crate::error::{from_sqlx, violation};
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows;
use engine::store::{
    Conflict, ImportClaim, ImportState, LogEntry, LogFilter, LogStats, MarketplaceOrder,
    MarketplaceStore, NewConflict, Resolve, StoreError, StoredLogEntry,
};
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

macro_rules! log_columns {
    () => {
        concat!(
            "id, flow_id, event_key, direction, hashed_id, odoo_order_id, action, outcome, \
     marketplace_status, odoo_order_state, odoo_delivery_state, response_time_ms, retries, \
     error_code, error_text, ",
            ts_text!("at"),
            " AS at"
        )
    };
}

macro_rules! conflict_columns {
    () => {
        concat!(
            "id, flow_id, hashed_id, event_key, odoo_order_id, kind, severity, \
             marketplace_status, odoo_status, odoo_order_state, odoo_delivery_state, \
             recommended_action, auto_resolvable, detail, state, resolution, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at, ",
            ts_text!("resolved_at"),
            " AS resolved_at"
        )
    };
}

macro_rules! conflict_values {
    () => {
        "AS c (flow_id, hashed_id, event_key, odoo_order_id, kind, \
     severity, marketplace_status, odoo_status, odoo_order_state, odoo_delivery_state, \
     recommended_action, auto_resolvable, detail, state, resolution, created_at, updated_at, \
     resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
     $16::timestamptz, $16::timestamptz, $17::timestamptz)"
    };
}

/// An open conflict seen again takes the new states; the first event's key and its creation
/// stay.
macro_rules! open_conflict_upsert {
    () => {
        " ON CONFLICT (flow_id, hashed_id, kind) WHERE state = 'open' \
     DO UPDATE SET odoo_order_id = coalesce(excluded.odoo_order_id, c.odoo_order_id), \
       severity = excluded.severity, marketplace_status = excluded.marketplace_status, \
       odoo_status = excluded.odoo_status, odoo_order_state = excluded.odoo_order_state, \
       odoo_delivery_state = excluded.odoo_delivery_state, \
       recommended_action = excluded.recommended_action, \
       auto_resolvable = excluded.auto_resolvable, detail = excluded.detail, \
       updated_at = excluded.updated_at"
    };
}

const CONFLICT_BY_ID: &str = concat!(
    "SELECT ",
    conflict_columns!(),
    " FROM marketplace_conflicts WHERE id = $1"
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

    async fn set_marketplace_status(
        &self,
        flow_id: &str,
        hashed_id: &str,
        from: Option<&str>,
        to: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE marketplace_orders SET marketplace_status = $4, \
             updated_at = $5::timestamptz \
             WHERE flow_id = $1 AND hashed_id = $2 AND state = 'imported' \
               AND marketplace_status IS NOT DISTINCT FROM $3",
        )
        .bind(flow_id)
        .bind(hashed_id)
        .bind(from)
        .bind(to)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn record_log(&self, entry: &LogEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO marketplace_log AS l (flow_id, event_key, direction, hashed_id, \
             odoo_order_id, action, outcome, marketplace_status, odoo_order_state, \
             odoo_delivery_state, response_time_ms, retries, error_code, error_text, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
               $15::timestamptz) \
             ON CONFLICT (flow_id, event_key) DO UPDATE SET direction = excluded.direction, \
               hashed_id = excluded.hashed_id, odoo_order_id = excluded.odoo_order_id, \
               action = excluded.action, outcome = excluded.outcome, \
               marketplace_status = excluded.marketplace_status, \
               odoo_order_state = excluded.odoo_order_state, \
               odoo_delivery_state = excluded.odoo_delivery_state, \
               response_time_ms = excluded.response_time_ms, retries = excluded.retries, \
               error_code = excluded.error_code, error_text = excluded.error_text, \
               at = excluded.at \
             WHERE excluded.at >= l.at",
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
        .bind(time::format(entry.at))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk(&entry.flow_id))?;
        Ok(())
    }

    async fn marketplace_log(&self, filter: &LogFilter) -> Result<Vec<StoredLogEntry>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            log_columns!(),
            " FROM marketplace_log \
             WHERE ($1::text IS NULL OR flow_id = $1) AND ($2::text IS NULL OR hashed_id = $2) \
             ORDER BY marketplace_log.at DESC, id DESC LIMIT $3"
        ))
        .bind(&filter.flow_id)
        .bind(&filter.hashed_id)
        .bind(limit(filter.limit))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::marketplace_log_entry)
    }

    async fn prune_log(&self, before: Timestamp) -> Result<u64, StoreError> {
        let pruned = sqlx::query("DELETE FROM marketplace_log WHERE at < $1::timestamptz")
            .bind(time::format(before))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(pruned.rows_affected())
    }

    async fn log_stats(
        &self,
        flow_id: Option<&str>,
        since: Timestamp,
    ) -> Result<LogStats, StoreError> {
        let row = sqlx::query(
            "WITH w AS (SELECT outcome, response_time_ms FROM marketplace_log \
                        WHERE at >= $2::timestamptz AND ($1::text IS NULL OR flow_id = $1)) \
             SELECT \
               (SELECT count(*) FROM w) AS total, \
               (SELECT count(*) FROM w WHERE outcome = 'success') AS success, \
               (SELECT count(*) FROM w WHERE outcome = 'failed') AS failed, \
               (SELECT count(*) FROM w WHERE outcome = 'conflict') AS conflict, \
               (SELECT count(*) FROM w WHERE outcome = 'retrying') AS retrying, \
               (SELECT coalesce(sum(response_time_ms), 0)::bigint FROM w) \
                 AS response_time_ms_sum, \
               (SELECT count(response_time_ms) FROM w) AS response_times, \
               (SELECT count(*) FROM marketplace_orders o WHERE o.state = 'imported' \
                  AND ($1::text IS NULL OR o.flow_id = $1)) AS orders, \
               (SELECT count(*) FROM marketplace_orders o WHERE o.state = 'imported' \
                  AND ($1::text IS NULL OR o.flow_id = $1) \
                  AND NOT EXISTS (SELECT 1 FROM marketplace_conflicts c \
                    WHERE c.flow_id = o.flow_id AND c.hashed_id = o.hashed_id \
                      AND c.state = 'open') \
                  AND coalesce((SELECT l.outcome FROM marketplace_log l \
                    WHERE l.flow_id = o.flow_id AND l.hashed_id = o.hashed_id \
                      AND l.outcome <> 'conflict' \
                    ORDER BY l.at DESC, l.id DESC LIMIT 1), 'success') = 'success') \
                 AS orders_in_sync, \
               (SELECT count(*) FROM marketplace_conflicts c WHERE c.state = 'open' \
                  AND ($1::text IS NULL OR c.flow_id = $1)) AS open_conflicts",
        )
        .bind(flow_id)
        .bind(time::format(since))
        .fetch_one(self.pool())
        .await
        .map_err(from_sqlx)?;
        rows::marketplace_log_stats(&Row(&row))
    }

    async fn record_conflict(&self, conflict: &NewConflict) -> Result<Conflict, StoreError> {
        let sql = if conflict.resolution.is_some() {
            concat!(
                "INSERT INTO marketplace_conflicts ",
                conflict_values!(),
                " ON CONFLICT (flow_id, event_key) DO UPDATE SET updated_at = c.updated_at RETURNING ",
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
        let now = time::format(conflict.at);
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
            .fetch_one(self.pool())
            .await;
        let row = match row {
            Ok(row) => row,
            // This event's conflict was stored before and resolved since: it stands.
            Err(error) if matches!(violation(&error), Some((ErrorKind::UniqueViolation, _))) => {
                sqlx::query(concat!(
                    "SELECT ",
                    conflict_columns!(),
                    " FROM marketplace_conflicts WHERE flow_id = $1 AND event_key = $2"
                ))
                .bind(&conflict.flow_id)
                .bind(&conflict.event_key)
                .fetch_one(self.pool())
                .await
                .map_err(from_sqlx)?
            }
            Err(error) => return Err(not_found_on_fk(&conflict.flow_id)(error)),
        };
        rows::marketplace_conflict(&Row(&row))
    }

    async fn conflicts(
        &self,
        flow_id: Option<&str>,
        open_only: bool,
    ) -> Result<Vec<Conflict>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM marketplace_conflicts WHERE ($1::text IS NULL OR flow_id = $1) \
              AND (NOT $2 OR state = 'open') \
              ORDER BY marketplace_conflicts.created_at DESC, id DESC"
        ))
        .bind(flow_id)
        .bind(open_only)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::marketplace_conflict)
    }

    async fn conflict(&self, id: i64) -> Result<Option<Conflict>, StoreError> {
        let row = sqlx::query(CONFLICT_BY_ID)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)?;
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
        let resolved = sqlx::query(concat!(
            "UPDATE marketplace_conflicts SET state = 'resolved', resolution = $2, \
             resolved_at = $3::timestamptz, updated_at = $3::timestamptz \
             WHERE id = $1 AND state = 'open' RETURNING ",
            conflict_columns!()
        ))
        .bind(id)
        .bind(resolution)
        .bind(time::format(now))
        .fetch_optional(self.pool())
        .await
        .map_err(from_sqlx)?;
        if let Some(row) = resolved {
            return Ok(Resolve::Resolved(rows::marketplace_conflict(&Row(&row))?));
        }
        Ok(match self.conflict(id).await? {
            Some(conflict) => Resolve::AlreadyResolved(conflict),
            None => Resolve::NotFound,
        })
    }
}
