//! The resolvers: one object per GraphQL type the simulator serves, answering exactly the
//! fields a request selects (the executor handles aliases, fragments and `__typename`).
//! A field the schema has but the simulator does not keep answers a field error naming it.

use std::cell::RefCell;

use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonValue;
use serde_json::Value;

use super::super::{ProviderRecords, Record, iso_s, number_value, scalar_text};
use super::listing::{self, Page, Scope, encode_cursor};
use super::writes::{self, UserError};
use crate::sandbox::state::ProviderState;

/// What one request's resolvers read and write.
pub struct Ctx<'s> {
    pub records: RefCell<&'s mut ProviderRecords>,
    pub grants: RefCell<&'s mut ProviderState>,
    /// The calling token's account.
    pub account: u32,
}

type Resolved<'a> = Result<ResolvedValue<'a>, FieldError>;

fn error(message: impl Into<String>) -> FieldError {
    FieldError {
        message: message.into(),
    }
}

/// A field the schema has but the simulator keeps no value for: `null` where the schema
/// allows it, else a field error naming it.
fn unsimulated<'a>(type_name: &str, info: &ResolveInfo<'_>) -> Resolved<'a> {
    if info.field_definition().ty.is_non_null() {
        Err(error(format!(
            "the sandbox does not simulate {type_name}.{}",
            info.field_name()
        )))
    } else {
        Ok(ResolvedValue::null())
    }
}

fn text<'a>(value: impl Into<String>) -> ResolvedValue<'a> {
    ResolvedValue::leaf(value.into())
}

fn optional_text<'a>(value: Option<String>) -> ResolvedValue<'a> {
    value.map_or_else(ResolvedValue::null, ResolvedValue::leaf)
}

/// The coerced arguments as plain JSON.
fn arguments(info: &ResolveInfo<'_>) -> Value {
    serde_json::to_value(info.arguments()).unwrap_or(Value::Null)
}

fn argument_id(info: &ResolveInfo<'_>, name: &str) -> String {
    info.arguments()
        .get(name)
        .and_then(JsonValue::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn field_text(record: &Record, key: &str) -> Option<String> {
    record.fields.get(key).and_then(scalar_text)
}

fn flag(record: &Record, key: &str) -> bool {
    record.fields.get(key) == Some(&Value::Bool(true))
}

fn web_uri(kind: &str, record: &Record) -> String {
    format!("https://secure.getjobber.com/{kind}/{}", record.seq)
}

/// The kinds of node the simulator keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Client,
    Job,
    Property,
}

impl Kind {
    fn object(self) -> &'static str {
        match self {
            Kind::Client => "clients",
            Kind::Job => "jobs",
            Kind::Property => "properties",
        }
    }

    fn connection(self) -> &'static str {
        match self {
            Kind::Client => "ClientConnection",
            Kind::Job => "JobConnection",
            Kind::Property => "PropertyConnection",
        }
    }

    fn edge(self) -> &'static str {
        match self {
            Kind::Client => "ClientEdge",
            Kind::Job => "JobEdge",
            Kind::Property => "PropertyEdge",
        }
    }
}

impl Ctx<'_> {
    fn get(&self, kind: Kind, id: &str) -> Option<Record> {
        self.records.borrow().store_ref(kind.object())?.get(id).cloned()
    }

    fn page(&self, kind: Kind, args: &Value, scope: Scope<'_>) -> Result<Page, FieldError> {
        let records = self.records.borrow();
        let store = records
            .store_ref(kind.object())
            .ok_or_else(|| error("no such connection"))?;
        listing::page(store, kind.object(), args, scope).map_err(error)
    }
}

/// `Query`.
pub struct QueryRoot<'c, 's> {
    pub ctx: &'c Ctx<'s>,
}

impl ObjectValue for QueryRoot<'_, '_> {
    fn type_name(&self) -> &str {
        "Query"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let kind = match info.field_name() {
            "clients" | "client" => Kind::Client,
            "jobs" | "job" => Kind::Job,
            "properties" | "property" => Kind::Property,
            "account" => {
                return Ok(ResolvedValue::object(Account {
                    id: crate::sandbox::oauth::jobber_account_id(ctx.account),
                    name: crate::sandbox::oauth::jobber_account_name(ctx.account),
                }));
            }
            _ => return unsimulated("Query", info),
        };
        if matches!(info.field_name(), "client" | "job" | "property") {
            let record = ctx.get(kind, &argument_id(info, "id"));
            return Ok(ResolvedValue::nullable_object(record.map(|record| Node {
                kind,
                record,
                ctx,
            })));
        }
        let page = ctx.page(kind, &arguments(info), Scope::All)?;
        Ok(ResolvedValue::object(Connection { kind, page, ctx }))
    }
}

