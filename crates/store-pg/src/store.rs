//! [`PgStore`]: the mirror's tables in PostgreSQL.

use crate::error::{from_migrate, from_sqlx};
use crate::lock::{LOCK_KEY, PgLock};
use crate::options::PgTarget;
use crate::time::{self, ts_text};
use engine::change_feed::Checkpoint;
use engine::mirror_store::{
    INTERRUPTED_ERROR, MirrorRow, MirrorStore, PageCounts, ReconcileCounts, RowEffect, RunRecord,
    RunStatus, StoreError, StoredRecord,
};
use engine::store::{KeySource, Keyring, Reseal, TenantStore};
use jiff::Timestamp;
use sqlx::Connection;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// The schema, embedded at compile time from `crates/store-pg/migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!();

/// Connections [`PgStore::connect`] opens at most: one is held by the run lock for a whole
/// run, the mirror writes one model at a time, and the rest absorb readers (CLI, TUI).
const MAX_CONNECTIONS: u32 = 5;

/// How long a connection of the pool may take to open (sqlx retries "connection refused"
/// with backoff, assuming the server is starting). [`PgStore::connect`] tries once first.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`PgStore::connect`]'s first connection may take: a firewall that drops packets
/// answers nothing, and waiting longer says nothing more.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The mirror's store in PostgreSQL: seed 003's tables `odoo_raw_records` (payloads as JSONB),
/// `odoo_sync_state` and `odoo_sync_runs`, and a session-level advisory lock as the run lock.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    keyring: Keyring,
}

/// Where the key that seals the stored secrets is generated when neither
/// `ODOO_BRIDGE_ENCRYPTION_KEY` nor `ODOO_BRIDGE_ENCRYPTION_KEY_FILE` is set: beside where the
/// embedded store would be. Replicas on several machines must share one key: set the variable.
pub const DEFAULT_KEY_FILE: &str = "./data/odoo-bridge.key";

fn default_keyring() -> Keyring {
    Keyring::new(KeySource::from_environment(PathBuf::from(DEFAULT_KEY_FILE)))
}

impl PgStore {
    /// Opens a pool (at most 5 connections) and checks that the server answers.
    ///
    /// Build `options` from the configuration with [`crate::connect_options`]. One
    /// connection is made first, on its own: a server that refuses, a database that does not
    /// exist or a refused login is reported at once, naming the server and the database
    /// (never the password), where a pool would retry until its timeout and only say that it
    /// timed out.
    pub async fn connect(target: impl Into<PgTarget>) -> Result<PgStore, StoreError> {
        let options = target.into().options().clone();
        let target = describe(&options);
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                StoreError::unavailable(format!(
                    "PostgreSQL at {target} did not answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|error| connect_error(&target, error))?;
        // Closing politely is best effort: the connection proved what it had to.
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            keyring: default_keyring(),
        })
    }

    /// Whether the database holds odoo-bridge's schema (of any release: its migrations table),
    /// found without creating anything.
    pub async fn has_schema(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    /// Whether the mirror's three tables exist, found without creating anything: commands
    /// that only read (`runs`, `config check`, `sync --dry-run`) must not create a schema.
    pub async fn has_mirror_tables(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT to_regclass('odoo_raw_records') IS NOT NULL \
                AND to_regclass('odoo_sync_state') IS NOT NULL \
                AND to_regclass('odoo_sync_runs') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    /// A store over an existing pool. It must allow at least two connections, as the run lock
    /// keeps one for itself while the run writes through another.
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            keyring: default_keyring(),
        }
    }

    /// The same store, sealing its secrets with `keyring` instead of the environment's key.
    pub fn with_keyring(mut self, keyring: Keyring) -> PgStore {
        self.keyring = keyring;
        self
    }

    pub(crate) fn keyring_ref(&self) -> &Keyring {
        &self.keyring
    }

