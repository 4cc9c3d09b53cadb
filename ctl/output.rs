//! Printing results: one JSON document with `-o json`, an aligned table otherwise.

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
                let width = map.keys().map(String::len).max().unwrap_or(0);
                for (key, field) in map {
                    println!("{key:<width$}  {}", cell(field));
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
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!("{:<w$}", heading(c)))
        .collect();
    println!("{}", header.join("  ").trim_end());
    for row in cells {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
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

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
