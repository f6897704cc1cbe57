//! `odoo-bridge marketplace …`: marketplaces (Cartona), each a tenant (the Odoo) with one
//! marketplace flow, kept in the delivery store and run by `odoo-bridge run`.
//!
//! Secrets are never flags: the Cartona token comes from `CARTONA_API_TOKEN` (or the variable
//! `--api-token-env` names, or a hidden prompt on a terminal), the Odoo API key from
//! `ODOO_API_KEY` as for connections. The inbound webhook secret is printed once by `add`
//! (and by `edit --rotate-webhook-secret`), afterwards only by `show --reveal-secret`.

mod sync;

use super::connections::DEFAULT_API_KEY_ENV;
use super::delivery_store::{
    Access, StoreLocation, StoreTask, ago, confirm, table, time_json, time_text, with_store,
};
use super::form_input::{
    FormMessages, SecretInput, only_by_name, status_text, status_word, validate_with_secrets,
};
use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, Subcommand};
use engine::connection_form::{self, display_url, masked_key};
use engine::connection_test::{check_tenant_odoo, odoo_failure_class, scrub_secrets};
use engine::marketplace::form::{self as market_form, FIELDS, catalog_text};
use engine::marketplace::{Marketplace, MarketplaceDraft, MarketplaceRegistry};
use engine::store::{ImportState, PacketFilter, StoreError};
use engine::webhook::FailureClass;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

/// The variable the Cartona token is read from unless `--api-token-env` names another.
pub const DEFAULT_API_TOKEN_ENV: &str = "CARTONA_API_TOKEN";

