//! A simulated Cartona supplier API, as `reference/cartona-api.md` describes the real one:
//!
//! - `GET {base}/order/pull-orders?page=&per_page=&from=&to=`: the orders whose `updated_at`
//!   (else `created_at`) lies in the window, oldest first, `per_page` at a time — or fewer when
//!   the server caps pages ([`CartonaConfig::page_cap`]), as Cartona may. A page past the end
//!   is empty. The answer is a JSON list, or `{"data": [...]}` ([`CartonaConfig::wrap_in_data`]).
//! - `POST {base}/order/update-order-status/{hashed_id}`: recorded as posted
//!   ([`CartonaSim::posted`]); a real status (not the `synced` acknowledgement) becomes the
//!   order's status. An unknown order is 404; an unknown status, `cancelled_by_supplier`
//!   without `cancellation_reason`, or `delivered` without `retailer_otp` on an order paid
//!   by installment or wallet top-up is 422 (recorded as refused, not as posted).
//! - `POST {base}/supplier-product/bulk-update`: a JSON list of products, each with an
//!   `internal_product_id`; recorded ([`CartonaSim::catalog`]), else 422.
//! - Every call needs the header `AuthorizationToken: <token>` (401 otherwise).
//!
//! Faults are injected as for the simulated Odoo, with model `order` and the endpoint's last
//! segment as method (`pull-orders`, `update-order-status`).

use crate::faults::{FaultRule, Faults};
use crate::server::{FaultOutcome, apply_fault, html_page};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::TcpListener;

/// The header carrying the supplier's token.
pub const TOKEN_HEADER: &str = "authorizationtoken";
/// The model name faults are targeted at.
pub const FAULT_MODEL: &str = "order";

/// How the simulated Cartona behaves.
#[derive(Debug, Clone)]
pub struct CartonaConfig {
    /// The supplier token every call must carry.
    pub token: String,
    /// The most orders a page holds whatever `per_page` asks; `None`: as asked.
    pub page_cap: Option<usize>,
    /// Answer `{"data": [...]}` instead of a bare list.
    pub wrap_in_data: bool,
}

impl Default for CartonaConfig {
    fn default() -> CartonaConfig {
        CartonaConfig {
            token: "sim-cartona-token-0000000000000000".into(),
            page_cap: None,
            wrap_in_data: false,
        }
    }
}

/// One POST to `update-order-status`, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedStatus {
    pub hashed_id: String,
    pub body: Value,
}

impl PostedStatus {
    pub fn status(&self) -> Option<&str> {
        self.body.get("status").and_then(Value::as_str)
    }
}

#[derive(Debug, Default)]
struct CartonaState {
    config: CartonaConfig,
    orders: Mutex<Vec<Value>>,
    posted: Mutex<Vec<PostedStatus>>,
    refused: Mutex<Vec<PostedStatus>>,
    catalog: Mutex<Vec<Vec<Value>>>,
    faults: Faults,
    calls: Mutex<HashMap<String, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A simulated Cartona: cheap to clone, every clone drives the same server.
#[derive(Debug, Clone)]
pub struct CartonaSim {
    state: Arc<CartonaState>,
}

impl CartonaSim {
    pub fn new(config: CartonaConfig) -> CartonaSim {
        CartonaSim {
            state: Arc::new(CartonaState {
                config,
                ..CartonaState::default()
            }),
        }
    }

    pub fn config(&self) -> &CartonaConfig {
        &self.state.config
    }

    /// Adds an order as Cartona would send it (any JSON: tests add malformed ones too), or
    /// replaces the one with the same `hashed_id`.
    pub fn put_order(&self, order: Value) {
        let mut orders = lock(&self.state.orders);
        let id = order.get("hashed_id").cloned();
        match orders
            .iter_mut()
            .find(|known| id.is_some() && known.get("hashed_id") == id.as_ref())
        {
            Some(known) => *known = order,
            None => orders.push(order),
        }
    }

    pub fn orders(&self) -> Vec<Value> {
        lock(&self.state.orders).clone()
    }

    /// Every status POSTed, in arrival order.
    pub fn posted(&self) -> Vec<PostedStatus> {
        lock(&self.state.posted).clone()
    }

    /// The batches POSTed to `supplier-product/bulk-update`, in arrival order.
    pub fn catalog(&self) -> Vec<Vec<Value>> {
        lock(&self.state.catalog).clone()
    }

    /// Status POSTs refused as invalid (422), in arrival order.
    pub fn refused(&self) -> Vec<PostedStatus> {
        lock(&self.state.refused).clone()
    }

