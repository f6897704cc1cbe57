//! What the screens show, read from the store in one go: a [`Snapshot`]. Loaded off the UI
//! task by the [`crate::exec::Executor`], through the [`DeliveryStore`] trait only.

use engine::display::start_of_day_utc;
use engine::mirror_store::StoreError;
use engine::order_delivery::{Connection, ConnectionStats, ConnectionStore};
use engine::runtime::heartbeat;
use engine::store::{
    BreakerRecord, CycleLogEntry, Heartbeat, HintActivity, Packet, PacketFilter, PacketStatus,
    Store,
};
use jiff::Timestamp;

/// Rows of the recent-activity feed kept.
pub const ACTIVITY_ROWS: u32 = 50;
/// Rows of one page of the sync log.
pub const LOG_PAGE: usize = 50;
/// Packets of one status the retry queue reads at most.
pub const QUEUE_ROWS: u32 = 500;

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
    })
}
