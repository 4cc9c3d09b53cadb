//! Jobber's GraphQL API: introspection for the catalog; `clients`, `jobs` and `properties`
//! connections with `pageInfo` paging (clients filtered by `updatedAt`, the others filtered
//! here since Jobber offers no such filter); `clientCreate`/`clientEdit` and friends, whose
//! failures come back as `userErrors` with HTTP 200; query-cost throttling honoured.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::api::{ApiClient, ConnectorError};
use super::{FieldInfo, Fields, ListQuery, Page, RemoteRecord, WriteResult, parse_time, scalar_text};
use crate::providers::Provider;
use crate::providers::identity::JOBBER_GRAPHQL_VERSION;

/// Largest page Jobber serves.
const PAGE_LIMIT: usize = 100;
/// Throttled answers retried before giving up.
const THROTTLE_RETRIES: u32 = 6;

pub struct Jobber {
    pub api: ApiClient,
}

/// Per object: the GraphQL type, its create input, the connection and node field names, and
/// the selection of a node.
struct ObjectSchema {
    node_type: &'static str,
    input_type: &'static str,
    connection: &'static str,
    single: &'static str,
    selection: &'static str,
}

const CLIENT_SELECTION: &str = "id firstName lastName companyName title isCompany createdAt updatedAt \
    emails { id address primary } phones { id number primary } \
    billingAddress { street1 street2 city province postalCode country }";
const JOB_SELECTION: &str = "id jobNumber title jobStatus total startAt endAt createdAt updatedAt client { id }";
const PROPERTY_SELECTION: &str =
    "id street1 street2 city province postalCode country createdAt updatedAt client { id }";

/// Flattened names of the billing address.
const ADDRESS_PARTS: [&str; 6] = ["street1", "street2", "city", "province", "postalCode", "country"];

