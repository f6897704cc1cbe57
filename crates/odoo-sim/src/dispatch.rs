//! One model call, whichever transport carried it: `model.method(ids, **params)` run as
//! one transaction against the database.

use crate::error::{OdooException, OdooResult};
use crate::orm::{Database, Env};
use crate::workflow;
use odoo_rpc::domain::Domain;
use serde_json::{Map, Value, json};

/// A call with its arguments by name, as JSON-2 sends them and as JSON-RPC's positional
/// arguments are mapped onto Odoo's method signatures.
#[derive(Debug, Clone)]
pub struct ModelCall {
    pub model: String,
    pub method: String,
    pub ids: Option<Vec<i64>>,
    pub params: Map<String, Value>,
}

/// Methods decorated `@api.model` (no record ids) and their positional parameter names.
fn model_method_signature(method: &str) -> Option<&'static [&'static str]> {
    Some(match method {
        "search_read" => &["domain", "fields", "offset", "limit", "order"],
        "search" => &["domain", "offset", "limit", "order"],
        "search_count" => &["domain", "limit"],
        "fields_get" => &["allfields", "attributes"],
        "create" => &["vals_list"],
        "name_search" => &["name", "domain", "operator", "limit"],
        "check_access_rights" => &["operation", "raise_exception"],
        "context_get" | "default_get" => &[],
        _ => return None,
    })
}

/// Positional parameter names of record methods after the ids.
fn record_method_signature(method: &str) -> &'static [&'static str] {
    match method {
        "read" => &["fields", "load"],
        "write" => &["vals"],
        _ => &[],
    }
}

impl ModelCall {
    /// Builds a call from `execute_kw`'s `args` and `kwargs` the way `odoo.api.call_kw` does:
    /// model methods take everything as parameters, record methods take `args[0]` as ids.
    pub fn from_execute_kw(
        model: &str,
        method: &str,
        args: &[Value],
        kwargs: Map<String, Value>,
    ) -> OdooResult<ModelCall> {
        // `odoo.api.call_kw` answers a `create` with `result.id if isinstance(args[0], Mapping)
        // else result.ids`: values passed by keyword alone fail there, after the records are
        // made, and the transaction rolls back.
        if method == "create" && args.is_empty() {
            return Err(OdooException::new(
                "builtins.IndexError",
                "tuple index out of range",
            ));
        }
        let mut params = Map::new();
        let (ids, rest, names) = match model_method_signature(method) {
            Some(names) => (None, args, names),
            None => {
                let Some(first) = args.first() else {
                    return Err(OdooException::type_error(format!(
                        "{model}.{method}() missing 1 required positional argument: 'self'"
                    )));
                };
                let ids = match first {
                    Value::Array(items) => items
                        .iter()
                        .map(|id| id.as_i64().ok_or_else(|| bad_ids(first)))
                        .collect::<OdooResult<Vec<_>>>()?,
                    Value::Number(number) => vec![number.as_i64().ok_or_else(|| bad_ids(first))?],
                    Value::Bool(false) | Value::Null => Vec::new(),
                    other => return Err(bad_ids(other)),
                };
                (Some(ids), &args[1..], record_method_signature(method))
            }
        };
        if rest.len() > names.len() {
            return Err(OdooException::type_error(format!(
                "{method}() takes {} positional arguments but {} were given",
                names.len() + 1,
                rest.len() + 1
            )));
        }
        for (name, value) in names.iter().zip(rest) {
            params.insert((*name).to_owned(), value.clone());
        }
        for (key, value) in kwargs {
            params.insert(key, value);
        }
        Ok(ModelCall {
            model: model.to_owned(),
            method: method.to_owned(),
            ids,
            params,
        })
    }

    /// Builds a call from a JSON-2 body: named arguments, `ids` among them.
    pub fn from_json2(
        model: &str,
        method: &str,
        mut body: Map<String, Value>,
    ) -> OdooResult<ModelCall> {
        let ids = match body.remove("ids") {
            Some(value @ Value::Array(_)) => Some(
                value
                    .as_array()
                    .map(|items| items.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default(),
            ),
            Some(Value::Number(number)) => number.as_i64().map(|id| vec![id]),
            Some(other) if !other.is_null() => return Err(bad_ids(&other)),
            _ if model_method_signature(method).is_none() => Some(Vec::new()),
            _ => None,
        };
        Ok(ModelCall {
            model: model.to_owned(),
            method: method.to_owned(),
            ids,
            params: body,
        })
    }

    pub fn context(&self) -> Map<String, Value> {
        match self.params.get("context") {
            Some(Value::Object(context)) => context.clone(),
            _ => Map::new(),
        }
    }
}

fn bad_ids(value: &Value) -> OdooException {
    OdooException::type_error(format!("ids must be a list of integers, got {value}"))
}

fn param_usize(params: &Map<String, Value>, name: &str) -> OdooResult<Option<usize>> {
    match params.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Number(number)) => number.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            OdooException::value_error(format!(
                "{name} must be a non-negative integer, got {number}"
            ))
        }),
        Some(other) => Err(OdooException::type_error(format!(
            "{name} must be an integer, got {other}"
        ))),
    }
}

