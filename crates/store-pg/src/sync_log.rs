//! [`SyncLogStore`] for [`PgStore`]: one row per flow cycle, written in batches.

use crate::columns::{all, limit};
use crate::error::from_sqlx;
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows::{self, to_sql_count};
use engine::store::sync_log::last_syncs;
use engine::store::{CycleLog, CycleLogEntry, StoreError, SyncLogStore};
use jiff::Timestamp;

/// Cycles of flows removed meanwhile are dropped rather than failing the batch.
const INSERT_CYCLES: &str = "
INSERT INTO flow_cycles (flow_id, started_at, found, sent, failed, held_back, error_message,
    duration_ms)
SELECT c.flow_id, c.started_at::timestamptz, c.found, c.sent, c.failed, c.held_back,
    c.error_message, c.duration_ms
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
    $7::text[], $8::bigint[])
    AS c(flow_id, started_at, found, sent, failed, held_back, error_message, duration_ms)
WHERE c.flow_id IN (SELECT id FROM flows)";

const MOVE_LAST_SYNC: &str = "
UPDATE flows SET last_sync_at = s.at::timestamptz
FROM UNNEST($1::text[], $2::text[]) AS s(id, at)
WHERE flows.id = s.id AND (flows.last_sync_at IS NULL OR flows.last_sync_at < s.at::timestamptz)";

impl SyncLogStore for PgStore {
    async fn record_cycles(&self, logs: &[CycleLog]) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        let count = |f: fn(&CycleLog) -> u64| -> Vec<i64> {
            logs.iter().map(|log| to_sql_count(f(log))).collect()
        };
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        sqlx::query(INSERT_CYCLES)
            .bind(
                logs.iter()
                    .map(|log| log.flow_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                logs.iter()
                    .map(|log| time::format(log.started_at))
                    .collect::<Vec<_>>(),
            )
            .bind(count(|log| log.found))
            .bind(count(|log| log.sent))
            .bind(count(|log| log.failed))
            .bind(count(|log| log.held_back))
            .bind(
                logs.iter()
                    .map(|log| log.error_message.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(count(|log| log.duration_ms))
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let synced = last_syncs(logs);
        sqlx::query(MOVE_LAST_SYNC)
            .bind(synced.iter().map(|(flow, _)| *flow).collect::<Vec<_>>())
            .bind(
                synced
                    .iter()
                    .map(|(_, at)| time::format(*at))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)
    }

    async fn cycles(
        &self,
        flow_id: Option<&str>,
        limit_rows: u32,
    ) -> Result<Vec<CycleLogEntry>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT id, flow_id, ",
            ts_text!("started_at"),
            " AS started_at, found, sent, failed, held_back, error_message, duration_ms \
             FROM flow_cycles WHERE ($1::text IS NULL OR flow_id = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(flow_id)
        .bind(limit(limit_rows))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::cycle)
    }

    async fn prune_cycles(&self, before: Timestamp) -> Result<u64, StoreError> {
        let pruned = sqlx::query("DELETE FROM flow_cycles WHERE started_at < $1::timestamptz")
            .bind(time::format(before))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(pruned.rows_affected())
    }
}
