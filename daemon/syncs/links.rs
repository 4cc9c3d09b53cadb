//! Identity links: (mapping, source id) ↔ target id, with the hashes of the values last
//! synced on each side (so unchanged records and our own echoes are skipped).

use serde::{Deserialize, Serialize};

use super::records::Flow;
use crate::store::{BytesTable, LINKS, Reader, Record, StoreError, Tx};

/// A link, stored under `<mapping>/s/<source id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkRecord {
    pub key: String,
    pub source_id: String,
    pub target_id: String,
    /// Hash of the mapped source-side values as last synced.
    pub source_hash: String,
    /// Hash of the mapped target-side values as last synced.
    pub target_hash: String,
}

impl Record for LinkRecord {
    const TABLE: BytesTable = LINKS;
    fn id(&self) -> &str {
        &self.key
    }
}

/// The reverse pointer, stored under `<mapping>/t/<target id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkPointer {
    pub key: String,
    pub source_id: String,
}

impl Record for LinkPointer {
    const TABLE: BytesTable = LINKS;
    fn id(&self) -> &str {
        &self.key
    }
}

fn source_key(mapping_id: &str, source_id: &str) -> String {
    format!("{mapping_id}/s/{source_id}")
}

fn target_key(mapping_id: &str, target_id: &str) -> String {
    format!("{mapping_id}/t/{target_id}")
}

/// The link of a record read in `flow` (a source record going forward, a target record
/// going backward).
pub fn find(rx: &impl Reader, mapping_id: &str, flow: Flow, record_id: &str) -> Result<Option<LinkRecord>, StoreError> {
    match flow {
        Flow::Forward => rx.get::<LinkRecord>(&source_key(mapping_id, record_id)),
        Flow::Backward => match rx.get::<LinkPointer>(&target_key(mapping_id, record_id))? {
            Some(pointer) => rx.get::<LinkRecord>(&source_key(mapping_id, &pointer.source_id)),
            None => Ok(None),
        },
    }
}

/// Whether `target_id` is already linked (to a different source) in `mapping_id`.
pub fn target_linked(rx: &impl Reader, mapping_id: &str, target_id: &str) -> Result<Option<String>, StoreError> {
    Ok(rx
        .get::<LinkPointer>(&target_key(mapping_id, target_id))?
        .map(|p| p.source_id))
}

/// Stores `link` and its reverse pointer.
pub fn save(tx: &mut Tx<'_>, mapping_id: &str, link: &LinkRecord) -> Result<(), StoreError> {
    let mut stored = link.clone();
    stored.key = source_key(mapping_id, &link.source_id);
    tx.put(&stored)?;
    tx.put(&LinkPointer {
        key: target_key(mapping_id, &link.target_id),
        source_id: link.source_id.clone(),
    })
}
