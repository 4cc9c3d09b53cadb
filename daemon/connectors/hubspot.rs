//! HubSpot CRM v3: properties API for the catalog, the search API for changed-since listings
//! (sorted by last-modified, re-windowed before the 10 000-result cap, with a mapping's filter
//! as filter groups), batch create/update of up to 100.

use serde_json::{Value, json};

use super::api::{ApiClient, ConnectorError};
use super::{FieldInfo, Fields, ListQuery, Page, RemoteRecord, WriteResult, parse_time, scalar_text};
use crate::mappings::filter::{Compiled, Condition, FilterOp, ValueKind};
use crate::providers::Provider;

/// Most inputs per batch call.
pub const BATCH_LIMIT: usize = 100;
/// Largest search page.
const SEARCH_PAGE: usize = 200;
/// The search API refuses to page past this many results.
const SEARCH_CAP: usize = 10_000;
/// Filter groups per search, filters per group and in all.
const MAX_GROUPS: usize = 5;
const MAX_GROUP_FILTERS: usize = 10;
const MAX_FILTERS: usize = 25;

/// A filter condition as a search filter, where HubSpot says the same. Left to the engine:
/// `contains` (HubSpot matches whole tokens), `not_equals` (whether HubSpot's NEQ keeps
/// records without the property is not documented), equality on dates and comparisons of
/// date-only properties.
fn search_filter(condition: &Condition) -> Option<Value> {
    let property = &condition.field;
    let value = || match condition.kind {
        ValueKind::Text => condition.values.first().map(|v| v.trim().to_owned()),
        ValueKind::Bool => condition.values.first().map(|v| v.trim().to_ascii_lowercase()),
        ValueKind::Number => condition.number().map(|n| n.to_string()),
        ValueKind::DateTime => condition.time_ms().map(|ms| ms.to_string()),
        ValueKind::Date => None,
    };
    let compare = |operator: &str| Some(json!({ "propertyName": property, "operator": operator, "value": value()? }));
    let values = || -> Option<Vec<String>> {
        match condition.kind {
            // HubSpot wants string values of IN in lowercase.
            ValueKind::Text | ValueKind::Bool => {
                Some(condition.values.iter().map(|v| v.trim().to_lowercase()).collect())
            }
            ValueKind::Number => Some(condition.numbers().iter().map(f64::to_string).collect()),
            ValueKind::Date | ValueKind::DateTime => None,
        }
    };
    match condition.op {
        FilterOp::Equals if !matches!(condition.kind, ValueKind::Date | ValueKind::DateTime) => compare("EQ"),
        FilterOp::In => Some(json!({ "propertyName": property, "operator": "IN", "values": values()? })),
        FilterOp::IsKnown => Some(json!({ "propertyName": property, "operator": "HAS_PROPERTY" })),
        FilterOp::IsUnknown => Some(json!({ "propertyName": property, "operator": "NOT_HAS_PROPERTY" })),
        FilterOp::Before if condition.kind != ValueKind::Text => compare("LT"),
        FilterOp::After if condition.kind != ValueKind::Text => compare("GT"),
        _ => None,
    }
}

/// The search's filter groups: the mapping filter's OR-ed groups (what fits HubSpot's limits),
/// each with the modification window.
fn filter_groups(filter: Option<&Compiled>, window: Option<Value>) -> Option<Value> {
    let groups = filter
        .and_then(|f| f.superset(&search_filter))
        .and_then(|pushed| pushed.groups(MAX_GROUPS))
        .unwrap_or_else(|| vec![Vec::new()]);
    let reserved = usize::from(window.is_some());
    let per_group = (MAX_FILTERS / groups.len().max(1)).min(MAX_GROUP_FILTERS) - reserved;
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|mut filters| {
            // Fewer conditions in a group only widen it: the engine applies the rest.
            filters.truncate(per_group);
            filters.extend(window.clone());
            json!({ "filters": filters })
        })
        .filter(|group| group["filters"].as_array().is_some_and(|f| !f.is_empty()))
        .collect();
    (!groups.is_empty()).then_some(Value::Array(groups))
}

