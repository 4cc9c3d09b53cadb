//! Control actions for the record APIs, under `/_control/<provider>/…`:
//!
//! - `GET    records/<object>?limit=&offset=` — `{"total", "records": [{"id", "seq",
//!   "created_at", "updated_at", "fields"}]}` in creation order, fields as stored.
//! - `POST   records/<object>` with the fields (or `{"fields": {…}}`) — `{"id"}`.
//! - `GET    records/<object>/<id>` — the stored record.
//! - `PATCH  records/<object>/<id>` with fields to change (`null` removes one) — the record,
//!   its `updated_at` moved to the next tick.
//! - `DELETE records/<object>/<id>` — `{"ok": true}`.
//! - `POST   seed {"count": N}` — forgets the provider's records and seeds N people.
//! - `POST   rate-limit {"enabled": true, "max": 10, "window_ms": 10000}` — Jobber:
//!   `max` is the cost bucket (restoring `max / 20` a second) and `ddos_max` /
//!   `ddos_window_ms` (default 2500 / 300000) the request guard.
//! - `GET    records-stats` — `{"objects": {"<object>": {"count", "creates", "updates"}},
//!   "requests", "rate_limited"}` (+ `"graphql_versions"` for Jobber).
//!
//! Writes made here are not counted as API creates or updates.

use serde_json::{Map, Value, json};

use super::{ProviderRecords, canonical_object, now_ms, record_json, scalar_text, seed};
use crate::providers::Provider;
use crate::sandbox::Sandbox;
use crate::sandbox::request::{Reply, SandboxRequest, json_reply};

/// Answers `action` if it is a record control action; `None` otherwise.
pub fn handle(sandbox: &Sandbox, provider: Provider, action: &str, request: &SandboxRequest) -> Option<Reply> {
    let segments: Vec<&str> = action.trim_matches('/').split('/').collect();
    let method = &request.method;
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let reply = match (method, segments.as_slice()) {
        (&http::Method::GET, ["records-stats"]) => sandbox.with_state(|s| stats(s.records.provider(provider))),
        (&http::Method::POST, ["seed"]) => {
            let count = body["count"].as_u64().unwrap_or(0) as usize;
            sandbox.with_state(|s| seed::seed_provider(s.records.provider(provider), provider, count));
            json_reply(200, json!({ "ok": true, "count": count }))
        }
        (&http::Method::POST, ["rate-limit"]) => {
            sandbox.with_state(|s| rate_limit(s.records.provider(provider), provider, &body))
        }
        (_, ["records", object, rest @ ..]) => {
            let Some(object) = canonical_object(provider, object) else {
                return Some(json_reply(
                    404,
                    json!({ "error": "unknown object", "objects": super::object_names(provider) }),
                ));
            };
            sandbox.with_state(|s| {
                let records = s.records.provider(provider);
                match (method, rest) {
                    (&http::Method::GET, []) => list(records, object, request),
                    (&http::Method::POST, []) => create(records, provider, object, &body),
                    (&http::Method::GET, [id]) => match records.store_ref(object).and_then(|st| st.get(id)) {
                        Some(record) => json_reply(200, record_json(record)),
                        None => missing(id),
                    },
                    (&http::Method::PATCH, [id]) => patch(records, provider, object, id, &body),
                    (&http::Method::DELETE, [id]) => match records.store(object).and_then(|st| st.remove(id)) {
                        Some(_) => json_reply(200, json!({ "ok": true })),
                        None => missing(id),
                    },
                    _ => json_reply(404, json!({ "error": "unknown control action" })),
                }
            })
        }
        _ => return None,
    };
    Some(reply)
}

fn missing(id: &str) -> Reply {
    json_reply(404, json!({ "error": "no such record", "id": id }))
}

