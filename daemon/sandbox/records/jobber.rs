//! Jobber's GraphQL record API at `POST <sandbox>/jobber/api/graphql`: the `clients`, `jobs`
//! and `properties` connections (`first`/`after` paging in `(updatedAt, id)` order,
//! `totalCount`, `pageInfo`; clients filtered by `updatedAt`/`createdAt`/flags and
//! `searchTerm`), single-node `client`/`job`/`property`, the `clientCreate`/`clientEdit`,
//! `jobCreate`/`jobEdit` and `propertyCreate`/`propertyEdit` mutations with `userErrors`
//! (HTTP 200), `__type` introspection of the record types, the query-cost bucket reported in
//! `extensions.cost` on every answer (and `THROTTLED` when it runs dry), and the DDoS guard's
//! 429.
//!
//! Arguments come from the operation (variables resolved); nodes come back with all their
//! scalar fields whatever the selection asks for.

use std::collections::BTreeSet;

use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::graphql::{self, OpKind, TopField};
use super::jobber_schema::{KINDS, TYPES};
use super::{Call, ProviderRecords, Record, int_value, iso_s, number_value, parse_time, scalar_text, valid_email};
use crate::sandbox::request::{Reply, SandboxRequest, json_reply};

/// Largest page of a connection.
pub const MAX_FIRST: i64 = 100;
/// What a mutation costs.
const MUTATION_COST: f64 = 10.0;
/// Where Jobber documents its limits.
const LIMITS_DOC: &str = "https://developer.getjobber.com/docs/build_with_jobber/api_rate_limits";

/// The top-level fields this module answers; other GraphQL calls go to the OAuth module.
const FIELDS: &[&str] = &[
    "clients",
    "client",
    "jobs",
    "job",
    "properties",
    "property",
    "clientCreate",
    "clientEdit",
    "jobCreate",
    "jobEdit",
    "propertyCreate",
    "propertyEdit",
    "__type",
];

const MUTATIONS: &[&str] = &[
    "clientCreate",
    "clientEdit",
    "jobCreate",
    "jobEdit",
    "propertyCreate",
    "propertyEdit",
];

const ADDRESS_KEYS: &[&str] = &["street1", "street2", "city", "province", "postalCode", "country"];

/// The query, variables and operation name of a GraphQL request body.
fn body_parts(request: &SandboxRequest) -> Option<(String, Map<String, Value>, Option<String>)> {
    let body: Value = serde_json::from_slice(&request.body).ok()?;
    let query = body["query"].as_str()?.to_owned();
    let variables = body["variables"].as_object().cloned().unwrap_or_default();
    let name = body["operationName"].as_str().map(str::to_owned);
    Some((query, variables, name))
}

/// Whether this module answers `request` (any of its top-level fields is a record field).
pub fn claims(request: &SandboxRequest) -> bool {
    body_parts(request)
        .and_then(|(query, variables, name)| graphql::parse(&query, &variables, name.as_deref()).ok())
        .is_some_and(|op| op.fields.iter().any(|f| FIELDS.contains(&f.name.as_str())))
}

fn cost_extension(records: &mut ProviderRecords, requested: f64, actual: f64, now_ms: i64) -> Value {
    let available = records.bucket.available(now_ms);
    json!({ "cost": {
        "requestedQueryCost": requested.round() as i64,
        "actualQueryCost": actual.round() as i64,
        "throttleStatus": {
            "maximumAvailable": records.bucket.max.round() as i64,
            "currentlyAvailable": available.floor() as i64,
            "restoreRate": records.bucket.restore.round() as i64,
        },
    } })
}

fn gql_error(message: impl Into<String>, path: Option<&str>, code: Option<&str>) -> Value {
    let mut error = json!({ "message": message.into() });
    if let Some(path) = path {
        error["path"] = json!([path]);
    }
    if let Some(code) = code {
        error["extensions"] = json!({ "code": code });
    }
    error
}

/// What a top-level field is expected to cost.
fn requested_cost(field: &TopField) -> f64 {
    match field.name.as_str() {
        "clients" | "jobs" | "properties" => {
            let first = field.args.get("first").and_then(int_value).unwrap_or(MAX_FIRST).max(0);
            first as f64 + 1.0
        }
        name if MUTATIONS.contains(&name) => MUTATION_COST,
        _ => 1.0,
    }
}

/// Answers one GraphQL request.
pub fn handle(records: &mut ProviderRecords, call: &Call<'_>) -> Reply {
    let version = call
        .request
        .header("x-jobber-graphql-version")
        .unwrap_or_default()
        .to_owned();
    *records.graphql_versions.entry(version).or_default() += 1;
    if let Err(refusal) = records.limit.admit(call.now_ms) {
        records.rate_limited += 1;
        return json_reply(
            429,
            json!({ "errors": [{ "message": "Too Many Requests", "extensions": { "code": "TOO_MANY_REQUESTS", "documentation": LIMITS_DOC } }] }),
        )
        .with_header("Retry-After", refusal.retry_after_secs().to_string());
    }
    let now = call.now_ms;
    let Some((query, variables, name)) = body_parts(call.request) else {
        let extensions = cost_extension(records, 0.0, 0.0, now);
        return json_reply(
            200,
            json!({ "errors": [gql_error("No query string was present", None, None)], "extensions": extensions }),
        );
    };
    let operation = match graphql::parse(&query, &variables, name.as_deref()) {
        Ok(operation) => operation,
        Err(message) => {
            let extensions = cost_extension(records, 0.0, 0.0, now);
            return json_reply(
                200,
                json!({ "errors": [gql_error(message, None, None)], "extensions": extensions }),
            );
        }
    };
    let root = if operation.kind == OpKind::Mutation {
        "Mutation"
    } else {
        "Query"
    };
    let unknown: Vec<Value> = operation
        .fields
        .iter()
        .filter(|f| {
            !FIELDS.contains(&f.name.as_str())
                || (operation.kind == OpKind::Mutation) != MUTATIONS.contains(&f.name.as_str())
        })
        .map(|f| {
            gql_error(
                format!("Field '{}' doesn't exist on type '{root}'", f.name),
                Some(&f.alias),
                Some("undefinedField"),
            )
        })
        .collect();
    if !unknown.is_empty() {
        let extensions = cost_extension(records, 0.0, 0.0, now);
        return json_reply(200, json!({ "errors": unknown, "extensions": extensions }));
    }
    let requested: f64 = operation.fields.iter().map(requested_cost).sum();
    if !records.bucket.take(requested, now) {
        records.rate_limited += 1;
        let extensions = cost_extension(records, requested, 0.0, now);
        return json_reply(
            200,
            json!({
                "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED", "documentation": LIMITS_DOC } }],
                "extensions": extensions,
            }),
        );
    }
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut actual = 0.0;
    for field in &operation.fields {
        let outcome = run_field(records, field);
        actual += match outcome.nodes {
            Some(nodes) => nodes as f64 + 1.0,
            None => requested_cost(field),
        };
        if let Some(error) = outcome.error {
            errors.push(gql_error(error, Some(&field.alias), None));
        }
        data.insert(field.alias.clone(), outcome.value);
    }
    records.bucket.refund(requested - actual);
    let mut answer = json!({ "data": data });
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    answer["extensions"] = cost_extension(records, requested, actual, now);
    json_reply(200, answer)
}

