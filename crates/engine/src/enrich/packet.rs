//! The packet an enrichment job POSTs: a frozen envelope around a deterministic payload.
//!
//! ```json
//! {"packet_id": "pkt_…", "packet_version": "1", "environment": "prod", "job": "buyer-match",
//!  "model": "crm.lead", "record_id": 42, "emitted_at": "2026-01-01T00:00:00Z",
//!  "payload_hash": "<hex SHA-256 of the RFC 8785 form of payload>", "payload": {…}}
//! ```
//!
//! The payload holds the job's fields only: Odoo's `false` becomes `null` (but a boolean
//! field's `false` stays `false`), a many2one its id, an x2many its ids sorted. The body is
//! the envelope in RFC 8785 form, so a packet's bytes depend on its content alone.
//!
//! The envelope's key set is frozen ([`PACKET_KEYS`], [`ENVELOPE_VERSION`]): receivers
//! validate against it, so changing it needs a new envelope version.

use crate::mirror::{content_hash, write_canonical};
use jiff::Timestamp;
use odoo_rpc::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The envelope's own version: bump it with any change to [`PACKET_KEYS`].
pub const ENVELOPE_VERSION: u32 = 1;

/// The envelope's keys, in the order of the issue; the body carries exactly these.
pub const PACKET_KEYS: [&str; 9] = [
    "packet_id",
    "packet_version",
    "environment",
    "job",
    "model",
    "record_id",
    "emitted_at",
    "payload_hash",
    "payload",
];

/// The body of an enrichment packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub packet_id: String,
    pub packet_version: String,
    pub environment: String,
    pub job: String,
    pub model: String,
    pub record_id: i64,
    /// RFC 3339 in UTC, whole seconds.
    pub emitted_at: String,
    pub payload_hash: String,
    pub payload: Map<String, Value>,
}

