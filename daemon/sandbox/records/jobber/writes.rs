//! What Jobber's mutations do to the stored clients, jobs and properties. Inputs arrive
//! already coerced against the schema (unknown keys, missing required fields and bad enum
//! values never get here); what is left are Jobber's own checks, answered as `userErrors`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::super::{ProviderRecords, int_value, iso_s, number_value, parse_time, scalar_text, valid_email};

/// One entry of a payload's `userErrors`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserError {
    pub message: String,
    pub path: Vec<String>,
}

fn user_error(message: impl Into<String>, path: &[&str]) -> UserError {
    UserError {
        message: message.into(),
        path: path.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The address parts Jobber keeps (client billing addresses and properties).
pub const ADDRESS_KEYS: &[&str] = &["street1", "street2", "city", "province", "postalCode", "country"];

fn items(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn text_of(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        other => scalar_text(other).map_or(Value::Null, Value::String),
    }
}

/// An `AddressAttributes` input as stored address parts.
fn address_fields(input: &Value) -> Map<String, Value> {
    ADDRESS_KEYS
        .iter()
        .filter_map(|key| Some(((*key).to_owned(), text_of(input.get(*key)?))))
        .collect()
}

/// A new email from `EmailCreateAttributes`, or the user error at `path`.
fn new_email(records: &mut ProviderRecords, item: &Value, path: &[&str]) -> Result<Value, UserError> {
    let address = item["address"].as_str().map(str::trim).unwrap_or_default();
    if !valid_email(address) {
        return Err(user_error("Email address is invalid", path));
    }
    Ok(json!({
        "id": records.sub_id("Email"), "address": address,
        "description": item["description"].as_str().unwrap_or("MAIN"),
        "primary": item["primary"] == true,
    }))
}

/// A new phone number from `PhoneNumberCreateAttributes`, or the user error at `path`.
fn new_phone(records: &mut ProviderRecords, item: &Value, path: &[&str]) -> Result<Value, UserError> {
    let number = item["number"].as_str().map(str::trim).unwrap_or_default();
    if number.chars().filter(char::is_ascii_digit).count() < 3 {
        return Err(user_error("Phone number is invalid", path));
    }
    Ok(json!({
        "id": records.sub_id("PhoneNumber"), "number": number,
        "description": item["description"].as_str().unwrap_or("MAIN"),
        "primary": item["primary"] == true,
        "smsAllowed": item["smsAllowed"] == true,
    }))
}

/// Leaves exactly one primary item: the last one marked, else the first.
fn one_primary(items: &mut [Value]) {
    let chosen = items.iter().rposition(|i| i["primary"] == true).unwrap_or(0);
    for (index, item) in items.iter_mut().enumerate() {
        item["primary"] = (index == chosen).into();
    }
}

/// The scalar client fields (and billing address) of a create or edit input.
fn apply_client_scalars(fields: &mut Map<String, Value>, input: &Map<String, Value>) {
    for key in ["firstName", "lastName", "companyName", "title"] {
        if let Some(value) = input.get(key) {
            fields.insert(key.to_owned(), text_of(value));
        }
    }
    if let Some(value) = input.get("isCompany") {
        fields.insert("isCompany".into(), (value == &Value::Bool(true)).into());
    }
    match input.get("billingAddress") {
        None => {}
        Some(Value::Null) => {
            fields.insert("billingAddress".into(), Value::Null);
        }
        Some(address) => {
            let mut merged = fields
                .get("billingAddress")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            merged.extend(address_fields(address));
            fields.insert("billingAddress".into(), Value::Object(merged));
        }
    }
}

fn check_client_name(fields: &Map<String, Value>, errors: &mut Vec<UserError>) {
    let blank = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
    };
    if blank("firstName") && blank("lastName") && blank("companyName") {
        errors.push(user_error("First name or company name is required", &["firstName"]));
    }
}

/// `clientCreate(input:)`: the new client's id.
pub fn client_create(records: &mut ProviderRecords, input: &Map<String, Value>) -> Result<String, Vec<UserError>> {
    let mut errors = Vec::new();
    let mut fields: Map<String, Value> = [
        ("isCompany", Value::Bool(false)),
        ("isLead", Value::Bool(false)),
        ("isArchived", Value::Bool(false)),
        ("balance", json!(0.0)),
        ("billingAddress", Value::Null),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    apply_client_scalars(&mut fields, input);
    let mut emails = Vec::new();
    for (i, item) in items(input.get("emails")).iter().enumerate() {
        match new_email(records, item, &["emails", &i.to_string(), "address"]) {
            Ok(email) => emails.push(email),
            Err(error) => errors.push(error),
        }
    }
    let mut phones = Vec::new();
    for (i, item) in items(input.get("phones")).iter().enumerate() {
        match new_phone(records, item, &["phones", &i.to_string(), "number"]) {
            Ok(phone) => phones.push(phone),
            Err(error) => errors.push(error),
        }
    }
    check_client_name(&fields, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    if !emails.is_empty() {
        one_primary(&mut emails);
    }
    if !phones.is_empty() {
        one_primary(&mut phones);
    }
    fields.insert("emails".into(), Value::Array(emails));
    fields.insert("phones".into(), Value::Array(phones));
    let id = records
        .create("clients", fields, None)
        .ok_or_else(|| vec![user_error("Clients are not available", &[])])?;
    if let Some(store) = records.store("clients") {
        store.creates += 1;
    }
    for property in items(input.get("properties")) {
        create_property(records, &id, &property["address"]);
    }
    Ok(id)
}

/// Applies `<list>ToAdd/ToEdit/ToDelete` of an edit input to the client's emails or phones.
fn edit_items(
    records: &mut ProviderRecords,
    fields: &mut Map<String, Value>,
    input: &Map<String, Value>,
    list: &str,
    errors: &mut Vec<UserError>,
) {
    let emails = list == "emails";
    let (add, edit, delete, value_key) = if emails {
        ("emailsToAdd", "emailsToEdit", "emailsToDelete", "address")
    } else {
        ("phonesToAdd", "phonesToEdit", "phonesToDelete", "number")
    };
    let mut current = items(fields.get(list));
    let deleted: BTreeSet<String> = items(input.get(delete)).iter().filter_map(scalar_text).collect();
    current.retain(|item| item["id"].as_str().is_none_or(|id| !deleted.contains(id)));
    let mut marked_primary = false;
    for (i, change) in items(input.get(edit)).iter().enumerate() {
        let index = i.to_string();
        let Some(item) = current.iter_mut().find(|item| item["id"] == change["id"]) else {
            let what = if emails { "Email" } else { "Phone number" };
            errors.push(user_error(format!("{what} not found"), &[edit, &index, "id"]));
            continue;
        };
        if let Some(value) = change.get(value_key).and_then(Value::as_str) {
            let text = value.trim();
            let valid = if emails {
                valid_email(text)
            } else {
                text.chars().filter(char::is_ascii_digit).count() >= 3
            };
            if !valid {
                let message = if emails {
                    "Email address is invalid"
                } else {
                    "Phone number is invalid"
                };
                errors.push(user_error(message, &[edit, &index, value_key]));
                continue;
            }
            item[value_key] = text.into();
        }
        if let Some(description) = change.get("description").filter(|v| !v.is_null()) {
            item["description"] = description.clone();
        }
        if let Some(sms) = change.get("smsAllowed").and_then(Value::as_bool) {
            item["smsAllowed"] = sms.into();
        }
        if let Some(primary) = change.get("primary").and_then(Value::as_bool) {
            item["primary"] = primary.into();
            marked_primary |= primary;
        }
    }
    for (i, addition) in items(input.get(add)).iter().enumerate() {
        let index = i.to_string();
        let path = [add, index.as_str(), value_key];
        let made = if emails {
            new_email(records, addition, &path)
        } else {
            new_phone(records, addition, &path)
        };
        match made {
            Ok(item) => {
                marked_primary |= item["primary"] == true;
                current.push(item);
            }
            Err(error) => errors.push(error),
        }
    }
    if !current.is_empty() && (marked_primary || !current.iter().any(|i| i["primary"] == true)) {
        one_primary(&mut current);
    }
    fields.insert(list.to_owned(), Value::Array(current));
}

/// `clientEdit(clientId:, input:)`.
pub fn client_edit(records: &mut ProviderRecords, id: &str, input: &Map<String, Value>) -> Result<(), Vec<UserError>> {
    let mut fields = records
        .store_ref("clients")
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
        .ok_or_else(|| vec![user_error("Client not found", &["clientId"])])?;
    let mut errors = Vec::new();
    apply_client_scalars(&mut fields, input);
    edit_items(records, &mut fields, input, "emails", &mut errors);
    edit_items(records, &mut fields, input, "phones", &mut errors);
    check_client_name(&fields, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    records.update("clients", id, fields, false);
    if let Some(store) = records.store("clients") {
        store.updates += 1;
    }
    Ok(())
}

/// The job fields of a create or edit input (`title`, `instructions`, `jobNumber`,
/// `timeframe.startAt`, `invoicing`, `lineItems`).
fn apply_job(fields: &mut Map<String, Value>, input: &Map<String, Value>, errors: &mut Vec<UserError>) {
    for key in ["title", "instructions"] {
        if let Some(value) = input.get(key) {
            fields.insert(key.to_owned(), text_of(value));
        }
    }
    if let Some(value) = input.get("jobNumber").filter(|v| !v.is_null()) {
        match int_value(value) {
            Some(n) if n > 0 => {
                fields.insert("jobNumber".into(), n.into());
            }
            _ => errors.push(user_error("Job number must be greater than 0", &["jobNumber"])),
        }
    }
    if let Some(start) = input
        .get("timeframe")
        .and_then(|t| t.get("startAt"))
        .and_then(Value::as_str)
    {
        match parse_time(start) {
            Some(at) => {
                fields.insert("startAt".into(), iso_s(at).into());
            }
            None => errors.push(user_error("Start date is invalid", &["timeframe", "startAt"])),
        }
    }
    if let Some(kind) = input
        .get("invoicing")
        .and_then(|i| i.get("invoicingType"))
        .and_then(Value::as_str)
    {
        fields.insert("billingType".into(), kind.into());
    }
    if let Some(lines) = input.get("lineItems").and_then(Value::as_array) {
        let total: f64 = lines
            .iter()
            .map(|line| {
                number_value(&line["unitPrice"]).unwrap_or(0.0) * number_value(&line["quantity"]).unwrap_or(1.0)
            })
            .sum();
        fields.insert("total".into(), json!(total));
    }
}

/// `jobCreate(input:)`: the new job's id.
pub fn job_create(records: &mut ProviderRecords, input: &Map<String, Value>) -> Result<String, Vec<UserError>> {
    let mut errors = Vec::new();
    let property_id = input.get("propertyId").and_then(Value::as_str).unwrap_or_default();
    let Some(client_id) = records
        .store_ref("properties")
        .and_then(|s| s.get(property_id))
        .map(|property| property.fields.get("clientId").cloned().unwrap_or(Value::Null))
    else {
        return Err(vec![user_error("Property not found", &["propertyId"])]);
    };
    let next_number = records.store_ref("jobs").map_or(0, |s| {
        s.in_id_order()
            .filter_map(|r| r.fields.get("jobNumber").and_then(int_value))
            .max()
            .unwrap_or(0)
    }) + 1;
    let mut fields: Map<String, Value> = [
        ("jobNumber", json!(next_number)),
        ("jobStatus", json!("active")),
        ("jobType", json!("ONE_OFF")),
        ("total", json!(0.0)),
        ("propertyId", json!(property_id)),
        ("clientId", client_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    apply_job(&mut fields, input, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = records
        .create("jobs", fields, None)
        .ok_or_else(|| vec![user_error("Jobs are not available", &[])])?;
    if let Some(store) = records.store("jobs") {
        store.creates += 1;
    }
    Ok(id)
}

/// `jobEdit(jobId:, input:)`.
pub fn job_edit(records: &mut ProviderRecords, id: &str, input: &Map<String, Value>) -> Result<(), Vec<UserError>> {
    let mut fields = records
        .store_ref("jobs")
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
        .ok_or_else(|| vec![user_error("Job not found", &["jobId"])])?;
    let mut errors = Vec::new();
    apply_job(&mut fields, input, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    records.update("jobs", id, fields, false);
    if let Some(store) = records.store("jobs") {
        store.updates += 1;
    }
    Ok(())
}

/// Creates a property of `client_id` at `address` (an `AddressAttributes` input); its id.
fn create_property(records: &mut ProviderRecords, client_id: &str, address: &Value) -> Option<String> {
    let mut fields: Map<String, Value> = ADDRESS_KEYS.iter().map(|k| ((*k).to_owned(), "".into())).collect();
    for (key, value) in address_fields(address) {
        if !value.is_null() {
            fields.insert(key, value);
        }
    }
    fields.insert("isBillingAddress".into(), false.into());
    fields.insert("clientId".into(), client_id.into());
    let id = records.create("properties", fields, None)?;
    if let Some(store) = records.store("properties") {
        store.creates += 1;
    }
    Some(id)
}

/// `propertyCreate(clientId:, input:)`: the new properties' ids.
pub fn property_create(
    records: &mut ProviderRecords,
    client_id: &str,
    input: &Map<String, Value>,
) -> Result<Vec<String>, Vec<UserError>> {
    if records.store_ref("clients").and_then(|s| s.get(client_id)).is_none() {
        return Err(vec![user_error("Client not found", &["clientId"])]);
    }
    let addresses = items(input.get("properties"));
    if addresses.is_empty() {
        return Err(vec![user_error("At least one property is required", &["properties"])]);
    }
    Ok(addresses
        .iter()
        .filter_map(|property| create_property(records, client_id, &property["address"]))
        .collect())
}

/// `propertyEdit(propertyId:, input:)`.
pub fn property_edit(
    records: &mut ProviderRecords,
    id: &str,
    input: &Map<String, Value>,
) -> Result<(), Vec<UserError>> {
    let mut fields = records
        .store_ref("properties")
        .and_then(|s| s.get(id))
        .map(|r| r.fields.clone())
        .ok_or_else(|| vec![user_error("Property not found", &["propertyId"])])?;
    if let Some(address) = input.get("address") {
        for (key, value) in address_fields(address) {
            fields.insert(key, if value.is_null() { "".into() } else { value });
        }
    }
    records.update("properties", id, fields, false);
    if let Some(store) = records.store("properties") {
        store.updates += 1;
    }
    Ok(())
}
