//! The providers' record APIs: one shared dataset per provider and object, kept in memory
//! and served with each provider's own paths, shapes, paging, errors and rate limits
//! (HubSpot CRM v3, Salesforce REST + SOQL, Pipedrive v1 field catalogs + v2 records,
//! Jobber GraphQL).
//!
//! Every record carries an id, `created_at`/`updated_at` (millisecond precision, strictly
//! increasing per provider: each write takes the next tick of the provider's logical clock)
//! and its fields in the provider's own naming. Records are indexed by id, by creation order
//! and by `(updated_at, creation order)` for modified-since listings; creation order is the
//! id's numeric part, so ties would break by id.

mod control;
mod hubspot;
pub mod jobber;
mod limits;
mod pipedrive;
mod salesforce;
mod seed;
mod soql;

use std::collections::{BTreeMap, VecDeque};

use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::oauth::authenticated;
use super::request::{Reply, SandboxRequest};
use super::webhooks::{self, Origin};
use super::{Sandbox, SandboxState};
use crate::providers::Provider;

/// The record control actions (see [`control::handle`]).
pub use control::handle as control;
/// Switches a provider's rate limits on or off.
pub use control::switch_limits;
/// Seeds every provider (see [`seed::seed`]).
pub use seed::seed;

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The provider's id as text (Pipedrive's integers too).
    pub id: String,
    /// Creation order within the object; the numeric part of the id.
    pub seq: u64,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
    /// The fields, in the provider's own naming and shapes.
    pub fields: Map<String, Value>,
}

impl Record {
    /// The record's place in modified-since order.
    pub fn key(&self) -> (Timestamp, u64) {
        (self.updated_at, self.seq)
    }
}

/// The records of one provider object with their indexes and write counters.
#[derive(Debug, Default)]
pub struct ObjectStore {
    records: BTreeMap<String, Record>,
    by_updated: BTreeMap<(Timestamp, u64), String>,
    by_seq: BTreeMap<u64, String>,
    last_seq: u64,
    /// Records created through the provider API.
    pub creates: u64,
    /// Records updated through the provider API.
    pub updates: u64,
}

impl ObjectStore {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The record with `id`.
    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    /// The next creation number.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Stores `record`, replacing any record with its id.
    pub fn insert(&mut self, record: Record) {
        self.remove(&record.id);
        self.last_seq = self.last_seq.max(record.seq);
        self.by_updated.insert(record.key(), record.id.clone());
        self.by_seq.insert(record.seq, record.id.clone());
        self.records.insert(record.id.clone(), record);
    }

    /// Replaces the fields of `id`; moves its `updated_at` to `at` when given. `false` when
    /// there is no such record.
    pub fn set_fields(&mut self, id: &str, fields: Map<String, Value>, at: Option<Timestamp>) -> bool {
        let Some(record) = self.records.get_mut(id) else {
            return false;
        };
        record.fields = fields;
        if let Some(at) = at {
            self.by_updated.remove(&record.key());
            record.updated_at = at;
            self.by_updated.insert(record.key(), record.id.clone());
        }
        true
    }

    /// Removes and returns the record with `id`.
    pub fn remove(&mut self, id: &str) -> Option<Record> {
        let record = self.records.remove(id)?;
        self.by_updated.remove(&record.key());
        self.by_seq.remove(&record.seq);
        Some(record)
    }

    /// Records in `(updated_at, id)` order, starting at `since` (inclusive) when given.
    pub fn modified_since(&self, since: Option<Timestamp>) -> impl DoubleEndedIterator<Item = &Record> {
        let start = since.map_or(Timestamp::MIN, |at| at);
        self.by_updated
            .range((start, 0)..)
            .filter_map(|(_, id)| self.records.get(id))
    }

    /// How many records were last modified at or after `since` and at or before `until`,
    /// without reading them.
    pub fn count_modified_between(&self, since: Option<Timestamp>, until: Timestamp) -> usize {
        let from = (since.unwrap_or(Timestamp::MIN), 0);
        if from.0 > until {
            return 0;
        }
        self.by_updated.range(from..=(until, u64::MAX)).count()
    }

