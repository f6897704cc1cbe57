//! [`DeliveryStore`] for [`SqliteStore`]: connections, the outbox and the sync log
//! (migration `0002_delivery.sql`).
//!
//! Every write that reads before it writes, or writes more than one statement, runs under
//! `BEGIN IMMEDIATE`: SQLite allows one writer at a time, and taking the write lock up front
//! makes a second writer (another task, another process on the same file) wait on
//! `busy_timeout` instead of failing with `SQLITE_BUSY` when it upgrades a read. That is also
//! what makes a claim exclusive: the claim's select and its update run while no other
//! connection can write, so no packet is ever leased to two owners at once.
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

use engine::change_feed::Checkpoint;
use engine::delivery_store::{
    ApiKey, AttemptOutcome, BreakerRecord, Connection, ConnectionStats, CycleLog, CycleLogEntry,
    DaemonHeartbeat, DeliveryStore, EnqueueCounts, Event, EventSet, LatestPacket, NewPacket,
    Packet, PacketFilter, PacketStatus, WebhookSecret,
};
use engine::mirror_store::{MirrorStore, StoreError};
use jiff::{SignedDuration, Timestamp};
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};
use std::collections::HashMap;

use crate::SqliteStore;
use crate::error::map_sqlx;
use crate::time::{format_ts, parse_opt_ts, parse_ts};

/// The columns of `connections`, in the order [`connection_from_row`] reads them by name.
macro_rules! connection_columns {
    () => {
        "id, name, odoo_url, odoo_db, odoo_username, odoo_api_key, webhook_url, \
         webhook_secret, store_id, client_id, polling_interval_seconds, odoo_min_delay_ms, \
         is_active, events, last_sync_at, cursor_second, cursor_id, created_at, updated_at"
    };
}

/// The columns of `outbox` that [`packet_from_row`] reads.
macro_rules! packet_columns {
    () => {
        "id, connection_id, odoo_order_id, external_id, event, version, body, content_hash, \
         status, attempts, max_attempts, next_attempt_at, last_error, failure_class, \
         lease_owner, lease_until, created_at, updated_at, delivered_at"
    };
}

