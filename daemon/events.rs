//! Events: what changed, recorded in the durable outbox in the same transaction as the change.
//!
//! [`emit`] stores the event and fans it out to one delivery per enabled webhook endpoint
//! whose subscription matches, all inside the caller's transaction, so an event exists if and
//! only if its change committed, and no committed event is ever without its deliveries.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{IdKind, new_id};
use crate::store::{EVENTS, IndexTable, Reader, Record, Store, StoreError, Tx};
use crate::webhooks::outbox;
use crate::webhooks::records::EndpointRecord;

/// The event types of the Webhooks API, plus `endpoint.disabled` and `webhook.test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "sync.started")]
    SyncStarted,
    #[serde(rename = "sync.completed")]
    SyncCompleted,
    #[serde(rename = "sync.failed")]
    SyncFailed,
    #[serde(rename = "sync.partial")]
    SyncPartial,
    #[serde(rename = "record.created")]
    RecordCreated,
    #[serde(rename = "record.updated")]
    RecordUpdated,
    #[serde(rename = "record.error")]
    RecordError,
    #[serde(rename = "connection.created")]
    ConnectionCreated,
    #[serde(rename = "connection.refreshed")]
    ConnectionRefreshed,
    #[serde(rename = "connection.expired")]
    ConnectionExpired,
    #[serde(rename = "connection.deleted")]
    ConnectionDeleted,
    #[serde(rename = "mapping.created")]
    MappingCreated,
    #[serde(rename = "mapping.updated")]
    MappingUpdated,
    #[serde(rename = "mapping.deleted")]
    MappingDeleted,
    #[serde(rename = "mapping.activated")]
    MappingActivated,
    #[serde(rename = "mapping.deactivated")]
    MappingDeactivated,
    /// A webhook endpoint was disabled after too many failed deliveries or a `410 Gone`.
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// Sent by `fluxctl webhook test` to one endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    /// Every event type, in documentation order.
    pub const ALL: [EventType; 18] = [
        EventType::SyncStarted,
        EventType::SyncCompleted,
        EventType::SyncFailed,
        EventType::SyncPartial,
        EventType::RecordCreated,
        EventType::RecordUpdated,
        EventType::RecordError,
        EventType::ConnectionCreated,
        EventType::ConnectionRefreshed,
        EventType::ConnectionExpired,
        EventType::ConnectionDeleted,
        EventType::MappingCreated,
        EventType::MappingUpdated,
        EventType::MappingDeleted,
        EventType::MappingActivated,
        EventType::MappingDeactivated,
        EventType::EndpointDisabled,
        EventType::WebhookTest,
    ];

    /// The dotted name, e.g. `sync.completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SyncStarted => "sync.started",
            EventType::SyncCompleted => "sync.completed",
            EventType::SyncFailed => "sync.failed",
            EventType::SyncPartial => "sync.partial",
            EventType::RecordCreated => "record.created",
            EventType::RecordUpdated => "record.updated",
            EventType::RecordError => "record.error",
            EventType::ConnectionCreated => "connection.created",
            EventType::ConnectionRefreshed => "connection.refreshed",
            EventType::ConnectionExpired => "connection.expired",
            EventType::ConnectionDeleted => "connection.deleted",
            EventType::MappingCreated => "mapping.created",
            EventType::MappingUpdated => "mapping.updated",
            EventType::MappingDeleted => "mapping.deleted",
            EventType::MappingActivated => "mapping.activated",
            EventType::MappingDeactivated => "mapping.deactivated",
            EventType::EndpointDisabled => "endpoint.disabled",
            EventType::WebhookTest => "webhook.test",
        }
    }

    /// Parses a dotted name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// `evt_…`, time-ordered.
    pub id: String,
    pub org_id: String,
    pub event_type: EventType,
    /// RFC 3339 UTC with second precision, as in the seed's payload.
    pub timestamp: String,
    pub data: serde_json::Value,
}

impl Record for EventRecord {
    const TABLE: crate::store::BytesTable = EVENTS;
    fn id(&self) -> &str {
        &self.id
    }
}

impl EventRecord {
    /// The webhook payload: `eventType`, `timestamp`, `data`, `metadata.fluxcascadeEventId`.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "eventType": self.event_type.as_str(),
            "timestamp": self.timestamp,
            "data": self.data,
            "metadata": { "fluxcascadeEventId": self.id },
        })
    }
}

/// Current time as RFC 3339 UTC with second precision (`2026-01-20T12:00:00Z`).
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

