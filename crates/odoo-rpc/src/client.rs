//! [`OdooClient`]: typed ORM calls over either transport, with retries, pacing, a uid cache
//! with re-authentication and a `fields_get` cache.

use crate::domain::Domain;
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::secret::ApiKey;
use crate::transport::{
    Call, DEFAULT_USER_AGENT, Endpoint, EndpointConfig, Json2Transport, JsonRpcTransport, Protocol,
    ServerVersion, Transport, discover_version, validate_name,
};
use crate::value::{Record, odoo_option};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

/// Which protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransportChoice {
    /// Ask the server's version: JSON-2 from Odoo 19 on, JSON-RPC before.
    #[default]
    Auto,
    JsonRpc,
    Json2,
}

/// The default timeout of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach one Odoo database.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://mycompany.odoo.com`, optionally with a path prefix.
    pub base_url: String,
    pub database: String,
    pub login: String,
    pub api_key: ApiKey,
    pub transport: TransportChoice,
    /// The timeout of each HTTP request (default 30 s).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The least time between two requests of this client (Odoo's staff suggest one call
    /// per second per database as a conservative pace). `None`: no pacing.
    pub min_call_interval: Option<Duration>,
    /// Replaces `odoo-bridge/<version>`.
    pub user_agent: Option<String>,
    /// Merged under the context of every call.
    pub default_context: Context,
    /// Answers larger than this are refused with a clear error (default 256 MiB).
    pub max_response_bytes: usize,
    /// A connection pool shared with other clients (one process, many databases); `None`:
    /// this client has a pool of its own.
    pub http_pool: Option<crate::transport::HttpPool>,
}

impl ClientConfig {
    /// A configuration with defaults: automatic transport, 30 s timeout, default retries,
    /// no pacing, empty default context.
    pub fn new(
        base_url: impl Into<String>,
        database: impl Into<String>,
        login: impl Into<String>,
        api_key: impl Into<ApiKey>,
    ) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            database: database.into(),
            login: login.into(),
            api_key: api_key.into(),
            transport: TransportChoice::Auto,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            min_call_interval: None,
            user_agent: None,
            default_context: Context::new(),
            max_response_bytes: crate::transport::DEFAULT_MAX_RESPONSE_BYTES,
            http_pool: None,
        }
    }
}

/// An Odoo call context: a JSON object with setters for the keys that change behaviour.
///
/// ```
/// use odoo_rpc::Context;
/// let ctx = Context::new().active_test(false).allowed_company_ids([1, 3]).lang("fr_FR");
/// assert_eq!(ctx.get("active_test"), Some(&serde_json::json!(false)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Context(Map<String, Value>);

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets any key.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Value>) -> Context {
        self.0.insert(key.into(), value.into());
        self
    }

    /// `false` makes `search`/`search_read` include archived records; without it a mirror
    /// or a deletion check takes archived rows for deleted ones.
    pub fn active_test(self, active_test: bool) -> Context {
        self.set("active_test", active_test)
    }

    pub fn lang(self, lang: impl Into<String>) -> Context {
        self.set("lang", lang.into())
    }

    pub fn tz(self, tz: impl Into<String>) -> Context {
        self.set("tz", tz.into())
    }

    /// The companies the call sees, the first being the current one. Without it a
    /// multi-company user sees only its default company's records.
    pub fn allowed_company_ids(self, ids: impl IntoIterator<Item = i64>) -> Context {
        let ids: Vec<Value> = ids.into_iter().map(Value::from).collect();
        self.set("allowed_company_ids", Value::Array(ids))
    }

    /// Lets `stock.picking.button_validate` validate instead of returning the SMS wizard.
    pub fn skip_sms(self, skip: bool) -> Context {
        self.set("skip_sms", skip)
    }

    /// Lets `sale.order.action_cancel` cancel instead of returning the cancel wizard.
    pub fn disable_cancel_warning(self, disable: bool) -> Context {
        self.set("disable_cancel_warning", disable)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// This context's keys over `base`'s.
    pub fn merged_over(&self, base: &Context) -> Context {
        let mut merged = base.0.clone();
        merged.extend(self.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Context(merged)
    }
}

impl From<Map<String, Value>> for Context {
    fn from(map: Map<String, Value>) -> Self {
        Context(map)
    }
}

/// What `search_read` (and `search`) should find and return.
///
/// ```
/// use odoo_rpc::{SearchReadOptions, Context, domain::field};
/// let options = SearchReadOptions::new(field("state").eq("sale"))
///     .fields(["name", "write_date"])
///     .order("write_date asc, id asc")
///     .limit(200)
///     .context(Context::new().active_test(false));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchReadOptions {
    pub domain: Domain,
    /// Empty reads every field (slow; avoid).
    pub fields: Vec<String>,
    /// Applied as given: add `id` for a deterministic order.
    pub order: Option<String>,
    pub limit: Option<u64>,
    pub offset: u64,
    pub context: Option<Context>,
}

impl SearchReadOptions {
    pub fn new(domain: Domain) -> SearchReadOptions {
        SearchReadOptions {
            domain,
            ..SearchReadOptions::default()
        }
    }

    pub fn fields<I, S>(mut self, fields: I) -> SearchReadOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    pub fn order(mut self, order: impl Into<String>) -> SearchReadOptions {
        self.order = Some(order.into());
        self
    }

    pub fn limit(mut self, limit: u64) -> SearchReadOptions {
        self.limit = Some(limit);
        self
    }

    pub fn offset(mut self, offset: u64) -> SearchReadOptions {
        self.offset = offset;
        self
    }

