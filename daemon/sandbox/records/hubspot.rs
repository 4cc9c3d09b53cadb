//! HubSpot CRM v3 under `<sandbox>/hubspot`: the properties API, objects (list, get, create,
//! update, archive), batch create/read/update of up to 100 inputs with 207 partial results,
//! the search API (filters, sorts, offset paging, the 10 000-result cap; a change reaches it
//! only after the index delay, a few seconds by default), the ten-secondly rate limit with its
//! `X-HubSpot-RateLimit-*` headers, and the search API's own limit of 5 a second (no headers).
//!
//! Property values are stored and answered as strings; `hs_object_id`, `createdate` and
//! `lastmodifieddate`/`hs_lastmodifieddate` are computed from the record.

use std::cmp::Ordering;

use http::Method;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::limits::{Refusal, Usage};
use super::{Call, ProviderRecords, Record, iso_ms, number_value, parse_time, scalar_text, valid_email};
use crate::sandbox::request::{Reply, SandboxRequest, empty_reply, json_reply};

/// Most inputs per batch call.
pub const BATCH_LIMIT: usize = 100;
/// Largest search page.
pub const SEARCH_LIMIT: u64 = 200;
/// Largest list page.
pub const LIST_LIMIT: u64 = 100;
/// The search API serves at most this many results per query.
pub const SEARCH_CAP: u64 = 10_000;

/// One property of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Prop {
    /// Internal name.
    pub name: &'static str,
    /// Display label.
    pub label: &'static str,
    /// `string`, `number`, `datetime` or `enumeration`.
    pub kind: &'static str,
    /// The form field type (`text`, `phonenumber`, `select`, …).
    pub field_type: &'static str,
    /// Property group.
    pub group: &'static str,
    /// Set by HubSpot only.
    pub read_only: bool,
    /// Allowed `(value, label)` pairs of an enumeration.
    pub options: &'static [(&'static str, &'static str)],
}

const fn text(name: &'static str, label: &'static str, group: &'static str) -> Prop {
    Prop {
        name,
        label,
        kind: "string",
        field_type: "text",
        group,
        read_only: false,
        options: &[],
    }
}

const fn phone(name: &'static str, label: &'static str, group: &'static str) -> Prop {
    Prop {
        field_type: "phonenumber",
        ..text(name, label, group)
    }
}

const fn system(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    field_type: &'static str,
    group: &'static str,
) -> Prop {
    Prop {
        name,
        label,
        kind,
        field_type,
        group,
        read_only: true,
        options: &[],
    }
}

const fn choice(
    name: &'static str,
    label: &'static str,
    group: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> Prop {
    Prop {
        name,
        label,
        kind: "enumeration",
        field_type: "select",
        group,
        read_only: false,
        options,
    }
}

const LIFECYCLE_STAGES: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

/// Deal stages of the default pipeline.
pub const DEAL_STAGES: &[(&str, &str)] = &[
    ("appointmentscheduled", "Appointment Scheduled"),
    ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"),
    ("contractsent", "Contract Sent"),
    ("closedwon", "Closed Won"),
    ("closedlost", "Closed Lost"),
];

/// Industries (a subset of HubSpot's list).
pub const INDUSTRIES: &[(&str, &str)] = &[
    ("ACCOUNTING", "Accounting"),
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("CONSTRUCTION", "Construction"),
    ("CONSUMER_SERVICES", "Consumer Services"),
    ("FACILITIES_SERVICES", "Facilities Services"),
    ("FOOD_BEVERAGES", "Food & Beverages"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("REAL_ESTATE", "Real Estate"),
    ("RETAIL", "Retail"),
    ("UTILITIES", "Utilities"),
];

const CONTACT_PROPS: &[Prop] = &[
    text("firstname", "First Name", "contactinformation"),
    text("lastname", "Last Name", "contactinformation"),
    text("email", "Email", "contactinformation"),
    phone("phone", "Phone Number", "contactinformation"),
    phone("mobilephone", "Mobile Phone Number", "contactinformation"),
    text("company", "Company Name", "contactinformation"),
    text("address", "Street Address", "contactinformation"),
    text("city", "City", "contactinformation"),
    text("state", "State/Region", "contactinformation"),
    text("zip", "Postal Code", "contactinformation"),
    text("country", "Country/Region", "contactinformation"),
    text("jobtitle", "Job Title", "contactinformation"),
    text("website", "Website URL", "contactinformation"),
    choice(
        "lifecyclestage",
        "Lifecycle Stage",
        "contactinformation",
        LIFECYCLE_STAGES,
    ),
    system("hs_object_id", "Record ID", "number", "number", "contactinformation"),
    system("createdate", "Create Date", "datetime", "date", "contactinformation"),
    system(
        "lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "contactinformation",
    ),
];

const COMPANY_PROPS: &[Prop] = &[
    text("name", "Company name", "companyinformation"),
    text("domain", "Company Domain Name", "companyinformation"),
    phone("phone", "Phone Number", "companyinformation"),
    text("address", "Street Address", "companyinformation"),
    text("city", "City", "companyinformation"),
    text("state", "State/Region", "companyinformation"),
    text("zip", "Postal Code", "companyinformation"),
    text("country", "Country/Region", "companyinformation"),
    choice("industry", "Industry", "companyinformation", INDUSTRIES),
    system("hs_object_id", "Record ID", "number", "number", "companyinformation"),
    system("createdate", "Create Date", "datetime", "date", "companyinformation"),
    system(
        "hs_lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "companyinformation",
    ),
];

const DEAL_PROPS: &[Prop] = &[
    text("dealname", "Deal Name", "dealinformation"),
    Prop {
        kind: "number",
        field_type: "number",
        ..text("amount", "Amount", "dealinformation")
    },
    choice("dealstage", "Deal Stage", "dealinformation", DEAL_STAGES),
    choice(
        "pipeline",
        "Pipeline",
        "dealinformation",
        &[("default", "Sales Pipeline")],
    ),
    Prop {
        kind: "datetime",
        field_type: "date",
        ..text("closedate", "Close Date", "dealinformation")
    },
    system("hs_object_id", "Record ID", "number", "number", "dealinformation"),
    system("createdate", "Create Date", "datetime", "date", "dealinformation"),
    system(
        "hs_lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "dealinformation",
    ),
];

/// The property catalog of `object`.
pub fn catalog(object: &str) -> &'static [Prop] {
    match object {
        "contacts" => CONTACT_PROPS,
        "companies" => COMPANY_PROPS,
        _ => DEAL_PROPS,
    }
}

fn prop(object: &str, name: &str) -> Option<&'static Prop> {
    catalog(object).iter().find(|p| p.name == name)
}

/// The last-modified property of `object`.
pub fn modified_prop(object: &str) -> &'static str {
    if object == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

