//! What Odoo does to a value written to an HTML field (`fields.Html`, sanitized: `sale.order`'s
//! `note`, `crm.lead`'s `description` on Odoo 16+), closely enough that a client reading it
//! back sees what a real server returns: plain text becomes an escaped paragraph, and the
//! markup Odoo's sanitizer removes (comments, scripts, styles, frames, event handlers,
//! `javascript:` links) is removed. Markup Odoo keeps is kept as written, so clean HTML comes
//! back unchanged, as it does from Odoo.
//!
//! Checked against Odoo 18.0 (the answers are the unit tests below); not reproduced: lxml's
//! reshaping of unusual fragments (a lone `<div>` unwrapped, inline markup at the start put in
//! a `<span>`), and the decoding of named entities other than `&amp;`, `&lt;`, `&gt;`.

/// Elements removed with everything inside them (Odoo's sanitizer's `kill_tags` that have
/// content).
const KILLED: &[&str] = &[
    "script", "style", "iframe", "noscript", "object", "title", "head",
];

/// Tags removed, their content kept (void elements among `kill_tags`, and the document's
/// frame).
const DROPPED: &[&str] = &["base", "embed", "link", "meta", "frame", "html", "body"];

/// The value Odoo stores for `text` written to a sanitized HTML field.
pub fn sanitize(text: &str) -> String {
    if text.trim().is_empty() {
        return String::new();
    }
    if text.starts_with('<') {
        clean_markup(text)
    } else {
        // Text first: Odoo's parser wraps the fragment in a paragraph.
        format!("<p>{}</p>", clean_markup(text))
    }
}

/// Removes what the sanitizer removes and escapes text that is not markup.
fn clean_markup(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 8);
    let mut rest = html;
    while let Some(start) = rest.find(['<', '>', '&']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with('>') {
            out.push_str("&gt;");
            rest = &rest[1..];
        } else if rest.starts_with('&') {
            let entity = entity_len(rest);
            if entity > 0 {
                out.push_str(&rest[..entity]);
                rest = &rest[entity..];
            } else {
                out.push_str("&amp;");
                rest = &rest[1..];
            }
        } else if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if let Some((tag, used)) = Tag::parse(rest) {
            rest = &rest[used..];
            let name = tag.name.as_str();
            if KILLED.contains(&name) {
                if !tag.closing && !tag.self_closing {
                    rest = skip_element(rest, name);
                }
            } else if !DROPPED.contains(&name) {
                out.push_str(&tag.render());
            }
        } else {
            // A `<` that opens no tag is text.
            out.push_str("&lt;");
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The length of the character reference at the start of `text` (`&amp;`, `&#233;`,
/// `&#xE9;`), or 0 when it is a bare `&`.
fn entity_len(text: &str) -> usize {
    let body = &text[1..];
    let end = body
        .char_indices()
        .take(32)
        .find(|(_, c)| *c == ';')
        .map(|(index, _)| index);
    match end {
        Some(end) if end > 0 => {
            let name = &body[..end];
            let valid = match name.strip_prefix('#') {
                Some(number) => match number.strip_prefix(['x', 'X']) {
                    Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
                    None => !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
                },
                None => name.chars().all(|c| c.is_ascii_alphanumeric()),
            };
            if valid { end + 2 } else { 0 }
        }
        _ => 0,
    }
}

/// Skips past the end of the element `name` whose start tag was just read (or to the end of
/// the text when it is never closed, as a parser would).
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    let close = format!("</{name}");
    match lower.find(&close) {
        Some(at) => rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]),
        None => "",
    }
}

/// A start or end tag, its attributes as written.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    attributes: Vec<(String, Option<String>)>,
}

impl Tag {
    /// The tag at the start of `text` and the bytes it takes, or `None` when the `<` opens no
    /// tag (followed by neither a letter nor `/` and a letter).
    fn parse(text: &str) -> Option<(Tag, usize)> {
        let after = &text[1..];
        let (closing, after) = match after.strip_prefix('/') {
            Some(after) => (true, after),
            None => (false, after),
        };
        if !after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let end = text.find('>')?;
        let inner = &text[1..end];
        let inner = inner.strip_prefix('/').unwrap_or(inner);
        let self_closing = inner.ends_with('/');
        let inner = inner.strip_suffix('/').unwrap_or(inner);
        let name_len = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        let name = inner[..name_len].to_ascii_lowercase();
        let attributes = if closing {
            Vec::new()
        } else {
            attributes(&inner[name_len..])
        };
        Some((
            Tag {
                name,
                closing,
                self_closing,
                attributes,
            },
            end + 1,
        ))
    }

