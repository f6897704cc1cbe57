//! What a service's answer may do to Odoo: pass its JSON Schema first (a `schema_error`
//! otherwise, and nothing is written), then give the values of the whitelisted fields only,
//! each read through its JSON Pointer. Whatever else the answer holds never reaches Odoo.

use super::config::Writeback;
use crate::mirror::write_canonical;
use serde_json::{Map, Value};
use std::fmt;

/// An RFC 6901 JSON Pointer into the answer; `""` is the whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    pub fn parse(text: &str) -> Result<Pointer, String> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(format!(
                "{text:?} is not a JSON Pointer: write \"/{text}\", or \"\" for the whole response"
            ));
        }
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "{text:?} is not a JSON Pointer: `~` must be followed by 0 (for ~) or 1 (for /)"
                ));
            }
        }
        Ok(Pointer(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_whole(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Compiles a response schema (any draft the schema names, 2020-12 by default). References
/// to other documents are not fetched: a schema must stand alone.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::meta::validate(schema).map_err(|error| error.to_string())?;
    jsonschema::validator_for(schema).map_err(|error| error.to_string())
}

/// Why an answer was not written back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The answer does not pass the job's response schema, or lacks a value a writeback
    /// points to.
    #[error("the response does not match the job's response_schema: {0}")]
    Schema(String),
}

/// The most schema violations quoted in one error.
const MAX_VIOLATIONS: usize = 3;

/// Checks `answer` against `validator`: the violations, with where they are, when it fails.
pub fn check(validator: &jsonschema::Validator, answer: &Value) -> Result<(), AnswerError> {
    let violations: Vec<String> = validator
        .iter_errors(answer)
        .take(MAX_VIOLATIONS + 1)
        .map(|error| {
            let at = error.instance_path().to_string();
            if at.is_empty() {
                error.to_string()
            } else {
                format!("{error} (at {at})")
            }
        })
        .collect();
    if violations.is_empty() {
        return Ok(());
    }
    let mut text = violations
        .iter()
        .take(MAX_VIOLATIONS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > MAX_VIOLATIONS {
        text.push_str("; …");
    }
    Err(AnswerError::Schema(text))
}

/// The values to write: one per whitelisted field, read through its pointer. A string is
/// written as it is, a number or boolean as it is, `null` as Odoo's `false`, an object or
/// array (and the whole answer) as its canonical JSON text.
pub fn writeback_values(
    writeback: &[Writeback],
    answer: &Value,
) -> Result<Map<String, Value>, AnswerError> {
    let mut values = Map::with_capacity(writeback.len());
    for entry in writeback {
        let value = answer.pointer(entry.pointer.as_str()).ok_or_else(|| {
            AnswerError::Schema(format!(
                "no value at {} for the writeback of {}",
                entry.pointer, entry.field
            ))
        })?;
        let written = match value {
            Value::Null => Value::Bool(false),
            Value::String(_) | Value::Number(_) | Value::Bool(_) => value.clone(),
            Value::Array(_) | Value::Object(_) => Value::String(canonical_text(value)),
        };
        values.insert(entry.field.clone(), written);
    }
    Ok(values)
}

fn canonical_text(value: &Value) -> String {
    let mut bytes = Vec::new();
    write_canonical(value, &mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn writeback(pairs: &[(&str, &str)]) -> Vec<Writeback> {
        pairs
            .iter()
            .map(|(field, pointer)| Writeback {
                field: (*field).to_owned(),
                pointer: Pointer::parse(pointer).unwrap(),
            })
            .collect()
    }

    #[test]
    fn pointers_are_checked() {
        assert!(Pointer::parse("").unwrap().is_whole());
        assert_eq!(Pointer::parse("/a~1b/0").unwrap().as_str(), "/a~1b/0");
        assert!(
            Pointer::parse("status")
                .unwrap_err()
                .contains("\"/status\"")
        );
        assert!(Pointer::parse("/a~2").is_err());
        assert!(Pointer::parse("/a~").is_err());
    }

    #[test]
    fn only_whitelisted_fields_are_written() {
        let answer = json!({
            "status": "matched",
            "ranked_buyers": [{"id": 2, "score": 0.9}],
            "expected_revenue": 1,
            "name": "overwritten?",
            "nothing": null,
        });
        let values = writeback_values(
            &writeback(&[
                ("x_match_status", "/status"),
                ("x_top", "/ranked_buyers/0/score"),
                ("x_buyers", "/ranked_buyers"),
                ("x_nothing", "/nothing"),
                ("x_match_response", ""),
            ]),
            &answer,
        )
        .unwrap();
        assert_eq!(
            Value::Object(values),
            json!({
                "x_match_status": "matched",
                "x_top": 0.9,
                "x_buyers": r#"[{"id":2,"score":0.9}]"#,
                "x_nothing": false,
                "x_match_response": r#"{"expected_revenue":1,"name":"overwritten?","nothing":null,"ranked_buyers":[{"id":2,"score":0.9}],"status":"matched"}"#,
            })
        );
        let missing = writeback_values(&writeback(&[("x_a", "/absent")]), &answer).unwrap_err();
        assert!(missing.to_string().contains("\"/absent\""), "{missing}");
    }

    #[test]
    fn answers_are_checked_against_the_schema() {
        let validator = compile(&json!({
            "type": "object",
            "required": ["ranked_buyers", "status"],
            "properties": {"ranked_buyers": {"type": "array"}, "status": {"type": "string"}}
        }))
        .unwrap();
        check(&validator, &json!({"ranked_buyers": [], "status": "ok"})).unwrap();
        let error = check(&validator, &json!({"ranked_buyers": "no", "status": 3})).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("/ranked_buyers") && text.contains("/status"),
            "{text}"
        );
        assert!(check(&validator, &json!([])).is_err());
        assert!(compile(&json!({"type": "no-such-type"})).is_err());
    }
}
