//! The Enrichment screen on a real SQLite store: enrichment jobs stored as flows the way
//! `enrich run` registers them, their emissions written and attempted through the outbox
//! (one applied, one failing, one disabled by its breaker), read by the TUI's own loader and
//! drawn; and `r` re-enabling the disabled record, with its confirmation, through the
//! executor.

use crate::support::*;
use engine::enrich::flow::StoredJob;
use engine::enrich::record;
use engine::order_delivery::ApiKey;
use engine::store::{
    Attempt, AttemptOutcome, Flow, FlowKind, FlowSecrets, NewPacket, OutboxStore as _,
    PacketStatus, SecretValue, Subject, Tenant, TenantStore as _,
};
use engine::webhook::FailureClass;
use insta::assert_snapshot;
use jiff::{SignedDuration, Timestamp};
use odoo_bridge_tui::app::{App, Command, Event, Screen};
use odoo_bridge_tui::data;
use odoo_rpc::TransportChoice;
use ratatui::crossterm::event::KeyCode;
use serde_json::json;
use store_sqlite::SqliteStore;

const TENANT: &str = "e0b2c3d4e5f60718";
const BUYER_MATCH: &str = "e1b2c3d4e5f60718";
const LEAD_SCORE: &str = "e2b2c3d4e5f60718";
const ENDPOINT_PASSWORD: &str = "matcher-pass-SECRET";
const ENDPOINT_TOKEN: &str = "tok-0123456789SECRET";
const SIGNING_SECRET: &str = "whsec-enrich-5f1d-SECRET";
const OWNER: &str = "enrich-test-worker";

/// The packets of the three records of "buyer-match".
const APPLIED: &str = "pkt_7a1e369d49a4a52b9a8e3f1b2c4d5e6f";
const FAILING: &str = "pkt_12ab369d49a4a52b9a8e3f1b2c4d5e6f";
const DISABLED: &str = "pkt_31cd369d49a4a52b9a8e3f1b2c4d5e6f";

fn stored_job(model: &str, endpoint: &str, max_failures: u32) -> StoredJob {
    StoredJob {
        model: model.to_owned(),
        domain: json!([["type", "=", "opportunity"]]),
        fields: vec!["name".into(), "partner_name".into()],
        endpoint: endpoint.to_owned(),
        packet_version: "1".to_owned(),
        timeout_ms: 30_000,
        response_schema: json!({"type": "object", "required": ["status"]}),
        writeback: vec![("x_match_status".into(), "/status".into())],
        max_failures,
        concurrency: 4,
        environment: "prod".to_owned(),
        secret_env: Some("MATCHER_SECRET".to_owned()),
    }
}

fn flow(id: &str, name: &str, job: &StoredJob, active: bool) -> Flow {
    let mut secrets = FlowSecrets::new();
    secrets.insert(
        "signing_secret".to_owned(),
        SecretValue::new(SIGNING_SECRET),
    );
    Flow {
        id: id.to_owned(),
        tenant_id: TENANT.to_owned(),
        kind: FlowKind::Enrichment,
        name: name.to_owned(),
        is_active: active,
        interval_seconds: 300,
        settings: job.to_settings(),
        secrets,
        last_sync_at: Some(ago(120)),
        created_at: ago(86_400),
        updated_at: ago(86_400),
    }
}

fn emission(record_id: i64, packet_id: &str, seconds_ago: i64) -> NewPacket {
    NewPacket {
        id: packet_id.to_owned(),
        subject: Subject::new("crm.lead", record_id),
        reference: None,
        target: "endpoint".to_owned(),
        event: record::event("1"),
        version: 1,
        payload: json!({"packet_id": packet_id, "record_id": record_id}).to_string(),
        payload_hash: format!("{record_id:02}").repeat(32),
        // max_failures 3: the first send and two more.
        max_attempts: 2,
        created_at: ago(seconds_ago),
    }
}

/// Claims the flow's one due packet at `at` and records `outcome` for it.
async fn attempt(store: &SqliteStore, packet_id: &str, at: Timestamp, outcome: AttemptOutcome) {
    let claimed = store
        .claim_due(
            OWNER,
            Some(BUYER_MATCH),
            at,
            SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, [packet_id]);
    let recorded = store
        .record_attempt(
            packet_id,
            OWNER,
            &Attempt {
                started_at: at,
                duration_ms: 40,
                status_code: None,
                outcome,
            },
        )
        .await
        .unwrap();
    assert!(recorded);
}

