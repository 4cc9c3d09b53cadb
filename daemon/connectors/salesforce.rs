//! Salesforce REST: `describe` for the catalog, SOQL on `SystemModstamp` with
//! `nextRecordsUrl` paging for changed-since listings (a mapping's filter in the WHERE clause),
//! sObject Collections for batches of 200.

use serde_json::{Map, Value, json};

use super::api::{ApiClient, ConnectorError};
use super::{FieldInfo, Fields, ListQuery, Page, RemoteRecord, WriteResult, parse_time, scalar_text};
use crate::mappings::filter::{Condition, FilterOp, Pushed, ValueKind};
use crate::providers::Provider;

/// Most records per sObject Collections call.
pub const BATCH_LIMIT: usize = 200;
/// The REST API version fluxd speaks.
pub const API_VERSION: &str = "v62.0";

pub struct Salesforce {
    pub api: ApiClient,
}

fn decode(reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Decode {
        provider: Provider::Salesforce,
        reason: reason.into(),
    }
}

/// Quotes a SOQL string literal.
pub fn soql_string(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '\'' => vec!['\\', '\''],
            '\\' => vec!['\\', '\\'],
            '\n' => vec!['\\', 'n'],
            other => vec![other],
        })
        .collect();
    format!("'{escaped}'")
}

/// A SOQL field name must be a plain identifier (no injection through mapping files).
fn check_identifier(name: &str) -> Result<&str, ConnectorError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        Ok(name)
    } else {
        Err(decode(format!("{name:?} is not a Salesforce field name")))
    }
}

/// Field types SOQL filters on with the literals written here (not text areas, encrypted
/// text, times, compound addresses or multi-select picklists).
const FILTERABLE: [&str; 15] = [
    "string",
    "email",
    "phone",
    "url",
    "picklist",
    "combobox",
    "id",
    "reference",
    "boolean",
    "int",
    "double",
    "currency",
    "percent",
    "date",
    "datetime",
];
/// The longest filter pushed into a query (the query travels in the URL); a longer one stays
/// with the engine.
const MAX_PUSHED_FILTER: usize = 4_000;

/// How a date or time bound that falls between two literals is written: literals have whole
/// days (dates) or seconds (datetimes).
#[derive(Clone, Copy, PartialEq)]
enum Rounding {
    /// Only an exact literal will do.
    Exact,
    Down,
    Up,
}

/// A filter condition as a SOQL comparison, where SOQL says the same (text compares
/// case-insensitively in both); bounds between two literals are widened, never narrowed.
fn soql_condition(condition: &Condition) -> Option<String> {
    let field = check_identifier(&condition.field).ok()?;
    if !FILTERABLE.contains(&condition.type_name.to_ascii_lowercase().as_str()) {
        return None;
    }
    let literal = |text: &str, rounding: Rounding| -> Option<String> {
        match condition.kind {
            ValueKind::Text => Some(soql_string(text.trim())),
            ValueKind::Bool => Some(text.trim().to_ascii_lowercase()),
            ValueKind::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|n| n.to_string()),
            ValueKind::Date | ValueKind::DateTime => {
                let ms = crate::mappings::filter::time_ms(text.trim())?;
                let unit: i64 = if condition.kind == ValueKind::Date {
                    86_400_000
                } else {
                    1_000
                };
                let floor = ms.div_euclid(unit) * unit;
                let bound = match (floor == ms, rounding) {
                    (true, _) | (false, Rounding::Down) => floor,
                    (false, Rounding::Up) => floor + unit,
                    (false, Rounding::Exact) => return None,
                };
                let at = jiff::Timestamp::from_millisecond(bound).ok()?;
                Some(match condition.kind {
                    ValueKind::Date => at.strftime("%Y-%m-%d").to_string(),
                    _ => at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                })
            }
        }
    };
    let first = |rounding| literal(condition.values.first()?, rounding);
    Some(match condition.op {
        FilterOp::Equals => format!("{field} = {}", first(Rounding::Exact)?),
        FilterOp::NotEquals => format!("{field} != {}", first(Rounding::Exact)?),
        FilterOp::In => {
            let values: Option<Vec<String>> = condition.values.iter().map(|v| literal(v, Rounding::Exact)).collect();
            format!("{field} IN ({})", values?.join(", "))
        }
        FilterOp::Contains => {
            let text = condition.values.first()?.trim();
            if condition.kind != ValueKind::Text || text.contains(['%', '_']) {
                return None;
            }
            let quoted = soql_string(text);
            format!("{field} LIKE '%{}%'", &quoted[1..quoted.len() - 1])
        }
        // A checkbox is never null (unchecked is false), unlike an empty value here.
        FilterOp::IsKnown | FilterOp::IsUnknown if condition.kind == ValueKind::Bool => return None,
        FilterOp::IsKnown => format!("{field} != null"),
        FilterOp::IsUnknown => format!("{field} = null"),
        FilterOp::Before => format!("{field} < {}", first(Rounding::Up)?),
        FilterOp::After => format!("{field} > {}", first(Rounding::Down)?),
    })
}

