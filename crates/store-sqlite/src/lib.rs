//! odoo-bridge's embedded store: the mirror's three tables (`odoo_raw_records`,
//! `odoo_sync_state`, `odoo_sync_runs`) in one SQLite file, behind
//! [`engine::mirror_store::MirrorStore`].
//!
//! The file is opened in WAL mode so that readers (the terminal UI, `odoo-bridge status`) never
//! wait for the daemon's writes, and every write transaction starts with `BEGIN IMMEDIATE` so
//! that two writers queue on `busy_timeout` instead of failing halfway with `SQLITE_BUSY`.
//!
//! Queries are checked at run time (`sqlx::query*`), not at build time: the build needs no
//! database. The schema lives in `migrations/` and is embedded with `sqlx::migrate!()`.

mod columns;
mod coordination;
mod environment;
mod error;
mod inbox;
mod lock;
mod marketplace;
mod marketplace_outbound;
mod outbox;
mod sync_log;
mod tenants;
mod time;

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::change_feed::Checkpoint;
use engine::mirror_store::{
    INTERRUPTED_ERROR, MirrorRow, MirrorStore, PageCounts, ReconcileCounts, RunRecord, RunStatus,
    StoreError, StoredRecord,
};
use engine::store::{KeySource, Keyring, Reseal, TenantStore};
use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use error::map_sqlx;
pub use lock::SqliteLock;
use time::{format_ts, parse_opt_ts, parse_ts};

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One writer at a time is all SQLite allows; a few more connections let reads go on meanwhile.
const MAX_CONNECTIONS: u32 = 4;

/// Ids per `IN (…)` lookup. Far below SQLite's 32766 bound parameters, and small enough that
/// one statement's text stays cheap to prepare.
const LOOKUP_CHUNK: usize = 500;

/// Rows per multi-row upsert: five bound values each.
///
/// For all three chunk sizes, only statements of a full chunk's shape are kept in sqlx's
/// per-connection statement cache (`persistent`): the last, shorter chunk of each call has a
/// one-off shape that would only push useful statements out.
const UPSERT_CHUNK: usize = 500;

/// Ids per insert into reconciliation's temporary table (one bound value each).
const RECONCILE_CHUNK: usize = 10_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Whether opening a file sets WAL mode. WAL is a lasting property of the file, set when the
/// store creates it; setting it again on a file that is not in WAL mode writes to it, which
/// [`SqliteStore::open_existing`] must not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Journal {
    SetWal,
    AsItIs,
}
/// Upserts a model's checkpoint: `model, last_cursor_value, last_cursor_id, updated_at`.
const SAVE_CHECKPOINT: &str = "INSERT INTO odoo_sync_state \
     (model, last_cursor_value, last_cursor_id, updated_at) VALUES (?, ?, ?, ?) \
     ON CONFLICT (model) DO UPDATE SET last_cursor_value = excluded.last_cursor_value, \
     last_cursor_id = excluded.last_cursor_id, updated_at = excluded.updated_at";

