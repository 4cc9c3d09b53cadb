//! Pipedrive under `<sandbox>/pipedrive`: the v1 field catalogs (`personFields`,
//! `organizationFields`, `dealFields`) and the v2 record API for persons, organizations and
//! deals — cursor-paged lists with `updated_since`/`updated_until` and sorting, get, search,
//! create (`POST`), update (`PATCH`), delete — in the `{"success", "data", "additional_data"}`
//! envelope, with the burst limit's `429` and `x-ratelimit-*` headers.

use std::collections::HashMap;

use base64::Engine as _;
use http::Method;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::limits::{Refusal, Usage, ceil_secs};
use super::{Call, ProviderRecords, Record, int_value, iso_s, number_value, parse_time, scalar_text, valid_email};
use crate::sandbox::request::{Reply, json_reply};

/// Largest v2 page.
pub const MAX_LIMIT: usize = 500;
/// Default v2 page.
pub const DEFAULT_LIMIT: usize = 100;
/// Pipedrive's pointer to its docs on every error.
const ERROR_INFO: &str = "Please check developers.pipedrive.com for more information about Pipedrive API.";

/// A field of a v1 catalog: key, name, field type, mandatory, editable.
type FieldDef = (&'static str, &'static str, &'static str, bool, bool);

const PERSON_FIELDS: &[FieldDef] = &[
    ("id", "ID", "int", false, false),
    ("name", "Name", "varchar", true, true),
    ("first_name", "First name", "varchar", false, true),
    ("last_name", "Last name", "varchar", false, true),
    ("email", "Email", "varchar", false, true),
    ("phone", "Phone", "phone", false, true),
    ("org_id", "Organization", "org", false, true),
    ("owner_id", "Owner", "user", false, true),
    ("job_title", "Job title", "varchar", false, true),
    ("postal_address", "Postal address", "address", false, true),
    ("add_time", "Person created", "date", false, false),
    ("update_time", "Update time", "date", false, false),
];

const ORGANIZATION_FIELDS: &[FieldDef] = &[
    ("id", "ID", "int", false, false),
    ("name", "Name", "varchar", true, true),
    ("address", "Address", "address", false, true),
    ("owner_id", "Owner", "user", false, true),
    ("add_time", "Organization created", "date", false, false),
    ("update_time", "Update time", "date", false, false),
];

const DEAL_FIELDS: &[FieldDef] = &[
    ("id", "ID", "int", false, false),
    ("title", "Title", "varchar", true, true),
    ("value", "Value", "monetary", false, true),
    ("currency", "Currency", "varchar", false, true),
    ("status", "Status", "status", false, true),
    ("stage_id", "Stage", "stage", false, true),
    ("person_id", "Contact person", "people", false, true),
    ("org_id", "Organization", "org", false, true),
    ("expected_close_date", "Expected close date", "date", false, true),
    ("add_time", "Deal created", "date", false, false),
    ("update_time", "Update time", "date", false, false),
];

fn envelope(data: Value, additional: Value) -> Reply {
    json_reply(
        200,
        json!({ "success": true, "data": data, "additional_data": additional }),
    )
}

/// Pipedrive's error envelope.
fn error(status: u16, message: impl Into<String>) -> Reply {
    json_reply(
        status,
        json!({ "success": false, "error": message.into(), "error_info": ERROR_INFO, "data": null, "additional_data": null }),
    )
}

fn not_found(object: &str) -> Reply {
    let what = match object {
        "persons" => "Person",
        "organizations" => "Organization",
        _ => "Deal",
    };
    error(404, format!("{what} not found"))
}

/// Pipedrive's answer over the burst limit.
pub fn rate_limited(refusal: Refusal) -> Reply {
    let seconds = refusal.retry_after_secs().to_string();
    json_reply(
        429,
        json!({ "success": false, "error": "Rate limit exceeded", "errorCode": 429, "error_info": ERROR_INFO }),
    )
    .with_header("Retry-After", seconds.clone())
    .with_header("x-ratelimit-limit", refusal.max.to_string())
    .with_header("x-ratelimit-remaining", "0")
    .with_header("x-ratelimit-reset", seconds)
}

fn with_limit_headers(reply: Reply, usage: Usage) -> Reply {
    reply
        .with_header("x-ratelimit-limit", usage.max.to_string())
        .with_header("x-ratelimit-remaining", usage.remaining.to_string())
        .with_header("x-ratelimit-reset", ceil_secs(usage.reset_ms).to_string())
}

/// Pipedrive's answer once the company's daily token budget is spent: the budget starts
/// afresh at midnight.
fn budget_spent(until_midnight_ms: i64) -> Reply {
    json_reply(
        429,
        json!({ "success": false, "error": "Daily rate limit exceeded", "errorCode": 429, "error_info": ERROR_INFO }),
    )
    .with_header("Retry-After", ceil_secs(until_midnight_ms).to_string())
}

/// What a request costs from the daily token budget: v2 reads of one record 1, lists 10,
/// searches 20, writes 5, deletes 3; v1 field lists 20.
fn token_cost(method: &Method, path: &str) -> u64 {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, [_, "v1", ..]) => 20,
        (&Method::GET, [_, "v2", _, "search"]) => 20,
        (&Method::GET, [_, "v2", _, _]) => 1,
        (&Method::GET, _) => 10,
        (&Method::DELETE, _) => 3,
        _ => 5,
    }
}