const INSERT_CONNECTION: &str = concat!(
    "INSERT INTO connections (",
    connection_columns!(),
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

const UPDATE_CONNECTION: &str = "UPDATE connections SET name = ?, odoo_url = ?, odoo_db = ?, \
     odoo_username = ?, odoo_api_key = ?, webhook_url = ?, webhook_secret = ?, store_id = ?, \
     client_id = ?, polling_interval_seconds = ?, odoo_min_delay_ms = ?, is_active = ?, \
     events = ?, updated_at = ? WHERE id = ?";

/// By id first, else by name (a name may look like another connection's id).
const SELECT_CONNECTION: &str = concat!(
    "SELECT ",
    connection_columns!(),
    " FROM connections WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1"
);

const SELECT_CONNECTIONS: &str = concat!(
    "SELECT ",
    connection_columns!(),
    " FROM connections ORDER BY name, id"
);

const MOVE_CURSOR: &str = "UPDATE connections SET cursor_second = ?, cursor_id = ?, \
     last_sync_at = coalesce(?, last_sync_at) WHERE id = ?";

/// Due at its creation; a repeated (connection, order, version) is left as it was.
const INSERT_PACKET: &str = "INSERT INTO outbox (id, connection_id, odoo_order_id, external_id, \
     event, version, body, content_hash, status, attempts, max_attempts, next_attempt_at, \
     created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'PENDING', 0, ?9, ?10, ?10, ?10) \
     ON CONFLICT (connection_id, odoo_order_id, version) DO NOTHING";

/// The newest version of each order among a JSON array of ids.
const SELECT_LATEST: &str = "SELECT o.odoo_order_id, o.version, o.event, o.content_hash \
     FROM outbox AS o \
     WHERE o.connection_id = ?1 \
       AND o.odoo_order_id IN (SELECT value FROM json_each(?2)) \
       AND o.version = (SELECT max(n.version) FROM outbox AS n \
                        WHERE n.connection_id = o.connection_id \
                          AND n.odoo_order_id = o.odoo_order_id) \
     ORDER BY o.odoo_order_id";

/// Two statements, not one with `(?5 IS NULL OR connection_id = ?5)`, which keeps SQLite from
/// using the per-connection index.
macro_rules! claim_sql {
    ($connection_filter:literal) => {
        concat!(
            "UPDATE outbox SET lease_owner = ?1, lease_until = ?2 WHERE id IN (\
               SELECT o.id FROM outbox AS o \
               WHERE o.status = 'PENDING'",
            $connection_filter,
            " AND o.next_attempt_at <= ?3 \
                 AND (o.lease_until IS NULL OR o.lease_until < ?3) \
                 AND NOT EXISTS (SELECT 1 FROM outbox AS older \
                                 WHERE older.connection_id = o.connection_id \
                                   AND older.odoo_order_id = o.odoo_order_id \
                                   AND older.version < o.version \
                                   AND older.status = 'PENDING') \
               ORDER BY o.next_attempt_at, o.id LIMIT ?4) \
             RETURNING ",
            packet_columns!()
        )
    };
}

const CLAIM_ANY: &str = claim_sql!("");
const CLAIM_FOR_CONNECTION: &str = claim_sql!(" AND o.connection_id = ?5");

const RECORD_DELIVERED: &str = "UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1, \
     delivered_at = ?3, updated_at = ?3, lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_RETRY: &str = "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?3, \
     last_error = ?4, failure_class = ?5, updated_at = ?6, lease_owner = NULL, \
     lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RECORD_FAILED: &str = "UPDATE outbox SET status = 'FAILED', attempts = attempts + 1, \
     last_error = ?3, failure_class = ?4, updated_at = ?5, lease_owner = NULL, \
     lease_until = NULL \
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const RELEASE: &str = "UPDATE outbox SET next_attempt_at = ?3, lease_owner = NULL, \
     lease_until = NULL WHERE id = ?1 AND lease_owner = ?2 AND status = 'PENDING'";

const SELECT_PACKET: &str = concat!("SELECT ", packet_columns!(), " FROM outbox WHERE id = ?");

/// NULL filters match everything; a negative LIMIT is no limit in SQLite.
const SELECT_PACKETS: &str = concat!(
    "SELECT ",
    packet_columns!(),
    " FROM outbox WHERE (?1 IS NULL OR connection_id = ?1) AND (?2 IS NULL OR status = ?2) \
     ORDER BY created_at DESC, id DESC LIMIT ?3"
);

const RETRY_NOW: &str = "UPDATE outbox SET status = 'PENDING', attempts = 0, \
     next_attempt_at = ?2, updated_at = ?2, lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND status IN ('PENDING', 'FAILED')";

const DISCARD: &str = "UPDATE outbox SET status = 'DISCARDED', updated_at = ?2, \
     lease_owner = NULL, lease_until = NULL \
     WHERE id = ?1 AND status IN ('PENDING', 'FAILED')";

const INSERT_CYCLE: &str = "INSERT INTO sync_log (connection_id, started_at, orders_found, \
     orders_sent, orders_failed, error_message, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)";

const SELECT_CYCLES: &str = "SELECT id, connection_id, started_at, orders_found, orders_sent, \
     orders_failed, error_message, duration_ms FROM sync_log \
     WHERE (?1 IS NULL OR connection_id = ?1) ORDER BY id DESC LIMIT ?2";

const SELECT_STATS: &str = "SELECT c.id, \
       coalesce(s.delivered, 0) AS delivered, \
       coalesce(s.pending, 0) AS pending, \
       coalesce(s.failed, 0) AS failed \
     FROM connections AS c LEFT JOIN ( \
       SELECT connection_id, \
         count(*) FILTER (WHERE status = 'DELIVERED' AND delivered_at >= ?1) AS delivered, \
         count(*) FILTER (WHERE status = 'PENDING') AS pending, \
         count(*) FILTER (WHERE status = 'FAILED') AS failed \
       FROM outbox \
       WHERE status IN ('PENDING', 'FAILED') OR delivered_at >= ?1 \
       GROUP BY connection_id) AS s ON s.connection_id = c.id \
     ORDER BY c.name, c.id";

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(map_sqlx)
}

