//! Property tests of the domain builder: what `to_json` writes is well-formed prefix
//! notation, and `from_json` reads it back as the same domain (up to the normalization the
//! parser applies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use odoo_rpc::domain::{Condition, Domain, Operand, Operator, field};
use proptest::prelude::*;
use serde_json::Value;

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_]{1,10}(\\.[a-z_]{1,10}){0,2}"
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 %_.éü'\"-]{0,12}".prop_map(Value::from),
        prop::collection::vec(any::<i32>().prop_map(Value::from), 0..4).prop_map(Value::Array),
        prop::collection::vec("[a-z]{0,5}".prop_map(Value::from), 0..3).prop_map(Value::Array),
    ]
}

fn value_operator() -> impl Strategy<Value = Operator> {
    let operators: Vec<Operator> = Operator::ALL
        .into_iter()
        .filter(|op| !matches!(op, Operator::Any | Operator::NotAny))
        .collect();
    prop::sample::select(operators)
}

fn domain() -> impl Strategy<Value = Domain> {
    let leaf = prop_oneof![
        1 => Just(Domain::True),
        1 => Just(Domain::False),
        8 => (field_name(), value_operator(), leaf_value())
            .prop_map(|(name, operator, value)| field(name).op(operator, value)),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Domain::And),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Domain::Or),
            inner.clone().prop_map(|d| !d),
            (field_name(), any::<bool>(), inner).prop_map(|(name, negated, sub)| {
                if negated {
                    field(name).not_any(sub)
                } else {
                    field(name).any(sub)
                }
            }),
        ]
    })
}

/// What the parser gives back for a domain: an empty AND/OR is the TRUE/FALSE leaf, a
/// one-child AND/OR is that child, nested connectors of the same kind are flattened.
fn normalize(domain: &Domain) -> Domain {
    match domain {
        Domain::True | Domain::False => domain.clone(),
        Domain::Leaf(condition) => Domain::Leaf(Condition {
            field: condition.field.clone(),
            operator: condition.operator,
            operand: match &condition.operand {
                Operand::Value(value) => Operand::Value(value.clone()),
                Operand::Domain(sub) => Operand::Domain(Box::new(normalize(sub))),
            },
        }),
        Domain::Not(inner) => Domain::Not(Box::new(normalize(inner))),
        Domain::And(items) | Domain::Or(items) => {
            let is_and = matches!(domain, Domain::And(_));
            let mut children: Vec<Domain> = items.iter().map(normalize).collect();
            match children.len() {
                0 if is_and => Domain::True,
                0 => Domain::False,
                1 => children.pop().expect("one child"),
                _ => {
                    let mut flat = Vec::with_capacity(children.len());
                    for child in children {
                        match child {
                            Domain::And(inner) if is_and => flat.extend(inner),
                            Domain::Or(inner) if !is_and => flat.extend(inner),
                            other => flat.push(other),
                        }
                    }
                    if is_and {
                        Domain::And(flat)
                    } else {
                        Domain::Or(flat)
                    }
                }
            }
        }
    }
}

/// Checks prefix notation: every `&`/`|` takes two terms, `!` one, a leaf is a
/// `[field, operator, value]` triple (or Odoo's TRUE/FALSE leaf), and exactly one root
/// term is written. Sub-domains of `any`/`not any` are checked the same way.
fn assert_well_formed(json: &Value) -> Result<(), TestCaseError> {
    let tokens = json
        .as_array()
        .ok_or_else(|| TestCaseError::fail("not a list"))?;
    let mut open_slots: usize = 1;
    for token in tokens {
        prop_assert!(
            open_slots > 0,
            "tokens after the root term is complete: {json}"
        );
        open_slots -= 1;
        match token {
            Value::String(op) if op == "&" || op == "|" => open_slots += 2,
            Value::String(op) if op == "!" => open_slots += 1,
            Value::Array(leaf) => {
                prop_assert_eq!(leaf.len(), 3, "a leaf is a triple: {}", token);
                let operator = leaf[1].as_str().and_then(Operator::parse);
                prop_assert!(operator.is_some(), "unknown operator in {}", token);
                match &leaf[0] {
                    Value::String(name) => prop_assert!(!name.is_empty()),
                    Value::Number(n) => prop_assert!(
                        (n.as_i64() == Some(1) || n.as_i64() == Some(0))
                            && leaf[1] == "="
                            && leaf[2] == 1,
                        "numeric leaves are only TRUE/FALSE: {}",
                        token
                    ),
                    _ => prop_assert!(false, "bad left side in {}", token),
                }
                if matches!(operator, Some(Operator::Any | Operator::NotAny)) {
                    assert_well_formed(&leaf[2])?;
                }
            }
            other => prop_assert!(false, "unexpected token {}", other),
        }
    }
    prop_assert_eq!(open_slots, 0, "operators lack operands: {}", json);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn serialization_is_well_formed_prefix_notation(domain in domain()) {
        assert_well_formed(&domain.to_json())?;
    }

    #[test]
    fn parsing_gives_back_an_equivalent_domain(domain in domain()) {
        let json = domain.to_json();
        let parsed = Domain::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed, &normalize(&domain));
        // The parsed form is a fixed point.
        let reparsed = Domain::from_json(&parsed.to_json());
        prop_assert_eq!(reparsed, Ok(parsed));
    }

    #[test]
    fn the_wire_text_round_trips(domain in domain()) {
        let json = domain.to_json();
        let text = serde_json::to_string(&domain).unwrap();
        prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json);
    }
}

#[test]
fn normalization_matches_the_parser_on_known_cases() {
    let a = || field("a").eq(1);
    let b = || field("b").eq(2);
    let c = || field("c").eq(3);
    let cases = [
        (Domain::all(), Domain::True),
        (Domain::Or(vec![]), Domain::False),
        (Domain::And(vec![a()]), a()),
        (
            Domain::And(vec![Domain::And(vec![a(), b()]), c()]),
            Domain::And(vec![a(), b(), c()]),
        ),
        (
            Domain::Or(vec![a(), Domain::Or(vec![b(), c()])]),
            Domain::Or(vec![a(), b(), c()]),
        ),
        (
            a() & (b() | c()),
            Domain::And(vec![a(), Domain::Or(vec![b(), c()])]),
        ),
    ];
    for (built, expected) in cases {
        assert_eq!(normalize(&built), expected);
        assert_eq!(Domain::from_json(&built.to_json()), Ok(expected));
    }
}
