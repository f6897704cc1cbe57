//! The in-memory ORM: tables of rows, and `search` / `read` / `create` / `write` / `unlink` /
//! `fields_get` with Odoo's semantics. One call is one transaction: it runs under the
//! server's lock and every record it touches is stamped with the same `now`.

use crate::error::{OdooException, OdooResult};
use crate::query::{self, OrderSpec};
use crate::schema::{Compute, FieldDef, FieldType, ModelDef, standard_models};
use crate::values::{self, Val};
use crate::version::OdooVersion;
use odoo_rpc::domain::Domain;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

pub type Row = Vec<Val>;

/// The uid of the administrator, as in a fresh Odoo database (`base.user_admin`).
pub const ADMIN_UID: i64 = 2;

/// Who calls, with which context, at what transaction time.
#[derive(Debug, Clone)]
pub struct Env {
    pub uid: i64,
    pub context: Map<String, Value>,
    /// `cr.now()`: the transaction's start, in microseconds since the epoch.
    pub now: i64,
}

impl Env {
    pub fn new(uid: i64, now: i64) -> Env {
        Env {
            uid,
            context: Map::new(),
            now,
        }
    }

    pub fn with_context(mut self, context: Map<String, Value>) -> Env {
        self.context = context;
        self
    }

    /// A context flag, read the way Python reads truthiness.
    pub fn flag(&self, key: &str) -> bool {
        self.context.get(key).is_some_and(|value| match value {
            Value::Bool(flag) => *flag,
            Value::Null => false,
            Value::Number(number) => number.as_f64().is_some_and(|f| f != 0.0),
            Value::String(text) => !text.is_empty(),
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
        })
    }

    pub fn active_test(&self) -> bool {
        !matches!(self.context.get("active_test"), Some(Value::Bool(false)))
    }
}

/// A restricted user's rights: the models it may read and the ones it may write.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub readable: HashSet<String>,
    pub writable: HashSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub model: Arc<ModelDef>,
    pub rows: BTreeMap<i64, Row>,
    pub next_id: i64,
    /// `(write_date, id)` of every row whose `write_date` is set, as PostgreSQL's index on
    /// a real Odoo would serve `ORDER BY write_date, id`: change feeds page through it in
    /// O(page · log n) instead of sorting the whole table for every page.
    pub(crate) by_write_date: BTreeSet<(i64, i64)>,
    /// Where `write_date` lives in a row, when the model stores it.
    pub(crate) write_date_position: Option<usize>,
}

impl Table {
    fn new(model: Arc<ModelDef>, rows: BTreeMap<i64, Row>) -> Table {
        let next_id = rows.keys().next_back().map_or(1, |id| id + 1);
        let write_date_position = model
            .get(query::WRITE_DATE)
            .filter(|field| field.ftype == FieldType::Datetime && field.compute.is_none())
            .and_then(|_| model.position(query::WRITE_DATE));
        let mut table = Table {
            model,
            rows,
            next_id,
            by_write_date: BTreeSet::new(),
            write_date_position,
        };
        let entries: Vec<(i64, i64)> = table
            .rows
            .iter()
            .filter_map(|(id, row)| Some((table.write_date_of(row)?, *id)))
            .collect();
        table.by_write_date.extend(entries);
        table
    }

    /// The row's `write_date` in microseconds, when it has one.
    fn write_date_of(&self, row: &Row) -> Option<i64> {
        match row.get(self.write_date_position?) {
            Some(Val::DateTime(micros)) => Some(*micros),
            _ => None,
        }
    }

    /// Keeps [`Table::by_write_date`] in step with a row's `write_date` moving from `old` to
    /// `new` (or appearing, or going away with the row).
    fn reindex(&mut self, id: i64, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.by_write_date.remove(&(old, id));
        }
        if let Some(new) = new {
            self.by_write_date.insert((new, id));
        }
    }
}

/// Where the one2many fields pointing back through a many2one live:
/// `(model, many2one field)` → `[(comodel, one2many field position)]`.
type InverseLinks = HashMap<(String, String), Vec<(String, usize)>>;

#[derive(Debug, Clone)]
pub struct Database {
    pub version: OdooVersion,
    /// Settings → Sales → "Lock Confirmed Sales" (`sale.group_auto_done_setting`): every
    /// confirmation locks the order (16: sets it `done`).
    pub lock_confirmed_sales: bool,
    tables: BTreeMap<String, Table>,
    inverse_links: InverseLinks,
    restricted: HashMap<i64, Access>,
    sequences: HashMap<String, i64>,
}

impl Database {
    /// A fresh database as Odoo creates one: the company, OdooBot (uid 1), the
    /// administrator (uid 2, login `admin`) and a few countries with their states.
    pub fn new(version: OdooVersion) -> Database {
        let mut database = Database {
            version,
            lock_confirmed_sales: false,
            tables: BTreeMap::new(),
            inverse_links: HashMap::new(),
            restricted: HashMap::new(),
            sequences: HashMap::new(),
        };
        for model in standard_models(version) {
            database.declare_model(model);
        }
        for model in crate::automation::automation_models() {
            database.declare_model(model);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(0));
        crate::generator::bootstrap(&mut database, &Env::new(ADMIN_UID, now));
        crate::automation::register_models(&mut database, &Env::new(ADMIN_UID, now));
        database
    }

    /// Adds (or replaces the definition of) a model. Tests use it to declare custom models.
    pub fn declare_model(&mut self, model: ModelDef) {
        let model = Arc::new(model);
        let name = model.name.clone();
        let rows = self
            .tables
            .remove(&name)
            .map(|table| table.rows)
            .unwrap_or_default();
        self.tables.insert(name, Table::new(model, rows));
        self.rebuild_inverse_links();
    }

