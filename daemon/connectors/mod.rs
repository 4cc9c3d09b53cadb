//! Record connectors: each provider's real record API (list changed since, get, search, create,
//! update, batches, field catalog) behind one interface, over a rate-limit-aware HTTP layer
//! that gets its tokens from the connection's actor.

pub mod api;
pub mod hubspot;
pub mod jobber;
pub mod pipedrive;
pub mod salesforce;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use api::{ApiClient, ConnectorError};

use crate::mappings::filter::Compiled;
use crate::providers::Provider;
pub use crate::timestamps::parse_time;

/// A field of a provider object, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    pub label: String,
    pub kind: String,
    /// Must be given when creating a record.
    pub required: bool,
    /// Cannot be written.
    pub read_only: bool,
}

/// A record's fields, flattened to `name → text` (nested values as `parent.child`; a
/// person's primary email and phone as `email` and `phone`).
pub type Fields = BTreeMap<String, String>;

/// A record read from a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRecord {
    pub id: String,
    pub modified_at: jiff::Timestamp,
    pub fields: Fields,
}

/// One page of a changed-since listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<RemoteRecord>,
    /// The provider's cursor for the next page; `None` at the end.
    pub next: Option<String>,
    /// Total matching records, when the provider says.
    pub total: Option<u64>,
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    pub object: &'a str,
    /// Only records modified at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// The provider's cursor from the previous page.
    pub cursor: Option<&'a str>,
    /// Records per page (the provider's maximum caps it).
    pub limit: usize,
    /// Fields to read; the id and modification time always come along.
    pub fields: &'a [String],
    /// Records to ask the provider for, where its query can say so: the page may still hold
    /// records the filter leaves out (the engine applies it to every record), never fewer.
    pub filter: Option<&'a Compiled>,
}

/// JSON scalar as field text; `None` for null, arrays and objects.
pub fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The outcome of writing one record.
pub type WriteResult = Result<String, String>;

/// A provider's record API for one connection.
pub enum Connector {
    Hubspot(hubspot::Hubspot),
    Jobber(jobber::Jobber),
    Pipedrive(pipedrive::Pipedrive),
    Salesforce(salesforce::Salesforce),
}

impl Connector {
    /// The connector of `provider` over `api`.
    pub fn new(provider: Provider, api: ApiClient) -> Connector {
        match provider {
            Provider::Hubspot => Connector::Hubspot(hubspot::Hubspot { api }),
            Provider::Jobber => Connector::Jobber(jobber::Jobber { api }),
            Provider::Pipedrive => Connector::Pipedrive(pipedrive::Pipedrive { api }),
            Provider::Salesforce => Connector::Salesforce(salesforce::Salesforce { api }),
        }
    }

    /// Most records per create/update batch.
    pub fn batch_size(&self) -> usize {
        match self {
            Connector::Hubspot(_) => hubspot::BATCH_LIMIT,
            Connector::Salesforce(_) => salesforce::BATCH_LIMIT,
            Connector::Jobber(_) | Connector::Pipedrive(_) => 1,
        }
    }

    /// The object's fields.
    pub async fn fields(&self, object: &str) -> Result<Vec<FieldInfo>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.fields(object).await,
            Connector::Jobber(c) => c.fields(object).await,
            Connector::Pipedrive(c) => c.fields(object).await,
            Connector::Salesforce(c) => c.fields(object).await,
        }
    }

    /// Records modified at or after `since` (all when `None`), one page, with `fields` (and
    /// the record's id and modification time). `cursor` continues a listing.
    pub async fn list_changed(&self, query: &ListQuery<'_>) -> Result<Page, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.list_changed(query).await,
            Connector::Jobber(c) => c.list_changed(query).await,
            Connector::Pipedrive(c) => c.list_changed(query).await,
            Connector::Salesforce(c) => c.list_changed(query).await,
        }
    }

    /// One record by id.
    pub async fn get(&self, object: &str, id: &str, fields: &[String]) -> Result<Option<RemoteRecord>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.get(object, id, fields).await,
            Connector::Jobber(c) => c.get(object, id, fields).await,
            Connector::Pipedrive(c) => c.get(object, id).await,
            Connector::Salesforce(c) => c.get(object, id, fields).await,
        }
    }

    /// Most ids per [`Connector::get_many`] call.
    pub fn read_batch_size(&self) -> usize {
        match self {
            Connector::Hubspot(_) => hubspot::BATCH_LIMIT,
            Connector::Salesforce(_) => salesforce::BATCH_LIMIT,
            Connector::Pipedrive(_) => pipedrive::IDS_LIMIT,
            Connector::Jobber(_) => 1,
        }
    }

    /// The records with `ids` (at most [`Connector::read_batch_size`]) that exist, in any
    /// order: one batch read where the provider has one.
    pub async fn get_many(
        &self,
        object: &str,
        ids: &[String],
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.get_many(object, ids, fields).await,
            Connector::Salesforce(c) => c.get_many(object, ids, fields).await,
            Connector::Pipedrive(c) => c.get_many(object, ids).await,
            Connector::Jobber(c) => {
                let mut found = Vec::new();
                for id in ids {
                    found.extend(c.get(object, id, fields).await?);
                }
                Ok(found)
            }
        }
    }

    /// Records whose `field` equals `value` (case-insensitively for emails).
    pub async fn search(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.search(object, field, value, fields).await,
            Connector::Jobber(c) => c.search(object, field, value, fields).await,
            Connector::Pipedrive(c) => c.search(object, field, value).await,
            Connector::Salesforce(c) => c.search(object, field, value, fields).await,
        }
    }

    /// Creates records (at most [`Connector::batch_size`]); one result per input, in order.
    pub async fn create(&self, object: &str, records: &[Fields]) -> Result<Vec<WriteResult>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.create(object, records).await,
            Connector::Jobber(c) => c.create(object, records).await,
            Connector::Pipedrive(c) => c.create(object, records).await,
            Connector::Salesforce(c) => c.create(object, records).await,
        }
    }

    /// Updates records by id; one result per input, in order.
    pub async fn update(&self, object: &str, records: &[(String, Fields)]) -> Result<Vec<WriteResult>, ConnectorError> {
        match self {
            Connector::Hubspot(c) => c.update(object, records).await,
            Connector::Jobber(c) => c.update(object, records).await,
            Connector::Pipedrive(c) => c.update(object, records).await,
            Connector::Salesforce(c) => c.update(object, records).await,
        }
    }
}