    /// Records in `(updated_at, id)` order strictly after `key`.
    pub fn modified_after(&self, key: (Timestamp, u64)) -> impl Iterator<Item = &Record> {
        use std::ops::Bound;
        self.by_updated
            .range((Bound::Excluded(key), Bound::Unbounded))
            .filter_map(|(_, id)| self.records.get(id))
    }

    /// Records in creation (id) order.
    pub fn in_id_order(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.by_seq.values().filter_map(|id| self.records.get(id))
    }

    /// Records in creation order from creation number `seq` on.
    pub fn starting_at_seq(&self, seq: u64) -> impl Iterator<Item = &Record> {
        self.by_seq.range(seq..).filter_map(|(_, id)| self.records.get(id))
    }

    /// Empties the store and its counters.
    pub fn clear(&mut self) {
        *self = ObjectStore::default();
    }
}

/// How a record changed.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    Created,
    /// The changed fields with their values before.
    Updated {
        previous: Map<String, Value>,
    },
    Deleted,
}

/// A record change made through the provider's API or the control API, which the provider
/// reports to its webhook subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    pub object: &'static str,
    pub id: String,
    /// The record's creation number (Pipedrive's numeric id).
    pub seq: u64,
    pub kind: ChangeKind,
    pub at: Timestamp,
    /// The fields after the change (before it, for a deletion).
    pub fields: Map<String, Value>,
}

/// Changes remembered for webhooks before the oldest are dropped (nothing reads them when no
/// webhook is registered).
const CHANGES_KEPT: usize = 10_000;

/// Everything the record APIs of one provider remember.
#[derive(Debug)]
pub struct ProviderRecords {
    provider: Provider,
    /// The provider's objects by canonical name.
    pub objects: BTreeMap<&'static str, ObjectStore>,
    clock_ms: i64,
    /// The request window: HubSpot's ten-secondly limit, Pipedrive's burst window,
    /// Salesforce's daily allocation, Jobber's DDoS guard.
    pub limit: limits::RateLimit,
    /// HubSpot's search limit.
    pub search_limit: limits::RateLimit,
    /// Pipedrive's daily token budget.
    pub tokens: limits::TokenBudget,
    /// Jobber's query-cost bucket.
    pub bucket: limits::CostBucket,
    /// HubSpot: how long a change takes to reach search results.
    pub index_delay_ms: i64,
    /// Record API requests answered (after authentication).
    pub requests: u64,
    /// Requests refused by rate limiting (or Jobber throttling).
    pub rate_limited: u64,
    /// Ids of nested items (Jobber emails and phone numbers).
    pub next_sub_id: u64,
    /// Open SOQL query cursors by locator number.
    pub cursors: BTreeMap<u64, salesforce::QueryCursor>,
    /// The last SOQL locator number handed out.
    pub last_cursor: u64,
    /// `X-JOBBER-GRAPHQL-VERSION` values seen (`""` for none), with counts.
    pub graphql_versions: BTreeMap<String, u64>,
    /// Changes not yet turned into webhooks, oldest first.
    pub changes: VecDeque<RecordChange>,
    /// The latest record API requests, oldest first (`GET /_control/<p>/requests`).
    pub journal: VecDeque<JournalEntry>,
}

/// Record API requests the journal keeps.
const JOURNAL_ENTRIES: usize = 200;
/// Body bytes a journal entry keeps.
const JOURNAL_BODY: usize = 8 * 1024;

/// One record API request as the simulator received it, for tests to check what a client sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalEntry {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