impl Envelope {
    /// The exact bytes sent: the envelope in RFC 8785 form.
    pub fn body(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut bytes = Vec::with_capacity(512);
        write_canonical(&value, &mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A new packet id: `pkt_` and a random UUID. Chosen once, when the emission is written;
/// every resend of that emission carries it.
pub fn new_packet_id() -> String {
    format!("pkt_{}", uuid::Uuid::new_v4().simple())
}

/// `at` as the envelope writes it: whole seconds, UTC, `Z`.
pub fn emitted_at(at: Timestamp) -> String {
    Timestamp::from_second(at.as_second())
        .unwrap_or(at)
        .to_string()
}

/// The payload of `record` (as Odoo's `read` answered it): the `fields`, normalised by
/// their Odoo type.
pub fn payload(
    record: &Map<String, Value>,
    fields: &[String],
    types: &Fields,
) -> Map<String, Value> {
    fields
        .iter()
        .map(|field| {
            let raw = record.get(field).unwrap_or(&Value::Null);
            let field_type = types.get(field).map_or("", |info| info.field_type.as_str());
            (field.clone(), normalise(raw, field_type))
        })
        .collect()
}

/// One value in its deterministic form.
pub fn normalise(value: &Value, field_type: &str) -> Value {
    match (field_type, value) {
        ("boolean", Value::Bool(flag)) => Value::Bool(*flag),
        ("many2one", Value::Array(pair)) => pair.first().cloned().unwrap_or(Value::Null),
        ("one2many" | "many2many", Value::Array(ids)) => {
            let mut ids: Vec<i64> = ids.iter().filter_map(Value::as_i64).collect();
            ids.sort_unstable();
            ids.dedup();
            Value::from(ids)
        }
        ("one2many" | "many2many", Value::Bool(false)) => Value::Array(Vec::new()),
        (_, Value::Bool(false)) => Value::Null,
        _ => value.clone(),
    }
}

/// Lowercase hex SHA-256 of the payload's RFC 8785 form.
pub fn payload_hash(payload: &Map<String, Value>) -> String {
    content_hash(&Value::Object(payload.clone()))
}

/// What a packet is about, to build its envelope.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub job: &'a str,
    pub packet_version: &'a str,
    pub environment: &'a str,
    pub model: &'a str,
    pub record_id: i64,
}

/// The envelope of a new packet.
pub fn envelope(
    subject: Subject<'_>,
    packet_id: String,
    at: Timestamp,
    payload: Map<String, Value>,
) -> Envelope {
    Envelope {
        packet_id,
        packet_version: subject.packet_version.to_owned(),
        environment: subject.environment.to_owned(),
        job: subject.job.to_owned(),
        model: subject.model.to_owned(),
        record_id: subject.record_id,
        emitted_at: emitted_at(at),
        payload_hash: payload_hash(&payload),
        payload,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use odoo_rpc::FieldInfo;
    use serde_json::json;

    /// Every envelope version and its keys. Adding or removing a key fails
    /// `the_envelope_is_frozen` until ENVELOPE_VERSION is bumped and the new version listed
    /// here: receivers validate packets against this key set.
    const FROZEN: [(u32, &[&str]); 1] = [(
        1,
        &[
            "emitted_at",
            "environment",
            "job",
            "model",
            "packet_id",
            "packet_version",
            "payload",
            "payload_hash",
            "record_id",
        ],
    )];

    fn types() -> Fields {
        let info = |field_type: &str| -> FieldInfo {
            serde_json::from_value(json!({"type": field_type, "string": "x"})).unwrap()
        };
        [
            ("name", "char"),
            ("partner_id", "many2one"),
            ("tag_ids", "many2many"),
            ("line_ids", "one2many"),
            ("active", "boolean"),
            ("expected_revenue", "monetary"),
            ("date_deadline", "date"),
        ]
        .into_iter()
        .map(|(name, field_type)| (name.to_owned(), info(field_type)))
        .collect()
    }

    fn sample(payload: Map<String, Value>) -> Envelope {
        envelope(
            Subject {
                job: "buyer-match",
                packet_version: "1",
                environment: "prod",
                model: "crm.lead",
                record_id: 42,
            },
            "pkt_1".to_owned(),
            "2026-01-01T00:00:00.731Z".parse().unwrap(),
            payload,
        )
    }

    #[test]
    fn the_envelope_is_frozen() {
        let value = serde_json::to_value(sample(Map::new())).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut declared = PACKET_KEYS.to_vec();
        declared.sort_unstable();
        assert_eq!(keys, declared, "PACKET_KEYS lists the envelope's keys");
        let frozen = FROZEN
            .iter()
            .find(|(version, _)| *version == ENVELOPE_VERSION)
            .unwrap_or_else(|| panic!("envelope version {ENVELOPE_VERSION} is not frozen"));
        assert_eq!(
            keys, frozen.1,
            "the envelope's keys changed without a new ENVELOPE_VERSION"
        );
        // Unknown keys are refused on the way in too.
        let mut extended = value.clone();
        extended["extra"] = json!(1);
        assert!(serde_json::from_value::<Envelope>(extended).is_err());
        assert_eq!(
            serde_json::from_value::<Envelope>(value).unwrap(),
            sample(Map::new())
        );
    }

    #[test]
    fn the_payload_is_deterministic() {
        let record = json!({
            "id": 42,
            "name": "Lead",
            "partner_id": [7, "Azure Interior"],
            "tag_ids": [9, 3, 5],
            "line_ids": false,
            "active": false,
            "expected_revenue": 1500.0,
            "date_deadline": false,
            "not_asked": "left out",
        });
        let fields: Vec<String> = [
            "name",
            "partner_id",
            "tag_ids",
            "line_ids",
            "active",
            "expected_revenue",
            "date_deadline",
        ]
        .map(str::to_owned)
        .to_vec();
        let payload = payload(record.as_object().unwrap(), &fields, &types());
        assert_eq!(
            Value::Object(payload.clone()),
            json!({
                "name": "Lead",
                "partner_id": 7,
                "tag_ids": [3, 5, 9],
                "line_ids": [],
                "active": false,
                "expected_revenue": 1500.0,
                "date_deadline": null,
            })
        );
        let unset = json!({"name": false, "partner_id": false});
        let normalised = super::payload(
            unset.as_object().unwrap(),
            &["name".to_owned(), "partner_id".to_owned()],
            &types(),
        );
        assert_eq!(
            Value::Object(normalised),
            json!({"name": null, "partner_id": null})
        );
        // The hash is the RFC 8785 form's: key order and number spelling do not matter.
        let reordered: Map<String, Value> = serde_json::from_str(
            r#"{"tag_ids":[3,5,9],"date_deadline":null,"expected_revenue":1.5e3,"active":false,
                "line_ids":[],"partner_id":7,"name":"Lead"}"#,
        )
        .unwrap();
        assert_eq!(payload_hash(&payload), payload_hash(&reordered));
        let reference = serde_json_canonicalizer::to_vec(&Value::Object(payload.clone())).unwrap();
        use sha2::Digest as _;
        assert_eq!(
            payload_hash(&payload),
            hex::encode(sha2::Sha256::digest(&reference))
        );
    }

    #[test]
    fn the_body_is_the_canonical_envelope() {
        let payload: Map<String, Value> =
            serde_json::from_value(json!({"name": "Lead", "partner_id": 7})).unwrap();
        let envelope = sample(payload);
        assert_eq!(envelope.emitted_at, "2026-01-01T00:00:00Z");
        let body = envelope.body();
        let reference = serde_json_canonicalizer::to_string(&envelope).unwrap();
        assert_eq!(body, reference);
        assert!(body.starts_with(r#"{"emitted_at":"2026-01-01T00:00:00Z","environment":"prod""#));
        assert_eq!(serde_json::from_str::<Envelope>(&body).unwrap(), envelope);
        assert!(new_packet_id().starts_with("pkt_"));
        assert_ne!(new_packet_id(), new_packet_id());
    }
}
