//! Conversions from Odoo's values to the payload's: money to cents, quantities, dates and
//! HTML notes. All pure, all total: a value that cannot be converted is `None`, never a panic.

use jiff::Timestamp;

/// The largest integer a JSON number carries exactly to every receiver (JavaScript's
/// `Number.MAX_SAFE_INTEGER`, 2^53 − 1). Cents beyond it are refused rather than sent wrong.
pub const MAX_SAFE_CENTS: i64 = 9_007_199_254_740_991;

/// An amount of money (`price_unit`, `amount_total`) in integer cents, **rounded to the
/// nearest cent, halves away from zero**, or `None` for a non-finite amount or one beyond
/// ±[`MAX_SAFE_CENTS`].
///
/// # Why not `int(x * 100)` or `(x * 100.0).round()`
/// The product of a binary float by 100 is rarely the decimal value Odoo shows: `4.35 * 100`
/// is `434.99999999999994` and `0.29 * 100` is `28.999999999999996`, so the seed's
/// `int(price_unit * 100)`, which truncates, sends 434 and 28 cents for prices shown as 4.35
/// and 0.29. `(x * 100.0).round()` repairs those but still rounds the *binary* value, which
/// for a half cent often lies just below the half: `1.005 * 100` is `100.49999999999999`
/// (→ 100), `0.285 * 100` is `28.499999999999996` (→ 28), where Odoo itself, whose
/// `float_round` nudges halves by an epsilon before rounding half-up, shows 1.01 and 0.29
/// (prices with three decimals exist when the "Product Price" precision is raised).
///
/// So the rounding is done on the amount's shortest decimal representation, the one Odoo
/// sent in its JSON and shows its users (Rust's `Display` for `f64` prints exactly that, never
/// in exponent form): `"1.005"` → 100 cents + 0 + the third decimal 5 rounds up → 101.
/// This is exact for every value: no floating-point arithmetic is involved.
pub fn to_cents(amount: f64) -> Option<i64> {
    if !amount.is_finite() {
        return None;
    }
    let text = amount.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More than 16 digits of whole units is beyond MAX_SAFE_CENTS anyway (and beyond i128
    // for amounts like 1e300): refuse before parsing.
    if whole.len() > 16 {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let digit = |index: usize| -> Option<i128> {
        match fraction.as_bytes().get(index) {
            None => Some(0),
            Some(byte) if byte.is_ascii_digit() => Some(i128::from(byte - b'0')),
            Some(_) => None,
        }
    };
    let mut cents = whole * 100 + digit(0)? * 10 + digit(1)?;
    if digit(2)? >= 5 {
        cents += 1;
    }
    if amount.is_sign_negative() {
        cents = -cents;
    }
    let cents = i64::try_from(cents).ok()?;
    (cents.abs() <= MAX_SAFE_CENTS).then_some(cents)
}

/// Odoo's datetime as the payload writes it: ISO 8601 in UTC with `Z`, whole seconds
/// (`2025-01-15T10:30:00Z`). Odoo's `"2025-01-15 10:30:00"` is already UTC.
pub fn iso_utc(timestamp: Timestamp) -> String {
    timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Plain text from an HTML fragment as Odoo's `Html` fields hold it (`<p>Leave at the
/// door</p><p>Ring twice</p>`): tags removed, paragraph and line breaks kept as newlines,
/// entities decoded, runs of blank lines collapsed, surrounding whitespace trimmed.
///
/// Not a general HTML parser: Odoo sanitizes these fields on write, so what arrives is simple
/// markup. Comments, `<script>` and `<style>` contents are dropped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(['<', '&']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if rest.starts_with('<') {
            let opens_tag = rest[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
            let end = rest.find('>').filter(|_| opens_tag);
            let Some(end) = end else {
                // A lone `<` (text, not a tag): keep it.
                out.push('<');
                rest = &rest[1..];
                continue;
            };
            let tag = rest[1..end].trim().to_ascii_lowercase();
            rest = &rest[end + 1..];
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !tag.starts_with('/') && matches!(name.as_str(), "script" | "style") {
                let close = format!("</{name}");
                rest = match rest.to_ascii_lowercase().find(&close) {
                    Some(at) => rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]),
                    None => "",
                };
                continue;
            }
            let block = matches!(
                name.as_str(),
                "p" | "div"
                    | "li"
                    | "ul"
                    | "ol"
                    | "tr"
                    | "table"
                    | "blockquote"
                    | "pre"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "hr"
            );
            if name == "br" {
                out.push('\n');
            } else if block {
                // A paragraph starts on a new line; an empty one (`<p><br></p>`) adds its `<br>`.
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
            } else if matches!(name.as_str(), "td" | "th") && tag.starts_with('/') {
                out.push(' ');
            }
        } else {
            let (decoded, used) = decode_entity(rest);
            out.push_str(&decoded);
            rest = &rest[used..];
        }
    }
    out.push_str(rest);
    tidy_lines(&out)
}

