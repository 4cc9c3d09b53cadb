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
//! - `GET    limits` — the provider's rate limits, by name (`requests`, HubSpot's `search` and
//!   `index_delay_ms`, Pipedrive's `daily_tokens`, Jobber's `cost`), each on by default at the
//!   provider's published figures.
//! - `POST   limits {"requests": {"enabled": true, "max": 10, "window_ms": 10000}}` — sets
//!   limits by name; Jobber's `cost` bucket restores `max / 20` a second; `{"all": false}`
//!   switches every limit off (and the search index delay to 0).
//! - `GET|PUT|POST|DELETE webhooks` — webhook registrations and delivery counters (see
//!   `sandbox::webhooks::control`).
//! - `GET    records-stats` — `{"objects": {"<object>": {"count", "creates", "updates"}},
//!   "requests", "rate_limited"}` (+ `"graphql_versions"` for Jobber).
//! - `POST   clock {"advance_ms": N}` — the provider's clock runs N ms (at most a day) ahead
//!   of the machine's from now on: its next writes are stamped later, as a provider with a
//!   fast clock (or a later edit) would stamp them.
//! - `GET    requests` — `{"requests": [{"method", "path", "query", "body"}]}`: the latest 200
//!   record API requests as received, oldest first (bodies cut at 8 KiB), so tests can check
//!   what a client asked for.
//!
//! Writes made here are not counted as API creates or updates.

use serde_json::{Map, Value, json};

use super::{ProviderRecords, canonical_object, now_ms, record_json, scalar_text, seed};
use crate::providers::Provider;
use crate::sandbox::Sandbox;
use crate::sandbox::request::{Reply, SandboxRequest, json_reply};
use crate::sandbox::webhooks::{self, Origin};

