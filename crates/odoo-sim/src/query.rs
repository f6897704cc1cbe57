//! Domains compiled against a model, and `order` clauses: the `WHERE` and `ORDER BY` of the
//! simulated ORM, following `odoo/osv/expression.py` and `odoo/models.py`.

use crate::error::{OdooException, OdooResult};
use crate::orm::{Database, Env, Row, Table};
use crate::schema::{FieldDef, FieldType, ModelDef};
use crate::values::{self, Val};
use odoo_rpc::domain::{Condition, Domain, Operand, Operator};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;

/// A domain resolved against a model: field positions known, operands parsed, and
/// relational sub-queries already run into sets of ids.
#[derive(Debug)]
pub enum Compiled {
    True,
    False,
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
    Leaf(Leaf),
}

#[derive(Debug)]
pub struct Leaf {
    field: FieldDef,
    /// Where the field's value sits in a row, looked up once here rather than by name for
    /// every row the domain is tested on.
    position: Option<usize>,
    test: Test,
}

impl Leaf {
    fn new(model: &ModelDef, field: FieldDef, test: Test) -> Leaf {
        Leaf {
            position: model.position(&field.name),
            field,
            test,
        }
    }
}

#[derive(Debug)]
enum Test {
    /// Scalar comparison; `None` operand means `false` was given.
    Compare(Operator, Option<Val>),
    In {
        values: Vec<Val>,
        with_null: bool,
        negate: bool,
    },
    Pattern {
        pattern: String,
        case_insensitive: bool,
        negate: bool,
    },
    /// The (relational or id) value is in / not in a set of ids computed beforehand.
    IdSet {
        ids: HashSet<i64>,
        negate: bool,
    },
    IsSet(bool),
}

impl Compiled {
    pub fn matches(&self, database: &Database, model: &ModelDef, id: i64, row: &Row) -> bool {
        match self {
            Compiled::True => true,
            Compiled::False => false,
            Compiled::And(items) => items
                .iter()
                .all(|item| item.matches(database, model, id, row)),
            Compiled::Or(items) => items
                .iter()
                .any(|item| item.matches(database, model, id, row)),
            Compiled::Not(inner) => !inner.matches(database, model, id, row),
            Compiled::Leaf(leaf) => {
                let stored;
                let value = if leaf.field.name == "id" {
                    stored = Val::Int(id);
                    &stored
                } else if leaf.field.compute.is_some() {
                    stored = database.value(model, id, &leaf.field);
                    &stored
                } else {
                    match leaf.position.and_then(|position| row.get(position)) {
                        Some(value) => value,
                        None => &Val::Null,
                    }
                };
                leaf.test.check(&leaf.field, value)
            }
        }
    }
}

fn is_unset(field: &FieldDef, value: &Val) -> bool {
    match value {
        Val::Null => true,
        Val::Refs(ids) => ids.is_empty(),
        Val::Str(text) => text.is_empty() && field.ftype.is_textual(),
        _ => false,
    }
}

