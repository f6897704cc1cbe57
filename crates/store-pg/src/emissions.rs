//! [`EmissionStore`] for [`PgStore`]: a claim is one `INSERT … ON CONFLICT DO UPDATE …
//! WHERE`, which PostgreSQL evaluates on the row's latest version under its lock, so two
//! senders racing for one record cannot both get it; a replay locks the row (`FOR UPDATE`)
//! for its read-then-rewrite.

use crate::columns::{Row, all};
use crate::error::from_sqlx;
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::emissions::Failure;
use engine::store::rows;
use engine::store::{
    Emission, EmissionClaim, EmissionKey, EmissionState, EmissionStore, NewEmission, ReplayRecord,
    StoreError,
};
use jiff::Timestamp;

macro_rules! emission_columns {
    () => {
        concat!(
            "job, record_id, packet_version, model, environment, packet_id, payload_hash, \
             packet, state, failure_class, last_error, failures, disabled, claim_owner, ",
            ts_text!("claim_until"),
            " AS claim_until, ",
            ts_text!("emitted_at"),
            " AS emitted_at, ",
            ts_text!("updated_at"),
            " AS updated_at, ",
            ts_text!("applied_at"),
            " AS applied_at, replays"
        )
    };
}

const CLAIM: &str = concat!(
    "
INSERT INTO enrich_emissions AS e (job, record_id, packet_version, model, environment,
    packet_id, payload_hash, packet, state, claim_owner, claim_until, emitted_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10::timestamptz, $11::timestamptz,
    $11::timestamptz)
ON CONFLICT (job, record_id, packet_version) DO UPDATE SET
    claim_owner = excluded.claim_owner, claim_until = excluded.claim_until,
    updated_at = excluded.updated_at
WHERE e.state = 'pending' AND NOT e.disabled
  AND (e.claim_owner IS NULL OR e.claim_owner = excluded.claim_owner
       OR e.claim_until < excluded.updated_at)
RETURNING ",
    emission_columns!()
);

const SELECT_ONE: &str = concat!(
    "SELECT ",
    emission_columns!(),
    " FROM enrich_emissions WHERE job = $1 AND record_id = $2 AND packet_version = $3"
);

const SELECT_ONE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    emission_columns!(),
    " FROM enrich_emissions WHERE job = $1 AND record_id = $2 AND packet_version = $3 \
     FOR UPDATE"
);

fn refusal(emission: Emission) -> EmissionClaim {
    if emission.state == EmissionState::Applied {
        EmissionClaim::AlreadyApplied(emission)
    } else if emission.disabled {
        EmissionClaim::Disabled(emission)
    } else {
        EmissionClaim::HeldElsewhere(emission)
    }
}

async fn select_one(
    connection: &mut sqlx::PgConnection,
    sql: &'static str,
    key: &EmissionKey,
) -> Result<Option<Emission>, StoreError> {
    let row = sqlx::query(sql)
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .fetch_optional(&mut *connection)
        .await
        .map_err(from_sqlx)?;
    row.as_ref()
        .map(|row| rows::emission(&Row(row)))
        .transpose()
}