fn retry(class: FailureClass, error: &str, next: Timestamp) -> AttemptOutcome {
    AttemptOutcome::Retry {
        error: error.to_owned(),
        failure_class: class,
        next_attempt_at: next,
    }
}

/// Two jobs ("lead-score" no longer in the config, nothing emitted); "buyer-match" has
/// record 7 applied, record 12 failing (two failed attempts, retried later) and record 31
/// disabled after three failed attempts.
async fn seed(store: &SqliteStore) {
    let endpoint =
        format!("https://svc:{ENDPOINT_PASSWORD}@matcher.example/match?token={ENDPOINT_TOKEN}");
    let tenant = Tenant {
        id: TENANT.to_owned(),
        name: "lejuste".to_owned(),
        odoo_url: "https://lejuste.odoo.com".to_owned(),
        odoo_db: "lejuste".to_owned(),
        odoo_username: "api@lejuste.cl".to_owned(),
        odoo_api_key: ApiKey::new(KEY),
        transport: TransportChoice::Auto,
        odoo_min_delay_ms: 0,
        created_at: ago(86_400),
        updated_at: ago(86_400),
    };
    let flows = [
        flow(
            BUYER_MATCH,
            "buyer-match",
            &stored_job("crm.lead", &endpoint, 3),
            true,
        ),
        flow(
            LEAD_SCORE,
            "lead-score",
            &stored_job("plasticos.intake", "https://scorer.example/score", 5),
            false,
        ),
    ];
    store.insert_tenant(&tenant, &flows).await.unwrap();

    store
        .enqueue(BUYER_MATCH, &[emission(7, APPLIED, 3_000)], None)
        .await
        .unwrap();
    attempt(store, APPLIED, ago(2_990), AttemptOutcome::Delivered).await;

    store
        .enqueue(BUYER_MATCH, &[emission(12, FAILING, 2_000)], None)
        .await
        .unwrap();
    let timeout = "no answer from https://matcher.example/match within 30000 ms";
    attempt(
        store,
        FAILING,
        ago(1_990),
        retry(FailureClass::Timeout, timeout, ago(1_900)),
    )
    .await;
    attempt(
        store,
        FAILING,
        ago(1_900),
        retry(FailureClass::NetworkError, "connection refused", ago(-600)),
    )
    .await;

    store
        .enqueue(BUYER_MATCH, &[emission(31, DISABLED, 1_000)], None)
        .await
        .unwrap();
    let schema = "the answer does not match the response schema: \"status\" is a required property";
    attempt(
        store,
        DISABLED,
        ago(990),
        retry(FailureClass::SchemaError, schema, ago(900)),
    )
    .await;
    attempt(
        store,
        DISABLED,
        ago(900),
        retry(FailureClass::SchemaError, schema, ago(800)),
    )
    .await;
    attempt(
        store,
        DISABLED,
        ago(800),
        AttemptOutcome::Failed {
            error: schema.to_owned(),
            failure_class: FailureClass::SchemaError,
        },
    )
    .await;
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

async fn migrated() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("delivery.db"))
        .await
        .unwrap();
    use engine::mirror_store::MirrorStore as _;
    store.migrate().await.unwrap();
    (store, dir)
}

async fn opened() -> (App, SqliteStore, tempfile::TempDir) {
    let (store, dir) = migrated().await;
    seed(&store).await;
    let mut app = App::new(options(), now());
    for command in app.start() {
        let Command::Load(request) = command else {
            panic!("{command:?}");
        };
        assert!(!request.enrichment, "the dashboard does not read them");
        let snapshot = data::load(&store, &request, now()).await.unwrap();
        assert!(!snapshot.enrichment.loaded);
        app.handle(Event::Data(Box::new(snapshot)));
    }
    drive(&mut app, &store, key(KeyCode::Char('E'))).await;
    assert_eq!(app.screen(), &Screen::Enrichment);
    (app, store, dir)
}

fn assert_no_secret(screen: &str) {
    for secret in [ENDPOINT_PASSWORD, ENDPOINT_TOKEN, SIGNING_SECRET, KEY] {
        assert!(!screen.contains(secret), "{screen}");
    }
}

