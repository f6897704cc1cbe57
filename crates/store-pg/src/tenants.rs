//! [`TenantStore`] for [`PgStore`]: tenants, their flows and the flows' cursors (migration
//! `0006_engine.sql`).

use crate::columns::{Row, all};
use crate::error::{from_sqlx, violation};
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::store::rows::{self, encode_api_key, encode_secrets, encode_settings};
use engine::store::tenants::transport_name;
use engine::store::{
    Flow, FlowKind, Keyring, Reseal, StoreError, StoredCursor, Tenant, TenantStore,
};
use sqlx::error::ErrorKind;
use sqlx::{Postgres, Transaction};

macro_rules! tenant_columns {
    () => {
        concat!(
            "id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, transport, \
             odoo_min_delay_ms, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at"
        )
    };
}

macro_rules! flow_columns {
    () => {
        concat!(
            "id, tenant_id, kind, name, is_active, interval_seconds, settings::text AS settings, \
             secrets, ",
            ts_text!("last_sync_at"),
            " AS last_sync_at, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at"
        )
    };
}

/// A taken key becomes [`StoreError::Conflict`] naming it.
fn write_error(error: sqlx::Error, flow: Option<&Flow>) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, Some("flows_kind_name"))) => {
            let (kind, name) = flow.map_or(("", ""), |f| (f.kind.as_str(), f.name.as_str()));
            StoreError::conflict(format!("{kind} flow name {name:?}"))
        }
        Some((ErrorKind::UniqueViolation, Some("flows_pkey"))) => {
            StoreError::conflict(format!("flow id {:?}", flow.map_or("", |f| f.id.as_str())))
        }
        Some((ErrorKind::UniqueViolation, _)) => StoreError::conflict("tenant id"),
        Some((ErrorKind::ForeignKeyViolation, _)) => StoreError::not_found(format!(
            "the tenant of flow {:?}",
            flow.map_or("", |f| f.id.as_str())
        )),
        _ => from_sqlx(error),
    }
}

async fn insert_flow_in(
    tx: &mut Transaction<'_, Postgres>,
    flow: &Flow,
    keyring: &Keyring,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flows (id, tenant_id, kind, name, is_active, interval_seconds, settings, \
         secrets, last_sync_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::timestamptz, $10::timestamptz, \
         $11::timestamptz)",
    )
    .bind(&flow.id)
    .bind(&flow.tenant_id)
    .bind(flow.kind.as_str())
    .bind(&flow.name)
    .bind(flow.is_active)
    .bind(i64::from(flow.interval_seconds))
    .bind(encode_settings(&flow.settings))
    .bind(encode_secrets(&flow.id, &flow.secrets, keyring)?)
    .bind(flow.last_sync_at.map(time::format))
    .bind(time::format(flow.created_at))
    .bind(time::format(flow.updated_at))
    .execute(&mut **tx)
    .await
    .map_err(|error| write_error(error, Some(flow)))?;
    Ok(())
}

