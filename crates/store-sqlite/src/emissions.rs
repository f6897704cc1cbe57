//! [`EmissionStore`] for [`SqliteStore`]: every write runs under `BEGIN IMMEDIATE`, so one
//! writer at a time decides who holds an emission.

use crate::SqliteStore;
use crate::columns::{Row, all};
use crate::error::map_sqlx;
use crate::time::format_ts;
use engine::store::emissions::Failure;
use engine::store::rows;
use engine::store::{
    Emission, EmissionClaim, EmissionKey, EmissionState, EmissionStore, NewEmission, ReplayRecord,
    StoreError,
};
use jiff::Timestamp;

macro_rules! emission_columns {
    () => {
        "job, record_id, packet_version, model, environment, packet_id, payload_hash, packet, \
         state, failure_class, last_error, failures, disabled, claim_owner, claim_until, \
         emitted_at, updated_at, applied_at, replays"
    };
}

/// A new key is written and claimed; a stored one is claimed (its packet kept) only when it
/// is pending, enabled and not held by another owner's live claim.
const CLAIM: &str = concat!(
    "INSERT INTO enrich_emissions (job, record_id, packet_version, model, environment, \
     packet_id, payload_hash, packet, state, claim_owner, claim_until, emitted_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?11) \
     ON CONFLICT (job, record_id, packet_version) DO UPDATE SET \
       claim_owner = excluded.claim_owner, claim_until = excluded.claim_until, \
       updated_at = excluded.updated_at \
     WHERE enrich_emissions.state = 'pending' AND enrich_emissions.disabled = 0 \
       AND (enrich_emissions.claim_owner IS NULL \
            OR enrich_emissions.claim_owner = excluded.claim_owner \
            OR enrich_emissions.claim_until < excluded.updated_at) \
     RETURNING ",
    emission_columns!()
);

const SELECT_ONE: &str = concat!(
    "SELECT ",
    emission_columns!(),
    " FROM enrich_emissions WHERE job = ?1 AND record_id = ?2 AND packet_version = ?3"
);

impl SqliteStore {
    async fn emission_in(
        connection: &mut sqlx::SqliteConnection,
        key: &EmissionKey,
    ) -> Result<Option<Emission>, StoreError> {
        let row = sqlx::query(SELECT_ONE)
            .bind(&key.job)
            .bind(key.record_id)
            .bind(&key.packet_version)
            .fetch_optional(&mut *connection)
            .await
            .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::emission(&Row(row)))
            .transpose()
    }
}

/// Why a stored emission refused a claim.
fn refusal(emission: Emission) -> EmissionClaim {
    if emission.state == EmissionState::Applied {
        EmissionClaim::AlreadyApplied(emission)
    } else if emission.disabled {
        EmissionClaim::Disabled(emission)
    } else {
        EmissionClaim::HeldElsewhere(emission)
    }
}

