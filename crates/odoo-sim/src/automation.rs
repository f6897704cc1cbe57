//! Automation rules (`base.automation`, app "Automation Rules") whose server actions send
//! webhooks (`ir.actions.server` with `state = 'webhook'`), as Odoo 17+ runs them.
//!
//! What Odoo does, and so the simulator (read in Odoo 18's `base_automation.py` and
//! `ir_actions.py`, `_run_action_webhook`):
//! - a rule watches one model (`model_id`); `on_create_or_write`, `on_create` and `on_write`
//!   fire for a record the call created or wrote when it matched `filter_pre_domain` before
//!   the call (writes only; an empty pre-domain matches everything) and matches
//!   `filter_domain` after it; other triggers are stored but never fire here;
//! - each webhook action POSTs `json.dumps(vals, sort_keys=True, default=str)` with
//!   `Content-Type: application/json` and a 1 s timeout, where `vals` is `_model`, `_id`,
//!   `_action` (`"Send Webhook Notification(#{id})"`: Odoo names webhook actions itself) and a `read()` of `webhook_field_ids` with `load=None`
//!   (a many2one is its bare id; a datetime is `str(datetime)`, microseconds included); a
//!   failed or slow POST is logged and the call goes on;
//! - a real Odoo fires a rule once per `write()` inside the call (`action_confirm` on Odoo 18
//!   writes a sale order about six times, so a rule without a pre-domain posts six webhooks,
//!   within a second); the simulator fires it once per call, for the call's net change;
//! - the POST is sent **inside the transaction, before it commits**: a reader meanwhile sees
//!   the record as it was. [`crate::OdooSim::hold_commits`] keeps such a transaction open
//!   until released, so tests can show a poll reading too early.
//!
//! The simulator also keeps `ir.model` and `ir.model.fields` (what `model_id` and
//! `webhook_field_ids` point to), filled from its models at start.

use crate::orm::{Database, Env};
use crate::schema::{FieldDef, FieldType, ModelDef};
use crate::values::Val;
use odoo_rpc::domain::{Domain, field};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The model of the rules; absent when the module is not installed.
pub const AUTOMATION_MODEL: &str = "base.automation";
/// How long Odoo waits for a webhook's answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(1);

/// Triggers that fire on a record created or written by a call.
const WRITE_TRIGGERS: [&str; 3] = ["on_create_or_write", "on_create", "on_write"];

fn selection(keys: &[&str]) -> FieldType {
    FieldType::Selection(
        keys.iter()
            .map(|key| ((*key).to_owned(), (*key).to_owned()))
            .collect(),
    )
}

fn m2o(comodel: &str) -> FieldType {
    FieldType::Many2one {
        comodel: comodel.to_owned(),
    }
}

/// `ir.model`, `ir.model.fields` and `ir.actions.server`, as `base` has them.
pub(crate) fn base_models() -> Vec<ModelDef> {
    let f = FieldDef::new;
    let model = ModelDef::new("ir.model", "Models")
        .order("model")
        .field(f("name", "Model Description", FieldType::Char).required())
        .field(f("model", "Model", FieldType::Char).required());
    let fields = ModelDef::new("ir.model.fields", "Fields")
        .order("name")
        .field(f("name", "Field Name", FieldType::Char).required())
        .field(f("field_description", "Field Label", FieldType::Char))
        .field(f("model", "Model Name", FieldType::Char))
        .field(f("model_id", "Model", m2o("ir.model")).required())
        .field(f("ttype", "Field Type", FieldType::Char));
    let action = ModelDef::new("ir.actions.server", "Server Actions")
        .field(f("name", "Action Name", FieldType::Char).required())
        .field(f("model_id", "Model", m2o("ir.model")).required())
        .field(
            f(
                "state",
                "Type",
                selection(&["object_write", "object_create", "code", "webhook", "multi"]),
            )
            .required(),
        )
        .field(f(
            "usage",
            "Usage",
            selection(&["ir_actions_server", "ir_cron", "base_automation"]),
        ))
        .field(f("webhook_url", "Webhook URL", FieldType::Char))
        .field(f(
            "webhook_field_ids",
            "Webhook Fields",
            FieldType::Many2many {
                comodel: "ir.model.fields".into(),
            },
        ))
        .field(f("code", "Python Code", FieldType::Text));
    vec![model, fields, action]
}

