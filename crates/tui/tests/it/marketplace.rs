//! The Marketplace screen on a real SQLite store: marketplaces added as `marketplace add`
//! adds them, orders, log rows and conflicts recorded through the store, read by the TUI's
//! own loader and drawn; and `i` closing a conflict as ignored, with its confirmation.

use crate::support::*;
use engine::marketplace::{MarketplaceDraft, MarketplaceRegistry as _};
use engine::store::{
    ConflictSeverity, LogDirection, LogEntry, LogOutcome, MarketplaceStore as _, NewConflict,
};
use insta::assert_snapshot;
use jiff::{SignedDuration, Timestamp};
use odoo_bridge_tui::app::{App, Command, Event, Screen};
use odoo_bridge_tui::data;
use ratatui::crossterm::event::KeyCode;
use store_sqlite::SqliteStore;

const CAIRO: &str = "m1b2c3d4e5f60718";
const ALEX: &str = "m2b2c3d4e5f60718";
const TOKEN: &str = "cartona-token-0123456789abcdefSECRET";
const HOOK_SECRET: &str = "whsec-7a1e36-9d49-4a52-SECRET";

async fn add_marketplace(store: &SqliteStore, id: &str, name: &str, active: bool) {
    let mut draft = MarketplaceDraft::with_defaults();
    draft.id = Some(id.to_owned());
    draft.name = name.to_owned();
    draft.api_url = "https://supplier-integrations.cartona.com/api/v1".to_owned();
    draft.api_token = TOKEN.to_owned();
    draft.odoo_url = "https://lejuste.odoo.com".to_owned();
    draft.odoo_db = "lejuste".to_owned();
    draft.odoo_username = "api@lejuste.cl".to_owned();
    draft.odoo_api_key = KEY.to_owned();
    draft.webhook_secret = HOOK_SECRET.to_owned();
    draft.is_active = active;
    let mut marketplace = draft.validate(&[], None, ago(86_400)).unwrap();
    marketplace.last_sync_at = Some(ago(40));
    store.insert_marketplace(&marketplace).await.unwrap();
}

async fn import(store: &SqliteStore, flow: &str, hashed: &str, odoo_id: i64) {
    store
        .claim_import(flow, hashed, "w", ago(3_000), ago(2_900))
        .await
        .unwrap();
    store
        .record_import(flow, hashed, odoo_id, Some("approved"), ago(2_990))
        .await
        .unwrap();
}

#[allow(clippy::too_many_arguments)]
fn log_row(
    flow: &str,
    key: &str,
    direction: LogDirection,
    hashed: &str,
    action: &str,
    outcome: LogOutcome,
    status: &str,
    ms: Option<u64>,
    error: Option<(&str, &str)>,
    seconds_ago: i64,
) -> LogEntry {
    LogEntry {
        flow_id: flow.to_owned(),
        event_key: key.to_owned(),
        direction,
        hashed_id: hashed.to_owned(),
        odoo_order_id: Some(7),
        action: action.to_owned(),
        outcome,
        marketplace_status: Some(status.to_owned()),
        odoo_order_state: Some("sale".to_owned()),
        odoo_delivery_state: Some("assigned".to_owned()),
        response_time_ms: ms,
        retries: 0,
        error_code: error.map(|(code, _)| code.to_owned()),
        error_text: error.map(|(_, text)| text.to_owned()),
        at: ago(seconds_ago),
    }
}

fn conflict(
    flow: &str,
    hashed: &str,
    kind: &str,
    severity: ConflictSeverity,
    sides: (&str, &str, &str, &str),
    action: &str,
    seconds_ago: i64,
) -> NewConflict {
    NewConflict {
        flow_id: flow.to_owned(),
        hashed_id: hashed.to_owned(),
        event_key: format!("inbox:{hashed}:{kind}"),
        odoo_order_id: Some(7),
        kind: kind.to_owned(),
        severity,
        marketplace_status: Some(sides.0.to_owned()),
        odoo_status: Some(sides.1.to_owned()),
        odoo_order_state: Some(sides.2.to_owned()),
        odoo_delivery_state: Some(sides.3.to_owned()),
        recommended_action: action.to_owned(),
        auto_resolvable: false,
        detail: "seen in the test".to_owned(),
        resolution: None,
        at: ago(seconds_ago),
    }
}