/// Answers one Pipedrive request.
pub fn handle(records: &mut ProviderRecords, call: &Call<'_>) -> Reply {
    let usage = match records.limit.admit(call.now_ms) {
        Ok(usage) => usage,
        Err(refusal) => {
            records.rate_limited += 1;
            return rate_limited(refusal);
        }
    };
    if let Err(until_midnight_ms) = records
        .tokens
        .charge(token_cost(&call.request.method, call.path), call.now_ms)
    {
        records.rate_limited += 1;
        return budget_spent(until_midnight_ms);
    }
    let reply = route(records, call);
    if records.limit.enabled {
        with_limit_headers(reply, usage)
    } else {
        reply
    }
}

fn object_name(raw: &str) -> Option<&'static str> {
    match raw {
        "persons" => Some("persons"),
        "organizations" => Some("organizations"),
        "deals" => Some("deals"),
        _ => None,
    }
}

fn route(records: &mut ProviderRecords, call: &Call<'_>) -> Reply {
    let request = call.request;
    let segments: Vec<&str> = call
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let body = || serde_json::from_slice::<Value>(&request.body);
    match (&request.method, segments.as_slice()) {
        (&Method::GET, ["api", "v1", catalog] | ["v1", catalog]) => fields(catalog),
        (&Method::GET, ["api", "v2", catalog]) if catalog.ends_with("Fields") => v2_fields(catalog, &request.query),
        (method, ["api", "v2", object, rest @ ..]) => {
            let Some(object) = object_name(object) else {
                return error(404, format!("Unknown method {method} {}", call.path));
            };
            match (method, rest) {
                (&Method::GET, []) => list(records, object, &request.query),
                (&Method::GET, ["search"]) => search(records, object, &request.query),
                (&Method::POST, []) => match body() {
                    Ok(Value::Object(input)) => create(records, object, &input, call.account),
                    Ok(_) => error(400, "Validation failed: body must be an object"),
                    Err(e) => error(400, format!("Invalid JSON: {e}")),
                },
                (method, [id]) => {
                    let Some(id) = id.parse::<u64>().ok().filter(|id| *id > 0) else {
                        return error(
                            400,
                            format!("Validation failed: id: must be a positive integer, got {id}"),
                        );
                    };
                    let id = id.to_string();
                    match *method {
                        Method::GET => match records.store_ref(object).and_then(|s| s.get(&id)) {
                            Some(record) => envelope(render(records, object, record), Value::Null),
                            None => not_found(object),
                        },
                        Method::PATCH => match body() {
                            Ok(Value::Object(input)) => update(records, object, &id, &input),
                            Ok(_) => error(400, "Validation failed: body must be an object"),
                            Err(e) => error(400, format!("Invalid JSON: {e}")),
                        },
                        Method::DELETE => match records.delete(object, &id) {
                            Some(record) => envelope(json!({ "id": record.seq }), Value::Null),
                            None => not_found(object),
                        },
                        _ => error(405, "Method not allowed"),
                    }
                }
                _ => error(404, format!("Unknown method {method} {}", call.path)),
            }
        }
        (method, _) => error(404, format!("Unknown method {method} {}", call.path)),
    }
}

fn fields(catalog: &str) -> Reply {
    let defs = match catalog {
        "personFields" => PERSON_FIELDS,
        "organizationFields" => ORGANIZATION_FIELDS,
        "dealFields" => DEAL_FIELDS,
        other => return error(404, format!("Unknown method GET /api/v1/{other}")),
    };
    let data: Vec<Value> = defs
        .iter()
        .enumerate()
        .map(|(i, (key, name, field_type, mandatory, edit))| {
            let mut field = json!({
                "id": 9_000 + i, "key": key, "name": name, "order_nr": i, "field_type": field_type,
                "add_time": "2024-01-01 00:00:00", "update_time": "2024-01-01 00:00:00", "active_flag": true,
                "edit_flag": edit, "index_visible_flag": true, "details_visible_flag": true,
                "add_visible_flag": edit, "important_flag": false, "bulk_edit_allowed": edit,
                "searchable_flag": matches!(*key, "name" | "email" | "phone" | "title"),
                "filtering_allowed": true, "sortable_flag": true, "mandatory_flag": mandatory,
            });
            if *key == "status" {
                field["options"] = json!([
                    { "id": "open", "label": "Open" }, { "id": "won", "label": "Won" },
                    { "id": "lost", "label": "Lost" }, { "id": "deleted", "label": "Deleted" },
                ]);
            }
            field
        })
        .collect();
    let count = data.len();
    envelope(
        Value::Array(data),
        json!({ "pagination": { "start": 0, "limit": 100, "more_items_in_collection": false, "next_start": null, "count": count } }),
    )
}