#[derive(Debug, Subcommand)]
pub enum MarketplaceCommand {
    /// Add a marketplace: its orders are imported into this Odoo by `odoo-bridge run`.
    /// Prints its id and its webhook secret (once).
    Add(AddArgs),
    /// List the marketplaces: state, last sync, orders imported and refused.
    List(ListArgs),
    /// Show every field of one marketplace (secrets masked).
    Show(ShowArgs),
    /// Change a marketplace. Its window and its orders are kept.
    Edit(EditArgs),
    /// Delete a marketplace with its queued packets, cursor and log.
    Remove(RemoveArgs),
    /// Stop importing from a marketplace (its window and orders are kept).
    Pause(TargetArgs),
    /// Import from a paused marketplace again.
    Resume(TargetArgs),
    /// Log in to Odoo and ask the marketplace for one order; reports both.
    Test(TestArgs),
    /// Conflicts between the marketplace and Odoo that wait for a person (open ones unless
    /// --all).
    Conflicts(sync::ConflictsArgs),
    /// Settle a conflict: push Odoo's status (odoo), apply the marketplace's again
    /// (marketplace), or close it (ignore).
    Resolve(sync::ResolveArgs),
    /// The sync log: one row per event (imports, statuses both ways), newest first.
    Log(sync::LogArgs),
    /// The last 24 hours: events by outcome, average response time, orders in sync.
    Stats(sync::StatsArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A unique name, e.g. "Cartona Cairo".
    #[arg(long)]
    name: String,
    /// The marketplace: cartona.
    #[arg(long, default_value = "cartona")]
    kind: String,
    /// The marketplace API's base URL (https; http only on loopback).
    #[arg(long, value_name = "URL")]
    api_url: String,
    /// The environment variable holding the marketplace's API token (never given as a
    /// flag). Unset on a terminal: the token is asked for, hidden.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_TOKEN_ENV)]
    api_token_env: String,
    /// Odoo's base URL, e.g. https://mycompany.odoo.com.
    #[arg(long, value_name = "URL")]
    odoo_url: String,
    /// Odoo's database name.
    #[arg(long, value_name = "DB")]
    odoo_db: String,
    /// Login of the Odoo API user.
    #[arg(long, value_name = "LOGIN")]
    odoo_username: String,
    /// The environment variable holding the Odoo API key (never given as a flag).
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_KEY_ENV)]
    api_key_env: String,
    /// Seconds between two imports (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    interval: String,
    /// The secret the marketplace signs its status webhooks with [default: a new random
    /// UUID4].
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
    /// The sale.order field holding the marketplace's order id.
    #[arg(long, value_name = "FIELD", default_value = "client_order_ref")]
    reference_field: String,
    /// Addresses allowed to send status webhooks: CIDR ranges, comma-separated [default:
    /// any].
    #[arg(long, value_name = "CIDR,...", default_value = "")]
    allow_from: String,
    /// Status webhooks a minute from one address (1 to 100000); more are answered 429
    /// with Retry-After [default: 600].
    #[arg(long, value_name = "N")]
    inbound_per_minute: Option<String>,
    /// The sale.order field holding the retailer's OTP (sent with `delivered` on installment
    /// and wallet_top_up orders) [default: x_retailer_otp].
    #[arg(long, value_name = "FIELD")]
    otp_field: Option<String>,
    /// Overrides of the (order state, delivery state) → status table, a JSON object such as
    /// '{"sale/done": "delivered", "sale/assigned": null}' [default: the seed's table].
    #[arg(long, value_name = "JSON")]
    status_map: Option<String>,
    /// The catalog push (price and free quantity of each sellable product to Cartona's
    /// supplier-product/bulk-update): off, all (free quantity over every warehouse) or a
    /// stock.warehouse id [default: off].
    #[arg(long, value_name = "off|all|WAREHOUSE_ID")]
    catalog: Option<String>,
    /// Add it paused (not imported from until `marketplace resume`).
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
    /// The marketplace's id or name.
    #[arg(value_name = "ID|NAME")]
    marketplace: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Show the webhook secret instead of masking it.
    #[arg(long)]
    reveal_secret: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The marketplace's id or name.
    #[arg(value_name = "ID|NAME")]
    marketplace: String,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// The marketplace API's base URL.
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Replace the marketplace's API token with the one in the --api-token-env variable (or
    /// asked for, hidden, on a terminal).
    #[arg(long)]
    rotate_api_token: bool,
    /// The environment variable holding the new token, with --rotate-api-token.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_TOKEN_ENV, requires = "rotate_api_token")]
    api_token_env: String,
    /// Odoo's base URL.
    #[arg(long, value_name = "URL")]
    odoo_url: Option<String>,
    /// Odoo's database name.
    #[arg(long, value_name = "DB")]
    odoo_db: Option<String>,
    /// Login of the Odoo API user.
    #[arg(long, value_name = "LOGIN")]
    odoo_username: Option<String>,
    /// Replace the Odoo API key with the one in the --api-key-env variable (or asked for).
    #[arg(long)]
    rotate_api_key: bool,
    /// The environment variable holding the new Odoo API key, with --rotate-api-key.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_API_KEY_ENV, requires = "rotate_api_key")]
    api_key_env: String,
    /// Seconds between two imports (1 to 86400).
    #[arg(long, value_name = "SECONDS")]
    interval: Option<String>,
    /// A new webhook secret.
    #[arg(long, value_name = "SECRET", conflicts_with = "rotate_webhook_secret")]
    webhook_secret: Option<String>,
    /// Generate a new random webhook secret, printed once.
    #[arg(long)]
    rotate_webhook_secret: bool,
    /// The sale.order field holding the marketplace's order id.
    #[arg(long, value_name = "FIELD")]
    reference_field: Option<String>,
    /// Addresses allowed to send status webhooks (CIDRs, comma-separated; "" for any).
    #[arg(long, value_name = "CIDR,...")]
    allow_from: Option<String>,
    /// Status webhooks a minute from one address (1 to 100000); more are answered 429.
    #[arg(long, value_name = "N")]
    inbound_per_minute: Option<String>,
    /// The sale.order field holding the retailer's OTP.
    #[arg(long, value_name = "FIELD")]
    otp_field: Option<String>,
    /// Overrides of the (order state, delivery state) → status table (a JSON object; "{}"
    /// for the seed's table).
    #[arg(long, value_name = "JSON")]
    status_map: Option<String>,
    /// The catalog push: off, all (every warehouse) or a stock.warehouse id.
    #[arg(long, value_name = "off|all|WAREHOUSE_ID")]
    catalog: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The marketplace's id or name.
    #[arg(value_name = "ID|NAME")]
    marketplace: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The marketplace's id or name.
    #[arg(value_name = "ID|NAME")]
    marketplace: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The marketplace's id or name.
    #[arg(value_name = "ID|NAME")]
    marketplace: String,
    /// Seconds to wait for each call, to Odoo and to the marketplace.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: MarketplaceCommand) -> Result<Exit, Failure> {
    // Only `add` may create the store; the other commands need one.
    let access = match command {
        MarketplaceCommand::Add(_) => Access::Create,
        _ => Access::Existing,
    };
    with_store(access, Task(command)).await
}

