//! [`OutboxStore`] for [`SqliteStore`]: the packets of every flow and their attempts.
//!
//! Every write that reads before it writes, or writes more than one statement, runs under
//! `BEGIN IMMEDIATE`: SQLite allows one writer at a time, and taking the write lock up front
//! makes a second writer (another task, another process on the same file) wait on
//! `busy_timeout` instead of failing with `SQLITE_BUSY` when it upgrades a read. That is also
//! what makes a claim exclusive: its select and its update run while no other connection can
//! write, so no packet is ever leased to two owners at once.
//!
//! Decisions the contract leaves open, the same on both stores:
//! - `record_attempt` is guarded on the lease *owner* (and on the packet still being PENDING),
//!   not on `lease_until`: a worker whose lease ran out while it was sending still records the
//!   outcome if nobody claimed the packet meanwhile.
//! - Only an older *PENDING* version holds a newer one back from claims: a FAILED or DISCARDED
//!   v1 lets v2 go (the payload carries its version, so a receiver can ignore a late v1 that a
//!   person retries afterwards).
//! - `latest_packets` considers every status, DISCARDED included, so a discarded version is
//!   never written again under the same number.
//! - `retry_now` and `discard` clear any lease: a person's decision wins over a worker in
//!   flight, whose `record_attempt` then returns `false`.

use crate::SqliteStore;
use crate::columns::{Row, all, limit};
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows::{self, to_sql_count};
use engine::store::{
    Attempt, AttemptOutcome, AttemptRecord, EnqueueCounts, FeedCursor, FlowStats, LatestPacket,
    NewPacket, OutboxStore, Packet, PacketFilter, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::error::ErrorKind;
use std::collections::HashMap;

/// The columns of `packets` that [`rows::packet`] reads.
macro_rules! packet_columns {
    () => {
        "id, flow_id, tenant_id, subject_model, subject_id, reference, target, event, version, \
         payload, payload_hash, status, attempts, max_attempts, next_attempt_at, last_error, \
         failure_class, lease_owner, lease_until, created_at, updated_at, delivered_at"
    };
}

/// Due at its creation; a repeated (flow, subject, version) is left as it was.
const INSERT_PACKET: &str = "INSERT INTO packets (id, flow_id, tenant_id, subject_model, \
     subject_id, reference, target, event, version, payload, payload_hash, status, attempts, \
     max_attempts, next_attempt_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'PENDING', 0, ?12, ?13, ?13, ?13) \
     ON CONFLICT (flow_id, subject_model, subject_id, version) DO NOTHING";

const UPSERT_CURSOR: &str = "INSERT INTO flow_cursors (flow_id, feed, cursor_second, cursor_id, \
     updated_at) VALUES (?, ?, ?, ?, ?) \
     ON CONFLICT (flow_id, feed) DO UPDATE SET cursor_second = excluded.cursor_second, \
     cursor_id = excluded.cursor_id, updated_at = excluded.updated_at";

/// The newest version of each subject among a JSON array of ids.
const SELECT_LATEST: &str = "SELECT p.subject_id, p.version, p.event, p.payload_hash, p.status \
     FROM packets AS p \
     WHERE p.flow_id = ?1 AND p.subject_model = ?2 \
       AND p.subject_id IN (SELECT value FROM json_each(?3)) \
       AND p.version = (SELECT max(n.version) FROM packets AS n \
                        WHERE n.flow_id = p.flow_id AND n.subject_model = p.subject_model \
                          AND n.subject_id = p.subject_id) \
     ORDER BY p.subject_id";

/// Two statements, not one with `(?5 IS NULL OR flow_id = ?5)`, which keeps SQLite from using
/// the per-flow index.
macro_rules! claim_sql {
    ($flow_filter:literal) => {
        concat!(
            "UPDATE packets SET lease_owner = ?1, lease_until = ?2 WHERE id IN (\
               SELECT p.id FROM packets AS p \
               WHERE p.status = 'PENDING'",
            $flow_filter,
            " AND p.next_attempt_at <= ?3 \
                 AND (p.lease_until IS NULL OR p.lease_until < ?3) \
                 AND NOT EXISTS (SELECT 1 FROM packets AS older \
                                 WHERE older.flow_id = p.flow_id \
                                   AND older.subject_model = p.subject_model \
                                   AND older.subject_id = p.subject_id \
                                   AND older.version < p.version \
                                   AND older.status = 'PENDING') \
               ORDER BY p.next_attempt_at, p.id LIMIT ?4) \
             RETURNING ",
            packet_columns!()
        )
    };
}

const CLAIM_ANY: &str = claim_sql!("");
const CLAIM_FOR_FLOW: &str = claim_sql!(" AND p.flow_id = ?5");

const RECORD_DELIVERED: &str = "UPDATE packets SET status = 'DELIVERED', attempts = attempts + 1, \
     delivered_at = ?3, updated_at = ?3, lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_RETRY: &str = "UPDATE packets SET attempts = attempts + 1, next_attempt_at = ?3, \
     last_error = ?4, failure_class = ?5, updated_at = ?6, lease_owner = NULL, \
     lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_FAILED: &str = "UPDATE packets SET status = 'FAILED', attempts = attempts + 1, \
     last_error = ?3, failure_class = ?4, updated_at = ?5, lease_owner = NULL, \
     lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const INSERT_ATTEMPT: &str = "INSERT INTO packet_attempts (packet_id, worker, started_at, \
     duration_ms, status_code, outcome, failure_class, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

const SELECT_STATS: &str = "SELECT f.id AS flow_id, \
       coalesce(s.delivered, 0) AS delivered, \
       coalesce(s.pending, 0) AS pending, \
       coalesce(s.failed, 0) AS failed, \
       coalesce(i.pending, 0) AS inbound_pending, \
       coalesce(i.failed, 0) AS inbound_failed \
     FROM flows AS f LEFT JOIN ( \
       SELECT flow_id, \
         count(*) FILTER (WHERE status = 'DELIVERED' AND delivered_at >= ?1) AS delivered, \
         count(*) FILTER (WHERE status = 'PENDING') AS pending, \
         count(*) FILTER (WHERE status = 'FAILED') AS failed \
       FROM packets \
       WHERE status IN ('PENDING', 'FAILED') OR delivered_at >= ?1 \
       GROUP BY flow_id) AS s ON s.flow_id = f.id \
     LEFT JOIN ( \
       SELECT flow_id, \
         count(*) FILTER (WHERE status = 'PENDING') AS pending, \
         count(*) FILTER (WHERE status = 'FAILED') AS failed \
       FROM inbox_events \
       WHERE status IN ('PENDING', 'FAILED') \
       GROUP BY flow_id) AS i ON i.flow_id = f.id \
     ORDER BY f.name, f.id";

/// A packet id taken by another subject or version is a conflict; a missing flow is named.
fn packet_error(error: sqlx::Error, flow_id: &str, packet: &NewPacket) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, _)) => StoreError::conflict(format!(
            "packet id {:?} (taken by another subject or version)",
            packet.id
        )),
        Some((ErrorKind::ForeignKeyViolation, _)) => {
            StoreError::not_found(format!("flow {flow_id:?}"))
        }
        _ => map_sqlx(error),
    }
}