/// A client, job or property.
struct Node<'c, 's> {
    kind: Kind,
    record: Record,
    ctx: &'c Ctx<'s>,
}

impl Node<'_, '_> {
    fn client_name(&self) -> String {
        let record = &self.record;
        let person = format!(
            "{} {}",
            field_text(record, "firstName").unwrap_or_default(),
            field_text(record, "lastName").unwrap_or_default()
        )
        .trim()
        .to_owned();
        let company = field_text(record, "companyName").unwrap_or_default();
        if (flag(record, "isCompany") || person.is_empty()) && !company.is_empty() {
            company
        } else {
            person
        }
    }

    fn list(&self, key: &str) -> Vec<Value> {
        self.record
            .fields
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn related(&self, kind: Kind, key: &str) -> Option<Record> {
        self.ctx.get(kind, self.record.fields.get(key)?.as_str()?)
    }

    fn client<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (record, ctx) = (&self.record, self.ctx);
        Ok(match info.field_name() {
            "id" => text(&record.id),
            "firstName" | "lastName" => text(field_text(record, info.field_name()).unwrap_or_default()),
            "name" => text(self.client_name()),
            "companyName" | "title" => optional_text(field_text(record, info.field_name())),
            "secondaryName" => ResolvedValue::null(),
            "isCompany" | "isLead" | "isArchived" => ResolvedValue::leaf(flag(record, info.field_name())),
            "isArchivable" => ResolvedValue::leaf(true),
            "balance" => ResolvedValue::leaf(record.fields.get("balance").and_then(number_value).unwrap_or(0.0)),
            "createdAt" => text(iso_s(record.created_at)),
            "updatedAt" => text(iso_s(record.updated_at)),
            "jobberWebUri" => text(web_uri("clients", record)),
            "emails" => {
                let client = record.clone();
                ResolvedValue::list(self.list("emails").into_iter().map(move |item| {
                    ResolvedValue::object(Contact {
                        type_name: "Email",
                        item,
                        client: client.clone(),
                        ctx,
                    })
                }))
            }
            "phones" => {
                let client = record.clone();
                ResolvedValue::list(self.list("phones").into_iter().map(move |item| {
                    ResolvedValue::object(Contact {
                        type_name: "ClientPhoneNumber",
                        item,
                        client: client.clone(),
                        ctx,
                    })
                }))
            }
            "defaultEmails" => ResolvedValue::list(
                self.list("emails")
                    .into_iter()
                    .filter(|e| e["primary"] == true)
                    .map(|e| text(e["address"].as_str().unwrap_or_default())),
            ),
            "billingAddress" => {
                ResolvedValue::nullable_object(record.fields.get("billingAddress").and_then(Value::as_object).map(
                    |parts| Address {
                        type_name: "ClientAddress",
                        id: None,
                        parts: Value::Object(parts.clone()),
                    },
                ))
            }
            "clientProperties" | "jobs" => {
                let kind = if info.field_name() == "jobs" {
                    Kind::Job
                } else {
                    Kind::Property
                };
                let page = ctx.page(kind, &arguments(info), Scope::Field("clientId", &record.id))?;
                ResolvedValue::object(Connection { kind, page, ctx })
            }
            "properties" => {
                let page = ctx.page(Kind::Property, &Value::Null, Scope::Field("clientId", &record.id))?;
                ResolvedValue::list(page.items.into_iter().map(move |record| {
                    ResolvedValue::object(Node {
                        kind: Kind::Property,
                        record,
                        ctx,
                    })
                }))
            }
            "customFields" => ResolvedValue::list(std::iter::empty()),
            _ => return unsimulated("Client", info),
        })
    }