    pub fn context(mut self, context: Context) -> SearchReadOptions {
        self.context = Some(context);
        self
    }

    fn to_kwargs(&self, with_fields: bool) -> Map<String, Value> {
        let mut kwargs = Map::new();
        kwargs.insert("domain".into(), self.domain.to_json());
        if with_fields && !self.fields.is_empty() {
            kwargs.insert("fields".into(), string_list(&self.fields));
        }
        if self.offset > 0 {
            kwargs.insert("offset".into(), self.offset.into());
        }
        if let Some(limit) = self.limit {
            kwargs.insert("limit".into(), limit.into());
        }
        if let Some(order) = &self.order {
            kwargs.insert("order".into(), order.as_str().into());
        }
        kwargs
    }
}

/// One field's description from `fields_get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// `char`, `many2one`, `datetime`, `selection`, …
    #[serde(rename = "type")]
    pub field_type: String,
    /// The label.
    #[serde(default, deserialize_with = "string_or_false")]
    pub string: String,
    /// The related model of a relational field.
    #[serde(default, with = "odoo_option")]
    pub relation: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub readonly: bool,
    /// Whether the field is stored (searchable and orderable without cost).
    #[serde(default = "stored_by_default")]
    pub store: bool,
    /// `(value, label)` pairs of a selection field; integer keys are given as text.
    #[serde(default, deserialize_with = "selection_pairs")]
    pub selection: Vec<(String, String)>,
}

fn stored_by_default() -> bool {
    true
}

fn string_or_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(odoo_option::deserialize::<_, String>(deserializer)?.unwrap_or_default())
}

fn selection_pairs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    // Some fields compute their selection and may send it as `false`; keys may be integers.
    let pairs: Option<Vec<(Value, Value)>> = odoo_option::deserialize(deserializer)?;
    let text = |value: Value| match value {
        Value::String(s) => s,
        Value::Bool(false) | Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(pairs
        .unwrap_or_default()
        .into_iter()
        .map(|(key, label)| (text(key), text(label)))
        .collect())
}

/// A model's fields by name.
pub type Fields = BTreeMap<String, FieldInfo>;

const FIELD_ATTRIBUTES: [&str; 7] = [
    "type",
    "string",
    "relation",
    "required",
    "readonly",
    "store",
    "selection",
];

/// The keyword argument of `method` that JSON-RPC must send positionally: Odoo's `call_kw`
/// reads `create`'s values as `args[0]`.
fn positional_keyword(method: &str) -> Option<&'static str> {
    (method == "create").then_some("vals_list")
}

/// Methods that change nothing, or set the same values again when repeated (`write`): they
/// are retried on every retryable error. Any other method (`create`, `unlink`, workflow
/// methods) is resent only when the failure proves it did not run, because a `create`
/// retried after a timeout can create the record twice.
fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "search_read"
            | "search"
            | "search_count"
            | "search_fetch"
            | "read"
            | "read_group"
            | "web_read"
            | "web_search_read"
            | "web_read_group"
            | "formatted_read_group"
            | "fields_get"
            | "name_search"
            | "name_get"
            | "default_get"
            | "context_get"
            | "check_access_rights"
            | "check_access"
            | "has_access"
            | "has_group"
            | "exists"
            | "write"
    )
}

/// A client for one Odoo database. Cheap to clone: clones share the connection pool, the
/// uid, the caches and the pacing.
#[derive(Clone)]
pub struct OdooClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    retry: RetryPolicy,
    default_context: Context,
    transport: OnceCell<Arc<dyn Transport>>,
    version: OnceCell<ServerVersion>,
    /// Held across `authenticate` so that concurrent calls wait for one login.
    uid: Mutex<Option<i64>>,
    fields: std::sync::Mutex<HashMap<String, Arc<Fields>>>,
    pacer: Option<Pacer>,
}

struct Pacer {
    interval: Duration,
    next_allowed: Mutex<Option<Instant>>,
}

impl fmt::Debug for OdooClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OdooClient")
            .field("endpoint", &self.inner.endpoint)
            .field("transport", &self.transport_kind())
            .finish_non_exhaustive()
    }
}

impl OdooClient {
    /// Builds a client without contacting the server; with [`TransportChoice::Auto`] the
    /// version is asked on the first call.
    pub fn new(config: ClientConfig) -> Result<OdooClient, Error> {
        let endpoint = endpoint_for(&config)?;
        let transport = match config.transport {
            TransportChoice::Auto => None,
            TransportChoice::JsonRpc => Some(make_transport(Protocol::JsonRpc, &endpoint)),
            TransportChoice::Json2 => Some(make_transport(Protocol::Json2, &endpoint)),
        };
        Ok(OdooClient::assemble(config, endpoint, transport))
    }

    /// Builds a client and checks the connection: the version (with
    /// [`TransportChoice::Auto`]) and the credentials.
    pub async fn connect(config: ClientConfig) -> Result<OdooClient, Error> {
        let client = OdooClient::new(config)?;
        client.uid().await?;
        Ok(client)
    }