impl EmissionStore for PgStore {
    async fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO enrich_environment (id, environment, bound_at) \
             VALUES (1, $1, $2::timestamptz) ON CONFLICT (id) DO NOTHING",
        )
        .bind(environment)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        sqlx::query_scalar("SELECT environment FROM enrich_environment WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(from_sqlx)
    }

    async fn claim_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<EmissionClaim, StoreError> {
        let claimed = sqlx::query(CLAIM)
            .bind(&emission.key.job)
            .bind(emission.key.record_id)
            .bind(&emission.key.packet_version)
            .bind(&emission.model)
            .bind(&emission.environment)
            .bind(&emission.packet_id)
            .bind(&emission.payload_hash)
            .bind(&emission.packet)
            .bind(owner)
            .bind(time::format(until))
            .bind(time::format(now))
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)?;
        if let Some(row) = claimed {
            return Ok(EmissionClaim::Granted(rows::emission(&Row(&row))?));
        }
        let stored = self.emission(&emission.key).await?.ok_or_else(|| {
            StoreError::invalid_data(format!(
                "{} refused a claim but is not stored",
                emission.key
            ))
        })?;
        Ok(refusal(stored))
    }

    async fn replay_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<EmissionClaim, StoreError> {
        let key = &emission.key;
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        let previous = select_one(&mut tx, SELECT_ONE_FOR_UPDATE, key).await?;
        if let Some(previous) = &previous {
            let held_elsewhere = previous
                .claim_owner
                .as_deref()
                .is_some_and(|holder| holder != owner)
                && previous.claim_until.is_some_and(|until| until >= now);
            if held_elsewhere {
                return Ok(EmissionClaim::HeldElsewhere(previous.clone()));
            }
        }
        let now_text = time::format(now);
        sqlx::query(
            "INSERT INTO enrich_emissions AS e (job, record_id, packet_version, model, \
             environment, packet_id, payload_hash, packet, state, claim_owner, claim_until, \
             emitted_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, \
             $10::timestamptz, $11::timestamptz, $11::timestamptz) \
             ON CONFLICT (job, record_id, packet_version) DO UPDATE SET \
               model = excluded.model, environment = excluded.environment, \
               packet_id = excluded.packet_id, payload_hash = excluded.payload_hash, \
               packet = excluded.packet, state = 'pending', failure_class = NULL, \
               last_error = NULL, failures = 0, disabled = false, \
               claim_owner = excluded.claim_owner, claim_until = excluded.claim_until, \
               emitted_at = excluded.emitted_at, updated_at = excluded.updated_at, \
               applied_at = NULL, replays = e.replays + 1",
        )
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(&emission.model)
        .bind(&emission.environment)
        .bind(&emission.packet_id)
        .bind(&emission.payload_hash)
        .bind(&emission.packet)
        .bind(owner)
        .bind(time::format(until))
        .bind(&now_text)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if let Some(previous) = &previous {
            sqlx::query(
                "INSERT INTO enrich_replays (job, record_id, packet_version, \
                 previous_packet_id, previous_hash, packet_id, payload_hash, drift, \
                 replayed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz)",
            )
            .bind(&key.job)
            .bind(key.record_id)
            .bind(&key.packet_version)
            .bind(&previous.packet_id)
            .bind(&previous.payload_hash)
            .bind(&emission.packet_id)
            .bind(&emission.payload_hash)
            .bind(previous.payload_hash != emission.payload_hash)
            .bind(&now_text)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        let stored = select_one(&mut tx, SELECT_ONE, key).await?.ok_or_else(|| {
            StoreError::invalid_data(format!("{key} was replayed but is not stored"))
        })?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(EmissionClaim::Granted(stored))
    }

    async fn record_applied(
        &self,
        key: &EmissionKey,
        owner: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE enrich_emissions SET state = 'applied', failure_class = NULL, \
             last_error = NULL, claim_owner = NULL, claim_until = NULL, \
             applied_at = $5::timestamptz, updated_at = $5::timestamptz \
             WHERE job = $1 AND record_id = $2 AND packet_version = $3 AND claim_owner = $4",
        )
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(owner)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn record_failure(
        &self,
        key: &EmissionKey,
        owner: &str,
        failure: &Failure<'_>,
        now: Timestamp,
    ) -> Result<Option<Emission>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE enrich_emissions SET failures = failures + 1, failure_class = $5, \
             last_error = $6, disabled = (disabled OR failures + 1 >= $7), \
             claim_owner = NULL, claim_until = NULL, updated_at = $8::timestamptz \
             WHERE job = $1 AND record_id = $2 AND packet_version = $3 AND claim_owner = $4 \
             RETURNING ",
            emission_columns!()
        ))
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(owner)
        .bind(failure.class.as_str())
        .bind(failure.error)
        .bind(i64::from(failure.max_failures))
        .bind(time::format(now))
        .fetch_optional(self.pool())
        .await
        .map_err(from_sqlx)?;
        row.as_ref()
            .map(|row| rows::emission(&Row(row)))
            .transpose()
    }

    async fn release_emission(&self, key: &EmissionKey, owner: &str) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE enrich_emissions SET claim_owner = NULL, claim_until = NULL \
             WHERE job = $1 AND record_id = $2 AND packet_version = $3 AND claim_owner = $4",
        )
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(owner)
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn emission(&self, key: &EmissionKey) -> Result<Option<Emission>, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(from_sqlx)?;
        select_one(&mut connection, SELECT_ONE, key).await
    }

    async fn emissions(&self, job: Option<&str>) -> Result<Vec<Emission>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            emission_columns!(),
            " FROM enrich_emissions WHERE $1::text IS NULL OR job = $1 \
             ORDER BY job, record_id, packet_version"
        ))
        .bind(job)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::emission)
    }

    async fn replays(&self, job: &str, record_id: i64) -> Result<Vec<ReplayRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT job, record_id, packet_version, previous_packet_id, previous_hash, \
             packet_id, payload_hash, drift, ",
            ts_text!("replayed_at"),
            " AS replayed_at FROM enrich_replays WHERE job = $1 AND record_id = $2 ORDER BY id"
        ))
        .bind(job)
        .bind(record_id)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::replay)
    }
}
