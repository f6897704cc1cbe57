//! Odoo search domains: a typed tree that serialises to (and parses from) Odoo's
//! prefix notation — `["&", ("a", "=", 1), "|", ("b", "!=", false), ("c", "in", [1, 2])]`.
//!
//! ```
//! use odoo_rpc::domain::{Domain, field};
//! let d = field("state").is_in(["sale", "done"]) & field("write_date").gt("2024-01-01 00:00:00");
//! assert_eq!(
//!     d.to_json().to_string(),
//!     r#"["&",["state","in",["sale","done"]],["write_date",">","2024-01-01 00:00:00"]]"#
//! );
//! ```

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// Every comparison operator Odoo's `expression.py` accepts in a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `=?`: true when the value is `false`/`None`, otherwise `=`.
    EqOrUnset,
    In,
    NotIn,
    Like,
    NotLike,
    ILike,
    NotILike,
    /// `=like`: SQL `LIKE` with the pattern as given (`%`, `_` wildcards).
    EqLike,
    /// `=ilike`: case-insensitive `=like`.
    EqILike,
    ChildOf,
    ParentOf,
    Any,
    NotAny,
}

impl Operator {
    pub const ALL: [Operator; 19] = [
        Operator::Eq,
        Operator::NotEq,
        Operator::Gt,
        Operator::Gte,
        Operator::Lt,
        Operator::Lte,
        Operator::EqOrUnset,
        Operator::In,
        Operator::NotIn,
        Operator::Like,
        Operator::NotLike,
        Operator::ILike,
        Operator::NotILike,
        Operator::EqLike,
        Operator::EqILike,
        Operator::ChildOf,
        Operator::ParentOf,
        Operator::Any,
        Operator::NotAny,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::NotEq => "!=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::EqOrUnset => "=?",
            Operator::In => "in",
            Operator::NotIn => "not in",
            Operator::Like => "like",
            Operator::NotLike => "not like",
            Operator::ILike => "ilike",
            Operator::NotILike => "not ilike",
            Operator::EqLike => "=like",
            Operator::EqILike => "=ilike",
            Operator::ChildOf => "child_of",
            Operator::ParentOf => "parent_of",
            Operator::Any => "any",
            Operator::NotAny => "not any",
        }
    }

    /// Parses an operator as Odoo does: case-insensitively, `<>` and `==` as aliases.
    pub fn parse(text: &str) -> Option<Operator> {
        let lowered = text.to_ascii_lowercase();
        let normalized = match lowered.as_str() {
            "<>" => "!=",
            "==" => "=",
            other => other,
        };
        Operator::ALL
            .into_iter()
            .find(|op| op.as_str() == normalized)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side of a leaf: a JSON value, or a sub-domain for `any` / `not any`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(Value),
    Domain(Box<Domain>),
}

/// One `(field, operator, value)` triple. `field` may be a dotted path (`partner_id.country_id.code`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    pub operand: Operand,
}

/// A domain as a tree. `And(vec![])` is the empty domain (matches everything).
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Odoo's `TRUE_LEAF` `(1, '=', 1)`.
    True,
    /// Odoo's `FALSE_LEAF` `(0, '=', 1)`.
    False,
    Leaf(Condition),
    And(Vec<Domain>),
    Or(Vec<Domain>),
    Not(Box<Domain>),
}

impl Default for Domain {
    fn default() -> Self {
        Domain::And(Vec::new())
    }
}

/// Starts a leaf on `name` (a field or a dotted path).
pub fn field(name: impl Into<String>) -> FieldRef {
    FieldRef(name.into())
}

/// A field name waiting for its operator; see [`field`].
#[derive(Debug, Clone)]
pub struct FieldRef(String);

macro_rules! value_ops {
    ($($method:ident => $op:ident),* $(,)?) => {
        $(
            pub fn $method(self, value: impl Into<Value>) -> Domain {
                self.op(Operator::$op, value)
            }
        )*
    };
}

impl FieldRef {
    /// A leaf with any operator and a JSON value.
    pub fn op(self, operator: Operator, value: impl Into<Value>) -> Domain {
        Domain::Leaf(Condition {
            field: self.0,
            operator,
            operand: Operand::Value(value.into()),
        })
    }

    value_ops! {
        eq => Eq, ne => NotEq, gt => Gt, gte => Gte, lt => Lt, lte => Lte,
        eq_or_unset => EqOrUnset, like => Like, not_like => NotLike, ilike => ILike,
        not_ilike => NotILike, eq_like => EqLike, eq_ilike => EqILike,
        child_of => ChildOf, parent_of => ParentOf,
    }

