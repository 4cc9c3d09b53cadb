//! Jobber's GraphQL API: introspection for the catalog; the `clients`, `jobs` and
//! `properties` connections with `pageInfo` paging, each reading only the fields asked for
//! (Jobber charges every selected field against its query-cost bucket); the create and edit
//! mutations, whose failures come back as `userErrors` with HTTP 200; throttling honoured.
//!
//! Incremental listing: clients are filtered by `updatedAt` (and by what a mapping's filter
//! asks of `isCompany`, `isLead`, `isArchived` and `createdAt`); jobs are listed whole and
//! filtered here (Jobber's job filter has no `updatedAt`); properties have no modification
//! time at all, so every pass lists them whole and the engine compares each with the hash of
//! what it last synced (their client's `updatedAt` stands in as their time for conflicts).

mod documents;

use std::time::Duration;

use serde_json::{Value, json};

use super::api::{ApiClient, ConnectorError};
use super::{FieldInfo, Fields, ListQuery, Page, RemoteRecord, WriteResult, parse_time, scalar_text};
use crate::mappings::filter::{Compiled, FilterOp};
use crate::providers::Provider;
use crate::providers::identity::JOBBER_GRAPHQL_VERSION;
use documents::{ADDRESS_PARTS, Object};

/// Largest page Jobber serves.
const PAGE_LIMIT: usize = 100;
/// Throttled answers retried before giving up.
const THROTTLE_RETRIES: u32 = 6;

pub struct Jobber {
    pub api: ApiClient,
}

/// `ClientFilterAttributes` for what a mapping's filter requires of every record: its flags
/// and its creation time (the only client fields Jobber filters on).
fn client_filter(filter: &Compiled) -> serde_json::Map<String, Value> {
    let mut attributes = serde_json::Map::new();
    for condition in filter.conjuncts() {
        let value = condition.values.first().map(|v| v.trim().to_ascii_lowercase());
        match (condition.field.as_str(), condition.op, value.as_deref()) {
            ("isCompany" | "isLead" | "isArchived", FilterOp::Equals, Some(flag @ ("true" | "false"))) => {
                attributes.insert(condition.field.clone(), Value::Bool(flag == "true"));
            }
            ("createdAt", FilterOp::Before | FilterOp::After, _) => {
                // Whole seconds, widened: before the next second, after the one it falls in.
                let whole = condition.time_ms().map(|ms| match condition.op {
                    FilterOp::Before => (ms + 999).div_euclid(1000) * 1000,
                    _ => ms.div_euclid(1000) * 1000,
                });
                let Some(at) = whole.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) else {
                    continue;
                };
                let bound = if condition.op == FilterOp::Before {
                    "before"
                } else {
                    "after"
                };
                let range = attributes.entry("createdAt").or_insert_with(|| json!({}));
                range[bound] = at.to_string().into();
            }
            _ => {}
        }
    }
    attributes
}

fn object(name: &str) -> Result<Object, ConnectorError> {
    Object::parse(name).ok_or_else(|| ConnectorError::UnknownObject {
        provider: Provider::Jobber,
        object: name.to_owned(),
    })
}

fn decode(reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Decode {
        provider: Provider::Jobber,
        reason: reason.into(),
    }
}

