//! Text cut and padded by display width (East Asian wide characters take two columns,
//! combining marks none), so that columns line up whatever the names are made of.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` on one line (control characters become spaces), cut to at most `max` columns
/// with `…` when cut.
pub fn fit(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width(&line) <= max {
        return line;
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in line.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// [`fit`], then padded with spaces to exactly `columns`.
pub fn pad(text: &str, columns: usize) -> String {
    let mut out = fit(text, columns);
    let used = width(&out);
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(used)));
    out
}

/// [`fit`], right-aligned in `columns`.
pub fn pad_left(text: &str, columns: usize) -> String {
    let cut = fit(text, columns);
    let mut out: String = std::iter::repeat_n(' ', columns.saturating_sub(width(&cut))).collect();
    out.push_str(&cut);
    out
}

/// The end of `text` that fits in `columns` with the character at `cursor` (in characters)
/// visible: what an input field shows. Returns the visible text and the cursor's column in it.
pub fn window(text: &str, cursor: usize, columns: usize) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    let cursor = cursor.min(chars.len());
    let columns = columns.max(1);
    // Start as far left as possible while the cursor (and one cell for it) still fits.
    let mut start = 0;
    loop {
        let used: usize = chars[start..cursor]
            .iter()
            .map(|c| c.width().unwrap_or(0))
            .sum();
        if used < columns || start >= cursor {
            break;
        }
        start += 1;
    }
    let mut shown = String::new();
    let mut used = 0;
    let mut cursor_col = 0;
    for (i, c) in chars.iter().enumerate().skip(start) {
        if i == cursor {
            cursor_col = used;
        }
        let w = c.width().unwrap_or(0);
        if used + w > columns {
            break;
        }
        shown.push(*c);
        used += w;
    }
    if cursor >= chars.len() {
        cursor_col = used;
    }
    (shown, cursor_col.min(columns.saturating_sub(1)))
}

/// `text` wrapped on spaces into lines of at most `columns` (a word longer than a line is cut).
pub fn wrap(text: &str, columns: usize) -> Vec<String> {
    let columns = columns.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word = fit(word, columns);
        let needed = if line.is_empty() {
            width(&word)
        } else {
            width(&line) + 1 + width(&word)
        };
        if needed > columns && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_by_display_width() {
        assert_eq!(fit("Le Juste Odoo", 20), "Le Juste Odoo");
        assert_eq!(fit("Le Juste Odoo", 8), "Le Just…");
        assert_eq!(width(&fit("東京ストア株式会社", 9)), 9);
        assert_eq!(fit("東京ストア株式会社", 9), "東京スト…");
        assert_eq!(width(&fit("東京ストア株式会社", 8)), 7);
        assert_eq!(pad("Ñuñoa", 7), "Ñuñoa  ");
        assert_eq!(pad_left("12", 4), "  12");
        assert_eq!(fit("a\tb", 5), "a b");
    }

    #[test]
    fn input_window_follows_the_cursor() {
        assert_eq!(window("abcdef", 6, 4), ("def".to_owned(), 3));
        assert_eq!(window("abcdef", 0, 4), ("abcd".to_owned(), 0));
        assert_eq!(window("", 0, 4), (String::new(), 0));
        assert_eq!(window("日本語テキスト", 7, 6), ("スト".to_owned(), 4));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("", 7), [""]);
    }
}
