//! Row mapping shared by the stores: both read a row through [`Columns`] (five typed getters
//! over their own row type) and get the same domain values, parsed and checked the same way.
//! Timestamps arrive as RFC 3339 text from both (SQLite stores text; PostgreSQL selects its
//! `timestamptz` columns as text), so one parser serves both.
//!
//! Only what the stores agree on lives here: SQL, placeholders and column types stay in each
//! store crate.

use super::StoreError;
use super::coordination::{BreakerRecord, BreakerStatus, FlowLease, Heartbeat, HintActivity};
use super::inbox::{ApplicationRecord, InboundEvent, InboundStatus};
use super::marketplace::{
    Conflict, ConflictSeverity, ImportState, LogDirection, LogEntry, LogOutcome, LogStats,
    MarketplaceOrder, NewConflict, StoredLogEntry,
};
use super::outbox::{AttemptRecord, FlowStats, LatestPacket, Packet, PacketStatus, Subject};
use super::secrets_at_rest::{Keyring, Reseal, api_key_context, flow_secret_context, is_sealed};
use super::sync_log::{CycleLog, CycleLogEntry};
use super::tenants::{
    Flow, FlowKind, FlowSecrets, SecretValue, StoredCursor, Tenant, parse_transport,
};
use crate::change_feed::Checkpoint;
use crate::webhook::FailureClass;
use jiff::Timestamp;
use odoo_rpc::ApiKey;
use serde_json::{Map, Value};

/// Typed access to one row's columns by name.
pub trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;

    fn timestamp(&self, column: &str) -> Result<Timestamp, StoreError> {
        parse_timestamp(column, &self.text(column)?)
    }

    fn opt_timestamp(&self, column: &str) -> Result<Option<Timestamp>, StoreError> {
        self.opt_text(column)?
            .map(|text| parse_timestamp(column, &text))
            .transpose()
    }

    fn count(&self, column: &str) -> Result<u64, StoreError> {
        let value = self.int(column)?;
        u64::try_from(value)
            .map_err(|_| StoreError::invalid_data(format!("{column} is negative ({value})")))
    }

    fn small(&self, column: &str) -> Result<u32, StoreError> {
        let value = self.int(column)?;
        u32::try_from(value)
            .map_err(|_| StoreError::invalid_data(format!("{column} {value} is out of range")))
    }
}

fn parse_timestamp(column: &str, text: &str) -> Result<Timestamp, StoreError> {
    text.parse::<Timestamp>()
        .map_err(|error| StoreError::invalid_data(format!("{column} {text:?}: {error}")))
}

/// A count as SQL's bigint (counts beyond `i64::MAX` cannot occur).
pub fn to_sql_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A flow's settings as stored: a JSON object.
pub fn encode_settings(settings: &Map<String, Value>) -> String {
    Value::Object(settings.clone()).to_string()
}

/// A flow's secrets as stored: a JSON object of sealed strings.
pub fn encode_secrets(
    flow_id: &str,
    secrets: &FlowSecrets,
    keyring: &Keyring,
) -> Result<String, StoreError> {
    let object = secrets
        .iter()
        .map(|(name, value)| {
            let context = flow_secret_context(flow_id, name);
            Ok((
                name.clone(),
                Value::String(keyring.seal(value.expose(), &context)?),
            ))
        })
        .collect::<Result<Map<String, Value>, StoreError>>()?;
    Ok(Value::Object(object).to_string())
}

/// A tenant's Odoo API key as stored: sealed.
pub fn encode_api_key(tenant: &Tenant, keyring: &Keyring) -> Result<String, StoreError> {
    keyring.seal(tenant.odoo_api_key.expose(), &api_key_context(&tenant.id))
}

/// A tenant's stored API key as `how` would rewrite it (`None`: it stays).
pub fn reseal_api_key(
    tenant_id: &str,
    stored: &str,
    keyring: &Keyring,
    how: &Reseal,
) -> Result<Option<String>, StoreError> {
    keyring.reseal(stored, &api_key_context(tenant_id), how)
}