/// How long to wait before a throttled query's cost is available again.
fn throttle_wait(body: &Value) -> Option<Duration> {
    let throttled = body["errors"]
        .as_array()?
        .iter()
        .any(|e| e["extensions"]["code"] == "THROTTLED");
    if !throttled {
        return None;
    }
    let cost = &body["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_f64().unwrap_or(100.0);
    let status = &cost["throttleStatus"];
    let available = status["currentlyAvailable"].as_f64().unwrap_or(0.0);
    let restore = status["restoreRate"].as_f64().filter(|r| *r > 0.0).unwrap_or(500.0);
    Some(Duration::from_secs_f64(
        ((requested - available) / restore).clamp(0.1, 60.0),
    ))
}

impl Jobber {
    /// Runs one GraphQL query, waiting out throttling; returns `data`.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ConnectorError> {
        self.operation(query, variables, true).await
    }

    /// Runs one mutation: like [`Jobber::graphql`], but never sent again after a lost answer.
    async fn mutation(&self, query: &str, variables: Value) -> Result<Value, ConnectorError> {
        self.operation(query, variables, false).await
    }

    async fn operation(&self, query: &str, variables: Value, repeatable: bool) -> Result<Value, ConnectorError> {
        let body = json!({ "query": query, "variables": variables });
        for _ in 0..THROTTLE_RETRIES {
            let build = |http: &reqwest::Client, base: &str, token: &str| {
                http.post(format!("{base}/graphql"))
                    .bearer_auth(token)
                    .header("X-JOBBER-GRAPHQL-VERSION", JOBBER_GRAPHQL_VERSION)
                    .json(&body)
            };
            let answer = if repeatable {
                self.api.send(build).await?
            } else {
                self.api.send_create(build).await?
            };
            let answer = answer.ok(Provider::Jobber)?.json(Provider::Jobber)?;
            if let Some(wait) = throttle_wait(&answer) {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "Jobber throttled the query; waiting for its cost to restore"
                );
                self.api.slow_down(wait);
                continue;
            }
            if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
                let messages: Vec<&str> = errors.iter().filter_map(|e| e["message"].as_str()).collect();
                return Err(ConnectorError::Http {
                    provider: Provider::Jobber,
                    status: 200,
                    message: messages.join("; "),
                });
            }
            return Ok(answer["data"].clone());
        }
        Err(ConnectorError::RateLimited {
            provider: Provider::Jobber,
        })
    }

    /// The scalar fields of `type_name` and of its input type (which says what is writable).
    async fn introspect(&self, type_name: &str) -> Result<Value, ConnectorError> {
        Ok(self.graphql(documents::TYPE, json!({ "name": type_name })).await?["__type"].take())
    }

    pub async fn fields(&self, name: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        let object = object(name)?;
        let output = self.introspect(object.node_type()).await?;
        let input = self.introspect(object.input_type()).await?;
        let writable: Vec<(String, bool)> = input["inputFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["type"]["kind"] == "NON_NULL")))
            .collect();
        let scalar = |field: &Value| {
            let kind = &field["type"];
            let leaf = if kind["kind"] == "NON_NULL" {
                &kind["ofType"]
            } else {
                kind
            };
            (leaf["kind"] == "SCALAR" || leaf["kind"] == "ENUM")
                .then(|| leaf["name"].as_str().unwrap_or("String").to_owned())
        };
        let info = |name: &str, kind: String, writable: &[(String, bool)]| {
            let input = writable.iter().find(|(n, _)| n == name);
            FieldInfo {
                name: name.to_owned(),
                label: name.to_owned(),
                kind,
                required: input.is_some_and(|(_, required)| *required),
                read_only: input.is_none(),
            }
        };
        let mut fields: Vec<FieldInfo> = output["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|field| field["name"] != "id")
            .filter_map(|field| Some(info(field["name"].as_str()?, scalar(field)?, &writable)))
            .collect();
        let extra = |name: &str, label: &str, kind: &str, required: bool, read_only: bool| FieldInfo {
            name: name.into(),
            label: label.into(),
            kind: kind.into(),
            required,
            read_only,
        };
        match object {
            Object::Clients => {
                fields.push(extra("email", "Primary email", "String", false, false));
                fields.push(extra("phone", "Primary phone", "String", false, false));
                for part in ADDRESS_PARTS {
                    let name = format!("billingAddress.{part}");
                    fields.push(extra(&name, &name, "String", false, false));
                }
            }
            Object::Jobs => {
                fields.push(extra("clientId", "Client", "EncodedId", false, true));
                // Required to create a job: Jobber creates jobs at a property only.
                let property = writable.iter().find(|(n, _)| n == "propertyId");
                fields.push(extra(
                    "propertyId",
                    "Property",
                    "EncodedId",
                    property.is_some_and(|(_, required)| *required),
                    property.is_none(),
                ));
            }
            Object::Properties => {
                // The address parts are writable through `address` (AddressAttributes).
                for part in ADDRESS_PARTS {
                    fields.push(info(part, "String".into(), &writable));
                }
                fields.push(extra("clientId", "Client", "EncodedId", true, false));
            }
        }
        Ok(fields)
    }

    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        let object = object(query.object)?;
        let text = documents::list(object, query.fields);
        let mut variables = json!({ "first": query.limit.clamp(1, PAGE_LIMIT), "after": query.cursor });
        if object == Object::Clients {
            let mut filter = query.filter.map(client_filter).unwrap_or_default();
            if let Some(since) = query.since {
                filter.insert("updatedAt".into(), json!({ "after": since.to_string() }));
            }
            if !filter.is_empty() {
                variables["filter"] = Value::Object(filter);
            }
        }
        let data = self.graphql(&text, variables).await?;
        let connection = data
            .as_object()
            .and_then(|d| d.values().next())
            .ok_or_else(|| decode("answer without the connection"))?;
        let mut records = connection["nodes"]
            .as_array()
            .ok_or_else(|| decode("connection without nodes"))?
            .iter()
            .map(|node| record(object, node))
            .collect::<Result<Vec<_>, _>>()?;
        if let (Object::Jobs, Some(since)) = (object, query.since) {
            records.retain(|r| r.modified_at >= since);
        }
        let next = (connection["pageInfo"]["hasNextPage"] == true)
            .then(|| connection["pageInfo"]["endCursor"].as_str().map(str::to_owned))
            .flatten();
        Ok(Page {
            records,
            next,
            total: connection["totalCount"].as_u64(),
        })
    }

    pub async fn get(&self, name: &str, id: &str, fields: &[String]) -> Result<Option<RemoteRecord>, ConnectorError> {
        let object = object(name)?;
        let data = self
            .graphql(&documents::one(object, fields), json!({ "id": id }))
            .await?;
        let node = data
            .as_object()
            .and_then(|d| d.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        if node.is_null() {
            return Ok(None);
        }
        record(object, &node).map(Some)
    }

    pub async fn search(
        &self,
        name: &str,
        field: &str,
        value: &str,
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        if object(name)? != Object::Clients {
            return Err(ConnectorError::Http {
                provider: Provider::Jobber,
                status: 400,
                message: format!("Jobber {name} cannot be searched"),
            });
        }
        let mut selected = fields.to_vec();
        selected.push(field.to_owned());
        let data = self
            .graphql(
                &documents::search(&selected),
                json!({ "searchTerm": value, "first": 20 }),
            )
            .await?;
        let records = data["clients"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|node| record(Object::Clients, node))
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = value.trim().to_lowercase();
        Ok(records
            .into_iter()
            .filter(|r| r.fields.get(field).is_some_and(|v| v.trim().to_lowercase() == wanted))
            .collect())
    }

    pub async fn create(&self, name: &str, inputs: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        let object = object(name)?;
        let mut results = Vec::with_capacity(inputs.len());
        for fields in inputs {
            let request = match object {
                Object::Clients => documents::client_input(fields, None)
                    .map(|input| (documents::CLIENT_CREATE, json!({ "input": input }))),
                Object::Jobs => {
                    documents::job_create_input(fields).map(|input| (documents::JOB_CREATE, json!({ "input": input })))
                }
                Object::Properties => match fields.get("clientId").filter(|c| !c.is_empty()) {
                    Some(client) => Ok((
                        documents::PROPERTY_CREATE,
                        json!({ "clientId": client, "input": documents::property_create_input(fields) }),
                    )),
                    None => Err("clientId: Jobber creates a property for a client only; map clientId".to_owned()),
                },
            };
            results.push(match request {
                Ok((text, variables)) => per_record(self.mutation(text, variables).await, text)?,
                Err(message) => Err(message),
            });
        }
        Ok(results)
    }

    pub async fn update(&self, name: &str, inputs: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        let object = object(name)?;
        let mut results = Vec::with_capacity(inputs.len());
        for (id, fields) in inputs {
            let request = match object {
                Object::Clients => {
                    // Editing an email or phone needs its id: read them first.
                    let current = self.graphql(documents::CLIENT_CONTACTS, json!({ "id": id })).await?;
                    documents::client_input(fields, Some(&current["client"]))
                        .map(|input| (documents::CLIENT_EDIT, json!({ "clientId": id, "input": input })))
                }
                Object::Jobs => documents::job_edit_input(fields)
                    .map(|input| (documents::JOB_EDIT, json!({ "jobId": id, "input": input }))),
                Object::Properties => Ok((
                    documents::PROPERTY_EDIT,
                    json!({ "propertyId": id, "input": documents::property_edit_input(fields) }),
                )),
            };
            results.push(match request {
                Ok((text, variables)) => per_record(self.graphql(text, variables).await, text)?.map(|_| id.clone()),
                Err(message) => Err(message),
            });
        }
        Ok(results)
    }
}

/// A mutation's outcome for its one record: GraphQL errors about the input (HTTP 200) fail
/// that record only; transport, auth and throttling failures fail the job.
fn per_record(answer: Result<Value, ConnectorError>, document: &str) -> Result<WriteResult, ConnectorError> {
    let field = documents::MUTATIONS
        .iter()
        .find(|(text, _)| *text == document)
        .map_or("", |(_, field)| *field);
    match answer {
        Ok(data) => Ok(payload_result(&data[field])),
        Err(ConnectorError::Http {
            status: 200, message, ..
        }) => Ok(Err(message)),
        Err(error) => Err(error),
    }
}

/// The created or edited node's id, or the `userErrors`.
fn payload_result(payload: &Value) -> WriteResult {
    let errors: Vec<&str> = payload["userErrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let node = ["client", "job", "property"]
        .iter()
        .map(|k| &payload[*k])
        .chain(payload["properties"].as_array().and_then(|p| p.first()))
        .find(|n| !n.is_null());
    node.and_then(|n| n["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "Jobber returned no record".to_owned())
}

/// A node as flat fields: primary email and phone, `billingAddress.*` (clients), `clientId`
/// and `propertyId` (jobs), address parts and `clientId` (properties).
fn record(object: Object, node: &Value) -> Result<RemoteRecord, ConnectorError> {
    let map = node.as_object().ok_or_else(|| decode("node is not an object"))?;
    let id = map
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| decode("node without id"))?
        .to_owned();
    let modified = match object {
        Object::Properties => &node["client"]["updatedAt"],
        Object::Clients | Object::Jobs => &node["updatedAt"],
    };
    let modified_at = modified
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| decode("node without its modification time"))?;
    let mut fields = Fields::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("emails", Value::Array(items)) | ("phones", Value::Array(items)) => {
                let (flat, inner) = if key == "emails" {
                    ("email", "address")
                } else {
                    ("phone", "number")
                };
                let primary = items.iter().find(|i| i["primary"] == true).or_else(|| items.first());
                if let Some(text) = primary.and_then(|i| i[inner].as_str()) {
                    fields.insert(flat.to_owned(), text.to_owned());
                }
            }
            ("billingAddress" | "address", Value::Object(address)) => {
                let prefix = if key == "billingAddress" { "billingAddress." } else { "" };
                for part in ADDRESS_PARTS {
                    if let Some(text) = address.get(part).and_then(scalar_text) {
                        fields.insert(format!("{prefix}{part}"), text);
                    }
                }
            }
            ("client" | "property", Value::Object(related)) => {
                if let Some(text) = related.get("id").and_then(scalar_text) {
                    fields.insert(format!("{key}Id"), text);
                }
            }
            ("id", _) => {}
            (_, other) => {
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
    fn a_filter_pushes_its_flags_and_creation_bounds() {
        use crate::mappings::filter::Filter;
        let filter: Filter = serde_yaml_ng::from_str(
            "all: [{field: isLead, op: equals, value: true}, {field: createdAt, op: after, value: 2025-01-01}, {field: firstName, op: equals, value: Ann}]",
        )
        .unwrap();
        let kinds = |name: &str| {
            Some(
                if name == "isLead" {
                    "Boolean"
                } else if name == "createdAt" {
                    "ISO8601DateTime"
                } else {
                    "String"
                }
                .to_owned(),
            )
        };
        let compiled = Compiled::new(&filter, &kinds).unwrap();
        assert_eq!(
            Value::Object(client_filter(&compiled)),
            json!({ "isLead": true, "createdAt": { "after": "2025-01-01T00:00:00Z" } })
        );
        let any: Filter = serde_yaml_ng::from_str(
            "any: [{field: isLead, op: equals, value: true}, {field: isCompany, op: equals, value: true}]",
        )
        .unwrap();
        assert!(client_filter(&Compiled::new(&any, &kinds).unwrap()).is_empty());
    }

    #[test]
    fn nodes_flatten_per_object() {
        let client = json!({
            "id": "Z2lkOi8vSm9iYmVyL0NsaWVudC8x", "firstName": "Ann", "updatedAt": "2025-01-01T00:00:00Z",
            "emails": [{"address": "ann@x.com", "primary": true}], "phones": [],
            "billingAddress": {"street1": "1 Main St", "city": "Boston", "street2": null}
        });
        let parsed = record(Object::Clients, &client).unwrap();
        assert_eq!(parsed.fields["email"], "ann@x.com");
        assert_eq!(parsed.fields["billingAddress.city"], "Boston");
        assert!(!parsed.fields.contains_key("phone"));
        let property = json!({
            "id": "p1", "client": {"id": "c1", "updatedAt": "2025-02-01T00:00:00Z"},
            "address": {"street1": "2 Elm St", "city": "Salem"}
        });
        let parsed = record(Object::Properties, &property).unwrap();
        assert_eq!(parsed.fields["street1"], "2 Elm St");
        assert_eq!(parsed.fields["clientId"], "c1");
        assert_eq!(parsed.modified_at.to_string(), "2025-02-01T00:00:00Z");
    }

    #[test]
    fn throttled_answers_say_how_long_to_wait_and_payloads_their_errors() {
        let body = json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 1002, "throttleStatus": {"maximumAvailable": 10000, "currentlyAvailable": 2, "restoreRate": 500}}}
        });
        assert_eq!(throttle_wait(&body), Some(Duration::from_secs(2)));
        assert_eq!(throttle_wait(&json!({"data": {}})), None);
        assert_eq!(
            payload_result(&json!({"client": null, "userErrors": [{"message": "Email address is invalid"}]})),
            Err("Email address is invalid".into())
        );
        assert_eq!(
            payload_result(&json!({"properties": [{"id": "p9"}], "userErrors": []})),
            Ok("p9".into())
        );
    }
}