    /// The pool, for callers that share it (and for tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection of the pool, waiting for those in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `host:port, database db, user u` for messages: what to check, without the password.
fn describe(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    format!(
        "{}:{} (database {database:?}, user {:?})",
        options.get_host(),
        options.get_port(),
        options.get_username()
    )
}

/// The first connection's failure, said in terms of what to fix. PostgreSQL's own message is
/// kept; sqlx's rendering of it would add the server's C source line ("at line 948").
fn connect_error(target: &str, error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            let hint = match code.as_ref() {
                "3D000" => "create the database, or fix the database name in the configuration",
                "28P01" | "28000" => {
                    "check the user and the password (password_env or the URL), and pg_hba.conf"
                }
                _ => "check the server",
            };
            StoreError::unavailable(format!(
                "PostgreSQL at {target} refused the connection: {}: {hint}",
                database.message()
            ))
        }
        sqlx::Error::Io(io) => StoreError::unavailable(format!(
            "cannot connect to PostgreSQL at {target}: {io}: check the host and port, and that PostgreSQL runs"
        )),
        sqlx::Error::Tls(tls) => StoreError::unavailable(format!(
            "cannot connect to PostgreSQL at {target}: TLS: {tls}: check ssl_mode and ssl_root_cert"
        )),
        _ => match from_sqlx(error) {
            StoreError::Unavailable { source } => StoreError::unavailable(format!(
                "cannot connect to PostgreSQL at {target}: {source}"
            )),
            other => other,
        },
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::database(format!("count {value} out of range")))
}

fn to_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::database(format!("{column} is negative ({value})")))
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(from_sqlx)
}

/// `UPDATE … RETURNING id` found no run: the caller's run id is wrong. Failing (and rolling
/// back the transaction) keeps pages from being written without being accounted for.
fn missing_run(run: i64) -> StoreError {
    StoreError::database(format!("run {run} does not exist in odoo_sync_runs"))
}

/// Ids that occur more than once in the page, sorted.
fn repeated_ids(rows: &[MirrorRow]) -> Vec<i64> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut repeated: Vec<i64> = rows
        .iter()
        .filter(|row| !seen.insert(row.odoo_id))
        .map(|row| row.odoo_id)
        .collect();
    repeated.sort_unstable();
    repeated.dedup();
    repeated
}

/// Keeps the last occurrence of each id (one `INSERT … ON CONFLICT DO UPDATE` cannot touch a
/// row twice, and the last version read is the newest), sorted by id.
fn last_of_each_id(rows: &[MirrorRow]) -> Vec<&MirrorRow> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut unique: Vec<&MirrorRow> = rows
        .iter()
        .rev()
        .filter(|row| seen.insert(row.odoo_id))
        .collect();
    // In id order: two runs writing overlapping pages (lock_strategy: none) then lock rows
    // in the same order and cannot deadlock.
    unique.sort_by_key(|row| row.odoo_id);
    unique
}

const UPSERT_PAGE: &str = "
WITH upserted AS (
    INSERT INTO odoo_raw_records AS r
        (model, odoo_id, payload, write_date, synced_at, content_hash, deleted_at)
    SELECT $1, page.odoo_id, page.payload::jsonb, page.write_date::timestamptz, $6::timestamptz,
           page.content_hash, NULL
    -- The payloads come as the JSON text the rows carry: PostgreSQL parses it either way.
    FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[])
        AS page(odoo_id, payload, write_date, content_hash)
    ON CONFLICT (model, odoo_id) DO UPDATE SET
        payload = excluded.payload,
        write_date = excluded.write_date,
        synced_at = excluded.synced_at,
        content_hash = excluded.content_hash,
        deleted_at = NULL
    -- An unchanged row is left alone (no new row version, synced_at kept); a row stamped
    -- deleted that Odoo returns again is rewritten, which clears the stamp.
    WHERE r.content_hash IS DISTINCT FROM excluded.content_hash
       OR r.deleted_at IS NOT NULL
    -- xmax is 0 on a freshly inserted row version, non-zero on an updated one.
    RETURNING (r.xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM upserted";

const SAVE_CHECKPOINT: &str = "
INSERT INTO odoo_sync_state (model, last_cursor_value, last_cursor_id, updated_at)
VALUES ($1, $2::timestamptz, $3, $4::timestamptz)
ON CONFLICT (model) DO UPDATE SET
    last_cursor_value = excluded.last_cursor_value,
    last_cursor_id = excluded.last_cursor_id,
    updated_at = excluded.updated_at";

const COUNT_PAGE: &str = "
UPDATE odoo_sync_runs SET
    pages = pages + 1,
    fetched = fetched + $2,
    inserted = inserted + $3,
    updated = updated + $4,
    unchanged = unchanged + $5
WHERE id = $1
RETURNING id";

// Reconciliation compares the model's rows with a list of up to ~1e6 ids, sent as ONE
// bigint[] parameter. `odoo_id <> ALL($2)` scans the array once per row, and an anti-join
// straight against `unnest($2)` is at the planner's mercy: on a table not yet analyzed it
// picked a nested loop that re-ran the unnest per row (200k x 200k, minutes). So the ids go
// into a temporary table with a primary key, analyzed: every plan the planner can choose
// from there (hash join, or nested loop over an index) is O(n log n).
const CREATE_PRESENT: &str =
    "CREATE TEMPORARY TABLE odoo_bridge_present (odoo_id bigint PRIMARY KEY) ON COMMIT DROP";

const FILL_PRESENT: &str =
    "INSERT INTO odoo_bridge_present (odoo_id) SELECT DISTINCT unnest($1::bigint[])";

const ANALYZE_PRESENT: &str = "ANALYZE odoo_bridge_present";

const STAMP_DELETED: &str = "
UPDATE odoo_raw_records AS r SET deleted_at = $2::timestamptz
WHERE r.model = $1
  AND r.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM odoo_bridge_present AS p WHERE p.odoo_id = r.odoo_id)";