impl ProviderRecords {
    /// Notes `request` in the journal, forgetting the oldest beyond its size.
    fn note(&mut self, path: &str, request: &SandboxRequest) {
        if self.journal.len() == JOURNAL_ENTRIES {
            self.journal.pop_front();
        }
        let body = &request.body[..request.body.len().min(JOURNAL_BODY)];
        self.journal.push_back(JournalEntry {
            method: request.method.to_string(),
            path: path.to_owned(),
            query: request.raw_query.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }
}

/// The record state of all providers.
#[derive(Debug, Default)]
pub struct RecordsState {
    providers: BTreeMap<Provider, ProviderRecords>,
}

impl RecordsState {
    /// The record state of `provider`.
    pub fn provider(&mut self, provider: Provider) -> &mut ProviderRecords {
        self.providers
            .entry(provider)
            .or_insert_with(|| ProviderRecords::new(provider))
    }
}

/// The objects each provider serves, by canonical name.
pub fn object_names(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Hubspot => &["contacts", "companies", "deals"],
        Provider::Jobber => &["clients", "jobs", "properties"],
        Provider::Pipedrive => &["persons", "organizations", "deals"],
        Provider::Salesforce => &["Contact", "Account", "Opportunity"],
    }
}

/// The canonical name of `name` (any case) among `provider`'s objects.
pub fn canonical_object(provider: Provider, name: &str) -> Option<&'static str> {
    object_names(provider)
        .iter()
        .copied()
        .find(|object| object.eq_ignore_ascii_case(name))
}

/// Each provider's request window, as published: HubSpot's public OAuth apps get 110 requests
/// per 10 s per installing account; Pipedrive's OAuth tokens 80 per 2 s (its entry plan);
/// Salesforce a Developer Edition org 15 000 a rolling day; Jobber's DDoS guard 2 500 per
/// 5 minutes.
fn request_window(provider: Provider) -> limits::RateLimit {
    match provider {
        Provider::Hubspot => limits::RateLimit::new(110, 10_000),
        Provider::Jobber => limits::RateLimit::new(2_500, 300_000),
        Provider::Pipedrive => limits::RateLimit::new(80, 2_000),
        Provider::Salesforce => limits::RateLimit::new(15_000, 86_400_000),
    }
}

/// HubSpot's search API: 5 requests a second per account.
fn hubspot_search_window() -> limits::RateLimit {
    limits::RateLimit::new(5, 1_000)
}

/// Pipedrive's daily token budget for one seat of its entry plan (30 000 × 1 × 1).
const PIPEDRIVE_DAILY_TOKENS: u64 = 30_000;
/// How long a HubSpot change takes to reach search by default ("a few moments").
pub const HUBSPOT_INDEX_DELAY_MS: i64 = 3_000;

impl ProviderRecords {
    fn new(provider: Provider) -> ProviderRecords {
        let limit = request_window(provider);
        ProviderRecords {
            provider,
            objects: object_names(provider)
                .iter()
                .map(|name| (*name, ObjectStore::default()))
                .collect(),
            clock_ms: 0,
            limit,
            search_limit: hubspot_search_window(),
            tokens: limits::TokenBudget::new(PIPEDRIVE_DAILY_TOKENS),
            bucket: limits::CostBucket::default(),
            index_delay_ms: if provider == Provider::Hubspot {
                HUBSPOT_INDEX_DELAY_MS
            } else {
                0
            },
            requests: 0,
            rate_limited: 0,
            next_sub_id: 0,
            cursors: BTreeMap::new(),
            last_cursor: 0,
            graphql_versions: BTreeMap::new(),
            changes: VecDeque::new(),
            journal: VecDeque::new(),
        }
    }

    /// Forgets every record, cursor and counter; rate-limit settings stay.
    pub fn reset(&mut self) {
        for store in self.objects.values_mut() {
            store.clear();
        }
        self.clock_ms = 0;
        self.requests = 0;
        self.rate_limited = 0;
        self.next_sub_id = 0;
        self.cursors.clear();
        self.last_cursor = 0;
        self.graphql_versions.clear();
        self.changes.clear();
    }

    fn record_change(&mut self, object: &'static str, record: &Record, kind: ChangeKind) {
        if self.changes.len() >= CHANGES_KEPT {
            self.changes.pop_front();
        }
        self.changes.push_back(RecordChange {
            object,
            id: record.id.clone(),
            seq: record.seq,
            kind,
            at: record.updated_at,
            fields: record.fields.clone(),
        });
    }

    /// The next write time: now, or one millisecond after the previous write if that is later.
    pub fn tick(&mut self) -> Timestamp {
        self.clock_ms = (self.clock_ms + 1).max(now_ms());
        ts(self.clock_ms)
    }