/// `GET /api/v2/{person|organization|deal}Fields`: the v2 shape (`field_code`,
/// `field_name`, `field_type`, `is_custom_field`, …) with cursor paging (at most 500).
fn v2_fields(catalog: &str, query: &std::collections::HashMap<String, String>) -> Reply {
    let defs = match catalog {
        "personFields" => PERSON_FIELDS,
        "organizationFields" => ORGANIZATION_FIELDS,
        "dealFields" => DEAL_FIELDS,
        other => return error(404, format!("Unknown method GET /api/v2/{other}")),
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(limit)) if (1..=500).contains(&limit) => limit,
        Some(_) => return error(400, "Validation failed: limit: Must be between 1 and 500"),
    };
    let start = match query.get("cursor").map(|c| c.parse::<usize>()) {
        None => 0,
        Some(Ok(start)) if start <= defs.len() => start,
        Some(_) => return error(400, "Validation failed: cursor: Invalid cursor"),
    };
    let data: Vec<Value> = defs
        .iter()
        .skip(start)
        .take(limit)
        .map(|(key, name, field_type, _, _)| {
            let options = (*key == "status").then(|| {
                json!([
                    { "id": 1, "label": "Open" }, { "id": 2, "label": "Won" },
                    { "id": 3, "label": "Lost" }, { "id": 4, "label": "Deleted" },
                ])
            });
            json!({
                "field_code": key, "field_name": name, "field_type": field_type, "is_custom_field": false,
                "is_optional_response_field": false, "options": options, "subfields": null,
            })
        })
        .collect();
    let next = (start + limit < defs.len()).then(|| (start + limit).to_string());
    envelope(Value::Array(data), json!({ "next_cursor": next }))
}

fn field_or_null(record: &Record, name: &str) -> Value {
    record.fields.get(name).cloned().unwrap_or(Value::Null)
}

fn array_or_empty(record: &Record, name: &str) -> Value {
    record
        .fields
        .get(name)
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or_else(|| json!([]))
}

fn object_or_empty(record: &Record, name: &str) -> Value {
    record
        .fields
        .get(name)
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}))
}

fn id_number(record: &Record) -> Value {
    record
        .id
        .parse::<u64>()
        .map_or_else(|_| Value::String(record.id.clone()), Value::from)
}

/// A record in the v2 shape.
fn render(_records: &ProviderRecords, object: &str, record: &Record) -> Value {
    let mut out = match object {
        "persons" => json!({
            "id": id_number(record), "name": field_or_null(record, "name"),
            "first_name": field_or_null(record, "first_name"), "last_name": field_or_null(record, "last_name"),
            "owner_id": field_or_null(record, "owner_id"), "org_id": field_or_null(record, "org_id"),
            "emails": array_or_empty(record, "emails"), "phones": array_or_empty(record, "phones"),
            "job_title": field_or_null(record, "job_title"), "postal_address": field_or_null(record, "postal_address"),
        }),
        "organizations" => json!({
            "id": id_number(record), "name": field_or_null(record, "name"), "owner_id": field_or_null(record, "owner_id"),
            "address": field_or_null(record, "address"),
        }),
        _ => json!({
            "id": id_number(record), "title": field_or_null(record, "title"), "value": field_or_null(record, "value"),
            "currency": record.fields.get("currency").cloned().unwrap_or_else(|| "USD".into()),
            "status": record.fields.get("status").cloned().unwrap_or_else(|| "open".into()),
            "stage_id": record.fields.get("stage_id").cloned().unwrap_or_else(|| 1.into()),
            "pipeline_id": record.fields.get("pipeline_id").cloned().unwrap_or_else(|| 1.into()),
            "person_id": field_or_null(record, "person_id"), "org_id": field_or_null(record, "org_id"),
            "owner_id": field_or_null(record, "owner_id"),
            "expected_close_date": field_or_null(record, "expected_close_date"),
            "probability": field_or_null(record, "probability"),
        }),
    };
    out["add_time"] = iso_s(record.created_at).into();
    out["update_time"] = iso_s(record.updated_at).into();
    out["is_deleted"] = false.into();
    out["visible_to"] = record.fields.get("visible_to").cloned().unwrap_or_else(|| 3.into());
    out["label_ids"] = array_or_empty(record, "label_ids");
    out["custom_fields"] = object_or_empty(record, "custom_fields");
    out
}

/// Sort order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Id,
    UpdateTime,
    AddTime,
}

impl SortBy {
    fn parse(text: &str) -> Option<SortBy> {
        match text {
            "id" => Some(SortBy::Id),
            "update_time" => Some(SortBy::UpdateTime),
            "add_time" => Some(SortBy::AddTime),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::UpdateTime => "update_time",
            SortBy::AddTime => "add_time",
        }
    }

    fn key(self, record: &Record) -> (i64, u64) {
        match self {
            SortBy::Id => (0, record.seq),
            SortBy::UpdateTime => (record.updated_at.as_millisecond(), record.seq),
            SortBy::AddTime => (record.created_at.as_millisecond(), record.seq),
        }
    }
}

