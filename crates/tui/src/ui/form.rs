//! The connection form: a line per field, each error under its field, the test results
//! below. The API key is never drawn: bullets while typing, `••••1234` for a stored one.

use super::text::{fit, pad, width, window, wrap};
use super::{bad_style, bold, dim, ok_style, selected_style};
use crate::app::App;
use crate::form::{Field, FormMode, FormState, TestState};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

const LABEL: usize = 16;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, form: &FormState) {
    let title = match &form.mode {
        FormMode::Create => " New connection ".to_owned(),
        FormMode::Edit { .. } => format!(
            " Edit connection \"{}\" ",
            fit(&form.draft.name, usize::from(area.width).saturating_sub(24))
        ),
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, bold()));
    let inner = block.inner(area);
    let columns = usize::from(inner.width);
    let input_w = columns.saturating_sub(LABEL + 4).max(4);

    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut focus_line = 0;
    let mut cursor: Option<(usize, usize)> = None;
    for (index, field) in Field::ALL.iter().copied().enumerate() {
        let focused = index == form.focus;
        if focused {
            focus_line = lines.len();
        }
        let marker = if focused { "▶ " } else { "  " };
        let label_style = if focused { bold() } else { Style::new() };
        let mut spans = vec![
            Span::styled(marker, label_style),
            Span::styled(pad(&format!("{}:", field.label()), LABEL), label_style),
            Span::raw(" "),
        ];
        let (shown, cursor_col, style) = field_text(form, field, focused, input_w);
        if focused && field != Field::Active {
            cursor = Some((lines.len(), LABEL + 3 + cursor_col));
        }
        spans.push(Span::styled(
            shown,
            if focused {
                style.patch(selected_style())
            } else {
                style
            },
        ));
        lines.push(Line::from(spans));
        if let Some(error) = form.error_of(field) {
            for (i, part) in wrap(&error.message, columns.saturating_sub(LABEL + 5))
                .into_iter()
                .enumerate()
            {
                let mark = if i == 0 { "✗ " } else { "  " };
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(LABEL + 3)),
                    Span::styled(format!("{mark}{part}"), bad_style()),
                ]));
            }
        }
    }
    lines.push(Line::raw(""));
    match &form.test {
        TestState::None => {}
        TestState::Running => lines.push(Line::styled(
            "  Testing: Odoo login and a signed ping to the webhook…",
            dim(),
        )),
        TestState::Invalid => lines.push(Line::styled(
            "  ✗ Not tested: fix the fields marked above first.",
            bad_style(),
        )),
        TestState::Done(summary) => {
            for (label, check) in [("Odoo", &summary.odoo), ("Webhook", &summary.webhook)] {
                let (word, style) = if check.ok {
                    ("✓ ok    ", ok_style())
                } else {
                    ("✗ FAILED", bad_style())
                };
                let text_w = columns.saturating_sub(2 + 8 + 9);
                let mut first = true;
                for part in wrap(&check.text, text_w.max(10)) {
                    if first {
                        lines.push(Line::from(vec![
                            Span::raw(format!("  {} ", pad(label, 7))),
                            Span::styled(format!("{word} "), style),
                            Span::raw(part),
                        ]));
                        first = false;
                    } else {
                        lines.push(Line::raw(format!("{}{part}", " ".repeat(19))));
                    }
                }
            }
        }
    }
    if form.saving {
        lines.push(Line::styled("  Saving…", dim()));
    }
    if let Some(problem) = &form.problem {
        for part in wrap(problem, columns.saturating_sub(4)) {
            lines.push(Line::styled(format!("  {part}"), bad_style()));
        }
    }
    if form.is_edit() {
        lines.push(Line::styled(
            "  Saving keeps the connection's cursor and its queue.",
            dim(),
        ));
    }

    // Scroll so that the focused field (and its error) stays in view.
    let height = usize::from(inner.height);
    let offset = (focus_line + 2).saturating_sub(height);
    let total = lines.len();
    let visible: Vec<Line<'static>> = lines.into_iter().skip(offset).take(height).collect();
    let mut block = block;
    if offset > 0 {
        block = block.title_bottom(Span::raw(" ↑ more above "));
    }
    if offset + height < total {
        block = block.title_bottom(Span::raw(" ↓ more below "));
    }
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(visible), inner);
    if let Some((line, column)) = cursor
        && line >= offset
        && line - offset < height
        && column < columns
        && matches!(app.screen(), crate::app::Screen::Form(_))
    {
        frame.set_cursor_position(Position {
            x: inner.x + column as u16,
            y: inner.y + (line - offset) as u16,
        });
    }
}

/// What a field shows: its text (masked where secret), the cursor's column, a style.
fn field_text(
    form: &FormState,
    field: Field,
    focused: bool,
    input_w: usize,
) -> (String, usize, Style) {
    if field == Field::Active {
        let text = if form.draft.is_active {
            "[x] active (polled)"
        } else {
            "[ ] paused (not polled)"
        };
        return (text.to_owned(), 0, Style::new());
    }
    let cursor = if focused { form.cursor } else { 0 };
    if let FormMode::Edit {
        stored_key,
        stored_secret,
        ..
    } = &form.mode
    {
        if field == Field::OdooApiKey && form.draft.odoo_api_key.is_empty() {
            let hint = format!("{stored_key} kept (type a new key to rotate it)");
            return (fit(&hint, input_w), 0, dim());
        }
        if field == Field::WebhookSecret && !form.secret_replaced {
            let hint = format!("{stored_secret} (type to replace, Ctrl-G new)");
            return (fit(&hint, input_w), 0, dim());
        }
    }
    let value = form
        .masked_text(field)
        .unwrap_or_else(|| form.value(field).to_owned());
    if focused {
        let (shown, column) = window(&value, cursor, input_w);
        // A full-width input, so that the reversed field shows where typing goes.
        let padded = format!(
            "{shown}{}",
            " ".repeat(input_w.saturating_sub(width(&shown)))
        );
        (padded, column, Style::new())
    } else {
        (fit(&value, input_w), 0, Style::new())
    }
}
