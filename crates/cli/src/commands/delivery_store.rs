//! Which store the delivery commands use (`connections`, `retries`, `logs`, `run`, `tui`),
//! from the seed's environment:
//!
//! - `DATABASE_URL` set (and not blank): PostgreSQL at that URL. The URL usually carries a
//!   password, so no message ever shows it: only host, port and database are named.
//! - otherwise the embedded SQLite file at `POLLER_DB_PATH` (default
//!   `./data/odoo-bridge.db`).
//!
//! Only the commands that create something create the store ([`Access::Create`]: `connections
//! add`, `run`, `tui`); the others ([`Access::Existing`]) refuse clearly when there is none,
//! and create neither a file nor a directory nor a table. Either way a store written by an
//! earlier release is migrated in place before any task runs.

use crate::exit::{Exit, Failure};
use engine::store::{Store, StoreError};
use jiff::Timestamp;
use std::path::PathBuf;
use store_pg::PgTarget;

/// The seed's variable naming the SQLite file.
pub const DB_PATH_ENV: &str = "POLLER_DB_PATH";
/// Where the SQLite file is when `POLLER_DB_PATH` is not set.
pub const DEFAULT_DB_PATH: &str = "./data/odoo-bridge.db";
/// A PostgreSQL URL; when set, PostgreSQL is used instead of SQLite.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Where the delivery store is.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres {
        target: Box<PgTarget>,
        /// The URL as given, to scrub it (and its password) from any error text.
        url: String,
    },
}

/// Whether a command may create the store when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `connections add`, `run`, `tui`: create the file (0600, its directory 0700) or tables.
    Create,
    /// Everything else: the store must exist.
    Existing,
}

impl StoreLocation {
    /// From `DATABASE_URL` and `POLLER_DB_PATH`.
    pub fn from_env() -> Result<StoreLocation, Failure> {
        StoreLocation::from_values(
            std::env::var(DATABASE_URL_ENV).ok(),
            std::env::var_os(DB_PATH_ENV).map(PathBuf::from),
        )
    }

    fn from_values(
        database_url: Option<String>,
        db_path: Option<PathBuf>,
    ) -> Result<StoreLocation, Failure> {
        if let Some(url) = database_url.filter(|url| !url.trim().is_empty()) {
            let url = url.trim().to_owned();
            let target = PgTarget::from_url(&url).map_err(|_| {
                Failure::new(
                    Exit::Config,
                    anyhow::anyhow!(
                        "{DATABASE_URL_ENV} is not a valid PostgreSQL URL (expected postgres://user:password@host:port/database)"
                    ),
                )
            })?;
            return Ok(StoreLocation::Postgres {
                target: Box::new(target),
                url,
            });
        }
        let path = db_path
            .filter(|path| !path.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH));
        Ok(StoreLocation::Sqlite(path))
    }

    /// Where the store is, for messages (never the URL or its password).
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => format!("SQLite file {}", path.display()),
            StoreLocation::Postgres { target, .. } => {
                format!("PostgreSQL at {} ({DATABASE_URL_ENV})", target.describe())
            }
        }
    }

    /// `text` with the URL and its password replaced by `••••`.
    fn scrub(&self, text: String) -> String {
        match self {
            StoreLocation::Sqlite(_) => text,
            StoreLocation::Postgres { url, .. } => {
                let mut text = text.replace(url.as_str(), "••••");
                for password in passwords_of(url) {
                    text = text.replace(password, "••••");
                }
                text
            }
        }
    }

    /// A store error as a failure (exit 1) naming the store, with no secret in it.
    pub fn failure(&self, error: StoreError) -> Failure {
        // A missing or wrong encryption key is the user's setting to fix, like a bad
        // variable: the message names the variable.
        let exit = match error {
            StoreError::SecretKey { .. } => Exit::Config,
            _ => Exit::Failure,
        };
        let text = self.scrub(error.to_string());
        Failure::new(exit, anyhow::anyhow!("{} ({})", text, self.describe()))
    }

    /// No store here, for a command that does not create one: exit 3, saying what does.
    fn missing(&self) -> Failure {
        let hint = "`odoo-bridge connections add` creates it; POLLER_DB_PATH or DATABASE_URL \
                    names another store";
        Failure::new(
            Exit::Config,
            anyhow::anyhow!("no odoo-bridge store at {}: {hint}", self.describe()),
        )
    }
}

/// The passwords written in a PostgreSQL URL: `scheme://user:password@host…` and a
/// `password=` query parameter.
fn passwords_of(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password);
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("password="))
                .map(|value| value.split('#').next().unwrap_or_default()),
        );
    }
    found.retain(|password| !password.is_empty());
    found
}

/// Work to do with whichever store is configured.
pub trait StoreTask {
    type Output;
    fn run<S: Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> impl Future<Output = Result<Self::Output, Failure>>;
}

/// Opens the configured store (see the module's documentation), brings its tables up to date,
/// runs `task` on it and closes it.
pub async fn with_store<T: StoreTask>(access: Access, task: T) -> Result<T::Output, Failure> {
    let location = StoreLocation::from_env()?;
    with_store_at(&location, access, task).await
}

/// [`with_store`] at a given location.
pub async fn with_store_at<T: StoreTask>(
    location: &StoreLocation,
    access: Access,
    task: T,
) -> Result<T::Output, Failure> {
    match location {
        StoreLocation::Sqlite(path) => {
            let opened = match access {
                Access::Create => store_sqlite::SqliteStore::open(path).await,
                Access::Existing if !path.exists() => return Err(location.missing()),
                Access::Existing => store_sqlite::SqliteStore::open_existing(path).await,
            };
            let store = opened.map_err(|error| location.failure(error))?;
            let output = run_migrated(&store, location, access, task).await;
            store.close().await;
            output
        }
        StoreLocation::Postgres { target, .. } => {
            let store = store_pg::PgStore::connect(target.as_ref().clone())
                .await
                .map_err(|error| location.failure(error))?;
            let output = run_migrated(&store, location, access, task).await;
            store.close().await;
            output
        }
    }
}

