//! Carries out the app's [`Command`]s off the UI task, through the store traits (no SQL here
//! either), and answers each with [`Event`]s. Also owns the TUI's own poller: the engine's
//! [`Runtime`] (the one `odoo-bridge run` uses), in the background, with its heartbeat.

use crate::app::{Command, Event, Outcome, TestOrigin};
use crate::data;
use crate::form::{CheckLine, TestSummary};
use engine::clock::Clock;
use engine::connection_form::{self, ConnectionDraft, FieldError, display_url};
use engine::connection_test::{self, TestReport};
use engine::order_delivery::{Connection, ConnectionStore};
use engine::runtime::{Runtime, RuntimeConfig, RuntimeHandle, heartbeat};
use engine::store::{PacketStatus, Resolve, Store, StoreError};
use jiff::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the executor works.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// This process's worker id: the poller's lease owner and heartbeat.
    pub worker_id: String,
    /// Each call of a connection test (Odoo, webhook).
    pub test_timeout: Duration,
    /// How the poller runs (its worker id is this executor's).
    pub runtime: RuntimeConfig,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        let worker_id = heartbeat::worker_id();
        ExecOptions {
            test_timeout: Duration::from_secs(15),
            runtime: RuntimeConfig {
                // Quitting the TUI should not take half a minute.
                shutdown_deadline: Duration::from_secs(10),
                ..RuntimeConfig::new(worker_id.clone(), "tui")
            },
            worker_id,
        }
    }
}

/// Runs commands against `S`. Cheap to clone: clones share the store and the poller.
#[derive(Debug, Clone)]
pub struct Executor<S> {
    store: S,
    options: ExecOptions,
    poller: Arc<Mutex<Option<RuntimeHandle>>>,
}

