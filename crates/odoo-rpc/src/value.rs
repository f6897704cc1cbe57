//! Odoo's value conventions and typed access to them.
//!
//! - An empty field is `false` (not `null`), whatever its type — except booleans, where
//!   `false` is a real false.
//! - A many2one is `[id, display_name]`; the name is `false` when the user may not read it.
//! - A one2many/many2many is a list of ids.
//! - Datetimes are `"YYYY-MM-DD HH:MM:SS"` in UTC, dates `"YYYY-MM-DD"`.
//!
//! Untyped rows are [`Record`]s with checked accessors. Typed rows are plain serde structs:
//!
//! ```
//! use odoo_rpc::value::{odoo_option, x2many, Many2One, OdooDateTime};
//!
//! #[derive(serde::Deserialize)]
//! struct Order {
//!     id: i64,
//!     name: String,
//!     #[serde(default, with = "odoo_option")]
//!     partner_id: Option<Many2One>,
//!     #[serde(default, with = "odoo_option")]
//!     client_order_ref: Option<String>,
//!     #[serde(default, with = "x2many")]
//!     order_line: Vec<i64>,
//!     write_date: OdooDateTime,
//! }
//!
//! let order: Order = serde_json::from_str(r#"{"id": 7, "name": "S00007",
//!     "partner_id": [3, "Azure Interior"], "client_order_ref": false,
//!     "order_line": [11, 12], "write_date": "2024-05-01 08:30:00"}"#).unwrap();
//! assert_eq!(order.partner_id.unwrap().id, 3);
//! assert_eq!(order.client_order_ref, None);
//! ```

use jiff::Timestamp;
use jiff::civil::{self, Date};
use jiff::tz::Offset;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// A field that is absent from a record or does not hold what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The field was not among the fields read (or does not exist on this version).
    #[error("field {field:?} is not in the record (was it read?)")]
    Missing { field: String },
    #[error("field {field:?}: expected {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },
}

/// One row as Odoo sent it, with typed accessors that apply Odoo's conventions.
///
/// Each accessor returns `Ok(None)` for an empty field (`false`, or `null`), an error for a
/// field that was not read ([`FieldError::Missing`]) or holds another type
/// ([`FieldError::WrongType`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(Map<String, Value>);

impl Record {
    pub fn new(fields: Map<String, Value>) -> Record {
        Record(fields)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// The value as sent, if the field was read.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The record's id (always read by Odoo).
    pub fn id(&self) -> Result<i64, FieldError> {
        let value = self.present(self.0.get("id"), "id")?;
        value
            .as_i64()
            .ok_or_else(|| wrong_type("id", "an integer id", value))
    }

    pub fn str(&self, name: &str) -> Result<Option<&str>, FieldError> {
        self.typed(name, "a string", Value::as_str)
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, FieldError> {
        self.typed(name, "an integer", Value::as_i64)
    }

    /// Accepts integers too: JSON does not tell `4` from `4.0`, and Odoo sends either.
    pub fn f64(&self, name: &str) -> Result<Option<f64>, FieldError> {
        self.typed(name, "a number", Value::as_f64)
    }

    /// A boolean field. Unlike every other accessor, `false` is `Some(false)` here: for a
    /// boolean field Odoo's `false` is the value, not emptiness. `null` is `None`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FieldError> {
        match self.present(self.0.get(name), name)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            other => Err(wrong_type(name, "a boolean", other)),
        }
    }

    /// A many2one: `[id, name]` (also the bare id of `load=None` reads and the
    /// `{"id", "display_name"}` object of web reads).
    pub fn many2one(&self, name: &str) -> Result<Option<Many2One>, FieldError> {
        self.typed(name, "a many2one [id, name]", Many2One::from_value)
    }

    /// A one2many/many2many as its ids; `false` is an empty list.
    pub fn x2many(&self, name: &str) -> Result<Vec<i64>, FieldError> {
        let value = self.present(self.0.get(name), name)?;
        if is_empty_value(value) {
            return Ok(Vec::new());
        }
        let expected = "a list of ids";
        let items = value
            .as_array()
            .ok_or_else(|| wrong_type(name, expected, value))?;
        items
            .iter()
            .map(|item| {
                item.as_i64()
                    .ok_or_else(|| wrong_type(name, expected, value))
            })
            .collect()
    }

