//! Every GraphQL document the Jobber connector sends, in one place, and the variables it
//! builds for them: a unit test validates each document (for every catalog field it may
//! select) and each variable shape against Jobber's published schema.

use serde_json::{Map, Value, json};

use crate::connectors::Fields;

/// The objects the connector reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Clients,
    Jobs,
    Properties,
}

impl Object {
    pub fn parse(name: &str) -> Option<Object> {
        match name {
            "clients" => Some(Object::Clients),
            "jobs" => Some(Object::Jobs),
            "properties" => Some(Object::Properties),
            _ => None,
        }
    }

    /// The GraphQL type of a node.
    pub fn node_type(self) -> &'static str {
        match self {
            Object::Clients => "Client",
            Object::Jobs => "Job",
            Object::Properties => "Property",
        }
    }

    /// The input type whose fields say what a create may set.
    pub fn input_type(self) -> &'static str {
        match self {
            Object::Clients => "ClientCreateInput",
            Object::Jobs => "JobCreateAttributes",
            Object::Properties => "AddressAttributes",
        }
    }

    fn connection(self) -> &'static str {
        match self {
            Object::Clients => "clients",
            Object::Jobs => "jobs",
            Object::Properties => "properties",
        }
    }

    fn single(self) -> &'static str {
        match self {
            Object::Clients => "client",
            Object::Jobs => "job",
            Object::Properties => "property",
        }
    }
}

/// The parts of an address Jobber keeps, as the catalog names them: `billingAddress.<part>` on
/// clients, `<part>` on properties.
pub const ADDRESS_PARTS: [&str; 6] = ["street1", "street2", "city", "province", "postalCode", "country"];

/// What every node is read with, whatever the fields: its id and what dates its last change.
/// Properties have no modification time of their own: their client's stands in.
fn always(object: Object) -> &'static str {
    match object {
        Object::Clients | Object::Jobs => "id updatedAt",
        Object::Properties => "id client { id updatedAt }",
    }
}