    fn job<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (record, ctx) = (&self.record, self.ctx);
        Ok(match info.field_name() {
            "id" => text(&record.id),
            "jobNumber" => ResolvedValue::leaf(
                record
                    .fields
                    .get("jobNumber")
                    .and_then(Value::as_i64)
                    .unwrap_or(record.seq as i64),
            ),
            "title" | "instructions" | "startAt" | "endAt" | "completedAt" => {
                optional_text(field_text(record, info.field_name()))
            }
            "jobStatus" => text(field_text(record, "jobStatus").unwrap_or_else(|| "active".into())),
            "jobType" => text(field_text(record, "jobType").unwrap_or_else(|| "ONE_OFF".into())),
            "billingType" => text(field_text(record, "billingType").unwrap_or_else(|| "FIXED_PRICE".into())),
            "defaultVisitTitle" => text(field_text(record, "title").unwrap_or_default()),
            "total" => ResolvedValue::leaf(record.fields.get("total").and_then(number_value).unwrap_or(0.0)),
            "createdAt" => text(iso_s(record.created_at)),
            "updatedAt" => text(iso_s(record.updated_at)),
            "jobberWebUri" => text(web_uri("work_orders", record)),
            "client" | "property" => {
                let (kind, key) = if info.field_name() == "client" {
                    (Kind::Client, "clientId")
                } else {
                    (Kind::Property, "propertyId")
                };
                let related = self
                    .related(kind, key)
                    .ok_or_else(|| error(format!("the job's {} was deleted", info.field_name())))?;
                ResolvedValue::object(Node {
                    kind,
                    record: related,
                    ctx,
                })
            }
            "customFields" => ResolvedValue::list(std::iter::empty()),
            _ => return unsimulated("Job", info),
        })
    }

    fn property<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (record, ctx) = (&self.record, self.ctx);
        Ok(match info.field_name() {
            "id" => text(&record.id),
            "address" => ResolvedValue::object(Address {
                type_name: "PropertyAddress",
                id: Some(record.id.clone()),
                parts: Value::Object(record.fields.clone()),
            }),
            "street" | "street1" | "street2" | "city" | "province" | "postalCode" | "country" => {
                text(address_part(&Value::Object(record.fields.clone()), info.field_name()))
            }
            "latitude" | "longitude" => text(""),
            "isBillingAddress" => ResolvedValue::leaf(flag(record, "isBillingAddress")),
            "routingOrder" => ResolvedValue::null(),
            "jobberWebUri" => text(web_uri("properties", record)),
            "client" => ResolvedValue::nullable_object(self.related(Kind::Client, "clientId").map(|record| Node {
                kind: Kind::Client,
                record,
                ctx,
            })),
            "jobs" => {
                let page = ctx.page(Kind::Job, &arguments(info), Scope::Field("propertyId", &record.id))?;
                ResolvedValue::object(Connection {
                    kind: Kind::Job,
                    page,
                    ctx,
                })
            }
            "customFields" => ResolvedValue::list(std::iter::empty()),
            _ => return unsimulated("Property", info),
        })
    }
}

impl ObjectValue for Node<'_, '_> {
    fn type_name(&self) -> &str {
        match self.kind {
            Kind::Client => "Client",
            Kind::Job => "Job",
            Kind::Property => "Property",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        match self.kind {
            Kind::Client => self.client(info),
            Kind::Job => self.job(info),
            Kind::Property => self.property(info),
        }
    }
}

/// `street` (the parts joined) or one part of an address.
fn address_part(parts: &Value, key: &str) -> String {
    let part = |k: &str| parts.get(k).and_then(scalar_text).unwrap_or_default();
    match key {
        "street" => [part("street1"), part("street2")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        other => part(other),
    }
}

/// `ClientAddress` (every part a non-null string) or `PropertyAddress` (parts nullable).
struct Address {
    type_name: &'static str,
    id: Option<String>,
    parts: Value,
}

impl ObjectValue for Address {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "id" => text(self.id.clone().unwrap_or_default()),
            "street" | "street1" | "street2" | "city" | "province" | "postalCode" | "country" => {
                text(address_part(&self.parts, info.field_name()))
            }
            "latitude" | "longitude" => text(""),
            "coordinates" | "geoStatus" => ResolvedValue::null(),
            _ => return unsimulated(self.type_name, info),
        })
    }
}

/// An `Email` or a `ClientPhoneNumber` of a client.
struct Contact<'c, 's> {
    type_name: &'static str,
    item: Value,
    client: Record,
    ctx: &'c Ctx<'s>,
}

/// `(415) 234-5678` for a ten-digit number, else the number as given.
fn friendly(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 => digits.as_str(),
        _ => return number.to_owned(),
    };
    format!("({}) {}-{}", &national[..3], &national[3..6], &national[6..])
}

