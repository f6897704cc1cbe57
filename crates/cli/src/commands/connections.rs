//! `odoo-bridge connections …`: the connections of order delivery (one per Odoo tenant), kept
//! in the delivery store (see [`super::delivery_store`]).
//!
//! Secrets: the Odoo API key is never a flag value (flags show up in shell history and in
//! `ps`): it comes from an environment variable (`ODOO_API_KEY` unless `--api-key-env` names
//! another) or, on a terminal, from a hidden prompt. It is shown masked (`••••1234`) and never
//! printed whole. The webhook secret is printed once by `add` (and by `edit
//! --rotate-webhook-secret`), so the operator can give it to the receiver, and afterwards
//! only by `show --reveal-secret`.

use super::delivery_store::{
    Access, StoreLocation, StoreTask, ago, confirm, start_of_day_utc, table, time_json, time_text,
    with_store,
};
use super::form_input::{
    FormMessages, SecretInput, only_by_name, status_text, status_word, validate_with_secrets,
};
use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, Subcommand};
use engine::change_feed::Checkpoint;
use engine::connection_form::{
    self, ConnectionDraft, ValidatedConnection, display_url, masked_key, masked_secret,
};
use engine::connection_test::{self, scrub};
use engine::display::{Problem, Severity, breaker_text, problems};
use engine::order_delivery::{Connection, ConnectionStats, ConnectionStore};
use engine::store::{BreakerRecord, CycleLog, PacketFilter, StoreError};
use engine::webhook::FailureClass;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

/// The variable the API key is read from unless `--api-key-env` names another.
pub const DEFAULT_API_KEY_ENV: &str = "ODOO_API_KEY";

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Add a connection: one Odoo tenant polled for confirmed orders, delivered to a webhook.
    /// Prints its id and its webhook secret (once).
    Add(AddArgs),
    /// List the connections: state, last sync, today's deliveries, queue.
    List(ListArgs),
    /// Show every field of one connection (the API key and webhook secret masked).
    Show(ShowArgs),
    /// Change a connection. Its cursor and its queue are kept.
    Edit(EditArgs),
    /// Delete a connection with its queued packets and its sync log.
    Remove(RemoveArgs),
    /// Stop polling a connection (its queue and cursor are kept).
    Pause(TargetArgs),
    /// Poll a paused connection again.
    Resume(TargetArgs),
    /// Log in to Odoo and POST a signed `ping` event to the webhook; reports both.
    Test(TestArgs),
    /// Create (or update) in the connection's Odoo the automation rule that posts a "poll
    /// now" hint to this daemon when an order is confirmed, changed or cancelled.
    InstallHint(super::hints::InstallHintArgs),
    /// Delete the connection's push-hint rule from Odoo and refuse its hint URL.
    UninstallHint(super::hints::UninstallHintArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A unique name, e.g. "Le Juste Odoo".
    #[arg(long)]
    name: String,
    /// Odoo's base URL, e.g. https://mycompany.odoo.com (not a page such as /web or /odoo).
    #[arg(long, value_name = "URL")]
    odoo_url: String,
    /// Odoo's database name.
    #[arg(long, value_name = "DB")]
    odoo_db: String,
    /// Login of the Odoo API user.
    #[arg(long, value_name = "LOGIN")]
    odoo_username: String,
    /// The environment variable holding the Odoo API key (never given as a flag). Unset on a
    /// terminal: the key is asked for, hidden.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_KEY_ENV)]
    api_key_env: String,
    /// Where orders are POSTed [default: $POLLER_DEFAULT_WEBHOOK_URL, else StockMaster's
    /// endpoint].
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The secret shared with the receiver [default: a new random UUID4].
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
    /// The store's id in StockMaster.
    #[arg(long)]
    store_id: String,
    /// The client's id in StockMaster.
    #[arg(long)]
    client_id: String,
    /// Seconds between two polls (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    interval: String,
    /// Least milliseconds between two Odoo calls of this connection (0: no pacing).
    #[arg(long, value_name = "MS", default_value = "0")]
    min_delay_ms: String,
    /// Events to send, comma-separated.
    #[arg(long, default_value = "order.confirmed,order.updated,order.cancelled")]
    events: String,
    /// Add it paused (not polled until `connections resume`).
    #[arg(long)]
    paused: bool,
    /// Print one JSON object (id, name, webhook_secret) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Show the webhook secret (and the push hint's URL) instead of masking it.
    #[arg(long)]
    reveal_secret: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// Odoo's base URL.
    #[arg(long, value_name = "URL")]
    odoo_url: Option<String>,
    /// Odoo's database name.
    #[arg(long, value_name = "DB")]
    odoo_db: Option<String>,
    /// Login of the Odoo API user.
    #[arg(long, value_name = "LOGIN")]
    odoo_username: Option<String>,
    /// Replace the API key with the one in the --api-key-env variable (or asked for, hidden,
    /// on a terminal). The cursor and the queue are kept.
    #[arg(long)]
    rotate_api_key: bool,
    /// The environment variable holding the new API key, with --rotate-api-key.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_KEY_ENV, requires = "rotate_api_key")]
    api_key_env: String,
    /// Where orders are POSTed.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// A new secret shared with the receiver.
    #[arg(long, value_name = "SECRET", conflicts_with = "rotate_webhook_secret")]
    webhook_secret: Option<String>,
    /// Generate a new random webhook secret, printed once.
    #[arg(long)]
    rotate_webhook_secret: bool,
    /// The store's id in StockMaster.
    #[arg(long)]
    store_id: Option<String>,
    /// The client's id in StockMaster.
    #[arg(long)]
    client_id: Option<String>,
    /// Seconds between two polls (1 to 86400).
    #[arg(long, value_name = "SECONDS")]
    interval: Option<String>,
    /// Least milliseconds between two Odoo calls of this connection (0: no pacing).
    #[arg(long, value_name = "MS")]
    min_delay_ms: Option<String>,
    /// Events to send, comma-separated.
    #[arg(long)]
    events: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The connection's id or name.
    #[arg(value_name = "ID|NAME")]
    connection: String,
    /// Seconds to wait for each call, to Odoo and to the webhook.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: ConnectionsCommand) -> Result<Exit, Failure> {
    // Only `add` may create the store; the other commands need one.
    let access = match command {
        ConnectionsCommand::Add(_) => Access::Create,
        _ => Access::Existing,
    };
    with_store(access, Task(command)).await
}