struct Task(MarketplaceCommand);

impl StoreTask for Task {
    type Output = Exit;

    async fn run<S: engine::store::Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> Result<Exit, Failure> {
        let store = Store { store, location };
        match self.0 {
            MarketplaceCommand::Add(args) => add(&store, args).await,
            MarketplaceCommand::List(args) => list(&store, args).await,
            MarketplaceCommand::Show(args) => show(&store, args).await,
            MarketplaceCommand::Edit(args) => edit(&store, args).await,
            MarketplaceCommand::Remove(args) => remove(&store, args).await,
            MarketplaceCommand::Pause(args) => set_active(&store, &args.marketplace, false).await,
            MarketplaceCommand::Resume(args) => set_active(&store, &args.marketplace, true).await,
            MarketplaceCommand::Test(args) => test(&store, args).await,
            MarketplaceCommand::Conflicts(args) => sync::conflicts(&store, args).await,
            MarketplaceCommand::Resolve(args) => sync::resolve(&store, args).await,
            MarketplaceCommand::Log(args) => sync::log(&store, args).await,
            MarketplaceCommand::Stats(args) => sync::stats(&store, args).await,
        }
    }
}

struct Store<'a, S> {
    store: &'a S,
    location: &'a StoreLocation,
}

impl<S: engine::store::Store> Store<'_, S> {
    fn failed(&self, error: StoreError) -> Failure {
        self.location.failure(error)
    }

    /// The marketplace with this id or name (exact first, then ignoring case when only one
    /// matches); exit 9 when there is none.
    async fn find(&self, id_or_name: &str) -> Result<Marketplace, Failure> {
        let wanted = id_or_name.trim();
        if let Some(found) = self
            .store
            .marketplace(wanted)
            .await
            .map_err(|e| self.failed(e))?
        {
            return Ok(found);
        }
        let all = self.all().await?;
        only_by_name(all, wanted, |m| m.name.as_str()).ok_or_else(|| {
            Failure::new(
                Exit::NotFound,
                anyhow::anyhow!(
                    "no marketplace has the id or name {wanted:?} (see `odoo-bridge marketplace list`)"
                ),
            )
        })
    }

    async fn all(&self) -> Result<Vec<Marketplace>, Failure> {
        self.store.marketplaces().await.map_err(|e| self.failed(e))
    }

    async fn counts(&self, id: &str) -> Result<OrderCounts, Failure> {
        let orders = self
            .store
            .marketplace_orders(id)
            .await
            .map_err(|e| self.failed(e))?;
        let count = |state: ImportState| orders.iter().filter(|o| o.state == state).count();
        Ok(OrderCounts {
            imported: count(ImportState::Imported),
            refused: count(ImportState::Refused),
            in_progress: count(ImportState::Claimed),
        })
    }
}

/// A marketplace's orders by where their import stands.
struct OrderCounts {
    imported: usize,
    refused: usize,
    in_progress: usize,
}

// ---------------------------------------------------------------------------------------
// add / edit

/// The flag (or variable) each field of the form comes from, for messages.
fn flag_of(field: &str, api_key_env: &str, api_token_env: &str) -> String {
    match field {
        "interval_seconds" => "--interval".to_owned(),
        "odoo_api_key" => format!("API key (${api_key_env})"),
        "api_token" => format!("API token (${api_token_env})"),
        field => format!("--{}", field.replace('_', "-")),
    }
}

fn field_order(field: &str) -> usize {
    FIELDS
        .iter()
        .position(|name| *name == field)
        .unwrap_or(FIELDS.len())
}