async fn run_migrated<S, T>(
    store: &S,
    location: &StoreLocation,
    access: Access,
    task: T,
) -> Result<T::Output, Failure>
where
    S: Store + HasSchema,
    T: StoreTask,
{
    if access == Access::Existing && !store.has_schema().await.map_err(|e| location.failure(e))? {
        return Err(location.missing());
    }
    store
        .migrate()
        .await
        .map_err(|error| location.failure(error))?;
    task.run(store, location).await
}

/// Whether a store holds odoo-bridge's tables (of any release), found without creating any.
pub trait HasSchema {
    fn has_schema(&self) -> impl Future<Output = Result<bool, StoreError>>;
}

impl HasSchema for store_sqlite::SqliteStore {
    async fn has_schema(&self) -> Result<bool, StoreError> {
        store_sqlite::SqliteStore::has_schema(self).await
    }
}

impl HasSchema for store_pg::PgStore {
    async fn has_schema(&self) -> Result<bool, StoreError> {
        store_pg::PgStore::has_schema(self).await
    }
}

// ---------------------------------------------------------------------------------------
// What the delivery commands (`connections`, `retries`, `logs`) share in their output.

pub use engine::display::{start_of_day_utc, time_text};

/// A time as shown in JSON: RFC 3339 in UTC, whole seconds unless the value has more.
pub fn time_json(at: Timestamp) -> serde_json::Value {
    serde_json::Value::String(at.to_string())
}

pub use engine::display::{ago, until};

/// `text` cut to `max` characters, with `…` when cut, on one line.
pub fn cut(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= max {
        return line;
    }
    let mut short: String = line.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if index < last {
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.trim_end().to_owned()
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Asks `question` on the terminal (`[y/N]`), unless `yes` (the `--yes` flag) already
/// answered it. Without a terminal to ask on and without `--yes`, refuses with exit 2
/// naming `action` (e.g. `remove connection "X"`): a script must say `--yes` explicitly.
pub fn confirm(action: &str, question: &str, yes: bool) -> Result<bool, Failure> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "refusing to {action} without confirmation: stdin is not a terminal, so nobody can be asked; add --yes to confirm"
            ),
        ));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| {
            Failure::new(
                Exit::Failure,
                anyhow::anyhow!("cannot read the answer: {error}"),
            )
        })?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_by_default_and_postgres_with_database_url() {
        match StoreLocation::from_values(None, None).unwrap() {
            StoreLocation::Sqlite(path) => assert_eq!(path, PathBuf::from(DEFAULT_DB_PATH)),
            other => panic!("{other:?}"),
        }
        match StoreLocation::from_values(Some(" ".into()), Some("/tmp/x.db".into())).unwrap() {
            StoreLocation::Sqlite(path) => assert_eq!(path, PathBuf::from("/tmp/x.db")),
            other => panic!("{other:?}"),
        }
        let url = "postgres://bridge:S3cr3t-pw@db.internal:6543/poller";
        let location = StoreLocation::from_values(Some(url.into()), None).unwrap();
        assert_eq!(
            location.describe(),
            "PostgreSQL at db.internal:6543/poller (DATABASE_URL)"
        );
        let failure = location.failure(StoreError::unavailable(format!(
            "cannot reach {url}; password S3cr3t-pw"
        )));
        let text = format!("{:#}", failure.error);
        assert!(!text.contains("S3cr3t-pw"), "{text}");
        assert_eq!(failure.exit, Exit::Failure);
    }

    #[test]
    fn a_bad_url_is_a_configuration_error_that_does_not_quote_it() {
        let failure =
            StoreLocation::from_values(Some("postgres://u:S3cr3t-pw@h:notaport/d".into()), None)
                .unwrap_err();
        assert_eq!(failure.exit, Exit::Config);
        assert!(!format!("{:#}", failure.error).contains("S3cr3t-pw"));
    }

    #[test]
    fn passwords_are_found_in_urls() {
        assert_eq!(passwords_of("postgres://u:pw@h:5432/d"), ["pw"]);
        assert_eq!(passwords_of("postgres://u:p@w@h/d"), ["p@w"]);
        assert!(passwords_of("postgres://u@h/d").is_empty());
        assert_eq!(
            passwords_of("postgres://u@h/d?sslmode=disable&password=x1"),
            ["x1"]
        );
    }

    #[test]
    fn output_helpers() {
        let now = Timestamp::from_second(1_795_000_000).unwrap();
        assert_eq!(
            time_text(start_of_day_utc(now)),
            format!("{} 00:00:00Z", &time_text(now)[..10])
        );
        let before = |seconds: i64| Timestamp::from_second(now.as_second() - seconds).unwrap();
        assert_eq!(ago(before(12), now), "12 s ago");
        assert_eq!(ago(before(300), now), "5 min ago");
        assert_eq!(ago(before(7_200), now), "2 h ago");
        assert_eq!(ago(before(-5), now), "just now");
        assert_eq!(until(before(-30), now), "in 30 s");
        assert_eq!(until(before(10), now), "now");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("a\nb", 4), "a b");
        assert_eq!(
            table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]),
            "A    BB\nxxx  y"
        );
    }
}