struct Task(ConnectionsCommand);

impl StoreTask for Task {
    type Output = Exit;

    async fn run<S: engine::store::Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> Result<Exit, Failure> {
        let store = Store { store, location };
        match self.0 {
            ConnectionsCommand::Add(args) => add(&store, args).await,
            ConnectionsCommand::List(args) => list(&store, args).await,
            ConnectionsCommand::Show(args) => show(&store, args).await,
            ConnectionsCommand::Edit(args) => edit(&store, args).await,
            ConnectionsCommand::Remove(args) => remove(&store, args).await,
            ConnectionsCommand::Pause(args) => set_active(&store, &args.connection, false).await,
            ConnectionsCommand::Resume(args) => set_active(&store, &args.connection, true).await,
            ConnectionsCommand::Test(args) => test(&store, args).await,
            ConnectionsCommand::InstallHint(args) => super::hints::install_hint(&store, args).await,
            ConnectionsCommand::UninstallHint(args) => {
                super::hints::uninstall_hint(&store, args).await
            }
        }
    }
}

/// A store with its location, so that every error names the store without its secrets.
pub(crate) struct Store<'a, S> {
    pub store: &'a S,
    pub location: &'a StoreLocation,
}

impl<S: engine::store::Store> Store<'_, S> {
    pub fn failed(&self, error: StoreError) -> Failure {
        self.location.failure(error)
    }

    /// The connection with this id or name (exact first, then ignoring case when only one
    /// matches); exit 9 when there is none.
    pub async fn find(&self, id_or_name: &str) -> Result<Connection, Failure> {
        let wanted = id_or_name.trim();
        if let Some(connection) = self
            .store
            .connection(wanted)
            .await
            .map_err(|e| self.failed(e))?
        {
            return Ok(connection);
        }
        let all = self.store.connections().await.map_err(|e| self.failed(e))?;
        only_by_name(all, wanted, |c| c.name.as_str()).ok_or_else(|| {
            Failure::new(
                Exit::NotFound,
                anyhow::anyhow!(
                    "no connection has the id or name {wanted:?} (see `odoo-bridge connections list`)"
                ),
            )
        })
    }

    /// Id → name of every connection.
    pub async fn names(&self) -> Result<std::collections::HashMap<String, String>, Failure> {
        Ok(self
            .store
            .connections()
            .await
            .map_err(|e| self.failed(e))?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect())
    }

    /// The webhook breaker the daemon last recorded per connection id ("closed" when none).
    async fn breakers(&self) -> Result<std::collections::HashMap<String, BreakerRecord>, Failure> {
        Ok(self
            .store
            .breaker_states()
            .await
            .map_err(|e| self.failed(e))?
            .into_iter()
            .filter(|record| record.target == engine::order_delivery::connection::WEBHOOK_TARGET)
            .map(|record| (record.flow_id.clone(), record))
            .collect())
    }

    async fn stats_today(&self, now: Timestamp) -> Result<Vec<ConnectionStats>, Failure> {
        self.store
            .flow_stats(start_of_day_utc(now))
            .await
            .map_err(|e| self.failed(e))
    }

    /// The connection's newest cycle, if it ran.
    async fn newest_cycle(&self, id: &str) -> Result<Option<CycleLog>, Failure> {
        Ok(self
            .store
            .cycles(Some(id), 1)
            .await
            .map_err(|e| self.failed(e))?
            .into_iter()
            .next()
            .map(|entry| entry.log))
    }
}