pub struct Hubspot {
    pub api: ApiClient,
}

fn modified_property(object: &str) -> &'static str {
    if object == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

/// Search cursor: `<window start ms>:<offset>`; the window moves forward before the cap.
fn parse_cursor(cursor: Option<&str>, since: Option<jiff::Timestamp>) -> (Option<i64>, usize) {
    let Some((window, offset)) = cursor.and_then(|c| c.split_once(':')) else {
        return (since.map(|s| s.as_millisecond()), 0);
    };
    (
        window.parse().ok().filter(|w: &i64| *w >= 0),
        offset.parse().unwrap_or(0),
    )
}

/// Keyset paging: the next window starts at the page's last modification time, skipping the
/// records of that millisecond already read. Offsets stay tiny, so the search API's 10 000
/// result cap is never reached, and a record edited mid-listing moves forward instead of
/// shifting an unread one back past the offset.
fn next_cursor(window: Option<i64>, offset: usize, records: &[RemoteRecord], last_ms: i64) -> String {
    let at_last = records
        .iter()
        .filter(|r| r.modified_at.as_millisecond() == last_ms)
        .count();
    let skip = if window == Some(last_ms) {
        offset + at_last
    } else {
        at_last
    };
    if skip + SEARCH_PAGE > SEARCH_CAP {
        // Over ten thousand records share one millisecond: step past it rather than fail.
        return format!("{}:0", last_ms + 1);
    }
    format!("{last_ms}:{skip}")
}

impl Hubspot {
    fn provider(&self) -> Provider {
        Provider::Hubspot
    }

    pub async fn fields(&self, object: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        let path = format!("/crm/v3/properties/{object}");
        let body = self
            .api
            .json(|http, base, token| http.get(format!("{base}{path}")).bearer_auth(token))
            .await?;
        let results = body["results"]
            .as_array()
            .ok_or_else(|| decode("properties without results"))?;
        Ok(results
            .iter()
            .filter(|p| p["hidden"] != true)
            .filter_map(|p| {
                Some(FieldInfo {
                    name: p["name"].as_str()?.to_owned(),
                    label: p["label"].as_str().unwrap_or_default().to_owned(),
                    kind: p["type"].as_str().unwrap_or("string").to_owned(),
                    required: false,
                    read_only: p["modificationMetadata"]["readOnlyValue"] == true,
                })
            })
            .collect())
    }

    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        let modified = modified_property(query.object);
        let (window, offset) = parse_cursor(query.cursor, query.since);
        let limit = query.limit.clamp(1, SEARCH_PAGE);
        let mut body = json!({
            "sorts": [{ "propertyName": modified, "direction": "ASCENDING" }],
            "properties": properties(query.fields, modified),
            "limit": limit,
        });
        let window_filter =
            window.map(|window| json!({ "propertyName": modified, "operator": "GTE", "value": window.to_string() }));
        if let Some(groups) = filter_groups(query.filter, window_filter) {
            body["filterGroups"] = groups;
        }
        if offset > 0 {
            body["after"] = offset.to_string().into();
        }
        let path = format!("/crm/v3/objects/{}/search", query.object);
        let answer = self
            .api
            .json(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
            .await?;
        let records = records(&answer)?;
        let has_more = answer["paging"]["next"]["after"].is_string();
        let next = match records.last() {
            Some(last) if has_more => Some(next_cursor(window, offset, &records, last.modified_at.as_millisecond())),
            _ => None,
        };
        Ok(Page {
            records,
            next,
            total: answer["total"].as_u64(),
        })
    }

    pub async fn get(&self, object: &str, id: &str, fields: &[String]) -> Result<Option<RemoteRecord>, ConnectorError> {
        let props = properties(fields, modified_property(object)).join(",");
        let path = format!("/crm/v3/objects/{object}/{id}");
        let answer = self
            .api
            .send(|http, base, token| {
                http.get(format!("{base}{path}"))
                    .query(&[("properties", &props)])
                    .bearer_auth(token)
            })
            .await?;
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = answer.ok(self.provider())?.json(self.provider())?;
        record(&body).map(Some)
    }

