//! Setting the hint up in a tenant's Odoo, through its API: one automation rule on
//! `sale.order` (trigger "On create and edit", `on_create_or_write`) whose one action is
//! "Send Webhook Notification" to the connection's hint URL, with the order's `id`, `name`,
//! `state` and `write_date` as the body's fields.
//!
//! Which orders it fires for follows the connection's events: confirmed orders (the change
//! into `sale`), and with `order.updated` / `order.cancelled` every later change of a
//! confirmed or cancelled order. The rule and its action are named after the connection's
//! id ([`rule_name`]), so installing again finds and updates them instead of adding others,
//! and a renamed connection keeps its rule.
//!
//! A mirrored model's rule ([`RuleSpec::for_mirror`]) is the same kind of rule on that model,
//! for every creation and edit, posting the record's `id` and `write_date`, named after the
//! model ([`mirror_rule_name`]).

use crate::order_delivery::EventSet;
use odoo_rpc::{Context, OdooClient, SearchReadOptions, field};
use serde_json::{Map, Value, json};

/// The model the rule watches.
pub const WATCHED_MODEL: &str = "sale.order";
/// The order's fields the webhook body carries (only `_model` and `_id` are read; the rest
/// makes the rule readable to a person looking at it in Odoo).
pub const BODY_FIELDS: [&str; 4] = ["id", "name", "state", "write_date"];
const RULES: &str = "base.automation";
const ACTIONS: &str = "ir.actions.server";

/// A client for setting the rule up in `tenant`'s Odoo: each call waits `timeout` at most,
/// retried once (a person is waiting).
pub fn client_for(
    tenant: &crate::store::Tenant,
    timeout: std::time::Duration,
) -> Result<OdooClient, odoo_rpc::Error> {
    let mut config = tenant.odoo_client_config();
    config.timeout = timeout;
    config.retry.max_retries = 1;
    OdooClient::new(config)
}

/// The mirror's rule: the fields its body carries (only `_model`, `_id` and `write_date` are
/// read: the mirror waits for that `write_date`).
pub const MIRROR_BODY_FIELDS: [&str; 2] = ["id", "write_date"];

/// The rule's name in Odoo (its action is named by Odoo).
pub fn rule_name(connection_id: &str) -> String {
    format!("odoo-bridge push hint ({connection_id})")
}

/// The name of a mirrored model's rule in Odoo.
pub fn mirror_rule_name(model: &str) -> String {
    format!("odoo-bridge mirror hint ({model})")
}

/// An automation rule posting a webhook on every creation or edit of `model` that matches
/// its domains: what [`install_rule`] creates, or updates when one of that name is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub model: String,
    /// `filter_pre_domain` (before an edit), a Python literal; `None`: any record.
    pub pre_domain: Option<String>,
    /// `filter_domain` (after the change); `None`: any record.
    pub domain: Option<String>,
    /// The record's fields the body carries, those the model has.
    pub body_fields: Vec<&'static str>,
}

impl RuleSpec {
    /// A connection's rule on `sale.order`, following its events ([`domains`]).
    pub fn for_connection(connection_id: &str, events: EventSet) -> RuleSpec {
        let (pre_domain, domain) = domains(events);
        RuleSpec {
            name: rule_name(connection_id),
            model: WATCHED_MODEL.to_owned(),
            pre_domain: (!pre_domain.is_empty()).then_some(pre_domain),
            domain: (!domain.is_empty()).then_some(domain),
            body_fields: BODY_FIELDS.to_vec(),
        }
    }

    /// A mirrored model's rule: every creation and edit of `model` (the mirror's own domain
    /// is applied by its sync; a record leaving it must be seen too).
    pub fn for_mirror(model: &str) -> RuleSpec {
        RuleSpec {
            name: mirror_rule_name(model),
            model: model.to_owned(),
            pre_domain: None,
            domain: None,
            body_fields: MIRROR_BODY_FIELDS.to_vec(),
        }
    }
}

/// Why the rule could not be set up, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "Odoo has no automation rules: install the app \"Automation Rules\" (module \
         base_automation; Apps, search \"Automation Rules\", Install) in that database, then \
         run this command again"
    )]
    ModuleMissing,
    #[error(
        "the Odoo user of this connection may not {action}: give it the \"Administration: \
         Settings\" access right (Settings, Users, the user, Access Rights), or create the \
         rule by hand as the README's \"Orders in seconds\" section shows ({detail})"
    )]
    Rights {
        action: &'static str,
        detail: String,
    },
    #[error("Odoo's model registry has no {0:?}; is the Sales app installed?")]
    NoModel(String),
    #[error(transparent)]
    Odoo(odoo_rpc::Error),
    /// Odoo answered something a real Odoo does not.
    #[error("unexpected answer from Odoo: {0}")]
    Unexpected(String),
}