    /// The tag as Odoo writes it back: event handlers and `javascript:` URLs removed,
    /// attribute values in double quotes.
    fn render(&self) -> String {
        if self.closing {
            return format!("</{}>", self.name);
        }
        let mut out = format!("<{}", self.name);
        for (name, value) in &self.attributes {
            if name.starts_with("on") {
                continue;
            }
            let value = value.as_deref().unwrap_or("");
            let value = if matches!(name.as_str(), "href" | "src" | "action")
                && value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("javascript:")
            {
                ""
            } else {
                value
            };
            out.push_str(&format!(" {name}=\"{}\"", value.replace('"', "&quot;")));
        }
        if self.self_closing {
            out.push('/');
        }
        out.push('>');
        out
    }
}

/// `name="value" name='value' name=value name` pairs, names lowercased.
fn attributes(mut text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    loop {
        text = text.trim_start();
        if text.is_empty() {
            return found;
        }
        let name_len = text
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(text.len());
        let name = text[..name_len].to_ascii_lowercase();
        text = text[name_len..].trim_start();
        let Some(after) = text.strip_prefix('=') else {
            found.push((name, None));
            continue;
        };
        let after = after.trim_start();
        let (value, used) = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &after[1..];
                match body.find(quote) {
                    Some(end) => (&body[..end], end + 2),
                    None => (body, after.len()),
                }
            }
            _ => {
                let end = after
                    .find(|c: char| c.is_whitespace())
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        found.push((name, Some(value.to_owned())));
        text = &after[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    /// What Odoo 18.0 stored for each value written to `sale.order.note` (read back with
    /// `read`), on the test machine's server.
    #[test]
    fn values_are_stored_as_odoo_18_stores_them() {
        for (written, stored) in [
            ("plain & text", "<p>plain &amp; text</p>"),
            ("line1\nline2", "<p>line1\nline2</p>"),
            (
                "<p>a</p><script>alert(1)</script><b onclick='x'>b</b>",
                "<p>a</p><b>b</b>",
            ),
            ("", ""),
            ("  ", ""),
            ("<p><br></p>", "<p><br></p>"),
            ("a < b > c", "<p>a &lt; b &gt; c</p>"),
            ("hello <b>x</b>", "<p>hello <b>x</b></p>"),
            ("x &amp; y", "<p>x &amp; y</p>"),
            ("<p>a</p>\n<p>b</p>", "<p>a</p>\n<p>b</p>"),
            (
                "<p style='color:red' class='c' onclick='evil()'>s</p>",
                "<p style=\"color:red\" class=\"c\">s</p>",
            ),
            ("<style>p{}</style><p>t</p>", "<p>t</p>"),
            ("<!-- c --><p>u</p>", "<p>u</p>"),
            ("Tom & Jerry <3", "<p>Tom &amp; Jerry &lt;3</p>"),
            (
                "<p>Entregar después de las 18:00.<br>Tocar el timbre dos veces.</p>",
                "<p>Entregar después de las 18:00.<br>Tocar el timbre dos veces.</p>",
            ),
            ("<iframe src='x'></iframe><p>v</p>", "<p>v</p>"),
            ("<a href='javascript:alert(1)'>l</a>", "<a href=\"\">l</a>"),
            ("<p>a</p><p><br></p>", "<p>a</p><p><br></p>"),
        ] {
            assert_eq!(sanitize(written), stored, "{written:?}");
        }
    }

    #[test]
    fn what_odoo_stored_comes_back_unchanged() {
        for stored in [
            "<p>plain &amp; text</p>",
            "<p>a</p><b>b</b>",
            "<p style=\"color:red\" class=\"c\">s</p>",
            "<p>Caf&#233; &amp; t&eacute;</p>",
            "<p>Called twice.</p><p>Prefers e-mail; asks for <b>net 30</b>.</p>",
        ] {
            assert_eq!(sanitize(stored), stored);
            assert_eq!(sanitize(&sanitize(stored)), stored);
        }
    }
}
