//! The Enrichment screen (issue 11): every enrichment job with its health score and its
//! records counted by where they stand, and for the selected job its records as `enrich
//! status` shows them — state, failure class, failures, health, packet — with the selected
//! record's last error. A disabled record is re-enabled from here (`r`, after a confirmation).

use super::text::{fit, pad, pad_left, wrap};
use super::{bad_style, bold, dim, ok_style, selected_style, warn_style};
use crate::app::App;
use crate::data::{EnrichmentJobRow, RecordFilter};
use engine::display::time_text;
use engine::enrich::health;
use engine::enrich::record::{EmissionState, RecordState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Lines under the records: the selected record's packet, and its last error on two.
const DETAIL_LINES: u16 = 3;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let enrichment = &app.data.enrichment;
    let rows = enrichment.jobs.len().max(1) as u16;
    // The list takes at most a third of the screen, its border and header included, and a
    // line for the selected job's settings: the records need the room.
    let list_height = (rows + 3).min((area.height / 3).max(4));
    let job_line = u16::from(enrichment.detail_of.is_some());
    let [list, job, records, detail] = Layout::vertical([
        Constraint::Length(list_height),
        Constraint::Length(job_line),
        Constraint::Min(3),
        Constraint::Length(if enrichment.detail_of.is_some() {
            DETAIL_LINES
        } else {
            0
        }),
    ])
    .areas(area);
    draw_jobs(frame, list, app);
    if let Some(row) = selected_job(app) {
        draw_job_line(frame, job, row);
        draw_records(frame, records, app, row);
        draw_detail(frame, detail, app);
    }
}

fn selected_job(app: &App) -> Option<&EnrichmentJobRow> {
    let enrichment = &app.data.enrichment;
    let id = enrichment.detail_of.as_deref()?;
    enrichment.jobs.iter().find(|job| job.id == id)
}

fn titled(title: &str, area: Rect) -> Block<'static> {
    Block::new().borders(Borders::ALL).title(Span::styled(
        fit(title, usize::from(area.width).saturating_sub(2)),
        bold(),
    ))
}

/// The first row to show so that `selected` is visible among `visible` rows.
fn first_row(selected: usize, visible: usize) -> usize {
    if visible == 0 || selected < visible {
        0
    } else {
        selected + 1 - visible
    }
}

fn row_style(selected: bool) -> Style {
    if selected {
        selected_style()
    } else {
        Style::new()
    }
}

fn health_text(score: f64) -> String {
    format!("{score:.2}")
}

/// Below full health in words' stead: yellow, and red at 0 (the number says it too).
fn health_style(score: f64) -> Style {
    if score <= 0.0 {
        bad_style()
    } else if score < 1.0 {
        warn_style()
    } else {
        Style::new()
    }
}

const VERSION: usize = 5;
const HEALTH: usize = 6;
const COUNT: usize = 7;
const DISABLED: usize = 8;
/// The endpoint gets a column of its own from this inner width on (the job's line below the
/// list always shows it).
const WIDE: usize = 110;

