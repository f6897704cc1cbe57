//! [`CoordinationStore`] for [`PgStore`]: heartbeats, flow leases and breaker states shared by
//! the replicas of `odoo-bridge run`. A lease is taken by one upsert guarded by its holder and
//! its expiry, so two replicas racing for a flow cannot both get it.

use crate::columns::all;
use crate::error::{from_sqlx, violation};
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows;
use engine::store::{
    BreakerRecord, CoordinationStore, FlowLease, Heartbeat, HintActivity, StoreError,
};
use jiff::Timestamp;
use sqlx::error::ErrorKind;

impl CoordinationStore for PgStore {
    async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM daemon_heartbeats WHERE beat_at < $1::timestamptz - interval '1 day'",
        )
        .bind(time::format(heartbeat.beat_at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        sqlx::query(
            "INSERT INTO daemon_heartbeats (worker_id, kind, started_at, beat_at) \
             VALUES ($1, $2, $3::timestamptz, $4::timestamptz) \
             ON CONFLICT (worker_id) DO UPDATE SET kind = excluded.kind, \
             started_at = excluded.started_at, beat_at = excluded.beat_at",
        )
        .bind(&heartbeat.worker_id)
        .bind(&heartbeat.kind)
        .bind(time::format(heartbeat.started_at))
        .bind(time::format(heartbeat.beat_at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn remove_heartbeat(&self, worker_id: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM daemon_heartbeats WHERE worker_id = $1")
            .bind(worker_id)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(removed.rows_affected() > 0)
    }

    async fn heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT worker_id, kind, ",
            ts_text!("started_at"),
            " AS started_at, ",
            ts_text!("beat_at"),
            " AS beat_at FROM daemon_heartbeats ORDER BY daemon_heartbeats.beat_at DESC, worker_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
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
            "INSERT INTO flow_leases AS l (flow_id, owner, lease_until, acquired_at) \
             VALUES ($1, $2, $3::timestamptz, $4::timestamptz) \
             ON CONFLICT (flow_id) DO UPDATE SET owner = excluded.owner, \
               lease_until = excluded.lease_until, \
               acquired_at = CASE WHEN l.owner = excluded.owner THEN l.acquired_at \
                                  ELSE excluded.acquired_at END \
             WHERE l.owner = excluded.owner OR l.lease_until < $4::timestamptz \
             RETURNING owner",
        )
        .bind(flow_id)
        .bind(owner)
        .bind(time::format(until))
        .bind(time::format(now))
        .fetch_optional(self.pool())
        .await
        .map_err(|error| match violation(&error) {
            Some((ErrorKind::ForeignKeyViolation, _)) => {
                StoreError::not_found(format!("flow {flow_id:?}"))
            }
            _ => from_sqlx(error),
        })?;
        Ok(taken.is_some())
    }

    async fn renew_flow_leases(
        &self,
        owner: &str,
        until: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut held: Vec<String> = sqlx::query_scalar(
            "UPDATE flow_leases SET lease_until = $1::timestamptz WHERE owner = $2 \
             RETURNING flow_id",
        )
        .bind(time::format(until))
        .bind(owner)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        held.sort();
        Ok(held)
    }

    async fn release_flow_lease(&self, flow_id: &str, owner: &str) -> Result<bool, StoreError> {
        let released = sqlx::query("DELETE FROM flow_leases WHERE flow_id = $1 AND owner = $2")
            .bind(flow_id)
            .bind(owner)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(released.rows_affected() > 0)
    }

    async fn release_flow_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let released = sqlx::query("DELETE FROM flow_leases WHERE owner = $1")
            .bind(owner)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(released.rows_affected())
    }

    async fn flow_leases(&self) -> Result<Vec<FlowLease>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT flow_id, owner, ",
            ts_text!("lease_until"),
            " AS lease_until, ",
            ts_text!("acquired_at"),
            " AS acquired_at FROM flow_leases ORDER BY flow_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::flow_lease)
    }

    async fn set_breaker_state(&self, record: &BreakerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO flow_breakers (flow_id, target, state, open_until, updated_at) \
             SELECT $1, $2, $3, $4::timestamptz, $5::timestamptz \
             WHERE EXISTS (SELECT 1 FROM flows WHERE id = $1) \
             ON CONFLICT (flow_id, target) DO UPDATE SET state = excluded.state, \
             open_until = excluded.open_until, updated_at = excluded.updated_at",
        )
        .bind(&record.flow_id)
        .bind(&record.target)
        .bind(record.status.as_str())
        .bind(record.open_until.map(time::format))
        .bind(time::format(record.updated_at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn breaker_states(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT flow_id, target, state, ",
            ts_text!("open_until"),
            " AS open_until, ",
            ts_text!("updated_at"),
            " AS updated_at FROM flow_breakers ORDER BY flow_id, target"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
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
             SELECT $1, $2, $3::timestamptz WHERE EXISTS (SELECT 1 FROM flows WHERE id = $1) \
             ON CONFLICT (flow_id) DO UPDATE SET received = flow_hints.received + excluded.received, \
             last_received_at = greatest(flow_hints.last_received_at, excluded.last_received_at)",
        )
        .bind(flow_id)
        .bind(count)
        .bind(time::format(at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn hint_activity(&self) -> Result<Vec<HintActivity>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT flow_id, received, ",
            ts_text!("last_received_at"),
            " AS last_received_at FROM flow_hints ORDER BY flow_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::hint_activity)
    }
}
