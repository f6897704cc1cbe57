//! [`DeliveryStore`] for [`PgStore`]: connections, the outbox and the sync log (migration
//! `0002_delivery.sql`), shared safely by several `odoo-bridge run` processes.
//!
//! - A page of packets goes in with one `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT
//!   (connection_id, odoo_order_id, version) DO NOTHING`, in the transaction that moves the
//!   connection's cursor. The cursor update comes first: it locks the connection's row, so two
//!   processes writing the same connection's page queue instead of interleaving.
//! - A claim is one statement: a CTE picks the due packets `FOR UPDATE SKIP LOCKED` (a packet
//!   another claim is leasing right now is skipped, not waited for; one leased a moment ago is
//!   re-checked against its new `lease_until` and left out), then the UPDATE leases them. So
//!   no packet is leased to two owners at once.
//!
//! Decisions the contract leaves open:
//! - `record_attempt` is guarded on the lease *owner* (and on the packet still being PENDING),
//!   not on `lease_until`: a worker whose lease ran out while it was sending still records the
//!   outcome if nobody claimed the packet meanwhile; once another owner has claimed it, the
//!   guard fails and `false` is returned. Owners must therefore be unique per worker.
//! - Only an older *PENDING* version holds a newer one back from claims: a FAILED or
//!   DISCARDED v1 lets v2 go (a FAILED packet waits for a person, and the order's newer
//!   state should not wait with it; the payload carries its version, so a receiver can
//!   ignore a late v1 that a person retries afterwards).
//! - `latest_packets` considers every status, DISCARDED included, so a discarded version is
//!   never written again under the same number.
//! - `retry_now` and `discard` clear any lease: a person's decision wins over a worker in
//!   flight, whose `record_attempt` then returns `false`.
//! - `connection_stats` lists every connection (zeros included), by name.
//! - A limit of 0 (`packets`, `cycles`) means no limit.

use crate::error::from_sqlx;
use crate::store::PgStore;
use crate::time::{self, ts_text};
use engine::change_feed::Checkpoint;
use engine::delivery_store::{
    ApiKey, AttemptOutcome, BreakerRecord, Connection, ConnectionStats, CycleLog, CycleLogEntry,
    DaemonHeartbeat, DeliveryStore, EnqueueCounts, Event, EventSet, LatestPacket, NewPacket,
    Packet, PacketFilter, PacketStatus, WebhookSecret,
};
use engine::mirror_store::{MirrorStore, StoreError};
use jiff::{SignedDuration, Timestamp};
use sqlx::Row;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgDatabaseError, PgRow};
use std::collections::HashMap;

/// The columns of `connections` as [`connection_from_row`] reads them.
macro_rules! connection_columns {
    () => {
        concat!(
            "id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, webhook_url, \
             webhook_secret, store_id, client_id, polling_interval_seconds, odoo_min_delay_ms, \
             is_active, events, ",
            ts_text!("last_sync_at"),
            " AS last_sync_at, ",
            ts_text!("cursor_second"),
            " AS cursor_second, cursor_id, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at"
        )
    };
}

/// The columns of `outbox` as [`packet_from_row`] reads them.
macro_rules! packet_columns {
    () => {
        concat!(
            "id, connection_id, odoo_order_id, external_id, event, version, body, \
             content_hash, status, attempts, max_attempts, ",
            ts_text!("next_attempt_at"),
            " AS next_attempt_at, last_error, failure_class, lease_owner, ",
            ts_text!("lease_until"),
            " AS lease_until, ",
            ts_text!("created_at"),
            " AS created_at, ",
            ts_text!("updated_at"),
            " AS updated_at, ",
            ts_text!("delivered_at"),
            " AS delivered_at"
        )
    };
}

const INSERT_CONNECTION: &str = "
INSERT INTO connections (id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, webhook_url,
    webhook_secret, store_id, client_id, polling_interval_seconds, odoo_min_delay_ms, is_active,
    events, last_sync_at, cursor_second, cursor_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::timestamptz,
    $16::timestamptz, $17, $18::timestamptz, $19::timestamptz)";