/// Properties answered when none are asked for.
fn default_props(object: &str) -> &'static [&'static str] {
    match object {
        "contacts" => &["firstname", "lastname", "email"],
        "companies" => &["name", "domain"],
        _ => &["dealname", "amount", "dealstage", "pipeline", "closedate"],
    }
}

fn object_name(raw: &str) -> Option<&'static str> {
    match raw.to_ascii_lowercase().as_str() {
        "contacts" | "contact" | "0-1" => Some("contacts"),
        "companies" | "company" | "0-2" => Some("companies"),
        "deals" | "deal" | "0-3" => Some("deals"),
        _ => None,
    }
}

fn singular(object: &str) -> &'static str {
    match object {
        "contacts" => "CONTACT",
        "companies" => "COMPANY",
        _ => "DEAL",
    }
}

/// HubSpot's error body.
fn error(status: u16, category: &str, message: impl Into<String>) -> Reply {
    json_reply(
        status,
        json!({
            "status": "error", "message": message.into(),
            "correlationId": uuid::Uuid::new_v4().to_string(), "category": category,
        }),
    )
}

fn not_found() -> Reply {
    error(404, "OBJECT_NOT_FOUND", "resource not found")
}

/// HubSpot's answer to a request over the ten-secondly limit.
pub fn rate_limited(refusal: Refusal, window_ms: i64) -> Reply {
    json_reply(
        429,
        json!({
            "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": uuid::Uuid::new_v4().to_string(),
            "policyName": "TEN_SECONDLY_ROLLING",
        }),
    )
    .with_header("X-HubSpot-RateLimit-Max", refusal.max.to_string())
    .with_header("X-HubSpot-RateLimit-Remaining", "0")
    .with_header("X-HubSpot-RateLimit-Interval-Milliseconds", window_ms.to_string())
    .with_header("Retry-After", refusal.retry_after_secs().to_string())
}

/// HubSpot's answer to a search over the search limit (which sends no rate-limit headers).
fn search_limited(refusal: Refusal) -> Reply {
    json_reply(
        429,
        json!({
            "status": "error", "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT", "correlationId": uuid::Uuid::new_v4().to_string(),
            "policyName": "SECONDLY",
        }),
    )
    .with_header("Retry-After", refusal.retry_after_secs().to_string())
}

/// Answers one CRM v3 request.
pub fn handle(records: &mut ProviderRecords, call: &Call<'_>) -> Reply {
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let is_search = matches!(segments.as_slice(), ["crm", "v3", "objects", _, "search"]);
    // The search API has a limit of its own and is not counted in the ten-secondly one.
    let admitted = if is_search {
        records.search_limit.admit(call.now_ms).map_err(search_limited)
    } else {
        let window = records.limit.window_ms;
        records
            .limit
            .admit(call.now_ms)
            .map_err(|refusal| rate_limited(refusal, window))
    };
    let usage = match admitted {
        Ok(usage) => usage,
        Err(refusal) => {
            records.rate_limited += 1;
            return refusal;
        }
    };
    let reply = route(records, call, &segments);
    if records.limit.enabled && !is_search {
        with_limit_headers(reply, usage, records.limit.window_ms)
    } else {
        reply
    }
}

fn with_limit_headers(reply: Reply, usage: Usage, window_ms: i64) -> Reply {
    reply
        .with_header("X-HubSpot-RateLimit-Max", usage.max.to_string())
        .with_header("X-HubSpot-RateLimit-Remaining", usage.remaining.to_string())
        .with_header("X-HubSpot-RateLimit-Interval-Milliseconds", window_ms.to_string())
}

fn route(records: &mut ProviderRecords, call: &Call<'_>, segments: &[&str]) -> Reply {
    let method = &call.request.method;
    let (object, rest) = match segments {
        ["crm", "v3", "properties", object] | ["crm", "v3", "properties", object, ""] => {
            return match (method, object_name(object)) {
                (&Method::GET, Some(object)) => properties(object),
                (_, Some(_)) => error(405, "VALIDATION_ERROR", "method not allowed"),
                (_, None) => unknown_object(object),
            };
        }
        ["crm", "v3", "objects", object, rest @ ..] => (*object, rest),
        _ => return error(404, "OBJECT_NOT_FOUND", format!("no route for {}", call.path)),
    };
    let Some(object) = object_name(object) else {
        return unknown_object(object);
    };
    let body = || serde_json::from_slice::<Value>(&call.request.body);
    match (method, rest) {
        (&Method::GET, [] | [""]) => list(records, object, call),
        (&Method::POST, [] | [""]) => match body() {
            Ok(body) => create_one(records, object, &body),
            Err(e) => bad_json(&e),
        },
        (&Method::POST, ["search"]) => match body() {
            Ok(body) => search(records, object, &body, call.now_ms),
            Err(e) => bad_json(&e),
        },
        (&Method::POST, ["batch", operation]) => match body() {
            Ok(body) => match *operation {
                "create" => batch_create(records, object, &body),
                "update" => batch_update(records, object, &body),
                "read" => batch_read(records, object, &body),
                "archive" => batch_archive(records, object, &body),
                _ => error(404, "OBJECT_NOT_FOUND", format!("unknown batch operation {operation}")),
            },
            Err(e) => bad_json(&e),
        },
        (&Method::GET, [id]) => get_one(records, object, id, call.request),
        (&Method::PATCH, [id]) => match body() {
            Ok(body) => update_one(records, object, id, &body),
            Err(e) => bad_json(&e),
        },
        (&Method::DELETE, [id]) => {
            // Archiving a record that is not there answers 204 too.
            records.delete(object, id);
            empty_reply(204)
        }
        _ => error(
            404,
            "OBJECT_NOT_FOUND",
            format!("no route for {} {}", method, call.path),
        ),
    }
}

fn unknown_object(raw: &str) -> Reply {
    error(
        400,
        "VALIDATION_ERROR",
        format!("Unable to infer object type from: {raw}"),
    )
}

fn bad_json(e: &serde_json::Error) -> Reply {
    error(
        400,
        "VALIDATION_ERROR",
        format!("Invalid input JSON on line {}, column {}: {e}", e.line(), e.column()),
    )
}

