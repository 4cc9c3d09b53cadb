//! Pipedrive: `*Fields` (v1) for the catalog; API v2 for records, with cursor paging and
//! `updated_since`. Persons' `emails`/`phones` arrays flatten to `email`/`phone` (the primary).
//!
//! A mapping's filter reaches the list calls where v2 has a parameter for it (`owner_id`,
//! `org_id`, `person_id`, `stage_id` equal to an id); other conditions are the engine's:
//! Pipedrive filters other fields only through saved filters (`/v1/filters`), objects in the
//! user's account that fluxd does not create.

use serde_json::{Map, Value, json};

use super::api::{ApiClient, ConnectorError, error_message};
use super::{FieldInfo, Fields, ListQuery, Page, RemoteRecord, WriteResult, parse_time, scalar_text};
use crate::mappings::filter::{Compiled, FilterOp};
use crate::providers::Provider;

/// Largest v2 page.
const PAGE_LIMIT: usize = 500;
/// Most ids one v2 list call takes (`ids`).
pub const IDS_LIMIT: usize = 100;

pub struct Pipedrive {
    pub api: ApiClient,
}

/// The v2 list parameters for `object` that select by an id field.
fn id_parameters(object: &str) -> &'static [&'static str] {
    match object {
        "persons" => &["owner_id", "org_id"],
        "organizations" => &["owner_id"],
        "deals" => &["owner_id", "person_id", "org_id", "stage_id"],
        _ => &[],
    }
}

/// The list parameters for what `filter` requires of every record.
fn list_filters(object: &str, filter: &Compiled) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    for condition in filter.conjuncts() {
        let Some(name) = id_parameters(object).iter().find(|p| **p == condition.field) else {
            continue;
        };
        let id = condition.values.first().and_then(|v| v.trim().parse::<u64>().ok());
        if let (FilterOp::Equals, Some(id), false) = (condition.op, id, params.iter().any(|(p, _)| p == name)) {
            params.push((*name, id.to_string()));
        }
    }
    params
}

fn decode(reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Decode {
        provider: Provider::Pipedrive,
        reason: reason.into(),
    }
}

/// The v1 fields endpoint of an object.
fn fields_path(object: &str) -> Result<&'static str, ConnectorError> {
    match object {
        "persons" => Ok("/api/v1/personFields"),
        "organizations" => Ok("/api/v1/organizationFields"),
        "deals" => Ok("/api/v1/dealFields"),
        other => Err(ConnectorError::UnknownObject {
            provider: Provider::Pipedrive,
            object: other.to_owned(),
        }),
    }
}

/// Fields that hold arrays of `{value, primary, label}` on the wire.
const ARRAY_FIELDS: [(&str, &str); 2] = [("email", "emails"), ("phone", "phones")];
/// Numeric id fields.
const NUMERIC_FIELDS: [&str; 6] = ["org_id", "owner_id", "person_id", "stage_id", "value", "visible_to"];

impl Pipedrive {
    fn provider(&self) -> Provider {
        Provider::Pipedrive
    }

    fn envelope(&self, body: Value) -> Result<Value, ConnectorError> {
        if body["success"] == true {
            Ok(body)
        } else {
            Err(ConnectorError::Http {
                provider: self.provider(),
                status: 200,
                message: error_message(body.to_string().as_bytes()),
            })
        }
    }

