//! A wide synthetic model for benchmarks: `x_bench.record`, with a chosen number of fields
//! of every stored scalar type, filled straight into the database (no RPC) with records that
//! share their `write_date` second, several per second, as bulk imports leave them.
//!
//! Everything is a pure function of the record id and the [`BenchSpec`], so a benchmark can
//! also build, without any server, exactly the rows `search_read` returns
//! ([`BenchSpec::read_json`]): that is how a write ceiling loads "the same rows".

use crate::error::{OdooException, OdooResult};
use crate::orm::{ADMIN_UID, Database, Env};
use crate::schema::{FieldDef, FieldType, ModelDef};
use crate::values::format_datetime;
use serde_json::{Map, Value, json};

/// The benchmark model.
pub const MODEL: &str = "x_bench.record";
/// The comodel of the benchmark model's many2one fields.
pub const PARTNER_MODEL: &str = "x_bench.partner";
/// How many `x_bench.partner` records there are (ids 1 to 100).
pub const PARTNERS: i64 = 100;
/// Fields every benchmark record has and every read includes.
pub const FIXED_FIELDS: [&str; 4] = ["name", "active", "create_date", "write_date"];
/// The narrowest model: only [`FIXED_FIELDS`].
pub const MIN_FIELDS: usize = FIXED_FIELDS.len();
pub const MAX_FIELDS: usize = 200;
/// 2024-01-01 00:00:00 UTC: the first records' `write_date` second.
pub const START_SECOND: i64 = 1_704_067_200;

const STATES: [(&str, &str); 4] = [
    ("draft", "Draft"),
    ("confirmed", "Confirmed"),
    ("done", "Done"),
    ("cancel", "Cancelled"),
];

const WORDS: [&str; 24] = [
    "delivery",
    "pallet",
    "invoice",
    "customer",
    "warehouse",
    "Zoë",
    "Müller",
    "東京",
    "urgent",
    "backorder",
    "\"fragile\"",
    "C:\\imports\\2024",
    "line\nbreak",
    "tab\there",
    "returned",
    "carrier",
    "São Paulo",
    "discount",
    "approved",
    "50%",
    "net 30",
    "ref:",
    "cash on delivery",
    "€",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Char,
    Text,
    Integer,
    Float,
    Monetary,
    Boolean,
    Date,
    Datetime,
    Selection,
    Many2one,
}

/// The generated fields cycle through these, in this order.
const KINDS: [Kind; 10] = [
    Kind::Char,
    Kind::Text,
    Kind::Integer,
    Kind::Float,
    Kind::Monetary,
    Kind::Boolean,
    Kind::Date,
    Kind::Datetime,
    Kind::Selection,
    Kind::Many2one,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Char => "char",
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Float => "float",
            Kind::Monetary => "monetary",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Datetime => "datetime",
            Kind::Selection => "selection",
            Kind::Many2one => "partner_id",
        }
    }

    fn field_type(self) -> FieldType {
        match self {
            Kind::Char => FieldType::Char,
            Kind::Text => FieldType::Text,
            Kind::Integer => FieldType::Integer,
            Kind::Float => FieldType::Float,
            Kind::Monetary => FieldType::Monetary,
            Kind::Boolean => FieldType::Boolean,
            Kind::Date => FieldType::Date,
            Kind::Datetime => FieldType::Datetime,
            Kind::Selection => FieldType::Selection(
                STATES
                    .iter()
                    .map(|(key, label)| ((*key).to_owned(), (*label).to_owned()))
                    .collect(),
            ),
            Kind::Many2one => FieldType::Many2one {
                comodel: PARTNER_MODEL.to_owned(),
            },
        }
    }
}

/// A deterministic 64-bit hash (SplitMix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash(id: i64, salt: u64) -> u64 {
    mix((id as u64).wrapping_mul(1_000_003) ^ mix(salt))
}

/// `Bench Partner 007`: the name (and display name) of partner `id`.
pub fn partner_name(id: i64) -> String {
    format!("Bench Partner {id:03}")
}

/// What to declare and fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSpec {
    /// Records of `x_bench.record`, ids 1 to `records`.
    pub records: usize,
    /// Fields a read asks for (`id` not counted): [`FIXED_FIELDS`] plus `fields - 4`
    /// generated ones cycling through char, text, integer, float, monetary, boolean, date,
    /// datetime, selection and many2one. Clamped to [`MIN_FIELDS`]..=[`MAX_FIELDS`].
    pub fields: usize,
    /// Records sharing each `write_date` second (at different microseconds, in an order
    /// unrelated to their ids).
    pub per_second: usize,
}

