//! Custom fields over the API, as Studio makes them: `ir.model.fields` `create` with a
//! `name` starting `x_`, the model's `model_id` (found with `ir.model` `search_read` on
//! `model`), a `ttype` and a `field_description`. The new field is then read and written like
//! any other, and `fields_get` lists it, as on a real Odoo 18.
//!
//! `ir.model` and `ir.model.fields` are the simulator's tables ([`crate::automation`]); a
//! `create` of `ir.model.fields` also adds the field to its model.

use crate::dispatch::ModelCall;
use crate::error::{OdooException, OdooResult};
use crate::orm::{ADMIN_UID, Database, Env};
use crate::schema::{FieldDef, FieldType};
use serde_json::{Map, Value, json};

const IR_MODEL: &str = "ir.model";
const IR_MODEL_FIELDS: &str = "ir.model.fields";

/// Takes `ir.model.fields` `create` calls; `None` for every other call (the `ir.model` and
/// `ir.model.fields` tables answer them as any model does).
pub(crate) fn call(
    database: &mut Database,
    env: &Env,
    call: &ModelCall,
) -> Option<OdooResult<Value>> {
    (call.model == IR_MODEL_FIELDS && call.method == "create" && database.model(IR_MODEL).is_ok())
        .then(|| create_fields(database, env, call))
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
        let (model, field) = field_of(database, env, vals)?;
        database.add_field(&model, field)?;
        let mut row = vals.clone();
        row.insert("model".into(), json!(model));
        ids.extend(database.create(env, IR_MODEL_FIELDS, &[row])?);
    }
    Ok(if single {
        json!(ids.first())
    } else {
        json!(ids)
    })
}

fn field_of(
    database: &Database,
    env: &Env,
    vals: &Map<String, Value>,
) -> OdooResult<(String, FieldDef)> {
    let text = |key: &str| vals.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("name")
        .ok_or_else(|| OdooException::validation_error("The field name is required"))?;
    if !name.starts_with("x_") {
        return Err(OdooException::validation_error(
            "Custom fields must have a name that starts with 'x_' !",
        ));
    }
    let model = match (vals.get("model_id").and_then(Value::as_i64), text("model")) {
        (Some(id), _) => database
            .read(env, IR_MODEL, &[id], &["model".to_owned()])?
            .first()
            .and_then(|row| row["model"].as_str())
            .map(str::to_owned)
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
