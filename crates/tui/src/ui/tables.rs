//! The sync log, the retry queue and a packet's payload.

use super::text::{fit, pad, pad_left, wrap};
use super::{bad_style, bold, dim, selected_style, warn_style};
use crate::app::{App, PayloadState};
use crate::data::LOG_PAGE;
use engine::display::{attempts_text, time_text, until};
use engine::store::{Packet, PacketStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

fn row_style(selected: bool) -> Style {
    if selected {
        selected_style()
    } else {
        Style::new()
    }
}

/// The first row to show so that `selected` is visible among `visible` rows.
fn first_row(selected: usize, visible: usize) -> usize {
    if visible == 0 || selected < visible {
        0
    } else {
        selected + 1 - visible
    }
}

pub fn draw_logs(frame: &mut Frame, area: Rect, app: &App) {
    let filter = match &app.logs.connection {
        Some(id) => format!("\"{}\"", app.data.name_of(id)),
        None => "all connections".to_owned(),
    };
    let title = format!(
        " Sync log · {} · page {}{} · newest first ",
        filter,
        app.logs.page + 1,
        if app.data.logs_more {
            " (older: PgDn)"
        } else {
            ""
        }
    );
    let [table, detail] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        fit(&title, usize::from(area.width).saturating_sub(2)),
        bold(),
    ));
    let inner = usize::from(table.width.saturating_sub(2));
    // The date in full where there is room.
    let (time_w, time_format) = if inner >= 110 {
        (20, "%Y-%m-%d %H:%M:%SZ")
    } else {
        (15, "%m-%d %H:%M:%SZ")
    };
    // TIME, FOUND 5, SENT 5, FAILED 6, MS 6, separators.
    let fixed = 2 + time_w + 5 + 5 + 6 + 6 + 6;
    let rest = inner.saturating_sub(fixed);
    let name_w = (rest / 3).clamp(8, 30).min(rest);
    let error_w = rest.saturating_sub(name_w + 1);
    let header = [
        "  ".to_owned(),
        pad("TIME", time_w),
        pad("CONNECTION", name_w),
        pad_left("FOUND", 5),
        pad_left("SENT", 5),
        pad_left("FAILED", 6),
        pad_left("MS", 6),
        pad("ERROR", error_w),
    ]
    .join(" ");
    let mut lines = vec![Line::styled(header, bold())];
    if app.loaded && app.data.logs.is_empty() {
        lines.push(Line::styled(
            "  No polling cycles recorded yet for this filter.",
            dim(),
        ));
    }
    let visible = usize::from(table.height.saturating_sub(3));
    let first = first_row(app.logs.selected, visible);
    for (index, entry) in app.data.logs.iter().enumerate().skip(first).take(visible) {
        let log = &entry.log;
        let selected = index == app.logs.selected;
        let base = row_style(selected);
        let (error, error_style) = match &log.error_message {
            Some(error) => (format!("✗ {error}"), bad_style()),
            None => (String::new(), Style::new()),
        };
        let failed_style = if log.failed > 0 || log.held_back > 0 {
            base.patch(warn_style())
        } else {
            base
        };
        lines.push(Line::from(vec![
            Span::styled(if selected { "▶ " } else { "  " }, base),
            Span::styled(
                format!(
                    "{} ",
                    pad(&log.started_at.strftime(time_format).to_string(), time_w)
                ),
                base,
            ),
            Span::styled(
                format!("{} ", pad(app.data.name_of(&log.flow_id), name_w)),
                base,
            ),
            Span::styled(format!("{} ", pad_left(&log.found.to_string(), 5)), base),
            Span::styled(format!("{} ", pad_left(&log.sent.to_string(), 5)), base),
            Span::styled(
                format!("{} ", pad_left(&log.failed.to_string(), 6)),
                failed_style,
            ),
            Span::styled(
                format!("{} ", pad_left(&log.duration_ms.to_string(), 6)),
                base,
            ),
            Span::styled(pad(&error, error_w), base.patch(error_style)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), table);

    // The selected cycle's error, whole.
    let mut detail_lines = Vec::new();
    if let Some(entry) = app.data.logs.get(app.logs.selected)
        && let Some(error) = &entry.log.error_message
    {
        for part in wrap(
            &format!("✗ {error}"),
            usize::from(detail.width).saturating_sub(2),
        )
        .into_iter()
        .take(3)
        {
            detail_lines.push(Line::styled(format!(" {part}"), bad_style()));
        }
    } else {
        detail_lines.push(Line::styled(
            format!(" {LOG_PAGE} cycles a page. c filters by connection."),
            dim(),
        ));
    }
    frame.render_widget(Paragraph::new(detail_lines), detail);
}

/// `order.confirmed` as `confirmed`: the event's last word.
fn event_word(event: &str) -> &str {
    event.rsplit('.').next().unwrap_or(event)
}

fn status_style(status: PacketStatus) -> Style {
    match status {
        PacketStatus::Failed => bad_style(),
        PacketStatus::Pending => warn_style(),
        _ => Style::new(),
    }
}

pub fn draw_queue(frame: &mut Frame, area: Rect, app: &App) {
    let filter = match &app.queue.connection {
        Some(id) => format!("\"{}\"", app.data.name_of(id)),
        None => "all connections".to_owned(),
    };
    let title = format!(
        " Retry queue · {} · {} · {} packet{} ",
        filter,
        app.queue.status.label(),
        app.data.queue.len(),
        if app.data.queue.len() == 1 { "" } else { "s" }
    );
    let [table, detail] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        fit(&title, usize::from(area.width).saturating_sub(2)),
        bold(),
    ));
    let inner = usize::from(table.width.saturating_sub(2));
    // ORDER 10, EVENT 9, STATUS 7, SENDS 5, NEXT 9, separators; the packet id where there
    // is room (it is in the detail line below anyway).
    let fixed = 2 + 10 + 9 + 7 + 5 + 9 + 6;
    let rest = inner.saturating_sub(fixed);
    let id_w = if inner >= 110 { 26.min(rest / 2) } else { 0 };
    let name_w = rest.saturating_sub(id_w + usize::from(id_w > 0));
    let mut header = vec!["  ".to_owned()];
    if id_w > 0 {
        header.push(pad("PACKET", id_w));
    }
    header.extend([
        pad("ORDER", 10),
        pad("CONNECTION", name_w),
        pad("EVENT", 9),
        pad("STATUS", 7),
        pad_left("SENDS", 5),
        pad("NEXT", 9),
    ]);
    let mut lines = vec![Line::styled(header.join(" "), bold())];
    if app.loaded && app.data.queue.is_empty() {
        lines.push(Line::styled(
            "  Nothing waits: no pending or failed packet for this filter.",
            dim(),
        ));
    }
    let visible = usize::from(table.height.saturating_sub(3));
    let selected = app.selected_packet_index();
    let first = first_row(selected.unwrap_or(0), visible);
    for (index, packet) in app.data.queue.iter().enumerate().skip(first).take(visible) {
        let is_selected = selected == Some(index);
        let base = row_style(is_selected);
        let next = match packet.status {
            PacketStatus::Pending => until(packet.next_attempt_at, app.now),
            _ => "—".to_owned(),
        };
        let mut spans = vec![Span::styled(if is_selected { "▶ " } else { "  " }, base)];
        if id_w > 0 {
            spans.push(Span::styled(format!("{} ", pad(&packet.id, id_w)), base));
        }
        spans.extend([
            Span::styled(
                format!(
                    "{} ",
                    pad(&format!("{} v{}", packet.subject.id, packet.version), 10)
                ),
                base,
            ),
            Span::styled(
                format!("{} ", pad(app.data.name_of(&packet.flow_id), name_w)),
                base,
            ),
            Span::styled(format!("{} ", pad(event_word(&packet.event), 9)), base),
            Span::styled(
                format!("{} ", pad(packet.status.as_str(), 7)),
                base.patch(status_style(packet.status)),
            ),
            Span::styled(
                format!(
                    "{} ",
                    pad_left(&attempts_text(packet.attempts, packet.max_attempts), 5)
                ),
                base,
            ),
            Span::styled(pad(&next, 9), base),
        ]);
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), table);

    let mut detail_lines = Vec::new();
    match selected.map(|i| &app.data.queue[i]) {
        Some(packet) => {
            let columns = usize::from(detail.width).saturating_sub(2);
            let first = format!(
                " Packet {} · {} · created {}",
                packet.id,
                packet.event,
                time_text(packet.created_at)
            );
            detail_lines.push(Line::raw(fit(&first, columns + 1)));
            if let Some(error) = &packet.last_error {
                let class = packet.failure_class.map_or("error", |c| c.as_str());
                for part in wrap(&format!("✗ {class}: {error}"), columns)
                    .into_iter()
                    .take(2)
                {
                    detail_lines.push(Line::styled(format!(" {part}"), bad_style()));
                }
            }
        }
        None => detail_lines.push(Line::styled(
            " c filters by connection, f by status.",
            dim(),
        )),
    }
    frame.render_widget(Paragraph::new(detail_lines), detail);
}