/// Answers `action` if it is a record control action; `None` otherwise.
pub fn handle(sandbox: &Sandbox, provider: Provider, action: &str, request: &SandboxRequest) -> Option<Reply> {
    let segments: Vec<&str> = action.trim_matches('/').split('/').collect();
    let method = &request.method;
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let reply = match (method, segments.as_slice()) {
        (&http::Method::GET, ["records-stats"]) => sandbox.with_state(|s| stats(s.records.provider(provider))),
        (&http::Method::POST, ["clock"]) => match body["advance_ms"].as_u64().filter(|ms| *ms <= 86_400_000) {
            Some(ms) => sandbox.with_state(|s| {
                let records = s.records.provider(provider);
                records.advance_clock(ms as i64);
                json_reply(200, json!({ "ok": true }))
            }),
            None => json_reply(
                400,
                json!({ "error": "advance_ms: a number of milliseconds up to 86400000" }),
            ),
        },
        (&http::Method::GET, ["requests"]) => {
            sandbox.with_state(|s| json_reply(200, json!({ "requests": s.records.provider(provider).journal })))
        }
        (&http::Method::POST, ["seed"]) => {
            let count = body["count"].as_u64().unwrap_or(0) as usize;
            sandbox.with_state(|s| seed::seed_provider(s.records.provider(provider), provider, count));
            json_reply(200, json!({ "ok": true, "count": count }))
        }
        (&http::Method::POST, ["limits"]) => {
            sandbox.with_state(|s| set_limits(s.records.provider(provider), provider, &body))
        }
        (&http::Method::GET, ["limits"]) => {
            sandbox.with_state(|s| json_reply(200, limits_json(s.records.provider(provider), provider)))
        }
        (_, ["records", object, rest @ ..]) => {
            let Some(object) = canonical_object(provider, object) else {
                return Some(json_reply(
                    404,
                    json!({ "error": "unknown object", "objects": super::object_names(provider) }),
                ));
            };
            let (reply, webhooks) = sandbox.with_state(|s| {
                let records = s.records.provider(provider);
                let reply = match (method, rest) {
                    (&http::Method::GET, []) => list(records, object, request),
                    (&http::Method::POST, []) => create(records, provider, object, &body),
                    (&http::Method::GET, [id]) => match records.store_ref(object).and_then(|st| st.get(id)) {
                        Some(record) => json_reply(200, record_json(record)),
                        None => missing(id),
                    },
                    (&http::Method::PATCH, [id]) => patch(records, provider, object, id, &body),
                    (&http::Method::DELETE, [id]) => match records.delete(object, id) {
                        Some(_) => json_reply(200, json!({ "ok": true })),
                        None => missing(id),
                    },
                    _ => json_reply(404, json!({ "error": "unknown control action" })),
                };
                (reply, webhooks::capture(s, provider, Origin::Ui))
            });
            if webhooks > 0 {
                sandbox.webhook_wake.notify_one();
            }
            reply
        }
        (_, ["webhooks"]) => sandbox.with_state(|s| webhooks::control(s, provider, request)),
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

/// The limits `provider` has, by the names the control API uses.
fn limit_names(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Hubspot => &["requests", "search", "index_delay_ms"],
        Provider::Pipedrive => &["requests", "daily_tokens"],
        Provider::Salesforce => &["requests"],
        Provider::Jobber => &["requests", "cost"],
    }
}

fn limits_json(records: &mut ProviderRecords, provider: Provider) -> Value {
    let window = |w: &super::limits::RateLimit| json!({ "enabled": w.enabled, "max": w.max, "window_ms": w.window_ms });
    let mut out = json!({ "requests": window(&records.limit) });
    match provider {
        Provider::Hubspot => {
            out["search"] = window(&records.search_limit);
            out["index_delay_ms"] = records.index_delay_ms.into();
        }
        Provider::Pipedrive => {
            out["daily_tokens"] = json!({ "enabled": records.tokens.enabled, "max": records.tokens.max, "remaining": records.tokens.remaining() });
        }
        Provider::Jobber => {
            let available = records.bucket.available(now_ms());
            out["cost"] = json!({ "enabled": records.bucket.enabled, "max": records.bucket.max, "restore_rate": records.bucket.restore, "available": available });
        }
        Provider::Salesforce => {}
    }
    out
}

/// Switches every limit of `records` on or off; off also makes HubSpot's search see changes
/// at once.
pub fn switch_limits(records: &mut ProviderRecords, on: bool) {
    let (requests, search) = (records.limit.clone(), records.search_limit.clone());
    records.limit.configure(on, requests.max, requests.window_ms);
    records.search_limit.configure(on, search.max, search.window_ms);
    records.tokens.enabled = on;
    let max = records.bucket.max as u64;
    records.bucket.configure(on, max, now_ms());
    if !on {
        records.index_delay_ms = 0;
    }
}

/// `POST limits`: `{"<name>": bool | {"enabled": bool, "max": N, "window_ms": N}, "index_delay_ms": N}`
/// sets the named limits (every one is on by default at the provider's published figures);
/// `{"all": false}` switches every limit off and the index delay to 0, for tests that need
/// speed.
fn set_limits(records: &mut ProviderRecords, provider: Provider, body: &Value) -> Reply {
    let Some(settings) = body.as_object() else {
        return json_reply(400, json!({ "error": "the body must be a JSON object" }));
    };
    let known = limit_names(provider);
    if let Some(unknown) = settings
        .keys()
        .find(|k| k.as_str() != "all" && !known.contains(&k.as_str()))
    {
        return json_reply(
            400,
            json!({ "error": format!("unknown limit {unknown:?}"), "limits": known }),
        );
    }
    if settings
        .get("index_delay_ms")
        .is_some_and(|delay| delay.as_u64().is_none())
    {
        return json_reply(
            400,
            json!({ "error": "index_delay_ms must be a whole number of milliseconds" }),
        );
    }
    let now = now_ms();
    if let Some(all) = settings.get("all").and_then(Value::as_bool) {
        switch_limits(records, all);
    }
    for (name, setting) in settings {
        // `"requests": false` or `"requests": {"enabled": false, …}`.
        let enabled = setting
            .as_bool()
            .or_else(|| setting["enabled"].as_bool())
            .unwrap_or(true);
        match name.as_str() {
            "requests" | "search" => {
                let window = if name == "requests" {
                    &mut records.limit
                } else {
                    &mut records.search_limit
                };
                let max = setting["max"].as_u64().unwrap_or(window.max);
                let window_ms = setting["window_ms"].as_i64().unwrap_or(window.window_ms);
                window.configure(enabled, max, window_ms);
            }
            "daily_tokens" => {
                records.tokens.enabled = enabled;
                records.tokens.max = setting["max"].as_u64().unwrap_or(records.tokens.max);
            }
            "cost" => {
                let max = setting["max"].as_u64().unwrap_or(records.bucket.max as u64);
                records.bucket.configure(enabled, max, now);
            }
            "index_delay_ms" => records.index_delay_ms = setting.as_i64().unwrap_or(0).max(0),
            _ => {}
        }
    }
    json_reply(200, limits_json(records, provider))
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
            raw_query: String::new(),
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
        let (_, limits) = run(&sandbox, Provider::Jobber, http::Method::GET, "limits", Value::Null);
        assert_eq!(
            limits["cost"]["max"], 10_000.0,
            "on by default at Jobber's figures: {limits}"
        );
        assert_eq!(
            limits["requests"],
            json!({"enabled": true, "max": 2500, "window_ms": 300_000})
        );
        let (_, limit) = run(
            &sandbox,
            Provider::Jobber,
            http::Method::POST,
            "limits",
            json!({ "cost": { "enabled": true, "max": 200 } }),
        );
        assert_eq!(
            (limit["cost"]["max"].as_f64(), limit["cost"]["restore_rate"].as_f64()),
            (Some(200.0), Some(10.0))
        );
        let (status, refused) = run(
            &sandbox,
            Provider::Salesforce,
            http::Method::POST,
            "limits",
            json!({"cost": {}}),
        );
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["limits"], json!(["requests"]));
        let (_, off) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::POST,
            "limits",
            json!({"all": false}),
        );
        assert_eq!(off["requests"]["enabled"], false);
        assert_eq!(off["search"]["enabled"], false);
        assert_eq!(off["index_delay_ms"], 0);
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

    #[test]
    fn limits_are_on_by_default_and_switch_by_name() {
        let sandbox = Sandbox::default();
        let (status, limits) = run(&sandbox, Provider::Hubspot, http::Method::GET, "limits", Value::Null);
        assert_eq!(status, 200);
        assert_eq!(limits["requests"]["enabled"], true, "{limits}");
        assert_eq!(limits["requests"]["max"], 110, "{limits}");
        assert_eq!(limits["search"]["enabled"], true, "{limits}");
        assert_eq!(limits["index_delay_ms"], 3000, "{limits}");
        let (status, limits) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::POST,
            "limits",
            json!({ "search": false, "index_delay_ms": 0 }),
        );
        assert_eq!(status, 200);
        assert_eq!(
            (
                &limits["requests"]["enabled"],
                &limits["search"]["enabled"],
                &limits["index_delay_ms"]
            ),
            (&json!(true), &json!(false), &json!(0)),
            "{limits}"
        );
        let (status, body) = run(
            &sandbox,
            Provider::Salesforce,
            http::Method::POST,
            "limits",
            json!({ "cost": false }),
        );
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("cost"), "{body}");
        let (status, body) = run(
            &sandbox,
            Provider::Hubspot,
            http::Method::POST,
            "limits",
            json!({ "index_delay_ms": "soon" }),
        );
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("index_delay_ms"), "{body}");
    }
}
