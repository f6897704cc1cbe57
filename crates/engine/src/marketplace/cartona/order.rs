//! A pulled Cartona order, checked before anything is written to Odoo. An order with any
//! invalid line is refused whole (never half-created), with the public module's issue codes.
//! Checks that need Odoo (does the variant exist? can the retailer be found or created?) are
//! the importer's; their codes are here too.

use serde_json::Value;
use std::fmt;

/// Why an order was refused, as Cartona's public module names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueCode {
    /// No `hashed_id`, no `order_details` list, or no retailer.
    MissingOrderFields,
    /// A line that is not an object, or whose amount or price is missing or not a number
    /// (amount must be > 0, price >= 0).
    InvalidOrderDetails,
    MissingInternalProductId,
    /// The line's `internal_product_id` is not an active `product.product` of this Odoo.
    VariantNotFound,
    /// An empty `order_details`.
    NoValidOrderLines,
    /// The retailer has no code or name, or Odoo refused to create it.
    CustomerError,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::MissingOrderFields => "missing_order_fields",
            IssueCode::InvalidOrderDetails => "invalid_order_details",
            IssueCode::MissingInternalProductId => "missing_internal_product_id",
            IssueCode::VariantNotFound => "variant_not_found",
            IssueCode::NoValidOrderLines => "no_valid_order_lines",
            IssueCode::CustomerError => "customer_error",
        }
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem that refuses an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: IssueCode,
    pub detail: String,
}

impl Issue {
    pub fn new(code: IssueCode, detail: impl Into<String>) -> Issue {
        Issue {
            code,
            detail: detail.into(),
        }
    }
}

/// The retailer, found in Odoo by `ref` = its code.
#[derive(Debug, Clone, PartialEq)]
pub struct Retailer {
    pub code: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// Cartona's line id, when given.
    pub cartona_id: Option<String>,
    /// The Odoo `product.product` id.
    pub product_id: i64,
    pub amount: f64,
    pub selling_price: f64,
}

/// An order whose fields and lines are all valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrder {
    pub hashed_id: String,
    pub receipt_id: Option<String>,
    pub status: Option<String>,
    /// Who delivers it: `delivered_by_cartona`, else the supplier (anything else is read as
    /// `delivered_by_supplier`, as Cartona's module does).
    pub delivered_by: DeliveredBy,
    /// How the retailer pays, when a money field says so.
    pub payment_method: Option<PaymentMethod>,
    pub retailer: Retailer,
    pub lines: Vec<OrderLine>,
}

/// Who delivers a marketplace order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveredBy {
    Supplier,
    Cartona,
}

impl DeliveredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveredBy::Supplier => "delivered_by_supplier",
            DeliveredBy::Cartona => "delivered_by_cartona",
        }
    }

    /// Anything but `delivered_by_cartona` (missing included) is the supplier's.
    pub fn parse(text: Option<&str>) -> DeliveredBy {
        match text.map(str::trim) {
            Some(text) if text.eq_ignore_ascii_case("delivered_by_cartona") => DeliveredBy::Cartona,
            _ => DeliveredBy::Supplier,
        }
    }
}

/// How a retailer pays, as the order's money fields tell (a positive value names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    Installment,
    WalletTopUp,
    CartonaCredit,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 3] = [
        PaymentMethod::Installment,
        PaymentMethod::WalletTopUp,
        PaymentMethod::CartonaCredit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Installment => "installment",
            PaymentMethod::WalletTopUp => "wallet_top_up",
            PaymentMethod::CartonaCredit => "cartona_credit",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentMethod> {
        PaymentMethod::ALL
            .into_iter()
            .find(|method| method.as_str() == text)
    }

    /// The money field that names each method, in the order they are looked at.
    fn field(self) -> &'static str {
        match self {
            PaymentMethod::Installment => "installment_cost",
            PaymentMethod::WalletTopUp => "wallet_top_up",
            PaymentMethod::CartonaCredit => "cartona_credit",
        }
    }

    /// The first method whose money field is positive.
    pub fn of(order: &Value) -> Option<PaymentMethod> {
        PaymentMethod::ALL
            .into_iter()
            .find(|method| number(order.get(method.field())).is_some_and(|value| value > 0.0))
    }

    /// Delivering such an order to the retailer needs their OTP.
    pub fn needs_otp(self) -> bool {
        matches!(
            self,
            PaymentMethod::Installment | PaymentMethod::WalletTopUp
        )
    }
}