    pub fn inject(&self, rule: FaultRule) {
        self.state.faults.push(rule);
    }

    /// Requests that reached an endpoint (`pull-orders`, `update-order-status`).
    pub fn call_count(&self, endpoint: &str) -> u64 {
        lock(&self.state.calls).get(endpoint).copied().unwrap_or(0)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/order/pull-orders", get(pull_orders))
            .route(
                "/order/update-order-status/{hashed_id}",
                post(update_order_status),
            )
            .route("/supplier-product/bulk-update", post(bulk_update))
            .fallback(|| async { html_page(StatusCode::NOT_FOUND, None) })
            .with_state(self.state.clone())
    }

    /// Serves on an already bound listener until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds `127.0.0.1:0` and serves in the background until the handle is dropped.
    pub async fn serve_on_loopback(self) -> std::io::Result<crate::RunningSim> {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn serve_on(self, address: SocketAddr) -> std::io::Result<crate::RunningSim> {
        let listener = TcpListener::bind(address).await?;
        crate::RunningSim::spawn(listener, move |listener, stopped| {
            self.serve(listener, stopped)
        })
    }
}

/// An order as Cartona sends it, for tests and the demo: one line per `(internal product id,
/// amount, selling price)`, status `pending`, created and updated at `at`.
pub fn sample_order(
    hashed_id: &str,
    retailer_code: &str,
    at: Timestamp,
    lines: &[(i64, f64, f64)],
) -> Value {
    let details: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(index, (product, amount, price))| {
            json!({
                "id": format!("{hashed_id}-{}", index + 1),
                "internal_product_id": product.to_string(),
                "amount": amount,
                "selling_price": price,
                "comment": "",
            })
        })
        .collect();
    let total: f64 = lines.iter().map(|(_, amount, price)| amount * price).sum();
    json!({
        "hashed_id": hashed_id,
        "receipt_id": format!("R-{hashed_id}"),
        "status": "pending",
        "total_price": total,
        "created_at": at.to_string(),
        "updated_at": at.to_string(),
        "delivered_by": "delivered_by_supplier",
        "retailer": {
            "retailer_name": format!("Retailer {retailer_code}"),
            "retailer_code": retailer_code,
            "retailer_number": "+20 100 000 0000",
            "retailer_email": format!("{retailer_code}@retailers.example"),
            "retailer_address": "1 Tahrir Square, Cairo",
        },
        "order_details": details,
    })
}

/// The statuses a supplier may send, and `synced`.
const STATUSES: [&str; 9] = [
    "synced",
    "pending",
    "editing",
    "approved",
    "assigned_to_salesman",
    "delivered",
    "cancelled_by_retailer",
    "cancelled_by_supplier",
    "returned",
];

fn positive(order: &Value, key: &str) -> bool {
    match order.get(key) {
        Some(Value::Number(number)) => number.as_f64().is_some_and(|n| n > 0.0),
        Some(Value::String(text)) => text.trim().parse::<f64>().is_ok_and(|n| n > 0.0),
        _ => false,
    }
}

fn has_text(body: &Value, key: &str) -> bool {
    match body.get(key) {
        Some(Value::String(text)) => !text.trim().is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    }
}

/// Why Cartona refuses a status POST for `order`, if it does.
fn refusal(order: &Value, status: &str, body: &Value) -> Option<String> {
    if !STATUSES.contains(&status) {
        return Some(format!("The selected status {status} is invalid."));
    }
    if status == "cancelled_by_supplier" && !has_text(body, "cancellation_reason") {
        return Some("The cancellation reason field is required.".into());
    }
    let needs_otp = positive(order, "installment_cost") || positive(order, "wallet_top_up");
    if status == "delivered" && needs_otp && !has_text(body, "retailer_otp") {
        return Some("The retailer otp field is required.".into());
    }
    None
}

fn authorized(state: &CartonaState, headers: &HeaderMap) -> bool {
    headers
        .get(TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|token| token == state.config.token)
}

fn count(state: &CartonaState, endpoint: &str) {
    *lock(&state.calls).entry(endpoint.to_owned()).or_insert(0) += 1;
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": "Unauthenticated."})),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "message": message })),
    )
        .into_response()
}

/// ISO 8601: RFC 3339 with an offset, or a civil datetime taken as UTC.
fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok().or_else(|| {
        text.replace(' ', "T")
            .parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|zoned| zoned.timestamp())
    })
}

fn order_time(order: &Value) -> Option<Timestamp> {
    ["updated_at", "created_at"]
        .iter()
        .find_map(|key| order.get(*key).and_then(Value::as_str).and_then(parse_time))
}