const UPDATE_CONNECTION: &str = "
UPDATE connections SET name = $2, odoo_url = $3, odoo_db = $4, odoo_username = $5,
    odoo_api_key = $6, webhook_url = $7, webhook_secret = $8, store_id = $9, client_id = $10,
    polling_interval_seconds = $11, odoo_min_delay_ms = $12, is_active = $13, events = $14,
    updated_at = $15::timestamptz
WHERE id = $1";

/// By id first, else by name (a name may look like another connection's id).
const SELECT_CONNECTION: &str = concat!(
    "SELECT ",
    connection_columns!(),
    " FROM connections WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1"
);

const SELECT_CONNECTIONS: &str = concat!(
    "SELECT ",
    connection_columns!(),
    " FROM connections ORDER BY name, id"
);

const MOVE_CURSOR: &str = "
UPDATE connections SET cursor_second = $2::timestamptz, cursor_id = $3,
    last_sync_at = coalesce($4::timestamptz, last_sync_at)
WHERE id = $1
RETURNING id";

/// A page of packets, due at their creation; a repeated (connection, order, version) is left
/// as it was and not counted in the rows affected.
const INSERT_PACKETS: &str = "
INSERT INTO outbox (id, connection_id, odoo_order_id, external_id, event, version, body,
    content_hash, status, attempts, max_attempts, next_attempt_at, created_at, updated_at)
SELECT p.id, $1, p.odoo_order_id, p.external_id, p.event, p.version, p.body, p.content_hash,
    'PENDING', 0, p.max_attempts, p.created_at::timestamptz, p.created_at::timestamptz,
    p.created_at::timestamptz
FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[],
    $8::text[], $9::bigint[], $10::text[])
    AS p(id, odoo_order_id, external_id, event, version, body, content_hash, max_attempts,
         created_at)
ON CONFLICT (connection_id, odoo_order_id, version) DO NOTHING";

const SELECT_LATEST: &str = "
SELECT DISTINCT ON (odoo_order_id) odoo_order_id, version, event, content_hash
FROM outbox
WHERE connection_id = $1 AND odoo_order_id = ANY($2::bigint[])
ORDER BY odoo_order_id, version DESC";

/// `due` is materialised (it has a locking clause), so the choice is made once; the rows it
/// locked stay locked until the statement's transaction ends. Two statements, not one with
/// `($5 IS NULL OR connection_id = $5)`: a generic plan of that cannot use the per-connection
/// index, and with 20,000 packets pending each claim then walked all of them.
macro_rules! claim_sql {
    ($connection_filter:literal) => {
        concat!(
            "
WITH due AS (
    SELECT o.id FROM outbox AS o
    WHERE o.status = 'PENDING'",
            $connection_filter,
            "
      AND o.next_attempt_at <= $3::timestamptz
      AND (o.lease_until IS NULL OR o.lease_until < $3::timestamptz)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS older
          WHERE older.connection_id = o.connection_id
            AND older.odoo_order_id = o.odoo_order_id
            AND older.version < o.version
            AND older.status = 'PENDING')
    ORDER BY o.next_attempt_at, o.id
    LIMIT $4
    FOR UPDATE OF o SKIP LOCKED)
UPDATE outbox SET lease_owner = $1, lease_until = $2::timestamptz
WHERE id IN (SELECT id FROM due)
RETURNING ",
            packet_columns!()
        )
    };
}

const CLAIM_ANY: &str = claim_sql!("");
const CLAIM_FOR_CONNECTION: &str = claim_sql!("\n      AND o.connection_id = $5");

const RECORD_DELIVERED: &str = "
UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1,
    delivered_at = $3::timestamptz, updated_at = $3::timestamptz,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'";

const RECORD_RETRY: &str = "
UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3::timestamptz,
    last_error = $4, failure_class = $5, updated_at = $6::timestamptz,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'";

const RECORD_FAILED: &str = "
UPDATE outbox SET status = 'FAILED', attempts = attempts + 1,
    last_error = $3, failure_class = $4, updated_at = $5::timestamptz,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'";

const RELEASE: &str = "
UPDATE outbox SET next_attempt_at = $3::timestamptz, lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $2 AND status = 'PENDING'";

const SELECT_PACKET: &str = concat!("SELECT ", packet_columns!(), " FROM outbox WHERE id = $1");