/// The result of one top-level field.
struct Outcome {
    value: Value,
    /// Nodes returned by a connection (its actual cost).
    nodes: Option<usize>,
    /// A field error.
    error: Option<String>,
}

impl Outcome {
    fn value(value: Value) -> Outcome {
        Outcome {
            value,
            nodes: None,
            error: None,
        }
    }

    fn error(message: impl Into<String>) -> Outcome {
        Outcome {
            value: Value::Null,
            nodes: None,
            error: Some(message.into()),
        }
    }
}

fn run_field(records: &mut ProviderRecords, field: &TopField) -> Outcome {
    let args = &Value::Object(field.args.clone());
    match field.name.as_str() {
        "clients" => connection(records, "clients", field),
        "jobs" => connection(records, "jobs", field),
        "properties" => connection(records, "properties", field),
        "client" => Outcome::value(node_by_id(records, "clients", &args["id"])),
        "job" => Outcome::value(node_by_id(records, "jobs", &args["id"])),
        "property" => Outcome::value(node_by_id(records, "properties", &args["id"])),
        "__type" => Outcome::value(describe_type(args["name"].as_str().unwrap_or_default())),
        "clientCreate" => client_create(records, &args["input"]),
        "clientEdit" => client_edit(records, &args["clientId"], &args["input"]),
        "jobCreate" => job_create(records, &args["input"]),
        "jobEdit" => job_edit(records, &args["jobId"], &args["input"]),
        "propertyCreate" => property_create(records, &args["clientId"], &args["input"]),
        "propertyEdit" => property_edit(records, &args["propertyId"], &args["input"]),
        other => Outcome::error(format!("Field '{other}' doesn't exist")),
    }
}

fn text(record: &Record, key: &str) -> Value {
    record.fields.get(key).cloned().unwrap_or(Value::Null)
}

fn text_or_empty(record: &Record, key: &str) -> String {
    record.fields.get(key).and_then(scalar_text).unwrap_or_default()
}

fn web_uri(kind: &str, record: &Record) -> String {
    format!("https://secure.getjobber.com/{kind}/{}", record.seq)
}

/// `(415) 234-5678` for a ten-digit number, else the number as given.
fn friendly(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 => digits.as_str(),
        _ => return number.to_owned(),
    };
    format!("({}) {}-{}", &national[..3], &national[3..6], &national[6..])
}

/// `+14152345678` for a North American number.
fn normalized(number: &str) -> Value {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        10 => format!("+1{digits}").into(),
        11 if digits.starts_with('1') => format!("+{digits}").into(),
        _ => Value::Null,
    }
}

fn client_name(record: &Record) -> String {
    let person = format!(
        "{} {}",
        text_or_empty(record, "firstName"),
        text_or_empty(record, "lastName")
    )
    .trim()
    .to_owned();
    let company = text_or_empty(record, "companyName");
    let is_company = record.fields.get("isCompany") == Some(&Value::Bool(true));
    if (is_company || person.is_empty()) && !company.is_empty() {
        company
    } else {
        person
    }
}

fn address_value(address: &Map<String, Value>) -> Value {
    let part = |k: &str| address.get(k).and_then(scalar_text).unwrap_or_default();
    let street = [part("street1"), part("street2")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    json!({
        "street": street, "street1": part("street1"), "street2": part("street2"), "city": part("city"),
        "province": part("province"), "postalCode": part("postalCode"), "country": part("country"),
        "latitude": null, "longitude": null,
    })
}

/// A client node.
fn client_node(record: &Record) -> Value {
    let emails: Vec<Value> = record
        .fields
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            json!({
                "id": e["id"], "address": e["address"],
                "description": e.get("description").cloned().unwrap_or_else(|| "MAIN".into()),
                "primary": e["primary"] == true,
            })
        })
        .collect();
    let phones: Vec<Value> = record
        .fields
        .get("phones")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let number = p["number"].as_str().unwrap_or_default();
            json!({
                "id": p["id"], "number": number,
                "description": p.get("description").cloned().unwrap_or_else(|| "MAIN".into()),
                "friendly": friendly(number), "primary": p["primary"] == true,
                "smsAllowed": p["smsAllowed"] == true, "normalizedPhoneNumber": normalized(number),
            })
        })
        .collect();
    let default_emails: Vec<Value> = emails
        .iter()
        .filter(|e| e["primary"] == true)
        .map(|e| e["address"].clone())
        .collect();
    json!({
        "id": record.id, "firstName": text_or_empty(record, "firstName"), "lastName": text_or_empty(record, "lastName"),
        "name": client_name(record), "companyName": text(record, "companyName"), "title": text(record, "title"),
        "isCompany": record.fields.get("isCompany") == Some(&Value::Bool(true)),
        "isLead": record.fields.get("isLead") == Some(&Value::Bool(true)),
        "isArchived": record.fields.get("isArchived") == Some(&Value::Bool(true)),
        "isArchivable": true,
        "balance": record.fields.get("balance").and_then(number_value).unwrap_or(0.0),
        "createdAt": iso_s(record.created_at), "updatedAt": iso_s(record.updated_at),
        "emails": emails, "phones": phones, "defaultEmails": default_emails,
        "billingAddress": record.fields.get("billingAddress").and_then(Value::as_object).map_or(Value::Null, address_value),
        "jobberWebUri": web_uri("clients", record), "secondaryName": null,
    })
}

fn client_ref(records: &ProviderRecords, id: Option<&Value>) -> Value {
    let Some(id) = id.and_then(Value::as_str) else {
        return Value::Null;
    };
    match records.store_ref("clients").and_then(|s| s.get(id)) {
        Some(client) => json!({ "id": client.id, "name": client_name(client) }),
        None => json!({ "id": id }),
    }
}

fn job_node(records: &ProviderRecords, record: &Record) -> Value {
    let property = record
        .fields
        .get("propertyId")
        .and_then(Value::as_str)
        .map_or(Value::Null, |id| json!({ "id": id }));
    json!({
        "id": record.id, "jobNumber": record.fields.get("jobNumber").and_then(int_value).unwrap_or(record.seq as i64),
        "title": text(record, "title"), "instructions": text(record, "instructions"),
        "jobStatus": record.fields.get("jobStatus").cloned().unwrap_or_else(|| "active".into()),
        "jobType": record.fields.get("jobType").cloned().unwrap_or_else(|| "ONE_OFF".into()),
        "total": record.fields.get("total").and_then(number_value).unwrap_or(0.0),
        "startAt": text(record, "startAt"), "endAt": text(record, "endAt"), "completedAt": text(record, "completedAt"),
        "createdAt": iso_s(record.created_at), "updatedAt": iso_s(record.updated_at),
        "client": client_ref(records, record.fields.get("clientId")), "property": property,
        "jobberWebUri": web_uri("work_orders", record),
    })
}