async fn pull_orders(
    State(state): State<Arc<CartonaState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    count(&state, "pull-orders");
    match apply_fault(&state.faults, FAULT_MODEL, "pull-orders").await {
        FaultOutcome::Proceed | FaultOutcome::ProceedThenAnswer(_) => {}
        FaultOutcome::Answer(response) => return response,
        FaultOutcome::Raise(_) => return html_page(StatusCode::INTERNAL_SERVER_ERROR, None),
        FaultOutcome::AnswerTrue => return axum::Json(json!([])).into_response(),
    }
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let number = |key: &str, default: usize| -> Result<usize, String> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{key} must be a positive integer")),
        }
    };
    let window = |key: &str| -> Result<Option<Timestamp>, String> {
        match query.get(key) {
            None => Ok(None),
            Some(text) => parse_time(text)
                .map(Some)
                .ok_or_else(|| format!("{key} is not an ISO 8601 datetime")),
        }
    };
    let (page, per_page, from, to) = match (
        number("page", 1),
        number("per_page", 100),
        window("from"),
        window("to"),
    ) {
        (Ok(page), Ok(per_page), Ok(from), Ok(to)) => (page, per_page, from, to),
        (Err(message), ..) | (_, Err(message), ..) | (.., Err(message), _) | (.., Err(message)) => {
            return bad_request(message);
        }
    };
    let size = state
        .config
        .page_cap
        .map_or(per_page, |cap| per_page.min(cap));
    let mut matching: Vec<(Timestamp, Value)> = lock(&state.orders)
        .iter()
        .filter_map(|order| order_time(order).map(|at| (at, order.clone())))
        .filter(|(at, _)| from.is_none_or(|from| *at >= from) && to.is_none_or(|to| *at <= to))
        .collect();
    matching.sort_by_key(|(at, _)| *at);
    let items: Vec<Value> = matching
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|(_, order)| order)
        .collect();
    if state.config.wrap_in_data {
        axum::Json(json!({ "data": items, "page": page })).into_response()
    } else {
        axum::Json(Value::Array(items)).into_response()
    }
}

async fn update_order_status(
    State(state): State<Arc<CartonaState>>,
    Path(hashed_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count(&state, "update-order-status");
    let lost_answer = match apply_fault(&state.faults, FAULT_MODEL, "update-order-status").await {
        FaultOutcome::Proceed => None,
        FaultOutcome::ProceedThenAnswer(response) => Some(response),
        FaultOutcome::Answer(response) => return response,
        FaultOutcome::Raise(_) => return html_page(StatusCode::INTERNAL_SERVER_ERROR, None),
        FaultOutcome::AnswerTrue => return axum::Json(json!({"success": true})).into_response(),
    };
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON".into());
    };
    let Some(status) = body
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return bad_request("status is required".into());
    };
    {
        let mut orders = lock(&state.orders);
        let Some(order) = orders
            .iter_mut()
            .find(|order| order.get("hashed_id").and_then(Value::as_str) == Some(&hashed_id))
        else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "Order not found."})),
            )
                .into_response();
        };
        if let Some(message) = refusal(order, &status, &body) {
            lock(&state.refused).push(PostedStatus { hashed_id, body });
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "message": message })),
            )
                .into_response();
        }
        if status != "synced"
            && let Some(fields) = order.as_object_mut()
        {
            fields.insert("status".into(), json!(status));
            fields.insert("updated_at".into(), json!(Timestamp::now().to_string()));
        }
    }
    lock(&state.posted).push(PostedStatus { hashed_id, body });
    if let Some(response) = lost_answer {
        return response;
    }
    axum::Json(json!({"success": true})).into_response()
}

async fn bulk_update(
    State(state): State<Arc<CartonaState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count(&state, "bulk-update");
    match apply_fault(&state.faults, FAULT_MODEL, "bulk-update").await {
        FaultOutcome::Proceed | FaultOutcome::ProceedThenAnswer(_) => {}
        FaultOutcome::Answer(response) => return response,
        // Answered as a success, nothing recorded.
        FaultOutcome::AnswerTrue => return axum::Json(json!({"success": true})).into_response(),
        FaultOutcome::Raise(_) => return html_page(StatusCode::INTERNAL_SERVER_ERROR, None),
    }
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        _ => return bad_request("the body must be a JSON list of products".into()),
    };
    let valid = items.iter().all(|item| {
        item.get("internal_product_id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty())
    });
    if !valid {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"message": "Every product needs its internal_product_id."})),
        )
            .into_response();
    }
    lock(&state.catalog).push(items);
    axum::Json(json!({"success": true})).into_response()
}
