//! The `clients`, `jobs` and `properties` connections: filters, `searchTerm`, forward paging
//! in `(updatedAt, id)` order with opaque cursors.

use base64::Engine as _;
use jiff::Timestamp;
use serde_json::Value;

use super::super::{ObjectStore, Record, parse_time, scalar_text};
use super::writes::ADDRESS_KEYS;

/// One page of a connection.
pub struct Page {
    pub items: Vec<Record>,
    pub has_next: bool,
    pub total: usize,
}

/// Which records a connection lists besides its filter: all, or one client's or property's.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    All,
    Field(&'a str, &'a str),
}

pub fn encode_cursor(record: &Record) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", record.updated_at.as_millisecond(), record.seq))
}

fn decode_cursor(cursor: &str) -> Option<(Timestamp, u64)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ms, seq) = text.split_once(':')?;
    Some((Timestamp::from_millisecond(ms.parse().ok()?).ok()?, seq.parse().ok()?))
}

/// An `Iso8601DateTimeRangeInput`: `after` (inclusive), `before` (exclusive), `eq` (same
/// second).
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    set: bool,
    after: Option<Timestamp>,
    before: Option<Timestamp>,
    eq: Option<Timestamp>,
}

impl Range {
    fn parse(range: &Value, name: &str) -> Result<Range, String> {
        if range.is_null() {
            return Ok(Range::default());
        }
        let bound = |key: &str| -> Result<Option<Timestamp>, String> {
            match &range[key] {
                Value::Null => Ok(None),
                Value::String(s) => parse_time(s)
                    .map(Some)
                    .ok_or_else(|| format!("{name}.{key} is not a valid ISO 8601 date and time: {s}")),
                other => Err(format!("{name}.{key} is not a valid ISO 8601 date and time: {other}")),
            }
        };
        Ok(Range {
            set: true,
            after: bound("after")?,
            before: bound("before")?,
            eq: bound("eq")?,
        })
    }

    fn contains(&self, at: Option<Timestamp>) -> bool {
        if !self.set {
            return true;
        }
        let Some(at) = at else { return false };
        self.after.is_none_or(|a| at >= a)
            && self.before.is_none_or(|b| at < b)
            && self.eq.is_none_or(|e| at.as_second() == e.as_second())
    }
}

fn text(record: &Record, key: &str) -> String {
    record.fields.get(key).and_then(scalar_text).unwrap_or_default()
}

fn time(record: &Record, key: &str) -> Option<Timestamp> {
    record.fields.get(key).and_then(Value::as_str).and_then(parse_time)
}

fn flag_matches(filter: &Value, key: &str, record: &Record) -> bool {
    filter[key]
        .as_bool()
        .is_none_or(|wanted| (record.fields.get(key) == Some(&Value::Bool(true))) == wanted)
}

/// Whether `record` of `object` passes `filter` and `term` (lowercased).
fn passes(object: &str, record: &Record, filter: &Value, term: Option<&str>) -> Result<bool, String> {
    let contains = |value: &str| term.is_none_or(|t| value.to_lowercase().contains(t));
    Ok(match object {
        "clients" => {
            let emails = record.fields.get("emails").and_then(Value::as_array);
            let term_ok = term.is_none()
                || contains(&format!("{} {}", text(record, "firstName"), text(record, "lastName")))
                || contains(&text(record, "companyName"))
                || emails
                    .into_iter()
                    .flatten()
                    .any(|e| e["address"].as_str().is_some_and(contains));
            term_ok
                && Range::parse(&filter["updatedAt"], "updatedAt")?.contains(Some(record.updated_at))
                && Range::parse(&filter["createdAt"], "createdAt")?.contains(Some(record.created_at))
                && flag_matches(filter, "isCompany", record)
                && flag_matches(filter, "isLead", record)
                && flag_matches(filter, "isArchived", record)
        }
        "jobs" => {
            let term_ok = term.is_none() || contains(&text(record, "title")) || contains(&text(record, "jobNumber"));
            let status_ok = filter["status"].as_str().is_none_or(|s| text(record, "jobStatus") == s);
            let type_ok = filter["jobType"].as_str().is_none_or(|t| text(record, "jobType") == t);
            term_ok
                && status_ok
                && type_ok
                && Range::parse(&filter["createdAt"], "createdAt")?.contains(Some(record.created_at))
                && Range::parse(&filter["startAt"], "startAt")?.contains(time(record, "startAt"))
                && Range::parse(&filter["endAt"], "endAt")?.contains(time(record, "endAt"))
                && Range::parse(&filter["completedAt"], "completedAt")?.contains(time(record, "completedAt"))
        }
        _ => {
            let term_ok = term.is_none() || ADDRESS_KEYS.iter().any(|k| contains(&text(record, k)));
            let client_ok = filter["clientId"]
                .as_str()
                .is_none_or(|c| record.fields.get("clientId").and_then(Value::as_str) == Some(c));
            term_ok && client_ok
        }
    })
}

/// A page of `object` from `store`: `args` are the connection's coerced arguments.
pub fn page(store: &ObjectStore, object: &str, args: &Value, scope: Scope<'_>) -> Result<Page, String> {
    if !args["last"].is_null() || !args["before"].is_null() {
        return Err("the sandbox pages forward only: use first and after".into());
    }
    let first = args["first"].as_i64().map_or(usize::MAX, |n| n.max(0) as usize);
    let after = match args["after"].as_str().filter(|a| !a.is_empty()) {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| format!("Invalid cursor: {cursor}"))?),
    };
    let term = args["searchTerm"]
        .as_str()
        .map(str::to_lowercase)
        .filter(|t| !t.is_empty());
    let filter = &args["filter"];
    // Clients filtered on `updatedAt` skip what is older through the modification index.
    let since = match object {
        "clients" => Range::parse(&filter["updatedAt"], "updatedAt")?.after,
        _ => None,
    };
    let mut matching = Vec::new();
    for record in store.modified_since(since) {
        let in_scope = match scope {
            Scope::All => true,
            Scope::Field(key, value) => record.fields.get(key).and_then(Value::as_str) == Some(value),
        };
        if in_scope && passes(object, record, filter, term.as_deref())? {
            matching.push(record);
        }
    }
    let start = after.map_or(0, |key| matching.partition_point(|r| r.key() <= key));
    let items: Vec<Record> = matching.iter().skip(start).take(first).map(|r| (*r).clone()).collect();
    Ok(Page {
        has_next: start + items.len() < matching.len(),
        total: matching.len(),
        items,
    })
}