    /// A datetime field (`"YYYY-MM-DD HH:MM:SS"`, UTC).
    pub fn datetime(&self, name: &str) -> Result<Option<Timestamp>, FieldError> {
        self.typed(name, "a datetime \"YYYY-MM-DD HH:MM:SS\"", |v| {
            v.as_str().and_then(parse_datetime)
        })
    }

    /// A date field (`"YYYY-MM-DD"`).
    pub fn date(&self, name: &str) -> Result<Option<Date>, FieldError> {
        self.typed(name, "a date \"YYYY-MM-DD\"", |v| {
            v.as_str().and_then(parse_date)
        })
    }

    fn present<'a>(&self, value: Option<&'a Value>, name: &str) -> Result<&'a Value, FieldError> {
        value.ok_or_else(|| FieldError::Missing {
            field: name.to_owned(),
        })
    }

    fn typed<'a, T>(
        &'a self,
        name: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, FieldError> {
        let value = self.present(self.0.get(name), name)?;
        if is_empty_value(value) {
            return Ok(None);
        }
        convert(value)
            .map(Some)
            .ok_or_else(|| wrong_type(name, expected, value))
    }
}

impl From<Map<String, Value>> for Record {
    fn from(fields: Map<String, Value>) -> Self {
        Record(fields)
    }
}

fn is_empty_value(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false))
}

fn wrong_type(field: &str, expected: &'static str, found: &Value) -> FieldError {
    FieldError::WrongType {
        field: field.to_owned(),
        expected,
        found: describe(found),
    }
}

/// A short description of a value for error texts; long strings are cut.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("the string {head:?}…")
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(items) => format!("a list of {} items", items.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// A many2one value: the related record's id and display name. The name is `None` when Odoo
/// sent `false` (the user may not read the related record) or only the id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Many2One {
    pub id: i64,
    pub name: Option<String>,
}

impl Many2One {
    fn from_value(value: &Value) -> Option<Many2One> {
        match value {
            Value::Array(items) => match items.as_slice() {
                [id, name] => Some(Many2One {
                    id: id.as_i64()?,
                    name: match name {
                        Value::String(s) => Some(s.clone()),
                        Value::Bool(false) | Value::Null => None,
                        _ => return None,
                    },
                }),
                _ => None,
            },
            Value::Number(n) => n.as_i64().map(|id| Many2One { id, name: None }),
            Value::Object(map) => Some(Many2One {
                id: map.get("id")?.as_i64()?,
                name: map
                    .get("display_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            _ => None,
        }
    }
}

impl Serialize for Many2One {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.id)?;
        match &self.name {
            Some(name) => tuple.serialize_element(name)?,
            None => tuple.serialize_element(&false)?,
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Many2One {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Many2OneVisitor)
    }
}

struct Many2OneVisitor;

impl<'de> Visitor<'de> for Many2OneVisitor {
    type Value = Many2One;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a many2one [id, name]")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Many2One, A::Error> {
        let id: i64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let name: NameOrFalse = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Many2One { id, name: name.0 })
    }

    fn visit_i64<E: de::Error>(self, id: i64) -> Result<Many2One, E> {
        Ok(Many2One { id, name: None })
    }

    fn visit_u64<E: de::Error>(self, id: u64) -> Result<Many2One, E> {
        let id = i64::try_from(id).map_err(|_| E::custom("many2one id out of range"))?;
        Ok(Many2One { id, name: None })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Many2One, A::Error> {
        let mut id = None;
        let mut name = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "id" => id = Some(map.next_value::<i64>()?),
                "display_name" => name = map.next_value::<NameOrFalse>()?.0,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        Ok(Many2One { id, name })
    }
}

/// A display name, or `false` when it may not be read.
struct NameOrFalse(Option<String>);

impl<'de> Deserialize<'de> for NameOrFalse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        odoo_option::deserialize(deserializer).map(NameOrFalse)
    }
}

/// A datetime in Odoo's wire format (`"YYYY-MM-DD HH:MM:SS"`, UTC). Deserializing accepts a
/// fractional part; serializing writes whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OdooDateTime(pub Timestamp);

/// A date in Odoo's wire format (`"YYYY-MM-DD"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OdooDate(pub Date);

impl From<Timestamp> for OdooDateTime {
    fn from(timestamp: Timestamp) -> Self {
        OdooDateTime(timestamp)
    }
}

impl From<Date> for OdooDate {
    fn from(date: Date) -> Self {
        OdooDate(date)
    }
}

impl fmt::Display for OdooDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_datetime(f, self.0)
    }
}

impl fmt::Display for OdooDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_date(f, self.0)
    }
}