const RESTORE: &str = "
UPDATE odoo_raw_records AS r SET deleted_at = NULL
FROM odoo_bridge_present AS p
WHERE r.model = $1
  AND r.deleted_at IS NOT NULL
  AND r.odoo_id = p.odoo_id";

const COUNT_RECONCILE: &str = "
UPDATE odoo_sync_runs SET deleted = deleted + $2, restored = restored + $3
WHERE id = $1
RETURNING id";

const SELECT_CHECKPOINT: &str = concat!(
    "SELECT ",
    ts_text!("last_cursor_value"),
    " AS second, last_cursor_id FROM odoo_sync_state WHERE model = $1"
);

const SELECT_RUNS: &str = concat!(
    "SELECT id, ",
    ts_text!("started_at"),
    " AS started_at, ",
    ts_text!("finished_at"),
    " AS finished_at, status, error, pages, fetched, inserted, updated, unchanged, deleted, \
     restored, ",
    ts_text!("COALESCE(heartbeat_at, started_at)"),
    " AS heartbeat_at FROM odoo_sync_runs ORDER BY started_at DESC, id DESC LIMIT $1"
);

const SELECT_RECORD: &str = concat!(
    "SELECT model, odoo_id, payload, ",
    ts_text!("write_date"),
    " AS write_date, ",
    ts_text!("synced_at"),
    " AS synced_at, content_hash, ",
    ts_text!("deleted_at"),
    " AS deleted_at FROM odoo_raw_records WHERE model = $1 AND odoo_id = $2"
);

fn run_record(row: &PgRow) -> Result<RunRecord, StoreError> {
    let status: String = get(row, "status")?;
    Ok(RunRecord {
        id: get(row, "id")?,
        started_at: time::parse(&get::<String>(row, "started_at")?)?,
        finished_at: time::parse_opt(get(row, "finished_at")?)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::invalid_data(format!("unknown run status {status:?}")))?,
        error: get(row, "error")?,
        pages: to_u64(get(row, "pages")?, "pages")?,
        fetched: to_u64(get(row, "fetched")?, "fetched")?,
        inserted: to_u64(get(row, "inserted")?, "inserted")?,
        updated: to_u64(get(row, "updated")?, "updated")?,
        unchanged: to_u64(get(row, "unchanged")?, "unchanged")?,
        deleted: to_u64(get(row, "deleted")?, "deleted")?,
        restored: to_u64(get(row, "restored")?, "restored")?,
        heartbeat_at: time::parse_opt(get(row, "heartbeat_at")?)?,
    })
}

