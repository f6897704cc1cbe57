//! The HTTP face of the simulator: `/jsonrpc` (all versions), `/json/2/<model>/<method>` and
//! `/web/version` (19+), with fault injection and call counting in front of both.

use crate::automation;
use crate::dispatch::{self, ModelCall};
use crate::error::OdooException;
use crate::faults::Fault;
use crate::orm::Env;
use crate::{Credential, SimState};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Odoo's default login cooldown: 5 failures, then 60 s of refusals (per source address).
const LOGIN_FAILURES_BEFORE_COOLDOWN: u32 = 5;
const LOGIN_COOLDOWN: Duration = Duration::from_secs(60);

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/jsonrpc", post(jsonrpc))
        .route("/json/2/{model}/{method}", post(json2))
        .route("/web/version", get(web_version))
        .fallback(not_found)
        // No response compression: a real Odoo (Werkzeug) sends JSON uncompressed, even to
        // a client that accepts gzip; compressing cost the simulator most of its CPU.
        .with_state(state)
}

pub(crate) fn html_page(status: StatusCode, retry_after: Option<&str>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>{code} {reason}</title>\n<h1>{reason}</h1>\n<p>The server answered {code}.</p>\n",
        code = status.as_u16()
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn not_found() -> Response {
    html_page(StatusCode::NOT_FOUND, None)
}

/// What the transport does with an injected fault before (or instead of) the call.
pub(crate) enum FaultOutcome {
    Proceed,
    /// Run the call, then answer with this (a cut connection) instead of its result.
    ProceedThenAnswer(Response),
    Answer(Response),
    Raise(OdooException),
    /// Skip the call and answer `true` in the transport's own shape.
    AnswerTrue,
}

pub(crate) async fn apply_fault(
    faults: &crate::faults::Faults,
    model: &str,
    method: &str,
) -> FaultOutcome {
    match faults.take(model, method) {
        None => FaultOutcome::Proceed,
        Some(Fault::Delay(duration)) => {
            tokio::time::sleep(duration).await;
            FaultOutcome::Proceed
        }
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            FaultOutcome::Answer(html_page(status, retry_after.as_deref()))
        }
        Some(Fault::MalformedJson) => FaultOutcome::Answer(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"jsonrpc": "2.0", "id": 1, "result": [{"id": 1, "name": "Trunc"#,
            )
                .into_response(),
        ),
        Some(Fault::AnswerLost) => FaultOutcome::ProceedThenAnswer(dropped_answer()),
        Some(Fault::Drop) => FaultOutcome::Answer(dropped_answer()),
        Some(Fault::OdooError { name, message }) => {
            FaultOutcome::Raise(OdooException::new(name, message))
        }
        Some(Fault::Swallowed) => FaultOutcome::AnswerTrue,
    }
}

/// A 200 whose body breaks off: the connection cut mid-answer.
fn dropped_answer() -> Response {
    {
        {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(
                    b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": [",
                )),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated dropped connection",
                )),
            ];
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

// ----- JSON-RPC ---------------------------------------------------------------------------

fn rpc_result(id: &Value, result: Value) -> Response {
    // A method returning None is answered with neither `result` nor `error` (seen on Odoo 18).
    let body = if result.is_null() {
        json!({"jsonrpc": "2.0", "id": id})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "result": result})
    };
    axum::Json(body).into_response()
}

fn rpc_error(id: &Value, error: &OdooException) -> Response {
    let (code, message) = if error.name == "odoo.http.SessionExpiredException" {
        (100, "Odoo Session Expired")
    } else {
        (200, "Odoo Server Error")
    };
    axum::Json(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": code,
            "message": message,
            "data": {
                "name": error.name,
                "debug": error.traceback(),
                "message": error.message,
                "arguments": [error.message],
                "context": {},
            }
        }
    }))
    .into_response()
}