// ---------------------------------------------------------------------------------------
// add / edit

/// The flag each field of the form comes from, for messages.
fn flag_of(field: &str, api_key_env: &str) -> String {
    match field {
        "polling_interval_seconds" => "--interval".to_owned(),
        "odoo_min_delay_ms" => "--min-delay-ms".to_owned(),
        "odoo_api_key" => format!("API key (${api_key_env})"),
        field => format!("--{}", field.replace('_', "-")),
    }
}

/// The API key: from the `api_key_env` variable or a hidden prompt.
fn api_key_input(api_key_env: &str, login: &str, url: &str) -> SecretInput {
    SecretInput {
        field: "odoo_api_key",
        env_var: api_key_env.to_owned(),
        what: "API key",
        noun: "key",
        prompt: format!(
            "Odoo API key for {} at {} (hidden): ",
            login.trim(),
            url.trim()
        ),
    }
}

/// Validates `draft` against the other connections. With `key_wanted`, the draft gets the
/// API key from the `api_key_env` variable or, when it is unset and stdin is a terminal,
/// from a hidden prompt, asked only once every other field is valid.
async fn validate<S: engine::store::Store>(
    store: &Store<'_, S>,
    mut draft: ConnectionDraft,
    key_wanted: bool,
    api_key_env: &str,
) -> Result<ValidatedConnection, Failure> {
    let others = store
        .store
        .connections()
        .await
        .map_err(|e| store.failed(e))?;
    let flag_of = |field: &str| flag_of(field, api_key_env);
    let secrets = if key_wanted {
        vec![api_key_input(
            api_key_env,
            &draft.odoo_username,
            &draft.odoo_url,
        )]
    } else {
        Vec::new()
    };
    let messages = FormMessages {
        subject: "connection",
        flag_of: &flag_of,
        secrets: &secrets,
    };
    if !key_wanted {
        // Editing without a new key: a stored key is kept, so none is missing.
        return draft
            .validate_with(&others)
            .map_err(|errors| messages.invalid(&errors));
    }
    validate_with_secrets(
        &mut draft,
        &messages,
        |draft, _, key| draft.odoo_api_key = key,
        |draft| draft.validate_with(&others),
        field_order,
    )
}

/// A field's place in the form, to list errors in order.
fn field_order(field: &str) -> usize {
    const ORDER: [&str; 12] = [
        "name",
        "odoo_url",
        "odoo_db",
        "odoo_username",
        "odoo_api_key",
        "webhook_url",
        "webhook_secret",
        "store_id",
        "client_id",
        "polling_interval_seconds",
        "odoo_min_delay_ms",
        "events",
    ];
    ORDER
        .iter()
        .position(|name| *name == field)
        .unwrap_or(ORDER.len())
}

