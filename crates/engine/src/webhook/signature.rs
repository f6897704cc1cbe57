//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! Every delivery carries three headers:
//!
//! - `webhook-id`: the packet's id, the same on every retry of that packet, so a receiver
//!   can drop a packet it already processed;
//! - `webhook-timestamp`: when this attempt was signed, in unix seconds, so a receiver can
//!   refuse old (replayed) deliveries;
//! - `webhook-signature`: `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, several
//!   of them separated by spaces while a secret is being rotated.
//!
//! The HMAC key is the secret's bytes: the base64 after a `whsec_` prefix, decoded (the
//! Standard Webhooks form), or else the UTF-8 bytes of the secret as written. The
//! connections' secrets are UUID4 strings such as `2f1c…-…`, so their key is the 36 bytes of
//! that text. A receiver using a Standard Webhooks library, which base64-decodes any secret it
//! is given, passes it `whsec_` + base64 of those bytes instead
//! ([`WebhookSecret::expose_whsec`]), or the bytes themselves (`Webhook::from_bytes` in the
//! Rust crate).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The packet's id: the same on every retry of one packet.
pub const HEADER_ID: &str = "webhook-id";
/// When the attempt was signed, unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// `v1,<base64>` signatures, separated by spaces.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a timestamp may be from the verifier's clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The prefix of a secret given in the Standard Webhooks form.
const WHSEC_PREFIX: &str = "whsec_";
/// The only signature scheme of the standard so far (symmetric HMAC-SHA256).
const VERSION: &str = "v1";
/// Below this length the last four characters would give away too much of the secret.
const MIN_LEN_FOR_HINT: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// A connection's webhook secret. `Debug` and `Display` redact it like odoo-rpc's `ApiKey`
/// (`••••` and, for secrets of 12 characters or more, their last four, so an operator can
/// tell two apart). [`WebhookSecret::expose`] gives it back as written, for the
/// `X-Webhook-Secret` header and nothing else.
///
/// It can be deserialized but not serialized, so it cannot land in a dumped configuration
/// or a structured log record by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

/// Why a text cannot be used as a webhook secret. It never quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("the webhook secret starts with `whsec_` but what follows is not valid base64")]
    InvalidBase64,
    /// It travels in the `X-Webhook-Secret` header, so it must be printable ASCII.
    #[error("the webhook secret must be printable ASCII without spaces")]
    NotPrintableAscii,
}

impl WebhookSecret {
    /// Takes a secret as written: `whsec_<base64>` is decoded, anything else (a UUID4 string)
    /// is used as its UTF-8 bytes. An empty secret, an empty key after `whsec_`, and a
    /// secret that cannot travel in an HTTP header (anything but printable ASCII without
    /// spaces) are refused.
    pub fn new(secret: impl Into<String>) -> Result<Self, SecretError> {
        let text = secret.into();
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::NotPrintableAscii);
        }
        let key = match text.strip_prefix(WHSEC_PREFIX) {
            Some(encoded) => BASE64
                .decode(encoded)
                .map_err(|_| SecretError::InvalidBase64)?,
            None => text.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(WebhookSecret { text, key })
    }

    /// The secret as written. Call it only where the secret goes on the wire.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The same key in the Standard Webhooks form, `whsec_<base64 of the key>`, for a
    /// receiver whose library base64-decodes every secret. A secret written as `whsec_…`
    /// comes back unchanged (up to base64 padding).
    pub fn expose_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// One `v1,<base64>` signature of `body` for the packet `id` signed at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("{VERSION},{}", BASE64.encode(tag))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail; an empty key is refused
        // by `new` anyway.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Whether `tag` (a decoded signature) is this secret's, compared in constant time.
    fn verifies(&self, id: &str, timestamp: i64, body: &[u8], tag: &[u8]) -> bool {
        self.mac(id, timestamp, body).verify_slice(tag).is_ok()
    }

    fn write_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("••••")?;
        let count = self.text.chars().count();
        if count >= MIN_LEN_FOR_HINT {
            let tail: String = self.text.chars().skip(count - 4).collect();
            f.write_str(&tail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(")?;
        self.write_redacted(f)?;
        f.write_str(")")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_redacted(f)
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = SecretError;
    fn try_from(secret: String) -> Result<Self, SecretError> {
        WebhookSecret::new(secret)
    }
}

impl TryFrom<&str> for WebhookSecret {
    type Error = SecretError;
    fn try_from(secret: &str) -> Result<Self, SecretError> {
        WebhookSecret::new(secret)
    }
}

impl<'de> serde::Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        WebhookSecret::new(text).map_err(serde::de::Error::custom)
    }
}