/// Which secrets a validation reads (from the environment or a prompt), by variable.
struct WantedSecrets<'a> {
    api_token_env: Option<&'a str>,
    api_key_env: Option<&'a str>,
}

async fn validate<S: engine::store::Store>(
    store: &Store<'_, S>,
    mut draft: MarketplaceDraft,
    editing: Option<&Marketplace>,
    wanted: WantedSecrets<'_>,
) -> Result<Marketplace, Failure> {
    let others = store.all().await?;
    let mut secrets = Vec::new();
    if let Some(var) = wanted.api_token_env {
        secrets.push(SecretInput {
            field: "api_token",
            env_var: var.to_owned(),
            what: "API token",
            noun: "token",
            prompt: format!(
                "{} API token for {} (hidden): ",
                draft.kind.trim(),
                draft.api_url.trim()
            ),
        });
    }
    if let Some(var) = wanted.api_key_env {
        secrets.push(SecretInput {
            field: "odoo_api_key",
            env_var: var.to_owned(),
            what: "API key",
            noun: "key",
            prompt: format!(
                "Odoo API key for {} at {} (hidden): ",
                draft.odoo_username.trim(),
                draft.odoo_url.trim()
            ),
        });
    }
    let flag_of = |field: &str| {
        flag_of(
            field,
            wanted.api_key_env.unwrap_or(DEFAULT_API_KEY_ENV),
            wanted.api_token_env.unwrap_or(DEFAULT_API_TOKEN_ENV),
        )
    };
    let messages = FormMessages {
        subject: "marketplace",
        flag_of: &flag_of,
        secrets: &secrets,
    };
    let now = Timestamp::now();
    validate_with_secrets(
        &mut draft,
        &messages,
        |draft, field, value| match field {
            "api_token" => draft.api_token = value,
            _ => draft.odoo_api_key = value,
        },
        |draft| draft.validate(&others, editing, now),
        field_order,
    )
}

/// A taken name (a race with another process, past validation) is a bad value, exit 2.
fn conflict(error: StoreError, name: &str, store: &StoreLocation) -> Failure {
    match error {
        StoreError::Conflict { .. } => Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "a marketplace named {name:?} already exists; names must be unique (see `odoo-bridge marketplace list`)"
            ),
        ),
        error => store.failure(error),
    }
}

async fn add<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: AddArgs,
) -> Result<Exit, Failure> {
    let mut draft = MarketplaceDraft::with_defaults();
    draft.name = args.name;
    draft.kind = args.kind;
    draft.api_url = args.api_url;
    draft.odoo_url = args.odoo_url;
    draft.odoo_db = args.odoo_db;
    draft.odoo_username = args.odoo_username;
    draft.interval_seconds = args.interval;
    if let Some(secret) = args.webhook_secret {
        draft.webhook_secret = secret;
    }
    draft.reference_field = args.reference_field;
    draft.allow_from = args.allow_from;
    if let Some(rate) = args.inbound_per_minute {
        draft.inbound_per_minute = rate;
    }
    draft.otp_field = args.otp_field.unwrap_or_default();
    draft.status_map = args.status_map.unwrap_or_default();
    draft.catalog = args.catalog.unwrap_or_default();
    draft.is_active = !args.paused;
    let wanted = WantedSecrets {
        api_token_env: Some(&args.api_token_env),
        api_key_env: Some(&args.api_key_env),
    };
    let marketplace = validate(store, draft, None, wanted).await?;
    store
        .store
        .insert_marketplace(&marketplace)
        .await
        .map_err(|error| conflict(error, &marketplace.name, store.location))?;
    tracing::info!(connection_id = %marketplace.id, name = %marketplace.name, "marketplace added");
    let secret = marketplace.secrets.webhook_secret.expose();
    if args.json {
        say!(
            "{}",
            json!({
                "id": marketplace.id,
                "name": marketplace.name,
                "kind": marketplace.settings.kind.as_str(),
                "status": status_word(marketplace.is_active),
                "api_url": display_url(&marketplace.settings.api_url),
                "webhook_secret": secret,
            })
        );
        return Ok(Exit::Success);
    }
    say!(
        "Added marketplace {:?} (id {}), {}.",
        marketplace.name,
        marketplace.id,
        if marketplace.is_active {
            "active: `odoo-bridge run` imports its orders"
        } else {
            "paused: `odoo-bridge marketplace resume` starts it"
        }
    );
    say!(
        "  {}: {} (API token {})",
        marketplace.settings.kind,
        display_url(&marketplace.settings.api_url),
        masked_text(marketplace.secrets.api_token.expose())
    );
    say!(
        "  Odoo:    {} (database {}, login {}, API key {})",
        marketplace.odoo_url,
        marketplace.odoo_db,
        marketplace.odoo_username,
        masked_key(&marketplace.odoo_api_key)
    );
    say!();
    say!("Webhook secret (shown this once; give it to the marketplace): {secret}");
    say!(
        "  Later: `odoo-bridge marketplace show {} --reveal-secret`.",
        marketplace.id
    );
    Ok(Exit::Success)
}