impl Test {
    fn check(&self, field: &FieldDef, value: &Val) -> bool {
        let boolean = field.ftype == FieldType::Boolean;
        match self {
            Test::IsSet(want_set) => {
                if boolean {
                    // A NULL boolean is False for `=`/`!=` purposes, as in Odoo.
                    return matches!(value, Val::Bool(true)) == *want_set;
                }
                is_unset(field, value) != *want_set
            }
            Test::Compare(operator, operand) => {
                let Some(operand) = operand else {
                    return false;
                };
                if boolean {
                    let actual = matches!(value, Val::Bool(true));
                    let wanted = operand.truthy();
                    return match operator {
                        Operator::Eq => actual == wanted,
                        Operator::NotEq => actual != wanted,
                        _ => false,
                    };
                }
                if let Val::Refs(ids) = value {
                    let wanted = operand.as_ref_id().or(match operand {
                        Val::Int(id) => Some(*id),
                        _ => None,
                    });
                    let contains = wanted.is_some_and(|wanted| ids.contains(&wanted));
                    return match operator {
                        Operator::Eq => contains,
                        Operator::NotEq => !contains,
                        _ => false,
                    };
                }
                if value.is_null() {
                    // `!=` keeps rows where the column is NULL (Odoo adds `OR col IS NULL`).
                    return *operator == Operator::NotEq;
                }
                let ordering = value.compare(operand);
                match operator {
                    Operator::Eq => ordering == Ordering::Equal,
                    Operator::NotEq => ordering != Ordering::Equal,
                    Operator::Gt => ordering == Ordering::Greater,
                    Operator::Gte => ordering != Ordering::Less,
                    Operator::Lt => ordering == Ordering::Less,
                    Operator::Lte => ordering != Ordering::Greater,
                    _ => false,
                }
            }
            Test::In {
                values,
                with_null,
                negate,
            } => {
                // Operands of a relational field are `Val::Ref`s: compare ids as ids
                // (`compare` would order a `Ref` against an `Int` as two numbers, 0 and id).
                let listed = |id: i64| {
                    values
                        .iter()
                        .any(|v| matches!(v, Val::Ref(listed) | Val::Int(listed) if *listed == id))
                };
                let hit = match value {
                    Val::Null => *with_null,
                    Val::Refs(ids) => {
                        ids.iter().any(|id| listed(*id)) || (ids.is_empty() && *with_null)
                    }
                    Val::Ref(id) => listed(*id),
                    Val::Bool(flag) if boolean => values.iter().any(|v| v.truthy() == *flag),
                    other => values.iter().any(|v| other.compare(v) == Ordering::Equal),
                };
                hit != *negate
            }
            Test::Pattern {
                pattern,
                case_insensitive,
                negate,
            } => {
                let text = match value {
                    Val::Str(text) => text.as_str(),
                    Val::Null => return *negate,
                    _ => return *negate,
                };
                let hit = if *case_insensitive {
                    like(&text.to_lowercase(), pattern)
                } else {
                    like(text, pattern)
                };
                hit != *negate
            }
            Test::IdSet { ids, negate } => {
                let hit = match value {
                    Val::Ref(id) | Val::Int(id) => ids.contains(id),
                    Val::Refs(targets) => targets.iter().any(|target| ids.contains(target)),
                    _ => false,
                };
                hit != *negate
            }
        }
    }
}

/// SQL `LIKE` matching with `%` and `_` wildcards and `\` escapes.
pub fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Iterative matcher with backtracking on the last `%`.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                star = Some((p, t));
                p += 1;
            }
            Some('\\') if pattern.get(p + 1) == text.get(t) && p + 1 < pattern.len() => {
                p += 2;
                t += 1;
            }
            Some('_') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c != '\\' && Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

/// True when any leaf of the domain is on `name` (Odoo then skips the implicit active filter).
pub fn mentions_field(domain: &Domain, name: &str) -> bool {
    match domain {
        Domain::Leaf(condition) => condition.field == name,
        Domain::And(items) | Domain::Or(items) => {
            items.iter().any(|item| mentions_field(item, name))
        }
        Domain::Not(inner) => mentions_field(inner, name),
        Domain::True | Domain::False => false,
    }
}

pub fn compile(
    database: &Database,
    env: &Env,
    model: &ModelDef,
    domain: &Domain,
) -> OdooResult<Compiled> {
    Ok(match domain {
        Domain::True => Compiled::True,
        Domain::False => Compiled::False,
        Domain::And(items) => Compiled::And(
            items
                .iter()
                .map(|item| compile(database, env, model, item))
                .collect::<OdooResult<_>>()?,
        ),
        Domain::Or(items) => Compiled::Or(
            items
                .iter()
                .map(|item| compile(database, env, model, item))
                .collect::<OdooResult<_>>()?,
        ),
        Domain::Not(inner) => Compiled::Not(Box::new(compile(database, env, model, inner)?)),
        Domain::Leaf(condition) => compile_leaf(database, env, model, condition)?,
    })
}

fn invalid_leaf(model: &ModelDef, condition: &Condition, why: &str) -> OdooException {
    OdooException::value_error(format!(
        "Invalid leaf ('{}', '{}', {}) on model {}: {why}",
        condition.field,
        condition.operator,
        match &condition.operand {
            Operand::Value(value) => value.to_string(),
            Operand::Domain(domain) => domain.to_json().to_string(),
        },
        model.name
    ))
}