/// An opaque cursor: the sort and the last key served.
fn encode_cursor(sort: SortBy, descending: bool, key: (i64, u64)) -> String {
    let text = format!(
        "{}:{}:{}:{}",
        sort.name(),
        if descending { "desc" } else { "asc" },
        key.0,
        key.1
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str, sort: SortBy, descending: bool) -> Option<(i64, u64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    let (name, direction) = (parts.next()?, parts.next()?);
    if name != sort.name() || (direction == "desc") != descending {
        return None;
    }
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn limit_param(query: &HashMap<String, String>) -> Result<usize, Reply> {
    match query.get("limit").map(|l| l.parse::<usize>()) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(error(
            400,
            format!("Validation failed: limit: Must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

fn time_param(query: &HashMap<String, String>, name: &str) -> Result<Option<Timestamp>, Reply> {
    match query.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => parse_time(text)
            .map(Some)
            .ok_or_else(|| error(400, format!("Validation failed: {name}: Must be an RFC3339 date-time"))),
    }
}

fn list(records: &ProviderRecords, object: &str, query: &HashMap<String, String>) -> Reply {
    let limit = match limit_param(query) {
        Ok(limit) => limit,
        Err(reply) => return reply,
    };
    let (since, until) = match (time_param(query, "updated_since"), time_param(query, "updated_until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let Some(sort) = SortBy::parse(query.get("sort_by").map_or("id", String::as_str)) else {
        return error(
            400,
            "Validation failed: sort_by: Must be one of id, update_time, add_time",
        );
    };
    let descending = match query.get("sort_direction").map_or("asc", String::as_str) {
        "asc" => false,
        "desc" => true,
        _ => return error(400, "Validation failed: sort_direction: Must be one of asc, desc"),
    };
    let after = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => match decode_cursor(cursor, sort, descending) {
            Some(key) => Some(key),
            None => return error(400, "Validation failed: cursor: Invalid cursor"),
        },
    };
    let ids: Option<Vec<String>> = query
        .get("ids")
        .map(|ids| ids.split(',').map(|i| i.trim().to_owned()).collect());
    let filters: Vec<(&str, i64)> = ["owner_id", "org_id", "person_id", "stage_id"]
        .iter()
        .filter_map(|name| Some((*name, query.get(*name)?.parse().ok()?)))
        .collect();
    let Some(store) = records.store_ref(object) else {
        return not_found(object);
    };
    let candidates: Box<dyn Iterator<Item = &Record>> = match sort {
        SortBy::UpdateTime => Box::new(store.modified_since(since)),
        _ => Box::new(store.in_id_order()),
    };
    let mut found: Vec<&Record> = candidates
        .filter(|r| since.is_none_or(|s| r.updated_at >= s))
        .filter(|r| until.is_none_or(|u| r.updated_at < u))
        .filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
        .filter(|r| {
            filters
                .iter()
                .all(|(name, value)| r.fields.get(*name).and_then(int_value) == Some(*value))
        })
        .filter(|r| {
            query
                .get("status")
                .is_none_or(|status| r.fields.get("status").and_then(Value::as_str).unwrap_or("open") == status)
        })
        .collect();
    if sort == SortBy::AddTime {
        found.sort_by_key(|r| sort.key(r));
    }
    if descending {
        found.reverse();
    }
    let start = match after {
        None => 0,
        Some(key) => found
            .iter()
            .position(|r| {
                if descending {
                    sort.key(r) < key
                } else {
                    sort.key(r) > key
                }
            })
            .unwrap_or(found.len()),
    };
    let page: Vec<&Record> = found.iter().skip(start).take(limit).copied().collect();
    let more = start + page.len() < found.len();
    let next = page
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(sort, descending, sort.key(last)));
    envelope(
        Value::Array(page.iter().map(|r| render(records, object, r)).collect()),
        json!({ "next_cursor": next }),
    )
}

fn search_fields(object: &str) -> &'static [&'static str] {
    match object {
        "persons" => &["name", "email", "phone", "notes", "custom_fields"],
        "organizations" => &["name", "address", "notes", "custom_fields"],
        _ => &["title", "notes", "custom_fields"],
    }
}

/// The texts of `record` a search on `field` looks at.
fn searchable(record: &Record, field: &str) -> Vec<String> {
    let values = |key: &str| -> Vec<String> {
        record
            .fields
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item["value"].as_str().map(str::to_owned))
            .collect()
    };
    match field {
        "email" => values("emails"),
        "phone" => values("phones"),
        "address" => record
            .fields
            .get("address")
            .and_then(|a| a["value"].as_str().or_else(|| a.as_str()))
            .map(str::to_owned)
            .into_iter()
            .collect(),
        "custom_fields" => record
            .fields
            .get("custom_fields")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| scalar_text(v))
            .collect(),
        other => record.fields.get(other).and_then(scalar_text).into_iter().collect(),
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// How well `value` matches `term`: 1 for the whole value, less for a part; `None` for no match.
fn score(field: &str, value: &str, term: &str, exact: bool) -> Option<f64> {
    let (value, term) = if field == "phone" {
        (digits(value), digits(term))
    } else {
        (value.to_lowercase(), term.to_lowercase())
    };
    if term.is_empty() {
        return None;
    }
    if value == term {
        Some(1.0)
    } else if !exact && value.contains(&term) {
        Some(((term.len() as f64) / (value.len().max(1) as f64) * 100.0).round() / 100.0)
    } else {
        None
    }
}

fn owner(record: &Record) -> Value {
    json!({ "id": record.fields.get("owner_id").cloned().unwrap_or(Value::Null) })
}

fn organization(records: &ProviderRecords, id: Option<&Value>) -> Value {
    let Some(id) = id.and_then(int_value) else {
        return Value::Null;
    };
    match records.store_ref("organizations").and_then(|s| s.get(&id.to_string())) {
        Some(org) => json!({
            "id": id, "name": field_or_null(org, "name"),
            "address": org.fields.get("address").and_then(|a| a["value"].as_str().map(str::to_owned)),
        }),
        None => json!({ "id": id, "name": null, "address": null }),
    }
}

/// The abridged item a search answers with.
fn search_item(records: &ProviderRecords, object: &str, record: &Record) -> Value {
    let texts = |key: &str| -> Vec<String> {
        record
            .fields
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i["value"].as_str().map(str::to_owned))
            .collect()
    };
    match object {
        "persons" => json!({
            "id": id_number(record), "type": "person", "name": field_or_null(record, "name"),
            "phones": texts("phones"), "emails": texts("emails"),
            "visible_to": record.fields.get("visible_to").cloned().unwrap_or_else(|| 3.into()),
            "owner": owner(record), "organization": organization(records, record.fields.get("org_id")),
            "custom_fields": [], "notes": [], "update_time": iso_s(record.updated_at),
        }),
        "organizations" => json!({
            "id": id_number(record), "type": "organization", "name": field_or_null(record, "name"),
            "address": record.fields.get("address").and_then(|a| a["value"].as_str().map(str::to_owned)),
            "visible_to": record.fields.get("visible_to").cloned().unwrap_or_else(|| 3.into()),
            "owner": owner(record), "custom_fields": [], "notes": [], "update_time": iso_s(record.updated_at),
        }),
        _ => {
            let person = record.fields.get("person_id").and_then(int_value).map(|id| {
                let name = records
                    .store_ref("persons")
                    .and_then(|s| s.get(&id.to_string()))
                    .map_or(Value::Null, |p| field_or_null(p, "name"));
                json!({ "id": id, "name": name })
            });
            json!({
                "id": id_number(record), "type": "deal", "title": field_or_null(record, "title"),
                "value": field_or_null(record, "value"),
                "currency": record.fields.get("currency").cloned().unwrap_or_else(|| "USD".into()),
                "status": record.fields.get("status").cloned().unwrap_or_else(|| "open".into()),
                "visible_to": record.fields.get("visible_to").cloned().unwrap_or_else(|| 3.into()),
                "owner": owner(record), "stage": { "id": record.fields.get("stage_id").cloned().unwrap_or_else(|| 1.into()) },
                "person": person, "organization": organization(records, record.fields.get("org_id")),
                "custom_fields": [], "notes": [], "update_time": iso_s(record.updated_at),
            })
        }
    }
}

fn search(records: &ProviderRecords, object: &str, query: &HashMap<String, String>) -> Reply {
    let term = query.get("term").map(|t| t.trim().to_owned()).unwrap_or_default();
    let exact = query.get("exact_match").is_some_and(|e| e == "true" || e == "1");
    if term.chars().count() < if exact { 1 } else { 2 } {
        return error(
            400,
            "Validation failed: term: Search term must be at least 2 characters long (1 with exact_match)",
        );
    }
    let allowed = search_fields(object);
    let fields: Vec<&str> = match query.get("fields").filter(|f| !f.is_empty()) {
        None => allowed.to_vec(),
        Some(list) => {
            let asked: Vec<&str> = list.split(',').map(str::trim).collect();
            if let Some(bad) = asked.iter().find(|f| !allowed.contains(f)) {
                return error(
                    400,
                    format!(
                        "Validation failed: fields: '{bad}' is not one of {}",
                        allowed.join(", ")
                    ),
                );
            }
            asked
        }
    };
    let limit = match limit_param(query) {
        Ok(limit) => limit,
        Err(reply) => return reply,
    };
    let offset = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("search:").and_then(|n| n.parse::<usize>().ok()))
        {
            Some(offset) => offset,
            None => return error(400, "Validation failed: cursor: Invalid cursor"),
        },
    };
    let org_filter = query.get("organization_id").and_then(|o| o.parse::<i64>().ok());
    let person_filter = query.get("person_id").and_then(|o| o.parse::<i64>().ok());
    let Some(store) = records.store_ref(object) else {
        return not_found(object);
    };
    let mut hits: Vec<(f64, &Record)> = store
        .in_id_order()
        .filter(|r| org_filter.is_none_or(|o| r.fields.get("org_id").and_then(int_value) == Some(o)))
        .filter(|r| person_filter.is_none_or(|p| r.fields.get("person_id").and_then(int_value) == Some(p)))
        .filter_map(|r| {
            let best = fields
                .iter()
                .flat_map(|field| {
                    searchable(r, field)
                        .into_iter()
                        .filter_map(|value| score(field, &value, &term, exact))
                })
                .fold(None, |best: Option<f64>, s| Some(best.map_or(s, |b| b.max(s))));
            best.map(|s| (s, r))
        })
        .collect();
    hits.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.seq.cmp(&b.1.seq))
    });
    let items: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(score, r)| json!({ "result_score": score, "item": search_item(records, object, r) }))
        .collect();
    let next = (offset + limit < hits.len())
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("search:{}", offset + limit)));
    envelope(json!({ "items": items }), json!({ "next_cursor": next }))
}

