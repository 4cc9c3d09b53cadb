//! Salesforce REST under `<sandbox>/salesforce/services/data/vNN.N`: `describe`, SOQL
//! `query`/`queryAll` with `nextRecordsUrl` cursors and `Sforce-Query-Options: batchSize`,
//! sObject rows (get, create, update, delete), sObject Collections (create, update, retrieve,
//! delete; at most 200 records, `allOrNone`), `limits`, the `Sforce-Limit-Info` header on
//! every answer and `403 REQUEST_LIMIT_EXCEEDED` when the request allocation is used up.
//!
//! Objects: Contact (`003…`), Account (`001…`), Opportunity (`006…`), with 18-character ids
//! whose last three characters are Salesforce's case checksum.

use std::collections::HashMap;

use http::Method;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::limits::Refusal;
use super::soql::{self, FieldRef, Query};
use super::{Call, ProviderRecords, Record, canonical_object, number_value, scalar_text, valid_email};
use crate::providers::Provider;
use crate::sandbox::request::{Reply, empty_reply, json_reply};

/// Most records per sObject Collections call.
pub const COLLECTION_LIMIT: usize = 200;
/// Default and largest query batch.
pub const MAX_BATCH: usize = 2_000;
/// Smallest query batch.
pub const MIN_BATCH: usize = 200;
/// Open query cursors kept; older ones are forgotten.
const MAX_CURSORS: usize = 200;
/// The daily allocation reported when no limit is switched on.
const DEFAULT_ALLOCATION: u64 = 15_000;
/// Query locators look like `01gSBX-<n>-<offset>`.
const LOCATOR_PREFIX: &str = "01gSBX-";

/// One field of an sObject, as `describe` reports it.
#[derive(Debug, PartialEq)]
pub struct SfField {
    /// API name.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// `id`, `string`, `email`, `phone`, `url`, `textarea`, `date`, `datetime`, `currency`,
    /// `picklist`, `reference` or `boolean`.
    pub kind: &'static str,
    /// May be empty.
    pub nillable: bool,
    /// May be set on insert.
    pub createable: bool,
    /// May be set on update.
    pub updateable: bool,
    /// Salesforce fills it in on insert.
    pub defaulted: bool,
    /// Picklist values.
    pub picklist: &'static [&'static str],
    /// Longest text.
    pub length: u32,
}

impl SfField {
    /// Must be given on insert.
    pub fn required(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted
    }
}

const fn field_of(name: &'static str, label: &'static str, kind: &'static str, length: u32) -> SfField {
    SfField {
        name,
        label,
        kind,
        nillable: true,
        createable: true,
        updateable: true,
        defaulted: false,
        picklist: &[],
        length,
    }
}

const fn required(name: &'static str, label: &'static str, kind: &'static str, length: u32) -> SfField {
    SfField {
        nillable: false,
        ..field_of(name, label, kind, length)
    }
}

const fn system(name: &'static str, label: &'static str, kind: &'static str) -> SfField {
    SfField {
        nillable: false,
        createable: false,
        updateable: false,
        defaulted: true,
        ..field_of(name, label, kind, 0)
    }
}

const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Banking",
    "Construction",
    "Education",
    "Healthcare",
    "Retail",
    "Technology",
    "Utilities",
    "Other",
];

const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];

const CONTACT: &[SfField] = &[
    system("Id", "Contact ID", "id"),
    system("IsDeleted", "Deleted", "boolean"),
    SfField {
        defaulted: false,
        ..system("Name", "Full Name", "string")
    },
    field_of("FirstName", "First Name", "string", 40),
    required("LastName", "Last Name", "string", 80),
    field_of("Email", "Email", "email", 80),
    field_of("Phone", "Business Phone", "phone", 40),
    field_of("MobilePhone", "Mobile Phone", "phone", 40),
    field_of("Title", "Title", "string", 128),
    field_of("MailingStreet", "Mailing Street", "textarea", 255),
    field_of("MailingCity", "Mailing City", "string", 40),
    field_of("MailingState", "Mailing State/Province", "string", 80),
    field_of("MailingPostalCode", "Mailing Zip/Postal Code", "string", 20),
    field_of("MailingCountry", "Mailing Country", "string", 80),
    field_of("AccountId", "Account ID", "reference", 18),
    system("CreatedDate", "Created Date", "datetime"),
    system("LastModifiedDate", "Last Modified Date", "datetime"),
    system("SystemModstamp", "System Modstamp", "datetime"),
];

const ACCOUNT: &[SfField] = &[
    system("Id", "Account ID", "id"),
    system("IsDeleted", "Deleted", "boolean"),
    required("Name", "Account Name", "string", 255),
    field_of("Phone", "Account Phone", "phone", 40),
    field_of("Website", "Website", "url", 255),
    SfField {
        picklist: INDUSTRIES,
        ..field_of("Industry", "Industry", "picklist", 255)
    },
    field_of("BillingStreet", "Billing Street", "textarea", 255),
    field_of("BillingCity", "Billing City", "string", 40),
    field_of("BillingState", "Billing State/Province", "string", 80),
    field_of("BillingPostalCode", "Billing Zip/Postal Code", "string", 20),
    field_of("BillingCountry", "Billing Country", "string", 80),
    system("CreatedDate", "Created Date", "datetime"),
    system("LastModifiedDate", "Last Modified Date", "datetime"),
    system("SystemModstamp", "System Modstamp", "datetime"),
];