/// A taken name (a race with another process, past validation) is a bad value, exit 2.
fn conflict(error: StoreError, name: &str, store: &StoreLocation) -> Failure {
    match error {
        StoreError::Conflict { .. } => Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "a connection named {name:?} already exists; names must be unique (see `odoo-bridge connections list`)"
            ),
        ),
        error => store.failure(error),
    }
}

async fn add<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: AddArgs,
) -> Result<Exit, Failure> {
    let mut draft = ConnectionDraft::with_defaults();
    draft.name = args.name;
    draft.odoo_url = args.odoo_url;
    draft.odoo_db = args.odoo_db;
    draft.odoo_username = args.odoo_username;
    if let Some(url) = args.webhook_url {
        draft.webhook_url = url;
    }
    if let Some(secret) = args.webhook_secret {
        draft.webhook_secret = secret;
    }
    draft.store_id = args.store_id;
    draft.client_id = args.client_id;
    draft.polling_interval_seconds = args.interval;
    draft.odoo_min_delay_ms = args.min_delay_ms;
    draft.events = args.events;
    draft.is_active = !args.paused;

    let validated = validate(store, draft, true, &args.api_key_env).await?;
    let connection = connection_form::apply(validated, None, Timestamp::now());
    store
        .store
        .insert_connection(&connection)
        .await
        .map_err(|error| conflict(error, &connection.name, store.location))?;
    tracing::info!(connection_id = %connection.id, name = %connection.name, "connection added");

    if args.json {
        say!(
            "{}",
            json!({
                "id": connection.id,
                "name": connection.name,
                "is_active": connection.is_active,
                "webhook_url": connection.webhook_url,
                "webhook_secret": connection.webhook_secret.expose(),
            })
        );
        return Ok(Exit::Success);
    }
    say!(
        "Added connection {:?} (id {}), {}.",
        connection.name,
        connection.id,
        if connection.is_active {
            "active: `odoo-bridge run` polls it"
        } else {
            "paused: `odoo-bridge connections resume` starts it"
        }
    );
    say!(
        "  Odoo:    {} (database {}, login {}, API key {})",
        connection.odoo_url,
        connection.odoo_db,
        connection.odoo_username,
        masked_key(&connection.odoo_api_key)
    );
    say!("  Webhook: {}", display_url(&connection.webhook_url));
    say!();
    say!(
        "Webhook secret (shown this once; give it to the receiver): {}",
        connection.webhook_secret.expose()
    );
    say!(
        "  It is sent as X-Webhook-Secret and signs every delivery (Standard Webhooks \
         webhook-signature; as a whsec_ key: {}).",
        connection.webhook_secret.expose_whsec()
    );
    say!(
        "  Later: `odoo-bridge connections show {} --reveal-secret`.",
        connection.id
    );
    Ok(Exit::Success)
}

async fn edit<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: EditArgs,
) -> Result<Exit, Failure> {
    let existing = store.find(&args.connection).await?;
    let mut draft = ConnectionDraft::from_connection(&existing);
    let mut given = false;
    let mut set = |field: &mut String, value: Option<String>| {
        if let Some(value) = value {
            *field = value;
            given = true;
        }
    };
    set(&mut draft.name, args.name);
    set(&mut draft.odoo_url, args.odoo_url);
    set(&mut draft.odoo_db, args.odoo_db);
    set(&mut draft.odoo_username, args.odoo_username);
    set(&mut draft.webhook_url, args.webhook_url);
    set(&mut draft.webhook_secret, args.webhook_secret);
    set(&mut draft.store_id, args.store_id);
    set(&mut draft.client_id, args.client_id);
    set(&mut draft.polling_interval_seconds, args.interval);
    set(&mut draft.odoo_min_delay_ms, args.min_delay_ms);
    set(&mut draft.events, args.events);
    if args.rotate_webhook_secret {
        draft.webhook_secret = connection_form::new_webhook_secret();
    }
    if !given && !args.rotate_api_key && !args.rotate_webhook_secret {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "nothing to change: give the flags to change (see `odoo-bridge connections edit --help`)"
            ),
        ));
    }

    let validated = validate(store, draft, args.rotate_api_key, &args.api_key_env).await?;
    let updated = connection_form::apply(validated, Some(&existing), Timestamp::now());
    let changed = changes(&existing, &updated);
    if changed.is_empty() {
        say!(
            "Nothing changed: connection {:?} (id {}) already has these values.",
            existing.name,
            existing.id
        );
        return Ok(Exit::Success);
    }
    let found = store
        .store
        .update_connection(&updated)
        .await
        .map_err(|error| conflict(error, &updated.name, store.location))?;
    if !found {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "connection {} was removed meanwhile; nothing was changed",
                existing.id
            ),
        ));
    }
    tracing::info!(connection_id = %updated.id, changed = %changed.join(","), "connection edited");
    say!(
        "Updated connection {:?} (id {}): {}.",
        updated.name,
        updated.id,
        changed.join(", ")
    );
    say!("  Its cursor and its queue are kept; a running `odoo-bridge run` picks the change up.");
    if args.rotate_webhook_secret {
        say!(
            "New webhook secret (shown this once; give it to the receiver): {}",
            updated.webhook_secret.expose()
        );
    }
    Ok(Exit::Success)
}

