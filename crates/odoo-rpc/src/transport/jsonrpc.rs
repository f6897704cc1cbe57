//! JSON-RPC over `POST /jsonrpc`: `common.version`, `common.authenticate`,
//! `object.execute_kw`. Errors come back as HTTP 200 with an `error` object.

use super::{
    BoxFuture, Call, Endpoint, HttpReply, Kwargs, OdooErrorBody, PositionalArgs, Protocol,
    ServerVersion, Transport, to_body,
};
use crate::error::Error;
use crate::secret::ApiKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU64, Ordering};

/// The JSON-RPC transport (Odoo ≤ 18; still served, deprecated, by 19).
#[derive(Debug)]
pub struct JsonRpcTransport {
    endpoint: Endpoint,
    next_id: AtomicU64,
}

#[derive(Serialize)]
struct Request<'a, A> {
    jsonrpc: &'static str,
    method: &'static str,
    params: Params<'a, A>,
    id: u64,
}

#[derive(Serialize)]
struct Params<'a, A> {
    service: &'a str,
    method: &'a str,
    args: A,
}

/// The answer envelope. A method returning `None` gets neither `result` nor `error`
/// (`{"jsonrpc": "2.0", "id": 1}`, seen on Odoo 18): that is a successful `null`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    jsonrpc: Option<serde::de::IgnoredAny>,
    /// `Some` whenever the key is there, `"result": null` included.
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<OdooErrorBody>,
}

impl RpcError {
    fn into_error(self, http_status: Option<u16>, secret: &ApiKey) -> Error {
        Error::Odoo(self.data.unwrap_or_default().into_error(
            self.message,
            http_status,
            self.code,
            secret,
        ))
    }
}

const LABEL: &str = "POST /jsonrpc";

impl JsonRpcTransport {
    pub fn new(endpoint: Endpoint) -> Self {
        JsonRpcTransport {
            endpoint,
            next_id: AtomicU64::new(1),
        }
    }

    async fn call_service<A: Serialize>(
        &self,
        service: &str,
        method: &str,
        args: A,
    ) -> Result<Box<RawValue>, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        call_service(&self.endpoint, id, service, method, args).await
    }
}

async fn call_service<A: Serialize>(
    endpoint: &Endpoint,
    id: u64,
    service: &str,
    method: &str,
    args: A,
) -> Result<Box<RawValue>, Error> {
    let body = to_body(&Request {
        jsonrpc: "2.0",
        method: "call",
        params: Params {
            service,
            method,
            args,
        },
        id,
    })?;
    let reply = endpoint
        .send(endpoint.post_json("/jsonrpc", body), LABEL)
        .await?;
    parse_reply(reply, endpoint)
}

fn parse_reply(reply: HttpReply, endpoint: &Endpoint) -> Result<Box<RawValue>, Error> {
    parse_envelope(reply, endpoint).map_err(|error| error.naming_database(endpoint.database()))
}

fn parse_envelope(reply: HttpReply, endpoint: &Endpoint) -> Result<Box<RawValue>, Error> {
    if !reply.is_success() {
        // A proxy's page, or (rarely) an Odoo error with a real status: only the latter has
        // an exception name worth classifying.
        if let Ok(Envelope {
            error: Some(error), ..
        }) = serde_json::from_slice::<Envelope<'_>>(&reply.body)
            && error.data.as_ref().is_some_and(|d| d.name.is_some())
        {
            return Err(error.into_error(Some(reply.status), endpoint.api_key()));
        }
        return Err(reply.into_http_error(endpoint.api_key()));
    }
    result_of(&reply.body, endpoint.api_key(), |message| {
        endpoint.malformed(message, &reply.body)
    })
}

/// Decodes a successful (HTTP 2xx) `/jsonrpc` answer into `T`, exactly as the client does
/// for every call: the envelope is parsed borrowing the result's text, which is then
/// decoded into `T`. Public so benchmarks measure the real path.
pub fn decode_result<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let raw = result_of(body, &ApiKey::new(String::new()), |message| {
        Error::MalformedResponse {
            message,
            excerpt: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        }
    })?;
    serde_json::from_str(raw.get()).map_err(|error| Error::Decode {
        what: "the result".into(),
        message: error.to_string(),
    })
}