/// Whether any stored value (API keys, then flows' secrets as stored JSON) is still in clear:
/// read without a write lock, so that opening a store whose secrets are all sealed (every
/// command does) never queues behind, or blocks, the daemon's writes.
pub fn any_in_clear<'a>(
    api_keys: impl IntoIterator<Item = &'a str>,
    flow_secrets: impl IntoIterator<Item = &'a str>,
) -> Result<bool, StoreError> {
    if api_keys.into_iter().any(|stored| !is_sealed(stored)) {
        return Ok(true);
    }
    for stored in flow_secrets {
        let in_clear = object("secrets", stored)?
            .values()
            .any(|value| value.as_str().is_some_and(|text| !is_sealed(text)));
        if in_clear {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A flow's stored secrets (JSON) as `how` would rewrite them (`None`: they stay).
pub fn reseal_flow_secrets(
    flow_id: &str,
    stored: &str,
    keyring: &Keyring,
    how: &Reseal,
) -> Result<Option<String>, StoreError> {
    let mut object = object("secrets", stored)?;
    let mut changed = false;
    for (name, value) in &mut object {
        let Value::String(text) = value else {
            return Err(StoreError::invalid_data(format!(
                "flow {flow_id:?}: secret {name:?} is not a string"
            )));
        };
        if let Some(resealed) = keyring.reseal(text, &flow_secret_context(flow_id, name), how)? {
            *text = resealed;
            changed = true;
        }
    }
    Ok(changed.then(|| Value::Object(object).to_string()))
}

/// Headers of an inbound event as stored: a JSON object.
pub fn encode_headers(headers: &Map<String, Value>) -> String {
    Value::Object(headers.clone()).to_string()
}

fn object(column: &str, text: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StoreError::invalid_data(format!(
            "{column} is not a JSON object"
        ))),
        Err(error) => Err(StoreError::invalid_data(format!(
            "{column} is not JSON: {error}"
        ))),
    }
}

fn failure_class(row: &impl Columns) -> Result<Option<FailureClass>, StoreError> {
    row.opt_text("failure_class")?
        .map(|text| {
            text.parse::<FailureClass>()
                .map_err(|error| StoreError::invalid_data(error.to_string()))
        })
        .transpose()
}

pub fn tenant(row: &impl Columns, keyring: &Keyring) -> Result<Tenant, StoreError> {
    let id = row.text("id")?;
    let api_key = keyring.open(&row.text("odoo_api_key")?, &api_key_context(&id))?;
    let transport = row.text("transport")?;
    Ok(Tenant {
        name: row.text("name")?,
        odoo_url: row.text("odoo_url")?,
        odoo_db: row.text("odoo_db")?,
        odoo_username: row.text("odoo_username")?,
        odoo_api_key: ApiKey::new(api_key),
        transport: parse_transport(&transport).ok_or_else(|| {
            StoreError::invalid_data(format!("tenant {id:?}: unknown transport {transport:?}"))
        })?,
        odoo_min_delay_ms: row.small("odoo_min_delay_ms")?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        id,
    })
}

pub fn flow(row: &impl Columns, keyring: &Keyring) -> Result<Flow, StoreError> {
    let id = row.text("id")?;
    let kind = row.text("kind")?;
    let secrets = object("secrets", &row.text("secrets")?)?
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(value) => {
                let value = keyring.open(&value, &flow_secret_context(&id, &name))?;
                Ok((name, SecretValue::new(value)))
            }
            _ => Err(StoreError::invalid_data(format!(
                "flow {id:?}: secret {name:?} is not a string"
            ))),
        })
        .collect::<Result<FlowSecrets, StoreError>>()?;
    Ok(Flow {
        tenant_id: row.text("tenant_id")?,
        kind: FlowKind::parse(&kind).ok_or_else(|| {
            StoreError::invalid_data(format!("flow {id:?}: unknown kind {kind:?}"))
        })?,
        name: row.text("name")?,
        is_active: row.flag("is_active")?,
        interval_seconds: row.small("interval_seconds")?,
        settings: object("settings", &row.text("settings")?)?,
        secrets,
        last_sync_at: row.opt_timestamp("last_sync_at")?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        id,
    })
}