    pub async fn fields(&self, object: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        let path = fields_path(object)?;
        let body = self.envelope(
            self.api
                .json(|http, base, token| http.get(format!("{base}{path}")).bearer_auth(token))
                .await?,
        )?;
        let fields = body["data"].as_array().ok_or_else(|| decode("fields without data"))?;
        Ok(fields
            .iter()
            .filter_map(|f| {
                Some(FieldInfo {
                    name: f["key"].as_str()?.to_owned(),
                    label: f["name"].as_str().unwrap_or_default().to_owned(),
                    kind: f["field_type"].as_str().unwrap_or("varchar").to_owned(),
                    required: f["mandatory_flag"] == true,
                    read_only: f["edit_flag"] == false
                        && matches!(f["key"].as_str(), Some("add_time" | "update_time" | "id")),
                })
            })
            .collect())
    }

    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        fields_path(query.object)?;
        let mut params: Vec<(&str, String)> = vec![
            ("sort_by", "update_time".into()),
            ("sort_direction", "asc".into()),
            ("limit", query.limit.clamp(1, PAGE_LIMIT).to_string()),
        ];
        if let Some(since) = query.since {
            params.push(("updated_since", since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        if let Some(cursor) = query.cursor {
            params.push(("cursor", cursor.to_owned()));
        }
        if let Some(filter) = query.filter {
            params.extend(list_filters(query.object, filter));
        }
        let path = format!("/api/v2/{}", query.object);
        let body = self.envelope(
            self.api
                .json(|http, base, token| http.get(format!("{base}{path}")).query(&params).bearer_auth(token))
                .await?,
        )?;
        let records = body["data"]
            .as_array()
            .ok_or_else(|| decode("list without data"))?
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        let next = body["additional_data"]["next_cursor"].as_str().map(str::to_owned);
        Ok(Page {
            records,
            next,
            total: None,
        })
    }

    pub async fn get(&self, object: &str, id: &str) -> Result<Option<RemoteRecord>, ConnectorError> {
        fields_path(object)?;
        let id = numeric_id(id)?;
        let path = format!("/api/v2/{object}/{id}");
        let answer = self
            .api
            .send(|http, base, token| http.get(format!("{base}{path}")).bearer_auth(token))
            .await?;
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = self.envelope(answer.ok(self.provider())?.json(self.provider())?)?;
        record(&body["data"]).map(Some)
    }

    /// Up to [`IDS_LIMIT`] records by id, through the v2 list's `ids` filter.
    pub async fn get_many(&self, object: &str, ids: &[String]) -> Result<Vec<RemoteRecord>, ConnectorError> {
        fields_path(object)?;
        let numeric = ids.iter().map(|id| numeric_id(id)).collect::<Result<Vec<_>, _>>()?;
        let params = [
            ("ids", numeric.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
            ("limit", IDS_LIMIT.to_string()),
        ];
        let path = format!("/api/v2/{object}");
        let body = self.envelope(
            self.api
                .json(|http, base, token| http.get(format!("{base}{path}")).query(&params).bearer_auth(token))
                .await?,
        )?;
        body["data"]
            .as_array()
            .ok_or_else(|| decode("list without data"))?
            .iter()
            .map(record)
            .collect()
    }

    /// The webhooks of the company (for an app's token, the app's own): `(id, event_object,
    /// subscription_url)` each.
    pub async fn webhooks(&self) -> Result<Vec<(String, String, String)>, ConnectorError> {
        let body = self.envelope(
            self.api
                .json(|http, base, token| http.get(format!("{base}/api/v1/webhooks")).bearer_auth(token))
                .await?,
        )?;
        Ok(body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|hook| {
                Some((
                    scalar_text(&hook["id"])?,
                    hook["event_object"].as_str()?.to_owned(),
                    hook["subscription_url"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// Creates a webhook (v2 payloads) for every action on `object`, sent to `url` with HTTP
    /// Basic `user`/`password`; returns its id.
    pub async fn create_webhook(
        &self,
        object: &str,
        url: &str,
        user: &str,
        password: &str,
    ) -> Result<String, ConnectorError> {
        let body = json!({
            "subscription_url": url,
            "event_action": "*",
            "event_object": object,
            "name": format!("FluxCascade {object} changes"),
            "http_auth_user": user,
            "http_auth_password": password,
            "version": "2.0",
        });
        let answer = self.envelope(
            self.api
                .json(|http, base, token| {
                    http.post(format!("{base}/api/v1/webhooks"))
                        .bearer_auth(token)
                        .json(&body)
                })
                .await?,
        )?;
        scalar_text(&answer["data"]["id"]).ok_or_else(|| decode("created webhook without an id"))
    }

    /// Deletes webhook `id`.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ConnectorError> {
        let id = numeric_id(id)?;
        self.envelope(
            self.api
                .json(|http, base, token| http.delete(format!("{base}/api/v1/webhooks/{id}")).bearer_auth(token))
                .await?,
        )?;
        Ok(())
    }

    pub async fn search(&self, object: &str, field: &str, value: &str) -> Result<Vec<RemoteRecord>, ConnectorError> {
        fields_path(object)?;
        let path = format!("/api/v2/{object}/search");
        let params = [
            ("term", value.to_owned()),
            ("fields", field.to_owned()),
            ("exact_match", "true".to_owned()),
        ];
        let body = self.envelope(
            self.api
                .json(|http, base, token| http.get(format!("{base}{path}")).query(&params).bearer_auth(token))
                .await?,
        )?;
        let items = body["data"]["items"].as_array().into_iter().flatten();
        let mut found = Vec::new();
        for item in items {
            let id = item["item"]["id"]
                .as_i64()
                .map(|i| i.to_string())
                .ok_or_else(|| decode("search item without id"))?;
            // The search answer is abridged; read the whole record.
            if let Some(record) = self.get(object, &id).await? {
                found.push(record);
            }
        }
        Ok(found)
    }

    pub async fn create(&self, object: &str, inputs: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        let path = format!("/api/v2/{object}");
        let mut results = Vec::with_capacity(inputs.len());
        for fields in inputs {
            let body = to_wire(fields);
            let answer = self
                .api
                .send_create(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
                .await?;
            results.push(write_result(&answer.body, answer.status.is_success()));
        }
        Ok(results)
    }

    pub async fn update(&self, object: &str, inputs: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        let mut results = Vec::with_capacity(inputs.len());
        for (id, fields) in inputs {
            let path = format!("/api/v2/{object}/{}", numeric_id(id)?);
            let body = to_wire(fields);
            let answer = self
                .api
                .send(|http, base, token| http.patch(format!("{base}{path}")).bearer_auth(token).json(&body))
                .await?;
            results.push(write_result(&answer.body, answer.status.is_success()).map(|_| id.clone()));
        }
        Ok(results)
    }
}

fn numeric_id(id: &str) -> Result<i64, ConnectorError> {
    id.parse().map_err(|_| decode(format!("{id:?} is not a Pipedrive id")))
}

fn write_result(body: &[u8], success: bool) -> WriteResult {
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    if success && parsed["success"] == true {
        parsed["data"]["id"]
            .as_i64()
            .map(|id| id.to_string())
            .ok_or_else(|| "Pipedrive returned no id".to_owned())
    } else {
        Err(error_message(body))
    }
}

/// Flattened fields to the v2 request shape.
fn to_wire(fields: &Fields) -> Value {
    let mut body = Map::new();
    for (name, value) in fields {
        if let Some((_, array)) = ARRAY_FIELDS.iter().find(|(flat, _)| flat == name) {
            let items = if value.is_empty() {
                json!([])
            } else {
                json!([{ "value": value, "primary": true, "label": "work" }])
            };
            body.insert((*array).to_owned(), items);
        } else if NUMERIC_FIELDS.contains(&name.as_str()) {
            body.insert(name.clone(), value.parse::<f64>().map_or(Value::Null, |n| json!(n)));
        } else if value.is_empty() {
            body.insert(name.clone(), Value::Null);
        } else {
            body.insert(name.clone(), Value::String(value.clone()));
        }
    }
    Value::Object(body)
}

fn record(value: &Value) -> Result<RemoteRecord, ConnectorError> {
    let map = value.as_object().ok_or_else(|| decode("record is not an object"))?;
    let id = map
        .get("id")
        .and_then(scalar_text)
        .ok_or_else(|| decode("record without id"))?;
    let modified_at = map
        .get("update_time")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| decode("record without update_time"))?;
    let mut fields = Fields::new();
    for (key, item) in map {
        match item {
            Value::Array(entries) => {
                if let Some((flat, _)) = ARRAY_FIELDS.iter().find(|(_, array)| array == key) {
                    let primary = entries
                        .iter()
                        .find(|e| e["primary"] == true)
                        .or_else(|| entries.first());
                    if let Some(text) = primary.and_then(|e| e["value"].as_str()) {
                        fields.insert((*flat).to_owned(), text.to_owned());
                    }
                }
            }
            Value::Object(inner) if key == "custom_fields" => {
                fields.extend(inner.iter().filter_map(|(k, v)| scalar_text(v).map(|t| (k.clone(), t))));
            }
            Value::Object(inner) => {
                if let Some(text) = inner.get("value").and_then(scalar_text) {
                    fields.insert(key.clone(), text);
                }
            }
            other => {
                if let Some(text) = scalar_text(other) {
                    fields.insert(key.clone(), text);
                }
            }
        }
    }
    Ok(RemoteRecord {
        id,
        modified_at,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_conditions_become_list_parameters() {
        use crate::mappings::filter::Filter;
        let filter: Filter = serde_yaml_ng::from_str(
            "all: [{field: owner_id, op: equals, value: 7}, {field: org_id, op: in, value: [1, 2]}, {field: name, op: equals, value: Ann}]",
        )
        .unwrap();
        let kinds = |name: &str| Some(if name == "name" { "varchar" } else { "user" }.to_owned());
        let compiled = Compiled::new(&filter, &kinds).unwrap();
        assert_eq!(list_filters("persons", &compiled), vec![("owner_id", "7".to_owned())]);
        assert!(
            list_filters("organizations", &Compiled::new(&filter, &|_| None).unwrap())
                .iter()
                .all(|(p, _)| *p == "owner_id")
        );
    }

    #[test]
    fn persons_flatten_their_primary_email_and_phone_and_back() {
        let wire = json!({
            "id": 12, "name": "Ann Lee", "update_time": "2025-01-01T00:00:00Z", "org_id": null,
            "emails": [{"value": "old@x.com", "primary": false}, {"value": "ann@x.com", "primary": true}],
            "phones": [{"value": "+14155550100", "primary": true}],
            "address": {"value": "1 Main St"}, "custom_fields": {"abc123": "gold"}
        });
        let parsed = record(&wire).unwrap();
        assert_eq!(parsed.id, "12");
        assert_eq!(parsed.fields["email"], "ann@x.com");
        assert_eq!(parsed.fields["phone"], "+14155550100");
        assert_eq!(parsed.fields["address"], "1 Main St");
        assert_eq!(parsed.fields["abc123"], "gold");
        let body = to_wire(&parsed.fields);
        assert_eq!(body["emails"][0]["value"], "ann@x.com");
        assert_eq!(body["emails"][0]["primary"], true);
    }
}
