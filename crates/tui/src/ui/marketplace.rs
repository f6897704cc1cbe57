//! The Marketplace screen: every marketplace (Cartona) with its orders and open conflicts,
//! and for the selected one seed 001's dashboard figures, its open conflicts (both sides'
//! states and the recommended action) and its newest sync log rows.

use super::text::{fit, pad, pad_left, width};
use super::{bad_style, bold, dim, ok_style, selected_style, warn_style};
use crate::app::App;
use crate::data::{MARKET_STATS_HOURS, MarketplaceRow};
use engine::display::ago;
use engine::store::{ConflictSeverity, LogOutcome};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Lines of one open conflict: what and which order, both sides, the recommended action.
const CONFLICT_LINES: u16 = 3;

/// Open conflicts shown at once in a body `height` rows high; Tab moves through the others.
fn conflict_rows(height: u16) -> usize {
    if height >= 30 {
        3
    } else if height >= 24 {
        2
    } else {
        1
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let market = &app.data.market;
    let rows = market.marketplaces.len().max(1) as u16;
    // The list takes at most a third of the screen: the log needs room too.
    let list_height = (rows + 3).min((area.height / 3).max(4));
    let conflicts = market.conflicts.len().min(conflict_rows(area.height)) as u16;
    // Borders, two lines of figures, the conflicts' heading, the conflicts.
    let detail_height = if market.detail_of.is_some() {
        2 + 2 + 1 + CONFLICT_LINES * conflicts
    } else {
        0
    };
    let [list, detail, log] = Layout::vertical([
        Constraint::Length(list_height),
        Constraint::Length(detail_height),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_list(frame, list, app);
    if market.detail_of.is_some() {
        draw_detail(frame, detail, app);
        draw_log(frame, log, app);
    }
}

fn titled(title: &str, area: Rect) -> Block<'static> {
    Block::new().borders(Borders::ALL).title(Span::styled(
        fit(title, usize::from(area.width).saturating_sub(2)),
        bold(),
    ))
}

const KIND: usize = 8;
const STATE: usize = 8;
const LAST_PULL: usize = 11;
const NUMBER: usize = 8;
const CONFLICTS: usize = 9;

fn draw_list(frame: &mut Frame, area: Rect, app: &App) {
    let market = &app.data.market;
    let inner = usize::from(area.width.saturating_sub(2));
    let fixed = 2 + KIND + STATE + LAST_PULL + 2 * NUMBER + CONFLICTS + 6;
    let name_w = inner.saturating_sub(fixed).max(6);
    let block = titled(
        &format!(" Marketplaces ({}) ", market.marketplaces.len()),
        area,
    );
    let header = [
        format!("  {}", pad("NAME", name_w)),
        pad("KIND", KIND),
        pad("STATE", STATE),
        pad("LAST PULL", LAST_PULL),
        pad_left("IMPORTED", NUMBER),
        pad_left("REFUSED", NUMBER),
        pad_left("CONFLICTS", CONFLICTS),
    ]
    .join(" ");
    let mut lines = vec![Line::styled(header, bold())];
    if !market.loaded {
        lines.push(Line::styled("  Reading the marketplaces…", dim()));
    } else if market.marketplaces.is_empty() {
        lines.push(Line::styled(
            "  No marketplaces yet. Add one with `odoo-bridge marketplace add --help`.",
            dim(),
        ));
    }
    let visible = usize::from(area.height.saturating_sub(3));
    let selected = app
        .market
        .selected
        .as_deref()
        .and_then(|id| market.marketplaces.iter().position(|row| row.id == id))
        .unwrap_or(0);
    let first = if visible == 0 || selected < visible {
        0
    } else {
        selected + 1 - visible
    };
    for (index, row) in market
        .marketplaces
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
    {
        lines.push(list_row(app, row, name_w, index == selected));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn list_row(app: &App, row: &MarketplaceRow, name_w: usize, selected: bool) -> Line<'static> {
    let base = if selected {
        selected_style()
    } else {
        Style::new()
    };
    let (state, state_style) = if row.is_active {
        ("● active", ok_style())
    } else {
        ("○ paused", warn_style())
    };
    let conflicts_style = if row.open_conflicts > 0 {
        bad_style()
    } else {
        Style::new()
    };
    let last_pull = row
        .last_sync_at
        .map_or_else(|| "never".to_owned(), |at| ago(at, app.now));
    Line::from(vec![
        Span::styled(if selected { "▶ " } else { "  " }, base),
        Span::styled(format!("{} ", pad(&row.name, name_w)), base),
        Span::styled(format!("{} ", pad(&row.kind, KIND)), base),
        Span::styled(format!("{} ", pad(state, STATE)), base.patch(state_style)),
        Span::styled(format!("{} ", pad(&last_pull, LAST_PULL)), base),
        Span::styled(
            format!("{} ", pad_left(&row.imported.to_string(), NUMBER)),
            base,
        ),
        Span::styled(
            format!("{} ", pad_left(&row.refused.to_string(), NUMBER)),
            base,
        ),
        Span::styled(
            pad_left(&row.open_conflicts.to_string(), CONFLICTS),
            base.patch(conflicts_style),
        ),
    ])
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

fn severity_style(severity: ConflictSeverity) -> Style {
    match severity {
        ConflictSeverity::High => bad_style(),
        ConflictSeverity::Medium => warn_style(),
        ConflictSeverity::Low => Style::new(),
    }
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let market = &app.data.market;
    let name = market
        .detail_of
        .as_deref()
        .and_then(|id| market.marketplaces.iter().find(|row| row.id == id))
        .map_or("", |row| row.name.as_str());
    let block = titled(&format!(" \"{name}\" · last {MARKET_STATS_HOURS} h "), area);
    let inner = usize::from(area.width.saturating_sub(2));
    let stats = &market.stats;
    let average = stats
        .average_response_ms()
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0} ms"));
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!(
                " {} event{}: ",
                stats.total,
                if stats.total == 1 { "" } else { "s" }
            )),
            Span::styled(format!("✓ {} success", stats.success), ok_style()),
            Span::raw(" · "),
            Span::styled(format!("✗ {} failed", stats.failed), bad_style()),
            Span::raw(" · "),
            Span::styled(format!("⚠ {} conflict", stats.conflict), warn_style()),
            Span::raw(format!(" · {} retrying", stats.retrying)),
        ]),
        Line::raw(fit(
            &format!(
                " Average response {average} · orders in sync {} of {} imported",
                stats.orders_in_sync, stats.orders
            ),
            inner,
        )),
    ];
    let heading = if market.conflicts.is_empty() {
        " No open conflicts.".to_owned()
    } else {
        // Applying a side calls Odoo (or queues a push): that stays with the CLI.
        let command = if inner >= 100 {
            "odoo-bridge marketplace resolve ID --apply odoo|marketplace"
        } else {
            "odoo-bridge marketplace resolve"
        };
        format!(
            " Open conflicts ({}) · i ignores · to apply a side: {command}",
            market.conflicts.len()
        )
    };
    lines.push(Line::styled(fit(&heading, inner), bold()));
    let shown = usize::from(area.height.saturating_sub(5) / CONFLICT_LINES);
    let selected = app.market.conflict;
    let first = selected.saturating_sub(shown.saturating_sub(1));
    for (index, conflict) in market.conflicts.iter().enumerate().skip(first).take(shown) {
        let c = &conflict.conflict;
        let is_selected = index == selected;
        let base = if is_selected {
            selected_style()
        } else {
            Style::new()
        };
        let what = format!(
            " {} · order {} · seen {}",
            c.kind,
            c.hashed_id,
            ago(conflict.updated_at, app.now)
        );
        let head = format!("{}#{} ", if is_selected { "▶ " } else { "  " }, conflict.id);
        let severity = format!("{:<6}", c.severity.as_str());
        let used = width(&head) + width(&severity);
        lines.push(Line::from(vec![
            Span::styled(head, base),
            Span::styled(severity, base.patch(severity_style(c.severity))),
            Span::styled(pad(&what, inner.saturating_sub(used)), base),
        ]));
        let sides = format!(
            "    marketplace: {} · Odoo: {} (order {}, delivery {})",
            or_dash(c.marketplace_status.as_deref()),
            or_dash(c.odoo_status.as_deref()),
            or_dash(c.odoo_order_state.as_deref()),
            or_dash(c.odoo_delivery_state.as_deref()),
        );
        lines.push(Line::raw(fit(&sides, inner)));
        lines.push(Line::styled(
            fit(&format!("    → {}", c.recommended_action), inner),
            dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn outcome_style(outcome: LogOutcome) -> Style {
    match outcome {
        LogOutcome::Success => ok_style(),
        LogOutcome::Failed => bad_style(),
        LogOutcome::Conflict | LogOutcome::Retrying => warn_style(),
    }
}

const WHEN: usize = 10;
const DIRECTION: usize = 3;
/// The action and the status it carried; wider where there is room.
fn status_width(inner: usize) -> usize {
    if inner >= 110 { 32 } else { 21 }
}
const RESULT: usize = 8;
const TIME: usize = 7;

fn draw_log(frame: &mut Frame, area: Rect, app: &App) {
    let log = &app.data.market.log;
    let block = titled(" Sync log · newest first ", area);
    let inner = usize::from(area.width.saturating_sub(2));
    let status_w = status_width(inner);
    let fixed = 1 + WHEN + DIRECTION + status_w + RESULT + TIME + 6;
    let rest = inner.saturating_sub(fixed);
    let order_w = (rest / 3).clamp(8, 24).min(rest);
    let error_w = rest.saturating_sub(order_w + 1);
    let header = [
        String::new(),
        pad("WHEN", WHEN),
        pad("DIR", DIRECTION),
        pad("ORDER", order_w),
        pad("STATUS", status_w),
        pad("RESULT", RESULT),
        pad_left("TIME", TIME),
        pad("ERROR", error_w),
    ]
    .join(" ");
    let mut lines = vec![Line::styled(header, bold())];
    if log.is_empty() {
        lines.push(Line::styled(" No sync events yet.", dim()));
    }
    let visible = usize::from(area.height.saturating_sub(3));
    for row in log.iter().take(visible) {
        let e = &row.entry;
        let direction = match e.direction {
            engine::store::LogDirection::Inbound => "in",
            engine::store::LogDirection::Outbound => "out",
        };
        let status = format!("{} {}", e.action, or_dash(e.marketplace_status.as_deref()));
        let time = e
            .response_time_ms
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        let error = match (&e.error_code, &e.error_text) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code.clone(),
            (None, Some(text)) => text.clone(),
            (None, None) => String::new(),
        };
        lines.push(Line::from(vec![
            Span::raw(format!(" {} ", pad(&ago(e.at, app.now), WHEN))),
            Span::raw(format!("{} ", pad(direction, DIRECTION))),
            Span::raw(format!("{} ", pad(&e.hashed_id, order_w))),
            Span::raw(format!("{} ", pad(&status, status_w))),
            Span::styled(
                format!("{} ", pad(e.outcome.as_str(), RESULT)),
                outcome_style(e.outcome),
            ),
            Span::raw(format!("{} ", pad_left(&time, TIME))),
            Span::styled(pad(&error, error_w), bad_style()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