fn get_u32(row: &SqliteRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = get(row, column)?;
    u32::try_from(value)
        .map_err(|_| StoreError::Database(format!("{column} {value} is out of range")))
}

fn get_u64(row: &SqliteRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = get(row, column)?;
    u64::try_from(value).map_err(|_| StoreError::Database(format!("{column} is negative")))
}

fn get_ts(row: &SqliteRow, column: &str) -> Result<Timestamp, StoreError> {
    parse_ts(&get::<String>(row, column)?)
}

fn get_opt_ts(row: &SqliteRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    parse_opt_ts(get(row, column)?)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `LIMIT` for a limit where 0 means none.
fn limit(limit: u32) -> i64 {
    if limit == 0 { -1 } else { i64::from(limit) }
}

fn unknown_connection(id: &str) -> StoreError {
    StoreError::Database(format!("connection {id:?} does not exist"))
}

/// The database error's kind and message, when it is one.
fn database_error(error: &sqlx::Error) -> Option<(ErrorKind, &str)> {
    match error {
        sqlx::Error::Database(database) => Some((database.kind(), database.message())),
        _ => None,
    }
}

/// A taken name or id of a connection becomes [`StoreError::Conflict`] naming it. SQLite's
/// message names the column (`UNIQUE constraint failed: connections.name`), never the value.
fn connection_error(error: sqlx::Error, connection: &Connection) -> StoreError {
    match database_error(&error) {
        Some((ErrorKind::UniqueViolation, message)) if message.contains("connections.name") => {
            StoreError::Conflict(format!("connection name {:?}", connection.name))
        }
        Some((ErrorKind::UniqueViolation, _)) => {
            StoreError::Conflict(format!("connection id {:?}", connection.id))
        }
        _ => map_sqlx(error),
    }
}

/// An id taken by a packet of another (connection, order, version) is a conflict; a missing
/// connection is named.
fn packet_error(error: sqlx::Error, packet: &NewPacket) -> StoreError {
    match database_error(&error) {
        Some((ErrorKind::UniqueViolation, _)) => {
            StoreError::Conflict(format!("packet id {:?}", packet.id))
        }
        Some((ErrorKind::ForeignKeyViolation, _)) => unknown_connection(&packet.connection_id),
        _ => map_sqlx(error),
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

fn connection_from_row(row: &SqliteRow) -> Result<Connection, StoreError> {
    let id: String = get(row, "id")?;
    let events: String = get(row, "events")?;
    let events = EventSet::parse_list(&events)
        .map_err(|error| StoreError::Database(format!("connection {id:?}: {error}")))?;
    let second: Option<String> = get(row, "cursor_second")?;
    let last_id: Option<i64> = get(row, "cursor_id")?;
    let cursor = match (second, last_id) {
        (Some(second), Some(last_id)) => Some(Checkpoint {
            second: parse_ts(&second)?,
            last_id,
        }),
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
        last_sync_at: parse_opt_ts(get::<Option<String>>(row, "last_sync_at")?.as_deref())?,
        cursor,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        id,
    })
}

fn parse_event(text: &str) -> Result<Event, StoreError> {
    Event::parse(text).ok_or_else(|| StoreError::Database(format!("unknown event {text:?}")))
}

fn packet_from_row(row: &SqliteRow) -> Result<Packet, StoreError> {
    let status: String = get(row, "status")?;
    let opt_ts = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        parse_opt_ts(get::<Option<String>>(row, column)?.as_deref())
    };
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
        lease_until: opt_ts("lease_until")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        delivered_at: opt_ts("delivered_at")?,
    })
}