/// The order's `hashed_id`, when it has one (to record a refusal under it).
pub fn hashed_id(order: &Value) -> Option<&str> {
    order
        .get("hashed_id")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty())
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A number, or a numeric string (Cartona sends prices as strings elsewhere).
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

fn first_text(object: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| text(object.get(*key)))
}

/// Checks everything that can be checked without Odoo. Every issue is reported, not only
/// the first, so a person sees what to fix at once.
pub fn validate(order: &Value) -> Result<ValidOrder, Vec<Issue>> {
    let mut issues = Vec::new();
    let hashed_id = hashed_id(order).map(str::to_owned);
    if hashed_id.is_none() {
        issues.push(Issue::new(IssueCode::MissingOrderFields, "no hashed_id"));
    }
    let retailer = match order.get("retailer") {
        Some(retailer @ Value::Object(_)) => {
            let code = first_text(retailer, &["retailer_code", "id", "retailer_id"]);
            let name = first_text(retailer, &["retailer_name", "name"]);
            match (code, name) {
                (Some(code), Some(name)) => Some(Retailer {
                    code,
                    name,
                    phone: first_text(retailer, &["retailer_number"]),
                    email: first_text(retailer, &["retailer_email"]),
                    address: first_text(retailer, &["retailer_address"]),
                }),
                _ => {
                    issues.push(Issue::new(
                        IssueCode::CustomerError,
                        "the retailer has no code or no name",
                    ));
                    None
                }
            }
        }
        _ => {
            issues.push(Issue::new(IssueCode::MissingOrderFields, "no retailer"));
            None
        }
    };
    let mut lines = Vec::new();
    match order.get("order_details") {
        Some(Value::Array(details)) if details.is_empty() => issues.push(Issue::new(
            IssueCode::NoValidOrderLines,
            "order_details is empty",
        )),
        Some(Value::Array(details)) => {
            for (index, detail) in details.iter().enumerate() {
                match validate_line(index + 1, detail) {
                    Ok(line) => lines.push(line),
                    Err(issue) => issues.push(issue),
                }
            }
        }
        _ => issues.push(Issue::new(
            IssueCode::MissingOrderFields,
            "no order_details list",
        )),
    }
    match (hashed_id, retailer) {
        (Some(hashed_id), Some(retailer)) if issues.is_empty() => Ok(ValidOrder {
            hashed_id,
            receipt_id: text(order.get("receipt_id")),
            status: text(order.get("status")),
            delivered_by: DeliveredBy::parse(order.get("delivered_by").and_then(Value::as_str)),
            payment_method: PaymentMethod::of(order),
            retailer,
            lines,
        }),
        _ => Err(issues),
    }
}