/// `+14152345678` for a North American number.
fn normalized(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        10 => Some(format!("+1{digits}")),
        11 if digits.starts_with('1') => Some(format!("+{digits}")),
        _ => None,
    }
}

impl ObjectValue for Contact<'_, '_> {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let item = &self.item;
        let number = item["number"].as_str().unwrap_or_default();
        Ok(match info.field_name() {
            "id" => text(item["id"].as_str().unwrap_or_default()),
            "address" | "number" => text(item[info.field_name()].as_str().unwrap_or_default()),
            "description" => text(item["description"].as_str().unwrap_or("MAIN")),
            "primary" | "smsAllowed" => ResolvedValue::leaf(item[info.field_name()] == true),
            "friendly" => text(friendly(number)),
            "normalizedPhoneNumber" => optional_text(normalized(number)),
            "client" => ResolvedValue::object(Node {
                kind: Kind::Client,
                record: self.client.clone(),
                ctx: self.ctx,
            }),
            _ => return unsimulated(self.type_name, info),
        })
    }
}

/// A page of clients, jobs or properties.
struct Connection<'c, 's> {
    kind: Kind,
    page: Page,
    ctx: &'c Ctx<'s>,
}

impl ObjectValue for Connection<'_, '_> {
    fn type_name(&self) -> &str {
        self.kind.connection()
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (kind, ctx, items) = (self.kind, self.ctx, &self.page.items);
        Ok(match info.field_name() {
            "nodes" => ResolvedValue::list(items.iter().map(move |record| {
                ResolvedValue::object(Node {
                    kind,
                    record: record.clone(),
                    ctx,
                })
            })),
            "edges" => ResolvedValue::list(items.iter().map(move |record| {
                ResolvedValue::object(Edge {
                    kind,
                    record: record.clone(),
                    ctx,
                })
            })),
            "pageInfo" => ResolvedValue::object(PageInfo {
                start: items.first().map(encode_cursor),
                end: items.last().map(encode_cursor),
                has_next: self.page.has_next,
            }),
            "totalCount" => ResolvedValue::leaf(self.page.total as i64),
            _ => return unsimulated(self.kind.connection(), info),
        })
    }
}

struct Edge<'c, 's> {
    kind: Kind,
    record: Record,
    ctx: &'c Ctx<'s>,
}

impl ObjectValue for Edge<'_, '_> {
    fn type_name(&self) -> &str {
        self.kind.edge()
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "cursor" => text(encode_cursor(&self.record)),
            "node" => ResolvedValue::object(Node {
                kind: self.kind,
                record: self.record.clone(),
                ctx: self.ctx,
            }),
            _ => return unsimulated(self.kind.edge(), info),
        })
    }
}

struct PageInfo {
    start: Option<String>,
    end: Option<String>,
    has_next: bool,
}

impl ObjectValue for PageInfo {
    fn type_name(&self) -> &str {
        "PageInfo"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "startCursor" => optional_text(self.start.clone()),
            "endCursor" => optional_text(self.end.clone()),
            "hasNextPage" => ResolvedValue::leaf(self.has_next),
            "hasPreviousPage" => ResolvedValue::leaf(false),
            _ => return unsimulated("PageInfo", info),
        })
    }
}

struct Account {
    id: String,
    name: String,
}

impl ObjectValue for Account {
    fn type_name(&self) -> &str {
        "Account"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "id" => text(&self.id),
            "name" => text(&self.name),
            _ => return unsimulated("Account", info),
        })
    }
}

/// `Mutation`: each field applies its change when resolved (in document order).
pub struct MutationRoot<'c, 's> {
    pub ctx: &'c Ctx<'s>,
}

fn input(info: &ResolveInfo<'_>) -> serde_json::Map<String, Value> {
    arguments(info)["input"].as_object().cloned().unwrap_or_default()
}