fn compile_leaf(
    database: &Database,
    env: &Env,
    model: &ModelDef,
    condition: &Condition,
) -> OdooResult<Compiled> {
    let (head, rest) = match condition.field.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (condition.field.as_str(), None),
    };
    let field = model.get(head).cloned().ok_or_else(|| {
        OdooException::value_error(format!(
            "Invalid field {}.{head} in leaf {}",
            model.name,
            Domain::Leaf(condition.clone()).to_json()
        ))
    })?;
    // A dotted path through a relation is `any` on the first hop (Odoo 17+ rewrites it so).
    if let Some(rest) = rest {
        let Some(comodel) = field.ftype.comodel() else {
            return Err(invalid_leaf(
                model,
                condition,
                "only relational fields can be followed with '.'",
            ));
        };
        let sub = Domain::Leaf(Condition {
            field: rest.to_owned(),
            operator: condition.operator,
            operand: condition.operand.clone(),
        });
        let ids = related_ids(database, env, &field, comodel, &sub)?;
        return Ok(Compiled::Leaf(Leaf::new(
            model,
            field,
            Test::IdSet { ids, negate: false },
        )));
    }
    let operator = condition.operator;
    let value = match &condition.operand {
        Operand::Domain(sub) => {
            let Some(comodel) = field.ftype.comodel() else {
                return Err(invalid_leaf(
                    model,
                    condition,
                    "'any' needs a relational field",
                ));
            };
            let ids = related_ids(database, env, &field, comodel, sub)?;
            return Ok(Compiled::Leaf(Leaf::new(
                model,
                field,
                Test::IdSet {
                    ids,
                    negate: operator == Operator::NotAny,
                },
            )));
        }
        Operand::Value(value) => value,
    };
    let is_false = matches!(value, Value::Bool(false) | Value::Null);
    let test = match operator {
        Operator::EqOrUnset if is_false => return Ok(Compiled::True),
        Operator::Eq | Operator::EqOrUnset | Operator::NotEq
            if is_false && field.ftype != FieldType::Boolean =>
        {
            Test::IsSet(operator == Operator::NotEq)
        }
        Operator::Eq
        | Operator::EqOrUnset
        | Operator::NotEq
        | Operator::Gt
        | Operator::Gte
        | Operator::Lt
        | Operator::Lte => {
            let operator = if operator == Operator::EqOrUnset {
                Operator::Eq
            } else {
                operator
            };
            if let (Some(comodel), Value::String(text)) = (field.ftype.comodel(), value) {
                // A name instead of an id: Odoo searches the comodel by display name.
                let ids = ids_by_name(database, comodel, text.as_str(), operator)?;
                let negate = operator == Operator::NotEq;
                Test::IdSet { ids, negate }
            } else {
                Test::Compare(
                    operator,
                    Some(
                        operand(model, &field, value)
                            .map_err(|why| invalid_leaf(model, condition, &why))?,
                    ),
                )
            }
        }
        Operator::In | Operator::NotIn => {
            let items = match value {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            let with_null = items
                .iter()
                .any(|item| matches!(item, Value::Bool(false) | Value::Null));
            let values = items
                .iter()
                .filter(|item| !matches!(item, Value::Bool(false) | Value::Null))
                .map(|item| operand(model, &field, item))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|why| invalid_leaf(model, condition, &why))?;
            // With `negate`, a NULL row is kept unless `False` was listed: Odoo's
            // `col NOT IN (…) OR col IS NULL`.
            let negate = operator == Operator::NotIn;
            Test::In {
                values,
                with_null,
                negate,
            }
        }
        Operator::Like
        | Operator::NotLike
        | Operator::ILike
        | Operator::NotILike
        | Operator::EqLike
        | Operator::EqILike => {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => return Err(invalid_leaf(model, condition, "a pattern must be a string")),
            };
            let case_insensitive = matches!(
                operator,
                Operator::ILike | Operator::NotILike | Operator::EqILike
            );
            let negate = matches!(operator, Operator::NotLike | Operator::NotILike);
            let raw = matches!(operator, Operator::EqLike | Operator::EqILike);
            let mut pattern = if raw { text } else { format!("%{text}%") };
            if case_insensitive {
                pattern = pattern.to_lowercase();
            }
            if let Some(comodel) = field.ftype.comodel() {
                let ids = ids_by_name(database, comodel, &pattern, Operator::EqILike)?;
                Test::IdSet { ids, negate }
            } else {
                Test::Pattern {
                    pattern,
                    case_insensitive,
                    negate,
                }
            }
        }
        Operator::ChildOf | Operator::ParentOf => {
            let target_model = field
                .ftype
                .comodel()
                .map_or(model.name.as_str(), |comodel| comodel);
            if field.name != "id" && field.ftype.comodel().is_none() {
                return Err(invalid_leaf(
                    model,
                    condition,
                    "child_of/parent_of need a relational field",
                ));
            }
            let roots: Vec<i64> = match value {
                Value::Array(items) => items.iter().filter_map(Value::as_i64).collect(),
                Value::Number(number) => number.as_i64().into_iter().collect(),
                Value::String(name) => {
                    ids_by_name(database, target_model, name.as_str(), Operator::Eq)?
                        .into_iter()
                        .collect()
                }
                _ => Vec::new(),
            };
            let ids = if operator == Operator::ChildOf {
                database.descendants(target_model, &roots)
            } else {
                database.ancestors(target_model, &roots)
            };
            Test::IdSet { ids, negate: false }
        }
        Operator::Any | Operator::NotAny => {
            return Err(invalid_leaf(model, condition, "'any' takes a domain"));
        }
    };
    Ok(Compiled::Leaf(Leaf::new(model, field, test)))
}