impl MirrorStore for PgStore {
    type Lock = PgLock;

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx's migrator takes its own advisory lock, so two processes starting at once
        // apply the migrations once.
        MIGRATOR.run(&self.pool).await.map_err(from_migrate)?;
        // Secrets a release before encryption stored in clear are sealed on first open.
        TenantStore::reseal_secrets(self, &Reseal::PlaintextOnly).await?;
        Ok(())
    }

    async fn try_lock(&self) -> Result<Option<PgLock>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(from_sqlx)?;
        let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *connection)
            .await;
        match locked {
            Ok(true) => Ok(Some(PgLock {
                connection: Some(connection),
            })),
            Ok(false) => Ok(None),
            Err(error) => {
                // The server may have granted the lock before the answer was lost: never hand
                // this connection to anyone else.
                connection.close_on_drop();
                Err(from_sqlx(error))
            }
        }
    }

    async fn unlock(&self, mut lock: PgLock) -> Result<(), StoreError> {
        let Some(mut connection) = lock.connection.take() else {
            return Ok(());
        };
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *connection)
            .await;
        match unlocked {
            // The session holds no lock any more: back to the pool.
            Ok(true) => Ok(()),
            Ok(false) => {
                // PostgreSQL says this session did not hold the lock (it also logs a
                // warning). Close the connection rather than guess what state it is in.
                let _ = connection.close().await;
                Err(StoreError::database(
                    "the run lock was not held by its connection",
                ))
            }
            Err(error) => {
                connection.close_on_drop();
                Err(from_sqlx(error))
            }
        }
    }

    async fn start_run(&self, started_at: Timestamp, holds_lock: bool) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO odoo_sync_runs (started_at, status, heartbeat_at, holds_lock) \
             VALUES ($1::timestamptz, $2, $1::timestamptz, $3) RETURNING id",
        )
        .bind(time::format(started_at))
        .bind(RunStatus::Running.as_str())
        .bind(holds_lock)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn beat_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE odoo_sync_runs SET heartbeat_at = $2::timestamptz \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(run)
        .bind(time::format(at))
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn interrupt_abandoned_runs(
        &self,
        lock_held: bool,
        stale_before: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar::<_, i64>(
            "UPDATE odoo_sync_runs SET status = 'interrupted', \
               finished_at = COALESCE(heartbeat_at, started_at), \
               error = COALESCE(error, $1) \
             WHERE status = 'running' \
               AND ((holds_lock AND $2) OR COALESCE(heartbeat_at, started_at) < $3::timestamptz) \
             RETURNING id",
        )
        .bind(INTERRUPTED_ERROR)
        .bind(lock_held)
        .bind(time::format(stale_before))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn checkpoint(&self, model: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(SELECT_CHECKPOINT)
            .bind(model)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let second: Option<String> = get(&row, "second")?;
        let last_id: Option<i64> = get(&row, "last_cursor_id")?;
        // A state row without both halves is no checkpoint (the seed's columns are nullable).
        match (second, last_id) {
            (Some(second), Some(last_id)) => Ok(Some(Checkpoint {
                second: time::parse(&second)?,
                last_id,
            })),
            _ => Ok(None),
        }
    }

    async fn reset_checkpoint(&self, model: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM odoo_sync_state WHERE model = $1")
            .bind(model)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn apply_page(
        &self,
        run: i64,
        model: &str,
        rows: &[MirrorRow],
        checkpoint: Checkpoint,
        synced_at: Timestamp,
    ) -> Result<PageCounts, StoreError> {
        let unique = last_of_each_id(rows);
        let repeated = repeated_ids(rows);
        let ids: Vec<i64> = unique.iter().map(|row| row.odoo_id).collect();
        let payloads: Vec<&str> = unique.iter().map(|row| row.payload_json.as_str()).collect();
        let write_dates: Vec<Option<String>> = unique
            .iter()
            .map(|row| row.write_date.map(time::format))
            .collect();
        let hashes: Vec<&str> = unique.iter().map(|row| row.content_hash.as_str()).collect();
        let synced_at = time::format(synced_at);

        // Dropping `transaction` on any early return rolls everything back.
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        // The upsert below writes the last occurrence of each id once; an id repeated within
        // the page is counted in Rust, occurrence by occurrence, against what was stored.
        let stored_repeated: HashMap<i64, (String, bool)> = if repeated.is_empty() {
            HashMap::new()
        } else {
            let found: Vec<(i64, String, bool)> = sqlx::query_as(
                "SELECT odoo_id, content_hash, deleted_at IS NOT NULL FROM odoo_raw_records \
                 WHERE model = $1 AND odoo_id = ANY($2::bigint[])",
            )
            .bind(model)
            .bind(repeated.to_vec())
            .fetch_all(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
            found
                .into_iter()
                .map(|(id, hash, deleted)| (id, (hash, deleted)))
                .collect()
        };
        let written = sqlx::query(UPSERT_PAGE)
            .bind(model)
            .bind(ids)
            .bind(payloads)
            .bind(write_dates)
            .bind(hashes)
            .bind(&synced_at)
            .fetch_one(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        let mut inserted = to_u64(get(&written, "inserted")?, "inserted")?;
        let mut updated = to_u64(get(&written, "updated")?, "updated")?;
        for id in &repeated {
            let stored = stored_repeated
                .get(id)
                .map(|(hash, deleted)| (hash.as_str(), *deleted));
            let mut state = stored;
            let occurrences = rows.iter().filter(|row| row.odoo_id == *id);
            // Take back what the upsert counted for the last occurrence alone…
            if let Some(last) = rows.iter().rev().find(|row| row.odoo_id == *id) {
                match RowEffect::judge(stored, &last.content_hash) {
                    RowEffect::Inserted => inserted = inserted.saturating_sub(1),
                    RowEffect::Updated => updated = updated.saturating_sub(1),
                    RowEffect::Unchanged => {}
                }
            }
            // …and count each occurrence against the one before it.
            for row in occurrences {
                match RowEffect::judge(state, &row.content_hash) {
                    RowEffect::Inserted => inserted += 1,
                    RowEffect::Updated => updated += 1,
                    RowEffect::Unchanged => {}
                }
                state = Some((row.content_hash.as_str(), false));
            }
        }
        let unchanged = (rows.len() as u64).saturating_sub(inserted + updated);

        sqlx::query(SAVE_CHECKPOINT)
            .bind(model)
            .bind(time::format(checkpoint.second))
            .bind(checkpoint.last_id)
            .bind(&synced_at)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;

        let counted = sqlx::query_scalar::<_, i64>(COUNT_PAGE)
            .bind(run)
            .bind(to_i64(rows.len() as u64)?)
            .bind(to_i64(inserted)?)
            .bind(to_i64(updated)?)
            .bind(to_i64(unchanged)?)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        if counted.is_none() {
            return Err(missing_run(run));
        }
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(PageCounts {
            inserted,
            updated,
            unchanged,
        })
    }

    async fn save_checkpoint(&self, model: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        sqlx::query(SAVE_CHECKPOINT)
            .bind(model)
            .bind(time::format(checkpoint.second))
            .bind(checkpoint.last_id)
            .bind(time::format(Timestamp::now()))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn reconcile(
        &self,
        run: i64,
        model: &str,
        odoo_ids: &[i64],
        at: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        // Dropped at commit, and its creation undone on rollback: nothing is left in the
        // session when the connection goes back to the pool.
        sqlx::query(CREATE_PRESENT)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        sqlx::query(FILL_PRESENT)
            .bind(odoo_ids)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        sqlx::query(ANALYZE_PRESENT)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        let restored = sqlx::query(RESTORE)
            .bind(model)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        let deleted = sqlx::query(STAMP_DELETED)
            .bind(model)
            .bind(time::format(at))
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        let counted = sqlx::query_scalar::<_, i64>(COUNT_RECONCILE)
            .bind(run)
            .bind(to_i64(deleted)?)
            .bind(to_i64(restored)?)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        if counted.is_none() {
            return Err(missing_run(run));
        }
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(ReconcileCounts { deleted, restored })
    }

    async fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        error: Option<&str>,
        finished_at: Timestamp,
    ) -> Result<(), StoreError> {
        let finished = sqlx::query_scalar::<_, i64>(
            "UPDATE odoo_sync_runs SET status = $2, error = $3, finished_at = $4::timestamptz \
             WHERE id = $1 RETURNING id",
        )
        .bind(run)
        .bind(status.as_str())
        .bind(error)
        .bind(time::format(finished_at))
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        match finished {
            Some(_) => Ok(()),
            None => Err(missing_run(run)),
        }
    }

    async fn prune_runs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM odoo_sync_runs WHERE started_at < $1::timestamptz")
            .bind(time::format(before))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(result.rows_affected())
    }

    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(SELECT_RUNS)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(run_record).collect()
    }

    async fn record(&self, model: &str, odoo_id: i64) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(SELECT_RECORD)
            .bind(model)
            .bind(odoo_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let Json(payload) = get::<Json<serde_json::Value>>(&row, "payload")?;
        Ok(Some(StoredRecord {
            model: get(&row, "model")?,
            odoo_id: get(&row, "odoo_id")?,
            payload,
            write_date: time::parse_opt(get(&row, "write_date")?)?,
            synced_at: time::parse(&get::<String>(&row, "synced_at")?)?,
            content_hash: get(&row, "content_hash")?,
            deleted_at: time::parse_opt(get(&row, "deleted_at")?)?,
        }))
    }

    async fn count(&self, model: &str) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS total, count(deleted_at) AS deleted \
             FROM odoo_raw_records WHERE model = $1",
        )
        .bind(model)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok((
            to_u64(get(&row, "total")?, "total")?,
            to_u64(get(&row, "deleted")?, "deleted")?,
        ))
    }

    async fn live_ids(&self, model: &str) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT odoo_id FROM odoo_raw_records \
             WHERE model = $1 AND deleted_at IS NULL ORDER BY odoo_id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }
}