/// NULL filters match everything; `LIMIT NULL` is no limit.
const SELECT_PACKETS: &str = concat!(
    "SELECT ",
    packet_columns!(),
    " FROM outbox WHERE ($1::text IS NULL OR connection_id = $1) \
     AND ($2::text IS NULL OR status = $2) \
     ORDER BY created_at DESC, id DESC LIMIT $3"
);

const RETRY_NOW: &str = "
UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = $2::timestamptz,
    updated_at = $2::timestamptz, lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND status IN ('PENDING', 'FAILED')";

const DISCARD: &str = "
UPDATE outbox SET status = 'DISCARDED', updated_at = $2::timestamptz,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND status IN ('PENDING', 'FAILED')";

const INSERT_CYCLE: &str = "
INSERT INTO sync_log (connection_id, started_at, orders_found, orders_sent, orders_failed,
    error_message, duration_ms)
VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7)
RETURNING id";

const SELECT_CYCLES: &str = concat!(
    "SELECT id, connection_id, ",
    ts_text!("started_at"),
    " AS started_at, orders_found, orders_sent, orders_failed, error_message, duration_ms \
     FROM sync_log WHERE ($1::text IS NULL OR connection_id = $1) ORDER BY id DESC LIMIT $2"
);

const SELECT_STATS: &str = "
SELECT c.id,
    coalesce(s.delivered, 0) AS delivered,
    coalesce(s.pending, 0) AS pending,
    coalesce(s.failed, 0) AS failed
FROM connections AS c
LEFT JOIN (
    SELECT connection_id,
        count(*) FILTER (WHERE status = 'DELIVERED' AND delivered_at >= $1::timestamptz)
            AS delivered,
        count(*) FILTER (WHERE status = 'PENDING') AS pending,
        count(*) FILTER (WHERE status = 'FAILED') AS failed
    FROM outbox
    WHERE status IN ('PENDING', 'FAILED') OR delivered_at >= $1::timestamptz
    GROUP BY connection_id) AS s ON s.connection_id = c.id
ORDER BY c.name, c.id";

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(from_sqlx)
}

fn get_u32(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = get(row, column)?;
    u32::try_from(value)
        .map_err(|_| StoreError::Database(format!("{column} {value} is out of range")))
}

fn get_u64(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = get(row, column)?;
    u64::try_from(value).map_err(|_| StoreError::Database(format!("{column} is negative")))
}

fn get_ts(row: &PgRow, column: &str) -> Result<Timestamp, StoreError> {
    time::parse(&get::<String>(row, column)?)
}

fn get_opt_ts(row: &PgRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    time::parse_opt(get(row, column)?)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `LIMIT` for a limit where 0 means none (`LIMIT NULL`).
fn limit(limit: u32) -> Option<i64> {
    (limit > 0).then_some(i64::from(limit))
}

fn unknown_connection(id: &str) -> StoreError {
    StoreError::Database(format!("connection {id:?} does not exist"))
}

/// The database error's kind and violated constraint, when it is one.
fn violation(error: &sqlx::Error) -> Option<(ErrorKind, Option<&str>)> {
    match error {
        sqlx::Error::Database(database) => Some((database.kind(), database.constraint())),
        _ => None,
    }
}

/// A taken name or id of a connection becomes [`StoreError::Conflict`] naming it.
fn connection_error(error: sqlx::Error, connection: &Connection) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, Some("connections_name_key"))) => {
            StoreError::Conflict(format!("connection name {:?}", connection.name))
        }
        Some((ErrorKind::UniqueViolation, _)) => {
            StoreError::Conflict(format!("connection id {:?}", connection.id))
        }
        _ => from_sqlx(error),
    }
}

