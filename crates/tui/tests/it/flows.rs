//! Keyboard flows on the state machine with a real SQLite store: every command the app asks
//! for is run by the real executor before the next key.

use crate::support::*;
use engine::change_feed::Checkpoint;
use engine::connection_form::masked_key;
use engine::order_delivery::{ConnectionStore, EventSet};
use engine::store::{
    Attempt, AttemptOutcome, CoordinationStore, FeedCursor, Heartbeat, NewPacket, OutboxStore,
    PacketFilter, PacketStatus, Subject,
};
use engine::webhook::FailureClass;
use jiff::{SignedDuration, Timestamp};
use odoo_bridge_tui::app::{Command, PollerState, Screen};
use odoo_bridge_tui::form::TestState;
use ratatui::crossterm::event::KeyCode;

/// Fills the new-connection form: name, Odoo URL, database, user, API key, (webhook URL
/// and secret kept), store id, client id.
async fn fill_form(h: &mut Harness, name: &str, odoo_url: &str, webhook_url: Option<&str>) {
    h.press(KeyCode::Char('n')).await;
    assert!(matches!(h.app.screen(), Screen::Form(_)));
    h.type_text(name).await;
    h.press(KeyCode::Tab).await;
    h.type_text(odoo_url).await;
    h.press(KeyCode::Tab).await;
    h.type_text("lejuste").await;
    h.press(KeyCode::Tab).await;
    h.type_text("api@lejuste.cl").await;
    h.press(KeyCode::Tab).await;
    h.type_text(KEY).await;
    h.press(KeyCode::Tab).await;
    if let Some(url) = webhook_url {
        h.send(ctrl('u')).await;
        h.type_text(url).await;
    }
    h.press(KeyCode::Tab).await;
    h.press(KeyCode::Tab).await;
    h.type_text("store_xyz").await;
    h.press(KeyCode::Tab).await;
    h.type_text("client_xyz").await;
}

#[tokio::test]
async fn create_a_connection_through_the_form() {
    let mut h = Harness::new().await;
    fill_form(
        &mut h,
        "Tienda Ñandú 東京",
        "https://lejuste.odoo.com/",
        None,
    )
    .await;
    h.send(ctrl('s')).await;

    let stored = h.store().connections().await.unwrap();
    assert_eq!(stored.len(), 1, "{:?}", h.commands);
    let c = &stored[0];
    assert_eq!(c.name, "Tienda Ñandú 東京");
    assert_eq!(c.odoo_url, "https://lejuste.odoo.com");
    assert_eq!(c.odoo_api_key.expose(), KEY);
    assert_eq!(
        c.webhook_secret.expose(),
        SECRET,
        "the pre-generated secret"
    );
    assert_eq!(
        c.webhook_url,
        engine::connection_form::DEFAULT_WEBHOOK_URL,
        "the default webhook URL"
    );
    assert_eq!(c.polling_interval_seconds, 60);
    assert_eq!(c.events, EventSet::default());
    assert!(c.is_active);

    // The secret is shown once, then the dashboard lists the connection.
    let Screen::Message(message) = h.app.screen() else {
        panic!("{:?}", h.app.screen());
    };
    assert!(message.lines.iter().any(|line| line == SECRET));
    h.press(KeyCode::Enter).await;
    assert!(matches!(h.app.screen(), Screen::Dashboard));
    let screen = h.render();
    assert!(
        screen.contains("● active") && screen.contains("Tienda Ñandú 東京"),
        "{screen}"
    );
    assert!(
        !screen.contains(KEY) && !screen.contains(SECRET),
        "{screen}"
    );

    // Editing never shows the key again, only ••••4567; saving an edit keeps it.
    h.press(KeyCode::Char('e')).await;
    let screen = h.render();
    assert!(screen.contains(&masked_key(&c.odoo_api_key)), "{screen}");
    assert!(!screen.contains(KEY), "{screen}");
    h.send(ctrl('u')).await;
    h.type_text("Tienda Ñandú").await;
    h.send(ctrl('s')).await;
    assert!(
        matches!(h.app.screen(), Screen::Dashboard),
        "{:?}",
        h.app.screen()
    );
    let edited = h.store().connection(&c.id).await.unwrap().unwrap();
    assert_eq!(edited.name, "Tienda Ñandú");
    assert_eq!(
        edited.odoo_api_key.expose(),
        KEY,
        "an empty key field keeps the key"
    );
    assert_eq!(edited.webhook_secret.expose(), SECRET);
    assert_eq!(edited.created_at, c.created_at);
}