/// A secret as shown: `••••` and its last four characters when it is long enough.
fn masked_text(secret: &str) -> String {
    masked_key(&odoo_rpc::ApiKey::new(secret))
}

async fn edit<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: EditArgs,
) -> Result<Exit, Failure> {
    let existing = store.find(&args.marketplace).await?;
    let mut draft = MarketplaceDraft::from_marketplace(&existing);
    let mut given = false;
    let mut set = |field: &mut String, value: Option<String>| {
        if let Some(value) = value {
            *field = value;
            given = true;
        }
    };
    set(&mut draft.name, args.name);
    set(&mut draft.api_url, args.api_url);
    set(&mut draft.odoo_url, args.odoo_url);
    set(&mut draft.odoo_db, args.odoo_db);
    set(&mut draft.odoo_username, args.odoo_username);
    set(&mut draft.interval_seconds, args.interval);
    set(&mut draft.webhook_secret, args.webhook_secret);
    set(&mut draft.reference_field, args.reference_field);
    set(&mut draft.allow_from, args.allow_from);
    set(&mut draft.inbound_per_minute, args.inbound_per_minute);
    set(&mut draft.otp_field, args.otp_field);
    set(&mut draft.status_map, args.status_map);
    set(&mut draft.catalog, args.catalog);
    if args.rotate_webhook_secret {
        draft.webhook_secret = connection_form::new_webhook_secret();
    }
    if !given && !args.rotate_api_key && !args.rotate_api_token && !args.rotate_webhook_secret {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "nothing to change: give the flags to change (see `odoo-bridge marketplace edit --help`)"
            ),
        ));
    }
    let wanted = WantedSecrets {
        api_token_env: args.rotate_api_token.then_some(args.api_token_env.as_str()),
        api_key_env: args.rotate_api_key.then_some(args.api_key_env.as_str()),
    };
    let updated = validate(store, draft, Some(&existing), wanted).await?;
    let changed = changes(&existing, &updated);
    if changed.is_empty() {
        say!(
            "Nothing changed: marketplace {:?} (id {}) already has these values.",
            existing.name,
            existing.id
        );
        return Ok(Exit::Success);
    }
    let found = store
        .store
        .update_marketplace(&updated)
        .await
        .map_err(|error| conflict(error, &updated.name, store.location))?;
    if !found {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "marketplace {} was removed meanwhile; nothing was changed",
                existing.id
            ),
        ));
    }
    tracing::info!(connection_id = %updated.id, changed = %changed.join(","), "marketplace edited");
    say!(
        "Updated marketplace {:?} (id {}): {}.",
        updated.name,
        updated.id,
        changed.join(", ")
    );
    say!("  Its window and its orders are kept; a running `odoo-bridge run` picks the change up.");
    if args.rotate_webhook_secret {
        say!(
            "New webhook secret (shown this once; give it to the marketplace): {}",
            updated.secrets.webhook_secret.expose()
        );
    }
    Ok(Exit::Success)
}