impl Serialize for OdooDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for OdooDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A visitor for the string formats; `parse` returns `None` on bad input.
struct WireStrVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
}

impl<T> Visitor<'_> for WireStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

impl<'de> Deserialize<'de> for OdooDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(WireStrVisitor {
            expecting: "a datetime \"YYYY-MM-DD HH:MM:SS\"",
            parse: |text| parse_datetime(text).map(OdooDateTime),
        })
    }
}

impl<'de> Deserialize<'de> for OdooDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(WireStrVisitor {
            expecting: "a date \"YYYY-MM-DD\"",
            parse: |text| parse_date(text).map(OdooDate),
        })
    }
}

/// Formats a timestamp as Odoo expects it in values and domains: `"YYYY-MM-DD HH:MM:SS"`,
/// UTC, whole seconds (truncated).
pub fn format_datetime(timestamp: Timestamp) -> String {
    OdooDateTime(timestamp).to_string()
}

/// Formats a date as `"YYYY-MM-DD"`.
pub fn format_date(date: Date) -> String {
    OdooDate(date).to_string()
}

fn write_datetime(f: &mut fmt::Formatter<'_>, timestamp: Timestamp) -> fmt::Result {
    let dt = Offset::UTC.to_datetime(timestamp);
    write_date(f, dt.date())?;
    write!(f, " {:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second())
}

fn write_date(f: &mut fmt::Formatter<'_>, date: Date) -> fmt::Result {
    write!(
        f,
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month(),
        date.day()
    )
}

/// Parses Odoo's datetime format (`"YYYY-MM-DD HH:MM:SS"`, an optional fraction of up to
/// nine digits, `T` accepted in place of the space) as UTC.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    // Hand-rolled rather than jiff's general parser: this runs once per datetime per row.
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b' ' | b'T') {
        return None;
    }
    let (year, month, day) = parse_date_bytes(&bytes[..10])?;
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let hour = digits(&bytes[11..13])?;
    let minute = digits(&bytes[14..16])?;
    let second = digits(&bytes[17..19])?;
    let nanos = match &bytes[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let value = digits(fraction)?;
            let scale = 10u32.pow(9 - u32::try_from(fraction.len()).ok()?);
            value.checked_mul(scale)?
        }
        _ => return None,
    };
    let dt = civil::DateTime::new(
        year,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    Offset::UTC.to_timestamp(dt).ok()
}

/// Parses Odoo's date format, `"YYYY-MM-DD"`.
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 {
        return None;
    }
    let (year, month, day) = parse_date_bytes(bytes)?;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

fn parse_date_bytes(bytes: &[u8]) -> Option<(i16, u32, u32)> {
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i16::try_from(digits(&bytes[..4])?).ok()?;
    Some((year, digits(&bytes[5..7])?, digits(&bytes[8..10])?))
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `#[serde(default, with = "odoo_rpc::value::odoo_option")]` for `Option<T>` fields:
/// Odoo's `false` (and `null`) become `None`, anything else is `T`'s to decode. Serializing
/// writes `None` back as `false`.
///
/// Do not use it on `Option<bool>`: there `false` is a value (use a plain `bool`).
pub mod odoo_option {
    use super::*;

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        // `deserialize_any` plus forwarding each primitive to `T` avoids buffering the value
        // in a `serde_json::Value` just to look for `false`.
        deserializer.deserialize_any(FalseAsNone(PhantomData))
    }

    pub fn serialize<S, T>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_bool(false),
        }
    }
}

/// `#[serde(default, with = "odoo_rpc::value::x2many")]` for `Vec<T>` fields (x2many ids, or
/// any list Odoo may send as `false` when empty).
pub mod x2many {
    use super::*;

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        let found: Option<Vec<T>> = odoo_option::deserialize(deserializer)?;
        Ok(found.unwrap_or_default())
    }

    pub fn serialize<S, T>(value: &[T], serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        serializer.collect_seq(value)
    }
}

/// Treats `false`/`null` as `None` and hands every other value to `T`.
struct FalseAsNone<T>(PhantomData<T>);