fn property_node(records: &ProviderRecords, record: &Record) -> Value {
    let mut node = address_value(&record.fields);
    node["id"] = record.id.clone().into();
    let mut address = address_value(&record.fields);
    address["id"] = record.id.clone().into();
    node["address"] = address;
    node["isBillingAddress"] = (record.fields.get("isBillingAddress") == Some(&Value::Bool(true))).into();
    node["client"] = client_ref(records, record.fields.get("clientId"));
    node["createdAt"] = iso_s(record.created_at).into();
    node["updatedAt"] = iso_s(record.updated_at).into();
    node["jobberWebUri"] = web_uri("properties", record).into();
    node
}

fn node(records: &ProviderRecords, object: &str, record: &Record) -> Value {
    match object {
        "clients" => client_node(record),
        "jobs" => job_node(records, record),
        _ => property_node(records, record),
    }
}

fn node_by_id(records: &ProviderRecords, object: &str, id: &Value) -> Value {
    id.as_str()
        .and_then(|id| records.store_ref(object)?.get(id))
        .map_or(Value::Null, |record| node(records, object, record))
}

fn encode_cursor(record: &Record) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", record.updated_at.as_millisecond(), record.seq))
}

fn decode_cursor(cursor: &str) -> Option<(Timestamp, u64)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ms, seq) = text.split_once(':')?;
    Some((Timestamp::from_millisecond(ms.parse().ok()?).ok()?, seq.parse().ok()?))
}

/// An `Iso8601DateTimeRangeInput`, parsed: `after` (inclusive), `before` (exclusive), `eq`
/// (same second).
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    set: bool,
    after: Option<Timestamp>,
    before: Option<Timestamp>,
    eq: Option<Timestamp>,
}

impl Range {
    fn parse(range: &Value) -> Result<Range, String> {
        if range.is_null() {
            return Ok(Range::default());
        }
        let bound = |key: &str| -> Result<Option<Timestamp>, String> {
            match &range[key] {
                Value::Null => Ok(None),
                Value::String(s) => parse_time(s)
                    .map(Some)
                    .ok_or_else(|| format!("Argument '{key}' is not a valid ISO8601DateTime: {s}")),
                other => Err(format!("Argument '{key}' is not a valid ISO8601DateTime: {other}")),
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
        let Some(at) = at else {
            return false;
        };
        self.after.is_none_or(|a| at >= a)
            && self.before.is_none_or(|b| at < b)
            && self.eq.is_none_or(|e| at.as_second() == e.as_second())
    }
}

/// The date ranges of a connection's `filter`.
#[derive(Debug, Clone, Copy, Default)]
struct Ranges {
    updated: Range,
    created: Range,
    start: Range,
    end: Range,
    completed: Range,
}

impl Ranges {
    fn parse(filter: &Value) -> Result<Ranges, String> {
        Ok(Ranges {
            updated: Range::parse(&filter["updatedAt"])?,
            created: Range::parse(&filter["createdAt"])?,
            start: Range::parse(&filter["startAt"])?,
            end: Range::parse(&filter["endAt"])?,
            completed: Range::parse(&filter["completedAt"])?,
        })
    }
}

fn flag_matches(filter: &Value, key: &str, record: &Record) -> bool {
    match filter[key].as_bool() {
        None => true,
        Some(wanted) => (record.fields.get(key) == Some(&Value::Bool(true))) == wanted,
    }
}

fn field_time(record: &Record, key: &str) -> Option<Timestamp> {
    record.fields.get(key).and_then(Value::as_str).and_then(parse_time)
}

/// Whether `record` passes the connection's `filter` and `searchTerm`.
fn passes(object: &str, record: &Record, filter: &Value, ranges: &Ranges, term: Option<&str>) -> bool {
    let contains = |value: &str| term.is_none_or(|t| value.to_lowercase().contains(t));
    match object {
        "clients" => {
            let emails = record.fields.get("emails").and_then(Value::as_array);
            let term_ok = term.is_none()
                || contains(&client_name(record))
                || contains(&text_or_empty(record, "companyName"))
                || emails
                    .into_iter()
                    .flatten()
                    .any(|e| e["address"].as_str().is_some_and(contains));
            term_ok
                && ranges.updated.contains(Some(record.updated_at))
                && ranges.created.contains(Some(record.created_at))
                && flag_matches(filter, "isCompany", record)
                && flag_matches(filter, "isLead", record)
                && flag_matches(filter, "isArchived", record)
        }
        "jobs" => {
            let term_ok = term.is_none()
                || contains(&text_or_empty(record, "title"))
                || contains(&text_or_empty(record, "jobNumber"));
            let status_ok = filter["status"].as_str().is_none_or(|s| {
                record
                    .fields
                    .get("jobStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("active")
                    == s
            });
            let type_ok = filter["jobType"].as_str().is_none_or(|t| {
                record
                    .fields
                    .get("jobType")
                    .and_then(Value::as_str)
                    .unwrap_or("ONE_OFF")
                    == t
            });
            term_ok
                && status_ok
                && type_ok
                && ranges.created.contains(Some(record.created_at))
                && ranges.start.contains(field_time(record, "startAt"))
                && ranges.end.contains(field_time(record, "endAt"))
                && ranges.completed.contains(field_time(record, "completedAt"))
        }
        _ => {
            let term_ok = term.is_none() || ADDRESS_KEYS.iter().any(|k| contains(&text_or_empty(record, k)));
            let client_ok = filter["clientId"]
                .as_str()
                .is_none_or(|c| record.fields.get("clientId").and_then(Value::as_str) == Some(c));
            term_ok && client_ok
        }
    }
}

fn connection(records: &ProviderRecords, object: &str, field: &TopField) -> Outcome {
    let args = &Value::Object(field.args.clone());
    let first = match &args["first"] {
        Value::Null => MAX_FIRST,
        value => match int_value(value) {
            Some(n) if n >= 0 => n.min(MAX_FIRST),
            _ => {
                return Outcome::error(format!(
                    "Argument 'first' on Field '{}' has an invalid value",
                    field.name
                ));
            }
        },
    } as usize;
    let after = match args["after"].as_str().filter(|a| !a.is_empty()) {
        None => None,
        Some(cursor) => match decode_cursor(cursor) {
            Some(key) => Some(key),
            None => return Outcome::error(format!("Invalid cursor: {cursor}")),
        },
    };
    let term = args["searchTerm"]
        .as_str()
        .map(str::to_lowercase)
        .filter(|t| !t.is_empty());
    let filter = &args["filter"];
    let Some(store) = records.store_ref(object) else {
        return Outcome::error("unknown connection");
    };
    let ranges = match Ranges::parse(filter) {
        Ok(ranges) => ranges,
        Err(message) => return Outcome::error(message),
    };
    // Only `clients` filters on `updatedAt`; the index skips what is older.
    let since = if object == "clients" {
        ranges.updated.after
    } else {
        None
    };
    let matching: Vec<&Record> = store
        .modified_since(since)
        .filter(|record| passes(object, record, filter, &ranges, term.as_deref()))
        .collect();
    let start = after.map_or(0, |key| matching.partition_point(|r| r.key() <= key));
    let page: Vec<&Record> = matching.iter().skip(start).take(first).copied().collect();
    let has_next = start + page.len() < matching.len();
    let nodes: Vec<Value> = page.iter().map(|r| node(records, object, r)).collect();
    let mut value = json!({
        "nodes": nodes,
        "pageInfo": {
            "endCursor": page.last().map(|r| encode_cursor(r)),
            "hasNextPage": has_next,
            "hasPreviousPage": false,
            "startCursor": page.first().map(|r| encode_cursor(r)),
        },
        "totalCount": matching.len(),
    });
    if field.selection.contains("edges") {
        value["edges"] = page
            .iter()
            .zip(&nodes)
            .map(|(r, n)| json!({ "cursor": encode_cursor(r), "node": n }))
            .collect();
    }
    Outcome {
        value,
        nodes: Some(page.len()),
        error: None,
    }
}

fn type_ref(notation: &str) -> Value {
    if let Some(inner) = notation.strip_suffix('!') {
        return json!({ "kind": "NON_NULL", "name": null, "ofType": type_ref(inner) });
    }
    if let Some(inner) = notation.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return json!({ "kind": "LIST", "name": null, "ofType": type_ref(inner) });
    }
    let kind = KINDS
        .iter()
        .find(|(name, _)| *name == notation)
        .map_or("SCALAR", |(_, k)| *k);
    json!({ "kind": kind, "name": notation, "ofType": null })
}

/// `__type(name:)` for the record types.
fn describe_type(name: &str) -> Value {
    let Some((name, kind, fields)) = TYPES.iter().find(|(n, _, _)| *n == name) else {
        return Value::Null;
    };
    let input = *kind == "INPUT_OBJECT";
    let listed: Vec<Value> = fields
        .iter()
        .map(|(field, notation)| {
            if input {
                json!({ "name": field, "description": null, "type": type_ref(notation), "defaultValue": null })
            } else {
                json!({ "name": field, "description": null, "args": [], "type": type_ref(notation), "isDeprecated": false, "deprecationReason": null })
            }
        })
        .collect();
    json!({
        "name": name, "kind": kind, "description": null,
        "fields": if input { Value::Null } else { Value::Array(listed.clone()) },
        "inputFields": if input { Value::Array(listed) } else { Value::Null },
        "interfaces": if input { Value::Null } else { json!([]) },
        "enumValues": null, "possibleTypes": null,
    })
}

/// A mutation's payload: `{<node key>: node|null, userErrors}`.
fn payload(key: &str, node: Value, errors: Vec<Value>) -> Outcome {
    let mut value = Map::new();
    value.insert(key.to_owned(), if errors.is_empty() { node } else { Value::Null });
    value.insert("userErrors".into(), Value::Array(errors));
    Outcome::value(Value::Object(value))
}

fn user_error(message: impl Into<String>, path: &[&str]) -> Value {
    json!({ "message": message.into(), "path": path })
}

/// Checks an input object's keys; the coercion error Jobber's GraphQL layer would give.
fn check_keys(input: &Value, type_name: &str, allowed: &[&str]) -> Result<Map<String, Value>, String> {
    let Some(map) = input.as_object() else {
        return Err(format!(
            "Variable $input of type {type_name}! was provided invalid value"
        ));
    };
    if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "Variable $input of type {type_name}! was provided invalid value for {bad} (Field is not defined on {type_name})"
        ));
    }
    Ok(map.clone())
}