/// The three Standard Webhooks headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`, unix seconds.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
}

/// Signs `body` with every secret in `secrets` (one while a key is in use, two while it is
/// rotated: the receiver accepts any), at `timestamp` unix seconds.
pub fn sign(secrets: &[&WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
    let signature = secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    }
}

/// Seconds since the unix epoch of `time` (negative before it).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Why a delivery's signature was refused. The texts name the header, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("header `{0}` is not valid")]
    InvalidHeader(&'static str),
    #[error("the signature's timestamp is older than the tolerance")]
    TooOld,
    #[error("the signature's timestamp is further in the future than the tolerance")]
    TooNew,
    #[error("no signature matches")]
    NoMatch,
}

/// The clock a [`Verifier`] compares timestamps with.
type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Checks the Standard Webhooks headers of a delivery: the timestamp within the tolerance
/// of the verifier's clock, and at least one `v1` signature made with one of its secrets
/// (constant-time comparison). Several secrets are accepted for key rotation.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
    clock: WallClock,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for one secret, the system clock and [`DEFAULT_TOLERANCE`].
    pub fn new(secret: WebhookSecret) -> Self {
        Verifier::with_secrets([secret])
    }

    /// A verifier accepting a signature made with any of `secrets` (the old and the new
    /// secret while one is rotated).
    pub fn with_secrets(secrets: impl IntoIterator<Item = WebhookSecret>) -> Self {
        Verifier {
            secrets: secrets.into_iter().collect(),
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// How far the timestamp may be from the clock, either way.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Replaces the system clock (for tests).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Verifies a delivery from its headers and its raw body bytes, as received.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let id = header(headers, HEADER_ID)?;
        let timestamp = header(headers, HEADER_TIMESTAMP)?;
        let signatures = header(headers, HEADER_SIGNATURE)?;
        self.verify_parts(id, timestamp, signatures, body)
    }

    /// Verifies the three header values (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`) and the raw body bytes.
    pub fn verify_parts(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::InvalidHeader(HEADER_TIMESTAMP))?;
        let now = unix_seconds((self.clock)());
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(timestamp) > tolerance {
            return Err(VerifyError::TooOld);
        }
        if timestamp.saturating_sub(now) > tolerance {
            return Err(VerifyError::TooNew);
        }
        let matched = signatures
            .split(' ')
            .filter_map(|signature| signature.split_once(','))
            .filter(|(version, _)| *version == VERSION)
            .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
            .any(|tag| {
                self.secrets
                    .iter()
                    .any(|secret| secret.verifies(id, timestamp, body, &tag))
            });
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::MissingHeader(name))?
        .to_str()
        .map_err(|_| VerifyError::InvalidHeader(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;

    fn at(ts: i64) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        move || UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).unwrap())
    }

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // From the reference implementation's own tests.
        let secret = WebhookSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(ID, TS, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn raw_secrets_are_their_utf8_bytes_and_convert_to_whsec() {
        let raw = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap();
        let whsec = WebhookSecret::new(raw.expose_whsec()).unwrap();
        assert_eq!(raw.sign(ID, TS, BODY), whsec.sign(ID, TS, BODY));
        assert!(raw.expose_whsec().starts_with("whsec_"));
        assert_eq!(raw.expose(), "6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f");
    }

    #[test]
    fn bad_secrets_are_refused_without_being_quoted() {
        assert_eq!(WebhookSecret::new(""), Err(SecretError::Empty));
        assert_eq!(WebhookSecret::new("whsec_"), Err(SecretError::Empty));
        let error = WebhookSecret::new("whsec_not*base64!").unwrap_err();
        assert_eq!(error, SecretError::InvalidBase64);
        assert!(!error.to_string().contains("not*base64!"));
        for unusable in ["with space", "new\nline", "clé"] {
            assert_eq!(
                WebhookSecret::new(unusable),
                Err(SecretError::NotPrintableAscii)
            );
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap();
        assert_eq!(format!("{secret}"), "••••5e6f");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(••••5e6f)");
        assert_eq!(
            format!("{:?}", WebhookSecret::new("short").unwrap()),
            "WebhookSecret(••••)"
        );
        let verifier = Verifier::new(secret);
        assert!(!format!("{verifier:?}").contains("9d49"));
    }

    #[test]
    fn verifies_within_the_tolerance_and_refuses_outside() {
        let secret = WebhookSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let signature = secret.sign(ID, TS, BODY);
        let ts = TS.to_string();
        let verify = |now: i64| {
            Verifier::new(secret.clone())
                .clock(at(now))
                .verify_parts(ID, &ts, &signature, BODY)
        };
        assert_eq!(verify(TS), Ok(()));
        assert_eq!(verify(TS + 300), Ok(()));
        assert_eq!(verify(TS - 300), Ok(()));
        assert_eq!(verify(TS + 301), Err(VerifyError::TooOld));
        assert_eq!(verify(TS - 301), Err(VerifyError::TooNew));
        let strict = Verifier::new(secret.clone()).tolerance(Duration::from_secs(10));
        assert_eq!(
            strict
                .clock(at(TS + 11))
                .verify_parts(ID, &ts, &signature, BODY),
            Err(VerifyError::TooOld)
        );
    }

    #[test]
    fn any_matching_signature_or_secret_passes() {
        let old = WebhookSecret::new("old-secret-0000-0000").unwrap();
        let new = WebhookSecret::new("new-secret-1111-1111").unwrap();
        let other = WebhookSecret::new("someone-elses-secret").unwrap();
        let both = sign(&[&old, &new], ID, TS, BODY);
        assert_eq!(both.signature.split(' ').count(), 2);
        let ts = TS.to_string();
        for verifier in [Verifier::new(old.clone()), Verifier::new(new.clone())] {
            let verifier = verifier.clock(at(TS));
            assert_eq!(
                verifier.verify_parts(ID, &ts, &both.signature, BODY),
                Ok(())
            );
        }
        let rotating = Verifier::with_secrets([other.clone(), new.clone()]).clock(at(TS));
        let only_new = new.sign(ID, TS, BODY);
        assert_eq!(rotating.verify_parts(ID, &ts, &only_new, BODY), Ok(()));
        // Unknown versions and junk are skipped, not fatal.
        let mixed = format!("v2,abc v1,!!! {only_new}");
        assert_eq!(rotating.verify_parts(ID, &ts, &mixed, BODY), Ok(()));
        let stranger = Verifier::new(other).clock(at(TS));
        assert_eq!(
            stranger.verify_parts(ID, &ts, &both.signature, BODY),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let secret = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap();
        let signature = secret.sign(ID, TS, BODY);
        let verifier = Verifier::new(secret).clock(at(TS));
        let ts = TS.to_string();
        let body = br#"{"email":"test@example.com","username":"test_user "}"#;
        assert_eq!(
            verifier.verify_parts(ID, &ts, &signature, body),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verifier.verify_parts("msg_other", &ts, &signature, BODY),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verifier.verify_parts(ID, &(TS + 1).to_string(), &signature, BODY),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verifier.verify_parts(ID, "yesterday", &signature, BODY),
            Err(VerifyError::InvalidHeader(HEADER_TIMESTAMP))
        );
        // Raw bytes are signed as they are, UTF-8 or not.
        let binary = [0xff, 0x00, 0xfe];
        let secret = WebhookSecret::new("6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f").unwrap();
        let signature = secret.sign(ID, TS, &binary);
        assert_eq!(verifier.verify_parts(ID, &ts, &signature, &binary), Ok(()));
    }

    #[test]
    fn missing_headers_are_named() {
        let verifier = Verifier::new(WebhookSecret::new("abc").unwrap());
        assert_eq!(
            verifier.verify(&HeaderMap::new(), BODY),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
    }
}