const OPPORTUNITY: &[SfField] = &[
    system("Id", "Opportunity ID", "id"),
    system("IsDeleted", "Deleted", "boolean"),
    field_of("AccountId", "Account ID", "reference", 18),
    required("Name", "Name", "string", 120),
    SfField {
        picklist: STAGES,
        ..required("StageName", "Stage", "picklist", 255)
    },
    required("CloseDate", "Close Date", "date", 0),
    field_of("Amount", "Amount", "currency", 0),
    system("CreatedDate", "Created Date", "datetime"),
    system("LastModifiedDate", "Last Modified Date", "datetime"),
    system("SystemModstamp", "System Modstamp", "datetime"),
];

/// The fields of `object` (canonical name).
pub fn fields(object: &str) -> &'static [SfField] {
    match object {
        "Contact" => CONTACT,
        "Account" => ACCOUNT,
        _ => OPPORTUNITY,
    }
}

/// The field `name` (any case) of `object`.
pub fn field(object: &str, name: &str) -> Option<&'static SfField> {
    fields(object).iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The id prefix of `object`.
pub fn key_prefix(object: &str) -> &'static str {
    match object {
        "Contact" => "003",
        "Account" => "001",
        _ => "006",
    }
}

fn checksum(id15: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |bits, (i, _)| bits | (1 << i));
            char::from(ALPHABET[bits])
        })
        .collect()
}

/// The 18-character id of record `seq` with key prefix `prefix`.
pub fn make_id(prefix: &str, seq: u64) -> String {
    let base = format!("{prefix}5e00{:08}", seq % 100_000_000);
    let suffix = checksum(&base);
    format!("{base}{suffix}")
}

/// A 15- or 18-character id in its 18-character form.
pub fn normalize_id(text: &str) -> Option<String> {
    if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match text.len() {
        15 | 18 => {
            let base = &text[..15];
            Some(format!("{base}{}", checksum(base)))
        }
        _ => None,
    }
}

/// An open SOQL cursor.
#[derive(Debug, Clone)]
pub struct QueryCursor {
    object: &'static str,
    select: Vec<FieldRef>,
    ids: Vec<String>,
    batch: usize,
}

/// Salesforce's error list with one error.
fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    json_reply(status, json!([{ "message": message.into(), "errorCode": code }]))
}

fn not_found() -> Reply {
    error(404, "NOT_FOUND", "The requested resource does not exist")
}

/// Salesforce's Datetime format: `2025-01-01T00:00:05.000+0000`.
pub fn sf_datetime(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Answers one REST request.
pub fn handle(records: &mut ProviderRecords, call: &Call<'_>) -> Reply {
    let usage = match records.limit.admit(call.now_ms) {
        Ok(usage) => usage,
        Err(refusal) => {
            records.rate_limited += 1;
            return limit_exceeded(refusal);
        }
    };
    let (used, max) = if records.limit.enabled {
        (usage.used, usage.max)
    } else {
        (records.requests, DEFAULT_ALLOCATION)
    };
    route(records, call, used, max).with_header("Sforce-Limit-Info", format!("api-usage={used}/{max}"))
}

/// The answer once the request allocation is used up.
pub fn limit_exceeded(refusal: Refusal) -> Reply {
    error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").with_header(
        "Sforce-Limit-Info",
        format!("api-usage={}/{}", refusal.max, refusal.max),
    )
}

fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