    /// Adds a field to a declared model, its records empty in it: what creating a custom
    /// field (Studio, or `ir.model.fields` `create`) does on a real Odoo. A field the model
    /// already has is a `ValidationError`, as there.
    pub fn add_field(&mut self, model_name: &str, field: FieldDef) -> OdooResult<()> {
        let table = self.table_mut(model_name)?;
        if table.model.get(&field.name).is_some() {
            return Err(OdooException::validation_error(format!(
                "Field names must be unique per model. ({} on {model_name})",
                field.name
            )));
        }
        let empty = if field.ftype.is_x2many() {
            Val::Refs(Vec::new())
        } else {
            Val::Null
        };
        for row in table.rows.values_mut() {
            row.push(empty.clone());
        }
        table.model = Arc::new((*table.model).clone().field(field));
        self.rebuild_inverse_links();
        Ok(())
    }

    /// Removes a model and its records, as uninstalling the module that defines it does.
    pub fn remove_model(&mut self, name: &str) {
        if self.tables.remove(name).is_some() {
            self.rebuild_inverse_links();
        }
    }

    fn rebuild_inverse_links(&mut self) {
        self.inverse_links.clear();
        for table in self.tables.values() {
            for (position, field) in table.model.fields().iter().enumerate() {
                if let FieldType::One2many { comodel, inverse } = &field.ftype {
                    self.inverse_links
                        .entry((comodel.clone(), inverse.clone()))
                        .or_default()
                        .push((table.model.name.clone(), position));
                }
            }
        }
    }

    pub fn restrict_user(&mut self, uid: i64, access: Access) {
        self.restricted.insert(uid, access);
    }

    pub fn model(&self, name: &str) -> OdooResult<Arc<ModelDef>> {
        self.tables
            .get(name)
            .map(|table| table.model.clone())
            .ok_or_else(|| OdooException::user_error(format!("Object {name} doesn't exist")))
    }

    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    pub fn table(&self, name: &str) -> OdooResult<&Table> {
        self.tables
            .get(name)
            .ok_or_else(|| OdooException::user_error(format!("Object {name} doesn't exist")))
    }