/// A pushed filter as a SOQL condition.
fn soql_where(pushed: &Pushed<String>) -> String {
    let join = |items: &[Pushed<String>], glue: &str| {
        let parts: Vec<String> = items.iter().map(soql_where).collect();
        format!("({})", parts.join(glue))
    };
    match pushed {
        Pushed::Condition(condition) => condition.clone(),
        Pushed::All(items) => join(items, " AND "),
        Pushed::Any(items) => join(items, " OR "),
    }
}

fn select_list(fields: &[String]) -> Result<String, ConnectorError> {
    let mut names: Vec<&str> = vec!["Id", "SystemModstamp"];
    for field in fields {
        let field = check_identifier(field)?;
        if !names.contains(&field) {
            names.push(field);
        }
    }
    Ok(names.join(", "))
}

impl Salesforce {
    fn provider(&self) -> Provider {
        Provider::Salesforce
    }

    pub async fn fields(&self, object: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        let object = check_identifier(object)?.to_owned();
        let body = self
            .api
            .json(|http, base, token| {
                http.get(format!("{base}/services/data/{API_VERSION}/sobjects/{object}/describe"))
                    .bearer_auth(token)
            })
            .await?;
        let fields = body["fields"]
            .as_array()
            .ok_or_else(|| decode("describe without fields"))?;
        Ok(fields
            .iter()
            .filter_map(|f| {
                let createable = f["createable"] == true;
                Some(FieldInfo {
                    name: f["name"].as_str()?.to_owned(),
                    label: f["label"].as_str().unwrap_or_default().to_owned(),
                    kind: f["type"].as_str().unwrap_or("string").to_owned(),
                    required: createable && f["nillable"] == false && f["defaultedOnCreate"] != true,
                    read_only: !createable && f["updateable"] != true,
                })
            })
            .collect())
    }

    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        let batch = format!("batchSize={}", query.limit.clamp(200, 2000));
        let answer = match query.cursor {
            Some(next) => {
                let next = next.to_owned();
                self.api
                    .json(|http, base, token| {
                        http.get(format!("{base}{next}"))
                            .header("Sforce-Query-Options", &batch)
                            .bearer_auth(token)
                    })
                    .await?
            }
            None => {
                let object = check_identifier(query.object)?;
                let mut conditions = Vec::new();
                if let Some(since) = query.since {
                    conditions.push(format!("SystemModstamp >= {}", since.strftime("%Y-%m-%dT%H:%M:%SZ")));
                }
                if let Some(pushed) = query.filter.and_then(|f| f.superset(&soql_condition)) {
                    let clause = soql_where(&pushed);
                    if clause.len() <= MAX_PUSHED_FILTER {
                        conditions.push(clause);
                    }
                }
                let filter = match conditions.is_empty() {
                    true => String::new(),
                    false => format!(" WHERE {}", conditions.join(" AND ")),
                };
                let soql = format!(
                    "SELECT {} FROM {object}{filter} ORDER BY SystemModstamp ASC, Id ASC",
                    select_list(query.fields)?
                );
                self.query(&soql, Some(&batch)).await?
            }
        };
        let records = records(&answer)?;
        let next = (answer["done"] == false)
            .then(|| answer["nextRecordsUrl"].as_str().map(str::to_owned))
            .flatten();
        Ok(Page {
            records,
            next,
            total: answer["totalSize"].as_u64(),
        })
    }

    async fn query(&self, soql: &str, options: Option<&str>) -> Result<Value, ConnectorError> {
        self.api
            .json(|http, base, token| {
                let request = http
                    .get(format!("{base}/services/data/{API_VERSION}/query"))
                    .query(&[("q", soql)])
                    .bearer_auth(token);
                match options {
                    Some(options) => request.header("Sforce-Query-Options", options),
                    None => request,
                }
            })
            .await
    }

    pub async fn get(&self, object: &str, id: &str, fields: &[String]) -> Result<Option<RemoteRecord>, ConnectorError> {
        let object = check_identifier(object)?.to_owned();
        let id = check_identifier(id)?.to_owned();
        let select = select_list(fields)?.replace(' ', "");
        let answer = self
            .api
            .send(|http, base, token| {
                http.get(format!("{base}/services/data/{API_VERSION}/sobjects/{object}/{id}"))
                    .query(&[("fields", &select)])
                    .bearer_auth(token)
            })
            .await?;
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        record(&answer.ok(self.provider())?.json(self.provider())?).map(Some)
    }

    /// Up to [`BATCH_LIMIT`] records by id through the sObject Collections read; deleted ones
    /// come back as `null` and are left out.
    pub async fn get_many(
        &self,
        object: &str,
        ids: &[String],
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = check_identifier(object)?.to_owned();
        let ids = ids
            .iter()
            .map(|id| check_identifier(id))
            .collect::<Result<Vec<_>, _>>()?
            .join(",");
        let select = select_list(fields)?.replace(' ', "");
        let body = self
            .api
            .json(|http, base, token| {
                http.get(format!(
                    "{base}/services/data/{API_VERSION}/composite/sobjects/{object}"
                ))
                .query(&[("ids", &ids), ("fields", &select)])
                .bearer_auth(token)
            })
            .await?;
        body.as_array()
            .ok_or_else(|| decode("collection read answer is not an array"))?
            .iter()
            .filter(|found| !found.is_null())
            .map(record)
            .collect()
    }

    pub async fn search(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = check_identifier(object)?;
        let field = check_identifier(field)?;
        let soql = format!(
            "SELECT {} FROM {object} WHERE {field} = {} LIMIT 10",
            select_list(fields)?,
            soql_string(value)
        );
        records(&self.query(&soql, None).await?)
    }

    async fn collections(
        &self,
        method: http::Method,
        body: Value,
        count: usize,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let build = |http: &reqwest::Client, base: &str, token: &str| {
            http.request(
                method.clone(),
                format!("{base}/services/data/{API_VERSION}/composite/sobjects"),
            )
            .bearer_auth(token)
            .json(&body)
        };
        // Creating (POST) is not repeatable after a lost answer; updating (PATCH) is.
        let answer = if method == http::Method::POST {
            self.api.send_create(build).await?
        } else {
            self.api.send(build).await?
        };
        if let Some(refused) = answer.refused_batch(count) {
            return Ok(refused);
        }
        let results = answer.json(self.provider())?;
        let results = results
            .as_array()
            .ok_or_else(|| decode("collections answer is not a list"))?;
        Ok(results
            .iter()
            .map(|r| {
                if r["success"] == true {
                    Ok(r["id"].as_str().unwrap_or_default().to_owned())
                } else {
                    let errors: Vec<String> = r["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e["statusCode"].as_str().unwrap_or("ERROR"),
                                e["message"].as_str().unwrap_or_default()
                            )
                        })
                        .collect();
                    Err(errors.join("; "))
                }
            })
            .collect())
    }

    pub async fn create(&self, object: &str, inputs: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        let records: Vec<Value> = inputs.iter().map(|fields| sobject(object, None, fields)).collect();
        self.collections(
            http::Method::POST,
            json!({ "allOrNone": false, "records": records }),
            inputs.len(),
        )
        .await
    }

    pub async fn update(&self, object: &str, inputs: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        let records: Vec<Value> = inputs
            .iter()
            .map(|(id, fields)| sobject(object, Some(id), fields))
            .collect();
        let results = self
            .collections(
                http::Method::PATCH,
                json!({ "allOrNone": false, "records": records }),
                inputs.len(),
            )
            .await?;
        Ok(results
            .into_iter()
            .zip(inputs)
            .map(|(result, (id, _))| result.map(|_| id.clone()))
            .collect())
    }
}