#[tokio::test]
async fn a_validation_error_is_shown_next_to_its_field_and_nothing_is_saved() {
    let mut h = Harness::new().await;
    fill_form(&mut h, "Le Juste", "lejuste.odoo.com", None).await;
    let before = h.commands.len();
    h.send(ctrl('s')).await;
    assert_eq!(
        h.commands.len(),
        before,
        "no Save command for an invalid draft"
    );
    assert!(h.store().connections().await.unwrap().is_empty());
    let Screen::Form(form) = h.app.screen() else {
        panic!("the form stays open");
    };
    assert_eq!(form.errors.len(), 1, "{:?}", form.errors);
    assert_eq!(form.errors[0].field, "odoo_url");
    assert_eq!(form.focus, 1, "the field in error gets the focus");
    let screen = h.render();
    let lines: Vec<&str> = screen.lines().collect();
    let url_line = lines.iter().position(|l| l.contains("Odoo URL:")).unwrap();
    assert!(
        lines[url_line + 1].contains("✗ must start with https://"),
        "the error is under its field:\n{screen}"
    );

    // Fixing the field clears its error; the draft saves.
    h.send(ctrl('u')).await;
    h.type_text("https://lejuste.odoo.com").await;
    let Screen::Form(form) = h.app.screen() else {
        panic!()
    };
    assert!(form.errors.is_empty());
    h.send(ctrl('s')).await;
    assert_eq!(h.store().connections().await.unwrap().len(), 1);

    // A second connection with the same name (other case) is refused at the name.
    h.press(KeyCode::Enter).await;
    fill_form(&mut h, "LE JUSTE", "https://other.odoo.com", None).await;
    h.send(ctrl('s')).await;
    let Screen::Form(form) = h.app.screen() else {
        panic!()
    };
    assert_eq!(form.errors[0].field, "name");
    assert!(h.render().contains("✗ is already used by connection"));
    assert_eq!(h.store().connections().await.unwrap().len(), 1);
}

async fn add_connection(h: &Harness, id: &str, name: &str) {
    let mut c = connection(id, name);
    c.created_at = Timestamp::now();
    c.updated_at = c.created_at;
    h.store().insert_connection(&c).await.unwrap();
}

#[tokio::test]
async fn delete_with_confirmation() {
    let mut h = Harness::new().await;
    add_connection(&h, A, "Le Juste Odoo").await;
    add_connection(&h, B, "Empresa X").await;
    h.refresh().await;
    // By name: Empresa X first.
    assert_eq!(h.app.selected.as_deref(), Some(B));
    h.press(KeyCode::Down).await;
    assert_eq!(h.app.selected.as_deref(), Some(A));

    h.press(KeyCode::Char('d')).await;
    assert!(matches!(h.app.screen(), Screen::Confirm(_)));
    assert!(h.render().contains("Delete connection \"Le Juste Odoo\""));
    // Enter on the default button (No) does nothing.
    h.press(KeyCode::Enter).await;
    assert!(matches!(h.app.screen(), Screen::Dashboard));
    h.press(KeyCode::Char('d')).await;
    h.press(KeyCode::Char('n')).await;
    assert_eq!(h.store().connections().await.unwrap().len(), 2);

    h.press(KeyCode::Char('d')).await;
    h.press(KeyCode::Char('y')).await;
    let left = h.store().connections().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, B);
    assert!(matches!(h.app.screen(), Screen::Dashboard));
    assert_eq!(h.app.selected.as_deref(), Some(B));
    assert!(h.render().contains("Deleted connection \"Le Juste Odoo\""));
}