    /// A client over a transport of your own (a test double, a recording proxy). The
    /// configuration's URL is still validated; its transport choice is ignored.
    pub fn with_transport(
        config: ClientConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<OdooClient, Error> {
        let endpoint = endpoint_for(&config)?;
        Ok(OdooClient::assemble(config, endpoint, Some(transport)))
    }

    fn assemble(
        config: ClientConfig,
        endpoint: Endpoint,
        transport: Option<Arc<dyn Transport>>,
    ) -> OdooClient {
        OdooClient {
            inner: Arc::new(Inner {
                endpoint,
                retry: config.retry,
                default_context: config.default_context,
                transport: OnceCell::new_with(transport),
                version: OnceCell::new(),
                uid: Mutex::new(None),
                fields: std::sync::Mutex::new(HashMap::new()),
                pacer: config.min_call_interval.map(|interval| Pacer {
                    interval,
                    next_allowed: Mutex::new(None),
                }),
            }),
        }
    }

    /// The protocol in use; `None` while [`TransportChoice::Auto`] has not asked yet.
    pub fn transport_kind(&self) -> Option<Protocol> {
        self.inner.transport.get().map(|t| t.protocol())
    }

    /// The server's version, asked once and cached.
    pub async fn server_version(&self) -> Result<ServerVersion, Error> {
        let transport = self.transport().await?;
        self.inner
            .version
            .get_or_try_init(|| {
                self.idempotent("common", "version", || {
                    self.paced(transport.server_version())
                })
            })
            .await
            .cloned()
    }

    /// The user's id: `common.authenticate` (JSON-RPC) or `res.users.context_get` (JSON-2).
    /// Cached; refused credentials are [`Error::Authentication`].
    pub async fn uid(&self) -> Result<i64, Error> {
        let transport = self.transport().await?;
        self.idempotent("res.users", "authenticate", || {
            self.ensure_uid(transport.as_ref())
        })
        .await
    }

    /// The context merged under every call's.
    pub fn default_context(&self) -> &Context {
        &self.inner.default_context
    }

    /// `search_read`: the matching rows, with the requested fields and `id`.
    pub async fn search_read(
        &self,
        model: &str,
        options: &SearchReadOptions,
    ) -> Result<Vec<Record>, Error> {
        let raw = self.search_read_raw(model, options).await?;
        expect_shape(&raw, "search_read rows")
    }

    /// `search_read` decoded into your row type (see [`crate::value`] for the helpers that
    /// turn Odoo's `false` into `None`).
    pub async fn search_read_as<T: DeserializeOwned>(
        &self,
        model: &str,
        options: &SearchReadOptions,
    ) -> Result<Vec<T>, Error> {
        let raw = self.search_read_raw(model, options).await?;
        decode(&raw, model, "search_read")
    }

    async fn search_read_raw(
        &self,
        model: &str,
        options: &SearchReadOptions,
    ) -> Result<Box<RawValue>, Error> {
        let kwargs = options.to_kwargs(true);
        self.execute(
            model,
            "search_read",
            None,
            &kwargs,
            options.context.as_ref(),
        )
        .await
    }

    /// `search`: the matching ids (the options' `fields` are ignored).
    pub async fn search(
        &self,
        model: &str,
        options: &SearchReadOptions,
    ) -> Result<Vec<i64>, Error> {
        let kwargs = options.to_kwargs(false);
        let raw = self
            .execute(model, "search", None, &kwargs, options.context.as_ref())
            .await?;
        expect_shape(&raw, "search ids")
    }

    pub async fn search_count(
        &self,
        model: &str,
        domain: &Domain,
        context: Option<&Context>,
    ) -> Result<u64, Error> {
        let mut kwargs = Map::new();
        kwargs.insert("domain".into(), domain.to_json());
        let raw = self
            .execute(model, "search_count", None, &kwargs, context)
            .await?;
        expect_shape(&raw, "search_count result")
    }

    /// `read` of the given records. Ids that no longer exist are left out by Odoo (or raise
    /// a `MissingError`, depending on version). An empty `ids` answers without a call.
    pub async fn read<S: AsRef<str>>(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[S],
        context: Option<&Context>,
    ) -> Result<Vec<Record>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.read_raw(model, ids, fields, context).await?;
        expect_shape(&raw, "read rows")
    }