fn cycle_from_row(row: &SqliteRow) -> Result<CycleLogEntry, StoreError> {
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

impl DeliveryStore for SqliteStore {
    /// The crate has one migrator for the mirror's and the delivery's tables: this is
    /// [`MirrorStore::migrate`], and calling either, in any order and any number of times,
    /// leaves the same schema.
    async fn migrate_delivery(&self) -> Result<(), StoreError> {
        self.migrate().await
    }

    async fn insert_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let (second, last_id) = match connection.cursor {
            Some(cursor) => (Some(format_ts(cursor.second)), Some(cursor.last_id)),
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
            .bind(connection.last_sync_at.map(format_ts))
            .bind(second)
            .bind(last_id)
            .bind(format_ts(connection.created_at))
            .bind(format_ts(connection.updated_at))
            .execute(&self.pool)
            .await
            .map_err(|error| connection_error(error, connection))?;
        Ok(())
    }

    async fn update_connection(&self, connection: &Connection) -> Result<bool, StoreError> {
        let result = sqlx::query(UPDATE_CONNECTION)
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
            .bind(format_ts(connection.updated_at))
            .bind(&connection.id)
            .execute(&self.pool)
            .await
            .map_err(|error| connection_error(error, connection))?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        // The foreign keys cascade too; deleting explicitly does not depend on the
        // connection's `foreign_keys` pragma.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        for statement in [
            "DELETE FROM outbox WHERE connection_id = ?",
            "DELETE FROM sync_log WHERE connection_id = ?",
        ] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        let deleted = sqlx::query("DELETE FROM connections WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted > 0)
    }

    async fn connection(&self, id_or_name: &str) -> Result<Option<Connection>, StoreError> {
        let row = sqlx::query(SELECT_CONNECTION)
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        row.as_ref().map(connection_from_row).transpose()
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(SELECT_CONNECTIONS)
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
        // One statement whatever the number of ids: they travel as one JSON array.
        let ids = serde_json::to_string(order_ids)
            .map_err(|error| StoreError::Database(format!("order ids: {error}")))?;
        let rows = sqlx::query(SELECT_LATEST)
            .bind(connection_id)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
        // Dropping `tx` on an early return rolls back: neither packets nor cursor move.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        let moved = sqlx::query(MOVE_CURSOR)
            .bind(format_ts(cursor.second))
            .bind(cursor.last_id)
            .bind(last_sync_at.map(format_ts))
            .bind(connection_id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if moved.rows_affected() == 0 {
            return Err(unknown_connection(connection_id));
        }
        let mut counts = EnqueueCounts::default();
        for packet in packets {
            // The same statement each time: prepared once per connection (sqlx caches it).
            let result = sqlx::query(INSERT_PACKET)
                .bind(&packet.id)
                .bind(&packet.connection_id)
                .bind(packet.odoo_order_id)
                .bind(&packet.external_id)
                .bind(packet.event.as_str())
                .bind(i64::from(packet.version))
                .bind(&packet.body)
                .bind(&packet.content_hash)
                .bind(i64::from(packet.max_attempts))
                .bind(format_ts(packet.created_at))
                .execute(&mut *tx)
                .await
                .map_err(|error| packet_error(error, packet))?;
            if result.rows_affected() > 0 {
                counts.inserted += 1;
            } else {
                counts.already_stored += 1;
            }
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(counts)
    }

    async fn mark_synced(&self, connection_id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE connections SET last_sync_at = ? WHERE id = ?")
            .bind(format_ts(at))
            .bind(connection_id)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
        // One UPDATE … RETURNING, under the write lock taken at BEGIN: between choosing the
        // packets and leasing them, no other connection can write.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        let query = sqlx::query(match connection_id {
            Some(_) => CLAIM_FOR_CONNECTION,
            None => CLAIM_ANY,
        })
        .bind(owner)
        .bind(format_ts(until))
        .bind(format_ts(now))
        .bind(i64::from(limit));
        let query = match connection_id {
            Some(id) => query.bind(id),
            None => query,
        };
        let rows = query.fetch_all(&mut *tx).await.map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
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
            .bind(format_ts(next_attempt_at))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
                .bind(format_ts(*at)),
            AttemptOutcome::Retry {
                error,
                failure_class,
                next_attempt_at,
            } => sqlx::query(RECORD_RETRY)
                .bind(packet_id)
                .bind(owner)
                .bind(format_ts(*next_attempt_at))
                .bind(error.as_str())
                .bind(failure_class.as_str())
                .bind(format_ts(Timestamp::now())),
            AttemptOutcome::Failed {
                error,
                failure_class,
            } => sqlx::query(RECORD_FAILED)
                .bind(packet_id)
                .bind(owner)
                .bind(error.as_str())
                .bind(failure_class.as_str())
                .bind(format_ts(Timestamp::now())),
        };
        let result = query.execute(&self.pool).await.map_err(map_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn packet(&self, id: &str) -> Result<Option<Packet>, StoreError> {
        let row = sqlx::query(SELECT_PACKET)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        row.as_ref().map(packet_from_row).transpose()
    }

    async fn packets(&self, filter: &PacketFilter) -> Result<Vec<Packet>, StoreError> {
        let rows = sqlx::query(SELECT_PACKETS)
            .bind(filter.connection_id.as_deref())
            .bind(filter.status.map(PacketStatus::as_str))
            .bind(limit(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        rows.iter().map(packet_from_row).collect()
    }

    async fn retry_now(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let result = sqlx::query(RETRY_NOW)
            .bind(id)
            .bind(format_ts(now))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(DISCARD)
            .bind(id)
            .bind(format_ts(Timestamp::now()))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn log_cycle(&self, log: &CycleLog) -> Result<i64, StoreError> {
        let result = sqlx::query(INSERT_CYCLE)
            .bind(&log.connection_id)
            .bind(format_ts(log.started_at))
            .bind(to_i64(log.orders_found))
            .bind(to_i64(log.orders_sent))
            .bind(to_i64(log.orders_failed))
            .bind(log.error_message.as_deref())
            .bind(to_i64(log.duration_ms))
            .execute(&self.pool)
            .await
            .map_err(|error| match database_error(&error) {
                Some((ErrorKind::ForeignKeyViolation, _)) => unknown_connection(&log.connection_id),
                _ => map_sqlx(error),
            })?;
        Ok(result.last_insert_rowid())
    }

    async fn cycles(
        &self,
        connection_id: Option<&str>,
        limit_rows: u32,
    ) -> Result<Vec<CycleLogEntry>, StoreError> {
        let rows = sqlx::query(SELECT_CYCLES)
            .bind(connection_id)
            .bind(limit(limit_rows))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        rows.iter().map(cycle_from_row).collect()
    }

    async fn connection_stats(&self, since: Timestamp) -> Result<Vec<ConnectionStats>, StoreError> {
        let rows = sqlx::query(SELECT_STATS)
            .bind(format_ts(since))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
        let result = sqlx::query("DELETE FROM sync_log WHERE started_at < ?")
            .bind(format_ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(result.rows_affected())
    }

    async fn set_breaker_state(&self, record: &BreakerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO breaker_states (connection_id, state, open_until, updated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (connection_id) DO UPDATE SET \
             state = excluded.state, open_until = excluded.open_until, \
             updated_at = excluded.updated_at",
        )
        .bind(&record.connection_id)
        .bind(&record.state)
        .bind(record.open_until.map(format_ts))
        .bind(format_ts(record.updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn breaker_states(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT connection_id, state, open_until, updated_at FROM breaker_states \
             ORDER BY connection_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
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
        let day_before = heartbeat
            .beat_at
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(heartbeat.beat_at);
        sqlx::query("DELETE FROM daemon_heartbeats WHERE beat_at < ?")
            .bind(format_ts(day_before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        sqlx::query(
            "INSERT INTO daemon_heartbeats (worker_id, kind, started_at, beat_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (worker_id) DO UPDATE SET \
             kind = excluded.kind, started_at = excluded.started_at, beat_at = excluded.beat_at",
        )
        .bind(&heartbeat.worker_id)
        .bind(&heartbeat.kind)
        .bind(format_ts(heartbeat.started_at))
        .bind(format_ts(heartbeat.beat_at))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn remove_heartbeat(&self, worker_id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM daemon_heartbeats WHERE worker_id = ?")
            .bind(worker_id)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(result.rows_affected() > 0)
    }

    async fn next_due_by_connection(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let rows = sqlx::query(
            "SELECT connection_id, min(next_attempt_at) AS due FROM outbox \
             WHERE status = 'PENDING' GROUP BY connection_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.iter()
            .map(|row| Ok((get(row, "connection_id")?, get_ts(row, "due")?)))
            .collect()
    }

    async fn heartbeats(&self) -> Result<Vec<DaemonHeartbeat>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker_id, kind, started_at, beat_at FROM daemon_heartbeats \
             ORDER BY beat_at DESC, worker_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
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