fn packet_summary(packet: &Packet, app: &App) -> String {
    let next = match packet.status {
        PacketStatus::Pending => format!(" · next {}", until(packet.next_attempt_at, app.now)),
        _ => String::new(),
    };
    format!(
        "{} · {} · {} v{} · {} · sends {}{}",
        app.data.name_of(&packet.flow_id),
        crate::data::subject_text(&packet.subject),
        packet.event,
        packet.version,
        packet.status.as_str(),
        attempts_text(packet.attempts, packet.max_attempts),
        next
    )
}

pub fn draw_payload(frame: &mut Frame, area: Rect, app: &App, view: &PayloadState) {
    let packet = &view.packet;
    let columns = usize::from(area.width);
    let mut head = vec![Line::raw(fit(
        &format!(" {}", packet_summary(packet, app)),
        columns,
    ))];
    if let Some(error) = &packet.last_error {
        let class = packet.failure_class.map_or("error", |c| c.as_str());
        head.push(Line::styled(
            fit(&format!(" ✗ {class}: {error}"), columns),
            bad_style(),
        ));
    }
    let [head_area, body] =
        Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(head), head_area);

    let visible = usize::from(body.height.saturating_sub(2));
    let total = view.lines.len();
    let top = view.scroll.min(total.saturating_sub(visible.max(1)));
    let end = (top + visible).min(total);
    let title = format!(
        " Payload {} · lines {}–{} of {} ",
        packet.id,
        if total == 0 { 0 } else { top + 1 },
        end,
        total
    );
    let inner = usize::from(body.width.saturating_sub(2));
    let lines: Vec<Line<'static>> = view.lines[top..end]
        .iter()
        .map(|line| {
            // Cut lines end with …; ← → scroll sideways to read them.
            Line::raw(fit(&skip_columns(line, view.hscroll), inner))
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(Span::styled(fit(&title, inner), bold())),
        ),
        body,
    );
}

/// `line` without its first `columns` columns (sideways scrolling).
fn skip_columns(line: &str, columns: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut skipped = 0;
    let mut out = String::new();
    for c in line.chars() {
        if skipped < columns {
            skipped += c.width().unwrap_or(0);
            continue;
        }
        out.push(c);
    }
    out
}