    /// `read` decoded into your row type.
    pub async fn read_as<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[S],
        context: Option<&Context>,
    ) -> Result<Vec<T>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.read_raw(model, ids, fields, context).await?;
        decode(&raw, model, "read")
    }

    async fn read_raw<S: AsRef<str>>(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[S],
        context: Option<&Context>,
    ) -> Result<Box<RawValue>, Error> {
        let mut kwargs = Map::new();
        if !fields.is_empty() {
            kwargs.insert("fields".into(), string_list(fields));
        }
        self.execute(model, "read", Some(ids), &kwargs, context)
            .await
    }

    /// The model's fields (type, label, relation, required, readonly, store, selection),
    /// fetched once per model and client. Labels are in the language of the first call.
    pub async fn fields_get(&self, model: &str) -> Result<Arc<Fields>, Error> {
        if let Some(cached) = self.fields_cache().get(model) {
            return Ok(Arc::clone(cached));
        }
        let mut kwargs = Map::new();
        kwargs.insert("attributes".into(), string_list(&FIELD_ATTRIBUTES));
        let raw = self
            .execute(model, "fields_get", None, &kwargs, None)
            .await?;
        let fields: Arc<Fields> = Arc::new(expect_shape(&raw, "fields_get description")?);
        self.fields_cache()
            .insert(model.to_owned(), Arc::clone(&fields));
        Ok(fields)
    }

    /// Splits `names` into the fields the model has and those it lacks on this server
    /// (fields differ between versions: ask rather than assume).
    pub async fn existing_fields<S: AsRef<str>>(
        &self,
        model: &str,
        names: &[S],
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let fields = self.fields_get(model).await?;
        let (present, missing) = names
            .iter()
            .map(|name| name.as_ref().to_owned())
            .partition(|name| fields.contains_key(name));
        Ok((present, missing))
    }

    /// Forgets the cached `fields_get` of one model, or of all with `None` (after a module
    /// upgrade).
    pub fn invalidate_fields(&self, model: Option<&str>) {
        let mut cache = self.fields_cache();
        match model {
            Some(model) => {
                cache.remove(model);
            }
            None => cache.clear(),
        }
    }

    /// `create` with one dict per record; returns the new ids in order. Not retried after a
    /// failure that may have left records behind (timeouts, 5xx other than 503).
    pub async fn create(
        &self,
        model: &str,
        vals_list: Vec<Map<String, Value>>,
        context: Option<&Context>,
    ) -> Result<Vec<i64>, Error> {
        if vals_list.is_empty() {
            return Ok(Vec::new());
        }
        let mut kwargs = Map::new();
        kwargs.insert(
            "vals_list".into(),
            Value::Array(vals_list.into_iter().map(Value::Object).collect()),
        );
        let raw = self
            .execute(model, "create", None, &kwargs, context)
            .await?;
        // Servers that do not batch answer a single id; accept both shapes.
        if let Ok(id) = serde_json::from_str::<i64>(raw.get()) {
            return Ok(vec![id]);
        }
        expect_shape(&raw, "create ids")
    }

    /// `write` the same values on every record. Returns Odoo's answer; an override that
    /// returns nothing counts as success. An empty `ids` answers `true` without a call.
    pub async fn write(
        &self,
        model: &str,
        ids: &[i64],
        vals: Map<String, Value>,
        context: Option<&Context>,
    ) -> Result<bool, Error> {
        if ids.is_empty() {
            return Ok(true);
        }
        let mut kwargs = Map::new();
        kwargs.insert("vals".into(), Value::Object(vals));
        let raw = self
            .execute(model, "write", Some(ids), &kwargs, context)
            .await?;
        Ok(truthy(&raw))
    }

    /// `unlink` the records. An empty `ids` answers `true` without a call.
    pub async fn unlink(
        &self,
        model: &str,
        ids: &[i64],
        context: Option<&Context>,
    ) -> Result<bool, Error> {
        if ids.is_empty() {
            return Ok(true);
        }
        let raw = self
            .execute(model, "unlink", Some(ids), &Map::new(), context)
            .await?;
        Ok(truthy(&raw))
    }

    /// Any public method: a record method when `ids` is given (`action_confirm`,
    /// `button_validate`), a model method otherwise. The answer may be `true`, `null`, or a
    /// window action (a wizard) meaning the work was *not* done: check the record's state.
    /// A `context` key in `kwargs` is merged over `context`.
    pub async fn call_method(
        &self,
        model: &str,
        method: &str,
        ids: Option<&[i64]>,
        kwargs: Map<String, Value>,
        context: Option<&Context>,
    ) -> Result<Value, Error> {
        self.call_method_as(model, method, ids, kwargs, context)
            .await
    }

    /// [`OdooClient::call_method`] decoded into `T`.
    pub async fn call_method_as<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        ids: Option<&[i64]>,
        mut kwargs: Map<String, Value>,
        context: Option<&Context>,
    ) -> Result<T, Error> {
        let merged;
        let context = match kwargs.remove("context") {
            Some(Value::Object(inner)) => {
                merged = match context {
                    Some(base) => Context(inner).merged_over(base),
                    None => Context(inner),
                };
                Some(&merged)
            }
            Some(Value::Null) | None => context,
            Some(other) => {
                return Err(Error::invalid_request(format!(
                    "the context keyword must be an object, got {other}"
                )));
            }
        };
        let raw = self.execute(model, method, ids, &kwargs, context).await?;
        decode(&raw, model, method)
    }

    /// Runs one call through the retry loop, re-authenticating once if Odoo refuses a cached
    /// uid, and returns the undecoded result.
    async fn execute(
        &self,
        model: &str,
        method: &str,
        ids: Option<&[i64]>,
        kwargs: &Map<String, Value>,
        context: Option<&Context>,
    ) -> Result<Box<RawValue>, Error> {
        validate_name("model", model)?;
        validate_name("method", method)?;
        let context = self.effective_context(context);
        let call = Call {
            model,
            method,
            ids,
            kwargs,
            context: &context,
            positional: positional_keyword(method),
        };
        let idempotent = is_idempotent(method);
        let transport = self.transport().await?;
        let mut retrier = Retrier::new(&self.inner.retry, model, method);
        let mut reauthenticated = false;
        loop {
            let uid = if transport.uses_uid() {
                match self.ensure_uid(transport.as_ref()).await {
                    Ok(uid) => Some(uid),
                    // The method was not sent: any retryable failure may be retried.
                    Err(error) if retrier.backoff(&error, true).await => continue,
                    Err(error) => return Err(error),
                }
            } else {
                None
            };
            self.pace().await;
            let error = match transport.execute(uid, call).await {
                Ok(raw) => return Ok(raw),
                Err(error) => error,
            };
            if let Some(stale) = uid
                && !reauthenticated
                && error.needs_reauthentication()
            {
                reauthenticated = true;
                tracing::info!(
                    target: "odoo_rpc",
                    model, method, error_class = error.class(),
                    "Odoo refused the cached uid; authenticating again"
                );
                self.forget_uid(stale).await;
                continue;
            }
            let resend_ok = idempotent || error.is_safe_to_resend();
            if !retrier.backoff(&error, resend_ok).await {
                return Err(error);
            }
        }
    }

    fn effective_context<'a>(
        &'a self,
        context: Option<&'a Context>,
    ) -> Cow<'a, Map<String, Value>> {
        let default = &self.inner.default_context;
        match context {
            None => Cow::Borrowed(&default.0),
            Some(context) if default.is_empty() => Cow::Borrowed(&context.0),
            Some(context) => Cow::Owned(context.merged_over(default).0),
        }
    }

    async fn transport(&self) -> Result<Arc<dyn Transport>, Error> {
        self.inner
            .transport
            .get_or_try_init(|| async {
                let endpoint = &self.inner.endpoint;
                let version = self
                    .idempotent("common", "version", || discover_version(endpoint, || self.pace()))
                    .await?;
                // Only `Auto` gets here: explicit choices are set at construction.
                let protocol = version.preferred_protocol();
                tracing::debug!(target: "odoo_rpc", version = %version, %protocol, "chose the transport");
                // Only fails if another task set it first, with the same answer.
                let _ = self.inner.version.set(version);
                Ok(make_transport(protocol, endpoint))
            })
            .await
            .cloned()
    }

    async fn ensure_uid(&self, transport: &dyn Transport) -> Result<i64, Error> {
        let mut cached = self.inner.uid.lock().await;
        if let Some(uid) = *cached {
            return Ok(uid);
        }
        self.pace().await;
        let uid = transport.authenticate().await?;
        *cached = Some(uid);
        Ok(uid)
    }

    async fn forget_uid(&self, stale: i64) {
        let mut cached = self.inner.uid.lock().await;
        // Another task may already have logged in again.
        if *cached == Some(stale) {
            *cached = None;
        }
    }

    /// Retries an operation that has no effect on the server.
    async fn idempotent<T, F, Fut>(
        &self,
        model: &str,
        method: &str,
        mut operation: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut retrier = Retrier::new(&self.inner.retry, model, method);
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if retrier.backoff(&error, true).await => {}
                Err(error) => return Err(error),
            }
        }
    }

    async fn paced<T>(&self, request: impl Future<Output = T>) -> T {
        self.pace().await;
        request.await
    }

    /// Waits until this client may send its next request.
    async fn pace(&self) {
        let Some(pacer) = &self.inner.pacer else {
            return;
        };
        // Holding the lock while sleeping queues callers in order (tokio's mutex is fair).
        let mut next_allowed = pacer.next_allowed.lock().await;
        let now = Instant::now();
        let at = next_allowed.unwrap_or(now).max(now);
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        *next_allowed = Some(at + pacer.interval);
    }

    fn fields_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Fields>>> {
        // The map stays consistent even if a holder panicked: entries are inserted whole.
        self.inner
            .fields
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn endpoint_for(config: &ClientConfig) -> Result<Endpoint, Error> {
    Endpoint::new(&EndpointConfig {
        base_url: &config.base_url,
        database: &config.database,
        login: &config.login,
        api_key: &config.api_key,
        timeout: config.timeout,
        user_agent: config.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT),
        max_response_bytes: config.max_response_bytes,
        http: config.http_pool.as_ref(),
    })
}

