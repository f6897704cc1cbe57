//! The Prometheus metrics: names, label keys and values, descriptions, and the recorder that
//! `GET /metrics` renders.
//!
//! Code that counts something uses the `metrics` facade with the names defined here:
//!
//! ```
//! use engine::http::metrics::{self as m, DeliveryOutcome};
//! let connection_id = "7";
//! ::metrics::counter!(
//!     m::DELIVERIES_TOTAL,
//!     m::LABEL_CONNECTION => connection_id.to_owned(),
//!     m::LABEL_OUTCOME => DeliveryOutcome::Delivered.as_str(),
//! )
//! .increment(1);
//! ::metrics::histogram!(m::DELIVERY_SECONDS).record(0.042);
//! ```
//!
//! Until [`Metrics::install`] has run, those calls go nowhere (the facade's no-op recorder);
//! the daemon installs it once at start, before anything is counted.
//!
//! **Label values** are connection ids, target origins (see
//! [`target_key`](crate::webhook::target_key)) and the fixed words below — never a secret, a
//! full webhook URL (its path or query may carry a token) nor an Odoo login.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::HttpError;
use crate::webhook::BreakerState;

/// Poll cycles run, by connection and outcome ([`PollOutcome`]).
pub const POLL_CYCLES_TOTAL: &str = "odoo_bridge_poll_cycles_total";
/// Confirmed orders a poll cycle found changed since the connection's cursor.
pub const ORDERS_FOUND_TOTAL: &str = "odoo_bridge_orders_found_total";
/// Packets written to the outbox, by connection and event (`order.confirmed`, …).
pub const PACKETS_ENQUEUED_TOTAL: &str = "odoo_bridge_packets_enqueued_total";
/// Delivery attempts, by connection and outcome ([`DeliveryOutcome`]).
pub const DELIVERIES_TOTAL: &str = "odoo_bridge_deliveries_total";
/// Failed delivery attempts, by connection and failure class
/// ([`FailureClass`](crate::webhook::FailureClass): `network_error`, `timeout`, `http_4xx`,
/// `http_5xx`, `rate_limited`, `schema_error`, `odoo_error`).
pub const DELIVERY_FAILURES_TOTAL: &str = "odoo_bridge_delivery_failures_total";
/// Duration of one webhook POST, in seconds (a histogram, buckets [`DELIVERY_SECONDS_BUCKETS`]).
pub const DELIVERY_SECONDS: &str = "odoo_bridge_delivery_seconds";
/// Packets waiting in the outbox (pending or due for a retry), by connection.
pub const OUTBOX_PENDING: &str = "odoo_bridge_outbox_pending";
/// Packets given up (FAILED) and waiting for a person, by connection.
pub const OUTBOX_FAILED: &str = "odoo_bridge_outbox_failed";
/// Circuit breaker state per webhook target: see [`breaker_value`].
pub const BREAKER_OPEN: &str = "odoo_bridge_breaker_open";
/// Calls made to Odoo, by connection.
pub const ODOO_CALLS_TOTAL: &str = "odoo_bridge_odoo_calls_total";
/// Unix time (seconds) of the connection's last successful poll cycle.
pub const LAST_SYNC_TIMESTAMP_SECONDS: &str = "odoo_bridge_last_sync_timestamp_seconds";
/// Connections known to the daemon, by state ([`ConnectionState`]).
pub const CONNECTIONS: &str = "odoo_bridge_connections";
/// Flows of every kind known to the daemon, by kind and state.
pub const FLOWS: &str = "odoo_bridge_flows";
/// Applications of inbound events, by flow and outcome (`applied`, `retry`, `failed`).
pub const INBOUND_APPLICATIONS_TOTAL: &str = "odoo_bridge_inbound_applications_total";

/// The connection's id (the order-delivery flow's id).
pub const LABEL_CONNECTION: &str = "connection";
/// A flow's id.
pub const LABEL_FLOW: &str = "flow";
/// A flow's kind (`order_delivery`, `marketplace`, `enrichment`).
pub const LABEL_KIND: &str = "kind";
/// A [`PollOutcome`] or a [`DeliveryOutcome`].
pub const LABEL_OUTCOME: &str = "outcome";
/// The packet's event name (`order.confirmed`, `order.updated`, `order.cancelled`).
pub const LABEL_EVENT: &str = "event";
/// A failure class, as [`FailureClass::as_str`](crate::webhook::FailureClass) words it.
pub const LABEL_CLASS: &str = "class";
/// A webhook target's breaker key: its origin, never the full URL.
pub const LABEL_TARGET: &str = "target";
/// A [`ConnectionState`].
pub const LABEL_STATE: &str = "state";

/// Bucket bounds of [`DELIVERY_SECONDS`], up to the sender's 30 s timeout.
pub const DELIVERY_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder's buffers are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What kind of metric a [`MetricDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric the daemon emits: its name, kind, label keys and help text.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    /// Its value is in seconds (described to the recorder as its unit; the name already ends
    /// in `_seconds`).
    pub seconds: bool,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Every metric odoo-bridge emits, described to the recorder by [`Metrics::install`].
