//! JSON-2 (Odoo 19+): `POST /json/2/<model>/<method>` with named arguments,
//! `Authorization: bearer <key>`, the bare result on 200 and real HTTP statuses on errors.

use super::{
    BoxFuture, Call, Endpoint, HttpReply, Kwargs, OdooErrorBody, Protocol, ServerVersion,
    Transport, discover_version, to_body, validate_name, web_version,
};
use crate::error::Error;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The JSON-2 transport. Each call runs in its own transaction on the server.
#[derive(Debug)]
pub struct Json2Transport {
    endpoint: Endpoint,
}

impl Json2Transport {
    pub fn new(endpoint: Endpoint) -> Self {
        Json2Transport { endpoint }
    }
}

fn parse_reply(reply: HttpReply, endpoint: &Endpoint) -> Result<Box<RawValue>, Error> {
    parse_answer(reply, endpoint).map_err(|error| error.naming_database(endpoint.database()))
}

/// Before Odoo 19 there is no `/json/2` route: Odoo 18 redirects the call to its login page
/// (303) and older versions or proxies answer 404. Says so, with the server's version, rather
/// than "use the final address as the base URL"; any other failure is returned as it was.
async fn explain_missing_json2(endpoint: &Endpoint, error: Error) -> Error {
    if !matches!(
        error,
        Error::Http {
            status: 303 | 404,
            ..
        }
    ) {
        return error;
    }
    match discover_version(endpoint, || async {}).await {
        Ok(version) if version.major < 19 => Error::invalid_request(format!(
            "JSON-2 needs Odoo 19 or later, and {} runs Odoo {version}: use JSON-RPC",
            endpoint.display_url()
        )),
        _ => error,
    }
}

fn parse_answer(reply: HttpReply, endpoint: &Endpoint) -> Result<Box<RawValue>, Error> {
    if reply.is_success() {
        return serde_json::from_slice::<Box<RawValue>>(&reply.body).map_err(|e| {
            endpoint.malformed(format!("the JSON-2 answer is not JSON: {e}"), &reply.body)
        });
    }
    let body = serde_json::from_slice::<OdooErrorBody>(&reply.body)
        .ok()
        .filter(|body| body.name.is_some());
    if reply.status == 401 {
        let detail = body
            .and_then(|body| body.message)
            .filter(|m| !m.is_empty())
            .map(|m| crate::error::scrub(m, endpoint.api_key().expose()))
            .unwrap_or_else(|| "HTTP 401".to_owned());
        return Err(Error::Authentication {
            message: format!(
                "Odoo refused the API key of login {:?} on database {:?} ({detail})",
                endpoint.login(),
                endpoint.database()
            ),
        });
    }
    match body {
        Some(body) => Err(Error::Odoo(body.into_error(
            None,
            Some(reply.status),
            None,
            endpoint.api_key(),
        ))),
        None => Err(reply.into_http_error(endpoint.api_key())),
    }
}

impl Transport for Json2Transport {
    fn protocol(&self) -> Protocol {
        Protocol::Json2
    }

    fn uses_uid(&self) -> bool {
        false
    }

