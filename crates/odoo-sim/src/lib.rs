//! A simulated Odoo server for trying and testing integrations without an Odoo.
//!
//! It speaks JSON-RPC (`/jsonrpc`, every version) and JSON-2 (`/json/2/<model>/<method>`,
//! 19+) over in-memory models with Odoo's semantics: domains, ordering, `active_test`,
//! access errors, many2one as `[id, name]`, `false` for empty values, and timestamps stored
//! with microseconds but read back truncated to seconds, exactly as a real Odoo 18 does.
//! Workflow methods answer with wizards where a real server does. Faults can be injected
//! and every call is counted.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use odoo_sim::{OdooSim, SimConfig};
//! let sim = OdooSim::new(SimConfig::default());
//! let running = sim.clone().serve_on_loopback().await?;
//! println!("Odoo at {} (db {}, login admin)", running.url(), sim.config().database);
//! # Ok(()) }
//! ```

pub mod automation;
pub mod bench_model;
pub mod cartona;
pub mod clock;
mod custom_fields;
pub mod dispatch;
pub mod error;
pub mod faults;
pub mod generator;
pub mod html;
pub mod orm;
pub mod query;
pub mod real_odoo;
pub mod schema;
mod server;
pub mod values;
pub mod version;
mod workflow;

pub use automation::SentWebhook;
pub use cartona::{CartonaConfig, CartonaSim};
pub use clock::Clock;
pub use error::{OdooException, OdooResult};
pub use faults::{Fault, FaultRule};
pub use generator::DataSpec;
pub use orm::{ADMIN_UID, Access, Database, Env};
pub use version::OdooVersion;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;
use tokio::net::TcpListener;

/// How the simulated server presents itself.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub version: OdooVersion,
    pub database: String,
    pub admin_login: String,
    pub admin_password: String,
    /// The administrator's API key (JSON-RPC password and JSON-2 bearer token).
    pub admin_api_key: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            version: OdooVersion::V18,
            database: "odoo".into(),
            admin_login: "admin".into(),
            admin_password: "admin".into(),
            admin_api_key: "sim-admin-api-key-0000000000000000".into(),
        }
    }
}

/// A login able to call the API: its password and API keys.
#[derive(Debug, Clone)]
pub struct Credential {
    pub uid: i64,
    pub login: String,
    pub password: Option<String>,
    pub api_keys: Vec<String>,
    pub active: bool,
}

#[derive(Debug)]
pub struct SimState {
    pub(crate) config: SimConfig,
    pub(crate) clock: Clock,
    pub(crate) faults: faults::Faults,
    database: Mutex<Database>,
    credentials: Mutex<Vec<Credential>>,
    calls: Mutex<HashMap<(String, String), u64>>,
    login_failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Serialises the transactions that write while automation rules exist: each runs on a
    /// copy of the database, sends its webhooks, then commits the copy.
    pub(crate) writer: tokio::sync::Mutex<()>,
    /// `true` while [`OdooSim::hold_commits`] keeps transactions that sent webhooks open.
    pub(crate) commits_held: tokio::sync::watch::Sender<bool>,
    pub(crate) webhooks_sent: Mutex<Vec<SentWebhook>>,
    pub(crate) webhook_client: std::sync::OnceLock<Option<reqwest::Client>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    pub(crate) fn lock_database(&self) -> MutexGuard<'_, Database> {
        lock(&self.database)
    }

    pub(crate) fn lock_credentials(&self) -> MutexGuard<'_, Vec<Credential>> {
        lock(&self.credentials)
    }

    pub(crate) fn lock_login_failures(&self) -> MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        lock(&self.login_failures)
    }

    pub(crate) fn count_call(&self, model: &str, method: &str) {
        *lock(&self.calls)
            .entry((model.to_owned(), method.to_owned()))
            .or_insert(0) += 1;
    }
}

/// A simulated Odoo: cheap to clone, every clone drives the same server.
#[derive(Debug, Clone)]
pub struct OdooSim {
    state: Arc<SimState>,
}