/// `at` as RFC 3339 UTC with second precision.
pub fn rfc3339(at: jiff::Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

/// Records an event in `tx` and queues its webhook deliveries; returns the event.
pub fn emit(
    tx: &mut Tx<'_>,
    org_id: &str,
    event_type: EventType,
    data: serde_json::Value,
) -> Result<Arc<EventRecord>, StoreError> {
    let endpoints = outbox::endpoints_of(tx, org_id)?;
    record(tx, org_id, event_type, data, &endpoints)
}

/// Records several events of one organization (a sync page's `record.*` events), reading the
/// webhook endpoints once.
pub fn emit_all(
    tx: &mut Tx<'_>,
    org_id: &str,
    events: impl IntoIterator<Item = (EventType, serde_json::Value)>,
) -> Result<(), StoreError> {
    let endpoints = outbox::endpoints_of(tx, org_id)?;
    for (event_type, data) in events {
        record(tx, org_id, event_type, data, &endpoints)?;
    }
    Ok(())
}

fn record(
    tx: &mut Tx<'_>,
    org_id: &str,
    event_type: EventType,
    data: serde_json::Value,
    endpoints: &[EndpointRecord],
) -> Result<Arc<EventRecord>, StoreError> {
    let event = Arc::new(EventRecord {
        id: new_id(IdKind::Event),
        org_id: org_id.to_owned(),
        event_type,
        timestamp: now_rfc3339(),
        data,
    });
    tx.put(event.as_ref())?;
    tx.index_insert(IndexTable::OrgEvents, &format!("{org_id}/{}", event.id))?;
    if event_type != EventType::WebhookTest {
        outbox::fan_out(tx, endpoints, &event)?;
    }
    tracing::debug!(event_id = %event.id, event_type = %event_type, "event recorded");
    tx.after_commit_broadcast(event.clone());
    Ok(event)
}

/// Events removed per transaction while pruning.
const PRUNE_CHUNK: usize = 5_000;

/// Removes the events recorded before `cutoff` from the outbox; returns how many. Event ids
/// are UUIDv7, whose first 48 bits are the creation time in ms, so the oldest come first.
pub async fn prune_before(store: &Store, cutoff: jiff::Timestamp) -> Result<usize, StoreError> {
    let bound = format!("{}_{:012x}", IdKind::Event.prefix(), cutoff.as_millisecond().max(0));
    let prefix = format!("{}_", IdKind::Event.prefix());
    let mut removed = 0;
    loop {
        let keys = store.read(|rx| rx.keys_with_prefix(EVENTS, &prefix, PRUNE_CHUNK))?;
        let listed = keys.len();
        let old: Vec<String> = keys.into_iter().filter(|k| k.as_str() < bound.as_str()).collect();
        if old.is_empty() {
            return Ok(removed);
        }
        let count = old.len();
        store
            .write(move |tx| {
                for key in &old {
                    if let Some(event) = tx.remove::<EventRecord>(key)? {
                        tx.index_remove(IndexTable::OrgEvents, &format!("{}/{key}", event.org_id))?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        removed += count;
        if count < listed {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serde_uses_dotted_names() {
        for event_type in EventType::ALL {
            assert_eq!(EventType::parse(event_type.as_str()), Some(event_type));
            assert_eq!(serde_json::to_value(event_type).unwrap(), event_type.as_str());
        }
        assert_eq!(EventType::parse("sync.nope"), None);
    }

    #[test]
    fn payload_has_the_seed_shape() {
        let event = EventRecord {
            id: "evt_1".into(),
            org_id: "org_1".into(),
            event_type: EventType::SyncCompleted,
            timestamp: "2026-01-20T12:00:00Z".into(),
            data: serde_json::json!({"jobId": "job_1"}),
        };
        assert_eq!(
            event.payload(),
            serde_json::json!({
                "eventType": "sync.completed",
                "timestamp": "2026-01-20T12:00:00Z",
                "data": {"jobId": "job_1"},
                "metadata": {"fluxcascadeEventId": "evt_1"}
            })
        );
    }

    #[tokio::test]
    async fn pruning_removes_only_older_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::crypto::MasterKey::generate()).unwrap();
        store
            .write(|tx| emit(tx, "org", EventType::MappingCreated, serde_json::json!({})).map(|_| ()))
            .await
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let cutoff = jiff::Timestamp::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let kept = store
            .write(|tx| emit(tx, "org", EventType::MappingUpdated, serde_json::json!({})))
            .await
            .unwrap();
        assert_eq!(prune_before(&store, cutoff).await.unwrap(), 1);
        let left = store.read(|rx| rx.list::<EventRecord>()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, kept.id);
    }

    #[test]
    fn timestamps_have_second_precision() {
        let now = now_rfc3339();
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
    }
}