fn properties(object: &str) -> Reply {
    let results: Vec<Value> = catalog(object)
        .iter()
        .enumerate()
        .map(|(order, p)| {
            json!({
                "name": p.name, "label": p.label, "type": p.kind, "fieldType": p.field_type,
                "description": "", "groupName": p.group,
                "options": p.options.iter().enumerate().map(|(i, (value, label))| json!({
                    "label": label, "value": value, "displayOrder": i, "hidden": false,
                })).collect::<Vec<_>>(),
                "displayOrder": order, "calculated": false, "externalOptions": false,
                "hasUniqueValue": p.name == "hs_object_id", "hidden": false, "hubspotDefined": true,
                "formField": !p.read_only, "archived": false,
                "createdAt": "2019-08-06T02:41:52.000Z", "updatedAt": "2024-06-01T00:00:00.000Z",
                "modificationMetadata": { "archivable": true, "readOnlyDefinition": true, "readOnlyValue": p.read_only },
            })
        })
        .collect();
    json_reply(200, json!({ "results": results }))
}

/// The value of property `name` of `record` as HubSpot answers it.
fn prop_value(record: &Record, name: &str) -> Option<String> {
    match name {
        "hs_object_id" => Some(record.id.clone()),
        "createdate" => Some(iso_ms(record.created_at)),
        "lastmodifieddate" | "hs_lastmodifieddate" => Some(iso_ms(record.updated_at)),
        _ => record.fields.get(name).and_then(scalar_text),
    }
}

/// A record as HubSpot answers it, with the `requested` properties (the defaults when
/// `None`, every stored property when `all`) plus the identifying ones.
fn render(record: &Record, object: &str, requested: Option<&[String]>, all: bool) -> Value {
    let mut names: Vec<&str> = match requested {
        Some(requested) => requested.iter().map(String::as_str).collect(),
        None if all => record.fields.keys().map(String::as_str).collect(),
        None => default_props(object).to_vec(),
    };
    names.extend(["hs_object_id", "createdate", modified_prop(object)]);
    let mut props = Map::new();
    for name in names {
        if prop(object, name).is_some() && !props.contains_key(name) {
            props.insert(
                name.to_owned(),
                prop_value(record, name).map_or(Value::Null, Value::String),
            );
        }
    }
    json!({
        "id": record.id, "properties": props,
        "createdAt": iso_ms(record.created_at), "updatedAt": iso_ms(record.updated_at), "archived": false,
    })
}

/// The properties a read asks for: `properties=a,b` or `properties=a&properties=b` (HubSpot's
/// own SDKs send the repeated form), or both.
fn requested_props(request: &SandboxRequest) -> Option<Vec<String>> {
    let given = request.query_all("properties");
    (!given.is_empty()).then(|| {
        given
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn list(records: &mut ProviderRecords, object: &str, call: &Call<'_>) -> Reply {
    let query = &call.request.query;
    let limit = match query.get("limit").map(|l| l.parse::<u64>()) {
        None => 10,
        Some(Ok(limit)) if (1..=LIST_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return error(
                400,
                "VALIDATION_ERROR",
                format!("limit must be between 1 and {LIST_LIMIT}"),
            );
        }
    } as usize;
    let after = match query.get("after").map(|a| a.parse::<u64>()) {
        None => 0,
        Some(Ok(after)) => after.saturating_sub(1_000),
        Some(Err(_)) => return error(400, "VALIDATION_ERROR", "after must be a record id cursor"),
    };
    let requested = requested_props(call.request);
    let Some(store) = records.store_ref(object) else {
        return not_found();
    };
    let mut page: Vec<&Record> = store.starting_at_seq(after).take(limit + 1).collect();
    let next = (page.len() > limit).then(|| page.pop().map(|r| r.id.clone())).flatten();
    let mut body = json!({
        "results": page.iter().map(|r| render(r, object, requested.as_deref(), false)).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        // The next page's URL under the base this call came in on, its other parameters kept.
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(call.request.raw_query.as_bytes()) {
            if key != "after" {
                link.append_pair(&key, &value);
            }
        }
        link.append_pair("after", &next);
        body["paging"] = json!({ "next": {
            "after": next,
            "link": format!("{}/crm/v3/objects/{object}?{}", call.base, link.finish()),
        } });
    }
    json_reply(200, body)
}

fn find<'a>(records: &'a ProviderRecords, object: &str, id: &str, id_property: Option<&str>) -> Option<&'a Record> {
    let store = records.store_ref(object)?;
    match id_property {
        Some("email") if object == "contacts" => email_owner(records, id, None).and_then(|id| store.get(&id)),
        Some(other) if other != "hs_object_id" => store
            .in_id_order()
            .find(|r| prop_value(r, other).is_some_and(|v| v.eq_ignore_ascii_case(id))),
        _ => store.get(id),
    }
}

fn get_one(records: &ProviderRecords, object: &str, id: &str, request: &SandboxRequest) -> Reply {
    let requested = requested_props(request);
    match find(records, object, id, request.query.get("idProperty").map(String::as_str)) {
        Some(record) => json_reply(200, render(record, object, requested.as_deref(), false)),
        None => not_found(),
    }
}

/// One invalid property value, as HubSpot lists it.
#[derive(Debug, Clone, PartialEq)]
struct PropError {
    name: String,
    error: &'static str,
    message: String,
}

fn validation_message(errors: &[PropError]) -> String {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| json!({ "isValid": false, "message": e.message, "error": e.error, "name": e.name }))
        .collect();
    format!("Property values were not valid: {}", Value::Array(list))
}

/// Checks `properties` of a write; the changes as `(name, Some(value) | None to clear)`.
fn validate(object: &str, properties: &Value) -> Result<Vec<(String, Option<String>)>, Vec<PropError>> {
    let Some(map) = properties.as_object() else {
        return Err(vec![PropError {
            name: "properties".into(),
            error: "INVALID_INPUT",
            message: "properties must be an object".into(),
        }]);
    };
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in map {
        let mut fail = |error: &'static str, message: String| {
            errors.push(PropError {
                name: name.clone(),
                error,
                message,
            })
        };
        let Some(p) = prop(object, name) else {
            fail("PROPERTY_DOESNT_EXIST", format!("Property \"{name}\" does not exist"));
            continue;
        };
        if p.read_only {
            fail(
                "READ_ONLY_VALUE",
                format!("\"{name}\" is a read only property; its value cannot be set."),
            );
            continue;
        }
        let text = match value {
            Value::Null => None,
            Value::Array(_) | Value::Object(_) => {
                fail("INVALID_INPUT", format!("{value} is not a valid value for {name}"));
                continue;
            }
            other => scalar_text(other).filter(|t| !t.is_empty()),
        };
        let Some(text) = text else {
            changes.push((name.clone(), None));
            continue;
        };
        let checked = match p.kind {
            _ if name == "email" && !valid_email(&text) => {
                Err(("INVALID_EMAIL", format!("Email address {text} is invalid")))
            }
            "number" => number_value(&Value::String(text.clone()))
                .map(|_| text.trim().to_owned())
                .ok_or(("INVALID_FLOAT", format!("{text} is not a valid number"))),
            "datetime" => parse_time(&text)
                .map(iso_ms)
                .ok_or(("INVALID_DATE", format!("{text} is not a valid date"))),
            "enumeration" => p
                .options
                .iter()
                .find(|(v, _)| *v == text)
                .map(|(v, _)| (*v).to_owned())
                .ok_or_else(|| {
                    let allowed: Vec<&str> = p.options.iter().map(|(v, _)| *v).collect();
                    (
                        "INVALID_OPTION",
                        format!("{text} was not one of the allowed options: [{}]", allowed.join(", ")),
                    )
                }),
            _ => Ok(text),
        };
        match checked {
            Ok(text) => changes.push((name.clone(), Some(text))),
            Err((error, message)) => fail(error, message),
        }
    }
    if errors.is_empty() { Ok(changes) } else { Err(errors) }
}