impl OdooSim {
    /// An empty database (countries, the admin user and its partner only) for `config`.
    pub fn new(config: SimConfig) -> OdooSim {
        let clock = Clock::default();
        let mut database = Database::new(config.version);
        if config.admin_login != "admin" {
            let env = Env::new(ADMIN_UID, clock.now_micros());
            let mut vals = serde_json::Map::new();
            vals.insert("login".into(), serde_json::json!(config.admin_login));
            if let Err(error) = database.write(&env, "res.users", &[ADMIN_UID], &vals) {
                tracing::error!(%error, "could not rename the administrator");
            }
        }
        let admin = Credential {
            uid: ADMIN_UID,
            login: config.admin_login.clone(),
            password: Some(config.admin_password.clone()),
            api_keys: vec![config.admin_api_key.clone()],
            active: true,
        };
        OdooSim {
            state: Arc::new(SimState {
                config,
                clock,
                faults: faults::Faults::default(),
                database: Mutex::new(database),
                credentials: Mutex::new(vec![admin]),
                calls: Mutex::new(HashMap::new()),
                login_failures: Mutex::new(HashMap::new()),
                writer: tokio::sync::Mutex::new(()),
                commits_held: tokio::sync::watch::Sender::new(false),
                webhooks_sent: Mutex::new(Vec::new()),
                webhook_client: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Like [`OdooSim::new`], then fills the database with seeded, realistic data.
    pub fn with_data(config: SimConfig, spec: &DataSpec) -> OdooSim {
        let sim = OdooSim::new(config);
        sim.with_database(|database, env| generator::generate(database, env, spec));
        sim
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Runs `f` as one transaction of the administrator at the clock's current time: every
    /// record it writes carries the same `write_date`, as one real Odoo call would.
    pub fn with_database<R>(&self, f: impl FnOnce(&mut Database, &Env) -> R) -> R {
        let env = Env::new(ADMIN_UID, self.state.clock.now_micros());
        let mut database = self.state.lock_database();
        f(&mut database, &env)
    }

    /// Adds an API user; `access: Some(..)` restricts it to those models.
    pub fn add_user(&self, login: &str, api_key: &str, access: Option<Access>) -> OdooResult<i64> {
        let uid = self.with_database(|database, env| -> OdooResult<i64> {
            let mut vals = serde_json::Map::new();
            vals.insert("name".into(), serde_json::json!(login));
            let partner = database.create(env, "res.partner", &[vals])?;
            let mut vals = serde_json::Map::new();
            vals.insert("login".into(), serde_json::json!(login));
            vals.insert("name".into(), serde_json::json!(login));
            vals.insert("partner_id".into(), serde_json::json!(partner.first()));
            let created = database.create(env, "res.users", &[vals])?;
            let uid = created.first().copied().unwrap_or_default();
            if let Some(access) = access {
                database.restrict_user(uid, access);
            }
            Ok(uid)
        })?;
        self.state.lock_credentials().push(Credential {
            uid,
            login: login.to_owned(),
            password: None,
            api_keys: vec![api_key.to_owned()],
            active: true,
        });
        Ok(uid)
    }

    /// Deletes an API key, as a user revoking it in their preferences does.
    pub fn revoke_api_key(&self, api_key: &str) {
        for credential in self.state.lock_credentials().iter_mut() {
            credential.api_keys.retain(|key| key != api_key);
        }
    }

    /// Adds an API key to an existing login (key rotation).
    pub fn add_api_key(&self, login: &str, api_key: &str) {
        for credential in self.state.lock_credentials().iter_mut() {
            if credential.login == login {
                credential.api_keys.push(api_key.to_owned());
            }
        }
    }

    /// From now on, a transaction that sent automation webhooks stays open (its changes
    /// unseen by other calls) until [`OdooSim::release_commits`]: the window in which a real
    /// Odoo's webhook arrives before its commit, held open for tests.
    pub fn hold_commits(&self) {
        self.state.commits_held.send_replace(true);
    }

    /// Lets the transactions held by [`OdooSim::hold_commits`] commit, and later ones at once.
    pub fn release_commits(&self) {
        self.state.commits_held.send_replace(false);
    }

    /// Every automation webhook sent so far, oldest first.
    pub fn sent_webhooks(&self) -> Vec<SentWebhook> {
        lock(&self.state.webhooks_sent).clone()
    }

    /// Removes `base.automation` and its rules, as a database without the "Automation Rules"
    /// app has none.
    pub fn uninstall_base_automation(&self) {
        self.with_database(|database, env| {
            let admin = Env::new(ADMIN_UID, env.now);
            let registered = database
                .search(
                    &admin,
                    "ir.model",
                    &odoo_rpc::domain::field("model").eq(automation::AUTOMATION_MODEL),
                    0,
                    None,
                    None,
                )
                .unwrap_or_default();
            if let Err(error) = database.unlink(&admin, "ir.model", &registered) {
                tracing::error!(%error, "could not unregister base.automation");
            }
            database.remove_model(automation::AUTOMATION_MODEL);
        });
    }

    pub fn inject(&self, rule: FaultRule) {
        self.state.faults.push(rule);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// How many requests reached the server for `(model, method)`; the common service
    /// counts as model `common` (`common`/`authenticate`, `common`/`version`).
    pub fn call_count(&self, model: &str, method: &str) -> u64 {
        lock(&self.state.calls)
            .get(&(model.to_owned(), method.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter, for assertions on whole flows.
    pub fn calls(&self) -> HashMap<(String, String), u64> {
        lock(&self.state.calls).clone()
    }

    pub fn total_calls(&self) -> u64 {
        lock(&self.state.calls).values().sum()
    }

    pub fn reset_calls(&self) {
        lock(&self.state.calls).clear();
    }

    /// Serves on an already bound listener until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app =
            server::router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds `127.0.0.1:0` and serves in the background until the handle is dropped.
    pub async fn serve_on_loopback(self) -> std::io::Result<RunningSim> {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn serve_on(self, address: SocketAddr) -> std::io::Result<RunningSim> {
        let listener = TcpListener::bind(address).await?;
        RunningSim::spawn(listener, move |listener, stopped| {
            self.serve(listener, stopped)
        })
    }
}

/// A server running in the background; dropping it stops the server.
#[derive(Debug)]
pub struct RunningSim {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSim {
    /// Runs `serve` on `listener` in a task until the handle is dropped or shut down.
    pub(crate) fn spawn<F, Fut>(listener: TcpListener, serve: F) -> std::io::Result<RunningSim>
    where
        F: FnOnce(
            TcpListener,
            std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            Box::pin(async move {
                let _ = stopped.await;
            }),
        ));
        Ok(RunningSim {
            address,
            stop: Some(stop),
            task,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
