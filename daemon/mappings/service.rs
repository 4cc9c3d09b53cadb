//! Mapping operations: validate against live field catalogs, create, update, delete,
//! activate/deactivate — each change with its event in the same transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::records::MappingRecord;
use super::schedule::Schedule;
use super::spec::MappingSpec;
use super::validate::{self, Side};
use crate::connections::service::{ConnectionError, connection_in_org};
use crate::connections::{ConnectionRecord, ConnectionRuntime};
use crate::connectors::api::RateGates;
use crate::connectors::{ApiClient, Connector, ConnectorError, FieldInfo};
use crate::events::{EventType, emit, now_rfc3339, rfc3339};
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

/// How long a fetched field catalog is reused.
const CATALOG_TTL: Duration = Duration::from_secs(300);

/// Errors of mapping operations.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("mapping {0:?} not found")]
    NotFound(String),
    #[error("cannot read the field catalog of {what}: {error}")]
    Catalog { what: String, error: ConnectorError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// (connection id, object) of a cached catalog.
type CatalogKey = (String, String);
/// A fetched catalog and when it was fetched.
type CachedCatalog = (Instant, Arc<Vec<FieldInfo>>);

/// What mapping operations share.
pub struct MappingRuntime {
    pub connections: Arc<ConnectionRuntime>,
    catalogs: Mutex<HashMap<CatalogKey, CachedCatalog>>,
    /// Per connection, how long providers asked it to wait.
    gates: RateGates,
}

impl MappingRuntime {
    pub fn new(connections: Arc<ConnectionRuntime>) -> Self {
        MappingRuntime {
            connections,
            catalogs: Mutex::default(),
            gates: RateGates::default(),
        }
    }

    /// A connector for `connection`.
    pub fn connector(&self, connection: &ConnectionRecord) -> Connector {
        Connector::new(
            connection.provider,
            ApiClient {
                http: self.connections.http.clone(),
                connection_id: connection.id.clone(),
                org_id: connection.org_id.clone(),
                provider: connection.provider,
                directory: self.connections.directory.clone(),
                store: self.connections.store.clone(),
                gates: self.gates.clone(),
            },
        )
    }

    /// The fields of `object` on `connection`, cached for a few minutes.
    pub async fn catalog(
        &self,
        connection: &ConnectionRecord,
        object: &str,
    ) -> Result<Arc<Vec<FieldInfo>>, MappingError> {
        let key = (connection.id.clone(), object.to_owned());
        if let Some((fetched, fields)) = self.catalogs.lock().ok().and_then(|c| c.get(&key).cloned())
            && fetched.elapsed() < CATALOG_TTL
        {
            return Ok(fields);
        }
        let fields = self
            .connector(connection)
            .fields(object)
            .await
            .map_err(|error| MappingError::Catalog {
                what: format!("{} {object} ({})", connection.provider.as_str(), connection.id),
                error,
            })?;
        let fields = Arc::new(fields);
        if let Ok(mut cache) = self.catalogs.lock() {
            // Expired catalogs go as new ones arrive: the cache holds what was used lately.
            cache.retain(|_, (fetched, _)| fetched.elapsed() < CATALOG_TTL);
            cache.insert(key, (Instant::now(), fields.clone()));
        }
        Ok(fields)
    }

    /// The catalogs a mapping's filters need (their fields' types), empty for a side without
    /// a filter.
    pub async fn filter_catalogs(
        &self,
        spec: &MappingSpec,
        source: &ConnectionRecord,
        target: &ConnectionRecord,
    ) -> Result<(Arc<Vec<FieldInfo>>, Arc<Vec<FieldInfo>>), MappingError> {
        let source_fields = match &spec.filter {
            Some(_) => self.catalog(source, &spec.source.object).await?,
            None => Arc::default(),
        };
        let target_fields = match &spec.target_filter {
            Some(_) => self.catalog(target, &spec.target.object).await?,
            None => Arc::default(),
        };
        Ok((source_fields, target_fields))
    }
}

fn resolve_connection(
    runtime: &MappingRuntime,
    org_id: &str,
    id: &str,
    field: &str,
) -> Result<ConnectionRecord, Vec<String>> {
    runtime
        .connections
        .store
        .read(|rx| connection_in_org(rx, org_id, id))
        .map_err(|error| match error {
            ConnectionError::NotFound(_) => vec![format!("{field}: connection {id:?} not found")],
            other => vec![format!("{field}: {other}")],
        })
}

/// Validates `spec` fully: shape, objects, and fields against both providers' catalogs.
pub async fn validate_spec(
    runtime: &MappingRuntime,
    org_id: &str,
    spec: &MappingSpec,
) -> Result<(ConnectionRecord, ConnectionRecord), MappingError> {
    let mut problems = validate::check_shape(spec);
    let source = resolve_connection(runtime, org_id, &spec.source.connection, "source.connection");
    let target = resolve_connection(runtime, org_id, &spec.target.connection, "target.connection");
    let (source, target) = match (source, target) {
        (Ok(source), Ok(target)) => (source, target),
        (source, target) => {
            problems.extend(source.err().unwrap_or_default());
            problems.extend(target.err().unwrap_or_default());
            return Err(MappingError::Invalid(problems));
        }
    };
    let mut bad_objects = false;
    for (side, connection, object) in [
        ("source.object", &source, &spec.source.object),
        ("target.object", &target, &spec.target.object),
    ] {
        if let Err(problem) = validate::check_object(connection.provider, object, side) {
            problems.push(problem);
            bad_objects = true;
        }
    }
    if bad_objects {
        return Err(MappingError::Invalid(problems));
    }
    let source_fields = runtime.catalog(&source, &spec.source.object).await?;
    let target_fields = runtime.catalog(&target, &spec.target.object).await?;
    problems.extend(validate::check_fields(
        spec,
        &Side {
            provider: source.provider,
            object: &spec.source.object,
            fields: &source_fields,
        },
        &Side {
            provider: target.provider,
            object: &spec.target.object,
            fields: &target_fields,
        },
    ));
    if problems.is_empty() {
        Ok((source, target))
    } else {
        Err(MappingError::Invalid(problems))
    }
}

/// The mapping `id` of organization `org_id`.
pub fn mapping_in_org(rx: &impl Reader, org_id: &str, id: &str) -> Result<MappingRecord, MappingError> {
    rx.get::<MappingRecord>(id)?
        .filter(|m| m.org_id == org_id)
        .ok_or_else(|| MappingError::NotFound(id.to_owned()))
}

/// The next scheduled run after now, for an active mapping with a schedule.
pub fn next_run(spec: &MappingSpec, active: bool, now: jiff::Timestamp) -> Option<String> {
    let schedule = Schedule::parse(spec.schedule.as_deref()?).ok()?;
    active.then(|| schedule.next_after(now).map(rfc3339)).flatten()
}

/// The event `data` of a mapping.
pub fn event_data(record: &MappingRecord) -> serde_json::Value {
    serde_json::json!({
        "mappingId": record.id,
        "name": record.spec.name,
        "active": record.active,
        "direction": record.spec.direction,
        "source": record.spec.source,
        "target": record.spec.target,
    })
}

/// Lists (or, with `listed` false, unlists) `record` under the connections of both its sides,
/// where inbound webhooks look for the mappings a change concerns.
fn index_sides(tx: &mut Tx<'_>, record: &MappingRecord, listed: bool) -> Result<(), StoreError> {
    for connection in [&record.spec.source.connection, &record.spec.target.connection] {
        let key = format!("{connection}/{}", record.id);
        if listed {
            tx.index_insert(IndexTable::ConnectionMappings, &key)?;
        } else {
            tx.index_remove(IndexTable::ConnectionMappings, &key)?;
        }
    }
    Ok(())
}

/// Validates and stores a new mapping; emits `mapping.created`.
pub async fn create(
    runtime: &MappingRuntime,
    org_id: &str,
    spec: MappingSpec,
    active: bool,
) -> Result<MappingRecord, MappingError> {
    validate_spec(runtime, org_id, &spec).await?;
    let now = now_rfc3339();
    let record = MappingRecord {
        id: new_id(IdKind::Mapping),
        org_id: org_id.to_owned(),
        next_run_at: next_run(&spec, active, runtime.connections.store.clock().now()),
        spec,
        active,
        created_at: now.clone(),
        updated_at: now,
    };
    let stored = record.clone();
    runtime
        .connections
        .store
        .write(move |tx| {
            tx.put(&stored)?;
            tx.index_org(OrgKind::Mapping, &stored.org_id, &stored.id)?;
            index_sides(tx, &stored, true)?;
            emit(tx, &stored.org_id, EventType::MappingCreated, event_data(&stored))?;
            Ok::<_, StoreError>(())
        })
        .await?;
    Ok(record)
}

/// Validates and replaces mapping `id`'s spec; emits `mapping.updated`.
pub async fn update(
    runtime: &MappingRuntime,
    org_id: &str,
    id: &str,
    spec: MappingSpec,
) -> Result<MappingRecord, MappingError> {
    runtime.connections.store.read(|rx| mapping_in_org(rx, org_id, id))?;
    validate_spec(runtime, org_id, &spec).await?;
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    runtime
        .connections
        .store
        .write(move |tx| {
            let mut record = mapping_in_org(tx, &org_id, &id)?;
            let schedule_changed = record.spec.schedule != spec.schedule;
            index_sides(tx, &record, false)?;
            record.spec = spec;
            index_sides(tx, &record, true)?;
            if schedule_changed || record.next_run_at.is_none() {
                record.next_run_at = next_run(&record.spec, record.active, tx.clock().now());
            }
            record.updated_at = now_rfc3339();
            tx.put(&record)?;
            emit(tx, &org_id, EventType::MappingUpdated, event_data(&record))?;
            Ok(record)
        })
        .await
}

/// Activates or pauses mapping `id`; emits `mapping.activated` / `mapping.deactivated`.
pub async fn set_active(
    runtime: &MappingRuntime,
    org_id: &str,
    id: &str,
    active: bool,
) -> Result<MappingRecord, MappingError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    runtime
        .connections
        .store
        .write(move |tx| {
            let mut record = mapping_in_org(tx, &org_id, &id)?;
            if record.active == active {
                return Ok(record);
            }
            record.active = active;
            record.next_run_at = next_run(&record.spec, active, tx.clock().now());
            record.updated_at = now_rfc3339();
            tx.put(&record)?;
            let event = if active {
                EventType::MappingActivated
            } else {
                EventType::MappingDeactivated
            };
            emit(tx, &org_id, event, event_data(&record))?;
            Ok(record)
        })
        .await
}

/// Deletes mapping `id` with everything its syncs kept (jobs, outcomes, links, cursors,
/// retries, match index), in one transaction; emits `mapping.deleted`.
pub async fn delete(runtime: &MappingRuntime, org_id: &str, id: &str) -> Result<MappingRecord, MappingError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    runtime
        .connections
        .store
        .write(move |tx| delete_in(tx, &org_id, &id))
        .await
}

/// [`delete`] inside `tx`.
pub fn delete_in(tx: &mut Tx<'_>, org_id: &str, id: &str) -> Result<MappingRecord, MappingError> {
    let record = mapping_in_org(tx, org_id, id)?;
    tx.remove::<MappingRecord>(&record.id)?;
    tx.unindex_org(OrgKind::Mapping, org_id, &record.id)?;
    index_sides(tx, &record, false)?;
    crate::syncs::retention::remove_mapping_data(tx, &record.id)?;
    emit(tx, org_id, EventType::MappingDeleted, event_data(&record))?;
    Ok(record)
}
