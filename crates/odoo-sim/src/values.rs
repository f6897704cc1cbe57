//! Stored values and their conversions from and to Odoo's wire format.

use crate::error::{OdooException, OdooResult};
use crate::schema::{FieldDef, FieldType};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use serde_json::Value;
use std::cmp::Ordering;

/// A value as the database column would hold it. Datetimes keep microseconds, as PostgreSQL's
/// `timestamp without time zone` does; they are truncated only when read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Date(Date),
    /// Microseconds since the Unix epoch, UTC.
    DateTime(i64),
    Ref(i64),
    Refs(Vec<i64>),
}

impl Val {
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_ref_id(&self) -> Option<i64> {
        match self {
            Val::Ref(id) => Some(*id),
            _ => None,
        }
    }

    pub fn as_refs(&self) -> &[i64] {
        match self {
            Val::Refs(ids) => ids,
            _ => &[],
        }
    }

    pub fn as_f64(&self) -> f64 {
        match self {
            Val::Float(value) => *value,
            Val::Int(value) => *value as f64,
            _ => 0.0,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(value) => *value,
            Val::Int(value) => *value != 0,
            Val::Float(value) => *value != 0.0,
            Val::Str(text) => !text.is_empty(),
            Val::Refs(ids) => !ids.is_empty(),
            _ => true,
        }
    }

    /// PostgreSQL-like comparison of two non-null values of one column.
    pub fn compare(&self, other: &Val) -> Ordering {
        match (self, other) {
            (Val::Int(a), Val::Int(b))
            | (Val::DateTime(a), Val::DateTime(b))
            | (Val::Ref(a), Val::Ref(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::Str(a), Val::Str(b)) => a.cmp(b),
            (Val::Date(a), Val::Date(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

pub fn micros_to_timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Formats a stored datetime the way Odoo's `read` does: whole seconds, no zone.
pub fn format_datetime(micros: i64) -> String {
    let civil = micros_to_timestamp(micros)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    civil.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Formats with microseconds, for diagnostics and the simulator's own API.
pub fn format_datetime_precise(micros: i64) -> String {
    let civil = micros_to_timestamp(micros)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    civil.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]`, the ISO `T` form, or a bare date (midnight).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    let civil: DateTime = if trimmed.len() == 10 {
        trimmed
            .parse::<Date>()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight())
    } else {
        trimmed
            .replace('T', " ")
            .trim_end_matches('Z')
            .parse::<DateTime>()
            .ok()?
    };
    let timestamp = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(timestamp.as_microsecond())
}

pub fn parse_date(text: &str) -> Option<Date> {
    let trimmed = text.trim();
    trimmed.get(..10)?.parse::<Date>().ok()
}

/// Converts a JSON value written through the API into the column's value.
/// Relational existence is checked by the ORM, not here.
pub fn from_json(model: &str, field: &FieldDef, value: &Value) -> OdooResult<Val> {
    let wrong =
        || OdooException::value_error(format!("Wrong value for {model}.{}: {value}", field.name));
    if value.is_null() || (value == &Value::Bool(false) && field.ftype != FieldType::Boolean) {
        return Ok(match field.ftype {
            FieldType::One2many { .. } | FieldType::Many2many { .. } => Val::Refs(Vec::new()),
            _ => Val::Null,
        });
    }
    Ok(match &field.ftype {
        FieldType::Char | FieldType::Text => match value {
            Value::String(text) => Val::Str(text.clone()),
            Value::Number(number) => Val::Str(number.to_string()),
            _ => return Err(wrong()),
        },
        // Sanitized as Odoo does: plain text comes back as a paragraph, scripts never.
        FieldType::Html => match value {
            Value::String(text) => Val::Str(crate::html::sanitize(text)),
            Value::Number(number) => Val::Str(crate::html::sanitize(&number.to_string())),
            _ => return Err(wrong()),
        },
        FieldType::Integer => match value {
            Value::Number(number) => Val::Int(
                number
                    .as_i64()
                    .or_else(|| number.as_f64().map(|f| f as i64))
                    .ok_or_else(wrong)?,
            ),
            Value::Bool(true) => Val::Int(1),
            Value::String(text) => Val::Int(text.trim().parse().map_err(|_| wrong())?),
            _ => return Err(wrong()),
        },
        FieldType::Float | FieldType::Monetary => match value {
            Value::Number(number) => Val::Float(number.as_f64().ok_or_else(wrong)?),
            Value::String(text) => Val::Float(text.trim().parse().map_err(|_| wrong())?),
            _ => return Err(wrong()),
        },
        FieldType::Boolean => Val::Bool(match value {
            Value::Bool(flag) => *flag,
            Value::Number(number) => number.as_f64().is_some_and(|f| f != 0.0),
            Value::String(text) => !text.is_empty(),
            _ => return Err(wrong()),
        }),
        FieldType::Date => Val::Date(value.as_str().and_then(parse_date).ok_or_else(wrong)?),
        FieldType::Datetime => {
            Val::DateTime(value.as_str().and_then(parse_datetime).ok_or_else(wrong)?)
        }
        FieldType::Selection(options) => {
            let key = value.as_str().ok_or_else(wrong)?;
            if !options.iter().any(|(option, _)| option == key) {
                return Err(wrong());
            }
            Val::Str(key.to_owned())
        }
        FieldType::Many2one { .. } => match value {
            Value::Number(number) => Val::Ref(number.as_i64().ok_or_else(wrong)?),
            // Odoo accepts the `[id, name]` pair it returns.
            Value::Array(pair) => Val::Ref(pair.first().and_then(Value::as_i64).ok_or_else(wrong)?),
            _ => return Err(wrong()),
        },
        FieldType::One2many { .. } | FieldType::Many2many { .. } => return Err(wrong()),
    })
}
