//! [`OutboxStore`] for [`PgStore`]: the packets of every flow and their attempts, shared
//! safely by several `odoo-bridge run` processes.
//!
//! - A page of packets goes in with one `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT (flow_id,
//!   subject_model, subject_id, version) DO NOTHING`, in the transaction that moves the feed's
//!   cursor. The flow's row is locked first, so two processes writing the same flow's page
//!   queue instead of interleaving.
//! - A claim is one statement: a CTE picks the due packets `FOR UPDATE SKIP LOCKED` (a packet
//!   another claim is leasing right now is skipped, not waited for; one leased a moment ago is
//!   re-checked against its new `lease_until` and left out), then the UPDATE leases them.
//!
//! The decisions the contract leaves open are those of the SQLite store (see its `outbox`
//! module); the contract test suite holds both to them.

use crate::columns::{Row, all, limit};
use crate::error::{from_sqlx, violation};
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows::{self, to_sql_count};
use engine::store::{
    Attempt, AttemptOutcome, AttemptRecord, EnqueueCounts, FeedCursor, FlowStats, LatestPacket,
    NewPacket, OutboxStore, Packet, PacketFilter, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgDatabaseError;
use std::collections::HashMap;

/// The columns of `packets` as [`rows::packet`] reads them.
macro_rules! packet_columns {
    () => {
        concat!(
            "id, flow_id, tenant_id, subject_model, subject_id, reference, target, event, \
             version, payload, payload_hash, status, attempts, max_attempts, ",
            ts_text!("next_attempt_at"),
            " AS next_attempt_at, last_error, failure_class, lease_owner, ",
            ts_text!("lease_until"),
            " AS lease_until, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at, ",
            ts_text!("delivered_at"),
            " AS delivered_at"
        )
    };
}

/// A page of packets, due at their creation; a repeated (flow, subject, version) is left as
/// it was and not counted in the rows affected.
const INSERT_PACKETS: &str = "
INSERT INTO packets (id, flow_id, tenant_id, subject_model, subject_id, reference, target, event,
    version, payload, payload_hash, status, attempts, max_attempts, next_attempt_at, created_at,
    updated_at)
SELECT p.id, $1, $2, p.subject_model, p.subject_id, p.reference, p.target, p.event, p.version,
    p.payload, p.payload_hash, 'PENDING', 0, p.max_attempts, p.created_at::timestamptz,
    p.created_at::timestamptz, p.created_at::timestamptz
FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
    $9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::text[])
    AS p(id, subject_model, subject_id, reference, target, event, version, payload,
         payload_hash, max_attempts, created_at)
ON CONFLICT (flow_id, subject_model, subject_id, version) DO NOTHING";

const UPSERT_CURSOR: &str = "
INSERT INTO flow_cursors (flow_id, feed, cursor_second, cursor_id, updated_at)
VALUES ($1, $2, $3::timestamptz, $4, now())
ON CONFLICT (flow_id, feed) DO UPDATE SET cursor_second = excluded.cursor_second,
    cursor_id = excluded.cursor_id, updated_at = excluded.updated_at";

const SELECT_LATEST: &str = "
SELECT DISTINCT ON (subject_id) subject_id, version, event, payload_hash, status
FROM packets
WHERE flow_id = $1 AND subject_model = $2 AND subject_id = ANY($3::bigint[])
ORDER BY subject_id, version DESC";

/// `due` is materialised (it has a locking clause), so the choice is made once; the rows it
/// locked stay locked until the statement's transaction ends. Two statements, not one with
/// `($5 IS NULL OR flow_id = $5)`: a generic plan of that cannot use the per-flow index, and
/// with 20,000 packets pending each claim then walked all of them.
macro_rules! claim_sql {
    ($flow_filter:literal) => {
        concat!(
            "
WITH due AS (
    SELECT p.id FROM packets AS p
    WHERE p.status = 'PENDING'",
            $flow_filter,
            "
      AND p.next_attempt_at <= $3::timestamptz
      AND (p.lease_until IS NULL OR p.lease_until < $3::timestamptz)
      AND NOT EXISTS (
          SELECT 1 FROM packets AS older
          WHERE older.flow_id = p.flow_id
            AND older.subject_model = p.subject_model
            AND older.subject_id = p.subject_id
            AND older.version < p.version
            AND older.status = 'PENDING')
    ORDER BY p.next_attempt_at, p.id
    LIMIT $4
    FOR UPDATE OF p SKIP LOCKED)
UPDATE packets SET lease_owner = $1, lease_until = $2::timestamptz
WHERE id IN (SELECT id FROM due)
RETURNING ",
            packet_columns!()
        )
    };
}