/// A packet id taken by another (connection, order, version) is a conflict. PostgreSQL's
/// detail names the id (`Key (id)=(…) already exists.`); packet ids hold no secret.
fn packets_error(error: sqlx::Error, connection_id: &str) -> StoreError {
    match violation(&error) {
        Some((ErrorKind::UniqueViolation, _)) => {
            let detail = match &error {
                sqlx::Error::Database(database) => database
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(PgDatabaseError::detail)
                    .map(str::to_owned),
                _ => None,
            };
            StoreError::Conflict(format!(
                "packet id of connection {connection_id:?} taken by another order or version{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ))
        }
        Some((ErrorKind::ForeignKeyViolation, _)) => unknown_connection(connection_id),
        _ => from_sqlx(error),
    }
}

/// Every packet of a page must belong to the page's connection.
fn check_page(connection_id: &str, packets: &[NewPacket]) -> Result<(), StoreError> {
    match packets.iter().find(|p| p.connection_id != connection_id) {
        Some(packet) => Err(StoreError::Database(format!(
            "packet {:?} belongs to connection {:?}, not {connection_id:?}",
            packet.id, packet.connection_id
        ))),
        None => Ok(()),
    }
}

fn connection_from_row(row: &PgRow) -> Result<Connection, StoreError> {
    let id: String = get(row, "id")?;
    let events: String = get(row, "events")?;
    let events = EventSet::parse_list(&events)
        .map_err(|error| StoreError::Database(format!("connection {id:?}: {error}")))?;
    let second = get_opt_ts(row, "cursor_second")?;
    let last_id: Option<i64> = get(row, "cursor_id")?;
    let cursor = match (second, last_id) {
        (Some(second), Some(last_id)) => Some(Checkpoint { second, last_id }),
        _ => None,
    };
    Ok(Connection {
        name: get(row, "name")?,
        odoo_url: get(row, "odoo_url")?,
        odoo_db: get(row, "odoo_db")?,
        odoo_username: get(row, "odoo_username")?,
        odoo_api_key: ApiKey::new(get::<String>(row, "odoo_api_key")?),
        webhook_url: get(row, "webhook_url")?,
        webhook_secret: WebhookSecret::new(get::<String>(row, "webhook_secret")?).map_err(
            |error| {
                StoreError::Database(format!(
                    "connection {id:?} has an unusable stored webhook secret: {error}"
                ))
            },
        )?,
        store_id: get(row, "store_id")?,
        client_id: get(row, "client_id")?,
        polling_interval_seconds: get_u32(row, "polling_interval_seconds")?,
        odoo_min_delay_ms: get_u32(row, "odoo_min_delay_ms")?,
        is_active: get(row, "is_active")?,
        events,
        last_sync_at: get_opt_ts(row, "last_sync_at")?,
        cursor,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        id,
    })
}

fn parse_event(text: &str) -> Result<Event, StoreError> {
    Event::parse(text).ok_or_else(|| StoreError::Database(format!("unknown event {text:?}")))
}

fn packet_from_row(row: &PgRow) -> Result<Packet, StoreError> {
    let status: String = get(row, "status")?;
    Ok(Packet {
        id: get(row, "id")?,
        connection_id: get(row, "connection_id")?,
        odoo_order_id: get(row, "odoo_order_id")?,
        external_id: get(row, "external_id")?,
        event: parse_event(&get::<String>(row, "event")?)?,
        version: get_u32(row, "version")?,
        body: get(row, "body")?,
        content_hash: get(row, "content_hash")?,
        status: PacketStatus::parse(&status)
            .ok_or_else(|| StoreError::Database(format!("unknown packet status {status:?}")))?,
        attempts: get_u32(row, "attempts")?,
        max_attempts: get_u32(row, "max_attempts")?,
        next_attempt_at: get_ts(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        failure_class: get(row, "failure_class")?,
        lease_owner: get(row, "lease_owner")?,
        lease_until: get_opt_ts(row, "lease_until")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        delivered_at: get_opt_ts(row, "delivered_at")?,
    })
}

fn cycle_from_row(row: &PgRow) -> Result<CycleLogEntry, StoreError> {
    Ok(CycleLogEntry {
        id: get(row, "id")?,
        log: CycleLog {
            connection_id: get(row, "connection_id")?,
            started_at: get_ts(row, "started_at")?,
            orders_found: get_u64(row, "orders_found")?,
            orders_sent: get_u64(row, "orders_sent")?,
            orders_failed: get_u64(row, "orders_failed")?,
            error_message: get(row, "error_message")?,
            duration_ms: get_u64(row, "duration_ms")?,
        },
    })
}

impl DeliveryStore for PgStore {
    /// The crate has one migrator for the mirror's and the delivery's tables: this is
    /// [`MirrorStore::migrate`], and calling either, in any order and any number of times
    /// (from several processes at once: sqlx's migrator holds an advisory lock), leaves the
    /// same schema.
    async fn migrate_delivery(&self) -> Result<(), StoreError> {
        self.migrate().await
    }

    async fn insert_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let (second, last_id) = match connection.cursor {
            Some(cursor) => (Some(time::format(cursor.second)), Some(cursor.last_id)),
            None => (None, None),
        };
        sqlx::query(INSERT_CONNECTION)
            .bind(&connection.id)
            .bind(&connection.name)
            .bind(&connection.odoo_url)
            .bind(&connection.odoo_db)
            .bind(&connection.odoo_username)
            .bind(connection.odoo_api_key.expose())
            .bind(&connection.webhook_url)
            .bind(connection.webhook_secret.expose())
            .bind(&connection.store_id)
            .bind(&connection.client_id)
            .bind(i64::from(connection.polling_interval_seconds))
            .bind(i64::from(connection.odoo_min_delay_ms))
            .bind(connection.is_active)
            .bind(connection.events.to_list())
            .bind(connection.last_sync_at.map(time::format))
            .bind(second)
            .bind(last_id)
            .bind(time::format(connection.created_at))
            .bind(time::format(connection.updated_at))
            .execute(self.pool())
            .await
            .map_err(|error| connection_error(error, connection))?;
        Ok(())
    }

    async fn update_connection(&self, connection: &Connection) -> Result<bool, StoreError> {
        let result = sqlx::query(UPDATE_CONNECTION)
            .bind(&connection.id)
            .bind(&connection.name)
            .bind(&connection.odoo_url)
            .bind(&connection.odoo_db)
            .bind(&connection.odoo_username)
            .bind(connection.odoo_api_key.expose())
            .bind(&connection.webhook_url)
            .bind(connection.webhook_secret.expose())
            .bind(&connection.store_id)
            .bind(&connection.client_id)
            .bind(i64::from(connection.polling_interval_seconds))
            .bind(i64::from(connection.odoo_min_delay_ms))
            .bind(connection.is_active)
            .bind(connection.events.to_list())
            .bind(time::format(connection.updated_at))
            .execute(self.pool())
            .await
            .map_err(|error| connection_error(error, connection))?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        // The foreign keys cascade too; the explicit deletes say what goes.
        let mut transaction = self.pool().begin().await.map_err(from_sqlx)?;
        for statement in [
            "DELETE FROM outbox WHERE connection_id = $1",
            "DELETE FROM sync_log WHERE connection_id = $1",
        ] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *transaction)
                .await
                .map_err(from_sqlx)?;
        }
        let deleted = sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(deleted > 0)
    }

    async fn connection(&self, id_or_name: &str) -> Result<Option<Connection>, StoreError> {
        let row = sqlx::query(SELECT_CONNECTION)
            .bind(id_or_name)
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(connection_from_row).transpose()
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(SELECT_CONNECTIONS)
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(connection_from_row).collect()
    }

    async fn latest_packets(
        &self,
        connection_id: &str,
        order_ids: &[i64],
    ) -> Result<Vec<LatestPacket>, StoreError> {
        if order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SELECT_LATEST)
            .bind(connection_id)
            .bind(order_ids)
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                Ok(LatestPacket {
                    odoo_order_id: get(row, "odoo_order_id")?,
                    version: get_u32(row, "version")?,
                    event: parse_event(&get::<String>(row, "event")?)?,
                    content_hash: get(row, "content_hash")?,
                })
            })
            .collect()
    }

    async fn enqueue_page(
        &self,
        connection_id: &str,
        packets: &[NewPacket],
        cursor: Checkpoint,
        last_sync_at: Option<Timestamp>,
    ) -> Result<EnqueueCounts, StoreError> {
        check_page(connection_id, packets)?;
        let ids: Vec<&str> = packets.iter().map(|p| p.id.as_str()).collect();
        let order_ids: Vec<i64> = packets.iter().map(|p| p.odoo_order_id).collect();
        let external_ids: Vec<&str> = packets.iter().map(|p| p.external_id.as_str()).collect();
        let events: Vec<&str> = packets.iter().map(|p| p.event.as_str()).collect();
        let versions: Vec<i64> = packets.iter().map(|p| i64::from(p.version)).collect();
        let bodies: Vec<&str> = packets.iter().map(|p| p.body.as_str()).collect();
        let hashes: Vec<&str> = packets.iter().map(|p| p.content_hash.as_str()).collect();
        let max_attempts: Vec<i64> = packets.iter().map(|p| i64::from(p.max_attempts)).collect();
        let created: Vec<String> = packets.iter().map(|p| time::format(p.created_at)).collect();

        // Dropping `transaction` on an early return rolls back: neither packets nor cursor.
        let mut transaction = self.pool().begin().await.map_err(from_sqlx)?;
        let moved = sqlx::query_scalar::<_, String>(MOVE_CURSOR)
            .bind(connection_id)
            .bind(time::format(cursor.second))
            .bind(cursor.last_id)
            .bind(last_sync_at.map(time::format))
            .fetch_optional(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        if moved.is_none() {
            return Err(unknown_connection(connection_id));
        }
        let inserted = if packets.is_empty() {
            0
        } else {
            sqlx::query(INSERT_PACKETS)
                .bind(connection_id)
                .bind(ids)
                .bind(order_ids)
                .bind(external_ids)
                .bind(events)
                .bind(versions)
                .bind(bodies)
                .bind(hashes)
                .bind(max_attempts)
                .bind(created)
                .execute(&mut *transaction)
                .await
                .map_err(|error| packets_error(error, connection_id))?
                .rows_affected()
        };
        transaction.commit().await.map_err(from_sqlx)?;
        let total = u64::try_from(packets.len()).unwrap_or(u64::MAX);
        Ok(EnqueueCounts {
            inserted,
            already_stored: total.saturating_sub(inserted),
        })
    }

    async fn mark_synced(&self, connection_id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result =
            sqlx::query("UPDATE connections SET last_sync_at = $2::timestamptz WHERE id = $1")
                .bind(connection_id)
                .bind(time::format(at))
                .execute(self.pool())
                .await
                .map_err(from_sqlx)?;
        if result.rows_affected() == 0 {
            return Err(unknown_connection(connection_id));
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        owner: &str,
        connection_id: Option<&str>,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Packet>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = now
            .checked_add(lease)
            .map_err(|error| StoreError::Database(format!("lease end out of range: {error}")))?;
        let query = sqlx::query(match connection_id {
            Some(_) => CLAIM_FOR_CONNECTION,
            None => CLAIM_ANY,
        })
        .bind(owner)
        .bind(time::format(until))
        .bind(time::format(now))
        .bind(i64::from(limit));
        let query = match connection_id {
            Some(id) => query.bind(id),
            None => query,
        };
        let rows = query.fetch_all(self.pool()).await.map_err(from_sqlx)?;
        let mut packets = rows
            .iter()
            .map(packet_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING comes in no particular order.
        packets.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(packets)
    }

    async fn release(
        &self,
        packet_id: &str,
        owner: &str,
        next_attempt_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(RELEASE)
            .bind(packet_id)
            .bind(owner)
            .bind(time::format(next_attempt_at))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn record_attempt(
        &self,
        packet_id: &str,
        owner: &str,
        outcome: &AttemptOutcome,
    ) -> Result<bool, StoreError> {
        let query = match outcome {
            AttemptOutcome::Delivered { at } => sqlx::query(RECORD_DELIVERED)
                .bind(packet_id)
                .bind(owner)
                .bind(time::format(*at)),
            AttemptOutcome::Retry {
                error,
                failure_class,
                next_attempt_at,
            } => sqlx::query(RECORD_RETRY)
                .bind(packet_id)
                .bind(owner)
                .bind(time::format(*next_attempt_at))
                .bind(error.as_str())
                .bind(failure_class.as_str())
                .bind(time::format(Timestamp::now())),
            AttemptOutcome::Failed {
                error,
                failure_class,
            } => sqlx::query(RECORD_FAILED)
                .bind(packet_id)
                .bind(owner)
                .bind(error.as_str())
                .bind(failure_class.as_str())
                .bind(time::format(Timestamp::now())),
        };
        let result = query.execute(self.pool()).await.map_err(from_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn packet(&self, id: &str) -> Result<Option<Packet>, StoreError> {
        let row = sqlx::query(SELECT_PACKET)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(packet_from_row).transpose()
    }

    async fn packets(&self, filter: &PacketFilter) -> Result<Vec<Packet>, StoreError> {
        let rows = sqlx::query(SELECT_PACKETS)
            .bind(filter.connection_id.as_deref())
            .bind(filter.status.map(PacketStatus::as_str))
            .bind(limit(filter.limit))
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(packet_from_row).collect()
    }

    async fn retry_now(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let result = sqlx::query(RETRY_NOW)
            .bind(id)
            .bind(time::format(now))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(DISCARD)
            .bind(id)
            .bind(time::format(Timestamp::now()))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn log_cycle(&self, log: &CycleLog) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>(INSERT_CYCLE)
            .bind(&log.connection_id)
            .bind(time::format(log.started_at))
            .bind(to_i64(log.orders_found))
            .bind(to_i64(log.orders_sent))
            .bind(to_i64(log.orders_failed))
            .bind(log.error_message.as_deref())
            .bind(to_i64(log.duration_ms))
            .fetch_one(self.pool())
            .await
            .map_err(|error| match violation(&error) {
                Some((ErrorKind::ForeignKeyViolation, _)) => unknown_connection(&log.connection_id),
                _ => from_sqlx(error),
            })
    }

    async fn cycles(
        &self,
        connection_id: Option<&str>,
        limit_rows: u32,
    ) -> Result<Vec<CycleLogEntry>, StoreError> {
        let rows = sqlx::query(SELECT_CYCLES)
            .bind(connection_id)
            .bind(limit(limit_rows))
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(cycle_from_row).collect()
    }

    async fn connection_stats(&self, since: Timestamp) -> Result<Vec<ConnectionStats>, StoreError> {
        let rows = sqlx::query(SELECT_STATS)
            .bind(time::format(since))
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                Ok(ConnectionStats {
                    connection_id: get(row, "id")?,
                    delivered_since: get_u64(row, "delivered")?,
                    pending: get_u64(row, "pending")?,
                    failed: get_u64(row, "failed")?,
                })
            })
            .collect()
    }

    async fn prune_cycles(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM sync_log WHERE started_at < $1::timestamptz")
            .bind(time::format(before))
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected())
    }

    async fn set_breaker_state(&self, record: &BreakerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO breaker_states (connection_id, state, open_until, updated_at) \
             VALUES ($1, $2, $3::timestamptz, $4::timestamptz) \
             ON CONFLICT (connection_id) DO UPDATE SET state = excluded.state, \
             open_until = excluded.open_until, updated_at = excluded.updated_at",
        )
        .bind(&record.connection_id)
        .bind(&record.state)
        .bind(record.open_until.map(time::format))
        .bind(time::format(record.updated_at))
        .execute(self.pool())
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn breaker_states(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT connection_id, state, ",
            ts_text!("open_until"),
            " AS open_until, ",
            ts_text!("updated_at"),
            " AS updated_at FROM breaker_states ORDER BY connection_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                Ok(BreakerRecord {
                    connection_id: get(row, "connection_id")?,
                    state: get(row, "state")?,
                    open_until: get_opt_ts(row, "open_until")?,
                    updated_at: get_ts(row, "updated_at")?,
                })
            })
            .collect()
    }

    async fn record_heartbeat(&self, heartbeat: &DaemonHeartbeat) -> Result<(), StoreError> {
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
        let result = sqlx::query("DELETE FROM daemon_heartbeats WHERE worker_id = $1")
            .bind(worker_id)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn next_due_by_connection(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT connection_id, ",
            ts_text!("min(next_attempt_at)"),
            " AS due FROM outbox WHERE status = 'PENDING' GROUP BY connection_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| Ok((get(row, "connection_id")?, get_ts(row, "due")?)))
            .collect()
    }

    async fn heartbeats(&self) -> Result<Vec<DaemonHeartbeat>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT worker_id, kind, ",
            ts_text!("started_at"),
            " AS started_at, ",
            ts_text!("beat_at"),
            " AS beat_at FROM daemon_heartbeats ORDER BY daemon_heartbeats.beat_at DESC, worker_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                Ok(DaemonHeartbeat {
                    worker_id: get(row, "worker_id")?,
                    kind: get(row, "kind")?,
                    started_at: get_ts(row, "started_at")?,
                    beat_at: get_ts(row, "beat_at")?,
                })
            })
            .collect()
    }
}