fn schema(object: &str) -> Result<ObjectSchema, ConnectorError> {
    match object {
        "clients" => Ok(ObjectSchema {
            node_type: "Client",
            input_type: "ClientCreateInput",
            connection: "clients",
            single: "client",
            selection: CLIENT_SELECTION,
        }),
        "jobs" => Ok(ObjectSchema {
            node_type: "Job",
            input_type: "JobCreateAttributes",
            connection: "jobs",
            single: "job",
            selection: JOB_SELECTION,
        }),
        "properties" => Ok(ObjectSchema {
            node_type: "Property",
            input_type: "PropertyAttributes",
            connection: "properties",
            single: "property",
            selection: PROPERTY_SELECTION,
        }),
        other => Err(ConnectorError::UnknownObject {
            provider: Provider::Jobber,
            object: other.to_owned(),
        }),
    }
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

    pub async fn fields(&self, object: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        let schema = schema(object)?;
        let query = "query Type($name: String!) { __type(name: $name) { name fields { name type { kind name ofType { kind name } } } \
                     inputFields { name type { kind name ofType { kind name } } } } }";
        let output = self.graphql(query, json!({ "name": schema.node_type })).await?;
        let input = self.graphql(query, json!({ "name": schema.input_type })).await?;
        let writable: Vec<(String, bool)> = input["__type"]["inputFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["type"]["kind"] == "NON_NULL")))
            .collect();
        let mut fields: Vec<FieldInfo> = Vec::new();
        for field in output["__type"]["fields"].as_array().into_iter().flatten() {
            let Some(name) = field["name"].as_str() else { continue };
            let kind = &field["type"];
            let leaf = if kind["kind"] == "NON_NULL" {
                &kind["ofType"]
            } else {
                kind
            };
            if leaf["kind"] != "SCALAR" && leaf["kind"] != "ENUM" {
                continue;
            }
            let input = writable.iter().find(|(n, _)| n == name);
            fields.push(FieldInfo {
                name: name.to_owned(),
                label: name.to_owned(),
                kind: leaf["name"].as_str().unwrap_or("String").to_owned(),
                required: input.is_some_and(|(_, required)| *required),
                read_only: input.is_none(),
            });
        }
        if object == "clients" {
            for (name, label) in [("email", "Primary email"), ("phone", "Primary phone")] {
                fields.push(FieldInfo {
                    name: name.into(),
                    label: label.into(),
                    kind: "String".into(),
                    required: false,
                    read_only: false,
                });
            }
            for part in ADDRESS_PARTS {
                let name = format!("billingAddress.{part}");
                fields.push(FieldInfo {
                    label: name.clone(),
                    name,
                    kind: "String".into(),
                    required: false,
                    read_only: false,
                });
            }
        }
        if object != "clients" {
            fields.push(FieldInfo {
                name: "clientId".into(),
                label: "Client".into(),
                kind: "EncodedId".into(),
                required: false,
                read_only: object == "jobs",
            });
        }
        Ok(fields)
    }

    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        let schema = schema(query.object)?;
        let filtered_by_provider = query.object == "clients";
        let (filter_arg, filter_param) = if filtered_by_provider {
            ("filter: $filter, ", "$filter: ClientFilterAttributes, ")
        } else {
            ("", "")
        };
        let text = format!(
            "query List({filter_param}$first: Int, $after: String) {{ {c}({filter_arg}first: $first, after: $after) {{ nodes {{ {s} }} pageInfo {{ endCursor hasNextPage }} totalCount }} }}",
            c = schema.connection,
            s = schema.selection,
        );
        let mut variables = json!({ "first": query.limit.clamp(1, PAGE_LIMIT), "after": query.cursor });
        if let (true, Some(since)) = (filtered_by_provider, query.since) {
            variables["filter"] = json!({ "updatedAt": { "after": since.to_string() } });
        }
        let data = self.graphql(&text, variables).await?;
        let connection = &data[schema.connection];
        let mut records = connection["nodes"]
            .as_array()
            .ok_or_else(|| decode("connection without nodes"))?
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        if let (false, Some(since)) = (filtered_by_provider, query.since) {
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

    async fn node(&self, object: &str, id: &str) -> Result<Option<Value>, ConnectorError> {
        let schema = schema(object)?;
        let text = format!(
            "query One($id: EncodedId!) {{ {}(id: $id) {{ {} }} }}",
            schema.single, schema.selection
        );
        let data = self.graphql(&text, json!({ "id": id })).await?;
        Ok(Some(data[schema.single].clone()).filter(|n| !n.is_null()))
    }

    pub async fn get(&self, object: &str, id: &str) -> Result<Option<RemoteRecord>, ConnectorError> {
        self.node(object, id).await?.as_ref().map(record).transpose()
    }

    pub async fn search(&self, object: &str, field: &str, value: &str) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let schema = schema(object)?;
        if object != "clients" {
            return Err(ConnectorError::Http {
                provider: Provider::Jobber,
                status: 400,
                message: format!("{} cannot be searched", schema.connection),
            });
        }
        let text = format!(
            "query Search($searchTerm: String, $first: Int) {{ clients(searchTerm: $searchTerm, first: $first) {{ nodes {{ {} }} }} }}",
            schema.selection
        );
        let data = self.graphql(&text, json!({ "searchTerm": value, "first": 20 })).await?;
        let records = data["clients"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = value.trim().to_lowercase();
        Ok(records
            .into_iter()
            .filter(|r| r.fields.get(field).is_some_and(|v| v.trim().to_lowercase() == wanted))
            .collect())
    }

    pub async fn create(&self, object: &str, inputs: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        let mut results = Vec::with_capacity(inputs.len());
        for fields in inputs {
            let (text, variables, payload) = match object {
                "clients" => (
                    "mutation Create($input: ClientCreateInput!) { clientCreate(input: $input) { client { id } userErrors { message path } } }",
                    json!({ "input": client_input(fields, None) }),
                    "clientCreate",
                ),
                "jobs" => (
                    "mutation Create($input: JobCreateAttributes!) { jobCreate(input: $input) { job { id } userErrors { message path } } }",
                    json!({ "input": plain_input(fields) }),
                    "jobCreate",
                ),
                "properties" => (
                    "mutation Create($clientId: EncodedId!, $input: PropertyCreateInput!) { propertyCreate(clientId: $clientId, input: $input) { property { id } userErrors { message path } } }",
                    json!({ "clientId": fields.get("clientId"), "input": plain_input(fields) }),
                    "propertyCreate",
                ),
                other => {
                    return Err(ConnectorError::UnknownObject {
                        provider: Provider::Jobber,
                        object: other.to_owned(),
                    });
                }
            };
            results.push(per_record(self.mutation(text, variables).await, payload)?);
        }
        Ok(results)
    }

    pub async fn update(&self, object: &str, inputs: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        let mut results = Vec::with_capacity(inputs.len());
        for (id, fields) in inputs {
            let (text, variables, payload) = match object {
                "clients" => {
                    // Editing an email or phone needs its id: read the client first.
                    let current = self.node(object, id).await?;
                    (
                        "mutation Edit($clientId: EncodedId!, $input: ClientEditInput!) { clientEdit(clientId: $clientId, input: $input) { client { id } userErrors { message path } } }",
                        json!({ "clientId": id, "input": client_input(fields, Some(current.as_ref().unwrap_or(&Value::Null))) }),
                        "clientEdit",
                    )
                }
                "jobs" => (
                    "mutation Edit($jobId: EncodedId!, $input: JobEditInput!) { jobEdit(jobId: $jobId, input: $input) { job { id } userErrors { message path } } }",
                    json!({ "jobId": id, "input": plain_input(fields) }),
                    "jobEdit",
                ),
                "properties" => (
                    "mutation Edit($propertyId: EncodedId!, $input: PropertyAttributes!) { propertyEdit(propertyId: $propertyId, input: $input) { property { id } userErrors { message path } } }",
                    json!({ "propertyId": id, "input": plain_input(fields) }),
                    "propertyEdit",
                ),
                other => {
                    return Err(ConnectorError::UnknownObject {
                        provider: Provider::Jobber,
                        object: other.to_owned(),
                    });
                }
            };
            results.push(per_record(self.graphql(text, variables).await, payload)?.map(|_| id.clone()));
        }
        Ok(results)
    }
}

/// A mutation's outcome for its one record: GraphQL errors about the input (HTTP 200) fail
/// that record only; transport, auth and throttling failures fail the job.
fn per_record(answer: Result<Value, ConnectorError>, payload: &str) -> Result<WriteResult, ConnectorError> {
    match answer {
        Ok(data) => Ok(payload_result(&data[payload])),
        Err(ConnectorError::Http {
            status: 200, message, ..
        }) => Ok(Err(message)),
        Err(error) => Err(error),
    }
}

/// The created/edited node's id, or the `userErrors`.
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
        .find(|n| !n.is_null());
    node.and_then(|n| n["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "Jobber returned no record".to_owned())
}

/// Fields (except `clientId`) as a GraphQL input object.
fn plain_input(fields: &Fields) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "clientId")
        .map(|(k, v)| {
            (
                k.clone(),
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v.clone())
                },
            )
        })
        .collect();
    Value::Object(map)
}