    /// Puts the clock `ms` ahead of the machine's: later writes are stamped from there on.
    pub fn advance_clock(&mut self, ms: i64) {
        self.clock_ms = self.clock_ms.max(now_ms()) + ms;
    }

    /// Moves the clock to at least `at` (seeded records are stamped in the past).
    pub fn observe(&mut self, at: Timestamp) {
        self.clock_ms = self.clock_ms.max(at.as_millisecond());
    }

    /// The store of `object` (canonical name).
    pub fn store(&mut self, object: &str) -> Option<&mut ObjectStore> {
        self.objects.get_mut(object)
    }

    /// The store of `object` (canonical name), read-only.
    pub fn store_ref(&self, object: &str) -> Option<&ObjectStore> {
        self.objects.get(object)
    }

    /// A fresh id for a nested item (Jobber emails and phones).
    pub fn sub_id(&mut self, kind: &str) -> String {
        self.next_sub_id += 1;
        jobber_gid(kind, self.next_sub_id)
    }

    /// Creates a record in `object` with `fields`, stamped `at` (or the next tick); returns
    /// its id, or `None` for an unknown object.
    /// Records created now (without `at`) are reported to webhook subscribers; seeded ones
    /// (stamped in the past) are not.
    pub fn create(&mut self, object: &str, fields: Map<String, Value>, at: Option<Timestamp>) -> Option<String> {
        let stamped = at.is_some();
        let at = match at {
            Some(at) => {
                self.observe(at);
                at
            }
            None => self.tick(),
        };
        let provider = self.provider;
        let (name, store) = self.objects.iter_mut().find(|(name, _)| **name == object)?;
        let name = *name;
        let seq = store.next_seq();
        let id = make_id(provider, object, seq);
        let record = Record {
            id: id.clone(),
            seq,
            created_at: at,
            updated_at: at,
            fields,
        };
        if !stamped {
            self.record_change(name, &record, ChangeKind::Created);
        }
        if let Some(store) = self.objects.get_mut(name) {
            store.insert(record);
        }
        Some(id)
    }

    /// Removes `object`/`id` and reports the deletion; the removed record, if it existed.
    pub fn delete(&mut self, object: &str, id: &str) -> Option<Record> {
        let (name, store) = self.objects.iter_mut().find(|(name, _)| **name == object)?;
        let name = *name;
        let record = store.remove(id)?;
        self.record_change(name, &record, ChangeKind::Deleted);
        Some(record)
    }