    fn server_version(&self) -> BoxFuture<'_, Result<ServerVersion, Error>> {
        Box::pin(web_version(&self.endpoint))
    }

    /// JSON-2 has no login step; `res.users.context_get` tells whose key this is.
    fn authenticate(&self) -> BoxFuture<'_, Result<i64, Error>> {
        Box::pin(async move {
            let empty = Map::new();
            let raw = self
                .execute(
                    None,
                    Call {
                        model: "res.users",
                        method: "context_get",
                        ids: None,
                        kwargs: &empty,
                        context: &empty,
                        positional: None,
                    },
                )
                .await?;
            let context: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            context.get("uid").and_then(Value::as_i64).ok_or_else(|| {
                self.endpoint.malformed(
                    "res.users.context_get answered without a uid",
                    raw.get().as_bytes(),
                )
            })
        })
    }

    fn execute<'a>(
        &'a self,
        _uid: Option<i64>,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Box<RawValue>, Error>> {
        Box::pin(async move {
            validate_name("model", call.model)?;
            validate_name("method", call.method)?;
            let endpoint = &self.endpoint;
            let body = to_body(&Kwargs {
                ids: call.ids,
                kwargs: call.kwargs,
                context: call.context,
                skip: None,
            })?;
            let mut authorization =
                HeaderValue::try_from(format!("bearer {}", endpoint.api_key().expose())).map_err(
                    |_| {
                        Error::invalid_request(
                            "the API key contains characters not allowed in an HTTP header",
                        )
                    },
                )?;
            authorization.set_sensitive(true);
            let path = format!("/json/2/{}/{}", call.model, call.method);
            let mut request = endpoint
                .post_json(&path, body)
                .header(AUTHORIZATION, authorization);
            if !endpoint.database().is_empty() {
                let database = HeaderValue::try_from(endpoint.database()).map_err(|_| {
                    Error::invalid_request("the database name is not a valid HTTP header value")
                })?;
                request = request.header("X-Odoo-Database", database);
            }
            let reply = endpoint.send(request, &format!("POST {path}")).await?;
            match parse_reply(reply, endpoint) {
                Err(error) => Err(explain_missing_json2(endpoint, error).await),
                answer => answer,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::OdooErrorKind;
    use crate::secret::ApiKey;
    use crate::transport::{DEFAULT_USER_AGENT, EndpointConfig};
    use bytes::Bytes;
    use std::time::Duration;

    fn parse(status: u16, body: &str) -> Result<Box<RawValue>, Error> {
        let endpoint = Endpoint::new(&EndpointConfig {
            max_response_bytes: crate::transport::DEFAULT_MAX_RESPONSE_BYTES,
            base_url: "http://127.0.0.1:1",
            database: "db",
            login: "bot",
            api_key: &ApiKey::new("secret-key-0123456789"),
            timeout: Duration::from_secs(1),
            user_agent: DEFAULT_USER_AGENT,
            http: None,
        })
        .unwrap();
        parse_reply(
            HttpReply {
                status,
                retry_after: None,
                location: None,
                body: Bytes::copy_from_slice(body.as_bytes()),
            },
            &endpoint,
        )
    }

    #[test]
    fn success_is_the_bare_result() {
        assert_eq!(parse(200, "[1, 2]").unwrap().get(), "[1, 2]");
        assert_eq!(parse(200, "null").unwrap().get(), "null");
        assert!(matches!(
            parse(200, "<html>"),
            Err(Error::MalformedResponse { .. })
        ));
    }

    #[test]
    fn error_bodies_become_odoo_errors_with_their_status() {
        let error = parse(
            422,
            r#"{"name": "odoo.exceptions.UserError", "message": "Nope", "arguments": ["Nope"],
                "context": {}, "debug": "Traceback ..."}"#,
        )
        .unwrap_err();
        let odoo = error.odoo().unwrap();
        assert_eq!(odoo.kind, OdooErrorKind::UserError);
        assert_eq!(odoo.http_status, Some(422));
        assert_eq!(error.http_status(), Some(422));

        let missing = parse(
            404,
            r#"{"name": "odoo.exceptions.MissingError", "message": "gone"}"#,
        )
        .unwrap_err();
        assert_eq!(missing.odoo().unwrap().kind, OdooErrorKind::MissingError);
    }

    #[test]
    fn a_bad_key_is_an_authentication_error() {
        let error = parse(
            401,
            r#"{"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey"}"#,
        )
        .unwrap_err();
        assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
        assert!(error.to_string().contains("Invalid apikey"));
        assert!(!error.is_retryable());
    }

    #[test]
    fn bodies_without_a_name_are_http_errors() {
        let error = parse(503, "<html>down for maintenance</html>").unwrap_err();
        assert!(matches!(error, Error::Http { status: 503, .. }));
        assert!(error.is_retryable());
    }
}
