//! [`TenantStore`] for [`SqliteStore`]: tenants, their flows and the flows' cursors
//! (migration `0006_engine.sql`).

use crate::SqliteStore;
use crate::columns::{Row, all};
use crate::error::{map_sqlx, violation};
use crate::time::format_ts;
use engine::store::rows::{self, encode_api_key, encode_secrets, encode_settings};
use engine::store::tenants::transport_name;
use engine::store::{
    Flow, FlowKind, Keyring, Reseal, StoreError, StoredCursor, Tenant, TenantStore,
};
use sqlx::error::ErrorKind;
use sqlx::{Sqlite, Transaction};

macro_rules! tenant_columns {
    () => {
        "id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, transport, \
         odoo_min_delay_ms, created_at, updated_at"
    };
}

macro_rules! flow_columns {
    () => {
        "id, tenant_id, kind, name, is_active, interval_seconds, settings, secrets, \
         last_sync_at, created_at, updated_at"
    };
}

/// A taken key becomes [`StoreError::Conflict`] naming it; SQLite's message names the
/// columns, never the values.
fn write_error(error: sqlx::Error, flow: Option<&Flow>) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, message)) if message.contains("flows.name") => {
            let (kind, name) = flow.map_or(("", ""), |f| (f.kind.as_str(), f.name.as_str()));
            StoreError::conflict(format!("{kind} flow name {name:?}"))
        }
        Some((ErrorKind::UniqueViolation, message)) if message.contains("flows.id") => {
            StoreError::conflict(format!("flow id {:?}", flow.map_or("", |f| f.id.as_str())))
        }
        Some((ErrorKind::UniqueViolation, _)) => StoreError::conflict("tenant id"),
        Some((ErrorKind::ForeignKeyViolation, _)) => StoreError::not_found(format!(
            "the tenant of flow {:?}",
            flow.map_or("", |f| f.id.as_str())
        )),
        _ => map_sqlx(error),
    }
}

async fn insert_flow_in(
    tx: &mut Transaction<'_, Sqlite>,
    flow: &Flow,
    keyring: &Keyring,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flows (id, tenant_id, kind, name, is_active, interval_seconds, settings, \
         secrets, last_sync_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&flow.id)
    .bind(&flow.tenant_id)
    .bind(flow.kind.as_str())
    .bind(&flow.name)
    .bind(flow.is_active)
    .bind(i64::from(flow.interval_seconds))
    .bind(encode_settings(&flow.settings))
    .bind(encode_secrets(&flow.id, &flow.secrets, keyring)?)
    .bind(flow.last_sync_at.map(format_ts))
    .bind(format_ts(flow.created_at))
    .bind(format_ts(flow.updated_at))
    .execute(&mut **tx)
    .await
    .map_err(|error| write_error(error, Some(flow)))?;
    Ok(())
}

impl TenantStore for SqliteStore {
    async fn insert_tenant(&self, tenant: &Tenant, flows: &[Flow]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, \
             transport, odoo_min_delay_ms, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.odoo_url)
        .bind(&tenant.odoo_db)
        .bind(&tenant.odoo_username)
        .bind(encode_api_key(tenant, &self.keyring)?)
        .bind(transport_name(tenant.transport))
        .bind(i64::from(tenant.odoo_min_delay_ms))
        .bind(format_ts(tenant.created_at))
        .bind(format_ts(tenant.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|error| write_error(error, None))?;
        for flow in flows {
            insert_flow_in(&mut tx, flow, &self.keyring).await?;
        }
        tx.commit().await.map_err(map_sqlx)
    }

