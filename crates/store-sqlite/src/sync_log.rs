//! [`SyncLogStore`] for [`SqliteStore`]: one row per flow cycle, written in batches.

use crate::SqliteStore;
use crate::columns::{all, limit};
use crate::error::map_sqlx;
use crate::time::format_ts;
use engine::store::rows::{self, to_sql_count};
use engine::store::sync_log::last_syncs;
use engine::store::{CycleLog, CycleLogEntry, StoreError, SyncLogStore};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite};

/// Cycles per multi-row insert (eight bound values each).
const CHUNK: usize = 500;

impl SyncLogStore for SqliteStore {
    async fn record_cycles(&self, logs: &[CycleLog]) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for chunk in logs.chunks(CHUNK) {
            // VALUES rows name their columns column1…column8; cycles of flows removed
            // meanwhile are dropped rather than failing the batch.
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO flow_cycles (flow_id, started_at, found, sent, failed, held_back, \
                 error_message, duration_ms) SELECT column1, column2, column3, column4, \
                 column5, column6, column7, column8 FROM (",
            );
            query.push_values(chunk, |mut row, log| {
                row.push_bind(log.flow_id.clone())
                    .push_bind(format_ts(log.started_at))
                    .push_bind(to_sql_count(log.found))
                    .push_bind(to_sql_count(log.sent))
                    .push_bind(to_sql_count(log.failed))
                    .push_bind(to_sql_count(log.held_back))
                    .push_bind(log.error_message.clone())
                    .push_bind(to_sql_count(log.duration_ms));
            });
            query.push(") WHERE column1 IN (SELECT id FROM flows)");
            query
                .build()
                .persistent(chunk.len() == CHUNK)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        let synced: Vec<(String, String)> = last_syncs(logs)
            .into_iter()
            .map(|(flow, at)| (flow.to_owned(), format_ts(at)))
            .collect();
        let synced = serde_json::to_string(&synced)
            .map_err(|error| StoreError::invalid_input(format!("sync times: {error}")))?;
        sqlx::query(
            "UPDATE flows SET last_sync_at = s.at FROM \
             (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at \
              FROM json_each(?)) AS s \
             WHERE flows.id = s.id AND (flows.last_sync_at IS NULL OR flows.last_sync_at < s.at)",
        )
        .bind(synced)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn cycles(
        &self,
        flow_id: Option<&str>,
        limit_rows: u32,
    ) -> Result<Vec<CycleLogEntry>, StoreError> {
        let found = sqlx::query(
            "SELECT id, flow_id, started_at, found, sent, failed, held_back, error_message, \
             duration_ms FROM flow_cycles WHERE (?1 IS NULL OR flow_id = ?1) \
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(flow_id)
        .bind(limit(limit_rows))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::cycle)
    }

    async fn prune_cycles(&self, before: Timestamp) -> Result<u64, StoreError> {
        let pruned = sqlx::query("DELETE FROM flow_cycles WHERE started_at < ?")
            .bind(format_ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(pruned.rows_affected())
    }
}