/// The names of the editable fields that differ (secrets named, never shown).
fn changes(before: &Connection, after: &Connection) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut note = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    note("name", before.name != after.name);
    note("odoo_url", before.odoo_url != after.odoo_url);
    note("odoo_db", before.odoo_db != after.odoo_db);
    note("odoo_username", before.odoo_username != after.odoo_username);
    note(
        "odoo_api_key",
        before.odoo_api_key.expose() != after.odoo_api_key.expose(),
    );
    note("webhook_url", before.webhook_url != after.webhook_url);
    note(
        "webhook_secret",
        before.webhook_secret.expose() != after.webhook_secret.expose(),
    );
    note("store_id", before.store_id != after.store_id);
    note("client_id", before.client_id != after.client_id);
    note(
        "polling_interval_seconds",
        before.polling_interval_seconds != after.polling_interval_seconds,
    );
    note(
        "odoo_min_delay_ms",
        before.odoo_min_delay_ms != after.odoo_min_delay_ms,
    );
    note("events", before.events != after.events);
    note("is_active", before.is_active != after.is_active);
    changed
}

// ---------------------------------------------------------------------------------------
// list / show

fn stats_of<'a>(stats: &'a [ConnectionStats], id: &str) -> Option<&'a ConnectionStats> {
    stats.iter().find(|s| s.flow_id == id)
}

/// What is wrong with a connection, as the TUI says it too ([`problems`]).
fn health(
    breaker: Option<&BreakerRecord>,
    stats: Option<&ConnectionStats>,
    newest: Option<&CycleLog>,
    now: Timestamp,
) -> Vec<Problem> {
    let stats = stats.cloned().unwrap_or_default();
    problems(breaker, &stats, newest, now)
}

fn problems_json(found: &[Problem]) -> Value {
    Value::Array(
        found
            .iter()
            .map(|problem| {
                json!({
                    "severity": match problem.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    },
                    "text": problem.text,
                })
            })
            .collect(),
    )
}

/// `ok`, or the worst problem and how many more.
fn health_text(found: &[Problem]) -> String {
    match found {
        [] => "ok".to_owned(),
        [only] => only.text.clone(),
        [worst, rest @ ..] => format!("{} (+{} more)", worst.text, rest.len()),
    }
}

fn cursor_json(cursor: Option<Checkpoint>) -> Value {
    match cursor {
        None => Value::Null,
        Some(cursor) => json!({
            "second": cursor.second.to_string(),
            "last_id": if cursor.is_second_done() { Value::Null } else { json!(cursor.last_id) },
            "second_done": cursor.is_second_done(),
        }),
    }
}

fn cursor_text(cursor: Option<Checkpoint>) -> String {
    match cursor {
        None => "none yet: the first poll reads every confirmed order".to_owned(),
        Some(cursor) if cursor.is_second_done() => {
            format!("after every order written at {}", time_text(cursor.second))
        }
        Some(cursor) => format!(
            "orders written at {}, after id {}",
            time_text(cursor.second),
            cursor.last_id
        ),
    }
}

