//! Drawing the [`App`] with ratatui: one function per screen, a header with the poller's
//! state on every screen and a footer with the keys. Colors only underline what words and
//! symbols already say (`● active`, `RUNNING`, `FAILED`, `✗`), and no background color is
//! set, so the screens read alike on dark and light terminals.

mod dashboard;
mod enrichment;
mod form;
mod marketplace;
mod tables;
pub mod text;

use crate::app::{App, ConfirmState, MessageState, PollerState, Screen};
use engine::display::ago;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use text::{fit, pad, width, wrap};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let hints = hints(app.screen());
    let footer_lines = pack_hints(&hints, usize::from(area.width));
    let notice = notice_line(app);
    let [header, body, notice_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(u16::from(notice.is_some())),
        Constraint::Length(footer_lines.len().min(3) as u16),
    ])
    .areas(area);
    draw_header(frame, header, app);
    match app.base_screen() {
        Screen::Form(form) => form::draw(frame, body, app, form),
        Screen::Logs => tables::draw_logs(frame, body, app),
        Screen::Retries => tables::draw_queue(frame, body, app),
        Screen::Marketplace => marketplace::draw(frame, body, app),
        Screen::Enrichment => enrichment::draw(frame, body, app),
        Screen::Payload(view) => tables::draw_payload(frame, body, app, view),
        _ => dashboard::draw(frame, body, app),
    }
    match app.screen() {
        Screen::Help => draw_help(frame, body, app),
        Screen::Confirm(confirm) => draw_confirm(frame, body, confirm),
        Screen::Message(message) => draw_message(frame, body, message),
        _ => {}
    }
    if let Some(line) = notice {
        frame.render_widget(Paragraph::new(line), notice_area);
    }
    frame.render_widget(Paragraph::new(footer_lines), footer);
}

pub(crate) fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub(crate) fn ok_style() -> Style {
    Style::new().fg(Color::Green)
}

pub(crate) fn warn_style() -> Style {
    Style::new().fg(Color::Yellow)
}

pub(crate) fn bad_style() -> Style {
    Style::new().fg(Color::Red)
}

pub(crate) fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

/// The selected row: reversed (the terminal's own colors swapped) and marked `▶`.
pub(crate) fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// What runs another poller, in words: `odoo-bridge run`, another TUI, `odoo-bridge demo`.
fn runner_name(kind: &str) -> String {
    match kind {
        "run" => "odoo-bridge run".to_owned(),
        "tui" => "another TUI's poller".to_owned(),
        "demo" => "odoo-bridge demo".to_owned(),
        other => format!("a {other} poller"),
    }
}