/// A client's create input, or its edit input when `current` (the node as read) is given.
fn client_input(fields: &Fields, current: Option<&Value>) -> Value {
    let mut input = Map::new();
    let mut address = Map::new();
    for (name, value) in fields {
        let text = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value.clone())
        };
        match name.as_str() {
            "email" | "phone" => {}
            "isCompany" => {
                input.insert(name.clone(), Value::Bool(value == "true"));
            }
            other => match other.strip_prefix("billingAddress.") {
                Some(part) => {
                    address.insert(part.to_owned(), text);
                }
                None => {
                    input.insert(other.to_owned(), text);
                }
            },
        }
    }
    if !address.is_empty() {
        input.insert("billingAddress".into(), Value::Object(address));
    }
    for (flat, array, key) in [("email", "emails", "address"), ("phone", "phones", "number")] {
        let Some(value) = fields.get(flat).filter(|v| !v.is_empty()) else {
            continue;
        };
        match current {
            None => {
                input.insert(
                    array.into(),
                    json!([{ key: value, "primary": true, "description": "MAIN" }]),
                );
            }
            Some(node) => {
                let existing = node[array]
                    .as_array()
                    .and_then(|items| items.iter().find(|i| i["primary"] == true).or_else(|| items.first()));
                match existing.and_then(|e| e["id"].as_str()) {
                    Some(id) => input.insert(
                        format!("{array}ToEdit"),
                        json!([{ "id": id, key: value, "primary": true }]),
                    ),
                    None => input.insert(
                        format!("{array}ToAdd"),
                        json!([{ key: value, "primary": true, "description": "MAIN" }]),
                    ),
                };
            }
        }
    }
    Value::Object(input)
}

fn record(node: &Value) -> Result<RemoteRecord, ConnectorError> {
    let map = node.as_object().ok_or_else(|| decode("node is not an object"))?;
    let id = map
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| decode("node without id"))?
        .to_owned();
    let modified_at = map
        .get("updatedAt")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| decode("node without updatedAt"))?;
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
            ("billingAddress", Value::Object(address)) => {
                for part in ADDRESS_PARTS {
                    if let Some(text) = address.get(part).and_then(scalar_text) {
                        fields.insert(format!("billingAddress.{part}"), text);
                    }
                }
            }
            ("client", Value::Object(client)) => {
                if let Some(text) = client.get("id").and_then(scalar_text) {
                    fields.insert("clientId".into(), text);
                }
            }
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
    fn clients_flatten_and_edit_inputs_use_existing_ids() {
        let node = json!({
            "id": "Z2lkOi8vSm9iYmVyL0NsaWVudC8x", "firstName": "Ann", "lastName": "Lee", "updatedAt": "2025-01-01T00:00:00Z",
            "emails": [{"id": "e1", "address": "ann@x.com", "primary": true}], "phones": [],
            "billingAddress": {"street1": "1 Main St", "city": "Boston", "street2": null}
        });
        let parsed = record(&node).unwrap();
        assert_eq!(parsed.fields["email"], "ann@x.com");
        assert_eq!(parsed.fields["billingAddress.city"], "Boston");
        assert!(!parsed.fields.contains_key("phone"));
        let mut change = Fields::new();
        change.insert("email".into(), "new@x.com".into());
        change.insert("phone".into(), "+14155550100".into());
        change.insert("billingAddress.city".into(), "Cambridge".into());
        let edit = client_input(&change, Some(&node));
        assert_eq!(edit["emailsToEdit"][0]["id"], "e1");
        assert_eq!(edit["phonesToAdd"][0]["number"], "+14155550100");
        assert_eq!(edit["billingAddress"]["city"], "Cambridge");
        let create = client_input(&change, None);
        assert_eq!(create["emails"][0]["address"], "new@x.com");
    }

    #[test]
    fn throttled_answers_say_how_long_to_wait() {
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
    }
}