fn make_transport(protocol: Protocol, endpoint: &Endpoint) -> Arc<dyn Transport> {
    match protocol {
        Protocol::JsonRpc => Arc::new(JsonRpcTransport::new(endpoint.clone())),
        Protocol::Json2 => Arc::new(Json2Transport::new(endpoint.clone())),
    }
}

/// Counts retries of one call and sleeps between them.
struct Retrier<'a> {
    policy: &'a RetryPolicy,
    model: &'a str,
    method: &'a str,
    retries: u32,
}

impl<'a> Retrier<'a> {
    fn new(policy: &'a RetryPolicy, model: &'a str, method: &'a str) -> Self {
        Retrier {
            policy,
            model,
            method,
            retries: 0,
        }
    }

    /// Sleeps and answers `true` when the failed attempt should be made again.
    /// `resend_ok` is false for a non-idempotent call whose failure leaves open whether it
    /// took effect.
    async fn backoff(&mut self, error: &Error, resend_ok: bool) -> bool {
        if !error.is_retryable() {
            return false;
        }
        if !resend_ok {
            tracing::warn!(
                target: "odoo_rpc",
                model = self.model, method = self.method, error_class = error.class(),
                "not retrying: the call may have taken effect before it failed"
            );
            return false;
        }
        if self.retries >= self.policy.max_retries {
            return false;
        }
        let delay = self
            .policy
            .delay_for(self.retries, error.retry_after(), &mut rand::rng());
        self.retries += 1;
        tracing::warn!(
            target: "odoo_rpc",
            model = self.model,
            method = self.method,
            attempt = self.retries,
            max_retries = self.policy.max_retries,
            error_class = error.class(),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "retrying Odoo call"
        );
        tokio::time::sleep(delay).await;
        true
    }
}

fn string_list<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_ref())).collect())
}

fn truthy(raw: &RawValue) -> bool {
    raw.get().trim() != "false"
}

/// Decodes a result whose shape the library knows; a mismatch means the server (or
/// something in between) is not behaving like Odoo.
fn expect_shape<T: DeserializeOwned>(raw: &RawValue, what: &str) -> Result<T, Error> {
    serde_json::from_str(raw.get())
        .map_err(|e| Error::malformed(format!("unexpected {what}: {e}"), raw.get().as_bytes()))
}

