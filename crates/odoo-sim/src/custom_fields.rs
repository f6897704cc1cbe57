//! Custom fields over the API, as Studio makes them: `ir.model.fields` `create` with a
//! `name` starting `x_`, the model's `model_id` (found with `ir.model` `search_read` on
//! `model`), a `ttype` and a `field_description`. The new field is then read and written like
//! any other, and `fields_get` lists it, as on a real Odoo 18.
//!
//! Only what that takes is served: `ir.model` `search`/`search_read`/`read` (fields `id`,
//! `model`, `name`; domains on `model` or `id` with `=` or `in`) and `ir.model.fields`
//! `create`. An `ir.model` id is the model's position among the declared models, by name.

use crate::dispatch::ModelCall;
use crate::error::{OdooException, OdooResult};
use crate::orm::{ADMIN_UID, Database, Env};
use crate::schema::{FieldDef, FieldType};
use serde_json::{Map, Value, json};

const IR_MODEL: &str = "ir.model";
const IR_MODEL_FIELDS: &str = "ir.model.fields";

/// Whether calls to `model` are answered here.
pub(crate) fn serves(model: &str) -> bool {
    matches!(model, IR_MODEL | IR_MODEL_FIELDS)
}

/// Answers the call when it is one of these; `None` for every other call.
pub(crate) fn call(
    database: &mut Database,
    env: &Env,
    call: &ModelCall,
) -> Option<OdooResult<Value>> {
    match (call.model.as_str(), call.method.as_str()) {
        (IR_MODEL, "search_read" | "search" | "read") => Some(read_models(database, call)),
        (IR_MODEL_FIELDS, "create") => Some(create_fields(database, env, call)),
        (IR_MODEL | IR_MODEL_FIELDS, method) => Some(Err(OdooException::attribute_error(format!(
            "the simulator serves {} {method} only as far as custom fields need it",
            call.model
        )))),
        _ => None,
    }
}

fn models(database: &Database) -> Vec<(i64, String, String)> {
    database
        .model_names()
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
        .map(|(position, name)| {
            let description = database
                .model(&name)
                .map(|model| model.description.clone())
                .unwrap_or_default();
            (position as i64 + 1, name, description)
        })
        .collect()
}

/// The `[field, operator, value]` conditions of a domain on `ir.model`.
fn matches(domain: &Value, id: i64, model: &str) -> OdooResult<bool> {
    let unsupported = || {
        OdooException::value_error(format!(
            "the simulator's ir.model takes domains on `model` or `id` with = or in, not {domain}"
        ))
    };
    let Value::Array(conditions) = domain else {
        return Ok(true);
    };
    for condition in conditions {
        let Some([Value::String(field), Value::String(operator), value]) =
            condition.as_array().map(Vec::as_slice)
        else {
            return Err(unsupported());
        };
        let actual = match field.as_str() {
            "model" => json!(model),
            "id" => json!(id),
            _ => return Err(unsupported()),
        };
        let hit = match (operator.as_str(), value) {
            ("=", expected) => &actual == expected,
            ("in", Value::Array(options)) => options.contains(&actual),
            _ => return Err(unsupported()),
        };
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_models(database: &Database, call: &ModelCall) -> OdooResult<Value> {
    let domain = call.params.get("domain").cloned().unwrap_or(Value::Null);
    let wanted: Option<Vec<i64>> = call.ids.clone().filter(|_| call.method == "read");
    let mut found = Vec::new();
    for (id, model, name) in models(database) {
        let selected = match &wanted {
            Some(ids) => ids.contains(&id),
            None => matches(&domain, id, &model)?,
        };
        if selected {
            found.push((id, model, name));
        }
    }
    Ok(if call.method == "search" {
        json!(found.iter().map(|(id, _, _)| id).collect::<Vec<_>>())
    } else {
        Value::Array(
            found
                .into_iter()
                .map(|(id, model, name)| json!({"id": id, "model": model, "name": name}))
                .collect(),
        )
    })
}

fn create_fields(database: &mut Database, env: &Env, call: &ModelCall) -> OdooResult<Value> {
    if env.uid != ADMIN_UID {
        return Err(OdooException::access_error(
            "You are not allowed to create 'Fields' (ir.model.fields) records.",
        ));
    }
    let (list, single) = match call
        .params
        .get("vals_list")
        .or_else(|| call.params.get("vals"))
    {
        Some(Value::Object(vals)) => (vec![vals.clone()], true),
        Some(Value::Array(items)) => (
            items
                .iter()
                .map(|item| {
                    item.as_object().cloned().ok_or_else(|| {
                        OdooException::type_error("create() expects a dict or a list of dicts")
                    })
                })
                .collect::<OdooResult<Vec<_>>>()?,
            false,
        ),
        _ => {
            return Err(OdooException::type_error(
                "create() expects a dict or a list of dicts",
            ));
        }
    };
    let mut ids = Vec::with_capacity(list.len());
    for vals in &list {
        let (model, field) = field_of(database, vals)?;
        database.add_field(&model, field)?;
        ids.push(database.next_sequence(IR_MODEL_FIELDS) + 10_000);
    }
    Ok(if single {
        json!(ids.first())
    } else {
        json!(ids)
    })
}

fn field_of(database: &Database, vals: &Map<String, Value>) -> OdooResult<(String, FieldDef)> {
    let text = |key: &str| vals.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("name")
        .ok_or_else(|| OdooException::validation_error("The field name is required"))?;
    if !name.starts_with("x_") {
        return Err(OdooException::validation_error(
            "Custom fields must have a name that starts with 'x_' !",
        ));
    }
    let model = match (vals.get("model_id").and_then(Value::as_i64), text("model")) {
        (Some(id), _) => models(database)
            .into_iter()
            .find(|(model_id, _, _)| *model_id == id)
            .map(|(_, model, _)| model)
            .ok_or_else(|| {
                OdooException::missing_error(format!("ir.model({id},) does not exist"))
            })?,
        (None, Some(model)) => model,
        (None, None) => {
            return Err(OdooException::validation_error(
                "The field's model (model_id) is required",
            ));
        }
    };
    database.model(&model)?;
    let ftype = match text("ttype").as_deref() {
        Some("char") => FieldType::Char,
        Some("text") => FieldType::Text,
        Some("html") => FieldType::Html,
        Some("integer") => FieldType::Integer,
        Some("float") => FieldType::Float,
        Some("monetary") => FieldType::Monetary,
        Some("boolean") => FieldType::Boolean,
        Some("date") => FieldType::Date,
        Some("datetime") => FieldType::Datetime,
        Some("many2one") => FieldType::Many2one {
            comodel: text("relation").ok_or_else(|| {
                OdooException::validation_error("Many2one fields need a relation (comodel)")
            })?,
        },
        other => {
            return Err(OdooException::value_error(format!(
                "the simulator does not create custom fields of type {other:?}"
            )));
        }
    };
    let label = text("field_description").unwrap_or_else(|| name.clone());
    Ok((model, FieldDef::new(&name, &label, ftype)))
}