impl BenchSpec {
    pub fn new(records: usize, fields: usize, per_second: usize) -> BenchSpec {
        BenchSpec {
            records,
            fields: fields.clamp(MIN_FIELDS, MAX_FIELDS),
            per_second: per_second.max(1),
        }
    }

    fn generated(&self) -> impl Iterator<Item = (usize, Kind, String)> + '_ {
        (0..self.fields.clamp(MIN_FIELDS, MAX_FIELDS) - MIN_FIELDS).map(|index| {
            let kind = KINDS[index % KINDS.len()];
            let round = index / KINDS.len() + 1;
            (index, kind, format!("x_{}_{round}", kind.name()))
        })
    }

    /// The fields a benchmark reads, in declaration order (`id` not included).
    pub fn field_names(&self) -> Vec<String> {
        FIXED_FIELDS
            .iter()
            .map(|name| (*name).to_owned())
            .chain(self.generated().map(|(_, _, name)| name))
            .collect()
    }

    /// `x_bench.partner` and `x_bench.record`.
    pub fn models(&self) -> [ModelDef; 2] {
        let partner = ModelDef::new(PARTNER_MODEL, "Benchmark Partner").field(FieldDef::new(
            "name",
            "Name",
            FieldType::Char,
        ));
        let mut record = ModelDef::new(MODEL, "Benchmark Record")
            .order("id")
            .field(FieldDef::new("name", "Name", FieldType::Char).required())
            .field(FieldDef::new("active", "Active", FieldType::Boolean));
        for (index, kind, name) in self.generated() {
            let label = format!("Field {} ({})", index + 1, kind.name());
            record = record.field(FieldDef::new(&name, &label, kind.field_type()));
        }
        [partner, record]
    }

    /// `create_date` = `write_date` of record `id`, in microseconds: `per_second` records
    /// per second from [`START_SECOND`], each at its own microsecond.
    pub fn write_micros(&self, id: i64) -> i64 {
        let index = id.saturating_sub(1);
        let second = START_SECOND + index / self.per_second as i64;
        let micros = (hash(id, 0xD47E) % 1_000_000) as i64;
        second * 1_000_000 + micros
    }

    /// The values `create` is given for record `id`, in the form `read` returns them.
    fn values(&self, id: i64) -> Map<String, Value> {
        let mut vals = Map::new();
        vals.insert("name".into(), json!(format!("BR{id:07}")));
        // Every 50th record is archived: a mirror reads those too.
        vals.insert("active".into(), json!(id % 50 != 0));
        for (index, kind, name) in self.generated() {
            let h = hash(id, index as u64 + 1);
            let value = match kind {
                // One in ten is empty, which Odoo reads as `false`.
                Kind::Char if h.is_multiple_of(10) => Value::Bool(false),
                Kind::Char => json!(format!("C{index:02}-{id:07}-{:04}", h % 10_000)),
                Kind::Text => {
                    let words = 8 + (h % 25) as usize;
                    let text: Vec<&str> = (0..words)
                        .map(|word| WORDS[(mix(h ^ word as u64) % WORDS.len() as u64) as usize])
                        .collect();
                    json!(text.join(" "))
                }
                Kind::Integer => json!((h % 100_000) as i64 - 5_000),
                Kind::Float => json!((h % 10_000_000) as f64 / 1_000.0),
                Kind::Monetary => json!((h % 10_000_000) as f64 / 100.0),
                Kind::Boolean => json!(h.is_multiple_of(3)),
                Kind::Date => {
                    let day = jiff::civil::date(2020, 1, 1)
                        .checked_add(jiff::Span::new().days((h % 2_000) as i64))
                        .unwrap_or(jiff::civil::date(2020, 1, 1));
                    json!(day.to_string())
                }
                Kind::Datetime => {
                    let seconds = START_SECOND - (h % 94_608_000) as i64;
                    json!(format_datetime(seconds * 1_000_000))
                }
                Kind::Selection => json!(STATES[(h % STATES.len() as u64) as usize].0),
                Kind::Many2one => {
                    let partner = 1 + (h % PARTNERS as u64) as i64;
                    json!([partner, partner_name(partner)])
                }
            };
            vals.insert(name, value);
        }
        vals
    }

    /// Exactly what `search_read` returns for record `id` when asked for
    /// [`BenchSpec::field_names`].
    pub fn read_json(&self, id: i64) -> Value {
        let mut record = self.values(id);
        let stamp = json!(format_datetime(self.write_micros(id)));
        record.insert("id".into(), json!(id));
        record.insert("create_date".into(), stamp.clone());
        record.insert("write_date".into(), stamp);
        Value::Object(record)
    }

    /// Declares both models (replacing earlier definitions and their rows' layout) and
    /// creates the partners, then records 1 to `records`, each as its own `create` at its
    /// own time. Expects empty tables: the ids must come out as 1, 2, 3, …
    pub fn fill(&self, database: &mut Database) -> OdooResult<()> {
        for model in self.models() {
            database.declare_model(model);
        }
        for table in [PARTNER_MODEL, MODEL] {
            if database.count(table) > 0 {
                return Err(OdooException::user_error(format!(
                    "{table} already has records; the benchmark model must start empty"
                )));
            }
        }
        let start = Env::new(ADMIN_UID, START_SECOND * 1_000_000);
        for id in 1..=PARTNERS {
            let mut vals = Map::new();
            vals.insert("name".into(), json!(partner_name(id)));
            let created = database.create(&start, PARTNER_MODEL, &[vals])?;
            if created.first() != Some(&id) {
                return Err(OdooException::user_error(format!(
                    "{PARTNER_MODEL} got ids {created:?}, expected [{id}]"
                )));
            }
        }
        for id in 1..=self.records as i64 {
            let env = Env::new(ADMIN_UID, self.write_micros(id));
            let created = database.create(&env, MODEL, &[self.values(id)])?;
            if created.first() != Some(&id) {
                return Err(OdooException::user_error(format!(
                    "{MODEL} got ids {created:?}, expected [{id}]"
                )));
            }
        }
        Ok(())
    }
}