pub const CATALOGUE: &[MetricDef] = &[
    MetricDef {
        name: POLL_CYCLES_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION, LABEL_OUTCOME],
        help: "Poll cycles run, by connection and outcome (ok | error).",
    },
    MetricDef {
        name: ORDERS_FOUND_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION],
        help: "Confirmed orders found changed since the connection's cursor.",
    },
    MetricDef {
        name: PACKETS_ENQUEUED_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION, LABEL_EVENT],
        help: "Packets written to the outbox, by connection and event.",
    },
    MetricDef {
        name: DELIVERIES_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION, LABEL_OUTCOME],
        help: "Webhook delivery attempts, by connection and outcome (delivered | retry | failed).",
    },
    MetricDef {
        name: DELIVERY_FAILURES_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION, LABEL_CLASS],
        help: "Failed webhook delivery attempts, by connection and failure class.",
    },
    MetricDef {
        name: DELIVERY_SECONDS,
        kind: MetricKind::Histogram,
        seconds: true,
        labels: &[],
        help: "Duration of one webhook POST, in seconds.",
    },
    MetricDef {
        name: OUTBOX_PENDING,
        kind: MetricKind::Gauge,
        seconds: false,
        labels: &[LABEL_CONNECTION],
        help: "Packets waiting in the outbox (pending or due for a retry), by connection.",
    },
    MetricDef {
        name: OUTBOX_FAILED,
        kind: MetricKind::Gauge,
        seconds: false,
        labels: &[LABEL_CONNECTION],
        help: "Packets given up (FAILED) and waiting for a person, by connection.",
    },
    MetricDef {
        name: BREAKER_OPEN,
        kind: MetricKind::Gauge,
        seconds: false,
        labels: &[LABEL_TARGET],
        help: "Circuit breaker per webhook target: 1 open, 0.5 half-open, 0 closed.",
    },
    MetricDef {
        name: ODOO_CALLS_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_CONNECTION],
        help: "Calls made to Odoo's external API, by connection.",
    },
    MetricDef {
        name: LAST_SYNC_TIMESTAMP_SECONDS,
        kind: MetricKind::Gauge,
        seconds: true,
        labels: &[LABEL_CONNECTION],
        help: "Unix time of the connection's last successful poll cycle, in seconds.",
    },
    MetricDef {
        name: CONNECTIONS,
        kind: MetricKind::Gauge,
        seconds: false,
        labels: &[LABEL_STATE],
        help: "Connections known to the daemon, by state (active | paused).",
    },
    MetricDef {
        name: FLOWS,
        kind: MetricKind::Gauge,
        seconds: false,
        labels: &[LABEL_KIND, LABEL_STATE],
        help: "Flows known to the daemon, by kind and state (active | paused).",
    },
    MetricDef {
        name: INBOUND_APPLICATIONS_TOTAL,
        kind: MetricKind::Counter,
        seconds: false,
        labels: &[LABEL_FLOW, LABEL_OUTCOME],
        help: "Applications of inbound events, by flow and outcome (applied | retry | failed).",
    },
];

/// The `outcome` of a poll cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    Ok,
    Error,
}

impl PollOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PollOutcome::Ok => "ok",
            PollOutcome::Error => "error",
        }
    }
}

/// The `outcome` of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx: the packet is done.
    Delivered,
    /// A failure that will be retried.
    Retry,
    /// A failure that gave the packet up (FAILED).
    Failed,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry => "retry",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

/// The `state` of a connection in [`CONNECTIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Active,
    Paused,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Active => "active",
            ConnectionState::Paused => "paused",
        }
    }
}

/// The [`BREAKER_OPEN`] gauge's value for a breaker state: 1 open, 0.5 half-open, 0 closed.
pub fn breaker_value(state: &BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 0.5,
        BreakerState::Open { .. } => 1.0,
    }
}

/// The process-wide Prometheus recorder, rendered by `GET /metrics`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// The handle of the recorder installed by this module, or why it could not be.
static INSTALLED: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

impl Metrics {
    /// Installs the Prometheus recorder as the process's global `metrics` recorder (once; later
    /// calls return the same handle) and describes every metric of [`CATALOGUE`].
    ///
    /// It opens no listener of its own: the recorder is rendered by our router. It fails only if
    /// another global recorder was installed first, by something other than this function.
    pub fn install() -> Result<Metrics, HttpError> {
        INSTALLED
            .get_or_init(install_once)
            .clone()
            .map(|handle| Metrics { handle })
            .map_err(HttpError::Metrics)
    }

    /// The current metrics in Prometheus' text exposition format (0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn install_once() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(DELIVERY_SECONDS.to_owned()),
            DELIVERY_SECONDS_BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    for def in CATALOGUE {
        describe(def);
    }
    // Histogram samples are buffered until drained, by a render or by upkeep: drain them even
    // when nobody scrapes, so the buffers stay small.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread; scrapes will drain the buffers");
    }
    Ok(handle)
}

fn describe(def: &MetricDef) {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    match (def.kind, def.seconds) {
        (MetricKind::Counter, false) => describe_counter!(def.name, def.help),
        (MetricKind::Counter, true) => describe_counter!(def.name, Unit::Seconds, def.help),
        (MetricKind::Gauge, false) => describe_gauge!(def.name, def.help),
        (MetricKind::Gauge, true) => describe_gauge!(def.name, Unit::Seconds, def.help),
        (MetricKind::Histogram, false) => describe_histogram!(def.name, def.help),
        (MetricKind::Histogram, true) => describe_histogram!(def.name, Unit::Seconds, def.help),
    }
}
