//! The real Odoo 18 of the test machine (`shared/odoo18/odoo18.sh`), for tests that run a flow
//! against a real server as well as against the simulator. When the simulator and the real
//! server disagree, the simulator is wrong: these tests are how we find out.
//!
//! `.ci/run` starts the server and exports `ODOO18_URL`, `ODOO18_DB`, `ODOO18_API_KEY`,
//! `ODOO18_LOGIN` (what `odoo18.sh start` prints) and `ODOO18_SH` (the script's path). A test
//! asks [`RealOdoo::from_env`] and returns early, saying so, when the server is not configured:
//!
//! ```no_run
//! # fn demo() -> Result<(), String> {
//! use odoo_sim::real_odoo::RealOdoo;
//! let Some(odoo) = RealOdoo::from_env("confirming an order") else { return Ok(()) };
//! let db = odoo.fresh_db("confirm")?; // a copy of the demo database, dropped with `db`
//! println!("{} {} {}", odoo.url, db.name(), odoo.login);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where `odoo18.sh start` serves, as its environment lines say.
#[derive(Debug, Clone)]
pub struct RealOdoo {
    pub url: String,
    /// The database the server was started with (shared: tests that write use [`RealOdoo::fresh_db`]).
    pub database: String,
    pub login: String,
    pub api_key: String,
    script: Option<PathBuf>,
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl RealOdoo {
    /// The server named by `ODOO18_URL` and its companions, or `None` when `ODOO18_URL` is
    /// unset, after printing that `test` is skipped (so a skipped run is visible in the output).
    pub fn from_env(test: &str) -> Option<RealOdoo> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(url) = var("ODOO18_URL") else {
            eprintln!(
                "skipped against the real Odoo 18: {test} (ODOO18_URL is unset; `.ci/run` starts the server)"
            );
            return None;
        };
        Some(RealOdoo {
            url: url.trim_end_matches('/').to_owned(),
            database: var("ODOO18_DB").unwrap_or_else(|| "odoo18".to_owned()),
            login: var("ODOO18_LOGIN").unwrap_or_else(|| "admin".to_owned()),
            api_key: var("ODOO18_API_KEY").unwrap_or_default(),
            script: var("ODOO18_SH").map(PathBuf::from).or_else(find_script),
        })
    }

    /// A new database copied from the demo template (same data, same API key), named after
    /// `hint`, this process and a counter; dropped when the returned guard is.
    pub fn fresh_db(&self, hint: &str) -> Result<FreshDb, String> {
        let script = self.script.clone().ok_or_else(|| {
            "cannot find odoo18.sh: set ODOO18_SH to shared/odoo18/odoo18.sh".to_owned()
        })?;
        let hint: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let name = format!(
            "t_{hint}_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let output = Command::new("bash")
            .arg(&script)
            .args(["fresh-db", &name])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "odoo18.sh fresh-db {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(FreshDb { name })
    }
}

/// A test's own copy of the demo database; dropped (with `FORCE`, closing Odoo's cursors on
/// it) when this guard is.
#[derive(Debug)]
pub struct FreshDb {
    name: String,
}

impl FreshDb {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let statement = format!("drop database if exists \"{}\" with (force)", self.name);
        let dropped = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc", &statement])
            .output();
        if let Err(error) = dropped {
            eprintln!("cannot drop the test database {}: {error}", self.name);
        }
    }
}

/// `shared/odoo18/odoo18.sh` in the nearest ancestor of the working directory that has it
/// (the repository is checked out beside `shared/`).
fn find_script() -> Option<PathBuf> {
    let start = std::env::current_dir().ok()?;
    start
        .ancestors()
        .map(|dir| dir.join("shared/odoo18/odoo18.sh"))
        .find(|candidate| Path::new(candidate).is_file())
}