/// The models of [`base_models`], with `base.automation` and the link of server actions to it,
/// as `base_automation` adds them.
pub(crate) fn automation_models() -> Vec<ModelDef> {
    let f = FieldDef::new;
    let rule = ModelDef::new(AUTOMATION_MODEL, "Automation Rule")
        .field(f("name", "Automation Rule Name", FieldType::Char).required())
        .field(f("model_id", "Model", m2o("ir.model")).required())
        .field(f("active", "Active", FieldType::Boolean))
        .field(
            f(
                "trigger",
                "Trigger",
                selection(&[
                    "on_stage_set",
                    "on_user_set",
                    "on_tag_set",
                    "on_state_set",
                    "on_priority_set",
                    "on_archive",
                    "on_unarchive",
                    "on_create_or_write",
                    "on_create",
                    "on_write",
                    "on_unlink",
                    "on_change",
                    "on_time",
                    "on_time_created",
                    "on_time_updated",
                    "on_message_received",
                    "on_message_sent",
                    "on_webhook",
                ]),
            )
            .required(),
        )
        .field(f(
            "filter_pre_domain",
            "Before Update Domain",
            FieldType::Char,
        ))
        .field(f("filter_domain", "Apply on", FieldType::Char))
        .field(f(
            "action_server_ids",
            "Actions",
            FieldType::One2many {
                comodel: "ir.actions.server".into(),
                inverse: "base_automation_id".into(),
            },
        ));
    let mut models = base_models();
    for model in &mut models {
        if model.name == "ir.actions.server" {
            *model = model.clone().field(f(
                "base_automation_id",
                "Automation Rule",
                m2o(AUTOMATION_MODEL),
            ));
        }
    }
    models.push(rule);
    models
}

/// Fills `ir.model` and `ir.model.fields` with the database's models.
pub(crate) fn register_models(database: &mut Database, env: &Env) {
    let names: Vec<String> = database.model_names().map(str::to_owned).collect();
    for name in names {
        let Ok(model) = database.model(&name) else {
            continue;
        };
        let mut vals = Map::new();
        vals.insert("name".into(), json!(model.description));
        vals.insert("model".into(), json!(model.name));
        let Ok(created) = database.create(env, "ir.model", &[vals]) else {
            continue;
        };
        let Some(model_id) = created.first().copied() else {
            continue;
        };
        let rows: Vec<Map<String, Value>> = model
            .fields()
            .iter()
            .map(|definition| {
                let mut vals = Map::new();
                vals.insert("name".into(), json!(definition.name));
                vals.insert("field_description".into(), json!(definition.string));
                vals.insert("model".into(), json!(model.name));
                vals.insert("model_id".into(), json!(model_id));
                vals.insert("ttype".into(), json!(definition.ftype.name()));
                vals
            })
            .collect();
        if let Err(error) = database.create(env, "ir.model.fields", &rows) {
            tracing::error!(%error, model = %name, "could not register the model's fields");
        }
    }
}

/// Whether any active rule could fire (the module is installed and has rules).
pub(crate) fn has_rules(database: &Database) -> bool {
    database.count(AUTOMATION_MODEL) > 0
}

/// One webhook to send before the transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingWebhook {
    pub url: String,
    /// The body exactly as Odoo serialises it.
    pub body: String,
}