impl InstallError {
    fn from_odoo(error: odoo_rpc::Error, action: &'static str) -> InstallError {
        if is_access_error(&error) {
            InstallError::Rights {
                action,
                detail: error.to_string(),
            }
        } else {
            InstallError::Odoo(error)
        }
    }
}

fn is_access_error(error: &odoo_rpc::Error) -> bool {
    matches!(error, odoo_rpc::Error::Odoo(inner) if inner.kind == odoo_rpc::OdooErrorKind::AccessError)
}

/// The rule as found in Odoo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRule {
    pub rule_id: i64,
    pub action_id: Option<i64>,
    pub active: bool,
    /// Where its webhook action posts.
    pub webhook_url: Option<String>,
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Created { rule_id: i64, action_id: i64 },
    Updated { rule_id: i64, action_id: i64 },
}

impl Installed {
    /// The rule's id, its action's id, and `created` or `updated`.
    pub fn parts(self) -> (i64, i64, &'static str) {
        match self {
            Installed::Created { rule_id, action_id } => (rule_id, action_id, "created"),
            Installed::Updated { rule_id, action_id } => (rule_id, action_id, "updated"),
        }
    }
}

/// `filter_pre_domain` and `filter_domain` for `events`, as Python literals.
pub fn domains(events: EventSet) -> (String, String) {
    if !events.updated && !events.cancelled {
        // Only the confirmation: the change into `sale`.
        return (
            "[('state', '!=', 'sale')]".to_owned(),
            "[('state', '=', 'sale')]".to_owned(),
        );
    }
    let states = if events.cancelled {
        "['sale', 'cancel']"
    } else {
        "['sale']"
    };
    (String::new(), format!("[('state', 'in', {states})]"))
}

fn all_records() -> Context {
    Context::new().active_test(false)
}

async fn model_id(client: &OdooClient, model: &str) -> Result<Option<i64>, InstallError> {
    let found = client
        .search(
            "ir.model",
            &SearchReadOptions::new(field("model").eq(model)).limit(1),
        )
        .await
        .map_err(|error| InstallError::from_odoo(error, "read Odoo's model registry"))?;
    Ok(found.first().copied())
}

/// The rule named for `connection_id`, if Odoo has it (archived ones too).
pub async fn find(
    client: &OdooClient,
    connection_id: &str,
) -> Result<Option<InstalledRule>, InstallError> {
    find_rule(client, &rule_name(connection_id)).await
}

/// The rule named `name`, if Odoo has it (archived ones too).
pub async fn find_rule(
    client: &OdooClient,
    name: &str,
) -> Result<Option<InstalledRule>, InstallError> {
    if model_id(client, RULES).await?.is_none() {
        return Err(InstallError::ModuleMissing);
    }
    let rules = client
        .search_read(
            RULES,
            &SearchReadOptions::new(field("name").eq(name))
                .fields(["id", "active"])
                .order("id asc")
                .limit(1)
                .context(all_records()),
        )
        .await
        .map_err(|error| InstallError::from_odoo(error, "read automation rules"))?;
    let Some(rule) = rules.first() else {
        return Ok(None);
    };
    let rule_id = rule.id().map_err(|error| {
        InstallError::Unexpected(format!("an automation rule without an id: {error}"))
    })?;
    let active = rule.bool("active").ok().flatten().unwrap_or(false);
    let actions = client
        .search_read(
            ACTIONS,
            // Odoo 18 names a webhook action itself ("Send Webhook Notification"), whatever
            // name it was given: the rule's link finds it.
            &SearchReadOptions::new(
                field("base_automation_id").eq(rule_id) & field("state").eq("webhook"),
            )
            .fields(["id", "webhook_url"])
            .order("id asc")
            .limit(1),
        )
        .await
        .map_err(|error| InstallError::from_odoo(error, "read server actions"))?;
    let action = actions.first();
    Ok(Some(InstalledRule {
        rule_id,
        action_id: action.and_then(|action| action.id().ok()),
        active,
        webhook_url: action
            .and_then(|action| action.str("webhook_url").ok().flatten())
            .map(str::to_owned),
    }))
}

/// Creates the rule and its webhook action posting to `hint_url`, or brings the ones already
/// there (found by name) up to date.
pub async fn install(
    client: &OdooClient,
    connection_id: &str,
    hint_url: &str,
    events: EventSet,
) -> Result<Installed, InstallError> {
    install_rule(
        client,
        &RuleSpec::for_connection(connection_id, events),
        hint_url,
    )
    .await
}

