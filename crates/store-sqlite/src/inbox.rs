//! [`InboxStore`] for [`SqliteStore`]: inbound events of every flow and their applications.
//! Claims and recorded applications run under `BEGIN IMMEDIATE`, as the outbox's do.

use crate::SqliteStore;
use crate::columns::{Row, all, limit};
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows::{self, encode_headers, to_sql_count};
use engine::store::{
    Application, ApplicationOutcome, ApplicationRecord, InboundEvent, InboundFilter, InboxStore,
    NewInboundEvent, Received, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::error::ErrorKind;
use std::collections::HashMap;

macro_rules! event_columns {
    () => {
        "id, flow_id, event_id, kind, subject, source, headers, body, status, attempts, \
         max_attempts, next_attempt_at, last_error, failure_class, result, lease_owner, \
         lease_until, received_at, updated_at, applied_at"
    };
}

/// The oldest pending events of a flow, at most one per subject (events of one subject are
/// applied in arrival order), that no live lease holds.
const CLAIM: &str = concat!(
    "UPDATE inbox_events SET lease_owner = ?1, lease_until = ?2 WHERE id IN (\
       SELECT e.id FROM inbox_events AS e \
       WHERE e.flow_id = ?5 AND e.status = 'PENDING' AND e.next_attempt_at <= ?3 \
         AND (e.lease_until IS NULL OR e.lease_until < ?3) \
         AND NOT EXISTS (SELECT 1 FROM inbox_events AS older \
                         WHERE older.flow_id = e.flow_id AND older.subject = e.subject \
                           AND older.id < e.id AND older.status = 'PENDING') \
       ORDER BY e.id LIMIT ?4) \
     RETURNING ",
    event_columns!()
);

const RECORD_APPLIED: &str = "UPDATE inbox_events SET status = 'APPLIED', \
     attempts = attempts + 1, result = ?3, applied_at = ?4, updated_at = ?4, \
     lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_RETRY: &str = "UPDATE inbox_events SET attempts = attempts + 1, \
     next_attempt_at = ?3, last_error = ?4, failure_class = ?5, updated_at = ?6, \
     lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_FAILED: &str = "UPDATE inbox_events SET status = 'FAILED', attempts = attempts + 1, \
     last_error = ?3, failure_class = ?4, updated_at = ?5, lease_owner = NULL, \
     lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

impl InboxStore for SqliteStore {
    async fn receive(&self, event: &NewInboundEvent) -> Result<Received, StoreError> {
        let mut tx = self.write_tx().await?;
        let received_at = format_ts(event.received_at);
        let stored: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbox_events (flow_id, event_id, kind, subject, source, headers, body, \
             status, attempts, max_attempts, next_attempt_at, received_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', 0, ?8, ?9, ?9, ?9) \
             ON CONFLICT (flow_id, event_id) DO NOTHING RETURNING id",
        )
        .bind(&event.flow_id)
        .bind(&event.event_id)
        .bind(&event.kind)
        .bind(&event.subject)
        .bind(&event.source)
        .bind(encode_headers(&event.headers))
        .bind(&event.body)
        .bind(i64::from(event.max_attempts))
        .bind(&received_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|error| match violation(&error) {
            Some((ErrorKind::ForeignKeyViolation, _)) => {
                StoreError::not_found(format!("flow {:?}", event.flow_id))
            }
            _ => map_sqlx(error),
        })?;
        let received = match stored {
            Some(id) => Received::Stored(id),
            None => {
                let id: i64 = sqlx::query_scalar(
                    "SELECT id FROM inbox_events WHERE flow_id = ? AND event_id = ?",
                )
                .bind(&event.flow_id)
                .bind(&event.event_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                Received::Duplicate(id)
            }
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(received)
    }

    async fn claim_inbound(
        &self,
        owner: &str,
        flow_id: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<InboundEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = now.checked_add(lease).unwrap_or(now);
        let mut tx = self.write_tx().await?;
        let found = sqlx::query(CLAIM)
            .bind(owner)
            .bind(format_ts(until))
            .bind(format_ts(now))
            .bind(i64::from(limit))
            .bind(flow_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        let mut events = all(&found, rows::inbound_event)?;
        events.sort_by_key(|event| event.id);
        Ok(events)
    }

    async fn release_inbound_leases_of(
        &self,
        owner: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let freed = sqlx::query(
            "UPDATE inbox_events SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?2 \
             WHERE lease_owner = ?1 AND status = 'PENDING'",
        )
        .bind(owner)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(freed.rows_affected())
    }

    async fn next_inbound_due_by_flow(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT flow_id, min(next_attempt_at) FROM inbox_events WHERE status = 'PENDING' \
             GROUP BY flow_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        found
            .into_iter()
            .map(|(flow, due)| Ok((flow, crate::time::parse_ts(&due)?)))
            .collect()
    }

    async fn record_application(
        &self,
        id: i64,
        owner: &str,
        application: &Application,
    ) -> Result<bool, StoreError> {
        let at = format_ts(application.started_at);
        let mut tx = self.write_tx().await?;
        let (updated, class, detail) = match &application.outcome {
            ApplicationOutcome::Applied { result } => {
                let updated = sqlx::query(RECORD_APPLIED)
                    .bind(id)
                    .bind(owner)
                    .bind(result)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, None, result)
            }
            ApplicationOutcome::Retry {
                error,
                failure_class,
                next_attempt_at,
            } => {
                let updated = sqlx::query(RECORD_RETRY)
                    .bind(id)
                    .bind(owner)
                    .bind(format_ts(*next_attempt_at))
                    .bind(error)
                    .bind(failure_class.as_str())
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, Some(*failure_class), error)
            }
            ApplicationOutcome::Failed {
                error,
                failure_class,
            } => {
                let updated = sqlx::query(RECORD_FAILED)
                    .bind(id)
                    .bind(owner)
                    .bind(error)
                    .bind(failure_class.as_str())
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, Some(*failure_class), error)
            }
        };
        if updated.map_err(map_sqlx)?.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO inbox_applications (event, worker, started_at, duration_ms, outcome, \
             failure_class, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(owner)
        .bind(&at)
        .bind(to_sql_count(application.duration_ms))
        .bind(application.outcome.name())
        .bind(class.map(|class| class.as_str()))
        .bind(detail)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    async fn inbound_event(&self, id: i64) -> Result<Option<InboundEvent>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM inbox_events WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::inbound_event(&Row(row)))
            .transpose()
    }

    async fn inbound_events(
        &self,
        filter: &InboundFilter,
    ) -> Result<Vec<InboundEvent>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM inbox_events WHERE (?1 IS NULL OR flow_id = ?1) \
             AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3"
        ))
        .bind(filter.flow_id.as_deref())
        .bind(filter.status.map(|status| status.as_str()))
        .bind(limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::inbound_event)
    }

    async fn applications(&self, id: i64) -> Result<Vec<ApplicationRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT event, worker, started_at, duration_ms, outcome, failure_class, detail \
             FROM inbox_applications WHERE event = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::application)
    }

    async fn retry_inbound(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE inbox_events SET status = 'PENDING', attempts = 0, next_attempt_at = ?2, \
             updated_at = ?2, lease_owner = NULL, lease_until = NULL \
             WHERE id = ?1 AND status IN ('PENDING', 'FAILED')",
        )
        .bind(id)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn discard_inbound(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE inbox_events SET status = 'DISCARDED', updated_at = ?2, lease_owner = NULL, \
             lease_until = NULL WHERE id = ?1 AND status IN ('PENDING', 'FAILED')",
        )
        .bind(id)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(updated.rows_affected() > 0)
    }
}