/// The mirror's store in one SQLite file. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    keyring: Keyring,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// Missing parent directories are created with mode 0700 and a new file with mode 0600:
    /// the mirror holds customer data, so other local users must not read it. SQLite gives its
    /// `-wal` and `-shm` files the main file's permissions. The schema is not touched: call
    /// [`MirrorStore::migrate`].
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let unavailable =
            |what: &str, error: std::io::Error| StoreError::unavailable(format!("{what}: {error}"));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| unavailable(&format!("cannot create {}", parent.display()), e))?;
        }
        // Created here rather than by SQLite so that the file never exists with wider
        // permissions, not even for a moment.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| unavailable(&format!("cannot open {}", path.display()), e))?;

        SqliteStore::connect(path, Journal::SetWal).await
    }

    /// Opens the database file at `path` only if it exists: nothing is created, neither the
    /// file nor its directory. For commands that read (`runs`, `config check`, `sync
    /// --dry-run`): a store they cannot find is the user's to locate, not theirs to create.
    pub async fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_file() => SqliteStore::connect(path, Journal::AsItIs).await,
            Ok(_) => Err(StoreError::unavailable(format!(
                "{} is not a file",
                path.display()
            ))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::unavailable(format!(
                    "the SQLite file {} does not exist",
                    path.display()
                )))
            }
            Err(error) => Err(StoreError::unavailable(format!(
                "cannot open {}: {error}",
                path.display()
            ))),
        }
    }

    async fn connect(path: &Path, journal: Journal) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            // In WAL mode NORMAL can lose the last commits on power loss but never corrupts the
            // file; a page and its checkpoint commit together, so a lost page is fetched again.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // Deleted and overwritten content is zeroed, not left in free space: a secret
            // rewritten sealed leaves no copy in clear behind.
            .pragma("secure_delete", "on")
            .foreign_keys(true);
        let options = match journal {
            Journal::SetWal => options.journal_mode(SqliteJournalMode::Wal),
            Journal::AsItIs => options,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .after_release(|connection, _| {
                Box::pin(async move {
                    // A COMMIT that fails with the disk full is rolled back by SQLite itself;
                    // sqlx then fails its own ROLLBACK and keeps counting the transaction as
                    // open, and every later BEGIN on this connection is refused ("non-zero
                    // transaction depth"): the store would never write again once the disk
                    // has room. The ping runs after that queued ROLLBACK; a connection still
                    // counted in a transaction is closed instead of going back to the pool.
                    sqlx::Connection::ping(&mut *connection).await?;
                    let healthy = !sqlx::Connection::is_in_transaction(&*connection);
                    if !healthy {
                        tracing::warn!(
                            "an SQLite connection left in a transaction sqlx cannot end was closed"
                        );
                    }
                    Ok(healthy)
                })
            })
            .connect_with(options)
            .await
            .map_err(map_sqlx)?;
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
            keyring: Keyring::new(KeySource::from_environment(SqliteStore::key_file_beside(
                path,
            ))),
        })
    }

    /// The key file generated beside the database file when `ODOO_BRIDGE_ENCRYPTION_KEY` is
    /// unset: its path with `.key` appended.
    pub fn key_file_beside(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// The same store, sealing its secrets with `keyring` instead of the environment's key.
    pub fn with_keyring(mut self, keyring: Keyring) -> SqliteStore {
        self.keyring = keyring;
        self
    }

    /// After secrets in clear were rewritten sealed: the file is rebuilt (`VACUUM`) so that no
    /// free page keeps an old value, and the WAL is emptied, so that neither file holds them.
    pub(crate) async fn erase_freed_pages(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    /// Whether the file holds odoo-bridge's schema (of any release: its migrations table),
    /// found without creating anything.
    pub async fn has_schema(&self) -> Result<bool, StoreError> {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(found == 1)
    }

    /// Whether the mirror's three tables exist, found without creating anything.
    pub async fn has_mirror_tables(&self) -> Result<bool, StoreError> {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('odoo_raw_records', 'odoo_sync_state', 'odoo_sync_runs')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(found == 3)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file the run lock is taken on: the database path with `.lock` appended. A separate
    /// file because SQLite takes its own locks on the database file.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction, holding SQLite's write lock from its first statement (`BEGIN
    /// IMMEDIATE`): a second writer waits on `busy_timeout` instead of failing halfway.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'_, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)
    }
}

/// Converts a count to SQLite's INTEGER; counts beyond `i64::MAX` cannot occur in practice.
fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Converts a stored counter back; the schema only ever adds non-negative counts.
fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

fn parse_status(text: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(text).ok_or_else(|| {
        StoreError::invalid_data(format!("unknown run status {text:?} in odoo_sync_runs"))
    })
}

/// Adds to run `run`'s counters; a missing run is an error so that the caller's transaction
/// rolls back instead of silently losing the counts.
async fn add_to_run(
    conn: &mut SqliteConnection,
    run: i64,
    page: Option<(u64, PageCounts)>,
    reconciled: ReconcileCounts,
) -> Result<(), StoreError> {
    let (pages, fetched, counts) = match page {
        Some((fetched, counts)) => (1, fetched, counts),
        None => (0, 0, PageCounts::default()),
    };
    let result = sqlx::query(
        "UPDATE odoo_sync_runs SET pages = pages + ?, fetched = fetched + ?, \
         inserted = inserted + ?, updated = updated + ?, unchanged = unchanged + ?, \
         deleted = deleted + ?, restored = restored + ? WHERE id = ?",
    )
    .bind(pages)
    .bind(to_i64(fetched))
    .bind(to_i64(counts.inserted))
    .bind(to_i64(counts.updated))
    .bind(to_i64(counts.unchanged))
    .bind(to_i64(reconciled.deleted))
    .bind(to_i64(reconciled.restored))
    .bind(run)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::database(format!("run {run} does not exist")));
    }
    Ok(())
}