    /// Replaces the fields of `object`/`id`: the record's `updated_at` moves to the next tick
    /// when the fields change, or always when `always_bump`. `false` when there is no such
    /// record.
    pub fn update(&mut self, object: &str, id: &str, fields: Map<String, Value>, always_bump: bool) -> bool {
        let Some((name, record)) = self
            .objects
            .iter()
            .find(|(name, _)| **name == object)
            .and_then(|(name, store)| Some((*name, store.get(id)?)))
        else {
            return false;
        };
        let previous: Map<String, Value> = record
            .fields
            .iter()
            .filter(|(key, value)| fields.get(*key) != Some(value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .chain(
                fields
                    .keys()
                    .filter(|key| !record.fields.contains_key(*key))
                    .map(|key| (key.clone(), Value::Null)),
            )
            .collect();
        let changed = always_bump || !previous.is_empty();
        let at = changed.then(|| self.tick());
        let updated = self
            .objects
            .get_mut(name)
            .is_some_and(|store| store.set_fields(id, fields, at));
        if updated
            && changed
            && let Some(record) = self.objects.get(name).and_then(|store| store.get(id)).cloned()
        {
            self.record_change(name, &record, ChangeKind::Updated { previous });
        }
        updated
    }
}

/// The id of creation number `seq` of `object`, in the provider's format.
pub fn make_id(provider: Provider, object: &str, seq: u64) -> String {
    match provider {
        Provider::Hubspot => (1_000 + seq).to_string(),
        Provider::Pipedrive => seq.to_string(),
        Provider::Salesforce => salesforce::make_id(salesforce::key_prefix(object), seq),
        Provider::Jobber => jobber_gid(
            match object {
                "jobs" => "Job",
                "properties" => "Property",
                _ => "Client",
            },
            seq,
        ),
    }
}

/// Jobber's EncodedId: base64 of `gid://Jobber/<Kind>/<n>`.
pub fn jobber_gid(kind: &str, n: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("gid://Jobber/{kind}/{n}"))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The timestamp of `ms` milliseconds since the epoch (clamped into jiff's range).
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// RFC 3339 in UTC with milliseconds: `2025-01-01T00:00:05.000Z` (HubSpot).
pub fn iso_ms(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// RFC 3339 in UTC to the second: `2025-01-01T00:00:05Z` (Pipedrive, Jobber).
pub fn iso_s(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses RFC 3339 (also with `+0000`-style offsets), `YYYY-MM-DD` (midnight UTC) or epoch
/// milliseconds.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    // `+0000` / `-0500` offsets: insert the colon.
    let bytes = text.as_bytes();
    if bytes.len() > 5
        && matches!(bytes[bytes.len() - 5], b'+' | b'-')
        && text[text.len() - 4..].bytes().all(|b| b.is_ascii_digit())
    {
        let (head, offset) = text.split_at(text.len() - 2);
        if let Ok(at) = format!("{head}:{offset}").parse::<Timestamp>() {
            return Some(at);
        }
    }
    if text.len() == 10 {
        return format!("{text}T00:00:00Z").parse().ok();
    }
    None
}

/// Whether `text` looks like an email address: something, `@`, a dotted domain, no spaces.
pub fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

/// A JSON scalar as text (`None` for null, arrays and objects).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number from a JSON number or numeric text.
pub fn number_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// An integer from a JSON number with no fraction or integer text.
pub fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What the record API makes of a request once it is authenticated and admitted.
pub struct Call<'a> {
    /// The request.
    pub request: &'a SandboxRequest,
    /// The provider's base URL as this call reached it (`http://host:port/hubspot`).
    pub base: &'a str,
    /// The path under the provider's base.
    pub path: &'a str,
    /// The caller's account.
    pub account: u32,
    /// Milliseconds since the epoch, now.
    pub now_ms: i64,
}

/// Whether `path` belongs to `provider`'s record API (else the OAuth handlers answer).
fn is_record_route(provider: Provider, path: &str, request: &SandboxRequest) -> bool {
    match provider {
        Provider::Hubspot => path.starts_with("/crm/v3/"),
        Provider::Salesforce => path.starts_with("/services/data/"),
        Provider::Pipedrive => {
            path.starts_with("/api/v2/")
                || path == "/api/v1/webhooks"
                || path.starts_with("/api/v1/webhooks/")
                || matches!(
                    path,
                    "/api/v1/personFields" | "/api/v1/organizationFields" | "/api/v1/dealFields"
                )
        }
        Provider::Jobber => request.method == http::Method::POST && path == "/api/graphql",
    }
}

/// Answers `request` if `path` is one of `provider`'s record routes; `None` lets the OAuth
/// handlers answer.
pub fn handle(
    sandbox: &Sandbox,
    provider: Provider,
    base: &str,
    path: &str,
    request: &SandboxRequest,
) -> Option<Reply> {
    if !is_record_route(provider, path, request) {
        return None;
    }
    let account = match authenticated(sandbox, provider, request.bearer()) {
        Ok(account) => account,
        Err(reply) => return Some(reply),
    };
    let call = Call {
        request,
        base,
        path,
        account,
        now_ms: now_ms(),
    };
    let (reply, webhooks) = sandbox.with_state(|state| {
        if let Some(id) = path.strip_prefix("/api/v1/webhooks") {
            let id = id.strip_prefix('/').filter(|id| !id.is_empty());
            state.records.provider(provider).requests += 1;
            return (
                webhooks::pipedrive_api::handle(&mut state.webhooks, account, request, id),
                0,
            );
        }
        let SandboxState { providers, records, .. } = &mut *state;
        let outage = providers.entry(provider).or_default();
        if outage.fail_api_next > 0 {
            outage.fail_api_next -= 1;
            return (server_error(provider, outage.fail_api_status), 0);
        }
        let records = records.provider(provider);
        records.requests += 1;
        records.note(path, request);
        let reply = match provider {
            Provider::Hubspot => hubspot::handle(records, &call),
            Provider::Salesforce => salesforce::handle(records, &call),
            Provider::Pipedrive => pipedrive::handle(records, &call),
            Provider::Jobber => jobber::handle(&sandbox.jobber, records, providers.entry(provider).or_default(), &call),
        };
        (reply, webhooks::capture(state, provider, Origin::Api))
    });
    if webhooks > 0 {
        sandbox.webhook_wake.notify_one();
    }
    Some(reply)
}

/// Each provider's answer when its API fails on its side (`status` 500, 502, 503 …), in its
/// own error shape.
fn server_error(provider: Provider, status: u16) -> Reply {
    let body = match provider {
        Provider::Hubspot => json!({
            "status": "error", "message": "internal error", "category": "INTERNAL_ERROR",
            "correlationId": uuid::Uuid::new_v4().to_string(),
        }),
        Provider::Pipedrive => json!({ "success": false, "error": "Internal server error", "errorCode": status }),
        Provider::Salesforce => json!([{
            "message": "An unexpected error occurred. Please include this ErrorId if you contact support",
            "errorCode": if status == 503 { "SERVER_UNAVAILABLE" } else { "UNKNOWN_EXCEPTION" },
        }]),
        Provider::Jobber => json!({ "errors": [{ "message": "Internal server error" }] }),
    };
    crate::sandbox::json_reply(status, body)
}

/// The control view of a record.
pub fn record_json(record: &Record) -> Value {
    json!({
        "id": record.id,
        "seq": record.seq,
        "created_at": iso_ms(record.created_at),
        "updated_at": iso_ms(record.updated_at),
        "fields": record.fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("name".into(), name.into());
        map
    }

    #[test]
    fn modified_since_orders_by_time_then_id() {
        let mut records = ProviderRecords::new(Provider::Hubspot);
        let base: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let later = ts(base.as_millisecond() + 5_000);
        let a = records.create("contacts", fields("a"), Some(later)).unwrap();
        let b = records.create("contacts", fields("b"), Some(base)).unwrap();
        let c = records.create("contacts", fields("c"), Some(later)).unwrap();
        assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("1001", "1002", "1003"));
        let store = records.store_ref("contacts").unwrap();
        let order: Vec<&str> = store.modified_since(None).map(|r| r.id.as_str()).collect();
        assert_eq!(order, ["1002", "1001", "1003"], "time first, then id");
        let since: Vec<&str> = store.modified_since(Some(later)).map(|r| r.id.as_str()).collect();
        assert_eq!(since, ["1001", "1003"], "inclusive");
        let after: Vec<&str> = store.modified_after((later, 1)).map(|r| r.id.as_str()).collect();
        assert_eq!(after, ["1003"]);
        // An update moves the record to the end with a fresh, later time.
        assert!(records.update("contacts", &b, fields("b2"), false));
        let store = records.store_ref("contacts").unwrap();
        let order: Vec<&str> = store.modified_since(None).map(|r| r.id.as_str()).collect();
        assert_eq!(order, ["1001", "1003", "1002"]);
        assert!(store.get(&b).unwrap().updated_at > later);
    }

    #[test]
    fn unchanged_updates_keep_their_time_unless_forced() {
        let mut records = ProviderRecords::new(Provider::Pipedrive);
        let id = records.create("persons", fields("a"), None).unwrap();
        let first = records.store_ref("persons").unwrap().get(&id).unwrap().updated_at;
        assert!(records.update("persons", &id, fields("a"), false));
        assert_eq!(
            records.store_ref("persons").unwrap().get(&id).unwrap().updated_at,
            first
        );
        assert!(records.update("persons", &id, fields("a"), true));
        assert!(records.store_ref("persons").unwrap().get(&id).unwrap().updated_at > first);
        assert!(!records.update("persons", "999", fields("a"), true));
    }

    #[test]
    fn ticks_strictly_increase() {
        let mut records = ProviderRecords::new(Provider::Jobber);
        let mut last = records.tick();
        for _ in 0..1_000 {
            let next = records.tick();
            assert!(next > last);
            last = next;
        }
    }

    #[test]
    fn times_parse_in_provider_formats() {
        let at: Timestamp = "2025-01-01T00:00:05Z".parse().unwrap();
        assert_eq!(parse_time("2025-01-01T00:00:05.000+0000"), Some(at));
        assert_eq!(parse_time("1735689605000"), Some(at));
        assert_eq!(parse_time("2025-01-01T00:00:05Z"), Some(at));
        assert_eq!(parse_time("2025-01-01"), Some(ts(at.as_millisecond() - 5_000)));
        assert_eq!(iso_ms(at), "2025-01-01T00:00:05.000Z");
        assert_eq!(iso_s(at), "2025-01-01T00:00:05Z");
        assert!(valid_email("a.b@example.com") && !valid_email("nope") && !valid_email("a@b"));
    }

    #[test]
    fn ids_follow_each_provider() {
        assert_eq!(make_id(Provider::Hubspot, "contacts", 1), "1001");
        assert_eq!(make_id(Provider::Pipedrive, "persons", 7), "7");
        assert_eq!(make_id(Provider::Jobber, "clients", 1), "Z2lkOi8vSm9iYmVyL0NsaWVudC8x");
        let sf = make_id(Provider::Salesforce, "Contact", 42);
        assert_eq!(sf.len(), 18);
        assert!(sf.starts_with("003"));
    }
}

#[cfg(test)]
pub(crate) mod http_tests {
    use serde_json::{Value, json};

    use crate::providers::Provider;
    use crate::sandbox::Sandbox;
    use crate::sandbox::state::{AccessGrant, now};

    /// Serves a seeded sandbox and hands out a live token `tok-<provider>` for every provider.
    pub(crate) async fn serve() -> (String, reqwest::Client) {
        let sandbox = Sandbox::default();
        sandbox.seed(20);
        sandbox.with_state(|state| {
            for provider in Provider::ALL {
                let grant = AccessGrant {
                    account: 1,
                    expires_at: now() + 3_600,
                };
                state
                    .provider(provider)
                    .access_tokens
                    .insert(format!("tok-{}", provider.as_str()), grant);
            }
        });
        let addr = sandbox.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
        (format!("http://{addr}"), reqwest::Client::new())
    }

    #[tokio::test]
    async fn record_routes_answer_over_http_before_oauth() {
        let (base, http) = serve().await;
        let unauthorized = http
            .get(format!("{base}/hubspot/crm/v3/objects/contacts"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorized.status(), 401);
        let search: Value = http
            .post(format!("{base}/hubspot/crm/v3/objects/contacts/search"))
            .bearer_auth("tok-hubspot")
            .json(&json!({ "limit": 5 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(search["total"], 20);
        let soql: Value = http
            .get(format!("{base}/salesforce/services/data/v62.0/query"))
            .query(&[("q", "SELECT Id FROM Account")])
            .bearer_auth("tok-salesforce")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(soql["totalSize"], 4);
        let persons: Value = http
            .get(format!("{base}/pipedrive/api/v2/persons?limit=3"))
            .bearer_auth("tok-pipedrive")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(persons["data"].as_array().unwrap().len(), 3);
        let clients: Value = http
            .post(format!("{base}/jobber/api/graphql"))
            .bearer_auth("tok-jobber")
            .json(&json!({ "query": "query($first: Int) { clients(first: $first) { nodes { id } totalCount } }", "variables": { "first": 2 } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(clients["data"]["clients"]["totalCount"], 20);
        // The identity query is answered by the same executor.
        let account: Value = http
            .post(format!("{base}/jobber/api/graphql"))
            .bearer_auth("tok-jobber")
            .json(&json!({ "query": "query { account { id name } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(account["data"]["account"]["id"].is_string());
        let stats: Value = http
            .get(format!("{base}/_control/jobber/records-stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["requests"], 2);
        assert_eq!(stats["objects"]["clients"]["count"], 20);
        let oauth_stats = http.get(format!("{base}/_control/jobber/stats")).send().await.unwrap();
        assert_eq!(oauth_stats.status(), 200);
    }
}