async fn jsonrpc(
    State(state): State<Arc<SimState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return rpc_error(
                &Value::Null,
                &OdooException::new(
                    "werkzeug.exceptions.BadRequest",
                    format!("Invalid JSON data: {error}"),
                ),
            );
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let service = params
        .get("service")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let args: Vec<Value> = params
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let (model, counted_method) = match (service.as_str(), method.as_str()) {
        ("object", "execute_kw" | "execute") => (
            args.get(3)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            args.get(4)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => (service.clone(), method.clone()),
    };
    state.count_call(&model, &counted_method);
    let lost_answer = match apply_fault(&state.faults, &model, &counted_method).await {
        FaultOutcome::Proceed => None,
        FaultOutcome::ProceedThenAnswer(response) => Some(response),
        FaultOutcome::Answer(response) => return response,
        FaultOutcome::Raise(error) => return rpc_error(&id, &error),
        FaultOutcome::AnswerTrue => return rpc_result(&id, json!(true)),
    };
    let outcome = match (service.as_str(), method.as_str()) {
        ("common", "version") => Ok(state.version_info()),
        ("common", "authenticate" | "login") => authenticate(&state, peer.ip(), &args),
        ("db", "list") => Ok(json!([state.config.database])),
        ("db", "server_version") => Ok(json!(state.config.version.server_version())),
        ("object", "execute_kw" | "execute") => execute_kw(&state, &method, args).await,
        _ => Err(OdooException::new(
            "werkzeug.exceptions.NotFound",
            format!("Service {service}.{method} not found"),
        )),
    };
    if let Some(response) = lost_answer {
        return response;
    }
    match outcome {
        Ok(result) => rpc_result(&id, result),
        Err(error) => {
            tracing::debug!(name = %error.name, message = %error.message, "simulated Odoo error");
            rpc_error(&id, &error)
        }
    }
}

fn check_database(state: &SimState, database: Option<&Value>) -> Result<(), OdooException> {
    let name = database.and_then(Value::as_str).unwrap_or_default();
    if name == state.config.database {
        Ok(())
    } else {
        Err(OdooException::new(
            "psycopg2.OperationalError",
            format!("connection to server failed: FATAL:  database \"{name}\" does not exist"),
        ))
    }
}

fn authenticate(state: &SimState, peer: IpAddr, args: &[Value]) -> Result<Value, OdooException> {
    check_database(state, args.first())?;
    let login = args.get(1).and_then(Value::as_str).unwrap_or_default();
    let secret = args.get(2).and_then(Value::as_str).unwrap_or_default();
    let mut failures = state.lock_login_failures();
    if let Some((count, last)) = failures.get(&peer)
        && *count >= LOGIN_FAILURES_BEFORE_COOLDOWN
        && last.elapsed() < LOGIN_COOLDOWN
    {
        return Err(OdooException::access_denied(
            "Too many login failures, please wait a bit before trying again.",
        ));
    }
    match state.check_login(login, secret) {
        Some(uid) => {
            failures.remove(&peer);
            Ok(json!(uid))
        }
        None => {
            let entry = failures.entry(peer).or_insert((0, Instant::now()));
            entry.0 += 1;
            entry.1 = Instant::now();
            Ok(Value::Bool(false))
        }
    }
}

async fn execute_kw(
    state: &SimState,
    method: &str,
    args: Vec<Value>,
) -> Result<Value, OdooException> {
    check_database(state, args.first())?;
    let uid = args.get(1).and_then(Value::as_i64).unwrap_or(0);
    let secret = args.get(2).and_then(Value::as_str).unwrap_or_default();
    if !state.check_uid(uid, secret) {
        return Err(OdooException::access_denied("Access Denied"));
    }
    let model = args.get(3).and_then(Value::as_str).unwrap_or_default();
    let model_method = args.get(4).and_then(Value::as_str).unwrap_or_default();
    let (call_args, kwargs) = if method == "execute" {
        (
            args.get(5..).map(<[Value]>::to_vec).unwrap_or_default(),
            Map::new(),
        )
    } else {
        (
            args.get(5)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            args.get(6)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )
    };
    let call = ModelCall::from_execute_kw(model, model_method, &call_args, kwargs)?;
    state.run_call_async(uid, &call).await
}

// ----- JSON-2 -----------------------------------------------------------------------------

fn json2_error(error: &OdooException) -> Response {
    let status =
        StatusCode::from_u16(error.json2_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({
            "name": error.name,
            "message": error.message,
            "arguments": [error.message],
            "context": {},
            "debug": error.traceback(),
        })),
    )
        .into_response()
}

async fn json2(
    State(state): State<Arc<SimState>>,
    Path((model, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.config.version.has_json2() {
        return html_page(StatusCode::NOT_FOUND, None);
    }
    state.count_call(&model, &method);
    let lost_answer = match apply_fault(&state.faults, &model, &method).await {
        FaultOutcome::Proceed => None,
        FaultOutcome::ProceedThenAnswer(response) => Some(response),
        FaultOutcome::Answer(response) => return response,
        FaultOutcome::Raise(error) => return json2_error(&error),
        FaultOutcome::AnswerTrue => return axum::Json(json!(true)).into_response(),
    };
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned());
    let Some(uid) = key.and_then(|key| state.uid_for_api_key(&key)) else {
        return json2_error(&OdooException::new(
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
        ));
    };
    if let Some(database) = headers
        .get("x-odoo-database")
        .and_then(|value| value.to_str().ok())
        && database != state.config.database
    {
        return json2_error(&OdooException::new(
            "werkzeug.exceptions.NotFound",
            format!("Database {database:?} not found"),
        ));
    }
    let params = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(params)) => params,
            Ok(_) => {
                return json2_error(&OdooException::new(
                    "werkzeug.exceptions.BadRequest",
                    "The request body must be a JSON object",
                ));
            }
            Err(error) => {
                return json2_error(&OdooException::new(
                    "werkzeug.exceptions.BadRequest",
                    format!("Invalid JSON: {error}"),
                ));
            }
        }
    };
    if state.lock_database().model(&model).is_err() {
        return json2_error(&OdooException::new(
            "werkzeug.exceptions.NotFound",
            format!("Model {model:?} not found"),
        ));
    }
    let outcome = match ModelCall::from_json2(&model, &method, params) {
        Ok(call) => state.run_call_async(uid, &call).await,
        Err(error) => Err(error),
    };
    if let Some(response) = lost_answer {
        return response;
    }
    match outcome {
        Ok(result) => axum::Json(result).into_response(),
        Err(error) => json2_error(&error),
    }
}