async fn list<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ListArgs,
) -> Result<Exit, Failure> {
    let now = Timestamp::now();
    let connections = store
        .store
        .connections()
        .await
        .map_err(|e| store.failed(e))?;
    let stats = store.stats_today(now).await?;
    let breakers = store.breakers().await?;
    let mut healths = Vec::with_capacity(connections.len());
    for c in &connections {
        let newest = store.newest_cycle(&c.id).await?;
        healths.push(health(
            breakers.get(&c.id),
            stats_of(&stats, &c.id),
            newest.as_ref(),
            now,
        ));
    }
    if args.json {
        let rows: Vec<Value> = connections
            .iter()
            .zip(&healths)
            .map(|(c, found)| {
                let s = stats_of(&stats, &c.id);
                json!({
                    "id": c.id,
                    "name": c.name,
                    "is_active": c.is_active,
                    "status": status_word(c.is_active),
                    "polling_interval_seconds": c.polling_interval_seconds,
                    "last_sync_at": c.last_sync_at.map(time_json),
                    "delivered_today": s.map_or(0, |s| s.delivered_since),
                    "pending": s.map_or(0, |s| s.pending),
                    "failed": s.map_or(0, |s| s.failed),
                    "webhook_url": display_url(&c.webhook_url),
                    "breaker": breaker_json(breakers.get(&c.id)),
                    "problems": problems_json(found),
                })
            })
            .collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if connections.is_empty() {
        say!(
            "No connections yet in the {}. Add one with `odoo-bridge connections add --help`.",
            store.location.describe()
        );
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = connections
        .iter()
        .zip(&healths)
        .map(|(c, found)| {
            let s = stats_of(&stats, &c.id);
            vec![
                c.name.clone(),
                c.id.clone(),
                status_text(c.is_active).to_owned(),
                format!("{} s", c.polling_interval_seconds),
                c.last_sync_at
                    .map_or_else(|| "never".to_owned(), |at| ago(at, now)),
                s.map_or(0, |s| s.delivered_since).to_string(),
                s.map_or(0, |s| s.pending).to_string(),
                s.map_or(0, |s| s.failed).to_string(),
                breaker_text(breakers.get(&c.id), now),
                display_url(&c.webhook_url),
                health_text(found),
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "NAME",
                "ID",
                "STATUS",
                "INTERVAL",
                "LAST SYNC",
                "TODAY",
                "PENDING",
                "FAILED",
                "BREAKER",
                "WEBHOOK",
                "HEALTH"
            ],
            &rows
        )
    );
    Ok(Exit::Success)
}

async fn show<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ShowArgs,
) -> Result<Exit, Failure> {
    let now = Timestamp::now();
    let c = store.find(&args.connection).await?;
    let stats = store.stats_today(now).await?;
    let s = stats_of(&stats, &c.id).cloned().unwrap_or_default();
    let breakers = store.breakers().await?;
    let breaker = breakers.get(&c.id);
    let newest = store.newest_cycle(&c.id).await?;
    let found = health(breaker, Some(&s), newest.as_ref(), now);
    let hint = super::hints::hint_status(store, &c, args.reveal_secret).await?;
    let secret = if args.reveal_secret {
        c.webhook_secret.expose().to_owned()
    } else {
        masked_secret(&c.webhook_secret)
    };
    if args.json {
        let mut object = json!({
            "id": c.id,
            "name": c.name,
            "is_active": c.is_active,
            "status": status_word(c.is_active),
            "odoo_url": c.odoo_url,
            "odoo_db": c.odoo_db,
            "odoo_username": c.odoo_username,
            "odoo_api_key": masked_key(&c.odoo_api_key),
            "webhook_url": display_url(&c.webhook_url),
            "webhook_secret": secret,
            "store_id": c.store_id,
            "client_id": c.client_id,
            "polling_interval_seconds": c.polling_interval_seconds,
            "odoo_min_delay_ms": c.odoo_min_delay_ms,
            "events": c.events.to_list().split(',').collect::<Vec<_>>(),
            "last_sync_at": c.last_sync_at.map(time_json),
            "cursor": cursor_json(c.cursor),
            "delivered_today": s.delivered_since,
            "pending": s.pending,
            "failed": s.failed,
            "breaker": breaker_json(breaker),
            "problems": problems_json(&found),
            "hint": hint.json,
            "created_at": time_json(c.created_at),
            "updated_at": time_json(c.updated_at),
        });
        if args.reveal_secret {
            object["webhook_url"] = json!(c.webhook_url);
            object["webhook_secret_whsec"] = json!(c.webhook_secret.expose_whsec());
        }
        say!("{object}");
        return Ok(Exit::Success);
    }
    let webhook_url = if args.reveal_secret {
        c.webhook_url.clone()
    } else {
        display_url(&c.webhook_url)
    };
    say!("Connection {:?} (id {})", c.name, c.id);
    let rows: Vec<(&str, String)> = vec![
        ("status", status_text(c.is_active).to_owned()),
        ("odoo url", c.odoo_url.clone()),
        ("odoo database", c.odoo_db.clone()),
        ("odoo login", c.odoo_username.clone()),
        ("odoo api key", masked_key(&c.odoo_api_key)),
        ("webhook url", webhook_url),
        (
            "webhook secret",
            if args.reveal_secret {
                format!(
                    "{secret} (as a whsec_ key: {})",
                    c.webhook_secret.expose_whsec()
                )
            } else {
                format!("{secret} (--reveal-secret shows it)")
            },
        ),
        ("store id", c.store_id.clone()),
        ("client id", c.client_id.clone()),
        (
            "polling interval",
            format!("{} s", c.polling_interval_seconds),
        ),
        (
            "odoo min delay",
            if c.odoo_min_delay_ms == 0 {
                "none".to_owned()
            } else {
                format!("{} ms between calls", c.odoo_min_delay_ms)
            },
        ),
        ("events", c.events.to_list().replace(',', ", ")),
        (
            "last sync",
            c.last_sync_at.map_or_else(
                || "never".to_owned(),
                |at| format!("{} ({})", time_text(at), ago(at, now)),
            ),
        ),
        ("cursor", cursor_text(c.cursor)),
        ("delivered today", s.delivered_since.to_string()),
        ("pending", s.pending.to_string()),
        ("failed", s.failed.to_string()),
        ("webhook breaker", breaker_text(breaker, now)),
        ("push hint", hint.text),
        (
            "health",
            if found.is_empty() {
                "ok".to_owned()
            } else {
                found
                    .iter()
                    .map(|problem| problem.text.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        ("created", time_text(c.created_at)),
        ("updated", time_text(c.updated_at)),
    ];
    for (label, value) in rows {
        say!("  {:<18}{value}", format!("{label}:"));
    }
    Ok(Exit::Success)
}

fn breaker_json(record: Option<&BreakerRecord>) -> Value {
    match record {
        Some(record) => json!({
            "state": record.status.as_str(),
            "open_until": record.open_until.map(time_json),
            "recorded_at": time_json(record.updated_at),
        }),
        None => json!({"state": "closed", "open_until": null, "recorded_at": null}),
    }
}

// ---------------------------------------------------------------------------------------
// remove / pause / resume

async fn remove<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: RemoveArgs,
) -> Result<Exit, Failure> {
    let c = store.find(&args.connection).await?;
    let queued = store
        .store
        .packets(&PacketFilter {
            flow_id: Some(c.id.clone()),
            status: None,
            limit: 0,
        })
        .await
        .map_err(|e| store.failed(e))?
        .len();
    let question = format!(
        "Remove connection {:?} (id {}) with its {queued} outbox packet{} and its sync log?",
        c.name,
        c.id,
        if queued == 1 { "" } else { "s" }
    );
    let action = format!("remove connection {:?} (id {})", c.name, c.id);
    if !confirm(&action, &question, args.yes)? {
        say!("Cancelled: nothing was removed.");
        return Ok(Exit::Failure);
    }
    let removed = store
        .store
        .delete_connection(&c.id)
        .await
        .map_err(|e| store.failed(e))?;
    if !removed {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!("connection {} was already removed", c.id),
        ));
    }
    tracing::info!(connection_id = %c.id, "connection removed");
    say!(
        "Removed connection {:?} (id {}), its {queued} outbox packet{} and its sync log.",
        c.name,
        c.id,
        if queued == 1 { "" } else { "s" }
    );
    Ok(Exit::Success)
}

async fn set_active<S: engine::store::Store>(
    store: &Store<'_, S>,
    id_or_name: &str,
    active: bool,
) -> Result<Exit, Failure> {
    let mut c = store.find(id_or_name).await?;
    if c.is_active == active {
        say!(
            "Connection {:?} (id {}) is already {}.",
            c.name,
            c.id,
            status_word(active)
        );
        return Ok(Exit::Success);
    }
    c.is_active = active;
    c.updated_at = Timestamp::now();
    let found = store
        .store
        .update_connection(&c)
        .await
        .map_err(|e| store.failed(e))?;
    if !found {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!("connection {} was removed meanwhile", c.id),
        ));
    }
    tracing::info!(connection_id = %c.id, active, "connection {}", if active { "resumed" } else { "paused" });
    if active {
        say!(
            "Resumed connection {:?} (id {}): polled every {} s from its cursor.",
            c.name,
            c.id,
            c.polling_interval_seconds
        );
    } else {
        say!(
            "Paused connection {:?} (id {}): not polled until `connections resume`; its cursor and queue are kept.",
            c.name,
            c.id
        );
    }
    Ok(Exit::Success)
}

