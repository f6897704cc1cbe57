//! What the screens show, read from the store in one go: a [`Snapshot`]. Loaded off the UI
//! task by the [`crate::exec::Executor`], through the [`DeliveryStore`] trait only.

use engine::connection_form::display_url;
use engine::display::start_of_day_utc;
use engine::enrich::flow::StoredJob;
use engine::enrich::health;
use engine::enrich::record::{self, EmissionState, RecordState};
use engine::marketplace::MarketplaceRegistry as _;
use engine::mirror_store::StoreError;
use engine::order_delivery::{Connection, ConnectionStats, ConnectionStore};
use engine::runtime::heartbeat;
use engine::store::{
    BreakerRecord, Conflict, CycleLogEntry, FlowKind, Heartbeat, HintActivity, ImportState,
    LogFilter, LogStats, Packet, PacketFilter, PacketStatus, Store, StoredLogEntry,
};
use jiff::{SignedDuration, Timestamp};

/// Rows of the recent-activity feed kept.
pub const ACTIVITY_ROWS: u32 = 50;
/// Rows of one page of the sync log.
pub const LOG_PAGE: usize = 50;
/// Packets of one status the retry queue reads at most.
pub const QUEUE_ROWS: u32 = 500;
/// Rows of the selected marketplace's sync log kept.
pub const MARKET_LOG_ROWS: u32 = 50;
/// The window of the marketplace stats (seed 001's dashboard: the last 24 hours).
pub const MARKET_STATS_HOURS: i64 = 24;

/// Which packets the retry queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// PENDING and FAILED.
    #[default]
    Both,
    Pending,
    Failed,
}

impl StatusFilter {
    pub fn next(self) -> StatusFilter {
        match self {
            StatusFilter::Both => StatusFilter::Pending,
            StatusFilter::Pending => StatusFilter::Failed,
            StatusFilter::Failed => StatusFilter::Both,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StatusFilter::Both => "pending + failed",
            StatusFilter::Pending => "pending",
            StatusFilter::Failed => "failed",
        }
    }

    fn statuses(self) -> &'static [PacketStatus] {
        match self {
            StatusFilter::Both => &[PacketStatus::Pending, PacketStatus::Failed],
            StatusFilter::Pending => &[PacketStatus::Pending],
            StatusFilter::Failed => &[PacketStatus::Failed],
        }
    }
}

/// Which records of an enrichment job the Enrichment screen lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordFilter {
    #[default]
    All,
    /// Disabled, or pending again after a failed attempt ([`health::is_failing`]).
    Failing,
    Disabled,
}

impl RecordFilter {
    pub fn next(self) -> RecordFilter {
        match self {
            RecordFilter::All => RecordFilter::Failing,
            RecordFilter::Failing => RecordFilter::Disabled,
            RecordFilter::Disabled => RecordFilter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordFilter::All => "all",
            RecordFilter::Failing => "failing",
            RecordFilter::Disabled => "disabled",
        }
    }

    pub fn matches(self, record: &RecordState) -> bool {
        match self {
            RecordFilter::All => true,
            RecordFilter::Failing => health::is_failing(record),
            RecordFilter::Disabled => record.disabled(),
        }
    }
}

/// What to read besides the connections: the screens' filters and page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadRequest {
    /// Sent back with the [`Snapshot`], so that an answer to an older request is ignored.
    pub generation: u64,
    /// The sync log of one connection (id), or of all.
    pub log_connection: Option<String>,
    /// 0 is the newest page.
    pub log_page: usize,
    /// The retry queue of one connection (id), or of all.
    pub queue_connection: Option<String>,
    pub queue_status: StatusFilter,
    /// Read the marketplaces (only while their screen is open: counting their orders is not
    /// free), with the details of this one (id), or of the first.
    pub marketplaces: bool,
    pub marketplace: Option<String>,
    /// Read the enrichment jobs (only while their screen is open: a job's records are all
    /// its packets), with the records of this one (flow id), or of the first.
    pub enrichment: bool,
    pub enrichment_job: Option<String>,
}

/// One marketplace as its list shows it: no secrets, no Odoo login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub is_active: bool,
    pub interval_seconds: u32,
    pub last_sync_at: Option<Timestamp>,
    /// Its orders by where their import stands.
    pub imported: usize,
    pub refused: usize,
    pub in_progress: usize,
    pub open_conflicts: usize,
}