/// Two marketplaces (one paused), orders imported and refused, a day of log rows (one
/// older than the stats' 24 hours) and open conflicts.
async fn seed(store: &SqliteStore) {
    add_marketplace(store, CAIRO, "Cartona Cairo", true).await;
    add_marketplace(store, ALEX, "Cartona Alexandria — Égypte 東京", false).await;
    for (n, hashed) in ["ORD-1001", "ORD-1002", "ORD-1003"].iter().enumerate() {
        import(store, CAIRO, hashed, 40 + n as i64).await;
    }
    store
        .record_refusal(
            CAIRO,
            "ORD-1004",
            "variant_not_found",
            "internal_product_id 999 is no product.product",
            Some("pending"),
            ago(2_000),
        )
        .await
        .unwrap();
    import(store, ALEX, "ORD-2001", 90).await;
    let rows = [
        log_row(
            CAIRO,
            "import:ORD-1001",
            LogDirection::Inbound,
            "ORD-1001",
            "import",
            LogOutcome::Success,
            "approved",
            Some(180),
            None,
            3_000,
        ),
        log_row(
            CAIRO,
            "import:ORD-1002",
            LogDirection::Inbound,
            "ORD-1002",
            "import",
            LogOutcome::Success,
            "approved",
            Some(220),
            None,
            2_900,
        ),
        log_row(
            CAIRO,
            "import:ORD-1004",
            LogDirection::Inbound,
            "ORD-1004",
            "import",
            LogOutcome::Failed,
            "pending",
            None,
            Some((
                "variant_not_found",
                "internal_product_id 999 is no product.product",
            )),
            2_000,
        ),
        log_row(
            CAIRO,
            "packet:p1",
            LogDirection::Outbound,
            "ORD-1001",
            "status",
            LogOutcome::Success,
            "delivered",
            Some(310),
            None,
            600,
        ),
        log_row(
            CAIRO,
            "inbox:e1",
            LogDirection::Inbound,
            "ORD-1003",
            "status",
            LogOutcome::Conflict,
            "cancelled_by_retailer",
            Some(95),
            Some(("cancel_after_delivery", "the delivery is done")),
            120,
        ),
        log_row(
            CAIRO,
            "import:ORD-0999",
            LogDirection::Inbound,
            "ORD-0999",
            "import",
            LogOutcome::Success,
            "approved",
            Some(5_000),
            None,
            2 * 86_400,
        ),
        log_row(
            ALEX,
            "import:ORD-2001",
            LogDirection::Inbound,
            "ORD-2001",
            "import",
            LogOutcome::Success,
            "approved",
            Some(150),
            None,
            500,
        ),
    ];
    for row in &rows {
        store.record_log(row).await.unwrap();
    }
    for c in [
        conflict(
            CAIRO,
            "ORD-1003",
            "cancel_after_delivery",
            ConflictSeverity::High,
            ("cancelled_by_retailer", "delivered", "sale", "done"),
            "return the goods in Odoo, then resolve with --apply marketplace",
            120,
        ),
        conflict(
            CAIRO,
            "ORD-1002",
            "reopen_confirmed",
            ConflictSeverity::Medium,
            ("pending", "approved", "sale", "assigned"),
            "push Odoo's status with --apply odoo",
            900,
        ),
        conflict(
            ALEX,
            "ORD-2001",
            "stale_status",
            ConflictSeverity::Low,
            ("approved", "delivered", "sale", "done"),
            "push Odoo's status with --apply odoo",
            400,
        ),
    ] {
        store.record_conflict(&c).await.unwrap();
    }
}

/// Runs the app's loads with the store at the fixed `now()`, so that the screen is stable.
async fn drive(app: &mut App, store: &SqliteStore, event: Event) -> Vec<Command> {
    let mut other = Vec::new();
    let mut queue = vec![event];
    while let Some(event) = queue.pop() {
        for command in app.handle(event) {
            match command {
                Command::Load(request) => {
                    let snapshot = data::load(store, &request, now()).await.unwrap();
                    queue.push(Event::Data(Box::new(snapshot)));
                }
                command => other.push(command),
            }
        }
    }
    other
}

async fn opened() -> (App, SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("delivery.db"))
        .await
        .unwrap();
    use engine::mirror_store::MirrorStore as _;
    store.migrate().await.unwrap();
    seed(&store).await;
    let mut app = App::new(options(), now());
    for command in app.start() {
        let Command::Load(request) = command else {
            panic!("{command:?}");
        };
        assert!(!request.marketplaces, "the dashboard does not read them");
        let snapshot = data::load(&store, &request, now()).await.unwrap();
        assert!(!snapshot.market.loaded);
        app.handle(Event::Data(Box::new(snapshot)));
    }
    drive(&mut app, &store, key(KeyCode::Char('m'))).await;
    assert_eq!(app.screen(), &Screen::Marketplace);
    (app, store, dir)
}

fn assert_no_secret(screen: &str) {
    for secret in [TOKEN, HOOK_SECRET, KEY] {
        assert!(!screen.contains(secret), "{screen}");
    }
}