/// The selection of a node that reads `fields` (catalog names).
pub fn selection(object: Object, fields: &[String]) -> String {
    let mut parts: Vec<String> = vec![always(object).to_owned()];
    let mut address: Vec<&str> = Vec::new();
    for field in fields {
        let part = match (object, field.as_str()) {
            (_, "id" | "updatedAt") => continue,
            (Object::Clients, "email") => "emails { address primary }".to_owned(),
            (Object::Clients, "phone") => "phones { number primary }".to_owned(),
            (Object::Clients, name) if name.starts_with("billingAddress.") => {
                address.push(&name["billingAddress.".len()..]);
                continue;
            }
            (Object::Jobs, "clientId") => "client { id }".to_owned(),
            (Object::Jobs, "propertyId") => "property { id }".to_owned(),
            (Object::Properties, "clientId") => continue,
            (Object::Properties, name) if ADDRESS_PARTS.contains(&name) => {
                address.push(name);
                continue;
            }
            (_, name) => name.to_owned(),
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    if !address.is_empty() {
        address.sort_unstable();
        address.dedup();
        let wrapper = if object == Object::Clients {
            "billingAddress"
        } else {
            "address"
        };
        parts.push(format!("{wrapper} {{ {} }}", address.join(" ")));
    }
    parts.join(" ")
}

/// A page of `object` reading `fields`; clients can be filtered by `updatedAt` (variables:
/// `first`, `after`, and `filter` for clients).
pub fn list(object: Object, fields: &[String]) -> String {
    let (params, filter) = match object {
        Object::Clients => ("$filter: ClientFilterAttributes, ", "filter: $filter, "),
        Object::Jobs | Object::Properties => ("", ""),
    };
    format!(
        "query List({params}$first: Int, $after: String) {{ {c}({filter}first: $first, after: $after) {{ nodes {{ {s} }} pageInfo {{ endCursor hasNextPage }} totalCount }} }}",
        c = object.connection(),
        s = selection(object, fields),
    )
}

/// One `object` node by id (variable `id`).
pub fn one(object: Object, fields: &[String]) -> String {
    format!(
        "query One($id: EncodedId!) {{ {}(id: $id) {{ {} }} }}",
        object.single(),
        selection(object, fields)
    )
}

/// Clients whose name, company or email contains `searchTerm` (variables `searchTerm`,
/// `first`).
pub fn search(fields: &[String]) -> String {
    format!(
        "query Search($searchTerm: String, $first: Int) {{ clients(searchTerm: $searchTerm, first: $first) {{ nodes {{ {} }} }} }}",
        selection(Object::Clients, fields)
    )
}

/// A client's emails and phone numbers with their ids (an edit of either names the id).
pub const CLIENT_CONTACTS: &str = "query Contacts($id: EncodedId!) { client(id: $id) { id emails { id address primary } phones { id number primary } } }";

/// The fields and input fields of a type (variable `name`), for the field catalog.
pub const TYPE: &str = "query Type($name: String!) { __type(name: $name) { name fields { name type { kind name ofType { kind name } } } inputFields { name type { kind name ofType { kind name } } } } }";

pub const CLIENT_CREATE: &str = "mutation Create($input: ClientCreateInput!) { clientCreate(input: $input) { client { id } userErrors { message path } } }";
pub const CLIENT_EDIT: &str = "mutation Edit($clientId: EncodedId!, $input: ClientEditInput!) { clientEdit(clientId: $clientId, input: $input) { client { id } userErrors { message path } } }";
pub const JOB_CREATE: &str = "mutation Create($input: JobCreateAttributes!) { jobCreate(input: $input) { job { id } userErrors { message path } } }";
pub const JOB_EDIT: &str = "mutation Edit($jobId: EncodedId!, $input: JobEditInput!) { jobEdit(jobId: $jobId, input: $input) { job { id } userErrors { message path } } }";
pub const PROPERTY_CREATE: &str = "mutation Create($clientId: EncodedId!, $input: PropertyCreateInput!) { propertyCreate(clientId: $clientId, input: $input) { properties { id } userErrors { message path } } }";
pub const PROPERTY_EDIT: &str = "mutation Edit($propertyId: EncodedId!, $input: PropertyEditInput!) { propertyEdit(propertyId: $propertyId, input: $input) { property { id } userErrors { message path } } }";

/// Every mutation with the payload field that holds what it wrote.
pub const MUTATIONS: [(&str, &str); 6] = [
    (CLIENT_CREATE, "clientCreate"),
    (CLIENT_EDIT, "clientEdit"),
    (JOB_CREATE, "jobCreate"),
    (JOB_EDIT, "jobEdit"),
    (PROPERTY_CREATE, "propertyCreate"),
    (PROPERTY_EDIT, "propertyEdit"),
];

/// Jobber's client titles (the `ClientTitle` enum); other texts cannot be written.
const TITLES: [&str; 5] = ["MR", "MS", "MRS", "MISS", "DR"];

/// A field value as text, or `null` for an empty one (which clears it).
fn text_or_null(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        Value::String(value.to_owned())
    }
}

/// `Mr.`, `mr`, `MR` → `MR`; an unknown title is refused.
fn client_title(value: &str) -> Result<Value, String> {
    if value.trim().is_empty() {
        return Ok(Value::Null);
    }
    let title = value.trim().trim_end_matches('.').to_ascii_uppercase();
    if TITLES.contains(&title.as_str()) {
        Ok(Value::String(title))
    } else {
        Err(format!("title: Jobber accepts {}, not {value:?}", TITLES.join(", ")))
    }
}

fn address_input(fields: &Fields, prefix: &str) -> Option<Value> {
    let address: Map<String, Value> = ADDRESS_PARTS
        .iter()
        .filter_map(|part| {
            let value = fields.get(&format!("{prefix}{part}"))?;
            Some(((*part).to_owned(), text_or_null(value)))
        })
        .collect();
    (!address.is_empty()).then_some(Value::Object(address))
}

/// A client's `ClientCreateInput`, or its `ClientEditInput` when `current` (the client as
/// [`CLIENT_CONTACTS`] reads it) is given: emails and phones are edited by id.
pub fn client_input(fields: &Fields, current: Option<&Value>) -> Result<Value, String> {
    let mut input = Map::new();
    for (name, value) in fields {
        match name.as_str() {
            "email" | "phone" => {}
            "title" => {
                input.insert("title".into(), client_title(value)?);
            }
            "isCompany" => {
                input.insert("isCompany".into(), Value::Bool(value == "true"));
            }
            other if other.starts_with("billingAddress.") => {}
            other => {
                input.insert(other.to_owned(), text_or_null(value));
            }
        }
    }
    if let Some(address) = address_input(fields, "billingAddress.") {
        input.insert("billingAddress".into(), address);
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
    Ok(Value::Object(input))
}

/// A job's scalar inputs: `title`, `instructions`, `jobNumber` (an integer).
fn job_fields(fields: &Fields) -> Result<Map<String, Value>, String> {
    let mut input = Map::new();
    for (name, value) in fields {
        match name.as_str() {
            "title" | "instructions" => {
                input.insert(name.clone(), text_or_null(value));
            }
            "jobNumber" if value.is_empty() => {}
            "jobNumber" => {
                let number: i32 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("jobNumber: {value:?} is not a whole number"))?;
                input.insert(name.clone(), number.into());
            }
            _ => {}
        }
    }
    Ok(input)
}

/// A job's `JobCreateAttributes`: its property (required), its fields, and the scheduling and
/// invoicing Jobber requires, left at "no visits, fixed price, never invoiced".
pub fn job_create_input(fields: &Fields) -> Result<Value, String> {
    let property = fields
        .get("propertyId")
        .filter(|p| !p.is_empty())
        .ok_or("propertyId: Jobber creates a job only at a property; map propertyId")?;
    let mut input = job_fields(fields)?;
    input.insert("propertyId".into(), property.as_str().into());
    input.insert(
        "scheduling".into(),
        json!({ "createVisits": false, "notifyTeam": false }),
    );
    input.insert(
        "invoicing".into(),
        json!({ "invoicingType": "FIXED_PRICE", "invoicingSchedule": "NEVER" }),
    );
    Ok(Value::Object(input))
}

/// A job's `JobEditInput`.
pub fn job_edit_input(fields: &Fields) -> Result<Value, String> {
    job_fields(fields).map(Value::Object)
}

/// A property's `PropertyCreateInput`: one property at the mapped address.
pub fn property_create_input(fields: &Fields) -> Value {
    json!({ "properties": [{ "address": address_input(fields, "").unwrap_or_else(|| json!({})) }] })
}

/// A property's `PropertyEditInput`.
pub fn property_edit_input(fields: &Fields) -> Value {
    json!({ "address": address_input(fields, "").unwrap_or_else(|| json!({})) })
}

#[cfg(test)]
mod tests {
    use apollo_compiler::response::{JsonMap, JsonValue, serde_json_bytes};
    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};

    use super::*;

    fn schema() -> Valid<Schema> {
        let sdl = include_str!("../../providers/jobber/schema.graphql");
        Schema::parse_and_validate(sdl, "jobber/schema.graphql").unwrap_or_else(|e| panic!("{}", e.errors))
    }

    /// Validates `document` and coerces `variables` against the schema, as Jobber would.
    fn check(schema: &Valid<Schema>, document: &str, variables: Value) {
        let parsed = ExecutableDocument::parse_and_validate(schema, document, "document.graphql")
            .unwrap_or_else(|e| panic!("{document}\n{}", e.errors));
        let operation = parsed.operations.get(None).unwrap();
        let variables: JsonMap = match serde_json_bytes::to_value(&variables).unwrap() {
            JsonValue::Object(map) => map,
            _ => JsonMap::new(),
        };
        if let Err(error) = apollo_compiler::request::coerce_variable_values(schema, operation, &variables) {
            panic!("{document}\nvariables {variables:?}: {}", error.message());
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Every field the catalog can offer per object (the simulator's and Jobber's).
    fn catalog(object: Object) -> Vec<String> {
        let names: &[&str] = match object {
            Object::Clients => &[
                "firstName",
                "lastName",
                "companyName",
                "title",
                "isCompany",
                "isLead",
                "isArchived",
                "name",
                "balance",
                "createdAt",
                "email",
                "phone",
                "billingAddress.street1",
                "billingAddress.street2",
                "billingAddress.city",
                "billingAddress.province",
                "billingAddress.postalCode",
                "billingAddress.country",
            ],
            Object::Jobs => &[
                "jobNumber",
                "title",
                "instructions",
                "jobStatus",
                "jobType",
                "total",
                "startAt",
                "endAt",
                "completedAt",
                "createdAt",
                "clientId",
                "propertyId",
            ],
            Object::Properties => &[
                "street1",
                "street2",
                "city",
                "province",
                "postalCode",
                "country",
                "isBillingAddress",
                "clientId",
            ],
        };
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn every_read_document_validates_for_every_catalog_field() {
        let schema = schema();
        check(&schema, TYPE, json!({"name": "Client"}));
        check(&schema, CLIENT_CONTACTS, json!({"id": "Z2lkOi8vSm9iYmVyL0NsaWVudC8x"}));
        for object in [Object::Clients, Object::Jobs, Object::Properties] {
            let all = catalog(object);
            let mut list_variables = json!({"first": 100, "after": "MTAwOjE="});
            if object == Object::Clients {
                list_variables["filter"] = json!({"updatedAt": {"after": "2025-01-01T00:00:00Z"}});
            }
            check(&schema, &list(object, &all), list_variables.clone());
            check(&schema, &one(object, &all), json!({"id": "x"}));
            for field in &all {
                check(
                    &schema,
                    &list(object, std::slice::from_ref(field)),
                    list_variables.clone(),
                );
            }
            check(&schema, &list(object, &[]), list_variables);
        }
        check(
            &schema,
            &search(&catalog(Object::Clients)),
            json!({"searchTerm": "ann@example.com", "first": 20}),
        );
    }

    #[test]
    fn every_write_validates_with_variables_built_from_sample_records() {
        let schema = schema();
        let person = fields(&[
            ("firstName", "Ann"),
            ("lastName", "Lee"),
            ("title", "Ms."),
            ("isCompany", "false"),
            ("email", "ann@example.com"),
            ("phone", "+14155550100"),
            ("billingAddress.street1", "1 Main St"),
            ("billingAddress.city", "Boston"),
            ("billingAddress.street2", ""),
        ]);
        check(
            &schema,
            CLIENT_CREATE,
            json!({"input": client_input(&person, None).unwrap()}),
        );
        let current = json!({"emails": [{"id": "e1", "address": "old@example.com", "primary": true}], "phones": []});
        check(
            &schema,
            CLIENT_EDIT,
            json!({"clientId": "c1", "input": client_input(&person, Some(&current)).unwrap()}),
        );
        let job = fields(&[
            ("title", "Gutters"),
            ("jobNumber", "42"),
            ("instructions", ""),
            ("propertyId", "p1"),
        ]);
        check(&schema, JOB_CREATE, json!({"input": job_create_input(&job).unwrap()}));
        check(
            &schema,
            JOB_EDIT,
            json!({"jobId": "j1", "input": job_edit_input(&job).unwrap()}),
        );
        let property = fields(&[
            ("street1", "1 Main St"),
            ("city", "Boston"),
            ("country", ""),
            ("clientId", "c1"),
        ]);
        check(
            &schema,
            PROPERTY_CREATE,
            json!({"clientId": "c1", "input": property_create_input(&property)}),
        );
        check(
            &schema,
            PROPERTY_EDIT,
            json!({"propertyId": "p1", "input": property_edit_input(&property)}),
        );
    }

    #[test]
    fn values_jobber_cannot_take_are_refused_before_sending() {
        assert_eq!(client_title("mr.").unwrap(), json!("MR"));
        assert!(client_title("Sir").unwrap_err().contains("MR, MS, MRS, MISS, DR"));
        assert!(
            job_create_input(&fields(&[("title", "x")]))
                .unwrap_err()
                .contains("propertyId")
        );
        assert!(
            job_edit_input(&fields(&[("jobNumber", "4.5")]))
                .unwrap_err()
                .contains("jobNumber")
        );
    }
}
