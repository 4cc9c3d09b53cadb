//! The audit log: one entry per mutating RPC — who (member and token), what (the RPC and the
//! resource), when, from where, and how it ended — kept per organization up to
//! [`KEEP_PER_ORG`] entries (the oldest go first). Requests' contents are never recorded, so
//! no secret reaches it.

use serde::{Deserialize, Serialize};

use crate::ids::{IdKind, new_id};
use crate::store::{AUDIT, BytesTable, IndexTable, OrgKind, Reader, Record, StoreError, Tx};

/// Entries kept per organization.
pub const KEEP_PER_ORG: u64 = 10_000;
/// Entries pruned at once when an organization goes over [`KEEP_PER_ORG`].
const PRUNE_BATCH: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub id: String,
    pub org_id: String,
    pub member_id: String,
    pub token_id: String,
    /// The gRPC method, e.g. `/fluxcascade.v1.ConnectionService/DeleteConnection`.
    pub method: String,
    /// The resource the call named or made, when it has one.
    pub resource_id: String,
    /// The caller's address.
    pub peer: String,
    /// The gRPC status code it ended with (0: OK).
    pub code: i32,
    pub at: String,
}

impl Record for AuditRecord {
    const TABLE: BytesTable = AUDIT;
    fn id(&self) -> &str {
        &self.id
    }
}

/// What a new entry says.
pub struct Entry {
    pub org_id: String,
    pub member_id: String,
    pub token_id: String,
    pub method: String,
    pub resource_id: String,
    pub peer: String,
    pub code: i32,
}

/// Appends `entry`, pruning the organization's oldest entries beyond [`KEEP_PER_ORG`].
pub fn append(tx: &mut Tx<'_>, entry: Entry) -> Result<(), StoreError> {
    let record = AuditRecord {
        id: new_id(IdKind::AuditEntry),
        org_id: entry.org_id,
        member_id: entry.member_id,
        token_id: entry.token_id,
        method: entry.method,
        resource_id: entry.resource_id,
        peer: entry.peer,
        code: entry.code,
        at: crate::events::now_rfc3339(),
    };
    tx.put(&record)?;
    tx.index_org(OrgKind::Audit, &record.org_id, &record.id)?;
    if tx.org_count(OrgKind::Audit, &record.org_id)? > KEEP_PER_ORG + PRUNE_BATCH as u64 {
        for id in tx.org_ids(OrgKind::Audit, &record.org_id, None, PRUNE_BATCH)? {
            tx.remove::<AuditRecord>(&id)?;
            tx.unindex_org(OrgKind::Audit, &record.org_id, &id)?;
        }
    }
    Ok(())
}

/// Which entries to list.
pub struct Filter<'a> {
    pub since: Option<jiff::Timestamp>,
    pub member_id: Option<&'a str>,
    /// The id of the last entry of the previous page.
    pub before: Option<&'a str>,
    pub limit: usize,
}

/// `org_id`'s entries matching `filter`, newest first.
pub fn list(rx: &impl Reader, org_id: &str, filter: &Filter<'_>) -> Result<Vec<AuditRecord>, StoreError> {
    let prefix = OrgKind::Audit.prefix(org_id);
    let oldest = filter.since.map(|at| {
        format!(
            "{prefix}{}_{:012x}",
            IdKind::AuditEntry.prefix(),
            at.as_millisecond().max(0)
        )
    });
    let mut cursor = filter.before.map(|id| format!("{prefix}{id}"));
    let mut found = Vec::new();
    'scan: while found.len() < filter.limit {
        let keys = rx.index_keys_rev(IndexTable::Org, &prefix, cursor.as_deref(), filter.limit)?;
        let Some(last) = keys.last().cloned() else { break };
        for key in &keys {
            if oldest.as_ref().is_some_and(|oldest| key < oldest) {
                break 'scan;
            }
            let Some(entry) = rx.get::<AuditRecord>(&key[prefix.len()..])? else {
                continue;
            };
            if filter.member_id.is_none_or(|member| entry.member_id == member) {
                found.push(entry);
                if found.len() >= filter.limit {
                    break 'scan;
                }
            }
        }
        cursor = Some(last);
    }
    Ok(found)
}

/// Removes every entry of `org_id`.
pub fn forget(tx: &mut Tx<'_>, org_id: &str) -> Result<(), StoreError> {
    loop {
        let ids = tx.org_ids(OrgKind::Audit, org_id, None, 1000)?;
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            tx.remove::<AuditRecord>(&id)?;
            tx.unindex_org(OrgKind::Audit, org_id, &id)?;
        }
    }
}