#[tokio::test]
async fn marketplace_screen_from_the_store() {
    let (app, _store, _dir) = opened().await;
    let market = &app.data.market;
    assert_eq!(market.detail_of.as_deref(), Some(ALEX), "the first by name");
    let screen = render(&app, 80, 24);
    assert_no_secret(&screen);
    assert_snapshot!("marketplace_80x24", screen);
}

#[tokio::test]
async fn marketplace_screen_selected_with_stats_conflicts_and_log() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Down)).await;
    let market = &app.data.market;
    assert_eq!(market.detail_of.as_deref(), Some(CAIRO));
    // The same figures as `marketplace stats`: the row of two days ago is outside the window.
    assert_eq!(market.stats.total, 5);
    assert_eq!(
        (
            market.stats.success,
            market.stats.failed,
            market.stats.conflict
        ),
        (3, 1, 1)
    );
    assert_eq!(market.stats.orders, 3);
    assert_eq!(market.conflicts.len(), 2);
    let row = &market.marketplaces[1];
    assert_eq!((row.imported, row.refused, row.open_conflicts), (3, 1, 2));
    let screen = render(&app, 80, 24);
    assert_no_secret(&screen);
    assert_snapshot!("marketplace_selected_80x24", screen);
    drive(&mut app, &store, key(KeyCode::Tab)).await;
    let wide = render(&app, 120, 40);
    assert_no_secret(&wide);
    assert_snapshot!("marketplace_selected_120x40", wide);
}

#[tokio::test]
async fn marketplace_screen_without_marketplaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("delivery.db"))
        .await
        .unwrap();
    use engine::mirror_store::MirrorStore as _;
    store.migrate().await.unwrap();
    let mut app = App::new(options(), now());
    drive(&mut app, &store, key(KeyCode::Char('m'))).await;
    assert_snapshot!("marketplace_empty", render(&app, 80, 24));
}

#[tokio::test]
async fn ignoring_a_conflict_asks_first_then_closes_it_in_the_store() {
    let mut h = Harness::new().await;
    seed(h.store()).await;
    h.press(KeyCode::Char('m')).await;
    h.press(KeyCode::Down).await;
    assert_eq!(h.app.data.market.detail_of.as_deref(), Some(CAIRO));
    let first = h.app.data.market.conflicts[0].id;

    // n (or Esc) changes nothing.
    h.press(KeyCode::Char('i')).await;
    assert!(matches!(h.app.screen(), Screen::Confirm(_)));
    let asked = render(&h.app, 80, 24);
    assert!(asked.contains("Ignore conflict"), "{asked}");
    h.press(KeyCode::Char('n')).await;
    assert_eq!(h.app.screen(), &Screen::Marketplace);
    assert!(h.store().conflict(first).await.unwrap().unwrap().open);

    h.press(KeyCode::Char('i')).await;
    h.press(KeyCode::Char('y')).await;
    assert!(
        h.commands.contains(&Command::IgnoreConflict { id: first }),
        "{:?}",
        h.commands
    );
    let closed = h.store().conflict(first).await.unwrap().unwrap();
    assert!(!closed.open);
    assert_eq!(closed.conflict.resolution.as_deref(), Some("ignore"));
    // The other conflicts stay open, and the screen shows what is left.
    assert_eq!(h.store().conflicts(None, true).await.unwrap().len(), 2);
    assert_eq!(h.app.data.market.conflicts.len(), 1);
    let screen = h.render();
    assert!(
        screen.contains(&format!("Conflict {first} closed")),
        "{screen}"
    );

    // Resolved meanwhile by someone else: said, not hidden.
    let second = h.app.data.market.conflicts[0].id;
    h.press(KeyCode::Char('i')).await;
    h.store()
        .resolve_conflict(second, "odoo", Timestamp::now())
        .await
        .unwrap();
    h.press(KeyCode::Char('y')).await;
    let screen = h.render();
    assert!(screen.contains("resolved meanwhile (odoo)"), "{screen}");
    let kept = h.store().conflict(second).await.unwrap().unwrap();
    assert_eq!(kept.conflict.resolution.as_deref(), Some("odoo"));
}

#[tokio::test]
async fn the_dashboard_reads_no_marketplace_and_q_goes_back() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Char('q'))).await;
    assert_eq!(app.screen(), &Screen::Dashboard);
    let commands = app.handle(Event::Tick(now() + SignedDuration::from_secs(1)));
    let [Command::Load(request)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert!(!request.marketplaces);
}

#[tokio::test]
async fn help_over_the_marketplace_screen() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Char('?'))).await;
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Marketplaces keys"), "{screen}");
    assert_snapshot!("marketplace_help", screen);
    drive(&mut app, &store, key(KeyCode::Esc)).await;
    assert_eq!(app.screen(), &Screen::Marketplace);
}
