//! Test databases the crates.io way: one template database migrated once per process, and a
//! `CREATE DATABASE … TEMPLATE …` copy per test (a file copy, much faster than migrating),
//! dropped when the test ends.

use engine::change_feed::Checkpoint;
use engine::mirror_store::{MirrorRow, MirrorStore};
use engine::store::{KeySource, Keyring};
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use store_pg::PgStore;
use tokio::sync::OnceCell;

/// Every database these tests create starts with this prefix, followed by the creating
/// process id, so leftovers of dead processes can be recognised and dropped.
const PREFIX: &str = "odoo_bridge_test_";

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The server to test against, as the maintenance database `postgres`.
fn admin_options() -> PgConnectOptions {
    let url = std::env::var("ODOO_BRIDGE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&url).expect("ODOO_BRIDGE_TEST_PG is not a URL");
    assert!(
        matches!(options.get_host(), "127.0.0.1" | "localhost"),
        "tests only run against a PostgreSQL on 127.0.0.1"
    );
    options
}

async fn admin() -> PgConnection {
    PgConnection::connect_with(&admin_options())
        .await
        .expect("PostgreSQL at 127.0.0.1 (start it: pg_ctlcluster <version> main start)")
}

async fn execute(connection: &mut PgConnection, sql: String) {
    connection
        .execute(AssertSqlSafe(sql))
        .await
        .expect("admin statement");
}

/// Drops databases left behind by test processes that no longer run (a test that panicked
/// drops its database too, but a killed process cannot).
async fn drop_stale(connection: &mut PgConnection) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'odoo\\_bridge\\_test\\_%'",
    )
    .fetch_all(&mut *connection)
    .await
    .expect("list test databases");
    for name in names {
        let pid = name[PREFIX.len()..].split('_').next().unwrap_or_default();
        let alive = pid.is_empty() || std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = connection
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// The migrated template, created by the first test that asks.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let mut connection = admin().await;
            drop_stale(&mut connection).await;
            let name = format!("{PREFIX}{}_template", std::process::id());
            execute(
                &mut connection,
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            )
            .await;
            execute(&mut connection, format!("CREATE DATABASE \"{name}\"")).await;
            connection.close().await.expect("close admin connection");

            // Migrate through a pool of this test's runtime, then close it: a template must
            // have no connections while it is copied, and the pool must not outlive the
            // runtime it was made in.
            let store = PgStore::connect(admin_options().database(&name))
                .await
                .expect("connect to the template");
            store.migrate().await.expect("migrate the template");
            store.close().await;
            name
        })
        .await
}

/// A fresh, migrated database for one test, dropped when this value is.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    pub store: PgStore,
    /// The test's own key file (in the system's temporary directory), so that no test writes
    /// the default `./data/odoo-bridge.key` and a rotation in one test touches no other.
    key_file: std::path::PathBuf,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let template = template().await;
        let name = format!(
            "{PREFIX}{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = admin().await;
        execute(
            &mut connection,
            format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
        )
        .await;
        connection.close().await.expect("close admin connection");
        let key_file = std::env::temp_dir().join(format!("{name}.key"));
        let store = PgStore::connect(self_options(&name))
            .await
            .expect("connect to the test database")
            .with_keyring(keyring_at(&key_file));
        TestDb {
            name,
            store,
            key_file,
        }
    }

    /// What seals this database's secrets, for another store on it.
    pub fn keyring(&self) -> Keyring {
        keyring_at(&self.key_file)
    }

    /// Options for another connection (another pool, another "process") to this database.
    pub fn options(&self) -> PgConnectOptions {
        self_options(&self.name)
    }
}

fn keyring_at(key_file: &std::path::Path) -> Keyring {
    Keyring::new(KeySource::file(key_file.to_path_buf()))
}

fn self_options(name: &str) -> PgConnectOptions {
    admin_options().database(name)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await and the test's runtime may be shutting down: drop the database
        // from a thread with a runtime of its own. `WITH (FORCE)` ends the store's pooled
        // connections. Best effort: a leftover is dropped by the next run (`drop_stale`).
        let _ = std::fs::remove_file(&self.key_file);
        let mut pending = self.key_file.clone().into_os_string();
        pending.push(".new");
        let _ = std::fs::remove_file(pending);
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect_with(&admin_options()).await.ok()?;
                connection
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .await
                    .ok()?;
                connection.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop a test database; the next run will");
        }
    }
}

/// A timestamp from whole seconds and microseconds.
pub fn at(second: i64, microsecond: i32) -> Timestamp {
    Timestamp::new(second, microsecond * 1_000).unwrap()
}

/// A row whose hash is given by the test (the store only compares hashes).
pub fn row(odoo_id: i64, payload: serde_json::Value, hash: &str) -> MirrorRow {
    MirrorRow::new(
        odoo_id,
        payload,
        Some(at(1_750_000_000 + odoo_id, 0)),
        hash.to_owned(),
    )
}

pub fn checkpoint(second: i64, last_id: i64) -> Checkpoint {
    Checkpoint {
        second: at(second, 0),
        last_id,
    }
}

/// A fresh migrated database for a contract test, dropped with the guard.
pub async fn fresh() -> (TestDb, PgStore) {
    let db = TestDb::new().await;
    let store = db.store.clone();
    (db, store)
}

/// A second store (another pool) on the same database, as another process would open it.
pub async fn again(db: &TestDb) -> PgStore {
    PgStore::connect(db.options())
        .await
        .unwrap()
        .with_keyring(db.keyring())
}
