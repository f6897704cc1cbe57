//! The TUI's state machine: [`App::handle`] takes one [`Event`] (a key, a tick, data read,
//! a background result) and returns the [`Command`]s to run — IO requests carried out off
//! the UI task by [`crate::exec::Executor`], whose results come back as events. Nothing here
//! waits, reads a clock or touches the store: every transition is a plain function call,
//! tested as such.

use crate::data::{LoadRequest, RecordFilter, Snapshot, StatusFilter};
use crate::form::{FormAction, FormState, TestState, TestSummary};
use engine::connection_form::{ConnectionDraft, FieldError, masked_key, masked_secret};
use engine::enrich::RecordState;
use engine::order_delivery::Connection;
use engine::store::Packet;
use jiff::{SignedDuration, Timestamp};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// How long a notice stays in the status line.
const NOTICE_SECONDS: i64 = 8;

/// What the app reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    /// At most once a second: the time moves on and the data is refreshed.
    Tick(Timestamp),
    /// The terminal's size, at start and on every resize.
    Resize {
        width: u16,
        height: u16,
    },
    /// Data read from the store.
    Data(Box<Snapshot>),
    /// A background command finished.
    Done(Outcome),
}

/// Where a connection test was asked from: its result is shown there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOrigin {
    Form,
    Dashboard,
}

/// The result of a [`Command`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    LoadFailed {
        generation: u64,
        error: String,
    },
    Saved {
        id: String,
        name: String,
        /// A new connection's webhook secret, shown once to give to the receiver.
        new_secret: Option<String>,
    },
    /// The store's own check refused the draft (a name taken meanwhile).
    SaveRejected(Vec<FieldError>),
    Deleted {
        name: String,
    },
    ActiveSet {
        name: String,
        active: bool,
    },
    Tested {
        origin: TestOrigin,
        result: Result<TestSummary, Vec<FieldError>>,
    },
    Retried {
        id: String,
        done: bool,
    },
    Discarded {
        id: String,
        done: bool,
    },
    /// A marketplace conflict was closed with the resolution `ignore`.
    ConflictIgnored {
        id: i64,
    },
    /// A disabled enrichment record's packet is pending again (`done`), or was no longer
    /// disabled.
    ReEnabled {
        job: String,
        record_id: i64,
        packet_id: String,
        done: bool,
    },
    PollerStarted,
    PollerStopped,
    /// A command failed: `action` is what was tried ("save the connection").
    Failed {
        action: String,
        error: String,
    },
}

/// IO the app asks for. Each is run off the UI task and answers with an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Load(LoadRequest),
    /// Validate against the stored connections, then insert or update.
    Save(ConnectionDraft),
    Delete {
        id: String,
        name: String,
    },
    SetActive {
        id: String,
        active: bool,
    },
    /// Test a draft (editing: the stored key is used when the draft leaves it empty).
    Test {
        draft: ConnectionDraft,
        origin: TestOrigin,
    },
    Retry {
        id: String,
    },
    Discard {
        id: String,
    },
    /// Closes an open marketplace conflict changing nothing, as `odoo-bridge marketplace
    /// resolve ID --apply ignore` does.
    IgnoreConflict {
        id: i64,
    },
    /// Re-enables a record the enrichment breaker disabled: its FAILED packet becomes PENDING,
    /// due now, attempts reset — the same packet id is sent again (issue 11's TUI action).
    ReEnable {
        job: String,
        record_id: i64,
        packet_id: String,
    },
    StartPoller,
    StopPoller,
    Quit,
}