fn stats(records: &ProviderRecords) -> Reply {
    let objects: Map<String, Value> = records
        .objects
        .iter()
        .map(|(name, store)| {
            (
                (*name).to_owned(),
                json!({ "count": store.len(), "creates": store.creates, "updates": store.updates }),
            )
        })
        .collect();
    let mut body = json!({ "objects": objects, "requests": records.requests, "rate_limited": records.rate_limited });
    if records.provider == Provider::Jobber {
        body["graphql_versions"] = json!(records.graphql_versions);
    }
    json_reply(200, body)
}

fn rate_limit(records: &mut ProviderRecords, provider: Provider, body: &Value) -> Reply {
    let enabled = body["enabled"].as_bool().unwrap_or(true);
    if provider == Provider::Jobber {
        let max = body["max"].as_u64().unwrap_or(10_000);
        let ddos_max = body["ddos_max"].as_u64().unwrap_or(super::JOBBER_DDOS_MAX);
        let ddos_window = body["ddos_window_ms"].as_i64().unwrap_or(super::JOBBER_DDOS_WINDOW_MS);
        records.bucket.configure(enabled, max, now_ms());
        records.limit.configure(enabled, ddos_max, ddos_window);
        return json_reply(
            200,
            json!({
                "ok": true, "enabled": enabled, "max": records.bucket.max, "restore_rate": records.bucket.restore,
                "ddos_max": records.limit.max, "ddos_window_ms": records.limit.window_ms,
            }),
        );
    }
    let max = body["max"].as_u64().unwrap_or(records.limit.max);
    let window = body["window_ms"].as_i64().unwrap_or(records.limit.window_ms);
    records.limit.configure(enabled, max, window);
    json_reply(
        200,
        json!({ "ok": true, "enabled": enabled, "max": records.limit.max, "window_ms": records.limit.window_ms }),
    )
}

fn list(records: &ProviderRecords, object: &str, request: &SandboxRequest) -> Reply {
    let number = |name: &str| request.query.get(name).and_then(|v| v.parse::<usize>().ok());
    let offset = number("offset").unwrap_or(0);
    let limit = number("limit").unwrap_or(usize::MAX);
    let Some(store) = records.store_ref(object) else {
        return missing(object);
    };
    let page: Vec<Value> = store.in_id_order().skip(offset).take(limit).map(record_json).collect();
    json_reply(200, json!({ "total": store.len(), "records": page }))
}

/// The fields of a control body: the body itself, or its `fields` object.
fn body_fields(body: &Value) -> Map<String, Value> {
    let map = body.as_object().cloned().unwrap_or_default();
    match map.get("fields") {
        Some(Value::Object(fields)) if map.len() == 1 => fields.clone(),
        _ => map,
    }
}

/// Makes control-written fields look like API-written ones (HubSpot values as text, ids on
/// Jobber emails and phones).
fn normalize(records: &mut ProviderRecords, provider: Provider, fields: &mut Map<String, Value>) {
    match provider {
        Provider::Hubspot => {
            for value in fields.values_mut() {
                if !value.is_null()
                    && let Some(text) = scalar_text(value)
                {
                    *value = Value::String(text);
                }
            }
        }
        Provider::Jobber => {
            for (list, kind) in [("emails", "Email"), ("phones", "PhoneNumber")] {
                if let Some(Value::Array(items)) = fields.get_mut(list) {
                    for item in items.iter_mut().filter(|i| i.is_object() && i["id"].is_null()) {
                        item["id"] = records.sub_id(kind).into();
                    }
                }
            }
        }
        Provider::Pipedrive | Provider::Salesforce => {}
    }
}

fn create(records: &mut ProviderRecords, provider: Provider, object: &str, body: &Value) -> Reply {
    let mut fields = body_fields(body);
    fields.retain(|_, v| !v.is_null());
    normalize(records, provider, &mut fields);
    match records.create(object, fields, None) {
        Some(id) => json_reply(200, json!({ "id": id })),
        None => missing(object),
    }
}

