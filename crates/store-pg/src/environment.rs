//! [`EnvironmentStore`] for [`PgStore`]: one row, written once (`ON CONFLICT DO NOTHING`
//! settles two processes binding at once).

use crate::error::from_sqlx;
use crate::store::PgStore;
use crate::time;
use engine::store::{EnvironmentStore, StoreError};
use jiff::Timestamp;

impl EnvironmentStore for PgStore {
    async fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO store_environment (id, environment, bound_at) \
             VALUES (1, $1, $2::timestamptz) ON CONFLICT (id) DO NOTHING",
        )
        .bind(environment)
        .bind(time::format(now))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        sqlx::query_scalar("SELECT environment FROM store_environment WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(from_sqlx)
    }

    async fn bound_environment(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT environment FROM store_environment WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)
    }
}