impl ObjectValue for MutationRoot<'_, '_> {
    fn type_name(&self) -> &str {
        "Mutation"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let mut payload = Payload {
            type_name: "",
            client: None,
            job: None,
            property: None,
            properties: Vec::new(),
            errors: Vec::new(),
            ctx,
        };
        let outcome = {
            let mut records = ctx.records.borrow_mut();
            match info.field_name() {
                "clientCreate" => {
                    payload.type_name = "ClientCreatePayload";
                    writes::client_create(&mut records, &input(info)).map(|id| vec![(Kind::Client, id)])
                }
                "clientEdit" => {
                    payload.type_name = "ClientEditPayload";
                    let id = argument_id(info, "clientId");
                    writes::client_edit(&mut records, &id, &input(info)).map(|()| vec![(Kind::Client, id)])
                }
                "jobCreate" => {
                    payload.type_name = "JobCreatePayload";
                    writes::job_create(&mut records, &input(info)).map(|id| vec![(Kind::Job, id)])
                }
                "jobEdit" => {
                    payload.type_name = "JobEditPayload";
                    let id = argument_id(info, "jobId");
                    writes::job_edit(&mut records, &id, &input(info)).map(|()| vec![(Kind::Job, id)])
                }
                "propertyCreate" => {
                    payload.type_name = "PropertyCreatePayload";
                    let client = argument_id(info, "clientId");
                    writes::property_create(&mut records, &client, &input(info)).map(|ids| {
                        std::iter::once((Kind::Client, client))
                            .chain(ids.into_iter().map(|id| (Kind::Property, id)))
                            .collect()
                    })
                }
                "propertyEdit" => {
                    payload.type_name = "PropertyEditPayload";
                    let id = argument_id(info, "propertyId");
                    writes::property_edit(&mut records, &id, &input(info)).map(|()| vec![(Kind::Property, id)])
                }
                "appDisconnect" => {
                    drop(records);
                    let account = ctx.account;
                    let mut grants = ctx.grants.borrow_mut();
                    grants.revocations += 1;
                    grants.refresh_tokens.retain(|_, g| g.account != account);
                    grants.access_tokens.retain(|_, g| g.account != account);
                    return Ok(ResolvedValue::object(AppDisconnected));
                }
                _ => return unsimulated("Mutation", info),
            }
        };
        match outcome {
            Ok(nodes) => {
                for (kind, id) in nodes {
                    let record = ctx.get(kind, &id);
                    match kind {
                        Kind::Client => payload.client = record,
                        Kind::Job => payload.job = record,
                        Kind::Property if payload.type_name == "PropertyCreatePayload" => {
                            payload.properties.extend(record)
                        }
                        Kind::Property => payload.property = record,
                    }
                }
            }
            Err(errors) => payload.errors = errors,
        }
        Ok(ResolvedValue::object(payload))
    }
}

/// A mutation's payload: the node(s) it wrote (none when it failed) and its `userErrors`.
struct Payload<'c, 's> {
    type_name: &'static str,
    client: Option<Record>,
    job: Option<Record>,
    property: Option<Record>,
    properties: Vec<Record>,
    errors: Vec<UserError>,
    ctx: &'c Ctx<'s>,
}

impl ObjectValue for Payload<'_, '_> {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let node = |kind: Kind, record: &Option<Record>| {
            ResolvedValue::nullable_object(record.clone().map(|record| Node { kind, record, ctx }))
        };
        Ok(match info.field_name() {
            "client" => node(Kind::Client, &self.client),
            "job" => node(Kind::Job, &self.job),
            "property" => node(Kind::Property, &self.property),
            "properties" => ResolvedValue::list(self.properties.iter().map(move |record| {
                ResolvedValue::object(Node {
                    kind: Kind::Property,
                    record: record.clone(),
                    ctx,
                })
            })),
            "userErrors" => ResolvedValue::list(
                self.errors
                    .iter()
                    .map(|error| ResolvedValue::object(MutationError(error))),
            ),
            _ => return unsimulated(self.type_name, info),
        })
    }
}

struct MutationError<'e>(&'e UserError);

impl ObjectValue for MutationError<'_> {
    fn type_name(&self) -> &str {
        "MutationErrors"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "message" => text(&self.0.message),
            "path" => ResolvedValue::list(self.0.path.iter().map(text)),
            _ => return unsimulated("MutationErrors", info),
        })
    }
}

/// `appDisconnect`'s payload: the app is gone, nothing went wrong.
struct AppDisconnected;

impl ObjectValue for AppDisconnected {
    fn type_name(&self) -> &str {
        "AppDisconnectPayload"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "app" => ResolvedValue::null(),
            "userErrors" => ResolvedValue::list(std::iter::empty()),
            _ => return unsimulated("AppDisconnectPayload", info),
        })
    }
}