fn patch(records: &mut ProviderRecords, provider: Provider, object: &str, id: &str, body: &Value) -> Reply {
    let Some(mut fields) = records
        .store_ref(object)
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
    else {
        return missing(id);
    };
    let mut changes = body_fields(body);
    normalize(records, provider, &mut changes);
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(&key);
        } else {
            fields.insert(key, value);
        }
    }
    records.update(object, id, fields, true);
    match records.store_ref(object).and_then(|s| s.get(id)) {
        Some(record) => json_reply(200, record_json(record)),
        None => missing(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: http::Method, path: &str, body: Value) -> SandboxRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        SandboxRequest {
            method,
            path: path.to_owned(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn run(sandbox: &Sandbox, provider: Provider, method: http::Method, action: &str, body: Value) -> (u16, Value) {
        let req = request(method, action, body);
        let reply = handle(sandbox, provider, &req.path, &req).expect("a record control action");
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    #[test]
    fn control_creates_patches_lists_and_counts() {
        let sandbox = Sandbox::default();
        let (status, body) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::POST,
            "seed",
            json!({ "count": 10 }),
        );
        assert_eq!((status, body["count"].as_u64()), (200, Some(10)));
        let (_, body) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::POST,
            "records/contacts",
            json!({ "firstname": "Ctl", "email": "ctl@example.com", "age": 5 }),
        );
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(id, "1011");
        let (_, before) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::GET,
            &format!("records/contacts/{id}"),
            Value::Null,
        );
        assert_eq!(before["fields"]["age"], "5");
        let (_, after) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::PATCH,
            &format!("records/contacts/{id}"),
            json!({ "firstname": "Changed", "age": null }),
        );
        assert_eq!(after["fields"]["firstname"], "Changed");
        assert!(after["fields"].get("age").is_none());
        assert!(after["updated_at"].as_str() > before["updated_at"].as_str());
        let (_, page) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::GET,
            "records/contacts?offset=9&limit=5",
            Value::Null,
        );
        assert_eq!(page["total"], 11);
        assert_eq!(page["records"].as_array().unwrap().len(), 2);
        let (status, _) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::DELETE,
            &format!("records/contacts/{id}"),
            Value::Null,
        );
        assert_eq!(status, 200);
        let (_, stats) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::GET,
            "records-stats",
            Value::Null,
        );
        assert_eq!(
            stats["objects"]["contacts"],
            json!({ "count": 10, "creates": 0, "updates": 0 }),
            "control writes are not API writes"
        );
        assert_eq!(stats["objects"]["companies"]["count"], 2);
        assert_eq!(stats["requests"], 0);
        let (_, limit) = run(
            &sandbox,
            Provider::Jobber,
            http::Method::POST,
            "rate-limit",
            json!({ "enabled": true, "max": 200 }),
        );
        assert_eq!(
            (limit["max"].as_f64(), limit["restore_rate"].as_f64()),
            (Some(200.0), Some(10.0))
        );
        let req = request(http::Method::GET, "stats", Value::Null);
        assert!(
            handle(&sandbox, Provider::Hubspot, "stats", &req).is_none(),
            "OAuth actions pass through"
        );
    }

    #[test]
    fn jobber_control_writes_get_item_ids() {
        let sandbox = Sandbox::default();
        let (_, body) = run(
            &sandbox,
            Provider::Jobber,
            http::Method::POST,
            "records/clients",
            json!({ "fields": { "firstName": "Zoë", "emails": [{ "address": "zoe@example.com", "primary": true }] } }),
        );
        let id = body["id"].as_str().unwrap().to_owned();
        let (_, record) = run(
            &sandbox,
            Provider::Jobber,
            http::Method::GET,
            &format!("records/clients/{id}"),
            Value::Null,
        );
        assert!(record["fields"]["emails"][0]["id"].is_string());
        let (status, _) = run(
            &sandbox,
            Provider::Jobber,
            http::Method::GET,
            "records/widgets",
            Value::Null,
        );
        assert_eq!(status, 404);
    }
}