/// The Marketplace screen's data: every marketplace, and the details of one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MarketplaceData {
    /// Whether it was read (the screen was open when the snapshot was taken).
    pub loaded: bool,
    /// By name.
    pub marketplaces: Vec<MarketplaceRow>,
    /// The marketplace the details below are of.
    pub detail_of: Option<String>,
    /// Its last [`MARKET_STATS_HOURS`] hours, as `marketplace stats` reads them.
    pub stats: LogStats,
    /// Its open conflicts, newest first.
    pub conflicts: Vec<Conflict>,
    /// Its newest sync log rows, newest first.
    pub log: Vec<StoredLogEntry>,
}

/// One enrichment job as its list shows it: its flow's settings (no secret: the signing
/// secret stays sealed with the flow) and its records counted by where they stand.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichmentJobRow {
    /// The flow id.
    pub id: String,
    pub name: String,
    pub is_active: bool,
    pub model: String,
    /// Without credentials, query or fragment (they may hold tokens).
    pub endpoint: String,
    pub packet_version: String,
    pub max_failures: u32,
    /// Why the flow's settings could not be read; the figures below are then empty.
    pub settings_error: Option<String>,
    /// 1 − failing records / 5, floored at 0 ([`health::job_score`]).
    pub health: f64,
    pub applied: usize,
    /// Waiting for their first answer (no failed attempt yet).
    pub pending: usize,
    /// Pending again after a failed attempt: failing, not yet disabled.
    pub failing: usize,
    /// Stopped by their breaker after `max_failures` failed emissions.
    pub disabled: usize,
}

/// The Enrichment screen's data: every enrichment job, and the records of one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnrichmentData {
    /// Whether it was read (the screen was open when the snapshot was taken).
    pub loaded: bool,
    /// By name.
    pub jobs: Vec<EnrichmentJobRow>,
    /// The job the records below are of.
    pub detail_of: Option<String>,
    /// Its records at its packet version, by record id, as `enrich status` shows them.
    pub records: Vec<RecordState>,
}

/// Everything the screens show, as read at `loaded_at`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub generation: u64,
    pub loaded_at: Timestamp,
    /// By name.
    pub connections: Vec<Connection>,
    /// Delivered since 00:00 UTC, pending and failed now, per connection.
    pub stats: Vec<ConnectionStats>,
    pub breakers: Vec<BreakerRecord>,
    /// Every recorded daemon heartbeat (the stale ones too; see [`Snapshot::other_daemon`]).
    pub daemons: Vec<Heartbeat>,
    /// The newest cycles of every connection, newest first.
    pub activity: Vec<CycleLogEntry>,
    /// The requested page of the sync log, newest first.
    pub logs: Vec<CycleLogEntry>,
    /// Whether an older page exists.
    pub logs_more: bool,
    /// The retry queue as filtered, newest first.
    pub queue: Vec<Packet>,
    /// The Odoo push hints each connection took in (none for connections without).
    pub hints: Vec<HintActivity>,
    /// Empty unless [`LoadRequest::marketplaces`].
    pub market: MarketplaceData,
    /// Empty unless [`LoadRequest::enrichment`].
    pub enrichment: EnrichmentData,
}

impl Snapshot {
    pub fn connection(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    /// The connection's name, or its id when it is gone.
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.connection(id).map_or(id, |c| c.name.as_str())
    }

    pub fn stats_of(&self, id: &str) -> ConnectionStats {
        self.stats
            .iter()
            .find(|s| s.flow_id == id)
            .cloned()
            .unwrap_or_else(|| ConnectionStats {
                flow_id: id.to_owned(),
                ..ConnectionStats::default()
            })
    }

    /// Whether Odoo's push hints reach the connection, and when the last did.
    pub fn hints_of(&self, id: &str) -> Option<&HintActivity> {
        self.hints.iter().find(|h| h.flow_id == id)
    }

    pub fn breaker_of(&self, id: &str) -> Option<&BreakerRecord> {
        self.breakers.iter().find(|b| b.flow_id == id)
    }

    /// The newest cycle of a connection among the activity rows.
    pub fn newest_cycle_of(&self, id: &str) -> Option<&CycleLogEntry> {
        self.activity.iter().find(|entry| entry.log.flow_id == id)
    }