async fn web_version(State(state): State<Arc<SimState>>) -> Response {
    if !state.config.version.has_json2() {
        return html_page(StatusCode::NOT_FOUND, None);
    }
    state.count_call("web", "version");
    axum::Json(json!({
        "version_info": state.config.version.server_version_info(),
        "version": state.config.version.server_version(),
    }))
    .into_response()
}

impl SimState {
    pub(crate) fn version_info(&self) -> Value {
        let version = self.config.version;
        json!({
            "server_version": version.server_version(),
            "server_version_info": version.server_version_info(),
            "server_serie": version.server_serie(),
            "protocol_version": 1,
        })
    }

    /// Runs a model call as one transaction: on error, nothing it wrote stays.
    pub(crate) fn run_call(&self, uid: i64, call: &ModelCall) -> Result<Value, OdooException> {
        let env = Env::new(uid, self.clock.now_micros()).with_context(call.context());
        let mut database = self.lock_database();
        if is_read_only(&call.method) {
            return dispatch::run(&mut database, &env, call);
        }
        let snapshot = database.clone();
        let result = dispatch::run(&mut database, &env, call);
        if result.is_err() {
            *database = snapshot;
        }
        result
    }

    /// [`SimState::run_call`], with the automation rules' webhooks: while rules exist, a
    /// writing call runs on a copy of the database, sends the webhooks its changes call for,
    /// and only then commits the copy (see [`crate::automation`]).
    pub(crate) async fn run_call_async(
        &self,
        uid: i64,
        call: &ModelCall,
    ) -> Result<Value, OdooException> {
        if is_read_only(&call.method) {
            return self.run_call(uid, call);
        }
        let _writer = self.writer.lock().await;
        let before = {
            let database = self.lock_database();
            if !automation::has_rules(&database) {
                drop(database);
                return self.run_call(uid, call);
            }
            database.clone()
        };
        let env = Env::new(uid, self.clock.now_micros()).with_context(call.context());
        let mut working = before.clone();
        let result = dispatch::run(&mut working, &env, call)?;
        let webhooks = automation::fired(&before, &working, &env);
        if !webhooks.is_empty() {
            if let Some(client) = self.webhook_client() {
                let sent = automation::send(&client, webhooks, || self.clock.now_micros()).await;
                self.webhooks_sent
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(sent);
            }
            let mut held = self.commits_held.subscribe();
            let _ = held.wait_for(|held| !*held).await;
        }
        *self.lock_database() = working;
        Ok(result)
    }

    fn webhook_client(&self) -> Option<reqwest::Client> {
        self.webhook_client
            .get_or_init(|| match reqwest::Client::builder().build() {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::error!(%error, "cannot build the automation webhooks' HTTP client");
                    None
                }
            })
            .clone()
    }

    fn check_login(&self, login: &str, secret: &str) -> Option<i64> {
        self.lock_credentials()
            .iter()
            .find(|credential| credential.login == login && credential.accepts(secret))
            .map(|credential| credential.uid)
    }

    fn check_uid(&self, uid: i64, secret: &str) -> bool {
        self.lock_credentials()
            .iter()
            .any(|credential| credential.uid == uid && credential.accepts(secret))
    }

    fn uid_for_api_key(&self, key: &str) -> Option<i64> {
        self.lock_credentials()
            .iter()
            .find(|credential| credential.active && credential.api_keys.iter().any(|k| k == key))
            .map(|credential| credential.uid)
    }
}

impl Credential {
    fn accepts(&self, secret: &str) -> bool {
        self.active
            && !secret.is_empty()
            && (self.password.as_deref() == Some(secret)
                || self.api_keys.iter().any(|key| key == secret))
    }
}

fn is_read_only(method: &str) -> bool {
    matches!(
        method,
        "search_read"
            | "search"
            | "search_count"
            | "read"
            | "fields_get"
            | "name_search"
            | "check_access_rights"
            | "context_get"
    )
}
