//! Jobber's GraphQL API at `POST <sandbox>/jobber/api/graphql`, executed against Jobber's real
//! schema with apollo-compiler: a document or variables the schema refuses get the standard
//! `errors` array (with locations) and no `data`; an answer carries exactly the selected
//! fields (aliases, fragments, `__typename`, introspection); a page size over 100 is refused;
//! every answer has `extensions.cost`, whose cost grows with the query's shape, charged to the
//! query-cost bucket (10 000 points, restoring 500 a second: `THROTTLED` when it runs dry); and
//! the DDoS guard answers 429 past 2 500 requests in 5 minutes. Both limits are on unless a
//! test switches them off.
//!
//! Served: `clients`, `jobs`, `properties` (filters, `searchTerm`, forward paging),
//! `client`/`job`/`property`, `account`, the client/job/property create and edit mutations
//! (Jobber's own checks as `userErrors`), and `appDisconnect`.

mod cost;
mod listing;
mod objects;
pub mod schema;
#[cfg(test)]
mod tests;
mod writes;

use std::cell::RefCell;

use apollo_compiler::ast::Document;
use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::resolvers::Execution;
use apollo_compiler::response::{GraphQLError, JsonMap, JsonValue, serde_json_bytes};
use serde_json::{Value, json};

use super::{Call, ProviderRecords};
use crate::sandbox::request::{Reply, json_reply};
use crate::sandbox::state::ProviderState;
use objects::{Ctx, MutationRoot, QueryRoot};
use schema::JobberSchema;

/// Where Jobber documents its limits.
const LIMITS_DOC: &str = "https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits";

/// Answers one GraphQL request of account `call.account`.
pub fn handle(
    schema: &JobberSchema,
    records: &mut ProviderRecords,
    grants: &mut ProviderState,
    call: &Call<'_>,
) -> Reply {
    let version = call
        .request
        .header("x-jobber-graphql-version")
        .unwrap_or_default()
        .to_owned();
    *records.graphql_versions.entry(version).or_default() += 1;
    if let Err(refusal) = records.limit.admit(call.now_ms) {
        records.rate_limited += 1;
        return json_reply(429, json!({ "errors": [{ "message": "Too Many Requests" }] }))
            .with_header("Retry-After", refusal.retry_after_secs().to_string());
    }
    let answer = execute(schema, records, grants, call);
    json_reply(200, answer)
}

/// The cost extension of an answer.
fn cost_extension(records: &mut ProviderRecords, requested: u64, actual: u64, now_ms: i64) -> Value {
    let available = records.bucket.available(now_ms);
    json!({ "cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": records.bucket.max.round() as i64,
            "currentlyAvailable": available.floor() as i64,
            "restoreRate": records.bucket.restore.round() as i64,
        },
    } })
}

/// An answer that is only errors (a refused document or request): no `data`.
fn refused(records: &mut ProviderRecords, errors: Vec<GraphQLError>, now_ms: i64) -> Value {
    json!({ "errors": errors, "extensions": cost_extension(records, 0, 0, now_ms) })
}

fn execute(schema: &JobberSchema, records: &mut ProviderRecords, grants: &mut ProviderState, call: &Call<'_>) -> Value {
    let now = call.now_ms;
    let body: Value = serde_json::from_slice(&call.request.body).unwrap_or(Value::Null);
    let Some(query) = body["query"].as_str().filter(|q| !q.trim().is_empty()) else {
        return refused(
            records,
            vec![GraphQLError::new(
                "No query string was present",
                None,
                &Default::default(),
            )],
            now,
        );
    };
    let parsed = match Document::parse(query, "query.graphql") {
        Ok(parsed) => parsed,
        Err(invalid) => return refused(records, invalid.errors.iter().map(|e| e.to_json()).collect(), now),
    };
    let document = match parsed.to_executable_validate(&schema.schema) {
        Ok(document) => document,
        Err(invalid) => return refused(records, invalid.errors.iter().map(|e| e.to_json()).collect(), now),
    };
    let operation = match document.operations.get(body["operationName"].as_str()) {
        Ok(operation) => operation,
        Err(error) => return refused(records, vec![error.to_graphql_error(&document.sources)], now),
    };
    let raw_variables = match serde_json_bytes::to_value(&body["variables"]) {
        Ok(JsonValue::Object(map)) => map,
        _ => JsonMap::new(),
    };
    let variables = match coerce_variable_values(&schema.schema, operation, &raw_variables) {
        Ok(variables) => variables,
        Err(error) => return refused(records, vec![error.to_graphql_error(&document.sources)], now),
    };
    if let Some(oversized) = cost::oversized_page(&document, &operation.selection_set, &variables) {
        let message = format!(
            "Argument '{}' on Field '{}' must be at most {}, got {}",
            oversized.argument,
            oversized.field,
            cost::MAX_PAGE,
            oversized.asked
        );
        return refused(
            records,
            vec![GraphQLError::new(message, oversized.location, &document.sources)],
            now,
        );
    }
    let requested = cost::requested(&document, &operation.selection_set, &variables);
    if !records.bucket.take(requested as f64, now) {
        records.rate_limited += 1;
        return json!({
            "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED", "documentation": LIMITS_DOC } }],
            "extensions": cost_extension(records, requested, 0, now),
        });
    }
    let ctx = Ctx {
        records: RefCell::new(records),
        grants: RefCell::new(grants),
        account: call.account,
    };
    let execution = Execution::new(&schema.schema, &document)
        .implementers_map(&schema.implementers)
        .operation(operation)
        .coerced_variable_values(&variables)
        .enable_schema_introspection(true);
    let executed = if operation.operation_type.is_mutation() {
        execution.execute_sync(&MutationRoot { ctx: &ctx })
    } else {
        execution.execute_sync(&QueryRoot { ctx: &ctx })
    };
    let records = ctx.records.into_inner();
    let mut response = match executed {
        Ok(response) => response,
        Err(error) => return refused(records, vec![error.to_graphql_error(&document.sources)], now),
    };
    for error in &mut response.errors {
        if let Some(message) = error.message.strip_prefix("resolver error: ") {
            error.message = message.to_owned();
        }
    }
    let actual = response
        .data
        .as_ref()
        .map_or(0, |data| cost::actual(&document, &operation.selection_set, data));
    records.bucket.refund(requested.saturating_sub(actual) as f64);
    let mut answer = serde_json::to_value(&response).unwrap_or(Value::Null);
    answer["extensions"] = cost_extension(records, requested, actual, now);
    answer
}
