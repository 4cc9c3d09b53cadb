//! Printing results: one JSON document with `-o json`, an aligned table otherwise. Table cells
//! are made safe for a terminal: control characters and bidirectional overrides are shown
//! escaped, and long values are cut (the JSON output keeps them whole).

use serde_json::Value;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints `value` as JSON, or as a table of `columns` (one row per array item, or a
/// key/value listing for a single object).
pub fn print(format: Format, value: &Value, columns: &[&str]) {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Table => match value {
            Value::Array(rows) => print_rows(rows, columns),
            Value::Object(map) => {
                let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
                for (key, field) in map {
                    println!("{}  {}", pad(key, width), cell(field));
                }
            }
            other => println!("{}", cell(other)),
        },
    }
}

fn print_rows(rows: &[Value], columns: &[&str]) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(lookup(row, c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(heading(c).len())
        })
        .collect();
    let header: Vec<String> = columns.iter().zip(&widths).map(|(c, w)| pad(&heading(c), *w)).collect();
    println!("{}", header.join("  ").trim_end());
    for row in cells {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// A column's heading: its JSON path in capitals, words joined by dashes
/// (`tokenExpiresAt` → `TOKEN-EXPIRES-AT`, `stats.created` → `CREATED`).
fn heading(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    let mut heading = String::with_capacity(last.len() + 4);
    for (index, c) in last.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            heading.push('-');
        }
        heading.push(c.to_ascii_uppercase());
    }
    heading
}

/// `a.b` looks up nested fields.
fn lookup<'v>(value: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(value, |v, key| v.get(key).unwrap_or(&Value::Null))
}

/// The longest cell a table shows.
const MAX_CELL: usize = 120;

/// `text` followed by spaces up to `width` characters (no width limit, unlike `format!`).
fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_owned();
    padded.extend(std::iter::repeat_n(' ', width.saturating_sub(text.chars().count())));
    padded
}

fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    };
    printable(&text)
}

/// `text` safe for a terminal and at most [`MAX_CELL`] characters.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CELL {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_safe_for_a_terminal() {
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        let long = "e".repeat(70_000);
        assert_eq!(printable(&long).chars().count(), MAX_CELL + 1);
        assert_eq!(pad("ab", 70_000).len(), 70_000);
    }
}