/// Creates the rule `spec` describes with its webhook action posting to `hint_url`, or
/// brings the ones already there (found by its name) up to date.
pub async fn install_rule(
    client: &OdooClient,
    spec: &RuleSpec,
    hint_url: &str,
) -> Result<Installed, InstallError> {
    let existing = find_rule(client, &spec.name).await?;
    let model = model_id(client, &spec.model)
        .await?
        .ok_or_else(|| InstallError::NoModel(spec.model.clone()))?;
    let fields = client
        .search(
            "ir.model.fields",
            &SearchReadOptions::new(
                field("model").eq(spec.model.as_str())
                    & field("name").is_in(spec.body_fields.iter().copied()),
            ),
        )
        .await
        .map_err(|error| InstallError::from_odoo(error, "read Odoo's field registry"))?;
    let name = spec.name.as_str();
    let literal = |domain: &Option<String>| match domain {
        Some(domain) => json!(domain),
        None => Value::Bool(false),
    };
    let mut action = Map::new();
    action.insert("name".into(), json!(name));
    action.insert("model_id".into(), json!(model));
    action.insert("state".into(), json!("webhook"));
    action.insert("usage".into(), json!("base_automation"));
    action.insert("webhook_url".into(), json!(hint_url));
    action.insert("webhook_field_ids".into(), json!([[6, 0, fields]]));
    let mut rule = Map::new();
    rule.insert("name".into(), json!(name));
    rule.insert("model_id".into(), json!(model));
    rule.insert("trigger".into(), json!("on_create_or_write"));
    rule.insert("filter_pre_domain".into(), literal(&spec.pre_domain));
    rule.insert("filter_domain".into(), literal(&spec.domain));
    rule.insert("active".into(), json!(true));
    match existing {
        None => {
            rule.insert("action_server_ids".into(), json!([[0, 0, action]]));
            let created = client
                .create(RULES, vec![rule], None)
                .await
                .map_err(|error| InstallError::from_odoo(error, "create automation rules"))?;
            let rule_id = created
                .first()
                .copied()
                .ok_or_else(|| InstallError::Unexpected("create answered no id".to_owned()))?;
            let installed = find_rule(client, name).await?;
            let action_id = installed.and_then(|rule| rule.action_id).ok_or_else(|| {
                InstallError::Unexpected(
                    "the automation rule was created without its webhook action".to_owned(),
                )
            })?;
            Ok(Installed::Created { rule_id, action_id })
        }
        Some(found) => {
            match found.action_id {
                Some(action_id) => {
                    client
                        .write(ACTIONS, &[action_id], action, None)
                        .await
                        .map_err(|error| InstallError::from_odoo(error, "edit server actions"))?;
                }
                None => {
                    rule.insert("action_server_ids".into(), json!([[0, 0, action]]));
                }
            }
            client
                .write(RULES, &[found.rule_id], rule, Some(&all_records()))
                .await
                .map_err(|error| InstallError::from_odoo(error, "edit automation rules"))?;
            let action_id = match found.action_id {
                Some(id) => id,
                None => find_rule(client, name)
                    .await?
                    .and_then(|rule| rule.action_id)
                    .ok_or_else(|| {
                        InstallError::Unexpected(
                            "the automation rule has no webhook action after the update".to_owned(),
                        )
                    })?,
            };
            Ok(Installed::Updated {
                rule_id: found.rule_id,
                action_id,
            })
        }
    }
}

/// Deletes the rule and its action; `false` when there was none.
pub async fn uninstall(client: &OdooClient, connection_id: &str) -> Result<bool, InstallError> {
    uninstall_rule(client, &rule_name(connection_id)).await
}

/// Deletes the rule named `name` and its action; `false` when there was none.
pub async fn uninstall_rule(client: &OdooClient, name: &str) -> Result<bool, InstallError> {
    let Some(found) = find_rule(client, name).await? else {
        return Ok(false);
    };
    if let Some(action_id) = found.action_id {
        client
            .unlink(ACTIONS, &[action_id], None)
            .await
            .map_err(|error| InstallError::from_odoo(error, "delete server actions"))?;
    }
    client
        .unlink(RULES, &[found.rule_id], Some(&all_records()))
        .await
        .map_err(|error| InstallError::from_odoo(error, "delete automation rules"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_follows_the_connections_events() {
        assert_eq!(
            domains(EventSet::default()),
            (
                String::new(),
                "[('state', 'in', ['sale', 'cancel'])]".to_owned()
            )
        );
        let confirmed_only = EventSet {
            confirmed: true,
            updated: false,
            cancelled: false,
        };
        assert_eq!(
            domains(confirmed_only),
            (
                "[('state', '!=', 'sale')]".to_owned(),
                "[('state', '=', 'sale')]".to_owned()
            )
        );
        let no_cancel = EventSet {
            cancelled: false,
            ..EventSet::default()
        };
        assert_eq!(domains(no_cancel).1, "[('state', 'in', ['sale'])]");
    }
}