/// Keys each object accepts on create and update.
fn writable(object: &str) -> &'static [&'static str] {
    match object {
        "persons" => &[
            "name",
            "first_name",
            "last_name",
            "owner_id",
            "org_id",
            "emails",
            "phones",
            "visible_to",
            "label_ids",
            "job_title",
            "postal_address",
            "custom_fields",
        ],
        "organizations" => &[
            "name",
            "owner_id",
            "address",
            "visible_to",
            "label_ids",
            "custom_fields",
        ],
        _ => &[
            "title",
            "value",
            "currency",
            "status",
            "stage_id",
            "pipeline_id",
            "person_id",
            "org_id",
            "owner_id",
            "expected_close_date",
            "probability",
            "visible_to",
            "label_ids",
            "custom_fields",
        ],
    }
}

fn invalid(field: &str, message: &str) -> String {
    format!("Validation failed: {field}: {message}")
}

/// `emails`/`phones` items (`{value, primary, label}`, or bare strings), with one primary.
fn contact_items(field: &str, value: &Value) -> Result<Value, String> {
    let Some(items) = value.as_array() else {
        return if value.is_null() {
            Ok(json!([]))
        } else {
            Err(invalid(field, "Must be an array"))
        };
    };
    let mut out = Vec::new();
    for item in items {
        let (text, primary, label) = match item {
            Value::String(s) => (s.clone(), false, "work".to_owned()),
            Value::Object(map) => (
                map.get("value").and_then(scalar_text).unwrap_or_default(),
                map.get("primary")
                    .is_some_and(|p| p == &Value::Bool(true) || p.as_str() == Some("true")),
                map.get("label").and_then(Value::as_str).unwrap_or("work").to_owned(),
            ),
            _ => return Err(invalid(field, "Items must be objects with a value")),
        };
        let text = text.trim().to_owned();
        if text.is_empty() {
            continue;
        }
        if field == "emails" && !valid_email(&text) {
            return Err(invalid(field, &format!("Invalid email address '{text}'")));
        }
        out.push(json!({ "value": text, "primary": primary, "label": label }));
    }
    let primaries = out.iter().filter(|i| i["primary"] == true).count();
    if primaries != 1 {
        for (i, item) in out.iter_mut().enumerate() {
            item["primary"] = (i == 0).into();
        }
    }
    Ok(Value::Array(out))
}

