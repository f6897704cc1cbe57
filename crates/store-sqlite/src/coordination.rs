//! [`CoordinationStore`] for [`SqliteStore`]: heartbeats, flow leases and breaker states.
//! Several processes on one machine can share the file (a daemon and the TUI, or replicas):
//! the lease statements are single upserts, atomic under SQLite's write lock.

use crate::SqliteStore;
use crate::columns::all;
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows;
use engine::store::{
    BreakerRecord, CoordinationStore, FlowLease, Heartbeat, HintActivity, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use sqlx::error::ErrorKind;

impl CoordinationStore for SqliteStore {
    async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO daemon_heartbeats (worker_id, kind, started_at, beat_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET kind = excluded.kind, \
             started_at = excluded.started_at, beat_at = excluded.beat_at",
        )
        .bind(&heartbeat.worker_id)
        .bind(&heartbeat.kind)
        .bind(format_ts(heartbeat.started_at))
        .bind(format_ts(heartbeat.beat_at))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let day_ago = heartbeat
            .beat_at
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(heartbeat.beat_at);
        sqlx::query("DELETE FROM daemon_heartbeats WHERE beat_at < ?")
            .bind(format_ts(day_ago))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn remove_heartbeat(&self, worker_id: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM daemon_heartbeats WHERE worker_id = ?")
            .bind(worker_id)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(removed.rows_affected() > 0)
    }

    async fn heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError> {
        let found = sqlx::query(
            "SELECT worker_id, kind, started_at, beat_at FROM daemon_heartbeats \
             ORDER BY beat_at DESC, worker_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::heartbeat)
    }

    async fn acquire_flow_lease(
        &self,
        flow_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO flow_leases (flow_id, owner, lease_until, acquired_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (flow_id) DO UPDATE SET owner = excluded.owner, \
               lease_until = excluded.lease_until, \
               acquired_at = CASE WHEN flow_leases.owner = excluded.owner \
                                  THEN flow_leases.acquired_at ELSE excluded.acquired_at END \
             WHERE flow_leases.owner = excluded.owner OR flow_leases.lease_until < ?4 \
             RETURNING owner",
        )
        .bind(flow_id)
        .bind(owner)
        .bind(format_ts(until))
        .bind(format_ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| match violation(&error) {
            Some((ErrorKind::ForeignKeyViolation, _)) => {
                StoreError::not_found(format!("flow {flow_id:?}"))
            }
            _ => map_sqlx(error),
        })?;
        Ok(taken.is_some())
    }

    async fn renew_flow_leases(
        &self,
        owner: &str,
        until: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut held: Vec<String> = sqlx::query_scalar(
            "UPDATE flow_leases SET lease_until = ? WHERE owner = ? RETURNING flow_id",
        )
        .bind(format_ts(until))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        held.sort();
        Ok(held)
    }

    async fn release_flow_lease(&self, flow_id: &str, owner: &str) -> Result<bool, StoreError> {
        let released = sqlx::query("DELETE FROM flow_leases WHERE flow_id = ? AND owner = ?")
            .bind(flow_id)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(released.rows_affected() > 0)
    }

    async fn release_flow_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let released = sqlx::query("DELETE FROM flow_leases WHERE owner = ?")
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(released.rows_affected())
    }

    async fn flow_leases(&self) -> Result<Vec<FlowLease>, StoreError> {
        let found = sqlx::query(
            "SELECT flow_id, owner, lease_until, acquired_at FROM flow_leases ORDER BY flow_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::flow_lease)
    }

    async fn set_breaker_state(&self, record: &BreakerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO flow_breakers (flow_id, target, state, open_until, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM flows WHERE id = ?1) \
             ON CONFLICT (flow_id, target) DO UPDATE SET state = excluded.state, \
             open_until = excluded.open_until, updated_at = excluded.updated_at",
        )
        .bind(&record.flow_id)
        .bind(&record.target)
        .bind(record.status.as_str())
        .bind(record.open_until.map(format_ts))
        .bind(format_ts(record.updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn breaker_states(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT flow_id, target, state, open_until, updated_at FROM flow_breakers \
             ORDER BY flow_id, target",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::breaker)
    }

    async fn record_hints(
        &self,
        flow_id: &str,
        count: u64,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO flow_hints (flow_id, received, last_received_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM flows WHERE id = ?1) \
             ON CONFLICT (flow_id) DO UPDATE SET received = flow_hints.received + excluded.received, \
             last_received_at = max(flow_hints.last_received_at, excluded.last_received_at)",
        )
        .bind(flow_id)
        .bind(count)
        .bind(format_ts(at))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn hint_activity(&self) -> Result<Vec<HintActivity>, StoreError> {
        let found = sqlx::query(
            "SELECT flow_id, received, last_received_at FROM flow_hints ORDER BY flow_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::hint_activity)
    }
}