    fn table_mut(&mut self, name: &str) -> OdooResult<&mut Table> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| OdooException::user_error(format!("Object {name} doesn't exist")))
    }

    pub fn row(&self, model: &str, id: i64) -> Option<&Row> {
        self.tables.get(model)?.rows.get(&id)
    }

    pub fn exists(&self, model: &str, id: i64) -> bool {
        self.row(model, id).is_some()
    }

    /// Odoo's `MissingError` when any of `ids` is not (or no longer) in `model`.
    pub fn ensure_exist(&self, env: &Env, model: &str, ids: &[i64]) -> OdooResult<()> {
        let missing: String = ids
            .iter()
            .filter(|id| !self.exists(model, **id))
            .map(|id| format!("{id},"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(OdooException::missing_error(format!(
            "Record does not exist or has been deleted.\n(Record: {model}({missing}), User: {})",
            env.uid
        )))
    }

    pub fn count(&self, model: &str) -> usize {
        self.tables.get(model).map_or(0, |table| table.rows.len())
    }

    pub fn check_access(&self, env: &Env, model: &ModelDef, mode: Mode) -> OdooResult<()> {
        let Some(access) = self.restricted.get(&env.uid) else {
            return Ok(());
        };
        let allowed = match mode {
            Mode::Read => access.readable.contains(&model.name),
            Mode::Write => access.writable.contains(&model.name),
        };
        if allowed {
            return Ok(());
        }
        let operation = match mode {
            Mode::Read => "read",
            Mode::Write => "write",
        };
        Err(OdooException::access_error(format!(
            "You are not allowed to {operation} '{}' ({}) records.\n\nThis operation is allowed for the following groups:\n\t- Sales/Administrator\n\nContact your administrator to request access if necessary.",
            model.description, model.name
        )))
    }

    // ----- values ---------------------------------------------------------------------

    /// The value of a field of a record, computing non-stored fields.
    pub fn value(&self, model: &ModelDef, id: i64, field: &FieldDef) -> Val {
        if field.name == "id" {
            return Val::Int(id);
        }
        if let Some(compute) = field.compute {
            return self.compute(model, id, compute);
        }
        let Some(position) = model.position(&field.name) else {
            return Val::Null;
        };
        self.row(&model.name, id)
            .and_then(|row| row.get(position).cloned())
            .unwrap_or(Val::Null)
    }

    pub fn value_by_name(&self, model: &str, id: i64, field: &str) -> Val {
        let Some(table) = self.tables.get(model) else {
            return Val::Null;
        };
        let model = table.model.clone();
        match model.get(field) {
            Some(definition) => self.value(&model, id, definition),
            None => Val::Null,
        }
    }

    fn str_of(&self, model: &str, id: i64, field: &str) -> Option<String> {
        match self.value_by_name(model, id, field) {
            Val::Str(text) => Some(text),
            _ => None,
        }
    }

    fn compute(&self, model: &ModelDef, id: i64, compute: Compute) -> Val {
        match compute {
            Compute::DisplayName => Val::Str(self.display_name(&model.name, id)),
            Compute::PartnerSaleOrderCount => {
                let family: HashSet<i64> = self.descendants("res.partner", &[id]);
                let count = self.tables.get("sale.order").map_or(0, |orders| {
                    let position = orders.model.position("partner_id");
                    orders
                        .rows
                        .values()
                        .filter(|row| {
                            position
                                .and_then(|p| row.get(p))
                                .and_then(Val::as_ref_id)
                                .is_some_and(|partner| family.contains(&partner))
                        })
                        .count()
                });
                Val::Int(count as i64)
            }
            Compute::OrderAmountUntaxed | Compute::OrderAmountTotal => {
                let lines = self.value_by_name("sale.order", id, "order_line");
                let total: f64 = lines
                    .as_refs()
                    .iter()
                    .map(|line| {
                        self.value_by_name("sale.order.line", *line, "price_subtotal")
                            .as_f64()
                    })
                    .sum();
                Val::Float(round_cents(total))
            }
            Compute::LineSubtotal => {
                let quantity = self
                    .value_by_name("sale.order.line", id, "product_uom_qty")
                    .as_f64();
                let price = self
                    .value_by_name("sale.order.line", id, "price_unit")
                    .as_f64();
                let discount = self
                    .value_by_name("sale.order.line", id, "discount")
                    .as_f64();
                Val::Float(round_cents(quantity * price * (1.0 - discount / 100.0)))
            }
            Compute::OrderDeliveryStatus => {
                let pickings = self.value_by_name("sale.order", id, "picking_ids");
                let states: Vec<String> = pickings
                    .as_refs()
                    .iter()
                    .filter(|picking| {
                        self.str_of("stock.picking", **picking, "picking_type_code")
                            .as_deref()
                            == Some("outgoing")
                    })
                    .filter_map(|picking| self.str_of("stock.picking", *picking, "state"))
                    .filter(|state| state != "cancel")
                    .collect();
                if states.is_empty() {
                    Val::Null
                } else if states.iter().all(|state| state == "done") {
                    Val::Str("full".into())
                } else if states.iter().any(|state| state == "done") {
                    Val::Str("partial".into())
                } else {
                    Val::Str("pending".into())
                }
            }
            Compute::PickingTypeCode => Val::Null,
            Compute::Zero => Val::Float(0.0),
            Compute::Related(path) => self.related(&model.name, id, path),
        }
    }

    /// Follows `a.b.c` through many2ones from a record; empty as soon as a hop is empty.
    fn related(&self, model: &str, id: i64, path: &str) -> Val {
        let mut model = model.to_owned();
        let mut id = id;
        let mut hops = path.split('.').peekable();
        while let Some(hop) = hops.next() {
            let value = self.value_by_name(&model, id, hop);
            if hops.peek().is_none() {
                return value;
            }
            let comodel = self
                .tables
                .get(&model)
                .and_then(|table| table.model.get(hop))
                .and_then(|field| field.ftype.comodel())
                .map(str::to_owned);
            match (value.as_ref_id(), comodel) {
                (Some(next), Some(comodel)) => {
                    id = next;
                    model = comodel;
                }
                _ => return Val::Null,
            }
        }
        Val::Null
    }

    /// The first record (by id) whose `field` equals `text`: how defaults find "USD" or "Units".
    pub fn find_by(&self, model: &str, field: &str, text: &str) -> Option<i64> {
        let table = self.tables.get(model)?;
        let position = table.model.position(field)?;
        table
            .rows
            .iter()
            .find(|(_, row)| row.get(position).and_then(Val::as_str) == Some(text))
            .map(|(id, _)| *id)
    }

    /// `display_name` as the real models compute it for the models we carry.
    pub fn display_name(&self, model: &str, id: i64) -> String {
        match model {
            "res.partner" => {
                let name = self.str_of(model, id, "name").unwrap_or_default();
                match self.value_by_name(model, id, "parent_id").as_ref_id() {
                    Some(parent) if parent != id => {
                        let parent_name = self.display_name(model, parent);
                        if name.is_empty() {
                            parent_name
                        } else {
                            format!("{parent_name}, {name}")
                        }
                    }
                    _ => name,
                }
            }
            "product.product" => {
                let name = self.str_of(model, id, "name").unwrap_or_default();
                let variant: Vec<String> = self
                    .value_by_name(model, id, "product_template_attribute_value_ids")
                    .as_refs()
                    .iter()
                    .filter_map(|ptav| {
                        self.str_of("product.template.attribute.value", *ptav, "name")
                    })
                    .collect();
                let mut text = match self.str_of(model, id, "default_code") {
                    Some(code) if !code.is_empty() => format!("[{code}] {name}"),
                    _ => name,
                };
                if !variant.is_empty() {
                    text.push_str(&format!(" ({})", variant.join(", ")));
                }
                text
            }
            "product.template.attribute.value" => {
                let attribute = self
                    .value_by_name(model, id, "attribute_id")
                    .as_ref_id()
                    .and_then(|attribute| self.str_of("product.attribute", attribute, "name"))
                    .unwrap_or_default();
                let value = self.str_of(model, id, "name").unwrap_or_default();
                format!("{attribute}: {value}")
            }
            "product.category" => {
                let name = self.str_of(model, id, "name").unwrap_or_default();
                match self.value_by_name(model, id, "parent_id").as_ref_id() {
                    Some(parent) if parent != id => {
                        format!("{} / {name}", self.display_name(model, parent))
                    }
                    _ => name,
                }
            }
            "res.country.state" => {
                let name = self.str_of(model, id, "name").unwrap_or_default();
                let country = self
                    .value_by_name(model, id, "country_id")
                    .as_ref_id()
                    .and_then(|country| self.str_of("res.country", country, "code"))
                    .unwrap_or_default();
                format!("{name} ({country})")
            }
            _ => {
                let Some(table) = self.tables.get(model) else {
                    return String::new();
                };
                let rec_name = table.model.rec_name.clone();
                match self.value_by_name(model, id, &rec_name) {
                    Val::Str(text) => text,
                    Val::Ref(other) => table
                        .model
                        .get(&rec_name)
                        .and_then(|field| field.ftype.comodel())
                        .map(|comodel| self.display_name(comodel, other))
                        .unwrap_or_default(),
                    _ => format!("{model},{id}"),
                }
            }
        }
    }

    /// `id` plus every record below it through `parent_id` (what `child_of` means).
    pub fn descendants(&self, model: &str, roots: &[i64]) -> HashSet<i64> {
        let mut found: HashSet<i64> = roots.iter().copied().collect();
        let Some(table) = self.tables.get(model) else {
            return found;
        };
        let Some(position) = table.model.position("parent_id") else {
            return found;
        };
        loop {
            let before = found.len();
            for (id, row) in &table.rows {
                if let Some(parent) = row.get(position).and_then(Val::as_ref_id)
                    && found.contains(&parent)
                {
                    found.insert(*id);
                }
            }
            if found.len() == before {
                return found;
            }
        }
    }

    /// `id` plus every record above it through `parent_id` (what `parent_of` means).
    pub fn ancestors(&self, model: &str, roots: &[i64]) -> HashSet<i64> {
        let mut found = HashSet::new();
        for root in roots {
            let mut current = Some(*root);
            while let Some(id) = current {
                if !found.insert(id) || !self.exists(model, id) {
                    break;
                }
                current = self.value_by_name(model, id, "parent_id").as_ref_id();
            }
        }
        found
    }

    /// A stored value formatted as `read` returns it.
    pub fn to_json(&self, field: &FieldDef, value: &Val) -> Value {
        match (&field.ftype, value) {
            (FieldType::Integer, Val::Null) => json!(0),
            (FieldType::Float | FieldType::Monetary, Val::Null) => json!(0.0),
            (FieldType::Boolean, Val::Null) => json!(false),
            (FieldType::One2many { .. } | FieldType::Many2many { .. }, Val::Null) => json!([]),
            (_, Val::Null) => Value::Bool(false),
            (_, Val::Bool(flag)) => Value::Bool(*flag),
            (_, Val::Int(number)) => json!(number),
            (_, Val::Float(number)) => json!(number),
            (_, Val::Str(text)) => Value::String(text.clone()),
            (_, Val::Date(date)) => Value::String(date.to_string()),
            (_, Val::DateTime(micros)) => Value::String(values::format_datetime(*micros)),
            (FieldType::Many2one { comodel }, Val::Ref(id)) => {
                json!([id, self.display_name(comodel, *id)])
            }
            (_, Val::Ref(id)) => json!(id),
            (_, Val::Refs(ids)) => json!(ids),
        }
    }

    // ----- search ---------------------------------------------------------------------

    pub fn search(
        &self,
        env: &Env,
        model_name: &str,
        domain: &Domain,
        offset: usize,
        limit: Option<usize>,
        order: Option<&str>,
    ) -> OdooResult<Vec<i64>> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Read)?;
        let order = OrderSpec::parse(&model, order.unwrap_or(&model.order))?;
        let compiled = query::compile(self, env, &model, domain)?;
        let table = self.table(&model.name)?;
        let implicit_active = implicit_active(env, &model, domain);
        // An order a table keeps anyway (by id, or by `write_date, id` when the domain
        // leaves out rows without one) is walked from the domain's bounds, stopping at the
        // page's end; any other order sorts every match, as before.
        if let Some(walk) = query::walk_for(&model, table, &order, domain) {
            return Ok(walk.page(
                self,
                &model,
                table,
                &compiled,
                implicit_active,
                offset,
                limit,
            ));
        }
        let matched = self.filter_rows(&model, table, &compiled, implicit_active);
        Ok(query::sort_page(
            self, &model, matched, &order, offset, limit,
        ))
    }

    pub fn search_count(
        &self,
        env: &Env,
        model_name: &str,
        domain: &Domain,
        limit: Option<usize>,
    ) -> OdooResult<usize> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Read)?;
        let count = self.matching_ids(env, &model, domain)?.len();
        Ok(limit.map_or(count, |limit| count.min(limit)))
    }

    /// Every id matching `domain`, with the implicit `active = True` of `active_test`.
    pub fn matching_ids(
        &self,
        env: &Env,
        model: &ModelDef,
        domain: &Domain,
    ) -> OdooResult<Vec<i64>> {
        let compiled = query::compile(self, env, model, domain)?;
        let table = self.table(&model.name)?;
        Ok(self.filter_rows(model, table, &compiled, implicit_active(env, model, domain)))
    }

    fn filter_rows(
        &self,
        model: &ModelDef,
        table: &Table,
        compiled: &query::Compiled,
        implicit_active: bool,
    ) -> Vec<i64> {
        table
            .rows
            .iter()
            .filter(|(id, row)| query::keeps(self, model, compiled, implicit_active, **id, row))
            .map(|(id, _)| *id)
            .collect()
    }

    // ----- read -----------------------------------------------------------------------

    /// Resolves the field list of a `read`: all fields when empty, an error for unknown ones.
    pub fn read_fields(&self, model: &ModelDef, fields: &[String]) -> OdooResult<Vec<FieldDef>> {
        if fields.is_empty() {
            return Ok(model.fields().to_vec());
        }
        fields
            .iter()
            .map(|name| {
                model
                    .get(name)
                    .cloned()
                    .ok_or_else(|| OdooException::invalid_field(&model.name, name))
            })
            .collect()
    }

    pub fn read(
        &self,
        env: &Env,
        model_name: &str,
        ids: &[i64],
        fields: &[String],
    ) -> OdooResult<Vec<Value>> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Read)?;
        let fields = self.read_fields(&model, fields)?;
        self.ensure_exist(env, model_name, ids)?;
        Ok(ids
            .iter()
            .map(|id| self.read_one(&model, *id, &fields))
            .collect())
    }

    pub fn read_one(&self, model: &ModelDef, id: i64, fields: &[FieldDef]) -> Value {
        let mut record = Map::with_capacity(fields.len() + 1);
        record.insert("id".into(), json!(id));
        for field in fields {
            let value = self.value(model, id, field);
            record.insert(field.name.clone(), self.to_json(field, &value));
        }
        Value::Object(record)
    }

    pub fn fields_get(
        &self,
        env: &Env,
        model_name: &str,
        fields: &[String],
        attributes: &[String],
    ) -> OdooResult<Value> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Read)?;
        let mut out = Map::new();
        for field in model.fields() {
            if !fields.is_empty() && !fields.contains(&field.name) {
                continue;
            }
            let mut description = Map::new();
            description.insert("type".into(), json!(field.ftype.name()));
            description.insert("string".into(), json!(field.string));
            description.insert("required".into(), json!(field.required));
            description.insert("readonly".into(), json!(field.readonly));
            description.insert("store".into(), json!(field.is_stored()));
            description.insert(
                "searchable".into(),
                json!(field.is_stored() || field.name == "display_name"),
            );
            description.insert("sortable".into(), json!(field.is_stored()));
            if let Some(comodel) = field.ftype.comodel() {
                description.insert("relation".into(), json!(comodel));
            }
            if let FieldType::One2many { inverse, .. } = &field.ftype {
                description.insert("relation_field".into(), json!(inverse));
            }
            if let FieldType::Selection(options) = &field.ftype {
                description.insert("selection".into(), json!(options));
            }
            if !attributes.is_empty() {
                description.retain(|key, _| attributes.contains(key));
            }
            out.insert(field.name.clone(), Value::Object(description));
        }
        Ok(Value::Object(out))
    }

    // ----- writes ---------------------------------------------------------------------

    pub(crate) fn next_sequence(&mut self, code: &str) -> i64 {
        let counter = self.sequences.entry(code.to_owned()).or_insert(0);
        *counter += 1;
        *counter
    }

    fn defaults(
        &mut self,
        env: &Env,
        model: &ModelDef,
        vals: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut defaults = Map::new();
        if model.has_active() {
            defaults.insert("active".into(), json!(true));
        }
        let now = values::format_datetime(env.now);
        match model.name.as_str() {
            "sale.order" => {
                defaults.insert("state".into(), json!("draft"));
                defaults.insert("date_order".into(), json!(now));
                defaults.insert("user_id".into(), json!(env.uid));
                defaults.insert("currency_code".into(), json!("USD"));
                defaults.insert("invoice_status".into(), json!("no"));
                defaults.insert(
                    "company_id".into(),
                    json!(self.find_by("res.company", "name", "My Company")),
                );
                defaults.insert(
                    "currency_id".into(),
                    json!(self.find_by("res.currency", "name", "USD")),
                );
                defaults.insert(
                    "pricelist_id".into(),
                    json!(self.find_by("product.pricelist", "name", "Default")),
                );
                if model.get("locked").is_some() {
                    defaults.insert("locked".into(), json!(false));
                }
                if let Some(partner) = vals.get("partner_id").filter(|value| value.is_i64()) {
                    defaults.insert("partner_invoice_id".into(), partner.clone());
                    defaults.insert("partner_shipping_id".into(), partner.clone());
                }
                if vals
                    .get("name")
                    .and_then(Value::as_str)
                    .is_none_or(|name| name == "New")
                {
                    let number = self.next_sequence("sale.order");
                    defaults.insert("name".into(), json!(format!("S{number:05}")));
                }
            }
            "sale.order.line" => {
                defaults.insert("product_uom_qty".into(), json!(1.0));
                defaults.insert("discount".into(), json!(0.0));
                defaults.insert("sequence".into(), json!(10));
                defaults.insert("qty_invoiced".into(), json!(0.0));
                defaults.insert(
                    "product_uom".into(),
                    json!(self.find_by("uom.uom", "name", "Units")),
                );
                if let Some(product) = vals.get("product_id").and_then(Value::as_i64) {
                    defaults.insert(
                        "name".into(),
                        json!(self.display_name("product.product", product)),
                    );
                    let price = self
                        .value_by_name("product.product", product, "lst_price")
                        .as_f64();
                    defaults.insert("price_unit".into(), json!(price));
                }
            }
            "stock.picking" => {
                defaults.insert("state".into(), json!("draft"));
                defaults.insert("priority".into(), json!("0"));
                defaults.insert("scheduled_date".into(), json!(now));
                defaults.insert("picking_type_code".into(), json!("outgoing"));
                if vals.get("name").and_then(Value::as_str).is_none() {
                    let incoming =
                        vals.get("picking_type_code").and_then(Value::as_str) == Some("incoming");
                    let (code, prefix) = if incoming {
                        ("stock.in", "WH/IN/")
                    } else {
                        ("stock.out", "WH/OUT/")
                    };
                    let number = self.next_sequence(code);
                    defaults.insert("name".into(), json!(format!("{prefix}{number:05}")));
                }
            }
            "stock.move" => {
                defaults.insert("state".into(), json!("draft"));
                defaults.insert("sequence".into(), json!(10));
                if self.version.has_quantity_done() {
                    defaults.insert("quantity_done".into(), json!(0.0));
                } else {
                    defaults.insert("quantity".into(), json!(0.0));
                    defaults.insert("picked".into(), json!(false));
                }
            }
            "product.template" => {
                defaults.insert("type".into(), json!("consu"));
                defaults.insert("sale_ok".into(), json!(true));
                defaults.insert("list_price".into(), json!(1.0));
                defaults.insert("standard_price".into(), json!(0.0));
                defaults.insert(
                    "categ_id".into(),
                    json!(self.find_by("product.category", "name", "All")),
                );
                defaults.insert(
                    "uom_id".into(),
                    json!(self.find_by("uom.uom", "name", "Units")),
                );
                defaults.insert("priority".into(), json!("0"));
            }
            "product.product" => {
                if let Some(template) = vals.get("product_tmpl_id").and_then(Value::as_i64) {
                    if let Some(name) = self.str_of("product.template", template, "name") {
                        defaults.insert("name".into(), json!(name));
                    }
                    if let Some(code) = self.str_of("product.template", template, "default_code") {
                        defaults.insert("default_code".into(), json!(code));
                    }
                    let price = self
                        .value_by_name("product.template", template, "list_price")
                        .as_f64();
                    defaults.insert("lst_price".into(), json!(price));
                }
            }
            "res.partner" => {
                defaults.insert("type".into(), json!("contact"));
                defaults.insert("is_company".into(), json!(false));
                defaults.insert("customer_rank".into(), json!(0));
                defaults.insert("supplier_rank".into(), json!(0));
            }
            "res.users" => {
                defaults.insert("share".into(), json!(false));
                defaults.insert(
                    "company_id".into(),
                    json!(self.find_by("res.company", "name", "My Company")),
                );
            }
            "account.move" => {
                defaults.insert("state".into(), json!("draft"));
                defaults.insert("move_type".into(), json!("entry"));
                defaults.insert("date".into(), json!(now.get(..10)));
                defaults.insert("payment_state".into(), json!("not_paid"));
                defaults.insert(
                    "company_id".into(),
                    json!(self.find_by("res.company", "name", "My Company")),
                );
                defaults.insert(
                    "currency_id".into(),
                    json!(self.find_by("res.currency", "name", "USD")),
                );
            }
            "crm.lead" => {
                defaults.insert("type".into(), json!("lead"));
                defaults.insert("priority".into(), json!("0"));
                defaults.insert("probability".into(), json!(10.0));
                defaults.insert(
                    "stage_id".into(),
                    json!(self.find_by("crm.stage", "name", "New")),
                );
                defaults.insert("user_id".into(), json!(env.uid));
                defaults.insert("date_open".into(), json!(now));
            }
            _ => {}
        }
        defaults
    }

    /// `create(vals_list)`: every record gets the same `create_date` / `write_date`.
    pub fn create(
        &mut self,
        env: &Env,
        model_name: &str,
        vals_list: &[Map<String, Value>],
    ) -> OdooResult<Vec<i64>> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Write)?;
        let mut ids = Vec::with_capacity(vals_list.len());
        for vals in vals_list {
            ids.push(self.create_one(env, &model, vals)?);
        }
        Ok(ids)
    }

    fn create_one(
        &mut self,
        env: &Env,
        model: &Arc<ModelDef>,
        vals: &Map<String, Value>,
    ) -> OdooResult<i64> {
        for key in vals.keys() {
            if model.get(key).is_none() {
                return Err(OdooException::invalid_field(&model.name, key));
            }
        }
        let mut merged = self.defaults(env, model, vals);
        for (key, value) in vals {
            merged.insert(key.clone(), value.clone());
        }
        for field in model.fields() {
            if field.required
                && merged
                    .get(&field.name)
                    .is_none_or(|value| value.is_null() || value == &Value::Bool(false))
            {
                return Err(mandatory_field_error(model, field));
            }
        }
        let table = self.table_mut(&model.name)?;
        let id = table.next_id;
        table.next_id += 1;
        let mut row: Row = model
            .fields()
            .iter()
            .map(|field| {
                if field.ftype.is_x2many() {
                    Val::Refs(Vec::new())
                } else {
                    Val::Null
                }
            })
            .collect();
        let stamp = |name: &str, row: &mut Row, value: Val| {
            if let Some(position) = model.position(name) {
                row[position] = value;
            }
        };
        stamp("create_date", &mut row, Val::DateTime(env.now));
        stamp("write_date", &mut row, Val::DateTime(env.now));
        stamp("create_uid", &mut row, Val::Ref(env.uid));
        stamp("write_uid", &mut row, Val::Ref(env.uid));
        let written = table.write_date_of(&row);
        table.rows.insert(id, row);
        table.reindex(id, None, written);
        let result = self.apply_vals(env, model, id, &merged);
        if let Err(error) = result {
            self.remove_row(&model.name, id);
            return Err(error);
        }
        self.after_create(env, model, id)?;
        Ok(id)
    }

    /// Side effects of `create` that a real Odoo has and integrations observe.
    fn after_create(&mut self, env: &Env, model: &ModelDef, id: i64) -> OdooResult<()> {
        match model.name.as_str() {
            "product.template"
                if !matches!(
                    env.context.get("create_product_product"),
                    Some(Value::Bool(false))
                ) =>
            {
                let mut vals = Map::new();
                vals.insert("product_tmpl_id".into(), json!(id));
                self.create(env, "product.product", &[vals])?;
            }
            "stock.return.picking" => crate::workflow::fill_return_wizard(self, env, id)?,
            _ => {}
        }
        Ok(())
    }

    pub fn write(
        &mut self,
        env: &Env,
        model_name: &str,
        ids: &[i64],
        vals: &Map<String, Value>,
    ) -> OdooResult<()> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Write)?;
        for key in vals.keys() {
            if model.get(key).is_none() {
                return Err(OdooException::invalid_field(model_name, key));
            }
        }
        for field in model.fields() {
            if field.required
                && vals
                    .get(&field.name)
                    .is_some_and(|value| value.is_null() || value == &Value::Bool(false))
            {
                return Err(mandatory_field_error(&model, field));
            }
        }
        self.ensure_exist(env, model_name, ids)?;
        for id in ids {
            self.apply_vals(env, &model, *id, vals)?;
        }
        Ok(())
    }

    /// Writes values into a record and stamps `write_date` / `write_uid` with the
    /// transaction's time, maintaining one2many back-references.
    pub fn apply_vals(
        &mut self,
        env: &Env,
        model: &Arc<ModelDef>,
        id: i64,
        vals: &Map<String, Value>,
    ) -> OdooResult<()> {
        let mut x2many = Vec::new();
        let mut changed = Vec::new();
        for (key, value) in vals {
            let Some(field) = model.get(key) else {
                return Err(OdooException::invalid_field(&model.name, key));
            };
            if field.compute.is_some() || field.name == "id" {
                continue;
            }
            if field.ftype.is_x2many() {
                x2many.push((field.clone(), value.clone()));
                continue;
            }
            let new_value = values::from_json(&model.name, field, value)?;
            if let (FieldType::Many2one { comodel }, Val::Ref(target)) = (&field.ftype, &new_value)
                && !self.exists(comodel, *target)
            {
                return Err(OdooException::validation_error(format!(
                    "The operation cannot be completed: the record {comodel}({target}) referenced by {}.{} does not exist.",
                    model.name, field.name
                )));
            }
            if self.value(model, id, field) != new_value {
                changed.push(field.name.clone());
            }
            self.set(model, id, field, new_value);
        }
        for (field, commands) in x2many {
            self.apply_x2many(env, model, id, &field, &commands)?;
        }
        self.touch(env, model, id);
        self.touch_stored_dependents(env, model, id, &changed);
        Ok(())
    }

    /// Records whose stored related field follows a changed field of `model`/`id` (a sale
    /// order line's `state` follows its order's) are recomputed in the same transaction, so
    /// they get the same `write_date`, as on a real Odoo.
    fn touch_stored_dependents(
        &mut self,
        env: &Env,
        model: &ModelDef,
        id: i64,
        changed: &[String],
    ) {
        if changed.is_empty() {
            return;
        }
        let mut dependents: Vec<(Arc<ModelDef>, String)> = Vec::new();
        for table in self.tables.values() {
            for field in table.model.fields() {
                let Some(Compute::Related(path)) = field.compute else {
                    continue;
                };
                let Some((link, target)) = path.split_once('.') else {
                    continue;
                };
                let follows = field.stored_compute
                    && changed.iter().any(|name| name == target)
                    && matches!(
                        table.model.get(link).map(|link| &link.ftype),
                        Some(FieldType::Many2one { comodel }) if *comodel == model.name
                    );
                if follows
                    && !dependents
                        .iter()
                        .any(|(m, l)| m.name == table.model.name && l == link)
                {
                    dependents.push((Arc::clone(&table.model), link.to_owned()));
                }
            }
        }
        for (dependent, link) in dependents {
            let Some(position) = dependent.position(&link) else {
                continue;
            };
            // The parent's one2many, when it has one, lists the dependents without a scan.
            let listed = model.fields().iter().find(|field| {
                matches!(&field.ftype, FieldType::One2many { comodel, inverse }
                    if *comodel == dependent.name && *inverse == link)
            });
            let ids: Vec<i64> = if let Some(one2many) = listed {
                self.value(model, id, one2many).as_refs().to_vec()
            } else {
                self.tables
                    .get(&dependent.name)
                    .map(|table| {
                        table
                            .rows
                            .iter()
                            .filter(|(_, row)| row[position] == Val::Ref(id))
                            .map(|(dependent_id, _)| *dependent_id)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for dependent_id in ids {
                self.touch(env, &dependent, dependent_id);
            }
        }
    }

    pub fn touch(&mut self, env: &Env, model: &ModelDef, id: i64) {
        if let Some(field) = model.get("write_date") {
            let field = field.clone();
            self.set(model, id, &field, Val::DateTime(env.now));
        }
        if let Some(field) = model.get("write_uid") {
            let field = field.clone();
            self.set(model, id, &field, Val::Ref(env.uid));
        }
    }

    /// Sets one stored value; a many2one change moves the record between its parents'
    /// one2many lists.
    pub fn set(&mut self, model: &ModelDef, id: i64, field: &FieldDef, value: Val) {
        let Some(position) = model.position(&field.name) else {
            return;
        };
        let Some(table) = self.tables.get_mut(&model.name) else {
            return;
        };
        let Some(row) = table.rows.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut row[position], value.clone());
        if table.write_date_position == Some(position) {
            let micros = |value: &Val| match value {
                Val::DateTime(micros) => Some(*micros),
                _ => None,
            };
            table.reindex(id, micros(&old), micros(&value));
        }
        if !matches!(field.ftype, FieldType::Many2one { .. }) || old == value {
            return;
        }
        let links = self
            .inverse_links
            .get(&(model.name.clone(), field.name.clone()))
            .cloned()
            .unwrap_or_default();
        for (parent_model, o2m_position) in links {
            let Some(parents) = self.tables.get_mut(&parent_model) else {
                continue;
            };
            if let Some(old_parent) = old
                .as_ref_id()
                .and_then(|parent| parents.rows.get_mut(&parent))
                && let Some(Val::Refs(children)) = old_parent.get_mut(o2m_position)
            {
                children.retain(|child| *child != id);
            }
            if let Some(new_parent) = value
                .as_ref_id()
                .and_then(|parent| parents.rows.get_mut(&parent))
                && let Some(Val::Refs(children)) = new_parent.get_mut(o2m_position)
                && let Err(slot) = children.binary_search(&id)
            {
                children.insert(slot, id);
            }
        }
    }

    fn apply_x2many(
        &mut self,
        env: &Env,
        model: &Arc<ModelDef>,
        id: i64,
        field: &FieldDef,
        commands: &Value,
    ) -> OdooResult<()> {
        let comodel_name = field.ftype.comodel().unwrap_or_default().to_owned();
        let comodel = self.model(&comodel_name)?;
        let bad = || {
            OdooException::value_error(format!(
                "Wrong value for {}.{}: {commands}",
                model.name, field.name
            ))
        };
        let commands: Vec<Value> = match commands {
            Value::Array(items) if items.iter().all(Value::is_i64) => vec![json!([6, 0, items])],
            Value::Array(items) => items.clone(),
            Value::Bool(false) | Value::Null => vec![json!([5])],
            _ => return Err(bad()),
        };
        let inverse = match &field.ftype {
            FieldType::One2many { inverse, .. } => Some(inverse.clone()),
            _ => None,
        };
        for command in commands {
            let parts = command.as_array().ok_or_else(bad)?;
            let code = parts.first().and_then(Value::as_i64).ok_or_else(bad)?;
            let target = parts.get(1).and_then(Value::as_i64).unwrap_or(0);
            let current: Vec<i64> = self.value(model, id, field).as_refs().to_vec();
            match code {
                0 => {
                    let mut vals = parts
                        .get(2)
                        .and_then(Value::as_object)
                        .cloned()
                        .ok_or_else(bad)?;
                    if let Some(inverse) = &inverse {
                        vals.insert(inverse.clone(), json!(id));
                    }
                    let child = self.create_one(env, &comodel, &vals)?;
                    if inverse.is_none() {
                        self.link(model, id, field, child);
                    }
                }
                1 => {
                    let vals = parts
                        .get(2)
                        .and_then(Value::as_object)
                        .cloned()
                        .ok_or_else(bad)?;
                    self.apply_vals(env, &comodel, target, &vals)?;
                }
                2 => {
                    self.unlink_ids(&comodel_name, &[target])?;
                    self.unlink_from(model, id, field, &[target]);
                }
                3 => match &inverse {
                    Some(inverse) => self.clear_inverse(env, &comodel, inverse, &[target]),
                    None => self.unlink_from(model, id, field, &[target]),
                },
                4 => match &inverse {
                    Some(inverse) => {
                        let mut vals = Map::new();
                        vals.insert(inverse.clone(), json!(id));
                        self.apply_vals(env, &comodel, target, &vals)?;
                    }
                    None => self.link(model, id, field, target),
                },
                5 => match &inverse {
                    Some(inverse) => self.clear_inverse(env, &comodel, inverse, &current),
                    None => self.unlink_from(model, id, field, &current),
                },
                6 => {
                    let wanted: Vec<i64> = parts
                        .get(2)
                        .and_then(Value::as_array)
                        .ok_or_else(bad)?
                        .iter()
                        .filter_map(Value::as_i64)
                        .collect();
                    self.ensure_exist(env, &comodel_name, &wanted)?;
                    match &inverse {
                        Some(inverse) => {
                            let dropped: Vec<i64> = current
                                .iter()
                                .copied()
                                .filter(|c| !wanted.contains(c))
                                .collect();
                            self.clear_inverse(env, &comodel, inverse, &dropped);
                            let mut vals = Map::new();
                            vals.insert(inverse.clone(), json!(id));
                            for target in &wanted {
                                self.apply_vals(env, &comodel, *target, &vals)?;
                            }
                        }
                        None => {
                            let mut sorted = wanted.clone();
                            sorted.sort_unstable();
                            sorted.dedup();
                            self.set(model, id, field, Val::Refs(sorted));
                        }
                    }
                }
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    fn link(&mut self, model: &ModelDef, id: i64, field: &FieldDef, target: i64) {
        let mut ids = self.value(model, id, field).as_refs().to_vec();
        if let Err(slot) = ids.binary_search(&target) {
            ids.insert(slot, target);
        }
        self.set(model, id, field, Val::Refs(ids));
    }

    fn unlink_from(&mut self, model: &ModelDef, id: i64, field: &FieldDef, targets: &[i64]) {
        let mut ids = self.value(model, id, field).as_refs().to_vec();
        ids.retain(|existing| !targets.contains(existing));
        self.set(model, id, field, Val::Refs(ids));
    }

    fn clear_inverse(
        &mut self,
        env: &Env,
        comodel: &Arc<ModelDef>,
        inverse: &str,
        children: &[i64],
    ) {
        let Some(field) = comodel.get(inverse).cloned() else {
            return;
        };
        for child in children {
            self.set(comodel, *child, &field, Val::Null);
            self.touch(env, comodel, *child);
        }
    }

    fn remove_row(&mut self, model_name: &str, id: i64) {
        let Ok(model) = self.model(model_name) else {
            return;
        };
        // Detach from parents first so their one2many lists stay right.
        for field in model.fields() {
            if matches!(field.ftype, FieldType::Many2one { .. }) {
                self.set(&model, id, field, Val::Null);
            }
        }
        if let Some(table) = self.tables.get_mut(model_name)
            && let Some(row) = table.rows.remove(&id)
        {
            let written = table.write_date_of(&row);
            table.reindex(id, written, None);
        }
    }

    /// `unlink`: children whose inverse many2one is required go with the parent (Odoo's
    /// `ondelete='cascade'`), other references are emptied (`ondelete='set null'`).
    pub fn unlink(&mut self, env: &Env, model_name: &str, ids: &[i64]) -> OdooResult<()> {
        let model = self.model(model_name)?;
        self.check_access(env, &model, Mode::Write)?;
        if model_name == "sale.order" {
            for id in ids {
                let state = self.str_of(model_name, *id, "state");
                if !matches!(state.as_deref(), Some("draft" | "cancel") | None) {
                    return Err(OdooException::user_error(
                        "You can not delete a sent quotation or a confirmed sales order. You must first cancel it.",
                    ));
                }
            }
        }
        self.unlink_ids(model_name, ids)
    }

    fn unlink_ids(&mut self, model_name: &str, ids: &[i64]) -> OdooResult<()> {
        let model = self.model(model_name)?;
        for field in model.fields() {
            if let FieldType::One2many { comodel, inverse } = &field.ftype {
                let required = self
                    .model(comodel)?
                    .get(inverse)
                    .is_some_and(|f| f.required);
                for id in ids {
                    let children = self.value(&model, *id, field).as_refs().to_vec();
                    if required {
                        self.unlink_ids(comodel, &children)?;
                    }
                }
            }
        }
        for id in ids {
            self.remove_row(model_name, *id);
        }
        let removed: HashSet<i64> = ids.iter().copied().collect();
        let referencing: Vec<(String, usize, bool)> = self
            .tables
            .values()
            .flat_map(|table| {
                table
                    .model
                    .fields()
                    .iter()
                    .enumerate()
                    .filter_map(|(position, field)| match &field.ftype {
                        FieldType::Many2one { comodel } if comodel == model_name => {
                            Some((table.model.name.clone(), position, false))
                        }
                        FieldType::Many2many { comodel } if comodel == model_name => {
                            Some((table.model.name.clone(), position, true))
                        }
                        _ => None,
                    })
            })
            .collect();
        for (other, position, many) in referencing {
            if let Some(table) = self.tables.get_mut(&other) {
                for row in table.rows.values_mut() {
                    match (&mut row[position], many) {
                        (Val::Ref(target), false) if removed.contains(target) => {
                            row[position] = Val::Null
                        }
                        (Val::Refs(targets), true) => {
                            targets.retain(|target| !removed.contains(target))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a search gets Odoo's implicit `('active', '=', True)`: unless the context says
/// `active_test: False` or the domain already has a leaf on `active`.
fn implicit_active(env: &Env, model: &ModelDef, domain: &Domain) -> bool {
    model.has_active() && env.active_test() && !query::mentions_field(domain, "active")
}

fn mandatory_field_error(model: &ModelDef, field: &FieldDef) -> OdooException {
    OdooException::validation_error(format!(
        "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({})\nField: {} ({})",
        model.description, model.name, field.string, field.name
    ))
}

/// Rounds money the way a two-decimal currency does (half away from zero).
pub fn round_cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}
