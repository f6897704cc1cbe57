//! The API key, kept out of logs and error texts.

use std::fmt;

/// An Odoo API key (or password). `Debug` and `Display` redact it: keys of 12 characters or
/// more show their last four (`••••a1b2`) so an operator can tell two keys apart, shorter ones
/// show nothing. Only [`ApiKey::expose`] gives the key itself, for the request that needs it.
///
/// It can be deserialized (from a configuration) but not serialized, so it cannot end up in
/// a dumped configuration or a structured log record by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Below this length the last four characters would give away too much of the key.
const MIN_LEN_FOR_HINT: usize = 12;

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself. Call it only where the key goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn write_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("••••")?;
        let count = self.0.chars().count();
        if count >= MIN_LEN_FOR_HINT {
            let tail: String = self.0.chars().skip(count - 4).collect();
            f.write_str(&tail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(")?;
        self.write_redacted(f)?;
        f.write_str(")")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_redacted(f)
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey(key.to_owned())
    }
}

impl<'de> serde::Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_show_only_their_last_four_characters() {
        let key = ApiKey::new("0123456789abcdef1234");
        assert_eq!(format!("{key}"), "••••1234");
        assert_eq!(format!("{key:?}"), "ApiKey(••••1234)");
        assert_eq!(key.expose(), "0123456789abcdef1234");
    }

    #[test]
    fn short_keys_are_fully_hidden() {
        for short in ["", "abc", "12345678901"] {
            let key = ApiKey::from(short);
            assert_eq!(format!("{key}"), "••••");
            assert_eq!(format!("{key:?}"), "ApiKey(••••)");
        }
    }

    #[test]
    fn multibyte_keys_are_cut_on_characters() {
        let key = ApiKey::new("ééééééééééééàbcd");
        assert_eq!(format!("{key}"), "••••àbcd");
    }
}