fn draw_jobs(frame: &mut Frame, area: Rect, app: &App) {
    let enrichment = &app.data.enrichment;
    let inner = usize::from(area.width.saturating_sub(2));
    let fixed = 2 + VERSION + HEALTH + 3 * COUNT + DISABLED + 6;
    let rest = inner.saturating_sub(fixed);
    let endpoint_w = if inner >= WIDE { rest * 2 / 5 } else { 0 };
    let rest = rest.saturating_sub(endpoint_w + usize::from(endpoint_w > 0));
    let name_w = (rest / 2).max(6);
    let model_w = rest.saturating_sub(name_w + 1);
    let block = titled(
        &format!(" Enrichment jobs ({}) ", enrichment.jobs.len()),
        area,
    );
    let mut header = vec![format!("  {}", pad("NAME", name_w)), pad("MODEL", model_w)];
    if endpoint_w > 0 {
        header.push(pad("ENDPOINT", endpoint_w));
    }
    header.extend([
        pad("VER", VERSION),
        pad_left("HEALTH", HEALTH),
        pad_left("APPLIED", COUNT),
        pad_left("PENDING", COUNT),
        pad_left("FAILING", COUNT),
        pad_left("DISABLED", DISABLED),
    ]);
    let mut lines = vec![Line::styled(header.join(" "), bold())];
    if !enrichment.loaded {
        lines.push(Line::styled("  Reading the enrichment jobs…", dim()));
    } else if enrichment.jobs.is_empty() {
        lines.push(Line::styled(
            fit(
                "  No enrichment jobs yet: see `odoo-bridge enrich run --help`.",
                inner,
            ),
            dim(),
        ));
    }
    let visible = usize::from(area.height.saturating_sub(3));
    let selected = enrichment
        .detail_of
        .as_deref()
        .and_then(|id| enrichment.jobs.iter().position(|job| job.id == id))
        .unwrap_or(0);
    let widths = (name_w, model_w, endpoint_w);
    for (index, job) in enrichment
        .jobs
        .iter()
        .enumerate()
        .skip(first_row(selected, visible))
        .take(visible)
    {
        lines.push(job_row(job, widths, index == selected));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn job_row(
    job: &EnrichmentJobRow,
    (name_w, model_w, endpoint_w): (usize, usize, usize),
    selected: bool,
) -> Line<'static> {
    let base = row_style(selected);
    let name = format!("{} {}", if job.is_active { "●" } else { "○" }, job.name);
    let mut spans = vec![
        Span::styled(if selected { "▶ " } else { "  " }, base),
        Span::styled(format!("{} ", pad(&name, name_w)), base),
    ];
    if job.settings_error.is_some() {
        spans.push(Span::styled(
            "✗ settings not readable",
            base.patch(bad_style()),
        ));
        return Line::from(spans);
    }
    spans.push(Span::styled(format!("{} ", pad(&job.model, model_w)), base));
    if endpoint_w > 0 {
        spans.push(Span::styled(
            format!("{} ", pad(&job.endpoint, endpoint_w)),
            base,
        ));
    }
    let count = |n: usize, w: usize, style: Style| {
        Span::styled(
            format!(" {}", pad_left(&n.to_string(), w)),
            if n > 0 { base.patch(style) } else { base },
        )
    };
    spans.extend([
        Span::styled(pad(&format!("v{}", job.packet_version), VERSION), base),
        Span::styled(
            format!(" {}", pad_left(&health_text(job.health), HEALTH)),
            base.patch(health_style(job.health)),
        ),
        count(job.applied, COUNT, Style::new()),
        count(job.pending, COUNT, Style::new()),
        count(job.failing, COUNT, warn_style()),
        count(job.disabled, DISABLED, bad_style()),
    ]);
    Line::from(spans)
}

/// The selected job's settings in one line: where its packets go and when a record stops.
fn draw_job_line(frame: &mut Frame, area: Rect, job: &EnrichmentJobRow) {
    let columns = usize::from(area.width);
    let text = match &job.settings_error {
        Some(error) => format!(" {}: {error}", job.name),
        // The name and the packet version are in the records' title.
        None => format!(
            " {}{} → {} · disabled after {} failures",
            if job.is_active {
                ""
            } else {
                "○ inactive (no longer in the config) · "
            },
            job.model,
            job.endpoint,
            job.max_failures,
        ),
    };
    let style = if job.settings_error.is_some() {
        bad_style()
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(Line::styled(fit(&text, columns), style)),
        area,
    );
}

const RECORD: usize = 10;
const STATE: usize = 11;
const FAILURE: usize = 15;
const FAILURES: usize = 5;
const PACKET: usize = 13;

/// The state in a word and a symbol: `✓ applied`, `⚠ pending` (after a failed attempt),
/// `· pending`, `✗ disabled`, `– discarded`.
fn state_text(record: &RecordState) -> (String, Style) {
    match record.state {
        EmissionState::Applied => ("✓ applied".into(), ok_style()),
        EmissionState::Pending if record.failures > 0 => ("⚠ pending".into(), warn_style()),
        EmissionState::Pending => ("· pending".into(), Style::new()),
        EmissionState::Disabled => ("✗ disabled".into(), bad_style()),
        EmissionState::Discarded => ("– discarded".into(), dim()),
    }
}

fn draw_records(frame: &mut Frame, area: Rect, app: &App, job: &EnrichmentJobRow) {
    let all = app.data.enrichment.records.len();
    let records = app.shown_records();
    let count = match app.enrich.filter {
        RecordFilter::All => format!("{all} record{}", if all == 1 { "" } else { "s" }),
        filter => format!("{}: {} of {all}", filter.label(), records.len()),
    };
    let block = titled(
        &format!(
            " Records of \"{}\" · packet v{} · {count} ",
            job.name, job.packet_version
        ),
        area,
    );
    let inner = usize::from(area.width.saturating_sub(2));
    let fixed = 2 + RECORD + STATE + FAILURE + FAILURES + HEALTH + PACKET + DISABLED + 7;
    // The last error gets a column where there is room; the line below shows it anyway.
    let error_w = if inner >= WIDE {
        inner.saturating_sub(fixed + 1)
    } else {
        0
    };
    let mut header = vec![
        format!("  {}", pad_left("RECORD", RECORD)),
        pad("STATE", STATE),
        pad("FAILURE", FAILURE),
        pad_left("FAILS", FAILURES),
        pad_left("HEALTH", HEALTH),
        pad("PACKET", PACKET),
        pad("DISABLED", DISABLED),
    ];
    if error_w > 0 {
        header.push(pad("LAST ERROR", error_w));
    }
    let mut lines = vec![Line::styled(header.join(" "), bold())];
    if job.settings_error.is_none() && records.is_empty() && all > 0 {
        lines.push(Line::styled(
            format!(
                "  No {} record: f shows the others.",
                app.enrich.filter.label()
            ),
            dim(),
        ));
    } else if job.settings_error.is_none() && all == 0 {
        lines.push(Line::styled(
            fit(
                &format!(
                    "  No record emitted at packet v{} yet: the next pass emits the matching records.",
                    job.packet_version
                ),
                inner,
            ),
            dim(),
        ));
    }
    let visible = usize::from(area.height.saturating_sub(3));
    let selected = app.selected_record_index();
    for (index, record) in records
        .iter()
        .enumerate()
        .skip(first_row(selected.unwrap_or(0), visible))
        .take(visible)
    {
        lines.push(record_row(record, selected == Some(index), error_w));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn record_row(record: &RecordState, selected: bool, error_w: usize) -> Line<'static> {
    let base = row_style(selected);
    let (state, state_style) = state_text(record);
    let score = health::record_score(record);
    let class = record
        .failure_class
        .map_or_else(|| "-".to_owned(), |class| class.to_string());
    let mut spans = vec![
        Span::styled(if selected { "▶ " } else { "  " }, base),
        Span::styled(
            format!("{} ", pad_left(&record.record_id.to_string(), RECORD)),
            base,
        ),
        Span::styled(format!("{} ", pad(&state, STATE)), base.patch(state_style)),
        Span::styled(format!("{} ", pad(&class, FAILURE)), base),
        Span::styled(
            format!("{} ", pad_left(&record.failures.to_string(), FAILURES)),
            base,
        ),
        Span::styled(
            format!("{} ", pad_left(&health_text(score), HEALTH)),
            base.patch(health_style(score)),
        ),
        Span::styled(format!("{} ", pad(&record.packet_id, PACKET)), base),
        Span::styled(
            pad(if record.disabled() { "yes" } else { "no" }, DISABLED),
            base,
        ),
    ];
    if error_w > 0 {
        spans.push(Span::styled(
            format!(
                " {}",
                pad(record.last_error.as_deref().unwrap_or(""), error_w)
            ),
            base,
        ));
    }
    Line::from(spans)
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let columns = usize::from(area.width).saturating_sub(2);
    let mut lines = Vec::new();
    match app.selected_record() {
        Some(record) => {
            let replays = match record.replays {
                0 => String::new(),
                1 => " · 1 replay".to_owned(),
                n => format!(" · {n} replays"),
            };
            let head = format!(
                " Record {} · packet {} · hash {} · emitted {}{replays}",
                record.record_id,
                record.packet_id,
                record.payload_hash.chars().take(12).collect::<String>(),
                time_text(record.emitted_at)
            );
            lines.push(Line::raw(fit(&head, columns + 1)));
            let class = record.failure_class.map_or("error", |c| c.as_str());
            let failures = match record.failures {
                1 => "1 failure".to_owned(),
                n => format!("{n} failures"),
            };
            let error = record.last_error.as_deref().unwrap_or("");
            let problem = match record.state {
                EmissionState::Disabled => Some((
                    format!("✗ {class}, disabled after {failures} (r re-enables it): {error}"),
                    bad_style(),
                )),
                EmissionState::Pending if record.failures > 0 => Some((
                    format!("⚠ {class}, {failures} so far, retried: {error}"),
                    warn_style(),
                )),
                _ => None,
            };
            if let Some((text, style)) = problem {
                for part in wrap(&text, columns).into_iter().take(2) {
                    lines.push(Line::styled(format!(" {part}"), style));
                }
            }
        }
        None => lines.push(Line::styled(
            " Tab moves to the next job, f filters the records; r re-enables a disabled one.",
            dim(),
        )),
    }
    frame.render_widget(Paragraph::new(lines), area);
}