// ---------------------------------------------------------------------------------------
// test

async fn test<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: TestArgs,
) -> Result<Exit, Failure> {
    let c = store.find(&args.connection).await?;
    let timeout = Duration::from_secs(args.timeout.max(1));

    // (a) Odoo and (b) the webhook (a signed `ping`), at once.
    let report = connection_test::test_connection(&c, timeout)
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let odoo = report.odoo;
    let odoo_exit = odoo.as_ref().err().map(exit_for);
    let webhook = report.webhook.outcome;
    let packet_id = report.webhook.webhook_id;
    let elapsed_ms = report.webhook.elapsed.as_millis();

    let exit = match (&odoo_exit, &webhook) {
        (Some(exit), _) => *exit,
        (None, Err(error))
            if matches!(
                error.class,
                FailureClass::NetworkError | FailureClass::Timeout
            ) =>
        {
            Exit::Unreachable
        }
        (None, Err(_)) => Exit::Failure,
        (None, Ok(_)) => Exit::Success,
    };

    let url = display_url(&c.webhook_url);
    if args.json {
        let odoo_json = match &odoo {
            Ok(check) => json!({
                "ok": true,
                "url": c.odoo_url,
                "database": c.odoo_db,
                "login": c.odoo_username,
                "server_version": check.version,
                "uid": check.uid,
                "transport": check.transport,
            }),
            Err(error) => json!({
                "ok": false,
                "url": c.odoo_url,
                "class": connection_test::odoo_failure_class(error),
                "error": scrub(&c, error.to_string()),
            }),
        };
        let webhook_json = match &webhook {
            Ok(delivered) => json!({
                "ok": true,
                "url": url,
                "status": delivered.status,
                "webhook_id": packet_id,
                "elapsed_ms": elapsed_ms,
            }),
            Err(error) => json!({
                "ok": false,
                "url": url,
                "class": error.class.as_str(),
                "status": error.status,
                "error": scrub(&c, error.message.clone()),
            }),
        };
        say!(
            "{}",
            json!({
                "connection_id": c.id,
                "name": c.name,
                "ok": exit == Exit::Success,
                "odoo": odoo_json,
                "webhook": webhook_json,
            })
        );
        return Ok(exit);
    }

    say!("Testing connection {:?} (id {})", c.name, c.id);
    match &odoo {
        Ok(check) => say!(
            "  Odoo     ok      Odoo {} at {}, database {}, login {} (uid {}), transport {}",
            check.version,
            c.odoo_url,
            c.odoo_db,
            c.odoo_username,
            check.uid,
            check.transport
        ),
        Err(error) => {
            let exit = exit_for(error);
            let hint = match exit {
                Exit::Authentication => {
                    " (check the database, the login and the API key: `connections edit … --rotate-api-key`)"
                }
                Exit::Unreachable => " (check the URL and that Odoo is up)",
                _ => "",
            };
            say!(
                "  Odoo     FAILED  {}: {}{hint}",
                connection_test::odoo_failure_class(error),
                scrub(&c, error.to_string())
            );
        }
    }
    match &webhook {
        Ok(delivered) => say!(
            "  Webhook  ok      HTTP {} from {url} in {elapsed_ms} ms (signed ping, webhook-id {})",
            delivered.status,
            packet_id
        ),
        Err(error) => say!(
            "  Webhook  FAILED  {}: {}",
            error.class.as_str(),
            scrub(&c, error.message.clone())
        ),
    }
    if exit != Exit::Success {
        say!("The connection test failed (exit {}).", exit as u8);
    }
    Ok(exit)
}