fn string_of(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        other => scalar_text(other).map_or(Value::Null, Value::String),
    }
}

fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

const TITLES: &[&str] = &["MR", "MS", "MRS", "MISS", "DR"];
const EMAIL_DESCRIPTIONS: &[&str] = &["MAIN", "WORK", "PERSONAL", "OTHER"];
const PHONE_DESCRIPTIONS: &[&str] = &["MAIN", "WORK", "MOBILE", "HOME", "FAX", "OTHER"];

fn description(value: &Value, allowed: &[&str]) -> String {
    value
        .as_str()
        .map(str::to_ascii_uppercase)
        .filter(|d| allowed.contains(&d.as_str()))
        .unwrap_or_else(|| "MAIN".to_owned())
}

/// A new email item from `EmailCreateAttributes`, or the user error.
fn new_email(records: &mut ProviderRecords, item: &Value, path: &[&str]) -> Result<Value, Value> {
    let address = item["address"].as_str().map(str::trim).unwrap_or_default();
    if !valid_email(address) {
        return Err(user_error("Email address is invalid", path));
    }
    Ok(json!({
        "id": records.sub_id("Email"), "address": address,
        "description": description(&item["description"], EMAIL_DESCRIPTIONS),
        "primary": bool_of(&item["primary"]).unwrap_or(false),
    }))
}

/// A new phone item from `PhoneNumberCreateAttributes`, or the user error.
fn new_phone(records: &mut ProviderRecords, item: &Value, path: &[&str]) -> Result<Value, Value> {
    let number = item["number"].as_str().map(str::trim).unwrap_or_default();
    if number.chars().filter(char::is_ascii_digit).count() < 3 {
        return Err(user_error("Phone number is invalid", path));
    }
    Ok(json!({
        "id": records.sub_id("PhoneNumber"), "number": number,
        "description": description(&item["description"], PHONE_DESCRIPTIONS),
        "primary": bool_of(&item["primary"]).unwrap_or(false),
        "smsAllowed": bool_of(&item["smsAllowed"]).unwrap_or(false),
    }))
}

/// Leaves exactly one primary item (the last one marked, else the first).
fn one_primary(items: &mut [Value]) {
    let chosen = items.iter().rposition(|i| i["primary"] == true).unwrap_or(0);
    for (index, item) in items.iter_mut().enumerate() {
        item["primary"] = (index == chosen).into();
    }
}

fn address_fields(input: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for key in ADDRESS_KEYS {
        if let Some(value) = input.get(*key) {
            out.insert((*key).to_owned(), string_of(value));
        }
    }
    out
}

/// Applies the scalar client fields of a create/edit input to `fields`.
fn apply_client_scalars(fields: &mut Map<String, Value>, input: &Map<String, Value>, errors: &mut Vec<Value>) {
    for key in ["firstName", "lastName", "companyName"] {
        if let Some(value) = input.get(key) {
            fields.insert(key.to_owned(), string_of(value));
        }
    }
    if let Some(title) = input.get("title") {
        match title {
            Value::Null => {
                fields.insert("title".into(), Value::Null);
            }
            Value::String(t) if TITLES.contains(&t.to_ascii_uppercase().as_str()) => {
                fields.insert("title".into(), t.to_ascii_uppercase().into());
            }
            other => errors.push(user_error(format!("Title {other} is not valid"), &["title"])),
        }
    }
    if let Some(value) = input.get("isCompany") {
        match (value, bool_of(value)) {
            (Value::Null, _) => {
                fields.insert("isCompany".into(), false.into());
            }
            (_, Some(b)) => {
                fields.insert("isCompany".into(), b.into());
            }
            _ => errors.push(user_error("Is company must be true or false", &["isCompany"])),
        }
    }
    if let Some(address) = input.get("billingAddress") {
        match address {
            Value::Null => {
                fields.insert("billingAddress".into(), Value::Null);
            }
            Value::Object(_) => {
                let mut merged = fields
                    .get("billingAddress")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                merged.extend(address_fields(address));
                fields.insert("billingAddress".into(), Value::Object(merged));
            }
            _ => errors.push(user_error("Billing address is invalid", &["billingAddress"])),
        }
    }
}