/// A webhook the simulator sent, and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct SentWebhook {
    pub url: String,
    pub body: String,
    /// The answer's status, or why there was none (`timeout`, `error: …`).
    pub outcome: String,
    /// On the simulator's clock, microseconds since the epoch.
    pub sent_at_micros: i64,
}

struct Rule {
    id: i64,
    model: String,
    trigger: String,
    pre_domain: Option<Domain>,
    domain: Option<Domain>,
    actions: Vec<i64>,
}

fn text(database: &Database, model: &str, id: i64, field: &str) -> Option<String> {
    match database.value_by_name(model, id, field) {
        Val::Str(text) if !text.is_empty() => Some(text),
        _ => None,
    }
}

fn rules(database: &Database) -> Vec<Rule> {
    let Ok(table) = database.table(AUTOMATION_MODEL) else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for id in table.rows.keys().copied() {
        if !matches!(
            database.value_by_name(AUTOMATION_MODEL, id, "active"),
            Val::Bool(true)
        ) {
            continue;
        }
        let Val::Ref(model_id) = database.value_by_name(AUTOMATION_MODEL, id, "model_id") else {
            continue;
        };
        let Some(model) = text(database, "ir.model", model_id, "model") else {
            continue;
        };
        let domain_of = |key: &str| {
            text(database, AUTOMATION_MODEL, id, key).map(|literal| {
                let parsed = parse_python_domain(&literal)
                    .and_then(|value| Domain::from_json(&value).map_err(|error| error.0));
                parsed.unwrap_or_else(|error| {
                    tracing::warn!(rule = id, %error, "the automation rule's domain cannot be read; it never fires");
                    field("id").eq(0)
                })
            })
        };
        rules.push(Rule {
            id,
            trigger: text(database, AUTOMATION_MODEL, id, "trigger").unwrap_or_default(),
            pre_domain: domain_of("filter_pre_domain"),
            domain: domain_of("filter_domain"),
            actions: database
                .value_by_name(AUTOMATION_MODEL, id, "action_server_ids")
                .as_refs()
                .to_vec(),
            model,
        });
    }
    rules
}

fn matching(
    database: &Database,
    env: &Env,
    model: &str,
    ids: &[i64],
    domain: &Option<Domain>,
) -> Vec<i64> {
    if ids.is_empty() {
        return Vec::new();
    }
    let Some(domain) = domain else {
        return ids.to_vec();
    };
    let admin = Env::new(crate::orm::ADMIN_UID, env.now);
    let restricted = domain.clone().and(field("id").is_in(ids.iter().copied()));
    database
        .search(&admin, model, &restricted, 0, None, None)
        .unwrap_or_default()
}

/// The webhooks a transaction stamped `env.now` calls for, comparing the database `before`
/// it with the database `after` it (not committed yet).
pub(crate) fn fired(before: &Database, after: &Database, env: &Env) -> Vec<OutgoingWebhook> {
    let mut out = Vec::new();
    for rule in rules(after) {
        if !WRITE_TRIGGERS.contains(&rule.trigger.as_str()) {
            continue;
        }
        let Ok(table) = after.table(&rule.model) else {
            continue;
        };
        let touched: Vec<i64> = table
            .by_write_date
            .range((env.now, i64::MIN)..=(env.now, i64::MAX))
            .map(|(_, id)| *id)
            .collect();
        let (created, written): (Vec<i64>, Vec<i64>) = touched
            .into_iter()
            .partition(|id| !before.exists(&rule.model, *id));
        let mut candidates = Vec::new();
        if rule.trigger != "on_write" {
            candidates.extend(created);
        }
        if rule.trigger != "on_create" {
            candidates.extend(matching(
                before,
                env,
                &rule.model,
                &written,
                &rule.pre_domain,
            ));
        }
        candidates.sort_unstable();
        for record in matching(after, env, &rule.model, &candidates, &rule.domain) {
            for action in &rule.actions {
                if let Some(webhook) = webhook_of(after, env, *action, &rule.model, record) {
                    out.push(webhook);
                }
            }
        }
        tracing::trace!(rule = rule.id, "automation rule evaluated");
    }
    out
}