/// The poller's state as a word (and its detail).
pub fn poller_text(app: &App) -> (String, String, Style) {
    match (app.poller, app.attached_to()) {
        (PollerState::Running, Some(other)) => (
            "RUNNING".into(),
            format!(
                "here and in {} (worker {}): they share the flows",
                runner_name(&other.kind),
                other.worker_id
            ),
            ok_style(),
        ),
        (PollerState::Running, None) => ("RUNNING".into(), "in this TUI".into(), ok_style()),
        (PollerState::Starting, _) => ("STARTING…".into(), String::new(), warn_style()),
        (PollerState::Stopping, _) => (
            "STOPPING…".into(),
            "in-flight cycles finish".into(),
            warn_style(),
        ),
        (PollerState::Stopped, Some(other)) => (
            "ATTACHED".into(),
            format!(
                "to {} (worker {}), seen {}",
                runner_name(&other.kind),
                other.worker_id,
                ago(other.beat_at, app.now)
            ),
            Style::new().fg(Color::Cyan),
        ),
        (PollerState::Stopped, None) => ("STOPPED".into(), "s starts it".into(), bad_style()),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let (state, detail, style) = poller_text(app);
    let total = usize::from(area.width);
    let title = " odoo-bridge · order delivery ";
    let state_text = format!(" Poller: {state} ");
    let room = total.saturating_sub(width(title) + width(&state_text) + 1);
    let detail = if detail.is_empty() || room < 8 {
        String::new()
    } else {
        format!("{} ", fit(&detail, room.saturating_sub(1)))
    };
    let fill = total.saturating_sub(width(title) + width(&state_text) + width(&detail));
    let line = Line::from(vec![
        Span::styled(fit(title, total), bold()),
        Span::raw(" ".repeat(fill)),
        Span::raw(detail),
        Span::styled(
            state_text,
            style.add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn notice_line(app: &App) -> Option<Line<'static>> {
    if let Some(error) = &app.load_error {
        return Some(Line::from(vec![
            Span::styled("✗ ", bad_style()),
            Span::raw(format!("Cannot read the store: {error}")),
        ]));
    }
    let notice = app.notice.as_ref()?;
    let (mark, style) = if notice.error {
        ("✗ ", bad_style())
    } else {
        ("✓ ", ok_style())
    };
    Some(Line::from(vec![
        Span::styled(mark, style),
        Span::raw(fit(&notice.text, usize::from(app.size.0).saturating_sub(3))),
    ]))
}

/// The keys of a screen: (key, what it does). The footer shows them all; `?` lists them
/// with the global ones.
pub fn hints(screen: &Screen) -> Vec<(&'static str, &'static str)> {
    match screen {
        Screen::Dashboard => vec![
            ("↑↓", "select"),
            ("n", "new"),
            ("e", "edit"),
            ("d", "delete"),
            ("t", "test"),
            ("p", "pause/resume"),
            ("l", "logs"),
            ("r", "retries"),
            ("s", "start/stop poller"),
            ("m", "marketplaces"),
            ("E", "enrich"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Form(_) => vec![
            ("Tab/↓", "next"),
            ("⇧Tab/↑", "previous"),
            ("Ctrl-S", "save"),
            ("Ctrl-T", "test"),
            ("Ctrl-U", "clear field"),
            ("Ctrl-G", "new secret"),
            ("Space", "toggle active"),
            ("F1", "help"),
            ("Esc", "cancel"),
        ],
        Screen::Logs => vec![
            ("↑↓", "select"),
            ("PgDn/→", "older page"),
            ("PgUp/←", "newer page"),
            ("c", "connection filter"),
            ("?", "help"),
            ("q/Esc", "back"),
        ],
        Screen::Retries => vec![
            ("↑↓", "select"),
            ("Enter/v", "view payload"),
            ("r", "retry now"),
            ("d", "discard"),
            ("c", "connection filter"),
            ("f", "status filter"),
            ("?", "help"),
            ("q/Esc", "back"),
        ],
        Screen::Marketplace => vec![
            ("↑↓", "marketplace"),
            ("Tab", "next conflict"),
            ("i", "ignore conflict"),
            ("?", "help"),
            ("q/Esc", "back"),
        ],
        Screen::Enrichment => vec![
            ("↑↓", "record"),
            ("Tab/⇧Tab", "next/previous job"),
            ("f", "filter all/failing/disabled"),
            ("r", "re-enable a disabled record"),
            ("?", "help"),
            ("q/Esc", "back"),
        ],
        Screen::Payload(_) => vec![
            ("↑↓ PgUp/PgDn", "scroll"),
            ("←→", "sideways"),
            ("Home/End", "top/bottom"),
            ("r", "retry now"),
            ("d", "discard"),
            ("?", "help"),
            ("q/Esc", "back"),
        ],
        Screen::Help => vec![("any key", "close help")],
        Screen::Confirm(_) => vec![
            ("y", "yes"),
            ("n/Esc", "no"),
            ("←→", "choose"),
            ("Enter", "confirm choice"),
        ],
        Screen::Message(_) => vec![("Enter/Esc", "close")],
    }
}

/// Hints packed into as few lines as the width allows.
fn pack_hints(hints: &[(&'static str, &'static str)], columns: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for (key, action) in hints {
        let cost = width(key) + 1 + width(action);
        let sep = if spans.is_empty() { 1 } else { 3 };
        if used + sep + cost > columns && !spans.is_empty() {
            lines.push(Line::from(std::mem::take(&mut spans)));
            used = 0;
        }
        spans.push(Span::raw(if spans.is_empty() { " " } else { " · " }));
        used += if used == 0 { 1 } else { 3 };
        spans.push(Span::styled(*key, bold()));
        spans.push(Span::raw(format!(" {action}")));
        used += cost;
    }
    if !spans.is_empty() {
        lines.push(Line::from(spans));
    }
    lines
}

/// A rectangle of `w` × `h` centered in `area` (shrunk to fit).
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    let inner_width = usize::from(area.width.saturating_sub(2));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(Span::styled(
            format!(" {} ", fit(title, inner_width.saturating_sub(2))),
            bold(),
        ))),
        area,
    );
}

fn draw_help(frame: &mut Frame, body: Rect, app: &App) {
    let base = app.base_screen();
    let screen_name = match base {
        Screen::Form(_) => "Connection form",
        Screen::Logs => "Sync log",
        Screen::Retries => "Retry queue",
        Screen::Marketplace => "Marketplaces",
        Screen::Enrichment => "Enrichment",
        Screen::Payload(_) => "Payload",
        _ => "Dashboard",
    };
    let mut lines = vec![Line::styled(format!("{screen_name} keys"), bold())];
    for (key, action) in hints(base) {
        lines.push(Line::from(vec![
            Span::styled(format!("  {}", pad(key, 14)), bold()),
            Span::raw(action),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Everywhere", bold()));
    for (key, action) in [
        ("?  F1", "this help (F1 in the form)"),
        ("q  Esc", "back; q on the dashboard quits"),
        ("Ctrl-C", "quit (the poller stops cleanly)"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("  {}", pad(key, 14)), bold()),
            Span::raw(action),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "● active  ○ paused  ✓ sent  ⚠ failed, queued  ✗ error",
    ));
    if lines.len() + 2 > usize::from(body.height) {
        // On a short terminal the keys and the legend matter more than the spacing.
        lines.retain(|line| line.width() > 0);
    }
    let height = lines.len() as u16 + 2;
    let area = centered(body, 64, height);
    popup(frame, area, "Help", lines);
}

fn draw_confirm(frame: &mut Frame, body: Rect, confirm: &ConfirmState) {
    let w = body.width.min(70);
    let inner = usize::from(w.saturating_sub(2));
    let mut lines: Vec<Line<'static>> = wrap(&confirm.question, inner)
        .into_iter()
        .map(Line::raw)
        .collect();
    lines.push(Line::raw(""));
    let button = |label: &str, on: bool| {
        if on {
            Span::styled(
                format!("▶ {label} ◀"),
                selected_style().add_modifier(Modifier::BOLD),
            )
        } else {
            Span::raw(format!("  {label}  "))
        }
    };
    lines.push(Line::from(vec![
        Span::raw("   "),
        button("Yes (y)", confirm.yes),
        Span::raw("   "),
        button("No (n)", !confirm.yes),
    ]));
    let height = lines.len() as u16 + 2;
    let area = centered(body, w, height);
    popup(frame, area, &confirm.title, lines);
}

fn draw_message(frame: &mut Frame, body: Rect, message: &MessageState) {
    let w = body.width.min(76);
    let inner = usize::from(w.saturating_sub(2));
    let mut lines: Vec<Line<'static>> = Vec::new();
    for line in &message.lines {
        let style = if line.starts_with('✗') {
            bad_style()
        } else if line.starts_with('✓') {
            ok_style()
        } else {
            Style::new()
        };
        for part in wrap(line, inner) {
            lines.push(Line::styled(part, style));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Enter or Esc closes this.", dim()));
    let height = lines.len() as u16 + 2;
    let area = centered(body, w, height);
    let title = if message.error {
        format!("✗ {}", message.title)
    } else {
        message.title.clone()
    };
    popup(frame, area, &title, lines);
}