fn check_client_name(fields: &Map<String, Value>, errors: &mut Vec<Value>) {
    let blank = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
    };
    if blank("firstName") && blank("lastName") && blank("companyName") {
        errors.push(user_error("First name or company name is required", &["firstName"]));
    }
}

fn items(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn client_create(records: &mut ProviderRecords, input: &Value) -> Outcome {
    let allowed = [
        "title",
        "firstName",
        "lastName",
        "companyName",
        "isCompany",
        "phones",
        "emails",
        "properties",
        "billingAddress",
        "customFields",
    ];
    let input = match check_keys(input, "ClientCreateInput", &allowed) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let mut errors = Vec::new();
    let mut fields = Map::new();
    for (key, value) in [
        ("isCompany", Value::Bool(false)),
        ("isLead", Value::Bool(false)),
        ("isArchived", Value::Bool(false)),
        ("balance", json!(0.0)),
        ("billingAddress", Value::Null),
    ] {
        fields.insert(key.into(), value);
    }
    apply_client_scalars(&mut fields, &input, &mut errors);
    let mut emails = Vec::new();
    for (i, item) in items(input.get("emails")).iter().enumerate() {
        match new_email(records, item, &["emails", &i.to_string(), "address"]) {
            Ok(email) => emails.push(email),
            Err(error) => errors.push(error),
        }
    }
    let mut phones = Vec::new();
    for (i, item) in items(input.get("phones")).iter().enumerate() {
        match new_phone(records, item, &["phones", &i.to_string(), "number"]) {
            Ok(phone) => phones.push(phone),
            Err(error) => errors.push(error),
        }
    }
    check_client_name(&fields, &mut errors);
    if !errors.is_empty() {
        return payload("client", Value::Null, errors);
    }
    if !emails.is_empty() {
        one_primary(&mut emails);
    }
    if !phones.is_empty() {
        one_primary(&mut phones);
    }
    fields.insert("emails".into(), Value::Array(emails));
    fields.insert("phones".into(), Value::Array(phones));
    let Some(id) = records.create("clients", fields, None) else {
        return Outcome::error("clients are not available");
    };
    if let Some(store) = records.store("clients") {
        store.creates += 1;
    }
    for property in items(input.get("properties")) {
        create_property(records, &id, &property["address"], false);
    }
    payload("client", node_by_id(records, "clients", &Value::String(id)), Vec::new())
}

/// Applies `<kind>sToAdd/ToEdit/ToDelete` to the client's `emails`/`phones`.
fn edit_items(
    records: &mut ProviderRecords,
    fields: &mut Map<String, Value>,
    input: &Map<String, Value>,
    list: &str,
    errors: &mut Vec<Value>,
) {
    let (add, edit, delete, value_key) = if list == "emails" {
        ("emailsToAdd", "emailsToEdit", "emailsToDelete", "address")
    } else {
        ("phonesToAdd", "phonesToEdit", "phonesToDelete", "number")
    };
    let mut current = items(fields.get(list));
    current.retain(Value::is_object);
    let deleted: BTreeSet<String> = items(input.get(delete)).iter().filter_map(scalar_text).collect();
    current.retain(|item| item["id"].as_str().is_none_or(|id| !deleted.contains(id)));
    let mut marked_primary = false;
    for (i, change) in items(input.get(edit)).iter().enumerate() {
        let index = i.to_string();
        let id = change["id"].as_str().unwrap_or_default();
        let Some(item) = current.iter_mut().find(|item| item["id"] == id) else {
            let what = if list == "emails" { "Email" } else { "Phone number" };
            errors.push(user_error(format!("{what} not found"), &[edit, &index, "id"]));
            continue;
        };
        if let Some(value) = change.get(value_key).filter(|v| !v.is_null()) {
            let text = value.as_str().map(str::trim).unwrap_or_default();
            let valid = if list == "emails" {
                valid_email(text)
            } else {
                text.chars().filter(char::is_ascii_digit).count() >= 3
            };
            if !valid {
                let message = if list == "emails" {
                    "Email address is invalid"
                } else {
                    "Phone number is invalid"
                };
                errors.push(user_error(message, &[edit, &index, value_key]));
                continue;
            }
            item[value_key] = text.into();
        }
        if let Some(d) = change.get("description").filter(|v| !v.is_null()) {
            let allowed = if list == "emails" {
                EMAIL_DESCRIPTIONS
            } else {
                PHONE_DESCRIPTIONS
            };
            item["description"] = description(d, allowed).into();
        }
        if let Some(sms) = change.get("smsAllowed").and_then(bool_of) {
            item["smsAllowed"] = sms.into();
        }
        if let Some(primary) = change.get("primary").and_then(bool_of) {
            item["primary"] = primary.into();
            marked_primary |= primary;
        }
    }
    for (i, addition) in items(input.get(add)).iter().enumerate() {
        let index = i.to_string();
        let path = [add, index.as_str(), value_key];
        let made = if list == "emails" {
            new_email(records, addition, &path)
        } else {
            new_phone(records, addition, &path)
        };
        match made {
            Ok(item) => {
                marked_primary |= item["primary"] == true;
                current.push(item);
            }
            Err(error) => errors.push(error),
        }
    }
    if !current.is_empty() && (marked_primary || !current.iter().any(|i| i["primary"] == true)) {
        one_primary(&mut current);
    }
    fields.insert(list.to_owned(), Value::Array(current));
}

fn client_edit(records: &mut ProviderRecords, client_id: &Value, input: &Value) -> Outcome {
    let allowed = [
        "title",
        "firstName",
        "lastName",
        "companyName",
        "isCompany",
        "phonesToAdd",
        "phonesToEdit",
        "phonesToDelete",
        "emailsToAdd",
        "emailsToEdit",
        "emailsToDelete",
        "billingAddress",
        "customFields",
    ];
    let input = match check_keys(input, "ClientEditInput", &allowed) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let id = client_id.as_str().unwrap_or_default().to_owned();
    let Some(mut fields) = records
        .store_ref("clients")
        .and_then(|s| s.get(&id))
        .map(|r| r.fields.clone())
    else {
        return payload(
            "client",
            Value::Null,
            vec![user_error("Client not found", &["clientId"])],
        );
    };
    let mut errors = Vec::new();
    apply_client_scalars(&mut fields, &input, &mut errors);
    edit_items(records, &mut fields, &input, "emails", &mut errors);
    edit_items(records, &mut fields, &input, "phones", &mut errors);
    check_client_name(&fields, &mut errors);
    if !errors.is_empty() {
        return payload("client", Value::Null, errors);
    }
    records.update("clients", &id, fields, false);
    if let Some(store) = records.store("clients") {
        store.updates += 1;
    }
    payload("client", node_by_id(records, "clients", &Value::String(id)), Vec::new())
}

/// The `startAt` of a `timeframe`, as ISO text.
fn timeframe_start(input: &Map<String, Value>) -> Option<Value> {
    let start = input.get("timeframe")?.get("startAt")?.as_str()?;
    parse_time(start).map(|t| Value::String(iso_s(t)))
}

/// Applies the job fields of a create/edit input (with lenient extras: `total`, `startAt`,
/// `endAt`, `completedAt`, `jobStatus`, `jobType`).
fn apply_job(fields: &mut Map<String, Value>, input: &Map<String, Value>, errors: &mut Vec<Value>) {
    for key in ["title", "instructions"] {
        if let Some(value) = input.get(key) {
            fields.insert(key.to_owned(), string_of(value));
        }
    }
    if let Some(value) = input.get("jobNumber").filter(|v| !v.is_null()) {
        match int_value(value) {
            Some(n) if n > 0 => {
                fields.insert("jobNumber".into(), n.into());
            }
            _ => errors.push(user_error("Job number is invalid", &["jobNumber"])),
        }
    }
    if let Some(value) = input.get("total").filter(|v| !v.is_null()) {
        match number_value(value) {
            Some(total) => {
                fields.insert("total".into(), json!(total));
            }
            None => errors.push(user_error("Total is invalid", &["total"])),
        }
    }
    if let Some(lines) = input.get("lineItems").and_then(Value::as_array) {
        let total: f64 = lines
            .iter()
            .map(|l| {
                let quantity = number_value(&l["quantity"]).unwrap_or(1.0);
                number_value(&l["unitPrice"])
                    .map_or_else(|| number_value(&l["totalPrice"]).unwrap_or(0.0), |p| p * quantity)
            })
            .sum();
        fields.insert("total".into(), json!(total));
    }
    if let Some(start) = timeframe_start(input) {
        fields.insert("startAt".into(), start);
    }
    for key in ["startAt", "endAt", "completedAt"] {
        match input.get(key) {
            None => {}
            Some(Value::Null) => {
                fields.insert(key.into(), Value::Null);
            }
            Some(value) => match value.as_str().and_then(parse_time) {
                Some(at) => {
                    fields.insert(key.into(), iso_s(at).into());
                }
                None => errors.push(user_error(format!("{key} is not a valid date and time"), &[key])),
            },
        }
    }
    for (key, allowed) in [
        (
            "jobStatus",
            &[
                "requires_invoicing",
                "archived",
                "late",
                "today",
                "upcoming",
                "action_required",
                "on_hold",
                "unscheduled",
                "active",
            ][..],
        ),
        ("jobType", &["ONE_OFF", "RECURRING"][..]),
    ] {
        if let Some(value) = input.get(key).filter(|v| !v.is_null()) {
            match value.as_str().filter(|v| allowed.contains(v)) {
                Some(v) => {
                    fields.insert(key.into(), v.into());
                }
                None => errors.push(user_error(format!("{key} {value} is not valid"), &[key])),
            }
        }
    }
}

const JOB_CREATE_KEYS: &[&str] = &[
    "propertyId",
    "quoteId",
    "requestId",
    "jobFormIds",
    "title",
    "jobNumber",
    "instructions",
    "timeframe",
    "scheduling",
    "invoicing",
    "lineItems",
    "customFields",
    "clientId",
    "total",
    "startAt",
    "endAt",
    "completedAt",
    "jobStatus",
    "jobType",
];

const JOB_EDIT_KEYS: &[&str] = &[
    "jobNumber",
    "title",
    "instructions",
    "signature",
    "timeframe",
    "scheduling",
    "invoicing",
    "customFields",
    "lineItems",
    "total",
    "startAt",
    "endAt",
    "completedAt",
    "jobStatus",
    "jobType",
];

fn job_create(records: &mut ProviderRecords, input: &Value) -> Outcome {
    let input = match check_keys(input, "JobCreateAttributes", JOB_CREATE_KEYS) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let mut errors = Vec::new();
    let mut fields = Map::new();
    let next_number = records.store_ref("jobs").map_or(0, |s| {
        s.in_id_order()
            .filter_map(|r| r.fields.get("jobNumber").and_then(int_value))
            .max()
            .unwrap_or(0)
    }) + 1;
    fields.insert("jobNumber".into(), next_number.into());
    fields.insert("jobStatus".into(), "active".into());
    fields.insert("jobType".into(), "ONE_OFF".into());
    fields.insert("total".into(), json!(0.0));
    if let Some(property_id) = input.get("propertyId").and_then(Value::as_str) {
        match records.store_ref("properties").and_then(|s| s.get(property_id)) {
            Some(property) => {
                fields.insert("propertyId".into(), property_id.into());
                fields.insert("clientId".into(), text(property, "clientId"));
            }
            None => errors.push(user_error("Property not found", &["propertyId"])),
        }
    }
    if let Some(client_id) = input.get("clientId").and_then(Value::as_str) {
        if records.store_ref("clients").and_then(|s| s.get(client_id)).is_some() {
            fields.insert("clientId".into(), client_id.into());
        } else {
            errors.push(user_error("Client not found", &["clientId"]));
        }
    }
    apply_job(&mut fields, &input, &mut errors);
    if !errors.is_empty() {
        return payload("job", Value::Null, errors);
    }
    let Some(id) = records.create("jobs", fields, None) else {
        return Outcome::error("jobs are not available");
    };
    if let Some(store) = records.store("jobs") {
        store.creates += 1;
    }
    payload("job", node_by_id(records, "jobs", &Value::String(id)), Vec::new())
}

fn job_edit(records: &mut ProviderRecords, job_id: &Value, input: &Value) -> Outcome {
    let input = match check_keys(input, "JobEditInput", JOB_EDIT_KEYS) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let id = job_id.as_str().unwrap_or_default().to_owned();
    let Some(mut fields) = records
        .store_ref("jobs")
        .and_then(|s| s.get(&id))
        .map(|r| r.fields.clone())
    else {
        return payload("job", Value::Null, vec![user_error("Job not found", &["jobId"])]);
    };
    let mut errors = Vec::new();
    apply_job(&mut fields, &input, &mut errors);
    if !errors.is_empty() {
        return payload("job", Value::Null, errors);
    }
    records.update("jobs", &id, fields, false);
    if let Some(store) = records.store("jobs") {
        store.updates += 1;
    }
    payload("job", node_by_id(records, "jobs", &Value::String(id)), Vec::new())
}

/// Creates a property of `client_id` from `AddressAttributes`; its id.
fn create_property(records: &mut ProviderRecords, client_id: &str, address: &Value, billing: bool) -> Option<String> {
    let mut fields = Map::new();
    for key in ADDRESS_KEYS {
        fields.insert((*key).to_owned(), "".into());
    }
    fields.extend(address_fields(address));
    for key in ADDRESS_KEYS {
        if fields.get(*key).is_none_or(Value::is_null) {
            fields.insert((*key).to_owned(), "".into());
        }
    }
    fields.insert("isBillingAddress".into(), billing.into());
    fields.insert("clientId".into(), client_id.into());
    let id = records.create("properties", fields, None)?;
    if let Some(store) = records.store("properties") {
        store.creates += 1;
    }
    Some(id)
}

/// The addresses a `PropertyCreateInput` asks for: `{properties: [{address}]}`, or (leniently)
/// one `{address}` or flat address fields.
fn property_addresses(input: &Map<String, Value>) -> Vec<Value> {
    if let Some(list) = input.get("properties").and_then(Value::as_array) {
        return list
            .iter()
            .map(|p| p.get("address").cloned().unwrap_or(Value::Null))
            .collect();
    }
    if let Some(address) = input.get("address").filter(|a| a.is_object()) {
        return vec![address.clone()];
    }
    vec![Value::Object(input.clone())]
}

fn property_create(records: &mut ProviderRecords, client_id: &Value, input: &Value) -> Outcome {
    let mut allowed = vec!["properties", "address", "isBillingAddress"];
    allowed.extend(ADDRESS_KEYS);
    let input = match check_keys(input, "PropertyCreateInput", &allowed) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let client_id = client_id.as_str().unwrap_or_default().to_owned();
    if records.store_ref("clients").and_then(|s| s.get(&client_id)).is_none() {
        let mut outcome = payload(
            "client",
            Value::Null,
            vec![user_error("Client not found", &["clientId"])],
        );
        outcome.value["properties"] = json!([]);
        outcome.value["property"] = Value::Null;
        return outcome;
    }
    let billing = input.get("isBillingAddress").and_then(bool_of).unwrap_or(false);
    let created: Vec<String> = property_addresses(&input)
        .iter()
        .filter_map(|address| create_property(records, &client_id, address, billing))
        .collect();
    let nodes: Vec<Value> = created
        .iter()
        .map(|id| node_by_id(records, "properties", &Value::String(id.clone())))
        .collect();
    let client = node_by_id(records, "clients", &Value::String(client_id));
    Outcome::value(json!({
        "client": client, "property": nodes.first().cloned().unwrap_or(Value::Null),
        "properties": nodes, "userErrors": [],
    }))
}

fn property_edit(records: &mut ProviderRecords, property_id: &Value, input: &Value) -> Outcome {
    let mut allowed = vec!["address", "isBillingAddress"];
    allowed.extend(ADDRESS_KEYS);
    let input = match check_keys(input, "PropertyEditInput", &allowed) {
        Ok(input) => input,
        Err(message) => return Outcome::error(message),
    };
    let id = property_id.as_str().unwrap_or_default().to_owned();
    let Some(mut fields) = records
        .store_ref("properties")
        .and_then(|s| s.get(&id))
        .map(|r| r.fields.clone())
    else {
        return payload(
            "property",
            Value::Null,
            vec![user_error("Property not found", &["propertyId"])],
        );
    };
    let address = input
        .get("address")
        .cloned()
        .unwrap_or_else(|| Value::Object(input.clone()));
    for (key, value) in address_fields(&address) {
        fields.insert(key, if value.is_null() { "".into() } else { value });
    }
    if let Some(billing) = input.get("isBillingAddress").and_then(bool_of) {
        fields.insert("isBillingAddress".into(), billing.into());
    }
    records.update("properties", &id, fields, false);
    if let Some(store) = records.store("properties") {
        store.updates += 1;
    }
    payload(
        "property",
        node_by_id(records, "properties", &Value::String(id)),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Provider;
    use crate::sandbox::records::RecordsState;

    fn send(records: &mut ProviderRecords, query: &str, variables: Value) -> (u16, Value) {
        let request = SandboxRequest {
            method: http::Method::POST,
            path: "/api/graphql".into(),
            query: Default::default(),
            headers: {
                let mut headers = http::HeaderMap::new();
                headers.insert("x-jobber-graphql-version", http::HeaderValue::from_static("2025-04-16"));
                headers
            },
            body: bytes::Bytes::from(json!({ "query": query, "variables": variables }).to_string()),
        };
        assert!(claims(&request) || query.contains("account"));
        let reply = handle(
            records,
            &Call {
                request: &request,
                path: "/api/graphql",
                account: 1,
                now_ms: super::super::now_ms(),
            },
        );
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    fn seeded(n: usize) -> RecordsState {
        let mut state = RecordsState::default();
        super::super::seed::seed_provider(state.provider(Provider::Jobber), Provider::Jobber, n);
        state
    }

    const LIST: &str = "query List($filter: ClientFilterAttributes, $first: Int, $after: String) { clients(filter: $filter, first: $first, after: $after) { nodes { id updatedAt } pageInfo { endCursor hasNextPage } totalCount } }";

    #[test]
    fn clients_page_in_update_order_from_a_time() {
        let mut state = seeded(25);
        let records = state.provider(Provider::Jobber);
        let filter = json!({ "updatedAt": { "after": "2025-01-01T00:00:05Z" } });
        let mut after = Value::Null;
        let mut seen = Vec::new();
        loop {
            let (status, body) = send(records, LIST, json!({ "filter": filter, "first": 8, "after": after }));
            assert_eq!(status, 200);
            let clients = &body["data"]["clients"];
            assert_eq!(clients["totalCount"], 20);
            seen.extend(
                clients["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["updatedAt"].as_str().unwrap().to_owned()),
            );
            assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 9);
            assert_eq!(body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"], 10_000);
            if clients["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = clients["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[0], "2025-01-01T00:00:05Z");
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(records.graphql_versions.get("2025-04-16"), Some(&3));
    }

    #[test]
    fn client_nodes_have_the_real_shape() {
        let mut state = seeded(3);
        let records = state.provider(Provider::Jobber);
        let id = super::super::make_id(Provider::Jobber, "clients", 2);
        let (_, body) = send(
            records,
            "query One($id: EncodedId!) { client(id: $id) { id } }",
            json!({ "id": id }),
        );
        let client = &body["data"]["client"];
        assert_eq!(client["id"], id);
        assert_eq!(client["emails"][0]["description"], "MAIN");
        assert_eq!(client["emails"][0]["primary"], true);
        assert!(client["phones"][0]["friendly"].as_str().unwrap().starts_with('('));
        assert!(
            client["phones"][0]["normalizedPhoneNumber"]
                .as_str()
                .unwrap()
                .starts_with("+1")
        );
        assert!(
            client["billingAddress"]["street1"]
                .as_str()
                .unwrap()
                .ends_with("Main St")
        );
        assert_eq!(client["isCompany"], false);
        let (_, body) = send(
            records,
            "query One($id: EncodedId!) { client(id: $id) { id } }",
            json!({ "id": "nope" }),
        );
        assert_eq!(body["data"]["client"], Value::Null);
    }

    #[test]
    fn mutations_report_user_errors_with_200() {
        let mut state = seeded(2);
        let records = state.provider(Provider::Jobber);
        let create = "mutation Create($input: ClientCreateInput!) { clientCreate(input: $input) { client { id } userErrors { message path } } }";
        let (status, body) = send(
            records,
            create,
            json!({ "input": { "firstName": "Ann", "emails": [{ "address": "broken", "primary": true }] } }),
        );
        assert_eq!(status, 200);
        let payload = &body["data"]["clientCreate"];
        assert_eq!(payload["client"], Value::Null);
        assert_eq!(
            payload["userErrors"],
            json!([{ "message": "Email address is invalid", "path": ["emails", "0", "address"] }])
        );
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 10);
        let (_, body) = send(records, create, json!({ "input": { "title": "MR" } }));
        assert_eq!(
            body["data"]["clientCreate"]["userErrors"][0]["message"],
            "First name or company name is required"
        );
        let (_, body) = send(
            records,
            create,
            json!({ "input": { "firstName": "Ann", "lastName": "Lee", "emails": [{ "address": "ann@x.io", "description": "MAIN", "primary": true }],
                               "phones": [{ "number": "415-234-5678", "primary": true }], "billingAddress": { "city": "Boston" } } }),
        );
        let client = &body["data"]["clientCreate"]["client"];
        assert_eq!(client["name"], "Ann Lee");
        assert_eq!(client["billingAddress"]["city"], "Boston");
        let id = client["id"].as_str().unwrap().to_owned();
        let email_id = client["emails"][0]["id"].as_str().unwrap().to_owned();
        let edit = "mutation Edit($clientId: EncodedId!, $input: ClientEditInput!) { clientEdit(clientId: $clientId, input: $input) { client { id } userErrors { message path } } }";
        let (_, body) = send(
            records,
            edit,
            json!({ "clientId": id, "input": { "emailsToEdit": [{ "id": email_id, "address": "new@x.io" }], "phonesToAdd": [{ "number": "212-555-0000", "primary": true }] } }),
        );
        let client = &body["data"]["clientEdit"]["client"];
        assert_eq!(client["emails"][0]["address"], "new@x.io");
        assert_eq!(client["phones"].as_array().unwrap().len(), 2);
        assert_eq!(client["phones"][1]["primary"], true);
        assert_eq!(client["phones"][0]["primary"], false);
        let (_, body) = send(records, edit, json!({ "clientId": "missing", "input": {} }));
        assert_eq!(
            body["data"]["clientEdit"]["userErrors"][0]["message"],
            "Client not found"
        );
        let (_, body) = send(records, edit, json!({ "clientId": id, "input": { "bogus": 1 } }));
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("bogus"));
        let stats = records.store_ref("clients").unwrap();
        assert_eq!((stats.creates, stats.updates), (1, 1));
    }

    #[test]
    fn jobs_and_properties_mutate() {
        let mut state = seeded(10);
        let records = state.provider(Provider::Jobber);
        let client = super::super::make_id(Provider::Jobber, "clients", 1);
        let (_, body) = send(
            records,
            "mutation P($clientId: EncodedId!, $input: PropertyCreateInput!) { propertyCreate(clientId: $clientId, input: $input) { properties { id } userErrors { message } } }",
            json!({ "clientId": client, "input": { "properties": [{ "address": { "street1": "1 Elm St", "city": "Austin" } }] } }),
        );
        let property = body["data"]["propertyCreate"]["properties"][0].clone();
        assert_eq!(property["city"], "Austin");
        assert_eq!(property["client"]["id"], client);
        let (_, body) = send(
            records,
            "mutation J($input: JobCreateAttributes!) { jobCreate(input: $input) { job { id } userErrors { message } } }",
            json!({ "input": { "propertyId": property["id"], "title": "Fix sink", "total": "120.5" } }),
        );
        let job = &body["data"]["jobCreate"]["job"];
        assert_eq!(job["title"], "Fix sink");
        assert_eq!(job["total"], 120.5);
        assert_eq!(job["jobNumber"], 3);
        assert_eq!(job["client"]["id"], client);
        let (_, body) = send(
            records,
            "mutation E($jobId: EncodedId!, $input: JobEditInput!) { jobEdit(jobId: $jobId, input: $input) { job { id } userErrors { message } } }",
            json!({ "jobId": job["id"], "input": { "title": "Fix sinks" } }),
        );
        assert_eq!(body["data"]["jobEdit"]["job"]["title"], "Fix sinks");
        let (_, body) = send(
            records,
            "query($first: Int) { jobs(first: $first) { edges { cursor node { id } } nodes { id } totalCount } }",
            json!({ "first": 2 }),
        );
        assert_eq!(body["data"]["jobs"]["totalCount"], 3);
        assert_eq!(body["data"]["jobs"]["edges"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn introspection_describes_record_types() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Jobber);
        let query = "query T($name: String!) { __type(name: $name) { name fields { name } inputFields { name } } }";
        let (_, body) = send(records, query, json!({ "name": "Client" }));
        let fields = body["data"]["__type"]["fields"].as_array().unwrap();
        let first_name = fields.iter().find(|f| f["name"] == "firstName").unwrap();
        assert_eq!(
            first_name["type"],
            json!({ "kind": "NON_NULL", "name": null, "ofType": { "kind": "SCALAR", "name": "String", "ofType": null } })
        );
        let (_, body) = send(records, query, json!({ "name": "ClientCreateInput" }));
        assert_eq!(body["data"]["__type"]["kind"], "INPUT_OBJECT");
        assert!(
            body["data"]["__type"]["inputFields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "emails")
        );
        let (_, body) = send(records, query, json!({ "name": "Nope" }));
        assert_eq!(body["data"]["__type"], Value::Null);
    }

    #[test]
    fn throttling_and_ddos_guard() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Jobber);
        records.bucket.configure(true, 150, super::super::now_ms());
        let (status, body) = send(records, LIST, json!({ "first": 100 }));
        assert_eq!(status, 200);
        assert!(body["data"]["clients"].is_object());
        let available = body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
            .as_i64()
            .unwrap();
        assert!(available >= 148, "refunded to actual cost: {available}");
        records.bucket.configure(true, 50, super::super::now_ms());
        let (status, body) = send(records, LIST, json!({ "first": 100 }));
        assert_eq!(status, 200);
        assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 101);
        assert!(body.get("data").is_none());
        records.limit.configure(true, 1, 300_000);
        let (status, _) = send(records, LIST, json!({ "first": 1 }));
        assert_eq!(status, 200);
        let (status, _) = send(records, LIST, json!({ "first": 1 }));
        assert_eq!(status, 429);
        assert_eq!(records.rate_limited, 2);
    }

    #[test]
    fn unknown_fields_are_graphql_errors() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Jobber);
        let (status, body) = send(records, "{ clients { nodes { id } } bogus }", json!({}));
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["message"],
            "Field 'bogus' doesn't exist on type 'Query'"
        );
    }
}