    async fn insert_flow(&self, flow: &Flow) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_flow_in(&mut tx, flow, &self.keyring).await?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn update_tenant(&self, tenant: &Tenant, flows: &[Flow]) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET name = ?, odoo_url = ?, odoo_db = ?, odoo_username = ?, \
             odoo_api_key = ?, transport = ?, odoo_min_delay_ms = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(&tenant.name)
        .bind(&tenant.odoo_url)
        .bind(&tenant.odoo_db)
        .bind(&tenant.odoo_username)
        .bind(encode_api_key(tenant, &self.keyring)?)
        .bind(transport_name(tenant.transport))
        .bind(i64::from(tenant.odoo_min_delay_ms))
        .bind(format_ts(tenant.updated_at))
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await
        .map_err(|error| write_error(error, None))?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        for flow in flows {
            let updated = sqlx::query(
                "UPDATE flows SET name = ?, is_active = ?, interval_seconds = ?, settings = ?, \
                 secrets = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            )
            .bind(&flow.name)
            .bind(flow.is_active)
            .bind(i64::from(flow.interval_seconds))
            .bind(encode_settings(&flow.settings))
            .bind(encode_secrets(&flow.id, &flow.secrets, &self.keyring)?)
            .bind(format_ts(flow.updated_at))
            .bind(&flow.id)
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await
            .map_err(|error| write_error(error, Some(flow)))?;
            if updated.rows_affected() == 0 {
                // Dropping `tx` rolls the tenant's update back too.
                return Ok(false);
            }
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    async fn delete_flow(&self, flow_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM flows WHERE id = ?")
            .bind(flow_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        // The foreign keys cascade too; deleting explicitly does not depend on the
        // connection's `foreign_keys` pragma.
        for statement in [
            "DELETE FROM packet_attempts WHERE packet_id IN (SELECT id FROM packets WHERE flow_id = ?)",
            "DELETE FROM packets WHERE flow_id = ?",
            "DELETE FROM inbox_applications WHERE event IN (SELECT id FROM inbox_events WHERE flow_id = ?)",
            "DELETE FROM inbox_events WHERE flow_id = ?",
            "DELETE FROM flow_cursors WHERE flow_id = ?",
            "DELETE FROM flow_cycles WHERE flow_id = ?",
            "DELETE FROM flow_breakers WHERE flow_id = ?",
            "DELETE FROM flow_hints WHERE flow_id = ?",
            "DELETE FROM flow_leases WHERE flow_id = ?",
            "DELETE FROM marketplace_orders WHERE flow_id = ?",
            "DELETE FROM flows WHERE id = ?",
        ] {
            sqlx::query(statement)
                .bind(flow_id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        sqlx::query(
            "DELETE FROM tenants WHERE id = ? AND NOT EXISTS \
             (SELECT 1 FROM flows WHERE tenant_id = tenants.id)",
        )
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::tenant(&Row(row), &self.keyring))
            .transpose()
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT version FROM catalog_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, |row| rows::tenant(row, &self.keyring))
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
            " FROM flows WHERE (id = ?1 OR name = ?1) AND (?2 IS NULL OR kind = ?2) \
             ORDER BY id = ?1 DESC, kind, id LIMIT 1"
        ))
        .bind(id_or_name)
        .bind(kind.map(FlowKind::as_str))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.as_ref()
            .map(|row| rows::flow(&Row(row), &self.keyring))
            .transpose()
    }

    async fn flows(&self, kind: Option<FlowKind>) -> Result<Vec<Flow>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM flows WHERE ?1 IS NULL OR kind = ?1 ORDER BY name, id"
        ))
        .bind(kind.map(FlowKind::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, |row| rows::flow(row, &self.keyring))
    }

    async fn cursors(&self, flow_id: Option<&str>) -> Result<Vec<StoredCursor>, StoreError> {
        let found = sqlx::query(
            "SELECT flow_id, feed, cursor_second, cursor_id, updated_at FROM flow_cursors \
             WHERE ?1 IS NULL OR flow_id = ?1 ORDER BY flow_id, feed",
        )
        .bind(flow_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        all(&found, rows::cursor)
    }

    fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    async fn reseal_secrets(&self, how: &Reseal) -> Result<u64, StoreError> {
        if matches!(how, Reseal::PlaintextOnly) {
            let api_keys: Vec<String> = sqlx::query_scalar("SELECT odoo_api_key FROM tenants")
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
            let secrets: Vec<String> = sqlx::query_scalar("SELECT secrets FROM flows")
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
            let in_clear = rows::any_in_clear(
                api_keys.iter().map(String::as_str),
                secrets.iter().map(String::as_str),
            )?;
            if !in_clear {
                return Ok(0);
            }
        }
        let mut tx = self.write_tx().await?;
        let mut rewritten = 0;
        let tenants: Vec<(String, String)> =
            sqlx::query_as("SELECT id, odoo_api_key FROM tenants ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        for (id, stored) in tenants {
            if let Some(sealed) = rows::reseal_api_key(&id, &stored, &self.keyring, how)? {
                sqlx::query("UPDATE tenants SET odoo_api_key = ? WHERE id = ?")
                    .bind(sealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                rewritten += 1;
            }
        }
        let flows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, secrets FROM flows ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        for (id, stored) in flows {
            if let Some(sealed) = rows::reseal_flow_secrets(&id, &stored, &self.keyring, how)? {
                sqlx::query("UPDATE flows SET secrets = ? WHERE id = ?")
                    .bind(sealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                rewritten += 1;
            }
        }
        tx.commit().await.map_err(map_sqlx)?;
        if rewritten > 0 {
            self.erase_freed_pages().await?;
        }
        Ok(rewritten)
    }
}
