//! Fixtures: a fixed clock, connections with fixed ids and secrets, a hand-made snapshot,
//! drawing to a `TestBackend`, and a harness running the app's commands on a real store.

use engine::connection_form::ConnectionDraft;
use engine::order_delivery::{ApiKey, Connection, ConnectionStats, EventSet, WebhookSecret};
use engine::store::{
    BreakerRecord, BreakerStatus, CycleLog, CycleLogEntry, Heartbeat, Packet, PacketStatus, Subject,
};
use engine::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use odoo_bridge_tui::app::{App, AppOptions, Command, Event};
use odoo_bridge_tui::data::Snapshot;
use odoo_bridge_tui::exec::{ExecOptions, Executor};
use odoo_bridge_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::VecDeque;
use std::time::Duration;
use store_sqlite::SqliteStore;

pub const KEY: &str = "0123456789abcdef0123456789abcdefKEY4567";
pub const SECRET: &str = "6f0a1e36-9d49-4a52-9a8e-3f1b2c4d5e6f";
pub const OWN_WORKER: &str = "tui-test-worker";

/// 2026-11-23 13:00:00Z.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_795_438_800).unwrap()
}

pub fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

pub fn connection(id: &str, name: &str) -> Connection {
    Connection {
        id: id.into(),
        tenant_id: format!("t{id}"),
        name: name.into(),
        odoo_url: "https://lejuste.odoo.com".into(),
        odoo_db: "lejuste".into(),
        odoo_username: "api@lejuste.cl".into(),
        odoo_api_key: ApiKey::new(KEY),
        webhook_url: "https://stockmaster.notorios.cl/api/webhooks/odoo".into(),
        webhook_secret: WebhookSecret::new(SECRET).unwrap(),
        store_id: "store_xyz".into(),
        client_id: "client_xyz".into(),
        polling_interval_seconds: 60,
        odoo_min_delay_ms: 0,
        is_active: true,
        events: EventSet::default(),
        last_sync_at: Some(ago(30)),
        cursor: None,
        created_at: ago(86_400),
        updated_at: ago(3_600),
    }
}

pub fn draft() -> ConnectionDraft {
    ConnectionDraft {
        webhook_secret: SECRET.into(),
        webhook_url: engine::connection_form::DEFAULT_WEBHOOK_URL.into(),
        ..ConnectionDraft::with_defaults()
    }
}

pub fn options() -> AppOptions {
    AppOptions {
        worker_id: OWN_WORKER.into(),
        autostart_poller: false,
        new_draft: draft,
    }
}

pub fn cycle(
    id: i64,
    connection: &str,
    at: Timestamp,
    found: u64,
    sent: u64,
    failed: u64,
    error: Option<&str>,
) -> CycleLogEntry {
    CycleLogEntry {
        id,
        log: CycleLog {
            flow_id: connection.into(),
            started_at: at,
            found,
            sent,
            failed,
            held_back: 0,
            error_message: error.map(str::to_owned),
            duration_ms: 120 + id as u64,
        },
    }
}

pub fn packet(connection: &str, order: i64, status: PacketStatus, attempts: u32) -> Packet {
    let body = serde_json::json!({
        "event": "order.confirmed",
        "external_id": format!("odoo_lejuste_{order}"),
        "source": {"platform": "ODOO", "connection_id": connection, "store_id": "store_xyz", "client_id": "client_xyz"},
        "order": {"platform_order_id": order.to_string(), "platform_order_number": format!("S{order:05}"), "amount_total": 5_990_000, "tags": []},
        "customer": {"name": "Juan Pérez", "phone": "+56912345678", "email": "juan@example.com", "orders_count": 5},
        "items": [{"sku": "PROD-001", "name": "Perfume El Testigo - Edición Limitada", "variant_name": "Tamaño: 50ml", "quantity": 2, "price_cents": 2_995_000}]
    });
    Packet {
        id: format!("{connection}_{order}_v1"),
        flow_id: connection.into(),
        tenant_id: format!("t{connection}"),
        subject: Subject::new("sale.order", order),
        reference: Some(format!("odoo_lejuste_{order}")),
        target: "webhook".into(),
        event: "order.confirmed".into(),
        version: 1,
        payload: body.to_string(),
        payload_hash: "00".repeat(32),
        status,
        attempts,
        max_attempts: 5,
        next_attempt_at: now() + SignedDuration::from_secs(45),
        last_error: (attempts > 0).then(|| "HTTP 503 from https://stockmaster.notorios.cl/api/webhooks/odoo: Service Unavailable".to_owned()),
        failure_class: (attempts > 0).then_some(FailureClass::Http5xx),
        lease_owner: None,
        lease_until: None,
        created_at: ago(600 + order),
        updated_at: ago(60),
        delivered_at: None,
    }
}

pub const A: &str = "a1b2c3d4e5f60718";
pub const B: &str = "b1b2c3d4e5f60718";
pub const C: &str = "c1b2c3d4e5f60718";

