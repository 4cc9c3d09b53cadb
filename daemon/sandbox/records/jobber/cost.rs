//! Jobber's query cost, as its rate-limit documentation defines it: every field costs 1, the
//! `edges`, `nodes` and `node` wrappers cost nothing, and a connection multiplies the cost of
//! its items by `first` (or `last`; 100 when neither is given). `pageInfo` and `totalCount`
//! count once per connection. The requested cost is computed from the document before it
//! runs; the actual cost from what the answer holds (each connection's items as returned).

use apollo_compiler::ast::Value as Literal;
use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::parser::SourceSpan;
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::{ExecutableDocument, Node};

/// Items a connection returns when the query names no page size, and the most it may ask for.
pub const MAX_PAGE: i64 = 100;

/// A connection field asking for more than [`MAX_PAGE`] items.
pub struct PageTooLarge {
    pub argument: &'static str,
    pub field: String,
    pub asked: i64,
    pub location: Option<SourceSpan>,
}

fn is_connection(field: &Field) -> bool {
    field.ty().inner_named_type().as_str().ends_with("Connection")
}

fn is_wrapper(field: &Field) -> bool {
    matches!(field.name.as_str(), "edges" | "nodes" | "node")
}

fn page_argument(field: &Field, name: &str, variables: &JsonMap) -> Option<i64> {
    match field.specified_argument_by_name(name)?.as_ref() {
        Literal::Int(value) => value.try_to_i32().ok().map(i64::from),
        Literal::Variable(variable) => variables.get(variable.as_str())?.as_i64(),
        _ => None,
    }
}

/// The fields of `set`, with fragments spread.
fn fields<'d>(document: &'d ExecutableDocument, set: &'d SelectionSet) -> Vec<&'d Node<Field>> {
    let mut out = Vec::new();
    for selection in &set.selections {
        match selection {
            Selection::Field(field) => out.push(field),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                    out.extend(fields(document, &fragment.selection_set));
                }
            }
            Selection::InlineFragment(inline) => out.extend(fields(document, &inline.selection_set)),
        }
    }
    out
}

/// The first connection field, in document order, asking for more than [`MAX_PAGE`] items.
pub fn oversized_page(document: &ExecutableDocument, set: &SelectionSet, variables: &JsonMap) -> Option<PageTooLarge> {
    fields(document, set).into_iter().find_map(|field| {
        ["first", "last"]
            .into_iter()
            .find_map(|argument| {
                let asked = page_argument(field, argument, variables)?;
                (asked > MAX_PAGE).then(|| PageTooLarge {
                    argument,
                    field: field.name.to_string(),
                    asked,
                    location: field.location(),
                })
            })
            .or_else(|| oversized_page(document, &field.selection_set, variables))
    })
}

/// The cost of `set` as requested.
pub fn requested(document: &ExecutableDocument, set: &SelectionSet, variables: &JsonMap) -> u64 {
    fields(document, set)
        .into_iter()
        .map(|field| {
            if field.name.starts_with("__") {
                0
            } else if is_connection(field) {
                let size = page_argument(field, "first", variables)
                    .or_else(|| page_argument(field, "last", variables))
                    .unwrap_or(MAX_PAGE)
                    .max(0) as u64;
                fields(document, &field.selection_set)
                    .into_iter()
                    .map(|part| match part.name.as_str() {
                        "edges" | "nodes" => size * requested(document, &part.selection_set, variables),
                        name if name.starts_with("__") => 0,
                        _ => 1 + requested(document, &part.selection_set, variables),
                    })
                    .sum()
            } else {
                u64::from(!is_wrapper(field)) + requested(document, &field.selection_set, variables)
            }
        })
        .sum()
}

/// The cost of `set` as answered in `data`.
pub fn actual(document: &ExecutableDocument, set: &SelectionSet, data: &JsonMap) -> u64 {
    fields(document, set)
        .into_iter()
        .map(|field| {
            if field.name.starts_with("__") {
                return 0;
            }
            let own = u64::from(!is_wrapper(field) && !is_connection(field));
            let inner = match data.get(field.response_key().as_str()) {
                Some(JsonValue::Object(object)) => actual(document, &field.selection_set, object),
                // A connection's items each cost what they hold; another list costs what its
                // first item holds, as the request counted it once.
                Some(JsonValue::Array(items)) if field.name == "edges" || field.name == "nodes" => items
                    .iter()
                    .filter_map(JsonValue::as_object)
                    .map(|item| actual(document, &field.selection_set, item))
                    .sum(),
                Some(JsonValue::Array(items)) => items
                    .first()
                    .and_then(JsonValue::as_object)
                    .map_or(0, |item| actual(document, &field.selection_set, item)),
                _ => 0,
            };
            own + inner
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::records::jobber::schema::JobberSchema;

    fn cost(query: &str, variables: serde_json::Value) -> u64 {
        let schema = JobberSchema::load();
        let document = apollo_compiler::ExecutableDocument::parse_and_validate(&schema.schema, query, "q.graphql")
            .unwrap_or_else(|e| panic!("{}", e.errors));
        let operation = document.operations.get(None).unwrap();
        let variables = match apollo_compiler::response::serde_json_bytes::to_value(&variables).unwrap() {
            JsonValue::Object(map) => map,
            _ => JsonMap::new(),
        };
        requested(&document, &operation.selection_set, &variables)
    }

    #[test]
    fn costs_follow_jobbers_documented_examples() {
        // Both examples are from Jobber's rate-limit page (there with `quote(s)`).
        assert_eq!(
            cost("{ client(id: \"x\") { id firstName title } }", serde_json::json!({})),
            4
        );
        assert_eq!(
            cost(
                "{ clients(first: 10) { edges { node { id firstName lastName title isLead } } } }",
                serde_json::json!({})
            ),
            50
        );
        assert_eq!(
            cost(
                "{ clients { nodes { id firstName lastName title isLead } } }",
                serde_json::json!({})
            ),
            500,
            "100 items when no page size is named"
        );
        assert_eq!(
            cost(
                "query($n: Int) { clients(first: $n) { nodes { id } pageInfo { hasNextPage endCursor } totalCount } }",
                serde_json::json!({"n": 20})
            ),
            20 + 3 + 1
        );
        assert_eq!(
            cost(
                "{ clients(first: 2) { nodes { id jobs(first: 5) { nodes { id title } } } } }",
                serde_json::json!({})
            ),
            2 * (1 + 5 * 2),
            "nested connections multiply"
        );
    }
}