fn param_strings(params: &Map<String, Value>, name: &str) -> OdooResult<Vec<String>> {
    match params.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    OdooException::type_error(format!("{name} must be a list of strings"))
                })
            })
            .collect(),
        Some(Value::String(single)) => Ok(vec![single.clone()]),
        Some(other) => Err(OdooException::type_error(format!(
            "{name} must be a list of strings, got {other}"
        ))),
    }
}

fn param_domain(params: &Map<String, Value>) -> OdooResult<Domain> {
    match params.get("domain").or_else(|| params.get("args")) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Domain::all()),
        Some(value) => {
            Domain::from_json(value).map_err(|error| OdooException::value_error(error.0))
        }
    }
}

fn param_order(params: &Map<String, Value>) -> Option<String> {
    params
        .get("order")
        .and_then(Value::as_str)
        .filter(|order| !order.trim().is_empty())
        .map(str::to_owned)
}

fn vals_list(params: &Map<String, Value>) -> OdooResult<(Vec<Map<String, Value>>, bool)> {
    let bad = || OdooException::type_error("create() expects a dict or a list of dicts");
    match params.get("vals_list").or_else(|| params.get("vals")) {
        Some(Value::Object(single)) => Ok((vec![single.clone()], true)),
        Some(Value::Array(items)) => Ok((
            items
                .iter()
                .map(|item| item.as_object().cloned().ok_or_else(bad))
                .collect::<OdooResult<_>>()?,
            false,
        )),
        _ => Err(bad()),
    }
}

/// `search` with the call's `domain`, `offset`, `limit` and `order`.
fn search_ids(database: &Database, env: &Env, call: &ModelCall) -> OdooResult<Vec<i64>> {
    let params = &call.params;
    database.search(
        env,
        &call.model,
        &param_domain(params)?,
        param_usize(params, "offset")?.unwrap_or(0),
        param_usize(params, "limit")?,
        param_order(params).as_deref(),
    )
}

/// Runs one call. `env.now` is the transaction time every written record carries.
pub fn run(database: &mut Database, env: &Env, call: &ModelCall) -> OdooResult<Value> {
    if call.method.starts_with('_') {
        return Err(OdooException::access_error(format!(
            "Private methods (such as '{}') cannot be called remotely.",
            call.method
        )));
    }
    if let Some(answer) = crate::custom_fields::call(database, env, call) {
        return answer;
    }
    database.model(&call.model)?;
    let params = &call.params;
    let ids = call.ids.clone().unwrap_or_default();
    match call.method.as_str() {
        "search_read" => {
            let found = search_ids(database, env, call)?;
            Ok(Value::Array(database.read(
                env,
                &call.model,
                &found,
                &param_strings(params, "fields")?,
            )?))
        }
        "search" => {
            let found = search_ids(database, env, call)?;
            Ok(json!(found))
        }
        "search_count" => {
            let domain = param_domain(params)?;
            Ok(json!(database.search_count(
                env,
                &call.model,
                &domain,
                param_usize(params, "limit")?
            )?))
        }
        "read" => Ok(Value::Array(database.read(
            env,
            &call.model,
            &ids,
            &param_strings(params, "fields")?,
        )?)),
        "fields_get" => {
            let fields = param_strings(params, "allfields")?;
            Ok(database.fields_get(
                env,
                &call.model,
                &fields,
                &param_strings(params, "attributes")?,
            )?)
        }
        "create" => {
            let (list, single) = vals_list(params)?;
            let created = database.create(env, &call.model, &list)?;
            Ok(if single {
                json!(created.first())
            } else {
                json!(created)
            })
        }
        "write" => {
            let vals = params
                .get("vals")
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| OdooException::type_error("write() expects a dict of values"))?;
            database.write(env, &call.model, &ids, &vals)?;
            Ok(json!(true))
        }
        "unlink" => {
            database.unlink(env, &call.model, &ids)?;
            Ok(json!(true))
        }
        "name_search" => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut domain = param_domain(params)?;
            if !name.is_empty() {
                domain = domain.and(odoo_rpc::domain::field("display_name").ilike(name));
            }
            let limit = param_usize(params, "limit")?.or(Some(100));
            let found = database.search(env, &call.model, &domain, 0, limit, None)?;
            Ok(json!(
                found
                    .iter()
                    .map(|id| json!([id, database.display_name(&call.model, *id)]))
                    .collect::<Vec<_>>()
            ))
        }
        "check_access_rights" => {
            let model = database.model(&call.model)?;
            let mode = match params.get("operation").and_then(Value::as_str) {
                Some("read") => crate::orm::Mode::Read,
                _ => crate::orm::Mode::Write,
            };
            match database.check_access(env, &model, mode) {
                Ok(()) => Ok(json!(true)),
                Err(_) if params.get("raise_exception") == Some(&Value::Bool(false)) => {
                    Ok(json!(false))
                }
                Err(error) => Err(error),
            }
        }
        "context_get" if call.model == "res.users" => {
            Ok(json!({"lang": "en_US", "tz": "UTC", "uid": env.uid}))
        }
        method => workflow::call(database, env, &call.model, method, &ids).unwrap_or_else(|| {
            Err(OdooException::attribute_error(format!(
                "The method '{method}' does not exist on the model '{}'",
                call.model
            )))
        }),
    }
}