fn webhook_of(
    database: &Database,
    env: &Env,
    action: i64,
    model: &str,
    record: i64,
) -> Option<OutgoingWebhook> {
    const ACTIONS: &str = "ir.actions.server";
    if text(database, ACTIONS, action, "state").as_deref() != Some("webhook") {
        return None;
    }
    let Some(url) = text(database, ACTIONS, action, "webhook_url") else {
        tracing::warn!(
            action,
            "a webhook action without a URL: Odoo raises a UserError here"
        );
        return None;
    };
    // Odoo 18 computes a webhook action's name from its type, whatever name it was given.
    let name = "Send Webhook Notification";
    let mut vals: BTreeMap<String, Value> = BTreeMap::new();
    vals.insert("_model".into(), json!(model));
    vals.insert("_id".into(), json!(record));
    vals.insert("_action".into(), json!(format!("{name}(#{action})")));
    let field_ids = database
        .value_by_name(ACTIONS, action, "webhook_field_ids")
        .as_refs()
        .to_vec();
    let names: Vec<String> = field_ids
        .iter()
        .filter_map(|id| text(database, "ir.model.fields", *id, "name"))
        .collect();
    if !names.is_empty() {
        let admin = Env::new(crate::orm::ADMIN_UID, env.now);
        let read = database.read(&admin, model, &[record], &names).ok()?;
        let definition = database.model(model).ok()?;
        if let Some(Value::Object(row)) = read.into_iter().next() {
            for (key, value) in row {
                let raw = match definition.get(&key).map(|field| &field.ftype) {
                    // `read(load=None)`: a many2one is its id alone.
                    Some(FieldType::Many2one { .. }) => match value {
                        Value::Array(pair) => pair.first().cloned().unwrap_or(Value::Bool(false)),
                        other => other,
                    },
                    // `default=str` on a datetime: `2026-12-07 03:34:01.269912`.
                    Some(FieldType::Datetime) => {
                        match database.value_by_name(model, record, &key) {
                            Val::DateTime(micros) => json!(python_datetime(micros)),
                            _ => value,
                        }
                    }
                    _ => value,
                };
                vals.insert(key, raw);
            }
        }
    }
    Some(OutgoingWebhook {
        url,
        body: python_json(&vals),
    })
}

/// `str(datetime)`: microseconds only when there are some.
fn python_datetime(micros: i64) -> String {
    let Ok(at) = jiff::Timestamp::from_microsecond(micros) else {
        return String::new();
    };
    let civil = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let fraction = micros.rem_euclid(1_000_000);
    let whole = civil.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if fraction == 0 {
        whole
    } else {
        format!("{whole}.{fraction:06}")
    }
}

/// `json.dumps(vals, sort_keys=True)`: `", "` and `": "` separators, keys sorted.
fn python_json(vals: &BTreeMap<String, Value>) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (index, key) in keys.into_iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push_str(": ");
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let object: Map<String, Value> = vals.clone().into_iter().collect();
    let mut out = String::new();
    write(&Value::Object(object), &mut out);
    out
}

/// Sends the webhooks one after the other, as Odoo runs the actions, each waiting
/// [`WEBHOOK_TIMEOUT`] at most; failures are logged, never raised.
pub(crate) async fn send(
    client: &reqwest::Client,
    webhooks: Vec<OutgoingWebhook>,
    now_micros: impl Fn() -> i64,
) -> Vec<SentWebhook> {
    let mut sent = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let sent_at_micros = now_micros();
        let outcome = match client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .body(webhook.body.clone())
            .timeout(WEBHOOK_TIMEOUT)
            .send()
            .await
        {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) if error.is_timeout() => {
                tracing::warn!(url = %webhook.url, "Webhook call timed out after 1s - it may or may not have failed.");
                "timeout".to_owned()
            }
            Err(error) => {
                tracing::warn!(url = %webhook.url, %error, "Webhook call failed");
                format!("error: {error}")
            }
        };
        sent.push(SentWebhook {
            url: webhook.url,
            body: webhook.body,
            outcome,
            sent_at_micros,
        });
    }
    sent
}