    /// Up to [`BATCH_LIMIT`] records by id through the batch read API; missing ones are left
    /// out (HubSpot answers 207 naming them).
    pub async fn get_many(
        &self,
        object: &str,
        ids: &[String],
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let body = json!({
            "properties": properties(fields, modified_property(object)),
            "inputs": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
        });
        let path = format!("/crm/v3/objects/{object}/batch/read");
        let answer = self
            .api
            .json(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
            .await?;
        records(&answer)
    }

    pub async fn search(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let body = json!({
            "filterGroups": [{ "filters": [{ "propertyName": field, "operator": "EQ", "value": value }] }],
            "properties": properties(fields, modified_property(object)),
            "limit": 10,
        });
        let path = format!("/crm/v3/objects/{object}/search");
        let answer = self
            .api
            .json(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
            .await?;
        records(&answer)
    }

    pub async fn create(&self, object: &str, inputs: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        let body = json!({
            "inputs": inputs.iter().enumerate().map(|(i, fields)| json!({ "properties": fields, "objectWriteTraceId": i.to_string() })).collect::<Vec<_>>()
        });
        let path = format!("/crm/v3/objects/{object}/batch/create");
        let answer = self
            .api
            .send_create(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
            .await?;
        if let Some(refused) = answer.refused_batch(inputs.len()) {
            return Ok(refused);
        }
        let body = answer.json(self.provider())?;
        // Failed inputs are named by their trace id; the successes come back in input order.
        let mut failed: Vec<Option<String>> = vec![None; inputs.len()];
        for error in body["errors"].as_array().into_iter().flatten() {
            for trace in error["context"]["objectWriteTraceId"].as_array().into_iter().flatten() {
                if let Some(index) = trace
                    .as_str()
                    .and_then(|t| t.parse::<usize>().ok())
                    .filter(|i| *i < inputs.len())
                {
                    failed[index] = Some(error["message"].as_str().unwrap_or("rejected").to_owned());
                }
            }
        }
        // Results name their input by trace id where HubSpot echoes it; otherwise they come back
        // in input order.
        let results: Vec<&Value> = body["results"].as_array().into_iter().flatten().collect();
        let traced: std::collections::HashMap<usize, String> = results
            .iter()
            .filter_map(|r| {
                Some((
                    r["objectWriteTraceId"].as_str()?.parse().ok()?,
                    r["id"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let mut untraced = results
            .iter()
            .filter(|r| r["objectWriteTraceId"].is_null())
            .filter_map(|r| r["id"].as_str());
        Ok(failed
            .into_iter()
            .enumerate()
            .map(|(index, failure)| match failure {
                Some(message) => Err(message),
                None => traced
                    .get(&index)
                    .cloned()
                    .or_else(|| untraced.next().map(str::to_owned))
                    .ok_or_else(|| "HubSpot returned no result for this input".to_owned()),
            })
            .collect())
    }

    pub async fn update(&self, object: &str, inputs: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        let body = json!({
            "inputs": inputs.iter().map(|(id, fields)| json!({ "id": id, "properties": fields })).collect::<Vec<_>>()
        });
        let path = format!("/crm/v3/objects/{object}/batch/update");
        let answer = self
            .api
            .send(|http, base, token| http.post(format!("{base}{path}")).bearer_auth(token).json(&body))
            .await?;
        if let Some(refused) = answer.refused_batch(inputs.len()) {
            return Ok(refused);
        }
        let body = answer.json(self.provider())?;
        let mut failures = std::collections::HashMap::new();
        for error in body["errors"].as_array().into_iter().flatten() {
            for id in error["context"]["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                failures.insert(
                    id.to_owned(),
                    error["message"].as_str().unwrap_or("rejected").to_owned(),
                );
            }
        }
        Ok(inputs
            .iter()
            .map(|(id, _)| match failures.remove(id) {
                Some(message) => Err(message),
                None => Ok(id.clone()),
            })
            .collect())
    }
}

fn decode(reason: &str) -> ConnectorError {
    ConnectorError::Decode {
        provider: Provider::Hubspot,
        reason: reason.to_owned(),
    }
}

fn properties(fields: &[String], modified: &str) -> Vec<String> {
    let mut props: Vec<String> = fields.to_vec();
    for always in ["hs_object_id", modified] {
        if !props.iter().any(|p| p == always) {
            props.push(always.to_owned());
        }
    }
    props
}

fn records(body: &Value) -> Result<Vec<RemoteRecord>, ConnectorError> {
    body["results"]
        .as_array()
        .ok_or_else(|| decode("no results"))?
        .iter()
        .map(record)
        .collect()
}

fn record(value: &Value) -> Result<RemoteRecord, ConnectorError> {
    let id = value["id"]
        .as_str()
        .ok_or_else(|| decode("record without id"))?
        .to_owned();
    let modified_at = value["updatedAt"]
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| decode("record without updatedAt"))?;
    let fields = value["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .filter_map(|(k, v)| scalar_text(v).map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default();
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
    fn keyset_cursors_skip_only_the_last_millisecond_read() {
        let at = |ms: i64| RemoteRecord {
            id: ms.to_string(),
            modified_at: jiff::Timestamp::from_millisecond(ms).unwrap(),
            fields: Fields::new(),
        };
        let page = [at(10), at(20), at(20)];
        assert_eq!(next_cursor(Some(5), 0, &page, 20), "20:2");
        let same = [at(20), at(20)];
        assert_eq!(next_cursor(Some(20), 2, &same, 20), "20:4");
    }

    #[test]
    fn cursors_carry_the_window_and_offset() {
        let since: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_cursor(None, Some(since)), (Some(since.as_millisecond()), 0));
        assert_eq!(parse_cursor(Some("1700:400"), None), (Some(1700), 400));
        assert_eq!(parse_cursor(Some("-1:200"), None), (None, 200));
    }

    #[test]
    fn filters_become_filter_groups_each_with_the_window() {
        use crate::mappings::filter::Filter;
        let filter: Filter = serde_yaml_ng::from_str(
            "any: [{all: [{field: city, op: equals, value: SF}, {field: city, op: contains, value: x}]}, {field: lifecyclestage, op: in, value: [Lead, Customer]}]",
        )
        .unwrap();
        let compiled = Compiled::new(&filter, &|_| Some("string".into())).unwrap();
        let window = json!({ "propertyName": "lastmodifieddate", "operator": "GTE", "value": "5" });
        let groups = filter_groups(Some(&compiled), Some(window.clone())).unwrap();
        assert_eq!(
            groups,
            json!([
                { "filters": [{ "propertyName": "city", "operator": "EQ", "value": "SF" }, window] },
                { "filters": [{ "propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"] }, window] },
            ])
        );
        assert_eq!(
            filter_groups(None, Some(window.clone())).unwrap(),
            json!([{ "filters": [window] }])
        );
        assert_eq!(filter_groups(None, None), None);
        // An `any` holding a condition HubSpot cannot express is not pushed at all.
        let contains: Filter =
            serde_yaml_ng::from_str("any: [{field: city, op: contains, value: x}, {field: city, op: is_known}]")
                .unwrap();
        let compiled = Compiled::new(&contains, &|_| Some("string".into())).unwrap();
        assert_eq!(filter_groups(Some(&compiled), None), None);
    }

    #[test]
    fn records_are_flattened_from_properties() {
        let body = json!({"results": [{"id": "7", "properties": {"email": "a@b.c", "phone": null}, "updatedAt": "2025-01-01T00:00:01Z"}]});
        let parsed = records(&body).unwrap();
        assert_eq!(parsed[0].id, "7");
        assert_eq!(parsed[0].fields.get("email").map(String::as_str), Some("a@b.c"));
        assert!(!parsed[0].fields.contains_key("phone"));
    }
}