/// The names of the editable fields that differ (secrets named, never shown).
fn changes(before: &Marketplace, after: &Marketplace) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut note = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    note("name", before.name != after.name);
    note("api_url", before.settings.api_url != after.settings.api_url);
    note(
        "api_token",
        before.secrets.api_token != after.secrets.api_token,
    );
    note("odoo_url", before.odoo_url != after.odoo_url);
    note("odoo_db", before.odoo_db != after.odoo_db);
    note("odoo_username", before.odoo_username != after.odoo_username);
    note(
        "odoo_api_key",
        before.odoo_api_key.expose() != after.odoo_api_key.expose(),
    );
    note(
        "interval_seconds",
        before.interval_seconds != after.interval_seconds,
    );
    note(
        "webhook_secret",
        before.secrets.webhook_secret != after.secrets.webhook_secret,
    );
    note(
        "reference_field",
        before.settings.reference_field != after.settings.reference_field,
    );
    note(
        "allow_from",
        before.settings.allow_from != after.settings.allow_from,
    );
    note(
        "inbound_per_minute",
        before.settings.inbound_per_minute != after.settings.inbound_per_minute,
    );
    note(
        "otp_field",
        before.outbound.otp_field != after.outbound.otp_field,
    );
    note(
        "status_map",
        before.outbound.status_map != after.outbound.status_map,
    );
    note("catalog", before.outbound.catalog != after.outbound.catalog);
    changed
}

// ---------------------------------------------------------------------------------------
// list / show

/// What `list --json` and `show --json` share: never a secret.
fn summary_json(m: &Marketplace, counts: &OrderCounts) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "kind": m.settings.kind.as_str(),
        "is_active": m.is_active,
        "status": status_word(m.is_active),
        "api_url": display_url(&m.settings.api_url),
        "odoo_url": m.odoo_url,
        "odoo_db": m.odoo_db,
        "odoo_username": m.odoo_username,
        "interval_seconds": m.interval_seconds,
        "reference_field": m.settings.reference_field,
        "allow_from": m.settings.allow_from,
        "inbound_per_minute": m.settings.inbound_per_minute,
        "otp_field": m.outbound.otp_field,
        "status_map": m.outbound.status_map.overrides(),
        "catalog": catalog_text(m.outbound.catalog),
        "last_sync_at": m.last_sync_at.map(time_json),
        "orders_imported": counts.imported,
        "orders_refused": counts.refused,
        "orders_in_progress": counts.in_progress,
    })
}

fn allow_from_text(m: &Marketplace) -> String {
    if m.settings.allow_from.is_empty() {
        "any address".to_owned()
    } else {
        m.settings.allow_from.join(", ")
    }
}