    /// Errors among the connection's recent cycles (the activity rows).
    pub fn recent_errors_of(&self, id: &str) -> usize {
        self.activity
            .iter()
            .filter(|entry| entry.log.flow_id == id && entry.log.error_message.is_some())
            .count()
    }

    /// A running daemon other than `own_worker` (this TUI's poller), by its fresh
    /// heartbeat at `now`.
    pub fn other_daemon(&self, own_worker: &str, now: Timestamp) -> Option<&Heartbeat> {
        self.daemons
            .iter()
            .find(|beat| beat.worker_id != own_worker && heartbeat::is_fresh(beat, now))
    }

    /// Pending and failed packets of every connection.
    pub fn queue_totals(&self) -> (u64, u64) {
        self.stats.iter().fold((0, 0), |(pending, failed), s| {
            (pending + s.pending, failed + s.failed)
        })
    }
}

/// Reads a [`Snapshot`] for `request` at `now`.
pub async fn load<S: Store>(
    store: &S,
    request: &LoadRequest,
    now: Timestamp,
) -> Result<Snapshot, StoreError> {
    let connections = store.connections().await?;
    let stats = store.flow_stats(start_of_day_utc(now)).await?;
    let breakers = store.breaker_states().await?;
    let daemons = store.heartbeats().await?;
    let activity = store.cycles(None, ACTIVITY_ROWS).await?;
    let hints = store.hint_activity().await?;
    let wanted = (request.log_page + 1) * LOG_PAGE + 1;
    let mut logs = store
        .cycles(
            request.log_connection.as_deref(),
            u32::try_from(wanted).unwrap_or(u32::MAX),
        )
        .await?;
    let logs_more = logs.len() == wanted;
    logs.truncate(wanted - 1);
    let logs: Vec<CycleLogEntry> = logs.into_iter().skip(request.log_page * LOG_PAGE).collect();
    let mut queue = Vec::new();
    for status in request.queue_status.statuses() {
        queue.extend(
            store
                .packets(&PacketFilter {
                    flow_id: request.queue_connection.clone(),
                    status: Some(*status),
                    limit: QUEUE_ROWS,
                })
                .await?,
        );
    }
    // Newest first; among packets of one moment, by order number (not as text: 27 after 9).
    queue.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.subject.id.cmp(&a.subject.id))
            .then(b.version.cmp(&a.version))
    });
    let market = if request.marketplaces {
        load_marketplaces(store, request.marketplace.as_deref(), now).await?
    } else {
        MarketplaceData::default()
    };
    let enrichment = if request.enrichment {
        load_enrichment(store, request.enrichment_job.as_deref()).await?
    } else {
        EnrichmentData::default()
    };
    Ok(Snapshot {
        generation: request.generation,
        loaded_at: now,
        connections,
        stats,
        breakers,
        daemons,
        activity,
        logs,
        logs_more,
        queue,
        hints,
        market,
        enrichment,
    })
}

/// The marketplaces with the store calls `odoo-bridge marketplace list | conflicts | log |
/// stats` make, and the details of `selected` (or of the first when it is gone).
async fn load_marketplaces<S: Store>(
    store: &S,
    selected: Option<&str>,
    now: Timestamp,
) -> Result<MarketplaceData, StoreError> {
    let open = store.conflicts(None, true).await?;
    let mut rows = Vec::new();
    for m in store.marketplaces().await? {
        let orders = store.marketplace_orders(&m.id).await?;
        let count = |state: ImportState| orders.iter().filter(|o| o.state == state).count();
        rows.push(MarketplaceRow {
            imported: count(ImportState::Imported),
            refused: count(ImportState::Refused),
            in_progress: count(ImportState::Claimed),
            open_conflicts: open.iter().filter(|c| c.conflict.flow_id == m.id).count(),
            kind: m.settings.kind.to_string(),
            is_active: m.is_active,
            interval_seconds: m.interval_seconds,
            last_sync_at: m.last_sync_at,
            name: m.name,
            id: m.id,
        });
    }
    let detail_of = selected
        .and_then(|id| rows.iter().find(|row| row.id == id))
        .or_else(|| rows.first())
        .map(|row| row.id.clone());
    let Some(id) = detail_of.clone() else {
        return Ok(MarketplaceData {
            loaded: true,
            marketplaces: rows,
            ..MarketplaceData::default()
        });
    };
    let since = now - SignedDuration::from_hours(MARKET_STATS_HOURS);
    let stats = store.log_stats(Some(&id), since).await?;
    let log = store
        .marketplace_log(&LogFilter {
            flow_id: Some(id.clone()),
            hashed_id: None,
            limit: MARKET_LOG_ROWS,
        })
        .await?;
    Ok(MarketplaceData {
        loaded: true,
        marketplaces: rows,
        detail_of,
        stats,
        conflicts: open
            .into_iter()
            .filter(|c| c.conflict.flow_id == id)
            .collect(),
        log,
    })
}