impl TenantStore for PgStore {
    async fn insert_tenant(&self, tenant: &Tenant, flows: &[Flow]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        sqlx::query(
            "INSERT INTO tenants (id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, \
             transport, odoo_min_delay_ms, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz, $10::timestamptz)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.odoo_url)
        .bind(&tenant.odoo_db)
        .bind(&tenant.odoo_username)
        .bind(encode_api_key(tenant, self.keyring_ref())?)
        .bind(transport_name(tenant.transport))
        .bind(i64::from(tenant.odoo_min_delay_ms))
        .bind(time::format(tenant.created_at))
        .bind(time::format(tenant.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|error| write_error(error, None))?;
        for flow in flows {
            insert_flow_in(&mut tx, flow, self.keyring_ref()).await?;
        }
        tx.commit().await.map_err(from_sqlx)
    }

    async fn insert_flow(&self, flow: &Flow) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        insert_flow_in(&mut tx, flow, self.keyring_ref()).await?;
        tx.commit().await.map_err(from_sqlx)
    }

    async fn update_tenant(&self, tenant: &Tenant, flows: &[Flow]) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        let updated = sqlx::query(
            "UPDATE tenants SET name = $2, odoo_url = $3, odoo_db = $4, odoo_username = $5, \
             odoo_api_key = $6, transport = $7, odoo_min_delay_ms = $8, \
             updated_at = $9::timestamptz WHERE id = $1",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.odoo_url)
        .bind(&tenant.odoo_db)
        .bind(&tenant.odoo_username)
        .bind(encode_api_key(tenant, self.keyring_ref())?)
        .bind(transport_name(tenant.transport))
        .bind(i64::from(tenant.odoo_min_delay_ms))
        .bind(time::format(tenant.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|error| write_error(error, None))?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        for flow in flows {
            let updated = sqlx::query(
                "UPDATE flows SET name = $3, is_active = $4, interval_seconds = $5, \
                 settings = $6::jsonb, secrets = $7, updated_at = $8::timestamptz \
                 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(&flow.id)
            .bind(&tenant.id)
            .bind(&flow.name)
            .bind(flow.is_active)
            .bind(i64::from(flow.interval_seconds))
            .bind(encode_settings(&flow.settings))
            .bind(encode_secrets(&flow.id, &flow.secrets, self.keyring_ref())?)
            .bind(time::format(flow.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|error| write_error(error, Some(flow)))?;
            if updated.rows_affected() == 0 {
                // Dropping `tx` rolls the tenant's update back too.
                return Ok(false);
            }
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(true)
    }

    async fn delete_flow(&self, flow_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        // The cascade removes the flow's packets, events, cursors, log, breakers and lease.
        let tenant: Option<String> =
            sqlx::query_scalar("DELETE FROM flows WHERE id = $1 RETURNING tenant_id")
                .bind(flow_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        sqlx::query(
            "DELETE FROM tenants WHERE id = $1 AND NOT EXISTS \
             (SELECT 1 FROM flows WHERE tenant_id = tenants.id)",
        )
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(true)
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(from_sqlx)?;
        row.as_ref()
            .map(|row| rows::tenant(&Row(row), self.keyring_ref()))
            .transpose()
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT version FROM catalog_version WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(from_sqlx)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants ORDER BY name, id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, |row| rows::tenant(row, self.keyring_ref()))
    }

    async fn flow(
        &self,
        kind: Option<FlowKind>,
        id_or_name: &str,
    ) -> Result<Option<Flow>, StoreError> {
        // By id first, else by name (a name may look like another flow's id).
        let row = sqlx::query(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM flows WHERE (id = $1 OR name = $1) AND ($2::text IS NULL OR kind = $2) \
             ORDER BY id = $1 DESC, kind, id LIMIT 1"
        ))
        .bind(id_or_name)
        .bind(kind.map(FlowKind::as_str))
        .fetch_optional(self.pool())
        .await
        .map_err(from_sqlx)?;
        row.as_ref()
            .map(|row| rows::flow(&Row(row), self.keyring_ref()))
            .transpose()
    }

    async fn flows(&self, kind: Option<FlowKind>) -> Result<Vec<Flow>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM flows WHERE $1::text IS NULL OR kind = $1 ORDER BY name, id"
        ))
        .bind(kind.map(FlowKind::as_str))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, |row| rows::flow(row, self.keyring_ref()))
    }

    async fn cursors(&self, flow_id: Option<&str>) -> Result<Vec<StoredCursor>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT flow_id, feed, ",
            ts_text!("cursor_second"),
            " AS cursor_second, cursor_id, ",
            ts_text!("updated_at"),
            " AS updated_at FROM flow_cursors WHERE $1::text IS NULL OR flow_id = $1 \
             ORDER BY flow_id, feed"
        ))
        .bind(flow_id)
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        all(&found, rows::cursor)
    }

    fn keyring(&self) -> &Keyring {
        self.keyring_ref()
    }

    async fn reseal_secrets(&self, how: &Reseal) -> Result<u64, StoreError> {
        if matches!(how, Reseal::PlaintextOnly) {
            let api_keys: Vec<String> = sqlx::query_scalar("SELECT odoo_api_key FROM tenants")
                .fetch_all(self.pool())
                .await
                .map_err(from_sqlx)?;
            let secrets: Vec<String> = sqlx::query_scalar("SELECT secrets FROM flows")
                .fetch_all(self.pool())
                .await
                .map_err(from_sqlx)?;
            let in_clear = rows::any_in_clear(
                api_keys.iter().map(String::as_str),
                secrets.iter().map(String::as_str),
            )?;
            if !in_clear {
                return Ok(0);
            }
        }
        let keyring = self.keyring_ref();
        let mut tx = self.pool().begin().await.map_err(from_sqlx)?;
        // Replicas migrating at once reseal one after the other, each seeing the other's work.
        sqlx::query("LOCK TABLE tenants, flows IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let mut rewritten = 0;
        let tenants: Vec<(String, String)> =
            sqlx::query_as("SELECT id, odoo_api_key FROM tenants ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        for (id, stored) in tenants {
            if let Some(sealed) = rows::reseal_api_key(&id, &stored, keyring, how)? {
                sqlx::query("UPDATE tenants SET odoo_api_key = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                rewritten += 1;
            }
        }
        let flows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, secrets FROM flows ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        for (id, stored) in flows {
            if let Some(sealed) = rows::reseal_flow_secrets(&id, &stored, keyring, how)? {
                sqlx::query("UPDATE flows SET secrets = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                rewritten += 1;
            }
        }
        tx.commit().await.map_err(from_sqlx)?;
        if rewritten > 0 {
            // The old row versions keep the values in clear until vacuumed.
            for statement in ["VACUUM tenants", "VACUUM flows"] {
                sqlx::query(statement)
                    .execute(self.pool())
                    .await
                    .map_err(from_sqlx)?;
            }
        }
        Ok(rewritten)
    }
}