fn result_of(
    body: &[u8],
    secret: &ApiKey,
    malformed: impl Fn(String) -> Error,
) -> Result<Box<RawValue>, Error> {
    let not_an_envelope = |detail: &str| {
        malformed(format!(
            "the /jsonrpc answer is not a JSON-RPC envelope: {detail}"
        ))
    };
    // serde would take a JSON array for a struct, field by field.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(not_an_envelope("not a JSON object"));
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| not_an_envelope(&e.to_string()))?;
    match envelope {
        Envelope {
            error: Some(error), ..
        } => Err(error.into_error(None, secret)),
        Envelope {
            result: Some(result),
            ..
        } => Ok(result.to_owned()),
        // No result from a method that returned None; an object without even `jsonrpc` is
        // some other server's JSON.
        Envelope {
            jsonrpc: Some(_), ..
        } => Ok(RawValue::NULL.to_owned()),
        Envelope { jsonrpc: None, .. } => Err(not_an_envelope("no jsonrpc, result or error")),
    }
}

/// `common.version`, without credentials.
pub(crate) async fn common_version(endpoint: &Endpoint) -> Result<ServerVersion, Error> {
    let raw = call_service(endpoint, 0, "common", "version", [(); 0]).await?;
    version_from_raw(&raw)
}

fn version_from_raw(raw: &RawValue) -> Result<ServerVersion, Error> {
    let value: Value = serde_json::from_str(raw.get())
        .map_err(|e| Error::malformed(format!("common.version: {e}"), raw.get().as_bytes()))?;
    ServerVersion::from_parts(
        value.get("server_version").and_then(Value::as_str),
        value.get("server_version_info"),
    )
    .ok_or_else(|| {
        Error::malformed(
            "common.version answered without a server version",
            raw.get().as_bytes(),
        )
    })
}

impl Transport for JsonRpcTransport {
    fn protocol(&self) -> Protocol {
        Protocol::JsonRpc
    }

    fn uses_uid(&self) -> bool {
        true
    }