/// Decodes the entity at the start of `text` (which starts with `&`); returns the text and
/// how many bytes it used. An unknown or malformed entity is kept as written.
fn decode_entity(text: &str) -> (String, usize) {
    let end = text
        .char_indices()
        .take(12)
        .find(|(_, c)| *c == ';')
        .map(|(index, _)| index);
    let Some(end) = end else {
        return ("&".into(), 1);
    };
    let name = &text[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => name.strip_prefix('#').and_then(|number| {
            let value = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(value).map(|c| if c == '\u{a0}' { ' ' } else { c })
        }),
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".into(), 1),
    }
}

/// Trims every line's trailing spaces, collapses runs of blank lines into one, trims the whole.
fn tidy_lines(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut blank = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank = !lines.is_empty();
            continue;
        }
        if blank {
            lines.push("");
            blank = false;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_to_the_nearest_cent_half_away_from_zero() {
        for (amount, cents) in [
            (29.95, 2995),
            (0.29, 29),
            (0.145, 15),
            (0.285, 29),
            (1.015, 102),
            (1.005, 101),
            (4.35, 435),
            (2.675, 268),
            (1e7 + 0.01, 1_000_000_001),
            (0.0, 0),
            (-0.0, 0),
            (0.5, 50),
            (9.99, 999),
            (19.99, 1999),
            (1.15, 115),
            (0.004, 0),
            (0.005, 1),
            (-0.005, -1),
            (-29.95, -2995),
            (123_456.789, 12_345_679),
            (1e-7, 0),
            (59_900.0, 5_990_000),
        ] {
            assert_eq!(to_cents(amount), Some(cents), "{amount}");
        }
    }

    #[test]
    fn cents_refuse_what_cannot_be_sent_exactly() {
        assert_eq!(to_cents(f64::NAN), None);
        assert_eq!(to_cents(f64::INFINITY), None);
        assert_eq!(to_cents(1e300), None);
        assert_eq!(to_cents(1e14), None);
        assert_eq!(to_cents(90_071_992_547_409.9), Some(9_007_199_254_740_990));
        assert_eq!(
            to_cents(-90_071_992_547_409.9),
            Some(-9_007_199_254_740_990)
        );
    }

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            html_to_text("<p>Leave at the door</p><p>Ring <b>twice</b> &amp; wait</p>"),
            "Leave at the door\nRing twice & wait"
        );
        assert_eq!(html_to_text("<p><br></p>"), "");
        assert_eq!(
            html_to_text("a<br/>b&nbsp;c &#233; &#xE9; &lt;3"),
            "a\nb c é é <3"
        );
        assert_eq!(
            html_to_text("<p>x</p><p><br></p><p><br></p><p>y</p>"),
            "x\n\ny"
        );
        assert_eq!(
            html_to_text("1 < 2 &unknown; & <!-- hidden -->ok"),
            "1 < 2 &unknown; & ok"
        );
        assert_eq!(html_to_text("<style>p{}</style>visible"), "visible");
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two</li></ul>"),
            "one\ntwo"
        );
    }

    #[test]
    fn dates_are_iso_utc_with_z() {
        let timestamp = odoo_rpc::value::parse_datetime("2025-01-15 10:30:00");
        assert_eq!(
            timestamp.map(iso_utc).as_deref(),
            Some("2025-01-15T10:30:00Z")
        );
    }
}