/// Runs a sub-domain on a comodel. Many2one hops ignore `active_test` (Odoo searches the
/// comodel with `active_test=False` there); x2many hops respect the caller's context.
fn related_ids(
    database: &Database,
    env: &Env,
    field: &FieldDef,
    comodel: &str,
    sub: &Domain,
) -> OdooResult<HashSet<i64>> {
    let comodel = database.model(comodel)?;
    let mut sub_env = env.clone();
    if matches!(field.ftype, FieldType::Many2one { .. }) {
        sub_env
            .context
            .insert("active_test".into(), Value::Bool(false));
    }
    Ok(database
        .matching_ids(&sub_env, &comodel, sub)?
        .into_iter()
        .collect())
}

fn ids_by_name(
    database: &Database,
    comodel: &str,
    text: &str,
    operator: Operator,
) -> OdooResult<HashSet<i64>> {
    let table = database.table(comodel)?;
    let lowered = text.to_lowercase();
    Ok(table
        .rows
        .keys()
        .copied()
        .filter(|id| {
            let name = database.display_name(comodel, *id);
            match operator {
                Operator::EqILike => like(&name.to_lowercase(), &lowered),
                Operator::Eq | Operator::NotEq => name == text,
                Operator::Gt => name.as_str() > text,
                Operator::Gte => name.as_str() >= text,
                Operator::Lt => name.as_str() < text,
                Operator::Lte => name.as_str() <= text,
                _ => false,
            }
        })
        .collect())
}