/// The enrichment jobs with what `odoo-bridge enrich status` reads (each job's packets, as
/// records at its packet version), and the records of `selected` (or of the first when it is
/// gone).
async fn load_enrichment<S: Store>(
    store: &S,
    selected: Option<&str>,
) -> Result<EnrichmentData, StoreError> {
    let mut jobs = Vec::new();
    let mut records_of = Vec::new();
    for flow in store.flows(Some(FlowKind::Enrichment)).await? {
        let (row, records) = match StoredJob::from_settings(&flow.settings) {
            Ok(job) => {
                let packets = store
                    .packets(&PacketFilter {
                        flow_id: Some(flow.id.clone()),
                        status: None,
                        limit: 0,
                    })
                    .await?;
                let records = record::records(&packets, &job.packet_version);
                (
                    job_row(&flow.id, &flow.name, flow.is_active, &job, &records),
                    records,
                )
            }
            Err(error) => (
                EnrichmentJobRow {
                    id: flow.id.clone(),
                    name: flow.name.clone(),
                    is_active: flow.is_active,
                    model: String::new(),
                    endpoint: String::new(),
                    packet_version: String::new(),
                    max_failures: 0,
                    settings_error: Some(error),
                    health: health::job_score([]),
                    applied: 0,
                    pending: 0,
                    failing: 0,
                    disabled: 0,
                },
                Vec::new(),
            ),
        };
        jobs.push(row);
        records_of.push(records);
    }
    let index = selected
        .and_then(|id| jobs.iter().position(|job| job.id == id))
        .or_else(|| (!jobs.is_empty()).then_some(0));
    let (detail_of, records) = match index {
        Some(index) => (Some(jobs[index].id.clone()), records_of.swap_remove(index)),
        None => (None, Vec::new()),
    };
    Ok(EnrichmentData {
        loaded: true,
        jobs,
        detail_of,
        records,
    })
}

fn job_row(
    id: &str,
    name: &str,
    is_active: bool,
    job: &StoredJob,
    records: &[RecordState],
) -> EnrichmentJobRow {
    let count = |wanted: fn(&RecordState) -> bool| records.iter().filter(|r| wanted(r)).count();
    EnrichmentJobRow {
        id: id.to_owned(),
        name: name.to_owned(),
        is_active,
        model: job.model.clone(),
        endpoint: display_url(&job.endpoint),
        packet_version: job.packet_version.clone(),
        max_failures: job.max_failures,
        settings_error: None,
        health: health::job_score(records),
        applied: count(|r| r.state == EmissionState::Applied),
        pending: count(|r| r.state == EmissionState::Pending && !health::is_failing(r)),
        failing: count(|r| health::is_failing(r) && !r.disabled()),
        disabled: count(RecordState::disabled),
    }
}

/// What a packet is about, for people: `order 42` for a sale order (what order deliveries and
/// marketplace pushes carry), the model and id otherwise (`crm.lead 7` for an enrichment job).
pub fn subject_text(subject: &engine::store::Subject) -> String {
    if subject.model == "sale.order" {
        format!("order {}", subject.id)
    } else {
        format!("{} {}", subject.model, subject.id)
    }
}

#[cfg(test)]
mod tests {
    use super::subject_text;
    use engine::store::Subject;

    #[test]
    fn a_subject_reads_as_an_order_or_as_its_model_and_id() {
        assert_eq!(subject_text(&Subject::new("sale.order", 42)), "order 42");
        assert_eq!(subject_text(&Subject::new("crm.lead", 7)), "crm.lead 7");
    }
}