/// Checks a create/update body and merges it into `current`.
fn merge(
    records: &ProviderRecords,
    object: &str,
    input: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, String> {
    let allowed = writable(object);
    if let Some(bad) = input.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(bad, "Unknown or read-only field"));
    }
    let mut fields = current.cloned().unwrap_or_default();
    for (key, value) in input {
        let converted = match key.as_str() {
            "name" | "title" => match value.as_str().map(str::trim) {
                Some(text) if !text.is_empty() => Value::String(text.to_owned()),
                _ => {
                    let label = if key == "name" { "Name" } else { "Title" };
                    return Err(invalid(key, &format!("{label} is required")));
                }
            },
            "emails" | "phones" => contact_items(key, value)?,
            "owner_id" | "org_id" | "person_id" | "stage_id" | "pipeline_id" | "visible_to" => match value {
                Value::Null => Value::Null,
                other => int_value(other)
                    .map(Value::from)
                    .ok_or_else(|| invalid(key, "Must be an integer"))?,
            },
            "value" | "probability" => match value {
                Value::Null => Value::Null,
                other => number_value(other)
                    .map(|n| json!(n))
                    .ok_or_else(|| invalid(key, "Must be a number"))?,
            },
            "status" => match value.as_str() {
                None if value.is_null() => Value::String("open".to_owned()),
                Some(s @ ("open" | "won" | "lost")) => Value::String(s.to_owned()),
                _ => return Err(invalid(key, "Must be one of open, won, lost")),
            },
            "expected_close_date" => match value {
                Value::Null => Value::Null,
                Value::String(s) if s.is_empty() => Value::Null,
                Value::String(s) if jiff::civil::Date::strptime("%Y-%m-%d", s).is_ok() => value.clone(),
                _ => return Err(invalid(key, "Must be a date in the format YYYY-MM-DD")),
            },
            "address" | "postal_address" => match value {
                Value::Null => Value::Null,
                Value::String(s) if s.is_empty() => Value::Null,
                Value::String(s) => json!({ "value": s }),
                Value::Object(map) if map.get("value").is_some_and(Value::is_string) => value.clone(),
                _ => return Err(invalid(key, "Must be an object with a value")),
            },
            "label_ids" => match value {
                Value::Array(items) if items.iter().all(|i| int_value(i).is_some()) => value.clone(),
                Value::Null => json!([]),
                _ => return Err(invalid(key, "Must be an array of integers")),
            },
            "custom_fields" => match value {
                Value::Object(_) => value.clone(),
                Value::Null => json!({}),
                _ => return Err(invalid(key, "Must be an object")),
            },
            _ => match value {
                Value::String(s) if s.is_empty() => Value::Null,
                Value::Null | Value::String(_) => value.clone(),
                other => scalar_text(other)
                    .map(Value::String)
                    .ok_or_else(|| invalid(key, "Must be a string"))?,
            },
        };
        fields.insert(key.clone(), converted);
    }
    let required = if object == "deals" { "title" } else { "name" };
    if fields.get(required).is_none_or(Value::is_null) {
        let label = if object == "deals" { "Title" } else { "Name" };
        return Err(invalid(required, &format!("{label} is required")));
    }
    // A person's first and last name follow its name unless given.
    if object == "persons" && input.contains_key("name") {
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        if !input.contains_key("first_name") {
            fields.insert("first_name".into(), first.into());
        }
        if !input.contains_key("last_name") {
            fields.insert(
                "last_name".into(),
                if last.is_empty() { Value::Null } else { last.into() },
            );
        }
    }
    for (key, target) in [("org_id", "organizations"), ("person_id", "persons")] {
        if let Some(id) = fields.get(key).and_then(int_value).filter(|_| input.contains_key(key))
            && records
                .store_ref(target)
                .is_none_or(|s| s.get(&id.to_string()).is_none())
        {
            return Err(invalid(key, &format!("Entity with id {id} not found")));
        }
    }
    Ok(fields)
}