#[tokio::test]
async fn enrichment_screen_from_the_store() {
    let (mut app, store, _dir) = opened().await;
    let enrichment = &app.data.enrichment;
    assert_eq!(
        enrichment.detail_of.as_deref(),
        Some(BUYER_MATCH),
        "by name"
    );
    let job = &enrichment.jobs[0];
    assert_eq!(
        (job.applied, job.pending, job.failing, job.disabled),
        (1, 0, 1, 1)
    );
    // Two records failing now (one of them disabled): 1 − 2/5.
    assert_eq!(job.health, 0.6);
    assert_eq!(job.endpoint, "https://matcher.example/match?…");
    let states: Vec<(i64, &str, u32)> = enrichment
        .records
        .iter()
        .map(|r| (r.record_id, r.state.as_str(), r.failures))
        .collect();
    assert_eq!(
        states,
        [(7, "applied", 0), (12, "pending", 2), (31, "disabled", 3)]
    );

    let screen = render(&app, 80, 24);
    assert_no_secret(&screen);
    assert_snapshot!("enrichment_80x24", screen);

    // The disabled record selected, on a wide terminal: the endpoint and the last error get
    // columns of their own.
    drive(&mut app, &store, key(KeyCode::End)).await;
    assert_eq!(app.selected_record().unwrap().record_id, 31);
    let wide = render(&app, 120, 32);
    assert_no_secret(&wide);
    assert_snapshot!("enrichment_disabled_selected_120x32", wide);
}

#[tokio::test]
async fn tab_moves_to_the_next_job_and_reads_its_records() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Tab)).await;
    assert_eq!(app.data.enrichment.detail_of.as_deref(), Some(LEAD_SCORE));
    assert!(app.data.enrichment.records.is_empty());
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("No record emitted at packet v1 yet"),
        "{screen}"
    );
    assert!(
        screen.contains("inactive (no longer in the config)"),
        "{screen}"
    );
    // Round the list, both ways.
    drive(&mut app, &store, key(KeyCode::Tab)).await;
    assert_eq!(app.data.enrichment.detail_of.as_deref(), Some(BUYER_MATCH));
    drive(&mut app, &store, key(KeyCode::BackTab)).await;
    assert_eq!(app.data.enrichment.detail_of.as_deref(), Some(LEAD_SCORE));
}

#[tokio::test]
async fn f_filters_the_records_down_to_the_failing_then_the_disabled() {
    let (mut app, store, _dir) = opened().await;
    let shown =
        |app: &App| -> Vec<i64> { app.shown_records().iter().map(|r| r.record_id).collect() };
    drive(&mut app, &store, key(KeyCode::Char('f'))).await;
    assert_eq!(shown(&app), [12, 31]);
    assert_eq!(app.selected_record().unwrap().record_id, 12);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("failing: 2 of 3"), "{screen}");
    drive(&mut app, &store, key(KeyCode::Char('f'))).await;
    assert_eq!(shown(&app), [31]);
    // The disabled record straight away, and the filter kept across reads.
    drive(&mut app, &store, key(KeyCode::Char('r'))).await;
    assert!(matches!(app.screen(), Screen::Confirm(_)));
    drive(&mut app, &store, key(KeyCode::Esc)).await;
    let snapshot = data::load(&store, &app_request(&mut app), now())
        .await
        .unwrap();
    app.handle(Event::Data(Box::new(snapshot)));
    assert_eq!(shown(&app), [31]);
    drive(&mut app, &store, key(KeyCode::Char('f'))).await;
    assert_eq!(shown(&app), [7, 12, 31]);
}