impl EmissionStore for SqliteStore {
    async fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO enrich_environment (id, environment, bound_at) VALUES (1, ?1, ?2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(environment)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let bound: String =
            sqlx::query_scalar("SELECT environment FROM enrich_environment WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(bound)
    }

    async fn claim_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<EmissionClaim, StoreError> {
        let mut tx = self.write_tx().await?;
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
            .bind(format_ts(until))
            .bind(format_ts(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let claim = match claimed {
            Some(row) => EmissionClaim::Granted(rows::emission(&Row(&row))?),
            None => refusal(
                Self::emission_in(&mut tx, &emission.key)
                    .await?
                    .ok_or_else(|| {
                        StoreError::invalid_data(format!(
                            "{} refused a claim but is not stored",
                            emission.key
                        ))
                    })?,
            ),
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(claim)
    }

    async fn replay_emission(
        &self,
        emission: &NewEmission,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<EmissionClaim, StoreError> {
        let mut tx = self.write_tx().await?;
        let key = &emission.key;
        let previous = Self::emission_in(&mut tx, key).await?;
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
        let now_text = format_ts(now);
        sqlx::query(
            "INSERT INTO enrich_emissions (job, record_id, packet_version, model, environment, \
             packet_id, payload_hash, packet, state, claim_owner, claim_until, emitted_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?11) \
             ON CONFLICT (job, record_id, packet_version) DO UPDATE SET \
               model = excluded.model, environment = excluded.environment, \
               packet_id = excluded.packet_id, payload_hash = excluded.payload_hash, \
               packet = excluded.packet, state = 'pending', failure_class = NULL, \
               last_error = NULL, failures = 0, disabled = 0, \
               claim_owner = excluded.claim_owner, claim_until = excluded.claim_until, \
               emitted_at = excluded.emitted_at, updated_at = excluded.updated_at, \
               applied_at = NULL, replays = enrich_emissions.replays + 1",
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
        .bind(format_ts(until))
        .bind(&now_text)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if let Some(previous) = &previous {
            sqlx::query(
                "INSERT INTO enrich_replays (job, record_id, packet_version, \
                 previous_packet_id, previous_hash, packet_id, payload_hash, drift, \
                 replayed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
            .map_err(map_sqlx)?;
        }
        let stored = Self::emission_in(&mut tx, key).await?.ok_or_else(|| {
            StoreError::invalid_data(format!("{key} was replayed but is not stored"))
        })?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(EmissionClaim::Granted(stored))
    }

    async fn record_applied(
        &self,
        key: &EmissionKey,
        owner: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE enrich_emissions SET state = 'applied', failure_class = NULL, \
             last_error = NULL, claim_owner = NULL, claim_until = NULL, applied_at = ?5, \
             updated_at = ?5 \
             WHERE job = ?1 AND record_id = ?2 AND packet_version = ?3 AND claim_owner = ?4",
        )
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(owner)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(changed > 0)
    }

    async fn record_failure(
        &self,
        key: &EmissionKey,
        owner: &str,
        failure: &Failure<'_>,
        now: Timestamp,
    ) -> Result<Option<Emission>, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(concat!(
            "UPDATE enrich_emissions SET failures = failures + 1, failure_class = ?5, \
             last_error = ?6, disabled = CASE WHEN failures + 1 >= ?7 THEN 1 ELSE disabled END, \
             claim_owner = NULL, claim_until = NULL, updated_at = ?8 \
             WHERE job = ?1 AND record_id = ?2 AND packet_version = ?3 AND claim_owner = ?4 \
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
        .bind(format_ts(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let emission = row
            .as_ref()
            .map(|row| rows::emission(&Row(row)))
            .transpose()?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(emission)
    }

    async fn release_emission(&self, key: &EmissionKey, owner: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE enrich_emissions SET claim_owner = NULL, claim_until = NULL \
             WHERE job = ?1 AND record_id = ?2 AND packet_version = ?3 AND claim_owner = ?4",
        )
        .bind(&key.job)
        .bind(key.record_id)
        .bind(&key.packet_version)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(changed > 0)
    }

    async fn emission(&self, key: &EmissionKey) -> Result<Option<Emission>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(map_sqlx)?;
        Self::emission_in(&mut connection, key).await
    }

    async fn emissions(&self, job: Option<&str>) -> Result<Vec<Emission>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            emission_columns!(),
            " FROM enrich_emissions WHERE ?1 IS NULL OR job = ?1 \
             ORDER BY job, record_id, packet_version"
        ))
        .bind(job)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::emission)
    }

    async fn replays(&self, job: &str, record_id: i64) -> Result<Vec<ReplayRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT job, record_id, packet_version, previous_packet_id, previous_hash, \
             packet_id, payload_hash, drift, replayed_at FROM enrich_replays \
             WHERE job = ?1 AND record_id = ?2 ORDER BY id",
        )
        .bind(job)
        .bind(record_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::replay)
    }
}