const CLAIM_ANY: &str = claim_sql!("");
const CLAIM_FOR_FLOW: &str = claim_sql!("\n      AND p.flow_id = $5");

// Each outcome is settled and its attempt recorded in one statement (one round trip, one
// implicit transaction): the attempt row is written only when the packet was still this
// worker's to settle.
const RECORD_DELIVERED: &str = "
WITH settled AS (
    UPDATE packets SET status = 'DELIVERED', attempts = attempts + 1,
        delivered_at = $3::timestamptz, updated_at = $3::timestamptz,
        lease_owner = NULL, lease_until = NULL
    WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'
    RETURNING id)
INSERT INTO packet_attempts (packet_id, worker, started_at, duration_ms, status_code, outcome,
    failure_class, error)
SELECT id, $2, $3::timestamptz, $4, $5, $6, NULL, NULL FROM settled";

const RECORD_RETRY: &str = "
WITH settled AS (
    UPDATE packets SET attempts = attempts + 1, next_attempt_at = $3::timestamptz,
        last_error = $4, failure_class = $5, updated_at = $6::timestamptz,
        lease_owner = NULL, lease_until = NULL
    WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'
    RETURNING id)
INSERT INTO packet_attempts (packet_id, worker, started_at, duration_ms, status_code, outcome,
    failure_class, error)
SELECT id, $2, $6::timestamptz, $7, $8, $9, $5, $4 FROM settled";

const RECORD_FAILED: &str = "
WITH settled AS (
    UPDATE packets SET status = 'FAILED', attempts = attempts + 1,
        last_error = $3, failure_class = $4, updated_at = $5::timestamptz,
        lease_owner = NULL, lease_until = NULL
    WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'
    RETURNING id)
INSERT INTO packet_attempts (packet_id, worker, started_at, duration_ms, status_code, outcome,
    failure_class, error)
SELECT id, $2, $5::timestamptz, $6, $7, $8, $4, $3 FROM settled";

const SELECT_STATS: &str = "
SELECT f.id AS flow_id,
    coalesce(s.delivered, 0) AS delivered,
    coalesce(s.pending, 0) AS pending,
    coalesce(s.failed, 0) AS failed,
    coalesce(i.pending, 0) AS inbound_pending,
    coalesce(i.failed, 0) AS inbound_failed
FROM flows AS f
LEFT JOIN (
    SELECT flow_id,
        count(*) FILTER (WHERE status = 'DELIVERED' AND delivered_at >= $1::timestamptz)
            AS delivered,
        count(*) FILTER (WHERE status = 'PENDING') AS pending,
        count(*) FILTER (WHERE status = 'FAILED') AS failed
    FROM packets
    WHERE status IN ('PENDING', 'FAILED') OR delivered_at >= $1::timestamptz
    GROUP BY flow_id) AS s ON s.flow_id = f.id
LEFT JOIN (
    SELECT flow_id,
        count(*) FILTER (WHERE status = 'PENDING') AS pending,
        count(*) FILTER (WHERE status = 'FAILED') AS failed
    FROM inbox_events
    WHERE status IN ('PENDING', 'FAILED')
    GROUP BY flow_id) AS i ON i.flow_id = f.id
ORDER BY f.name, f.id";

/// A packet id taken by another subject or version is a conflict. PostgreSQL's detail names
/// the id (`Key (id)=(…) already exists.`); packet ids hold no secret.
fn packets_error(error: sqlx::Error, flow_id: &str) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, _)) => {
            let detail = match &error {
                sqlx::Error::Database(database) => database
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(PgDatabaseError::detail)
                    .map(str::to_owned),
                _ => None,
            };
            StoreError::conflict(format!(
                "packet id of flow {flow_id:?} taken by another subject or version{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ))
        }
        Some((ErrorKind::ForeignKeyViolation, _)) => {
            StoreError::not_found(format!("flow {flow_id:?}"))
        }
        _ => from_sqlx(error),
    }
}