    /// `(field, '=', False)`: the field is empty.
    pub fn is_unset(self) -> Domain {
        self.op(Operator::Eq, false)
    }

    /// `(field, '!=', False)`: the field is set.
    pub fn is_set(self) -> Domain {
        self.op(Operator::NotEq, false)
    }

    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Domain {
        let list: Vec<Value> = values.into_iter().map(Into::into).collect();
        self.op(Operator::In, Value::Array(list))
    }

    pub fn not_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Domain {
        let list: Vec<Value> = values.into_iter().map(Into::into).collect();
        self.op(Operator::NotIn, Value::Array(list))
    }

    /// `(relational_field, 'any', sub_domain)`.
    pub fn any(self, sub_domain: Domain) -> Domain {
        Domain::Leaf(Condition {
            field: self.0,
            operator: Operator::Any,
            operand: Operand::Domain(Box::new(sub_domain)),
        })
    }

    /// `(relational_field, 'not any', sub_domain)`.
    pub fn not_any(self, sub_domain: Domain) -> Domain {
        Domain::Leaf(Condition {
            field: self.0,
            operator: Operator::NotAny,
            operand: Operand::Domain(Box::new(sub_domain)),
        })
    }
}

impl Domain {
    /// The empty domain: matches every record.
    pub fn all() -> Domain {
        Domain::And(Vec::new())
    }

    pub fn and(self, other: Domain) -> Domain {
        match self {
            Domain::And(mut items) => {
                items.push(other);
                Domain::And(items)
            }
            first => Domain::And(vec![first, other]),
        }
    }

    pub fn or(self, other: Domain) -> Domain {
        match self {
            Domain::Or(mut items) => {
                items.push(other);
                Domain::Or(items)
            }
            first => Domain::Or(vec![first, other]),
        }
    }

    pub fn negate(self) -> Domain {
        Domain::Not(Box::new(self))
    }

    /// Serialises to Odoo's prefix notation.
    pub fn to_json(&self) -> Value {
        let mut out = Vec::new();
        self.write_prefix(&mut out);
        Value::Array(out)
    }

    fn write_prefix(&self, out: &mut Vec<Value>) {
        match self {
            Domain::True => out.push(serde_json::json!([1, "=", 1])),
            Domain::False => out.push(serde_json::json!([0, "=", 1])),
            Domain::Leaf(condition) => {
                let operand = match &condition.operand {
                    Operand::Value(value) => value.clone(),
                    Operand::Domain(sub) => sub.to_json(),
                };
                out.push(Value::Array(vec![
                    Value::String(condition.field.clone()),
                    Value::String(condition.operator.as_str().to_owned()),
                    operand,
                ]));
            }
            Domain::And(items) | Domain::Or(items) if items.is_empty() => {
                // An empty AND is TRUE, an empty OR is FALSE; an empty top-level list is
                // only valid for AND, so spell both as leaves when nested.
                let leaf = if matches!(self, Domain::And(_)) {
                    Domain::True
                } else {
                    Domain::False
                };
                leaf.write_prefix(out);
            }
            Domain::And(items) | Domain::Or(items) => {
                let connector = if matches!(self, Domain::And(_)) {
                    "&"
                } else {
                    "|"
                };
                for _ in 1..items.len() {
                    out.push(Value::String(connector.to_owned()));
                }
                for item in items {
                    item.write_prefix(out);
                }
            }
            Domain::Not(inner) => {
                out.push(Value::String("!".to_owned()));
                inner.write_prefix(out);
            }
        }
    }