/// This TUI's own poller (a daemon on the same store shows as attached instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollerState {
    Stopped,
    Starting,
    Running,
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmState {
    pub title: String,
    pub question: String,
    pub action: ConfirmAction,
    /// Which button has the focus: "No" unless moved.
    pub yes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmAction {
    DeleteConnection {
        id: String,
        name: String,
    },
    DiscardPacket {
        id: String,
    },
    IgnoreConflict {
        id: i64,
    },
    ReEnableRecord {
        job: String,
        record_id: i64,
        packet_id: String,
    },
    /// Leave the connection form below, losing what was typed.
    LeaveForm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub title: String,
    pub lines: Vec<String>,
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PayloadState {
    pub packet: Packet,
    /// The body pretty-printed (as stored when it is not JSON).
    pub lines: Vec<String>,
    pub scroll: usize,
    pub hscroll: usize,
}

impl PayloadState {
    pub fn new(packet: Packet) -> PayloadState {
        let text = serde_json::from_str::<serde_json::Value>(&packet.payload)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| packet.payload.clone());
        PayloadState {
            lines: text.lines().map(str::to_owned).collect(),
            packet,
            scroll: 0,
            hscroll: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Dashboard,
    Form(Box<FormState>),
    Logs,
    Retries,
    Marketplace,
    Enrichment,
    Payload(Box<PayloadState>),
    Help,
    Confirm(ConfirmState),
    Message(MessageState),
}

impl Screen {
    /// Drawn over the screen below it.
    pub fn is_popup(&self) -> bool {
        matches!(self, Screen::Help | Screen::Confirm(_) | Screen::Message(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogsView {
    /// A connection id, or all.
    pub connection: Option<String>,
    pub page: usize,
    pub selected: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueView {
    pub connection: Option<String>,
    pub status: StatusFilter,
    /// The selected packet's id.
    pub selected: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarketView {
    /// The selected marketplace (flow id).
    pub selected: Option<String>,
    /// The selected one among its open conflicts.
    pub conflict: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrichView {
    /// The selected job (flow id).
    pub selected: Option<String>,
    /// The selected record (its id) among the job's records the filter shows.
    pub record: Option<i64>,
    pub filter: RecordFilter,
}

/// How the app is set up.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// This process's worker id: its poller's heartbeat is not "another daemon".
    pub worker_id: String,
    /// Start the poller once the first data shows that no daemon runs on the store.
    pub autostart_poller: bool,
    /// A new connection's form starts from this (the defaults; tests fix the secret).
    pub new_draft: fn() -> ConnectionDraft,
}

impl Default for AppOptions {
    fn default() -> AppOptions {
        AppOptions {
            worker_id: String::new(),
            autostart_poller: true,
            new_draft: ConnectionDraft::with_defaults,
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub options: AppOptions,
    pub now: Timestamp,
    pub size: (u16, u16),
    pub data: Snapshot,
    /// Whether data has arrived at least once.
    pub loaded: bool,
    pub load_error: Option<String>,
    /// The screen stack: the dashboard at the bottom, the current screen on top.
    pub screens: Vec<Screen>,
    /// The dashboard's selected connection (id).
    pub selected: Option<String>,
    pub logs: LogsView,
    pub queue: QueueView,
    pub market: MarketView,
    pub enrich: EnrichView,
    pub poller: PollerState,
    pub notice: Option<Notice>,
    pub quit: bool,
    generation: u64,
    loading: bool,
    load_started: Timestamp,
    autostart_pending: bool,
}

impl App {
    pub fn new(options: AppOptions, now: Timestamp) -> App {
        let autostart_pending = options.autostart_poller;
        App {
            options,
            now,
            size: (80, 24),
            data: Snapshot::default(),
            loaded: false,
            load_error: None,
            screens: vec![Screen::Dashboard],
            selected: None,
            logs: LogsView::default(),
            queue: QueueView::default(),
            market: MarketView::default(),
            enrich: EnrichView::default(),
            poller: PollerState::Stopped,
            notice: None,
            quit: false,
            generation: 0,
            loading: false,
            load_started: now,
            autostart_pending,
        }
    }

    /// The first commands: read the data.
    pub fn start(&mut self) -> Vec<Command> {
        vec![self.load()]
    }

    pub fn screen(&self) -> &Screen {
        self.screens.last().unwrap_or(&Screen::Dashboard)
    }

    fn screen_mut(&mut self) -> Option<&mut Screen> {
        self.screens.last_mut()
    }

    /// The screen a popup is drawn over.
    pub fn base_screen(&self) -> &Screen {
        self.screens
            .iter()
            .rev()
            .find(|screen| !screen.is_popup())
            .unwrap_or(&Screen::Dashboard)
    }

    /// A daemon other than this TUI's poller runs on the store (ATTACHED).
    pub fn attached_to(&self) -> Option<&engine::store::Heartbeat> {
        self.data.other_daemon(&self.options.worker_id, self.now)
    }

    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected.as_deref()?;
        self.data.connections.iter().position(|c| c.id == id)
    }

    pub fn selected_connection(&self) -> Option<&Connection> {
        self.selected_index().map(|i| &self.data.connections[i])
    }

    pub fn selected_packet_index(&self) -> Option<usize> {
        let id = self.queue.selected.as_deref()?;
        self.data.queue.iter().position(|p| p.id == id)
    }

    fn load(&mut self) -> Command {
        self.generation += 1;
        self.loading = true;
        self.load_started = self.now;
        Command::Load(LoadRequest {
            generation: self.generation,
            log_connection: self.logs.connection.clone(),
            log_page: self.logs.page,
            queue_connection: self.queue.connection.clone(),
            queue_status: self.queue.status,
            marketplaces: self
                .screens
                .iter()
                .any(|screen| matches!(screen, Screen::Marketplace)),
            marketplace: self.market.selected.clone(),
            enrichment: self
                .screens
                .iter()
                .any(|screen| matches!(screen, Screen::Enrichment)),
            enrichment_job: self.enrich.selected.clone(),
        })
    }

    fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            at: self.now,
        });
    }

    fn push(&mut self, screen: Screen) {
        self.screens.push(screen);
    }

    fn pop(&mut self) {
        if self.screens.len() > 1 {
            self.screens.pop();
        }
    }

    /// One event in, the commands it asks for out.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::Key(key) if key.kind == KeyEventKind::Release => Vec::new(),
            Event::Key(key) => self.on_key(key),
            Event::Tick(now) => {
                self.now = now;
                if self.notice.as_ref().is_some_and(|n| {
                    now.duration_since(n.at) > SignedDuration::from_secs(NOTICE_SECONDS)
                }) {
                    self.notice = None;
                }
                // One read at a time; one that never answered (10 s) is asked again.
                let stuck = now.duration_since(self.load_started) > SignedDuration::from_secs(10);
                if self.loading && !stuck {
                    Vec::new()
                } else {
                    vec![self.load()]
                }
            }
            Event::Resize { width, height } => {
                self.size = (width, height);
                Vec::new()
            }
            Event::Data(snapshot) => self.on_data(*snapshot),
            Event::Done(outcome) => self.on_outcome(outcome),
        }
    }

    fn on_data(&mut self, snapshot: Snapshot) -> Vec<Command> {
        if snapshot.generation < self.generation {
            // A newer request (other filters) is on its way.
            return Vec::new();
        }
        self.loading = false;
        self.load_error = None;
        self.data = snapshot;
        self.loaded = true;
        // Keep the selections on rows that still exist.
        if self.selected_index().is_none() {
            self.selected = self.data.connections.first().map(|c| c.id.clone());
        }
        if self.selected_packet_index().is_none() {
            self.queue.selected = self.data.queue.first().map(|p| p.id.clone());
        }
        self.logs.selected = self
            .logs
            .selected
            .min(self.data.logs.len().saturating_sub(1));
        if self.data.market.loaded {
            self.market.selected = self.data.market.detail_of.clone();
            self.market.conflict = self
                .market
                .conflict
                .min(self.data.market.conflicts.len().saturating_sub(1));
        }
        if self.data.enrichment.loaded {
            self.enrich.selected = self.data.enrichment.detail_of.clone();
            if self.selected_record_index().is_none() {
                self.enrich.record = self.shown_records().first().map(|r| r.record_id);
            }
        }
        if self.autostart_pending {
            self.autostart_pending = false;
            if self.poller == PollerState::Stopped && self.attached_to().is_none() {
                self.poller = PollerState::Starting;
                return vec![Command::StartPoller];
            }
        }
        Vec::new()
    }

    fn on_outcome(&mut self, outcome: Outcome) -> Vec<Command> {
        match outcome {
            Outcome::LoadFailed { generation, error } => {
                if generation >= self.generation {
                    self.loading = false;
                    self.load_error = Some(error);
                }
                Vec::new()
            }
            Outcome::Saved {
                id,
                name,
                new_secret,
            } => {
                if matches!(self.screen(), Screen::Form(_)) {
                    self.pop();
                }
                self.selected = Some(id.clone());
                self.notify(format!("Saved connection \"{name}\"."), false);
                if let Some(secret) = new_secret {
                    self.push(Screen::Message(MessageState {
                        title: format!("Connection \"{name}\" added"),
                        lines: vec![
                            format!("Id: {id}"),
                            String::new(),
                            "Webhook secret (shown this once; give it to the receiver):".into(),
                            secret,
                            String::new(),
                            "It is sent as X-Webhook-Secret and signs every delivery.".into(),
                            "Later: odoo-bridge connections show … --reveal-secret".into(),
                        ],
                        error: false,
                    }));
                }
                vec![self.load()]
            }
            Outcome::SaveRejected(errors) => {
                if let Some(Screen::Form(form)) = self.screen_mut() {
                    form.saving = false;
                    form.errors = errors;
                }
                Vec::new()
            }
            Outcome::Deleted { name } => {
                self.notify(format!("Deleted connection \"{name}\"."), false);
                vec![self.load()]
            }
            Outcome::ActiveSet { name, active } => {
                let word = if active { "resumed" } else { "paused" };
                self.notify(format!("Connection \"{name}\" {word}."), false);
                vec![self.load()]
            }
            Outcome::Tested { origin, result } => {
                if origin == TestOrigin::Form
                    && let Some(Screen::Form(form)) = self.screen_mut()
                {
                    match result {
                        Ok(summary) => form.test = TestState::Done(summary),
                        Err(errors) => {
                            form.errors = errors;
                            form.test = TestState::Invalid;
                        }
                    }
                    return Vec::new();
                }
                match result {
                    Ok(summary) => {
                        let ok = summary.odoo.ok && summary.webhook.ok;
                        self.push(Screen::Message(MessageState {
                            title: format!(
                                "Test of \"{}\": {}",
                                summary.name,
                                if ok { "ok" } else { "FAILED" }
                            ),
                            lines: test_lines(&summary),
                            error: !ok,
                        }));
                    }
                    Err(errors) => self.notify(
                        format!(
                            "Cannot test: {}",
                            errors
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        true,
                    ),
                }
                Vec::new()
            }
            Outcome::Retried { id, done } => {
                if done {
                    self.notify(format!("Packet {id} is due now (attempts reset)."), false);
                } else {
                    self.notify(
                        format!("Packet {id} was not retried: it is no longer pending or failed."),
                        true,
                    );
                }
                vec![self.load()]
            }
            Outcome::Discarded { id, done } => {
                if done {
                    self.notify(format!("Packet {id} discarded."), false);
                    if matches!(self.screen(), Screen::Payload(p) if p.packet.id == id) {
                        self.pop();
                    }
                } else {
                    self.notify(
                        format!(
                            "Packet {id} was not discarded: it is no longer pending or failed."
                        ),
                        true,
                    );
                }
                vec![self.load()]
            }
            Outcome::ConflictIgnored { id } => {
                self.notify(
                    format!(
                        "Conflict {id} closed (ignore): nothing changed in Odoo or the marketplace."
                    ),
                    false,
                );
                vec![self.load()]
            }
            Outcome::ReEnabled {
                job,
                record_id,
                packet_id,
                done,
            } => {
                if done {
                    self.notify(
                        format!(
                            "Record {record_id} of \"{job}\" re-enabled: packet {packet_id} is pending, due now (failures reset)."
                        ),
                        false,
                    );
                } else {
                    self.notify(
                        format!(
                            "Record {record_id} of \"{job}\" was not re-enabled: it is no longer disabled."
                        ),
                        true,
                    );
                }
                vec![self.load()]
            }
            Outcome::PollerStarted => {
                self.poller = PollerState::Running;
                self.notify("Poller started in this TUI.", false);
                vec![self.load()]
            }
            Outcome::PollerStopped => {
                self.poller = PollerState::Stopped;
                self.notify("Poller stopped.", false);
                vec![self.load()]
            }
            Outcome::Failed { action, error } => {
                if let Some(Screen::Form(form)) = self.screen_mut() {
                    form.saving = false;
                    if form.test == TestState::Running {
                        form.test = TestState::None;
                    }
                    form.problem = Some(format!("Cannot {action}: {error}"));
                }
                if action.contains("poller") {
                    self.poller = PollerState::Stopped;
                }
                self.notify(format!("Cannot {action}: {error}"), true);
                Vec::new()
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![Command::Quit];
        }
        let Some(screen) = self.screens.last().cloned() else {
            return Vec::new();
        };
        match screen {
            Screen::Dashboard => self.dashboard_key(key),
            Screen::Form(_) => self.form_key(key),
            Screen::Logs => self.logs_key(key),
            Screen::Retries => self.queue_key(key),
            Screen::Marketplace => self.marketplace_key(key),
            Screen::Enrichment => self.enrichment_key(key),
            Screen::Payload(_) => self.payload_key(key),
            Screen::Help => {
                self.pop();
                Vec::new()
            }
            Screen::Confirm(confirm) => self.confirm_key(key, confirm),
            Screen::Message(_) => {
                if matches!(
                    key.code,
                    KeyCode::Enter | KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char(' ')
                ) {
                    self.pop();
                }
                Vec::new()
            }
        }
    }

    fn move_connection(&mut self, delta: isize) {
        let count = self.data.connections.len();
        if count == 0 {
            return;
        }
        let index = self.selected_index().unwrap_or(0);
        let next = (index as isize + delta).clamp(0, count as isize - 1) as usize;
        self.selected = Some(self.data.connections[next].id.clone());
    }

    fn dashboard_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                vec![Command::Quit]
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.move_connection(-1);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.move_connection(1);
                Vec::new()
            }
            KeyCode::Home => {
                self.move_connection(isize::MIN / 2);
                Vec::new()
            }
            KeyCode::End => {
                self.move_connection(isize::MAX / 2);
                Vec::new()
            }
            KeyCode::Char('n') => {
                self.push(Screen::Form(Box::new(FormState::create((self
                    .options
                    .new_draft)(
                )))));
                Vec::new()
            }
            KeyCode::Char('e') | KeyCode::Enter => {
                if let Some(c) = self.selected_connection() {
                    let form = FormState::edit(
                        ConnectionDraft::from_connection(c),
                        c.id.clone(),
                        masked_key(&c.odoo_api_key),
                        masked_secret(&c.webhook_secret),
                    );
                    self.push(Screen::Form(Box::new(form)));
                } else {
                    self.notify("No connection to edit: press n to add one.", true);
                }
                Vec::new()
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                if let Some(c) = self.selected_connection() {
                    let stats = self.data.stats_of(&c.id);
                    let confirm = ConfirmState {
                        title: "Delete connection".into(),
                        question: format!(
                            "Delete connection \"{}\" (id {}) with its outbox ({} pending, {} failed) and its sync log?",
                            c.name, c.id, stats.pending, stats.failed
                        ),
                        action: ConfirmAction::DeleteConnection {
                            id: c.id.clone(),
                            name: c.name.clone(),
                        },
                        yes: false,
                    };
                    self.push(Screen::Confirm(confirm));
                }
                Vec::new()
            }
            KeyCode::Char('t') => match self.selected_connection() {
                Some(c) => {
                    let draft = ConnectionDraft::from_connection(c);
                    self.notify(
                        format!("Testing \"{}\": Odoo login and a signed ping…", c.name),
                        false,
                    );
                    vec![Command::Test {
                        draft,
                        origin: TestOrigin::Dashboard,
                    }]
                }
                None => Vec::new(),
            },
            KeyCode::Char('p') | KeyCode::Char(' ') => match self.selected_connection() {
                Some(c) => vec![Command::SetActive {
                    id: c.id.clone(),
                    active: !c.is_active,
                }],
                None => Vec::new(),
            },
            KeyCode::Char('l') => {
                self.push(Screen::Logs);
                Vec::new()
            }
            KeyCode::Char('r') => {
                self.push(Screen::Retries);
                Vec::new()
            }
            KeyCode::Char('s') => self.toggle_poller(),
            KeyCode::Char('m') => {
                self.push(Screen::Marketplace);
                vec![self.load()]
            }
            KeyCode::Char('E') => {
                self.push(Screen::Enrichment);
                vec![self.load()]
            }
            _ => Vec::new(),
        }
    }

    /// The selected marketplace's open conflict under the cursor, once its details are read.
    pub fn selected_conflict(&self) -> Option<&engine::store::Conflict> {
        let market = &self.data.market;
        if market.detail_of.is_none() || market.detail_of != self.market.selected {
            return None;
        }
        market.conflicts.get(self.market.conflict)
    }

    fn move_marketplace(&mut self, delta: isize) -> Vec<Command> {
        let rows = &self.data.market.marketplaces;
        if rows.is_empty() {
            return Vec::new();
        }
        let index = self
            .market
            .selected
            .as_deref()
            .and_then(|id| rows.iter().position(|row| row.id == id))
            .unwrap_or(0);
        let next = (index as isize + delta).clamp(0, rows.len() as isize - 1) as usize;
        let id = rows[next].id.clone();
        if self.market.selected.as_deref() == Some(id.as_str()) {
            return Vec::new();
        }
        self.market.selected = Some(id);
        self.market.conflict = 0;
        // Its stats, conflicts and log.
        vec![self.load()]
    }

    fn marketplace_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.pop();
                Vec::new()
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_marketplace(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_marketplace(1),
            KeyCode::Tab => {
                let count = self.data.market.conflicts.len();
                if count > 0 {
                    self.market.conflict = (self.market.conflict + 1) % count;
                }
                Vec::new()
            }
            KeyCode::BackTab => {
                let count = self.data.market.conflicts.len();
                if count > 0 {
                    self.market.conflict = (self.market.conflict + count - 1) % count;
                }
                Vec::new()
            }
            KeyCode::Char('i') => {
                if let Some(conflict) = self.selected_conflict() {
                    let c = &conflict.conflict;
                    let question = format!(
                        "Close conflict {} ({}, order {}) as ignored? Nothing is changed in Odoo or the marketplace; the two sides stay as they are.",
                        conflict.id, c.kind, c.hashed_id
                    );
                    let action = ConfirmAction::IgnoreConflict { id: conflict.id };
                    self.push(Screen::Confirm(ConfirmState {
                        title: "Ignore conflict".into(),
                        question,
                        action,
                        yes: false,
                    }));
                } else {
                    self.notify("No open conflict selected.", true);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The selected job's records the filter shows, by record id.
    pub fn shown_records(&self) -> Vec<&RecordState> {
        let filter = self.enrich.filter;
        self.data
            .enrichment
            .records
            .iter()
            .filter(|record| filter.matches(record))
            .collect()
    }

    /// The selected job's record under the cursor, once the job's records are read.
    pub fn selected_record(&self) -> Option<&RecordState> {
        let enrichment = &self.data.enrichment;
        if enrichment.detail_of.is_none() || enrichment.detail_of != self.enrich.selected {
            return None;
        }
        let index = self.selected_record_index()?;
        self.shown_records().get(index).copied()
    }

    /// The selected record's position among the records shown.
    pub fn selected_record_index(&self) -> Option<usize> {
        let id = self.enrich.record?;
        self.shown_records().iter().position(|r| r.record_id == id)
    }

    fn move_job(&mut self, delta: isize) -> Vec<Command> {
        let jobs = &self.data.enrichment.jobs;
        if jobs.is_empty() {
            return Vec::new();
        }
        let count = jobs.len() as isize;
        let index = self
            .enrich
            .selected
            .as_deref()
            .and_then(|id| jobs.iter().position(|job| job.id == id))
            .unwrap_or(0) as isize;
        // Round the list, as Tab does through a marketplace's conflicts.
        let next = (index + delta).rem_euclid(count) as usize;
        let id = jobs[next].id.clone();
        if self.enrich.selected.as_deref() == Some(id.as_str()) {
            return Vec::new();
        }
        self.enrich.selected = Some(id);
        self.enrich.record = None;
        // Its records.
        vec![self.load()]
    }

    fn move_record(&mut self, delta: isize) {
        let index = self.selected_record_index().unwrap_or(0) as isize;
        let records = self.shown_records();
        if records.is_empty() {
            return;
        }
        let next = (index.saturating_add(delta)).clamp(0, records.len() as isize - 1) as usize;
        self.enrich.record = Some(records[next].record_id);
    }

    fn enrichment_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let Some(step) = list_step(key.code) {
            self.move_record(step);
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.pop();
                Vec::new()
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Tab | KeyCode::Right => self.move_job(1),
            KeyCode::BackTab | KeyCode::Left => self.move_job(-1),
            KeyCode::Char('f') => {
                self.enrich.filter = self.enrich.filter.next();
                self.enrich.record = self.shown_records().first().map(|r| r.record_id);
                Vec::new()
            }
            KeyCode::Char('r') => {
                self.ask_re_enable();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Asks before re-enabling the selected record; only a disabled one can be.
    fn ask_re_enable(&mut self) {
        let Some(record) = self.selected_record() else {
            self.notify("No record selected.", true);
            return;
        };
        if !record.disabled() {
            let text = format!(
                "Record {} is {}, not disabled: nothing to re-enable.",
                record.record_id, record.state
            );
            self.notify(text, true);
            return;
        }
        let job = self
            .data
            .enrichment
            .jobs
            .iter()
            .find(|job| Some(&job.id) == self.enrich.selected.as_ref())
            .map_or_else(String::new, |job| job.name.clone());
        let class = record
            .failure_class
            .map_or_else(String::new, |class| format!(", last {class}"));
        let question = format!(
            "Re-enable record {} of \"{job}\" ({}, disabled after {} failures{class})? Its packet {} becomes pending, due now, failures reset: the same packet id is sent again by the next pass.",
            record.record_id, record.model, record.failures, record.packet_id
        );
        let action = ConfirmAction::ReEnableRecord {
            job,
            record_id: record.record_id,
            packet_id: record.packet_id.clone(),
        };
        self.push(Screen::Confirm(ConfirmState {
            title: "Re-enable record".into(),
            question,
            action,
            yes: false,
        }));
    }

    fn toggle_poller(&mut self) -> Vec<Command> {
        match self.poller {
            PollerState::Running => {
                self.poller = PollerState::Stopping;
                self.notify("Stopping the poller: in-flight cycles finish first…", false);
                vec![Command::StopPoller]
            }
            PollerState::Stopped => {
                if let Some(daemon) = self.attached_to() {
                    let text = format!(
                        "A daemon ({}) already polls this store: not starting a second poller.",
                        daemon.worker_id
                    );
                    self.notify(text, true);
                    Vec::new()
                } else {
                    self.poller = PollerState::Starting;
                    vec![Command::StartPoller]
                }
            }
            PollerState::Starting | PollerState::Stopping => Vec::new(),
        }
    }

    fn form_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let existing = self.data.connections.clone();
        let Some(Screen::Form(form)) = self.screen_mut() else {
            return Vec::new();
        };
        match form.handle_key(key) {
            FormAction::None => Vec::new(),
            FormAction::Cancel => {
                if form.has_unsaved_edits() && !form.saving {
                    self.push(Screen::Confirm(ConfirmState {
                        title: "Unsaved changes".to_owned(),
                        question: "Leave the form and lose what was typed?".to_owned(),
                        action: ConfirmAction::LeaveForm,
                        yes: false,
                    }));
                } else {
                    self.pop();
                }
                Vec::new()
            }
            FormAction::Help => {
                self.push(Screen::Help);
                Vec::new()
            }
            FormAction::Save => {
                if form.saving {
                    return Vec::new();
                }
                form.problem = None;
                match form.draft.validate_with(&existing) {
                    Ok(_) => {
                        form.errors.clear();
                        form.saving = true;
                        vec![Command::Save(form.draft.clone())]
                    }
                    Err(errors) => {
                        // Focus the first field in error.
                        if let Some(index) = crate::form::Field::ALL
                            .iter()
                            .position(|f| errors.iter().any(|e| e.field == f.key()))
                        {
                            form.focus = index;
                            form.cursor = form.value(form.field()).chars().count();
                        }
                        form.errors = errors;
                        Vec::new()
                    }
                }
            }
            FormAction::Test => {
                if form.test == TestState::Running {
                    return Vec::new();
                }
                match form.draft.validate() {
                    Ok(_) => {
                        form.test = TestState::Running;
                        vec![Command::Test {
                            draft: form.draft.clone(),
                            origin: TestOrigin::Form,
                        }]
                    }
                    Err(errors) => {
                        form.errors = errors;
                        form.test = TestState::Invalid;
                        Vec::new()
                    }
                }
            }
        }
    }

    fn logs_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.pop();
                Vec::new()
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.logs.selected = self.logs.selected.saturating_sub(1);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.logs.selected =
                    (self.logs.selected + 1).min(self.data.logs.len().saturating_sub(1));
                Vec::new()
            }
            KeyCode::PageDown | KeyCode::Right | KeyCode::Char(']') => {
                if self.data.logs_more {
                    self.logs.page += 1;
                    self.logs.selected = 0;
                    vec![self.load()]
                } else {
                    Vec::new()
                }
            }
            KeyCode::PageUp | KeyCode::Left | KeyCode::Char('[') => {
                if self.logs.page > 0 {
                    self.logs.page -= 1;
                    self.logs.selected = 0;
                    vec![self.load()]
                } else {
                    Vec::new()
                }
            }
            KeyCode::Char('c') => {
                self.logs.connection = next_connection(&self.data, self.logs.connection.as_deref());
                self.logs.page = 0;
                self.logs.selected = 0;
                vec![self.load()]
            }
            _ => Vec::new(),
        }
    }

    fn move_packet(&mut self, delta: isize) {
        let count = self.data.queue.len();
        if count == 0 {
            return;
        }
        let index = self.selected_packet_index().unwrap_or(0);
        let next = (index as isize + delta).clamp(0, count as isize - 1) as usize;
        self.queue.selected = Some(self.data.queue[next].id.clone());
    }

    fn queue_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let Some(step) = list_step(key.code) {
            self.move_packet(step);
            return Vec::new();
        }
        let selected = self
            .selected_packet_index()
            .map(|i| self.data.queue[i].clone());
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.pop();
                Vec::new()
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Char('c') => {
                self.queue.connection =
                    next_connection(&self.data, self.queue.connection.as_deref());
                self.queue.selected = None;
                vec![self.load()]
            }
            KeyCode::Char('f') => {
                self.queue.status = self.queue.status.next();
                self.queue.selected = None;
                vec![self.load()]
            }
            KeyCode::Enter | KeyCode::Char('v') => {
                if let Some(packet) = selected {
                    self.push(Screen::Payload(Box::new(PayloadState::new(packet))));
                }
                Vec::new()
            }
            KeyCode::Char('r') => match selected {
                Some(packet) => vec![Command::Retry { id: packet.id }],
                None => Vec::new(),
            },
            KeyCode::Char('d') | KeyCode::Char('x') | KeyCode::Delete => {
                if let Some(packet) = selected {
                    self.push(discard_confirm(&self.data, &packet));
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn payload_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let page = usize::from(self.size.1.saturating_sub(10)).max(1);
        let data = self.data.clone();
        let Some(Screen::Payload(view)) = self.screen_mut() else {
            return Vec::new();
        };
        let last = view.lines.len().saturating_sub(1);
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.pop();
            }
            KeyCode::Char('?') | KeyCode::F(1) => self.push(Screen::Help),
            KeyCode::Up | KeyCode::Char('k') => view.scroll = view.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => view.scroll = (view.scroll + 1).min(last),
            KeyCode::PageUp => view.scroll = view.scroll.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => view.scroll = (view.scroll + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => view.scroll = 0,
            KeyCode::End | KeyCode::Char('G') => view.scroll = last,
            KeyCode::Left | KeyCode::Char('h') => view.hscroll = view.hscroll.saturating_sub(8),
            KeyCode::Right | KeyCode::Char('l') => view.hscroll += 8,
            KeyCode::Char('r') => {
                return vec![Command::Retry {
                    id: view.packet.id.clone(),
                }];
            }
            KeyCode::Char('d') | KeyCode::Char('x') => {
                let confirm = discard_confirm(&data, &view.packet);
                self.push(confirm);
            }
            _ => {}
        }
        Vec::new()
    }

    fn confirm_key(&mut self, key: KeyEvent, confirm: ConfirmState) -> Vec<Command> {
        let accept = match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => true,
            KeyCode::Enter => confirm.yes,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.pop();
                return Vec::new();
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::BackTab => {
                if let Some(Screen::Confirm(state)) = self.screen_mut() {
                    state.yes = !state.yes;
                }
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        self.pop();
        if !accept {
            return Vec::new();
        }
        match confirm.action {
            ConfirmAction::DeleteConnection { id, name } => vec![Command::Delete { id, name }],
            ConfirmAction::DiscardPacket { id } => vec![Command::Discard { id }],
            ConfirmAction::IgnoreConflict { id } => vec![Command::IgnoreConflict { id }],
            ConfirmAction::ReEnableRecord {
                job,
                record_id,
                packet_id,
            } => vec![Command::ReEnable {
                job,
                record_id,
                packet_id,
            }],
            ConfirmAction::LeaveForm => {
                if matches!(self.screen(), Screen::Form(_)) {
                    self.pop();
                }
                Vec::new()
            }
        }
    }
}

/// The filter after `current`: all → each connection in turn → all.
fn next_connection(data: &Snapshot, current: Option<&str>) -> Option<String> {
    let ids: Vec<&str> = data.connections.iter().map(|c| c.id.as_str()).collect();
    match current.and_then(|id| ids.iter().position(|other| *other == id)) {
        None => ids.first().map(|id| (*id).to_owned()),
        Some(index) => ids.get(index + 1).map(|id| (*id).to_owned()),
    }
}

fn discard_confirm(data: &Snapshot, packet: &Packet) -> Screen {
    Screen::Confirm(ConfirmState {
        title: "Discard packet".into(),
        question: format!(
            "Discard packet {} ({} of {}, {}, connection \"{}\")? It will never be sent.",
            packet.id,
            packet.event,
            crate::data::subject_text(&packet.subject),
            packet.status.as_str(),
            data.name_of(&packet.flow_id)
        ),
        action: ConfirmAction::DiscardPacket {
            id: packet.id.clone(),
        },
        yes: false,
    })
}

/// A test's two results as lines of text, each marked ✓ or ✗ and saying ok or FAILED.
pub fn test_lines(summary: &TestSummary) -> Vec<String> {
    let line = |label: &str, check: &crate::form::CheckLine| {
        if check.ok {
            format!("✓ {label} ok: {}", check.text)
        } else {
            format!("✗ {label} FAILED: {}", check.text)
        }
    };
    vec![
        line("Odoo", &summary.odoo),
        line("Webhook", &summary.webhook),
    ]
}

/// How far a list key moves the selection in a list screen: a line (↑↓, k j), a page of ten
/// (PgUp PgDn), or to either end (Home End).
fn list_step(code: KeyCode) -> Option<isize> {
    match code {
        KeyCode::Up | KeyCode::Char('k') => Some(-1),
        KeyCode::Down | KeyCode::Char('j') => Some(1),
        KeyCode::PageUp => Some(-10),
        KeyCode::PageDown => Some(10),
        KeyCode::Home => Some(isize::MIN / 2),
        KeyCode::End => Some(isize::MAX / 2),
        _ => None,
    }
}
