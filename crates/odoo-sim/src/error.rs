//! Errors as Odoo raises them: an exception class name and a message.

/// An exception the simulated server raises, named as Odoo names it on the wire
/// (`error.data.name` in JSON-RPC, `name` in a JSON-2 error body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct OdooException {
    pub name: String,
    pub message: String,
}

pub type OdooResult<T> = Result<T, OdooException>;

impl OdooException {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> OdooException {
        OdooException {
            name: name.into(),
            message: message.into(),
        }
    }

    pub fn user_error(message: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.UserError", message)
    }

    pub fn validation_error(message: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.ValidationError", message)
    }

    pub fn access_error(message: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.AccessError", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.AccessDenied", message)
    }

    pub fn missing_error(message: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.MissingError", message)
    }

    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("builtins.ValueError", message)
    }

    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("builtins.TypeError", message)
    }

    pub fn attribute_error(message: impl Into<String>) -> Self {
        Self::new("builtins.AttributeError", message)
    }

    pub fn invalid_field(model: &str, field: &str) -> Self {
        Self::value_error(format!("Invalid field '{field}' on model '{model}'"))
    }

    /// The HTTP status JSON-2 answers this exception with (Odoo 19's `json2` controller).
    pub fn json2_status(&self) -> u16 {
        match self.name.as_str() {
            "odoo.exceptions.UserError" | "odoo.exceptions.ValidationError" => 422,
            "odoo.exceptions.AccessError"
            | "odoo.exceptions.AccessDenied"
            | "odoo.http.SessionExpiredException" => 403,
            "odoo.exceptions.MissingError" | "werkzeug.exceptions.NotFound" => 404,
            "odoo.exceptions.LockError" => 409,
            "werkzeug.exceptions.Unauthorized" => 401,
            "werkzeug.exceptions.TooManyRequests" => 429,
            _ => 500,
        }
    }

    /// A fake but realistically shaped traceback: real Odoo leaks internal paths here, and
    /// clients must keep it out of anything a user sees.
    pub fn traceback(&self) -> String {
        format!(
            "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 2138, in _serve_db\n    return service_model.retrying(self._serve_ir_http, self.env)\n  File \"/opt/odoo/odoo/service/model.py\", line 156, in retrying\n    result = func()\n{}: {}\n",
            self.name, self.message
        )
    }
}