/// The contact whose email is `email` (case-insensitively), other than `except`.
fn email_owner(records: &ProviderRecords, email: &str, except: Option<&str>) -> Option<String> {
    records
        .store_ref("contacts")?
        .in_id_order()
        .find(|r| {
            Some(r.id.as_str()) != except
                && r.fields
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .map(|r| r.id.clone())
}

/// A failed write: category, message.
type WriteError = (&'static str, String);

/// The conflict of setting a contact's email to one another contact has.
fn duplicate_email(
    records: &ProviderRecords,
    object: &str,
    changes: &[(String, Option<String>)],
    except: Option<&str>,
) -> Option<WriteError> {
    if object != "contacts" {
        return None;
    }
    let email = changes.iter().find(|(n, _)| n == "email")?.1.as_deref()?;
    let existing = email_owner(records, email, except)?;
    Some(("CONFLICT", format!("Contact already exists. Existing ID: {existing}")))
}

fn apply(mut fields: Map<String, Value>, changes: Vec<(String, Option<String>)>) -> Map<String, Value> {
    for (name, value) in changes {
        match value {
            Some(value) => fields.insert(name, Value::String(value)),
            None => fields.remove(&name),
        };
    }
    fields
}

/// Creates one record from `properties`; its id, or the error.
fn create_record(records: &mut ProviderRecords, object: &str, properties: &Value) -> Result<String, WriteError> {
    let changes = validate(object, properties).map_err(|e| ("VALIDATION_ERROR", validation_message(&e)))?;
    if let Some(conflict) = duplicate_email(records, object, &changes, None) {
        return Err(conflict);
    }
    let fields = apply(Map::new(), changes);
    let id = records
        .create(object, fields, None)
        .ok_or(("OBJECT_NOT_FOUND", "unknown object".to_owned()))?;
    if let Some(store) = records.store(object) {
        store.creates += 1;
    }
    Ok(id)
}

/// Updates one record from `properties`; the error when it fails.
fn update_record(records: &mut ProviderRecords, object: &str, id: &str, properties: &Value) -> Result<(), WriteError> {
    let Some(current) = records
        .store_ref(object)
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
    else {
        return Err((
            "OBJECT_NOT_FOUND",
            format!(
                "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                singular(object)
            ),
        ));
    };
    let changes = validate(object, properties).map_err(|e| ("VALIDATION_ERROR", validation_message(&e)))?;
    if let Some(conflict) = duplicate_email(records, object, &changes, Some(id)) {
        return Err(conflict);
    }
    records.update(object, id, apply(current, changes), false);
    if let Some(store) = records.store(object) {
        store.updates += 1;
    }
    Ok(())
}

fn rendered(records: &ProviderRecords, object: &str, id: &str) -> Value {
    records
        .store_ref(object)
        .and_then(|s| s.get(id))
        .map_or(Value::Null, |r| render(r, object, None, true))
}

fn create_one(records: &mut ProviderRecords, object: &str, body: &Value) -> Reply {
    match create_record(records, object, &body["properties"]) {
        Ok(id) => json_reply(201, rendered(records, object, &id)),
        Err(("CONFLICT", message)) => error(409, "CONFLICT", message),
        Err((category, message)) => error(400, category, message),
    }
}

fn update_one(records: &mut ProviderRecords, object: &str, id: &str, body: &Value) -> Reply {
    match update_record(records, object, id, &body["properties"]) {
        Ok(()) => json_reply(200, rendered(records, object, id)),
        Err(("OBJECT_NOT_FOUND", _)) => not_found(),
        Err(("CONFLICT", message)) => error(409, "CONFLICT", message),
        Err((category, message)) => error(400, category, message),
    }
}

fn batch_inputs(body: &Value) -> Result<&Vec<Value>, Reply> {
    let Some(inputs) = body["inputs"].as_array() else {
        return Err(error(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required"));
    };
    if inputs.len() > BATCH_LIMIT {
        return Err(error(
            400,
            "VALIDATION_ERROR",
            format!(
                "Batch input limit exceeded: {} inputs given, at most {BATCH_LIMIT} allowed",
                inputs.len()
            ),
        ));
    }
    Ok(inputs)
}

fn batch_error(category: &str, message: String, context: Value) -> Value {
    json!({ "status": "error", "category": category, "message": message, "context": context })
}

/// A batch answer: 200/201 when every input worked, 207 with `errors` otherwise.
fn batch_reply(ok_status: u16, results: Vec<Value>, errors: Vec<Value>, started: &str) -> Reply {
    let mut body = json!({
        "status": "COMPLETE", "results": results,
        "startedAt": started, "completedAt": iso_ms(jiff::Timestamp::now()),
    });
    if errors.is_empty() {
        return json_reply(ok_status, body);
    }
    body["numErrors"] = errors.len().into();
    body["errors"] = Value::Array(errors);
    json_reply(207, body)
}

fn id_text(value: &Value) -> Option<String> {
    scalar_text(value).filter(|id| !id.is_empty())
}

fn batch_create(records: &mut ProviderRecords, object: &str, body: &Value) -> Reply {
    let started = iso_ms(jiff::Timestamp::now());
    let inputs = match batch_inputs(body) {
        Ok(inputs) => inputs,
        Err(reply) => return reply,
    };
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match create_record(records, object, &input["properties"]) {
            Ok(id) => results.push(rendered(records, object, &id)),
            Err((category, message)) => {
                let context = match input["objectWriteTraceId"].as_str() {
                    Some(trace) => json!({ "objectWriteTraceId": [trace] }),
                    None => json!({}),
                };
                errors.push(batch_error(category, message, context));
            }
        }
    }
    batch_reply(201, results, errors, &started)
}

fn batch_update(records: &mut ProviderRecords, object: &str, body: &Value) -> Reply {
    let started = iso_ms(jiff::Timestamp::now());
    let inputs = match batch_inputs(body) {
        Ok(inputs) => inputs,
        Err(reply) => return reply,
    };
    let ids: Vec<Option<String>> = inputs.iter().map(|i| id_text(&i["id"])).collect();
    let mut seen = std::collections::HashSet::new();
    let duplicates: Vec<&String> = ids.iter().flatten().filter(|id| !seen.insert(*id)).collect();
    if !duplicates.is_empty() {
        return error(
            400,
            "VALIDATION_ERROR",
            format!("Duplicate IDs found in batch input: {duplicates:?}. IDs must be unique"),
        );
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (input, id) in inputs.iter().zip(ids) {
        let Some(id) = id else {
            errors.push(batch_error(
                "VALIDATION_ERROR",
                "id is required".into(),
                json!({ "ids": [] }),
            ));
            continue;
        };
        match update_record(records, object, &id, &input["properties"]) {
            Ok(()) => results.push(rendered(records, object, &id)),
            Err((category, message)) => errors.push(batch_error(category, message, json!({ "ids": [id] }))),
        }
    }
    batch_reply(200, results, errors, &started)
}

fn batch_read(records: &mut ProviderRecords, object: &str, body: &Value) -> Reply {
    let started = iso_ms(jiff::Timestamp::now());
    let inputs = match batch_inputs(body) {
        Ok(inputs) => inputs,
        Err(reply) => return reply,
    };
    let requested: Option<Vec<String>> = body["properties"]
        .as_array()
        .map(|props| props.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    let id_property = body["idProperty"].as_str();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let id = id_text(&input["id"]).unwrap_or_default();
        match find(records, object, &id, id_property) {
            Some(record) => results.push(render(record, object, requested.as_deref(), false)),
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![batch_error(
            "OBJECT_NOT_FOUND",
            format!(
                "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                singular(object)
            ),
            json!({ "ids": missing }),
        )]
    };
    batch_reply(200, results, errors, &started)
}

fn batch_archive(records: &mut ProviderRecords, object: &str, body: &Value) -> Reply {
    let inputs = match batch_inputs(body) {
        Ok(inputs) => inputs,
        Err(reply) => return reply,
    };
    for input in inputs {
        if let Some(id) = id_text(&input["id"]) {
            records.delete(object, &id);
        }
    }
    empty_reply(204)
}

/// A search filter, checked, its values parsed once.
#[derive(Debug, Clone)]
struct Filter {
    property: String,
    kind: &'static str,
    operator: String,
    value: Option<String>,
    target: Option<Key>,
    high: Option<Key>,
    values: Vec<Key>,
}

/// A comparable property value: datetimes and numbers by value, text case-insensitively.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    Text(String),
}

fn key(kind: &str, text: &str) -> Option<Key> {
    match kind {
        "datetime" => parse_time(text).map(|t| Key::Number(t.as_millisecond() as f64)),
        "number" => text.trim().parse::<f64>().ok().map(Key::Number),
        _ => Some(Key::Text(text.to_lowercase())),
    }
}

/// The comparable value of property `name` of `record` (computed properties without text).
fn record_key(record: &Record, name: &str, kind: &str) -> Option<Key> {
    match name {
        "hs_object_id" => record.id.parse().ok().map(Key::Number),
        "createdate" => Some(Key::Number(record.created_at.as_millisecond() as f64)),
        "lastmodifieddate" | "hs_lastmodifieddate" => Some(Key::Number(record.updated_at.as_millisecond() as f64)),
        _ => record
            .fields
            .get(name)
            .and_then(scalar_text)
            .filter(|v| !v.is_empty())
            .and_then(|v| key(kind, &v)),
    }
}

fn compare(a: &Key, b: &Key) -> Ordering {
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

impl Filter {
    fn parse(object: &str, raw: &Value) -> Result<Filter, String> {
        let property = raw["propertyName"].as_str().unwrap_or_default().to_owned();
        let kind = match prop(object, &property) {
            Some(p) => p.kind,
            None if property == "hs_lastmodifieddate" || property == "lastmodifieddate" => "datetime",
            None => return Err(format!("Property \"{property}\" does not exist")),
        };
        let operator = raw["operator"].as_str().unwrap_or("EQ").to_ascii_uppercase();
        let known = [
            "EQ",
            "NEQ",
            "LT",
            "LTE",
            "GT",
            "GTE",
            "BETWEEN",
            "IN",
            "NOT_IN",
            "HAS_PROPERTY",
            "NOT_HAS_PROPERTY",
            "CONTAINS_TOKEN",
            "NOT_CONTAINS_TOKEN",
        ];
        if !known.contains(&operator.as_str()) {
            return Err(format!("Unknown filter operator: {operator}"));
        }
        let value = scalar_text(&raw["value"]);
        let needs_value = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN"].contains(&operator.as_str());
        let target = value.as_deref().and_then(|v| key(kind, v));
        if needs_value {
            match &value {
                None => return Err(format!("Filter on {property} needs a value")),
                Some(v) if target.is_none() => return Err(format!("{v} is not a valid value for {property}")),
                Some(_) => {}
            }
        }
        let high = scalar_text(&raw["highValue"]).and_then(|h| key(kind, &h));
        if operator == "BETWEEN" && high.is_none() {
            return Err(format!("BETWEEN on {property} needs a valid highValue"));
        }
        Ok(Filter {
            values: raw["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(scalar_text)
                .filter_map(|v| key(kind, &v))
                .collect(),
            property,
            kind,
            operator,
            value,
            target,
            high,
        })
    }

    fn matches(&self, record: &Record) -> bool {
        let actual = record_key(record, &self.property, self.kind);
        let cmp = || match (&actual, &self.target) {
            (Some(a), Some(t)) => Some(compare(a, t)),
            _ => None,
        };
        match self.operator.as_str() {
            "HAS_PROPERTY" => actual.is_some(),
            "NOT_HAS_PROPERTY" => actual.is_none(),
            "EQ" => cmp() == Some(Ordering::Equal),
            "NEQ" => cmp() != Some(Ordering::Equal),
            "LT" => cmp() == Some(Ordering::Less),
            "LTE" => matches!(cmp(), Some(Ordering::Less | Ordering::Equal)),
            "GT" => cmp() == Some(Ordering::Greater),
            "GTE" => matches!(cmp(), Some(Ordering::Greater | Ordering::Equal)),
            "BETWEEN" => match (&actual, &self.target, &self.high) {
                (Some(a), Some(low), Some(high)) => compare(a, low).is_ge() && compare(a, high).is_le(),
                _ => false,
            },
            "IN" | "NOT_IN" => {
                let found = actual
                    .as_ref()
                    .is_some_and(|a| self.values.iter().any(|v| compare(a, v) == Ordering::Equal));
                found == (self.operator == "IN")
            }
            _ => {
                let token = self
                    .value
                    .as_deref()
                    .unwrap_or_default()
                    .trim_matches('*')
                    .to_lowercase();
                let found = prop_value(record, &self.property).is_some_and(|v| v.to_lowercase().contains(&token));
                found == (self.operator == "CONTAINS_TOKEN")
            }
        }
    }
}

/// Checked search request.
#[derive(Debug)]
struct Search {
    groups: Vec<Vec<Filter>>,
    sorts: Vec<(String, &'static str, bool)>,
    properties: Option<Vec<String>>,
    query: Option<String>,
    limit: u64,
    after: u64,
}

fn parse_search(object: &str, body: &Value) -> Result<Search, String> {
    let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
    if groups.len() > 5 {
        return Err(format!("Too many filter groups: {} (at most 5)", groups.len()));
    }
    let mut parsed_groups = Vec::new();
    let mut total = 0;
    for group in &groups {
        let filters = group["filters"].as_array().cloned().unwrap_or_default();
        if filters.len() > 10 {
            return Err(format!("Too many filters in a group: {} (at most 10)", filters.len()));
        }
        total += filters.len();
        parsed_groups.push(
            filters
                .iter()
                .map(|f| Filter::parse(object, f))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if total > 25 {
        return Err(format!("Too many filters: {total} (at most 25)"));
    }
    let mut sorts = Vec::new();
    for sort in body["sorts"].as_array().into_iter().flatten() {
        let (name, descending) = match sort {
            Value::String(s) => match s.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (s.clone(), false),
            },
            other => (
                other["propertyName"].as_str().unwrap_or_default().to_owned(),
                other["direction"]
                    .as_str()
                    .is_some_and(|d| d.eq_ignore_ascii_case("DESCENDING")),
            ),
        };
        let kind = match prop(object, &name) {
            Some(p) => p.kind,
            None if name == "hs_lastmodifieddate" || name == "lastmodifieddate" => "datetime",
            None => return Err(format!("Property \"{name}\" does not exist")),
        };
        sorts.push((name, kind, descending));
    }
    let limit = match &body["limit"] {
        Value::Null => 10,
        value => super::int_value(value)
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| format!("Invalid limit: {value}"))?,
    };
    if limit > SEARCH_LIMIT {
        return Err(format!("Invalid limit: {limit}. The maximum is {SEARCH_LIMIT}"));
    }
    let after = match &body["after"] {
        Value::Null => 0,
        value => scalar_text(value)
            .filter(|a| !a.is_empty())
            .map(|a| a.parse::<u64>().map_err(|_| format!("Invalid after cursor: {a}")))
            .transpose()?
            .unwrap_or(0),
    };
    if after + limit.max(1) > SEARCH_CAP {
        return Err(format!(
            "The search API can page through at most {SEARCH_CAP} results (after {after} + limit {limit}); narrow the query, e.g. with a later {} filter",
            modified_prop(object)
        ));
    }
    Ok(Search {
        groups: parsed_groups,
        sorts,
        properties: body["properties"]
            .as_array()
            .map(|props| props.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        query: body["query"].as_str().map(str::to_lowercase).filter(|q| !q.is_empty()),
        limit,
        after,
    })
}

/// Properties the free-text `query` looks at.
fn query_props(object: &str) -> &'static [&'static str] {
    match object {
        "contacts" => &["firstname", "lastname", "email", "phone", "company"],
        "companies" => &["name", "domain", "phone"],
        _ => &["dealname"],
    }
}

fn search(records: &ProviderRecords, object: &str, body: &Value, now_ms: i64) -> Reply {
    let search = match parse_search(object, body) {
        Ok(search) => search,
        Err(message) => return error(400, "VALIDATION_ERROR", message),
    };
    let Some(store) = records.store_ref(object) else {
        return not_found();
    };
    // Search sees a change only once the index caught up with it: records changed within the
    // delay are not found yet.
    let indexed_until = super::ts(now_ms - records.index_delay_ms);
    let indexed = |record: &Record| record.updated_at <= indexed_until;
    if let Some(since) = modified_window(&search) {
        // The incremental-sync query (modified since, oldest first): walk the modification
        // index instead of filtering and sorting every record for every page.
        let matching = || {
            store
                .modified_since(since)
                .take_while(|r| indexed(r))
                .filter(|r| search.groups.iter().all(|g| g.iter().all(|f| f.matches(r))))
        };
        let inclusive = search.groups.iter().flatten().all(|f| f.operator == "GTE");
        // Every indexed record from the lower bound on matches an inclusive window: count
        // without testing.
        let total = if inclusive {
            store.count_modified_between(since, indexed_until)
        } else {
            matching().count()
        } as u64;
        let page: Vec<Value> = matching()
            .skip(search.after as usize)
            .take(search.limit as usize)
            .map(|r| render(r, object, search.properties.as_deref(), false))
            .collect();
        return page_answer(total, page, &search);
    }
    let mut found: Vec<&Record> = store
        .in_id_order()
        .filter(|r| indexed(r))
        .filter(|r| search.groups.is_empty() || search.groups.iter().any(|g| g.iter().all(|f| f.matches(r))))
        .filter(|r| {
            search.query.as_deref().is_none_or(|q| {
                query_props(object)
                    .iter()
                    .any(|p| prop_value(r, p).is_some_and(|v| v.to_lowercase().contains(q)))
            })
        })
        .collect();
    if !search.sorts.is_empty() {
        // Keys once per record, then sort; records without a value come last either way.
        let mut keyed: Vec<(Vec<Option<Key>>, &Record)> = found
            .into_iter()
            .map(|r| {
                let keys = search
                    .sorts
                    .iter()
                    .map(|(name, kind, _)| record_key(r, name, kind))
                    .collect();
                (keys, r)
            })
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            for ((x, y), (_, _, descending)) in ka.iter().zip(kb).zip(&search.sorts) {
                let order = match (x, y) {
                    (Some(x), Some(y)) if *descending => compare(y, x),
                    (Some(x), Some(y)) => compare(x, y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            a.seq.cmp(&b.seq)
        });
        found = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = found.len() as u64;
    let page: Vec<Value> = found
        .iter()
        .skip(search.after as usize)
        .take(search.limit as usize)
        .map(|r| render(r, object, search.properties.as_deref(), false))
        .collect();
    page_answer(total, page, &search)
}

/// Whether `search` is "modified at or after T, oldest first" (or everything, oldest first);
/// returns the lower bound to start the modification index at.
fn modified_window(search: &Search) -> Option<Option<Timestamp>> {
    let is_modified = |name: &str| name == "lastmodifieddate" || name == "hs_lastmodifieddate";
    let [(sort, _, false)] = search.sorts.as_slice() else {
        return None;
    };
    if search.query.is_some() || !is_modified(sort) {
        return None;
    }
    match search.groups.as_slice() {
        [] => Some(None),
        [group] => match group.as_slice() {
            [filter] if is_modified(&filter.property) && matches!(filter.operator.as_str(), "GTE" | "GT") => {
                match &filter.target {
                    Some(Key::Number(ms)) => Some(Timestamp::from_millisecond(*ms as i64).ok()),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

fn page_answer(total: u64, page: Vec<Value>, search: &Search) -> Reply {
    let mut answer = json!({ "total": total, "results": page });
    let next = search.after + search.limit;
    if search.limit > 0 && next < total {
        answer["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    json_reply(200, answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Provider;
    use crate::sandbox::records::RecordsState;
    use crate::sandbox::request::SandboxRequest;

    fn request(method: Method, path: &str, body: Value) -> SandboxRequest {
        SandboxRequest {
            method,
            path: path.to_owned(),
            query: std::collections::HashMap::new(),
            raw_query: String::new(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn call(
        records: &mut ProviderRecords,
        method: Method,
        path: &str,
        body: Value,
    ) -> (u16, Value, Vec<(String, String)>) {
        let request = request(method, path, body);
        let reply = handle(
            records,
            &Call {
                request: &request,
                base: "http://sandbox.test/hubspot",
                path,
                account: 1,
                now_ms: super::super::now_ms(),
            },
        );
        let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status, body, reply.headers)
    }

    fn seeded(n: usize) -> RecordsState {
        let mut state = RecordsState::default();
        super::super::seed::seed_provider(state.provider(Provider::Hubspot), Provider::Hubspot, n);
        state
    }

    #[test]
    fn search_pages_by_offset_and_sorts_by_modification() {
        let mut state = seeded(25);
        let records = state.provider(Provider::Hubspot);
        let body = json!({
            "filterGroups": [{ "filters": [{ "propertyName": "lastmodifieddate", "operator": "GTE", "value": "1735689605000" }] }],
            "sorts": [{ "propertyName": "lastmodifieddate", "direction": "ASCENDING" }],
            "properties": ["email"], "limit": 8,
        });
        let (status, page, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", body.clone());
        assert_eq!(status, 200);
        assert_eq!(page["total"], 20, "seeded at base + i s; i >= 5");
        assert_eq!(page["results"].as_array().unwrap().len(), 8);
        assert_eq!(page["results"][0]["id"], "1006");
        assert_eq!(
            page["results"][0]["properties"]["lastmodifieddate"],
            "2025-01-01T00:00:05.000Z"
        );
        assert!(
            page["results"][0]["properties"]["email"]
                .as_str()
                .unwrap()
                .ends_with(".5@example.com")
        );
        assert_eq!(page["paging"]["next"]["after"], "8");
        let mut last = body;
        last["after"] = "16".into();
        let (_, tail, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", last);
        assert_eq!(tail["results"].as_array().unwrap().len(), 4);
        assert!(tail.get("paging").is_none(), "no paging at the end");
    }

    #[test]
    fn search_refuses_past_ten_thousand_and_big_pages() {
        let mut state = seeded(5);
        let records = state.provider(Provider::Hubspot);
        let (status, body, _) = call(
            records,
            Method::POST,
            "/crm/v3/objects/contacts/search",
            json!({ "limit": 200, "after": "9900" }),
        );
        assert_eq!(status, 400);
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert_eq!(body["status"], "error");
        let (status, _, _) = call(
            records,
            Method::POST,
            "/crm/v3/objects/contacts/search",
            json!({ "limit": 200, "after": "9800" }),
        );
        assert_eq!(status, 200);
        let (status, _, _) = call(
            records,
            Method::POST,
            "/crm/v3/objects/contacts/search",
            json!({ "limit": 201 }),
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn search_eq_on_email_ignores_case() {
        let mut state = seeded(10);
        let records = state.provider(Provider::Hubspot);
        let email = records.store_ref("contacts").unwrap().get("1004").unwrap().fields["email"]
            .as_str()
            .unwrap()
            .to_uppercase();
        let body =
            json!({ "filterGroups": [{ "filters": [{ "propertyName": "email", "operator": "EQ", "value": email }] }] });
        let (_, found, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", body);
        assert_eq!(found["total"], 1);
        assert_eq!(found["results"][0]["id"], "1004");
    }

    #[test]
    fn batch_create_reports_failed_inputs_by_trace_id() {
        let mut state = seeded(3);
        let records = state.provider(Provider::Hubspot);
        let existing = records.store_ref("contacts").unwrap().get("1001").unwrap().fields["email"].clone();
        let body = json!({ "inputs": [
            { "properties": { "firstname": "Ann", "email": "ann@example.com" }, "objectWriteTraceId": "0" },
            { "properties": { "firstname": "Bad", "email": "not-an-email" }, "objectWriteTraceId": "1" },
            { "properties": { "firstname": "Dup", "email": existing }, "objectWriteTraceId": "2" },
            { "properties": { "firstname": "Cy" }, "objectWriteTraceId": "3" },
        ]});
        let (status, answer, _) = call(records, Method::POST, "/crm/v3/objects/contacts/batch/create", body);
        assert_eq!(status, 207);
        assert_eq!(answer["status"], "COMPLETE");
        assert_eq!(answer["numErrors"], 2);
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["properties"]["firstname"], "Ann");
        assert_eq!(results[1]["properties"]["firstname"], "Cy");
        assert_eq!(answer["errors"][0]["category"], "VALIDATION_ERROR");
        assert_eq!(answer["errors"][0]["context"]["objectWriteTraceId"], json!(["1"]));
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("Property values were not valid: ")
        );
        assert!(
            answer["errors"][1]["message"]
                .as_str()
                .unwrap()
                .contains("Contact already exists")
        );
        assert_eq!(answer["errors"][1]["context"]["objectWriteTraceId"], json!(["2"]));
        assert_eq!(records.store_ref("contacts").unwrap().creates, 2);

        let ok = json!({ "inputs": [{ "properties": { "firstname": "Di" } }] });
        let (status, answer, _) = call(records, Method::POST, "/crm/v3/objects/contacts/batch/create", ok);
        assert_eq!(status, 201);
        assert!(answer.get("errors").is_none());
        let too_many = json!({ "inputs": vec![json!({ "properties": {} }); 101] });
        let (status, _, _) = call(records, Method::POST, "/crm/v3/objects/contacts/batch/create", too_many);
        assert_eq!(status, 400);
    }

    #[test]
    fn batch_update_names_failed_ids() {
        let mut state = seeded(3);
        let records = state.provider(Provider::Hubspot);
        let body = json!({ "inputs": [
            { "id": "1001", "properties": { "lastname": "Changed" } },
            { "id": "9999", "properties": { "lastname": "Nobody" } },
            { "id": "1002", "properties": { "email": "broken" } },
        ]});
        let (status, answer, _) = call(records, Method::POST, "/crm/v3/objects/contacts/batch/update", body);
        assert_eq!(status, 207);
        assert_eq!(answer["results"][0]["properties"]["lastname"], "Changed");
        assert_eq!(answer["errors"][0]["context"]["ids"], json!(["9999"]));
        assert_eq!(answer["errors"][0]["category"], "OBJECT_NOT_FOUND");
        assert_eq!(answer["errors"][1]["context"]["ids"], json!(["1002"]));
        let stats = records.store_ref("contacts").unwrap();
        assert_eq!((stats.creates, stats.updates), (0, 1));
    }

    #[test]
    fn list_pages_by_id_cursor_and_get_answers_404() {
        let mut state = seeded(12);
        let records = state.provider(Provider::Hubspot);
        let mut request = request(Method::GET, "/crm/v3/objects/contacts", Value::Null);
        request.query.insert("limit".into(), "5".into());
        let mut seen = Vec::new();
        loop {
            let reply = handle(
                records,
                &Call {
                    request: &request,
                    base: "http://sandbox.test/hubspot",
                    path: "/crm/v3/objects/contacts",
                    account: 1,
                    now_ms: 0,
                },
            );
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            seen.extend(
                body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            match body["paging"]["next"]["after"].as_str() {
                Some(after) => request.query.insert("after".into(), after.to_owned()),
                None => break,
            };
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(seen[11], "1012");
        let (status, body, _) = call(records, Method::GET, "/crm/v3/objects/contacts/4242", Value::Null);
        assert_eq!((status, body["category"].as_str()), (404, Some("OBJECT_NOT_FOUND")));
        let (status, body, _) = call(
            records,
            Method::PATCH,
            "/crm/v3/objects/deals/1001",
            json!({ "properties": { "amount": "12.5", "dealstage": "closedwon" } }),
        );
        assert_eq!(status, 200);
        assert_eq!(body["properties"]["amount"], "12.5");
        let (status, _, _) = call(
            records,
            Method::PATCH,
            "/crm/v3/objects/deals/1001",
            json!({ "properties": { "dealstage": "nope" } }),
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn search_has_a_limit_of_its_own_and_sees_changes_after_the_index_delay() {
        let mut state = seeded(3);
        let records = state.provider(Provider::Hubspot);
        records.search_limit.configure(true, 1, 1_000);
        let (status, _, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", json!({}));
        assert_eq!(status, 200);
        let (status, body, headers) = call(records, Method::POST, "/crm/v3/objects/contacts/search", json!({}));
        assert_eq!((status, body["policyName"].as_str()), (429, Some("SECONDLY")));
        assert!(!headers.iter().any(|(h, _)| h.starts_with("X-HubSpot")));
        records.search_limit.configure(false, 1, 1_000);
        records.index_delay_ms = 60_000;
        let (status, _, _) = call(
            records,
            Method::POST,
            "/crm/v3/objects/contacts",
            json!({ "properties": { "email": "new@example.com", "lastname": "New" } }),
        );
        assert_eq!(status, 201);
        let (_, body, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", json!({}));
        assert_eq!(body["total"], 3, "the new contact is not indexed yet: {body}");
        records.index_delay_ms = 0;
        let (_, body, _) = call(records, Method::POST, "/crm/v3/objects/contacts/search", json!({}));
        assert_eq!(body["total"], 4);
    }

    #[test]
    fn reads_take_repeated_and_comma_separated_properties_and_link_pages_under_their_base() {
        let mut state = seeded(5);
        let records = state.provider(Provider::Hubspot);
        let mut request = request(Method::GET, "/crm/v3/objects/contacts", Value::Null);
        request.raw_query = "limit=2&properties=email&properties=firstname,lastname".into();
        request.query = url::form_urlencoded::parse(request.raw_query.as_bytes())
            .into_owned()
            .collect();
        let reply = handle(
            records,
            &Call {
                request: &request,
                base: "http://sandbox.test/hubspot",
                path: "/crm/v3/objects/contacts",
                account: 1,
                now_ms: super::super::now_ms(),
            },
        );
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let mut keys: Vec<&str> = body["results"][0]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert!(
            ["email", "firstname", "lastname"].iter().all(|k| keys.contains(k)) && !keys.contains(&"phone"),
            "both forms read, nothing else asked for: {keys:?}"
        );
        let link = body["paging"]["next"]["link"].as_str().unwrap();
        assert!(
            link.starts_with("http://sandbox.test/hubspot/crm/v3/objects/contacts?limit=2&properties=email&properties=firstname%2Clastname&after="),
            "{link}"
        );
    }

    #[test]
    fn rate_limit_answers_429_with_headers() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Hubspot);
        records.limit.configure(true, 2, 10_000);
        let (status, _, headers) = call(records, Method::GET, "/crm/v3/properties/contacts", Value::Null);
        assert_eq!(status, 200);
        assert!(headers.contains(&("X-HubSpot-RateLimit-Remaining".into(), "1".into())));
        let (status, _, headers) = call(records, Method::POST, "/crm/v3/objects/contacts/search", json!({}));
        assert_eq!(status, 200);
        assert!(
            !headers.iter().any(|(h, _)| h.starts_with("X-HubSpot")),
            "search carries none"
        );
        let (status, _, _) = call(records, Method::GET, "/crm/v3/properties/contacts", Value::Null);
        assert_eq!(status, 200, "search does not count against the ten-secondly limit");
        let (status, body, headers) = call(records, Method::GET, "/crm/v3/properties/contacts", Value::Null);
        assert_eq!(status, 429);
        assert_eq!(body["errorType"], "RATE_LIMIT");
        assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
        assert!(headers.contains(&("X-HubSpot-RateLimit-Remaining".into(), "0".into())));
        assert!(
            headers
                .iter()
                .any(|(h, v)| h == "Retry-After" && v.parse::<i64>().unwrap() >= 1)
        );
        assert_eq!(records.rate_limited, 1);
    }

    #[test]
    fn properties_catalog_marks_read_only_values() {
        let (status, body) = {
            let reply = properties("contacts");
            (reply.status, serde_json::from_slice::<Value>(&reply.body).unwrap())
        };
        assert_eq!(status, 200);
        let results = body["results"].as_array().unwrap();
        let find = |name: &str| results.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(find("email")["modificationMetadata"]["readOnlyValue"], false);
        assert_eq!(find("createdate")["modificationMetadata"]["readOnlyValue"], true);
        assert_eq!(find("createdate")["type"], "datetime");
        assert_eq!(find("lifecyclestage")["type"], "enumeration");
    }
}