impl OutboxStore for PgStore {
    async fn latest_packets(
        &self,
        flow_id: &str,
        model: &str,
        subject_ids: &[i64],
    ) -> Result<Vec<LatestPacket>, StoreError> {
        if subject_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query(SELECT_LATEST)
            .bind(flow_id)
            .bind(model)
            .bind(subject_ids)
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        all(&found, rows::latest_packet)
    }

    async fn enqueue(
        &self,
        flow_id: &str,
        packets: &[NewPacket],
        cursor: Option<FeedCursor<'_>>,
    ) -> Result<EnqueueCounts, StoreError> {
        // Dropping `tx` on an early return rolls back: neither packets nor cursor move.
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        let tenant: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM flows WHERE id = $1 FOR NO KEY UPDATE")
                .bind(flow_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        let tenant = tenant.ok_or_else(|| StoreError::not_found(format!("flow {flow_id:?}")))?;
        if let Some(cursor) = cursor {
            sqlx::query(UPSERT_CURSOR)
                .bind(flow_id)
                .bind(cursor.feed)
                .bind(time::format(cursor.checkpoint.second))
                .bind(cursor.checkpoint.last_id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        let inserted = if packets.is_empty() {
            0
        } else {
            let column =
                |f: fn(&NewPacket) -> &str| -> Vec<&str> { packets.iter().map(f).collect() };
            let ids = column(|p| p.id.as_str());
            let models = column(|p| p.subject.model.as_str());
            let subject_ids: Vec<i64> = packets.iter().map(|p| p.subject.id).collect();
            let references: Vec<Option<&str>> =
                packets.iter().map(|p| p.reference.as_deref()).collect();
            let targets = column(|p| p.target.as_str());
            let events = column(|p| p.event.as_str());
            let versions: Vec<i64> = packets.iter().map(|p| i64::from(p.version)).collect();
            let payloads = column(|p| p.payload.as_str());
            let hashes = column(|p| p.payload_hash.as_str());
            let max_attempts: Vec<i64> =
                packets.iter().map(|p| i64::from(p.max_attempts)).collect();
            let created: Vec<String> = packets.iter().map(|p| time::format(p.created_at)).collect();
            sqlx::query(INSERT_PACKETS)
                .bind(flow_id)
                .bind(&tenant)
                .bind(ids)
                .bind(models)
                .bind(subject_ids)
                .bind(references)
                .bind(targets)
                .bind(events)
                .bind(versions)
                .bind(payloads)
                .bind(hashes)
                .bind(max_attempts)
                .bind(created)
                .execute(&mut *tx)
                .await
                .map_err(|error| packets_error(error, flow_id))?
                .rows_affected()
        };
        tx.commit().await.map_err(from_sqlx)?;
        let total = u64::try_from(packets.len()).unwrap_or(u64::MAX);
        Ok(EnqueueCounts {
            inserted,
            already_stored: total.saturating_sub(inserted),
        })
    }

    async fn claim_due(
        &self,
        owner: &str,
        flow_id: Option<&str>,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Packet>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = now.checked_add(lease).unwrap_or(now);
        let query = sqlx::query(match flow_id {
            Some(_) => CLAIM_FOR_FLOW,
            None => CLAIM_ANY,
        })
        .bind(owner)
        .bind(time::format(until))
        .bind(time::format(now))
        .bind(i64::from(limit));
        let query = match flow_id {
            Some(id) => query.bind(id),
            None => query,
        };
        let found = query.fetch_all(self.pool()).await.map_err(from_sqlx)?;
        let mut packets = all(&found, rows::packet)?;
        // RETURNING comes in no particular order.
        packets.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(packets)
    }

    async fn next_due_by_flow(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let found: Vec<(String, String)> = sqlx::query_as(concat!(
            "SELECT flow_id, ",
            ts_text!("min(next_attempt_at)"),
            " FROM packets WHERE status = 'PENDING' GROUP BY flow_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        found
            .into_iter()
            .map(|(flow, due)| Ok((flow, time::parse(&due)?)))
            .collect()
    }

    async fn release(
        &self,
        packet_id: &str,
        owner: &str,
        next_attempt_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let released = sqlx::query(
            "UPDATE packets SET next_attempt_at = $3::timestamptz, lease_owner = NULL, \
             lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'",
        )
        .bind(packet_id)
        .bind(owner)
        .bind(time::format(next_attempt_at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(released.rows_affected() > 0)
    }

    async fn record_attempt(
        &self,
        packet_id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let at = time::format(attempt.started_at);
        let duration_ms = to_sql_count(attempt.duration_ms);
        let status_code = attempt.status_code.map(i64::from);
        let outcome = attempt.outcome.name();
        let query = match &attempt.outcome {
            AttemptOutcome::Delivered => sqlx::query(RECORD_DELIVERED)
                .bind(packet_id)
                .bind(owner)
                .bind(&at),
            AttemptOutcome::Retry {
                error,
                failure_class,
                next_attempt_at,
            } => sqlx::query(RECORD_RETRY)
                .bind(packet_id)
                .bind(owner)
                .bind(time::format(*next_attempt_at))
                .bind(error)
                .bind(failure_class.as_str())
                .bind(&at),
            AttemptOutcome::Failed {
                error,
                failure_class,
            } => sqlx::query(RECORD_FAILED)
                .bind(packet_id)
                .bind(owner)
                .bind(error)
                .bind(failure_class.as_str())
                .bind(&at),
        };
        let recorded = query
            .bind(duration_ms)
            .bind(status_code)
            .bind(outcome)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(recorded.rows_affected() > 0)
    }

    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<u64, StoreError> {
        let freed = sqlx::query(
            "UPDATE packets SET lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = $2::timestamptz WHERE lease_owner = $1 AND status = 'PENDING'",
        )
        .bind(owner)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(freed.rows_affected())
    }

    async fn packet(&self, id: &str) -> Result<Option<Packet>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            packet_columns!(),
            " FROM packets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(from_sqlx)?;
        row.as_ref().map(|row| rows::packet(&Row(row))).transpose()
    }

    async fn packets(&self, filter: &PacketFilter) -> Result<Vec<Packet>, StoreError> {
        // NULL filters match everything; `LIMIT NULL` is no limit.
        let found = sqlx::query(concat!(
            "SELECT ",
            packet_columns!(),
            " FROM packets WHERE ($1::text IS NULL OR flow_id = $1) \
             AND ($2::text IS NULL OR status = $2) \
             ORDER BY created_at DESC, subject_id DESC, version DESC, id DESC LIMIT $3"
        ))
        .bind(filter.flow_id.as_deref())
        .bind(filter.status.map(|status| status.as_str()))
        .bind(limit(filter.limit))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::packet)
    }

    async fn attempts(&self, packet_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT packet_id, worker, ",
            ts_text!("started_at"),
            " AS started_at, duration_ms, status_code, outcome, failure_class, error \
             FROM packet_attempts WHERE packet_id = $1 ORDER BY id"
        ))
        .bind(packet_id)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::attempt)
    }

    async fn retry_now(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET status = 'PENDING', attempts = 0, \
             next_attempt_at = $2::timestamptz, updated_at = $2::timestamptz, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND status IN ('PENDING', 'FAILED')",
        )
        .bind(id)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn bring_forward(&self, flow_id: &str, now: Timestamp) -> Result<u64, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET next_attempt_at = $2::timestamptz, updated_at = $2::timestamptz \
             WHERE flow_id = $1 AND status = 'PENDING' AND next_attempt_at > $2::timestamptz \
               AND (lease_until IS NULL OR lease_until < $2::timestamptz)",
        )
        .bind(flow_id)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(updated.rows_affected())
    }

    async fn discard(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET status = 'DISCARDED', updated_at = $2::timestamptz, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND status IN ('PENDING', 'FAILED')",
        )
        .bind(id)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn flow_stats(&self, since: Timestamp) -> Result<Vec<FlowStats>, StoreError> {
        let found = sqlx::query(SELECT_STATS)
            .bind(time::format(since))
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        all(&found, rows::flow_stats)
    }
}
