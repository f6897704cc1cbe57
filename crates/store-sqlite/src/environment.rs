//! [`EnvironmentStore`] for [`SqliteStore`]: one row, written once.

use crate::SqliteStore;
use crate::error::map_sqlx;
use crate::time::format_ts;
use engine::store::{EnvironmentStore, StoreError};
use jiff::Timestamp;

impl EnvironmentStore for SqliteStore {
    async fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO store_environment (id, environment, bound_at) VALUES (1, ?1, ?2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(environment)
        .bind(format_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let bound: String =
            sqlx::query_scalar("SELECT environment FROM store_environment WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(bound)
    }

    async fn bound_environment(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT environment FROM store_environment WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)
    }
}