    /// Parses Odoo's prefix notation, with Odoo's implicit AND between top-level terms.
    pub fn from_json(value: &Value) -> Result<Domain, DomainError> {
        let items = value
            .as_array()
            .ok_or_else(|| DomainError(format!("a domain must be a list, got {value}")))?;
        if items.is_empty() {
            return Ok(Domain::all());
        }
        let mut position = 0;
        let mut terms = Vec::new();
        while position < items.len() {
            terms.push(parse_term(items, &mut position)?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or_default()
        } else {
            Domain::And(terms)
        })
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl std::ops::BitAnd for Domain {
    type Output = Domain;
    fn bitand(self, rhs: Domain) -> Domain {
        self.and(rhs)
    }
}

impl std::ops::BitOr for Domain {
    type Output = Domain;
    fn bitor(self, rhs: Domain) -> Domain {
        self.or(rhs)
    }
}

impl std::ops::Not for Domain {
    type Output = Domain;
    fn not(self) -> Domain {
        self.negate()
    }
}

/// A domain that is not valid prefix notation; the text is Odoo-like ("Invalid leaf …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

fn parse_term(items: &[Value], position: &mut usize) -> Result<Domain, DomainError> {
    let item = items.get(*position).ok_or_else(|| {
        DomainError("Domain is not well formed: an operator lacks operands".into())
    })?;
    *position += 1;
    match item {
        Value::String(connector) if connector == "&" || connector == "|" => {
            let left = parse_term(items, position)?;
            let right = parse_term(items, position)?;
            let merge = |domain: Domain, into: &mut Vec<Domain>, is_and: bool| match domain {
                Domain::And(inner) if is_and => into.extend(inner),
                Domain::Or(inner) if !is_and => into.extend(inner),
                other => into.push(other),
            };
            let is_and = connector == "&";
            let mut children = Vec::new();
            merge(left, &mut children, is_and);
            merge(right, &mut children, is_and);
            Ok(if is_and {
                Domain::And(children)
            } else {
                Domain::Or(children)
            })
        }
        Value::String(connector) if connector == "!" => {
            Ok(Domain::Not(Box::new(parse_term(items, position)?)))
        }
        Value::Array(triple) => parse_leaf(triple, item),
        other => Err(DomainError(format!("Invalid leaf {other}"))),
    }
}

fn parse_leaf(triple: &[Value], original: &Value) -> Result<Domain, DomainError> {
    let [left, operator, right] = triple else {
        return Err(DomainError(format!("Invalid leaf {original}")));
    };
    let operator_text = operator
        .as_str()
        .ok_or_else(|| DomainError(format!("Invalid leaf {original}")))?;
    let operator = Operator::parse(operator_text).ok_or_else(|| {
        DomainError(format!(
            "Invalid leaf {original}: unknown operator {operator_text:?}"
        ))
    })?;
    match left {
        Value::Number(number) if operator == Operator::Eq && right.as_i64() == Some(1) => {
            match number.as_i64() {
                Some(1) => Ok(Domain::True),
                Some(0) => Ok(Domain::False),
                _ => Err(DomainError(format!("Invalid leaf {original}"))),
            }
        }
        Value::String(field_name) if !field_name.is_empty() => {
            let operand = match operator {
                Operator::Any | Operator::NotAny if right.is_array() => {
                    Operand::Domain(Box::new(Domain::from_json(right)?))
                }
                Operator::Any | Operator::NotAny => {
                    return Err(DomainError(format!(
                        "Invalid leaf {original}: '{operator}' takes a domain"
                    )));
                }
                _ => Operand::Value(right.clone()),
            };
            Ok(Domain::Leaf(Condition {
                field: field_name.clone(),
                operator,
                operand,
            }))
        }
        _ => Err(DomainError(format!("Invalid leaf {original}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn implicit_and_and_nested_connectors_parse() {
        let parsed = Domain::from_json(&json!([
            ["a", "=", 1],
            "|",
            ["b", "!=", false],
            "!",
            ["c", "in", [1, 2]]
        ]))
        .expect("valid domain");
        let expected = field("a").eq(1) & (field("b").is_set() | !field("c").is_in([1, 2]));
        assert_eq!(parsed, expected);
    }

    #[test]
    fn true_and_false_leaves_roundtrip() {
        let d = Domain::True | Domain::False;
        assert_eq!(d.to_json(), json!(["|", [1, "=", 1], [0, "=", 1]]));
        assert_eq!(Domain::from_json(&d.to_json()), Ok(d));
    }

    #[test]
    fn malformed_domains_are_rejected_with_odoo_like_text() {
        for bad in [
            json!(["&", ["a", "=", 1]]),
            json!([["a", "=="]]),
            json!([["a", "between", 1]]),
            json!("not a list"),
            json!([42]),
            json!([["a", "any", 3]]),
        ] {
            assert!(Domain::from_json(&bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn operator_aliases() {
        assert_eq!(Operator::parse("<>"), Some(Operator::NotEq));
        assert_eq!(Operator::parse("NOT ILIKE"), Some(Operator::NotILike));
        assert_eq!(Operator::parse("=?"), Some(Operator::EqOrUnset));
    }
}