async fn list<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: ListArgs,
) -> Result<Exit, Failure> {
    let now = Timestamp::now();
    let marketplaces = store.all().await?;
    let mut counts = Vec::with_capacity(marketplaces.len());
    for m in &marketplaces {
        counts.push(store.counts(&m.id).await?);
    }
    if args.json {
        let rows: Vec<Value> = marketplaces
            .iter()
            .zip(&counts)
            .map(|(m, c)| summary_json(m, c))
            .collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if marketplaces.is_empty() {
        say!(
            "No marketplaces yet in the {}. Add one with `odoo-bridge marketplace add --help`.",
            store.location.describe()
        );
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = marketplaces
        .iter()
        .zip(&counts)
        .map(|(m, c)| {
            vec![
                m.name.clone(),
                m.id.clone(),
                m.settings.kind.to_string(),
                status_text(m.is_active).to_owned(),
                format!("{} s", m.interval_seconds),
                m.last_sync_at
                    .map_or_else(|| "never".to_owned(), |at| ago(at, now)),
                c.imported.to_string(),
                c.refused.to_string(),
                m.odoo_url.clone(),
                display_url(&m.settings.api_url),
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "NAME",
                "ID",
                "KIND",
                "STATUS",
                "INTERVAL",
                "LAST SYNC",
                "IMPORTED",
                "REFUSED",
                "ODOO",
                "API"
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
    let m = store.find(&args.marketplace).await?;
    let counts = store.counts(&m.id).await?;
    let secret = if args.reveal_secret {
        m.secrets.webhook_secret.expose().to_owned()
    } else {
        masked_text(m.secrets.webhook_secret.expose())
    };
    if args.json {
        let mut object = summary_json(&m, &counts);
        object["api_token"] = json!(masked_text(m.secrets.api_token.expose()));
        object["odoo_api_key"] = json!(masked_key(&m.odoo_api_key));
        object["webhook_secret"] = json!(secret);
        object["created_at"] = time_json(m.created_at);
        object["updated_at"] = time_json(m.updated_at);
        say!("{object}");
        return Ok(Exit::Success);
    }
    say!("Marketplace {:?} (id {})", m.name, m.id);
    let rows: Vec<(&str, String)> = vec![
        ("status", status_text(m.is_active).to_owned()),
        ("kind", m.settings.kind.to_string()),
        ("api url", display_url(&m.settings.api_url)),
        ("api token", masked_text(m.secrets.api_token.expose())),
        ("odoo url", m.odoo_url.clone()),
        ("odoo database", m.odoo_db.clone()),
        ("odoo login", m.odoo_username.clone()),
        ("odoo api key", masked_key(&m.odoo_api_key)),
        ("interval", format!("{} s", m.interval_seconds)),
        ("reference field", m.settings.reference_field.clone()),
        ("allow from", allow_from_text(&m)),
        (
            "inbound rate",
            format!(
                "{} requests a minute from one address",
                m.settings.inbound_per_minute
            ),
        ),
        ("otp field", m.outbound.otp_field.clone()),
        (
            "status map",
            if m.outbound.status_map.overrides().is_empty() {
                "the seed's table".to_owned()
            } else {
                Value::Object(m.outbound.status_map.overrides().clone()).to_string()
            },
        ),
        (
            "catalog push",
            match catalog_text(m.outbound.catalog).as_str() {
                "off" => "off".to_owned(),
                "all" => "on, free quantity over every warehouse".to_owned(),
                warehouse => format!("on, free quantity of stock.warehouse {warehouse}"),
            },
        ),
        (
            "webhook secret",
            if args.reveal_secret {
                secret
            } else {
                format!("{secret} (--reveal-secret shows it)")
            },
        ),
        (
            "last sync",
            m.last_sync_at.map_or_else(
                || "never".to_owned(),
                |at| format!("{} ({})", time_text(at), ago(at, now)),
            ),
        ),
        ("orders imported", counts.imported.to_string()),
        ("orders refused", counts.refused.to_string()),
        ("being imported", counts.in_progress.to_string()),
        ("created", time_text(m.created_at)),
        ("updated", time_text(m.updated_at)),
    ];
    for (label, value) in rows {
        say!("  {:<18}{value}", format!("{label}:"));
    }
    Ok(Exit::Success)
}

// ---------------------------------------------------------------------------------------
// remove / pause / resume

async fn remove<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: RemoveArgs,
) -> Result<Exit, Failure> {
    let m = store.find(&args.marketplace).await?;
    let queued = store
        .store
        .packets(&PacketFilter {
            flow_id: Some(m.id.clone()),
            status: None,
            limit: 0,
        })
        .await
        .map_err(|e| store.failed(e))?
        .len();
    let plural = if queued == 1 { "" } else { "s" };
    let question = format!(
        "Remove marketplace {:?} (id {}) with its {queued} outbox packet{plural}, its orders' records and its log? (Odoo's orders stay.)",
        m.name, m.id
    );
    let action = format!("remove marketplace {:?} (id {})", m.name, m.id);
    if !confirm(&action, &question, args.yes)? {
        say!("Cancelled: nothing was removed.");
        return Ok(Exit::Failure);
    }
    let removed = store
        .store
        .delete_marketplace(&m.id)
        .await
        .map_err(|e| store.failed(e))?;
    if !removed {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!("marketplace {} was already removed", m.id),
        ));
    }
    tracing::info!(connection_id = %m.id, "marketplace removed");
    say!(
        "Removed marketplace {:?} (id {}) and its {queued} outbox packet{plural}.",
        m.name,
        m.id
    );
    Ok(Exit::Success)
}

async fn set_active<S: engine::store::Store>(
    store: &Store<'_, S>,
    id_or_name: &str,
    active: bool,
) -> Result<Exit, Failure> {
    let mut m = store.find(id_or_name).await?;
    if m.is_active == active {
        say!(
            "Marketplace {:?} (id {}) is already {}.",
            m.name,
            m.id,
            status_word(active)
        );
        return Ok(Exit::Success);
    }
    m.is_active = active;
    m.updated_at = Timestamp::now();
    let found = store
        .store
        .update_marketplace(&m)
        .await
        .map_err(|e| store.failed(e))?;
    if !found {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!("marketplace {} was removed meanwhile", m.id),
        ));
    }
    tracing::info!(connection_id = %m.id, active, "marketplace {}", if active { "resumed" } else { "paused" });
    if active {
        say!(
            "Resumed marketplace {:?} (id {}): imported every {} s from its window.",
            m.name,
            m.id,
            m.interval_seconds
        );
    } else {
        say!(
            "Paused marketplace {:?} (id {}): not imported from until `marketplace resume`; its window and orders are kept.",
            m.name,
            m.id
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
    let m = store.find(&args.marketplace).await?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let tenant = m.tenant();
    let (odoo, api) = tokio::join!(
        check_tenant_odoo(&tenant, timeout),
        market_form::probe_api(&m, timeout, Timestamp::now())
    );
    let scrub = |text: String| {
        scrub_secrets(
            text,
            &[
                m.odoo_api_key.expose(),
                m.secrets.api_token.expose(),
                m.secrets.webhook_secret.expose(),
            ],
        )
    };
    let exit = match (&odoo, &api) {
        (Err(error), _) => exit_for(error),
        (Ok(_), Err(error))
            if matches!(
                error.class,
                FailureClass::NetworkError | FailureClass::Timeout
            ) || error.status.is_some_and(|s| s == 429 || s >= 500) =>
        {
            Exit::Unreachable
        }
        (Ok(_), Err(error)) if matches!(error.status, Some(401 | 403)) => Exit::Authentication,
        (Ok(_), Err(_)) => Exit::Failure,
        (Ok(_), Ok(_)) => Exit::Success,
    };
    let api_url = display_url(&m.settings.api_url);
    if args.json {
        let odoo_json = match &odoo {
            Ok(check) => json!({
                "ok": true,
                "url": m.odoo_url,
                "database": m.odoo_db,
                "login": m.odoo_username,
                "server_version": check.version,
                "uid": check.uid,
                "transport": check.transport,
            }),
            Err(error) => json!({
                "ok": false,
                "url": m.odoo_url,
                "class": odoo_failure_class(error),
                "error": scrub(error.to_string()),
            }),
        };
        let api_json = match &api {
            Ok(orders) => json!({"ok": true, "url": api_url, "orders": orders}),
            Err(error) => json!({
                "ok": false,
                "url": api_url,
                "class": error.class.as_str(),
                "status": error.status,
                "error": scrub(error.message.clone()),
            }),
        };
        say!(
            "{}",
            json!({
                "marketplace_id": m.id,
                "name": m.name,
                "ok": exit == Exit::Success,
                "odoo": odoo_json,
                "marketplace": api_json,
            })
        );
        return Ok(exit);
    }
    say!("Testing marketplace {:?} (id {})", m.name, m.id);
    match &odoo {
        Ok(check) => say!(
            "  Odoo         ok      Odoo {} at {}, database {}, login {} (uid {}), transport {}",
            check.version,
            m.odoo_url,
            m.odoo_db,
            m.odoo_username,
            check.uid,
            check.transport
        ),
        Err(error) => say!(
            "  Odoo         FAILED  {}: {}",
            odoo_failure_class(error),
            scrub(error.to_string())
        ),
    }
    match &api {
        Ok(orders) => say!(
            "  Marketplace  ok      {api_url} answered order/pull-orders (page 1, per_page 1: {orders} order{})",
            if *orders == 1 { "" } else { "s" }
        ),
        Err(error) => say!(
            "  Marketplace  FAILED  {}: {}",
            error.class.as_str(),
            scrub(error.message.clone())
        ),
    }
    if exit != Exit::Success {
        say!("The marketplace test failed (exit {}).", exit as u8);
    }
    Ok(exit)
}