fn route(records: &mut ProviderRecords, call: &Call<'_>, used: u64, max: u64) -> Reply {
    let segments: Vec<&str> = call
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let (version, rest) = match segments.as_slice() {
        ["services", "data", version, rest @ ..] if is_version(version) => (*version, rest),
        _ => return not_found(),
    };
    let request = call.request;
    let method = &request.method;
    let body = || serde_json::from_slice::<Value>(&request.body);
    match (method, rest) {
        (&Method::GET, ["limits"]) => json_reply(
            200,
            json!({ "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(used) } }),
        ),
        (&Method::GET, ["sobjects"]) => describe_global(version),
        (&Method::GET, ["sobjects", object, "describe"]) => match canonical_object(Provider::Salesforce, object) {
            Some(object) => describe(object, version),
            None => not_found(),
        },
        (_, ["sobjects", object, tail @ ..]) => {
            let Some(object) = canonical_object(Provider::Salesforce, object) else {
                return not_found();
            };
            match (method, tail) {
                (&Method::POST, []) => match body() {
                    Ok(Value::Object(input)) => create_one(records, object, &input),
                    Ok(_) => error(400, "JSON_PARSER_ERROR", "The body must be a JSON object"),
                    Err(e) => error(400, "JSON_PARSER_ERROR", e.to_string()),
                },
                (&Method::GET, [id]) => get_one(records, object, id, &request.query, version),
                (&Method::PATCH, [id]) => match body() {
                    Ok(Value::Object(input)) => update_one(records, object, id, &input),
                    Ok(_) => error(400, "JSON_PARSER_ERROR", "The body must be a JSON object"),
                    Err(e) => error(400, "JSON_PARSER_ERROR", e.to_string()),
                },
                (&Method::DELETE, [id]) => match normalize_id(id).and_then(|id| records.delete(object, &id)) {
                    Some(_) => empty_reply(204),
                    None => not_found(),
                },
                _ => not_found(),
            }
        }
        (&Method::GET, ["query" | "queryAll"]) => match request.query.get("q") {
            Some(q) => query(records, q, batch_size(request), version),
            None => error(400, "MALFORMED_QUERY", "A query string has to be specified"),
        },
        (&Method::GET, ["query" | "queryAll", locator]) => more(records, locator, version),
        (&Method::POST, ["composite", "sobjects"]) => match body() {
            Ok(body) => collection_write(records, &body, false),
            Err(e) => error(400, "JSON_PARSER_ERROR", e.to_string()),
        },
        (&Method::PATCH, ["composite", "sobjects"]) => match body() {
            Ok(body) => collection_write(records, &body, true),
            Err(e) => error(400, "JSON_PARSER_ERROR", e.to_string()),
        },
        (&Method::DELETE, ["composite", "sobjects"]) => collection_delete(records, &request.query),
        (&Method::GET, ["composite", "sobjects", object]) => match canonical_object(Provider::Salesforce, object) {
            Some(object) => collection_read(records, object, &request.query, version),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn batch_size(request: &crate::sandbox::request::SandboxRequest) -> usize {
    request
        .header("sforce-query-options")
        .and_then(|options| {
            options.split(',').find_map(|option| {
                let (name, value) = option.split_once('=')?;
                (name.trim().eq_ignore_ascii_case("batchSize"))
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
        })
        .map_or(MAX_BATCH, |n| n.clamp(MIN_BATCH, MAX_BATCH))
}

fn describe_global(version: &str) -> Reply {
    let sobjects: Vec<Value> = super::object_names(Provider::Salesforce)
        .iter()
        .map(|name| {
            json!({
                "name": name, "label": name, "keyPrefix": key_prefix(name), "createable": true, "updateable": true,
                "deletable": true, "queryable": true, "custom": false,
                "urls": { "sobject": format!("/services/data/{version}/sobjects/{name}") },
            })
        })
        .collect();
    json_reply(
        200,
        json!({ "encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": sobjects }),
    )
}

fn describe(object: &'static str, version: &str) -> Reply {
    let described: Vec<Value> = fields(object)
        .iter()
        .map(|f| {
            let reference = f.kind == "reference";
            json!({
                "name": f.name, "label": f.label, "type": f.kind, "length": f.length,
                "nillable": f.nillable, "createable": f.createable, "updateable": f.updateable,
                "defaultedOnCreate": f.defaulted, "custom": false, "filterable": true, "sortable": f.kind != "textarea",
                "unique": false, "calculated": f.name == "Name" && object == "Contact",
                "referenceTo": if reference { json!(["Account"]) } else { json!([]) },
                "relationshipName": if reference { json!("Account") } else { Value::Null },
                "picklistValues": f.picklist.iter().map(|v| json!({ "active": true, "defaultValue": false, "label": v, "value": v })).collect::<Vec<_>>(),
                "soapType": match f.kind {
                    "id" | "reference" => "tns:ID",
                    "boolean" => "xsd:boolean",
                    "date" => "xsd:date",
                    "datetime" => "xsd:dateTime",
                    "currency" => "xsd:double",
                    _ => "xsd:string",
                },
            })
        })
        .collect();
    json_reply(
        200,
        json!({
            "name": object, "label": object, "labelPlural": format!("{object}s"), "keyPrefix": key_prefix(object),
            "createable": true, "updateable": true, "deletable": true, "queryable": true, "custom": false,
            "fields": described,
            "urls": {
                "sobject": format!("/services/data/{version}/sobjects/{object}"),
                "describe": format!("/services/data/{version}/sobjects/{object}/describe"),
                "rowTemplate": format!("/services/data/{version}/sobjects/{object}/{{ID}}"),
            },
        }),
    )
}

/// The value of `field` of `record` as Salesforce answers it.
fn value_of(record: &Record, object: &str, name: &str) -> Value {
    match name {
        "Id" => Value::String(record.id.clone()),
        "IsDeleted" => Value::Bool(false),
        "CreatedDate" => Value::String(sf_datetime(record.created_at)),
        "LastModifiedDate" | "SystemModstamp" => Value::String(sf_datetime(record.updated_at)),
        "Name" if object == "Contact" => {
            let part = |n: &str| {
                record
                    .fields
                    .get(n)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Value::String(format!("{} {}", part("FirstName"), part("LastName")).trim().to_owned())
        }
        _ => record.fields.get(name).cloned().unwrap_or(Value::Null),
    }
}

fn account_of<'a>(records: &'a ProviderRecords, record: &Record) -> Option<&'a Record> {
    let id = record.fields.get("AccountId")?.as_str()?;
    records.store_ref("Account")?.get(id)
}

fn read(records: &ProviderRecords, object: &str, record: &Record, field: &FieldRef) -> Value {
    match field {
        FieldRef::Direct(f) => value_of(record, object, f.name),
        FieldRef::Account(f) => account_of(records, record).map_or(Value::Null, |a| value_of(a, "Account", f.name)),
    }
}

fn attributes(object: &str, id: &str, version: &str) -> Value {
    json!({ "type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}") })
}

/// A record with the `select`ed fields, in order.
fn render(records: &ProviderRecords, object: &str, record: &Record, select: &[FieldRef], version: &str) -> Value {
    let mut map = Map::new();
    map.insert("attributes".into(), attributes(object, &record.id, version));
    for field in select {
        match field {
            FieldRef::Direct(f) => {
                map.insert(f.name.to_owned(), value_of(record, object, f.name));
            }
            FieldRef::Account(f) => {
                let entry = map
                    .entry("Account")
                    .or_insert_with(|| match account_of(records, record) {
                        Some(account) => json!({ "attributes": attributes("Account", &account.id, version) }),
                        None => Value::Null,
                    });
                if let (Value::Object(nested), Some(account)) = (entry, account_of(records, record)) {
                    nested.insert(f.name.to_owned(), value_of(account, "Account", f.name));
                }
            }
        }
    }
    Value::Object(map)
}

fn all_fields(object: &str) -> Vec<FieldRef> {
    fields(object).iter().map(FieldRef::Direct).collect()
}

fn requested_fields(object: &str, query: &HashMap<String, String>) -> Result<Vec<FieldRef>, Reply> {
    match query.get("fields") {
        None => Ok(all_fields(object)),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|name| {
                field(object, name).map(FieldRef::Direct).ok_or_else(|| {
                    error(
                        400,
                        "INVALID_FIELD",
                        format!("No such column '{name}' on sobject of type {object}"),
                    )
                })
            })
            .collect(),
    }
}

fn get_one(records: &ProviderRecords, object: &str, id: &str, query: &HashMap<String, String>, version: &str) -> Reply {
    let select = match requested_fields(object, query) {
        Ok(select) => select,
        Err(reply) => return reply,
    };
    let found = normalize_id(id).and_then(|id| records.store_ref(object)?.get(&id));
    match found {
        Some(record) => json_reply(200, render(records, object, record, &select, version)),
        None => not_found(),
    }
}

/// One save error, as listed in a SaveResult (`statusCode`) or an error answer (`errorCode`).
#[derive(Debug, Clone, PartialEq)]
struct SaveError {
    code: &'static str,
    message: String,
    fields: Vec<String>,
    /// Fails the whole request (bad field names), not one record.
    fatal: bool,
}

impl SaveError {
    fn new(code: &'static str, message: impl Into<String>, fields: &[&str]) -> SaveError {
        SaveError {
            code,
            message: message.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            fatal: false,
        }
    }

    fn as_result(&self) -> Value {
        json!({ "statusCode": self.code, "message": self.message, "fields": self.fields })
    }

    fn as_answer(&self) -> Value {
        json!({ "message": self.message, "errorCode": self.code, "fields": self.fields })
    }
}

/// Checks and converts the fields of a write into the stored fields (`current` merged for
/// updates).
fn convert(
    records: &ProviderRecords,
    object: &str,
    input: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Vec<SaveError>> {
    let creating = current.is_none();
    let mut stored = current.cloned().unwrap_or_default();
    let mut errors = Vec::new();
    for (name, value) in input {
        if name == "attributes" || (!creating && name.eq_ignore_ascii_case("id")) {
            continue;
        }
        let Some(f) = field(object, name) else {
            errors.push(SaveError {
                fatal: true,
                ..SaveError::new(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on sobject of type {object}"),
                    &[],
                )
            });
            continue;
        };
        if (creating && !f.createable) || (!creating && !f.updateable) {
            let message = if f.name == "Id" && creating {
                "cannot specify Id in an insert call".to_owned()
            } else {
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    f.name
                )
            };
            errors.push(SaveError::new("INVALID_FIELD_FOR_INSERT_UPDATE", message, &[f.name]));
            continue;
        }
        let text = scalar_text(value).filter(|t| !t.is_empty());
        let bad_type = || {
            SaveError::new(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                format!("{}: value not of required type: {value}", f.label),
                &[f.name],
            )
        };
        let converted = match (f.kind, text) {
            (_, None) if value.is_array() || value.is_object() => Err(bad_type()),
            (_, None) => Ok(None),
            ("email", Some(t)) if !valid_email(&t) => Err(SaveError::new(
                "INVALID_EMAIL_ADDRESS",
                format!("{}: invalid email address: {t}", f.label),
                &[f.name],
            )),
            ("currency", Some(_)) => number_value(value).map(|n| Some(json!(n))).ok_or_else(bad_type),
            ("boolean", Some(t)) => match t.as_str() {
                "true" => Ok(Some(Value::Bool(true))),
                "false" => Ok(Some(Value::Bool(false))),
                _ => Err(bad_type()),
            },
            ("date", Some(t)) => t
                .get(..10)
                .filter(|d| jiff::civil::Date::strptime("%Y-%m-%d", d).is_ok())
                .map(|d| Some(Value::String(d.to_owned())))
                .ok_or_else(bad_type),
            ("reference", Some(t)) => match normalize_id(&t).filter(|id| id.starts_with(key_prefix("Account"))) {
                None => Err(SaveError::new(
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {t}", f.label),
                    &[f.name],
                )),
                Some(id) if records.store_ref("Account").is_some_and(|s| s.get(&id).is_some()) => {
                    Ok(Some(Value::String(id)))
                }
                Some(_) => Err(SaveError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[f.name],
                )),
            },
            (_, Some(t)) if f.length > 0 && t.chars().count() > f.length as usize => Err(SaveError::new(
                "STRING_TOO_LONG",
                format!("{}: data value too large: {t} (max length={})", f.label, f.length),
                &[f.name],
            )),
            (_, Some(t)) => Ok(Some(Value::String(t))),
        };
        match converted {
            Ok(Some(v)) => {
                stored.insert(f.name.to_owned(), v);
            }
            Ok(None) => {
                stored.remove(f.name);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        let missing: Vec<&str> = fields(object)
            .iter()
            .filter(|f| f.required() && stored.get(f.name).is_none_or(Value::is_null))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            errors.push(SaveError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            ));
        }
    }
    if errors.is_empty() { Ok(stored) } else { Err(errors) }
}

fn errors_answer(errors: &[SaveError]) -> Reply {
    json_reply(400, Value::Array(errors.iter().map(SaveError::as_answer).collect()))
}

fn create_one(records: &mut ProviderRecords, object: &str, input: &Map<String, Value>) -> Reply {
    match convert(records, object, input, None) {
        Ok(fields) => match records.create(object, fields, None) {
            Some(id) => {
                if let Some(store) = records.store(object) {
                    store.creates += 1;
                }
                json_reply(201, json!({ "id": id, "success": true, "errors": [] }))
            }
            None => not_found(),
        },
        Err(errors) => errors_answer(&errors),
    }
}

fn update_one(records: &mut ProviderRecords, object: &str, id: &str, input: &Map<String, Value>) -> Reply {
    let Some(id) = normalize_id(id) else {
        return not_found();
    };
    let Some(current) = records
        .store_ref(object)
        .and_then(|s| s.get(&id))
        .map(|r| r.fields.clone())
    else {
        return not_found();
    };
    match convert(records, object, input, Some(&current)) {
        Ok(fields) => {
            records.update(object, &id, fields, true);
            if let Some(store) = records.store(object) {
                store.updates += 1;
            }
            empty_reply(204)
        }
        Err(errors) => errors_answer(&errors),
    }
}

/// A failed SaveResult.
fn failed(id: Option<&str>, errors: &[SaveError]) -> Value {
    let mut result = json!({ "success": false, "errors": errors.iter().map(SaveError::as_result).collect::<Vec<_>>() });
    if let Some(id) = id {
        result["id"] = id.into();
    }
    result
}

/// A collection record after checking: its object, its id (updates), and its fields or
/// errors.
type Checked = (
    Option<&'static str>,
    Option<String>,
    Result<Map<String, Value>, Vec<SaveError>>,
);

fn collection_write(records: &mut ProviderRecords, body: &Value, updating: bool) -> Reply {
    let Some(inputs) = body["records"].as_array() else {
        return error(400, "JSON_PARSER_ERROR", "records is required");
    };
    if inputs.len() > COLLECTION_LIMIT {
        return error(
            400,
            "EXCEEDED_ID_LIMIT",
            format!("record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"),
        );
    }
    let all_or_none = body["allOrNone"].as_bool().unwrap_or(false);
    // First pass: check every record (nothing is written yet).
    let mut checked: Vec<Checked> = Vec::new();
    for input in inputs {
        let empty = Map::new();
        let map = input.as_object().unwrap_or(&empty);
        let object = input["attributes"]["type"]
            .as_str()
            .and_then(|t| canonical_object(Provider::Salesforce, t));
        let Some(object) = object else {
            checked.push((
                None,
                None,
                Err(vec![SaveError::new(
                    "INVALID_TYPE",
                    "sObject type is missing or invalid",
                    &[],
                )]),
            ));
            continue;
        };
        if !updating {
            checked.push((Some(object), None, convert(records, object, map, None)));
            continue;
        }
        let raw_id = map.get("id").or_else(|| map.get("Id")).and_then(Value::as_str);
        let Some(raw_id) = raw_id else {
            checked.push((
                Some(object),
                None,
                Err(vec![SaveError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    &["Id"],
                )]),
            ));
            continue;
        };
        let id = normalize_id(raw_id).filter(|id| id.starts_with(key_prefix(object)));
        let current = id
            .as_deref()
            .and_then(|id| records.store_ref(object)?.get(id))
            .map(|r| r.fields.clone());
        let outcome = match (&id, current) {
            (None, _) => Err(vec![SaveError::new(
                "MALFORMED_ID",
                format!("malformed id {raw_id}"),
                &["Id"],
            )]),
            (Some(_), None) => Err(vec![SaveError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[],
            )]),
            (Some(_), Some(current)) => convert(records, object, map, Some(&current)),
        };
        checked.push((Some(object), Some(id.unwrap_or_else(|| raw_id.to_owned())), outcome));
    }
    if let Some(fatal) = checked
        .iter()
        .filter_map(|(_, _, outcome)| outcome.as_ref().err())
        .flatten()
        .find(|e| e.fatal)
    {
        return errors_answer(std::slice::from_ref(fatal));
    }
    let any_failed = checked.iter().any(|(_, _, outcome)| outcome.is_err());
    let mut results = Vec::new();
    for (object, id, outcome) in checked {
        let result = match (object, outcome) {
            (_, Err(errors)) => failed(id.as_deref(), &errors),
            (Some(_), Ok(_)) if all_or_none && any_failed => failed(
                id.as_deref(),
                &[SaveError::new(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    &[],
                )],
            ),
            (Some(object), Ok(fields)) => {
                let written = match &id {
                    Some(id) => records.update(object, id, fields, true).then(|| id.clone()),
                    None => records.create(object, fields, None),
                };
                if let Some(store) = records.store(object) {
                    if updating {
                        store.updates += 1;
                    } else {
                        store.creates += 1;
                    }
                }
                json!({ "id": written, "success": true, "errors": [] })
            }
            (None, Ok(_)) => failed(None, &[]),
        };
        results.push(result);
    }
    json_reply(200, Value::Array(results))
}

fn ids_param(query: &HashMap<String, String>) -> Vec<String> {
    query
        .get("ids")
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn collection_read(records: &ProviderRecords, object: &str, query: &HashMap<String, String>, version: &str) -> Reply {
    let select = match requested_fields(object, query) {
        Ok(select) => select,
        Err(reply) => return reply,
    };
    let ids = ids_param(query);
    if ids.len() > COLLECTION_LIMIT {
        return error(400, "EXCEEDED_ID_LIMIT", "too many ids");
    }
    let found: Vec<Value> = ids
        .iter()
        .map(|id| {
            normalize_id(id)
                .and_then(|id| records.store_ref(object)?.get(&id))
                .map_or(Value::Null, |r| render(records, object, r, &select, version))
        })
        .collect();
    json_reply(200, Value::Array(found))
}

fn collection_delete(records: &mut ProviderRecords, query: &HashMap<String, String>) -> Reply {
    let results: Vec<Value> = ids_param(query)
        .iter()
        .map(|raw| {
            let removed = normalize_id(raw).and_then(|id| {
                let object = super::object_names(Provider::Salesforce)
                    .iter()
                    .find(|o| id.starts_with(key_prefix(o)))?;
                records.delete(object, &id)
            });
            match removed {
                Some(record) => json!({ "id": record.id, "success": true, "errors": [] }),
                None => failed(
                    Some(raw),
                    &[SaveError::new("ENTITY_IS_DELETED", "entity is deleted", &[])],
                ),
            }
        })
        .collect();
    json_reply(200, Value::Array(results))
}

/// Runs `query`: the matching ids in answer order.
fn run(records: &ProviderRecords, query: &Query) -> Vec<String> {
    let Some(store) = records.store_ref(query.object) else {
        return Vec::new();
    };
    let object = query.object;
    let mut found: Vec<&Record> = store
        .in_id_order()
        .filter(|record| {
            query
                .filter
                .as_ref()
                .is_none_or(|filter| filter.eval(&|field| read(records, object, record, field)))
        })
        .collect();
    if !query.order.is_empty() {
        // Keys once per record, then sort; ties keep id order.
        let mut keyed: Vec<(Vec<Option<soql::Literal>>, &Record)> = found
            .into_iter()
            .map(|record| {
                let keys = query
                    .order
                    .iter()
                    .map(|item| soql::sort_key(&item.field, &read(records, object, record, &item.field)))
                    .collect();
                (keys, record)
            })
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            query
                .order
                .iter()
                .zip(ka.iter().zip(kb))
                .map(|(item, (x, y))| soql::compare_keys(item, x.as_ref(), y.as_ref()))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.seq.cmp(&b.seq))
        });
        found = keyed.into_iter().map(|(_, record)| record).collect();
    }
    found
        .into_iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .map(|r| r.id.clone())
        .collect()
}