/// `(content_hash, stamped deleted)` of the rows of `model` among `ids`.
async fn existing_rows(
    conn: &mut SqliteConnection,
    model: &str,
    ids: &[i64],
) -> Result<HashMap<i64, (String, bool)>, StoreError> {
    let mut known = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT odoo_id, content_hash, deleted_at IS NOT NULL \
             FROM odoo_raw_records WHERE model = ",
        );
        query.push_bind(model.to_owned());
        query.push(" AND odoo_id IN (");
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        list.push_unseparated(")");
        let found: Vec<(i64, String, bool)> = query
            .build_query_as()
            .persistent(chunk.len() == LOOKUP_CHUNK)
            .fetch_all(&mut *conn)
            .await
            .map_err(map_sqlx)?;
        known.extend(
            found
                .into_iter()
                .map(|(id, hash, deleted)| (id, (hash, deleted))),
        );
    }
    Ok(known)
}

/// Upserts `rows` in multi-row statements. The `WHERE` keeps an unchanged live row untouched
/// even if a caller passes one: its `synced_at` then still tells when it last changed.
async fn upsert_rows(
    conn: &mut SqliteConnection,
    model: &str,
    rows: &[&MirrorRow],
    synced_at: &str,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(UPSERT_CHUNK) {
        let values = chunk.iter().map(|row| {
            (
                row.odoo_id,
                row.payload_json.as_str(),
                row.write_date.map(format_ts),
                row.content_hash.as_str(),
            )
        });
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO odoo_raw_records \
             (model, odoo_id, payload, write_date, synced_at, content_hash, deleted_at) ",
        );
        query.push_values(values, |mut tuple, (id, payload, write_date, hash)| {
            tuple
                .push_bind(model.to_owned())
                .push_bind(id)
                .push_bind(payload)
                .push_bind(write_date)
                .push_bind(synced_at.to_owned())
                .push_bind(hash)
                .push("NULL");
        });
        query.push(
            " ON CONFLICT (model, odoo_id) DO UPDATE SET \
             payload = excluded.payload, write_date = excluded.write_date, \
             synced_at = excluded.synced_at, content_hash = excluded.content_hash, \
             deleted_at = NULL \
             WHERE odoo_raw_records.content_hash <> excluded.content_hash \
             OR odoo_raw_records.deleted_at IS NOT NULL",
        );
        query
            .build()
            .persistent(chunk.len() == UPSERT_CHUNK)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    }
    Ok(())
}

/// Decides what each row of a page does, in page order: a row the mirror lacks is inserted, a
/// row whose hash differs or that is stamped deleted is updated, any other is unchanged. A page
/// holding the same id twice is judged against its own earlier occurrence. Returns the counts
/// and the rows to write.
fn classify(
    rows: &[MirrorRow],
    mut known: HashMap<i64, (String, bool)>,
) -> (PageCounts, Vec<&MirrorRow>) {
    let mut counts = PageCounts::default();
    let mut writes = Vec::new();
    for row in rows {
        let write = match known.get(&row.odoo_id) {
            None => {
                counts.inserted += 1;
                true
            }
            Some((hash, deleted)) if *deleted || *hash != row.content_hash => {
                counts.updated += 1;
                true
            }
            Some(_) => {
                counts.unchanged += 1;
                false
            }
        };
        if write {
            writes.push(row);
            known.insert(row.odoo_id, (row.content_hash.clone(), false));
        }
    }
    (counts, writes)
}

/// `payload, write_date, synced_at, content_hash, deleted_at` of `odoo_raw_records`.
type RecordRow = (String, Option<String>, String, String, Option<String>);

/// The columns of `odoo_sync_runs`, in table order, the heartbeat last.
type RunRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
);