/// Three connections: a healthy one, a paused one with a long name, and one whose webhook
/// breaker is open, with a non-ASCII (and wide) name.
pub fn several() -> Snapshot {
    let mut paused = connection(
        B,
        "Empresa X — tienda principal de Santiago con un nombre muy largo",
    );
    paused.is_active = false;
    paused.last_sync_at = Some(ago(7_200));
    let mut broken = connection(C, "Perfumería Ñuñoa 東京ストア");
    broken.last_sync_at = None;
    Snapshot {
        generation: 1,
        loaded_at: now(),
        connections: vec![connection(A, "Le Juste Odoo"), paused, broken],
        stats: vec![
            ConnectionStats {
                flow_id: A.into(),
                delivered_since: 12,
                pending: 0,
                failed: 0,
                ..ConnectionStats::default()
            },
            ConnectionStats {
                flow_id: B.into(),
                delivered_since: 0,
                pending: 0,
                failed: 1,
                ..ConnectionStats::default()
            },
            ConnectionStats {
                flow_id: C.into(),
                delivered_since: 3,
                pending: 7,
                failed: 2,
                ..ConnectionStats::default()
            },
        ],
        breakers: vec![BreakerRecord {
            flow_id: C.into(),
            target: "webhook".into(),
            status: BreakerStatus::Open,
            open_until: Some(now() + SignedDuration::from_secs(42)),
            updated_at: ago(18),
        }],
        daemons: Vec::new(),
        activity: vec![
            cycle(9, A, ago(45), 3, 3, 0, None),
            cycle(8, C, ago(75), 2, 0, 2, None),
            cycle(7, A, ago(105), 0, 0, 0, None),
            cycle(
                6,
                C,
                ago(135),
                0,
                0,
                0,
                Some(
                    "webhook target https://stockmaster.notorios.cl is failing: circuit breaker open",
                ),
            ),
            cycle(5, A, ago(165), 1, 1, 0, None),
            cycle(4, B, ago(7_200), 5, 4, 1, None),
        ],
        logs: vec![
            cycle(9, A, ago(45), 3, 3, 0, None),
            cycle(8, C, ago(75), 2, 0, 2, None),
            cycle(7, A, ago(105), 0, 0, 0, None),
            cycle(
                6,
                C,
                ago(135),
                0,
                0,
                0,
                Some(
                    "authentication failed: Access Denied (database lejuste, login api@lejuste.cl)",
                ),
            ),
        ],
        logs_more: true,
        queue: vec![
            packet(C, 42, PacketStatus::Pending, 2),
            packet(C, 41, PacketStatus::Failed, 6),
            packet(B, 7, PacketStatus::Failed, 1),
            packet(A, 3, PacketStatus::Pending, 0),
        ],
        hints: Vec::new(),
        market: Default::default(),
        enrichment: Default::default(),
    }
}

pub fn app_with(snapshot: Snapshot) -> App {
    let mut app = App::new(options(), now());
    app.handle(Event::Data(Box::new(snapshot)));
    app
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut app = app.clone();
    app.handle(Event::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
    terminal.backend().to_string()
}

/// A fresh heartbeat of another daemon.
pub fn other_daemon() -> Heartbeat {
    Heartbeat {
        worker_id: "vm-4242-9f1c0e2a".into(),
        kind: "run".into(),
        started_at: ago(3_600),
        beat_at: ago(2),
    }
}

/// The app and a real SQLite store, with every command run to its end before the next
/// event: deterministic keyboard flows.
pub struct Harness {
    pub app: App,
    pub exec: Executor<SqliteStore>,
    /// Every command the app asked for.
    pub commands: Vec<Command>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("delivery.db"))
            .await
            .unwrap();
        use engine::mirror_store::MirrorStore as _;
        store.migrate().await.unwrap();
        let exec = Executor::new(
            store,
            ExecOptions {
                worker_id: OWN_WORKER.into(),
                test_timeout: Duration::from_secs(5),
                ..ExecOptions::default()
            },
        );
        let app = App::new(options(), Timestamp::now());
        let mut harness = Harness {
            app,
            exec,
            commands: Vec::new(),
            _dir: dir,
        };
        harness.refresh().await;
        harness
    }

    pub fn store(&self) -> &SqliteStore {
        self.exec.store()
    }

    pub async fn send(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for command in self.app.handle(event) {
                self.commands.push(command.clone());
                queue.extend(self.exec.run(command).await);
            }
        }
    }

    /// A tick: the data is read again.
    pub async fn refresh(&mut self) {
        self.send(Event::Tick(Timestamp::now())).await;
    }

    pub async fn press(&mut self, code: KeyCode) {
        self.send(key(code)).await;
    }

    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c)).await;
        }
    }

    pub fn render(&self) -> String {
        render(&self.app, 80, 24)
    }
}