/// A domain as Odoo keeps it in a char field, a Python literal
/// (`[('state', 'in', ['sale', 'cancel'])]`), as JSON: tuples become lists, `True`,
/// `False` and `None` their JSON names.
pub fn parse_python_domain(literal: &str) -> Result<Value, String> {
    let mut parser = Literal {
        chars: literal.chars().collect(),
        at: 0,
    };
    let value = parser.value()?;
    parser.blank();
    if parser.at != parser.chars.len() {
        return Err(format!("unexpected text after the domain: {literal:?}"));
    }
    Ok(value)
}

struct Literal {
    chars: Vec<char>,
    at: usize,
}

impl Literal {
    fn blank(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.blank();
        match self.chars.get(self.at).copied() {
            Some(open @ ('[' | '(')) => {
                let close = if open == '[' { ']' } else { ')' };
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.blank();
                    if self.chars.get(self.at) == Some(&close) {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.blank();
                    match self.chars.get(self.at) {
                        Some(',') => self.at += 1,
                        Some(c) if *c == close => {}
                        _ => return Err(format!("expected ',' or '{close}' at {}", self.at)),
                    }
                }
            }
            Some(quote @ ('\'' | '"')) => {
                self.at += 1;
                let mut text = String::new();
                loop {
                    match self.chars.get(self.at).copied() {
                        None => return Err("unterminated string".to_owned()),
                        Some('\\') => {
                            let escaped =
                                self.chars.get(self.at + 1).copied().ok_or("bad escape")?;
                            text.push(escaped);
                            self.at += 2;
                        }
                        Some(c) if c == quote => {
                            self.at += 1;
                            return Ok(Value::String(text));
                        }
                        Some(c) => {
                            text.push(c);
                            self.at += 1;
                        }
                    }
                }
            }
            Some(_) => {
                let start = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+'))
                {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                match word.as_str() {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    "" => Err(format!("unexpected character at {start}")),
                    number => serde_json::from_str::<Value>(number)
                        .ok()
                        .filter(Value::is_number)
                        .ok_or_else(|| {
                            format!(
                                "{number:?} is not a literal (only literal domains are simulated)"
                            )
                        }),
                }
            }
            None => Err("the domain is empty".to_owned()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn python_domains_read_as_json() {
        assert_eq!(
            parse_python_domain(
                "[('state', 'in', ['sale', 'cancel']), (\"locked\", '=', False), ('id', '>', 3)]"
            )
            .unwrap(),
            json!([
                ["state", "in", ["sale", "cancel"]],
                ["locked", "=", false],
                ["id", ">", 3]
            ])
        );
        assert_eq!(parse_python_domain("[]").unwrap(), json!([]));
        assert!(parse_python_domain("[('a', '=', uid)]").is_err());
        assert!(parse_python_domain("[('a', '=', 'x')").is_err());
    }

    #[test]
    fn bodies_are_serialised_as_python_does() {
        let mut vals = BTreeMap::new();
        vals.insert("_model".to_owned(), json!("sale.order"));
        vals.insert("_id".to_owned(), json!(1));
        vals.insert("name".to_owned(), json!("S00001"));
        assert_eq!(
            python_json(&vals),
            r#"{"_id": 1, "_model": "sale.order", "name": "S00001"}"#
        );
        assert_eq!(
            python_datetime(1_796_614_441_269_912),
            "2026-12-07 03:34:01.269912"
        );
        assert_eq!(
            python_datetime(1_796_614_441_000_000),
            "2026-12-07 03:34:01"
        );
    }
}