fn query(records: &mut ProviderRecords, text: &str, batch: usize, version: &str) -> Reply {
    let parsed = match soql::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => return error(400, e.code, e.message),
    };
    let ids = run(records, &parsed);
    if parsed.count {
        return json_reply(200, json!({ "totalSize": ids.len(), "done": true, "records": [] }));
    }
    let cursor = QueryCursor {
        object: parsed.object,
        select: parsed.select,
        ids,
        batch,
    };
    let page = page(records, &cursor, 0, version);
    if cursor.ids.len() > batch {
        records.last_cursor += 1;
        records.cursors.insert(records.last_cursor, cursor);
        while records.cursors.len() > MAX_CURSORS {
            records.cursors.pop_first();
        }
        let locator = records.last_cursor;
        return json_reply(200, with_next(page, locator, batch, version));
    }
    json_reply(200, page)
}

fn with_next(mut page: Value, locator: u64, offset: usize, version: &str) -> Value {
    page["nextRecordsUrl"] = format!("/services/data/{version}/query/{LOCATOR_PREFIX}{locator}-{offset}").into();
    page
}

/// The batch of `cursor` starting at `offset` (without `nextRecordsUrl`).
fn page(records: &ProviderRecords, cursor: &QueryCursor, offset: usize, version: &str) -> Value {
    let rows: Vec<Value> = cursor
        .ids
        .iter()
        .skip(offset)
        .take(cursor.batch)
        .filter_map(|id| records.store_ref(cursor.object)?.get(id))
        .map(|record| render(records, cursor.object, record, &cursor.select, version))
        .collect();
    json!({
        "totalSize": cursor.ids.len(),
        "done": offset + cursor.batch >= cursor.ids.len(),
        "records": rows,
    })
}