/// Parses a domain operand into the column's value type. Datetimes keep the precision they
/// are given: `"2024-01-01 10:00:00"` is exactly 10:00:00.000000.
fn operand(model: &ModelDef, field: &FieldDef, value: &Value) -> Result<Val, String> {
    if field.name == "id" {
        return value
            .as_i64()
            .map(Val::Int)
            .ok_or_else(|| format!("{value} is not an id"));
    }
    match &field.ftype {
        FieldType::Datetime => value
            .as_str()
            .and_then(values::parse_datetime)
            .map(Val::DateTime)
            .ok_or_else(|| format!("invalid input syntax for type timestamp: {value}")),
        FieldType::Date => value
            .as_str()
            .and_then(values::parse_date)
            .map(Val::Date)
            .ok_or_else(|| format!("invalid input syntax for type date: {value}")),
        FieldType::Many2one { .. } | FieldType::One2many { .. } | FieldType::Many2many { .. } => {
            value
                .as_i64()
                .map(Val::Ref)
                .ok_or_else(|| format!("{value} is not an id"))
        }
        FieldType::Boolean => Ok(Val::Bool(match value {
            Value::Bool(flag) => *flag,
            Value::Number(number) => number.as_f64().is_some_and(|f| f != 0.0),
            _ => return Err(format!("{value} is not a boolean")),
        })),
        FieldType::Integer => match value {
            Value::Number(number) => Ok(number
                .as_i64()
                .map(Val::Int)
                .unwrap_or_else(|| Val::Float(number.as_f64().unwrap_or(0.0)))),
            Value::String(text) => text
                .trim()
                .parse()
                .map(Val::Int)
                .map_err(|_| format!("invalid input syntax for type integer: {text:?}")),
            _ => Err(format!("{value} is not a number")),
        },
        FieldType::Float | FieldType::Monetary => match value {
            Value::Number(number) => Ok(Val::Float(number.as_f64().unwrap_or(0.0))),
            Value::String(text) => text
                .trim()
                .parse()
                .map(Val::Float)
                .map_err(|_| format!("invalid input syntax for type numeric: {text:?}")),
            _ => Err(format!("{value} is not a number")),
        },
        _ => match value {
            Value::String(text) => Ok(Val::Str(text.clone())),
            Value::Number(number) => Ok(Val::Str(number.to_string())),
            Value::Bool(true) => Ok(Val::Str("True".into())),
            _ => Err(format!(
                "{value} cannot be compared with {}.{}",
                model.name, field.name
            )),
        },
    }
}

// ----- ORDER BY ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct OrderTerm {
    field: FieldDef,
    descending: bool,
    nulls_first: bool,
}

/// A parsed `order` clause (`"write_date asc, id asc"`).
#[derive(Debug, Clone)]
pub struct OrderSpec(Vec<OrderTerm>);

impl OrderSpec {
    pub fn parse(model: &ModelDef, text: &str) -> OdooResult<OrderSpec> {
        let invalid = || {
            OdooException::value_error(format!(
                "Invalid \"order\" specified ({text}). A valid \"order\" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)"
            ))
        };
        let mut terms = Vec::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let words: Vec<String> = part.split_whitespace().map(str::to_lowercase).collect();
            let name = part.split_whitespace().next().ok_or_else(invalid)?;
            let field = model.get(name).cloned().ok_or_else(|| {
                OdooException::value_error(format!(
                    "Invalid field '{name}' on model '{}'",
                    model.name
                ))
            })?;
            // Name-like computed fields are stored (or ordered through `_rec_name`) in Odoo.
            if !matches!(
                field.compute,
                None | Some(crate::schema::Compute::DisplayName)
            ) {
                return Err(OdooException::value_error(format!(
                    "Cannot convert {}.{} to SQL because it is not stored",
                    model.name, field.name
                )));
            }
            let descending = match words.get(1).map(String::as_str) {
                None | Some("asc") | Some("nulls") => false,
                Some("desc") => true,
                Some(_) => return Err(invalid()),
            };
            // PostgreSQL's default: NULLS LAST for ASC, NULLS FIRST for DESC.
            let nulls_first = match words.iter().position(|word| word == "nulls") {
                Some(position) => match words.get(position + 1).map(String::as_str) {
                    Some("first") => true,
                    Some("last") => false,
                    _ => return Err(invalid()),
                },
                None => descending,
            };
            terms.push(OrderTerm {
                field,
                descending,
                nulls_first,
            });
        }
        Ok(OrderSpec(terms))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    Null,
    Value(Val),
    Text(String),
}

fn sort_key(database: &Database, model: &ModelDef, id: i64, field: &FieldDef) -> SortKey {
    let value = database.value(model, id, field);
    match (&field.ftype, value) {
        (_, Val::Null) => SortKey::Null,
        // Odoo orders a many2one by the comodel's `_order`; its display name is close enough.
        (FieldType::Many2one { comodel }, Val::Ref(target)) => {
            SortKey::Text(database.display_name(comodel, target))
        }
        (_, value) => SortKey::Value(value),
    }
}

