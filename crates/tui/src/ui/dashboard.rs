//! The dashboard: connections with their figures, the selected one's details, the recent
//! activity from the sync log, and the retry queue's totals.

use super::text::{fit, pad, pad_left, width};
use super::{bad_style, bold, dim, ok_style, selected_style, warn_style};
use crate::app::App;
use engine::display::{Severity, ago, breaker_short, breaker_text, problems};
use engine::order_delivery::Connection;
use engine::store::{BreakerRecord, BreakerStatus, CycleLogEntry};
use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Fixed columns of the connection rows (the name takes what is left).
const STATUS: usize = 8;
const LAST_SYNC: usize = 10;
const NUMBER: usize = 5;
const ERRORS: usize = 4;
const BREAKER: usize = 9;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let rows = app.data.connections.len().max(1) as u16;
    let wanted = rows + 3;
    // Leave the activity feed at least 4 lines (its border and two rows).
    let room = area.height.saturating_sub(3 + 4).max(4);
    let [connections, details, activity, totals] = Layout::vertical([
        Constraint::Length(wanted.min(room)),
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_connections(frame, connections, app);
    draw_details(frame, details, app);
    draw_activity(frame, activity, app);
    draw_totals(frame, totals, app);
}

fn name_width(inner: usize) -> usize {
    let fixed = 2 + STATUS + LAST_SYNC + 3 * NUMBER + ERRORS + BREAKER + 7;
    inner.saturating_sub(fixed).max(6)
}

fn draw_connections(frame: &mut Frame, area: Rect, app: &App) {
    let inner_width = usize::from(area.width.saturating_sub(2));
    let name_w = name_width(inner_width);
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(" Connections ({}) ", app.data.connections.len()),
        bold(),
    ));
    let mut lines = vec![Line::styled(
        [
            "  ".to_owned(),
            pad("STATUS", STATUS),
            pad("NAME", name_w),
            pad("LAST SYNC", LAST_SYNC),
            pad_left("TODAY", NUMBER),
            pad_left("PEND", NUMBER),
            pad_left("FAIL", NUMBER),
            pad_left("ERR", ERRORS),
            pad("BREAKER", BREAKER),
        ]
        .join(" "),
        bold(),
    )];
    if !app.loaded {
        lines.push(Line::styled("  Reading the store…", dim()));
    } else if app.data.connections.is_empty() {
        lines.push(Line::raw(
            "  No connections yet. Press n to add one (an Odoo tenant and its webhook).",
        ));
    }
    let visible = usize::from(area.height.saturating_sub(3));
    let selected = app.selected_index();
    let first = match selected {
        Some(index) if index >= visible => index + 1 - visible,
        _ => 0,
    };
    for (index, c) in app
        .data
        .connections
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
    {
        lines.push(connection_row(app, c, name_w, selected == Some(index)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn connection_row(app: &App, c: &Connection, name_w: usize, selected: bool) -> Line<'static> {
    let stats = app.data.stats_of(&c.id);
    let errors = app.data.recent_errors_of(&c.id);
    let breaker = app.data.breaker_of(&c.id);
    let (status, status_style) = if c.is_active {
        ("● active", ok_style())
    } else {
        ("○ paused", dim())
    };
    let last = c
        .last_sync_at
        .map_or_else(|| "never".to_owned(), |at| ago(at, app.now));
    let (breaker_word, breaker_style) = breaker_cell(breaker, app.now);
    let base = if selected {
        selected_style()
    } else {
        Style::new()
    };
    let number = |n: u64, style: Style| Span::styled(pad_left(&n.to_string(), NUMBER), style);
    Line::from(vec![
        Span::styled(if selected { "▶ " } else { "  " }, base),
        Span::styled(pad(status, STATUS), base.patch(status_style)),
        Span::styled(" ", base),
        Span::styled(pad(&c.name, name_w), base),
        Span::styled(" ", base),
        Span::styled(pad(&last, LAST_SYNC), base),
        Span::styled(" ", base),
        number(stats.delivered_since, base),
        Span::styled(" ", base),
        number(
            stats.pending,
            if stats.pending > 0 {
                base.patch(warn_style())
            } else {
                base
            },
        ),
        Span::styled(" ", base),
        number(
            stats.failed,
            if stats.failed > 0 {
                base.patch(bad_style())
            } else {
                base
            },
        ),
        Span::styled(" ", base),
        Span::styled(
            pad_left(&errors.to_string(), ERRORS),
            if errors > 0 {
                base.patch(bad_style())
            } else {
                base
            },
        ),
        Span::styled(" ", base),
        Span::styled(pad(&breaker_word, BREAKER), base.patch(breaker_style)),
    ])
}

/// The breaker column: the words `connections list` uses too ([`breaker_short`]), styled.
fn breaker_cell(record: Option<&BreakerRecord>, now: Timestamp) -> (String, Style) {
    let text = breaker_short(record, now);
    let style = match record.map(|record| record.status) {
        Some(BreakerStatus::Open) if text.starts_with("OPEN") => bad_style(),
        Some(BreakerStatus::Open | BreakerStatus::HalfOpen) => warn_style(),
        _ => Style::new(),
    };
    (text, style)
}

fn draw_details(frame: &mut Frame, area: Rect, app: &App) {
    let columns = usize::from(area.width);
    let Some(c) = app.selected_connection() else {
        return;
    };
    let breaker = app.data.breaker_of(&c.id);
    let breaker_words = format!("breaker {}", breaker_text(breaker, app.now));
    let first = vec![
        Span::styled(format!(" {}: ", fit(&c.name, 24)), bold()),
        if breaker.is_some_and(|b| b.status != BreakerStatus::Closed) {
            Span::styled(breaker_words, bad_style())
        } else {
            Span::raw(breaker_words)
        },
        Span::raw(format!(
            " · every {} s · {}",
            c.polling_interval_seconds,
            c.events.to_list().replace("order.", "").replace(',', "/")
        )),
    ];
    // What is wrong, from the same reading of the state as `connections show`.
    let stats = app.data.stats_of(&c.id);
    let newest = app.data.newest_cycle_of(&c.id).map(|entry| &entry.log);
    let found = problems(breaker, &stats, newest, app.now);
    let second = match found.first() {
        Some(worst) => {
            let (mark, style) = match worst.severity {
                Severity::Error => (" ✗ ", bad_style()),
                Severity::Warning => (" ⚠ ", warn_style()),
            };
            let more = match found.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            vec![
                Span::styled(mark, style),
                Span::styled(format!("{}{more}", worst.text), style),
            ]
        }
        None => vec![Span::styled(" ✓ All delivered; nothing waiting.", dim())],
    };
    let mut second = second;
    if let Some(hints) = app.data.hints_of(&c.id) {
        second.push(Span::styled(
            format!(
                " · last Odoo hint {} ({} in all)",
                ago(hints.last_received_at, app.now),
                hints.received
            ),
            dim(),
        ));
    }
    let lines: Vec<Line<'static>> = [first, second]
        .into_iter()
        .map(|spans| Line::from(cut_spans(spans, columns)))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// `spans` cut to `columns` by display width.
fn cut_spans(spans: Vec<Span<'static>>, columns: usize) -> Vec<Span<'static>> {
    let mut used = 0;
    let mut cut = Vec::new();
    for span in spans {
        let left = columns.saturating_sub(used);
        if left == 0 {
            break;
        }
        let text = fit(&span.content, left);
        used += width(&text);
        cut.push(Span::styled(text, span.style));
    }
    cut
}

/// One cycle as the feed says it.
pub fn activity_text(entry: &CycleLogEntry) -> (&'static str, String, Style) {
    let log = &entry.log;
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if let Some(error) = &log.error_message {
        return ("✗", format!("error: {error}"), bad_style());
    }
    if log.held_back > 0 {
        return (
            "⚠",
            format!(
                "{} sent, {} held back: breaker open ({} found)",
                log.sent, log.held_back, log.found
            ),
            bad_style(),
        );
    }
    if log.failed > 0 {
        return (
            "⚠",
            format!(
                "{} sent, {} failed, queued for retry ({} found)",
                log.sent, log.failed, log.found
            ),
            warn_style(),
        );
    }
    if log.sent > 0 {
        return (
            "✓",
            format!(
                "{} order{} sent ({} found)",
                log.sent,
                plural(log.sent),
                log.found
            ),
            ok_style(),
        );
    }
    if log.found > 0 {
        return (
            "·",
            format!(
                "{} order{} found, nothing new to send",
                log.found,
                plural(log.found)
            ),
            Style::new(),
        );
    }
    ("·", "0 new orders".to_owned(), dim())
}

fn draw_activity(frame: &mut Frame, area: Rect, app: &App) {
    let inner = usize::from(area.width.saturating_sub(2));
    let name_w = (inner / 4).clamp(8, 24);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Recent activity ", bold()));
    let rows = usize::from(area.height.saturating_sub(2));
    let mut lines = Vec::new();
    if app.loaded && app.data.activity.is_empty() {
        lines.push(Line::styled(
            " No polling cycles yet: they appear here as the poller runs.",
            dim(),
        ));
    }
    for entry in app.data.activity.iter().take(rows) {
        let (mark, text, style) = activity_text(entry);
        let time = entry.log.started_at.strftime("%H:%M:%SZ").to_string();
        let rest = inner.saturating_sub(1 + 9 + 1 + name_w + 1 + 2);
        lines.push(Line::from(vec![
            Span::raw(format!(" {time} ")),
            Span::raw(pad(app.data.name_of(&entry.log.flow_id), name_w)),
            Span::raw(" "),
            Span::styled(format!("{mark} "), style),
            Span::raw(fit(&text, rest)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_totals(frame: &mut Frame, area: Rect, app: &App) {
    let (pending, failed) = app.data.queue_totals();
    let line = Line::from(vec![
        Span::styled(" Retry queue: ", bold()),
        Span::styled(
            format!("{pending} pending"),
            if pending > 0 {
                warn_style()
            } else {
                Style::new()
            },
        ),
        Span::raw(" · "),
        Span::styled(
            format!("{failed} failed"),
            if failed > 0 {
                bad_style()
            } else {
                Style::new()
            },
        ),
        Span::styled(
            fit("  (r opens it)", usize::from(area.width).saturating_sub(40)),
            dim(),
        ),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