#[tokio::test]
async fn leaving_a_form_with_unsaved_edits_asks_first() {
    let mut h = Harness::new().await;
    // Nothing typed: Esc leaves at once.
    h.press(KeyCode::Char('n')).await;
    h.press(KeyCode::Esc).await;
    assert!(matches!(h.app.screen(), Screen::Dashboard));

    h.press(KeyCode::Char('n')).await;
    h.type_text("Half typed").await;
    h.press(KeyCode::Esc).await;
    assert!(matches!(h.app.screen(), Screen::Confirm(_)));
    assert!(h.render().contains("lose what was typed"), "{}", h.render());
    // No (the default) keeps the form and what was typed.
    h.press(KeyCode::Enter).await;
    let Screen::Form(form) = h.app.screen() else {
        panic!("the form is gone: {:?}", h.app.screen());
    };
    assert_eq!(form.draft.name, "Half typed");
    // Yes leaves it, and nothing was saved.
    h.press(KeyCode::Esc).await;
    h.press(KeyCode::Char('y')).await;
    assert!(matches!(h.app.screen(), Screen::Dashboard));
    assert!(h.store().connections().await.unwrap().is_empty());
}

#[tokio::test]
async fn pause_and_resume() {
    let mut h = Harness::new().await;
    add_connection(&h, A, "Le Juste Odoo").await;
    h.refresh().await;
    h.press(KeyCode::Char('p')).await;
    assert!(!h.store().connection(A).await.unwrap().unwrap().is_active);
    assert!(h.render().contains("○ paused"));
    h.press(KeyCode::Char('p')).await;
    assert!(h.store().connection(A).await.unwrap().unwrap().is_active);
    assert!(h.render().contains("● active"));
}