fn compare_keys(a: &SortKey, b: &SortKey, term: &OrderTerm) -> Ordering {
    match (a, b) {
        (SortKey::Null, SortKey::Null) => Ordering::Equal,
        (SortKey::Null, _) => {
            if term.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, SortKey::Null) => {
            if term.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (left, right) => {
            let ordering = match (left, right) {
                (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
                (SortKey::Value(x), SortKey::Value(y)) => x.compare(y),
                _ => Ordering::Equal,
            };
            if term.descending {
                ordering.reverse()
            } else {
                ordering
            }
        }
    }
}

// ----- walking an order a table keeps ------------------------------------------------------

/// The field [`Table`] keeps an index on, besides `id`.
pub const WRITE_DATE: &str = "write_date";

/// Whether a row passes the implicit active filter and the compiled domain.
pub fn keeps(
    database: &Database,
    model: &ModelDef,
    compiled: &Compiled,
    implicit_active: bool,
    id: i64,
    row: &Row,
) -> bool {
    let active = !implicit_active
        || model
            .position("active")
            .and_then(|position| row.get(position))
            .is_some_and(|value| matches!(value, Val::Bool(true)));
    active && compiled.matches(database, model, id, row)
}

/// A search whose order is one the table keeps, walked from the domain's bounds.
#[derive(Debug, Clone, Copy)]
pub enum Walk {
    /// `ORDER BY id` (what follows `id` cannot matter: ids are unique).
    ById { descending: bool, ids: (i64, i64) },
    /// `ORDER BY write_date, id`, both the same direction, over a domain that only keeps
    /// rows with a `write_date`: exactly the order of [`Table::by_write_date`].
    ByWriteDate {
        descending: bool,
        ids: (i64, i64),
        micros: (i64, i64),
    },
}

/// The walk that gives `order` over `domain`'s matches without sorting them, if any. The
/// bounds come from the domain's top-level AND leaves on `id` and `write_date`, so every
/// row outside them fails the domain anyway: each visited row is still checked whole.
pub fn walk_for(
    model: &ModelDef,
    table: &Table,
    order: &OrderSpec,
    domain: &Domain,
) -> Option<Walk> {
    let first = order.0.first()?;
    let ids = bounds(domain, "id", Value::as_i64).0;
    if first.field.name == "id" {
        return Some(Walk::ById {
            descending: first.descending,
            ids,
        });
    }
    let [first, second] = order.0.as_slice() else {
        return None;
    };
    let indexed = table.write_date_position.is_some()
        && model.position(WRITE_DATE) == table.write_date_position;
    if !indexed
        || first.field.name != WRITE_DATE
        || second.field.name != "id"
        || first.descending != second.descending
    {
        return None;
    }
    let (micros, implies_set) = bounds(domain, WRITE_DATE, |value| {
        value.as_str().and_then(values::parse_datetime)
    });
    // Rows without a write_date are not in the index; where NULLs sort does not matter
    // only when the domain keeps none of them.
    implies_set.then_some(Walk::ByWriteDate {
        descending: first.descending,
        ids,
        micros,
    })
}

/// The leaves that every match satisfies: those of the top-level conjunction.
fn conjuncts<'a>(domain: &'a Domain, out: &mut Vec<&'a Condition>) {
    match domain {
        Domain::Leaf(condition) => out.push(condition),
        Domain::And(items) => {
            for item in items {
                conjuncts(item, out);
            }
        }
        _ => {}
    }
}

/// The inclusive range `field` is confined to by the domain's top-level leaves, and whether
/// those leaves keep out rows where it is empty. Leaves it cannot read are left to the row
/// check: the range is only ever wider than the truth.
fn bounds(
    domain: &Domain,
    field: &str,
    parse: impl Fn(&Value) -> Option<i64>,
) -> ((i64, i64), bool) {
    let mut leaves = Vec::new();
    conjuncts(domain, &mut leaves);
    let (mut low, mut high) = (i64::MIN, i64::MAX);
    let mut implies_set = false;
    for condition in leaves
        .into_iter()
        .filter(|condition| condition.field == field)
    {
        let Operand::Value(operand) = &condition.operand else {
            continue;
        };
        if matches!(operand, Value::Bool(false) | Value::Null) {
            implies_set |= condition.operator == Operator::NotEq;
            continue;
        }
        let Some(value) = parse(operand) else {
            continue;
        };
        match condition.operator {
            Operator::Gt => low = low.max(value.saturating_add(1)),
            Operator::Gte => low = low.max(value),
            Operator::Lt => high = high.min(value.saturating_sub(1)),
            Operator::Lte => high = high.min(value),
            Operator::Eq => {
                low = low.max(value);
                high = high.min(value);
            }
            _ => continue,
        }
        // A comparison with a value is false on NULL (Odoo's SQL too).
        implies_set = true;
    }
    ((low, high), implies_set)
}

impl Walk {
    /// The `offset`/`limit` page of the matches, in the walk's order: it visits the rows in
    /// bounds in order and stops as soon as the page is full.
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        self,
        database: &Database,
        model: &ModelDef,
        table: &Table,
        compiled: &Compiled,
        implicit_active: bool,
        offset: usize,
        limit: Option<usize>,
    ) -> Vec<i64> {
        let wanted = limit.map_or(usize::MAX, |limit| offset.saturating_add(limit));
        let keep = |id: i64| {
            table
                .rows
                .get(&id)
                .is_some_and(|row| keeps(database, model, compiled, implicit_active, id, row))
        };
        let mut found = Vec::new();
        let mut visit = |id: i64| {
            if found.len() < wanted && keep(id) {
                found.push(id);
            }
            found.len() < wanted
        };
        match self {
            Walk::ById { descending, ids } => {
                if ids.0 <= ids.1 {
                    let range = table.rows.range(ids.0..=ids.1).map(|(id, _)| *id);
                    if descending {
                        range.rev().take_while(|id| visit(*id)).for_each(drop);
                    } else {
                        range.take_while(|id| visit(*id)).for_each(drop);
                    }
                }
            }
            Walk::ByWriteDate {
                descending,
                ids,
                micros,
            } => {
                if ids.0 <= ids.1 && micros.0 <= micros.1 {
                    let range = table
                        .by_write_date
                        .range((micros.0, i64::MIN)..=(micros.1, i64::MAX))
                        .map(|(_, id)| *id)
                        .filter(|id| (ids.0..=ids.1).contains(id));
                    if descending {
                        range.rev().take_while(|id| visit(*id)).for_each(drop);
                    } else {
                        range.take_while(|id| visit(*id)).for_each(drop);
                    }
                }
            }
        }
        found.into_iter().skip(offset).collect()
    }
}