pub fn cursor(row: &impl Columns) -> Result<StoredCursor, StoreError> {
    Ok(StoredCursor {
        flow_id: row.text("flow_id")?,
        feed: row.text("feed")?,
        checkpoint: Checkpoint {
            second: row.timestamp("cursor_second")?,
            last_id: row.int("cursor_id")?,
        },
        updated_at: row.timestamp("updated_at")?,
    })
}

fn packet_status(text: &str) -> Result<PacketStatus, StoreError> {
    PacketStatus::parse(text)
        .ok_or_else(|| StoreError::invalid_data(format!("unknown packet status {text:?}")))
}

pub fn packet(row: &impl Columns) -> Result<Packet, StoreError> {
    Ok(Packet {
        id: row.text("id")?,
        flow_id: row.text("flow_id")?,
        tenant_id: row.text("tenant_id")?,
        subject: Subject {
            model: row.text("subject_model")?,
            id: row.int("subject_id")?,
        },
        reference: row.opt_text("reference")?,
        target: row.text("target")?,
        event: row.text("event")?,
        version: row.small("version")?,
        payload: row.text("payload")?,
        payload_hash: row.text("payload_hash")?,
        status: packet_status(&row.text("status")?)?,
        attempts: row.small("attempts")?,
        max_attempts: row.small("max_attempts")?,
        next_attempt_at: row.timestamp("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        failure_class: failure_class(row)?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_timestamp("lease_until")?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        delivered_at: row.opt_timestamp("delivered_at")?,
    })
}

pub fn latest_packet(row: &impl Columns) -> Result<LatestPacket, StoreError> {
    Ok(LatestPacket {
        subject_id: row.int("subject_id")?,
        version: row.small("version")?,
        event: row.text("event")?,
        payload_hash: row.text("payload_hash")?,
        status: packet_status(&row.text("status")?)?,
    })
}

fn status_code(row: &impl Columns) -> Result<Option<u16>, StoreError> {
    row.opt_int("status_code")?
        .map(|code| {
            u16::try_from(code)
                .map_err(|_| StoreError::invalid_data(format!("HTTP status {code} out of range")))
        })
        .transpose()
}

pub fn attempt(row: &impl Columns) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        packet_id: row.text("packet_id")?,
        worker: row.text("worker")?,
        started_at: row.timestamp("started_at")?,
        duration_ms: row.count("duration_ms")?,
        status_code: status_code(row)?,
        outcome: row.text("outcome")?,
        failure_class: failure_class(row)?,
        error: row.opt_text("error")?,
    })
}

pub fn flow_stats(row: &impl Columns) -> Result<FlowStats, StoreError> {
    Ok(FlowStats {
        flow_id: row.text("flow_id")?,
        delivered_since: row.count("delivered")?,
        pending: row.count("pending")?,
        failed: row.count("failed")?,
        inbound_pending: row.count("inbound_pending")?,
        inbound_failed: row.count("inbound_failed")?,
    })
}

