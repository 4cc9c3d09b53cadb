//! Schema versioning: table creation, migrations between versions, and the master-key check.

use std::collections::BTreeSet;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::embedded::WriteTxn;
use super::raw::{RawWrite, Start};
use super::{
    API_TOKENS, BytesTable, CONNECTIONS, EVENTS, IndexTable, MAPPINGS, MEMBERS, META, OrgKind, RECORD_TABLES, SECRETS,
    SYNC_JOBS, SYNC_STATES, StoreError, WEBHOOK_ENDPOINTS,
};
use crate::crypto::MasterKey;

/// The schema this build writes. Bump it and add a step to [`migrate_step`] when a stored
/// shape changes.
pub const SCHEMA_VERSION: u32 = 5;

const VERSION_KEY: &str = "schema_version";
const KEY_CHECK_KEY: &str = "key_check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"fluxcascade master key check";

/// Brings the database to [`SCHEMA_VERSION`] in one transaction and verifies the master key.
pub(super) fn migrate(db: &Database, key: &MasterKey) -> Result<(), StoreError> {
    let found = read_version(db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let txn = db.begin_write()?;
    for table in RECORD_TABLES {
        txn.open_table(table)?;
    }
    for index in IndexTable::ALL {
        txn.open_table(index.definition())?;
    }
    for version in found..SCHEMA_VERSION {
        migrate_step(&txn, version)?;
    }
    let mut txn = Box::new(WriteTxn(txn));
    record_version_and_check_key(txn.as_mut(), key)?;
    txn.commit(&BTreeSet::new())
}

/// Records that the store is at [`SCHEMA_VERSION`] and checks `key` against the key check
/// (sealing one when the store is new): the end of every engine's migration.
pub(super) fn record_version_and_check_key(raw: &mut dyn RawWrite, key: &MasterKey) -> Result<(), StoreError> {
    raw.raw_insert(META, VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    match raw.raw_get(META, KEY_CHECK_KEY)? {
        Some(sealed) => {
            key.open(KEY_CHECK_KEY, &sealed)
                .map_err(|_| StoreError::WrongMasterKey)?;
        }
        None => {
            let sealed = key.seal(KEY_CHECK_KEY, KEY_CHECK_PLAINTEXT)?;
            raw.raw_insert(META, KEY_CHECK_KEY, &sealed)?;
        }
    }
    Ok(())
}

fn read_version(db: &Database) -> Result<u32, StoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let version = meta
        .get(VERSION_KEY)?
        .and_then(|guard| guard.value().try_into().ok().map(u32::from_be_bytes))
        .unwrap_or(0);
    Ok(version)
}

/// The migration hook: converts stored records from `version` to `version + 1` inside the
/// opening transaction. Steps work on the stored JSON, so the store needs none of the types
/// it keeps.
fn migrate_step(txn: &redb::WriteTransaction, version: u32) -> Result<(), StoreError> {
    tracing::info!(from = version, to = version + 1, "migrating store schema");
    match version {
        // Version 0 is a new file whose tables were just created.
        0 => Ok(()),
        1 => {
            derive_sync_states(txn)?;
            index_by_organization(txn)
        }
        2 => {
            index_for_inbound_webhooks(txn)?;
            index_jobs_and_events_by_organization(txn)
        }
        3 => index_members_and_tokens_by_organization(txn),
        4 => index_members_by_principal(txn),
        _ => Ok(()),
    }
}

/// Version 2 keeps, per mapping, its active job, its last finished job and whether one ever
/// completed; version 1 derived that from every job of the mapping.
fn derive_sync_states(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    use std::collections::BTreeMap;
    let mut states: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    {
        let jobs = txn.open_table(SYNC_JOBS)?;
        // Job ids are time-ordered, so the table's order is each mapping's history in order.
        for entry in jobs.iter()? {
            let (_, value) = entry?;
            let Ok(job) = serde_json::from_slice::<serde_json::Value>(value.value()) else {
                continue;
            };
            let (Some(mapping), Some(id), Some(status)) =
                (job["mapping_id"].as_str(), job["id"].as_str(), job["status"].as_str())
            else {
                continue;
            };
            let state = states.entry(mapping.to_owned()).or_insert_with(|| {
                serde_json::json!({ "mapping_id": mapping, "active_job": null, "last_job": null,
                                    "last_status": null, "succeeded_once": false })
            });
            if matches!(status, "pending" | "running") {
                state["active_job"] = id.into();
            } else {
                state["last_job"] = id.into();
                state["last_status"] = status.into();
            }
            if matches!(status, "completed" | "partial") {
                state["succeeded_once"] = true.into();
            }
        }
    }
    let mut table = txn.open_table(SYNC_STATES)?;
    for (mapping, state) in states {
        table.insert(mapping.as_str(), state.to_string().as_bytes())?;
    }
    Ok(())
}

/// Version 2 lists each organization's connections, mappings and webhook endpoints in an
/// index; version 1 scanned the tables.
fn index_by_organization(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    index_in_organizations(
        txn,
        &[
            (CONNECTIONS, OrgKind::Connection),
            (MAPPINGS, OrgKind::Mapping),
            (WEBHOOK_ENDPOINTS, OrgKind::WebhookEndpoint),
        ],
    )
}

/// Version 4 lists an organization's members and API tokens through the organization index.
fn index_members_and_tokens_by_organization(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    index_in_organizations(txn, &[(MEMBERS, OrgKind::Member), (API_TOKENS, OrgKind::ApiToken)])
}

/// Version 5 finds a person's memberships through an index; version 4 scanned every member.
fn index_members_by_principal(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut keys = Vec::new();
    for entry in txn.open_table(MEMBERS)?.iter()? {
        let (id, value) = entry?;
        if let Ok(record) = serde_json::from_slice::<serde_json::Value>(value.value()) {
            let principal = record["principal_id"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or(id.value());
            keys.push(format!("{principal}/{}", id.value()));
        }
    }
    let mut index = txn.open_table(IndexTable::PrincipalMembers.definition())?;
    for key in keys {
        index.insert(key.as_str(), [].as_slice())?;
    }
    Ok(())
}

/// Adds every record of each table, by its stored `org_id`, to the organization index as `kind`.
fn index_in_organizations(txn: &redb::WriteTransaction, tables: &[(BytesTable, OrgKind)]) -> Result<(), StoreError> {
    let mut keys = Vec::new();
    for (table, kind) in tables {
        for entry in txn.open_table(*table)?.iter()? {
            let (id, value) = entry?;
            if let Ok(record) = serde_json::from_slice::<serde_json::Value>(value.value())
                && let Some(org) = record["org_id"].as_str()
            {
                keys.push(format!("{}{}", kind.prefix(org), id.value()));
            }
        }
    }
    let mut index = txn.open_table(IndexTable::Org.definition())?;
    for key in keys {
        index.insert(key.as_str(), [].as_slice())?;
    }
    Ok(())
}

/// Version 3 finds, for an inbound webhook, the connections of a provider account and the
/// mappings of a connection through indexes.
fn index_for_inbound_webhooks(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut accounts = Vec::new();
    for entry in txn.open_table(CONNECTIONS)?.iter()? {
        let (id, value) = entry?;
        if let Ok(record) = serde_json::from_slice::<serde_json::Value>(value.value())
            && let (Some(provider), Some(account)) = (record["provider"].as_str(), record["account_id"].as_str())
        {
            accounts.push(format!("{provider}/{account}/{}", id.value()));
        }
    }
    let mut sides = Vec::new();
    for entry in txn.open_table(MAPPINGS)?.iter()? {
        let (id, value) = entry?;
        if let Ok(record) = serde_json::from_slice::<serde_json::Value>(value.value()) {
            for side in ["source", "target"] {
                if let Some(connection) = record["spec"][side]["connection"].as_str() {
                    sides.push(format!("{connection}/{}", id.value()));
                }
            }
        }
    }
    let mut index = txn.open_table(IndexTable::Accounts.definition())?;
    for key in accounts {
        index.insert(key.as_str(), [].as_slice())?;
    }
    let mut index = txn.open_table(IndexTable::ConnectionMappings.definition())?;
    for key in sides {
        index.insert(key.as_str(), [].as_slice())?;
    }
    Ok(())
}

/// Version 3 lists each organization's sync jobs and events in indexes, for paged listing.
fn index_jobs_and_events_by_organization(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut keys: Vec<(IndexTable, String)> = Vec::new();
    for entry in txn.open_table(SYNC_JOBS)?.iter()? {
        let (id, value) = entry?;
        if let Ok(job) = serde_json::from_slice::<serde_json::Value>(value.value())
            && let Some(org) = job["org_id"].as_str()
        {
            keys.push((IndexTable::OrgJobs, format!("{org}/{}", id.value())));
        }
    }
    for entry in txn.open_table(EVENTS)?.iter()? {
        let (id, value) = entry?;
        if let Ok(event) = serde_json::from_slice::<serde_json::Value>(value.value())
            && let Some(org) = event["org_id"].as_str()
        {
            keys.push((IndexTable::OrgEvents, format!("{org}/{}", id.value())));
        }
    }
    for (index, key) in keys {
        txn.open_table(index.definition())?
            .insert(key.as_str(), [].as_slice())?;
    }
    Ok(())
}

/// Re-seals every secret and the key check from `old` to `new` inside `raw`.
pub(super) fn reseal_all(raw: &mut dyn RawWrite, old: &MasterKey, new: &MasterKey) -> Result<usize, StoreError> {
    let sealed = raw.raw_scan(SECRETS, "", Start::At(""), usize::MAX, true)?;
    for (name, sealed) in &sealed {
        let plain = old.open(name, sealed)?;
        raw.raw_insert(SECRETS, name, &new.seal(name, &plain)?)?;
    }
    let check = new.seal(KEY_CHECK_KEY, KEY_CHECK_PLAINTEXT)?;
    raw.raw_insert(META, KEY_CHECK_KEY, &check)?;
    Ok(sealed.len())
}