    fn server_version(&self) -> BoxFuture<'_, Result<ServerVersion, Error>> {
        Box::pin(async move {
            let raw = self.call_service("common", "version", [(); 0]).await?;
            version_from_raw(&raw)
        })
    }

    fn authenticate(&self) -> BoxFuture<'_, Result<i64, Error>> {
        Box::pin(async move {
            let endpoint = &self.endpoint;
            let raw = self
                .call_service(
                    "common",
                    "authenticate",
                    (
                        endpoint.database(),
                        endpoint.login(),
                        endpoint.api_key().expose(),
                        serde_json::Map::new(),
                    ),
                )
                .await?;
            let answer = serde_json::from_str::<Value>(raw.get()).ok();
            if answer == Some(Value::Bool(false)) {
                return Err(Error::Authentication {
                    message: format!(
                        "Odoo refused login {:?} on database {:?}: wrong database, login or API key",
                        endpoint.login(),
                        endpoint.database()
                    ),
                });
            }
            answer
                .as_ref()
                .and_then(Value::as_i64)
                .filter(|uid| *uid > 0)
                .ok_or_else(|| {
                    endpoint.malformed(
                        "common.authenticate answered neither a uid nor false",
                        raw.get().as_bytes(),
                    )
                })
        })
    }

    fn execute<'a>(
        &'a self,
        uid: Option<i64>,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Box<RawValue>, Error>> {
        Box::pin(async move {
            let uid = uid.ok_or_else(|| {
                Error::invalid_request("JSON-RPC execute_kw needs the uid from authenticate")
            })?;
            let endpoint = &self.endpoint;
            self.call_service(
                "object",
                "execute_kw",
                (
                    endpoint.database(),
                    uid,
                    endpoint.api_key().expose(),
                    call.model,
                    call.method,
                    PositionalArgs::of(&call),
                    Kwargs {
                        ids: None,
                        kwargs: call.kwargs,
                        context: call.context,
                        skip: call.positional,
                    },
                ),
            )
            .await
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::{OdooErrorKind, TransportKind};
    use crate::secret::ApiKey;
    use crate::transport::{DEFAULT_USER_AGENT, EndpointConfig};
    use bytes::Bytes;
    use std::time::Duration;

    fn endpoint() -> Endpoint {
        Endpoint::new(&EndpointConfig {
            max_response_bytes: crate::transport::DEFAULT_MAX_RESPONSE_BYTES,
            base_url: "http://127.0.0.1:1",
            database: "db",
            login: "admin",
            api_key: &ApiKey::new("secret-key-0123456789"),
            timeout: Duration::from_secs(1),
            user_agent: DEFAULT_USER_AGENT,
            http: None,
        })
        .unwrap()
    }

    fn reply(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            retry_after: None,
            location: None,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    fn parse(status: u16, body: &str) -> Result<Box<RawValue>, Error> {
        parse_reply(reply(status, body), &endpoint())
    }

    #[test]
    fn a_missing_result_is_a_successful_null() {
        assert_eq!(
            parse(200, r#"{"jsonrpc": "2.0", "id": 1}"#).unwrap().get(),
            "null"
        );
        assert_eq!(
            parse(200, r#"{"jsonrpc": "2.0", "id": 1, "result": null}"#)
                .unwrap()
                .get(),
            "null"
        );
        assert_eq!(
            parse(200, r#"{"jsonrpc":"2.0","id":1,"result":[{"id":1}]}"#)
                .unwrap()
                .get(),
            r#"[{"id":1}]"#
        );
    }

    #[test]
    fn errors_are_classified_on_data_name_not_code() {
        let error = parse(
            200,
            r#"{"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "message": "Odoo Server Error",
              "data": {"name": "odoo.exceptions.ValidationError", "message": "Bad VAT",
                       "arguments": ["Bad VAT"], "context": {},
                       "debug": "Traceback (most recent call last):\n  File secret.py"}}}"#,
        )
        .unwrap_err();
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::ValidationError);
        assert_eq!(odoo.message, "Bad VAT");
        assert_eq!(odoo.code, Some(200));
        assert!(!error.to_string().contains("Traceback"));

        let expired = parse(
            200,
            r#"{"jsonrpc": "2.0", "id": 1, "error": {"code": 100, "message": "Odoo Session Expired",
              "data": {"name": "odoo.http.SessionExpiredException", "message": "Session expired"}}}"#,
        )
        .unwrap_err();
        assert_eq!(expired.odoo().unwrap().kind, OdooErrorKind::SessionExpired);

        let bare = parse(200, r#"{"error": {"code": 0, "message": "boom"}}"#).unwrap_err();
        assert_eq!(bare.odoo().unwrap().kind, OdooErrorKind::Other);
        assert_eq!(bare.odoo().unwrap().message, "boom");
    }

    #[test]
    fn non_json_answers_are_malformed_or_http_errors() {
        assert!(matches!(
            parse(200, "<html>maintenance</html>"),
            Err(Error::MalformedResponse { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"result": [1, 2"#),
            Err(Error::MalformedResponse { .. })
        ));
        assert_eq!(
            parse(200, r#"{"id": 1, "result": null}"#).unwrap().get(),
            "null"
        );
        for not_an_envelope in ["[1]", "{}", r#"{"message": "hello"}"#, "42"] {
            assert!(
                matches!(
                    parse(200, not_an_envelope),
                    Err(Error::MalformedResponse { .. })
                ),
                "{not_an_envelope}"
            );
        }
        let error = parse(502, "<html><body><h1>502 Bad Gateway</h1></body></html>").unwrap_err();
        assert_eq!(
            error,
            Error::Http {
                status: 502,
                retry_after: None,
                body_excerpt: "an HTML page (\"502 Bad Gateway\")".into()
            }
        );
        assert!(error.is_retryable());
    }

    #[test]
    fn requests_have_the_execute_kw_shape() {
        let kwargs = serde_json::json!({"fields": ["name"]});
        let context = serde_json::json!({"lang": "en_US"});
        let body = to_body(&Request {
            jsonrpc: "2.0",
            method: "call",
            params: Params {
                service: "object",
                method: "execute_kw",
                args: (
                    "db",
                    2,
                    "key",
                    "sale.order",
                    "read",
                    PositionalArgs {
                        ids: Some(&[1, 2]),
                        value: None,
                    },
                    Kwargs {
                        ids: None,
                        kwargs: kwargs.as_object().unwrap(),
                        context: context.as_object().unwrap(),
                        skip: None,
                    },
                ),
            },
            id: 5,
        })
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            serde_json::json!({"jsonrpc": "2.0", "method": "call", "id": 5, "params": {
                "service": "object", "method": "execute_kw",
                "args": ["db", 2, "key", "sale.order", "read", [[1, 2]],
                         {"fields": ["name"], "context": {"lang": "en_US"}}]}})
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error() {
        let transport = JsonRpcTransport::new(endpoint());
        let error = transport.server_version().await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Transport {
                    kind: TransportKind::Connect,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_safe_to_resend());
        assert!(!error.to_string().contains("secret-key"));
    }
}
