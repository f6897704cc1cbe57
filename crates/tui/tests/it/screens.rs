//! Every screen in its important states, at 80×24 and wider, as text snapshots. Colors are
//! not in the snapshots: what they show is there as words and symbols (`● active`,
//! `RUNNING`, `FAILED`, `✗`), which is the point.

use crate::support::*;
use engine::connection_form::FieldError;
use insta::assert_snapshot;
use odoo_bridge_tui::app::{App, Event, PollerState, Screen};
use odoo_bridge_tui::data::Snapshot;
use odoo_bridge_tui::form::{CheckLine, TestState, TestSummary};
use ratatui::crossterm::event::KeyCode;

fn empty() -> App {
    app_with(Snapshot {
        generation: 1,
        loaded_at: now(),
        ..Snapshot::default()
    })
}

fn several_running() -> App {
    let mut app = app_with(several());
    app.poller = PollerState::Running;
    app
}

#[test]
fn dashboard_before_the_first_read() {
    let app = App::new(options(), now());
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn dashboard_empty() {
    assert_snapshot!(render(&empty(), 80, 24));
}

#[test]
fn dashboard_several_connections_80x24() {
    assert_snapshot!(render(&several_running(), 80, 24));
}

#[test]
fn dashboard_several_connections_120x32() {
    assert_snapshot!(render(&several_running(), 120, 32));
}

#[test]
fn dashboard_selected_connection_with_open_breaker() {
    let mut app = several_running();
    app.handle(key(KeyCode::Down));
    app.handle(key(KeyCode::Down));
    assert_eq!(app.selected.as_deref(), Some(C));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("OPEN"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn dashboard_says_when_the_last_odoo_hint_arrived() {
    let mut data = several();
    data.hints = vec![engine::store::HintActivity {
        flow_id: A.into(),
        received: 6,
        last_received_at: ago(12),
    }];
    let mut app = app_with(data);
    app.poller = PollerState::Running;
    let screen = render(&app, 120, 32);
    assert!(
        screen.contains("last Odoo hint 12 s ago (6 in all)"),
        "{screen}"
    );
    assert_snapshot!(screen);
}

#[test]
fn dashboard_attached_to_a_daemon() {
    let mut snapshot = several();
    snapshot.daemons = vec![other_daemon()];
    let app = app_with(snapshot);
    let screen = render(&app, 100, 24);
    assert!(screen.contains("Poller: ATTACHED"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn dashboard_store_error_and_many_connections() {
    let mut snapshot = several();
    for i in 0..20 {
        snapshot
            .connections
            .push(connection(&format!("{i:016x}"), &format!("Tienda {i:02}")));
    }
    let mut app = app_with(snapshot);
    app.handle(Event::Done(odoo_bridge_tui::Outcome::LoadFailed {
        generation: 1,
        error: "database is locked".into(),
    }));
    app.handle(key(KeyCode::End));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn form_new_connection() {
    let mut app = empty();
    app.handle(key(KeyCode::Char('n')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn form_new_connection_with_errors_next_to_their_fields() {
    let mut app = empty();
    app.handle(key(KeyCode::Char('n')));
    for c in "Le Juste".chars() {
        app.handle(key(KeyCode::Char(c)));
    }
    app.handle(key(KeyCode::Tab));
    for c in "lejuste.odoo.com/web".chars() {
        app.handle(key(KeyCode::Char(c)));
    }
    // Interval: 0.
    for _ in 0..8 {
        app.handle(key(KeyCode::Tab));
    }
    app.handle(ctrl('u'));
    app.handle(key(KeyCode::Char('0')));
    assert!(
        app.handle(ctrl('s')).is_empty(),
        "an invalid draft is not saved"
    );
    let screen = render(&app, 80, 24);
    assert!(screen.contains("✗ must start with https://"), "{screen}");
    assert_snapshot!(render(&app, 80, 24));
    assert_snapshot!("form_errors_120x40", render(&app, 120, 40));
}

fn edit_form() -> App {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('e')));
    app
}

#[test]
fn form_edit_hides_the_key_and_the_secret() {
    let app = edit_form();
    let screen = render(&app, 120, 32);
    assert!(
        !screen.contains(KEY) && !screen.contains(SECRET),
        "{screen}"
    );
    assert!(screen.contains("••••4567 kept"), "{screen}");
    assert!(screen.contains("••••5e6f"), "{screen}");
    assert_snapshot!(render(&app, 80, 24));
    assert_snapshot!("form_edit_120x32", screen);
}

#[test]
fn form_edit_typing_a_new_key_shows_bullets_only() {
    let mut app = edit_form();
    for _ in 0..4 {
        app.handle(key(KeyCode::Tab));
    }
    for c in "new-key-0000000000000000".chars() {
        app.handle(key(KeyCode::Char(c)));
    }
    let screen = render(&app, 80, 24);
    assert!(!screen.contains("new-key"), "{screen}");
    assert!(screen.contains(&"•".repeat(24)), "{screen}");
}

#[test]
fn form_test_results() {
    let mut app = edit_form();
    if let Some(Screen::Form(form)) = app.screens.last_mut() {
        form.test = TestState::Done(TestSummary {
            name: "Le Juste Odoo".into(),
            odoo: CheckLine {
                ok: true,
                text: "Odoo 18.0 at https://lejuste.odoo.com, database lejuste, login api@lejuste.cl (uid 2), jsonrpc".into(),
            },
            webhook: CheckLine {
                ok: false,
                text: "network_error: cannot connect to stockmaster.notorios.cl: connection refused".into(),
            },
        });
        form.focus = 12;
    }
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn form_name_taken_error_from_the_store() {
    let mut app = edit_form();
    app.handle(Event::Done(odoo_bridge_tui::Outcome::SaveRejected(vec![
        FieldError {
            field: "name",
            message: "is already used by another connection; names must be unique".into(),
        },
    ])));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn logs() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('l')));
    app.handle(key(KeyCode::Down));
    app.handle(key(KeyCode::Down));
    app.handle(key(KeyCode::Down));
    app.handle(Event::Data(Box::new(several_at(app_generation(&app)))));
    assert_snapshot!(render(&app, 80, 24));
    assert_snapshot!("logs_120x32", render(&app, 120, 32));
}

fn app_generation(app: &App) -> u64 {
    // The generation of the app's latest request: the test feeds its answer.
    let mut probe = app.clone();
    match probe.handle(Event::Tick(now())).pop() {
        Some(odoo_bridge_tui::Command::Load(request)) => request.generation - 1,
        _ => 1,
    }
}

fn several_at(generation: u64) -> Snapshot {
    Snapshot {
        generation,
        ..several()
    }
}

#[test]
fn logs_empty_for_a_connection() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('l')));
    app.handle(key(KeyCode::Char('c')));
    let generation = app_generation(&app);
    app.handle(Event::Data(Box::new(Snapshot {
        logs: Vec::new(),
        logs_more: false,
        ..several_at(generation)
    })));
    assert_eq!(app.logs.connection.as_deref(), Some(A));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn retry_queue() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('r')));
    app.handle(key(KeyCode::Down));
    assert_snapshot!(render(&app, 80, 24));
    assert_snapshot!("retry_queue_120x32", render(&app, 120, 32));
}

#[test]
fn retry_queue_empty() {
    let mut app = empty();
    app.handle(key(KeyCode::Char('r')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn payload_view_scrolled() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('r')));
    app.handle(key(KeyCode::Enter));
    for _ in 0..5 {
        app.handle(key(KeyCode::Down));
    }
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_over_the_dashboard() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('?')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn confirm_delete() {
    let mut app = several_running();
    app.handle(key(KeyCode::Char('d')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn test_result_from_the_dashboard() {
    let mut app = several_running();
    app.handle(Event::Done(odoo_bridge_tui::Outcome::Tested {
        origin: odoo_bridge_tui::app::TestOrigin::Dashboard,
        result: Ok(TestSummary {
            name: "Le Juste Odoo".into(),
            odoo: CheckLine {
                ok: false,
                text: "authentication: authentication failed: Access Denied (check the database, the login and the API key)".into(),
            },
            webhook: CheckLine {
                ok: true,
                text: "HTTP 200 from https://stockmaster.notorios.cl/api/webhooks/odoo in 84 ms (signed ping)".into(),
            },
        }),
    }));
    assert_snapshot!(render(&app, 80, 24));
}

/// Every screen survives any size, down to a few cells, without panicking.
#[test]
fn every_screen_survives_small_and_odd_sizes() {
    let mut screens = vec![several_running(), empty(), edit_form()];
    for keys in [
        vec![KeyCode::Char('l')],
        vec![KeyCode::Char('r')],
        vec![KeyCode::Char('r'), KeyCode::Enter],
        vec![KeyCode::Char('?')],
        vec![KeyCode::Char('d')],
        vec![KeyCode::Char('n')],
    ] {
        let mut app = several_running();
        for code in keys {
            app.handle(key(code));
        }
        screens.push(app);
    }
    for app in &screens {
        for (w, h) in [(80, 24), (20, 5), (1, 1), (200, 60), (81, 23), (40, 30)] {
            let _ = render(app, w, h);
        }
    }
}