/// The request of the app's next read.
fn app_request(app: &mut App) -> data::LoadRequest {
    let commands = app.handle(Event::Tick(now() + SignedDuration::from_secs(1)));
    match commands.as_slice() {
        [Command::Load(request)] => request.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn enrichment_screen_without_jobs() {
    let (store, _dir) = migrated().await;
    let mut app = App::new(options(), now());
    drive(&mut app, &store, key(KeyCode::Char('E'))).await;
    assert_snapshot!("enrichment_empty", render(&app, 80, 24));
}

#[tokio::test]
async fn only_a_disabled_record_is_offered_to_re_enable() {
    let (mut app, store, _dir) = opened().await;
    // Record 7 (applied) is selected first.
    let commands = drive(&mut app, &store, key(KeyCode::Char('r'))).await;
    assert!(commands.is_empty(), "{commands:?}");
    assert_eq!(app.screen(), &Screen::Enrichment);
    let notice = &app.notice.as_ref().unwrap().text;
    assert!(
        notice.contains("Record 7 is applied, not disabled"),
        "{notice}"
    );
    // Record 12 is failing but not disabled: its retry comes by itself.
    drive(&mut app, &store, key(KeyCode::Down)).await;
    drive(&mut app, &store, key(KeyCode::Char('r'))).await;
    assert_eq!(app.screen(), &Screen::Enrichment);
}

#[tokio::test]
async fn re_enabling_a_disabled_record_asks_first_then_makes_its_packet_pending() {
    let mut h = Harness::new().await;
    seed(h.store()).await;
    h.press(KeyCode::Char('E')).await;
    h.press(KeyCode::End).await;
    assert_eq!(h.app.selected_record().unwrap().record_id, 31);

    // n (or Esc) changes nothing.
    h.press(KeyCode::Char('r')).await;
    assert!(matches!(h.app.screen(), Screen::Confirm(_)));
    let asked = h.render();
    assert!(asked.contains("Re-enable record"), "{asked}");
    assert_snapshot!("enrichment_confirm_re_enable", asked);
    h.press(KeyCode::Char('n')).await;
    assert_eq!(h.app.screen(), &Screen::Enrichment);
    let untouched = h.store().packet(DISABLED).await.unwrap().unwrap();
    assert_eq!(
        (untouched.status, untouched.attempts),
        (PacketStatus::Failed, 3)
    );

    h.press(KeyCode::Char('r')).await;
    h.press(KeyCode::Char('y')).await;
    assert!(
        h.commands.contains(&Command::ReEnable {
            job: "buyer-match".into(),
            record_id: 31,
            packet_id: DISABLED.into(),
        }),
        "{:?}",
        h.commands
    );
    // The same packet, PENDING again with its attempts reset, due now.
    let packet = h.store().packet(DISABLED).await.unwrap().unwrap();
    assert_eq!((packet.status, packet.attempts), (PacketStatus::Pending, 0));
    assert!(packet.next_attempt_at <= Timestamp::now());
    // The screen reads it again and shows it pending.
    let record = h.app.selected_record().unwrap();
    assert_eq!((record.record_id, record.state.as_str()), (31, "pending"));
    assert_eq!(h.app.data.enrichment.jobs[0].disabled, 0);
    let screen = h.render();
    assert!(
        screen.contains("Record 31 of \"buyer-match\" re-enabled"),
        "{screen}"
    );
    // The other records are as they were.
    let failing = h.store().packet(FAILING).await.unwrap().unwrap();
    assert_eq!(
        (failing.status, failing.attempts),
        (PacketStatus::Pending, 2)
    );
}

#[tokio::test]
async fn a_record_re_enabled_meanwhile_is_said_and_left_alone() {
    let mut h = Harness::new().await;
    seed(h.store()).await;
    h.press(KeyCode::Char('E')).await;
    h.press(KeyCode::End).await;
    h.press(KeyCode::Char('r')).await;
    // Another process re-enables it and a first attempt fails, before the person answers.
    let store = h.store().clone();
    assert!(store.retry_now(DISABLED, Timestamp::now()).await.unwrap());
    let claimed = store
        .claim_due(
            OWNER,
            Some(BUYER_MATCH),
            Timestamp::now(),
            SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert!(claimed.iter().any(|p| p.id == DISABLED));
    for packet in &claimed {
        store
            .record_attempt(
                &packet.id,
                OWNER,
                &Attempt {
                    started_at: Timestamp::now(),
                    duration_ms: 40,
                    status_code: Some(503),
                    outcome: retry(
                        FailureClass::Http5xx,
                        "HTTP 503",
                        Timestamp::now() + SignedDuration::from_secs(600),
                    ),
                },
            )
            .await
            .unwrap();
    }
    h.press(KeyCode::Char('y')).await;
    let screen = h.render();
    assert!(
        screen.contains("Record 31 of \"buyer-match\" was not re-enabled"),
        "{screen}"
    );
    // Its attempt since is kept: nothing reset it.
    let packet = store.packet(DISABLED).await.unwrap().unwrap();
    assert_eq!((packet.status, packet.attempts), (PacketStatus::Pending, 1));
}

#[tokio::test]
async fn the_dashboard_reads_no_enrichment_job_and_q_goes_back() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Char('q'))).await;
    assert_eq!(app.screen(), &Screen::Dashboard);
    let commands = app.handle(Event::Tick(now() + SignedDuration::from_secs(1)));
    let [Command::Load(request)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert!(!request.enrichment);
}

#[tokio::test]
async fn help_over_the_enrichment_screen() {
    let (mut app, store, _dir) = opened().await;
    drive(&mut app, &store, key(KeyCode::Char('?'))).await;
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Enrichment keys"), "{screen}");
    assert_snapshot!("enrichment_help", screen);
    drive(&mut app, &store, key(KeyCode::Esc)).await;
    assert_eq!(app.screen(), &Screen::Enrichment);
}