/// An sObject for a collections call; empty values are sent as null (clearing the field).
fn sobject(object: &str, id: Option<&String>, fields: &Fields) -> Value {
    let mut map = Map::new();
    map.insert("attributes".into(), json!({ "type": object }));
    if let Some(id) = id {
        map.insert("id".into(), id.clone().into());
    }
    for (name, value) in fields {
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value.clone())
        };
        map.insert(name.clone(), value);
    }
    Value::Object(map)
}

fn records(body: &Value) -> Result<Vec<RemoteRecord>, ConnectorError> {
    body["records"]
        .as_array()
        .ok_or_else(|| decode("query answer without records"))?
        .iter()
        .map(record)
        .collect()
}

fn record(value: &Value) -> Result<RemoteRecord, ConnectorError> {
    let map = value.as_object().ok_or_else(|| decode("record is not an object"))?;
    let id = map
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| decode("record without Id"))?
        .to_owned();
    let modified_at = map
        .get("SystemModstamp")
        .or_else(|| map.get("LastModifiedDate"))
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| decode("record without SystemModstamp"))?;
    let fields = map
        .iter()
        .filter(|(k, _)| *k != "attributes")
        .filter_map(|(k, v)| scalar_text(v).map(|t| (k.clone(), t)))
        .collect();
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
    fn filters_become_a_where_clause() {
        use crate::mappings::filter::{Compiled, Filter};
        let filter: Filter = serde_yaml_ng::from_str(
            "all: [{field: MailingCity, op: equals, value: \"O'Hare\"}, {any: [{field: Amount__c, op: after, value: 10}, {field: Birthdate, op: before, value: 2000-01-31}]}, {field: Description, op: is_known}, {field: Email, op: contains, value: 'a_b'}]",
        )
        .unwrap();
        let kinds = |name: &str| {
            Some(
                match name {
                    "Amount__c" => "currency",
                    "Birthdate" => "date",
                    "Description" => "textarea",
                    _ => "string",
                }
                .to_owned(),
            )
        };
        let compiled = Compiled::new(&filter, &kinds).unwrap();
        let pushed = compiled.superset(&soql_condition).unwrap();
        assert_eq!(
            soql_where(&pushed),
            "(MailingCity = 'O\\'Hare' AND (Amount__c > 10 OR Birthdate < 2000-01-31))"
        );
        let bounds: Filter = serde_yaml_ng::from_str(
            "all: [{field: Birthdate, op: before, value: '2000-01-31T12:00:00Z'}, {field: Birthdate, op: not_equals, value: '2000-01-31T12:00:00Z'}, {field: Amount__c, op: after, value: 10}, {field: Done__c, op: is_known}, {field: Notes__c, op: is_known}]",
        )
        .unwrap();
        let kinds = |name: &str| {
            Some(
                match name {
                    "Birthdate" => "date",
                    "Amount__c" => "currency",
                    "Done__c" => "boolean",
                    "Notes__c" => "encryptedstring",
                    _ => "string",
                }
                .to_owned(),
            )
        };
        let compiled = Compiled::new(&bounds, &kinds).unwrap();
        assert_eq!(
            soql_where(&compiled.superset(&soql_condition).unwrap()),
            "(Birthdate < 2000-02-01 AND Amount__c > 10)",
            "a bound between two days widens to the next; inexact equality, checkbox nulls and unfilterable types stay with the engine"
        );
        let contains: Filter = serde_yaml_ng::from_str("{field: Email, op: contains, value: acme}").unwrap();
        let compiled = Compiled::new(&contains, &kinds).unwrap();
        assert_eq!(
            soql_where(&compiled.superset(&soql_condition).unwrap()),
            "Email LIKE '%acme%'"
        );
    }

    #[test]
    fn soql_literals_are_escaped_and_identifiers_checked() {
        assert_eq!(soql_string("O'Brien"), r"'O\'Brien'");
        assert_eq!(soql_string(r"a\b"), r"'a\\b'");
        assert!(check_identifier("Email").is_ok());
        assert!(check_identifier("Email FROM User --").is_err());
    }

    #[test]
    fn records_read_salesforce_timestamps() {
        let value = json!({"attributes": {"type": "Contact"}, "Id": "003x", "LastName": "Doe", "Email": null, "SystemModstamp": "2025-01-01T00:00:05.000+0000"});
        let parsed = record(&value).unwrap();
        assert_eq!(parsed.modified_at, "2025-01-01T00:00:05Z".parse().unwrap());
        assert_eq!(parsed.fields.get("LastName").map(String::as_str), Some("Doe"));
        assert!(!parsed.fields.contains_key("attributes") && !parsed.fields.contains_key("Email"));
    }
}