pub fn inbound_event(row: &impl Columns) -> Result<InboundEvent, StoreError> {
    let status = row.text("status")?;
    Ok(InboundEvent {
        id: row.int("id")?,
        flow_id: row.text("flow_id")?,
        event_id: row.text("event_id")?,
        kind: row.text("kind")?,
        subject: row.opt_text("subject")?,
        source: row.text("source")?,
        headers: object("headers", &row.text("headers")?)?,
        body: row.text("body")?,
        status: InboundStatus::parse(&status).ok_or_else(|| {
            StoreError::invalid_data(format!("unknown inbound status {status:?}"))
        })?,
        attempts: row.small("attempts")?,
        max_attempts: row.small("max_attempts")?,
        next_attempt_at: row.timestamp("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        failure_class: failure_class(row)?,
        result: row.opt_text("result")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_timestamp("lease_until")?,
        received_at: row.timestamp("received_at")?,
        updated_at: row.timestamp("updated_at")?,
        applied_at: row.opt_timestamp("applied_at")?,
    })
}

pub fn application(row: &impl Columns) -> Result<ApplicationRecord, StoreError> {
    Ok(ApplicationRecord {
        event: row.int("event")?,
        worker: row.text("worker")?,
        started_at: row.timestamp("started_at")?,
        duration_ms: row.count("duration_ms")?,
        outcome: row.text("outcome")?,
        failure_class: failure_class(row)?,
        detail: row.opt_text("detail")?,
    })
}

pub fn cycle(row: &impl Columns) -> Result<CycleLogEntry, StoreError> {
    Ok(CycleLogEntry {
        id: row.int("id")?,
        log: CycleLog {
            flow_id: row.text("flow_id")?,
            started_at: row.timestamp("started_at")?,
            found: row.count("found")?,
            sent: row.count("sent")?,
            failed: row.count("failed")?,
            held_back: row.count("held_back")?,
            error_message: row.opt_text("error_message")?,
            duration_ms: row.count("duration_ms")?,
        },
    })
}

pub fn heartbeat(row: &impl Columns) -> Result<Heartbeat, StoreError> {
    Ok(Heartbeat {
        worker_id: row.text("worker_id")?,
        kind: row.text("kind")?,
        started_at: row.timestamp("started_at")?,
        beat_at: row.timestamp("beat_at")?,
    })
}

pub fn flow_lease(row: &impl Columns) -> Result<FlowLease, StoreError> {
    Ok(FlowLease {
        flow_id: row.text("flow_id")?,
        owner: row.text("owner")?,
        lease_until: row.timestamp("lease_until")?,
        acquired_at: row.timestamp("acquired_at")?,
    })
}

pub fn breaker(row: &impl Columns) -> Result<BreakerRecord, StoreError> {
    let status = row.text("state")?;
    Ok(BreakerRecord {
        flow_id: row.text("flow_id")?,
        target: row.text("target")?,
        status: BreakerStatus::parse(&status)
            .ok_or_else(|| StoreError::invalid_data(format!("unknown breaker state {status:?}")))?,
        open_until: row.opt_timestamp("open_until")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

pub fn hint_activity(row: &impl Columns) -> Result<HintActivity, StoreError> {
    let received = row.int("received")?;
    Ok(HintActivity {
        flow_id: row.text("flow_id")?,
        received: u64::try_from(received)
            .map_err(|_| StoreError::invalid_data(format!("hint count {received} is negative")))?,
        last_received_at: row.timestamp("last_received_at")?,
    })
}

pub fn marketplace_order(row: &impl Columns) -> Result<MarketplaceOrder, StoreError> {
    let state = row.text("state")?;
    Ok(MarketplaceOrder {
        flow_id: row.text("flow_id")?,
        hashed_id: row.text("hashed_id")?,
        state: ImportState::parse(&state).ok_or_else(|| {
            StoreError::invalid_data(format!("unknown marketplace order state {state:?}"))
        })?,
        odoo_order_id: row.opt_int("odoo_order_id")?,
        claim_owner: row.opt_text("claim_owner")?,
        claim_until: row.opt_timestamp("claim_until")?,
        issue_code: row.opt_text("issue_code")?,
        issue_detail: row.opt_text("issue_detail")?,
        marketplace_status: row.opt_text("marketplace_status")?,
        odoo_status: row.opt_text("odoo_status")?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        imported_at: row.opt_timestamp("imported_at")?,
    })
}

pub fn outbound_order(
    row: &impl Columns,
) -> Result<super::marketplace_outbound::OutboundOrder, StoreError> {
    let odoo_order_id = row
        .opt_int("odoo_order_id")?
        .ok_or_else(|| StoreError::invalid_data("an imported marketplace order has no Odoo id"))?;
    Ok(super::marketplace_outbound::OutboundOrder {
        hashed_id: row.text("hashed_id")?,
        odoo_order_id,
        delivered_by: row.opt_text("delivered_by")?,
        payment_method: row.opt_text("payment_method")?,
        marketplace_status: row.opt_text("marketplace_status")?,
        odoo_status: row.opt_text("odoo_status")?,
    })
}

/// A `marketplace_log` row (timestamps as text, as for every row).
pub fn marketplace_log_entry(row: &impl Columns) -> Result<StoredLogEntry, StoreError> {
    let direction = row.text("direction")?;
    let outcome = row.text("outcome")?;
    let response_time_ms = row
        .opt_int("response_time_ms")?
        .map(|ms| {
            u64::try_from(ms)
                .map_err(|_| StoreError::invalid_data(format!("response_time_ms is {ms}")))
        })
        .transpose()?;
    Ok(StoredLogEntry {
        id: row.int("id")?,
        entry: LogEntry {
            flow_id: row.text("flow_id")?,
            event_key: row.text("event_key")?,
            direction: LogDirection::parse(&direction).ok_or_else(|| {
                StoreError::invalid_data(format!("unknown log direction {direction:?}"))
            })?,
            hashed_id: row.text("hashed_id")?,
            odoo_order_id: row.opt_int("odoo_order_id")?,
            action: row.text("action")?,
            outcome: LogOutcome::parse(&outcome).ok_or_else(|| {
                StoreError::invalid_data(format!("unknown log outcome {outcome:?}"))
            })?,
            marketplace_status: row.opt_text("marketplace_status")?,
            odoo_order_state: row.opt_text("odoo_order_state")?,
            odoo_delivery_state: row.opt_text("odoo_delivery_state")?,
            response_time_ms,
            retries: row.small("retries")?,
            error_code: row.opt_text("error_code")?,
            error_text: row.opt_text("error_text")?,
            at: row.timestamp("at")?,
        },
    })
}

/// The one row of the stats query.
pub fn marketplace_log_stats(row: &impl Columns) -> Result<LogStats, StoreError> {
    Ok(LogStats {
        total: row.count("total")?,
        success: row.count("success")?,
        failed: row.count("failed")?,
        conflict: row.count("conflict")?,
        retrying: row.count("retrying")?,
        response_time_ms_sum: row.count("response_time_ms_sum")?,
        response_times: row.count("response_times")?,
        orders: row.count("orders")?,
        orders_in_sync: row.count("orders_in_sync")?,
        open_conflicts: row.count("open_conflicts")?,
    })
}

/// A `marketplace_conflicts` row.
pub fn marketplace_conflict(row: &impl Columns) -> Result<Conflict, StoreError> {
    let severity = row.text("severity")?;
    let state = row.text("state")?;
    let open = match state.as_str() {
        "open" => true,
        "resolved" => false,
        other => {
            return Err(StoreError::invalid_data(format!(
                "unknown conflict state {other:?}"
            )));
        }
    };
    let updated_at = row.timestamp("updated_at")?;
    Ok(Conflict {
        id: row.int("id")?,
        conflict: NewConflict {
            flow_id: row.text("flow_id")?,
            hashed_id: row.text("hashed_id")?,
            event_key: row.text("event_key")?,
            odoo_order_id: row.opt_int("odoo_order_id")?,
            kind: row.text("kind")?,
            severity: ConflictSeverity::parse(&severity).ok_or_else(|| {
                StoreError::invalid_data(format!("unknown conflict severity {severity:?}"))
            })?,
            marketplace_status: row.opt_text("marketplace_status")?,
            odoo_status: row.opt_text("odoo_status")?,
            odoo_order_state: row.opt_text("odoo_order_state")?,
            odoo_delivery_state: row.opt_text("odoo_delivery_state")?,
            recommended_action: row.text("recommended_action")?,
            auto_resolvable: row.flag("auto_resolvable")?,
            detail: row.text("detail")?,
            resolution: row.opt_text("resolution")?,
            at: updated_at,
        },
        open,
        created_at: row.timestamp("created_at")?,
        updated_at,
        resolved_at: row.opt_timestamp("resolved_at")?,
    })
}