fn run_record(row: RunRow) -> Result<RunRecord, StoreError> {
    let (
        id,
        started_at,
        finished_at,
        status,
        error,
        pages,
        fetched,
        inserted,
        updated,
        unchanged,
        deleted,
        restored,
        heartbeat_at,
    ) = row;
    Ok(RunRecord {
        id,
        started_at: parse_ts(&started_at)?,
        finished_at: parse_opt_ts(finished_at.as_deref())?,
        status: parse_status(&status)?,
        error,
        pages: to_u64(pages),
        fetched: to_u64(fetched),
        inserted: to_u64(inserted),
        updated: to_u64(updated),
        unchanged: to_u64(unchanged),
        deleted: to_u64(deleted),
        restored: to_u64(restored),
        heartbeat_at: parse_opt_ts(heartbeat_at.as_deref())?,
    })
}

impl MirrorStore for SqliteStore {
    type Lock = SqliteLock;

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(error::map_migrate)?;
        // Secrets a release before encryption stored in clear are sealed on first open.
        TenantStore::reseal_secrets(self, &Reseal::PlaintextOnly).await?;
        Ok(())
    }

    async fn try_lock(&self) -> Result<Option<SqliteLock>, StoreError> {
        SqliteLock::try_acquire(&self.lock_path())
    }

    async fn unlock(&self, lock: SqliteLock) -> Result<(), StoreError> {
        lock.release()
    }

    async fn start_run(&self, started_at: Timestamp, holds_lock: bool) -> Result<i64, StoreError> {
        let started_at = format_ts(started_at);
        let result = sqlx::query(
            "INSERT INTO odoo_sync_runs (started_at, status, heartbeat_at, holds_lock) \
             VALUES (?1, 'running', ?1, ?2)",
        )
        .bind(started_at)
        .bind(holds_lock)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(result.last_insert_rowid())
    }

    async fn beat_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE odoo_sync_runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(format_ts(at))
        .bind(run)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn interrupt_abandoned_runs(
        &self,
        lock_held: bool,
        stale_before: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "UPDATE odoo_sync_runs SET status = 'interrupted', \
               finished_at = COALESCE(heartbeat_at, started_at), \
               error = COALESCE(error, ?1) \
             WHERE status = 'running' \
               AND ((holds_lock AND ?2) OR COALESCE(heartbeat_at, started_at) < ?3) \
             RETURNING id",
        )
        .bind(INTERRUPTED_ERROR)
        .bind(lock_held)
        .bind(format_ts(stale_before))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)
    }

    async fn checkpoint(&self, model: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT last_cursor_value, last_cursor_id FROM odoo_sync_state WHERE model = ?",
        )
        .bind(model)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.map(|(second, last_id)| {
            Ok(Checkpoint {
                second: parse_ts(&second)?,
                last_id,
            })
        })
        .transpose()
    }

    async fn reset_checkpoint(&self, model: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM odoo_sync_state WHERE model = ?")
            .bind(model)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
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
        let synced_at = format_ts(synced_at);
        // IMMEDIATE takes the write lock before the lookups, so nothing can change the rows
        // between classifying them and writing them.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;

        let mut ids: Vec<i64> = rows.iter().map(|row| row.odoo_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let known = existing_rows(&mut tx, model, &ids).await?;
        let (counts, writes) = classify(rows, known);
        upsert_rows(&mut tx, model, &writes, &synced_at).await?;

        sqlx::query(SAVE_CHECKPOINT)
            .bind(model)
            .bind(format_ts(checkpoint.second))
            .bind(checkpoint.last_id)
            .bind(&synced_at)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;

        let fetched = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        add_to_run(
            &mut tx,
            run,
            Some((fetched, counts)),
            ReconcileCounts::default(),
        )
        .await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(counts)
    }

    async fn save_checkpoint(&self, model: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        sqlx::query(SAVE_CHECKPOINT)
            .bind(model)
            .bind(format_ts(checkpoint.second))
            .bind(checkpoint.last_id)
            .bind(format_ts(Timestamp::now()))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn reconcile(
        &self,
        run: i64,
        model: &str,
        odoo_ids: &[i64],
        at: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        // A temporary table is private to this connection and goes away with a rollback; the
        // DROP first covers a connection that kept one from an earlier failure.
        sqlx::query("DROP TABLE IF EXISTS temp.mirror_reconcile_ids")
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        sqlx::query("CREATE TEMP TABLE mirror_reconcile_ids (odoo_id INTEGER PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        for chunk in odoo_ids.chunks(RECONCILE_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO mirror_reconcile_ids (odoo_id) ",
            );
            query.push_values(chunk, |mut tuple, id| {
                tuple.push_bind(*id);
            });
            query
                .build()
                .persistent(chunk.len() == RECONCILE_CHUNK)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }

        let deleted = sqlx::query(
            "UPDATE odoo_raw_records SET deleted_at = ? \
             WHERE model = ? AND deleted_at IS NULL \
             AND odoo_id NOT IN (SELECT odoo_id FROM mirror_reconcile_ids)",
        )
        .bind(format_ts(at))
        .bind(model)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        let restored = sqlx::query(
            "UPDATE odoo_raw_records SET deleted_at = NULL \
             WHERE model = ? AND deleted_at IS NOT NULL \
             AND odoo_id IN (SELECT odoo_id FROM mirror_reconcile_ids)",
        )
        .bind(model)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        sqlx::query("DROP TABLE temp.mirror_reconcile_ids")
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;

        let counts = ReconcileCounts { deleted, restored };
        add_to_run(&mut tx, run, None, counts).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(counts)
    }

    async fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        error: Option<&str>,
        finished_at: Timestamp,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE odoo_sync_runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(format_ts(finished_at))
        .bind(run)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::database(format!("run {run} does not exist")));
        }
        Ok(())
    }

    async fn prune_runs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM odoo_sync_runs WHERE started_at < ?")
            .bind(format_ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(result.rows_affected())
    }

    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT id, started_at, finished_at, status, error, pages, fetched, inserted, \
             updated, unchanged, deleted, restored, COALESCE(heartbeat_at, started_at) \
             FROM odoo_sync_runs ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter().map(run_record).collect()
    }

    async fn record(&self, model: &str, odoo_id: i64) -> Result<Option<StoredRecord>, StoreError> {
        let row: Option<RecordRow> = sqlx::query_as(
            "SELECT payload, write_date, synced_at, content_hash, deleted_at \
                 FROM odoo_raw_records WHERE model = ? AND odoo_id = ?",
        )
        .bind(model)
        .bind(odoo_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let Some((payload, write_date, synced_at, content_hash, deleted_at)) = row else {
            return Ok(None);
        };
        let payload = serde_json::from_str(&payload).map_err(|e| {
            StoreError::database(format!(
                "stored payload of {model} {odoo_id} is not JSON: {e}"
            ))
        })?;
        Ok(Some(StoredRecord {
            model: model.to_owned(),
            odoo_id,
            payload,
            write_date: parse_opt_ts(write_date.as_deref())?,
            synced_at: parse_ts(&synced_at)?,
            content_hash,
            deleted_at: parse_opt_ts(deleted_at.as_deref())?,
        }))
    }

    async fn count(&self, model: &str) -> Result<(u64, u64), StoreError> {
        let (total, deleted): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(deleted_at) FROM odoo_raw_records WHERE model = ?",
        )
        .bind(model)
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok((to_u64(total), to_u64(deleted)))
    }

    async fn live_ids(&self, model: &str) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT odoo_id FROM odoo_raw_records WHERE model = ? AND deleted_at IS NULL ORDER BY odoo_id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use engine::store::EnvironmentStore;

    #[tokio::test]
    async fn a_connection_left_in_a_transaction_sqlx_cannot_end_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("poisoned.db"))
            .await
            .unwrap();
        engine::mirror_store::MirrorStore::migrate(&store)
            .await
            .unwrap();
        // As after a COMMIT that failed with the disk full: SQLite has ended the transaction
        // while sqlx still counts it, so sqlx's ROLLBACK on drop fails. Every connection of
        // the pool at once.
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut tx = store.pool.begin().await.unwrap();
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            held.push(tx);
        }
        drop(held);
        // The store writes again (each write is a BEGIN IMMEDIATE on some connection).
        for _ in 0..MAX_CONNECTIONS * 2 {
            assert_eq!(
                store
                    .bind_environment("prod", jiff::Timestamp::now())
                    .await
                    .unwrap(),
                "prod"
            );
        }
    }
}