impl<S> Executor<S>
where
    S: Store,
{
    pub fn new(store: S, options: ExecOptions) -> Executor<S> {
        Executor {
            store,
            options,
            poller: Arc::new(Mutex::new(None)),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `command` in its own task; its events go to `events`.
    pub fn spawn(&self, command: Command, events: mpsc::UnboundedSender<Event>) {
        let this = self.clone();
        tokio::spawn(async move {
            for event in this.run(command).await {
                if events.send(event).is_err() {
                    break;
                }
            }
        });
    }

    /// Runs `command` to its end.
    pub async fn run(&self, command: Command) -> Vec<Event> {
        let now = Timestamp::now();
        let outcome = match command {
            Command::Load(request) => {
                return vec![match data::load(&self.store, &request, now).await {
                    Ok(snapshot) => Event::Data(Box::new(snapshot)),
                    Err(error) => Event::Done(Outcome::LoadFailed {
                        generation: request.generation,
                        error: error.to_string(),
                    }),
                }];
            }
            Command::Save(draft) => self.save(draft, now).await,
            Command::Delete { id, name } => match self.store.delete_connection(&id).await {
                Ok(true) => Outcome::Deleted { name },
                Ok(false) => failed("delete the connection", "it was already removed"),
                Err(error) => failed("delete the connection", error),
            },
            Command::SetActive { id, active } => self.set_active(&id, active, now).await,
            Command::Test { draft, origin } => self.test(draft, origin).await,
            Command::Retry { id } => match self.store.retry_now(&id, now).await {
                Ok(done) => Outcome::Retried { id, done },
                Err(error) => failed("retry the packet", error),
            },
            Command::Discard { id } => match self.store.discard(&id, now).await {
                Ok(done) => Outcome::Discarded { id, done },
                Err(error) => failed("discard the packet", error),
            },
            Command::IgnoreConflict { id } => self.ignore_conflict(id, now).await,
            Command::ReEnable {
                job,
                record_id,
                packet_id,
            } => self.re_enable(job, record_id, packet_id, now).await,
            Command::StartPoller => self.start_poller(),
            Command::StopPoller => {
                self.stop_poller().await;
                Outcome::PollerStopped
            }
            Command::Quit => {
                self.stop_poller().await;
                return Vec::new();
            }
        };
        vec![Event::Done(outcome)]
    }

    /// The `ignore` of `odoo-bridge marketplace resolve`: the store's resolve, which keeps a
    /// resolution someone else wrote first.
    async fn ignore_conflict(&self, id: i64, now: Timestamp) -> Outcome {
        let action = format!("ignore conflict {id}");
        match self.store.resolve_conflict(id, "ignore", now).await {
            Ok(Resolve::Resolved(_)) => Outcome::ConflictIgnored { id },
            Ok(Resolve::AlreadyResolved(conflict)) => failed(
                &action,
                format!(
                    "it was resolved meanwhile ({})",
                    conflict.conflict.resolution.as_deref().unwrap_or("-")
                ),
            ),
            Ok(Resolve::NotFound) => failed(&action, "it was deleted meanwhile"),
            Err(error) => failed(&action, error),
        }
    }

    /// Re-enables a record the enrichment breaker disabled: its FAILED packet is retried now
    /// (PENDING, attempts reset, the same id). A packet no longer FAILED (re-enabled or
    /// replayed meanwhile) is left as it is: `retry_now` would reset a pending one's attempts.
    async fn re_enable(
        &self,
        job: String,
        record_id: i64,
        packet_id: String,
        now: Timestamp,
    ) -> Outcome {
        let action = format!("re-enable record {record_id}");
        let disabled = match self.store.packet(&packet_id).await {
            Ok(packet) => packet.is_some_and(|p| p.status == PacketStatus::Failed),
            Err(error) => return failed(&action, error),
        };
        let done = if disabled {
            match self.store.retry_now(&packet_id, now).await {
                Ok(done) => done,
                Err(error) => return failed(&action, error),
            }
        } else {
            false
        };
        Outcome::ReEnabled {
            job,
            record_id,
            packet_id,
            done,
        }
    }

    /// Whether this process's poller runs.
    pub fn poller_running(&self) -> bool {
        self.poller.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    fn start_poller(&self) -> Outcome {
        let Ok(mut slot) = self.poller.lock() else {
            return failed("start the poller", "internal lock poisoned");
        };
        if slot.is_some() {
            return Outcome::PollerStarted;
        }
        let config = RuntimeConfig {
            worker_id: self.options.worker_id.clone(),
            ..self.options.runtime.clone()
        };
        match Runtime::new(self.store.clone(), config, Clock::system()) {
            Ok(runtime) => {
                *slot = Some(runtime.start());
                Outcome::PollerStarted
            }
            Err(error) => failed("start the poller", error),
        }
    }

    /// Stops the poller, if it runs, and waits for its in-flight cycles (within the
    /// daemon's shutdown deadline).
    pub async fn stop_poller(&self) {
        let poller = self.poller.lock().ok().and_then(|mut slot| slot.take());
        if let Some(poller) = poller {
            poller.shutdown().await;
        }
    }

    async fn save(&self, draft: ConnectionDraft, now: Timestamp) -> Outcome {
        let others = match self.store.connections().await {
            Ok(others) => others,
            Err(error) => return failed("save the connection", error),
        };
        let validated = match draft.validate_with(&others) {
            Ok(validated) => validated,
            Err(errors) => return Outcome::SaveRejected(errors),
        };
        let existing = match &draft.id {
            None => None,
            Some(id) => match others.iter().find(|c| &c.id == id) {
                Some(existing) => Some(existing.clone()),
                None => return failed("save the connection", "it was removed meanwhile"),
            },
        };
        let connection = connection_form::apply(validated, existing.as_ref(), now);
        let written = match &existing {
            None => self
                .store
                .insert_connection(&connection)
                .await
                .map(|()| true),
            Some(_) => self.store.update_connection(&connection).await,
        };
        match written {
            Ok(true) => Outcome::Saved {
                id: connection.id.clone(),
                name: connection.name.clone(),
                new_secret: existing
                    .is_none()
                    .then(|| connection.webhook_secret.expose().to_owned()),
            },
            Ok(false) => failed("save the connection", "it was removed meanwhile"),
            Err(StoreError::Conflict { .. }) => Outcome::SaveRejected(vec![FieldError {
                field: "name",
                message: "is already used by another connection; names must be unique".into(),
            }]),
            Err(error) => failed("save the connection", error),
        }
    }

    async fn set_active(&self, id: &str, active: bool, now: Timestamp) -> Outcome {
        let action = if active {
            "resume the connection"
        } else {
            "pause the connection"
        };
        let mut connection = match self.store.connection(id).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return failed(action, "it was removed meanwhile"),
            Err(error) => return failed(action, error),
        };
        connection.is_active = active;
        connection.updated_at = now;
        match self.store.update_connection(&connection).await {
            Ok(true) => Outcome::ActiveSet {
                name: connection.name,
                active,
            },
            Ok(false) => failed(action, "it was removed meanwhile"),
            Err(error) => failed(action, error),
        }
    }

    async fn test(&self, draft: ConnectionDraft, origin: TestOrigin) -> Outcome {
        let validated = match draft.validate() {
            Ok(validated) => validated,
            Err(errors) => {
                return Outcome::Tested {
                    origin,
                    result: Err(errors),
                };
            }
        };
        let existing = match &draft.id {
            None => None,
            Some(id) => match self.store.connection(id).await {
                Ok(existing) => existing,
                Err(error) => return failed("test the connection", error),
            },
        };
        let connection = connection_form::apply(validated, existing.as_ref(), Timestamp::now());
        match connection_test::test_connection(&connection, self.options.test_timeout).await {
            Ok(report) => Outcome::Tested {
                origin,
                result: Ok(summarize(&connection, &report)),
            },
            Err(error) => failed("test the connection", error),
        }
    }
}

fn failed(action: &str, error: impl std::fmt::Display) -> Outcome {
    Outcome::Failed {
        action: action.to_owned(),
        error: error.to_string(),
    }
}

/// A test report as the form and the dashboard show it, secrets scrubbed.
pub fn summarize(c: &Connection, report: &TestReport) -> TestSummary {
    let odoo = match &report.odoo {
        Ok(check) => CheckLine {
            ok: true,
            text: format!(
                "Odoo {} at {}, database {}, login {} (uid {}), {}",
                check.version, c.odoo_url, c.odoo_db, c.odoo_username, check.uid, check.transport
            ),
        },
        Err(error) => {
            let class = connection_test::odoo_failure_class(error);
            let hint = match class {
                "authentication" => " (check the database, the login and the API key)",
                "unreachable" => " (check the URL and that Odoo is up)",
                _ => "",
            };
            CheckLine {
                ok: false,
                text: format!(
                    "{class}: {}{hint}",
                    connection_test::scrub(c, error.to_string())
                ),
            }
        }
    };
    let webhook = match &report.webhook.outcome {
        Ok(delivered) => CheckLine {
            ok: true,
            text: format!(
                "HTTP {} from {} in {} ms (signed ping)",
                delivered.status,
                display_url(&c.webhook_url),
                report.webhook.elapsed.as_millis()
            ),
        },
        Err(error) => CheckLine {
            ok: false,
            text: format!(
                "{}: {}",
                error.class.as_str(),
                connection_test::scrub(c, error.message.clone())
            ),
        },
    };
    TestSummary {
        name: c.name.clone(),
        odoo,
        webhook,
    }
}