/// A connection with one FAILED packet (order 42) and one PENDING (order 43).
async fn failed_packet(h: &Harness) -> (String, String) {
    add_connection(h, A, "Le Juste Odoo").await;
    let store = h.store();
    let now = Timestamp::now();
    let packets: Vec<NewPacket> = [42, 43]
        .into_iter()
        .map(|order| NewPacket {
            id: format!("{A}_{order}_v1"),
            subject: Subject::new("sale.order", order),
            reference: Some(format!("odoo_lejuste_{order}")),
            target: "webhook".into(),
            event: "order.confirmed".into(),
            version: 1,
            payload: format!(
                r#"{{"event":"order.confirmed","order":{{"platform_order_id":"{order}"}}}}"#
            ),
            payload_hash: "00".repeat(32),
            max_attempts: 5,
            created_at: now - SignedDuration::from_secs(100 - order),
        })
        .collect();
    let cursor = Checkpoint {
        second: now,
        last_id: 43,
    };
    store
        .enqueue(
            A,
            &packets,
            Some(FeedCursor {
                feed: "sale.order",
                checkpoint: cursor,
            }),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due("test", Some(A), now, SignedDuration::from_secs(60), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .record_attempt(
            &claimed[0].id,
            "test",
            &Attempt {
                started_at: now,
                duration_ms: 4,
                status_code: Some(410),
                outcome: AttemptOutcome::Failed {
                    error: "HTTP 410 Gone".into(),
                    failure_class: FailureClass::Http4xx,
                },
            },
        )
        .await
        .unwrap();
    let other = packets
        .iter()
        .map(|p| p.id.clone())
        .find(|id| *id != claimed[0].id)
        .unwrap();
    (claimed[0].id.clone(), other)
}

#[tokio::test]
async fn retry_an_item_and_discard_one_with_confirmation() {
    let mut h = Harness::new().await;
    let (failed, pending) = failed_packet(&h).await;
    h.refresh().await;
    h.press(KeyCode::Char('r')).await;
    assert!(matches!(h.app.screen(), Screen::Retries));
    assert_eq!(h.app.data.queue.len(), 2);
    let screen = h.render();
    assert!(
        screen.contains("FAILED") && screen.contains("PENDING"),
        "{screen}"
    );

    // Failed only.
    h.press(KeyCode::Char('f')).await;
    h.press(KeyCode::Char('f')).await;
    assert_eq!(h.app.data.queue.len(), 1);
    assert_eq!(h.app.queue.selected.as_deref(), Some(failed.as_str()));

    // The payload, pretty-printed.
    h.press(KeyCode::Enter).await;
    let Screen::Payload(view) = h.app.screen() else {
        panic!("{:?}", h.app.screen());
    };
    assert!(view.lines.len() > 3, "{:?}", view.lines);
    assert!(h.render().contains("\"platform_order_id\": "));
    h.press(KeyCode::Esc).await;

    // Retry now: due, attempts reset.
    h.press(KeyCode::Char('r')).await;
    let packet = h.store().packet(&failed).await.unwrap().unwrap();
    assert_eq!(packet.status, PacketStatus::Pending);
    assert_eq!(packet.attempts, 0);
    assert!(h.commands.contains(&Command::Retry { id: failed.clone() }));
    assert!(h.app.data.queue.is_empty(), "no longer failed");

    // Discard, asked first.
    h.press(KeyCode::Char('f')).await;
    assert_eq!(h.app.data.queue.len(), 2);
    h.app.queue.selected = Some(pending.clone());
    h.press(KeyCode::Char('d')).await;
    assert!(matches!(h.app.screen(), Screen::Confirm(_)));
    h.press(KeyCode::Esc).await;
    assert_eq!(
        h.store().packet(&pending).await.unwrap().unwrap().status,
        PacketStatus::Pending
    );
    h.press(KeyCode::Char('d')).await;
    h.press(KeyCode::Right).await;
    h.press(KeyCode::Enter).await;
    assert_eq!(
        h.store().packet(&pending).await.unwrap().unwrap().status,
        PacketStatus::Discarded
    );
    let left = h
        .store()
        .packets(&PacketFilter {
            flow_id: Some(A.into()),
            status: Some(PacketStatus::Pending),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(h.app.data.queue.len(), 1);
}

#[tokio::test]
async fn beside_a_running_daemon_the_tui_attaches_and_starts_no_poller() {
    let mut h = Harness::new().await;
    let now = Timestamp::now();
    h.store()
        .record_heartbeat(&Heartbeat {
            worker_id: "vm-4242-9f1c0e2a".into(),
            kind: "run".into(),
            started_at: now,
            beat_at: now,
        })
        .await
        .unwrap();
    h.app.options.autostart_poller = true;
    h.refresh().await;
    assert!(h.app.attached_to().is_some());
    let screen = h.render();
    assert!(screen.contains("Poller: ATTACHED"), "{screen}");
    h.press(KeyCode::Char('s')).await;
    assert!(!h.commands.contains(&Command::StartPoller));
    assert_eq!(h.app.poller, PollerState::Stopped);
    let notice = h.app.notice.clone().unwrap();
    assert!(
        notice.error && notice.text.contains("not starting a second poller"),
        "{notice:?}"
    );

    // Once its heartbeat is stale, the daemon is gone: STOPPED, and `s` starts ours.
    h.app.now = now + SignedDuration::from_secs(30);
    assert!(h.app.attached_to().is_none());
}

#[tokio::test]
async fn alone_the_tui_runs_the_poller_and_stops_it() {
    let mut h = Harness::new().await;
    h.press(KeyCode::Char('s')).await;
    assert_eq!(h.app.poller, PollerState::Running);
    assert!(h.exec.poller_running());
    // Its heartbeat marks the store as polled, but not as "another daemon".
    let mut beats = Vec::new();
    for _ in 0..50 {
        beats = h.store().heartbeats().await.unwrap();
        if !beats.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(beats.len(), 1);
    assert_eq!(beats[0].worker_id, OWN_WORKER);
    assert_eq!(beats[0].kind, "tui");
    h.refresh().await;
    assert!(h.app.attached_to().is_none());
    assert!(h.render().contains("Poller: RUNNING"));

    h.press(KeyCode::Char('s')).await;
    assert_eq!(h.app.poller, PollerState::Stopped);
    assert!(!h.exec.poller_running());
    assert!(
        h.store().heartbeats().await.unwrap().is_empty(),
        "removed on stop"
    );
    assert!(h.render().contains("Poller: STOPPED"));
}

#[tokio::test]
async fn autostart_runs_the_poller_when_no_daemon_runs() {
    let mut h = Harness::new().await;
    // The harness read the data once already; a new app autostarts on its first data.
    h.app = odoo_bridge_tui::App::new(
        odoo_bridge_tui::AppOptions {
            autostart_poller: true,
            ..options()
        },
        Timestamp::now(),
    );
    h.refresh().await;
    assert!(h.commands.contains(&Command::StartPoller));
    assert_eq!(h.app.poller, PollerState::Running);
    h.exec.stop_poller().await;
}

#[tokio::test]
async fn quit_keys() {
    let mut h = Harness::new().await;
    h.press(KeyCode::Char('l')).await;
    h.press(KeyCode::Char('q')).await;
    assert!(
        matches!(h.app.screen(), Screen::Dashboard),
        "q goes back first"
    );
    assert!(!h.app.quit);
    h.press(KeyCode::Char('q')).await;
    assert!(h.app.quit);
    assert_eq!(h.commands.last(), Some(&Command::Quit));
}

/// A loopback receiver answering 204 to anything.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/hooks/odoo")
}

#[tokio::test]
async fn the_form_tests_odoo_and_the_webhook_against_the_simulator() {
    let sim = odoo_sim::OdooSim::new(odoo_sim::SimConfig::default());
    let config = sim.config().clone();
    let running = sim.serve_on_loopback().await.unwrap();
    let hook = receiver().await;
    let mut h = Harness::new().await;
    h.press(KeyCode::Char('n')).await;
    h.type_text("Simulated").await;
    h.press(KeyCode::Tab).await;
    h.type_text(&running.url()).await;
    h.press(KeyCode::Tab).await;
    h.type_text(&config.database).await;
    h.press(KeyCode::Tab).await;
    h.type_text(&config.admin_login).await;
    h.press(KeyCode::Tab).await;
    h.type_text(&config.admin_api_key).await;
    h.press(KeyCode::Tab).await;
    h.send(ctrl('u')).await;
    h.type_text(&hook).await;
    h.press(KeyCode::Tab).await;
    h.press(KeyCode::Tab).await;
    h.type_text("store").await;
    h.press(KeyCode::Tab).await;
    h.type_text("client").await;
    h.send(ctrl('t')).await;
    let Screen::Form(form) = h.app.screen() else {
        panic!()
    };
    let TestState::Done(summary) = &form.test else {
        panic!("{:?}", form.test);
    };
    assert!(summary.odoo.ok, "{summary:?}");
    assert!(summary.webhook.ok, "{summary:?}");
    let screen = h.render();
    assert!(screen.contains("✓ ok"), "{screen}");

    // A wrong key: the Odoo half fails as "authentication", the webhook half still passes.
    for _ in 0..4 {
        h.press(KeyCode::BackTab).await;
    }
    let Screen::Form(form) = h.app.screen() else {
        panic!()
    };
    assert_eq!(form.field(), odoo_bridge_tui::form::Field::OdooApiKey);
    h.send(ctrl('u')).await;
    h.type_text("wrong-key-000000000000").await;
    h.send(ctrl('t')).await;
    let Screen::Form(form) = h.app.screen() else {
        panic!()
    };
    let TestState::Done(summary) = &form.test else {
        panic!("{:?}", form.test);
    };
    assert!(
        !summary.odoo.ok && summary.odoo.text.starts_with("authentication"),
        "{summary:?}"
    );
    assert!(!summary.odoo.text.contains("wrong-key"), "{summary:?}");
    assert!(summary.webhook.ok);
    assert!(h.render().contains("✗ FAILED"));
    // Nothing was saved by testing.
    assert!(h.store().connections().await.unwrap().is_empty());
}