impl BenchSpec {
    /// A bulk import: `count` more records in ONE `create` (one transaction, so one
    /// `write_date` down to the microsecond), with the ids that follow the last record's.
    /// Returns their ids.
    pub fn import(&self, database: &mut Database, env: &Env, count: usize) -> OdooResult<Vec<i64>> {
        let first = database.table(MODEL)?.next_id;
        let vals: Vec<Map<String, Value>> = (first..first.saturating_add(count as i64))
            .map(|id| self.values(id))
            .collect();
        database.create(env, MODEL, &vals)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::version::OdooVersion;

    #[test]
    fn twenty_fields_of_every_kind() {
        let spec = BenchSpec::new(10, 20, 3);
        let names = spec.field_names();
        assert_eq!(names.len(), 20);
        assert_eq!(&names[..4], &FIXED_FIELDS);
        assert!(names.contains(&"x_partner_id_1".to_owned()));
        assert!(names.contains(&"x_char_2".to_owned()));
        let [_, record] = spec.models();
        for name in &names {
            assert!(record.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn read_json_is_what_the_database_reads() {
        let spec = BenchSpec::new(120, 20, 7);
        let mut database = Database::new(OdooVersion::V18);
        spec.fill(&mut database).unwrap();
        let ids: Vec<i64> = (1..=120).collect();
        let env = Env::new(ADMIN_UID, 0);
        let rows = database
            .read(&env, MODEL, &ids, &spec.field_names())
            .unwrap();
        for (id, row) in ids.iter().zip(rows) {
            assert_eq!(row, spec.read_json(*id), "record {id}");
        }
    }

    #[test]
    fn an_import_is_one_transaction_after_the_last_record() {
        let spec = BenchSpec::new(30, 8, 7);
        let mut database = Database::new(OdooVersion::V18);
        spec.fill(&mut database).unwrap();
        let env = Env::new(ADMIN_UID, 1_800_000_000_123_456);
        let ids = spec.import(&mut database, &env, 12).unwrap();
        assert_eq!(ids, (31..=42).collect::<Vec<_>>());
        let rows = database
            .read(&env, MODEL, &ids, &["write_date".to_owned()])
            .unwrap();
        let stamp = json!(format_datetime(1_800_000_000_123_456));
        assert!(rows.iter().all(|row| row["write_date"] == stamp));
    }

    #[test]
    fn several_records_share_each_second_in_an_order_unlike_their_ids() {
        let spec = BenchSpec::new(100, 20, 10);
        let seconds: Vec<i64> = (1..=20)
            .map(|id| spec.write_micros(id) / 1_000_000)
            .collect();
        assert!(seconds[..10].iter().all(|s| *s == START_SECOND));
        assert!(seconds[10..].iter().all(|s| *s == START_SECOND + 1));
        let micros: Vec<i64> = (1..=10).map(|id| spec.write_micros(id)).collect();
        let mut sorted = micros.clone();
        sorted.sort_unstable();
        assert_ne!(micros, sorted, "microseconds must not follow ids");
    }
}