impl OutboxStore for SqliteStore {
    async fn latest_packets(
        &self,
        flow_id: &str,
        model: &str,
        subject_ids: &[i64],
    ) -> Result<Vec<LatestPacket>, StoreError> {
        if subject_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement whatever the number of ids: they travel as one JSON array.
        let ids = serde_json::to_string(subject_ids)
            .map_err(|error| StoreError::invalid_input(format!("subject ids: {error}")))?;
        let found = sqlx::query(SELECT_LATEST)
            .bind(flow_id)
            .bind(model)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        all(&found, rows::latest_packet)
    }

    async fn enqueue(
        &self,
        flow_id: &str,
        packets: &[NewPacket],
        cursor: Option<FeedCursor<'_>>,
    ) -> Result<EnqueueCounts, StoreError> {
        // Dropping `tx` on an early return rolls back: neither packets nor cursor move.
        let mut tx = self.write_tx().await?;
        let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM flows WHERE id = ?")
            .bind(flow_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let tenant = tenant.ok_or_else(|| StoreError::not_found(format!("flow {flow_id:?}")))?;
        if let Some(cursor) = cursor {
            sqlx::query(UPSERT_CURSOR)
                .bind(flow_id)
                .bind(cursor.feed)
                .bind(format_ts(cursor.checkpoint.second))
                .bind(cursor.checkpoint.last_id)
                .bind(format_ts(Timestamp::now()))
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        let mut counts = EnqueueCounts::default();
        for packet in packets {
            let created_at = format_ts(packet.created_at);
            let inserted = sqlx::query(INSERT_PACKET)
                .bind(&packet.id)
                .bind(flow_id)
                .bind(&tenant)
                .bind(&packet.subject.model)
                .bind(packet.subject.id)
                .bind(&packet.reference)
                .bind(&packet.target)
                .bind(&packet.event)
                .bind(i64::from(packet.version))
                .bind(&packet.payload)
                .bind(&packet.payload_hash)
                .bind(i64::from(packet.max_attempts))
                .bind(&created_at)
                .execute(&mut *tx)
                .await
                .map_err(|error| packet_error(error, flow_id, packet))?;
            if inserted.rows_affected() > 0 {
                counts.inserted += 1;
            } else {
                counts.already_stored += 1;
            }
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(counts)
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
        let mut tx = self.write_tx().await?;
        let query = match flow_id {
            Some(_) => sqlx::query(CLAIM_FOR_FLOW),
            None => sqlx::query(CLAIM_ANY),
        };
        let found = query
            .bind(owner)
            .bind(format_ts(until))
            .bind(format_ts(now))
            .bind(i64::from(limit))
            .bind(flow_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        // RETURNING gives no order: put them back in claim order.
        let mut packets = all(&found, rows::packet)?;
        packets.sort_by(|a, b| {
            a.next_attempt_at
                .cmp(&b.next_attempt_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(packets)
    }

    async fn next_due_by_flow(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT flow_id, min(next_attempt_at) FROM packets WHERE status = 'PENDING' \
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

    async fn release(
        &self,
        packet_id: &str,
        owner: &str,
        next_attempt_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let released = sqlx::query(
            "UPDATE packets SET next_attempt_at = ?3, lease_owner = NULL, lease_until = NULL \
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'",
        )
        .bind(packet_id)
        .bind(owner)
        .bind(format_ts(next_attempt_at))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(released.rows_affected() > 0)
    }

    async fn record_attempt(
        &self,
        packet_id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let at = format_ts(attempt.started_at);
        let mut tx = self.write_tx().await?;
        let (updated, class, error) = match &attempt.outcome {
            AttemptOutcome::Delivered => {
                let updated = sqlx::query(RECORD_DELIVERED)
                    .bind(packet_id)
                    .bind(owner)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, None, None)
            }
            AttemptOutcome::Retry {
                error,
                failure_class,
                next_attempt_at,
            } => {
                let updated = sqlx::query(RECORD_RETRY)
                    .bind(packet_id)
                    .bind(owner)
                    .bind(format_ts(*next_attempt_at))
                    .bind(error)
                    .bind(failure_class.as_str())
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, Some(*failure_class), Some(error))
            }
            AttemptOutcome::Failed {
                error,
                failure_class,
            } => {
                let updated = sqlx::query(RECORD_FAILED)
                    .bind(packet_id)
                    .bind(owner)
                    .bind(error)
                    .bind(failure_class.as_str())
                    .bind(&at)
                    .execute(&mut *tx)
                    .await;
                (updated, Some(*failure_class), Some(error))
            }
        };
        if updated.map_err(map_sqlx)?.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(INSERT_ATTEMPT)
            .bind(packet_id)
            .bind(owner)
            .bind(&at)
            .bind(to_sql_count(attempt.duration_ms))
            .bind(attempt.status_code.map(i64::from))
            .bind(attempt.outcome.name())
            .bind(class.map(|class| class.as_str()))
            .bind(error)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<u64, StoreError> {
        let freed = sqlx::query(
            "UPDATE packets SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?2 \
             WHERE lease_owner = ?1 AND status = 'PENDING'",
        )
        .bind(owner)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(freed.rows_affected())
    }

    async fn packet(&self, id: &str) -> Result<Option<Packet>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            packet_columns!(),
            " FROM packets WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.as_ref().map(|row| rows::packet(&Row(row))).transpose()
    }

    async fn packets(&self, filter: &PacketFilter) -> Result<Vec<Packet>, StoreError> {
        // NULL filters match everything.
        let found = sqlx::query(concat!(
            "SELECT ",
            packet_columns!(),
            " FROM packets WHERE (?1 IS NULL OR flow_id = ?1) AND (?2 IS NULL OR status = ?2) \
             ORDER BY created_at DESC, subject_id DESC, version DESC, id DESC LIMIT ?3"
        ))
        .bind(filter.flow_id.as_deref())
        .bind(filter.status.map(|status| status.as_str()))
        .bind(limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::packet)
    }

    async fn attempts(&self, packet_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT packet_id, worker, started_at, duration_ms, status_code, outcome, \
             failure_class, error FROM packet_attempts WHERE packet_id = ? ORDER BY id",
        )
        .bind(packet_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::attempt)
    }

    async fn retry_now(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET status = 'PENDING', attempts = 0, next_attempt_at = ?2, \
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

    async fn bring_forward(&self, flow_id: &str, now: Timestamp) -> Result<u64, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET next_attempt_at = ?2, updated_at = ?2 \
             WHERE flow_id = ?1 AND status = 'PENDING' AND next_attempt_at > ?2 \
               AND (lease_until IS NULL OR lease_until < ?2)",
        )
        .bind(flow_id)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(updated.rows_affected())
    }

    async fn discard(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE packets SET status = 'DISCARDED', updated_at = ?2, lease_owner = NULL, \
             lease_until = NULL WHERE id = ?1 AND status IN ('PENDING', 'FAILED')",
        )
        .bind(id)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn flow_stats(&self, since: Timestamp) -> Result<Vec<FlowStats>, StoreError> {
        let found = sqlx::query(SELECT_STATS)
            .bind(format_ts(since))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        all(&found, rows::flow_stats)
    }
}