fn more(records: &ProviderRecords, locator: &str, version: &str) -> Reply {
    let parsed = locator
        .strip_prefix(LOCATOR_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(n, offset)| Some((n.parse::<u64>().ok()?, offset.parse::<usize>().ok()?)));
    let Some((n, offset)) = parsed else {
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let Some(cursor) = records.cursors.get(&n).filter(|c| offset <= c.ids.len()) else {
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let answer = page(records, cursor, offset, version);
    let next = offset + cursor.batch;
    if next < cursor.ids.len() {
        json_reply(200, with_next(answer, n, next, version))
    } else {
        json_reply(200, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::records::RecordsState;
    use crate::sandbox::request::SandboxRequest;

    fn send(
        records: &mut ProviderRecords,
        method: Method,
        path_and_query: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value, Vec<(String, String)>) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let mut header_map = http::HeaderMap::new();
        for (name, value) in headers {
            header_map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let request = SandboxRequest {
            method,
            path: path.to_owned(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            raw_query: String::new(),
            headers: header_map,
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

    fn get(records: &mut ProviderRecords, path: &str) -> (u16, Value) {
        let (status, body, _) = send(records, Method::GET, path, Value::Null, &[]);
        (status, body)
    }

    fn seeded(n: usize) -> RecordsState {
        let mut state = RecordsState::default();
        super::super::seed::seed_provider(state.provider(Provider::Salesforce), Provider::Salesforce, n);
        state
    }

    fn soql(q: &str) -> String {
        format!(
            "/services/data/v62.0/query?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn ids_have_prefix_and_checksum() {
        let id = make_id("003", 1);
        assert_eq!(id, "0035e0000000001AAA");
        assert_eq!(normalize_id(&id[..15]).as_deref(), Some(id.as_str()));
        assert_eq!(checksum("001A0000006Vm9r"), "IAC");
        assert_eq!(normalize_id("bad id"), None);
    }

    #[test]
    fn queries_page_through_next_records_url() {
        let mut state = seeded(450);
        let records = state.provider(Provider::Salesforce);
        let q = soql(
            "SELECT Id, LastName, Email, SystemModstamp FROM Contact WHERE SystemModstamp >= 2025-01-01T00:00:10Z ORDER BY SystemModstamp ASC, Id ASC",
        );
        let (status, first, headers) = send(
            records,
            Method::GET,
            &q,
            Value::Null,
            &[("Sforce-Query-Options", "batchSize=200")],
        );
        assert_eq!(status, 200);
        assert!(
            headers
                .iter()
                .any(|(h, v)| h == "Sforce-Limit-Info" && v.starts_with("api-usage="))
        );
        assert_eq!(first["totalSize"], 440);
        assert_eq!(first["done"], false);
        let rows = first["records"].as_array().unwrap();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[0]["attributes"]["type"], "Contact");
        assert_eq!(rows[0]["SystemModstamp"], "2025-01-01T00:00:10.000+0000");
        assert!(
            rows[0]["attributes"]["url"]
                .as_str()
                .unwrap()
                .ends_with(rows[0]["Id"].as_str().unwrap())
        );
        let next = first["nextRecordsUrl"].as_str().unwrap().to_owned();
        assert!(next.starts_with("/services/data/v62.0/query/01gSBX-"), "{next}");
        let (_, second) = get(records, &next);
        assert_eq!(second["records"].as_array().unwrap().len(), 200);
        let (_, third) = get(records, second["nextRecordsUrl"].as_str().unwrap());
        assert_eq!(third["records"].as_array().unwrap().len(), 40);
        assert_eq!(third["done"], true);
        assert!(third.get("nextRecordsUrl").is_none());
        let (status, body) = get(records, "/services/data/v62.0/query/01gSBX-999-0");
        assert_eq!(
            (status, body[0]["errorCode"].as_str()),
            (400, Some("INVALID_QUERY_LOCATOR"))
        );
    }

    #[test]
    fn query_errors_and_lookups() {
        let mut state = seeded(10);
        let records = state.provider(Provider::Salesforce);
        let (status, body) = get(records, &soql("SELECT Bogus FROM Contact"));
        assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
        let (status, body) = get(records, &soql("SELEKT Id FROM Contact"));
        assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("MALFORMED_QUERY")));
        let email = records
            .store_ref("Contact")
            .unwrap()
            .in_id_order()
            .nth(3)
            .unwrap()
            .fields["Email"]
            .clone();
        let q = format!(
            "SELECT Id, Email, Account.Name FROM Contact WHERE Email = '{}' LIMIT 10",
            email.as_str().unwrap().to_uppercase()
        );
        let (status, body) = get(records, &soql(&q));
        assert_eq!(status, 200);
        assert_eq!(body["totalSize"], 1);
        assert_eq!(body["done"], true);
        assert_eq!(body["records"][0]["Email"], email);
        assert!(body["records"][0]["Account"]["Name"].is_string());
        let (_, body) = get(
            records,
            &soql("SELECT Id FROM Contact WHERE MobilePhone = null AND Title != null"),
        );
        assert_eq!(body["totalSize"], 10);
        let (_, body) = get(records, &soql("SELECT COUNT() FROM Opportunity"));
        assert_eq!(body["totalSize"], 2);
    }

    #[test]
    fn rows_create_read_update() {
        let mut state = seeded(5);
        let records = state.provider(Provider::Salesforce);
        let base = "/services/data/v62.0/sobjects/Contact";
        let (status, body, _) = send(records, Method::POST, base, json!({ "FirstName": "Ann" }), &[]);
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!([{ "message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"] }])
        );
        let (status, body, _) = send(
            records,
            Method::POST,
            base,
            json!({ "LastName": "Lee", "Email": "ann@x.io" }),
            &[],
        );
        assert_eq!(status, 201);
        assert_eq!(body["success"], true);
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, body) = get(records, &format!("{base}/{id}?fields=LastName,Email,SystemModstamp"));
        assert_eq!(status, 200);
        assert_eq!(body["LastName"], "Lee");
        assert!(body.get("FirstName").is_none());
        let (status, _, _) = send(
            records,
            Method::PATCH,
            &format!("{base}/{id}"),
            json!({ "FirstName": "Ann" }),
            &[],
        );
        assert_eq!(status, 204);
        let (_, body) = get(records, &format!("{base}/{id}"));
        assert_eq!(body["Name"], "Ann Lee");
        assert_eq!(body["MobilePhone"], Value::Null, "null fields are present");
        let (status, body) = get(records, &format!("{base}/0035e0000009999AAA"));
        assert_eq!((status, body[0]["errorCode"].as_str()), (404, Some("NOT_FOUND")));
        let (status, body) = get(records, "/services/data/v62.0/sobjects/Opportunity/describe");
        assert_eq!(status, 200);
        let close = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "CloseDate")
            .unwrap()
            .clone();
        assert_eq!(
            (close["type"].as_str(), close["nillable"].as_bool()),
            (Some("date"), Some(false))
        );
    }

    #[test]
    fn collections_report_each_record() {
        let mut state = seeded(5);
        let records = state.provider(Provider::Salesforce);
        let path = "/services/data/v62.0/composite/sobjects";
        let body = json!({ "allOrNone": false, "records": [
            { "attributes": { "type": "Contact" }, "LastName": "One" },
            { "attributes": { "type": "Contact" }, "FirstName": "NoLast" },
            { "attributes": { "type": "Contact" }, "LastName": "Bad", "Email": "nope" },
        ]});
        let (status, answer, _) = send(records, Method::POST, path, body, &[]);
        assert_eq!(status, 200);
        assert_eq!(answer[0]["success"], true);
        assert_eq!(answer[0]["id"].as_str().unwrap().len(), 18);
        assert_eq!(
            answer[1],
            json!({ "success": false, "errors": [{ "statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"] }] })
        );
        assert_eq!(answer[2]["errors"][0]["statusCode"], "INVALID_EMAIL_ADDRESS");
        let id = answer[0]["id"].as_str().unwrap().to_owned();
        let update = json!({ "allOrNone": true, "records": [
            { "attributes": { "type": "Contact" }, "id": id, "Title": "Boss" },
            { "attributes": { "type": "Contact" }, "id": "0035e0000009999AAA", "Title": "Ghost" },
        ]});
        let (_, answer, _) = send(records, Method::PATCH, path, update, &[]);
        assert_eq!(
            answer[0]["errors"][0]["statusCode"],
            "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        );
        assert_eq!(answer[1]["success"], false);
        let too_many = json!({ "records": vec![json!({ "attributes": { "type": "Contact" }, "LastName": "x" }); 201] });
        let (status, answer, _) = send(records, Method::POST, path, too_many, &[]);
        assert_eq!(
            (status, answer[0]["errorCode"].as_str()),
            (400, Some("EXCEEDED_ID_LIMIT"))
        );
        let store = records.store_ref("Contact").unwrap();
        assert_eq!((store.creates, store.updates), (1, 0));
    }

    #[test]
    fn request_limit_answers_403() {
        let mut state = seeded(1);
        let records = state.provider(Provider::Salesforce);
        records.limit.configure(true, 1, 60_000);
        let (status, _, headers) = send(records, Method::GET, "/services/data/v62.0/limits", Value::Null, &[]);
        assert_eq!(status, 200);
        assert!(headers.contains(&("Sforce-Limit-Info".into(), "api-usage=1/1".into())));
        let (status, body, _) = send(records, Method::GET, "/services/data/v62.0/limits", Value::Null, &[]);
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!([{ "message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED" }])
        );
    }
}