/// A stand-in for PostgreSQL's unspecified order among equal keys: deterministic, but not
/// by id, so a client that forgets to add `id` to its order finds out in tests.
fn tie_breaker(id: i64) -> u64 {
    (id as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// Sorts the matching ids by `order` and cuts the `offset`/`limit` page.
pub fn sort_page(
    database: &Database,
    model: &ModelDef,
    ids: Vec<i64>,
    order: &OrderSpec,
    offset: usize,
    limit: Option<usize>,
) -> Vec<i64> {
    let mut keyed: Vec<(Vec<SortKey>, i64)> = ids
        .into_iter()
        .map(|id| {
            (
                order
                    .0
                    .iter()
                    .map(|term| sort_key(database, model, id, &term.field))
                    .collect(),
                id,
            )
        })
        .collect();
    let compare = |a: &(Vec<SortKey>, i64), b: &(Vec<SortKey>, i64)| {
        for ((left, right), term) in a.0.iter().zip(&b.0).zip(&order.0) {
            let ordering = compare_keys(left, right, term);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        tie_breaker(a.1).cmp(&tie_breaker(b.1))
    };
    let end = limit.map_or(keyed.len(), |limit| {
        offset.saturating_add(limit).min(keyed.len())
    });
    if end < keyed.len() && end > 0 {
        keyed.select_nth_unstable_by(end - 1, compare);
        keyed.truncate(end);
    }
    keyed.sort_unstable_by(compare);
    keyed
        .into_iter()
        .skip(offset)
        .take(end.saturating_sub(offset))
        .map(|(_, id)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_wildcards() {
        assert!(like("hello world", "%lo w%"));
        assert!(like("hello", "h_llo"));
        assert!(!like("hello", "h_lo"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("", "%"));
        assert!(like("abc", "a%c"));
        assert!(like("abcbc", "a%bc"));
    }
}