macro_rules! forward_primitive {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
                T::deserialize(value.into_deserializer()).map(Some)
            }
        )*
    };
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for FalseAsNone<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or false")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Option<T>, E> {
        if value {
            T::deserialize(value.into_deserializer()).map(Some)
        } else {
            Ok(None)
        }
    }

    forward_primitive! {
        visit_i64(i64), visit_u64(u64), visit_i128(i128), visit_u128(u128), visit_f64(f64),
        visit_char(char),
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<T>, E> {
        T::deserialize(value.into_deserializer()).map(Some)
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Option<T>, E> {
        T::deserialize(de::value::BorrowedStrDeserializer::new(value)).map(Some)
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Option<T>, E> {
        T::deserialize(value.into_deserializer()).map(Some)
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<Option<T>, E> {
        T::deserialize(value.into_deserializer()).map(Some)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<Option<T>, E> {
        T::deserialize(de::value::BorrowedBytesDeserializer::new(value)).map(Some)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(Some)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Record {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn false_is_empty_for_every_type_but_bool() {
        let r = record(json!({
            "id": 1, "name": false, "qty": false, "price": false, "partner_id": false,
            "line_ids": false, "date_order": false, "validity_date": false, "active": false,
            "note": null,
        }));
        assert_eq!(r.id(), Ok(1));
        assert_eq!(r.str("name"), Ok(None));
        assert_eq!(r.i64("qty"), Ok(None));
        assert_eq!(r.f64("price"), Ok(None));
        assert_eq!(r.many2one("partner_id"), Ok(None));
        assert_eq!(r.x2many("line_ids"), Ok(vec![]));
        assert_eq!(r.datetime("date_order"), Ok(None));
        assert_eq!(r.date("validity_date"), Ok(None));
        assert_eq!(r.bool("active"), Ok(Some(false)));
        assert_eq!(r.str("note"), Ok(None));
    }

    #[test]
    fn typed_values_are_read() {
        let r = record(json!({
            "id": 9, "name": "S00009", "qty": 3, "price": 12.5, "whole": 4,
            "partner_id": [3, "Azure Interior"], "user_id": [2, false],
            "line_ids": [4, 5], "date_order": "2024-02-29 23:59:58",
            "precise": "2024-02-29 23:59:58.123456", "validity_date": "2024-03-31",
            "active": true,
        }));
        assert_eq!(r.str("name"), Ok(Some("S00009")));
        assert_eq!(r.i64("qty"), Ok(Some(3)));
        assert_eq!(r.f64("price"), Ok(Some(12.5)));
        assert_eq!(r.f64("whole"), Ok(Some(4.0)));
        assert_eq!(
            r.many2one("partner_id"),
            Ok(Some(Many2One {
                id: 3,
                name: Some("Azure Interior".into())
            }))
        );
        assert_eq!(
            r.many2one("user_id"),
            Ok(Some(Many2One { id: 2, name: None }))
        );
        assert_eq!(r.x2many("line_ids"), Ok(vec![4, 5]));
        assert_eq!(
            r.datetime("date_order"),
            Ok(Some("2024-02-29T23:59:58Z".parse().unwrap()))
        );
        assert_eq!(
            r.datetime("precise"),
            Ok(Some("2024-02-29T23:59:58.123456Z".parse().unwrap()))
        );
        assert_eq!(
            r.date("validity_date"),
            Ok(Some(jiff::civil::date(2024, 3, 31)))
        );
        assert_eq!(r.bool("active"), Ok(Some(true)));
    }

    #[test]
    fn missing_and_mistyped_fields_are_errors() {
        let r = record(json!({"id": 1, "name": 42, "line_ids": [1, "x"], "d": "2024-13-01"}));
        assert_eq!(
            r.str("mobile"),
            Err(FieldError::Missing {
                field: "mobile".into()
            })
        );
        let err = r.str("name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "field \"name\": expected a string, found the number 42"
        );
        assert!(r.x2many("line_ids").is_err());
        assert!(r.date("d").is_err());
        assert!(r.bool("name").is_err());
        assert!(record(json!({"name": "x"})).id().is_err());
    }

    #[test]
    fn datetime_parsing_is_strict() {
        for bad in [
            "2024-01-01",
            "2024-01-01 24:00:00",
            "2024-02-30 00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01 00:00:00.",
            "2024-01-01 00:00:00.1234567890",
            "2024/01/01 00:00:00",
            "+2024-01-01 00:00:00",
            "2024-01-01 0a:00:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(
            parse_datetime("2024-01-01T10:00:00.5"),
            Some("2024-01-01T10:00:00.5Z".parse().unwrap())
        );
        for bad in ["2024-1-01", "2024-01-01 ", "20240101", "2023-02-29"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips_and_truncates_to_seconds() {
        let ts: Timestamp = "2024-05-01T08:30:00.999Z".parse().unwrap();
        assert_eq!(format_datetime(ts), "2024-05-01 08:30:00");
        assert_eq!(
            parse_datetime(&format_datetime(ts)),
            Some("2024-05-01T08:30:00Z".parse().unwrap())
        );
        assert_eq!(format_date(jiff::civil::date(7, 1, 2)), "0007-01-02");
        assert_eq!(
            serde_json::to_value(OdooDateTime(ts)).unwrap(),
            json!("2024-05-01 08:30:00")
        );
    }

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Row {
        id: i64,
        #[serde(default, with = "odoo_option")]
        partner_id: Option<Many2One>,
        #[serde(default, with = "odoo_option")]
        name: Option<String>,
        #[serde(default, with = "odoo_option")]
        amount: Option<f64>,
        #[serde(default, with = "odoo_option")]
        count: Option<u32>,
        #[serde(default, with = "odoo_option")]
        write_date: Option<OdooDateTime>,
        #[serde(default, with = "odoo_option")]
        validity_date: Option<OdooDate>,
        #[serde(default, with = "odoo_option")]
        extra: Option<Map<String, Value>>,
        #[serde(default, with = "x2many")]
        tag_ids: Vec<i64>,
        active: bool,
    }

    #[test]
    fn typed_rows_map_false_to_none() {
        let empty: Row = serde_json::from_str(
            r#"{"id": 1, "partner_id": false, "name": false, "amount": false, "count": null,
                "write_date": false, "validity_date": false, "extra": false,
                "tag_ids": false, "active": false}"#,
        )
        .unwrap();
        assert_eq!(
            empty,
            Row {
                id: 1,
                partner_id: None,
                name: None,
                amount: None,
                count: None,
                write_date: None,
                validity_date: None,
                extra: None,
                tag_ids: vec![],
                active: false,
            }
        );
        let absent: Row = serde_json::from_str(r#"{"id": 1, "active": true}"#).unwrap();
        assert_eq!(absent.partner_id, None);
        assert_eq!(absent.tag_ids, Vec::<i64>::new());

        let full: Row = serde_json::from_str(
            r#"{"id": 2, "partner_id": [7, "Deco \"Addict\""], "name": "caf\u00e9",
                "amount": 3, "count": 4, "write_date": "2024-05-01 08:30:00",
                "validity_date": "2024-06-01", "extra": {"a": [1, {"b": false}]},
                "tag_ids": [1, 2], "active": true}"#,
        )
        .unwrap();
        assert_eq!(
            full.partner_id,
            Some(Many2One {
                id: 7,
                name: Some("Deco \"Addict\"".into())
            })
        );
        assert_eq!(full.name.as_deref(), Some("café"));
        assert_eq!(full.amount, Some(3.0));
        assert_eq!(full.count, Some(4));
        assert_eq!(
            full.validity_date,
            Some(OdooDate(jiff::civil::date(2024, 6, 1)))
        );
        assert_eq!(full.extra.unwrap()["a"], json!([1, {"b": false}]));
        assert_eq!(full.tag_ids, vec![1, 2]);

        let back = serde_json::to_value(&empty).unwrap();
        assert_eq!(back["partner_id"], json!(false));
        assert_eq!(back["tag_ids"], json!([]));
    }

    #[test]
    fn typed_rows_report_wrong_types() {
        let err =
            serde_json::from_str::<Row>(r#"{"id": 1, "active": true, "count": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        let err =
            serde_json::from_str::<Row>(r#"{"id": 1, "active": true, "write_date": "yesterday"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("YYYY-MM-DD HH:MM:SS"), "{err}");
        assert!(
            serde_json::from_str::<Row>(r#"{"id": 1, "active": true, "partner_id": [1]}"#).is_err()
        );
    }

    #[test]
    fn many2one_shapes() {
        let parse = |text: &str| serde_json::from_str::<Many2One>(text);
        assert_eq!(parse("[3, false]").unwrap(), Many2One { id: 3, name: None });
        assert_eq!(parse("5").unwrap(), Many2One { id: 5, name: None });
        assert_eq!(
            parse(r#"{"id": 6, "display_name": "Six"}"#).unwrap(),
            Many2One {
                id: 6,
                name: Some("Six".into())
            }
        );
        assert!(parse("[3, \"a\", 4]").is_err());
        assert!(parse("false").is_err());
        assert_eq!(
            serde_json::to_value(Many2One { id: 3, name: None }).unwrap(),
            json!([3, false])
        );
    }
}