fn validate_line(position: usize, detail: &Value) -> Result<OrderLine, Issue> {
    if !detail.is_object() {
        return Err(Issue::new(
            IssueCode::InvalidOrderDetails,
            format!("line {position} is not an object"),
        ));
    }
    let product = text(detail.get("internal_product_id")).ok_or_else(|| {
        Issue::new(
            IssueCode::MissingInternalProductId,
            format!("line {position} has no internal_product_id"),
        )
    })?;
    let product_id = product
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            Issue::new(
                IssueCode::VariantNotFound,
                format!("line {position}: internal_product_id {product:?} is not a product id"),
            )
        })?;
    let amount = number(detail.get("amount")).filter(|amount| *amount > 0.0);
    let price = number(detail.get("selling_price")).filter(|price| *price >= 0.0);
    match (amount, price) {
        (Some(amount), Some(selling_price)) => Ok(OrderLine {
            cartona_id: text(detail.get("id")),
            product_id,
            amount,
            selling_price,
        }),
        (None, _) => Err(Issue::new(
            IssueCode::InvalidOrderDetails,
            format!("line {position}: amount must be a number above 0"),
        )),
        (_, None) => Err(Issue::new(
            IssueCode::InvalidOrderDetails,
            format!("line {position}: selling_price must be a number, 0 or more"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(order: &Value) -> Vec<&'static str> {
        validate(order)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|issue| issue.code.as_str())
            .collect()
    }

    #[test]
    fn a_whole_order_is_read() {
        let order = json!({"hashed_id": "H1", "receipt_id": 77, "status": "pending",
            "retailer": {"name": "Shop", "id": 12, "retailer_number": "010"},
            "order_details": [{"id": 5, "internal_product_id": "31", "amount": "2", "selling_price": 12.5}]});
        let valid = validate(&order).unwrap();
        assert_eq!(valid.receipt_id.as_deref(), Some("77"));
        assert_eq!(valid.retailer.code, "12");
        assert_eq!(valid.retailer.phone.as_deref(), Some("010"));
        assert_eq!(valid.delivered_by, DeliveredBy::Supplier);
        assert_eq!(valid.payment_method, None);
        assert_eq!(
            valid.lines,
            vec![OrderLine {
                cartona_id: Some("5".into()),
                product_id: 31,
                amount: 2.0,
                selling_price: 12.5
            }]
        );
    }

    #[test]
    fn who_delivers_and_how_it_is_paid_are_read() {
        let order = |extra: Value| {
            let mut order = json!({"hashed_id": "H", "retailer": {"retailer_code": "R", "retailer_name": "N"},
                "order_details": [{"internal_product_id": "1", "amount": 1, "selling_price": 1}]});
            if let (Some(order), Value::Object(extra)) = (order.as_object_mut(), extra) {
                order.extend(extra);
            }
            validate(&order).unwrap()
        };
        let cartona = order(
            json!({"delivered_by": "delivered_by_cartona", "installment_cost": "0", "wallet_top_up": 15}),
        );
        assert_eq!(cartona.delivered_by, DeliveredBy::Cartona);
        assert_eq!(cartona.payment_method, Some(PaymentMethod::WalletTopUp));
        assert!(PaymentMethod::WalletTopUp.needs_otp());
        let other = order(
            json!({"delivered_by": "by_bike", "installment_cost": 30.5, "cartona_credit": 2}),
        );
        assert_eq!(other.delivered_by, DeliveredBy::Supplier);
        assert_eq!(other.payment_method, Some(PaymentMethod::Installment));
        let credit = order(json!({"cartona_credit": "12"}));
        assert_eq!(credit.payment_method, Some(PaymentMethod::CartonaCredit));
        assert!(!PaymentMethod::CartonaCredit.needs_otp());
        for method in PaymentMethod::ALL {
            assert_eq!(PaymentMethod::parse(method.as_str()), Some(method));
        }
    }

    #[test]
    fn every_problem_is_named_with_its_code() {
        assert_eq!(
            codes(&json!({})),
            vec![
                "missing_order_fields",
                "missing_order_fields",
                "missing_order_fields"
            ]
        );
        let base = |details: Value| json!({"hashed_id": "H", "retailer": {"retailer_code": "R", "retailer_name": "N"}, "order_details": details});
        assert_eq!(codes(&base(json!([]))), vec!["no_valid_order_lines"]);
        assert_eq!(
            codes(&base(json!([
                {"internal_product_id": "1", "amount": 1, "selling_price": 1},
                {"amount": 1, "selling_price": 1},
                {"internal_product_id": "x", "amount": 1, "selling_price": 1},
                {"internal_product_id": "2", "amount": 0, "selling_price": 1},
                {"internal_product_id": "2", "amount": 1, "selling_price": "free"},
                "line"
            ]))),
            vec![
                "missing_internal_product_id",
                "variant_not_found",
                "invalid_order_details",
                "invalid_order_details",
                "invalid_order_details"
            ]
        );
        let no_code = json!({"hashed_id": "H", "retailer": {"retailer_name": "N"},
            "order_details": [{"internal_product_id": "1", "amount": 1, "selling_price": 1}]});
        assert_eq!(codes(&no_code), vec!["customer_error"]);
    }
}