fn create(records: &mut ProviderRecords, object: &str, input: &Map<String, Value>, account: u32) -> Reply {
    let mut fields = match merge(records, object, input, None) {
        Ok(fields) => fields,
        Err(message) => return error(400, message),
    };
    fields
        .entry("owner_id")
        .or_insert_with(|| Value::from(10_000 + u64::from(account)));
    let Some(id) = records.create(object, fields, None) else {
        return not_found(object);
    };
    let Some(store) = records.store(object) else {
        return not_found(object);
    };
    store.creates += 1;
    match records.store_ref(object).and_then(|s| s.get(&id)) {
        Some(record) => envelope(render(records, object, record), Value::Null),
        None => not_found(object),
    }
}

fn update(records: &mut ProviderRecords, object: &str, id: &str, input: &Map<String, Value>) -> Reply {
    let Some(current) = records
        .store_ref(object)
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
    else {
        return not_found(object);
    };
    let fields = match merge(records, object, input, Some(&current)) {
        Ok(fields) => fields,
        Err(message) => return error(400, message),
    };
    records.update(object, id, fields, false);
    if let Some(store) = records.store(object) {
        store.updates += 1;
    }
    match records.store_ref(object).and_then(|s| s.get(id)) {
        Some(record) => envelope(render(records, object, record), Value::Null),
        None => not_found(object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Provider;
    use crate::sandbox::records::RecordsState;
    use crate::sandbox::request::SandboxRequest;

    fn send(
        records: &mut ProviderRecords,
        method: Method,
        path_and_query: &str,
        body: Value,
    ) -> (u16, Value, Vec<(String, String)>) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let request = SandboxRequest {
            method,
            path: path.to_owned(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            raw_query: query.to_owned(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(if body.is_null() {
                String::new()
            } else {
                body.to_string()
            }),
        };
        let reply = handle(
            records,
            &Call {
                request: &request,
                base: "http://sandbox.test",
                path,
                account: 1,
                now_ms: super::super::now_ms(),
            },
        );
        let parsed = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status, parsed, reply.headers)
    }

    fn seeded(n: usize) -> RecordsState {
        let mut state = RecordsState::default();
        super::super::seed::seed_provider(state.provider(Provider::Pipedrive), Provider::Pipedrive, n);
        state
    }

    #[test]
    fn lists_page_with_cursors_since_a_time() {
        let mut state = seeded(30);
        let records = state.provider(Provider::Pipedrive);
        let mut url =
            "/api/v2/persons?updated_since=2025-01-01T00:00:05Z&sort_by=update_time&sort_direction=asc&limit=10"
                .to_owned();
        let mut seen = Vec::new();
        loop {
            let (status, body, _) = send(records, Method::GET, &url, Value::Null);
            assert_eq!(status, 200);
            assert_eq!(body["success"], true);
            for person in body["data"].as_array().unwrap() {
                seen.push(person["id"].as_u64().unwrap());
            }
            match body["additional_data"]["next_cursor"].as_str() {
                Some(cursor) => url = format!("{url}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, (6..=30).collect::<Vec<u64>>(), "inclusive, in update order");
        let (_, body, _) = send(records, Method::GET, "/api/v2/persons/3", Value::Null);
        let person = &body["data"];
        assert_eq!(person["id"], 3);
        assert_eq!(person["update_time"], "2025-01-01T00:00:02Z");
        assert_eq!(person["emails"][0]["primary"], true);
        assert_eq!(person["is_deleted"], false);
        let (status, body, _) = send(records, Method::GET, "/api/v2/persons/999", Value::Null);
        assert_eq!((status, body["error"].as_str()), (404, Some("Person not found")));
        let (status, _, _) = send(records, Method::GET, "/api/v2/persons?limit=501", Value::Null);
        assert_eq!(status, 400);
        let (status, _, _) = send(records, Method::GET, "/api/v2/deals?cursor=garbage", Value::Null);
        assert_eq!(status, 400);
    }

    #[test]
    fn descending_id_pages() {
        let mut state = seeded(12);
        let records = state.provider(Provider::Pipedrive);
        let (_, first, _) = send(
            records,
            Method::GET,
            "/api/v2/persons?sort_direction=desc&limit=5",
            Value::Null,
        );
        let ids: Vec<u64> = first["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [12, 11, 10, 9, 8]);
        let cursor = first["additional_data"]["next_cursor"].as_str().unwrap();
        let (_, second, _) = send(
            records,
            Method::GET,
            &format!("/api/v2/persons?sort_direction=desc&limit=5&cursor={cursor}"),
            Value::Null,
        );
        assert_eq!(second["data"][0]["id"], 7);
    }

    #[test]
    fn create_update_and_validation() {
        let mut state = seeded(10);
        let records = state.provider(Provider::Pipedrive);
        let (status, body, _) = send(records, Method::POST, "/api/v2/persons", json!({ "emails": [] }));
        assert_eq!(status, 400);
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], "Validation failed: name: Name is required");
        let (status, _, _) = send(
            records,
            Method::POST,
            "/api/v2/persons",
            json!({ "name": "Ann Lee", "emails": [{ "value": "broken", "primary": true }] }),
        );
        assert_eq!(status, 400);
        let (status, body, _) = send(
            records,
            Method::POST,
            "/api/v2/persons",
            json!({ "name": "Ann Lee", "emails": [{ "value": "ann@x.io", "primary": true, "label": "work" }], "org_id": 1.0 }),
        );
        assert_eq!(status, 200);
        let person = &body["data"];
        assert_eq!(
            (person["first_name"].as_str(), person["last_name"].as_str()),
            (Some("Ann"), Some("Lee"))
        );
        assert_eq!(person["org_id"], 1);
        assert_eq!(person["owner_id"], 10_001);
        let id = person["id"].as_u64().unwrap();
        let (status, body, _) = send(
            records,
            Method::PATCH,
            &format!("/api/v2/persons/{id}"),
            json!({ "phones": [{ "value": "+1 415 234 5678" }] }),
        );
        assert_eq!(status, 200);
        assert_eq!(body["data"]["phones"][0]["primary"], true);
        assert_eq!(body["data"]["emails"][0]["value"], "ann@x.io", "untouched arrays stay");
        let stats = records.store_ref("persons").unwrap();
        assert_eq!((stats.creates, stats.updates), (1, 1));
        let (status, body, _) = send(
            records,
            Method::POST,
            "/api/v2/deals",
            json!({ "title": "Big", "value": "12.5" }),
        );
        assert_eq!(status, 200);
        assert_eq!(body["data"]["value"], 12.5);
        assert_eq!(body["data"]["status"], "open");
    }

    #[test]
    fn search_finds_exact_emails() {
        let mut state = seeded(10);
        let records = state.provider(Provider::Pipedrive);
        let email = records.store_ref("persons").unwrap().get("4").unwrap().fields["emails"][0]["value"]
            .as_str()
            .unwrap()
            .to_uppercase();
        let url = format!(
            "/api/v2/persons/search?term={}&fields=email&exact_match=true",
            url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
        );
        let (status, body, _) = send(records, Method::GET, &url, Value::Null);
        assert_eq!(status, 200);
        let items = body["data"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["item"]["id"], 4);
        assert_eq!(items[0]["result_score"], 1.0);
        assert!(items[0]["item"]["emails"][0].is_string());
        let (status, _, _) = send(records, Method::GET, "/api/v2/persons/search?term=a", Value::Null);
        assert_eq!(status, 400);
    }

    #[test]
    fn burst_limit_answers_429() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Pipedrive);
        records.limit.configure(true, 1, 2_000);
        let (status, _, headers) = send(records, Method::GET, "/api/v1/personFields", Value::Null);
        assert_eq!(status, 200);
        assert!(headers.contains(&("x-ratelimit-remaining".into(), "0".into())));
        let (status, body, headers) = send(records, Method::GET, "/api/v1/personFields", Value::Null);
        assert_eq!(status, 429);
        assert_eq!(body["error"], "Rate limit exceeded");
        assert_eq!(body["errorCode"], 429);
        assert!(headers.iter().any(|(h, v)| h == "Retry-After" && v == "2"));
        assert!(headers.contains(&("x-ratelimit-limit".into(), "1".into())));
    }

    #[test]
    fn field_catalogs_mark_mandatory_and_read_only() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Pipedrive);
        let (_, body, _) = send(records, Method::GET, "/api/v1/personFields", Value::Null);
        let fields = body["data"].as_array().unwrap();
        let find = |key: &str| fields.iter().find(|f| f["key"] == key).unwrap();
        assert_eq!(find("name")["mandatory_flag"], true);
        assert_eq!(find("email")["field_type"], "varchar");
        assert_eq!(find("update_time")["edit_flag"], false);
        let (_, body, _) = send(records, Method::GET, "/api/v1/dealFields", Value::Null);
        assert!(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["key"] == "title" && f["mandatory_flag"] == true)
        );
    }

    #[test]
    fn v2_field_endpoints_page_by_cursor_beside_v1() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Pipedrive);
        let (status, body, _) = send(records, Method::GET, "/api/v2/personFields?limit=3", Value::Null);
        assert_eq!(status, 200);
        let page = body["data"].as_array().unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page[1]["field_code"], "name");
        assert!(
            page[1].get("key").is_none() && page[1]["is_custom_field"] == false,
            "{body}"
        );
        let cursor = body["additional_data"]["next_cursor"].as_str().unwrap().to_owned();
        let (_, rest, _) = send(
            records,
            Method::GET,
            &format!("/api/v2/personFields?cursor={cursor}&limit=500"),
            Value::Null,
        );
        assert_eq!(rest["additional_data"]["next_cursor"], Value::Null);
        assert!(
            rest["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["field_code"] == "email")
        );
        let (status, _, _) = send(records, Method::GET, "/api/v2/dealFields?limit=501", Value::Null);
        assert_eq!(status, 400);
        let (status, v1, _) = send(records, Method::GET, "/v1/personFields", Value::Null);
        assert_eq!((status, v1["data"][1]["key"].as_str()), (200, Some("name")));
    }

    #[test]
    fn the_daily_token_budget_refuses_until_midnight() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Pipedrive);
        records.tokens.max = 12;
        let (status, _, _) = send(records, Method::GET, "/api/v2/persons", Value::Null);
        assert_eq!(status, 200, "a list costs 10");
        let (status, _, _) = send(records, Method::GET, "/api/v2/persons/1", Value::Null);
        assert_eq!(status, 200, "a read of one costs 1");
        let (status, body, headers) = send(records, Method::GET, "/api/v2/persons", Value::Null);
        assert_eq!((status, body["success"].as_bool()), (429, Some(false)));
        assert!(headers.iter().any(|(h, _)| h == "Retry-After"));
    }
}
