//! The Jobber simulator answers as Jobber's schema says: each refusal below is one a real
//! Jobber gives, and each answer holds exactly what was asked.

use serde_json::{Value, json};

use crate::sandbox::records::http_tests::serve;

async fn graphql(base: &str, http: &reqwest::Client, query: &str, variables: Value) -> Value {
    let response = http
        .post(format!("{base}/jobber/api/graphql"))
        .bearer_auth("tok-jobber")
        .header("X-JOBBER-GRAPHQL-VERSION", "2025-04-16")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn messages(answer: &Value) -> String {
    answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A refusal: errors with locations, no `data`, and the cost extension all the same.
fn assert_refused(answer: &Value, naming: &str) {
    assert!(answer.get("data").is_none(), "no data: {answer}");
    assert!(messages(answer).contains(naming), "names {naming:?}: {answer}");
    assert!(answer["extensions"]["cost"]["requestedQueryCost"].is_u64(), "{answer}");
}

#[tokio::test]
async fn fields_the_schema_lacks_are_refused_by_name() {
    let (base, http) = serve().await;
    let answer = graphql(&base, &http, "{ properties { nodes { id createdAt } } }", json!({})).await;
    assert_refused(&answer, "createdAt");
    assert!(answer["errors"][0]["locations"][0]["line"].is_u64(), "{answer}");
    let answer = graphql(
        &base,
        &http,
        "{ clients(first: 1) { nodes { id nickname } } }",
        json!({}),
    )
    .await;
    assert_refused(&answer, "nickname");
}

#[tokio::test]
async fn answers_carry_exactly_the_selected_fields_with_aliases_fragments_and_typename() {
    let (base, http) = serve().await;
    let answer = graphql(&base, &http, "{ clients(first: 2) { nodes { id } } }", json!({})).await;
    let nodes = answer["data"]["clients"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for node in nodes {
        assert_eq!(node.as_object().unwrap().keys().collect::<Vec<_>>(), ["id"], "{answer}");
    }
    let answer = graphql(
        &base,
        &http,
        "query { first: clients(first: 1) { nodes { ...who } } } fragment who on Client { __typename given: firstName emails { address } }",
        json!({}),
    )
    .await;
    let node = &answer["data"]["first"]["nodes"][0];
    assert_eq!(node["__typename"], "Client");
    assert!(
        node["given"].is_string() && node["emails"][0]["address"].is_string(),
        "{answer}"
    );
    assert!(
        node.get("firstName").is_none() && node.get("lastName").is_none(),
        "{answer}"
    );
}

#[tokio::test]
async fn page_sizes_over_a_hundred_are_refused() {
    let (base, http) = serve().await;
    let answer = graphql(
        &base,
        &http,
        "query($n: Int) { clients(first: $n) { nodes { id } } }",
        json!({"n": 500}),
    )
    .await;
    assert_refused(&answer, "at most 100");
}

#[tokio::test]
async fn variables_must_coerce_to_the_declared_input_types() {
    let (base, http) = serve().await;
    // JobCreateAttributes requires propertyId, scheduling and invoicing.
    let answer = graphql(
        &base,
        &http,
        "mutation($input: JobCreateAttributes!) { jobCreate(input: $input) { job { id } userErrors { message } } }",
        json!({"input": {"title": "Gutter cleaning"}}),
    )
    .await;
    assert_refused(&answer, "propertyId");
    // A bad enum value is a GraphQL error, not a user error.
    let answer = graphql(
        &base,
        &http,
        "mutation($input: ClientCreateInput!) { clientCreate(input: $input) { client { id } userErrors { message } } }",
        json!({"input": {"firstName": "Ann", "title": "Mr."}}),
    )
    .await;
    assert_refused(&answer, "ClientTitle");
    // The argument's type decides what a variable may be.
    let answer = graphql(
        &base,
        &http,
        "mutation($id: EncodedId!, $input: PropertyAttributes!) { propertyEdit(propertyId: $id, input: $input) { property { id } } }",
        json!({"id": "x", "input": {}}),
    )
    .await;
    assert_refused(&answer, "PropertyEditInput");
    let answer = graphql(
        &base,
        &http,
        "mutation($id: EncodedId!) { propertyCreate(clientId: $id, input: {}) { property { id } } }",
        json!({"id": "x"}),
    )
    .await;
    assert_refused(&answer, "property");
}

#[tokio::test]
async fn mutations_write_and_report_jobbers_own_checks_as_user_errors() {
    let (base, http) = serve().await;
    let created = graphql(
        &base,
        &http,
        "mutation($input: ClientCreateInput!) { clientCreate(input: $input) { client { id name emails { address primary } } userErrors { message path } } }",
        json!({"input": {"firstName": "Ann", "lastName": "Lee", "title": "MS", "emails": [{"address": "ann@example.com", "description": "MAIN"}]}}),
    )
    .await;
    let client = &created["data"]["clientCreate"]["client"];
    assert_eq!(client["name"], "Ann Lee", "{created}");
    assert_eq!(client["emails"][0]["primary"], true);
    let client_id = client["id"].as_str().unwrap().to_owned();
    let property = graphql(
        &base,
        &http,
        "mutation($id: EncodedId!, $input: PropertyCreateInput!) { propertyCreate(clientId: $id, input: $input) { properties { id address { street1 city } } userErrors { message } } }",
        json!({"id": client_id, "input": {"properties": [{"address": {"street1": "1 Main St", "city": "Boston"}}]}}),
    )
    .await;
    let property_id = property["data"]["propertyCreate"]["properties"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{property}"))
        .to_owned();
    let job = graphql(
        &base,
        &http,
        "mutation($input: JobCreateAttributes!) { jobCreate(input: $input) { job { id title jobStatus client { id } property { id } } userErrors { message } } }",
        json!({"input": {"propertyId": property_id, "title": "Gutters",
                         "scheduling": {"createVisits": false, "notifyTeam": false},
                         "invoicing": {"invoicingType": "FIXED_PRICE", "invoicingSchedule": "NEVER"}}}),
    )
    .await;
    let job = &job["data"]["jobCreate"]["job"];
    assert_eq!(job["title"], "Gutters", "{job}");
    assert_eq!(job["jobStatus"], "active");
    assert_eq!(job["client"]["id"], client_id.as_str());
    let refused = graphql(
        &base,
        &http,
        "mutation($input: ClientCreateInput!) { clientCreate(input: $input) { client { id } userErrors { message path } } }",
        json!({"input": {"firstName": "Bo", "emails": [{"address": "not an email"}]}}),
    )
    .await;
    let payload = &refused["data"]["clientCreate"];
    assert_eq!(payload["client"], Value::Null, "{refused}");
    assert_eq!(payload["userErrors"][0]["message"], "Email address is invalid");
    assert_eq!(payload["userErrors"][0]["path"], json!(["emails", "0", "address"]));
}

#[tokio::test]
async fn every_answer_is_costed_by_its_shape_and_a_query_beyond_the_bucket_is_throttled() {
    let (base, http) = serve().await;
    let small = graphql(&base, &http, "{ clients(first: 1) { nodes { id } } }", json!({})).await;
    let large = graphql(
        &base,
        &http,
        "{ clients(first: 50) { nodes { id firstName lastName jobs(first: 20) { nodes { id title total } } } } }",
        json!({}),
    )
    .await;
    let cost = |answer: &Value, key: &str| answer["extensions"]["cost"][key].as_u64().unwrap();
    assert_eq!(cost(&small, "requestedQueryCost"), 1);
    assert_eq!(cost(&large, "requestedQueryCost"), 50 * (3 + 20 * 3));
    assert!(
        cost(&large, "actualQueryCost") < cost(&large, "requestedQueryCost"),
        "fewer jobs than asked"
    );
    // 100 clients × 100 jobs × 2 fields is more than the bucket holds.
    let throttled = graphql(
        &base,
        &http,
        "{ clients { nodes { jobs { nodes { id title } } } } }",
        json!({}),
    )
    .await;
    assert!(throttled.get("data").is_none(), "{throttled}");
    assert_eq!(throttled["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(cost(&throttled, "requestedQueryCost"), 100 * 100 * 2);
}