/// Decodes a result into the caller's type; a mismatch is the caller's type not fitting.
fn decode<T: DeserializeOwned>(raw: &RawValue, model: &str, method: &str) -> Result<T, Error> {
    serde_json::from_str(raw.get()).map_err(|e| Error::Decode {
        what: format!("the result of {model}.{method}"),
        message: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::field;
    use crate::error::{OdooError, OdooErrorKind, TransportKind};
    use crate::transport::BoxFuture;
    use serde_json::json;
    use std::collections::VecDeque;
    use std::sync::Mutex as StdMutex;

    #[derive(Debug, Clone)]
    struct Recorded {
        model: String,
        method: String,
        ids: Option<Vec<i64>>,
        kwargs: Map<String, Value>,
        context: Map<String, Value>,
        uid: Option<i64>,
        at: Instant,
    }

    /// A scripted transport: answers are taken in order; when the script runs out, logins
    /// succeed with uid 2 and calls answer `null`.
    #[derive(Debug, Default)]
    struct Mock {
        uses_uid: bool,
        logins: StdMutex<VecDeque<Result<i64, Error>>>,
        answers: StdMutex<VecDeque<Result<Value, Error>>>,
        calls: StdMutex<Vec<Recorded>>,
        login_count: StdMutex<usize>,
    }

    impl Mock {
        fn json_rpc() -> Mock {
            Mock {
                uses_uid: true,
                ..Mock::default()
            }
        }

        fn answers(self, answers: impl IntoIterator<Item = Result<Value, Error>>) -> Mock {
            self.answers.lock().unwrap().extend(answers);
            self
        }

        fn logins(self, logins: impl IntoIterator<Item = Result<i64, Error>>) -> Mock {
            self.logins.lock().unwrap().extend(logins);
            self
        }

        fn calls(&self) -> Vec<Recorded> {
            self.calls.lock().unwrap().clone()
        }

        fn login_count(&self) -> usize {
            *self.login_count.lock().unwrap()
        }
    }

    impl Transport for Mock {
        fn protocol(&self) -> Protocol {
            if self.uses_uid {
                Protocol::JsonRpc
            } else {
                Protocol::Json2
            }
        }

        fn uses_uid(&self) -> bool {
            self.uses_uid
        }

        fn server_version(&self) -> BoxFuture<'_, Result<ServerVersion, Error>> {
            Box::pin(async { Ok(ServerVersion::parse("18.0").unwrap()) })
        }

        fn authenticate(&self) -> BoxFuture<'_, Result<i64, Error>> {
            Box::pin(async {
                *self.login_count.lock().unwrap() += 1;
                self.logins.lock().unwrap().pop_front().unwrap_or(Ok(2))
            })
        }

        fn execute<'a>(
            &'a self,
            uid: Option<i64>,
            call: Call<'a>,
        ) -> BoxFuture<'a, Result<Box<RawValue>, Error>> {
            Box::pin(async move {
                self.calls.lock().unwrap().push(Recorded {
                    model: call.model.to_owned(),
                    method: call.method.to_owned(),
                    ids: call.ids.map(<[i64]>::to_vec),
                    kwargs: call.kwargs.clone(),
                    context: call.context.clone(),
                    uid,
                    at: Instant::now(),
                });
                let answer = self
                    .answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Ok(Value::Null));
                answer.map(|value| serde_json::value::to_raw_value(&value).unwrap())
            })
        }
    }

    fn config() -> ClientConfig {
        ClientConfig::new("http://odoo.test", "db", "bot", "k")
    }

    fn client(mock: &Arc<Mock>, config: ClientConfig) -> OdooClient {
        OdooClient::with_transport(config, Arc::clone(mock) as Arc<dyn Transport>).unwrap()
    }

    fn odoo(name: &str, message: &str) -> Error {
        Error::Odoo(OdooError::new(name, message))
    }

    fn transport_error(kind: TransportKind) -> Error {
        Error::Transport {
            kind,
            message: "test".into(),
        }
    }

    fn http(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Http {
            status,
            retry_after,
            body_excerpt: String::new(),
        }
    }

    #[tokio::test]
    async fn search_read_sends_named_arguments_and_the_merged_context() {
        let mock = Arc::new(Mock::json_rpc().answers([Ok(json!([
            {"id": 1, "name": "S1", "partner_id": [3, "Azure"]}
        ]))]));
        let mut config = config();
        config.default_context = Context::new().lang("fr_FR").tz("UTC");
        let client = client(&mock, config);
        let rows = client
            .search_read(
                "sale.order",
                &SearchReadOptions::new(field("state").eq("sale"))
                    .fields(["name", "partner_id"])
                    .order("id")
                    .limit(10)
                    .context(Context::new().active_test(false).lang("en_US")),
            )
            .await
            .unwrap();
        assert_eq!(rows[0].many2one("partner_id").unwrap().unwrap().id, 3);
        let calls = mock.calls();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(
            (call.model.as_str(), call.method.as_str()),
            ("sale.order", "search_read")
        );
        assert_eq!(call.ids, None);
        assert_eq!(call.uid, Some(2));
        assert_eq!(
            Value::Object(call.kwargs.clone()),
            json!({"domain": [["state", "=", "sale"]], "fields": ["name", "partner_id"],
                   "limit": 10, "order": "id"})
        );
        assert_eq!(
            Value::Object(call.context.clone()),
            json!({"lang": "en_US", "tz": "UTC", "active_test": false})
        );
    }

    #[tokio::test]
    async fn record_methods_pass_ids_and_none_is_a_successful_null() {
        let mock = Arc::new(Mock::json_rpc());
        let client = client(&mock, config());
        let answer = client
            .call_method(
                "sale.order",
                "action_lock",
                Some(&[7]),
                Map::new(),
                Some(&Context::new().disable_cancel_warning(true)),
            )
            .await
            .unwrap();
        assert_eq!(answer, Value::Null);
        let call = &mock.calls()[0];
        assert_eq!(call.ids, Some(vec![7]));
        assert_eq!(
            call.context.get("disable_cancel_warning"),
            Some(&json!(true))
        );
    }

    #[tokio::test]
    async fn a_context_keyword_is_merged_over_the_context_argument() {
        let mock = Arc::new(Mock::json_rpc());
        let client = client(&mock, config());
        let mut kwargs = Map::new();
        kwargs.insert("context".into(), json!({"skip_sms": true}));
        client
            .call_method(
                "stock.picking",
                "button_validate",
                Some(&[1]),
                kwargs,
                Some(&Context::new().skip_sms(false).lang("en_US")),
            )
            .await
            .unwrap();
        let call = &mock.calls()[0];
        assert!(call.kwargs.is_empty());
        assert_eq!(
            Value::Object(call.context.clone()),
            json!({"skip_sms": true, "lang": "en_US"})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_retried_on_every_retryable_error() {
        let mock = Arc::new(Mock::json_rpc().answers([
            Err(http(503, None)),
            Err(transport_error(TransportKind::Timeout)),
            Err(odoo("psycopg2.errors.SerializationFailure", "x")),
            Ok(json!([4, 5])),
        ]));
        let client = client(&mock, config());
        let ids = client
            .search("res.partner", &SearchReadOptions::default())
            .await
            .unwrap();
        assert_eq!(ids, vec![4, 5]);
        assert_eq!(mock.calls().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_max_retries() {
        let mock = Arc::new(Mock::json_rpc().answers((0..10).map(|_| Err(http(502, None)))));
        let client = client(&mock, config());
        let error = client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap_err();
        assert_eq!(error.http_status(), Some(502));
        assert_eq!(mock.calls().len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn business_errors_are_not_retried() {
        let mock = Arc::new(
            Mock::json_rpc().answers([Err(odoo("odoo.exceptions.ValidationError", "Bad VAT"))]),
        );
        let client = client(&mock, config());
        let error = client
            .write("res.partner", &[1], Map::new(), None)
            .await
            .unwrap_err();
        assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::ValidationError);
        assert_eq!(mock.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn create_is_not_resent_when_it_may_have_run() {
        for ambiguous in [
            transport_error(TransportKind::Timeout),
            transport_error(TransportKind::ConnectionClosed),
            http(500, None),
            http(502, None),
            http(504, None),
        ] {
            let mock = Arc::new(Mock::json_rpc().answers([Err(ambiguous.clone()), Ok(json!([9]))]));
            let client = client(&mock, config());
            let error = client
                .create("res.partner", vec![Map::new()], None)
                .await
                .unwrap_err();
            assert_eq!(error, ambiguous);
            assert_eq!(mock.calls().len(), 1, "{ambiguous:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn create_is_resent_when_it_provably_did_not_run() {
        let mock = Arc::new(Mock::json_rpc().answers([
            Err(transport_error(TransportKind::Connect)),
            Err(http(429, None)),
            Err(http(503, None)),
            Err(odoo("odoo.exceptions.LockError", "locked")),
            Ok(json!([9])),
        ]));
        let client = client(&mock, config());
        let ids = client
            .create("res.partner", vec![Map::new()], None)
            .await
            .unwrap();
        assert_eq!(ids, vec![9]);
        assert_eq!(mock.calls().len(), 5);
        assert_eq!(mock.calls()[0].kwargs.get("vals_list"), Some(&json!([{}])));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let mock = Arc::new(
            Mock::json_rpc().answers([Err(http(429, Some(Duration::from_secs(7)))), Ok(json!(3))]),
        );
        let client = client(&mock, config());
        client.uid().await.unwrap();
        let started = Instant::now();
        let count = client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap();
        assert_eq!(count, 3);
        let calls = mock.calls();
        assert!(calls[1].at - calls[0].at >= Duration::from_secs(7));
        assert!(started.elapsed() < Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_uid_is_replaced_once() {
        let mock = Arc::new(Mock::json_rpc().logins([Ok(2), Ok(3)]).answers([
            Err(odoo("odoo.exceptions.AccessDenied", "Access Denied")),
            Ok(json!(true)),
        ]));
        let client = client(&mock, config());
        assert!(
            client
                .write("res.partner", &[1], Map::new(), None)
                .await
                .unwrap()
        );
        assert_eq!(mock.login_count(), 2);
        let uids: Vec<_> = mock.calls().iter().map(|c| c.uid).collect();
        assert_eq!(uids, vec![Some(2), Some(3)]);

        let mock = Arc::new(Mock::json_rpc().answers([
            Err(odoo("odoo.http.SessionExpiredException", "Session expired")),
            Err(odoo("odoo.http.SessionExpiredException", "Session expired")),
            Ok(json!(true)),
        ]));
        let client = self::client(&mock, config());
        let error = client
            .write("res.partner", &[1], Map::new(), None)
            .await
            .unwrap_err();
        assert_eq!(error.odoo().unwrap().kind, OdooErrorKind::SessionExpired);
        assert_eq!(mock.calls().len(), 2);
        assert_eq!(mock.login_count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_are_not_retried() {
        let refused = Error::Authentication {
            message: "wrong database, login or API key".into(),
        };
        let mock = Arc::new(Mock::json_rpc().logins([Err(refused.clone())]));
        let client = client(&mock, config());
        let error = client
            .search_count("res.partner", &Domain::all(), None)
            .await
            .unwrap_err();
        assert_eq!(error, refused);
        assert!(error.is_authentication());
        assert_eq!(mock.login_count(), 1);
        assert!(mock.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_cooldown_waits_a_minute() {
        let mock = Arc::new(Mock::json_rpc().logins([Err(odoo(
            "odoo.exceptions.AccessDenied",
            "Too many login failures, please wait a bit before trying again.",
        ))]));
        let client = client(&mock, config());
        let started = Instant::now();
        assert_eq!(client.uid().await.unwrap(), 2);
        assert!(started.elapsed() >= Duration::from_secs(60));
        assert_eq!(mock.login_count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn json2_calls_skip_login_and_reauthentication() {
        let mock = Arc::new(
            Mock::default().answers([Err(odoo("odoo.exceptions.AccessDenied", "Access Denied"))]),
        );
        let client = client(&mock, config());
        assert_eq!(client.transport_kind(), Some(Protocol::Json2));
        let error = client
            .read("res.partner", &[1], &["name"], None)
            .await
            .unwrap_err();
        assert!(error.is_authentication());
        assert_eq!(mock.login_count(), 0);
        assert_eq!(mock.calls().len(), 1);
        assert_eq!(mock.calls()[0].uid, None);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_paced() {
        let mock = Arc::new(Mock::json_rpc());
        let mut config = config();
        config.min_call_interval = Some(Duration::from_secs(1));
        let client = client(&mock, config);
        let started = Instant::now();
        let (a, b, c) = tokio::join!(
            client.call_method("res.partner", "x", None, Map::new(), None),
            client.call_method("res.partner", "y", None, Map::new(), None),
            client.call_method("res.partner", "z", None, Map::new(), None),
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        let mut times: Vec<_> = mock.calls().iter().map(|c| c.at).collect();
        times.sort();
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_secs(1));
        }
        // The login went first and was paced too.
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test]
    async fn fields_get_is_cached_per_model() {
        let mock = Arc::new(Mock::json_rpc().answers([Ok(json!({
            "name": {"type": "char", "string": "Name", "required": true},
            "state": {"type": "selection", "string": "Status",
                      "selection": [["draft", "Quotation"], ["sale", "Sales Order"]]},
            "partner_id": {"type": "many2one", "string": "Customer",
                           "relation": "res.partner", "store": true},
        }))]));
        let client = client(&mock, config());
        let fields = client.fields_get("sale.order").await.unwrap();
        assert_eq!(
            fields["partner_id"].relation.as_deref(),
            Some("res.partner")
        );
        assert_eq!(
            fields["state"].selection[1],
            ("sale".into(), "Sales Order".into())
        );
        assert!(fields["name"].required && fields["name"].store);
        let (present, missing) = client
            .existing_fields("sale.order", &["name", "mobile", "state"])
            .await
            .unwrap();
        assert_eq!(present, vec!["name", "state"]);
        assert_eq!(missing, vec!["mobile"]);
        assert_eq!(mock.calls().len(), 1);
        assert_eq!(
            mock.calls()[0].kwargs["attributes"],
            json!([
                "type",
                "string",
                "relation",
                "required",
                "readonly",
                "store",
                "selection"
            ])
        );
        client.invalidate_fields(Some("sale.order"));
        assert!(client.fields_get("sale.order").await.is_err());
    }

    #[tokio::test]
    async fn typed_decoding_failures_name_the_call() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Row {
            id: i64,
            name: String,
        }
        let mock = Arc::new(Mock::json_rpc().answers([Ok(json!([{"id": 1, "name": false}]))]));
        let client = client(&mock, config());
        let error = client
            .search_read_as::<Row>("res.partner", &SearchReadOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
        assert!(
            error.to_string().contains("res.partner.search_read"),
            "{error}"
        );

        let mock = Arc::new(Mock::json_rpc().answers([Ok(json!({"not": "rows"}))]));
        let client = self::client(&mock, config());
        let error = client
            .search_read("res.partner", &SearchReadOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::MalformedResponse { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn bad_names_and_empty_id_lists_make_no_request() {
        let mock = Arc::new(Mock::json_rpc());
        let client = client(&mock, config());
        assert!(matches!(
            client
                .call_method("res/partner", "x", None, Map::new(), None)
                .await,
            Err(Error::InvalidRequest { .. })
        ));
        assert!(
            client
                .read("res.partner", &[], &["name"], None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            client
                .write("res.partner", &[], Map::new(), None)
                .await
                .unwrap()
        );
        assert!(client.unlink("res.partner", &[], None).await.unwrap());
        assert!(
            client
                .create("res.partner", vec![], None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(mock.calls().is_empty());
    }

    #[test]
    fn client_futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let mock = Arc::new(Mock::json_rpc());
        let client = client(&mock, config());
        let options = SearchReadOptions::default();
        assert_send(client.search_read("res.partner", &options));
        assert_send(client.search_read_as::<Record>("res.partner", &options));
        assert_send(client.create("res.partner", vec![], None));
        assert_send(client.call_method("res.partner", "x", None, Map::new(), None));
        assert_send(client.server_version());
        assert_send(OdooClient::connect(config()));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let mut config = config();
        config.api_key = ApiKey::new("super-secret-key-1234");
        let text = format!("{config:?}");
        assert!(!text.contains("super-secret"), "{text}");
        let client = OdooClient::new(config).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert_eq!(client.transport_kind(), None);
    }
}
